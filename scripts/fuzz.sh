#!/usr/bin/env bash
# fuzz.sh — build the libFuzzer targets of fuzz/ and run each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS]      (default 30 s per target)
#
# Builds build-fuzz/ with clang (-DDASHI_FUZZ=ON: libFuzzer, ASan, UBSan) and runs
# fuzz_codec (wire decoder), fuzz_event_json (JSON event parser),
# fuzz_event_readers (the readers without a JSON tree against jansson's), fuzz_config
# (configuration loader) and fuzz_rules (rules loader), one after the other, each
# for SECONDS, starting from the seed corpus fuzz/corpus/<target>/ (fuzz_event_readers
# shares fuzz_event_json's; read only: new inputs go to a scratch directory under
# build-fuzz/). A crash, leak or sanitizer
# report stops with a non-zero status; the input is kept as build-fuzz/crash-*
# and must become a regression test (tests/test_<module>.c) with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
case "$secs" in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
command -v clang >/dev/null || { echo "fuzz.sh: clang is needed (Debian: clang, libclang-rt-14-dev)" >&2; exit 1; }

CC=clang cmake -S . -B build-fuzz -DDASHI_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=(fuzz_codec fuzz_event_json fuzz_event_readers fuzz_config fuzz_rules)
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]}" >/dev/null

status=0
for t in "${targets[@]}"; do
    work="build-fuzz/corpus-work/$t"
    seeds="fuzz/corpus/$t"
    [ "$t" = fuzz_event_readers ] && seeds=fuzz/corpus/fuzz_event_json # the same lines, other checks
    mkdir -p "$work"
    echo "fuzz.sh: $t for ${secs}s"
    # -max_len: above every seed; -rss_limit_mb and -timeout catch blow-ups
    if ! build-fuzz/fuzz/"$t" "$work" "$seeds" -max_total_time="$secs" -max_len=65536 \
        -timeout=10 -rss_limit_mb=2048 -artifact_prefix="build-fuzz/crash-$t-" -print_final_stats=1 \
        >"build-fuzz/$t.log" 2>&1; then
        echo "fuzz.sh: $t FAILED — see build-fuzz/$t.log and build-fuzz/crash-$t-*" >&2
        tail -40 "build-fuzz/$t.log" >&2
        status=1
        continue
    fi
    # one line per target: executions, speed, coverage
    grep -E "stat::number_of_executed_units|stat::average_exec_per_sec" "build-fuzz/$t.log" | tr '\n' ' '
    grep -E "^#[0-9]+.*(cov|DONE)" "build-fuzz/$t.log" | tail -1
done
exit $status
