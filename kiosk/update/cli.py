"""The vendor's commands: `kiosk update-keygen --out DIR` (the update key pair) and
`kiosk update-pack DIST --key DIR/update.key --out DIR` (the signed update package of a
frozen app folder, build/build.sh's dist/kiosk)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiosk.common.errors import Refused


def cmd_keygen(ns: argparse.Namespace) -> int:
    from kiosk.update.package import keygen

    try:
        key, cert = keygen(Path(ns.out))
    except Refused as exc:
        print(f"拒绝：{exc.zh}", file=sys.stderr)
        return 1
    print(f"升级私钥：{key}（请离线保管，切勿放入镜像或U盘）")
    print(f"升级证书：{cert}（放入镜像的 /etc/kiosk/update-keys/，监考机据此验证升级包）")
    return 0


def cmd_pack(ns: argparse.Namespace) -> int:
    from kiosk.update.package import load_key, pack

    try:
        out = pack(
            Path(ns.dist), load_key(Path(ns.key)), Path(ns.out), version=ns.version, min_from=ns.min_from
        )
    except Refused as exc:
        print(f"拒绝：{exc.zh}", file=sys.stderr)
        return 1
    print(f"升级包：{out}（{out.stat().st_size // 1024**2} MB）")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("update-keygen", help="生成升级签名密钥（厂商用）")
    p.add_argument("--out", required=True, help="密钥文件夹（写入 update.key 与 update.crt）")
    p.set_defaults(fn=cmd_keygen)
    p = sub.add_parser("update-pack", help="把打包好的监考机程序做成签名升级包（厂商用）")
    p.add_argument("dist", help="程序文件夹（build/build.sh 生成的 dist/kiosk）")
    p.add_argument("--key", required=True, help="升级私钥 update.key（证书 update.crt 在同一文件夹）")
    p.add_argument("--out", required=True, help="输出文件夹（写入 kiosk-update-<版本>.kup）")
    p.add_argument("--version", help="版本号（默认取程序自带的版本）")
    p.add_argument("--min-from", help="可从哪个最低版本升级（默认不限）")
    p.set_defaults(fn=cmd_pack)
