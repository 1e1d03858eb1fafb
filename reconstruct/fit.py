"""`reconstruct fit --method diffusion`: train the small mel-diffusion UNet on a corpus's bona fide speech.

The output folder is what the `mel-diffusion` back-end loads:

    CKPT_DIR/config.json, diffusion_pytorch_model.safetensors   EMA UNet (diffusers save_pretrained)
    CKPT_DIR/scheduler/scheduler_config.json                   DDPM training noise schedule
    CKPT_DIR/mel_diffusion.json                                features, dataset mean/std, provenance
    CKPT_DIR/training_state.pt                                 optimizer, raw weights, EMA, step, RNG (resume)

Checkpoints are written to a temporary folder and renamed into place, so CKPT_DIR is never
half-written; running the same command again continues from the last checkpoint.
Recipe (AdamW 3e-4, warm-up, EMA 0.999, 80x64 crops, batch 16) from notes/mel-diffusion.md.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from manifests.errors import UsageError

from .melfeatures import MelConfig, MelFeatures, freq_channel

FORMAT = "hardspoof-mel-diffusion/1"
META_FILE = "mel_diffusion.json"
STATE_FILE = "training_state.pt"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"


@dataclasses.dataclass(frozen=True)
class FitConfig:
    corpus: str                                  # corpus path (folder, table, protocol) or "demo"
    out: str                                     # checkpoint folder to write (and resume from)
    steps: int = 1500                            # total optimizer steps (a re-run continues up to this)
    batch_size: int = 16                         # crops per step
    crop_frames: int = 64                        # crop length in mel frames (multiple of 4)
    lr: float = 3e-4                             # AdamW learning rate after warm-up
    warmup_steps: int = 100                      # linear learning-rate warm-up
    ema_decay: float = 0.999                     # EMA of the weights that are saved for inference
    grad_clip: float = 1.0                       # gradient-norm clip
    channels: tuple[int, ...] = (32, 64, 64)     # UNet block widths; attention in the last (lowest) block
    checkpoint_every: int = 250                  # steps between checkpoints (and at the end)
    seed: int = 0                                # crops, noise and initial weights
    device: str = "cpu"                          # cpu | cuda
    threads: int = 0                             # torch CPU threads; 0 = torch's default
    max_minutes: float = 0.0                     # stop (and checkpoint) after this wall time; 0 = no limit

    def check(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.checkpoint_every < 1:
            raise UsageError(f"need steps, batch size and checkpoint interval >= 1, got {self.steps}, "
                             f"{self.batch_size}, {self.checkpoint_every}")
        if self.crop_frames < 4 or self.crop_frames % 4:
            raise UsageError(f"crop_frames must be a positive multiple of 4, got {self.crop_frames}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise UsageError(f"device must be cpu or cuda, got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for but no CUDA device is available; use --device cpu")
        if not 0 <= self.threads <= 1024:
            raise UsageError(f"--threads must be in [0, 1024] (0 = torch's default), got {self.threads}")
        if not 0 <= self.max_minutes < float("inf"):
            raise UsageError(f"--max-minutes must be a number of minutes >= 0 (0 = no limit), got {self.max_minutes}")


def build_unet(n_mels: int, crop_frames: int, channels: tuple[int, ...]):
    """The small UNet: 2 input channels (noisy log-mel, frequency position), 1 output (noise)."""
    from diffusers import UNet2DModel

    n = len(channels)
    return UNet2DModel(
        sample_size=(n_mels, crop_frames), in_channels=2, out_channels=1,
        block_out_channels=tuple(channels), layers_per_block=1, norm_num_groups=8,
        down_block_types=("DownBlock2D",) * (n - 1) + ("AttnDownBlock2D",),
        up_block_types=("AttnUpBlock2D",) + ("UpBlock2D",) * (n - 1),
    )


def load_bonafide(corpus: str) -> tuple[list[np.ndarray], list[str]]:
    """The corpus's bona fide clips at 16 kHz (train split only when the corpus has splits)."""
    from manifests.audio import AudioError, load_audio
    from manifests.corpus import import_corpus

    rows = [r for r in import_corpus(corpus) if r.get("status") == "ok"]
    if not rows:
        raise UsageError(f"corpus {corpus} has no readable clips")
    bona = [r for r in rows if r["label"] == "bonafide"]
    if not bona:
        raise UsageError(f"corpus {corpus} has no bona fide clips to train on ({len(rows)} spoof clips)")
    if any(r.get("split") for r in bona):
        bona = [r for r in bona if r.get("split") == "train"]
        if not bona:
            raise UsageError(f"corpus {corpus} has splits but no bona fide clips in the train split")
    wavs, paths = [], []
    for r in bona:
        try:
            wav, _ = load_audio(r["path"], sr=16000)
        except AudioError:
            continue
        if wav.shape[0] >= MelConfig.n_fft:
            wavs.append(wav)
            paths.append(r["path"])
    if not wavs:
        raise UsageError(f"corpus {corpus}: no bona fide clip is readable and at least {MelConfig.n_fft} samples long")
    return wavs, paths


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / STATE_FILE).is_file():
        raise UsageError(f"--out {out} is a non-empty folder without {STATE_FILE}: choose a new or empty folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out.parent).close()
    except OSError as e:
        raise UsageError(f"--out {out} is not writable: {e.strerror or e}") from None


def _recover(out: Path) -> None:
    """Finish a checkpoint rename that a crash interrupted."""
    for stale in out.parent.glob(f".{out.name}.tmp-*"):  # a checkpoint write that was killed
        shutil.rmtree(stale, ignore_errors=True)
    old = out.with_name(out.name + ".old")
    if old.is_dir() and not out.exists():
        old.rename(out)
    elif old.is_dir():
        shutil.rmtree(old)


def _log_mels(wavs: list[np.ndarray], device: torch.device) -> tuple[MelConfig, list[torch.Tensor]]:
    """Log-mel (n_mels, frames) of every clip, and the feature config with the dataset mean/std."""
    feats = MelFeatures(MelConfig()).to(device)
    with torch.no_grad():
        logs = [feats.log_mel(torch.from_numpy(w).to(device)) for w in wavs]
    allv = torch.cat([m.reshape(-1) for m in logs])
    return MelConfig(mean=float(allv.mean()), std=float(allv.std())), logs


def _crops(mels: list[torch.Tensor], weights: torch.Tensor, cfg: FitConfig, gen: torch.Generator) -> torch.Tensor:
    """(B, 1, n_mels, crop_frames) random crops; clips shorter than a crop are repeated."""
    idx = torch.multinomial(weights, cfg.batch_size, replacement=True, generator=gen)
    out = []
    for i in idx.tolist():
        m = mels[i]
        if m.shape[-1] < cfg.crop_frames:
            m = m.repeat(1, math.ceil(cfg.crop_frames / m.shape[-1]))
        start = int(torch.randint(0, m.shape[-1] - cfg.crop_frames + 1, (1,), generator=gen))
        out.append(m[:, start:start + cfg.crop_frames])
    return torch.stack(out)[:, None]


def _save(out: Path, unet, ema, opt, scheduler, mel_cfg: MelConfig, cfg: FitConfig, step: int,
          gen: torch.Generator, wall_s: float, data: dict) -> None:
    """Write the checkpoint to a temp folder, then rename it over `out` (never half-written)."""
    from .weights import checkpoint_sha256

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        ema.save_pretrained(tmp, safe_serialization=True)
        scheduler.save_pretrained(tmp / "scheduler")
        meta = {
            "format": FORMAT,
            "features": mel_cfg.to_dict(),
            "crop_frames": cfg.crop_frames,
            "provenance": {
                **data, "steps": step, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed,
                "ema_decay": cfg.ema_decay, "channels": list(cfg.channels), "device": cfg.device,
                "wall_time_s": round(wall_s, 1), "weights_sha256": checkpoint_sha256(tmp / WEIGHTS_FILE),
                "torch": torch.__version__, "diffusers": __import__("diffusers").__version__,
                "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            },
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        torch.save({"step": step, "unet": unet.state_dict(), "ema": ema.state_dict(),
                    "optimizer": opt.state_dict(), "rng": gen.get_state(), "wall_time_s": wall_s,
                    "config": dataclasses.asdict(cfg)}, tmp / STATE_FILE)
        for f in [tmp, *tmp.rglob("*")]:  # mkdtemp makes 0700; a model folder is readable by all
            f.chmod(0o755 if f.is_dir() else 0o644)
        old = out.with_name(out.name + ".old")
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fit_mel_diffusion(cfg: FitConfig, progress: bool = True) -> dict:
    """Train (or continue training) mel-diffusion; returns the checkpoint's provenance dict."""
    from diffusers import DDPMScheduler
    from tqdm import tqdm

    cfg.check()
    out = Path(cfg.out).expanduser().resolve()
    _recover(out)
    _check_out(out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    wavs, paths = load_bonafide(cfg.corpus)
    mel_cfg, logs = _log_mels(wavs, device)
    data = {"corpus": str(cfg.corpus), "n_clips": len(wavs),
            "audio_s": round(sum(w.shape[0] for w in wavs) / 16000, 1)}
    weights = torch.tensor([float(m.shape[-1]) for m in logs])

    torch.manual_seed(cfg.seed)
    unet = build_unet(mel_cfg.n_mels, cfg.crop_frames, cfg.channels).to(device)
    ema = copy.deepcopy(unet).requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.lr)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False)
    gen = torch.Generator().manual_seed(cfg.seed)
    step, wall0 = 0, 0.0
    if (out / STATE_FILE).is_file():
        state = torch.load(out / STATE_FILE, map_location=device, weights_only=True)
        was = {"channels": tuple(state["config"]["channels"]), "crop_frames": state["config"]["crop_frames"]}
        if was != {"channels": tuple(cfg.channels), "crop_frames": cfg.crop_frames}:
            raise UsageError(f"--out {out} holds a run with {was}; resume with the same model shape or use a new folder")
        saved = json.loads((out / META_FILE).read_text())["features"]
        mel_cfg = MelConfig.from_dict(saved)  # keep the statistics the run started with
        unet.load_state_dict(state["unet"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["rng"])
        step, wall0 = int(state["step"]), float(state["wall_time_s"])
    if step >= cfg.steps:
        return json.loads((out / META_FILE).read_text())["provenance"]

    mels = [(m - mel_cfg.mean) / mel_cfg.std for m in logs]
    unet.train()
    start = time.monotonic()
    freq = freq_channel(mel_cfg.n_mels, cfg.crop_frames, cfg.batch_size, device)
    bar = tqdm(total=cfg.steps, initial=step, desc="fit mel-diffusion", unit="step", disable=not progress)
    while step < cfg.steps:
        x0 = _crops(mels, weights, cfg, gen).to(device)
        noise = torch.randn(x0.shape, generator=gen).to(device)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), generator=gen).to(device)
        pred = unet(torch.cat([scheduler.add_noise(x0, noise, t), freq], dim=1), t).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))  # EMA warm-up: early weights fade fast
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), unet.parameters()):
                pe.lerp_(p, 1 - decay)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        out_of_time = cfg.max_minutes > 0 and time.monotonic() - start > cfg.max_minutes * 60
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or out_of_time:
            _save(out, unet, ema, opt, scheduler, mel_cfg, cfg, step, gen, wall0 + time.monotonic() - start, data)
        if out_of_time:
            break
    bar.close()
    return json.loads((out / META_FILE).read_text())["provenance"]
