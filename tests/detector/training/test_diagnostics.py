"""Training diagnostics: the numbers on hand-made embeddings, the embeddings of the dev pass, and a run that
writes diagnostics.csv/png (held-out clips included) and trims it on resume."""
import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from detector.model.detector import Detector
from detector.scoring.windows import score_paths
from detector.training import diagnostics as dg
from detector.training.data import Clip
from detector.training.loop import train

from ..conftest import make_manifest, tiny_config

torch.set_num_threads(1)


def _clip(uid: str, label: int, kind: str = "original", source: str | None = None, attack: str = "-",
          method: str | None = None) -> Clip:
    return Clip(uid, uid + ".flac", label, kind, source or uid, method, None, attack, "s", "dev")


def test_embedding_rows_hand_computed():
    clips = [_clip("b0", 1), _clip("b1", 1), _clip("r0", 0, "reconstruction", "b0", method="codec"),
             _clip("t0", 0, attack="A01"), _clip("h0", 0, attack="A02")]
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0], [-1.0, 0.0], [0.0, -2.0]])  # rows renormalised to unit
    held = np.array([False, False, False, False, True])
    got = {(m, g): v for m, g, v in dg.embedding_rows(clips, emb, held, margin=1.5)}
    r = np.array([1, 1]) / np.sqrt(2)
    assert got[("dist", "bonafide~own_recon")] == pytest.approx(np.linalg.norm(r - [1, 0]))
    assert got[("dist", "bonafide~spoof")] == pytest.approx((2 + np.sqrt(2)) / 2)  # (1,0)~(-1,0); (0,1)~(-1,0)
    assert got[("dist", "bonafide~bonafide")] == pytest.approx(np.sqrt(2))
    assert got[("dist", "spoof~recon")] == pytest.approx(np.linalg.norm(r - [-1, 0]))
    assert np.isnan(got[("dist", "spoof~spoof")]) and np.isnan(got[("dist", "recon~recon")])
    assert got[("dist", "heldout~spoof")] == pytest.approx(np.sqrt(2))
    # different-label pairs among the seen clips: {b0, b1} x {r0, t0}; d < 1.5 for b0~r0, b1~r0, b1~t0 (sqrt2)
    assert got[("inside_margin", "dev")] == pytest.approx(3 / 4)


def test_logit_rows_group_by_attack_method_and_kind_with_held_out_apart():
    clips = [_clip("b0", 1), _clip("b1", 1), _clip("r0", 0, "reconstruction", "b0", method="codec"),
             _clip("t0", 0, attack="A01"), _clip("h0", 0, attack="A02"), _clip("h1", 0, attack="A02")]
    scores = np.array([2.0, 4.0, 1.0, -3.0, 5.0, np.nan])
    held = np.array([False] * 4 + [True] * 2)
    got = {(m, g): v for m, g, v in dg.logit_rows(clips, scores, held)}
    assert got[("logit_mean", "attack=-")] == 3.0 and got[("logit_std", "attack=-")] == 1.0
    assert got[("logit_mean", "recon=codec")] == 1.0 and got[("logit_mean", "kind=reconstruction")] == 1.0
    assert got[("logit_mean", "heldout attack=A02")] == 5.0 and got[("n", "heldout attack=A02")] == 1.0  # NaN out
    assert got[("logit_mean", "kind=spoof")] == -3.0 and ("logit_mean", "attack=A02") not in got


def test_score_paths_returns_each_clip_mean_window_embedding_from_the_same_pass(tmp_path: Path):
    torch.manual_seed(0)
    model = Detector(tiny_config().model).eval()
    rng = np.random.default_rng(0)
    long, short = (rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in (16000, 8000))
    for name, x in (("long", long), ("short", short)):
        sf.write(tmp_path / f"{name}.wav", x, 16000, subtype="FLOAT")
    paths = [str(tmp_path / "long.wav"), str(tmp_path / "missing.wav"), str(tmp_path / "short.wav")]
    scores, errors, _, emb = score_paths(model, paths, 8000, embeddings=True)
    plain, _, _ = score_paths(model, paths, 8000)
    np.testing.assert_allclose(scores, plain, equal_nan=True)  # the option changes nothing else
    with torch.no_grad():
        wins = torch.from_numpy(np.stack([long[:8000], long[8000:]]))
        want = model.embed(wins).double().mean(0).numpy()
        assert not np.allclose(model.embed(wins[:1]).numpy(), model.embed(wins[1:]).numpy())
    np.testing.assert_allclose(emb[0], want, atol=1e-5)
    assert list(errors) == [1] and np.isnan(emb[1]).all() and np.isfinite(emb[2]).all()
    assert len(score_paths(model, paths, 8000)) == 3


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(open(path)))


def test_run_writes_diagnostics_with_held_out_clips_and_trims_on_resume(tmp_path: Path):
    manifest = make_manifest(tmp_path, n_spoof=4)  # A01 clips in train, A02 clips in dev
    out = tmp_path / "run"
    cfg = tiny_config(epochs=2, diagnostics=True).replace("data", holdout_attacks=("A02",))
    train([str(manifest)], out, cfg, progress=False)
    rows = _rows(out / "diagnostics.csv")
    assert {r["epoch"] for r in rows} == {"0", "1"}
    got = {(r["metric"], r["group"]) for r in rows}
    for key in [("loss", k) for k in ("cls", "std", "enh", "reg", "total")] + [
            ("emb_norm", "train"), ("dist", "bonafide~own_recon"), ("inside_margin", "dev"),
            ("logit_mean", "heldout attack=A02"), ("logit_std", "kind=reconstruction")]:
        assert key in got, key
    assert all(np.isfinite(float(r["value"])) for r in rows if r["metric"] in ("loss", "emb_norm", "inside_margin"))
    held = [r for r in rows if r["metric"] == "n" and r["group"] == "heldout attack=A02"]
    assert [float(r["value"]) for r in held] == [2.0, 2.0]
    log = _rows(out / "log.csv")
    mine = {r["epoch"]: float(r["value"]) for r in rows if (r["metric"], r["group"]) == ("loss", "total")}
    assert mine["1"] == pytest.approx(float(log[1]["loss_total"]), rel=1e-4)
    assert (out / "diagnostics.png").stat().st_size > 0
    (out / "diagnostics.png").unlink()
    with open(out / "diagnostics.csv", "a") as fh:  # a row of an epoch that a killed run never saved
        fh.write("2,loss,total,9\n")
    train([str(manifest)], out, cfg.replace("train", epochs=3), progress=False)
    rows = _rows(out / "diagnostics.csv")
    assert [r["epoch"] for r in rows if (r["metric"], r["group"]) == ("loss", "total")] == ["0", "1", "2"]
    assert (out / "diagnostics.png").is_file()


def test_no_diagnostics_by_default(manifest: Path, tmp_path: Path):
    train([str(manifest)], tmp_path / "run", tiny_config(), progress=False)
    assert not (tmp_path / "run" / "diagnostics.csv").exists() and not (tmp_path / "run" / "diagnostics.png").exists()


def test_dev_embeddings_gathered_from_other_ranks_when_this_one_scored_nothing(monkeypatch):
    """Under DDP a rank may hold no dev clip (more ranks than clips): the embedding width comes from the ranks
    that scored some, so their embeddings are kept."""
    from detector.training import loop

    dev = [_clip("b0", 1), _clip("t0", 0, attack="A01")]
    others = [(0, 2.0, np.array([1.0, 0.0, 0.0])), (1, -1.0, np.array([0.0, 1.0, 0.0]))]
    monkeypatch.setattr(loop.ddp, "gather_objects", lambda mine: list(mine) + others)
    model = Detector(tiny_config().model)
    val = loop._validate(model, dev, tiny_config(diagnostics=True), rank=2, world=3, progress=False)
    np.testing.assert_array_equal(val["embeddings"], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(val["scores"], [2.0, -1.0])
