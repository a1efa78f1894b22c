#!/usr/bin/env bash
# USB sticks mounted at /media/<label> by a udev rule through systemd-mount (no desktop,
# no udisks); the mount unit is bound to the device, so pulling a stick unmounts it.
set -euo pipefail
source "$IMAGE/lib.sh"
install_file etc/udev/rules.d/80-kiosk-usb.rules
install_file usr/local/lib/kiosk/usb-mount
