#!/usr/bin/env bash
# soak.sh — the crash loop of tests/test_faults.c, longer: SIGKILL `dashi run` N times on a bigger stream.
#
# usage: bench/soak.sh [KILLS] [--redis-restarts] [--seed N] [--ambassadors N] [--customers N]
#                      [--build DIR] [--keep]
#
# Runs the test faults/twenty_kills of tests/test_faults.c (built in DIR, default
# build/) with more kills (KILLS, default 200) on a bigger seeded stream (default
# 200 ambassadors, 4,000 customers, about 11,000 events). With --redis-restarts,
# redis-server runs with `appendonly yes` and `appendfsync always`, and is killed
# with SIGKILL and restarted from its AOF after every kill of `dashi run`. What is
# checked, at the end, against a crash-free `dashi replay` of the same events:
#   - the set of distinct output records (bytes, ids included) is replay's, nothing
#     missing, nothing extra, and no output identity carries two contents;
#   - the Redis state (every key but off:/ep:/ob:, and the queued timers) equals a
#     crash-free replay's on Redis, with as many ev: de-duplication markers;
#   - the outbox is empty; with --redis-restarts, the progress read back after each
#     Redis restart equals the progress before the crash.
# Private servers only (a redis-server in a temp dir, `dashi devcluster`), nothing
# shared. Prints each kill (mode, moment, progress), then the figures and PASS/FAIL.
set -euo pipefail

kills=200 seed=$(( $(date +%s) % 1000000 )) ambassadors=200 customers=4000 build=build keep=0 restarts=0
while [ $# -gt 0 ]; do
    case "$1" in
    --redis-restarts) restarts=1 ;;
    --seed) seed=$2; shift ;;
    --ambassadors) ambassadors=$2; shift ;;
    --customers) customers=$2; shift ;;
    --build) build=$2; shift ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    [0-9]*) kills=$1 ;;
    *) echo "soak.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/$build/test_faults"
[ -x "$bin" ] || { echo "soak.sh: $bin not found: build first (cmake --build $build)" >&2; exit 2; }

echo "soak: $kills kills of dashi run, seed $seed, gen --ambassadors $ambassadors --customers $customers," \
     "Redis restarts: $([ $restarts = 1 ] && echo 'yes (AOF, appendfsync always, SIGKILL + restart after every kill)' || echo no)"
start=$(date +%s)
set +e
vars=(DASHI_FAULT_KILLS="$kills" DASHI_FAULT_SEED="$seed" DASHI_FAULT_AMBASSADORS="$ambassadors"
      DASHI_FAULT_CUSTOMERS="$customers" DASHI_FAULT_REDIS_RESTARTS="$restarts" DASHI_SOURCE_DIR="$here")
[ "$keep" = 1 ] && vars+=(DASHI_KEEP_TMP=1)
env "${vars[@]}" "$bin" --jobs 1 --filter 'faults/twenty_kills' 2>&1
rc=$?
set -e
echo "soak: $(( $(date +%s) - start )) s; result: $([ $rc = 0 ] && echo PASS || echo "FAIL (exit $rc)")"
exit $rc
