# lib.sh — shell functions the benchmark scripts share (sourced, not run).
# shellcheck shell=bash disable=SC2154,SC2034
#
# The caller sets $work (a scratch directory), $dashi (the binary) and $root (the
# repository), and an array pids=() that stop_all kills. Servers are always private:
# a redis-server on a unix socket in $work without persistence, and `dashi
# devcluster` (librdkafka's mock cluster) with its bootstrap string in a file.

# common_opt NAME VALUE: the options run.sh and rss.sh share (each takes a value);
# false when NAME is not one of them.
common_opt() {
  case "$1" in
    --ambassadors) ambassadors=$2 ;;
    --customers) customers=$2 ;;
    --seed) seed=$2 ;;
    --dashi) dashi=$2 ;;
    --keep) keep=$2 ;;
    --set) run_sets+=(--set "$2") ;;
    *) return 1 ;;
  esac
}

# bench_workdir NAME: $work is --keep's directory, else a new /tmp/NAME.XXXXXX removed
# at exit; every server started is stopped at exit either way.
bench_workdir() {
  work=${keep:-$(mktemp -d "/tmp/$1.XXXXXX")}
  mkdir -p "$work"
  pids=()
  trap bench_cleanup EXIT INT TERM
}
bench_cleanup() {
  stop_all
  [ -n "$keep" ] || rm -rf "$work"
}

stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

secs() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.3f", a / b; else print "n/a"}'; }
per_s() { awk -v n="$1" -v s="$2" 'BEGIN {if (s > 0) printf "%.0f", n / s; else print "n/a"}'; }

# start_redis NAME: a private redis-server on $work/NAME.sock
start_redis() {
  rm -f "$work/$1.sock"
  redis-server --port 0 --unixsocket "$work/$1.sock" --unixsocketperm 700 --save "" --appendonly no \
    --dir "$work" >"$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -S "$work/$1.sock" ] && return 0; sleep 0.05; done
  echo "redis-server did not start" >&2; cat "$work/$1.log" >&2; exit 1
}

# start_cluster NAME: the mock cluster; its bootstrap string in $work/NAME.bootstrap
start_cluster() {
  rm -f "$work/$1.bootstrap"
  "$dashi" devcluster --partitions 4 --bootstrap-file "$work/$1.bootstrap" >"$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/$1.bootstrap" ] && return 0; sleep 0.05; done
  echo "mock cluster did not start" >&2; cat "$work/$1.log" >&2; exit 1
}

# run_config FILE SOCKET GROUP: a processor configuration on that Redis and group
run_config() {
  cat >"$1" <<JSON
{
  "redis.url": "unix://$2",
  "rules.file": "$root/config/rules.json",
  "hmac.key": "dev",
  "group.id": "$3",
  "idle.advance_ms": 1000
}
JSON
}
