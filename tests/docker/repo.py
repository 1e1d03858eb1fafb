"""Paths and helpers shared by the docker/ tests (no Docker engine, no network)."""
from __future__ import annotations

import re
import shlex
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


def install_extras() -> tuple[str, list[set[str]]]:
    """(where, [extras of each `pip install .[...]` line]) from README.md, else CI's script."""
    for name in ("README.md", ".ci/run"):
        path = ROOT / name
        found = []
        for line in path.read_text().splitlines() if path.is_file() else []:
            if "pip install" not in line:
                continue
            for token in shlex.split(line.split("pip install", 1)[1], comments=True):
                m = re.fullmatch(r"\.(?:\[([\w,\s-]*)\])?", token)
                if m:
                    found.append({x.strip() for x in (m.group(1) or "").split(",") if x.strip()})
        if found:
            return name, found
    return "pyproject.toml (no install line found)", [set()]


def pins() -> dict[str, str]:
    """{name: version} of the `==` pins in pyproject's dependencies."""
    out = {}
    for dep in pyproject()["project"]["dependencies"]:
        m = re.fullmatch(r"([\w.-]+)==([\w.+-]+)", dep.replace(" ", ""))
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out
