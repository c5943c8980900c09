#!/usr/bin/env bash
# memory_per_account.sh — Redis memory per account of the same-person state (issue 3 target: < 250 B).
#
# Replays N account registrations (one phone each, every 10th also an email, 3% sharing a
# phone with an earlier account) into a private redis-server through `dashi replay --state`,
# fires the T+0 timers, and reports used_memory growth per account, total and by key
# family (MEMORY USAGE of every bucket hash; docs/STATE_LAYOUT.md describes the layout). The de-duplication markers (ev:) are per event,
# not per account: they are reported apart.
#
# usage: [DASHI=path/to/dashi] bench/memory_per_account.sh [N]   (default 100000; the issue asks for 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
dashi=${DASHI:-build/dashi}
[ -x "$dashi" ] || { echo "build first: cmake -S . -B build && cmake --build build" >&2; exit 1; }
work=$(mktemp -d /tmp/dashi-mem.XXXXXX)
trap 'redis-cli -s "$work/redis.sock" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
redis-server --port 0 --unixsocket "$work/redis.sock" --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
for _ in $(seq 50); do [ -S "$work/redis.sock" ] && break; sleep 0.1; done
cli() { redis-cli -s "$work/redis.sock" "$@"; }

python3 - "$n" >"$work/regs.ndjson" <<'PY'
import json, sys, random
n = int(sys.argv[1]); r = random.Random(1)
for i in range(n):
    phone = "138%08d" % (r.randrange(i) if i and r.random() < 0.03 else i)
    ids = [{"kind": "PHONE", "value": phone}]
    if i % 10 == 0:
        ids.append({"kind": "EMAIL", "value": "user%d@example.com" % i})
    t = 1654012800 + i * 2  # from 2022-06-01T00:00:00+08:00, one every 2 s
    print(json.dumps({"type": "AccountRegistered", "event_id": "r%d" % i,
                      "occurred_at": "%sZ" % __import__("datetime").datetime.utcfromtimestamp(t).isoformat(),
                      "uid": "u%07d" % i, "account_type": "PERSONAL", "method": "PASSWORD", "identities": ids}))
PY
before=$(cli info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
server_cpu() { cli info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {print s}'; }
cpu_before=$(server_cpu)
start=$(date +%s.%N)
"$dashi" replay --in "$work/regs.ndjson" --out /dev/null --state "unix://$work/redis.sock" --prefix d: \
  --until 2030-01-01T00:00:00+08:00 --quiet
end=$(date +%s.%N)
cpu_after=$(server_cpu)
after=$(cli info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
keys=$(cli dbsize)
echo "accounts: $n   keys: $keys   replay: $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f s", b - a}')   redis-server CPU: $(awk -v a="$cpu_before" -v b="$cpu_after" 'BEGIN {printf "%.1f s", b - a}')"
echo "used_memory growth: $((after - before)) bytes = $(( (after - before) / n )) bytes per account (all keys, markers included)"
# by key family: data keys live in bucket hashes d:h:<family><4 hex> (field = the rest of
# the key) unless large or of a plain family; MEMORY USAGE of every bucket (SAMPLES 0: exact).
cli --scan --pattern 'd:h:*' >"$work/buckets"
sed 's/^/MEMORY USAGE /; s/$/ SAMPLES 0/' "$work/buckets" | cli >"$work/usage"
sed 's/^/HLEN /' "$work/buckets" | cli >"$work/hlen"
sed 's/^/OBJECT ENCODING /' "$work/buckets" | cli >"$work/enc"
paste -d' ' "$work/buckets" "$work/usage" "$work/hlen" "$work/enc" |
  awk -v n="$n" '{f = $1; sub(/^d:h:/, "", f); f = substr(f, 1, length(f) - 4); b[f]++; u[f] += $2; e[f] += $3; if ($4 != "listpack") h[f]++}
    END { for (f in b) printf "  %-6s %6d buckets %8d keys (%.0f per bucket, %d not listpack): %5.1f B per key, %5.1f B per account\n",
          f, b[f], e[f], e[f] / b[f], h[f], u[f] / e[f], u[f] / n }'
echo "  plain keys: $(cli --scan --pattern 'd:k:*' | wc -l)"
