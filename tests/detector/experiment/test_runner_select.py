"""The experiment harness hands a run's corpus selection to `reconstruct run --select` (no filtered corpus
files of its own) and takes back only the selected, first-`limit` sources' reconstructions."""
from __future__ import annotations

import subprocess

import pytest

from detector.experiment import runner
from detector.experiment.config import Recon
from manifests.errors import UsageError


def test_selection_goes_to_reconstruct_run_as_select(tmp_path, monkeypatch):
    seen = []

    def fake_run(cmd, **kw):
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(runner.subprocess, "run", fake_run)
    monkeypatch.setattr(runner, "_this_run", lambda r, manifest, run_out, out: str(manifest))
    r = Recon(name="gl", corpus="demo", model="griffinlim", select=(("split", ("train",)), ("label", ("bonafide",))),
              limit=3)
    runner.reconstruction_manifest(r, tmp_path / "exp", None)
    cmd = seen[0]
    assert cmd[cmd.index("--corpus") + 1] == "demo"
    assert [cmd[i + 1] for i, a in enumerate(cmd) if a == "--select"] == ["split=train", "label=bonafide"]
    assert "--allow-outside-root" not in cmd and not (tmp_path / "exp" / "corpora").exists()


def test_a_refused_selection_is_exit_2(tmp_path):
    r = Recon(name="bad", corpus="demo", model="opus", select=(("split", ("nowhere",)),))
    with pytest.raises(UsageError, match="reconstructions.bad"):
        runner.reconstruction_manifest(r, tmp_path / "exp", None)
