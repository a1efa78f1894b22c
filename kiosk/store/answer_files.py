"""The files of operation-task answers (the candidates' work) in the answer folder:
`<answer folder>/session-<n>/<admission_no>/<subject>/<question>/<name>`, each with a
row of StoredFile (its size and the hash checked on arrival). A question's folder holds
exactly the files of its newest answer; each is written atomically and is durable
before the rows that name it commit.

Files that come over the room network (`put_file`, docs/network.md) wait in
`<answer folder>/.incoming/<admission_no>/`: `<sha256>.part` while they arrive, renamed
to `<sha256>` once complete, hashed and fsynced; the journal sync takes them from there
when it stores the answer that lists them."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from kiosk.common.errors import Refused
from kiosk.common.fsutil import CHUNK, fsync_dir, write_atomic
from kiosk.common.packages import AnswerFile
from kiosk.store.models import StoredFile

_PART = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")
INCOMING = ".incoming"


@dataclass(frozen=True)
class Received:
    """A work file complete in `.incoming` (its hash checked when it completed), to be
    stored as the file `name` of a question."""

    subject: str
    question: str
    name: str
    path: Path
    size: int
    sha256: str


def question_folder(root: Path, session: int, admission_no: str, subject: str, question: str) -> Path:
    for part in (admission_no, subject, question):
        if not _PART.fullmatch(part):
            raise Refused("bad_answers", "作答文件的科目或题号无效", f"unsafe path part {part!r:.80}")
    return root / f"session-{session}" / admission_no / subject / question


def replace_files(
    root: Path,
    session: int,
    admission_no: str,
    files: Sequence[AnswerFile | Received],
    sync: bool = True,
    *,
    subject: str = "",
    question: str = "",
) -> None:
    """One question's files (all of the same subject and question) replace what it had,
    on disk and in the database (inside the caller's transaction); `sync=False` leaves
    making them durable to the caller. No files (then `subject` and `question` name the
    question): a newer answer that lists none empties the question's folder."""
    if files:
        subject, question = files[0].subject, files[0].question
    folder = question_folder(root, session, admission_no, subject, question)
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        if isinstance(f, Received):
            _copy_atomic(f.path, folder / f.name, sync)
        else:
            write_atomic(folder / f.name, f.data, sync=sync, writeback=not sync)
    keep = {f.name for f in files}
    for old in folder.iterdir():
        if old.name not in keep and old.is_file():
            old.unlink()
    StoredFile.delete().where(
        StoredFile.admission_no == admission_no,
        StoredFile.subject == subject,
        StoredFile.question == question,
    ).execute()
    if files:
        StoredFile.insert_many(
            [
                dict(admission_no=admission_no, session=session, subject=f.subject, question=f.question,
                     name=f.name, size=f.size if isinstance(f, Received) else len(f.data), sha256=f.sha256)
                for f in files
            ]
        ).execute()  # fmt: skip


def _copy_atomic(src: Path, dest: Path, sync: bool) -> None:
    """write_atomic for a file already on the box's disk: copied, not read into memory."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with src.open("rb") as f, tmp.open("wb") as out:
            shutil.copyfileobj(f, out, CHUNK)
            out.flush()
            if sync:
                os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync:
        fsync_dir(dest.parent)


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


# -- files arriving over the room network ----------------------------------------------------


def incoming_folder(root: Path, admission_no: str) -> Path:
    """One candidate's files on their way: a candidate can neither see nor claim another's."""
    if not _PART.fullmatch(admission_no):
        raise Refused("bad_args", "准考证号无效", f"unsafe admission number {admission_no!r:.80}")
    return root / INCOMING / admission_no


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def received(root: Path, admission_no: str, sha256: str, size: int) -> Path | None:
    """The complete file with this hash and size, or None."""
    path = incoming_folder(root, admission_no) / sha256
    return path if _size(path) == size else None


def incoming_bytes(root: Path, admission_no: str, but: str = "") -> int:
    """What one candidate's incoming folder holds, complete and partial (`but`: a hash
    whose files are left out)."""
    folder = incoming_folder(root, admission_no)
    if not folder.is_dir():
        return 0
    return sum(
        p.stat().st_size for p in folder.iterdir() if p.is_file() and p.name not in (but, f"{but}.part")
    )


def receive(root: Path, admission_no: str, sha256: str, size: int, offset: int, data: bytes) -> int:
    """Take the bytes `data` of the file `sha256` (of `size` bytes) at `offset`; how many
    bytes of it the box holds now. The part file grows only at its end: a chunk past it
    (a gap) is refused, one that overlaps it must agree with what is there. When the last
    byte is in, the file is hashed: the right hash makes it `<sha256>` (fsynced), another
    one is refused and the part deleted, so the PC sends it again from the start. No
    data asks how much the box holds. The caller checked the arguments and the limits."""
    folder = incoming_folder(root, admission_no)
    if received(root, admission_no, sha256, size) is not None:
        return size
    part = folder / f"{sha256}.part"
    held = _size(part) or 0
    if held > size:  # not this file's beginning (another size was claimed before)
        part.unlink()
        held = 0
    if not data and held < size:
        return held
    if offset > held:
        raise Refused(
            "file_gap", "作品文件的传输位置不连续", f"chunk at {offset}, the box holds {held} bytes"
        )
    overlap = data[: held - offset]
    if overlap:
        with part.open("rb") as f:
            f.seek(offset)
            same = f.read(len(overlap)) == overlap
        if not same:
            part.unlink()
            raise Refused(
                "file_overlap", "作品文件的重传内容与已收到的不一致", f"chunk at {offset} disagrees"
            )
    new = data[len(overlap) :]
    folder.mkdir(parents=True, exist_ok=True)
    if new or not part.exists():
        with part.open("ab") as f:
            f.write(new)
        held += len(new)
    if held < size:
        return held
    digest = hashlib.sha256()
    with part.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
        os.fsync(f.fileno())
    if digest.hexdigest() != sha256:
        part.unlink()
        raise Refused(
            "bad_hash",
            "作品文件校验失败，将重新传输",
            f"{size} bytes received, sha256 {digest.hexdigest()}, not {sha256}",
        )
    os.replace(part, folder / sha256)
    fsync_dir(folder)
    return size


def drop_incoming(root: Path, admission_no: str, hashes: Iterable[str]) -> None:
    """Complete files no longer needed: their answers are stored (or will never be)."""
    folder = incoming_folder(root, admission_no)
    for sha256 in hashes:
        with contextlib.suppress(FileNotFoundError):
            (folder / sha256).unlink()
