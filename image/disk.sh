#!/usr/bin/env bash
# The proctor box's disk image from a root built by image/build.sh: a raw GPT disk with
#   1 box-boot  FAT32, 128 MiB, an EFI system partition: the root's kernel and initrd;
#               syslinux for BIOS (syslinux.cfg), systemd-boot for UEFI (EFI/BOOT, loader/)
#   2 box-root  ext4, the root file system (mounted read-only: etc/fstab)
#   3 box-data  ext4, empty (first boot makes the keys, the database, the answer files)
# made without loop devices or mounts: mkfs.ext4 -d and mkfs.fat write straight into the
# image at each partition's offset, the boot loaders are installed through mtools.
#   sudo bash image/disk.sh                          # build/work/rootfs → build/work/box.img
#   sudo bash image/disk.sh ROOTFS OUT.img           # DATA_MB=… (default 1024), ROOT_MB=…
# The kernel command line: root=LABEL=box-root ro quiet, consoles tty1 and ttyS0.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOTFS=$(realpath -m "${1:-build/work/rootfs}")
OUT=$(realpath -m "${2:-build/work/box.img}")
BOOT_MB=${BOOT_MB:-128}
DATA_MB=${DATA_MB:-1024}
CMDLINE=${CMDLINE:-root=LABEL=box-root ro quiet console=tty1 console=ttyS0,115200n8}
SYSLINUX=/usr/lib/syslinux
SDBOOT=/usr/lib/systemd/boot/efi/systemd-bootx64.efi

fail() { echo "disk: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "run as root (the root's files keep their owners)"
for tool in sfdisk mkfs.ext4 mkfs.fat syslinux mcopy mmd; do
  command -v "$tool" >/dev/null || fail "$tool missing (bash scripts/setup.sh)"
done
[ -f "$SYSLINUX/mbr/gptmbr.bin" ] || fail "$SYSLINUX/mbr/gptmbr.bin missing (syslinux-common)"
[ -f "$SDBOOT" ] || fail "$SDBOOT missing (systemd-boot-efi)"
[ -f "$ROOTFS/.debootstrap-done" ] && [ -x "$ROOTFS/opt/kiosk/kiosk" ] \
  || fail "$ROOTFS is not a built box root (sudo bash image/build.sh $ROOTFS)"
if grep -q " $ROOTFS/" /proc/self/mounts; then
  fail "something is mounted under $ROOTFS (an image/build.sh still running?)"
fi
kernel=$(find "$ROOTFS/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sort -V | tail -1)
[ -n "$kernel" ] || fail "no kernel in $ROOTFS/boot"
version=${kernel#vmlinuz-}
[ -f "$ROOTFS/boot/initrd.img-$version" ] || fail "no initrd.img-$version in $ROOTFS/boot"
start=$(date +%s)

# The root partition: the root's size and a quarter more (ext4's metadata, room for a
# remount-rw edit), at least 256 MiB spare; ROOT_MB overrides.
used_mb=$(( $(du -s --block-size=1M --one-file-system "$ROOTFS" | cut -f1) ))
ROOT_MB=${ROOT_MB:-$(( used_mb + (used_mb / 4 > 256 ? used_mb / 4 : 256) ))}
[ "$ROOT_MB" -gt "$used_mb" ] || fail "ROOT_MB=$ROOT_MB is smaller than the root ($used_mb MiB)"

# Offsets in MiB: 1 MiB for the GPT, the partitions back to back, 1 MiB for the backup GPT.
boot_at=1 root_at=$(( 1 + BOOT_MB )) data_at=$(( 1 + BOOT_MB + ROOT_MB ))
total_mb=$(( data_at + DATA_MB + 1 ))
mkdir -p "$(dirname "$OUT")"
tmp=$OUT.part
rm -f "$tmp"
trap 'rm -f "$tmp"' EXIT
truncate -s "${total_mb}M" "$tmp"

# GPT: the boot partition is an EFI system partition marked legacy-BIOS-bootable (what
# syslinux's gptmbr.bin looks for); the root has the x86-64 root type; names as labels.
sfdisk --quiet --label gpt "$tmp" <<EOF
start=${boot_at}MiB, size=${BOOT_MB}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=box-boot, attrs=LegacyBIOSBootable
start=${root_at}MiB, size=${ROOT_MB}MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=box-root
start=${data_at}MiB, size=${DATA_MB}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=box-data
EOF
dd if="$SYSLINUX/mbr/gptmbr.bin" of="$tmp" bs=440 count=1 conv=notrunc status=none

mib=$(( 1024 * 1024 ))
# The root: every file of the folder with its owner, mode and links (no reserved blocks:
# nothing writes to it at run time).
mkfs.ext4 -q -F -L box-root -m 0 -E "offset=$(( root_at * mib ))" -d "$ROOTFS" "$tmp" "${ROOT_MB}M"
mkfs.ext4 -q -F -L box-data -E "offset=$(( data_at * mib ))" "$tmp" "${DATA_MB}M"

# The boot partition: FAT32 with the partition's first sector as its hidden sectors.
# One sector a cluster (FAT32 wants 65525 clusters at least). mkfs.fat warns that the image
# is larger than the partition: it is meant to be.
out=$(mkfs.fat -F 32 -s 1 -n BOX-BOOT --offset $(( boot_at * 2048 )) -h $(( boot_at * 2048 )) \
        "$tmp" $(( BOOT_MB * 1024 )) 2>&1) || fail "mkfs.fat: $out"
export MTOOLS_SKIP_CHECK=1
fat="$tmp@@$(( boot_at * mib ))"
cfg=$(mktemp -d)
trap 'rm -f "$tmp"; rm -rf "$cfg"' EXIT
# One entry for each loader, no menu, no prompt, the same command line.
printf '%s\n' "# The proctor box (BIOS: syslinux)." "DEFAULT box" "PROMPT 0" "TIMEOUT 0" \
  "LABEL box" "  LINUX /vmlinuz" "  INITRD /initrd.img" "  APPEND $CMDLINE" > "$cfg/syslinux.cfg"
printf '%s\n' "# The proctor box (UEFI: systemd-boot): no menu." "default box.conf" "timeout 0" \
  "editor no" > "$cfg/loader.conf"
printf '%s\n' "title Proctor box" "linux /vmlinuz" "initrd /initrd.img" "options $CMDLINE" \
  > "$cfg/box.conf"
mcopy -i "$fat" "$ROOTFS/boot/$kernel" ::/vmlinuz
mcopy -i "$fat" "$ROOTFS/boot/initrd.img-$version" ::/initrd.img
mcopy -i "$fat" "$cfg/syslinux.cfg" ::/syslinux.cfg
mmd -i "$fat" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
mcopy -i "$fat" "$SDBOOT" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$fat" "$cfg/loader.conf" ::/loader/loader.conf
mcopy -i "$fat" "$cfg/box.conf" ::/loader/entries/box.conf
syslinux --offset $(( boot_at * mib )) --install "$tmp"

mv "$tmp" "$OUT"
trap - EXIT
rm -rf "$cfg"
echo "disk: $OUT ${total_mb} MiB (boot $BOOT_MB, root $ROOT_MB with $used_mb used, data $DATA_MB)," \
     "kernel $version, $(( $(date +%s) - start )) s"
