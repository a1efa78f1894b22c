"""Documents the exam officer takes away: the two HTML reports (考场情况记录单, 环境检测报告)
and the CSV/XLSX tables the box exports and imports.

Plain functions over plain data: the room service gathers the data from the database and
calls these. Nothing here touches the database or the network.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import logging
import math
import os
import tempfile
import time
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from kiosk.common.fsutil import fsync_dir
from kiosk.core.errors import Refused

log = logging.getLogger(__name__)

_TEMPLATES = Path(__file__).resolve().parent / "templates"

# Limits for tables read from a USB stick: the file is untrusted and must not exhaust the box.
_MAX_FILE_BYTES = 20 * 1024 * 1024
_MAX_XLSX_UNPACKED_BYTES = 200 * 1024 * 1024  # a zip bomb is refused before openpyxl sees it
_MAX_COLUMNS = 64  # real seat/candidate tables have a handful of columns
_BLANK_ROW_ALLOWANCE = 1000  # blank rows tolerated beyond max_rows before the file is refused

# Excel runs a cell starting with one of these as a formula (CSV injection); names and
# descriptions typed by people must come out as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# -- formatting ---------------------------------------------------------------------------


def fmt_time(ts: float | None) -> str:
    """Epoch seconds as "YYYY-MM-DD HH:MM:SS" in the box's local time zone; "" for None."""
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def fmt_duration(seconds: int) -> str:
    """A duration the way the officer says it: 1小时05分, 12分30秒, 45秒."""
    total = int(seconds)
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}小时{minutes:02d}分"
    if minutes:
        return f"{sign}{minutes}分{secs:02d}秒"
    return f"{sign}{secs}秒"


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _person(value: object) -> str:
    """Name and phone as the manual's record sheet shows them: 张三(15011111111)."""
    info = value if isinstance(value, Mapping) else {}
    name, phone = _text(info.get("name")), _text(info.get("phone"))
    if name and phone:
        return f"{name}({phone})"
    return name or phone or "未登记"


def _joined(value: object) -> str:
    if isinstance(value, list | tuple | set):
        return "、".join(_text(v) for v in value if _text(v))
    return _text(value)


def _count_people(rows: Sequence[Mapping[str, Any]]) -> int:
    # One candidate may have several violations or extra-time grants; the sheet counts people.
    return len({_text(r.get("admission_no")) or _text(r.get("name")) for r in rows})


# -- HTML documents -----------------------------------------------------------------------


@cache
def _env() -> Environment:
    # Loaded by path next to this module, never the working directory; autoescape is on for
    # every template because names and descriptions are typed by people.
    return Environment(
        loader=FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(template: str, **context: object) -> str:
    return _env().get_template(template).render(**context)


@dataclasses.dataclass(frozen=True)
class _Section:
    title: str
    what: str  # "违纪" in "该场次违纪情况1人,详细名单如下:"
    headers: tuple[str, ...]
    wide: tuple[int, ...]  # indexes of columns that hold long free text
    rows: list[list[str]]
    people: int


def _section(
    title: str,
    what: str,
    headers: tuple[str, ...],
    wide: tuple[int, ...],
    source: object,
    row: Callable[[Mapping[str, Any]], list[str]],
) -> _Section:
    items = [r for r in (source or []) if isinstance(r, Mapping)]
    return _Section(title, what, headers, wide, [row(r) for r in items], _count_people(items))


def _violation_type(r: Mapping[str, Any]) -> str:
    code, text = _text(r.get("code")), _text(r.get("text"))
    return f"{code}:{text}" if code and text else code or text


def render_situation_record(data: Mapping[str, Any]) -> str:
    """考场情况记录单: a standalone, printable HTML page laid out like the manual's."""
    start, end = data.get("start"), data.get("end")
    state = _text(data.get("state_zh"))
    exam_time = f"{fmt_time(start) or '未开考'} 到 {fmt_time(end) or '未结束'}"
    if state:
        exam_time += f"({state})"

    site_name, site_code = _text(data.get("site_name")), _text(data.get("site_code"))
    site = f"{site_name}({site_code})" if site_name and site_code else site_name or site_code

    number = data.get("session_number")
    session = _text(data.get("session_name")) or (f"第{number}场" if number is not None else "")

    totals = data.get("totals") or {}
    totals_line = "".join(
        f"{label}:{int(totals.get(key) or 0)}人;"
        for key, label in (
            ("expected", "应考人数"),
            ("sat", "实考人数"),
            ("absent", "缺考人数"),
            ("violations", "违纪人数"),
            ("extra_time", "补时人数"),
            ("resumes", "断点续考人数"),
        )
    )

    sections = [
        _section(
            "一、缺考情况",
            "缺考",
            ("考生姓名", "准考证号", "缺考科目"),
            (2,),
            data.get("absences"),
            lambda r: [
                _text(r.get("name")),
                _text(r.get("admission_no")),
                _joined(r.get("subjects")),
            ],
        ),
        _section(
            "二、违纪情况",
            "违纪",
            ("考生姓名", "准考证号", "违纪类型", "违纪情况描述", "处理时间"),
            (2, 3),
            data.get("violations"),
            lambda r: [
                _text(r.get("name")),
                _text(r.get("admission_no")),
                _violation_type(r),
                _text(r.get("description")),
                fmt_time(r.get("time")),
            ],
        ),
        _section(
            "三、补时情况",
            "补时",
            ("考生姓名", "准考证号", "本次补时", "累计补时", "补时原因", "处理时间"),
            (4,),
            data.get("extra_time"),
            lambda r: [
                _text(r.get("name")),
                _text(r.get("admission_no")),
                fmt_duration(r.get("granted_s") or 0),
                fmt_duration(r.get("total_s") or 0),
                _text(r.get("reason")),
                fmt_time(r.get("time")),
            ],
        ),
        _section(
            "四、断点续考情况",
            "断点续考",
            ("考生姓名", "准考证号", "异常情况", "异常描述", "处理人", "处理时间", "IP地址"),
            (2, 3),
            data.get("resumes"),
            lambda r: [
                _text(r.get("name")),
                _text(r.get("admission_no")),
                _text(r.get("situation")),
                _text(r.get("description")),
                _text(r.get("handler")),
                fmt_time(r.get("time")),
                _text(r.get("ip")),
            ],
        ),
    ]

    header = [
        ("考试项目", _text(data.get("exam_name"))),
        ("考点(学校)", site),
        ("考场代码", _text(data.get("room_code"))),
        ("场次名称", session),
        ("考试时间", exam_time),
        ("系统管理员", _person(data.get("admin"))),
        ("监考人员", _person(data.get("invigilator"))),
        ("总体情况", totals_line),
    ]
    return _render(
        "situation_record.html.j2",
        title=f"考场情况记录单 {_text(data.get('room_code'))} {session}".strip(),
        header=header,
        sections=sections,
        generated_at=fmt_time(data.get("generated_at")),
    )


def _fmt_num(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _text(value)


def _requirement_rows(req: object) -> list[tuple[str, str]]:
    """The requirements table in the words envcheck.judge_env uses for each item."""
    if dataclasses.is_dataclass(req) and not isinstance(req, type):
        req = dataclasses.asdict(req)
    fields = dict(req) if isinstance(req, Mapping) else {}

    def seq(key: str) -> list[str]:
        value = fields.pop(key, ())
        return [_text(v) for v in value] if isinstance(value, list | tuple) else []

    rows: list[tuple[str, str]] = []
    if "allowed_os_prefixes" in fields:
        rows.append(("操作系统", " / ".join(seq("allowed_os_prefixes")) or "不限"))
    if "min_cpu_cores" in fields:
        rows.append(("CPU 核数", f"≥ {_fmt_num(fields.pop('min_cpu_cores'))}"))
    if "min_memory_mb" in fields:
        rows.append(("内存", f"≥ {_fmt_num(fields.pop('min_memory_mb'))} MB"))
    if "min_free_disk_mb" in fields:
        rows.append(("可用磁盘", f"≥ {_fmt_num(fields.pop('min_free_disk_mb'))} MB"))
    if "min_screen" in fields:
        screen = seq("min_screen")
        rows.append(("屏幕分辨率", f"≥ {'x'.join(screen)}" if screen else "不限"))
    if "required_software" in fields:
        rows.append(("必备软件", "、".join(seq("required_software")) or "无"))
    if "min_daemon_version" in fields:
        version = _text(fields.pop("min_daemon_version"))
        rows.append(("守护进程版本", f"≥ {version}" if version else "不限"))
    if "max_clock_skew_s" in fields:
        rows.append(("时钟偏差", f"≤ ±{_fmt_num(fields.pop('max_clock_skew_s'))} 秒"))
    if "max_rtt_ms" in fields:
        rows.append(("网络延迟", f"≤ {_fmt_num(fields.pop('max_rtt_ms'))} ms"))
    if "forbid_vm" in fields:
        rows.append(("虚拟机", "不允许" if fields.pop("forbid_vm") else "不限"))
    # A field added to Requirements later still shows up rather than vanishing silently.
    rows.extend((key, _joined(value)) for key, value in fields.items())
    if rows:
        rows.append(("远程控制/禁用程序", "无"))  # judged on every PC, not a setting
    return rows


def render_envcheck_report(data: Mapping[str, Any]) -> str:
    """环境检测报告: summary, requirements, and one row per PC with failed items in red."""
    pcs = [pc for pc in (data.get("pcs") or []) if isinstance(pc, Mapping)]

    # One column per check item, in the order the first PCs report them.
    columns: dict[str, str] = {}
    for pc in pcs:
        for item in pc.get("items") or []:
            key = _text(item.get("key"))
            columns.setdefault(key, _text(item.get("label_zh")) or key)

    rows = []
    for pc in pcs:
        items = {_text(i.get("key")): i for i in pc.get("items") or [] if isinstance(i, Mapping)}
        cells = []
        for key in columns:
            item = items.get(key)
            if item is None:
                cells.append({"value": "—", "css": "short", "required": ""})
            else:
                value = _text(item.get("value"))
                # "8192 MB" must not wrap between number and unit; long text may.
                css = ["short"] if len(value) <= 12 else []
                if not item.get("ok"):
                    css.append("bad")
                cells.append({"value": value, "css": " ".join(css), "required": _text(item.get("required"))})
        rows.append(
            {
                "seat": _text(pc.get("seat")),
                "ip": _text(pc.get("ip")),
                "checked_at": fmt_time(pc.get("checked_at")),
                "reported": bool(items),
                "cells": cells,
                "passed": bool(pc.get("passed")),
            }
        )

    return _render(
        "envcheck_report.html.j2",
        room_code=_text(data.get("room_code")),
        checked_at=fmt_time(data.get("checked_at")) or "未检测",
        generated_at=fmt_time(data.get("generated_at")),
        total=int(data.get("total") or 0),
        passed=int(data.get("passed") or 0),
        failed=int(data.get("failed") or 0),
        failed_seats=[r["seat"] for r in rows if not r["passed"]],
        requirements=_requirement_rows(data.get("requirements")),
        columns=list(columns.values()),
        rows=rows,
    )


# -- tables: export ---------------------------------------------------------------------


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _looks_like_formula(text: str) -> bool:
    # A lone "-" placeholder or a negative number is not a formula.
    return len(text) > 1 and text.startswith(_FORMULA_START) and not _is_number(text)


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    # The OWASP guard: a leading apostrophe makes Excel show the text instead of running
    # it. Text that already starts with apostrophes before such a formula gets one more,
    # so that _csv_unguard gives back exactly what was written (a seat list goes out and
    # comes back in unchanged).
    if isinstance(value, str) and _looks_like_formula(text.lstrip("'")):
        return "'" + text
    return text


def _csv_unguard(text: str) -> str:
    """The inverse of _csv_value's guard, for a CSV read back in."""
    if text.startswith("'") and _looks_like_formula(text.lstrip("'")):
        return text[1:]
    return text


def _display_width(text: str) -> int:
    # A Chinese character takes two columns of an Excel cell.
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _write_csv(fh: io.BufferedWriter, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    # UTF-8 with BOM: without the BOM, Excel on Chinese Windows reads the file as GBK.
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    writer.writerow([_csv_value(h) for h in headers])
    for row in rows:
        writer.writerow([_csv_value(v) for v in row])
    text.flush()
    text.detach()  # leave the binary file open for fsync


def _write_xlsx(
    fh: io.BufferedWriter, headers: Sequence[str], rows: Iterable[Sequence[object]], title: str
) -> None:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    # Sheet names: at most 31 characters, none of []:*?/\ .
    name = "".join(ch for ch in title if ch not in "[]:*?/\\").strip()[:31]
    if name:
        ws.title = name

    widths: dict[int, int] = {}
    bold = Font(bold=True)
    for r, row in enumerate([headers, *rows], start=1):
        for c, value in enumerate(row, start=1):
            if value is None:
                value = ""
            elif isinstance(value, bool) or not isinstance(value, str | int | float):
                value = str(value)
            if isinstance(value, str):
                # openpyxl refuses control characters that XML cannot hold.
                value = ILLEGAL_CHARACTERS_RE.sub("", value)
            cell = ws.cell(row=r, column=c, value=value)
            if isinstance(value, str) and value.startswith("="):
                cell.data_type = "s"  # openpyxl would otherwise store it as a formula
            if r == 1:
                cell.font = bold
            widths[c] = max(widths.get(c, 0), _display_width(str(value)))
    for c, width in widths.items():
        ws.column_dimensions[get_column_letter(c)].width = min(max(width + 2, 8), 60)
    ws.freeze_panes = "A2"
    wb.save(fh)


def write_table(
    path: str | Path,
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    title: str = "",
) -> Path:
    """Write a table as .csv or .xlsx, atomically: the file is either whole or absent.

    `title` names the xlsx sheet; a CSV has no place for it (its first row must stay the
    header so that read_table can read the file back).
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise Refused(
            "bad_export_format",
            f"不支持的导出格式“{target.suffix or '无扩展名'}”，请选择 .csv 或 .xlsx 文件",
            f"unsupported export format {target.suffix!r}; use .csv or .xlsx",
        )
    tmp_name = ""
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            # mkstemp makes the file private; an export is meant to be read by others.
            with contextlib.suppress(OSError):
                os.fchmod(fh.fileno(), 0o644)
            if suffix == ".csv":
                _write_csv(fh, headers, rows)
            else:
                _write_xlsx(fh, headers, rows, title)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
        tmp_name = ""
        fsync_dir(target.parent)
    except OSError as exc:
        # Typically the USB stick was pulled or is full; nothing is left behind.
        raise Refused(
            "export_failed",
            f"导出失败，无法写入“{target}”：请检查U盘是否已插好、是否有剩余空间",
            f"export to {target} failed: {exc}",
        ) from exc
    finally:
        if tmp_name:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return target


def _bad_table(zh: str, en: str) -> Refused:
    return Refused("bad_table", zh, en)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        # Excel stores a typed seat number 1 as 1.0.
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value).strip()


def _csv_rows(raw: bytes) -> Iterator[list[str]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel on Chinese Windows saves "CSV" in the ANSI code page; GB18030 is a superset of GBK.
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise _bad_table(
                "无法识别表格文件的文字编码，请用 Excel 另存为 CSV UTF-8 或 .xlsx 后重试",
                f"csv is neither utf-8 nor gbk: {exc}",
            ) from exc
    for row in csv.reader(io.StringIO(text, newline="")):
        yield [_csv_unguard(cell.strip()) for cell in row]


def _xlsx_rows(raw: bytes, limit: int) -> Iterator[list[object]]:
    """The first sheet's rows, at most `limit` of them, read completely before returning."""
    from openpyxl import load_workbook

    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > _MAX_XLSX_UNPACKED_BYTES:
        raise _bad_table("表格文件过大，无法导入", f"xlsx unpacks to {unpacked} bytes")

    # openpyxl warns about features it drops (data validation, unknown extensions, no default
    # style); they do not change the cell values read here, so they are logged, not raised.
    # The rows are read inside the block so that the filter change stays this short.
    rows: list[list[object]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wb = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        try:
            if not wb.worksheets:
                raise _bad_table("表格文件中没有工作表", "xlsx has no worksheet")
            for row in wb.worksheets[0].iter_rows(max_col=_MAX_COLUMNS, values_only=True):
                rows.append(list(row))
                if len(rows) >= limit:
                    break
        finally:
            wb.close()
    for w in caught:
        log.info("openpyxl while reading a table: %s", w.message)
    return iter(rows)


def read_table(
    path: str | Path,
    columns: dict[str, Sequence[str]],
    max_rows: int = 1000,
) -> list[dict[str, str]]:
    """Read an imported .csv/.xlsx table into dicts keyed by the canonical column keys.

    The file comes from a USB stick and is untrusted: every way it can be wrong ends in
    Refused('bad_table') with a Chinese reason, never a raw exception.
    """
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise _bad_table(
            f"不支持的表格格式“{source.suffix or '无扩展名'}”，请使用 .csv 或 .xlsx 文件"
            "（旧版 .xls 请在 Excel 中另存为 .xlsx）",
            f"unsupported table format {source.suffix!r}",
        )
    try:
        with source.open("rb") as fh:
            raw = fh.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _bad_table(f"无法读取文件“{source.name}”", f"cannot read {source}: {exc}") from exc
    if len(raw) > _MAX_FILE_BYTES:
        raise _bad_table("表格文件过大，无法导入", f"{source} is over {_MAX_FILE_BYTES} bytes")

    # One header row, the data rows, the blank rows tolerated, and one more to notice excess.
    limit = max_rows + _BLANK_ROW_ALLOWANCE + 2
    try:
        rows = _csv_rows(raw) if suffix == ".csv" else _xlsx_rows(raw, limit)
        return _collect(rows, columns, max_rows)
    except Refused:
        raise
    except Exception as exc:  # a damaged file can fail anywhere inside csv/zip/XML parsing
        raise _bad_table(
            f"表格文件“{source.name}”已损坏或格式不正确，无法读取",
            f"cannot parse {source}: {type(exc).__name__}: {exc}",
        ) from exc


def _collect(
    rows: Iterator[Sequence[object]], columns: dict[str, Sequence[str]], max_rows: int
) -> list[dict[str, str]]:
    header = next(rows, None)
    if header is None:
        raise _bad_table("表格是空的，第一行应为列名", "table is empty")
    names = [_cell_text(h).casefold() for h in header]

    where: dict[str, int | None] = {}
    for key, accepted in columns.items():
        wanted = {a.strip().casefold() for a in accepted}
        where[key] = next((i for i, n in enumerate(names) if n in wanted), None)
    required = list(columns)[:2]
    missing = [k for k in required if where[k] is None]
    if missing:
        shown = "、".join(f"“{columns[k][0]}”" if columns[k] else k for k in missing)
        raise _bad_table(
            f"表格缺少必需的列：{shown}（第一行应为列名）",
            f"table lacks required columns: {', '.join(missing)}",
        )

    result: list[dict[str, str]] = []
    seen = 0
    for row in rows:
        seen += 1
        if seen > max_rows + _BLANK_ROW_ALLOWANCE:
            raise _bad_table(f"表格行数过多（最多 {max_rows} 行）", "too many rows")
        values = {
            key: _cell_text(row[i]) if i is not None and i < len(row) else "" for key, i in where.items()
        }
        if not any(values.values()):
            continue
        if len(result) >= max_rows:
            raise _bad_table(f"表格行数过多（最多 {max_rows} 行）", f"more than {max_rows} data rows")
        result.append(values)
    return result
