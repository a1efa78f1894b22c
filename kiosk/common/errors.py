"""The one error type for a refused operation: a stable code, a Chinese message for
the exam officer and an English one for the log."""

from __future__ import annotations


class Refused(Exception):
    """An operation was refused by a rule; nothing was changed."""

    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.code = code
        self.zh = zh
        self.en = en

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "zh": self.zh, "en": self.en}

    def __repr__(self) -> str:
        return f"Refused({self.code!r}, {self.en!r})"
