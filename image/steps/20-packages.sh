#!/usr/bin/env bash
# The box's Debian packages: systemd, the kiosk compositor (cage; Xwayland because Kivy's
# bundled SDL2 has no Wayland driver), Mesa, the X libraries SDL2 opens, the CJK font,
# udev for USB sticks and the kernel. apt-get install is a no-op when all are present.
set -euo pipefail
source "$IMAGE/lib.sh"
PACKAGES=(
  systemd systemd-sysv udev dbus libpam-systemd  # init, logind (cage's seat), udev
  polkitd                                       # lets proctor activate its logind session (libseat)
  linux-image-amd64 util-linux-extra kmod       # kernel; hwclock for setting the RTC by hand
  cage xwayland                                 # the kiosk compositor, X for SDL2
  libgl1 libglx-mesa0 libegl1 libgles2 libgl1-mesa-dri  # OpenGL on Mesa (llvmpipe or the GPU)
  libxext6 libxcursor1 libxi6 libxrandr2 libxinerama1 libxss1 libxxf86vm1 libxkbcommon0
  libmtdev1 xclip                               # Kivy's touch input and clipboard
  fonts-noto-cjk fontconfig                     # Chinese text
  iproute2 ca-certificates                      # the room network; ip for the box-IP choice
)
pkgs=$(printf '%s\n' "${PACKAGES[@]}")
missing=$(in_root dpkg-query -W -f='${Package} ${Status}\n' $pkgs 2>/dev/null \
            | awk '$NF == "installed" {print $1}' | sort | comm -13 - <(echo "$pkgs" | sort) || true)
if [ -n "$missing" ]; then
  in_root apt-get update -qq
  # shellcheck disable=SC2086
  in_root apt-get install -y -qq $missing
fi
in_root apt-get clean
