"""CPU DDP (gloo, 2 processes) on 2 steps equals 1 process on the merged batches.

The RACL loss is computed on the gathered global batch, so the pair (a, a_rec) split across the
two ranks still contributes to L_enh. SGD (not Adam) keeps the comparison linear in the gradient:
Adam's first step is ~lr*sign(g) and would amplify float noise on near-zero gradients.
"""
from pathlib import Path

import pytest

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from detector.training.data import Clip
from detector.model.detector import Detector
from detector.training.loop import batch_loss

from ..conftest import tiny_config

CLIPS = [Clip("a", "", 1, "original", "a", None, None, "-", None, "train"),
         Clip("b", "", 1, "original", "b", None, None, "-", None, "train"),
         Clip("a_rec", "", 0, "reconstruction", "a", "vocoder", None, "-", None, "train"),
         Clip("s", "", 0, "original", "s", None, None, "A01", None, "train")]


def _data():
    g = torch.Generator().manual_seed(3)
    return [(torch.randn(4, 4000, generator=g) * 0.1, torch.tensor([1.0, 1.0, 0.0, 0.0])) for _ in range(2)]


def _train(model, wav_lab, clips, cfg):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for wav, lab in wav_lab:
        terms, _ = batch_loss(model, wav, lab, clips, cfg.train)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()


def _worker(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    cfg = tiny_config()
    torch.manual_seed(0)
    model = Detector(cfg.model)
    net = torch.nn.parallel.DistributedDataParallel(model)
    shard = slice(2 * rank, 2 * rank + 2)
    _train(net, [(w[shard], l[shard]) for w, l in _data()], CLIPS[shard], cfg)
    if rank == 0:
        torch.save(model.state_dict(), out)
    dist.destroy_process_group()


def test_ddp_two_process_equals_single_process(tmp_path: Path):
    cfg = tiny_config()
    torch.manual_seed(0)
    ref = Detector(cfg.model)  # first, so the forked children inherit the (slow) transformers imports
    _train(ref, _data(), CLIPS, cfg)
    mp.start_processes(_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "ddp.pt")), nprocs=2, join=True,
                       start_method="fork")
    got = torch.load(tmp_path / "ddp.pt")
    for k, v in ref.state_dict().items():
        assert torch.allclose(got[k], v, atol=1e-5, rtol=1e-4), k


def _train_worker(rank: int, world: int, port: int, manifest: str, out: str) -> None:
    import os

    from detector.training.loop import train

    torch.set_num_threads(1)
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    cfg = tiny_config(epochs=1, max_steps=None, average_last=1)
    train([manifest], out, cfg, progress=False)
    dist.destroy_process_group()


@pytest.mark.timeout(300)
def test_ddp_training_with_an_unreadable_clip_on_one_rank(manifest: Path, tmp_path: Path):
    """A rank whose batch lost a clip to unreadable audio pads and masks it: the all-gather keeps equal
    shapes, so the run neither crashes nor hangs, and the failure is recorded once for the whole run."""
    import json
    import socket

    import manifests

    rows = manifests.read(manifest).to_pylist()
    victim = next(r for r in rows if r["utt_id"] == "bonafide/spk0/utt2")  # a train original: drawn every epoch
    Path(victim["path"]).write_bytes(b"garbage")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    Detector(tiny_config().model)  # import transformers before forking
    mp.start_processes(_train_worker, args=(2, port, str(manifest), str(tmp_path / "run")), nprocs=2, join=True,
                       start_method="fork")
    meta = json.loads((tmp_path / "run" / "final" / "meta.json").read_text())
    assert list(meta["failed_clips"]) == ["bonafide/spk0/utt2"]
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(log) == 2 and log[0].startswith("epoch,")
