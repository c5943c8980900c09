#!/usr/bin/env bash
# run.sh — the benchmark of issue 8 in one go: dashi beside the limits of its parts, on one machine.
#
# usage: bench/run.sh [--ambassadors N] [--customers N] [--rate EVENTS_PER_S] [--dashi BINARY]
#                     [--seed N] [--keep DIR] [--set KEY=VALUE]...
#
# On a seeded June 2022 stream (`dashi gen`; 2,000 ambassadors and 20,000 customers
# give about 61,000 events, 20,000/200,000 about 610,000) it measures, each on fresh
# private servers (a redis-server on a unix socket without persistence, and
# `dashi devcluster`, librdkafka's mock cluster; never a server already running):
#
#   (a) `dashi replay`, memory state: events/s of the replay loop;
#   (b) `dashi replay`, Redis state: events/s;
#   (c) end to end: `dashi run` through the mock cluster and Redis
#       - saturation: the stream is published first, then `dashi run` is timed until it
#         has caught up (events/s, including the group join);
#       - latency: `dashi run` is started first, then the stream is published at
#         --rate events/s (default 10,000); publish-to-output latency p50/p99/max,
#         for SamePersonDecision (paired with its AccountRegistered by uid) and for
#         every output whose caused_by is an input event; the processor's RSS is
#         sampled every second (start, peak, end);
#   (d) Redis memory after (b): used_memory growth per account and per order;
#   (e) the limits beside it, in the same run:
#       - Redis: `redis-benchmark` of a one-SET Lua script by EVAL, pipelined 64 deep
#         and one at a time (the script-call limit);
#       - Kafka: `kcat` consuming the same input topics from the mock cluster with
#         no processing (records/s).
#
# --set passes a setting to both `dashi run`s (e.g. --set merge.wait_ms=0 to see the
# latency without the lateness bound of the merge).
#
# It prints each figure and the ratios dashi / limit. Timings move with whatever
# else runs on the machine: run it on an idle machine and write the figures down
# in bench/RESULTS.md with the command line.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

run_sets=()
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
ambassadors=2000 customers=20000 rate=10000 seed=1 keep='' dashi="$root/build/dashi"
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) rate=$2; shift 2 ;;
    -h|--help) sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) [ $# -ge 2 ] && common_opt "$1" "$2" && shift 2 && continue
       echo "bench/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in redis-server redis-cli redis-benchmark kcat python3; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: needs $tool (scripts/setup.sh --bench installs it)" >&2; exit 1; }
done
[ -x "$dashi" ] || { echo "bench/run.sh: no dashi binary at $dashi (build first)" >&2; exit 1; }

until_t=2022-08-31T00:00:00+08:00
bench_workdir dashi-bench

# replay_seconds ARGS...: the replay loop's own time as dashi replay reports it
replay_seconds() {
  "$dashi" replay --in "$work/events.ndjson" --out "$work/replay.out" --until "$until_t" "$@" 2>"$work/replay.err"
  sed -n 's/.* outputs, \([0-9.]*\) s$/\1/p' "$work/replay.err"
}

echo "== stream: dashi gen --seed $seed --ambassadors $ambassadors --customers $customers =="
"$dashi" gen --seed "$seed" --ambassadors "$ambassadors" --customers "$customers" --out "$work/events.ndjson" 2>/dev/null
events=$(wc -l <"$work/events.ndjson")
accounts=$(grep -c '"type":"AccountRegistered"' "$work/events.ndjson" || true)
orders=$(grep -c '"type":"OrderPaid"' "$work/events.ndjson" || true)
echo "$events events: $accounts registrations, $orders orders"

echo "== (a) replay, memory state =="
a_s=$(replay_seconds)
a_rate=$(per_s "$events" "$a_s")
echo "replay loop $a_s s: $a_rate events/s"

echo "== (b) replay, Redis state; (d) Redis memory =="
start_redis b
mem0=$(redis-cli -s "$work/b.sock" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
b_s=$(replay_seconds --state "unix://$work/b.sock" --prefix bench:)
b_rate=$(per_s "$events" "$b_s")
mem1=$(redis-cli -s "$work/b.sock" info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
keys=$(redis-cli -s "$work/b.sock" dbsize)
growth=$((mem1 - mem0))
echo "replay loop $b_s s: $b_rate events/s"
echo "used_memory growth $growth B, $keys keys: $(per_s "$growth" "$accounts") B per account, $(per_s "$growth" "$orders") B per order (all state counted against each)"

echo "== (e) limit: Redis script calls (redis-benchmark, EVAL of one SET) =="
script="redis.call('SET', KEYS[1], ARGV[1]) return 1"
lim_p=$(redis-benchmark -s "$work/b.sock" -n 400000 -P 64 -r 100000 --csv EVAL "$script" 1 'lim:__rand_int__' v 2>/dev/null |
  sed -n '2s/^"[^"]*","\([0-9]*\).*/\1/p')
lim_1=$(redis-benchmark -s "$work/b.sock" -n 100000 -P 1 -c 1 -r 100000 --csv EVAL "$script" 1 'lim:__rand_int__' v 2>/dev/null |
  sed -n '2s/^"[^"]*","\([0-9]*\).*/\1/p')
echo "EVAL pipelined 64 deep: $lim_p calls/s; one at a time, one client: $lim_1 calls/s"
stop_all

echo "== (c) end to end at saturation: publish everything, then dashi run until caught up =="
start_redis c
start_cluster c
boot=$(cat "$work/c.bootstrap")
"$dashi" publish --bootstrap "$boot" --in "$work/events.ndjson" 2>"$work/publish-c.err"
run_config "$work/c.json" "$work/c.sock" bench-sat
t0=$(secs)
"$dashi" run --config "$work/c.json" --bootstrap "$boot" "${run_sets[@]}" --exit-idle 2000 --clock-until "$until_t" 2>"$work/run-c.err"
t1=$(secs)
c_s=$(elapsed "$t0" "$t1")
c_rate=$(per_s "$events" "$c_s")
echo "dashi run $c_s s (group join and 2 s idle exit included): $c_rate events/s"

echo "== (e) limit: kcat consuming the same input topics, no processing =="
inputs=(registration association verification account order risk-action)
t0=$(secs)
kcat_n=$(kcat -C -b "$boot" -G "bench-kcat-$$" -o beginning -e -q -f '.\n' "${inputs[@]}" 2>/dev/null | wc -l)
t1=$(secs)
k_s=$(elapsed "$t0" "$t1")
k_rate=$(per_s "$kcat_n" "$k_s")
echo "kcat: $kcat_n records in $k_s s (group join included): $k_rate records/s"
stop_all

echo "== (c) end to end latency: dashi run first, then publish at $rate events/s =="
start_redis l
start_cluster l
boot=$(cat "$work/l.bootstrap")
run_config "$work/l.json" "$work/l.sock" bench-lat
"$dashi" run --config "$work/l.json" --bootstrap "$boot" "${run_sets[@]}" --exit-idle 8000 2>"$work/run-l.err" &
run_pid=$!
pids+=("$run_pid")
( while kill -0 "$run_pid" 2>/dev/null; do
    ps -o rss= -p "$run_pid" 2>/dev/null || true; sleep 1
  done ) >"$work/rss.txt" &
sampler=$!
sleep 6  # the group join of the mock cluster takes 3-4 s
"$dashi" publish --bootstrap "$boot" --in "$work/events.ndjson" --rate "$rate" 2>"$work/publish-l.err"
wait "$run_pid" || true
wait "$sampler" 2>/dev/null || true
"$dashi" tail --bootstrap "$boot" --meta --idle-ms 3000 >"$work/outputs.meta" 2>/dev/null
tail_args=()
for t in "${inputs[@]}"; do tail_args+=(--topic "$t"); done
"$dashi" tail --bootstrap "$boot" --meta --idle-ms 3000 "${tail_args[@]}" >"$work/inputs.meta" 2>/dev/null
stop_all
python3 - "$work/inputs.meta" "$work/outputs.meta" "$work/rss.txt" <<'PY'
import json, sys
inputs, outputs, rss = sys.argv[1:4]
by_event, by_uid = {}, {}
for line in open(inputs):
    r = json.loads(line)
    v = r["value"]
    by_event[v.get("event_id")] = r["timestamp"]
    if v.get("type") == "AccountRegistered":
        by_uid[v.get("uid")] = r["timestamp"]
sp, caused, seen_uid = [], [], set()
for line in open(outputs):
    r = json.loads(line)
    v = r["value"]
    if v.get("type") == "SamePersonDecision" and v.get("uid") not in seen_uid and v.get("uid") in by_uid:
        seen_uid.add(v["uid"])
        sp.append(r["timestamp"] - by_uid[v["uid"]])
    if v.get("caused_by") in by_event:
        caused.append(r["timestamp"] - by_event[v["caused_by"]])
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")
for name, xs in (("SamePersonDecision (first per uid)", sp), ("outputs caused by an input", caused)):
    print(f"{name}: n={len(xs)} p50={pct(xs, .5)} ms p99={pct(xs, .99)} ms max={max(xs) if xs else 'n/a'} ms")
kb = [int(x) for x in open(rss).read().split() if x.isdigit()]
if kb:
    print(f"dashi run RSS: start {kb[0]} KiB, peak {max(kb)} KiB, end {kb[-1]} KiB ({len(kb)} samples)")
PY

echo "== ratios =="
echo "replay memory:          $a_rate events/s (target 1,000,000): $(ratio "$a_rate" 1000000)"
echo "replay Redis:           $b_rate events/s (target 100,000): $(ratio "$b_rate" 100000)"
echo "end to end / Redis script-call limit (pipelined): $c_rate / $lim_p = $(ratio "$c_rate" "$lim_p") (target >= 0.5)"
echo "end to end / kcat consume limit: $c_rate / $k_rate = $(ratio "$c_rate" "$k_rate")"
echo "replay Redis / Redis script-call limit: $(ratio "$b_rate" "$lim_p")"
