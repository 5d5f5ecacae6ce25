#!/usr/bin/env bash
# Pre-fill a rcptguard database with three weeks of delivery history, through the product.
#
#   bench/make_history.sh DB [REQUESTS]      # default 10,000,000 deliveries (policy requests)
#
# bench/make_maillog.py writes a delivery-dense Postfix log (every message with its smtpd,
# cleanup, qmgr, delivery and removed lines; daily rhythms, busy accounts, a few floods) covering
# the ~3 weeks up to now, straight into `rcptguard ingest -o store.path=DB -` through a pipe (no
# multi-GB file). Because the history goes in through `rcptguard ingest`, the database has
# whatever schema the current build writes, and stays valid when the store's schema changes
# (rebuild it then, or let the daemon migrate a copy).
#
# Recipients are user0..user(MAILBOXES-1)@example.test, the addresses rcptguard-load sends to, so
# the benchmark's recipients have history and baselines. Environment:
#   BUILD=DIR        build tree with cli/rcptguard (default: build-bench, else build)
#   MAILBOXES=N      ordinary mailboxes (default 1000000: covers the 1M-recipient workloads)
#   FORMAT=postfix   or sendmail
#   END=TIME         last line's time, epoch or UTC YYYY-MM-DDTHH:MM:SS (default now)
#   DAYS=21          days of history
#   SEED=1           generator seed
#   FORCE=1          replace an existing DB (otherwise an existing DB is an error)
#   RCPTGUARD_ARGS   extra arguments for rcptguard ingest (e.g. "-o detection.mode=enforce")
# Writes DB.meta (what was generated, with the ingest summary) next to DB.
#
# Takes about REQUESTS / (replay rate): see the summary it prints, or the report in
# docs/BENCHMARKS.md. Bounded: it stops when the generator's output ends.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
case "$1" in -h|--help) usage ;; esac
DB=$1
REQUESTS=${2:-10000000}
case "$REQUESTS" in ''|*[!0-9]*) echo "make_history: REQUESTS must be a number" >&2; exit 2 ;; esac
MAILBOXES=${MAILBOXES:-1000000}
FORMAT=${FORMAT:-postfix}
END=${END:-now}
DAYS=${DAYS:-21}
SEED=${SEED:-1}
if [ -z "${BUILD:-}" ]; then
  BUILD="$ROOT/build-bench"
  [ -x "$BUILD/cli/rcptguard" ] || BUILD="$ROOT/build"
fi
RCPTGUARD="$BUILD/cli/rcptguard"
[ -x "$RCPTGUARD" ] || { echo "make_history: no $RCPTGUARD (build it first)" >&2; exit 1; }

if [ -e "$DB" ]; then
  if [ "${FORCE:-0}" = 1 ]; then
    rm -f "$DB" "$DB-wal" "$DB-shm" "$DB.meta"
  else
    echo "make_history: $DB exists; remove it or set FORCE=1" >&2
    exit 1
  fi
fi
mkdir -p "$(dirname "$DB")"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/make_history.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
echo "make_history: $REQUESTS deliveries over $MAILBOXES mailboxes, $DAYS days ($FORMAT) into $DB" >&2
t0=$(date +%s.%N)
# shellcheck disable=SC2086
python3 "$ROOT/bench/make_maillog.py" - --format "$FORMAT" --deliveries "$REQUESTS" \
    --mailboxes "$MAILBOXES" --end "$END" --days "$DAYS" --seed "$SEED" 2>"$TMP/gen.txt" |
  "$RCPTGUARD" ingest -c /dev/null -o "store.path=$DB" ${RCPTGUARD_ARGS:-} - >"$TMP/ingest.txt" 2>&1
rcs=("${PIPESTATUS[@]}")
t1=$(date +%s.%N)
cat "$TMP/gen.txt" >&2
cat "$TMP/ingest.txt" >&2
if [ "${rcs[0]}" != 0 ] || [ "${rcs[1]}" != 0 ]; then
  echo "make_history: failed (generator exit ${rcs[0]}, ingest exit ${rcs[1]})" >&2
  exit 1
fi
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
deliveries=$(sed -n 's/.*deliveries counted \([0-9]*\).*/\1/p' "$TMP/ingest.txt")
lines=$(sed -n 's/^rcptguard ingest: \([0-9]*\) lines.*/\1/p' "$TMP/ingest.txt")
size=0
for f in "$DB" "$DB-wal"; do [ -e "$f" ] && size=$((size + $(stat -c %s "$f"))); done
{
  echo "requests=$REQUESTS"
  echo "mailboxes=$MAILBOXES"
  echo "format=$FORMAT"
  echo "days=$DAYS"
  echo "end=$END"
  echo "seed=$SEED"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "rcptguard=$RCPTGUARD"
  echo "rcptguard_mtime=$(stat -c %Y "$RCPTGUARD")"
  echo "lines=${lines:-0}"
  echo "deliveries=${deliveries:-0}"
  echo "seconds=$secs"
  echo "bytes=$size"
  sed 's/^/# /' "$TMP/gen.txt" "$TMP/ingest.txt"
} >"$DB.meta"
echo "make_history: done in $secs s: ${lines:-?} lines, ${deliveries:-?} deliveries, $size bytes" \
     "($(awk -v s="$size" -v d="${deliveries:-0}" 'BEGIN {if (d > 0) printf "%.1f", s / d; else print "n/a"}') bytes per delivery)" >&2
