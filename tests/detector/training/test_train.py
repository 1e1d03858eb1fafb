"""Training robustness: unreadable clips skipped and counted, NaN stops the run, resume, epoch averaging."""
import json
from pathlib import Path

import pytest
import torch

import manifests
from detector.training import loop as train_mod
from detector.training.augment import Augmenter, add_noise, convolve_rir, rawboost
from detector.training.loop import NonFiniteLoss, average_epochs, train

from ..conftest import tiny_config


def test_unreadable_audio_skipped_and_reported(manifest: Path, tmp_path: Path):
    rows = manifests.read(manifest).to_pylist()
    victim = next(r for r in rows if r["utt_id"] == "bonafide/spk0/utt0")  # a train original: drawn every epoch
    Path(victim["path"]).write_bytes(b"garbage")
    s = train([str(manifest)], tmp_path / "run", tiny_config(), progress=False)
    meta = json.loads((tmp_path / "run" / "final" / "meta.json").read_text())
    assert s["failed_clips"] == 1 and victim["utt_id"] in meta["failed_clips"]


def test_nan_loss_names_step_and_clips(manifest: Path, tmp_path: Path, monkeypatch):
    def nan_loss(*a, **k):
        return {"cls": torch.tensor(float("nan"), requires_grad=True), "total": torch.tensor(float("nan"))}
    monkeypatch.setattr(train_mod, "racl", nan_loss)
    with pytest.raises(NonFiniteLoss, match=r"step 0 .* on clips .*utt"):
        train([str(manifest)], tmp_path / "run", tiny_config(), progress=False)


def test_resume_and_average(manifest: Path, tmp_path: Path):
    out = tmp_path / "run"
    train([str(manifest)], out, tiny_config(epochs=1, loss="ce"), progress=False)
    s = train([str(manifest)], out, tiny_config(epochs=2, loss="ce"), progress=False)
    rows = (out / "log.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["0", "1"]  # epoch 0 not rerun
    assert s["averaged_epochs"] == list(range(max(0, s["best_epoch"] - 1), s["best_epoch"] + 1))
    if (out / "epochs" / "epoch_0000.safetensors").is_file() and (out / "epochs" / "epoch_0001.safetensors").is_file():
        from safetensors.torch import load_file
        a, b = (load_file(str(out / "epochs" / f"epoch_000{e}.safetensors")) for e in (0, 1))
        avg = average_epochs(out / "epochs", [0, 1])
        k = "head.weight"
        assert torch.allclose(avg[k], (a[k] + b[k]) / 2)


def test_augmentation_invariants():
    rng = __import__("numpy").random.default_rng(0)
    import numpy as np
    x = np.sin(np.arange(16000) / 10).astype(np.float32) * 0.5
    n = rng.standard_normal(8000).astype(np.float32)
    y = add_noise(x, n, 10.0)
    snr = 10 * np.log10(np.mean(x ** 2) / np.mean((y - x) ** 2))
    assert abs(snr - 10.0) < 0.1
    assert convolve_rir(x, np.array([1.0, 0.5, 0.25])).shape == x.shape
    assert np.isfinite(rawboost(x, 16000, rng)).all()
    aug = Augmenter(p=1.0, use_rawboost=True)
    out = aug(x, rng)
    assert out.shape == x.shape and out.dtype == np.float32 and np.abs(out).max() <= 1.0


def test_epoch_selection_rule():
    """Lowest validation loss (the paper's rule); with --select-on eer, ties on EER go to the lower loss,
    so a dev EER that reaches 0 early does not freeze the choice on the first such epoch."""
    from detector.training.loop import State, improves

    history = [{"eer": 0.0, "loss": 0.50}, {"eer": 0.0, "loss": 0.30}, {"eer": 0.0, "loss": 0.40},
               {"eer": 0.1, "loss": 0.20}]
    for select_on, want in (("loss", 3), ("eer", 1)):
        state = State()
        for epoch, result in enumerate(history):
            if improves(state, result, select_on):
                state.best_eer, state.best_loss, state.best_epoch = result["eer"], result["loss"], epoch
        assert state.best_epoch == want, select_on


def test_final_model_averages_the_lowest_dev_loss_epoch_and_those_before(manifest: Path, tmp_path: Path):
    import csv

    out = tmp_path / "run"
    s = train([str(manifest)], out, tiny_config(epochs=4, average_last=2, patience=10, lr=5e-3), progress=False)
    rows = list(csv.DictReader(open(out / "log.csv")))
    losses = [float(r["dev_loss"]) for r in rows]
    best = losses.index(min(losses))
    assert s["best_epoch"] == best and s["averaged_epochs"] == list(range(max(0, best - 1), best + 1))
    meta = json.loads((out / "final" / "meta.json").read_text())
    assert meta["selected_on"] == "loss" and meta["best_epoch"] == best
    assert all(float(r["recon_paired_share"]) == 1.0 for r in rows)


def test_validation_loss_is_class_balanced():
    import numpy as np

    from detector.training.loop import validation_loss

    scores, labels = np.array([3.0, 3.0, 3.0, -1.0]), np.array([1, 1, 1, 0])
    many_bona = validation_loss(scores, labels)
    assert many_bona == validation_loss(np.array([3.0, -1.0]), np.array([1, 0]))
    assert abs(many_bona - (np.log1p(np.exp(-3.0)) + np.log1p(np.exp(-1.0))) / 2) < 1e-12


def test_remote_paths_in_a_local_manifest_are_not_read_by_train(manifest: Path, tmp_path: Path, monkeypatch):
    """A row pointing at s3:// in a local manifest would make training contact that host with the user's
    credentials: it is left out and counted, and nothing tries to open it."""
    from click.testing import CliRunner

    from detector.cli import main
    from manifests import storage

    rows = manifests.read(manifest).to_pylist()
    evil = dict(rows[0], utt_id="evil", source_id="evil", path="s3://some-bucket/x.wav")
    local = manifests.write(rows + [evil], tmp_path / "with-remote.parquet")
    opened = []
    real = storage.filesystem
    monkeypatch.setattr(storage, "filesystem", lambda loc, *a, **k: opened.append(loc) or real(loc, *a, **k))
    r = CliRunner().invoke(main, ["train", "--manifest", str(local), "--out", str(tmp_path / "run"), "--frontend",
                                  "tiny", "--backend", "linear", "--tiny-hidden", "16", "--crop", "8000", "--batch-size",
                                  "2", "--epochs", "1", "--max-steps", "1", "--no-augment", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "1 clip(s) with a remote path in a local manifest not used" in r.output
    assert not any("some-bucket" in str(o) for o in opened)
