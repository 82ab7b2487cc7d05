#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 25), from the committed
# seed corpus, on the nightly toolchain; fails on the first crash, hang or
# leak, leaving the input under fuzz/artifacts/TARGET/.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-25}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo +nightly fuzz build
for target in $(cargo +nightly fuzz list); do
    # Work on a copy: what a run finds is not committed as seed by accident.
    work=$(mktemp -d)
    cp -r "fuzz/corpus/$target/." "$work/"
    echo "fuzz $target for ${SECS}s" >&2
    set +e
    cargo +nightly fuzz run "$target" "$work" -- \
        -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$work.log" 2>&1
    status=$?
    set -e
    grep -E "^(stat::number_of_executed_units|stat::new_units_added|SUMMARY)|panicked" "$work.log" || true
    ((status == 0)) || tail -40 "$work.log" >&2
    rm -f "$work.log"
    rm -rf "$work"
    if ((status != 0)); then
        echo "fuzz $target failed (status $status); see fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
