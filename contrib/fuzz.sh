#!/usr/bin/env bash
# Runs one fuzz target under libFuzzer (fuzz/README.md):
#
#   bash contrib/fuzz.sh TARGET [SECONDS]     TARGET: request_parser postfix_log sendmail_log
#                                                     mbox_mime settings; SECONDS default 300
#
# Configures build-fuzz with clang and -DRCPTGUARD_FUZZ=ON, builds fuzz_TARGET and fuzzes for
# SECONDS on one core over a scratch corpus in build-fuzz/fuzz-work/TARGET/: corpus/ (what the
# fuzzer keeps, grows over runs) seeded from fuzz/corpus/TARGET and copies of the target's part
# of ../shared/corpus (read, never written). Crashes go to artifacts/ there. Prints the
# executions and libFuzzer's final cov:/ft: numbers. Extra libFuzzer flags: FUZZ_FLAGS="...".
set -euo pipefail
cd "$(dirname "$0")/.."

targets="request_parser postfix_log sendmail_log mbox_mime settings"
target=${1:-}
seconds=${2:-300}
if [[ -z "$target" || " $targets " != *" $target "* || ! "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: bash contrib/fuzz.sh TARGET [SECONDS]   (TARGET: $targets)" >&2
  exit 2
fi

build=build-fuzz
shared=../shared/corpus
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DRCPTGUARD_FUZZ=ON -DRCPTGUARD_BENCH=OFF >/dev/null
cmake --build "$build" --target "fuzz_$target"

work="$build/fuzz-work/$target"
mkdir -p "$work/corpus" "$work/seeds" "$work/artifacts"
cp fuzz/corpus/"$target"/* "$work/seeds/"

# The target's part of the shared corpus (as in fuzz/CMakeLists.txt), copied so libFuzzer reads
# plain directories and nothing can write into ../shared. Files above max_len are cut by libFuzzer.
max_len=8192
case "$target" in
  request_parser) parts="postfix-3.7/requests.raw"; max_len=16384 ;;
  postfix_log) parts="logs postfix-3.7/postfix.log" ;;
  sendmail_log) parts="logs/fail2ban logs/fluent-plugin-sendmail" ;;
  mbox_mime) parts="mime postfix-3.7/mbox-sample"; max_len=20000 ;;
  settings) parts="" ;;
esac
if [[ "$target" == settings ]]; then cp etc/rcptguard.toml "$work/seeds/"; fi
for part in $parts; do
  if [[ -e "$shared/$part" ]]; then
    mkdir -p "$work/seeds/shared"
    find "$shared/$part" -type f -size -1024k -print0 |
      while IFS= read -r -d '' f; do
        cp "$f" "$work/seeds/shared/$(echo "${f#"$shared"/}" | tr '/' '_')"
      done
  else
    echo "fuzz.sh: shared corpus missing: $shared/$part (seeding from fuzz/corpus only)"
  fi
done
chmod -R u+w "$work/seeds"

dict=()
if [[ -f "fuzz/$target.dict" ]]; then dict=(-dict="fuzz/$target.dict"); fi

log="$work/fuzz.log"
echo "fuzz.sh: fuzzing $target for ${seconds}s (log: $log)"
status=0
# shellcheck disable=SC2086  # FUZZ_FLAGS is a list of flags
"$build/fuzz/fuzz_$target" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
  -rss_limit_mb=2048 -max_len="$max_len" -artifact_prefix="$work/artifacts/" "${dict[@]}" \
  ${FUZZ_FLAGS:-} "$work/corpus" "$work/seeds" >"$log" 2>&1 || status=$?

last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
echo "fuzz.sh: $target: ${execs:-?} executions, cov: ${cov:-?} ft: ${ft:-?}, corpus ${corp:-?} inputs"
if [[ $status -ne 0 ]]; then
  grep -E 'ERROR: |invariant broken|SUMMARY: |Test unit written' "$log" | head -n 20 || true
  echo "fuzz.sh: $target stopped with status $status; crashers in $work/artifacts/" >&2
  exit "$status"
fi
