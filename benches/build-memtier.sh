#!/usr/bin/env bash
# Builds memtier_benchmark (Redis Ltd.'s load generator) from its source, outside the repository,
# and prints the path of the binary. Debian has no package of it, so the benchmark scripts
# (redis-compare.sh, scaling.sh) look for the binary this script leaves in its cache.
#
# Usage: benches/build-memtier.sh [options]     (see --help)

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: benches/build-memtier.sh [options]

Builds memtier_benchmark and prints the path of the binary on stdout (the build log goes to
stderr). Without --src, clones https://github.com/RedisLabs/memtier_benchmark at --ref.

  -s, --src DIR     an existing source tree (a checkout of memtier_benchmark) instead of cloning;
                    it is copied into the cache before building, so it is left untouched
  -r, --ref TAG     release tag to clone (default 2.3.0)
      --cache DIR   where the source copy, the build and the binary go
                    (default ${XDG_CACHE_HOME:-~/.cache}/shardis-bench)
  -f, --force       rebuild even if the cache already has a binary
  -h, --help        this help

Build dependencies (Debian/Ubuntu):
  apt-get install -y git build-essential autoconf automake libtool pkg-config \
      libevent-dev zlib1g-dev
TLS support is left out (--disable-tls), so OpenSSL is not needed.

The binary ends up in CACHE/bin/memtier_benchmark, where benches/redis-compare.sh and
benches/scaling.sh find it; they also take --memtier PATH or $MEMTIER.
EOF
}

src=""
ref="2.3.0"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/shardis-bench"
force=0

while [ $# -gt 0 ]; do
    case "$1" in
        -s | --src) src="$2"; shift 2 ;;
        -r | --ref) ref="$2"; shift 2 ;;
        --cache) cache="$2"; shift 2 ;;
        -f | --force) force=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() {
    echo "build-memtier: $*" >&2
    exit 1
}

binary="$cache/bin/memtier_benchmark"
if [ "$force" = 0 ] && [ -x "$binary" ]; then
    echo "build-memtier: already built (use --force to rebuild)" >&2
    echo "$binary"
    exit 0
fi

missing=()
for tool in autoreconf automake libtoolize pkg-config make g++; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if command -v pkg-config >/dev/null && ! pkg-config --exists libevent; then
    missing+=("libevent (pkg-config)")
fi
[ "${#missing[@]}" -eq 0 ] || die "missing: ${missing[*]}; see --help for the packages to install"

mkdir -p "$cache/bin"
build="$cache/memtier-build"
rm -rf "$build"
if [ -n "$src" ]; then
    [ -f "$src/configure.ac" ] || die "$src does not look like memtier_benchmark's source (no configure.ac)"
    echo "build-memtier: copying $src" >&2
    mkdir -p "$build"
    # Everything but the git metadata, so that the caller's tree is never written to.
    tar -C "$src" --exclude=.git -cf - . | tar -C "$build" -xf -
else
    command -v git >/dev/null || die "git not found"
    echo "build-memtier: cloning memtier_benchmark $ref" >&2
    git clone --quiet --depth 1 --branch "$ref" \
        https://github.com/RedisLabs/memtier_benchmark "$build" >&2
fi

cd "$build"
{
    autoreconf -ivf
    ./configure --disable-tls
    make -j"$(nproc)"
} >&2 || die "build failed in $build"
install -m 0755 memtier_benchmark "$binary"
"$binary" --version | head -n 1 >&2
echo "$binary"
