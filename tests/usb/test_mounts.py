"""The mount table parse: mount points under the roots are sticks, the roots are not."""

from __future__ import annotations

from pathlib import Path

from kiosk.usb.mounts import parse_mount_points, stick_mounts, under_roots

SAMPLE = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:37 / /media rw,relatime shared:1 - tmpfs tmpfs rw
43 40 8:17 / /media/U盘\0401 rw,nosuid,nodev,relatime shared:20 - vfat /dev/sdb1 rw,fmask=0022
44 27 8:33 / /run/media/exam/KINGSTON rw,nosuid,nodev,relatime shared:21 - exfat /dev/sdc1 rw
45 27 8:49 / /media2/other rw,relatime - ext4 /dev/sdd1 rw
46 27 8:65 / /mnt/tab\011and\012newline\134back rw,relatime - ext4 /dev/sde1 rw
"""

ROOTS = [Path("/media"), Path("/run/media"), Path("/mnt")]


def test_mount_points_are_read_with_octal_escapes_undone():
    points = parse_mount_points(SAMPLE)
    assert points[3] == Path("/media/U盘 1")
    assert points[6] == Path("/mnt/tab\tand\nnewline\\back")
    assert len(points) == 7


def test_sticks_lie_strictly_under_a_root():
    assert under_roots(parse_mount_points(SAMPLE), ROOTS) == {
        Path("/media/U盘 1"),
        Path("/run/media/exam/KINGSTON"),
        Path("/mnt/tab\tand\nnewline\\back"),
    }


def test_a_root_mounted_itself_and_a_look_alike_prefix_are_not_sticks():
    sticks = under_roots(parse_mount_points(SAMPLE), ROOTS)
    assert Path("/media") not in sticks
    assert Path("/media2/other") not in sticks


def test_short_or_empty_lines_are_ignored():
    assert parse_mount_points("\n12 1\n") == []


def test_the_real_mount_table_is_read(tmp_path):
    assert stick_mounts([tmp_path / "nothing mounted here"]) == set()
    assert Path("/") in set(parse_mount_points(Path("/proc/self/mountinfo").read_text()))
