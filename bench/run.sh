#!/usr/bin/env bash
# rcptguard benchmark suite: one command, one machine, one go.
#
#   bench/run.sh                 # everything: about 10 minutes on 2 cores for the original
#                                # sections, ~15 more for workloads + sustain + replay, plus
#                                # building the 10M-request history database once (see
#                                # bench/make_history.sh; reused from --history-db afterwards)
#   bench/run.sh --help          # options
#
# Builds the Release tree if needed, installs the Debian peers if absent (postfwd,
# policyd-rate-limit), starts each system on its own loopback port, drives it with
# rcptguard-load at each connection count, several repetitions, and prints a markdown table of
# medians with each system's throughput as a ratio of the reference server's (the physical limit:
# a server that answers DUNNO with no parsing). Then the busy-database latency check, the memory
# benchmark, the micro-benchmarks, the spool scanner against sha256sum over a generated 1.4 GB
# mbox (bench/make_mbox.py) and log ingestion against grep over a 1M-line Postfix log. Every
# process it starts is stopped by PID on exit; the generated mbox and log are deleted unless --keep.
# Raw output (client lines, server logs, configs) stays in the --out directory.
#
# Issue 10's sections (each in --only; all on by default):
#   workloads  daemon vs reference at each connection count for the zipf workload, uniform over
#              1M recipients with RCPT only, and the production-like mix (< 1 % flagged), every
#              daemon started on a fresh copy of a pre-filled history database (>= 10M requests,
#              bench/make_history.sh; built once into --history-db and reused)
#   sustain    a 60 s run at the highest load the client drives, on a copy of the same history:
#              store_written/store_dropped from the daemon's FINAL line, the database size before
#              and after (bytes per request), the writer's batch latency if the daemon logs it
#   replay     rcptguard ingest of a generated delivery-dense Postfix log and Sendmail log
#              (bench/make_maillog.py, >= 1M lines, three weeks) into a fresh database: lines/s
#              and bytes per delivered message
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$ROOT/build-bench"
OUT=""
REPS=3
DURATION=5
WARMUP=1
CONNECTIONS="1 8 64 256"
SYSTEMS="reference monitor enforce postfwd policyd"
RECIPIENTS=100000
CLIENTS=200
PIN="split"
BASE_PORT=19100
INSTALL=1
BUILD_STEP=1
RUN_TABLE=1
RUN_BUSY=1
RUN_MEM=1
RUN_MICRO=1
RUN_SCAN=1
RUN_INGEST=1
KEEP=0
SCAN_MESSAGES=3500      # x 300 KB attachments, base64: ~1.4 GB of mbox
INGEST_LINES=1000000
INGEST_SRC="$ROOT/../shared/corpus/logs/pixelpark-postfix-logsums/mail.log.first12000lines.log"
PEER_LIMIT=40   # messages per recipient per 600 s: rcptguard's ten_minutes_defer_floor
RUN_WORKLOADS=1
RUN_SUSTAIN=1
RUN_REPLAY=1
WORKLOADS="zipf uniform prod"
WL_SYSTEMS="reference enforce"
UNIFORM_RECIPIENTS=1000000
PROD_RECIPIENTS=1000000
FLOOD_SHARE=0.005
FLOOD_TARGETS=3
HISTORY_DB=""            # default: $BUILD/bench-history-<requests>-<mailboxes>.db
HISTORY_REQUESTS=""      # default 10000000 (issue 10: at least 10 million requests of history)
HISTORY_MAILBOXES=100000
HISTORY=1
HISTORY_REBUILD=0
HISTORY_DB_GIVEN=0
SUSTAIN_DURATION=""      # default 60
SUSTAIN_CONNECTIONS=64
SUSTAIN_WORKLOADS="uniform"
SUSTAIN_SYSTEM=enforce
REPLAY_LINES=""          # default 1000000
REPLAY_FORMATS="postfix sendmail"
REPLAY_MAILBOXES=300
QUICK=0

usage() {
  cat <<EOF
usage: bench/run.sh [options]
  --reps N            repetitions per point, medians reported (default $REPS)
  --duration S        measured seconds per repetition (default $DURATION)
  --warmup S          unmeasured seconds before each repetition (default $WARMUP)
  --connections LIST  connection counts, quoted (default "$CONNECTIONS")
  --systems LIST      any of: reference monitor enforce postfwd policyd (default all)
  --recipients N      distinct recipients, zipf(1.0) (default $RECIPIENTS)
  --pin MODE          split: server on CPU 0, client on CPU 1 (default); none: no pinning;
                      compare: measure reference and rcptguard monitor at 64 connections both
                      ways, print that, and exit
  --base-port P       first loopback port (default $BASE_PORT; uses P..P+12)
  --build-dir DIR     CMake build tree (default $BUILD)
  --out DIR           raw results (default: a new /tmp/rcptguard-bench.XXXXXX)
  --no-install        never apt-get install the peers
  --no-build          use the binaries in --build-dir as they are
  --daemon-opt K=V    one more -o setting for every rcptguard started (repeatable), e.g.
                      --daemon-opt store.writer_nice=10
  --only WHAT         table | busy | mem | micro | scan | ingest | workloads | sustain | replay
                      (repeatable; default: all nine)
  --keep              keep the generated mbox and logs (scan, ingest, replay) in --out
  --scan-messages N   messages of 300 KB in the scan benchmark's mbox (default $SCAN_MESSAGES)
  --ingest-lines N    at least this many log lines for the ingest benchmark (default $INGEST_LINES)
  --quick             --reps 1 --duration 2 --connections "8 64", and for the issue-10 sections
                      a 200,000-request history, a 10 s sustained run, 200,000-line replays:
                      a smoke test
 workloads (daemon vs reference on a pre-filled history database):
  --workloads LIST    any of: zipf uniform prod (default "$WORKLOADS")
                        zipf: --recipients zipf(1.0), RCPT + END-OF-MESSAGE (the table's load)
                        uniform: --uniform-recipients uniform, RCPT only
                        prod: uniform background over --prod-recipients plus --flood-share of
                        messages to $FLOOD_TARGETS flood targets; under 1 % of answers flagged
  --wl-systems LIST   any of: reference monitor enforce (default "$WL_SYSTEMS")
  --uniform-recipients N   (default $UNIFORM_RECIPIENTS)
  --prod-recipients N      (default $PROD_RECIPIENTS)
  --flood-share F     prod: share of messages to the flood targets (default $FLOOD_SHARE)
  --history-db PATH   pre-filled database, copied for every daemon start; built with
                      bench/make_history.sh when absent (or its .meta does not match)
                      (default BUILD/bench-history-REQUESTS-MAILBOXES.db)
  --history-requests N     requests (deliveries) of history (default 10000000)
  --history-mailboxes N    recipients user0..userN-1 of the history (default $HISTORY_MAILBOXES)
  --history-rebuild   build the history database again even if it matches
  --no-history        start the daemons on a fresh database instead (development only)
 sustain (60 s at the highest load the client drives, on a copy of the history):
  --sustain-duration S     (default 60)
  --sustain-connections N  (default $SUSTAIN_CONNECTIONS)
  --sustain-workloads LIST any of: zipf uniform prod (default "$SUSTAIN_WORKLOADS")
  --sustain-system NAME    monitor | enforce (default $SUSTAIN_SYSTEM)
 replay (rcptguard ingest of generated delivery-dense logs into a fresh database):
  --replay-lines N    at least this many lines per log (default 1000000)
  --replay-formats LIST    any of: postfix sendmail (default "$REPLAY_FORMATS")
  --replay-mailboxes N     ordinary mailboxes in the generated logs (default $REPLAY_MAILBOXES)
EOF
  exit 2
}

ONLY=""
DAEMON_OPTS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --daemon-opt) DAEMON_OPTS+=(-o "$2"); shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --systems) SYSTEMS=$2; shift 2 ;;
    --recipients) RECIPIENTS=$2; shift 2 ;;
    --pin) PIN=$2; shift 2 ;;
    --base-port) BASE_PORT=$2; shift 2 ;;
    --build-dir) BUILD=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --no-build) BUILD_STEP=0; shift ;;
    --only) ONLY="$ONLY $2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --scan-messages) SCAN_MESSAGES=$2; shift 2 ;;
    --ingest-lines) INGEST_LINES=$2; shift 2 ;;
    --quick) REPS=1; DURATION=2; CONNECTIONS="8 64"; QUICK=1; shift ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --wl-systems) WL_SYSTEMS=$2; shift 2 ;;
    --uniform-recipients) UNIFORM_RECIPIENTS=$2; shift 2 ;;
    --prod-recipients) PROD_RECIPIENTS=$2; shift 2 ;;
    --flood-share) FLOOD_SHARE=$2; shift 2 ;;
    --history-db) HISTORY_DB=$2; HISTORY_DB_GIVEN=1; shift 2 ;;
    --history-requests) HISTORY_REQUESTS=$2; shift 2 ;;
    --history-mailboxes) HISTORY_MAILBOXES=$2; shift 2 ;;
    --history-rebuild) HISTORY_REBUILD=1; shift ;;
    --no-history) HISTORY=0; shift ;;
    --sustain-duration) SUSTAIN_DURATION=$2; shift 2 ;;
    --sustain-connections) SUSTAIN_CONNECTIONS=$2; shift 2 ;;
    --sustain-workloads) SUSTAIN_WORKLOADS=$2; shift 2 ;;
    --sustain-system) SUSTAIN_SYSTEM=$2; shift 2 ;;
    --replay-lines) REPLAY_LINES=$2; shift 2 ;;
    --replay-formats) REPLAY_FORMATS=$2; shift 2 ;;
    --replay-mailboxes) REPLAY_MAILBOXES=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown option $1" >&2; usage ;;
  esac
done
if [ -n "$ONLY" ]; then
  RUN_TABLE=0; RUN_BUSY=0; RUN_MEM=0; RUN_MICRO=0; RUN_SCAN=0; RUN_INGEST=0
  RUN_WORKLOADS=0; RUN_SUSTAIN=0; RUN_REPLAY=0
  for w in $ONLY; do
    case "$w" in
      table) RUN_TABLE=1 ;; busy) RUN_BUSY=1 ;; mem) RUN_MEM=1 ;; micro) RUN_MICRO=1 ;;
      scan) RUN_SCAN=1 ;; ingest) RUN_INGEST=1 ;;
      workloads) RUN_WORKLOADS=1 ;; sustain) RUN_SUSTAIN=1 ;; replay) RUN_REPLAY=1 ;;
      *) echo "run.sh: --only takes table, busy, mem, micro, scan, ingest, workloads, sustain or replay" >&2; exit 2 ;;
    esac
  done
fi
# Defaults of the issue-10 sections; --quick shrinks those not given explicitly.
if [ "$QUICK" = 1 ]; then
  : "${HISTORY_REQUESTS:=200000}" "${SUSTAIN_DURATION:=10}" "${REPLAY_LINES:=200000}"
fi
: "${HISTORY_REQUESTS:=10000000}" "${SUSTAIN_DURATION:=60}" "${REPLAY_LINES:=1000000}"
for w in $WORKLOADS $SUSTAIN_WORKLOADS; do
  case "$w" in zipf|uniform|prod) ;; *) echo "run.sh: workloads are zipf, uniform, prod" >&2; exit 2 ;; esac
done
for s in $WL_SYSTEMS; do
  case "$s" in reference|monitor|enforce) ;; *) echo "run.sh: --wl-systems takes reference, monitor, enforce" >&2; exit 2 ;; esac
done
case "$SUSTAIN_SYSTEM" in monitor|enforce) ;; *) echo "run.sh: --sustain-system monitor|enforce" >&2; exit 2 ;; esac
for f in $REPLAY_FORMATS; do
  case "$f" in postfix|sendmail) ;; *) echo "run.sh: --replay-formats takes postfix, sendmail" >&2; exit 2 ;; esac
done
case "$PIN" in split|none|compare) ;; *) echo "run.sh: --pin split|none|compare" >&2; exit 2 ;; esac
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/rcptguard-bench.XXXXXX)
mkdir -p "$OUT"
log() { echo "[run.sh $(date -u +%H:%M:%S)] $*" >&2; }

# --- processes we start, stopped by PID on exit ------------------------------------------------
# Each server runs in its own session (setsid), so its session id is the PID we started and the
# processes it forks (postfwd2's pre-forked children) are found by that id.
STARTED=()
session_pids() { ps -o pid= -s "$1" 2>/dev/null | tr -d ' '; }
stop_server() {  # stop_server PID [TENTHS]: TERM, up to TENTHS/10 s (default 5 s), then KILL
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  local members
  members=$(session_pids "$pid")
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 "${2:-50}"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  # children the leader left behind (they were in its session when we listed them)
  for p in $members $(session_pids "$pid"); do kill -KILL "$p" 2>/dev/null; done
  wait "$pid" 2>/dev/null
  return 0
}
BIG_FILES=()   # generated inputs (the scan's mbox, the ingest log), removed on exit unless --keep
cleanup() {
  local pid
  for pid in "${STARTED[@]}"; do stop_server "$pid"; done
  [ "${#BIG_FILES[@]}" = 0 ] || rm -f "${BIG_FILES[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SERVER_CPU=""; CLIENT_CPU=""
if [ "$PIN" = split ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_CPU="taskset -c 0"; CLIENT_CPU="taskset -c 1"
fi

# --- build -----------------------------------------------------------------------------------
LOAD="$BUILD/bench/rcptguard-load"
REFSRV="$BUILD/bench/rcptguard-reference-server"
DAEMON="$BUILD/cli/rcptguard"
MEMBENCH="$BUILD/bench/rcptguard-membench"
MICRO="$BUILD/bench/rcptguard-microbench"
if [ "$BUILD_STEP" = 1 ]; then
  log "building (Release) in $BUILD"
  built=0
  for attempt in 1 2 3; do
    if cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
         >"$OUT/build.log" 2>&1 && ninja -C "$BUILD" >>"$OUT/build.log" 2>&1; then
      built=1; break
    fi
    log "build attempt $attempt failed (see $OUT/build.log); retrying in 20 s"
    sleep 20
  done
  [ "$built" = 1 ] || log "WARNING: build failed; using whatever binaries $BUILD already has"
fi
for b in "$LOAD" "$REFSRV" "$DAEMON"; do
  [ -x "$b" ] || { echo "run.sh: missing $b (build failed?)" >&2; exit 1; }
done

# --- peers from Debian ---------------------------------------------------------------------------
NOTES=()
ensure_package() {  # ensure_package PACKAGE BINARY
  command -v "$2" >/dev/null && return 0
  if [ "$INSTALL" = 1 ] && command -v apt-get >/dev/null; then
    if apt-cache show "$1" >/dev/null 2>&1; then
      log "installing $1 from Debian"
      local sudo=""
      [ "$(id -u)" = 0 ] || sudo="sudo"
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "$1" >"$OUT/apt-$1.log" 2>&1 || true
    else
      NOTES+=("$1 is not a package of this distribution; skipped")
    fi
  fi
  command -v "$2" >/dev/null
}
want() { case " $SYSTEMS " in *" $1 "*) return 0 ;; esac; return 1; }
if want postfwd && ! ensure_package postfwd postfwd2; then
  SYSTEMS=${SYSTEMS/postfwd/}; NOTES+=("postfwd not installed: skipped")
fi
if want policyd && ! ensure_package policyd-rate-limit policyd-rate-limit; then
  SYSTEMS=${SYSTEMS/policyd/}; NOTES+=("policyd-rate-limit not installed: skipped")
fi

# --- starting the systems ----------------------------------------------------------------------
wait_port() {  # wait_port PORT PID: up to 20 s for a listener
  local i
  for i in $(seq 1 200); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
SERVER_PID=""
SERVER_LOG=""
# The daemon's database starts empty, or as a copy of DAEMON_SEED_DB when that is set (the
# pre-filled history); START_TAG, when set, is added to the log file's name.
DAEMON_SEED_DB=""
START_TAG=""
copy_db() {  # copy_db FROM TO: an SQLite database with its WAL, if any
  rm -f "$2" "$2-wal" "$2-shm"
  cp "$1" "$2" || return 1
  [ ! -e "$1-wal" ] || cp "$1-wal" "$2-wal"
}
db_bytes() {  # db_bytes PATH: database plus WAL, in bytes
  local total=0 f
  for f in "$1" "$1-wal"; do [ -e "$f" ] && total=$((total + $(stat -c %s "$f"))); done
  echo "$total"
}
wait_started() {  # wait_started LOG PID TENTHS: the daemon logs STARTED once it accepts
  local i
  for i in $(seq 1 "$3"); do
    grep -q ' STARTED ' "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
start_system() {  # start_system NAME PORT [extra rcptguard -o settings...]
  local name=$1 port=$2; shift 2
  local logf="$OUT/$name.$port${START_TAG:+.$START_TAG}.log"
  SERVER_LOG=$logf
  case "$name" in
    reference)
      setsid $SERVER_CPU "$REFSRV" "$port" >"$logf" 2>&1 &
      ;;
    monitor|enforce)
      rm -f "$OUT/$name.db" "$OUT/$name.db-wal" "$OUT/$name.db-shm"
      if [ -n "$DAEMON_SEED_DB" ]; then
        copy_db "$DAEMON_SEED_DB" "$OUT/$name.db" || { log "cannot copy $DAEMON_SEED_DB"; return 1; }
      fi
      setsid $SERVER_CPU "$DAEMON" serve -o "server.listen=inet:127.0.0.1:$port" \
        -o "store.path=$OUT/$name.db" -o "detection.mode=$name" "${DAEMON_OPTS[@]}" "$@" >"$logf" 2>&1 &
      ;;
    postfwd)
      # The per-recipient rule: more than PEER_LIMIT RCPTs to one recipient in 600 s is answered
      # DEFER_IF_PERMIT, like rcptguard's ten-minute defer floor. Debian's default arguments
      # (/etc/default/postfwd) plus no DNS, log to stdout, and enough pre-forked children for
      # every connection (postfwd2 serves one connection per child).
      echo "id=R1; protocol_state==RCPT; action=rate(recipient/$PEER_LIMIT/600/DEFER_IF_PERMIT over limit)" \
        >"$OUT/postfwd.cf"
      local maxconn=0 c
      for c in $CONNECTIONS; do [ "$c" -gt "$maxconn" ] && maxconn=$c; done
      # It logs to syslog (with -L its children would write the log into the policy sockets);
      # where /dev/log is missing that costs it nothing. It forks into the background itself,
      # so its master is found through the pidfile.
      rm -f "$OUT/postfwd.pid"
      setsid $SERVER_CPU postfwd2 -f "$OUT/postfwd.cf" -i 127.0.0.1 -p "$port" \
        -u nobody -g nogroup --pidfile "$OUT/postfwd.pid" --nodns \
        --summary=600 --cache=600 --cache-rdomain-only --cache-no-size \
        --min_servers=8 --max_servers=$((maxconn + 16)) >"$logf" 2>&1 &
      ;;
    policyd)
      # policyd-rate-limit counts per SASL user, sender or client IP, never per recipient; the
      # closest is per sender (limit_by_sender; the load client sends one sender per client),
      # with the same 40-in-600-s limit. Its default SQLite backend, in a fresh file.
      rm -f "$OUT/policyd.sqlite3"
      cat >"$OUT/policyd.yaml" <<EOF
debug: False
user: "root"
group: "root"
pidfile: "$OUT/policyd.pid"
backend: 0
sqlite_config:
    database: "$OUT/policyd.sqlite3"
SOCKET: ["127.0.0.1", $port]
limits:
    - [$PEER_LIMIT, 600]
limits_by_id: {}
limit_by_sasl: False
limit_by_sender: True
limit_by_ip: False
limited_networks: []
success_action: "dunno"
fail_action: "defer_if_permit Rate limit reach, retry later"
db_error_action: "dunno"
report: False
delay_to_close: 300
EOF
      setsid $SERVER_CPU policyd-rate-limit --file "$OUT/policyd.yaml" >"$logf" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  STARTED+=("$SERVER_PID")
  if [ "$name" = postfwd ]; then
    local i
    for i in $(seq 1 100); do [ -s "$OUT/postfwd.pid" ] && break; sleep 0.1; done
    if [ -s "$OUT/postfwd.pid" ]; then
      SERVER_PID=$(tr -dc 0-9 <"$OUT/postfwd.pid")
      STARTED+=("$SERVER_PID")
    fi
  fi
  if ! wait_port "$port" "$SERVER_PID"; then
    log "$name did not start on port $port; see $logf"
    tail -5 "$logf" >&2
    stop_server "$SERVER_PID"
    return 1
  fi
  # rcptguard binds before it restores its database and accepts only after that; a large
  # history takes a while, and the measurement must not start before it does.
  case "$name" in
    monitor|enforce)
      if ! wait_started "$logf" "$SERVER_PID" 6000; then
        log "$name did not log STARTED within 600 s; see $logf"
        tail -5 "$logf" >&2
        stop_server "$SERVER_PID"
        return 1
      fi
      ;;
  esac
}

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {  # utime+stime (+ reaped children's) of every process in the session
  local total=0 p line rest
  for p in $(session_pids "$1"); do
    read -r line <"/proc/$p/stat" 2>/dev/null || continue
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    total=$((total + ${12} + ${13} + ${14} + ${15}))
  done
  echo "$total"
}
peak_rss_kb() {  # VmHWM summed over the session (pre-forked children counted each in full)
  local total=0 p v
  for p in $(session_pids "$1"); do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# One repetition: prints the client's line plus " cpu_s=..." measured over the measured part.
# The workload: LOAD_DIST (default the table's zipf) then the extra arguments, which win.
LOAD_DIST=()
run_once() {  # run_once PORT CONNECTIONS PID [extra load args]
  local port=$1 conns=$2 pid=$3; shift 3
  local f="$OUT/client.$$.$RANDOM"
  local dist=("${LOAD_DIST[@]}")
  [ "${#dist[@]}" -gt 0 ] || dist=(--recipients "$RECIPIENTS" --zipf)
  $CLIENT_CPU "$LOAD" --target "inet:127.0.0.1:$port" --connections "$conns" \
    --duration "$DURATION" --warmup "$WARMUP" "${dist[@]}" \
    --clients "$CLIENTS" "$@" >"$f" 2>&1 &
  local client=$!
  sleep "$WARMUP"
  local c0; c0=$(cpu_ticks "$pid")
  sleep "$DURATION"
  local c1; c1=$(cpu_ticks "$pid")
  # bounded: the client stops itself after warmup+duration (+1 s epoll timeout)
  local i
  for i in $(seq 1 100); do kill -0 "$client" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$client" 2>/dev/null
  wait "$client" 2>/dev/null
  local line; line=$(grep -m1 '^target=' "$f")
  [ -n "$line" ] || line="target=none rps=0 p50_ms=0 p99_ms=0 p999_ms=0 max_ms=0 errors=-1 actions="
  echo "$line cpu_s=$(awk -v t=$((c1 - c0)) -v h="$CLK_TCK" 'BEGIN {printf "%.2f", t / h}')"
  # measure's NAME (bash locals are dynamically scoped), then the client's workload line
  echo "${name:-sustain} conns=$conns $(grep -m1 '^workload=' "$f")" >>"$OUT/workload-lines.txt"
  rm -f "$f"
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

# Runs REPS repetitions; prints "rps p50 p99 p999 errors cpu actions" (medians; errors summed,
# actions summed as percentages).
measure() {  # measure NAME PORT CONNECTIONS PID [extra load args]
  local name=$1 port=$2 conns=$3 pid=$4; shift 4
  local lines="" r line
  for r in $(seq 1 "$REPS"); do
    line=$(run_once "$port" "$conns" "$pid" "$@")
    echo "$name conns=$conns rep=$r $line" >>"$OUT/raw.txt"
    lines+="$line"$'\n'
  done
  local rps p50 p99 p999 errs cpu acts
  rps=$(while read -r l; do [ -n "$l" ] && field rps "$l"; done <<<"$lines" | median)
  p50=$(while read -r l; do [ -n "$l" ] && field p50_ms "$l"; done <<<"$lines" | median)
  p99=$(while read -r l; do [ -n "$l" ] && field p99_ms "$l"; done <<<"$lines" | median)
  p999=$(while read -r l; do [ -n "$l" ] && field p999_ms "$l"; done <<<"$lines" | median)
  cpu=$(while read -r l; do [ -n "$l" ] && field cpu_s "$l"; done <<<"$lines" | median)
  errs=$(while read -r l; do [ -n "$l" ] && field errors "$l"; done <<<"$lines" |
         awk '{s+=$1} END {print s+0}')
  acts=$(while read -r l; do [ -n "$l" ] && field actions "$l"; done <<<"$lines" | tr ',' '\n' |
         awk -F: 'NF==2 {n[$1]+=$2; t+=$2} END {for (k in n) printf "%s %.1f%% ", k, 100*n[k]/t}')
  echo "$rps $p50 $p99 $p999 $errs $cpu ${acts% }"
}

declare -A REF_RPS REF_P99
TABLE="$OUT/table.md"
port_of() {
  case "$1" in reference) echo $BASE_PORT ;; monitor) echo $((BASE_PORT + 1)) ;;
    enforce) echo $((BASE_PORT + 2)) ;; postfwd) echo $((BASE_PORT + 3)) ;;
    policyd) echo $((BASE_PORT + 4)) ;; esac
}
label_of() {
  case "$1" in reference) echo "reference (DUNNO, no parsing)" ;;
    monitor) echo "rcptguard monitor + SQLite" ;; enforce) echo "rcptguard enforce + SQLite" ;;
    postfwd) echo "postfwd2 1.35 rate(recipient)" ;; policyd) echo "policyd-rate-limit (per sender)" ;;
  esac
}

machine_line() {
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# --- pinning comparison -------------------------------------------------------------------------
if [ "$PIN" = compare ]; then
  log "pinning comparison at 64 connections, $REPS x ${DURATION}s each"
  echo "| system | pinning | req/s (median) | p99 ms | req/s spread over reps |"
  echo "|---|---|---:|---:|---:|"
  for mode in split none; do
    if [ "$mode" = split ]; then SERVER_CPU="taskset -c 0"; CLIENT_CPU="taskset -c 1"
    else SERVER_CPU=""; CLIENT_CPU=""; fi
    for sys in reference monitor; do
      start_system "$sys" "$(port_of "$sys")" || continue
      pid=$SERVER_PID
      read -r rps p50 p99 p999 errs cpu acts < <(measure "$sys" "$(port_of "$sys")" 64 "$pid")
      spread=$(grep "^$sys conns=64" "$OUT/raw.txt" | tail -n "$REPS" | while read -r l; do field rps "$l"; done |
               sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {if (lo > 0) printf "%.1f%%", 100*(hi-lo)/lo}')
      echo "| $(label_of "$sys") | $mode | $rps | $p99 | $spread |"
      stop_server "$pid"
    done
  done
  exit 0
fi

# --- the table ---------------------------------------------------------------------------------
if [ "$RUN_TABLE" = 1 ]; then
  log "table: systems [$SYSTEMS], connections [$CONNECTIONS], $REPS x ${DURATION}s after ${WARMUP}s, pinning $PIN, raw output in $OUT"
  {
    echo "Machine: $(machine_line)"
    echo
    echo "Load: rcptguard-load, RCPT + END-OF-MESSAGE per message (each request counted), $RECIPIENTS recipients zipf(1.0), $CLIENTS clients; $REPS x ${DURATION} s after ${WARMUP} s warm-up per point, medians; pinning: $PIN${SERVER_CPU:+ (server on CPU 0, client on CPU 1)}."
    echo
    echo "| system | conns | req/s | × ref | p50 ms | p99 ms | p99.9 ms | errors | CPU s | peak RSS MB | actions |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  } >"$TABLE"
  for sys in $SYSTEMS; do
    port=$(port_of "$sys")
    for c in $CONNECTIONS; do
      # a fresh process (and database) per point, so every point starts from the same state
      if ! start_system "$sys" "$port"; then
        echo "| $(label_of "$sys") | $c | did not start | | | | | | | | |" >>"$TABLE"
        continue
      fi
      pid=$SERVER_PID
      log "$sys at $c connections"
      read -r rps p50 p99 p999 errs cpu acts < <(measure "$sys" "$port" "$c" "$pid")
      rss=$(peak_rss_kb "$pid")
      if [ "$sys" = reference ]; then REF_RPS[$c]=$rps; REF_P99[$c]=$p99; fi
      if [ "$errs" -lt 0 ]; then  # no repetition produced a result line (could not connect)
        echo "| $(label_of "$sys") | $c | no result: the client could not complete (see $OUT/raw.txt) | | | | | | | | |" >>"$TABLE"
        stop_server "$pid"; continue
      fi
      ratio=$(awk -v a="$rps" -v b="${REF_RPS[$c]:-0}" 'BEGIN {if (b > 0) printf "%.2f", a/b; else print "–"}')
      printf '| %s | %s | %.0f | %s | %.3f | %.3f | %.3f | %s | %.2f | %.1f | %s |\n' \
        "$(label_of "$sys")" "$c" "$rps" "$ratio" "$p50" "$p99" "$p999" "$errs" "$cpu" \
        "$(awk -v k="$rss" 'BEGIN {print k/1024}')" "$acts" >>"$TABLE"
      kill -0 "$pid" 2>/dev/null || log "$sys died during the run; see $OUT/$sys.$port.log"
      stop_server "$pid"
    done
  done
  {
    echo
    echo "CPU s: server CPU time (user+system, all its threads and processes) during the ${DURATION} s measured part, median. Peak RSS: VmHWM after the point's repetitions (each point runs a freshly started server) (summed over pre-forked children, which counts shared pages once per child)."
    for n in "${NOTES[@]}"; do echo "Note: $n"; done
  } >>"$TABLE"
  echo
  cat "$TABLE"
fi

# --- latency while the database is busy ----------------------------------------------------------
if [ "$RUN_BUSY" = 1 ]; then
  log "busy database: rcptguard monitor at 64 connections, hot fraction 0 vs 0.3"
  BUSY="$OUT/busy.md"
  {
    echo "| rcptguard monitor, 64 conns | req/s | p50 ms | p99 ms | p99.9 ms | errors | actions |"
    echo "|---|---:|---:|---:|---:|---:|---|"
  } >"$BUSY"
  for hot in 0 0.3; do
    port=$((BASE_PORT + 5))
    start_system monitor "$port" || continue
    pid=$SERVER_PID
    read -r rps p50 p99 p999 errs cpu acts < <(measure "busy-hot$hot" "$port" 64 "$pid" --hot-fraction "$hot")
    stop_server "$pid"
    what="zipf only"; [ "$hot" = 0 ] || what="zipf + $hot of messages to one recipient (a verdict record each)"
    printf '| %s | %.0f | %.3f | %.3f | %.3f | %s | %s |\n' "$what" "$rps" "$p50" "$p99" "$p999" "$errs" "$acts" >>"$BUSY"
    grep -iE 'store|writer|flush|dropp' "$OUT/monitor.$port.log" | tail -3 >"$OUT/busy-hot$hot.store.log"
  done
  echo
  cat "$BUSY"
fi

# --- the pre-filled history database (issue 10: >= 10 million requests of history) ----------------
# Built once through the product (bench/make_history.sh: a generated delivery-dense Postfix log
# replayed with rcptguard ingest) and reused while its .meta matches; every daemon start gets a
# fresh copy, so every point starts from the same history.
HISTORY_READY=""
prepare_history() {
  [ "$HISTORY" = 1 ] || { HISTORY_READY="none"; return 0; }
  [ "$HISTORY_READY" != failed ] || return 1
  [ -z "$HISTORY_READY" ] || return 0
  [ -n "$HISTORY_DB" ] || HISTORY_DB="$BUILD/bench-history-$HISTORY_REQUESTS-$HISTORY_MAILBOXES.db"
  local meta="$HISTORY_DB.meta"
  # A database named with --history-db is used as it is (never rebuilt unless asked); the default
  # path, named after its size, is rebuilt when its .meta does not match.
  if [ "$HISTORY_REBUILD" = 0 ] && [ -s "$HISTORY_DB" ] &&
     { [ "$HISTORY_DB_GIVEN" = 1 ] ||
       { [ -s "$meta" ] && grep -qx "requests=$HISTORY_REQUESTS" "$meta" &&
         grep -qx "mailboxes=$HISTORY_MAILBOXES" "$meta"; }; }; then
    [ -s "$meta" ] || log "history: $HISTORY_DB has no .meta (not made by bench/make_history.sh?); using it as it is"
    log "history: reusing $HISTORY_DB ($(sed -n 's/^built=//p' "$meta" 2>/dev/null), $(db_bytes "$HISTORY_DB") bytes)"
    local built_with; built_with=$(sed -n 's/^rcptguard_mtime=//p' "$meta" 2>/dev/null)
    if [ -n "$built_with" ] && [ "$(stat -c %Y "$DAEMON")" -gt "$built_with" ]; then
      log "history: NOTE $DAEMON is newer than the binary that built it; the daemon migrates each copy. --history-rebuild regenerates it"
    fi
  else
    log "history: building $HISTORY_DB: $HISTORY_REQUESTS requests over $HISTORY_MAILBOXES mailboxes (bench/make_history.sh; this replays ~$((HISTORY_REQUESTS * 37 / 10)) log lines)"
    local t0; t0=$(date +%s)
    if ! FORCE=1 BUILD="$BUILD" MAILBOXES="$HISTORY_MAILBOXES" \
         bash "$ROOT/bench/make_history.sh" "$HISTORY_DB" "$HISTORY_REQUESTS" >"$OUT/make_history.txt" 2>&1; then
      log "history: make_history.sh failed; see $OUT/make_history.txt"
      tail -5 "$OUT/make_history.txt" >&2
      HISTORY_READY=failed
      return 1
    fi
    log "history: built in $(( $(date +%s) - t0 )) s: $(tail -1 "$OUT/make_history.txt")"
  fi
  HISTORY_READY="$HISTORY_DB"
}
history_line() {
  if [ "$HISTORY_READY" = none ] || [ -z "$HISTORY_READY" ]; then
    echo "a fresh, empty database (--no-history)"
  else
    local m="$HISTORY_READY.meta"
    [ -s "$m" ] || { echo "a fresh copy of $HISTORY_READY ($(db_bytes "$HISTORY_READY") bytes; no .meta)"; return; }
    echo "a fresh copy of $HISTORY_READY ($(db_bytes "$HISTORY_READY") bytes; $(sed -n 's/^deliveries=//p' "$m") requests (deliveries) of history over $(sed -n 's/^mailboxes=//p' "$m") recipients, $(sed -n 's/^days=//p' "$m") days up to $(sed -n 's/^built=//p' "$m"), built by bench/make_history.sh)"
  fi
}
# workload_args NAME: the load client's arguments for a workload
workload_args() {
  case "$1" in
    zipf) echo "--recipients $RECIPIENTS --zipf" ;;
    uniform) echo "--uniform $UNIFORM_RECIPIENTS --rcpt-only" ;;
    prod) echo "--mix prod --recipients $PROD_RECIPIENTS --flood-share $FLOOD_SHARE --flood-targets $FLOOD_TARGETS" ;;
  esac
}
workload_label() {
  case "$1" in
    zipf) echo "zipf(1.0) over $RECIPIENTS, RCPT+EOM" ;;
    uniform) echo "uniform over $UNIFORM_RECIPIENTS, RCPT only" ;;
    prod) echo "prod mix over $PROD_RECIPIENTS + $FLOOD_TARGETS flood targets ($FLOOD_SHARE of messages), RCPT+EOM" ;;
  esac
}
final_field() {  # final_field LOG NAME: NAME=value from the daemon's FINAL line, or "n/a"
  local v
  v=$(grep ' FINAL ' "$1" 2>/dev/null | tail -1 | grep -o "[ :]$2=[^ ]*" | head -1 | cut -d= -f2)
  echo "${v:-n/a}"
}
# The writer's batch latency, if this build logs it: any batch/flush/latency field of the
# FINAL, SUMMARY and STORE lines (e.g. store_batch_ms=, writer_flush_p99_ms=): the last value of
# each name, and the largest when the lines disagree.
writer_latency() {  # writer_latency LOG
  local found
  found=$(grep -E ' (FINAL|SUMMARY) |STORE' "$1" 2>/dev/null |
          grep -oE '[a-z_0-9]*(batch|flush|latency)[a-z_0-9]*=[^ ,]+' |
          awk -F= '{v[$1]=$2; if (!($1 in o)) {o[$1]=++n; k[n]=$1; m[$1]=$2+0}; if ($2+0 > m[$1]) m[$1]=$2+0}
                   END {for (i=1;i<=n;i++) {printf "%s%s=%s", (i>1?" ":""), k[i], v[k[i]];
                                            if (m[k[i]] != v[k[i]]+0) printf " (max %s)", m[k[i]]}}')
  echo "${found:-n/a (not logged by this build)}"
}

# --- workloads: daemon vs reference on the pre-filled history --------------------------------------
if [ "$RUN_WORKLOADS" = 1 ]; then
  WLMD="$OUT/workloads.md"
  if ! prepare_history; then
    echo "workloads: no history database; skipped" >"$WLMD"
  else
    if [ "$HISTORY_READY" = none ]; then DAEMON_SEED_DB=""; else DAEMON_SEED_DB="$HISTORY_READY"; fi
    log "workloads: [$WORKLOADS] x [$WL_SYSTEMS] x connections [$CONNECTIONS], $REPS x ${DURATION}s after ${WARMUP}s"
    {
      echo "Machine: $(machine_line)"
      echo
      echo "Every daemon point starts on $(history_line). $REPS x ${DURATION} s after ${WARMUP} s warm-up per point, medians; $CLIENTS clients; pinning: $PIN${SERVER_CPU:+ (server on CPU 0, client on CPU 1)}. store_written/store_dropped: the daemon's FINAL line after the point (warm-up included)."
      echo
      echo "| workload | system | conns | req/s | × ref | p50 ms | p99 ms | p99 × ref | p99.9 ms | errors | CPU s | peak RSS MB | store_written | store_dropped | actions |"
      echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    } >"$WLMD"
    declare -A WREF_RPS WREF_P99
    for wl in $WORKLOADS; do
      read -r -a LOAD_DIST <<<"$(workload_args "$wl")"
      for sys in $WL_SYSTEMS; do
        port=$(( $(port_of "$sys") + 10 ))
        for c in $CONNECTIONS; do
          START_TAG="$wl.c$c"
          if ! start_system "$sys" "$port"; then
            echo "| $wl | $(label_of "$sys") | $c | did not start | | | | | | | | | | | |" >>"$WLMD"
            continue
          fi
          pid=$SERVER_PID; slog=$SERVER_LOG
          log "workloads: $wl, $sys at $c connections"
          read -r rps p50 p99 p999 errs cpu acts < <(measure "$wl:$sys" "$port" "$c" "$pid")
          rss=$(peak_rss_kb "$pid")
          stop_server "$pid" 600   # up to 60 s: the writer flushes, then the FINAL line
          if [ "$sys" = reference ]; then WREF_RPS[$wl:$c]=$rps; WREF_P99[$wl:$c]=$p99; written="–"; dropped="–"
          else written=$(final_field "$slog" store_written); dropped=$(final_field "$slog" store_dropped); fi
          rm -f "$OUT/$sys.db" "$OUT/$sys.db-wal" "$OUT/$sys.db-shm"
          if [ "$errs" -lt 0 ]; then
            echo "| $wl | $(label_of "$sys") | $c | no result (see $OUT/raw.txt) | | | | | | | | | | | |" >>"$WLMD"
            continue
          fi
          ratio=$(awk -v a="$rps" -v b="${WREF_RPS[$wl:$c]:-0}" 'BEGIN {if (b > 0) printf "%.2f", a/b; else print "–"}')
          pratio=$(awk -v a="$p99" -v b="${WREF_P99[$wl:$c]:-0}" 'BEGIN {if (b > 0) printf "%.2f", a/b; else print "–"}')
          printf '| %s | %s | %s | %.0f | %s | %.3f | %.3f | %s | %.3f | %s | %.2f | %.1f | %s | %s | %s |\n' \
            "$wl" "$(label_of "$sys")" "$c" "$rps" "$ratio" "$p50" "$p99" "$pratio" "$p999" "$errs" "$cpu" \
            "$(awk -v k="$rss" 'BEGIN {print k/1024}')" "$written" "$dropped" "$acts" >>"$WLMD"
        done
      done
    done
    START_TAG=""; DAEMON_SEED_DB=""; LOAD_DIST=()
    {
      echo
      for wl in $WORKLOADS; do echo "- $wl: $(workload_label "$wl"): rcptguard-load $(workload_args "$wl")"; done
      echo
      echo "× ref: against the reference server at the same workload and connection count (targets: ≥ 0.8 × req/s at 64 and 256 connections, p99 ≤ 2 × the reference's, store_dropped = 0). Per-repetition workload lines (action shares, flagged_pct) are in $OUT/workload-lines.txt."
    } >>"$WLMD"
  fi
  echo
  cat "$WLMD"
fi

# --- sustained: 60 s at the highest load the client drives ---------------------------------------
if [ "$RUN_SUSTAIN" = 1 ]; then
  SUMD="$OUT/sustain.md"
  if ! prepare_history; then
    echo "sustain: no history database; skipped" >"$SUMD"
  else
    if [ "$HISTORY_READY" = none ]; then DAEMON_SEED_DB=""; else DAEMON_SEED_DB="$HISTORY_READY"; fi
    {
      echo "Machine: $(machine_line)"
      echo
      echo "rcptguard $SUSTAIN_SYSTEM on $(history_line), -o log.summary_interval=10s; rcptguard-load for ${SUSTAIN_DURATION} s (no warm-up) at $SUSTAIN_CONNECTIONS connections, $CLIENTS clients; pinning: $PIN. Counters from the daemon's FINAL line; database = main file + WAL, once the daemon has started (after any migration) before the first request, and after it stopped; bytes/request = growth / the daemon's requests."
      echo
      echo "| workload | conns | s | req/s | p50 ms | p99 ms | p99.9 ms | errors | daemon requests | store_written | store_dropped | store_failures | max store_queue | writer batch latency | DB bytes before | DB bytes after | growth | bytes/request | CPU s | peak RSS MB |"
      echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
    } >"$SUMD"
    for wl in $SUSTAIN_WORKLOADS; do
      port=$((BASE_PORT + 6))
      START_TAG="sustain.$wl"
      read -r -a LOAD_DIST <<<"$(workload_args "$wl")"
      log "sustain: $wl, $SUSTAIN_SYSTEM at $SUSTAIN_CONNECTIONS connections for ${SUSTAIN_DURATION} s"
      rm -f "$OUT/$SUSTAIN_SYSTEM.db" "$OUT/$SUSTAIN_SYSTEM.db-wal" "$OUT/$SUSTAIN_SYSTEM.db-shm"
      if ! start_system "$SUSTAIN_SYSTEM" "$port" -o log.summary_interval=10s; then
        echo "| $wl | $SUSTAIN_CONNECTIONS | did not start | | | | | | | | | | | | | | | | | |" >>"$SUMD"
        continue
      fi
      pid=$SERVER_PID; slog=$SERVER_LOG
      # Size once the daemon has opened (and, if needed, migrated) the copy, before any request.
      before=$(db_bytes "$OUT/$SUSTAIN_SYSTEM.db")
      line=$(DURATION=$SUSTAIN_DURATION WARMUP=0 run_once "$port" "$SUSTAIN_CONNECTIONS" "$pid")
      echo "sustain:$wl conns=$SUSTAIN_CONNECTIONS $line" >>"$OUT/raw.txt"
      rss=$(peak_rss_kb "$pid")
      stop_server "$pid" 1200   # up to 120 s for the writer to finish
      after=$(db_bytes "$OUT/$SUSTAIN_SYSTEM.db")
      reqs=$(final_field "$slog" requests)
      maxq=$(grep -E ' (SUMMARY|FINAL) ' "$slog" | grep -o 'store_queue=[0-9]*' | cut -d= -f2 | sort -n | tail -1)
      grep -q ' FINAL ' "$slog" || log "sustain: no FINAL line (the daemon was killed?); see $slog"
      printf '| %s | %s | %s | %.0f | %.3f | %.3f | %.3f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f |\n' \
        "$wl" "$SUSTAIN_CONNECTIONS" "$SUSTAIN_DURATION" "$(field rps "$line")" "$(field p50_ms "$line")" \
        "$(field p99_ms "$line")" "$(field p999_ms "$line")" "$(field errors "$line")" "$reqs" \
        "$(final_field "$slog" store_written)" "$(final_field "$slog" store_dropped)" \
        "$(final_field "$slog" store_failures)" "${maxq:-n/a}" "$(writer_latency "$slog")" \
        "$before" "$after" "$((after - before))" \
        "$(awk -v g="$((after - before))" -v r="$reqs" 'BEGIN {if (r + 0 > 0) printf "%.1f", g / r; else print "n/a"}')" \
        "$(field cpu_s "$line")" "$(awk -v k="$rss" 'BEGIN {print k/1024}')" >>"$SUMD"
      { echo "sustain $wl: $line"; grep -E ' (STORE|SUMMARY|FINAL) ' "$slog"; } >>"$OUT/sustain-details.txt"
      rm -f "$OUT/$SUSTAIN_SYSTEM.db" "$OUT/$SUSTAIN_SYSTEM.db-wal" "$OUT/$SUSTAIN_SYSTEM.db-shm"
    done
    START_TAG=""; DAEMON_SEED_DB=""; LOAD_DIST=()
    {
      echo
      for wl in $SUSTAIN_WORKLOADS; do echo "- $wl: $(workload_label "$wl"): rcptguard-load $(workload_args "$wl")"; done
      echo "- actions: $(grep '^sustain:' "$OUT/raw.txt" | sed -n 's/^sustain:\([a-z]*\) .* actions=\([^ ]*\).*/\1: \2/p' | tr '\n' ' ')"
      echo "- the daemon's STORE, SUMMARY and FINAL lines: $OUT/sustain-details.txt"
    } >>"$SUMD"
  fi
  echo
  cat "$SUMD"
fi

# --- memory --------------------------------------------------------------------------------------
if [ "$RUN_MEM" = 1 ] && [ -x "$MEMBENCH" ]; then
  log "memory: 2M distinct recipients against the 1M default cap"
  echo
  $SERVER_CPU "$MEMBENCH" --recipients 2000000 --cap 1000000 --checkpoints 8 | tee "$OUT/membench.txt"
fi

# --- micro-benchmarks ----------------------------------------------------------------------------
if [ "$RUN_MICRO" = 1 ]; then
  if [ -x "$MICRO" ]; then
    log "micro-benchmarks"
    echo
    $SERVER_CPU "$MICRO" --benchmark_min_time=0.5 --benchmark_repetitions=3 \
      --benchmark_report_aggregates_only=true 2>&1 | tee "$OUT/microbench.txt"
  else
    echo "rcptguard-microbench not built (Google Benchmark missing: apt-get install libbenchmark-dev)"
  fi
fi
# --- spool scanner and log ingestion: single-threaded file readers against the OS tools -------------
now_s() { date +%s.%N; }
timev() {  # timev OUTFILE COMMAND...: /usr/bin/time -v into OUTFILE when available
  local out=$1; shift
  if [ -x /usr/bin/time ]; then /usr/bin/time -v -o "$out" "$@"; else : >"$out"; "$@"; fi
}
max_rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$1"; }
json_num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$2" | awk '{s+=$1} END {print s+0}'; }
rate() { awk -v n="$1" -v t="$2" -v d="${3:-1}" 'BEGIN {if (t > 0) printf "%.1f", n/d/t; else print 0}'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b-a}'; }

if [ "$RUN_SCAN" = 1 ]; then
  SPOOL="$OUT/spool"; MBOX="$SPOOL/bench"; SDB="$OUT/scan.db"
  rm -rf "$SPOOL"; rm -f "$SDB" "$SDB-wal" "$SDB-shm"; mkdir -p "$SPOOL"
  [ "$KEEP" = 1 ] || BIG_FILES+=("$MBOX")
  log "scan: generating $SCAN_MESSAGES messages with 300 KB attachments in $MBOX"
  python3 "$ROOT/bench/make_mbox.py" "$MBOX" --messages "$SCAN_MESSAGES" --attachment-kb 300 \
    >"$OUT/make_mbox.txt" 2>&1 || { cat "$OUT/make_mbox.txt" >&2; exit 1; }
  size=$(stat -c %s "$MBOX")
  cat "$MBOX" >/dev/null   # warm the page cache: both commands read from memory
  log "scan: sha256sum over $((size / 1048576)) MiB"
  t0=$(now_s); $SERVER_CPU sha256sum "$MBOX" >"$OUT/sha256sum.txt"; t1=$(now_s)
  SCAN=( "$DAEMON" scan --root "$SPOOL" --domain example.test -o spool.check_owner=false
         -o spool.max_time_per_file=10m -o "store.path=$SDB" --format json )
  log "scan: rcptguard scan, first (full) scan into a fresh $SDB"
  t2=$(now_s); timev "$OUT/scan1.time" $SERVER_CPU "${SCAN[@]}" >"$OUT/scan1.json" 2>"$OUT/scan1.err"
  rc1=$?; t3=$(now_s)
  python3 "$ROOT/bench/make_mbox.py" "$MBOX" --append-bytes 1048576 >>"$OUT/make_mbox.txt" 2>&1
  appended=$(( $(stat -c %s "$MBOX") - size ))
  log "scan: rescan after appending $appended bytes"
  t4=$(now_s); timev "$OUT/scan2.time" $SERVER_CPU "${SCAN[@]}" >"$OUT/scan2.json" 2>"$OUT/scan2.err"
  rc2=$?; t5=$(now_s)
  sha_s=$(secs "$t0" "$t1"); scan_s=$(secs "$t2" "$t3"); rescan_s=$(secs "$t4" "$t5")
  sha_mibs=$(rate "$size" "$sha_s" 1048576); scan_mibs=$(rate "$size" "$scan_s" 1048576)
  SCANMD="$OUT/scan.md"
  {
    echo "Machine: $(machine_line)"
    echo
    echo "mbox: $size bytes ($((size / 1048576)) MiB), $(sed -n 1p "$OUT/make_mbox.txt" | sed 's/^make_mbox: //'), page cache warm; pinning: ${SERVER_CPU:-none}."
    echo
    echo "| run | seconds | MiB/s | × sha256sum | bytes read | messages | attachments | peak RSS MB | exit |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '| sha256sum | %s | %s | 1.00 | %s | | | | 0 |\n' "$sha_s" "$sha_mibs" "$size"
    printf '| rcptguard scan, fresh database | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$scan_s" "$scan_mibs" \
      "$(awk -v a="$scan_mibs" -v b="$sha_mibs" 'BEGIN {if (b > 0) printf "%.2f", a/b}')" \
      "$(json_num bytes_read "$OUT/scan1.json")" "$(json_num messages "$OUT/scan1.json")" \
      "$(json_num attachments "$OUT/scan1.json")" "$(max_rss_mb "$OUT/scan1.time")" "$rc1"
    printf '| rcptguard rescan after appending %s bytes | %s | | | %s | %s | %s | %s | %s |\n' "$appended" "$rescan_s" \
      "$(json_num bytes_read "$OUT/scan2.json")" "$(json_num messages "$OUT/scan2.json")" \
      "$(json_num attachments "$OUT/scan2.json")" "$(max_rss_mb "$OUT/scan2.time")" "$rc2"
    grep -q '"time_budget_hit":true' "$OUT/scan1.json" "$OUT/scan2.json" &&
      echo "Note: a scan hit spool.max_time_per_file; see $OUT/scan*.json"
    echo
    echo "Repeats found by the first scan: $(grep -o '"repeats":\[[^]]*\]' "$OUT/scan1.json" | head -c 400)"
  } >"$SCANMD"
  echo
  cat "$SCANMD"
  [ "$KEEP" = 1 ] || rm -f "$MBOX"
fi

if [ "$RUN_INGEST" = 1 ]; then
  if [ ! -r "$INGEST_SRC" ]; then
    log "ingest: $INGEST_SRC not found; skipped"
  else
    LOGF="$OUT/postfix-big.log"
    [ "$KEEP" = 1 ] || BIG_FILES+=("$LOGF")
    src_lines=$(wc -l <"$INGEST_SRC")
    copies=$(( (INGEST_LINES + src_lines - 1) / src_lines ))
    log "ingest: $copies copies of $(basename "$INGEST_SRC") into $LOGF"
    for i in $(seq 1 "$copies"); do cat "$INGEST_SRC"; done >"$LOGF"
    lines=$(wc -l <"$LOGF"); lsize=$(stat -c %s "$LOGF")
    cat "$LOGF" >/dev/null
    t0=$(now_s); timev "$OUT/grep.time" $SERVER_CPU grep -c status=sent "$LOGF" >"$OUT/grep.txt"; t1=$(now_s)
    rm -f "$OUT/ingest.db" "$OUT/ingest.db-wal" "$OUT/ingest.db-shm"
    log "ingest: rcptguard ingest of $lines lines into a fresh $OUT/ingest.db"
    t2=$(now_s)
    timev "$OUT/ingest.time" $SERVER_CPU "$DAEMON" ingest -c /dev/null -o "store.path=$OUT/ingest.db" "$LOGF" \
      >"$OUT/ingest.out" 2>&1
    rc=$?; t3=$(now_s)
    grep_s=$(secs "$t0" "$t1"); ing_s=$(secs "$t2" "$t3")
    grep_lps=$(rate "$lines" "$grep_s"); ing_lps=$(rate "$lines" "$ing_s")
    INGMD="$OUT/ingest.md"
    {
      echo "Machine: $(machine_line)"
      echo
      echo "Log: $copies copies of $(basename "$INGEST_SRC"): $lines lines, $lsize bytes, page cache warm; pinning: ${SERVER_CPU:-none}."
      echo
      echo "| run | seconds | lines/s | × grep | MiB/s | peak RSS MB | exit |"
      echo "|---|---:|---:|---:|---:|---:|---:|"
      printf '| grep -c status=sent (%s matches) | %s | %.0f | 1.00 | %s | %s | 0 |\n' "$(cat "$OUT/grep.txt")" \
        "$grep_s" "$grep_lps" "$(rate "$lsize" "$grep_s" 1048576)" "$(max_rss_mb "$OUT/grep.time")"
      printf '| rcptguard ingest, fresh database | %s | %.0f | %s | %s | %s | %s |\n' "$ing_s" "$ing_lps" \
        "$(awk -v a="$ing_lps" -v b="$grep_lps" 'BEGIN {if (b > 0) printf "%.2f", a/b}')" \
        "$(rate "$lsize" "$ing_s" 1048576)" "$(max_rss_mb "$OUT/ingest.time")" "$rc"
      echo
      echo "rcptguard ingest's own summary:"
      echo '```'
      head -8 "$OUT/ingest.out"
      echo '```'
    } >"$INGMD"
    echo
    cat "$INGMD"
    [ "$KEEP" = 1 ] || rm -f "$LOGF"
  fi
fi

# --- replay: delivery-dense generated logs, end to end into a fresh database ----------------------
if [ "$RUN_REPLAY" = 1 ]; then
  REPMD="$OUT/replay.md"
  {
    echo "Machine: $(machine_line)"
    echo
    echo "Logs from bench/make_maillog.py (three weeks up to now, $REPLAY_MAILBOXES mailboxes + list@, tickets@, archive@, floods; every message with its full set of lines), at least $REPLAY_LINES lines each, page cache warm; \`rcptguard ingest -c /dev/null -o store.path=FRESH.db LOG\` under /usr/bin/time -v, pinned: ${SERVER_CPU:-none}. Bytes per delivered message = database (+ WAL) after the run / deliveries counted."
    echo
    echo "| log | lines | messages | deliveries counted | malformed | seconds | lines/s | ingest's own lines/s | deliveries/s | DB bytes | bytes/delivered message | verdicts | peak RSS MB | exit | generated in s |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  } >"$REPMD"
  for fmt in $REPLAY_FORMATS; do
    RLOG="$OUT/replay-$fmt.log"; RDB="$OUT/replay-$fmt.db"
    [ "$KEEP" = 1 ] || BIG_FILES+=("$RLOG")
    log "replay: generating a $fmt log of $REPLAY_LINES lines"
    g0=$(now_s)
    if ! python3 "$ROOT/bench/make_maillog.py" "$RLOG" --format "$fmt" --lines "$REPLAY_LINES" \
         --mailboxes "$REPLAY_MAILBOXES" >"$OUT/make_maillog-$fmt.txt" 2>&1; then
      cat "$OUT/make_maillog-$fmt.txt" >&2
      echo "| $fmt | generator failed | | | | | | | | | | | | | |" >>"$REPMD"
      continue
    fi
    g1=$(now_s)
    lines=$(wc -l <"$RLOG")
    cat "$RLOG" >/dev/null
    rm -f "$RDB" "$RDB-wal" "$RDB-shm"
    log "replay: rcptguard ingest of $lines $fmt lines into a fresh $RDB"
    t0=$(now_s)
    timev "$OUT/replay-$fmt.time" $SERVER_CPU "$DAEMON" ingest -c /dev/null -o "store.path=$RDB" "$RLOG" \
      >"$OUT/replay-$fmt.out" 2>&1
    rc=$?; t1=$(now_s)
    secs_=$(secs "$t0" "$t1")
    sumf="$OUT/replay-$fmt.out"
    own=$(sed -n 's/^rcptguard ingest: .*(\([0-9]*\) lines\/s).*/\1/p' "$sumf")
    msgs=$(sed -n 's/.* messages \([0-9]*\) (completed.*/\1/p' "$sumf")
    dels=$(sed -n 's/.*deliveries counted \([0-9]*\).*/\1/p' "$sumf")
    malf=$(sed -n 's/.* malformed \([0-9]*\)).*/\1/p' "$sumf")
    verd=$(sed -n 's/.*verdicts \([0-9]*\),.*/\1/p' "$sumf")
    dbb=$(db_bytes "$RDB")
    printf '| %s | %s | %s | %s | %s | %s | %.0f | %s | %.0f | %s | %s | %s | %s | %s | %s |\n' \
      "$fmt" "$lines" "${msgs:-?}" "${dels:-?}" "${malf:-?}" "$secs_" "$(rate "$lines" "$secs_")" "${own:-?}" \
      "$(rate "${dels:-0}" "$secs_")" "$dbb" \
      "$(awk -v b="$dbb" -v d="${dels:-0}" 'BEGIN {if (d > 0) printf "%.1f", b / d; else print "n/a"}')" \
      "${verd:-?}" "$(max_rss_mb "$OUT/replay-$fmt.time")" "$rc" "$(secs "$g0" "$g1")" >>"$REPMD"
    { echo "$fmt:"; cat "$OUT/make_maillog-$fmt.txt"; cat "$sumf"; echo; } >>"$OUT/replay-details.txt"
    [ "$KEEP" = 1 ] || rm -f "$RLOG"
    rm -f "$RDB-shm"
  done
  {
    echo
    echo "Generator and ingest summaries: $OUT/replay-details.txt (target: ≥ 1,000,000 lines/s end to end on the delivery-dense Postfix log; ≤ 64 bytes per delivered message)."
  } >>"$REPMD"
  echo
  cat "$REPMD"
fi

log "done; raw results in $OUT"
