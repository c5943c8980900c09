#!/usr/bin/env bash
# demo.sh — the main job on the embedded default: a private redis-server and librdkafka's
# mock Kafka cluster, a generated June 2022 stream published as Avro, `dashi run` until it
# has caught up, the outputs read back from Kafka, and a readable summary.
#
# Everything it starts it stops again (trap). Sizes: DEMO_AMBASSADORS, DEMO_CUSTOMERS, DEMO_SEED.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/setup.sh
echo "== build =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
dashi="$root/build/dashi"

work=$(mktemp -d /tmp/dashi-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== start a private redis-server (unix socket) and the mock Kafka cluster =="
redis-server --port 0 --unixsocket "$work/redis.sock" --unixsocketperm 700 --save "" --appendonly no \
  --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
"$dashi" devcluster --partitions 4 --bootstrap-file "$work/bootstrap" >"$work/devcluster.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  [ -S "$work/redis.sock" ] && [ -s "$work/bootstrap" ] && break
  sleep 0.1
done
[ -S "$work/redis.sock" ] || { echo "redis-server did not start:"; cat "$work/redis.log"; exit 1; }
[ -s "$work/bootstrap" ] || { echo "mock cluster did not start:"; cat "$work/devcluster.log"; exit 1; }
bootstrap=$(cat "$work/bootstrap")
echo "redis: unix://$work/redis.sock   kafka (mock): $bootstrap"

echo "== generate a June 2022 stream =="
"$dashi" gen --seed "${DEMO_SEED:-7}" --ambassadors "${DEMO_AMBASSADORS:-2000}" \
  --customers "${DEMO_CUSTOMERS:-20000}" --out "$work/events.ndjson"
events=$(wc -l <"$work/events.ndjson")

echo "== publish as Avro records (Confluent wire format) =="
"$dashi" publish --bootstrap "$bootstrap" --in "$work/events.ndjson"

cat >"$work/dashi.json" <<JSON
{
  "_comment": "demo configuration: private Redis, development HMAC key, rules from the repository",
  "redis.url": "unix://$work/redis.sock",
  "rules.file": "$root/config/rules.json",
  "hmac.key": "dev",
  "group.id": "dashi-demo",
  "idle.advance_ms": 1000
}
JSON
echo "== dashi run (until caught up; stream time then follows the clock up to 2022-08-31) =="
start=$(date +%s.%N)
"$dashi" run --config "$work/dashi.json" --bootstrap "$bootstrap" --exit-idle 4000 \
  --clock-until 2022-08-31T00:00:00+08:00
end=$(date +%s.%N)
seconds=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}')

echo "== read the output topics back =="
"$dashi" tail --bootstrap "$bootstrap" --idle-ms 4000 >"$work/outputs.ndjson"
echo
"$dashi" summary --in "$work/outputs.ndjson" --events "$events" --seconds "$seconds"
echo
echo "(run time includes joining the consumer group and 4 s of idle wait before exit)"
