#!/usr/bin/env bash
# The kiosk session: kiosk.service (cage on tty1 running the box app as proctor,
# restarted whenever it dies), the first-boot key creation, and no login prompt anywhere:
# getty@tty1 masked, no automatic VTs, the graphical target by default.
set -euo pipefail
source "$IMAGE/lib.sh"
for f in etc/systemd/system/kiosk.service etc/systemd/system/kiosk-firstboot.service \
         etc/pam.d/kiosk etc/systemd/logind.conf.d/kiosk.conf usr/local/lib/kiosk/firstboot \
         usr/local/lib/kiosk/screen-size \
         etc/kiosk/kiosk.env etc/polkit-1/rules.d/50-kiosk.rules; do
  install_file "$f"
done
in_root systemctl enable kiosk.service kiosk-firstboot.service
# No getty on tty1, nor on the serial console the kernel command line names (ttyS0:
# systemd's getty generator would start one there), nor on any other serial port.
in_root systemctl mask getty@tty1.service serial-getty@.service serial-getty@ttyS0.service
in_root systemctl set-default graphical.target
