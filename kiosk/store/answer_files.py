"""The files of operation-task answers (the candidates' work) in the answer folder:
`<answer folder>/session-<n>/<admission_no>/<subject>/<question>/<name>`, each with a
row of StoredFile (its size and the hash checked on arrival). A question's folder holds
exactly the files of its newest answer; each is written atomically and is durable
before the rows that name it commit."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from kiosk.common.errors import Refused
from kiosk.common.fsutil import write_atomic
from kiosk.common.packages import AnswerFile
from kiosk.store.models import StoredFile

_PART = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


def question_folder(root: Path, session: int, admission_no: str, subject: str, question: str) -> Path:
    for part in (admission_no, subject, question):
        if not _PART.fullmatch(part):
            raise Refused("bad_answers", "作答文件的科目或题号无效", f"unsafe path part {part!r:.80}")
    return root / f"session-{session}" / admission_no / subject / question


def replace_files(
    root: Path, session: int, admission_no: str, files: Sequence[AnswerFile], sync: bool = True
) -> None:
    """One question's files (all of the same subject and question) replace what it had,
    on disk and in the database (inside the caller's transaction); `sync=False` leaves
    making them durable to the caller."""
    first = files[0]
    folder = question_folder(root, session, admission_no, first.subject, first.question)
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        write_atomic(folder / f.name, f.data, sync=sync)
    keep = {f.name for f in files}
    for old in folder.iterdir():
        if old.name not in keep and old.is_file():
            old.unlink()
    StoredFile.delete().where(
        StoredFile.admission_no == admission_no,
        StoredFile.subject == first.subject,
        StoredFile.question == first.question,
    ).execute()
    StoredFile.insert_many(
        [
            dict(admission_no=admission_no, session=session, subject=f.subject, question=f.question,
                 name=f.name, size=len(f.data), sha256=f.sha256)
            for f in files
        ]
    ).execute()  # fmt: skip


def session_files(root: Path, session: int) -> Iterator[tuple[Path, StoredFile]]:
    """Every stored file of a session: its path and its row."""
    rows = (
        StoredFile.select()
        .where(StoredFile.session == session)
        .order_by(StoredFile.admission_no, StoredFile.subject, StoredFile.question, StoredFile.name)
    )
    for r in rows:
        yield question_folder(root, session, r.admission_no, r.subject, r.question) / r.name, r


def forget(root: Path, session: int, admission_no: str, subjects: Sequence[str]) -> None:
    """A re-exam: the candidate's files of these subjects go, rows and all."""
    for subject in subjects:
        folder = root / f"session-{session}" / admission_no / subject
        if _PART.fullmatch(subject) and folder.is_dir():
            shutil.rmtree(folder)
    StoredFile.delete().where(
        StoredFile.admission_no == admission_no, StoredFile.subject.in_(list(subjects))
    ).execute()
