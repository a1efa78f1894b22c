#!/usr/bin/env bash
# The frozen box app (build/build.sh's dist/kiosk) at /opt/kiosk, replaced whole.
set -euo pipefail
source "$IMAGE/lib.sh"
if [ ! -x "$DIST/kiosk/kiosk" ]; then
  echo "image: $DIST/kiosk missing: building it (bash build/build.sh)"
  DIST=$DIST bash "$IMAGE/../build/build.sh"
fi
rm -rf "$ROOTFS/opt/kiosk.new"
cp -a "$DIST/kiosk" "$ROOTFS/opt/kiosk.new"
chown -R root:root "$ROOTFS/opt/kiosk.new"
rm -rf "$ROOTFS/opt/kiosk"
mv "$ROOTFS/opt/kiosk.new" "$ROOTFS/opt/kiosk"
# Every library the frozen app links to must be found inside the root.
# The bundle's own folders are on the path, as its bootloader puts them.
missing=$(in_root sh -c 'LD_LIBRARY_PATH=$(find /opt/kiosk -name "*.so*" -type f -printf "%h\n" | sort -u | paste -sd:)
                         export LD_LIBRARY_PATH
                         find /opt/kiosk -name "*.so*" -type f -exec ldd {} + 2>/dev/null; ldd /opt/kiosk/kiosk' \
            | grep 'not found' | sort -u || true)
if [ -n "$missing" ]; then
  echo "image: libraries missing in the root:" >&2; echo "$missing" >&2; exit 1
fi
