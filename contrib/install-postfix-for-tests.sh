#!/usr/bin/env bash
# Installs what the end-to-end test (tests/e2e/postfix_e2e.sh) needs: Debian's postfix and swaks.
#
# Idempotent: does nothing when both are installed. Postfix is installed with
# "No configuration" and no service is started, so the machine's own mail setup is not
# changed and nothing listens on port 25. The test then runs a private Postfix instance of
# its own in a temporary directory.
#
# Usage (as root, on Debian 12): contrib/install-postfix-for-tests.sh
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "install-postfix-for-tests: must run as root" >&2
  exit 1
fi

installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }

missing=()
for pkg in postfix swaks; do
  installed "$pkg" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-postfix-for-tests: postfix and swaks already installed"
  exit 0
fi

# Keep the package from starting its daemons during the install: policy-rc.d exit code 101
# means "action forbidden" to invoke-rc.d. Create it only if absent, and remove only ours.
policy_rc=/usr/sbin/policy-rc.d
created_policy_rc=0
cleanup() {
  if [[ $created_policy_rc -eq 1 ]]; then
    rm -f "$policy_rc"
  fi
}
trap cleanup EXIT
if [[ ! -e $policy_rc ]]; then
  printf '#!/bin/sh\n# temporary, from rcptguard contrib/install-postfix-for-tests.sh\nexit 101\n' >"$policy_rc"
  chmod 0755 "$policy_rc"
  created_policy_rc=1
fi

# "No configuration": the package installs without writing a mail setup of its own.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections

export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
echo "install-postfix-for-tests: installed ${missing[*]}"
