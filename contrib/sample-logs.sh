#!/usr/bin/env bash
# Sample mail logs with a story, for trying `rcptguard review` and `report` (README, "A
# walk-through"). Writes three weeks of a 300-mailbox organisation's mail, ending at the start
# of this week (Monday 00:00 UTC), in Postfix and in Sendmail form, with the same traffic:
#
#   bash contrib/sample-logs.sh [DIR]      DIR default var/samples
#
#   DIR/postfix.log, DIR/sendmail.log  every message delivered; a mailing list, a ticket inbox
#                                      with storms, an archive with newsletter Mondays, a bounce
#                                      box, and five floods, all last week
#   DIR/labels.json                    what is in them (bench/detection_scenario.py --labels)
#
# The generator is bench/detection_scenario.py (Python 3 standard library); same seed, same
# traffic. Prints the floods and the dates of last week.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-var/samples}
seed=${SAMPLE_SEED:-1}
mkdir -p "$out"
this_monday=$(date -u -d "-$(($(date -u +%u) - 1)) days" +%F)
start=$(date -u -d "$this_monday -21 days" +%F)
last_monday=$(date -u -d "$this_monday -7 days" +%F)
for format in postfix sendmail; do
  python3 bench/detection_scenario.py "$out/$format.log" --labels "$out/labels.json" \
    --format "$format" --seed "$seed" --start "$start" 2>"$out/$format.summary"
done
sed -n 's/^detection_scenario: //p' "$out/postfix.summary" | grep -E '^[0-9]+ lines|^flood'
echo "sample-logs: $out/postfix.log and $out/sendmail.log, $start to $this_monday (UTC);" \
  "last week: --since $last_monday --until $this_monday"
