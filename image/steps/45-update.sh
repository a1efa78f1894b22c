#!/usr/bin/env bash
# Offline updates (kiosk/update, image/README.md "Updates"): the launcher kiosk.service
# starts, /data/app made at boot for the releases, and the update certificates the box
# trusts in /etc/kiosk/update-keys/: every *.crt of $UPDATE_KEYS (default
# image/files/etc/kiosk/update-keys; `kiosk update-keygen` makes the vendor's pair, whose
# private key never goes into the image). Without one the box refuses every update.
set -euo pipefail
source "$IMAGE/lib.sh"
install_file usr/local/lib/kiosk/launch
install_file etc/tmpfiles.d/kiosk-update.conf
keys=${UPDATE_KEYS:-$FILES/etc/kiosk/update-keys}
rm -rf "$ROOTFS/etc/kiosk/update-keys"
install -d -o root -g root -m 0755 "$ROOTFS/etc/kiosk/update-keys"
found=0
for cert in "$keys"/*.crt; do
  [ -f "$cert" ] || continue
  grep -q -- "-----BEGIN CERTIFICATE-----" "$cert" || { echo "image: $cert is not a PEM certificate" >&2; exit 1; }
  install -o root -g root -m 0644 "$cert" "$ROOTFS/etc/kiosk/update-keys/$(basename "$cert")"
  found=$((found + 1))
done
if [ "$found" -eq 0 ]; then
  echo "image: no update certificate in $keys: this box will refuse every update package"
else
  echo "image: $found update certificate(s) trusted"
fi
