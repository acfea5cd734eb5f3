#!/usr/bin/env python3
"""Reads the per-run results that benches/redis-compare.sh and benches/scaling.sh write
(results.tsv, one row per load-generator run) and turns them into what a reader looks at:

  results.py table RESULTS.tsv [--summary FILE]   markdown table of medians, ratios to Redis
  results.py plot RESULTS.tsv --out DIR --x pipeline|threads
                                                  charts (PNG) of ops/s and CPU per request
  results.py memtier-json FILE                    "count ops_per_sec p50_ms p99_ms" of one
                                                  memtier_benchmark --json-out-file

`table` and `memtier-json` need only the standard library; `plot` needs matplotlib
(pip install matplotlib). The TSV columns are listed in COLUMNS; docs/benchmarks.md says what
each means.
"""

import argparse
import csv
import json
import os
import statistics
import sys
from collections import OrderedDict

COLUMNS = [
    "rep",  # repetition, 1..N
    "kind",  # "timed": throughput, CPU and latency; "strace": a separate run under strace -c
    "workload",  # "GET", "SET", ... (redis-benchmark) or "memtier 1:10" (set:get ratio)
    "pipeline",
    "server",  # unique name: redis, floor, shardis-2, redis-io4, ...
    "family",  # redis, shardis or floor: one line or colour per family in the charts
    "threads",  # shards of a Shardis, I/O threads of a Redis, 1 for the floor
    "cpus",  # the server's taskset CPU list
    "requests",  # requests the run made
    "ops_per_sec",
    "cpu_us",  # server CPU time per request, all threads (/proc/PID/task/*/schedstat)
    "user_us",  # its user part (cpu_us split as utime : stime of /proc/PID/stat), "-" if unknown
    "kernel_us",  # its kernel part
    "p50_ms",  # latency percentiles as the load generator reports them
    "p99_ms",
    "instr_per_req",  # perf stat -e instructions of the server, where the machine counts them
    "syscalls_per_req",  # strace -c -f of the server (kind "strace" only)
    "top_syscalls",  # the most frequent syscalls per request, "name=0.99,name=0.08"
]

REFERENCE = "redis"


def read_rows(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            sys.exit(f"{path}: missing columns {', '.join(missing)}")
        return list(reader)


def number(text):
    """The float in a cell, or None for an empty or "-" cell."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


class Group:
    """Every run of one server on one (workload, pipeline) point."""

    def __init__(self, row):
        self.workload = row["workload"]
        self.pipeline = int(row["pipeline"])
        self.server = row["server"]
        self.family = row["family"]
        self.threads = int(row["threads"])
        self.cpus = row["cpus"]
        self.timed = {}  # rep -> row
        self.straced = []

    def add(self, row):
        if row["kind"] == "strace":
            self.straced.append(row)
        else:
            self.timed[row["rep"]] = row

    def values(self, column):
        return [number(r[column]) for r in self.timed.values()]

    def cpu_totals(self):
        return {
            rep: number(r["cpu_us"])
            for rep, r in self.timed.items()
            if number(r["cpu_us"]) is not None
        }

    def split(self):
        """(user, kernel) µs per request: the median total CPU split in the proportion of user
        to kernel time summed over the runs (each run's split is sampled at clock ticks, too
        coarse alone in a short run), so that the two add up to the total."""
        total = median(self.cpu_totals().values())
        user = kernel = 0.0
        for r in self.timed.values():
            u, k = number(r["user_us"]), number(r["kernel_us"])
            if u is not None and k is not None:
                user, kernel = user + u, kernel + k
        if total is None or user + kernel == 0:
            return None, None
        return total * user / (user + kernel), total * kernel / (user + kernel)

    def spread(self, column):
        values = [v for v in self.values(column) if v is not None]
        return (min(values), max(values)) if values else None


def group_rows(rows):
    """Groups keyed (workload, pipeline, server), ordered by workload, then pipeline depth, then
    server, each in the order the runs first met it (redis-benchmark -t ping makes two
    workloads in one run, which would otherwise interleave)."""
    groups = {}
    order = {"workload": {}, "server": {}}
    for row in rows:
        order["workload"].setdefault(row["workload"], len(order["workload"]))
        order["server"].setdefault(row["server"], len(order["server"]))
        key = (row["workload"], int(row["pipeline"]), row["server"])
        if key not in groups:
            groups[key] = Group(row)
        groups[key].add(row)
    return OrderedDict(
        sorted(
            groups.items(),
            key=lambda item: (
                order["workload"][item[0][0]],
                item[0][1],
                order["server"][item[0][2]],
            ),
        )
    )


def paired_ratio(mine, reference):
    """Median over the repetitions of mine[rep] / reference[rep]: the runs of one repetition
    ran seconds apart, so their ratio is steadier than the ratio of the medians."""
    ratios = [
        mine[rep] / reference[rep]
        for rep in mine
        if rep in reference and mine[rep] is not None and reference[rep]
    ]
    return median(ratios)


def ops_by_rep(group):
    return {rep: number(r["ops_per_sec"]) for rep, r in group.timed.items()}


def summarize(groups):
    """One dict per group, with the medians, spreads and ratios to the reference server."""
    summary = []
    for (workload, pipeline, _), g in groups.items():
        ref = groups.get((workload, pipeline, REFERENCE))
        totals = g.cpu_totals()
        ops_ratio = cpu_ratio = None
        if ref is not None and g is not ref:
            ops_ratio = paired_ratio(ops_by_rep(g), ops_by_rep(ref))
            cpu_ratio = paired_ratio(totals, ref.cpu_totals())
        syscalls = median(number(r["syscalls_per_req"]) for r in g.straced)
        user, kernel = g.split()
        summary.append(
            {
                "workload": workload,
                "pipeline": pipeline,
                "server": g.server,
                "family": g.family,
                "threads": g.threads,
                "cpus": g.cpus,
                "runs": len(g.timed),
                "ops_per_sec": median(g.values("ops_per_sec")),
                "ops_min": (g.spread("ops_per_sec") or (None, None))[0],
                "ops_max": (g.spread("ops_per_sec") or (None, None))[1],
                "ops_vs_redis": ops_ratio,
                "user_us": user,
                "kernel_us": kernel,
                "cpu_us": median(totals.values()),
                "cpu_min": min(totals.values()) if totals else None,
                "cpu_max": max(totals.values()) if totals else None,
                "cpu_vs_redis": cpu_ratio,
                "p50_ms": median(g.values("p50_ms")),
                "p99_ms": median(g.values("p99_ms")),
                "instr_per_req": median(g.values("instr_per_req")),
                "syscalls_per_req": syscalls,
                "top_syscalls": g.straced[-1]["top_syscalls"] if g.straced else "",
            }
        )
    return summary


def fmt(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def fmt_us(value):
    """Microseconds: three decimals below 1 µs, where pipelined requests sit, else two."""
    return fmt(value, 3 if value is not None and value < 1 else 2)


def with_spread(value, low, high, digits, show):
    text = fmt(value, digits)
    if show and low is not None and high is not None and low != high:
        text += f" ({low:.{digits}f}–{high:.{digits}f})"
    return text


def table(args):
    summary = summarize(group_rows(read_rows(args.results)))
    if not summary:
        sys.exit(f"{args.results}: no runs")
    show_spread = any(s["runs"] > 1 for s in summary)
    has_instr = any(s["instr_per_req"] is not None for s in summary)
    has_syscalls = any(s["syscalls_per_req"] is not None for s in summary)
    # (title, right-aligned)
    header = [
        ("workload", False),
        ("pipeline", True),
        ("server (CPUs)", False),
        ("ops/s", True),
        ("ops ×redis", True),
        ("user µs/req", True),
        ("kernel µs/req", True),
        ("CPU µs/req", True),
        ("CPU ×redis", True),
        ("p50 ms", True),
        ("p99 ms", True),
    ]
    if has_syscalls:
        header += [("syscalls/req", True), ("most frequent", False)]
    if has_instr:
        header.append(("instr/req", True))
    print("| " + " | ".join(title for title, _ in header) + " |")
    print("|" + "|".join("---:" if right else "---" for _, right in header) + "|")
    for s in summary:
        cells = [
            s["workload"],
            str(s["pipeline"]),
            f"{s['server']} ({s['cpus']})",
            with_spread(s["ops_per_sec"], s["ops_min"], s["ops_max"], 0, show_spread),
            fmt(s["ops_vs_redis"], 2),
            fmt_us(s["user_us"]),
            fmt_us(s["kernel_us"]),
            with_spread(
                s["cpu_us"],
                s["cpu_min"],
                s["cpu_max"],
                3 if (s["cpu_us"] or 0) < 1 else 2,
                show_spread,
            ),
            fmt(s["cpu_vs_redis"], 2),
            fmt(s["p50_ms"], 3),
            fmt(s["p99_ms"], 3),
        ]
        if has_syscalls:
            cells += [fmt(s["syscalls_per_req"], 2), s["top_syscalls"] or "-"]
        if has_instr:
            cells.append(fmt(s["instr_per_req"], 0))
        print("| " + " | ".join(cells) + " |")
    if show_spread:
        print()
        print("Medians over the repetitions, (min–max) beside them; ×redis is the median of the")
        print("ratios of runs paired by repetition.")
    if args.summary:
        with open(args.summary, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(summary[0]), delimiter="\t")
            writer.writeheader()
            for s in summary:
                writer.writerow({k: ("" if v is None else v) for k, v in s.items()})


def plot(args):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("results.py plot needs matplotlib: pip install matplotlib")

    summary = summarize(group_rows(read_rows(args.results)))
    if not summary:
        sys.exit(f"{args.results}: no runs")
    os.makedirs(args.out, exist_ok=True)
    written = []
    if args.x == "pipeline":
        written += plot_by_pipeline(plt, summary, args)
    else:
        written += plot_by_threads(plt, summary, args)
    for path in written:
        print(path)


def error_bar(points, value, low, high):
    """Distances from the median to the min and max, for matplotlib's yerr."""
    below = [(p[value] - p[low]) if p[low] is not None else 0 for p in points]
    above = [(p[high] - p[value]) if p[high] is not None else 0 for p in points]
    return [below, above]


def plot_by_pipeline(plt, summary, args):
    """Throughput: grouped bars, one group per pipeline depth, one bar per server, a panel per
    workload. CPU per request: a panel per (workload, pipeline depth), since the depths differ
    by an order of magnitude, one bar per server, user time (solid) under kernel (hatched)."""
    servers = list(OrderedDict.fromkeys(s["server"] for s in summary))
    colours = {name: f"C{i}" for i, name in enumerate(servers)}
    paths = []

    workloads = OrderedDict()
    for s in summary:
        workloads.setdefault(s["workload"], []).append(s)
    fig, axes = plt.subplots(1, len(workloads), figsize=(4.2 * len(workloads), 4), squeeze=False)
    for ax, (workload, points) in zip(axes[0], workloads.items()):
        pipelines = sorted({p["pipeline"] for p in points})
        width = 0.8 / len(servers)
        for i, server in enumerate(servers):
            mine = sorted((p for p in points if p["server"] == server), key=lambda p: p["pipeline"])
            if not mine:
                continue
            offset = (i - (len(servers) - 1) / 2) * width
            xs = [pipelines.index(p["pipeline"]) + offset for p in mine]
            ax.bar(
                xs,
                [p["ops_per_sec"] or 0 for p in mine],
                width,
                color=colours[server],
                label=server,
                yerr=error_bar(mine, "ops_per_sec", "ops_min", "ops_max"),
                capsize=2,
            )
        ax.set_xticks(range(len(pipelines)))
        ax.set_xticklabels([f"P{p}" for p in pipelines])
        ax.set_xlabel("pipeline depth")
        ax.set_ylabel("ops/s")
        ax.set_title(workload)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(f"{args.title}: throughput (min–max over repetitions)")
    paths.append(save(plt, fig, args, "ops-vs-pipeline"))

    panels = OrderedDict()
    for s in summary:
        panels.setdefault((s["workload"], s["pipeline"]), []).append(s)
    fig, axes = grid(plt, len(panels))
    for ax, ((workload, pipeline), points) in zip(axes.flat, panels.items()):
        names = [p["server"] for p in points]
        user = [p["user_us"] or 0 for p in points]
        kernel = [p["kernel_us"] or 0 for p in points]
        colour = [colours[n] for n in names]
        ax.bar(names, user, color=colour)
        ax.bar(names, kernel, bottom=user, color=colour, alpha=0.45, hatch="//")
        ax.set_title(f"{workload}, pipeline {pipeline}")
        ax.set_ylabel("server CPU µs per request")
        ax.tick_params(axis="x", labelrotation=30)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{args.title}: server CPU per request, user (solid) and kernel (hatched)")
    paths.append(save(plt, fig, args, "cpu-vs-pipeline"))
    return paths


def grid(plt, panels):
    """A figure with room for `panels` panels, at most 4 a row, the unused ones hidden."""
    cols = min(panels, 4)
    rows = (panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), squeeze=False)
    for ax in axes.flat[panels:]:
        ax.set_visible(False)
    return fig, axes


def save(plt, fig, args, name):
    if args.note:
        fig.text(0.01, 0.005, args.note, fontsize="small", style="italic", va="bottom")
        fig.tight_layout(rect=(0, 0.04, 1, 1))
    else:
        fig.tight_layout()
    path = os.path.join(args.out, f"{args.prefix}{name}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_by_threads(plt, summary, args):
    """Lines: x = server threads (Shardis shards, Redis I/O threads), one line per family,
    one panel per (workload, pipeline)."""
    panels = OrderedDict()
    for s in summary:
        panels.setdefault((s["workload"], s["pipeline"]), []).append(s)
    families = list(OrderedDict.fromkeys(s["family"] for s in summary))
    paths = []
    for metric, column, label in (
        ("ops", "ops_per_sec", "ops/s"),
        ("cpu", "cpu_us", "server CPU µs per request"),
    ):
        fig, axes = grid(plt, len(panels))
        for ax, ((workload, pipeline), points) in zip(axes.flat, panels.items()):
            for i, family in enumerate(families):
                mine = sorted(
                    (p for p in points if p["family"] == family), key=lambda p: p["threads"]
                )
                if not mine:
                    continue
                xs = [p["threads"] for p in mine]
                ys = [p[column] for p in mine]
                low, high = ("ops_min", "ops_max") if metric == "ops" else ("cpu_min", "cpu_max")
                label_text = {"shardis": "shardis (shards)", "redis": "redis (I/O threads)"}
                ax.errorbar(
                    xs,
                    ys,
                    yerr=error_bar(mine, column, low, high),
                    marker="o",
                    capsize=2,
                    color=f"C{i}",
                    label=label_text.get(family, family),
                )
            ax.set_title(f"{workload}, pipeline {pipeline}")
            ax.set_xlabel("shards (Shardis) / I/O threads (Redis)")
            ax.set_ylabel(label)
            ax.set_xticks(sorted({p["threads"] for p in points}))
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize="small")
        fig.suptitle(f"{args.title}: {label} (min–max over repetitions)")
        paths.append(save(plt, fig, args, f"{metric}-vs-threads"))
    return paths


def memtier_json(args):
    """The totals of one memtier_benchmark run, from its --json-out-file."""
    with open(args.file) as f:
        totals = json.load(f)["ALL STATS"]["Totals"]
    percentiles = totals.get("Percentile Latencies", {})
    p50 = percentiles.get("p50.00")
    p99 = percentiles.get("p99.00")
    print(
        totals["Count"], totals["Ops/sec"], "-" if p50 is None else p50, "-" if p99 is None else p99
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("table", help="markdown table of medians and ratios")
    t.add_argument("results")
    t.add_argument("--summary", help="also write the medians as TSV to this file")
    t.set_defaults(run=table)
    p = sub.add_parser("plot", help="PNG charts of ops/s and CPU per request")
    p.add_argument("results")
    p.add_argument("--out", required=True, help="directory for the charts")
    p.add_argument("--x", choices=("pipeline", "threads"), default="pipeline")
    p.add_argument("--title", default="Shardis and Redis")
    p.add_argument("--prefix", default="", help="prefix of the chart file names")
    p.add_argument("--note", default="", help="a line of caveat under the charts")
    p.set_defaults(run=plot)
    m = sub.add_parser("memtier-json", help="totals of a memtier_benchmark JSON output")
    m.add_argument("file")
    m.set_defaults(run=memtier_json)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
