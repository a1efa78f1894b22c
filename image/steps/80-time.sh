#!/usr/bin/env bash
# Time from the box's RTC only, kept in UTC (the kernel sets the clock from it at boot;
# /etc/adjtime says UTC): no NTP on an offline room network. China Standard Time shown.
set -euo pipefail
source "$IMAGE/lib.sh"
install_file etc/adjtime
ln -sf /usr/share/zoneinfo/Asia/Shanghai "$ROOTFS/etc/localtime"
echo Asia/Shanghai > "$ROOTFS/etc/timezone"
in_root systemctl mask systemd-timesyncd.service
