"""The small table `detector score FILE...` prints without --out: file, score, decision, and p_bonafide when
the checkpoint is calibrated. The TSV (`--out FILE`, `--out -`) is the format for programs; this is for people."""
from __future__ import annotations

import os
from typing import Sequence

from manifests import storage


def shown(path: str) -> str:
    """A clip location as a person reads it: relative to the current folder when inside it, control
    characters (tabs, line breaks) escaped so that one clip stays one line."""
    if not storage.is_uri(path):
        rel = os.path.relpath(path)
        path = path if rel.startswith("..") else rel
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        path = path.encode("unicode_escape", errors="backslashreplace").decode("ascii")
    return path


def _number(v: object, digits: int) -> str:
    return "-" if v in (None, "") else f"{float(v):.{digits}f}"


def score_table(columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    """Rows of the scores TSV (`columns`: id, path, score, [llr, p_bonafide,] decision, error) as an
    aligned text table, one line per clip; a clip not scored shows '-' and why in its decision."""
    at = {c: i for i, c in enumerate(columns)}
    calibrated = "p_bonafide" in at
    lines = [["file", "score", "decision", *(["p_bonafide"] if calibrated else [])]]
    for r in rows:
        scored = r[at["score"]] not in (None, "")
        line = [shown(str(r[at["path"]])), _number(r[at["score"]], 4),
                str(r[at["decision"]]) if scored else f"not scored: {r[at['error']]}"]
        if calibrated:
            line.append(_number(r[at["p_bonafide"]], 3))
        lines.append(line)
    widths = [max(len(line[k]) for line in lines) for k in range(len(lines[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
