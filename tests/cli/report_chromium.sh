#!/usr/bin/env bash
# `rcptguard report --html` opened in a real browser (Debian's headless chromium):
#
#   report_chromium.sh --rcptguard PATH [--keep DIR]
#
# 1. Writes a Postfix log of nine days ending this hour: bob@ gets two messages an hour and, three
#    hours ago, a flood of 300 in ten minutes from one client; tickets@ gets six an hour (busy,
#    never flooded); a quoted local part with markup in it ("<img src=x onerror=...") gets a
#    flood too. `rcptguard ingest` replays it into a fresh database, `rcptguard scan` adds six
#    copies of one attachment in bob's mbox, and sqlite3 (when installed) adds an open episode
#    for the address <script>alert(1)</script>@x.
# 2. `rcptguard report --html` over the last two days, then chromium --dump-dom on the file.
# 3. Checks the DOM chromium built: the Content-Security-Policy is in force; the episodes-per-day
#    chart and bob's hourly chart exist and the numbers they claim (data-hours, data-bars,
#    data-marks, data-episodes) match the <rect>s and polyline points chromium parsed; tickets@ is
#    in the deviation table but has no section; no <script>, <img> or on* attribute came out of
#    the hostile addresses, whose text is there, escaped; and chromium logged no console message
#    at all (a CSP violation, a script error or a failed fetch would each log one). A control
#    page that does try to fetch proves the console capture works.
#
# Chromium runs with a temporary profile, --no-sandbox (root in CI), under `timeout`, in its own
# process group, which is killed when it is done; nothing else is touched.
#
# Exit status: 0 PASS, 1 FAIL, 2 usage, 77 SKIP (chromium is not installed: apt-get install
# chromium, or bash contrib/install-deps.sh --test).
set -uo pipefail

RCPTGUARD=
KEEP=
while [[ $# -gt 0 ]]; do
  case $1 in
    --rcptguard) RCPTGUARD=${2:-}; shift 2 || exit 2 ;;
    --keep) KEEP=${2:-}; shift 2 || exit 2 ;;
    *) echo "usage: ${0##*/} --rcptguard PATH [--keep DIR]" >&2; exit 2 ;;
  esac
done
[[ -x $RCPTGUARD ]] || { echo "usage: ${0##*/} --rcptguard PATH [--keep DIR]" >&2; exit 2; }

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $CHROMIUM ]]; then
  echo "SKIP: chromium is not installed (apt-get install chromium, or bash contrib/install-deps.sh --test)"
  exit 77
fi

export TZ=UTC LC_ALL=C
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rcptguard-report.XXXXXX") || exit 1
BROWSER_GROUP=
cleanup() {
  # Only the process group of the chromium this script started, if any of it is left.
  if [[ -n $BROWSER_GROUP ]]; then kill -KILL -- "-$BROWSER_GROUP" 2>/dev/null; fi
  if [[ -n $KEEP ]]; then mkdir -p "$KEEP" && cp -r "$TMP"/. "$KEEP"/; fi
  rm -rf -- "$TMP"
}
trap cleanup EXIT

failed=0
ok() { printf 'ok   %s\n' "$*"; }
bad() { failed=1; printf 'FAIL %s\n' "$*"; }
check() {  # check DESCRIPTION WANT GOT
  if [[ $2 == "$3" ]]; then ok "$1 ($3)"; else bad "$1: want $2, got $3"; fi
}

# Runs chromium on a file: the DOM to $2, its log to $3. set -m gives the background job a
# process group of its own (timeout's), which cleanup() kills should anything of it survive.
browse() {
  local page=$1 dom=$2 log=$3 profile
  profile=$(mktemp -d "$TMP/profile.XXXXXX")
  set -m
  timeout -k 5 60 "$CHROMIUM" --headless --disable-gpu --no-sandbox --no-first-run \
    --user-data-dir="$profile" --enable-logging=stderr --v=0 --dump-dom "file://$page" \
    >"$dom" 2>"$log" &
  BROWSER_GROUP=$!
  set +m
  wait "$BROWSER_GROUP"
  local status=$?
  kill -KILL -- "-$BROWSER_GROUP" 2>/dev/null
  BROWSER_GROUP=
  return $status
}

# ---------------------------------------------------------------------------------------------
# 1. The scenario.

now=$(date +%s)
this_hour=$((now - now % 3600))
start=$((this_hour - 9 * 86400))
flood=$((this_hour - 3 * 3600 + 300))
HOSTILE_LOG='"<img src=x onerror=alert(1)//"@x.test'
HOSTILE_DB='<script>alert(1)</script>@x'

qid=0
emit() {  # emit TIME RECIPIENT SENDER CLIENT
  local ts id
  printf -v ts '%(%Y-%m-%dT%H:%M:%S)T.000000+00:00' "$1"
  printf -v id '%010X' $((qid += 1))
  printf '%s mx postfix/smtpd[100]: %s: client=c.example[%s]\n' "$ts" "$id" "$4"
  printf '%s mx postfix/cleanup[101]: %s: message-id=<%s@x>\n' "$ts" "$id" "$id"
  printf '%s mx postfix/qmgr[102]: %s: from=<%s>, size=4000, nrcpt=1 (queue active)\n' "$ts" "$id" "$3"
  printf '%s mx postfix/local[103]: %s: to=<%s>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)\n' "$ts" "$id" "$2"
  printf '%s mx postfix/qmgr[102]: %s: removed\n' "$ts" "$id"
}

{
  for ((t = start; t < this_hour; t += 3600)); do
    emit $((t + 300)) bob@example.test friend1@partner.example 203.0.113.5
    for ((i = 0; i < 6; i++)); do
      emit $((t + 400 + i * 500)) tickets@example.test "customer$((t / 3600 % 50 + i))@c.example" "198.18.0.$((1 + i))"
    done
    emit $((t + 2100)) bob@example.test friend2@partner.example 203.0.113.6
    if ((t == flood - 300)); then
      for ((i = 0; i < 300; i++)); do
        emit $((flood + i * 2)) bob@example.test "x$i@bomb.example" 192.0.2.66
      done
    fi
    if ((t == flood - 300 - 86400)); then
      for ((i = 0; i < 200; i++)); do
        emit $((t + 1200 + i * 3)) "$HOSTILE_LOG" "y$i@bomb.example" "192.0.2.$((1 + i % 100))"
      done
    fi
  done
} >"$TMP/postfix.log"

DB=$TMP/rg.db
"$RCPTGUARD" ingest -o "store.path=$DB" "$TMP/postfix.log" >"$TMP/ingest.out" 2>&1 ||
  { cat "$TMP/ingest.out"; echo "FAIL: rcptguard ingest"; exit 1; }

# Six copies of one attachment in bob's mbox, stored during the flood.
mkdir -p "$TMP/spool"
for ((i = 0; i < 6; i++)); do
  t=$((flood + 10 + i * 20))
  printf 'From x%d@bomb.example  %(%a %b %e %H:%M:%S %Y)T\n' "$i" "$t"
  printf 'Received: from c.example (c.example [192.0.2.66])\n\tby mx.example.test (Postfix) with ESMTP id R%d\n\tfor <bob@example.test>; %(%a, %d %b %Y %H:%M:%S +0000)T\n' "$i" "$t"
  printf 'From: x%d@bomb.example\nTo: bob@example.test\nSubject: invoice %d\nMessage-Id: <r%d@bomb.example>\n' "$i" "$i" "$i"
  printf 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nsee attached\n'
  printf '%s\n' '--b' 'Content-Type: application/pdf; name="invoice.pdf"' \
    'Content-Disposition: attachment; filename="invoice.pdf"' 'Content-Transfer-Encoding: base64' '' \
    'JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoKdHJhaWxlcgo8PC9Sb290IDEgMCBSPj4KJSVFT0YK' \
    '--b--' ''
done >"$TMP/spool/bob"
"$RCPTGUARD" scan --root "$TMP/spool" --domain example.test -d "$DB" -o spool.window=1d \
  >"$TMP/scan.out" 2>&1 || { cat "$TMP/scan.out"; echo "FAIL: rcptguard scan"; exit 1; }

with_script_address=0
if command -v sqlite3 >/dev/null; then
  sqlite3 "$DB" "INSERT INTO episode (recipient, started, updated, peak_level, peak_score,
                   peak_window, peak_observed, peak_baseline, summary, source)
                 VALUES ('$HOSTILE_DB', $((this_hour - 5400)), $((this_hour - 4000)), 'defer', 3.5,
                   '10m', 40, 1, 'rcptguard: $HOSTILE_DB 40 msgs/10m', 'policy')" ||
    { echo "FAIL: sqlite3 insert"; exit 1; }
  with_script_address=1
else
  echo "note: sqlite3 is not installed: the <script> address is left out"
fi

# ---------------------------------------------------------------------------------------------
# 2. The report, and chromium.

since=$((this_hour - 2 * 86400))
printf -v since_text '%(%Y-%m-%dT%H:%M)TZ' "$since"
printf -v until_text '%(%Y-%m-%dT%H:%M)TZ' "$this_hour"
REPORT=$TMP/report.html
"$RCPTGUARD" report -d "$DB" --html "$REPORT" --since "$since_text" --until "$until_text" \
  >"$TMP/report.out" 2>&1 || { cat "$TMP/report.out"; echo "FAIL: rcptguard report"; exit 1; }
ok "rcptguard report wrote $(wc -c <"$REPORT") bytes"

# The control: a page under the same policy that tries to fetch must log a console message.
cat >"$TMP/control.html" <<'EOF'
<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"></head>
<body><img src="https://example.invalid/x.png"><script>document.title = "ran"</script></body></html>
EOF
browse "$TMP/control.html" "$TMP/control.dom" "$TMP/control.log" || { bad "chromium on the control page"; exit 1; }
if grep -q ':CONSOLE' "$TMP/control.log"; then
  ok "console messages are captured (the control page's blocked fetch logged one)"
else
  bad "no console message from the control page: the console check below would prove nothing"
  exit 1
fi

browse "$REPORT" "$TMP/report.dom" "$TMP/report.log" || { bad "chromium on the report"; exit 1; }
DOM=$TMP/report.dom

# ---------------------------------------------------------------------------------------------
# 3. What chromium made of it.

count() { grep -o -- "$1" <<<"$2" | wc -l | tr -d ' '; }
attr() { grep -o -- " $1=\"[^\"]*\"" <<<"$2" | head -1 | sed 's/^[^"]*"//; s/"$//'; }
# The first <svg ...>...</svg> whose opening tag contains $1 (the DOM has no line breaks inside).
svg_with() { grep -o -- "<svg [^>]*$1[^>]*>.*" "$DOM" | head -1 | sed 's#</svg>.*#</svg>#'; }

grep -q "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"" "$DOM" &&
  ok "Content-Security-Policy in the DOM" || bad "Content-Security-Policy missing"

daily=$(svg_with 'data-chart="episodes-per-day"')
[[ -n $daily ]] && ok "episodes-per-day chart" || bad "no episodes-per-day chart"
check "days in the daily chart" 3 "$(attr data-days "$daily")"
check "daily bars drawn = data-bars" "$(attr data-bars "$daily")" "$(count '<rect class="[a-z]*"' "$daily")"
episodes=$(attr data-episodes "$daily")
if ((episodes >= 2)); then ok "episodes in the period ($episodes)"; else bad "episodes: want >= 2, got $episodes"; fi

bob=$(svg_with 'data-recipient="bob@example.test"')
[[ -n $bob ]] && ok "bob's hourly chart" || bad "no hourly chart for bob"
check "bob: hours" 48 "$(attr data-hours "$bob")"
check "bob: bars (every hour had mail)" 48 "$(count '<rect class="bar"' "$bob")"
check "bob: data-bars = bars" "$(attr data-bars "$bob")" "$(count '<rect class="bar"' "$bob")"
points=$(attr points "$(grep -o '<polyline class="baseline"[^>]*>' <<<"$bob")")
check "bob: baseline points" 48 "$(wc -w <<<"$points" | tr -d ' ')"
check "bob: data-marks = marks" "$(attr data-marks "$bob")" "$(count '<rect class="mark ' "$bob")"
marks=$(attr data-marks "$bob")
if ((marks >= 1)); then ok "bob: hours with verdicts marked ($marks)"; else bad "bob: no verdict marks"; fi
check "bob: data-episodes = shaded spans" "$(attr data-episodes "$bob")" "$(count '<rect class="episode ' "$bob")"
check "bob: one episode shaded" 1 "$(attr data-episodes "$bob")"
grep -q '302 messages (accepted 302), expected 2<' <<<"$bob" &&
  ok "bob: the flood hour, 302 against an expected 2" || bad "bob: no bar titled 302 messages, expected 2"
grep -q 'invoice.pdf' "$DOM" && ok "repeated attachment listed" || bad "the spool evidence is missing"

deviation=$(grep -o 'Top deviating recipients.*' "$DOM" | sed 's#</table>.*##')
grep -q 'tickets@example.test' <<<"$deviation" && ok "tickets@ in the deviation table" ||
  bad "tickets@ missing from the deviation table"
if grep -q '<section class="recipient"[^>]*data-recipient="tickets@example.test"' "$DOM"; then
  bad "tickets@ has a section although it was never flagged"
else
  ok "tickets@ has no section (not flagged)"
fi

# Chromium writes every attribute value in double quotes (and a quote inside one as &quot;), so
# ' onX="' inside a tag is an attribute, while the hostile text ' onerror=alert' is not.
in_dom() { grep -o -- "$1" "$DOM" | wc -l | tr -d ' '; }
check "<script> elements" 0 "$(in_dom '<script')"
check "<img> elements" 0 "$(in_dom '<img')"
check "on* attributes" 0 "$(in_dom '<[^>]* on[a-z]*="')"
grep -q '&lt;img src=x onerror=alert(1)//' "$DOM" &&
  ok "the <img ...> address from the log is text" || bad "the <img ...> address is missing"
if ((with_script_address)); then
  grep -q '<section class="recipient"[^>]*data-recipient="&lt;script&gt;alert(1)&lt;/script&gt;@x"' "$DOM" &&
    ok "the <script> address has its section, as text" || bad "no section for the <script> address"
fi

consoles=$(grep -c -e ':CONSOLE' -e 'Uncaught' "$TMP/report.log")
if ((consoles == 0)); then
  ok "no console messages"
else
  bad "console messages:"
  grep -e ':CONSOLE' -e 'Uncaught' "$TMP/report.log" | head -5
fi

if ((failed)); then
  echo "FAIL (outputs kept with --keep DIR)"
  exit 1
fi
echo PASS
