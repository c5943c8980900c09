#!/usr/bin/env bash
# rss.sh — the processor's memory over a long `dashi run`: does it stay flat?
#
# usage: bench/rss.sh [--ambassadors N] [--customers N] [--seed N] [--interval S]
#                     [--rate EVENTS_PER_S] [--dashi BINARY] [--keep DIR] [--set KEY=VALUE]...
#
# Issue 8 asks for the processor's memory to be flat over a long run: no growth
# from the outbox, the de-duplication markers or the timers (those live in Redis;
# what the process holds is its merge queues, the outbox entries in flight,
# librdkafka's buffers and the allocator's). On a seeded stream (`dashi gen`;
# 20,000 ambassadors and 200,000 customers give about 610,000 events) published
# at --rate events/s (default 1,500) to a private mock cluster while `dashi run`
# on a private Redis applies it (the mock keeps at most 5 MB or 100,000 message
# sets per partition and drops the oldest beyond that, so a stream this size
# cannot be published ahead of the run), this script samples every --interval seconds (default 2)
# the process's VmRSS and the steps it has applied (dashi_step_seconds_count from
# /metrics). It writes $work/rss.csv (seconds, applied, rss_kb) and prints RSS at
# each tenth of the stream, the peak, and the growth per 100,000 events over the
# second half (where a leak shows: the first half includes warm-up, the
# librdkafka prefetch filling up and the allocator's arenas).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

run_sets=()
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
ambassadors=20000 customers=200000 seed=1 interval=2 rate=1500 keep='' dashi="$root/build/dashi"
while [ $# -gt 0 ]; do
  case "$1" in
    --interval) interval=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) [ $# -ge 2 ] && common_opt "$1" "$2" && shift 2 && continue
       echo "bench/rss.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in redis-server curl python3; do
  command -v "$tool" >/dev/null || { echo "bench/rss.sh: needs $tool" >&2; exit 1; }
done
[ -x "$dashi" ] || { echo "bench/rss.sh: no dashi binary at $dashi (build first)" >&2; exit 1; }

until_t=2022-08-31T00:00:00+08:00
bench_workdir dashi-rss

echo "== stream: dashi gen --seed $seed --ambassadors $ambassadors --customers $customers =="
"$dashi" gen --seed "$seed" --ambassadors "$ambassadors" --customers "$customers" --out "$work/events.ndjson" 2>/dev/null
events=$(wc -l <"$work/events.ndjson")
echo "$events events"

start_redis r
start_cluster k
boot=$(cat "$work/k.bootstrap")
run_config "$work/run.json" "$work/r.sock" bench-rss
echo "== dashi run, sampled every $interval s =="
"$dashi" run --config "$work/run.json" --bootstrap "$boot" --set metrics.listen=127.0.0.1:0 "${run_sets[@]}" \
  --exit-idle 10000 --clock-until "$until_t" 2>"$work/run.err" &
run=$!
port=''
for _ in $(seq 200); do
  port=$(sed -n 's/.*serving \/metrics.*(port \([0-9]*\)).*/\1/p' "$work/run.err" | head -1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "dashi run serves no /metrics" >&2; cat "$work/run.err" >&2; exit 1; }
echo "== publishing at $rate events/s =="
"$dashi" publish --bootstrap "$boot" --in "$work/events.ndjson" --rate "$rate" 2>"$work/publish.err" &
pids+=($!)
t0=$(secs)
echo "seconds,applied,rss_kb" >"$work/rss.csv"
while kill -0 "$run" 2>/dev/null; do
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$run/status" 2>/dev/null || true)
  applied=$(curl -s "http://127.0.0.1:$port/metrics" 2>/dev/null |
    awk '/^dashi_step_seconds_count/ {s += $NF} END {printf "%d", s}' || true)
  [ -n "$rss" ] && echo "$(elapsed "$t0" "$(secs)"),${applied:-0},$rss" >>"$work/rss.csv"
  sleep "$interval"
done
wait "$run" || { echo "dashi run failed" >&2; tail -5 "$work/run.err" >&2; exit 1; }
grep 'stopped:' "$work/run.err" || true

python3 - "$work/rss.csv" "$events" <<'PY'
import csv, sys
rows = [(float(r["seconds"]), int(r["applied"]), int(r["rss_kb"])) for r in csv.DictReader(open(sys.argv[1]))]
total = int(sys.argv[2])
if len(rows) < 4:
    sys.exit("too few samples")
print(" applied  RSS (MB)")
for tenth in range(1, 11):
    want = total * tenth / 10
    row = next((r for r in rows if r[1] >= want), rows[-1])
    print(f"{row[1]:>8}  {row[2] / 1024:7.1f}")
peak = max(r[2] for r in rows)
half = [r for r in rows if r[1] >= total / 2 and r[1] > 0]
print(f"peak {peak / 1024:.1f} MB over {rows[-1][0]:.0f} s, {len(rows)} samples")
if len(half) >= 2 and half[-1][1] > half[0][1]:
    growth = (half[-1][2] - half[0][2]) / 1024 / ((half[-1][1] - half[0][1]) / 100000)
    print(f"second half: {half[0][2] / 1024:.1f} -> {half[-1][2] / 1024:.1f} MB over {half[-1][1] - half[0][1]} events: "
          f"{growth:+.2f} MB per 100,000 events")
PY
echo "samples: $work/rss.csv"
