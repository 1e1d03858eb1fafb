"""`reconstruct models list|pull|verify` and `reconstruct bench` (CliRunner; downloads are faked)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from manifests.clitools import Group
from reconstruct import weights as W
from reconstruct.backends import get
from reconstruct.cli_models import bench, models

torch.set_num_threads(1)


@pytest.fixture
def cli():
    group = Group("reconstruct")
    group.add_command(models)
    group.add_command(bench)
    return lambda *args: CliRunner().invoke(group, list(args))


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "store"
    monkeypatch.setenv("HARDSPOOF_MODELS", str(root))
    return root


@pytest.fixture
def online(monkeypatch):
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HARDSPOOF_OFFLINE"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def fake_hub(monkeypatch):
    """snapshot_download / download_url_to_file that write files instead of downloading."""
    calls = []

    def snapshot_download(repo_id, local_dir, allow_patterns=None):
        calls.append((repo_id, allow_patterns))
        Path(local_dir, ".cache").mkdir(parents=True, exist_ok=True)
        Path(local_dir, "config.json").write_text('{"fake": true}')
        Path(local_dir, "model.safetensors").write_bytes(b"weights of " + repo_id.encode())

    def download_url_to_file(url, dst, progress=True):
        calls.append((url, None))
        Path(dst).write_bytes(b"state dict from " + url.encode())

    import huggingface_hub
    import torch.hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", download_url_to_file)
    return calls


def test_list_shows_every_backend_and_staged_path(cli, store):
    get("dac-16khz").random_weights(store / "dac-16khz", tiny=True)
    res = cli("models", "list")
    assert res.exit_code == 0, res.output
    lines = {ln.split()[0]: ln for ln in res.output.splitlines()[2:]}
    for name in ("encodec-24khz", "dac-44khz", "hifigan-libritts-16k", "diffwave-ljspeech", "audioldm2-sdedit"):
        assert name in lines
    assert str(store / "dac-16khz") in lines["dac-16khz"] and "descript/dac_16khz" in lines["dac-16khz"]
    assert lines["dac-24khz"].rstrip().endswith(" no")
    assert "weight-free" in lines["griffinlim"]


def test_pull_offline_and_weight_free_are_usage_errors(cli, store):
    res = cli("models", "pull", "dac-16khz")
    assert res.exit_code == 2 and "offline" in res.output
    res = cli("models", "pull", "griffinlim")
    assert res.exit_code == 2 and "no pretrained weights" in res.output
    res = cli("models", "pull", "dac16")
    assert res.exit_code == 2 and "dac-16khz" in res.output  # suggests the closest name


def test_pull_then_verify_then_tamper(cli, store, online, fake_hub):
    res = cli("models", "pull", "audioldm2-sdedit")
    assert res.exit_code == 0, res.output
    folder = store / "audioldm2-sdedit"
    assert fake_hub[-1][0] == "cvssp/audioldm2" and "unet/*.safetensors" in fake_hub[-1][1]
    record = json.loads((folder / W.MANIFEST).read_text())
    assert set(record["files"]) == {"config.json", "model.safetensors"}  # hub .cache is not kept
    assert record["checkpoint_sha256"] == W.checkpoint_sha256(folder)
    assert not list(store.glob(".*partial"))
    res = cli("models", "pull", "encodec-24khz")
    assert res.exit_code == 0 and (store / "encodec-24khz" / "encodec_24khz-d7cc33bc.th").is_file()
    assert fake_hub[-1][0].endswith("/encodec/v0/encodec_24khz-d7cc33bc.th")

    res = cli("models", "verify")
    assert res.exit_code == 0 and "audioldm2-sdedit: ok" in res.output and "encodec-24khz: ok" in res.output
    (folder / "model.safetensors").write_bytes(b"corrupted")
    res = cli("models", "verify", "audioldm2-sdedit")
    assert res.exit_code == 1 and "sha256 mismatch for model.safetensors" in res.output


def test_verify_unstaged_and_hand_staged(cli, store):
    res = cli("models", "verify", "dac-24khz")
    assert res.exit_code == 2 and "reconstruct models pull dac-24khz" in res.output
    get("dac-24khz").random_weights(store / "dac-24khz", tiny=True)  # staged by hand: no record
    res = cli("models", "verify", "dac-24khz")
    assert res.exit_code == 1 and "hardspoof-weights.json" in res.output


def test_resolve_online_pulls_into_store(store, online, fake_hub):
    path = W.resolve("dac-44khz", "descript/dac_44khz", allow_patterns=["*.json"])
    assert path == store / "dac-44khz" and (path / W.MANIFEST).is_file()
    assert W.verify(path) == []


def test_failed_download_leaves_no_store_entry(store, online, monkeypatch):
    import huggingface_hub

    def boom(*a, **k):
        raise OSError("connection refused\nmore")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", boom)
    with pytest.raises(Exception, match="could not download descript/dac_16khz for dac-16khz: connection refused"):
        W.pull("dac-16khz", "descript/dac_16khz")
    assert not (store / "dac-16khz").exists() and not list(store.glob(".*"))


def test_bench_labels_random_init_and_weight_free(cli, store, tmp_path, monkeypatch):
    cls = get("hifigan-libritts-16k")
    real = cls.random_weights.__func__
    monkeypatch.setattr(cls, "random_weights", classmethod(lambda c, folder, tiny=False: real(c, folder, tiny=True)))
    out = tmp_path / "bench.json"
    res = cli("bench", "--model", "hifigan-libritts-16k", "--model", "griffinlim", "--seconds", "0.5",
              "--repeats", "1", "--json", str(out))
    assert res.exit_code == 0, res.output
    rows = {r["model"]: r for r in json.loads(out.read_text())}
    assert rows["hifigan-libritts-16k"]["weights"].startswith("random-init")
    assert rows["griffinlim"]["weights"] == "weight-free"
    assert all(r["rtf_median"] > 0 for r in rows.values())
    assert "| hifigan-libritts-16k | vocoder | 16000 | random-init" in res.output


def test_bench_unknown_method_model(cli, store):
    res = cli("bench", "--model", "nope")
    assert res.exit_code == 2 and "unknown model" in res.output
