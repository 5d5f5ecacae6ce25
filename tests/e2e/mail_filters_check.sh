#!/usr/bin/env bash
# Checks the delivery-agent rules of contrib/mail-filters/ (files flood-flagged mail into Junk):
#
#   mail_filters_check.sh [--filters DIR] [--case MESSAGE RECIPIENT junk|inbox]...
#
#   - rcptguard-flood.sieve: compiled with Dovecot's sievec, then run on each case with sieve-test
#     (a dry run: it prints the actions, delivers nothing);
#   - procmailrc.example and maildroprc.example: run by procmail and maildrop on each case, into
#     Maildirs in a temporary directory (never the machine's own mail spool).
#
# Without --case it runs built-in cases: a message flagged for bob filed for bob (also as
# bob+tag, and in other letter case), kept for alice (a multi-recipient message carries the
# header of its flooded recipient to every recipient) and for an address that is only a prefix;
# a message with two flood headers filed for each recipient they name; an unflagged message kept.
# postfix_e2e.sh --flag passes messages Postfix really delivered.
#
# A tool that is not installed is skipped with a message (sievec and sieve-test: Debian package
# dovecot-sieve, installed by contrib/install-deps.sh --test; procmail; maildrop). As root the
# filters run as user nobody.
#
# Exit status: 0 PASS (every installed tool agreed with every case), 1 FAIL, 77 SKIP (none of
# the tools is installed).
set -uo pipefail

FILTERS=$(cd "$(dirname "$0")/../../contrib/mail-filters" 2>/dev/null && pwd)
CASES=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --filters) FILTERS=${2:-}; shift 2 || exit 2 ;;
    --case)
      [[ $# -ge 4 ]] || { echo "--case needs MESSAGE RECIPIENT junk|inbox" >&2; exit 2; }
      [[ $4 == junk || $4 == inbox ]] || { echo "--case: expected junk or inbox, not $4" >&2; exit 2; }
      CASES+=("$2" "$3" "$4")
      shift 4
      ;;
    *) echo "usage: ${0##*/} [--filters DIR] [--case MESSAGE RECIPIENT junk|inbox]..." >&2; exit 2 ;;
  esac
done
[[ -n $FILTERS && -r $FILTERS/rcptguard-flood.sieve ]] || { echo "FAIL: no rcptguard-flood.sieve in ${FILTERS:-contrib/mail-filters}"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rcptguard-filters.XXXXXX") || exit 1
trap 'rm -rf -- "$TMP"' EXIT
chmod 0755 "$TMP"

# Who runs the filters: procmail and maildrop refuse or misbehave as root, sieve-test drops to
# mail_uid.
RUN=()
RUN_USER=$(id -un)
if [[ $(id -u) -eq 0 ]]; then
  RUN_USER=nobody
  RUN=(runuser -u nobody --)
fi

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }

if [[ ${#CASES[@]} -eq 0 ]]; then
  mkdir -p "$TMP/cases"
  cat >"$TMP/cases/flood-bob.eml" <<'EOF'
X-Rcptguard-Flood: bob@example.test episode=2026-12-05T10:00:00Z score=2.4
Received: from client.example.test by mx.example.test; Sat, 5 Dec 2026 10:04:00 +0000
From: newsletter@list.example
To: bob@example.test, alice@example.test
Subject: Please confirm your subscription

confirm
EOF
  cat >"$TMP/cases/flood-two.eml" <<'EOF'
X-Rcptguard-Flood: carol@example.test episode=2026-12-05T09:50:00Z score=2.1
X-Rcptguard-Flood: b.b@example.test episode=2026-12-05T10:00:00Z score=2.9
From: newsletter@list.example
To: carol@example.test, b.b@example.test, alice@example.test
Subject: Welcome

welcome
EOF
  cat >"$TMP/cases/plain.eml" <<'EOF'
From: friend@remote.example
To: bob@example.test
Subject: Lunch?

lunch
EOF
  c=$TMP/cases
  CASES=(
    "$c/flood-bob.eml" bob@example.test junk
    "$c/flood-bob.eml" bob+news@example.test junk
    "$c/flood-bob.eml" Bob@Example.TEST junk
    "$c/flood-bob.eml" alice@example.test inbox
    "$c/flood-bob.eml" bo@example.test inbox
    "$c/flood-two.eml" carol@example.test junk
    "$c/flood-two.eml" b.b@example.test junk
    "$c/flood-two.eml" bxb@example.test inbox
    "$c/flood-two.eml" alice@example.test inbox
    "$c/plain.eml" bob@example.test inbox
  )
fi
for ((i = 0; i < ${#CASES[@]}; i += 3)); do
  [[ -r ${CASES[i]} ]] || { echo "FAIL: cannot read ${CASES[i]}"; exit 1; }
  cp -- "${CASES[i]}" "$TMP/case$((i / 3)).eml"
done

tools=0

# --- Sieve -------------------------------------------------------------------------------------
if command -v sievec >/dev/null 2>&1 && command -v sieve-test >/dev/null 2>&1; then
  tools=$((tools + 1))
  d=$TMP/sieve
  mkdir -p "$d"
  cp -- "$FILTERS/rcptguard-flood.sieve" "$d/"
  # A configuration of our own: the machine's Dovecot settings (or their absence) do not matter.
  {
    echo "mail_location = maildir:$d/Maildir"
    if [[ $(id -u) -eq 0 ]]; then echo "mail_uid = nobody"; echo "mail_gid = $(id -gn nobody)"; fi
  } >"$d/dovecot.conf"
  [[ $(id -u) -eq 0 ]] && chown -R nobody "$d"
  if sievec -c "$d/dovecot.conf" "$d/rcptguard-flood.sieve" "$d/compiled.svbin" >"$d/sievec.txt" 2>&1; then
    ok "sievec compiles rcptguard-flood.sieve"
    for ((i = 0; i < ${#CASES[@]}; i += 3)); do
      msg=$TMP/case$((i / 3)).eml rcpt=${CASES[i + 1]} want=${CASES[i + 2]} got=none
      sieve-test -c "$d/dovecot.conf" -a "$rcpt" -r "$rcpt" "$d/rcptguard-flood.sieve" "$msg" \
        >"$d/out.txt" 2>&1
      if grep -q 'store message in folder: Junk' "$d/out.txt"; then
        got=junk
      elif grep -q 'store message in folder: INBOX' "$d/out.txt"; then
        got=inbox
      fi
      if [[ $got == "$want" ]]; then
        ok "sieve     ${CASES[i]##*/} for $rcpt -> $got"
      else
        bad "sieve     ${CASES[i]##*/} for $rcpt -> $got, expected $want:"
        sed 's/^/       /' "$d/out.txt"
      fi
    done
  else
    bad "sievec cannot compile rcptguard-flood.sieve:"
    sed 's/^/       /' "$d/sievec.txt"
  fi
else
  echo "SKIP sieve: sievec/sieve-test not installed (Debian package dovecot-sieve; contrib/install-deps.sh --test)"
fi

# Runs one procmail or maildrop case in a fresh home; sets GOT to junk, inbox or none.
fresh_home() {
  rm -rf -- "$1"
  mkdir -p "$1/Maildir/cur" "$1/Maildir/new" "$1/Maildir/tmp"
  [[ $(id -u) -eq 0 ]] && chown -R "$RUN_USER" "$1"
}
where_delivered() { # home
  GOT=none
  if compgen -G "$1/Maildir/.Junk/new/*" >/dev/null; then
    GOT=junk
  elif compgen -G "$1/Maildir/new/*" >/dev/null; then
    GOT=inbox
  fi
}

# --- procmail ----------------------------------------------------------------------------------
if command -v procmail >/dev/null 2>&1; then
  tools=$((tools + 1))
  d=$TMP/procmail
  mkdir -p "$d"
  install -m 0644 -- "$FILTERS/procmailrc.example" "$d/procmailrc"
  # Filter mode (-m) with the example included and the inbox a Maildir: procmail then touches
  # neither the system mailbox (/var/mail/USER) nor a lock file.
  printf 'LOGFILE=%s\nDEFAULT=%s\nINCLUDERC=%s\n:0\n%s\n' "$d/home/log" "$d/home/Maildir/" \
    "$d/procmailrc" "$d/home/Maildir/" >"$d/wrapper.rc"
  chmod 0644 "$d/wrapper.rc"
  for ((i = 0; i < ${#CASES[@]}; i += 3)); do
    msg=$TMP/case$((i / 3)).eml rcpt=${CASES[i + 1]} want=${CASES[i + 2]}
    fresh_home "$d/home"
    # RCPTGUARD_RECIPIENT as Postfix passes it with
    # mailbox_command = procmail -a "$EXTENSION" RCPTGUARD_RECIPIENT="$RECIPIENT"
    "${RUN[@]}" procmail -m "RCPTGUARD_RECIPIENT=$rcpt" "HOME=$d/home" "$d/wrapper.rc" \
      <"$msg" >/dev/null 2>&1
    where_delivered "$d/home"
    if [[ $GOT == "$want" ]]; then
      ok "procmail  ${CASES[i]##*/} for $rcpt -> $GOT"
    else
      bad "procmail  ${CASES[i]##*/} for $rcpt -> $GOT, expected $want"
      [[ -r $d/home/log ]] && sed 's/^/       /' "$d/home/log"
    fi
  done
else
  echo "SKIP procmail: not installed (Debian package procmail)"
fi

# --- maildrop ----------------------------------------------------------------------------------
if command -v maildrop >/dev/null 2>&1; then
  tools=$((tools + 1))
  d=$TMP/maildrop
  mkdir -p "$d"
  chmod 0755 "$d"
  # maildrop reads a filter file only when the user running it owns it, writable by no one else.
  install -m 0600 -- "$FILTERS/maildroprc.example" "$d/rcptguard.rc"
  printf 'DEFAULT="%s"\nHOME="%s"\ninclude "%s"\n' "$d/home/Maildir/" "$d/home" "$d/rcptguard.rc" >"$d/mailfilter"
  chmod 0600 "$d/mailfilter"
  [[ $(id -u) -eq 0 ]] && chown "$RUN_USER" "$d/rcptguard.rc" "$d/mailfilter"
  for ((i = 0; i < ${#CASES[@]}; i += 3)); do
    msg=$TMP/case$((i / 3)).eml rcpt=${CASES[i + 1]} want=${CASES[i + 2]}
    fresh_home "$d/home"
    # As under Postfix local(8): RECIPIENT in the environment.
    "${RUN[@]}" env "RECIPIENT=$rcpt" maildrop "$d/mailfilter" <"$msg" >"$d/out.txt" 2>&1
    where_delivered "$d/home"
    if [[ $GOT == "$want" ]]; then
      ok "maildrop  ${CASES[i]##*/} for $rcpt -> $GOT"
    else
      bad "maildrop  ${CASES[i]##*/} for $rcpt -> $GOT, expected $want"
      sed 's/^/       /' "$d/out.txt"
    fi
  done
else
  echo "SKIP maildrop: not installed (Debian package maildrop)"
fi

echo "mail filters: $passed passed, $failed failed"
if [[ $failed -gt 0 ]]; then
  echo "FAIL"
  exit 1
fi
if [[ $tools -eq 0 ]]; then
  echo "SKIP: none of sievec, procmail, maildrop is installed"
  exit 77
fi
echo "PASS"
