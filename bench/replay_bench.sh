#!/usr/bin/env bash
# replay_bench.sh — events/s of `dashi replay` with memory state and with Redis state, on the README's stream.
#
# usage: bench/replay_bench.sh [DASHI_BINARY] [RUNS] [AMBASSADORS] [CUSTOMERS]
#
# Generates the seeded stream (seed 1, 2,000 ambassadors, 20,000 customers: 60,856
# events) and replays it RUNS times (default 3) with memory state, then RUNS times
# with Redis state on a private redis-server (unix socket, no persistence, in a
# temporary directory that is removed afterwards; never a server already running).
# For each it prints the best run: the replay loop's own time as `dashi replay`
# reports it (reading and sorting the file excluded), events/s from it, and the
# whole process's CPU time (user + system, from /usr/bin/time), and for Redis the
# data-path calls (MGET/EVALSHA: one round trip each) per event. Every run's
# outputs must be byte-identical to the first memory run's (cmp), so a speed-up
# that changes an output fails here. Best of n, because the figures move with
# whatever else runs on the machine; bench/RESULTS.md says what was measured.
set -euo pipefail

dashi=${1:-build/dashi}
runs=${2:-3}
ambassadors=${3:-2000}
customers=${4:-20000}
until_t=2022-08-31T00:00:00+08:00
dir=$(mktemp -d /tmp/dashi-bench.XXXXXX)
redis_pid=

cleanup() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

"$dashi" gen --seed 1 --ambassadors "$ambassadors" --customers "$customers" --out "$dir/events.ndjson" 2>/dev/null
events=$(wc -l < "$dir/events.ndjson")

# one run: replay seconds (dashi's figure) and process CPU seconds on stdout
run_once() {
  local out=$1; shift
  /usr/bin/time -f "%U %S" -o "$dir/time.txt" "$dashi" replay --in "$dir/events.ndjson" --out "$out" \
    --until "$until_t" "$@" 2> "$dir/replay.err"
  local wall cpu
  wall=$(sed -n 's/.* outputs, \([0-9.]*\) s$/\1/p' "$dir/replay.err")
  cpu=$(awk 'END {print $1 + $2}' "$dir/time.txt")
  echo "$wall $cpu"
}

# best of $runs for one state; the outputs are compared with the reference
bench() {
  local name=$1; shift
  local best_wall=999999 best_cpu=999999 i wall cpu
  for i in $(seq "$runs"); do
    read -r wall cpu < <(run_once "$dir/out.ndjson" "$@")
    if [ ! -f "$dir/ref.ndjson" ]; then cp "$dir/out.ndjson" "$dir/ref.ndjson"; fi
    cmp -s "$dir/out.ndjson" "$dir/ref.ndjson" || { echo "$name run $i: outputs differ from the first run" >&2; exit 1; }
    best_wall=$(awk -v a="$wall" -v b="$best_wall" 'BEGIN {print (a < b) ? a : b}')
    best_cpu=$(awk -v a="$cpu" -v b="$best_cpu" 'BEGIN {print (a < b) ? a : b}')
  done
  awk -v n="$name" -v e="$events" -v w="$best_wall" -v c="$best_cpu" -v r="$runs" \
    'BEGIN {printf "%-7s %d events: replay %.2f s = %.0f events/s; process CPU %.2f s (best of %d)\n", n, e, w, e / w, c, r}'
}

bench memory

redis-server --port 0 --unixsocket "$dir/redis.sock" --save "" --appendonly no --dir "$dir" \
  --logfile "$dir/redis.log" &
redis_pid=$!
for _ in $(seq 50); do
  redis-cli -s "$dir/redis.sock" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -s "$dir/redis.sock" CONFIG RESETSTAT >/dev/null
bench redis --state "unix://$dir/redis.sock" --prefix bench:
# round trips of the data path: every read, write set and timer query is one MGET or
# EVALSHA (commands scripts run inside are not counted here)
redis-cli -s "$dir/redis.sock" INFO commandstats | tr -d '\r' |
  awk -F'[=,:]' -v e="$events" -v r="$runs" '/^cmdstat_(evalsha|mget):/ {n += $3}
    END {printf "redis   %d EVALSHA/MGET calls per replay = %.4f per event\n", n / r, n / r / e}'
echo "outputs: $(wc -l < "$dir/ref.ndjson") lines, identical in every run (memory and redis)"
