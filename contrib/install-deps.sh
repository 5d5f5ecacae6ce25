#!/usr/bin/env bash
# Installs, from Debian 12 packages, exactly what rcptguard needs to build (and, with --test,
# to run its tests: GoogleTest plus a real Postfix and swaks for the end-to-end test).
# Idempotent; needs root (or sudo) for apt-get.
set -euo pipefail

build_packages=(
  g++ cmake ninja-build pkg-config
  libboost-dev          # Boost.Asio: sockets, timers, signals
  libsqlitecpp-dev libsqlite3-dev sqlite3  # the store, and the sqlite3 shell for analysts
  libspdlog-dev libfmt-dev                 # logging
  libcxxopts-dev        # command line
  libtomlplusplus-dev   # settings file
  libssl-dev            # SHA-256 of attachments
  libgmime-3.0-dev      # MIME parsing in the spool scanner
  zlib1g-dev            # gzip-compressed rotated mail logs (ingest)
  nlohmann-json3-dev    # valid JSON out of review, scan and the alert file (header-only)
  libhiredis-dev        # the optional cluster store (Redis) shared by several MX hosts
)
test_packages=(
  libgtest-dev libgmock-dev
  # sievec and sieve-test: the Sieve rule of contrib/mail-filters/ (ctest mail_filters). It brings
  # dovecot-core, whose service is not started here (below) and, with no protocol package
  # installed, would serve no mail port anyway.
  dovecot-sieve
  valgrind              # memcheck of `rcptguard serve` (ctest daemon_valgrind)
  # headless browser: opens a `rcptguard report --html` file and checks the DOM it builds and
  # that nothing is logged to the console (ctest cli_report_chromium; SKIP without it)
  chromium
  # the cluster store's tests start their own Redis on a unix socket in a temporary directory
  # (no service is started by the install: policy-rc.d below); redis-cli flushes its scripts
  redis-server redis-tools
)

want=("${build_packages[@]}")
with_tests=0
if [[ "${1:-}" == "--test" ]]; then
  want+=("${test_packages[@]}")
  with_tests=1
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi

# Keep packages from starting daemons during the install (dovecot-core): a policy-rc.d that exits
# 101 ("action forbidden") to invoke-rc.d, created only if absent and removed only if ours.
policy_rc=/usr/sbin/policy-rc.d
created_policy_rc=0
remove_policy_rc() {
  if ((created_policy_rc)); then "${sudo_cmd[@]}" rm -f "$policy_rc"; fi
}

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  if [[ ! -e $policy_rc ]]; then
    trap remove_policy_rc EXIT
    printf '#!/bin/sh\n# temporary, from rcptguard contrib/install-deps.sh\nexit 101\n' |
      "${sudo_cmd[@]}" tee "$policy_rc" >/dev/null
    "${sudo_cmd[@]}" chmod 0755 "$policy_rc"
    created_policy_rc=1
  fi
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  remove_policy_rc
  created_policy_rc=0
fi

if ((with_tests)); then
  "${sudo_cmd[@]}" bash "$(dirname "$0")/install-postfix-for-tests.sh"
fi
