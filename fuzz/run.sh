#!/usr/bin/env bash
# Builds and runs every fuzz target for a bounded time on the machine's stable toolchain.
#
#   fuzz/run.sh [seconds-per-target] [target...]
#
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address, -Cpasses=sancov-module…) to
# rustc; RUSTC_BOOTSTRAP=1 lets the stable compiler accept them, and the stable toolchain
# ships the address-sanitizer runtime. Builds keep cargo-fuzz's default profile: optimized,
# with debug assertions and overflow checks on, so unchecked arithmetic fails loudly.
#
# Corpora grow in fuzz/corpus/<target> (not in git); fuzz/seeds/<target> holds a few small
# hand-written inputs, read but never written. A finding is saved in fuzz/artifacts/<target>
# and makes the script exit non-zero after the other targets have run.
set -euo pipefail

seconds=${1:-60}
shift || true
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

# Longest input per target: enough for every construct, small enough to stay fast.
max_len() {
    case "$1" in
        parse_request) echo 4096 ;;
        rdb_file | restore) echo 2048 ;;
        *) echo 512 ;;
    esac
}

# Targets whose inputs are read as structure (a field per few bytes): libFuzzer's slow
# growth of the input length would keep them to a message or two for most of a short run.
extra_options() {
    case "$1" in
        cluster_bus | restore) echo -len_control=0 ;;
    esac
}

nice -n 19 cargo fuzz build 2>&1 | tail -n 1
failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    seeds=()
    [ -d "seeds/$target" ] && seeds=("seeds/$target")
    log="target/fuzz-$target.log"
    mkdir -p target
    echo "== $target: ${seconds}s"
    if nice -n 19 cargo fuzz run "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" \
        -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 $(extra_options "$target") >"$log" 2>&1; then
        :
    else
        failed+=("$target")
        grep -E "^(==[0-9]+==|thread '|SUMMARY|panicked|Test unit written)" "$log" | head -n 20 || true
    fi
    # Executions, time, coverage (edges) and features reached, corpus size.
    grep -E "^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs" "$log" || tail -n 3 "$log"
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "findings in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
