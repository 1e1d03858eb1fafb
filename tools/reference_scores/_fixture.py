"""Helpers shared by the reference-score scripts of this folder: checkpoint hash, the fixture file, a timing."""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "detector" / "model" / "fixtures" / "pretrained"


def sha256(path: Path) -> str:
    from manifests.storage import sha256 as file_sha256  # the repo is on sys.path (the scripts put it there)

    return file_sha256(str(path))


def write_fixture(name: str, record: dict, out: Path | None = None) -> Path:
    """Write `record` as FIXTURES/<name>.json (or `out`), one clip per line of each list for readable diffs."""
    path = out or FIXTURES / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def median_seconds(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall seconds of each callable over `repeats` rounds, the callables interleaved within a round
    (so a busy machine slows both alike); one untimed warm-up call each first."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}
