#!/usr/bin/env bash
# A read-only root: `/` mounted ro, the data partition at /data (database, answer files,
# keys), tmpfs for what must be written (/tmp, /var/tmp, /var/log, /media), journald in
# memory, and the machine id made afresh at each boot (an empty /etc/machine-id).
set -euo pipefail
source "$IMAGE/lib.sh"
install_file etc/fstab
install_file etc/systemd/journald.conf.d/volatile.conf
install_file etc/tmpfiles.d/kiosk.conf
mkdir -p "$ROOTFS/data" "$ROOTFS/media"
: > "$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id"
ln -sf /etc/machine-id "$ROOTFS/var/lib/dbus/machine-id"
# Timers that would write the root (APT's daily download and upgrade, dpkg's database
# backup to /var/backups) fail on a read-only, offline box: masked.
in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer
