#!/usr/bin/env bash
# Make sure the real clients the e2e tests drive are installed (libnbd's tools,
# qemu-img, fio, nbdfuse, iSCSI tools, ext4 tools, losetup, Chromium for the
# dashboard's browser test).
#
# Runs as part of `npm run pretest`. Idempotent and silent when everything is
# present. When something is missing and we are root with apt-get, it runs
# `apt-get update` once and installs the Debian packages; otherwise it prints
# what is missing and carries on: the tests that need a missing tool skip with
# a clear message instead of failing.
set -u

# Tools the e2e tests and the benchmark invoke, each with the Debian package
# that provides it.
declare -A PACKAGE_OF=(
  [nbdinfo]=libnbd-bin [nbdsh]=libnbd-bin [nbdcopy]=libnbd-bin [nbdfuse]=libnbd-bin
  [fio]=fio [qemu-img]=qemu-utils [qemu-io]=qemu-utils [nbdkit]=nbdkit
  [iscsi-test-cu]=libiscsi-bin [iscsi-inq]=libiscsi-bin [iscsi-ls]=libiscsi-bin [iscsi-readcapacity16]=libiscsi-bin
  [tgtd]=tgt [fusermount3]=fuse3 [ip]=iproute2
  [mkfs.ext4]=e2fsprogs [fsck.ext4]=e2fsprogs [losetup]=util-linux [setpriv]=util-linux
  [systemd-analyze]=systemd
  # The dashboard's e2e test drives Debian's Chromium with playwright-core (test/e2e/dashboard.test.ts).
  [chromium]=chromium
)
ALL_PACKAGES=(libnbd-bin python3-libnbd fio qemu-utils qemu-block-extra libiscsi-bin nbdkit tgt fuse3 iproute2 e2fsprogs util-linux systemd chromium)

# Debian's admin tools live in sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

python_has_nbd() {
  # nbdsh runs `python3 -m nbd`; a python3 from pyenv or a venv may shadow the
  # system one that python3-libnbd installs into, so the tests run nbdsh with
  # /usr/bin first in PATH. Either interpreter having the module is enough.
  python3 -c 'import nbd' >/dev/null 2>&1 || /usr/bin/python3 -c 'import nbd' >/dev/null 2>&1
}

list_missing() {
  local tool
  for tool in "${!PACKAGE_OF[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || echo "$tool (${PACKAGE_OF[$tool]})"
  done
  python_has_nbd || echo "python3 module nbd (python3-libnbd)"
  # qemu-img's iscsi:// driver is a loadable module, not a command.
  compgen -G '/usr/lib/*/qemu/block-iscsi.so' >/dev/null || echo "qemu iSCSI block driver (qemu-block-extra)"
}

missing="$(list_missing | sort)"
[ -z "$missing" ] && exit 0

echo "install-test-tools: missing:"
echo "$missing" | sed 's/^/  /'

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-tools: not root with apt-get; tests needing these tools will skip."
  echo "  to install: sudo apt-get install -y --no-install-recommends ${ALL_PACKAGES[*]}"
  exit 0
fi

echo "install-test-tools: installing ${ALL_PACKAGES[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq </dev/null; then
  echo "install-test-tools: apt-get update failed; tests needing missing tools will skip." >&2
  exit 0
fi
if ! apt-get install -y -qq --no-install-recommends "${ALL_PACKAGES[@]}" </dev/null; then
  echo "install-test-tools: apt-get install failed; tests needing missing tools will skip." >&2
  exit 0
fi

still_missing="$(list_missing | sort)"
if [ -n "$still_missing" ]; then
  echo "install-test-tools: still missing after install (tests needing them will skip):"
  echo "$still_missing" | sed 's/^/  /'
fi
exit 0
