#!/usr/bin/env bash
# `rcptguard serve` under Valgrind's memcheck: a temporary database and settings file, a TCP
# listener on 127.0.0.1 port 0 (the port is read from /proc), a followed mail log and the alert
# file and command. It answers a few hundred policy requests (plain ones, a flood that is warned
# about, then, after a SIGHUP to detection.mode = "enforce", a flood that is deferred), is stopped
# with SIGTERM, and must exit 0 with no Valgrind error (definite leaks count as errors).
#
#   valgrind_check.sh --rcptguard BIN [--valgrind VALGRIND] [--skip REASON]
#
# Exit 0: passed; 1: failed; 77: skipped (--skip, as in a sanitizer build, or no valgrind).
# Bounded: every wait has a deadline; the daemon it started (and only that PID) is killed on any
# way out.
set -euo pipefail

RCPTGUARD=""
VALGRIND=""
SKIP=""
while (($#)); do
  case $1 in
    --rcptguard) RCPTGUARD=$2; shift 2 ;;
    --valgrind) VALGRIND=$2; shift 2 ;;
    --skip) SKIP=$2; shift 2 ;;
    *) echo "usage: ${0##*/} --rcptguard BIN [--valgrind VALGRIND] [--skip REASON]" >&2; exit 2 ;;
  esac
done

if [[ -n $SKIP ]]; then
  echo "SKIP: $SKIP"
  exit 77
fi
if [[ -z $VALGRIND ]]; then VALGRIND=$(command -v valgrind || true); fi  # not found at configure
if [[ -z $VALGRIND || ! -x $VALGRIND ]]; then
  echo "SKIP: valgrind is not installed (contrib/install-deps.sh --test installs it)"
  exit 77
fi
[[ -x $RCPTGUARD ]] || { echo "FAIL: no rcptguard binary at '$RCPTGUARD'"; exit 1; }

started_at=$SECONDS
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rcptguard-valgrind.XXXXXX")
PID=""
cleanup() {
  if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "FAIL: $*"
  echo "---- daemon log (stderr):"
  cat "$TMP/daemon.err" 2>/dev/null || true
  echo "---- valgrind log:"
  cat "$TMP/valgrind.log" 2>/dev/null || true
  exit 1
}

# True once the daemon has exited (a zombie still answers kill -0, so /proc tells).
exited() {
  [[ ! -e /proc/$PID ]] || grep -q '^State:[[:space:]]*Z' "/proc/$PID/status" 2>/dev/null
}

# Waits up to $1 seconds for the daemon's log to contain $2.
wait_for_log() {
  local deadline=$((SECONDS + $1))
  until grep -qF -- "$2" "$TMP/daemon.err" 2>/dev/null; do
    exited && fail "the daemon exited while waiting for '$2'"
    ((SECONDS < deadline)) || fail "no '$2' in the daemon's log within $1 s"
    sleep 0.2
  done
}

write_config() { # detection.mode
  cat >"$TMP/rcptguard.toml" <<EOF
[server]
listen = ["inet:127.0.0.1:0"]
[store]
path = "$TMP/rcptguard.db"
flush_interval = "200ms"
[log]
level = "info"
[control]
socket = "$TMP/control.sock"
[ingest]
files = ["$TMP/mail.log"]
hosts = ["mx-valgrind"]
poll_interval = "100ms"
[alerts]
file = "$TMP/alerts.jsonl"
command = ["/bin/cat"]
command_timeout = "20s"
[detection]
mode = "$1"
EOF
}

# The port the daemon listens on: its socket's inode among the LISTEN (0A) lines of
# /proc/net/tcp.
listening_port() {
  local fd target inode
  for fd in /proc/"$PID"/fd/*; do
    target=$(readlink "$fd" 2>/dev/null) || continue
    [[ $target =~ ^socket:\[([0-9]+)\]$ ]] || continue
    inode=${BASH_REMATCH[1]}
    awk -v inode="$inode" '$4 == "0A" && $10 == inode { split($2, a, ":"); print a[2]; exit }' \
      /proc/net/tcp
  done | head -n 1
}

# One request (its attribute lines; $(...) took the trailing newlines) on the connection on fd 3;
# the reply's action line goes to $REPLY_LINE.
ask() {
  local line status
  printf '%s\n\n' "$1" >&3 || fail "cannot send a request"
  REPLY_LINE=""
  while true; do
    status=0
    IFS= read -r -t 30 line <&3 || status=$?
    ((status == 0)) || fail "no reply within 30 s (read status $status) to: ${1%%$'\n'*}"
    [[ -z $line ]] && break
    [[ -z $REPLY_LINE ]] && REPLY_LINE=$line
  done
  [[ $REPLY_LINE == action=* ]] || fail "not a policy reply: '$REPLY_LINE'"
}

request() { # protocol_state recipient sender client_address instance [extra lines]
  printf 'request=smtpd_access_policy\nprotocol_state=%s\nprotocol_name=ESMTP\n' "$1"
  printf 'recipient=%s\nsender=%s\nclient_address=%s\ninstance=%s\n%s' "$2" "$3" "$4" "$5" "${6:-}"
}

# A flood: $2 messages to $1, each from a sender and client of its own (RCPT, END-OF-MESSAGE).
# Counts the RCPT replies by their verb (DUNNO, WARN, DEFER_IF_PERMIT, ...) in verbs[].
declare -A verbs=()
flood() { # recipient count tag
  local n sender client verb
  verbs=()
  for ((n = 1; n <= $2; n++)); do
    sender="s$n@bulk$n.example"
    client="192.0.2.$((n % 250))"
    ask "$(request RCPT "$1" "$sender" "$client" "$3.$n")"
    verb=${REPLY_LINE#action=}
    verb=${verb%% *}
    verbs[$verb]=$((${verbs[$verb]:-0} + 1))
    ask "$(request END-OF-MESSAGE "$1" "$sender" "$client" "$3.$n" \
      $'recipient_count=1\nsize=900\n')"
  done
}

# Postfix's log lines of one delivered message on host mx-valgrind, timestamped now.
log_message() { # serial
  local ts qid
  ts="$(date -u +%Y-%m-%dT%H:%M:%S.000000+00:00) mx-valgrind"
  qid=$(printf '%08X' $((0xC0000000 + $1)))
  printf '%s postfix/smtpd[100]: %s: client=c.example[198.51.100.7]\n' "$ts" "$qid"
  printf '%s postfix/cleanup[101]: %s: message-id=<%s@x>\n' "$ts" "$qid" "$qid"
  printf '%s postfix/qmgr[102]: %s: from=<logged%s@remote.example>, size=3000, nrcpt=1' \
    "$ts" "$qid" "$1"
  printf ' (queue active)\n'
  printf '%s postfix/local[103]: %s: to=<dave@example.test>, relay=local, delay=0.1,' "$ts" "$qid"
  printf ' delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)\n'
  printf '%s postfix/qmgr[102]: %s: removed\n' "$ts" "$qid"
}

: >"$TMP/mail.log"
write_config monitor
"$VALGRIND" --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  --log-file="$TMP/valgrind.log" \
  "$RCPTGUARD" serve -c "$TMP/rcptguard.toml" </dev/null >"$TMP/daemon.out" 2>"$TMP/daemon.err" &
PID=$!
wait_for_log 120 "STARTED"
port=$(listening_port)
[[ -n $port ]] || fail "no listening TCP socket of PID $PID in /proc/net/tcp"
port=$((16#$port))
echo "rcptguard serve under valgrind: PID $PID, 127.0.0.1:$port, up after" \
  "$((SECONDS - started_at)) s"

exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect to 127.0.0.1:$port"
# Plain traffic: 200 requests to 40 recipients from 25 senders and clients.
for ((n = 0; n < 200; n++)); do
  ask "$(request RCPT "r$((n % 40))@example.test" "s$((n % 25))@remote.example" \
    "192.0.2.$((n % 25))" "plain.$n")"
  [[ $REPLY_LINE == action=DUNNO ]] || fail "request $n: '$REPLY_LINE', expected action=DUNNO"
done
for ((n = 0; n < 20; n++)); do log_message "$n"; done >>"$TMP/mail.log"

# monitor: the flood is answered WARN once the episode opens.
flood bob@example.test 40 monitor
echo "monitor flood of 40: ${verbs[*]@K}"
((${verbs[WARN]:-0} > 0)) || fail "monitor flood: no WARN reply (${verbs[*]@K})"
# The episode's line in the alert file (the alert command gets the same line on its stdin).
deadline=$((SECONDS + 60))
until grep -q 'bob@example.test' "$TMP/alerts.jsonl" 2>/dev/null; do
  ((SECONDS < deadline)) || fail "no alert for bob@example.test in alerts.file within 60 s"
  sleep 0.2
done

# SIGHUP to enforce mode; a new connection; a flood to another recipient is deferred.
write_config enforce
kill -HUP "$PID"
wait_for_log 60 "RELOADED"
exec 3>&-
exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect to 127.0.0.1:$port after the reload"
flood carol@example.test 40 enforce
echo "enforce flood of 40: ${verbs[*]@K}"
deferred=$(( $(IFS=+; echo "0+${verbs[*]}") - ${verbs[DUNNO]:-0} - ${verbs[WARN]:-0} ))
((deferred > 0)) || fail "enforce flood: no deferring reply (${verbs[*]@K})"
exec 3>&-

kill -TERM "$PID"
deadline=$((SECONDS + 120))
until exited; do
  if ((SECONDS >= deadline)); then
    # Where each thread waits, for the next person reading a hung run's log.
    for task in /proc/"$PID"/task/*; do
      echo "thread ${task##*/} $(cat "$task/comm" 2>/dev/null): $(cat "$task/wchan" 2>/dev/null)"
    done
    fail "the daemon did not exit within 120 s of SIGTERM"
  fi
  sleep 0.2
done
status=0
wait "$PID" || status=$?
PID=""
echo "exit status $status after $((SECONDS - started_at)) s"
grep -E "FINAL " "$TMP/daemon.err" | sed -E 's/^.*(FINAL )/\1/' || true
summary='(ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable):'
sed -nE "s/^==[0-9]+== +($summary)/\1/p" "$TMP/valgrind.log"
((status != 99)) || fail "valgrind found errors"
((status == 0)) || fail "rcptguard serve exited with status $status"
grep -q "ERROR SUMMARY: 0 errors" "$TMP/valgrind.log" || fail "valgrind's error summary is not 0"
grep -q "FINAL " "$TMP/daemon.err" || fail "no FINAL line in the daemon's log"
echo "PASS"
