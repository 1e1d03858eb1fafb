import pytest

from detector.cli import build_config
from detector.config import RunConfig
from manifests.errors import UsageError


def test_roundtrip_and_unknown_keys():
    cfg = RunConfig().replace("data", bonafide_methods=("codec",))
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UsageError, match="allowed"):
        RunConfig.from_dict({"model": {"frontend": "tiny", "layers": 3}})


def test_yaml_then_options(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("model:\n  frontend: tiny\n  backend: linear\ntrain:\n  lr: 0.001\n")
    cfg = build_config(str(y), "codec,diffusion", lr=0.01, frontend=None)
    assert cfg.model.frontend == "tiny" and cfg.model.backend == "linear"
    assert cfg.train.lr == 0.01 and cfg.data.bonafide_methods == ("codec", "diffusion")
    assert RunConfig().model.frontend == "xlsr" and RunConfig().train.seed == 688


@pytest.mark.parametrize("yaml_text, words", [
    ("train:\n  lr: fast\n", ["train.lr", "expected a number", "'fast'"]),
    ("data:\n  crop: abc\n", ["data.crop", "expected an integer"]),
    ("data:\n  crop: 1.0e+30\n", ["data.crop", "expected an integer"]),
    ("data:\n  crop: 1\n", ["data.crop", "outside [400"]),
    ("model:\n  tiny_hidden: -3\n", ["model.tiny_hidden", "outside"]),
    ("train:\n  seed: -5\n", ["train.seed", "outside"]),
    ("train:\n  loss: mse\n", ["train.loss", "not one of racl, ce"]),
    ("train:\n  alpha: 0.8\n  beta: 0.5\n", ["alpha + beta"]),
    ("data: [1, 2]\n", ["section data", "expected a mapping"]),
    ("train: {lr: 0.1\n", ["not valid YAML"]),
    ("train: !!python/object:os.system {}\n", ["not valid YAML"]),
])
def test_bad_config_values_are_one_line(tmp_path, yaml_text, words):
    y = tmp_path / "c.yaml"
    y.write_text(yaml_text)
    with pytest.raises(UsageError) as e:
        build_config(str(y), None)
    assert all(w in str(e.value) for w in words), str(e.value)
    assert "\n" not in str(e.value) and str(y) in str(e.value)


@pytest.mark.parametrize("args, words", [
    (["--crop", "1"], "data.crop"), (["--crop", "0"], "data.crop"), (["--num-workers", "-1"], "data.num_workers"),
    (["--seed", "-5"], "train.seed"), (["--lr", "nan"], "train.lr"), (["--batch-size", "1"], "data.batch_size"),
])
def test_bad_train_options_exit_2_one_line(tmp_path, args, words):
    from click.testing import CliRunner

    from detector.cli import main

    r = CliRunner().invoke(main, ["train", "--manifest", str(tmp_path / "m.parquet"), "--out", str(tmp_path / "r"),
                                  *args])
    assert r.exit_code == 2 and words in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_experiment_values_are_checked(tmp_path):
    import yaml

    from detector.experiment.config import load

    base = {"train": {"manifest": "m.parquet"}, "variants": {"v": {}}, "eval": {"e": {"manifest": "m.parquet"}}}
    for patch, words in (({"eval_batch_size": "many"}, "eval_batch_size"), ({"seeds": [10**23]}, "seeds"),
                         ({"seeds": [1e23]}, "seeds")):
        (tmp_path / "x.yaml").write_text(yaml.safe_dump({**base, **patch}))
        with pytest.raises(UsageError, match=words):
            load(tmp_path / "x.yaml")
