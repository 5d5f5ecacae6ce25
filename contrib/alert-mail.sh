#!/bin/sh
# rcptguard [alerts] command: mails one alert to a security mailbox.
#
#   [alerts]
#   command = ["/usr/local/bin/alert-mail.sh", "security@example.test"]
#
# The alert's JSON object arrives on stdin. The mailbox is the first argument, else
# $RCPTGUARD_ALERT_MAILTO. The mail goes through sendmail -t ($RCPTGUARD_SENDMAIL, default
# /usr/sbin/sendmail). With jq installed the body starts with a readable summary; without it the
# body is the JSON as received. The recipient and verdict in the subject come from the alert, so
# they are cut down to printable ASCII: a CR or LF there would let an attacker's address add
# headers such as Bcc to a mail that sendmail -t addresses from its headers.
set -eu

to=${1:-${RCPTGUARD_ALERT_MAILTO:-}}
if [ -z "$to" ]; then
  echo "alert-mail.sh: no mailbox: pass it as the first argument or set RCPTGUARD_ALERT_MAILTO" >&2
  exit 64
fi
to=$(printf '%s' "$to" | tr -d '\r\n')
sendmail=${RCPTGUARD_SENDMAIL:-/usr/sbin/sendmail}

# The daemon sends one line of a few KiB; the cap only bounds what a stray caller could pass.
alert=$(head -c 65536)

have_jq=false
if command -v jq >/dev/null 2>&1 && printf '%s' "$alert" | jq -e . >/dev/null 2>&1; then
  have_jq=true
fi

# One field of the alert, printable ASCII only and at most 200 characters.
field() {
  if $have_jq; then
    printf '%s' "$alert" | jq -r --arg name "$1" '.[$name] // "" | tostring'
  else
    printf '%s' "$alert" | sed -n "s/.*\"$1\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p"
  fi | LC_ALL=C tr -cd '[:print:]' | cut -c 1-200
}

recipient=$(field recipient)
verdict=$(field verdict)
case $(field escalated) in
  true) what="escalated to $verdict" ;;
  *) what=$verdict ;;
esac

{
  printf 'To: %s\n' "$to"
  printf 'Subject: [rcptguard] mail flood to %s: %s\n' "${recipient:-unknown recipient}" "${what:-alert}"
  printf 'Auto-Submitted: auto-generated\n'
  printf 'MIME-Version: 1.0\n'
  printf 'Content-Type: text/plain; charset=UTF-8\n'
  printf '\n'
  if $have_jq; then
    printf '%s' "$alert" | jq -r '"Recipient: \(.recipient)",
      "Verdict:   \(.verdict) (score \(.score)), since \(.started)",
      "Window:    \(.window): \(.observed) messages, baseline \(.baseline)",
      "Reasons:   \(.reasons)",
      "Source:    \(.source); MITRE ATT&CK \(.attack | join(", "))",
      ""'
    printf 'Email bombing often precedes a phone call from a fake help desk: warn the recipient.\n\n'
    printf '%s' "$alert" | jq .
  else
    printf '%s\n' "$alert"
  fi
} | "$sendmail" -t -i
