"""The files of operation-task answers (the candidates' work) in the answer folder:
`<answer folder>/session-<n>/<admission_no>/<subject>/<question>/<name>`. A question's
folder holds exactly the files of its newest answer; each is written atomically."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from kiosk.common.errors import Refused
from kiosk.common.fsutil import write_atomic
from kiosk.common.packages import AnswerFile

_PART = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


def question_folder(root: Path, session: int, admission_no: str, subject: str, question: str) -> Path:
    for part in (admission_no, subject, question):
        if not _PART.fullmatch(part):
            raise Refused("bad_answers", "作答文件的科目或题号无效", f"unsafe path part {part!r:.80}")
    return root / f"session-{session}" / admission_no / subject / question


def replace_files(folder: Path, files: Sequence[AnswerFile]) -> None:
    """The folder afterwards holds these files and no others."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        write_atomic(folder / f.name, f.data)
    keep = {f.name for f in files}
    for old in folder.iterdir():
        if old.name not in keep and old.is_file():
            old.unlink()


def session_files(root: Path, session: int) -> Iterator[tuple[Path, str]]:
    """Every stored file of a session, with its name relative to `root`."""
    base = root / f"session-{session}"
    if base.is_dir():
        for path in sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".")):
            yield path, str(path.relative_to(root))
