"""DDP helpers. Launch with `torchrun --nproc_per_node N -m detector.cli train ...` (gloo on CPU, nccl on GPU).

The batch loss is computed on the *global* batch: each process all-gathers logits, embeddings and
labels with autograd, so contrastive pairs split across processes still meet, and DDP's gradient
averaging then yields exactly the gradient of the single-process loss on the merged batch.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_from_env() -> tuple[int, int]:
    """(rank, world_size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(device())
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def device() -> torch.device:
    """cuda:LOCAL_RANK when a GPU is present, else cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    return torch.device("cpu")


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` (B, ...) from every rank along dim 0, differentiably (rank order)."""
    if not is_distributed():
        return x
    import warnings

    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():  # deprecated in favour of a private API; still the public autograd gather
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(all_gather(x.contiguous()), dim=0)


def gather_objects(obj: list) -> list:
    """Concatenate a python list from every rank (rank order)."""
    if not is_distributed():
        return obj
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return [x for part in out for x in part]


def all_sum(value: float) -> float:
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device() if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t)
    return float(t.item())
