"""The scores file of `detector eval` and `detector score`: tab-separated, one header comment.

Line 1 is the only comment: it starts with `# ` and says what the score means. Line 2 holds the
column names; every later line is one clip. A field holding a tab, a line break, a double quote
or a `#` is written in double quotes (a quote inside doubled), as Python's csv module and pandas
read it: so ids from any file name (tabs, newlines, a leading `#`) round-trip, and no data line
can be mistaken for a comment. Read it with `csv.reader(f, delimiter="\\t")` after skipping line 1,
or `pandas.read_csv(f, sep="\\t", skiprows=1, keep_default_na=False)`.
"""
from __future__ import annotations

import csv
import io
import os
from typing import Sequence

from . import storage
from .errors import UsageError, first_line

HEADER = ("# hardspoof scores: score = bona fide logit: higher score = more likely bona fide; decision uses "
          "threshold {thr:.6g}; only this first line is a comment; fields holding a tab, line break, quote or # "
          "are double-quoted")
_SPECIAL = ("\t", "\n", "\r", '"', "#")
SHA_KEY = "checkpoint sha256"  # `detector score` names the weights that scored in the header comment


def checkpoint_sha256(loc: str | os.PathLike) -> str | None:
    """The scoring weights' sha256 a scores file's header comment names, or None."""
    import re

    first = storage.read_bytes(loc)[:4096].decode("utf-8", errors="replace").split("\n", 1)[0]
    m = re.search(SHA_KEY + r" ([0-9a-f]{64})", first)
    return m.group(1) if m else None


def _field(v: object) -> str:
    s = "" if v is None else (f"{v:.6f}" if isinstance(v, float) else str(v))
    if any(c in s for c in _SPECIAL):
        return '"' + s.replace('"', '""') + '"'
    return s


def text(threshold: float, columns: Sequence[str], rows: Sequence[Sequence], note: str = "") -> str:
    """The scores file's content (`detector score --out -` prints it). `note` (one line, e.g. what the llr
    and p_bonafide columns mean) is appended to the header comment."""
    return "\n".join([HEADER.format(thr=threshold) + note.replace("\n", " "), "\t".join(columns),
                      *("\t".join(_field(v) for v in r) for r in rows)]) + "\n"


def write(loc: str | os.PathLike, threshold: float, columns: Sequence[str], rows: Sequence[Sequence],
          note: str = "") -> str:
    """Write the scores file (see `text`) atomically (temp + rename locally); returns its location."""
    content = text(threshold, columns, rows, note).encode("utf-8")
    return storage.write_atomic(loc, lambda fh: fh.write(content))


def read(loc: str | os.PathLike) -> list[dict]:
    """The rows of a scores file as dicts of strings (column name -> field). A file that is not UTF-8 text or
    not tab-separated fields is a UsageError naming it."""
    try:
        text = storage.read_bytes(loc).decode("utf-8")
        if "\x00" in text:
            raise ValueError("it holds NUL bytes")
        body = text.split("\n", 1)[1] if text.startswith("#") else text
        return list(csv.DictReader(io.StringIO(body, newline=""), delimiter="\t"))
    except (UnicodeDecodeError, csv.Error, ValueError) as e:
        if isinstance(e, UsageError):
            raise
        raise UsageError(f"{storage.name(loc)} is not a scores file of `detector score` (a UTF-8 text TSV): "
                         f"{first_line(e)}") from None
