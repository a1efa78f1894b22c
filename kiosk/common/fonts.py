"""Finding a font that covers Chinese through fontconfig, for both apps' windows.

`fc-match ':lang=zh'` may answer a font without the glyphs (DejaVu: PLATFORM-NOTES), so
the fonts are listed by the language they cover and a known family is preferred."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kiosk.common.frozen import system_env

PREFERRED = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei")
WINDOWS_FONTS = ("msyh.ttc", "msyh.ttf", "simhei.ttf", "simsun.ttc")


class NoChineseFont(RuntimeError):
    """No installed font covers Chinese: the window would show empty boxes."""

    def __init__(self) -> None:
        super().__init__(
            "找不到中文字体，无法显示界面。请安装 fonts-noto-cjk（Debian）或微软雅黑（Windows）。"
            " / no font covering Chinese is installed (install fonts-noto-cjk)"
        )


def chinese_font(regular: bool = True) -> Path:
    """The path of a regular-weight font file that covers zh; NoChineseFont when none."""
    override = os.environ.get("KIOSK_FONT")
    if override:
        if not Path(override).is_file():
            raise NoChineseFont()
        return Path(override)
    if sys.platform.startswith("win"):
        folder = Path(os.environ.get("WINDIR", r"C:\Windows")) / "Fonts"
        for name in WINDOWS_FONTS:
            if (folder / name).is_file():
                return folder / name
        raise NoChineseFont()
    try:
        out = subprocess.run(
            ["fc-list", ":lang=zh", "file", "family", "style"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            env=system_env(),  # fc-list with the machine's libraries, not a frozen bundle's
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise NoChineseFont() from exc
    found: list[tuple[int, Path]] = []
    for line in out.splitlines():
        path, _, rest = line.partition(":")
        families, _, style = rest.partition(":style=")
        if not path or not Path(path).is_file():
            continue
        names = [f.strip() for f in families.split(",")]
        rank = min((PREFERRED.index(n) for n in names if n in PREFERRED), default=len(PREFERRED))
        weight = 0 if ("Regular" in style or not style) == regular else 1
        found.append((rank * 2 + weight, Path(path)))
    if not found:
        raise NoChineseFont()
    return min(found)[1]
