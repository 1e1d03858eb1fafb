"""Paths and helpers shared by the docker/ tests (no Docker engine, no network)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:                      # Python 3.10
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml on Python 3.10 needs tomli")

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def pins() -> dict[str, str]:
    """{name: version} of the `==` pins in pyproject's dependencies."""
    out = {}
    for dep in pyproject()["project"]["dependencies"]:
        m = re.fullmatch(r"([\w.-]+)==([\w.+-]+)", dep.replace(" ", ""))
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out
