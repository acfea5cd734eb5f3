#!/usr/bin/env python3
"""Runs a command under a Docker-format seccomp profile, without Docker.

Checks on any Linux machine that a profile lets shardis-server start and serve (and, with
--without, what the server says when a system call is refused):

    deploy/seccomp-run.py deploy/seccomp-io-uring.json -- shardis-server --port 7000
    deploy/seccomp-run.py --without io_uring_setup deploy/seccomp-io-uring.json -- shardis-server

It reads the profile the way Docker does for a container without extra capabilities: rules
that need a capability or a minimum kernel are left out, rules limited to other architectures are left out, and
system calls unknown to this architecture are skipped. Needs libseccomp's Python bindings
(Debian: python3-seccomp; run it with /usr/bin/python3).
"""

import argparse
import json
import os
import platform
import sys

import seccomp

# Go's architecture names (used by Docker's `includes.arches`) for this machine.
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}

OPS = {
    "SCMP_CMP_NE": seccomp.NE,
    "SCMP_CMP_LT": seccomp.LT,
    "SCMP_CMP_LE": seccomp.LE,
    "SCMP_CMP_EQ": seccomp.EQ,
    "SCMP_CMP_GE": seccomp.GE,
    "SCMP_CMP_GT": seccomp.GT,
    "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ,
}

ARCHES = {
    "SCMP_ARCH_X86": seccomp.Arch.X86,
    "SCMP_ARCH_X86_64": seccomp.Arch.X86_64,
    "SCMP_ARCH_X32": seccomp.Arch.X32,
    "SCMP_ARCH_ARM": seccomp.Arch.ARM,
    "SCMP_ARCH_AARCH64": seccomp.Arch.AARCH64,
}


def action(name, errno_ret):
    if name == "SCMP_ACT_ALLOW":
        return seccomp.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(errno_ret)
    raise SystemExit(f"unsupported action {name}")


def applies(rule, arch):
    """True if Docker would install this rule for an unprivileged container on `arch`."""
    includes = rule.get("includes") or {}
    excludes = rule.get("excludes") or {}
    if includes.get("caps") or includes.get("minKernel"):
        return False
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    return arch not in (excludes.get("arches") or [])


def build_filter(profile, without):
    default_errno = profile.get("defaultErrnoRet", 1)
    filt = seccomp.SyscallFilter(defaction=action(profile["defaultAction"], default_errno))
    native = platform.machine()
    for entry in profile.get("archMap") or []:
        if ARCHES.get(entry["architecture"]) == seccomp.system_arch():
            for sub in entry.get("subArchitectures") or []:
                if sub in ARCHES:
                    filt.add_arch(ARCHES[sub])
    arch = GO_ARCH.get(native, native)
    for rule in profile["syscalls"]:
        if not applies(rule, arch):
            continue
        act = action(rule["action"], rule.get("errnoRet", default_errno))
        args = []
        for a in rule.get("args") or []:
            if a["op"] == "SCMP_CMP_MASKED_EQ":
                args.append(seccomp.Arg(a["index"], seccomp.MASKED_EQ, a["value"], a.get("valueTwo", 0)))
            else:
                args.append(seccomp.Arg(a["index"], OPS[a["op"]], a["value"]))
        for name in rule["names"]:
            if name in without:
                continue
            try:
                filt.add_rule(act, name, *args)
            except (RuntimeError, ValueError):
                pass  # not a system call of this architecture
    return filt


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--without", action="append", default=[],
                        help="leave this system call out of the profile (repeatable)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    command = opts.command[1:] if opts.command[:1] == ["--"] else opts.command
    if not command:
        parser.error("no command given")
    with open(opts.profile) as f:
        profile = json.load(f)
    build_filter(profile, set(opts.without)).load()
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
