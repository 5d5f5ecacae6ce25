#!/usr/bin/env bash
# The test command: installs what the tests need, builds twice (optimised, and with
# AddressSanitizer + UndefinedBehaviorSanitizer) and runs the whole suite under ctest in each.
set -euo pipefail
cd "$(dirname "$0")/.."

bash contrib/install-deps.sh --test

jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 300

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRCPTGUARD_SANITIZE=ON -DRCPTGUARD_BENCH=OFF
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 600
