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
