"""Every command's options with random values: the exit code is 0, 1 or 2 and nothing is a traceback.

Options are read from the click commands themselves, so a new option is covered without editing
this file: a value is drawn by the option's type (int, float, choice, flag, text), from pools that
mix valid values with zero, negatives, NaN, infinities, huge numbers, unwritable and missing paths.
Inputs (corpus, manifest, checkpoint) are drawn from tiny real ones and broken ones. Left out on
purpose: `--executor ray` (a Ray start per example is too slow; the option checks are the same code),
values that would make one example run for minutes (long benchmark clips, thousands of fit steps, so
`detector train` always gets `--epochs 1 --max-steps 1`).
"""
from __future__ import annotations

import math
from pathlib import Path

import click
import pytest
import soundfile as sf
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import speechlike

INTS = st.sampled_from([-(2 ** 63), -1, 0, 1, 2, 3, 10 ** 6, 2 ** 64])
FLOATS = st.sampled_from([-1.0, 0.0, 1e-9, 0.25, 0.5, 1.0, 2.0, 1e300, math.nan, math.inf, -math.inf])
TEXT = st.one_of(st.sampled_from(["", "bogus", "-1", "0", "nan", "/proc/x", "a=b", "é\tx"]),
                 st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Tiny real inputs and broken ones; a trained tiny detector."""
    from detector.cli import main as detector
    from tests.detector.conftest import make_manifest
    from tests.detector.scoring.test_score_hostile import TINY

    root = tmp_path_factory.mktemp("world")
    corpus = root / "corpus"
    corpus.mkdir()
    for i in range(2):
        sf.write(corpus / f"c{i}.wav", speechlike(0.3, seed=i), 16000)
    manifest = make_manifest(root / "train", n_bonafide=2, n_spoof=2)
    assert CliRunner().invoke(detector, ["train", "--manifest", str(manifest), "--out", str(root / "run"),
                                         *TINY]).exit_code == 0
    (root / "text.txt").write_text("not a corpus\n")
    import yaml

    from tests.detector.experiment.test_experiment import TINY as TINY_SECTIONS

    experiment = root / "exp.yaml"
    experiment.write_text(yaml.safe_dump({"train": {"manifest": str(manifest)}, "defaults": TINY_SECTIONS,
                                          "variants": {"v": {"train": {"loss": "ce", "max_steps": 1}}},
                                          "eval": {"all": {"manifest": str(manifest)}}}))
    (root / "broken.yaml").write_text("train: {manifest: [\n")
    return {"root": root, "corpus": corpus, "manifest": manifest, "run": root / "run", "text": root / "text.txt",
            "missing": root / "missing", "proc": Path("/proc/x/y"), "experiment": experiment,
            "broken": root / "broken.yaml"}


def _paths(world, *good):
    bad = [world["missing"], world["text"], world["proc"], world["root"]]
    return st.sampled_from([str(p) for p in (*good, *bad)])


def _out(world):
    return st.one_of(st.builds(lambda k: str(world["root"] / "outs" / f"o{k}"), st.integers(0, 10 ** 9)),
                     st.sampled_from([str(world["proc"]), str(world["text"]), "/proc/x.tsv"]))


def _value(param: click.Parameter, world, special: dict):
    if param.name in special:
        return special[param.name]
    t = param.type
    if getattr(param, "is_flag", False):
        return st.booleans()
    if isinstance(t, click.Choice):
        return st.sampled_from([*t.choices, "bogus"])
    if isinstance(t, click.types.IntParamType):
        return INTS
    if isinstance(t, click.types.FloatParamType):
        return FLOATS
    return TEXT


def _args(command: click.Command, world, special: dict, fixed: dict, always: set) -> st.SearchStrategy:
    """Random present/absent options (required ones and `always` ones always) and arguments, as an argv list."""
    parts = []
    for p in command.params:
        if p.name in fixed or p.name == "help":
            continue
        value = _value(p, world, special)
        if isinstance(p, click.Argument):
            parts.append(value.map(lambda v: [str(v)]))
            continue
        flag = p.opts[0]
        if getattr(p, "is_flag", False):
            parts.append(st.booleans().map(lambda on, f=flag: [f] if on else []))
        elif p.required or p.name in always:
            parts.append(value.map(lambda v, f=flag: [f, str(v)]))
        else:
            parts.append(st.one_of(st.just([]), value.map(lambda v, f=flag: [f, str(v)])))
    fixed_args = [x for k, v in fixed.items() for x in v]
    return st.tuples(*parts).map(lambda ps: fixed_args + [x for part in ps for x in part])


def _commands(world) -> dict:
    """name -> (group, path of subcommands, special value strategies, fixed args[, options always given])."""
    from detector.cli import main as detector
    from manifests.cli import main as manifests_cli
    from reconstruct.cli import main as reconstruct

    corpus = _paths(world, world["corpus"])
    man = _paths(world, world["manifest"], world["manifest"].parent / "corpus")
    ckpt = _paths(world, world["run"])
    return {
        "reconstruct run": (reconstruct, ["run"], {
            "corpus": corpus, "out": _out(world), "models": st.sampled_from(["opus", "griffinlim", "bogus", ""]),
            "methods": st.sampled_from(["codec", "vocoder", "codec,vocoder", "bogus", ""]),
            "params": st.sampled_from(["bitrate_kbps=8", "n_iter=2", "n_iter=-1", "bitrate_kbps=nan", "x", "k=v"]),
            "checkpoint": _paths(world), "audio_dir": _paths(world, world["corpus"]),
            "device": st.sampled_from(["auto", "cpu", "cuda", "cuda:7", "mps", "bogus", ""]),
            "ray_address": st.sampled_from(["auto", "ray://127.0.0.1:1", "bogus"])},
            {"executor": ["--executor", "local"]}),
        "reconstruct list": (reconstruct, ["list"], {}, {}),
        "reconstruct models list": (reconstruct, ["models", "list"], {}, {}),
        "reconstruct models verify": (reconstruct, ["models", "verify"], {}, {}),
        "reconstruct models pull": (reconstruct, ["models", "pull"], {
            "name": st.sampled_from(["opus", "encodec-24khz", "bogus", ""])}, {}),
        "reconstruct bench": (reconstruct, ["bench"], {
            "seconds": st.sampled_from([-1.0, 0.0, 0.2, math.nan, math.inf, 1e300]),
            "repeats": st.sampled_from([-1, 0, 1, 10 ** 9]), "json_out": _out(world),
            "device": st.sampled_from(["cpu", "cuda", "bogus"])},
            {"names": ["--model", "opus"]}),
        "reconstruct fit": (reconstruct, ["fit"], {
            "corpus": corpus, "out": _out(world), "steps": st.sampled_from([-1, 0, 1]),
            "batch_size": st.sampled_from([-1, 0, 2]), "checkpoint_every": st.sampled_from([-1, 0, 1]),
            "max_minutes": st.sampled_from([-1.0, 0.0, math.nan, math.inf, 0.01]),
            "device": st.sampled_from(["cpu", "cuda", "bogus"])}, {}, {"steps"}),  # default: 1500 steps
        "manifests import": (manifests_cli, ["import"], {
            "corpus": corpus, "out": st.sampled_from(["x.csv", "/proc/m.parquet"]) | _out(world).map(lambda o: o + ".parquet"),
            "audio_dir": _paths(world, world["corpus"])}, {}),
        "manifests validate": (manifests_cli, ["validate"], {"manifest": man}, {}),
        "manifests stats": (manifests_cli, ["stats"], {"manifest": man}, {}),
        "detector score": (detector, ["score"], {"ckpt": ckpt, "inputs": man, "out": _out(world).map(lambda o: o + ".tsv")},
                           {"no_progress": ["--no-progress"]}),
        "detector eval": (detector, ["eval"], {"ckpt": ckpt, "manifest": man, "out": _out(world)},
                          {"no_progress": ["--no-progress"]}),
        "detector inspect": (detector, ["inspect"], {"ckpt": ckpt}, {}),
        "detector train": (detector, ["train"], {
            "manifests_": man, "out": _out(world), "config_file": _paths(world, world["broken"]),
            "frontend": st.sampled_from(["tiny", "lfcc", "xlsr", "hf:bogus", "bogus", ""]),
            "noise_dir": _paths(world, world["corpus"]), "rir_dir": _paths(world, world["corpus"]),
            "holdout_attacks": st.sampled_from(["A01", "nope", "A01,A02", ""]),
            "bonafide_methods": st.sampled_from(["vocoder", "", "x,y"])},
            {"epochs": ["--epochs", "1"], "max_steps": ["--max-steps", "1"], "no_progress": ["--no-progress"],
             "tiny_hidden": ["--tiny-hidden", "8"], "tiny_layers": ["--tiny-layers", "1"],
             "num_workers": ["--num-workers", "0"], "crop": ["--crop", "4000"]}),
        "detector experiment": (detector, ["experiment"], {
            "config_file": _paths(world, world["experiment"], world["broken"]), "out": _out(world),
            "sets": st.sampled_from(["A=b", "x", "=", "DEV_CORPUS=/nope"]),
            "ray_address": st.sampled_from(["bogus"])}, {}),
        "reconstruct report": (reconstruct, ["report"], {
            "run_dir": _paths(world, world["manifest"]), "out": _out(world).map(lambda o: o + ".html"),
            "examples": st.sampled_from([-1, 0, 1, 10 ** 9]), "seconds": FLOATS}, {}),
    }


def _command(group: click.Group, path: list[str]) -> click.Command:
    cmd = group
    for name in path:
        cmd = cmd.commands[name]
    return cmd


COMMANDS = ["reconstruct run", "reconstruct list", "reconstruct models list", "reconstruct models verify",
            "reconstruct models pull", "reconstruct bench", "reconstruct fit", "manifests import",
            "manifests validate", "manifests stats", "detector score", "detector eval", "detector inspect",
            "detector train", "detector experiment", "reconstruct report"]


EXAMPLES = {"reconstruct run": 10, "reconstruct fit": 6, "reconstruct bench": 6, "detector train": 12,
            "detector experiment": 6}  # seconds per example; no shrinking


@pytest.mark.parametrize("name", COMMANDS)
def test_random_option_values_never_traceback(world, name, monkeypatch):
    monkeypatch.setenv("HARDSPOOF_NO_BAR", "1")
    group, path, special, fixed, *always = _commands(world)[name]
    strategy = _args(_command(group, path), world, special, fixed, always[0] if always else set())

    @settings(max_examples=EXAMPLES.get(name, 15), deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(args=strategy)
    def check(args):
        r = CliRunner().invoke(group, [*path, *args])
        shown = f"{name} {args!r}\n{r.output}"
        assert r.exit_code in (0, 1, 2), shown
        assert r.exception is None or isinstance(r.exception, SystemExit), shown + repr(r.exception)
        assert "Traceback" not in r.output, shown

    check()
