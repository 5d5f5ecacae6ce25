#!/usr/bin/env bash
# The README's walk-through ("Who got flooded last week?") as a new user runs it, on the sample
# logs contrib/sample-logs.sh writes: replay the Postfix log into a fresh database, then the
# review commands and the report the README shows. Checked against the generator's labels: every
# labelled flood is an alert of last week and nothing else is; `top` ranks the flooded mailboxes
# first; `explain` of the one-client bomb names its sender and client and what was answered;
# the Sendmail rendering of the same traffic gives the same alerts; the report is written.
#
#   walkthrough.sh --rcptguard BIN
#
# Exit 0 passed, 1 failed. Bounded: a few seconds of generation and replay, no daemon.
set -euo pipefail

RCPTGUARD=""
while (($#)); do
  case $1 in
    --rcptguard) RCPTGUARD=$2; shift 2 ;;
    *) echo "usage: ${0##*/} --rcptguard BIN" >&2; exit 2 ;;
  esac
done
[[ -x $RCPTGUARD ]] || { echo "FAIL: no rcptguard binary at '$RCPTGUARD'"; exit 1; }
root=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rcptguard-walkthrough.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

bash "$root/contrib/sample-logs.sh" "$TMP/samples" | tee "$TMP/samples.out"
week=$(sed -n 's/.*last week: //p' "$TMP/samples.out")
[[ $week =~ ^--since\ ([0-9-]+)\ --until\ ([0-9-]+)$ ]] || fail "no dates of last week: '$week'"
since=${BASH_REMATCH[1]}
until=${BASH_REMATCH[2]}

for format in postfix sendmail; do
  "$RCPTGUARD" ingest -c "$root/etc/rcptguard.toml" -o "store.path=$TMP/$format.db" \
    "$TMP/samples/$format.log" >"$TMP/ingest-$format.out" 2>&1 ||
    fail "ingest of the $format sample: $(cat "$TMP/ingest-$format.out")"
  "$RCPTGUARD" review alerts -d "$TMP/$format.db" --since "$since" --until "$until" \
    --format json >"$TMP/alerts-$format.jsonl" || fail "review alerts ($format)"
done
# What the README's '--since 14d' shows is last week's alerts, whatever day of this week it is.
"$RCPTGUARD" review alerts -d "$TMP/postfix.db" --since 14d --format json >"$TMP/alerts-14d.jsonl"
"$RCPTGUARD" review top -d "$TMP/postfix.db" --since "$since" --until "$until" --limit 5 \
  --format json >"$TMP/top.jsonl"
bomb=$(python3 -c 'import json,sys; print([f["recipient"] for f in json.load(open(sys.argv[1]))["floods"] if "one client" in f["kind"]][0])' "$TMP/samples/labels.json")
"$RCPTGUARD" review explain "$bomb" -d "$TMP/postfix.db" --since "$since" --until "$until" \
  --format json >"$TMP/explain.jsonl"
"$RCPTGUARD" review explain "$bomb" -d "$TMP/postfix.db" --since "$since" --until "$until" \
  >"$TMP/explain.txt"
"$RCPTGUARD" review actions -d "$TMP/postfix.db" --since "$since" --until "$until" \
  >"$TMP/actions.txt"
"$RCPTGUARD" report --html "$TMP/last-week.html" -d "$TMP/postfix.db" --since "$since" \
  --until "$until" || fail "report --html"

python3 - "$TMP" <<'PY' || fail "the walk-through's answers differ from the labels (above)"
import json, sys
tmp = sys.argv[1]
labels = json.load(open(f"{tmp}/samples/labels.json"))
floods = {f["recipient"]: f for f in labels["floods"]}

def records(name, kind):
    return [r for r in map(json.loads, open(f"{tmp}/{name}")) if r["type"] == kind]

ok = True
def check(cond, what):
    global ok
    print(("ok   " if cond else "FAIL ") + what)
    ok = ok and cond

alerts = records("alerts-postfix.jsonl", "episode")
check(sorted(a["recipient"] for a in alerts) == sorted(floods),
      f"last week's alerts are the {len(floods)} floods: {sorted(a['recipient'] for a in alerts)}")
check(all(a["verdicts"] > 0 and a["state"] == "closed" for a in alerts),
      "each has verdicts and has ended")
sendmail = records("alerts-sendmail.jsonl", "episode")
check(sorted(a["recipient"] for a in sendmail) == sorted(floods),
      "the Sendmail rendering gives the same alerts")
check(sorted(a["recipient"] for a in records("alerts-14d.jsonl", "episode")) == sorted(floods),
      "--since 14d shows the same")
top = [r["recipient"] for r in records("top.jsonl", "top")]
check(sorted(top) == sorted(floods), f"top ranks the flooded mailboxes first: {top}")
bomb = [f for f in labels["floods"] if "one client" in f["kind"]][0]
senders = records("explain.jsonl", "sender")
clients = records("explain.jsonl", "client")
episodes = records("explain.jsonl", "episode")
check(len(episodes) == 1 and episodes[0]["requests"] > 0,
      f"explain {bomb['recipient']}: one episode with its answers")
check(senders and senders[0]["requests"] >= 0.9 * episodes[0]["requests"],
      f"explain: one sender made the flagged requests: {senders[0]['sender'] if senders else None}")
check(clients and clients[0]["requests"] >= 0.9 * episodes[0]["requests"],
      f"explain: from one client: {clients[0]['client'] if clients else None}")
sys.exit(0 if ok else 1)
PY
grep -q "would have been deferred in enforce mode" "$TMP/explain.txt" ||
  fail "explain does not say what enforce mode would have done"
grep -q "No operator actions" "$TMP/actions.txt" || fail "review actions: $(cat "$TMP/actions.txt")"
[[ -s $TMP/last-week.html ]] || fail "the report is empty"
echo "PASS"
