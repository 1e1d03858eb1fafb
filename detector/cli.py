"""`detector` CLI: a thin shell over train / evaluate / score / inspect / export / calibrate.

Scores everywhere are bona fide logits: higher score = more likely bona fide.
Exit codes: 0 ok, 2 bad usage or input (one-line message).
"""
from __future__ import annotations

import json
import os
import sys

import click

from manifests.audio import MAX_SECONDS
from manifests.clitools import FiniteRange, Group
from manifests.errors import UsageError

from .cli_models import CheckpointPath, models
from .config import RunConfig, load_yaml

# CLI option -> (config section, field); None values (option not given) leave the config as is.
_OPTIONS = {
    "frontend": ("model", "frontend"), "aggregation": ("model", "aggregation"), "backend": ("model", "backend"),
    "aasist_size": ("model", "aasist_size"),
    "finetune": ("model", "finetune"), "tiny_hidden": ("model", "tiny_hidden"), "tiny_layers": ("model", "tiny_layers"),
    "loss": ("train", "loss"), "alpha": ("train", "alpha"), "beta": ("train", "beta"), "gamma": ("train", "gamma"),
    "margin": ("train", "margin"), "lr": ("train", "lr"), "lr_halve_every": ("train", "lr_halve_every"),
    "epochs": ("train", "epochs"), "patience": ("train", "patience"), "average_last": ("train", "average_last"),
    "max_steps": ("train", "max_steps"), "seed": ("train", "seed"), "crop": ("data", "crop"),
    "batch_size": ("data", "batch_size"), "recon_share": ("data", "recon_share"),
    "select_on": ("train", "select_on"), "dev_fraction": ("data", "dev_fraction"), "augment": ("data", "augment"),
    "noise_dir": ("data", "noise_dir"), "rir_dir": ("data", "rir_dir"), "rawboost": ("data", "rawboost"),
    "num_workers": ("data", "num_workers"), "init": ("train", "init"), "train_last": ("train", "train_last"),
    "pretrained_lr_scale": ("train", "pretrained_lr_scale"),
    "wise_alpha": ("train", "wise_alpha"), "cache_frontend": ("train", "cache_frontend"),
    "random_crop": ("data", "random_crop"), "frontend_cache_dir": ("train", "frontend_cache_dir"),
    "contrastive_head": ("model", "contrastive_head"), "warmup_epochs": ("train", "warmup_epochs"),
    "std_pull": ("train", "std_pull"), "oc_real": ("train", "oc_real"), "oc_fake": ("train", "oc_fake"),
    "oc_scale": ("train", "oc_scale"), "diagnostics": ("train", "diagnostics"),
}


def build_config(config_file: str | None, bonafide_methods: str | None, holdout_attacks: str | None = None,
                 **opts) -> RunConfig:
    """Defaults < --config YAML < explicit options."""
    cfg = load_yaml(config_file) if config_file else RunConfig()
    changes: dict[str, dict] = {}
    for name, value in opts.items():
        if value is not None:
            section, field = _OPTIONS[name]
            changes.setdefault(section, {})[field] = value
    for section, fields in changes.items():  # a section at once: checks across fields see every given option
        cfg = cfg.replace(section, **fields)
    if bonafide_methods is not None:
        cfg = cfg.replace("data", bonafide_methods=tuple(m for m in bonafide_methods.split(",") if m))
    if holdout_attacks is not None:
        cfg = cfg.replace("data", holdout_attacks=tuple(a for a in holdout_attacks.split(",") if a))
    if cfg.train.init:  # the start's architecture; an explicit option that contradicts it is an error
        from .training.init import init_config

        given = {_OPTIONS[n][1] for n, v in opts.items() if v is not None and _OPTIONS[n][0] == "model"}
        cfg = init_config(cfg, given)
    return cfg


@click.group(cls=Group)
def main() -> None:
    """Train and run audio-deepfake detectors. Scores: higher = more likely bona fide."""


@main.command()
@click.option("--manifest", "manifests_", multiple=True, required=True,
              help="Training manifest, local or an s3:// / gs:// URI (repeatable).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder (checkpoint in OUT/final).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="YAML with data/model/train sections.")
@click.option("--frontend", help="xlsr | hf:<hub-id-or-folder> (pretrained SSL encoders: local weights or a download) | "
              "ge2e | lfcc | rawgat-st | rawnetlite | sinc | sinc-l | tiny (CPU front-ends, no download)  [xlsr]")
@click.option("--aggregation", type=click.Choice(["attn", "weighted", "last"]), help="Layer aggregation [attn].")
@click.option("--backend", type=click.Choice(["aasist", "linear"]), help="Back-end [aasist].")
@click.option("--aasist-size", type=click.Choice(["auto", "small", "full"]),
              help="AASIST size: full = the paper's SSL-AASIST, small = CPU-sized [auto: full for xlsr/hf:, else small].")
@click.option("--finetune/--freeze", default=None,
              help="Train the pretrained front-end too [freeze; with --init: finetune, --freeze fixes the encoder].")
@click.option("--tiny-hidden", type=int, help="tiny front-end hidden size [32].")
@click.option("--tiny-layers", type=int, help="tiny front-end layers [2].")
@click.option("--loss", type=click.Choice(["racl", "ce", "oc"]),
              help="RACL, plain cross-entropy, or one-class OC-softmax (score = cosine to a bona fide centre) [racl].")
@click.option("--contrastive-head", type=click.Choice(["none", "proj"]),
              help="proj: the contrastive terms act on an MLP projection; the classifier reads the layer before [none].")
@click.option("--warmup-epochs", type=int, help="racl: train the first N epochs on CE alone [0].")
@click.option("--std-pull", type=click.Choice(["all", "bonafide"]),
              help="racl: L_std pulls all same-label pairs together, or only bona fide ones [all].")
@click.option("--oc-real", type=FiniteRange(-1, 1), help="--loss oc: bona fide cosine margin [0.9].")
@click.option("--oc-fake", type=FiniteRange(-1, 1), help="--loss oc: spoof cosine margin [0.2].")
@click.option("--oc-scale", type=FiniteRange(0.001, 1000), help="--loss oc: scale of the margins [20].")
@click.option("--diagnostics/--no-diagnostics", default=None,
              help="Write OUT/diagnostics.csv each epoch and OUT/diagnostics.png at the end (loss terms, "
                   "embedding distances, dev logits per attack) [off].")
@click.option("--alpha", type=float, help="Weight of L_std [0.6].")
@click.option("--beta", type=float, help="Weight of L_enh [0.1].")
@click.option("--gamma", type=float, help="Weight of L_reg [0.3].")
@click.option("--margin", type=float, help="Contrastive margin on unit embeddings [1.0].")
@click.option("--lr", type=float, help="Adam learning rate [5e-4].")
@click.option("--lr-halve-every", type=int, help="Halve the lr every N epochs [10].")
@click.option("--epochs", type=int, help="Maximum epochs [100].")
@click.option("--patience", type=int, help="Early stopping patience in epochs [10].")
@click.option("--select-on", type=click.Choice(["loss", "eer"]),
              help="Pick the epoch (and stop early) on the lowest dev loss, as the paper, or dev EER [loss].")
@click.option("--average-last", type=int, help="Average the selected epoch and the N-1 before it [5].")
@click.option("--max-steps", type=int, help="Cap steps per epoch (smoke runs).")
@click.option("--seed", type=int, help="Random seed [688].")
@click.option("--crop", type=int, help="Samples per crop at 16 kHz [64600].")
@click.option("--batch-size", type=int, help="Clips per batch per process, half bona fide [16].")
@click.option("--recon-share", type=FiniteRange(0, 1),
              help="Share of a batch's spoof slots for its originals' own reconstructions "
                   "[0.5 with corpus spoofs, 1.0 without].")
@click.option("--dev-fraction", type=float, help="Speaker share for dev when the manifest has no split [0.2].")
@click.option("--bonafide-methods", help="Comma list of reconstruction methods labelled bona fide [none].")
@click.option("--holdout-attacks", help="Comma list of corpus attacks left out of train and dev (with their "
                                        "reconstructions), to evaluate on as unseen attacks [none].")
@click.option("--augment/--no-augment", default=None, help="Noise + RIR augmentation [on].")
@click.option("--noise-dir", type=click.Path(exists=True), help="Noise/music audio folder [synthetic].")
@click.option("--rir-dir", type=click.Path(exists=True), help="Room impulse response folder [synthetic].")
@click.option("--rawboost/--no-rawboost", default=None, help="RawBoost augmentation [off].")
@click.option("--num-workers", type=int, help="DataLoader workers [0].")
@click.option("--init", help="Start from pretrained:NAME (`detector models list`) or a finished run/checkpoint; "
              "its architecture is used (contradicting --frontend/--backend/... is an error).")
@click.option("--train-last", type=int, help="Train only the last N blocks (the head counts as one) [all].")
@click.option("--pretrained-lr-scale", type=FiniteRange(0, 100),
              help="Learning rate of the weights from --init, as a multiple of --lr [1.0].")
@click.option("--wise-alpha", type=FiniteRange(0, 1),
              help="With --init: keep start + A x (fine-tuned - start) as the final weights (WiSE-FT) [1.0: off].")
@click.option("--cache-frontend/--no-cache-frontend", default=None,
              help="With --init and --freeze: encode each distinct crop once (use with --fixed-crop, "
                   "--no-augment) [off].")
@click.option("--frontend-cache-dir", type=click.Path(file_okay=False),
              help="With a frozen encoder: also keep its outputs on disk here, shared between runs [memory only].")
@click.option("--random-crop/--fixed-crop", "random_crop", default=None,
              help="Train on the first --crop samples of each clip, as published models are scored [random].")
@click.option("--fresh", is_flag=True, help="Ignore OUT/last and start over.")
@click.option("--allow-remote-paths", is_flag=True,
              help="Read rows of a local manifest whose path is remote (s3://, gs://, http://); skipped otherwise.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def train(manifests_, out, config_file, bonafide_methods, holdout_attacks, fresh, allow_remote_paths, no_progress,
          **opts) -> None:
    """Train a detector on one or more manifests (status=ok rows; splits from the `split` column)."""
    from .training.clips import check_content

    cfg = build_config(config_file, bonafide_methods, holdout_attacks, **opts)  # bad options first: one line
    check_content(list(manifests_))  # before torch is loaded, so that the check's peak and torch do not add up
    from .training.loop import train as run

    summary = run(list(manifests_), out, cfg, resume=not fresh, progress=not no_progress,
                  allow_remote_paths=allow_remote_paths)
    if int(os.environ.get("RANK", "0")) == 0:
        click.echo(f"checkpoint {summary['out']}: dev EER {100 * summary['dev_eer']:.3f}%, dev loss {summary['dev_loss']:.4f} "
                   f"(epochs {summary['averaged_epochs']} averaged), threshold {summary['threshold']:.4f}, "
                   f"{summary['failed_clips']} unreadable clip(s) skipped")


def _scoring_options(f):
    """The options of every command that scores clips (eval, score, calibrate)."""
    for option in reversed([
            click.option("--batch-size", type=int, default=16, show_default=True),
            click.option("--allow-remote-paths", is_flag=True, help="Read s3:// / gs:// / http:// clip paths listed "
                         "in a local manifest (a remote manifest's always are)."),
            click.option("--max-duration", type=float, default=MAX_SECONDS, show_default=True,
                         help="Longest clip scored, in seconds, as its header declares; a longer one is not "
                         "scored (an error row in a scores file)."),
            click.option("--no-progress", is_flag=True)]):
        f = option(f)
    return f


@main.command("eval")
@click.option("--checkpoint", "ckpt", required=True, type=CheckpointPath(exists=True),
              help="Run or checkpoint folder, or a model.onnx from `detector export`.")
@click.option("--manifest", required=True, help="Manifest to evaluate (local, or an s3:// / gs:// URI).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Output folder; its parent must exist [CHECKPOINT/eval/<manifest>; pretrained:NAME: eval/pretrained-NAME/<manifest>].")
@click.option("--bonafide-methods", help="Override the label policy of the checkpoint (comma list).")
@click.option("--split", type=click.Choice(["train", "dev", "eval"]), help="Only this split [all rows].")
@_scoring_options
def eval_(ckpt, manifest, out, bonafide_methods, split, batch_size, allow_remote_paths, max_duration,
          no_progress) -> None:
    """EER %, minDCF, actDCF, Cllr, per-attack/method/model EER; writes scores.tsv (higher = bona fide), det.png,
    hist.png. CHECKPOINT may be an exported .onnx file."""
    from .scoring.evaluate import evaluate

    _check_scoring_options(batch_size, max_duration)
    if out and "://" not in out and not os.path.exists(os.path.dirname(os.path.abspath(out))):
        raise UsageError(f"--out {out}: its parent folder does not exist; only the last level is created")
    methods = None if bonafide_methods is None else [m for m in bonafide_methods.split(",") if m]
    r = evaluate(ckpt, manifest, out, methods, batch_size, progress=not no_progress, split=split,
                 allow_remote_paths=allow_remote_paths, max_seconds=max_duration)
    click.echo(f"clips {r['n']}  EER {100 * r['eer']:.3f}%  minDCF {r['min_dcf']:.4f}  "
               f"threshold@EER {r['eer_threshold']:.4f}  (checkpoint threshold {r['threshold']:.4f})")
    click.echo(f"actDCF {r['act_dcf']:.4f} ({r['act_dcf_threshold']})  Cllr {r['cllr']:.4f} bits"
               + ("" if r["calibrated"] else " (raw logits as LLRs; `detector calibrate` fits LLRs)"))
    for title, key in (("attack", "per_attack"), ("method", "per_method"), ("model", "per_model")):
        for name, v in r[key].items():
            click.echo(f"  {title:<7} {name:<28} EER {100 * v:.3f}%")
    if r["failed"]:
        click.echo(f"{len(r['failed'])} clip(s) not scored (unreadable or too short), "
                   f"e.g. {next(iter(r['failed'].items()))}", err=True)
    if r["remote_refused"]:
        click.echo(f"{r['remote_refused']} of them have remote paths, not read without --allow-remote-paths", err=True)
    click.echo("wrote " + ", ".join(r["files"]))


@main.command()
@click.option("--checkpoint", "ckpt", required=True, type=CheckpointPath(exists=True),
              help="Run or checkpoint folder, or a model.onnx from `detector export`.")
@click.argument("files", nargs=-1)
@click.option("--input", "inputs", multiple=True,
              help="Audio file, folder or manifest; local or an s3:// / gs:// URI (repeatable; or give them as FILES).")
@click.option("--out", type=click.Path(dir_okay=False, allow_dash=True),
              help="Scores TSV (higher = more likely bona fide); '-' prints the TSV [none: a table on stdout].")
@_scoring_options
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: score in shards of 256 clips on a Ray actor pool (one detector per actor), resumable.")
@click.option("--workers", type=int, default=0, help="ray: actors (default: one per CPU, or per GPU share).")
@click.option("--gpus-per-worker", type=float, default=0.0, show_default=True, help="ray: GPUs per actor (fractions share).")
@click.option("--ray-address", help="ray: join a running cluster ('auto', 'ray://HOST:10001'); default a local Ray.")
def score(ckpt, files, inputs, out, batch_size, allow_remote_paths, max_duration, executor, workers, gpus_per_worker,
          ray_address, no_progress) -> None:
    """Score audio FILES (files, folders, manifests): without --out a table of file, score (higher = more likely
    bona fide), decision at the checkpoint's threshold and, when calibrated, p_bonafide; with --out a TSV of id,
    path, score, decision, error (and llr, p_bonafide). CHECKPOINT may be an exported .onnx file (onnxruntime)."""
    from .scoring.evaluate import score as run
    from .scoring.score_table import score_table

    _check_scoring_options(batch_size, max_duration)
    if workers < 0 or gpus_per_worker < 0:
        raise UsageError("--workers and --gpus-per-worker are >= 0")
    if not files and not inputs:
        raise UsageError("give the audio to score: files, folders or manifests (as arguments or --input)")
    r = run(ckpt, [*files, *inputs], out, batch_size, progress=not no_progress, allow_remote_paths=allow_remote_paths,
            max_seconds=max_duration, executor=executor, workers=workers, gpus_per_worker=gpus_per_worker,
            ray_address=ray_address)
    if out is None:
        click.echo(score_table(r["columns"], r["rows"]))
    elif out == "-":
        click.echo(r["tsv"], nl=False)
    click.echo(f"scored {r['scored']} file(s), {r['failed']} not scored" + (
        f" (reason in the error column) -> {r['out']}" if r["out"] else f" (threshold {r['threshold']:.4g})"),
        err=r["out"] is None)
    if r["remote_refused"]:
        click.echo(f"{r['remote_refused']} of them have remote paths, not read without --allow-remote-paths", err=True)


@main.command()
@click.option("--checkpoint", "ckpt", required=True, type=CheckpointPath(exists=True, file_okay=False),
              help="Run or checkpoint folder.")
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Model file to write (.onnx).")
def export(ckpt, fmt, out) -> None:
    """Export a detector to ONNX: input wav (batch, samples) float32 at 16 kHz, outputs logit (higher = bona fide)
    and layer_weights; config, threshold and calibration in its metadata. Checked against PyTorch before writing."""
    from .scoring.onnx_export import TOLERANCE, export_onnx

    r = export_onnx(ckpt, out)
    click.echo(f"wrote {r['out']}: dynamic batch, {r['length_axis']} length, max |logit difference| to PyTorch "
               f"{r['max_abs_diff']:.2g} (limit {TOLERANCE:g})")
    for why in r["tried"]:
        click.echo(f"  {why}", err=True)


@main.command()
@click.option("--checkpoint", "ckpt", required=True, type=CheckpointPath(exists=True),
              help="Run or checkpoint folder (stored in final/meta.json), or an exported .onnx (its metadata).")
@click.option("--manifest", required=True, help="Manifest with labelled clips (local, or an s3:// / gs:// URI).")
@click.option("--split", type=click.Choice(["train", "dev", "eval"]), default="dev", show_default=True,
              help="Split to fit on (never the split you report).")
@click.option("--p-spoof", type=float, default=0.05, show_default=True,
              help="Target spoof prior of the operating point (ASVspoof 5); p_bonafide is the posterior at it.")
@click.option("--c-miss", type=float, default=1.0, show_default=True, help="Cost of rejecting bona fide speech.")
@click.option("--c-fa", type=float, default=10.0, show_default=True, help="Cost of accepting a spoof.")
@_scoring_options
def calibrate(ckpt, manifest, split, p_spoof, c_miss, c_fa, batch_size, allow_remote_paths, max_duration,
              no_progress) -> None:
    """Fit llr = a * score + b (prior-weighted logistic regression at the operating point's effective prior)
    on a split; `detector score` then adds llr and p_bonafide, `detector eval` actDCF and Cllr on LLRs."""
    from .scoring.calibration import calibrate as run

    _check_scoring_options(batch_size, max_duration)
    r = run(ckpt, manifest, split, p_spoof, c_miss, c_fa, batch_size, progress=not no_progress,
            allow_remote_paths=allow_remote_paths, max_seconds=max_duration)
    click.echo(f"llr = {r['a']:.4f} * score + {r['b']:+.4f}  (fitted on {r['bonafide']} bona fide + {r['spoof']} spoof "
               f"{split} clips at effective prior {r['prior_bonafide']:.3f}; p_spoof {p_spoof:g}, C_miss {c_miss:g}, "
               f"C_fa {c_fa:g})")
    click.echo(f"on that split: Cllr {r['cllr']:.4f} bits, actDCF {r['act_dcf']:.4f} (LLR >= {r['llr_threshold']:.3f}), "
               f"minDCF {r['min_dcf']:.4f}  -> {r['stored_in']}")
    if r["separable"]:
        click.echo(f"warning: no {split} score of a spoof reaches a bona fide one, so the slope is set by regularisation "
                   "and the LLRs are overconfident; calibrate on a larger or harder split", err=True)


def _check_scoring_options(batch_size: int, max_duration: float) -> None:
    """eval/score option values a type cannot check: one line and exit 2."""
    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    if not 0 < max_duration < float("inf"):
        raise UsageError(f"--max-duration must be a positive number of seconds, got {max_duration}")


@main.command()
@click.option("--checkpoint", "ckpt", required=True, type=CheckpointPath(exists=True), help="Run or checkpoint folder.")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def inspect(ckpt, as_json) -> None:
    """Print a checkpoint's config, threshold, dev EER and learned layer weights."""
    from .scoring.evaluate import inspect as run

    r = run(ckpt)
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    m = r["config"]["model"]
    click.echo(f"front-end {m['frontend']}  aggregation {m['aggregation']}  back-end {m['backend']}"
               f"{' (' + r['aasist_size'] + ')' if m['backend'] == 'aasist' else ''}  loss {r['config']['train']['loss']}")
    click.echo("parameters: " + "  ".join(f"{k} {n:,}" for k, n in r["parameters"].items()))
    click.echo(f"threshold {r['threshold']}  dev EER {r['dev_eer']}  averaged epochs {r['averaged_epochs']}")
    for name, weights in (("layer weights (mean over dev)", r["layer_weights_dev_mean"]),
                          ("layer weights (learned softmax)", r["layer_weights_learned"])):
        if weights:
            click.echo(f"{name}: " + " ".join(f"L{i}={w:.3f}" for i, w in enumerate(weights)))


main.add_command(models)  # `detector models list|pull|verify`
main.add_command(__import__("detector.experiment.runner", fromlist=["experiment"]).experiment)  # `detector experiment`

if __name__ == "__main__":
    sys.exit(main())
