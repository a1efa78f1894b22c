#!/usr/bin/env bash
# Sets up a fresh Debian machine for the proctor box: system packages and a virtual
# environment in .venv with the project and its test tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  xvfb xauth xclip        # a real X screen for the Kivy UI tests (xclip: Kivy's clipboard)
  x11-apps                 # xwd: screenshots of the frozen box app's X screen (tests/frozen)
  xdotool                  # typing on the box app's window as a hardware keyboard does (tests/ui)
  fonts-noto-cjk fontconfig  # Chinese text
  iproute2                 # network namespaces for multi-host tests
  libmtdev1 libgl1 libgl1-mesa-dri libegl1 libgles2 # Kivy's SDL2 window on Mesa
  sqlite3                  # inspecting databases by hand
  postgresql               # the exam-site server's large-site database, tested for real
  e2fsprogs dosfstools fusefat  # USB tests: ext4 loop images, vfat through FUSE
  debootstrap systemd-container  # the appliance image: image/build.sh (nspawn for checks)
  fdisk syslinux syslinux-common mtools  # the appliance disk: image/disk.sh (sfdisk; syslinux through mtools)
  systemd-boot-efi         # the disk's UEFI loader (image/disk.sh)
  qemu-system-x86 ovmf     # booting the disk image by BIOS and UEFI (tests/image/test_boot.py)
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-*; touch "$stamp"
fi
