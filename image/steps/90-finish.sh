#!/usr/bin/env bash
# The root as it boots: hostname, APT's build-time guard removed, caches emptied.
set -euo pipefail
source "$IMAGE/lib.sh"
echo proctor-box > "$ROOTFS/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tproctor-box\n' > "$ROOTFS/etc/hosts"
rm -f "$ROOTFS/usr/sbin/policy-rc.d"
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin
