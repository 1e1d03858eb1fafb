"""Damaged checkpoint files are one line naming the file, exit 2 (issue 29, case 9): a state.pt that is a
pickle with code (weights_only refuses it), a truncated state.pt, a corrupt model.safetensors; resuming
from a damaged last/ says --fresh, and --fresh then trains."""
import os
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from detector.cli import main
from tests.conftest import speechlike

TINY = ["--frontend", "tiny", "--backend", "linear", "--tiny-hidden", "16", "--crop", "8000", "--batch-size", "2",
        "--epochs", "1", "--max-steps", "1", "--no-augment", "--no-progress"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_exit_2(r, *needles):
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = r.output.strip().splitlines()  # train prints its sampler summary first
    errors = [ln for ln in lines if ln.startswith("Error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], r.output
    assert all(n in errors[0] for n in needles), r.output


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.detector.conftest import make_manifest

    root = tmp_path_factory.mktemp("ckpt")
    manifest = make_manifest(root / "data")
    r = invoke("train", "--manifest", manifest, "--out", root / "run", *TINY)
    assert r.exit_code == 0, r.output
    return root / "run", manifest


@pytest.fixture
def run_copy(trained, tmp_path):
    run, manifest = trained
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run", manifest


class _RunsCode:
    """Unpickling this calls os.getcwd (harmless): a pickle that runs code, which weights_only must refuse."""

    def __reduce__(self):
        return (os.getcwd, ())


def _code_pickle(path: Path) -> None:
    torch.save({"model": {}, "opt": _RunsCode()}, path)


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a torch file at all\n" * 20)


@pytest.mark.parametrize("damage, needle", [(_code_pickle, "is refused: it is a pickle"),
                                            (_truncated, "is truncated or corrupt"),
                                            (_garbage, "is truncated or corrupt")])
def test_resuming_from_a_damaged_state_is_one_line_that_offers_fresh(run_copy, damage, needle):
    run, manifest = run_copy
    state = run / "last" / "state.pt"
    damage(state)
    args = ["train", "--manifest", manifest, "--out", run, *TINY, "--epochs", "2"]
    one_line_exit_2(invoke(*args), str(state), needle, "--fresh")
    r = invoke(*args, "--fresh")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("damage", [_truncated, _garbage, lambda p: p.write_bytes(b"")])
def test_a_corrupt_model_safetensors_is_one_line_naming_it(run_copy, tmp_path, damage):
    run, _ = run_copy
    weights = run / "final" / "model.safetensors"
    damage(weights)
    import soundfile as sf

    sf.write(tmp_path / "a.wav", speechlike(0.6), 16000)
    one_line_exit_2(invoke("score", "--checkpoint", run, "--input", tmp_path / "a.wav", "--out", tmp_path / "s.tsv",
                           "--no-progress"), str(weights), "not a readable safetensors file")
    one_line_exit_2(invoke("inspect", "--checkpoint", run), str(weights))


def test_a_corrupt_epoch_snapshot_is_one_line_naming_it(run_copy):
    run, manifest = run_copy
    snapshot = sorted((run / "epochs").glob("epoch_*.safetensors"))[-1]
    _truncated(snapshot)
    shutil.rmtree(run / "final")  # so the resumed run finishes again: it averages the snapshots
    r = invoke("train", "--manifest", manifest, "--out", run, *TINY)
    one_line_exit_2(r, str(snapshot), "not a readable safetensors file", "--fresh")


def test_a_corrupt_config_json_is_one_line_naming_it(run_copy, tmp_path):
    run, _ = run_copy
    config = run / "final" / "config.json"
    config.write_text('{"format": "hardspoof-detector/1", "model": {')
    one_line_exit_2(invoke("inspect", "--checkpoint", run), str(config), "not readable JSON")
