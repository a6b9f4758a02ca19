#!/usr/bin/env bash
# The `samba` tests start a Samba AD DC (tests/samba_dc.py). Install Debian's packages when they
# are missing (as root); services must not start on install, so policy-rc.d says no meanwhile.
set -euo pipefail
if command -v samba >/dev/null && command -v samba-tool >/dev/null && command -v ldbmodify >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "Samba is not installed and cannot be installed here (needs root and apt-get):" \
    "the samba tests will fail" >&2
  exit 0
fi
created_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
trap '[ -z "$created_policy" ] || rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
# samba-ad-provision holds /usr/share/samba/setup (only a Recommends of samba-ad-dc).
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  samba samba-ad-dc samba-ad-provision winbind krb5-user smbclient ldb-tools >/dev/null
