#!/usr/bin/env bash
# test.sh — the whole test suite: build, unit + scenario + integration tests, then the unit
# tests again under AddressSanitizer + UndefinedBehaviorSanitizer, the independent
# scenario check of ../shared/tools/run_scenarios.py (events shuffled) when it is there,
# and each libFuzzer target for a bounded 30 s (scripts/fuzz.sh).
#
# Installs what it needs first (scripts/setup.sh). Tests that need Redis start their own
# redis-server on a private unix socket; nothing here uses a server already running.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

scripts/setup.sh

echo "== build (RelWithDebInfo) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"

echo "== build (ASan + UBSan) =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDASHI_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"

echo "== independent scenario check (shared/tools/run_scenarios.py, shuffled events) =="
runner="$root/../shared/tools/run_scenarios.py"
if [ -f "$runner" ]; then
  # scenarios waiting for their issue (tests/scenarios/xfail.txt) are left out here;
  # the ctest run below asserts that they still fail
  mapfile -t pending < <(sed -e 's/#.*//' tests/scenarios/xfail.txt 2>/dev/null | awk 'NF {print $1}')
  files=()
  for f in tests/scenarios/*.json; do
    skip=0
    for p in "${pending[@]}"; do [ "$(basename "$f")" = "$p" ] && skip=1; done
    [ $skip -eq 0 ] && files+=("$f")
  done
  if [ ${#files[@]} -gt 0 ]; then
    python3 "$runner" --dashi build/dashi "${files[@]}"
  fi
else
  echo "($runner not found: skipped; the ctest scenario tests below still run every scenario)"
fi

echo "== unit and scenario tests under ASan + UBSan (integration tests run in the normal build) =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE integration

echo "== fuzzing: each libFuzzer target for 30 s (clang, ASan, UBSan) =="
scripts/fuzz.sh 30

echo "== all tests =="
ctest --test-dir build --output-on-failure -j"$jobs"
