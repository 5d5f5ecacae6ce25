#!/usr/bin/env bash
# shellcheck disable=SC2317,SC2030,SC2031  # cleanup functions run from traps; mx2() sets the second host's globals in a subshell on purpose
# End-to-end test of rcptguard with a real Postfix (Debian 12's postfix 3.7) and swaks.
#
#   postfix_e2e.sh --rcptguard BIN --config FILE [--flood] [--flag] [--cluster]
#
# What it does, in a temporary directory and nowhere else:
#   1. starts rcptguard on a free loopback TCP port and on a unix socket (debug log to a file);
#   2. builds and starts a private Postfix instance: its own config_directory, queue_directory
#      and data_directory, SMTP on a free loopback port (never 25), virtual(8) delivery to mbox
#      files, check_policy_service over TCP at RCPT and over the unix socket at END-OF-MESSAGE,
#      both with default_action=DUNNO;
#   3. sends mail with swaks to alice and bob, waits for it in the mbox files and checks that
#      rcptguard logged the RCPT and END-OF-MESSAGE requests;
#   4. stops rcptguard with SIGTERM (it must exit 0), sends another message and checks that it
#      is still delivered (Postfix applied default_action=DUNNO) and that Postfix logged
#      "problem talking to server" for both endpoints;
#   5. with --flood (or RCPTGUARD_E2E_FLOOD=1): floods one recipient, first with
#      detection.mode=monitor (expects Postfix "warn: RCPT from" lines), then with
#      detection.mode=enforce (expects 4xx for the flooded recipient while another recipient
#      still gets mail); then has the daemon's spool scanner read the virtual mailboxes
#      (spool.virtual_roots, owned by the virtual(8) user): repeated attachments in one of them
#      escalate its next message, and mailboxes named like system users (list, root) are read,
#      not refused, whichever users exist on the machine;
#   6. with --flag (or RCPTGUARD_E2E_FLAG=1): floods one recipient with detection.mode=enforce and
#      detection.enforce_action=flag. With hard_defer_score out of reach, every message is
#      delivered, and those judged at the defer level carry "X-Rcptguard-Flood: <recipient>
#      episode=<start> score=<score>" in the mbox, as rcptguard's log and database say; mail to
#      another recipient, from a known correspondent (a delivery two hours ago, replayed with
#      `rcptguard ingest`) or from an allow-listed sender does not; a message to the flooded
#      recipient and another carries it for both (Postfix adds a RCPT-stage PREPEND to the whole
#      message).
#      rcptguard also has [alerts] file and [alerts] command set: a script in the temporary
#      directory appends each alert it gets on stdin to a file; the file it wrote must equal the
#      alert file (the episode's opening and its escalation to defer, JSON for bob, the episode
#      of the header and of v_alerts), and the FINAL line must count as many alert_commands with
#      alert_command_failures=0.
#      The delivered messages are then run through contrib/mail-filters/ (mail_filters_check.sh:
#      Sieve, and procmail/maildrop where installed). Then the same flood with the default
#      hard_defer_score (3): flagged below it, 4xx at and above it.
#   7. with --cluster (or RCPTGUARD_E2E_CLUSTER=1): two MX hosts sharing counts through Redis
#      (README "Several MX hosts"): Debian's redis-server on a unix socket in the temporary
#      directory, this Postfix and rcptguard node mx1, a second private Postfix with its own
#      rcptguard node mx2. A flood to one recipient sent alternately through both: each host
#      gets 30 messages, under the 10-minute defer point (40) that it alone would never reach,
#      yet both answer 4xx once the cluster passed it; mail to another recipient still flows
#      through both; both databases name one flood id for the episode.
#
# The machine's own Postfix (/etc/postfix, /var/spool/postfix, port 25) is never touched: every
# postfix command gets "-c <private config dir>". Files under /etc/postfix are only read
# (master.cf as the template; postfix-files and dynamicmaps.cf through meta_directory).
#
# Exit status: 0 PASS, 1 FAIL (with "FAIL: reason"), 77 SKIP (not root, or postfix or swaks not
# installed; contrib/install-postfix-for-tests.sh installs them).
#
# Environment:
#   RCPTGUARD_E2E_TIMEOUT     overall limit in seconds (default 240)
#   RCPTGUARD_E2E_KEEP=1      keep the temporary directory (its path is printed)
#   RCPTGUARD_E2E_TMP         where the temporary directory goes (default /tmp; every directory on
#                             the way must be searchable by the postfix and nobody users)
#   RCPTGUARD_E2E_FLOOD=1     same as --flood
#   RCPTGUARD_E2E_FLAG=1      same as --flag
#   RCPTGUARD_E2E_CLUSTER=1   same as --cluster (needs redis-server: SKIP without it)
#   RCPTGUARD_E2E_FLOOD_MESSAGES  messages in each flood (default 60; --flag needs 40 or more)
#   RCPTGUARD_E2E_FLOOD_OPTS  extra "-o key=value" words for rcptguard in the flood and flag
#                             phases (thresholds), split on whitespace
#   RCPTGUARD_E2E_MONITOR_EXPECT_WARN=0  in monitor mode require only delivery, not Postfix
#                             "warn: RCPT from" lines (for a monitor mode that answers DUNNO)
#   RCPTGUARD_E2E_EXTRA_OPTS  extra "-o key=value" words for rcptguard in every phase
set -uo pipefail

# A hard overall limit: re-run this script under timeout(1) once. On expiry timeout sends
# SIGTERM, the trap below cleans up, and --kill-after is the last resort.
if [[ -z ${RCPTGUARD_E2E_UNDER_TIMEOUT:-} ]]; then
  export RCPTGUARD_E2E_UNDER_TIMEOUT=1
  exec timeout --kill-after=45 "${RCPTGUARD_E2E_TIMEOUT:-240}" "${BASH:-bash}" "$0" "$@"
fi

readonly SENDER=sender@remote.example
readonly HELO=client.example.test
readonly ALICE=alice@example.test
readonly BOB=bob@example.test
readonly CAROL=carol@example.test
# Virtual mailboxes named like system users: list on Debian (base-passwd), root everywhere.
readonly LIST=list@example.test
readonly ROOT=root@example.test
# The flag phase: a sender bob got mail from before the flood, and an allow-listed one.
readonly FRIEND=friend@remote.example
readonly VIP=vip@partner.example

RCPTGUARD=""
CONFIG=""
FLOOD=${RCPTGUARD_E2E_FLOOD:-0}
FLAG=${RCPTGUARD_E2E_FLAG:-0}
CLUSTER=${RCPTGUARD_E2E_CLUSTER:-0}
FLOOD_MESSAGES=${RCPTGUARD_E2E_FLOOD_MESSAGES:-60}

TMP=""            # the temporary directory; everything below lives in it
RG_PID=""         # the rcptguard process this script started
RG_LOG=""
PF_CONF=""        # the private Postfix config_directory
PF_STARTED=0
MAILLOG=""
SOCK=""
SMTP_PORT=""
POLICY_PORT=""
FAIL_REASON=""
STARTED_AT=$SECONDS

say() { printf 'e2e: %s\n' "$*"; }
fail() {
  FAIL_REASON="$*"
  exit 1
}
skip() {
  printf 'SKIP: %s\n' "$*"
  exit 77
}

usage() {
  printf 'usage: %s --rcptguard BIN --config FILE [--flood] [--flag] [--cluster]\n' "${0##*/}" >&2
  exit 2
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --rcptguard) RCPTGUARD=${2:-}; shift 2 || usage ;;
    --config) CONFIG=${2:-}; shift 2 || usage ;;
    --flood) FLOOD=1; shift ;;
    --flag) FLAG=1; shift ;;
    --cluster) CLUSTER=1; shift ;;
    -h | --help) usage ;;
    *) printf 'unknown argument: %s\n' "$1" >&2; usage ;;
  esac
done
[[ -n $RCPTGUARD && -n $CONFIG ]] || usage

# ---------------------------------------------------------------------------------------------
# Cleanup on every exit path: stop the private Postfix, stop our rcptguard, remove the temp dir.

stop_private_postfix() {
  [[ $PF_STARTED -eq 1 ]] || return 0
  PF_STARTED=0
  local pidfile="$TMP/postfix/spool/pid/master.pid" master_pid="" i
  [[ -r $pidfile ]] && master_pid=$(tr -dc '0-9' <"$pidfile")
  timeout 30 postfix -c "$PF_CONF" stop >/dev/null 2>&1
  if [[ -n $master_pid ]] && kill -0 "$master_pid" 2>/dev/null; then
    kill -TERM "$master_pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
      kill -0 "$master_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$master_pid" 2>/dev/null
  fi
}

kill_rcptguard() {
  [[ -n $RG_PID ]] || return 0
  local i
  if kill -0 "$RG_PID" 2>/dev/null; then
    kill -TERM "$RG_PID" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
      kill -0 "$RG_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$RG_PID" 2>/dev/null
  fi
  wait "$RG_PID" 2>/dev/null
  RG_PID=""
}

show_tail() { # file label
  [[ -s $1 ]] || return 0
  printf -- '--- last lines of %s (%s) ---\n' "$2" "$1"
  tail -n 40 "$1"
}

on_exit() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [[ $rc -ne 0 && $rc -ne 77 && -n $TMP ]]; then
    show_tail "$RG_LOG" "rcptguard log"
    show_tail "$MAILLOG" "Postfix maillog"
    if [[ -n $MX2_ROOT ]]; then
      show_tail "$MX2_ROOT/rcptguard/rcptguard.log" "mx2 rcptguard log"
      show_tail "$MX2_ROOT/postfix/log/maillog" "mx2 Postfix maillog"
    fi
  fi
  stop_private_postfix
  kill_rcptguard
  stop_mx2
  stop_redis
  if [[ -n $TMP && -d $TMP ]]; then
    if [[ ${RCPTGUARD_E2E_KEEP:-0} == 1 ]]; then
      say "kept $TMP"
    else
      rm -rf -- "$TMP"
    fi
  fi
  case $rc in
    0) printf 'PASS (%ss)\n' "$((SECONDS - STARTED_AT))" ;;
    77) ;;
    *) printf 'FAIL: %s\n' "${FAIL_REASON:-exit status $rc}" ;;
  esac
  exit "$rc"
}
trap on_exit EXIT
trap 'FAIL_REASON="${FAIL_REASON:-killed by a signal (overall timeout ${RCPTGUARD_E2E_TIMEOUT:-240}s?)}"; exit 1' INT TERM HUP

# ---------------------------------------------------------------------------------------------
# Preconditions. Skip only for these; everything else is a failure.

[[ $(id -u) -eq 0 ]] || skip "needs root (a private Postfix instance is started as root)"
if ! command -v postfix >/dev/null 2>&1 || ! command -v postconf >/dev/null 2>&1; then
  skip "postfix is not installed (contrib/install-postfix-for-tests.sh)"
fi
command -v swaks >/dev/null 2>&1 || skip "swaks is not installed (contrib/install-postfix-for-tests.sh)"
getent passwd postfix >/dev/null || skip "no postfix user (postfix package not configured)"

[[ -x $RCPTGUARD ]] || fail "rcptguard binary not executable: $RCPTGUARD"
[[ -r $CONFIG ]] || fail "config file not readable: $CONFIG"
CONFIG=$(readlink -f -- "$CONFIG")
RCPTGUARD=$(readlink -f -- "$RCPTGUARD")
[[ $FLOOD_MESSAGES =~ ^[0-9]+$ ]] || fail "RCPTGUARD_E2E_FLOOD_MESSAGES is not a number"

read -r -a EXTRA_OPTS <<<"${RCPTGUARD_E2E_EXTRA_OPTS:-}"
read -r -a FLOOD_OPTS <<<"${RCPTGUARD_E2E_FLOOD_OPTS:-}"

# virtual(8) delivers as this user; it must not be root (virtual_minimum_uid) and must be able to
# write the mail directory, which we create for it.
readonly MAIL_USER=nobody
MAIL_UID=$(id -u "$MAIL_USER") || skip "no user $MAIL_USER"
MAIL_GID=$(id -g "$MAIL_USER") || skip "no group for $MAIL_USER"

# ---------------------------------------------------------------------------------------------
# Helpers.

tcp_open() { # port: true when something accepts connections on 127.0.0.1:port
  # shellcheck disable=SC2016  # $1 is expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

pick_free_port() { # sets PICKED to a loopback port nobody listens on, not in "$@"
  local i p used
  for ((i = 0; i < 100; i++)); do
    p=$((20000 + RANDOM % 40000))
    for used in "$@"; do [[ $p == "$used" ]] && continue 2; done
    if ! tcp_open "$p"; then
      PICKED=$p
      return 0
    fi
  done
  return 1
}

maillog_lines() { [[ -f $MAILLOG ]] && wc -l <"$MAILLOG" || echo 0; }
maillog_since() { # line-number: the maillog after that line
  tail -n +"$(($1 + 1))" "$MAILLOG" 2>/dev/null
}

# Sends one message; the transcript goes to $TMP/swaks/<id>.txt. Returns swaks' exit status.
send_mail() { # id to[,to...] [from]
  local id=$1 to=$2 from=${3:-$SENDER}
  timeout 60 swaks --server 127.0.0.1 --port "$SMTP_PORT" --timeout 30 \
    --helo "$HELO" --from "$from" --to "$to" \
    --header "Subject: rcptguard e2e $id" --header "X-E2E-Id: $id" \
    --body "rcptguard end-to-end test message $id" \
    >"$TMP/swaks/$id.txt" 2>&1 </dev/null
}

send_with_attachment() { # id to file
  timeout 60 swaks --server 127.0.0.1 --port "$SMTP_PORT" --timeout 30 \
    --helo "$HELO" --from "$SENDER" --to "$2" \
    --header "Subject: rcptguard e2e $1" --header "X-E2E-Id: $1" \
    --attach-type application/octet-stream --attach "@$3" \
    >"$TMP/swaks/$1.txt" 2>&1 </dev/null
}

queued() { # id: the message was accepted ("250 2.0.0 Ok: queued as ...")
  grep -q '^<- *250 .*queued as' "$TMP/swaks/$1.txt"
}

# Counts messages with X-E2E-Id matching the extended regex $2 in mbox $1.
count_in_mbox() {
  [[ -f $1 ]] || { echo 0; return; }
  grep -Ec "^X-E2E-Id: ($2)\$" "$1"
}

wait_in_mbox() { # mbox id-regex expected-count seconds
  local i
  for ((i = 0; i < $4 * 5; i++)); do
    [[ $(count_in_mbox "$1" "$2") -ge $3 ]] && return 0
    sleep 0.2
  done
  return 1
}

# Lines of the rcptguard log for requests in state $1 for recipient $2 (an empty $2 counts the
# requests with an empty recipient). The daemon logs `REQUEST conn=N state=S ... recipient=<R>`;
# bare or quoted values are accepted too.
count_requests() {
  grep -E "REQUEST .*state=\"?$1\"?( |$)" "$RG_LOG" 2>/dev/null |
    grep -Ec "recipient=[<\"]?${2//./\\.}[>\"]?( |$)"
}

# ---------------------------------------------------------------------------------------------
# rcptguard.

start_rcptguard() { # store-file [-o key=value ...]
  local store=$1 i
  shift
  say "starting rcptguard${*:+ $*} (log $RG_LOG)"
  printf '=== e2e: starting rcptguard %s\n' "$*" >>"$RG_LOG"
  "$RCPTGUARD" serve --config "$CONFIG" \
    -o "server.listen=[\"inet:127.0.0.1:$POLICY_PORT\",\"unix:$SOCK\"]" \
    -o server.unix_socket_group=postfix -o server.unix_socket_mode=0660 -o server.user= \
    -o log.target=stderr -o log.level=debug -o "store.path=$store" \
    "${EXTRA_OPTS[@]}" "$@" >>"$RG_LOG" 2>&1 </dev/null &
  RG_PID=$!
  for ((i = 0; i < 150; i++)); do
    if ! kill -0 "$RG_PID" 2>/dev/null; then
      wait "$RG_PID"
      local rc=$?
      RG_PID=""
      fail "rcptguard exited during start-up with status $rc"
    fi
    [[ -S $SOCK ]] && tcp_open "$POLICY_PORT" && break
    sleep 0.1
  done
  if ! [[ -S $SOCK ]] || ! tcp_open "$POLICY_PORT"; then
    fail "rcptguard did not listen on 127.0.0.1:$POLICY_PORT and $SOCK within 15s"
  fi
  # smtpd runs as user postfix and needs write permission on the socket to connect; rcptguard
  # was told so with server.unix_socket_group and server.unix_socket_mode.
  runuser -u postfix -- test -w "$SOCK" ||
    fail "$SOCK is not writable by user postfix ($(stat -c '%U:%G %a' "$SOCK")) despite server.unix_socket_group=postfix"
}

stop_rcptguard() { # SIGTERM; rcptguard must drain and exit 0 within 20 s
  local i rc
  kill -TERM "$RG_PID" 2>/dev/null || fail "rcptguard (pid $RG_PID) was not running at stop"
  for ((i = 0; i < 200; i++)); do
    kill -0 "$RG_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$RG_PID" 2>/dev/null && fail "rcptguard did not exit within 20s of SIGTERM"
  wait "$RG_PID"
  rc=$?
  RG_PID=""
  [[ $rc -eq 0 ]] || fail "rcptguard exited with status $rc after SIGTERM (expected 0)"
  say "rcptguard exited 0 after SIGTERM"
}

check_rcptguard_log_clean() {
  if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' "$RG_LOG"; then
    fail "sanitizer report in the rcptguard log"
  fi
}

# ---------------------------------------------------------------------------------------------
# The private Postfix instance.

make_private_postfix() {
  local master_template
  PF_CONF="$TMP/postfix/etc"
  mkdir -p "$PF_CONF" "$TMP/postfix/spool" "$TMP/postfix/data" "$TMP/postfix/log" "$TMP/mail"
  # Postfix wants its queue directory owned by root, data_directory by mail_owner (postfix).
  chown postfix:postfix "$TMP/postfix/data"
  chmod 0700 "$TMP/postfix/data"
  chown "$MAIL_UID:$MAIL_GID" "$TMP/mail"
  MAILLOG="$TMP/postfix/log/maillog"

  master_template=/etc/postfix/master.cf
  [[ -r $master_template ]] || master_template=/usr/share/postfix/master.cf.dist
  [[ -r $master_template ]] || fail "no master.cf template (/etc/postfix/master.cf or master.cf.dist)"
  cp -- "$master_template" "$PF_CONF/master.cf"
  : >"$PF_CONF/main.cf"

  printf '%s %s\n' "$ALICE" alice "$BOB" bob "$CAROL" carol "$LIST" list "$ROOT" root \
    "postmaster@example.test" postmaster >"$PF_CONF/vmailbox"

  local policy_inet="check_policy_service { inet:127.0.0.1:$POLICY_PORT, timeout=10s, default_action=DUNNO }"
  local policy_unix="check_policy_service { unix:$SOCK, timeout=10s, default_action=DUNNO }"
  postconf -c "$PF_CONF" -e \
    "compatibility_level = 3.6" \
    "queue_directory = $TMP/postfix/spool" \
    "data_directory = $TMP/postfix/data" \
    "maillog_file_prefixes = $TMP" \
    "maillog_file = $MAILLOG" \
    "myhostname = mx.example.test" \
    "mydomain = example.test" \
    "myorigin = example.test" \
    "mydestination =" \
    "local_recipient_maps =" \
    "alias_maps =" \
    "alias_database =" \
    "relayhost =" \
    "relay_domains =" \
    "default_transport = error:no outbound delivery from the rcptguard e2e instance" \
    "inet_interfaces = 127.0.0.1" \
    "inet_protocols = ipv4" \
    "mynetworks = 127.0.0.0/8" \
    "smtpd_banner = \$myhostname ESMTP rcptguard-e2e" \
    "smtpd_peername_lookup = no" \
    "biff = no" \
    "virtual_mailbox_domains = example.test" \
    "virtual_mailbox_base = $TMP/mail" \
    "virtual_mailbox_maps = texthash:$PF_CONF/vmailbox" \
    "virtual_uid_maps = static:$MAIL_UID" \
    "virtual_gid_maps = static:$MAIL_GID" \
    "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination" \
    "smtpd_recipient_restrictions = $policy_inet, permit_mynetworks, reject_unauth_destination" \
    "smtpd_end_of_data_restrictions = $policy_unix" ||
    fail "postconf -e on the private main.cf failed"

  # No port 25: comment out the stock "smtp inet" listener, add ours on the free loopback port.
  sed -i -E 's/^(smtp[[:space:]]+inet[[:space:]])/#\1/' "$PF_CONF/master.cf"
  postconf -c "$PF_CONF" -M "127.0.0.1:$SMTP_PORT/inet = 127.0.0.1:$SMTP_PORT inet n - n - - smtpd" ||
    fail "postconf -M (smtpd listener) failed"
  # No chroot: the policy socket and maillog are absolute paths outside the queue directory.
  postconf -c "$PF_CONF" -F '*/*/chroot = n' || fail "postconf -F chroot=n failed"

  if postconf -c "$PF_CONF" -M | grep -Eq '^smtp[[:space:]]+inet[[:space:]]'; then
    fail "the private master.cf still has an smtp inet (port 25) listener"
  fi
  [[ $(postconf -c "$PF_CONF" -h inet_interfaces) == 127.0.0.1 ]] || fail "inet_interfaces is not 127.0.0.1"
  timeout 30 postfix -c "$PF_CONF" check >"$TMP/postfix/check.txt" 2>&1 ||
    fail "postfix check failed: $(head -c 400 "$TMP/postfix/check.txt")"
}

start_private_postfix() {
  local i attempt
  for attempt in 1 2; do
    say "starting private Postfix (config $PF_CONF, SMTP 127.0.0.1:$SMTP_PORT)"
    if timeout 60 postfix -c "$PF_CONF" start >"$TMP/postfix/start.txt" 2>&1; then
      PF_STARTED=1
      for ((i = 0; i < 100; i++)); do
        tcp_open "$SMTP_PORT" && return 0
        sleep 0.1
      done
      fail "private Postfix does not listen on 127.0.0.1:$SMTP_PORT"
    fi
    # Seen about once in a few hundred runs on a loaded machine: master -w gives up with "mail
    # system startup failed" and no reason, and the same instance starts a moment later. Say
    # so, with what Postfix logged, and try once more; a second failure fails the test.
    say "postfix start failed (attempt $attempt): $(head -c 200 "$TMP/postfix/start.txt") $(tail -n 3 "$MAILLOG" 2>/dev/null | tr '\n' ' ')"
    timeout 30 postfix -c "$PF_CONF" stop >/dev/null 2>&1
    sleep 2
  done
  fail "postfix start failed twice: $(head -c 400 "$TMP/postfix/start.txt")"
}

# ---------------------------------------------------------------------------------------------
# The cluster phase's second MX and its Redis. The second host's Postfix and rcptguard are made
# by the same functions as the first's, run in a subshell with its own ports and directory
# (mx2 below); what outlives the subshell is kept in files there (pid files, a failure reason).

MX2_ROOT=""       # the second MX's directory, once the cluster phase made it
MX2_POLICY_PORT=""
MX2_SMTP_PORT=""
MX2_PF_STARTED=0
REDIS_PID=""      # the redis-server this script started

mx2() { # command...: runs it in a subshell with the second MX's ports and files
  (
    TMP=$MX2_ROOT
    RG_LOG=$MX2_ROOT/rcptguard/rcptguard.log
    SOCK=$MX2_ROOT/run/rcptguard.sock
    POLICY_PORT=$MX2_POLICY_PORT
    SMTP_PORT=$MX2_SMTP_PORT
    PF_CONF=$MX2_ROOT/postfix/etc
    PF_STARTED=$MX2_PF_STARTED
    MAILLOG=$MX2_ROOT/postfix/log/maillog
    RG_PID=""
    [[ -r $MX2_ROOT/rcptguard.pid ]] && RG_PID=$(<"$MX2_ROOT/rcptguard.pid")
    # Traps are not inherited by a subshell: keep fail()'s reason for the caller.
    trap 'printf "%s" "$FAIL_REASON" >"$MX2_ROOT/fail-reason"' EXIT
    "$@"
  )
}

mx2_failed() { # what: fail with the reason the subshell gave
  fail "$1 (mx2): $(cat "$MX2_ROOT/fail-reason" 2>/dev/null)"
}

# The second rcptguard runs on after the subshell that started it: its PID goes to a file, and it
# is ended by that PID.
start_mx2_rcptguard() { # store-file [-o key=value ...]
  start_rcptguard "$@"
  printf '%s' "$RG_PID" >"$TMP/rcptguard.pid"
}

stop_mx2() {
  [[ -n $MX2_ROOT ]] || return 0
  if [[ $MX2_PF_STARTED -eq 1 ]]; then
    mx2 stop_private_postfix
    MX2_PF_STARTED=0
  fi
  local pid="" i
  [[ -r $MX2_ROOT/rcptguard.pid ]] && pid=$(<"$MX2_ROOT/rcptguard.pid")
  rm -f -- "$MX2_ROOT/rcptguard.pid"
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  return 0
}

stop_redis() {
  [[ -n $REDIS_PID ]] || return 0
  kill -KILL "$REDIS_PID" 2>/dev/null
  wait "$REDIS_PID" 2>/dev/null
  REDIS_PID=""
}

# ---------------------------------------------------------------------------------------------
# Phases.

phase_delivery() {
  say "phase 1: mail through Postfix with rcptguard answering"
  local -a alice_ids=(a1 a2 a3) bob_ids=(b1 b2 b3) id
  for id in "${alice_ids[@]}"; do send_mail "$id" "$ALICE" || fail "swaks $id to $ALICE failed (status $?)"; done
  for id in "${bob_ids[@]}"; do send_mail "$id" "$BOB" || fail "swaks $id to $BOB failed (status $?)"; done
  send_mail ab1 "$ALICE,$BOB" || fail "swaks ab1 to $ALICE,$BOB failed (status $?)"
  for id in "${alice_ids[@]}" "${bob_ids[@]}" ab1; do
    queued "$id" || fail "message $id was not queued by Postfix (see $TMP/swaks/$id.txt)"
  done

  wait_in_mbox "$TMP/mail/alice" 'a1|a2|a3|ab1' 4 30 ||
    fail "alice's mbox has $(count_in_mbox "$TMP/mail/alice" 'a1|a2|a3|ab1') of 4 messages after 30s"
  wait_in_mbox "$TMP/mail/bob" 'b1|b2|b3|ab1' 4 30 ||
    fail "bob's mbox has $(count_in_mbox "$TMP/mail/bob" 'b1|b2|b3|ab1') of 4 messages after 30s"
  say "8 deliveries found in the mbox files"

  # RCPT requests come over TCP, END-OF-MESSAGE over the unix socket (see main.cf above). The
  # END-OF-MESSAGE of the two-recipient message has an empty recipient.
  local n
  for who in "$ALICE" "$BOB"; do
    n=$(count_requests RCPT "$who")
    [[ $n -ge 4 ]] || fail "rcptguard logged $n RCPT requests for $who (expected >= 4)"
    n=$(count_requests END-OF-MESSAGE "$who")
    [[ $n -ge 3 ]] || fail "rcptguard logged $n END-OF-MESSAGE requests for $who (expected >= 3, over the unix socket)"
  done
  n=$(grep -Ec 'REQUEST .*state="?END-OF-MESSAGE' "$RG_LOG")
  [[ $n -ge 7 ]] || fail "rcptguard logged $n END-OF-MESSAGE requests (expected >= 7)"
  if grep -q 'problem talking to server' "$MAILLOG"; then
    fail "Postfix had trouble talking to rcptguard while it was up: $(grep -m1 'problem talking' "$MAILLOG")"
  fi
  if grep -Eq ': (reject|warn|hold|discard): ' "$MAILLOG"; then
    fail "unexpected verdict in the maillog: $(grep -Em1 ': (reject|warn|hold|discard): ' "$MAILLOG")"
  fi
  say "rcptguard logged the RCPT (TCP) and END-OF-MESSAGE (unix socket) requests"
}

phase_daemon_down() {
  say "phase 2: rcptguard stopped, Postfix must apply default_action=DUNNO"
  stop_rcptguard
  check_rcptguard_log_clean
  local mark t0 t1 log
  mark=$(maillog_lines)
  t0=$SECONDS
  send_mail d1 "$ALICE" || fail "swaks d1 to $ALICE failed with rcptguard down (status $?)"
  t1=$SECONDS
  queued d1 || fail "message d1 was not queued with rcptguard down (see $TMP/swaks/d1.txt)"
  wait_in_mbox "$TMP/mail/alice" d1 1 30 || fail "message d1 not delivered with rcptguard down"
  log=$(maillog_since "$mark")
  grep -q "problem talking to server 127.0.0.1:$POLICY_PORT: Connection refused" <<<"$log" ||
    fail "no 'problem talking to server 127.0.0.1:$POLICY_PORT: Connection refused' in the maillog"
  grep -q "problem talking to server $SOCK: " <<<"$log" ||
    fail "no 'problem talking to server $SOCK' in the maillog"
  say "d1 delivered in $((t1 - t0))s of SMTP with rcptguard down; Postfix logged:"
  grep 'problem talking to server' <<<"$log" | sed -E 's/^.*(warning: )/  \1/' | sort | uniq -c
}

# Sends $FLOOD_MESSAGES messages to $BOB; ids f<tag>1..N.
flood_bob() { # tag
  local i
  for ((i = 1; i <= FLOOD_MESSAGES; i++)); do
    send_mail "f$1$i" "$BOB"
  done
}

phase_flood() {
  say "phase 3a: flood of $FLOOD_MESSAGES messages to $BOB, detection.mode=monitor"
  local mark log n deferred accepted i
  start_rcptguard "$TMP/rcptguard/flood-monitor.db" -o detection.mode=monitor "${FLOOD_OPTS[@]}"
  mark=$(maillog_lines)
  flood_bob m
  wait_in_mbox "$TMP/mail/bob" 'fm[0-9]+' "$FLOOD_MESSAGES" 60 ||
    fail "monitor mode: $(count_in_mbox "$TMP/mail/bob" 'fm[0-9]+') of $FLOOD_MESSAGES flood messages delivered (monitor must not block)"
  log=$(maillog_since "$mark")
  if grep -Eq "(reject|reject_warning): RCPT from .*to=<$BOB>" <<<"$log"; then
    fail "monitor mode: Postfix refused mail to $BOB: $(grep -Em1 '(reject|reject_warning): RCPT from' <<<"$log")"
  fi
  n=$(grep -c "warn: RCPT from .*to=<$BOB>" <<<"$log")
  if [[ ${RCPTGUARD_E2E_MONITOR_EXPECT_WARN:-1} == 1 ]]; then
    [[ $n -ge 1 ]] || fail "monitor mode: no 'warn: RCPT from ... to=<$BOB>' line in the maillog"
  fi
  say "monitor mode: all $FLOOD_MESSAGES delivered, $n 'warn: RCPT from' lines"
  stop_rcptguard

  say "phase 3b: flood of $FLOOD_MESSAGES messages to $BOB, detection.mode=enforce"
  start_rcptguard "$TMP/rcptguard/flood-enforce.db" -o detection.mode=enforce "${FLOOD_OPTS[@]}"
  flood_bob e
  deferred=0
  accepted=0
  for ((i = 1; i <= FLOOD_MESSAGES; i++)); do
    if grep -Eq "^<\*\* *4[0-9][0-9] .*<$BOB>" "$TMP/swaks/fe$i.txt"; then
      deferred=$((deferred + 1))
    elif queued "fe$i"; then
      accepted=$((accepted + 1))
    fi
  done
  [[ $deferred -ge 1 ]] || fail "enforce mode: none of $FLOOD_MESSAGES messages to $BOB got a 4xx at RCPT"
  say "enforce mode: $accepted accepted, $deferred deferred with 4xx; first refusal:"
  grep -hEm1 "^<\*\* *4[0-9][0-9] " "$TMP"/swaks/fe*.txt | head -n 1 | sed 's/^/  /'
  send_mail e-alice "$ALICE" || fail "enforce mode: swaks to $ALICE failed (status $?)"
  queued e-alice || fail "enforce mode: mail to $ALICE was not accepted during the flood to $BOB"
  wait_in_mbox "$TMP/mail/alice" e-alice 1 30 || fail "enforce mode: mail to $ALICE not delivered"
  say "enforce mode: $ALICE still gets mail"
  stop_rcptguard
  check_rcptguard_log_clean
  check_verdicts_stored "$TMP/rcptguard/flood-monitor.db" 1
  check_verdicts_stored "$TMP/rcptguard/flood-enforce.db" 0
}

# A mail bomb carrying one attachment, delivered by Postfix into the spool: the daemon's scanner
# finds the copies, and the next message to the same mailbox is judged with that evidence. Eight
# messages are below every volume warning (the minute window warns at 12); the ninth scores
# volume 0.75 + evidence 0.75, a warning that it would not be without the evidence.
# $TMP/mail is a virtual(8) spool: every mailbox is owned by $MAIL_USER, whatever it is named.
# Read with the local rule, a mailbox named like a system user (list, root; carol too on a
# machine that has such a user) would be refused as not owned by that user; the virtual rule
# reads them all, so this phase passes whichever users exist.
phase_spool() {
  say "phase 4: the same attachment stored again and again in $CAROL's mailbox"
  local i who attachment="$TMP/swaks/photo.bin" db="$TMP/rcptguard/spool.db" reply
  head -c 20000 /dev/urandom >"$attachment"
  start_rcptguard "$db" -o detection.mode=monitor -o spool.enabled=true -o spool.interval=10s \
    -o 'spool.roots=[]' -o "spool.virtual_roots=[\"$TMP/mail\"]" \
    -o "spool.virtual_owner=[\"$MAIL_USER\"]" -o 'spool.domains=["example.test"]'
  # Three copies each (spool.min_repeats) to the mailboxes named like system users, delivered
  # before carol's, so the scan that finds carol's copies has read theirs too.
  for who in "$LIST" "$ROOT"; do
    for ((i = 1; i <= 3; i++)); do
      send_with_attachment "sys-${who%@*}$i" "$who" "$attachment" || fail "swaks to $who failed"
    done
    wait_in_mbox "$TMP/mail/${who%@*}" "sys-${who%@*}[0-9]" 3 60 ||
      fail "the 3 messages did not reach $who's mbox"
  done
  for ((i = 1; i <= 8; i++)); do
    send_with_attachment "sp$i" "$CAROL" "$attachment" || fail "swaks sp$i to $CAROL failed"
  done
  wait_in_mbox "$TMP/mail/carol" 'sp[0-9]+' 8 60 || fail "the 8 messages did not reach $CAROL's mbox"
  for ((i = 0; i < 150; i++)); do
    grep -q "SPOOL evidence $CAROL" "$RG_LOG" && break
    sleep 0.2
  done
  grep -q "SPOOL evidence $CAROL" "$RG_LOG" ||
    fail "the spool scan found no repeated attachment for $CAROL: $(grep 'SPOOL' "$RG_LOG" | tail -n 3)"
  say "scanner: $(grep -m1 "SPOOL evidence $CAROL" "$RG_LOG" | sed -E 's/^.*(SPOOL)/\1/')"
  for who in "$LIST" "$ROOT"; do
    grep -q "SPOOL evidence $who" "$RG_LOG" ||
      fail "the spool scan found no repeated attachment for $who (a virtual mailbox named like a system user): $(grep 'SPOOL refused' "$RG_LOG" | head -n 3)"
  done
  if grep -q 'SPOOL refused' "$RG_LOG"; then
    fail "the spool scan refused a virtual mailbox: $(grep -m1 'SPOOL refused' "$RG_LOG")"
  fi
  say "scanner: read the virtual mailboxes named like system users ($LIST, $ROOT), refused none"
  send_with_attachment sp9 "$CAROL" "$attachment" || fail "swaks sp9 to $CAROL failed"
  reply=$(grep -E "REQUEST .*state=RCPT .*recipient=<$CAROL>" "$RG_LOG" | tail -n 1)
  grep -q 'action=WARN .*identical attachments' <<<"$reply" ||
    fail "the message after the scan was not escalated by the evidence: ${reply##*action=}"
  say "escalated: ${reply##*action=}"
  stop_rcptguard
  [[ $(timeout 10 sqlite3 "$db" "SELECT count(*) FROM v_verdicts WHERE recipient = '$CAROL' \
        AND reasons LIKE '%spool_evidence%'") -ge 1 ]] ||
    fail "$db: no verdict for $CAROL with a spool_evidence reason"
  [[ $(timeout 10 sqlite3 "$db" "SELECT count(*) FROM v_spool_evidence \
        WHERE recipient = '$CAROL'") -ge 1 ]] || fail "$db: no spool evidence row for $CAROL"
  check_rcptguard_log_clean
}

# The verdicts behind what Postfix saw are in the database, with their reasons, and the flood is
# one alert episode. monitor_only says whether the DEFERs were only WARNs on the wire.
check_verdicts_stored() { # database expected_monitor_only
  local db=$1 monitor=$2 verdicts reasons episodes
  verdicts=$(timeout 10 sqlite3 "$db" \
    "SELECT coalesce(sum(requests), 0) FROM v_verdicts WHERE recipient = '$BOB' AND monitor_only = $monitor") ||
    fail "cannot read $db"
  reasons=$(timeout 10 sqlite3 "$db" \
    "SELECT count(*) FROM v_verdicts WHERE recipient = '$BOB' AND reasons LIKE '%volume%'")
  episodes=$(timeout 10 sqlite3 "$db" "SELECT count(*) FROM v_alerts WHERE recipient = '$BOB'")
  [[ $verdicts -ge 1 ]] || fail "$db: no verdict for $BOB with monitor_only=$monitor"
  [[ $reasons -ge 1 ]] || fail "$db: no verdict for $BOB names a volume reason"
  [[ $episodes -eq 1 ]] || fail "$db: $episodes alert episodes for $BOB, expected 1"
  say "$(basename "$db"): $verdicts verdicts for $BOB, 1 alert episode"
}

# ---------------------------------------------------------------------------------------------
# enforce_action = flag: the flood is delivered with a header for the delivery agent's Junk rule.

readonly FLAG_HEADER=X-Rcptguard-Flood

# One line per message of mbox $1: "<X-E2E-Id><TAB><values of its flag headers, ' | ' between>",
# the second field empty when it has none. Only the header section of each message is read.
mbox_flags() {
  [[ -f $1 ]] || return 0
  awk -v name="$FLAG_HEADER" '
    function out() { if (n) print id "\t" flags }
    /^From / { out(); n = 1; id = ""; flags = ""; head = 1; next }
    head && /^$/ { head = 0; next }
    head && /^X-E2E-Id: / { id = substr($0, 11) }
    head && tolower(substr($0, 1, length(name) + 1)) == tolower(name ":") {
      v = substr($0, length(name) + 2)
      sub(/^[ \t]+/, "", v)
      flags = flags (flags == "" ? "" : " | ") v
    }
    END { out() }' "$1"
}

flags_of() { # table id: the flag header values of message id in a mbox_flags table
  awk -F '\t' -v id="$2" '$1 == id { print $2; exit }' "$1"
}

extract_message() { # mbox id file: message id (without its mbox "From " line) into file
  awk -v want="X-E2E-Id: $2" '
    function flush() { if (hit) { printf "%s", buf; found = 1 } buf = ""; hit = 0 }
    /^From / { flush(); if (found) exit; next }
    { buf = buf $0 "\n"; if ($0 == want) hit = 1 }
    END { flush(); exit !found }' "$1" >"$3"
}

# Checks one flag header value for $BOB: the format, one episode for all, a score from the
# defer point to the hard_defer_score $2 (below it; the header rounds to one decimal, so 2.96
# reads 3). Sets FLAG_EPISODE on the first call.
check_flag_value() { # value hard_defer_score what
  local re="^${BOB//./\\.} episode=([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z) score=([0-9]+(\\.[0-9]+)?)\$"
  [[ $1 =~ $re ]] || fail "$3: $FLAG_HEADER value '$1' is not '$BOB episode=<UTC time> score=<score>'"
  local episode=${BASH_REMATCH[1]} score=${BASH_REMATCH[2]}
  [[ -z $FLAG_EPISODE ]] && FLAG_EPISODE=$episode
  [[ $episode == "$FLAG_EPISODE" ]] || fail "$3: episode=$episode, but an earlier header said episode=$FLAG_EPISODE (one flood, one episode)"
  awk -v s="$score" -v h="$2" 'BEGIN { exit !(s >= 2.0 && s <= h) }' ||
    fail "$3: score=$score, expected at least the defer score 2 and below hard_defer_score $2"
}

# The store's verdicts agree with the wire: so many RCPTs answered with the header
# (header_flagged), so many deferred.
check_flag_verdicts() { # database flagged deferred
  local got
  got=$(timeout 10 sqlite3 "$1" "SELECT coalesce(sum(requests), 0) FROM v_verdicts WHERE recipient = '$BOB' AND header_flagged = 1")
  [[ $got -eq $2 ]] || fail "$(basename "$1"): $got verdicts for $BOB with header_flagged = 1, but $2 RCPTs got the header"
  got=$(timeout 10 sqlite3 "$1" "SELECT coalesce(sum(requests), 0) FROM v_verdicts WHERE recipient = '$BOB' AND level = 'defer' AND header_flagged = 0 AND monitor_only = 0")
  [[ $got -eq $3 ]] || fail "$(basename "$1"): $got deferring verdicts for $BOB, but $3 RCPTs got a 4xx"
}

# [alerts] command for the flag phase: a script that appends the alert on its stdin (a JSON object
# and a newline) to the file named by its argument, exactly one newline after each. The daemon runs
# it as its own user: root here (start_rcptguard sets server.user= empty), and the script is 0755
# in a 0755 directory, so any user could run it. Runs are serialized (command_concurrency=1), so
# its lines come in the alert file's order.
write_alert_command() { # script output-file
  cat >"$1" <<'EOF'
#!/bin/sh
# rcptguard e2e alert command: append the alert on stdin, one line each, to the file "$1".
set -eu
alert=$(cat)
printf '%s\n' "$alert" >>"$1"
EOF
  chmod 0755 "$1" || fail "chmod of the alert command $1 failed"
  : >"$2"
  chmod 0644 "$2"
}

lines_of() { [[ -f $1 ]] && wc -l <"$1" || echo 0; }

# The alert command saw what the alert file got: the same lines (one episode of $BOB, opened and
# perhaps escalated to defer, as v_alerts has it) and the daemon's FINAL line counts them, with
# no failure.
check_alert_command() { # alert-file command-output database episode-start rcptguard-log-since
  local alerts=$1 out=$2 db=$3 episode=$4 log=$5 n final peak report
  n=$(lines_of "$alerts")
  [[ $n -ge 1 ]] || fail "alert command: the alert file $alerts is empty after the flood to $BOB"
  cmp -s "$alerts" "$out" ||
    fail "alert command: its output ($(lines_of "$out") lines) differs from the alert file ($n lines): $(diff "$alerts" "$out" | head -c 600)"
  peak=$(timeout 10 sqlite3 "$db" "SELECT peak_level FROM v_alerts WHERE recipient = '$BOB'")
  report=$(python3 - "$out" "$BOB" "$episode" "$peak" <<'EOF'
import json, sys
def bad(why):
    print(why)  # the shell puts it in its FAIL line
    sys.exit(1)
path, recipient, episode, peak = sys.argv[1:5]
lines = open(path, encoding="utf-8").read().split("\n")
if lines and lines[-1] == "":
    lines.pop()
alerts = []
for no, line in enumerate(lines, 1):
    try:
        a = json.loads(line)
    except ValueError as e:
        bad(f"line {no} is not JSON ({e}): {line[:200]}")
    if not isinstance(a, dict):
        bad(f"line {no} is not a JSON object: {line[:200]}")
    if a.get("recipient") != recipient:
        bad(f"line {no}: recipient {a.get('recipient')!r}, expected {recipient!r}")
    if a.get("verdict") not in ("warn", "defer"):
        bad(f"line {no}: verdict {a.get('verdict')!r}, expected warn or defer")
    if a.get("started") != episode:
        bad(f"line {no}: started {a.get('started')!r}, but the episode started {episode}")
    alerts.append(a)
opened = [a for a in alerts if a.get("escalated") is False]
escalated = [a for a in alerts if a.get("escalated") is True]
if len(opened) != 1 or alerts[0] is not opened[0]:
    bad(f"expected the episode's opening (escalated=false) first and once, got {[a.get('escalated') for a in alerts]}")
if len(opened) + len(escalated) != len(alerts):
    bad("a line without a boolean 'escalated'")
if len(escalated) > 1 or any(a["verdict"] != "defer" for a in escalated):
    bad(f"expected at most one escalation, to defer: {[a['verdict'] for a in escalated]}")
if alerts[-1]["verdict"] != peak:
    bad(f"the last alert says {alerts[-1]['verdict']}, v_alerts says peak_level {peak!r}")
print(" -> ".join(a["verdict"] for a in alerts))
EOF
  ) || fail "alert command: $out: $report"
  final=$(grep -m1 -E ' FINAL ' <<<"$log")
  [[ -n $final ]] || fail "alert command: no FINAL line in the rcptguard log of the flag phase"
  [[ $final =~ \ alert_commands=([0-9]+)\ alert_command_failures=([0-9]+) ]] ||
    fail "alert command: the FINAL line has no alert_commands=N alert_command_failures=N: $final"
  [[ ${BASH_REMATCH[2]} -eq 0 ]] ||
    fail "alert command: alert_command_failures=${BASH_REMATCH[2]} in the FINAL line: $(grep -m3 'ALERT COMMAND' <<<"$log")"
  [[ ${BASH_REMATCH[1]} -eq $n ]] ||
    fail "alert command: alert_commands=${BASH_REMATCH[1]} in the FINAL line, but $n alerts in the file"
  say "alert command: ran $n times for $BOB's episode ($report); its output equals the alert file;"
  say "  FINAL: alert_commands=$n alert_command_failures=0"
}

phase_flag() {
  local db="$TMP/rcptguard/flag.db" table="$TMP/flags-bob.tsv" atable="$TMP/flags-alice.tsv"
  local i id flags first=0 n_flagged=0 mark started log prepends position max_score=""
  local alerts="$TMP/rcptguard/flag-alerts.jsonl" command="$TMP/rcptguard/alert-command.sh"
  local command_out="$TMP/rcptguard/flag-alert-command.jsonl"
  say "phase 5a: flood of $FLOOD_MESSAGES messages to $BOB, detection.enforce_action=flag"
  write_alert_command "$command" "$command_out"
  started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  mark=$(wc -l <"$RG_LOG")
  # bob's known correspondent: a message from $FRIEND delivered two hours ago, older than
  # detection.correspondent_min_age (1h), replayed from a mail log into the database.
  local at
  at=$(date -u -d '-2 hours' +%Y-%m-%dT%H:%M:%S.000000+00:00)
  printf '%s\n' \
    "$at mx postfix/smtpd[101]: 4FA1E0A01: client=mail.remote.example[192.0.2.25]" \
    "$at mx postfix/qmgr[102]: 4FA1E0A01: from=<$FRIEND>, size=2048, nrcpt=1 (queue active)" \
    "$at mx postfix/virtual[103]: 4FA1E0A01: to=<$BOB>, relay=virtual, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)" \
    "$at mx postfix/qmgr[102]: 4FA1E0A01: removed" >"$TMP/rcptguard/history.log"
  timeout 60 "$RCPTGUARD" ingest --config "$CONFIG" -o "store.path=$db" "${EXTRA_OPTS[@]}" \
    "$TMP/rcptguard/history.log" >"$TMP/rcptguard/ingest.txt" 2>&1 ||
    fail "rcptguard ingest of the correspondent's old message failed: $(tail -n 3 "$TMP/rcptguard/ingest.txt")"
  [[ $(timeout 10 sqlite3 "$db" "SELECT count(*) FROM correspondent WHERE recipient = '$BOB' AND sender = '$FRIEND'") -eq 1 ]] ||
    fail "rcptguard ingest did not store $FRIEND as a correspondent of $BOB"
  # hard_defer_score 10: out of reach here (volume scores at most 4, the other signals add 2.75).
  start_rcptguard "$db" -o detection.mode=enforce -o detection.enforce_action=flag \
    -o detection.hard_defer_score=10 -o "detection.allow_senders=[\"$VIP\"]" \
    -o "alerts.file=$alerts" -o "alerts.command=[\"$command\",\"$command_out\"]" \
    -o alerts.command_timeout=5s -o alerts.command_concurrency=1 "${FLOOD_OPTS[@]}"
  flood_bob g
  # While the episode is at the defer level: another recipient; the flooded one and another in one
  # message; the correspondent; the allow-listed sender.
  send_mail g-alice "$ALICE" || fail "swaks g-alice failed (status $?)"
  send_mail g-both "$BOB,$ALICE" || fail "swaks g-both failed (status $?)"
  send_mail g-friend "$BOB" "$FRIEND" || fail "swaks g-friend failed (status $?)"
  send_mail g-vip "$BOB" "$VIP" || fail "swaks g-vip failed (status $?)"

  # (d) Nothing deferred: every message was accepted, and is delivered.
  for id in $(seq -f 'fg%g' 1 "$FLOOD_MESSAGES") g-alice g-both g-friend g-vip; do
    queued "$id" || fail "flag mode: $id was not accepted (nothing is deferred below hard_defer_score 10): $(grep -m1 -E '^<\*\* ' "$TMP/swaks/$id.txt")"
  done
  wait_in_mbox "$TMP/mail/bob" 'fg[0-9]+|g-both|g-friend|g-vip' $((FLOOD_MESSAGES + 3)) 60 ||
    fail "flag mode: $(count_in_mbox "$TMP/mail/bob" 'fg[0-9]+|g-both|g-friend|g-vip') of $((FLOOD_MESSAGES + 3)) messages in $BOB's mbox after 60s"
  wait_in_mbox "$TMP/mail/alice" 'g-alice|g-both' 2 30 || fail "flag mode: g-alice and g-both not both in $ALICE's mbox"
  say "flag mode: all $((FLOOD_MESSAGES + 4)) messages accepted and delivered, none deferred"
  # The alerts were raised during the flood; give the command's runs (each well under its 5 s
  # timeout) time to finish, so none is still waiting when the daemon stops.
  for ((i = 0; i < 100; i++)); do
    [[ $(lines_of "$alerts") -ge 1 && $(lines_of "$command_out") -eq $(lines_of "$alerts") ]] && break
    sleep 0.2
  done
  stop_rcptguard
  check_rcptguard_log_clean

  mbox_flags "$TMP/mail/bob" >"$table"
  mbox_flags "$TMP/mail/alice" >"$atable"
  # (a) The flood is flagged from the message that took the episode to the defer level on: before
  # it none, from it every one, each with the one episode and a score in [2, 10).
  FLAG_EPISODE=""
  for ((i = 1; i <= FLOOD_MESSAGES; i++)); do
    flags=$(flags_of "$table" "fg$i")
    if [[ -z $flags ]]; then
      [[ $first -eq 0 ]] || fail "flag mode: fg$i has no $FLAG_HEADER although fg$first had one (the episode stays at the defer level)"
      continue
    fi
    [[ $first -eq 0 ]] && first=$i
    [[ $flags != *" | "* ]] || fail "flag mode: fg$i carries $FLAG_HEADER twice: $flags"
    check_flag_value "$flags" 10 "fg$i"
    max_score=${flags##*score=}
    n_flagged=$((n_flagged + 1))
  done
  [[ $first -ne 0 ]] || fail "flag mode: none of the $FLOOD_MESSAGES flood messages in $BOB's mbox has $FLAG_HEADER"
  [[ $first -gt 1 ]] || fail "flag mode: the first flood message already has $FLAG_HEADER (expected a few below the defer level)"
  # The log says which RCPT got the PREPEND: the first one for bob must be that of fg$first.
  log=$(tail -n +"$((mark + 1))" "$RG_LOG" | grep -E "REQUEST .*state=\"?RCPT\"? .*recipient=<$BOB>")
  position=$(grep -n -m1 "action=PREPEND $FLAG_HEADER: $BOB " <<<"$log" | cut -d: -f1)
  [[ $position == "$first" ]] ||
    fail "flag mode: rcptguard's first PREPEND for $BOB was for its RCPT no. ${position:-none} in this phase, but the first flagged message is fg$first"
  prepends=$(grep -c "action=PREPEND $FLAG_HEADER: $BOB " <<<"$log")
  [[ $prepends -eq $((n_flagged + 1)) ]] ||
    fail "flag mode: rcptguard answered PREPEND $prepends times for $BOB, the mbox has $n_flagged flagged flood messages + g-both"
  [[ $(timeout 10 sqlite3 "$db" "SELECT started_utc FROM v_alerts WHERE recipient = '$BOB'") == "$FLAG_EPISODE" ]] ||
    fail "flag mode: episode=$FLAG_EPISODE in the header, but v_alerts says the episode started $(timeout 10 sqlite3 "$db" "SELECT started_utc FROM v_alerts WHERE recipient = '$BOB'")"
  [[ ! $FLAG_EPISODE < $started ]] || fail "flag mode: episode=$FLAG_EPISODE is before this phase started ($started)"
  say "flag mode: fg1..fg$((first - 1)) plain, fg$first..fg$FLOOD_MESSAGES flagged (episode=$FLAG_EPISODE, last score=$max_score); first header:"
  printf '  %s: %s\n' "$FLAG_HEADER" "$(flags_of "$table" "fg$first")"

  # (b) Another recipient's mail is not flagged.
  [[ -z $(flags_of "$atable" g-alice) ]] || fail "flag mode: g-alice (only to $ALICE) has $FLAG_HEADER: $(flags_of "$atable" g-alice)"
  # A message to bob and alice: the PREPEND of bob's RCPT is in both copies, naming bob.
  flags=$(flags_of "$table" g-both)
  check_flag_value "$flags" 10 "g-both ($BOB's copy)"
  [[ $(flags_of "$atable" g-both) == "$flags" ]] ||
    fail "flag mode: $ALICE's copy of g-both has '$(flags_of "$atable" g-both)', expected bob's header '$flags' (Postfix applies a RCPT PREPEND to the whole message)"
  # (c) The known correspondent and the allow-listed sender are not flagged.
  for id in g-friend g-vip; do
    [[ -z $(flags_of "$table" "$id") ]] || fail "flag mode: $id has $FLAG_HEADER: $(flags_of "$table" "$id")"
  done
  say "flag mode: not flagged: mail to $ALICE only, from correspondent $FRIEND, from allow-listed $VIP;"
  say "  a message to $BOB and $ALICE carries $BOB's header in both copies"
  check_verdicts_stored "$db" 0
  check_flag_verdicts "$db" "$prepends" 0
  check_alert_command "$alerts" "$command_out" "$db" "$FLAG_EPISODE" "$(tail -n +"$((mark + 1))" "$RG_LOG")"
  say "flag mode: $BOB in the store: $(timeout 10 sqlite3 "$db" "SELECT sum(accepted) || ' accepted of ' || sum(attempted) || ' attempted' FROM v_recipient_hourly WHERE recipient = '$BOB'")"

  # The rules of contrib/mail-filters/ on what Postfix delivered.
  local filters="$TMP/filters" check rc
  check="$(dirname "$0")/mail_filters_check.sh"
  mkdir -p "$filters"
  extract_message "$TMP/mail/bob" "fg$FLOOD_MESSAGES" "$filters/bob-flood.eml" || fail "cannot extract fg$FLOOD_MESSAGES"
  extract_message "$TMP/mail/bob" g-both "$filters/bob-both.eml" || fail "cannot extract g-both from $BOB's mbox"
  extract_message "$TMP/mail/alice" g-both "$filters/alice-both.eml" || fail "cannot extract g-both from $ALICE's mbox"
  extract_message "$TMP/mail/bob" g-friend "$filters/bob-friend.eml" || fail "cannot extract g-friend"
  extract_message "$TMP/mail/bob" fg1 "$filters/bob-first.eml" || fail "cannot extract fg1"
  bash "$check" --case "$filters/bob-flood.eml" "$BOB" junk --case "$filters/bob-both.eml" "$BOB" junk \
    --case "$filters/alice-both.eml" "$ALICE" inbox --case "$filters/bob-friend.eml" "$BOB" inbox \
    --case "$filters/bob-first.eml" "$BOB" inbox >"$filters/check.txt" 2>&1
  rc=$?
  case $rc in
    0) say "contrib/mail-filters on the delivered messages:"; grep -E '^(ok|SKIP) ' "$filters/check.txt" | sed 's/^/  /' ;;
    77) say "contrib/mail-filters not checked: $(grep -m1 '^SKIP:' "$filters/check.txt")" ;;
    *) cat "$filters/check.txt"; fail "contrib/mail-filters misfiled a delivered message (mail_filters_check.sh exit $rc)" ;;
  esac
}

# The default hard_defer_score (3): the flood is flagged while its score is from 2 to below 3, and
# deferred from 3 on.
phase_flag_hard_defer() {
  local db="$TMP/rcptguard/flag-hard.db" table="$TMP/flags-bob-hard.tsv" i flags
  local flagged=0 deferred=0 first_flagged=0 first_deferred=0
  [[ $FLOOD_MESSAGES -ge 40 ]] || fail "the hard_defer_score phase needs RCPTGUARD_E2E_FLOOD_MESSAGES >= 40"
  say "phase 5b: flood of $FLOOD_MESSAGES messages to $BOB, enforce_action=flag, default hard_defer_score"
  start_rcptguard "$db" -o detection.mode=enforce -o detection.enforce_action=flag "${FLOOD_OPTS[@]}"
  flood_bob h
  for ((i = 1; i <= FLOOD_MESSAGES; i++)); do
    if grep -Eq "^<\*\* *4[0-9][0-9] .*<$BOB>" "$TMP/swaks/fh$i.txt"; then
      deferred=$((deferred + 1))
      [[ $first_deferred -eq 0 ]] && first_deferred=$i
    elif ! queued "fh$i"; then
      fail "hard defer: fh$i neither accepted nor deferred: $(grep -m1 -E '^<\*\* ' "$TMP/swaks/fh$i.txt")"
    fi
  done
  wait_in_mbox "$TMP/mail/bob" 'fh[0-9]+' $((FLOOD_MESSAGES - deferred)) 60 ||
    fail "hard defer: $(count_in_mbox "$TMP/mail/bob" 'fh[0-9]+') of $((FLOOD_MESSAGES - deferred)) accepted messages delivered"
  stop_rcptguard
  check_rcptguard_log_clean
  mbox_flags "$TMP/mail/bob" >"$table"
  FLAG_EPISODE=""
  for ((i = 1; i <= FLOOD_MESSAGES; i++)); do
    flags=$(flags_of "$table" "fh$i")
    [[ -n $flags ]] || continue
    check_flag_value "$flags" 3 "fh$i"
    flagged=$((flagged + 1))
    [[ $first_flagged -eq 0 ]] && first_flagged=$i
  done
  [[ $flagged -ge 1 ]] || fail "hard defer: no message was flagged before the score reached 3"
  [[ $deferred -ge 1 ]] || fail "hard defer: no message got a 4xx (the score never reached hard_defer_score 3?)"
  check_flag_verdicts "$db" "$flagged" "$deferred"
  [[ $first_flagged -lt $first_deferred ]] ||
    fail "hard defer: the first 4xx (fh$first_deferred) came before the first flagged message (fh$first_flagged)"
  say "hard defer: fh$first_flagged.. flagged ($flagged, scores below 3), fh$first_deferred.. deferred ($deferred 4xx); first refusal:"
  grep -hEm1 "^<\*\* *4[0-9][0-9] " "$TMP/swaks/fh$first_deferred.txt" | sed 's/^/  /'
}

# Two MX hosts behind one Redis: a flood split between them is deferred by both at the
# cluster's defer point, which neither reaches alone. The 10-minute window alone judges (warn
# 20, defer 40): the 1-minute window is set out of reach (its count weighs the minute before),
# and so are the signals of one client (swaks always connects from 127.0.0.1), which would
# defer a one-client flood sooner on a single host too.
phase_cluster() {
  say "phase 7: two MX hosts (mx1, mx2), each with its own rcptguard, sharing counts through Redis"
  local redis_bin redis_sock i id log
  redis_bin=$(command -v redis-server) || skip "redis-server is not installed (contrib/install-deps.sh --test)"
  mkdir -p "$TMP/redis"
  redis_sock="$TMP/redis/redis.sock"
  "$redis_bin" --port 0 --unixsocket "$redis_sock" --unixsocketperm 700 --dir "$TMP/redis" \
    --save "" --appendonly no --daemonize no --logfile "$TMP/redis/redis.log" </dev/null &
  REDIS_PID=$!
  for ((i = 0; i < 100; i++)); do
    [[ -S $redis_sock ]] && break
    sleep 0.1
  done
  [[ -S $redis_sock ]] || fail "redis-server did not create $redis_sock within 10s"

  MX2_ROOT="$TMP/mx2"
  mkdir -p "$MX2_ROOT/rcptguard" "$MX2_ROOT/run" "$MX2_ROOT/swaks"
  chmod 0755 "$MX2_ROOT" "$MX2_ROOT/run"
  pick_free_port "$POLICY_PORT" "$SMTP_PORT" || fail "no free loopback port for mx2's rcptguard"
  MX2_POLICY_PORT=$PICKED
  pick_free_port "$POLICY_PORT" "$SMTP_PORT" "$MX2_POLICY_PORT" || fail "no free loopback port for mx2's smtpd"
  MX2_SMTP_PORT=$PICKED

  local -a cluster_opts=(-o "cluster.redis=unix:$redis_sock" -o cluster.interval=100ms
    -o cluster.max_age=1s -o detection.mode=enforce
    -o detection.thresholds.minute_warn_floor=100000 -o detection.thresholds.minute_defer_floor=200000
    -o detection.thresholds.single_client_weight=0 -o detection.thresholds.connection_rate_weight=0
    -o detection.thresholds.concentration_weight=0)
  # Each host its own control socket, as on two machines.
  start_rcptguard "$TMP/rcptguard/cluster-mx1.db" "${cluster_opts[@]}" -o cluster.node=mx1 \
    -o "control.socket=$TMP/run/mx1.control"
  mx2 make_private_postfix || mx2_failed "making the second Postfix"
  mx2 start_mx2_rcptguard "$MX2_ROOT/rcptguard/cluster-mx2.db" "${cluster_opts[@]}" -o cluster.node=mx2 \
    -o "control.socket=$MX2_ROOT/run/mx2.control" || mx2_failed "starting the second rcptguard"
  mx2 start_private_postfix || mx2_failed "starting the second Postfix"
  MX2_PF_STARTED=1
  for log in "$RG_LOG" "$MX2_ROOT/rcptguard/rcptguard.log"; do
    for ((i = 0; i < 100; i++)); do
      grep -q 'CLUSTER CONNECTED' "$log" && break
      sleep 0.1
    done
    grep -q 'CLUSTER CONNECTED' "$log" || fail "no CLUSTER CONNECTED in $log within 10s"
  done
  say "mx1: Postfix 127.0.0.1:$SMTP_PORT -> rcptguard :$POLICY_PORT; mx2: Postfix 127.0.0.1:$MX2_SMTP_PORT -> rcptguard :$MX2_POLICY_PORT"

  # 60 messages to bob, alternately through mx1 (odd) and mx2 (even): 30 each.
  local first_deferred=0 deferred_a=0 deferred_b=0 accepted=0
  for ((i = 1; i <= 60; i++)); do
    id="c$i"
    if ((i % 2 == 1)); then
      send_mail "$id" "$BOB"
    else
      SMTP_PORT=$MX2_SMTP_PORT send_mail "$id" "$BOB"
    fi
    if grep -Eq "^<\*\* *4[0-9][0-9] .*<$BOB>" "$TMP/swaks/$id.txt"; then
      ((first_deferred == 0)) && first_deferred=$i
      if ((i % 2 == 1)); then deferred_a=$((deferred_a + 1)); else deferred_b=$((deferred_b + 1)); fi
    elif queued "$id"; then
      accepted=$((accepted + 1))
    else
      fail "message $id was neither accepted nor deferred (see $TMP/swaks/$id.txt)"
    fi
  done
  say "cluster flood: $accepted accepted, deferred $deferred_a by mx1 and $deferred_b by mx2, the first at message $first_deferred of 60"
  ((deferred_a >= 1 && deferred_b >= 1)) ||
    fail "a flood split across the two MX hosts was not deferred by both (mx1 $deferred_a, mx2 $deferred_b)"
  # Each host alone counted at most 30, under its defer point of 40: the deferrals rest on the
  # cluster's count, which reaches 40 at the 40th message (a round's staleness later at most).
  ((first_deferred >= 40)) || fail "the first deferral came at message $first_deferred, before the cluster's 40th"
  grep -hEm1 "^<\*\* *4[0-9][0-9] " "$TMP"/swaks/c*.txt | head -n 1 | sed 's/^/  /'

  SMTP_PORT=$MX2_SMTP_PORT send_mail c-alice "$ALICE" || fail "swaks to $ALICE through mx2 failed"
  queued c-alice || fail "mail to $ALICE through mx2 was not accepted during the flood to $BOB"
  send_mail c-carol "$CAROL" || fail "swaks to $CAROL through mx1 failed"
  queued c-carol || fail "mail to $CAROL through mx1 was not accepted during the flood to $BOB"
  say "other recipients still get mail through both hosts"

  stop_rcptguard
  stop_mx2
  local id_a id_b
  id_a=$(timeout 10 sqlite3 "$TMP/rcptguard/cluster-mx1.db" \
    "SELECT group_concat(DISTINCT cluster_id) FROM episode WHERE recipient = '$BOB'")
  id_b=$(timeout 10 sqlite3 "$MX2_ROOT/rcptguard/cluster-mx2.db" \
    "SELECT group_concat(DISTINCT cluster_id) FROM episode WHERE recipient = '$BOB'")
  [[ -n $id_a && $id_a == "$id_b" && $id_a =~ ^mx[12]: ]] ||
    fail "the two hosts' episodes do not name one flood: mx1 '$id_a', mx2 '$id_b'"
  say "one flood, one id on both hosts: $id_a"
  check_rcptguard_log_clean
}

# ---------------------------------------------------------------------------------------------
# Main.

TMP=$(mktemp -d "${RCPTGUARD_E2E_TMP:-/tmp}/rcptguard-e2e.XXXXXX") || fail "mktemp failed"
# The postfix user (smtpd: the socket; maillog) and nobody (virtual: the mbox files) must be able
# to reach paths below it.
chmod 0755 "$TMP"
mkdir -p "$TMP/rcptguard" "$TMP/run" "$TMP/swaks"
chmod 0755 "$TMP/run"
RG_LOG="$TMP/rcptguard/rcptguard.log"
SOCK="$TMP/run/rcptguard.sock"
runuser -u postfix -- test -x "$TMP/run" ||
  fail "$TMP is not reachable by user postfix (set RCPTGUARD_E2E_TMP to a searchable directory)"

pick_free_port || fail "no free loopback port for rcptguard"
POLICY_PORT=$PICKED
pick_free_port "$POLICY_PORT" || fail "no free loopback port for Postfix smtpd"
SMTP_PORT=$PICKED
say "temp dir $TMP; rcptguard on 127.0.0.1:$POLICY_PORT and $SOCK; Postfix smtpd on 127.0.0.1:$SMTP_PORT"

"$RCPTGUARD" check-config --config "$CONFIG" >"$TMP/rcptguard/check-config.txt" 2>&1 ||
  fail "rcptguard check-config --config $CONFIG failed: $(head -c 400 "$TMP/rcptguard/check-config.txt")"

make_private_postfix
start_rcptguard "$TMP/rcptguard/rcptguard.db"
start_private_postfix
phase_delivery
phase_daemon_down
if [[ $FLOOD == 1 ]]; then
  phase_flood
  phase_spool
else
  say "flood phase not run (enable with --flood or RCPTGUARD_E2E_FLOOD=1)"
fi
if [[ $FLAG == 1 ]]; then
  phase_flag
  phase_flag_hard_defer
else
  say "flag phase not run (enable with --flag or RCPTGUARD_E2E_FLAG=1)"
fi
if [[ $CLUSTER == 1 ]]; then
  phase_cluster
else
  say "cluster phase not run (enable with --cluster or RCPTGUARD_E2E_CLUSTER=1)"
fi
exit 0
