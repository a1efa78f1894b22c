#!/usr/bin/env bash
# APT inside the root: bookworm + security from one sources file, no recommends, and no
# service started while packages are installed into a folder (policy-rc.d).
set -euo pipefail
source "$IMAGE/lib.sh"
install_file etc/apt/sources.list.d/debian.sources
install_file etc/apt/apt.conf.d/90-appliance
install_file usr/sbin/policy-rc.d
rm -f "$ROOTFS/etc/apt/sources.list"
