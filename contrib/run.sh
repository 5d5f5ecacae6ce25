#!/usr/bin/env bash
# The quick start: installs the build dependencies, builds, and runs the daemon in the
# foreground with the sample settings, answering on 127.0.0.1:10041 with its SQLite file in
# ./var/. Extra arguments go to 'rcptguard serve' (e.g. -o log.level=debug). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash contrib/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target rcptguard
mkdir -p var
exec build/cli/rcptguard serve --config etc/rcptguard.toml -o store.path=var/rcptguard.db "$@"
