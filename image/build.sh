#!/usr/bin/env bash
# Builds the proctor box's root file system (Debian bookworm, x86-64) in a folder:
# debootstrap --variant=minbase, then every image/steps/NN-name.sh in order. Run as root.
#   sudo bash image/build.sh                  # → build/work/rootfs
#   sudo bash image/build.sh /srv/box-rootfs  # elsewhere (MIRROR=… for another mirror)
# Idempotent: a second run keeps the debootstrapped base and re-applies the steps.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export ROOTFS=$(realpath -m "${1:-build/work/rootfs}")
export IMAGE=$ROOT/image FILES=$ROOT/image/files DIST=${DIST:-$ROOT/dist}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm

[ "$(id -u)" -eq 0 ] || { echo "image: run as root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "image: debootstrap missing (bash scripts/setup.sh)" >&2; exit 1; }
start=$(date +%s)

# The base system; the marker is written only when debootstrap finished.
if [ ! -f "$ROOTFS/.debootstrap-done" ]; then
  # Never delete through a mount left by an interrupted build (its /dev is the host's).
  if grep -q " $ROOTFS/" /proc/self/mounts; then
    echo "image: something is still mounted under $ROOTFS" >&2; exit 1
  fi
  rm -rf --one-file-system "$ROOTFS"
  mkdir -p "$ROOTFS"
  debootstrap --variant=minbase --arch=amd64 "$SUITE" "$ROOTFS" "$MIRROR"
  touch "$ROOTFS/.debootstrap-done"
  echo "image: debootstrap in $(( $(date +%s) - start )) s"
fi

# The steps run on the host; `in_root` (lib.sh) runs a command inside, with /proc, /sys
# and /dev mounted for the time of the build only.
source "$IMAGE/lib.sh"
mount_api
trap umount_api EXIT
for step in "$IMAGE"/steps/[0-9][0-9]-*.sh; do
  echo "image: $(basename "$step")"
  bash "$step"
done
umount_api
trap - EXIT
echo "image: $ROOTFS $(du -sh --exclude=proc --exclude=sys --exclude=dev "$ROOTFS" | cut -f1)" \
     "in $(( $(date +%s) - start )) s"
