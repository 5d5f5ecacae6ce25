#!/usr/bin/env bash
# The cluster store's cost and staleness (README, "Several MX hosts"):
#
#   bench/cluster.sh [--out DIR] [--reps N] [--duration S] [--connections N] [--interval D]
#                    [--history-db PATH]
#
# 1. Throughput: one node with the cluster store on versus off, the same load client in the same
#    run, alternating (off, on) per repetition, each on a fresh database: rcptguard-load at 64
#    connections for the zipf workload (100k recipients, the hot ones repeat: best case) and
#    uniform RCPTs over 1M recipients (every request a new recipient-minute to publish: worst
#    case). Medians, the ratio, and the cluster's own counters from the node's FINAL line. With
#    --history-db (a database with history, bench/make_history.sh) each point starts on a fresh
#    copy of it instead of an empty one.
# 2. Staleness: two nodes on the same Redis, bench/cluster_staleness.py (see there).
#
# Starts its own redis-server on a unix socket in a temporary directory and every rcptguard it
# needs, on loopback ports; stops each by its PID on exit. Builds build-bench (Release) if needed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$ROOT/build-bench"
OUT=""
REPS=3
DURATION=10
CONNECTIONS=64
INTERVAL=250ms
HISTORY_DB=""
while (($#)); do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --history-db) HISTORY_DB=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "usage: bench/cluster.sh [--out DIR] [--reps N] [--duration S] [--connections N] [--interval D]" >&2; exit 2 ;;
  esac
done
command -v redis-server >/dev/null || { echo "cluster.sh: redis-server is not installed" >&2; exit 1; }
if [[ ! -x $BUILD/cli/rcptguard || ! -x $BUILD/bench/rcptguard-load ]] ||
   ! cmake --build "$BUILD" --target rcptguard rcptguard-load >/dev/null; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRCPTGUARD_BENCH=ON >/dev/null &&
    cmake --build "$BUILD" --target rcptguard rcptguard-load >/dev/null || exit 1
fi
RG="$BUILD/cli/rcptguard"
LOAD="$BUILD/bench/rcptguard-load"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rcptguard-cluster-bench.XXXXXX")
OUT=${OUT:-$TMP/out}
mkdir -p "$OUT"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$TMP/db" "$TMP"/*.db*
}
trap cleanup EXIT
: >"$TMP/empty.toml"

redis-server --port 0 --unixsocket "$TMP/redis.sock" --unixsocketperm 700 --save "" \
  --appendonly no --daemonize no --dir "$TMP" --logfile "$TMP/redis.log" &
PIDS+=($!)
for _ in $(seq 100); do [[ -S $TMP/redis.sock ]] && break; sleep 0.1; done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_node NAME PORT CLUSTER(0|1) [extra -o...]: sets NODE_PID
start_node() {
  local name=$1 port=$2 cluster=$3
  shift 3
  local args=(serve -c "$TMP/empty.toml" -o "server.listen=[\"inet:127.0.0.1:$port\"]"
              -o "store.path=$TMP/$name.db" -o "control.socket=$TMP/$name.ctl"
              -o server.unix_socket_group= -o detection.mode=enforce -o log.level=info)
  if ((cluster)); then
    args+=(-o "cluster.redis=unix:$TMP/redis.sock" -o "cluster.node=$name"
           -o "cluster.interval=$INTERVAL")
  fi
  for o in "$@"; do args+=(-o "$o"); done
  "$RG" "${args[@]}" 2>"$OUT/$name.log" &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  # The daemon listens before it restores its database (the kernel queues connections
  # meanwhile): ready is its STARTED line. Up to two minutes for a database with history.
  for _ in $(seq 2400); do
    grep -q " STARTED " "$OUT/$name.log" 2>/dev/null && return 0
    kill -0 "$NODE_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "cluster.sh: node $name did not come up; see $OUT/$name.log" >&2
  exit 1
}
stop_node() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
field() { grep -o " $2=[^ ]*" "$1" | tail -1 | cut -d= -f2; }

start_db="a fresh, empty database"
[[ -n $HISTORY_DB ]] && start_db="a fresh copy of $(basename "$HISTORY_DB") ($(du -h "$HISTORY_DB" | cut -f1))"
echo "## Cluster store: one node's throughput, on versus off"
echo
echo "rcptguard-load, $CONNECTIONS connections, $REPS x ${DURATION} s (+1 s warm-up) per point, alternating off/on, each on $start_db; enforce mode; cluster.interval $INTERVAL; Redis on a unix socket of the same machine (2 cores shared by Redis, the node and the load client)."
echo
echo "| workload | off req/s | on req/s | on/off | off p99 ms | on p99 ms | cluster rounds | round max ms | refused | dropped |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for wl in zipf uniform; do
  case $wl in
    zipf) load_args=(--zipf --recipients 100000 --clients 200) ;;
    uniform) load_args=(--uniform 1000000 --rcpt-only --clients 200) ;;
  esac
  : >"$TMP/off.rps"; : >"$TMP/on.rps"; : >"$TMP/off.p99"; : >"$TMP/on.p99"
  for ((rep = 1; rep <= REPS; rep++)); do
    for mode in off on; do
      rm -f "$TMP/node.db"*
      [[ -n $HISTORY_DB ]] && cp "$HISTORY_DB" "$TMP/node.db"
      port=$(free_port)
      start_node node "$port" "$([[ $mode == on ]] && echo 1 || echo 0)"
      "$LOAD" --target "inet:127.0.0.1:$port" --connections "$CONNECTIONS" \
        --duration "$DURATION" --warmup 1 "${load_args[@]}" >"$OUT/$wl-$mode-$rep.load" 2>&1
      stop_node "$NODE_PID"
      cp "$OUT/node.log" "$OUT/$wl-$mode-$rep.log"
      field "$OUT/$wl-$mode-$rep.load" rps >>"$TMP/$mode.rps"
      field "$OUT/$wl-$mode-$rep.load" p99_ms >>"$TMP/$mode.p99"
    done
  done
  off=$(median <"$TMP/off.rps"); on=$(median <"$TMP/on.rps")
  last="$OUT/$wl-on-$REPS.log"
  printf '| %s | %.0f | %.0f | %.2f | %s | %s | %s | %s | %s | %s |\n' "$wl" "$off" "$on" \
    "$(echo "$on / $off" | bc -l)" "$(median <"$TMP/off.p99")" "$(median <"$TMP/on.p99")" \
    "$(field "$last" cluster_rounds)" "$(field "$last" cluster_round_max_ms)" \
    "$(field "$last" cluster_refused)" "$(field "$last" cluster_dropped)"
done
echo
echo "## Cluster store: staleness of the other nodes' counts"
echo
port_a=$(free_port); port_b=$(free_port)
rm -f "$TMP"/mx*.db*
thresholds=(detection.thresholds.minute_warn_floor=100000 detection.thresholds.minute_defer_floor=200000
            detection.thresholds.ten_minutes_warn_floor=1 detection.thresholds.ten_minutes_defer_floor=100000
            detection.thresholds.hour_warn_floor=100000 detection.thresholds.hour_defer_floor=200000)
start_node mx1 "$port_a" 1 "${thresholds[@]}"
start_node mx2 "$port_b" 1 "${thresholds[@]}"
sleep 1
python3 "$ROOT/bench/cluster_staleness.py" --a "$port_a" --b "$port_b" --rounds 30 \
  >"$OUT/staleness.txt" || { cat "$OUT/staleness.txt"; exit 1; }
echo "Two nodes, cluster.interval $INTERVAL: a burst of 20 messages on mx1, then probes on mx2 every 5 ms until mx2's verdict counts all 20 (bench/cluster_staleness.py, 30 rounds):"
echo
echo "    $(tail -1 "$OUT/staleness.txt")"
echo
echo "Raw output: $OUT"
