# Helpers for image/build.sh and its steps (sourced). ROOTFS is the root being built.
set -euo pipefail

# A command inside the root, never starting its services (policy-rc.d says no).
in_root() {
  LC_ALL=C DEBIAN_FRONTEND=noninteractive chroot "$ROOTFS" "$@"
}

# /proc, /sys, /dev and /dev/pts inside the root (maintainer scripts need them).
mount_api() {
  local d
  for d in proc sys dev dev/pts; do
    mkdir -p "$ROOTFS/$d"
    mountpoint -q "$ROOTFS/$d" && continue
    case $d in
      proc) mount -t proc proc "$ROOTFS/proc" ;;
      sys) mount -t sysfs sys "$ROOTFS/sys" ;;
      dev) mount --bind /dev "$ROOTFS/dev" ;;
      dev/pts) mount -t devpts devpts "$ROOTFS/dev/pts" ;;
    esac
  done
}

umount_api() {
  local d
  for d in dev/pts dev sys proc; do
    if mountpoint -q "$ROOTFS/$d"; then umount -l "$ROOTFS/$d"; fi
  done
}

# Copies image/files/<path> to the same path in the root (mode kept, owner root).
install_file() {
  local path=$1
  install -D -o root -g root -m "$(stat -c %a "$FILES/$path")" "$FILES/$path" "$ROOTFS/$path"
}
