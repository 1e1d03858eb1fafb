"""The training loop: paired batches, RACL (or CE), validation loss and EER each epoch, early stopping and
epoch averaging on the validation loss (the paper's rule; `select_on`), resume, per-epoch CSV log.
Runs on one CPU/GPU or under torchrun (DDP)."""
from __future__ import annotations

import csv
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from manifests import storage
from manifests.errors import UsageError, first_line
from manifests.listing import release_unused

from .. import checkpoint
from . import distributed as ddp
from .augment import Augmenter
from ..config import RunConfig, TrainConfig
from .clips import Clips
from .data import (BONAFIDE, Clip, ClipDataset, assign_splits, check_classes, collate, hold_out, load_clips, manifest_hash,
                   split_mask)
from .init import choose_trainable, init_config, load_start, param_groups
from .losses import cross_entropy, enhancement_mask, one_class_softmax, racl, racl_weights
from .diagnostics import Diagnostics, held_out_dev
from ..scoring.metrics import eer
from ..model.detector import Detector
from .sampler import PairedBatchSampler
from ..scoring.windows import score_paths

LOG_FIELDS = ["epoch", "lr", "steps", "samples", "seconds", "loss_total", "loss_cls", "loss_std", "loss_enh",
              "loss_reg", "dev_loss", "dev_eer", "failed_clips", "bona_drawn", "other_drawn", "recon_drawn",
              "recon_paired_share"]


class NonFiniteLoss(UsageError):
    """The loss became NaN/Inf: the run stops, naming the step and the clips of the batch."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def batch_loss(model: torch.nn.Module, wav: torch.Tensor, labels: torch.Tensor, clips: Sequence[Clip],
               tcfg: TrainConfig, valid: torch.Tensor | None = None, epoch: int | None = None
               ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Loss terms on the global batch (gathered across DDP ranks; rows with valid == False, padding for
    unreadable clips, are left out) and this rank's layer weights (B, L). `epoch` applies the RACL warm-up
    (None: the configured weights). Also "emb_norm": this rank's mean embedding norm before normalisation."""
    out = model(wav)
    valid = torch.ones(len(clips), dtype=torch.bool) if valid is None else valid
    keep = ddp.gather(valid.to(out.logit.device, torch.float32)) > 0.5
    logit, emb, lab = ddp.gather(out.logit)[keep], ddp.gather(out.embedding)[keep], ddp.gather(labels)[keep]
    if tcfg.loss == "ce":
        terms = cross_entropy(logit, lab)
    elif tcfg.loss == "oc":
        terms = one_class_softmax(logit, lab, tcfg.oc_real, tcfg.oc_fake, tcfg.oc_scale)
    else:
        info = [i for i, k in zip(ddp.gather_objects([(c.utt_id, c.source_id, c.kind) for c in clips]), keep.tolist()) if k]
        mask = enhancement_mask([i[0] for i in info], [i[1] for i in info], [i[2] for i in info], lab)
        alpha, beta, gamma = (tcfg.alpha, tcfg.beta, tcfg.gamma) if epoch is None else racl_weights(tcfg, epoch)
        terms = racl(logit, emb, lab, mask, alpha, beta, gamma, tcfg.margin, tcfg.std_pull)
    if out.embedding_norm is not None:
        terms["emb_norm"] = out.embedding_norm.detach().mean()
    return terms, out.layer_weights


@dataclass
class State:
    epoch: int = 0                          # next epoch to run
    best_eer: float = math.inf              # dev EER of the selected epoch
    best_epoch: int = -1
    best_loss: float = math.inf             # validation loss of the selected epoch
    history: list[dict] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # utt_id -> reason, unreadable clips


def split_clips(paths: Sequence[str], cfg: RunConfig, allow_remote_paths: bool = False
                ) -> tuple[Clips, Clips, int]:
    """(train, dev, unused) after the label policy, the held-out attacks and split assignment, both checked
    for two classes; unused = clips left with no split (reconstructions whose original is absent and that
    carry no split)."""
    clips, _ = hold_out(load_clips(paths, cfg.data.bonafide_methods, allow_remote_paths=allow_remote_paths),
                        cfg.data.holdout_attacks)
    clips = assign_splits(clips, cfg.data.dev_fraction)
    train = clips.filter(split_mask(clips, "train"))
    dev = clips.filter(split_mask(clips, "dev"))
    if not len(train) or not len(dev):
        raise UsageError(f"need train and dev clips, got {len(train)} train and {len(dev)} dev; set the manifest's "
                         "split column, or leave it empty for a speaker-disjoint split (--dev-fraction)")
    check_classes(train, "the train split")
    check_classes(dev, "the dev split")
    unused = int(split_mask(clips, None).sum())
    del clips
    release_unused()  # the intermediate tables (all clips, before the held-out attacks and splits) are gone
    return train, dev, unused


def _optimizer(model: torch.nn.Module, tcfg: TrainConfig, started: set[str] = frozenset()):
    """Adam over the trainable parameters (those from --init at lr * pretrained_lr_scale) and the lr schedule."""
    groups = param_groups(model, set(started), tcfg.lr, tcfg.pretrained_lr_scale)
    opt = torch.optim.Adam(groups, lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(tcfg.lr_halve_every, 1), gamma=0.5)
    return opt, sched


def validation_loss(scores: np.ndarray, labels: np.ndarray, tcfg: TrainConfig | None = None) -> float:
    """Class-balanced binary cross-entropy of bona fide logits (the mean over the two classes of each
    class's mean BCE), so the checkpoint rule does not depend on the dev split's class ratio. With
    tcfg.loss == "oc" the scores are cosines and the per-clip loss is OC-softmax's, balanced the same way."""
    oc = tcfg is not None and tcfg.loss == "oc"
    terms = []
    for cls in (BONAFIDE, 1 - BONAFIDE):
        s = scores[labels == cls]
        if len(s):
            z = s if cls == BONAFIDE else -s  # BCE(logit, 1) = softplus(-logit); BCE(logit, 0) = softplus(logit)
            if oc:  # softplus(scale * (m_real - s)) for bona fide, softplus(scale * (s - m_fake)) for spoofs
                z = tcfg.oc_scale * (s - tcfg.oc_real if cls == BONAFIDE else tcfg.oc_fake - s)
            terms.append(float(np.mean(np.logaddexp(0.0, -z))))
    return float(np.mean(terms))


def _validate(model: Detector, dev: Sequence[Clip], cfg: RunConfig, rank: int, world: int, progress: bool,
              probe: Sequence[Clip] = ()) -> dict:
    """Score the dev clips (sliding windows, as `detector eval`): loss, eer, threshold, layer weights. With
    train.diagnostics the same pass also gives "scores" (N+P,) and mean clip "embeddings" (N+P, E) of the dev
    clips then the `probe` clips (held-out attacks' dev clips, scored for diagnostics only: not in loss or EER)."""
    n, diag = len(dev), cfg.train.diagnostics
    mine = list(range(rank, n + len(probe), world))
    got = score_paths(model, [(dev[i] if i < n else probe[i - n]).path for i in mine], cfg.data.crop,
                      cfg.data.sample_rate, cfg.data.batch_size, progress, desc="dev", pad=cfg.data.pad == "repeat",
                      embeddings=diag)
    scores, weights = got[0], got[2]
    pairs = ddp.gather_objects([(i, float(s), got[3][k] if diag else None) for k, (i, s) in enumerate(zip(mine, scores))])
    every = np.full(n + len(probe), np.nan)
    width = next((len(e) for _, _, e in pairs if e is not None and len(e)), 0)  # from any rank that scored a clip
    emb = np.full((n + len(probe), width), np.nan)
    for i, s, e in pairs:
        every[i] = s
        if e is not None and len(e) == width:
            emb[i] = e
    full = every[:n]
    labels = np.array([c.label for c in dev])
    ok = np.isfinite(full)
    if not ((ok & (labels == BONAFIDE)).any() and (ok & (labels != BONAFIDE)).any()):
        raise UsageError(f"no readable dev clips of one class ({int(ok.sum())} of {len(dev)} readable); "
                         "dev EER needs bona fide and spoof audio")
    rate, thr = eer(full[ok & (labels == BONAFIDE)], full[ok & (labels != BONAFIDE)])
    return {"eer": rate, "threshold": thr, "loss": validation_loss(full[ok], labels[ok], cfg.train), "weights": weights,
            **({"scores": every, "embeddings": emb} if diag else {})}


def improves(state: State, result: dict, select_on: str) -> bool:
    """Whether an epoch's validation `result` beats the selected one: lower loss (select_on='loss'), or
    lower EER with ties broken by lower loss (select_on='eer'; a dev EER stuck at 0 keeps improving on loss)."""
    if select_on == "loss":
        return result["loss"] < state.best_loss
    return (result["eer"], result["loss"]) < (state.best_eer, state.best_loss)


def _run_epoch(model, loader, opt, train_clips, cfg: RunConfig, state: State, rank: int, progress: bool) -> dict:
    model.train()
    sums: dict[str, float] = {}
    steps = samples = 0
    bar = tqdm(loader, desc=f"epoch {state.epoch}", disable=not progress or rank != 0, unit="batch")
    for batch in bar:
        for idx, reason in batch["failed"]:
            state.failed[train_clips[idx].utt_id] = reason
        n_valid = int(batch["valid"].sum())
        if ddp.all_sum(float(n_valid)) == 0:  # every rank skips together, or DDP would hang
            continue
        clips = [train_clips[i] for i in batch["index"].tolist()]
        dev = next(model.parameters()).device
        terms, _ = batch_loss(model, batch["wav"].to(dev), batch["label"].to(dev), clips, cfg.train, batch["valid"],
                              state.epoch)
        if not torch.isfinite(terms["total"]):
            bad = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
            raise NonFiniteLoss(f"non-finite loss at epoch {state.epoch} step {steps} ({bad}) on clips "
                                f"{', '.join(c.utt_id for c in clips)}; lower --lr or check these clips")
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        steps += 1
        samples += n_valid
        bar.set_postfix(loss=f"{float(terms['total'].detach()):.4f}")
        if cfg.train.max_steps is not None and steps >= cfg.train.max_steps:
            break
    for uid, reason in ddp.gather_objects(sorted(state.failed.items())):  # every rank knows every failure
        state.failed[uid] = reason
    return {"steps": steps, "samples": samples, **{f"loss_{k}": v / max(steps, 1) for k, v in sums.items()}}


def _keep_epochs(folder: Path, state: State, n: int) -> None:
    """Delete epoch snapshots outside the averaging window of the best and of the latest epoch."""
    keep = set(range(state.best_epoch - n + 1, state.best_epoch + 1)) | set(range(state.epoch - n + 1, state.epoch + 1))
    for f in folder.glob("epoch_*.safetensors"):
        if int(f.stem.split("_")[1]) not in keep:
            f.unlink(missing_ok=True)


def average_epochs(folder: Path, epochs: Sequence[int]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the floating tensors of the snapshots of `epochs` (others from the last one)."""
    hint = "; pass --fresh to train the run again"
    states = [checkpoint.read_weights(folder / f"epoch_{e:04d}.safetensors", hint) for e in epochs
              if (folder / f"epoch_{e:04d}.safetensors").is_file()]
    if not states:
        raise UsageError(f"no epoch snapshots {list(epochs)} in {folder}")
    out = {}
    for k, v in states[-1].items():
        out[k] = torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v
    return out


def rng_state() -> dict:
    """Every RNG the training loop may draw from (torch CPU/CUDA, numpy, python), in tensors and plain
    values that `torch.load(weights_only=True)` reads back."""
    _, key, pos, has_gauss, gauss = np.random.get_state()
    version, py_key, py_gauss = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [torch.from_numpy(key.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
            "python": [int(version), torch.tensor(py_key, dtype=torch.int64), py_gauss]}


def set_rng_state(saved: dict) -> None:
    """Restore what `rng_state` captured."""
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])
    key, pos, has_gauss, gauss = saved["numpy"]
    np.random.set_state(("MT19937", key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, py_key, py_gauss = saved["python"]
    random.setstate((version, tuple(int(k) for k in py_key.tolist()), py_gauss))


# data options that do not change what is trained on (a resumed run may change them)
_RESUME_FREE = {"num_workers"}


def _resume_mismatch(saved: dict, cfg: RunConfig, hashes: list[str]) -> str | None:
    """What differs between a saved run and this call, in words, or None (resume is safe)."""
    now, default = cfg.to_dict(), RunConfig().to_dict()
    for section in ("model", "data"):
        was = {**default[section], **saved["config"][section]}  # a field newer than the run: its default
        diff = [f"{k}: {was.get(k)!r} -> {v!r}" for k, v in now[section].items()
                if k not in _RESUME_FREE and was.get(k) != v]
        if diff:
            return f"a different {section} config ({', '.join(diff[:3])})"
    if "manifests" in saved and sorted(saved["manifests"]) != sorted(hashes):
        return "other manifests (their content hashes differ from the ones it was trained on)"
    return None


def _save_last(out: Path, model: Detector, opt, sched, state: State, cfg: RunConfig, hashes: list[str]) -> None:
    last = out / "last"
    last.mkdir(parents=True, exist_ok=True)
    tmp = last / ".state.pt.tmp"
    with open(tmp, "wb") as fh:
        torch.save({"model": model.saved_state(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "state": state.__dict__, "config": cfg.to_dict(), "manifests": sorted(hashes),
                    "rng": rng_state()}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, last / "state.pt")


def _trim_log(out: Path, next_epoch: int) -> None:
    """Drop log rows of epochs that will run again (a kill between logging and saving the state)."""
    log = out / "log.csv"
    if not log.is_file():
        return
    lines = log.read_text().splitlines(keepends=True)
    keep = lines[:1] + [ln for ln in lines[1:] if int(ln.split(",", 1)[0]) < next_epoch]
    if len(keep) != len(lines):
        tmp = log.with_name(".log.csv.tmp")
        tmp.write_text("".join(keep))
        os.replace(tmp, log)


def _resume(out: Path, model: Detector, opt, sched, cfg: RunConfig, hashes: list[str]) -> State:
    """The saved state of OUT (model, optimiser, schedule, counters, every RNG), or a fresh State. Refuses
    (UsageError) to resume a run of other manifests or another data/model config."""
    path = out / "last" / "state.pt"
    if not path.is_file():
        _trim_log(out, 0)
        return State()
    fresh = f"; pass --fresh to start {out} over (its last/ is then ignored), or use another --out"
    saved = checkpoint.read_state(path, ddp.device(), fresh)
    lacking = [k for k in ("model", "opt", "sched", "state", "config") if k not in saved]
    if lacking:
        raise UsageError(f"{path} lacks {', '.join(lacking)}: not a state `detector train` saved{fresh}")
    mismatch = _resume_mismatch(saved, cfg, hashes)
    if mismatch:
        raise UsageError(f"{out} holds a run trained with {mismatch}; pass --fresh to start it over, or use "
                         "another --out")
    checkpoint.load_state(model, saved["model"], str(path))
    try:
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        if "rng" in saved:
            set_rng_state(saved["rng"])
        state = State(**saved["state"])
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
        raise UsageError(f"{path} holds a damaged optimiser, schedule or counter state ({type(e).__name__}: "
                         f"{first_line(e)}){fresh}") from None
    _trim_log(out, state.epoch)
    return state


def _log(out: Path, row: dict) -> None:
    """Append one epoch to OUT/log.csv (and to TensorBoard under OUT/tb when tensorboard is installed)."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(out / "tb")) as tb:
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)):
                    tb.add_scalar(k, v, row["epoch"])
    path = out / "log.csv"
    new = not path.is_file()
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=LOG_FIELDS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def train(manifest_paths: Sequence[str], out: str | os.PathLike, cfg: RunConfig, resume: bool = True,
          progress: bool = True, allow_remote_paths: bool = False) -> dict:
    """Train a detector; writes OUT/log.csv, OUT/epochs/, OUT/last/ (resume) and OUT/final/ (the checkpoint).

    Returns a summary dict: best_epoch, dev_eer, threshold, averaged epochs, failed clip count.
    """
    rank, world = ddp.init_from_env()
    out = Path(out)
    for option, folder in (("--noise-dir", cfg.data.noise_dir), ("--rir-dir", cfg.data.rir_dir)):
        if folder and storage.kind(folder) != storage.DIR:
            raise UsageError(f"{option} {folder} is {'not there' if storage.kind(folder) is None else 'a file'}; "
                             "give a folder of audio files (searched recursively)")
    cfg = init_config(cfg)
    seed_everything(cfg.train.seed)
    train_clips, dev, unused = split_clips(manifest_paths, cfg, allow_remote_paths)
    if cfg.train.loss not in ("racl", "ce", "oc"):
        raise UsageError(f"unknown --loss {cfg.train.loss!r}; allowed: racl, ce, oc")
    if cfg.train.warmup_epochs and cfg.train.loss != "racl":
        raise UsageError(f"--warmup-epochs {cfg.train.warmup_epochs} needs --loss racl (got {cfg.train.loss})")
    if cfg.model.contrastive_head != "none" and (cfg.train.loss != "racl" or cfg.train.train_last is not None):
        raise UsageError(f"--contrastive-head {cfg.model.contrastive_head} needs --loss racl (got {cfg.train.loss}; "
                         "nothing else trains it) and no --train-last (it would stay frozen)")
    if cfg.train.wise_alpha < 1 and not cfg.train.init:
        raise UsageError(f"--wise-alpha {cfg.train.wise_alpha} needs --init: it interpolates between the start's "
                         "weights and the fine-tuned ones")
    if cfg.train.init and (cfg.model.contrastive_head != "none" or cfg.train.loss == "oc"):
        raise UsageError(f"--init {cfg.train.init} with --contrastive-head {cfg.model.contrastive_head} / --loss "
                         f"{cfg.train.loss}: a start has no projection or one-class centre to load; train these from "
                         "scratch, or use --loss racl/ce with --contrastive-head none")
    cfg = cfg.replace("model", score_head="oc" if cfg.train.loss == "oc" else "linear")  # the head the loss needs
    if cfg.train.select_on not in ("loss", "eer"):
        raise UsageError(f"unknown --select-on {cfg.train.select_on!r}; allowed: loss, eer")
    d = cfg.data
    sampler = PairedBatchSampler(train_clips, d.batch_size, cfg.train.seed, rank, world, d.recon_share)
    if rank == 0:
        print(sampler.summary() + (f"; {unused} reconstruction(s) with neither their original nor a split in the "
                                   "manifests are not used" if unused else ""), file=sys.stderr)
    model = Detector(cfg.model)
    started = load_start(model, cfg.train.init) if cfg.train.init else set()
    start = ({k: v.detach().clone() for k, v in model.saved_state().items()} if cfg.train.wise_alpha < 1
             else None)
    choose_trainable(model, cfg)
    model = model.to(ddp.device())
    opt, sched = _optimizer(model, cfg.train, started)
    hashes = {p: manifest_hash(p) for p in manifest_paths}
    state = _resume(out, model, opt, sched, cfg, list(hashes.values())) if resume else State()
    probe = held_out_dev(manifest_paths, cfg, allow_remote_paths) if cfg.train.diagnostics else []
    diag = Diagnostics(out, dev, probe, cfg.train.margin, state.epoch) if cfg.train.diagnostics and rank == 0 else None
    net = (torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=bool(cfg.model.finetune))
           if ddp.is_distributed() else model)
    aug = Augmenter(d.sample_rate, d.noise_dir, d.rir_dir, d.snr_db, d.aug_prob, d.rawboost) if d.augment or d.rawboost else None
    dataset = ClipDataset(train_clips, d.crop, d.sample_rate, train=True, augment=aug, seed=cfg.train.seed,
                          random_crop=d.random_crop)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=d.num_workers)
    epochs_dir = out / "epochs"
    if rank == 0:
        epochs_dir.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    while state.epoch < cfg.train.epochs and state.epoch - state.best_epoch <= cfg.train.patience:
        t0 = time.time()
        sampler.set_epoch(state.epoch)
        dataset.epoch = state.epoch
        stats = _run_epoch(net, loader, opt, train_clips, cfg, state, rank, progress)
        lr = opt.param_groups[0]["lr"]
        if stats["steps"]:  # an epoch whose batches all held only unreadable clips moved no weight: the
            sched.step()    # schedule waits (stepping it would make torch warn of a step before optimizer.step())
        val = _validate(model, dev, cfg, rank, world, progress and rank == 0, probe)
        if improves(state, val, cfg.train.select_on):
            state.best_eer, state.best_loss, state.best_epoch = val["eer"], val["loss"], state.epoch
        stats["samples"] = int(ddp.all_sum(stats["samples"]))
        drawn = sampler.epoch_stats()
        row = {"epoch": state.epoch, "lr": lr, "seconds": time.time() - t0, "dev_loss": val["loss"],
               "dev_eer": val["eer"], "failed_clips": len(state.failed), **stats,
               **{k: drawn[k] for k in ("bona_drawn", "other_drawn", "recon_drawn")},
               "recon_paired_share": drawn["paired_share"]}
        state.history.append(row)
        if rank == 0:
            checkpoint.save_weights(epochs_dir / f"epoch_{state.epoch:04d}.safetensors", model.saved_state())
            _log(out, row)
            if diag is not None:
                diag.record(state.epoch, stats, val)
            _keep_epochs(epochs_dir, state, cfg.train.average_last)
        state.epoch += 1
        if rank == 0:
            _save_last(out, model, opt, sched, state, cfg, list(hashes.values()))
    if diag is not None:
        diag.plot()
    return _finish(out, model, dev, cfg, state, hashes, rank, world, progress, start)


def interpolate(start: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor], alpha: float
                ) -> dict[str, torch.Tensor]:
    """WiSE-FT (Wortsman et al., CVPR 2022): start + alpha * (tuned - start) for each floating tensor the start
    has with the same shape; the others (new layers, counters) as tuned."""
    return {k: (start[k] + alpha * (v - start[k]) if v.is_floating_point() and k in start
                and start[k].shape == v.shape else v) for k, v in tuned.items()}


def _finish(out: Path, model: Detector, dev, cfg: RunConfig, state: State, hashes: dict[str, str], rank, world,
            progress, start: dict[str, torch.Tensor] | None = None) -> dict:
    """Average the selected epoch (lowest validation loss, or EER with --select-on eer) with the ones before
    it, move it back toward `start` by --wise-alpha, calibrate the threshold on dev, save final/."""
    if state.best_epoch < 0:
        raise UsageError(f"no epoch finished in {out} (epochs={cfg.train.epochs})")
    epochs = list(range(max(0, state.best_epoch - cfg.train.average_last + 1), state.best_epoch + 1))
    if ddp.is_distributed():
        torch.distributed.barrier()
    weights = average_epochs(out / "epochs", epochs)
    if start is not None:
        weights = interpolate(start, weights, cfg.train.wise_alpha)
    checkpoint.load_state(model, weights, str(out / "epochs"))
    val = _validate(model, dev, cfg, rank, world, progress and rank == 0)
    meta = {"threshold": val["threshold"], "dev_eer": val["eer"], "dev_loss": val["loss"],
            "best_epoch": state.best_epoch, "selected_on": cfg.train.select_on, "averaged_epochs": epochs,
            "layer_weights": [float(w) for w in val["weights"]], "failed_clips": state.failed,
            "manifests": {storage.normalize(p): h for p, h in hashes.items()},
            "score": "bona fide logit: higher = more likely bona fide",
            **({"init": cfg.train.init, "init_sha256": checkpoint.weights_sha256(cfg.train.init),
                "wise_alpha": cfg.train.wise_alpha} if cfg.train.init else {})}
    if rank == 0:
        checkpoint.save(out / "final", model, cfg, meta)
    return {"out": str(out / "final"), "best_epoch": state.best_epoch, "averaged_epochs": epochs,
            "dev_eer": val["eer"], "dev_loss": val["loss"], "threshold": val["threshold"],
            "failed_clips": len(state.failed)}
