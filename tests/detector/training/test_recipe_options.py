"""The recipe options of issue 28: projection head, CE warm-up, one-class loss, L_std on bona fide only; their
defaults leave the model and the loss as they were, and configs of runs made before them still load."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detector import checkpoint
from detector.config import RunConfig
from detector.model.detector import Detector
from detector.training import loop
from detector.training.data import Clip
from manifests.errors import UsageError

from ..conftest import tiny_config

torch.set_num_threads(1)


def _clips(n: int) -> list[Clip]:
    return [Clip(f"u{i}", f"u{i}.flac", i % 2, "original", f"u{i}", None, None, "-" if i % 2 else "A01", "s", "train")
            for i in range(n)]


def _grads(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> list[torch.Tensor | None]:
    return list(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))


def _norm(g: torch.Tensor | None) -> float:
    return 0.0 if g is None else float(g.abs().sum())


def test_projection_head_takes_the_contrastive_terms_off_the_classifier_input():
    """proj: the classifier reads the back-end embedding; the contrastive terms see the projection of it. So the
    classification loss sends no gradient into the projection, L_std does, and the logit is the one the
    same back-end embedding gives without the projection."""
    torch.manual_seed(0)
    cfg = tiny_config(loss="racl").replace("model", contrastive_head="proj")
    model = Detector(cfg.model)
    wav, labels = torch.randn(4, 8000), torch.tensor([1.0, 0.0, 1.0, 0.0])
    out = model(wav)
    feats, _ = model.aggregator(model.encode(wav))
    emb = model.backend.embed(feats)
    assert torch.allclose(out.logit, model.head(emb).squeeze(-1))
    assert torch.allclose(out.embedding, F.normalize(model.proj(emb), dim=-1))
    assert torch.allclose(out.embedding_norm, model.proj(emb).norm(dim=-1))
    terms = loop.batch_loss(model, wav, labels, _clips(4), cfg.train)[0]
    proj = list(model.proj.parameters())
    assert all(_norm(g) == 0.0 for g in _grads(terms["cls"], proj))
    assert all(_norm(g) > 0.0 for g in _grads(terms["std"], proj))
    assert _norm(_grads(terms["std"], [model.head.weight])[0]) == 0.0
    # the back-end still learns from both
    first = next(model.backend.parameters())
    assert _norm(_grads(terms["cls"], [first])[0]) > 0 and _norm(_grads(terms["std"], [first])[0]) > 0


def test_default_model_has_no_new_parameters_and_embeds_what_the_head_reads():
    torch.manual_seed(0)
    model = Detector(tiny_config().model)
    assert model.proj is None and isinstance(model.head, torch.nn.Linear)
    assert not any(k.startswith("proj.") for k in model.state_dict())
    wav = torch.randn(2, 8000)
    out = model(wav)
    emb = model.backend.embed(model.aggregator(model.encode(wav))[0])
    assert torch.allclose(out.embedding, F.normalize(emb, dim=-1))


def test_warmup_trains_on_ce_alone_then_racl():
    torch.manual_seed(0)
    cfg = tiny_config(loss="racl", warmup_epochs=1)
    model = Detector(cfg.model)
    wav, labels = torch.randn(4, 8000), torch.tensor([1.0, 0.0, 1.0, 0.0])
    warm = loop.batch_loss(model, wav, labels, _clips(4), cfg.train, epoch=0)[0]
    after = loop.batch_loss(model, wav, labels, _clips(4), cfg.train, epoch=1)[0]
    assert warm["total"].item() == pytest.approx(warm["cls"].item())
    t = cfg.train
    want = (1 - t.alpha - t.beta) * after["cls"] + t.alpha * after["std"] + t.beta * after["enh"] + t.gamma * after["reg"]
    assert after["total"].item() == pytest.approx(want.item()) and after["total"].item() != pytest.approx(after["cls"].item())
    assert warm["std"].item() == pytest.approx(after["std"].item())  # same terms, other weights


def test_warmup_needs_racl(manifest: Path, tmp_path: Path):
    with pytest.raises(UsageError, match="--warmup-epochs 2 needs --loss racl"):
        loop.train([str(manifest)], tmp_path / "run", tiny_config(loss="ce", warmup_epochs=2), progress=False)


@pytest.mark.parametrize("train", [{"loss": "ce"}, {"loss": "oc"}, {"loss": "racl", "train_last": 2}])
def test_projection_head_needs_racl_and_a_trainable_projection(manifest: Path, tmp_path: Path, train: dict):
    cfg = tiny_config(**train).replace("model", contrastive_head="proj")
    with pytest.raises(UsageError, match="--contrastive-head proj needs --loss racl"):
        loop.train([str(manifest)], tmp_path / "run", cfg, progress=False)


@pytest.mark.parametrize("loss,head", [("oc", "none"), ("racl", "proj")])
def test_new_heads_are_refused_with_init(manifest: Path, tmp_path: Path, loss: str, head: str):
    start = tmp_path / "start"
    loop.train([str(manifest)], start, tiny_config(loss="ce"), progress=False)
    cfg = tiny_config(loss=loss, init=str(start)).replace("model", contrastive_head=head)
    with pytest.raises(UsageError, match="a start has no projection or one-class centre|contrastive_head='none'"):
        loop.train([str(manifest)], tmp_path / "run", cfg, progress=False)


def test_one_class_run_scores_cosines_and_checkpoint_round_trips(manifest: Path, tmp_path: Path):
    out = tmp_path / "run"
    s = loop.train([str(manifest)], out, tiny_config(loss="oc", epochs=2), progress=False)
    saved = json.loads((out / "final" / "config.json").read_text())
    assert saved["model"]["score_head"] == "oc" and saved["train"]["loss"] == "oc"
    model, cfg, _ = checkpoint.load(out / "final")
    assert type(model.head).__name__ == "OneClassHead"
    scores = model.eval().score(torch.randn(3, cfg.data.crop))
    assert (scores.abs() <= 1 + 1e-6).all()
    assert -1 <= s["threshold"] <= 1 and np.isfinite(s["dev_loss"])


def test_one_class_validation_loss_uses_the_margins():
    tcfg = tiny_config(loss="oc", oc_real=0.8, oc_fake=0.1, oc_scale=10.0).train
    scores, labels = np.array([0.9, 0.5, 0.0, 0.3]), np.array([1, 1, 0, 0])
    sp = lambda x: np.log1p(np.exp(x))  # noqa: E731
    bona = (sp(10 * (0.8 - 0.9)) + sp(10 * (0.8 - 0.5))) / 2
    spoof = (sp(10 * (0.0 - 0.1)) + sp(10 * (0.3 - 0.1))) / 2
    assert loop.validation_loss(scores, labels, tcfg) == pytest.approx((bona + spoof) / 2)
    assert loop.validation_loss(scores, labels, tiny_config().train) == pytest.approx(loop.validation_loss(scores, labels))


def test_options_reach_the_config_and_bad_values_are_refused():
    from detector.cli import build_config

    cfg = build_config(None, None, contrastive_head="proj", warmup_epochs=3, std_pull="bonafide", loss="oc",
                       oc_real=0.7, oc_fake=-0.2, oc_scale=15.0, diagnostics=True)
    assert cfg.model.contrastive_head == "proj" and cfg.train.warmup_epochs == 3 and cfg.train.std_pull == "bonafide"
    assert (cfg.train.loss, cfg.train.oc_real, cfg.train.oc_fake, cfg.train.oc_scale) == ("oc", 0.7, -0.2, 15.0)
    assert cfg.train.diagnostics is True
    with pytest.raises(UsageError, match="oc_fake 0.5 must be below oc_real 0.4"):
        build_config(None, None, oc_real=0.4, oc_fake=0.5)
    with pytest.raises(UsageError, match="contrastive_head"):
        RunConfig().replace("model", contrastive_head="mlp")
    with pytest.raises(UsageError, match="warmup_epochs"):
        RunConfig().replace("train", warmup_epochs=-1)


def test_a_config_from_before_the_options_loads_and_resumes():
    """config.json of a run made before these fields: their defaults fill in, and resuming it is not refused as a
    run with a different model config."""
    old = RunConfig().to_dict()
    for section, names in (("model", ("contrastive_head", "score_head")),
                           ("train", ("warmup_epochs", "std_pull", "oc_real", "oc_fake", "oc_scale", "diagnostics"))):
        for n in names:
            del old[section][n]
    assert RunConfig.from_dict(old) == RunConfig()
    assert loop._resume_mismatch({"config": old}, RunConfig(), []) is None
    assert "contrastive_head" in loop._resume_mismatch({"config": old}, RunConfig().replace("model", contrastive_head="proj"), [])


@pytest.mark.parametrize("args,words", [(["--warmup-epochs", "-1"], "train.warmup_epochs"),
                                        (["--oc-real", "0.1", "--oc-fake", "0.3"], "oc_fake 0.3 must be below"),
                                        (["--alpha", "0.95", "--beta", "0.1"], "alpha + beta = 1.05 > 1"),
                                        (["--contrastive-head", "mlp"], "'mlp' is not one of"),
                                        (["--loss", "ce", "--warmup-epochs", "1"], "needs --loss racl")])
def test_bad_recipe_options_exit_2_in_one_line(manifest: Path, tmp_path: Path, args: list, words: str):
    from click.testing import CliRunner

    from detector.cli import main

    r = CliRunner().invoke(main, ["train", "--manifest", str(manifest), "--out", str(tmp_path / "r"), "--no-progress",
                                  "--frontend", "tiny", "--backend", "linear", *args])
    assert r.exit_code == 2 and words in r.output and "Traceback" not in r.output, r.output


def test_options_checked_together_accept_a_valid_pair_given_in_any_order():
    """--oc-real 0.1 --oc-fake -0.5 is valid though 0.1 alone is below the default oc_fake; likewise --alpha 0.95
    --beta 0 against the default beta."""
    from detector.cli import build_config

    cfg = build_config(None, None, oc_real=0.1, oc_fake=-0.5, alpha=0.95, beta=0.0)
    assert (cfg.train.oc_real, cfg.train.oc_fake, cfg.train.alpha, cfg.train.beta) == (0.1, -0.5, 0.95, 0.0)
