#!/bin/sh
# rcptguard [alerts] command: POSTs one alert, the JSON object on stdin, to a webhook.
#
#   [alerts]
#   command = ["/usr/local/bin/alert-webhook.sh", "https://hooks.example.test/rcptguard"]
#
# The object is sent as it is (Content-Type: application/json); a chat service that wants its
# own payload needs a relay, or a jq filter in a copy of this script. Fails (non-zero) on an
# HTTP error status, so the daemon logs the run as failed with curl's message. The transfer is
# capped at $RCPTGUARD_WEBHOOK_TIMEOUT seconds (default 8), below alerts.command_timeout's
# default of 10 s, so curl reports a slow server itself instead of being killed.
set -eu

if [ $# -lt 1 ] || [ -z "$1" ]; then
  echo "usage: alert-webhook.sh URL < alert.json" >&2
  exit 64
fi
url=$1
max_time=${RCPTGUARD_WEBHOOK_TIMEOUT:-8}

# http(s) only, so a mistyped URL cannot make curl read or write a local file.
head -c 65536 |
  curl --silent --show-error --fail --max-time "$max_time" --proto '=http,https' \
    --header 'Content-Type: application/json' --data-binary @- --output /dev/null --url "$url"
