"""`detector experiment` end to end on generated audio: two variants x one seed, table, plot, re-run skips."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import manifests
from manifests import scores_tsv
from detector.cli import main
from detector.experiment.config import load
from tests.detector.model.test_pretrained_registry import store  # noqa: F401  (fixture)

TINY = {"data": {"crop": 8000, "batch_size": 2, "augment": False},
        "model": {"frontend": "tiny", "backend": "linear", "tiny_hidden": 16, "embed_dim": 16, "proj_dim": 16,
                  "dropout": 0.0},
        "train": {"epochs": 1, "max_steps": 2, "average_last": 1}}


def _config(tmp_path: Path, manifest: Path, **extra) -> Path:
    cfg = {"name": "tiny", "train": {"manifest": str(manifest)},
           "reconstructions": {"fake": {"manifest": str(manifest)}, "opus": {  # a run to do: `reconstruct` subprocess
               "corpus": str(manifest.parent / "corpus"), "select": {"split": "train", "label": "bonafide"},
               "model": "opus", "limit": 1}},
           "defaults": TINY,
           "variants": {"CE+last": {"model": {"aggregation": "last"}, "train": {"loss": "ce"}},
                        "attn+RACL+fake+opus": {"reconstructions": ["fake", "opus"], "model": {"aggregation": "attn"}}},
           "seeds": [1],
           "eval": {"all": {"manifest": str(manifest)}, "dev": {"manifest": str(manifest), "split": "dev"}},
           **extra}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _run(*args):
    return CliRunner().invoke(main, ["experiment", *map(str, args)], catch_exceptions=False)


def test_two_variants_end_to_end_and_rerun_skips(tmp_path: Path, manifest: Path):
    config, out = _config(tmp_path, manifest), tmp_path / "out"
    r = _run("--config", config, "--out", out)
    assert r.exit_code == 0, r.output
    assert "2 run(s), 2 trained now" in r.output
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 4 and set(df.variant) == {"CE+last", "attn+RACL+fake+opus"} and set(df.eval_set) == {"all", "dev"}
    assert set(df.seed) == {1} and df.eer.between(0, 100).all() and df.min_dcf.notna().all()
    assert df[df.eval_set == "dev"].n_clips.iloc[0] < df[df.eval_set == "all"].n_clips.iloc[0]
    md = (out / "results.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| variant | all"))
    assert header == "| variant | all | dev | avg |"
    rows = [line.split(" | ")[0][2:] for line in md.splitlines() if line.startswith("| CE+last") or line.startswith("| attn")]
    assert rows[:2] == ["CE+last", "attn+RACL+fake+opus"]
    assert "per attack on all" in md and "| A01 | A02 |" in md
    assert (out / "results.png").stat().st_size > 1000
    opus = manifests.read(out / "manifests" / "recon-opus.parquet").to_pylist()  # the limit-1 selection only
    assert len(opus) == 1 and opus[0]["model"] == "opus" and opus[0]["source_id"].startswith("bonafide/spk0/")
    final = out / "runs" / "CE_last" / "seed1" / "final" / "model.safetensors"
    stamp = final.stat().st_mtime_ns
    again = _run("--config", config, "--out", out)
    assert again.exit_code == 0, again.output
    assert "2 run(s), 0 trained now" in again.output
    assert final.stat().st_mtime_ns == stamp
    assert len((out / "invocations.jsonl").read_text().splitlines()) == 2
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet").drop(columns="trained_now"),
                                  df.drop(columns="trained_now"))


def test_variants_as_ray_tasks(tmp_path: Path, manifest: Path, ray_session):
    config = _config(tmp_path, manifest)
    d = yaml.safe_load(config.read_text())
    d["reconstructions"].pop("opus")
    d["variants"]["attn+RACL+fake+opus"]["reconstructions"] = ["fake"]
    config.write_text(yaml.safe_dump(d, sort_keys=False))
    r = _run("--config", config, "--out", tmp_path / "out", "--ray-address", "auto")  # joins the session's Ray
    assert r.exit_code == 0, r.output
    assert "ray: 2 task(s), 1 CPU each" in r.output and "2 run(s), 2 trained now" in r.output
    assert len(pd.read_parquet(tmp_path / "out" / "results.parquet")) == 4


def test_unknown_key_exit_2_names_it(tmp_path: Path, manifest: Path):
    config = _config(tmp_path, manifest, bogus_key=1)
    r = _run("--config", config, "--out", tmp_path / "out")
    assert r.exit_code == 2 and "bogus_key" in r.output


@pytest.mark.parametrize("patch, words", [
    ({"variants": {"v": {"model": {"aggregation": "last", "nope": 1}}}}, ["variants.v", "nope"]),
    ({"variants": {"v": {"reconstructions": ["missing"]}}}, ["missing", "fake, opus"]),
    ({"reconstructions": {"fake": {"corpus": "x"}}}, ["reconstructions.fake", "model"]),
    ({"seeds": "abc"}, ["seeds"]),
    ({"variants": {"v": {"seeds": [-1]}}}, ["variants.v.seeds"]),
])
def test_bad_configs_name_the_key(tmp_path: Path, manifest: Path, patch: dict, words: list[str]):
    from manifests.errors import UsageError

    config = _config(tmp_path, manifest, **{k: v for k, v in patch.items() if k not in ("variants", "reconstructions")})
    d = yaml.safe_load(config.read_text())
    d.update({k: v for k, v in patch.items() if k in ("variants", "reconstructions")})
    config.write_text(yaml.safe_dump(d))
    with pytest.raises(UsageError) as e:
        load(config)
    assert all(w in str(e.value) for w in words) and "\n" not in str(e.value)


def test_repo_configs_parse():
    root = Path(__file__).resolve().parents[3] / "experiments"
    names = sorted(p.name for p in root.glob("*.yaml"))
    assert {"asvspoof2019.yaml", "dev-corpus.yaml", "demo.yaml", "frontends.yaml"} <= set(names)
    for name in names:
        exp = load(root / name)
        assert exp.variants and exp.evals and exp.seeds


def test_demo_study_runs_from_a_fresh_clone(tmp_path: Path):
    """experiments/demo.yaml needs nothing but the repository: the built-in corpus, the bundled model."""
    config = Path(__file__).resolve().parents[3] / "experiments" / "demo.yaml"
    r = _run("--config", config, "--out", tmp_path / "out")
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert set(df.fold) == {"espeak-cs", "festival-cs"} and len(df) == 6 and df.held_out_eer.between(0, 100).all()
    assert "| variant | unseen espeak-cs | unseen festival-cs | avg |" in (tmp_path / "out" / "results.md").read_text()


def test_leave_one_attack_out_study(tmp_path: Path):
    """holdout.each: one training per attack without it (and without its reconstructions), evaluated on it as
    unseen; held-out and seen EERs reported separately per fold."""
    from tests.detector.conftest import make_manifest

    manifest = make_manifest(tmp_path, n_bonafide=4, n_spoof=4)  # A01: train spoofs, A02: dev spoofs
    config = _config(tmp_path, manifest, holdout={"each": ["A01", "A02"]})
    d = yaml.safe_load(config.read_text())
    d["reconstructions"].pop("opus")
    d["variants"] = {"CE": {"model": {"aggregation": "last"}, "train": {"loss": "ce"}}}
    d["eval"] = {"all": {"manifest": str(manifest)}}
    config.write_text(yaml.safe_dump(d, sort_keys=False))
    r = _run("--config", config, "--out", tmp_path / "out")
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert sorted(df.fold) == ["A01", "A02"] and df.held_out_eer.notna().all() and df.seen_eer.notna().all()
    for fold in ("A01", "A02"):
        run = tmp_path / "out" / "runs" / "CE" / fold / "seed1"
        saved = __import__("json").loads((run / "final" / "config.json").read_text())
        assert saved["data"]["holdout_attacks"] == [fold]
        per_attack = __import__("json").loads(df[df.fold == fold].per_attack_eer.iloc[0])
        assert {"A01", "A02"} <= set(per_attack)
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| variant | unseen A01 | unseen A02 | avg |" in md and "| variant | without A01 | without A02 | avg |" in md


def test_a_variant_can_have_its_own_seeds(tmp_path: Path, manifest: Path):
    config = _config(tmp_path, manifest)
    d = yaml.safe_load(config.read_text())
    d["variants"]["CE+last"]["seeds"] = [5]
    config.write_text(yaml.safe_dump(d, sort_keys=False))
    exp = load(config)
    assert [v.seeds for v in exp.variants] == [(5,), None] and exp.seeds == (1,)


def test_holdout_drops_the_attack_and_its_reconstructions():
    from detector.training.data import Clip, hold_out
    from manifests.errors import UsageError

    def c(uid, label, attack, kind="original", source=None):
        return Clip(uid, "", label, kind, source or uid, None, None, attack, None, "train")

    clips = [c("b", 1, "-"), c("s1", 0, "A01"), c("s2", 0, "A02"), c("s2r", 0, "A02+gl", "reconstruction", "s2"),
             c("br", 0, "gl", "reconstruction", "b")]
    kept, dropped = hold_out(clips, ["A02"])
    assert [k.utt_id for k in kept] == ["b", "s1", "br"] and dropped == 2
    with pytest.raises(UsageError, match="'A03' is not in the training manifests; their corpus attacks: A01, A02"):
        hold_out(clips, ["A03"])
    with pytest.raises(UsageError, match="leaves no spoof"):
        hold_out(clips[:3], ["A01", "A02"])


def test_bad_holdout_is_exit_2_before_training(tmp_path: Path, manifest: Path):
    config = _config(tmp_path, manifest, holdout={"attacks": ["nope"]})
    r = _run("--config", config, "--out", tmp_path / "out")
    assert r.exit_code == 2 and "holdout nope: held-out attack 'nope' is not in the training manifests" in r.output
    assert not (tmp_path / "out" / "runs").exists()
    originals = Path(manifests.write([r for r in manifests.read(manifest).to_pylist() if r["kind"] == "original"],
                                     tmp_path / "originals.parquet"))  # no reconstructions: corpus spoofs only
    config = _config(tmp_path, originals, holdout={"attacks": ["A01", "A02"]})
    r = _run("--config", config, "--out", tmp_path / "out")
    assert r.exit_code == 2 and "leaves no spoof" in r.output
    assert not (tmp_path / "out" / "runs").exists()


def test_variables_default_env_and_set(tmp_path: Path, manifest: Path, monkeypatch):
    """${NAME} in a path: the YAML default resolves against the YAML's folder; an environment variable or
    --set NAME=VALUE (which wins) against the current directory."""
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    d = yaml.safe_load(_config(tmp_path, manifest).read_text())
    d["vars"] = {"M": "../m.parquet"}
    d["train"] = {"manifest": "${M}"}
    (cfg_dir / "exp.yaml").write_text(yaml.safe_dump(d))
    assert load(cfg_dir / "exp.yaml").train[0].manifest == str(manifest)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("M", "elsewhere.parquet")
    assert load(cfg_dir / "exp.yaml").train[0].manifest == str(tmp_path / "elsewhere.parquet")
    assert load(cfg_dir / "exp.yaml", {"M": "m.parquet"}).train[0].manifest == str(manifest)
    from manifests.errors import UsageError

    with pytest.raises(UsageError, match="--set N: no such variable .*declared: M"):
        load(cfg_dir / "exp.yaml", {"N": "x"})
    d["train"] = {"manifest": "${UNDECLARED}/m.parquet"}
    (cfg_dir / "exp.yaml").write_text(yaml.safe_dump(d))
    monkeypatch.delenv("UNDECLARED", raising=False)
    with pytest.raises(UsageError, match=r"unknown variable \$\{UNDECLARED\}"):
        load(cfg_dir / "exp.yaml")


def test_mining_rounds_keep_the_hardest_and_random_keeps_as_many(tmp_path: Path, manifest: Path):
    """A `grid` candidates run, a variant that mines the hardest of each source's candidates with its round-1
    detector, and the random control of the same count; then a partial report with --finished-only."""
    config = _config(tmp_path, manifest)
    d = yaml.safe_load(config.read_text())
    d["reconstructions"] = {"grid": {"corpus": str(manifest.parent / "corpus"),
                                     "select": {"split": "train", "label": "bonafide"}, "model": "opus",
                                     "grid": {"bitrate_kbps": [6, 12, 24]}}}
    d["variants"] = {"mined": {"mine": {"candidates": "grid", "keep": 0.3}},
                     "random": {"mine": {"candidates": "grid", "keep": 0.3, "select": "random"}}}
    d["eval"] = {"all": {"manifest": str(manifest)}}
    config.write_text(yaml.safe_dump(d, sort_keys=False))
    out = tmp_path / "out"
    r = _run("--config", config, "--out", out)
    assert r.exit_code == 0, r.output
    cands = manifests.read(out / "manifests" / "recon-grid.parquet").to_pylist()
    assert len(cands) == 2 * 3  # 2 bona fide train clips x 3 grid points
    mined_dir, random_dir = out / "runs" / "mined" / "seed1", out / "runs" / "random" / "seed1"

    scores = {row["id"]: float(row["score"]) for row in scores_tsv.read(mined_dir / "round1" / "candidates.tsv")}
    assert set(scores) == {c["utt_id"] for c in cands}
    mined = manifests.read(mined_dir / "mined.parquet").to_pylist()
    for src in {c["source_id"] for c in cands}:  # the hardest of each source's 3 candidates, by round 1's scores
        best = max((c["utt_id"] for c in cands if c["source_id"] == src), key=scores.get)
        assert [m["utt_id"] for m in mined if m["source_id"] == src] == [best]
    assert all(m["scored_by_sha256"] for m in mined)
    rand = manifests.read(random_dir / "mined.parquet").to_pylist()
    assert len(rand) == len(mined) and not (random_dir / "round1").exists() and all(m["hardness"] is None for m in rand)
    meta = (mined_dir / "final" / "meta.json").read_text()
    assert "mined.parquet" in meta  # round 2 trained on the mined selection
    provenance = (out / "results.md").read_text()  # says how each variant chose its reconstructions
    assert "mined = tiny/attn/racl + [no reconstructions] + the hardest 0.3 of each source's grid reconstructions" in provenance
    assert "random = tiny/attn/racl + [no reconstructions] + a random 0.3 of each source's grid reconstructions\n" in provenance


def test_a_reconstruction_run_takes_only_its_own_variants_from_a_shared_out_folder(tmp_path: Path, manifest: Path):
    from detector.experiment.runner import reconstruction_manifest
    from detector.experiment.config import Recon

    shared, corpus = tmp_path / "shared-recon", str(manifest.parent / "corpus")
    select = (("split", ("train",)), ("label", ("bonafide",)))
    made = {}
    for kbps in (6, 12):  # one model, two parameter settings, one out folder
        r = Recon(name=f"opus{kbps}", corpus=corpus, select=select, model="opus", params=(("bitrate_kbps", kbps),),
                  out=str(shared), limit=2)
        made[kbps] = manifests.read(reconstruction_manifest(r, tmp_path / "exp", None)).to_pylist()
    assert {row["utt_id"].rsplit("__", 1)[1] for row in made[6]} == {"opus@bitrate_kbps=6"}
    assert {row["utt_id"].rsplit("__", 1)[1] for row in made[12]} == {"opus@bitrate_kbps=12"}
    assert len(made[6]) == len(made[12]) == 2


@pytest.mark.parametrize("extra,needle", [([], "not writable"), (["--finished-only"], "does not exist")])
def test_an_out_that_cannot_be_made_is_one_line(tmp_path: Path, manifest: Path, extra, needle):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = CliRunner().invoke(main, ["experiment", "--config", str(_config(tmp_path, manifest)),
                                  "--out", str(blocker / "out"), *extra])
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_a_zero_shot_variant_scores_a_published_model_once_for_every_fold(tmp_path: Path, store):  # noqa: F811
    """zero_shot: pretrained:NAME trains nothing; each fold's held-out EER is that attack's EER on the shared
    scores (every attack is unseen by a model trained elsewhere)."""
    from detector.model.pretrained import registry
    from tests.detector.conftest import make_manifest

    registry.stage("aasist-l", store)
    manifest = make_manifest(tmp_path, n_bonafide=4, n_spoof=4)
    config = _config(tmp_path, manifest, holdout={"each": ["A01", "A02"]})
    d = yaml.safe_load(config.read_text())
    d["reconstructions"].pop("opus")
    d["variants"] = {"zero": {"zero_shot": "pretrained:aasist-l"}}
    d["eval"] = {"all": {"manifest": str(manifest)}}
    config.write_text(yaml.safe_dump(d, sort_keys=False))
    r = _run("--config", config, "--out", tmp_path / "out")
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert sorted(df.fold) == ["A01", "A02"] and not (tmp_path / "out" / "runs" / "zero" / "A01" / "seed1" / "final").exists()
    scored = list((tmp_path / "out").rglob("scores.tsv"))
    assert len(scored) == 1  # one scoring shared by the folds
    for fold in ("A01", "A02"):
        per_attack = json.loads(df[df.fold == fold].per_attack_eer.iloc[0])
        assert df[df.fold == fold].held_out_eer.iloc[0] == pytest.approx(per_attack[fold], abs=1e-6)


def test_variant_option_runs_only_the_named_variants_and_their_reconstructions(tmp_path: Path, manifest: Path):
    config, out = _config(tmp_path, manifest), tmp_path / "out"
    r = _run("--config", config, "--out", out, "--variant", "CE+last")
    assert r.exit_code == 0, r.output
    assert "1 run(s), 1 trained now" in r.output
    assert (out / "runs" / "CE_last").is_dir() and not (out / "runs" / "attn_RACL_fake_opus").exists()
    assert not (out / "recon").exists()  # the opus run is needed only by the other variant
    r = CliRunner().invoke(main, ["experiment", "--config", str(config), "--out", str(out), "--variant", "nope"])
    assert r.exit_code == 2 and "'CE+last'" in r.output
