"""`detector eval` and `detector score`: score clips, compute metrics, write TSV and plots."""
from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path
from typing import Sequence

import numpy as np

from manifests import outfile, scores_tsv, storage
from manifests.audio import MAX_SECONDS
from manifests.errors import UsageError
from manifests.io import remote_path_refusal

from .. import checkpoint
from ..training.data import BONAFIDE, assign_splits, audio_files, check_classes, load_clips
from .metrics import act_dcf, bayes_threshold, cllr, det_curve, eer, grouped_eer, min_dcf
from ..model.pretrained import registry
from .onnx_export import is_onnx
from .scorer import CALIBRATED_COLUMNS, calibration_columns, load_detector, score_rows
from .windows import score_paths

HEADER = scores_tsv.HEADER


def check_out_file(out: str | os.PathLike) -> None:
    """Refuse, before any scoring, an --out file that cannot be written (UsageError, one line). Of a local
    file's folder only the last level is created; whether it is writable `outfile.output_lock` finds."""
    loc = storage.normalize(out)
    if storage.kind(loc) == storage.DIR:
        raise UsageError(f"--out {out} is a folder; give a file name such as scores.tsv")
    if storage.is_uri(loc):
        storage.check_writable(storage.parent(loc))
    else:
        outfile.out_folder(loc)


def _refused(paths: Sequence[str], manifest: str, allow_remote_paths: bool) -> dict[int, str]:
    """{index: reason} of the clips not to read: remote paths in a local manifest, unless allowed."""
    reasons = ((i, remote_path_refusal(p, manifest, allow_remote_paths)) for i, p in enumerate(paths))
    return {i: r for i, r in reasons if r}


def _plots(out: Path, bona: np.ndarray, spoof: np.ndarray, threshold: float) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    frr, far, _ = det_curve(bona, spoof)
    eps = 1e-4
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(norm.ppf(np.clip(far, eps, 1 - eps)), norm.ppf(np.clip(frr, eps, 1 - eps)))
    ticks = [0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95]
    ax.set_xlim(norm.ppf(5e-4), norm.ppf(0.99))
    ax.set_ylim(norm.ppf(5e-4), norm.ppf(0.99))
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_xlabel("false acceptance rate (%)")
    ax.set_ylabel("false rejection rate (%)")
    ax.set_title("DET curve")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "det.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = np.linspace(min(bona.min(), spoof.min()), max(bona.max(), spoof.max()), 40)
    ax.hist(bona, bins=bins, alpha=0.6, label="bona fide")
    ax.hist(spoof, bins=bins, alpha=0.6, label="spoof")
    ax.axvline(threshold, color="k", ls="--", label="threshold")
    ax.set_xlabel("score (higher = bona fide)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "hist.png", dpi=120)
    plt.close(fig)
    return [str(out / "det.png"), str(out / "hist.png")]


def score_manifest(model, cfg, manifest: str | os.PathLike, split: str | None = None,
                   bonafide_methods: Sequence[str] | None = None, batch_size: int = 16, progress: bool = True,
                   allow_remote_paths: bool = False, max_seconds: float | None = MAX_SECONDS, desc: str = "eval"):
    """Score the ok clips of a manifest (of one `split` if given: reconstructions follow their source).
    Returns (clips, scores (N,) NaN where not scored, {index: error}, {index: remote path refused})."""
    methods = cfg.data.bonafide_methods if bonafide_methods is None else tuple(bonafide_methods)
    clips = load_clips([manifest], methods, require_both=split is None)
    if split is not None:
        clips = [c for c in assign_splits(clips, cfg.data.dev_fraction) if c.split == split]
        check_classes(clips, f"split {split!r} of {manifest}")
    refused = _refused([c.path for c in clips], str(manifest), allow_remote_paths)
    scores, errors, _ = score_paths(model, [c.path for c in clips], cfg.data.crop, cfg.data.sample_rate,
                                    batch_size, progress, desc=desc, max_seconds=max_seconds, refused=refused,
                                    pad=cfg.data.pad == "repeat")
    return clips, scores, errors, refused


def calibration_note(cal: dict | None) -> str:
    if not cal:
        return ""
    return (f"; llr = {cal['a']:.6g} * score + {cal['b']:.6g}, a calibrated log-likelihood ratio bona fide vs spoof "
            f"(natural log); p_bonafide = P(bona fide | score) at a spoof prior of {cal['p_spoof']:g}")


def calibrated_metrics(cal: dict | None, bona: np.ndarray, spoof: np.ndarray, threshold: float) -> dict:
    """actDCF and Cllr (ASVspoof 5). Calibrated: on the LLRs, actDCF at the Bayes threshold of the calibration's
    operating point. Not calibrated: actDCF of the decisions at the checkpoint threshold, Cllr of the raw
    logits taken as LLRs."""
    if cal:
        lb, ls = cal["a"] * bona + cal["b"], cal["a"] * spoof + cal["b"]
        point = {k: cal[k] for k in ("p_spoof", "c_miss", "c_fa")}
        thr = bayes_threshold(**point)
        return {"act_dcf": act_dcf(lb, ls, thr, **point), "cllr": cllr(lb, ls), "calibrated": True,
                "act_dcf_threshold": f"calibrated LLR >= {thr:.3f}"}
    return {"act_dcf": act_dcf(bona, spoof, threshold), "cllr": cllr(bona, spoof), "calibrated": False,
            "act_dcf_threshold": f"score >= checkpoint threshold {threshold:.4f} (not calibrated)"}


def evaluate(ckpt: str | os.PathLike, manifest: str | os.PathLike, out: str | os.PathLike | None = None,
             bonafide_methods: Sequence[str] | None = None, batch_size: int = 16, progress: bool = True,
             split: str | None = None, held_out: Sequence[str] = (), allow_remote_paths: bool = False,
             max_seconds: float | None = MAX_SECONDS, frontend_cache_dir: str | None = None) -> dict:
    """Score every ok clip of `manifest` (of one `split` if given: reconstructions follow their source);
    returns metrics (fractions) and writes scores.tsv, det.png, hist.png. With `held_out` attacks (those
    left out of training), report['held_out_eer'] and report['seen_eer'] are the EERs of all bona fide
    clips against the spoofs of those attacks and of every other attack (None where there are none).
    A remote clip path in a local manifest is not read unless `allow_remote_paths` (its row gets an error,
    counted in report['remote_refused']); a header declaring more than `max_seconds` is an error row.
    `frontend_cache_dir`: for a model trained from --init with a frozen encoder, reuse (and add to) the encoder
    outputs cached there during training (`detector experiment` passes the run's own)."""
    name = posixpath.splitext(storage.name(manifest))[0]
    if not out:  # beside the checkpoint; a published model has no folder of its own: ./eval/pretrained-NAME/
        home = Path("eval") / str(ckpt).replace(":", "-") if registry.is_pretrained(ckpt) else \
            Path(ckpt).parent if is_onnx(ckpt) else Path(ckpt)
        out = home / "eval" / name if not registry.is_pretrained(ckpt) else home / name
    out = Path(out)
    storage.check_writable(out)  # before any scoring
    model, cfg, meta = load_detector(ckpt)
    if frontend_cache_dir and cfg.train.init and cfg.model.finetune is False and hasattr(model, "freeze_frontend"):
        model.freeze_frontend(True, frontend_cache_dir)  # the start's frozen encoder: its outputs are on disk already
    clips, scores, errors, refused = score_manifest(model, cfg, manifest, split, bonafide_methods, batch_size,
                                                    progress, allow_remote_paths, max_seconds)
    labels = np.array([c.label for c in clips])
    ok = np.isfinite(scores)
    if not ((labels[ok] == BONAFIDE).any() and (labels[ok] != BONAFIDE).any()):
        raise UsageError(f"manifest {manifest} has no readable clips of one class; EER needs bona fide and spoof")
    bona, spoof = scores[ok & (labels == BONAFIDE)], scores[ok & (labels != BONAFIDE)]
    rate, eer_thr = eer(bona, spoof)
    dcf, _ = min_dcf(bona, spoof)
    threshold = float(meta.get("threshold", eer_thr))
    report = {
        "n": int(ok.sum()), "failed": {clips[i].utt_id: e for i, e in errors.items()}, "eer": rate,
        "remote_refused": len(refused),
        "eer_threshold": eer_thr, "min_dcf": dcf, "threshold": threshold,
        **calibrated_metrics(meta.get("calibration"), bona, spoof, threshold),
        "per_attack": grouped_eer(scores[ok], labels[ok], np.array([c.attack for c in clips])[ok]),
        "per_method": grouped_eer(scores[ok], labels[ok], np.array([c.method or "original" for c in clips])[ok]),
        "per_model": grouped_eer(scores[ok], labels[ok], np.array([c.model or "original" for c in clips])[ok]),
    }
    held = np.isin(np.array([c.attack for c in clips]), list(held_out)) if held_out else np.zeros(len(clips), bool)
    for key, sel in (("held_out_eer", held), ("seen_eer", ~held)):
        sel = ok & (labels != BONAFIDE) & sel
        report[key] = eer(bona, scores[sel])[0] if sel.any() else None
    cal = meta.get("calibration")
    llr = calibration_columns(cal, scores)
    rows = [(c.utt_id, None if not np.isfinite(s) else float(s), *([] if llr is None else [v[i] for v in llr]),
             "bonafide" if c.label == BONAFIDE else "spoof", c.attack, c.method or "-", c.model or "-", errors.get(i, ""))
            for i, (c, s) in enumerate(zip(clips, scores))]
    scores_tsv.write(out / "scores.tsv", threshold, ["utt_id", "score", *CALIBRATED_COLUMNS[:2 if cal else 0], "label",
                                                     "attack", "method", "model", "error"], rows, calibration_note(cal))
    report["files"] = [str(out / "scores.tsv")] + _plots(out, bona, spoof, threshold)
    return report


def _inputs(path: str) -> tuple[list[tuple[str, str]], bool]:
    """(id, audio location) pairs from a file, a folder of audio, or a manifest (.parquet or folder of
    parts); local or a URI. The flag says whether `path` is a manifest."""
    loc = storage.normalize(path)
    found = storage.kind(loc)
    if found is None:
        raise UsageError(f"{path} does not exist; give an audio file, a folder of audio or a manifest")
    if storage.suffix(loc) == ".parquet" or (
            found == storage.DIR and any(storage.suffix(f) == ".parquet" for f, _ in storage.entries(loc))):
        return [(c.utt_id, c.path) for c in load_clips([loc], require_both=False)], True
    root = loc if found == storage.DIR else storage.parent(loc)
    return [(storage.relative(f, root), f) for f in audio_files(loc)], False


def _all_inputs(inputs: Sequence[str | os.PathLike], allow_remote_paths: bool) -> tuple[list, dict[int, str]]:
    """(id, location) items of every input in turn, and {item index: why it is not read} (remote paths
    in a local manifest, unless allowed)."""
    items, refused = [], {}
    for path in inputs:
        mine, is_manifest = _inputs(os.fspath(path))
        if is_manifest:
            why = _refused([p for _, p in mine], os.fspath(path), allow_remote_paths)
            refused.update({len(items) + i: r for i, r in why.items()})
        items += mine
    return items, refused


def score(ckpt: str | os.PathLike, inputs: str | os.PathLike | Sequence[str | os.PathLike],
          out: str | os.PathLike | None = None, batch_size: int = 16,
          progress: bool = True, allow_remote_paths: bool = False, max_seconds: float | None = MAX_SECONDS,
          executor: str = "local", workers: int = 0, gpus_per_worker: float = 0.0,
          ray_address: str | None = None) -> dict:
    """Score files, folders or manifests (`inputs`: one or a list) into a TSV (id, path, score, decision,
    error); returns counts, and 'columns' and 'rows' (the TSV's). `out` "-": no file, the TSV's text is
    returned under 'tsv'; None: no file. A local `out` is written by one process at a time
    (`outfile.output_lock`: a second run into it is refused); of its folder only the last level is created.
    Remote clip paths in a local manifest are read only with `allow_remote_paths` (else an error row,
    counted as 'remote_refused'); headers declaring more than `max_seconds` are error rows. With
    executor "ray" the clips are scored in shards by an actor pool (see `ray_executor`), resumably."""
    import contextlib

    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not inputs:
        raise UsageError("nothing to score: give audio files, folders or manifests")
    to_file = out is not None and os.fspath(out) != "-"
    if executor == "ray" and not to_file:
        raise UsageError("--executor ray keeps its shards beside the scores file: give --out FILE")
    if to_file:
        check_out_file(out)
    with outfile.output_lock(out) if to_file else contextlib.nullcontext():
        return _score(ckpt, inputs, out if to_file else None, os.fspath(out or "") == "-", batch_size, progress,
                      allow_remote_paths, max_seconds, executor, workers, gpus_per_worker, ray_address)


def _score(ckpt, inputs: list, out, to_text: bool, batch_size, progress, allow_remote_paths, max_seconds, executor,
           workers, gpus_per_worker, ray_address) -> dict:
    """`score` with its output checked and locked."""
    # the checkpoint first (a bad one is the error a user sees first), then the inputs
    model, cfg, meta = (None, *load_meta(ckpt)) if executor == "ray" else load_detector(ckpt)
    sha = checkpoint.weights_sha256(ckpt)  # named in the scores file's header (and in the ray shards' names)
    items, refused = _all_inputs(inputs, allow_remote_paths)
    if executor == "ray":
        from .ray_executor import score_sharded

        columns, rows, failed = score_sharded(ckpt, items, refused, out, batch_size, max_seconds, workers,
                                              gpus_per_worker, ray_address, progress, sha)
    else:
        columns, rows, failed = score_rows(model, cfg, meta, items, batch_size, progress, max_seconds, refused)
    thr = float(meta.get("threshold", 0.0))
    note = calibration_note(meta.get("calibration")) + f"; {scores_tsv.SHA_KEY} {sha}"
    result = {"scored": len(items) - failed, "failed": failed, "out": None if out is None else str(out),
              "threshold": thr, "remote_refused": len(refused), "columns": columns, "rows": rows}
    if out is not None:
        scores_tsv.write(out, thr, columns, rows, note)
    elif to_text:
        result["tsv"] = scores_tsv.text(thr, columns, rows, note)
    if executor == "ray":
        storage.remove_tree(f"{os.fspath(out)}.parts")
    return result


def load_meta(ckpt: str | os.PathLike) -> tuple:
    """(config, meta) of a checkpoint without building its model (an .onnx file: its metadata)."""
    if is_onnx(ckpt):
        _, cfg, meta = load_detector(ckpt)
        return cfg, meta
    if registry.is_pretrained(ckpt):
        return registry.run_config(str(ckpt)), registry.meta(str(ckpt))
    folder = Path(ckpt)
    folder = folder / "final" if (folder / "final" / "config.json").is_file() else folder
    if not (folder / "meta.json").is_file():
        raise UsageError(f"{ckpt} is not a finished checkpoint (no meta.json); give a run folder with final/")
    return checkpoint.read_config(folder), json.loads((folder / "meta.json").read_text())


def inspect(ckpt: str | os.PathLike) -> dict:
    """Config, threshold, dev EER and learned layer weights of a checkpoint."""
    from ..model.backends import aasist_size

    model, cfg, meta = checkpoint.load(ckpt)
    agg = model.aggregator
    learned = agg.logits.softmax(0).tolist() if hasattr(agg, "logits") else None
    parts = {name: sum(p.numel() for p in getattr(model, name).parameters())
             for name in ("frontend", "aggregator", "backend", "head")}
    parts = {**parts, "total": sum(parts.values()),
             "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    return {"config": cfg.to_dict(), "parameters": parts, "aasist_size": aasist_size(cfg.model),
            "threshold": meta.get("threshold"), "dev_eer": meta.get("dev_eer"),
            "averaged_epochs": meta.get("averaged_epochs"), "manifests": meta.get("manifests", {}),
            "layer_weights_dev_mean": meta.get("layer_weights"), "layer_weights_learned": learned}
