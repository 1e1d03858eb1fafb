"""`detector experiment`: reconstruction runs -> variants x seeds trained -> every checkpoint on every eval set
-> results.parquet, results.md (the paper's table shape) and results.png.

Layout of OUT: manifests/ (imported corpora), recon/<name>/ (reconstruct runs), runs/<variant>[/<fold>]/seed<S>/
(detector runs, final/ = finished; <fold> = the held-out attacks when the study holds some out),
.../eval/<set>/ (scores, plots, result.json).

`detector` never imports `reconstruct`: a reconstruction run to do is a `reconstruct run` subprocess (its
corpus selection is `--select`), which resumes, so a re-run costs little; the model variants a run makes
come from `reconstruct list --variants --json`. Training runs are skipped once OUT/runs/.../final exists.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np

from manifests import storage
from manifests.errors import UsageError, first_line

from . import config as xc
from .report import write_reports


class RunFailed(click.ClickException):
    """A reconstruction or training run failed (exit code 1; bad config is exit code 2)."""
    exit_code = 1


def _import(src: xc.Source) -> list[dict]:
    from manifests.corpus import import_corpus

    rows = import_corpus(src.corpus, src.audio_dir)
    if not rows:
        raise UsageError(f"{src.name}: no corpus rows in {src.corpus}")
    return rows


def source_manifest(src: xc.Source, out: Path) -> str:
    """The manifest of a Source: as given, or its corpus imported once into OUT/manifests/<name>.parquet."""
    if src.manifest:
        if not Path(src.manifest).exists():
            raise UsageError(f"{src.name}: manifest {src.manifest} does not exist")
        return src.manifest
    import manifests

    dest = out / "manifests" / f"{src.name}.parquet"
    if not dest.is_file():
        manifests.write(_import(src), dest)
    return str(dest)


def _corpus_flags(r: xc.Recon) -> list[str]:
    """The `reconstruct run` options that choose a run's corpus clips: --audio-dir, one --select per column."""
    flags = ["--audio-dir", r.audio_dir] if r.audio_dir else []
    for column, values in r.select:
        flags += ["--select", f"{column}={','.join(values)}"]
    return flags


def _model_flags(r: xc.Recon) -> list[str]:
    """The `reconstruct` options that choose a run's models: --method, --model, --checkpoint, --param, --grid."""
    flags = ["--method", r.method] if r.method else []
    flags += ["--model", r.model] if r.model else []
    flags += ["--checkpoint", r.checkpoint] if r.checkpoint else []
    for k, v in r.params:
        flags += ["--param", f"{k}={json.dumps(v) if not isinstance(v, str) else v}"]
    for k, values in r.grid:
        flags += ["--grid", f"{k}=" + ",".join(json.dumps(v) if not isinstance(v, str) else v for v in values)]
    return flags


def reconstruction_manifest(r: xc.Recon, out: Path, ray_address: str | None) -> str:
    """Run (or resume) `reconstruct run` for a run to do; returns its manifest folder."""
    if not r.todo:
        if not Path(r.manifest).exists():
            raise UsageError(f"reconstructions.{r.name}: manifest {r.manifest} does not exist")
        return r.manifest
    dest = Path(r.out) if r.out else out / "recon" / r.name
    cmd = [sys.executable, "-m", "reconstruct.cli", "run", "--corpus", r.corpus, "--out", str(dest), "--seed", str(r.seed),
           *_corpus_flags(r)]
    cmd += _model_flags(r)
    cmd += ["--limit", str(r.limit)] if r.limit is not None else []
    cmd += ["--executor", "ray", "--ray-address", ray_address] if ray_address else ["--executor", "local"]
    click.echo(f"[recon {r.name}] {' '.join(cmd[1:])}", err=True)
    rc = subprocess.run(cmd).returncode
    if rc == 2:  # its one-line reason is on stderr, above
        raise UsageError(f"reconstructions.{r.name}: `reconstruct run` refused the run's options (see above)")
    if rc != 0:
        raise RunFailed(f"reconstruction run {r.name!r} exited {rc}; re-run to resume (command above)")
    return _this_run(r, dest / "manifest", dest, out)


def _variants(r: xc.Recon) -> set[str]:
    """The model variants (`reconstruct run`'s folder and utt_id suffix) this run makes: its model or
    paradigm default, with its parameters and every grid point, as `reconstruct list --variants` says."""
    cmd = [sys.executable, "-m", "reconstruct.cli", "list", "--variants", "--json", *_model_flags(r)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1].removeprefix("Error: ")
        raise UsageError(f"reconstructions.{r.name}: {why}")
    return {row["variant"] for row in json.loads(proc.stdout)}


def _this_run(r: xc.Recon, manifest: Path, run_out: Path, out: Path) -> str:
    """Only this run's reconstructions (of its selected, first-`limit` sources; of its model variants): an
    out folder may hold more from earlier runs, e.g. with a larger `limit`, another model or other parameters.
    Written to OUT/manifests/recon-<name>."""
    import manifests
    from manifests.corpus import list_corpus
    from manifests.select import select_rows

    table = manifests.read(manifest).to_pylist()
    sources = None
    if r.select:  # the clips `reconstruct run --select ... --limit N` took: the same listing, selection and limit
        listing = select_rows(list_corpus(r.corpus, r.audio_dir, exclude=(str(run_out),)), r.select)
        sources = set(listing["utt_id"].to_pylist()[:r.limit] if r.limit is not None else listing["utt_id"].to_pylist())
    variants = _variants(r)
    rows = [row for row in table if row["kind"] == "reconstruction" and (sources is None or row["source_id"] in sources)
            and any(row["utt_id"] == f"{row['source_id']}__{v}" for v in variants)]
    if not r.select and not r.model and len(rows) == sum(row["kind"] == "reconstruction" for row in table):
        return str(manifest)  # the whole folder is this run's
    if not rows:
        raise RunFailed(f"reconstruction run {r.name!r}: no reconstructions in {manifest}")
    dest = out / "manifests" / f"recon-{r.name}.parquet"
    manifests.write(rows, dest)
    return str(dest)


def run_dir(out: Path, variant: xc.Variant, seed: int, fold: tuple[str, ...] = ()) -> Path:
    folder = out / "runs" / variant.slug
    return (folder / xc.fold_name(fold) if fold else folder) / f"seed{seed}"


def check_folds(exp: xc.Experiment, manifest_sets: list[tuple[str, ...]], names_only: bool = False) -> None:
    """Before any training: every held-out attack is in the training manifests, and (unless `names_only`)
    every variant's training data (`manifest_sets`: train manifests + its reconstructions) keeps spoofs in
    its train split."""
    if not exp.held_out:
        return
    from ..training.data import SPOOF, assign_splits, check_attacks, hold_out, load_clips

    for paths in dict.fromkeys(manifest_sets):
        clips = assign_splits(load_clips(list(paths), require_both=False))
        for fold in exp.folds:
            try:
                check_attacks(clips, fold)
                if names_only:
                    continue
                kept, _ = hold_out(clips, fold)
            except UsageError as e:
                raise UsageError(f"holdout {xc.fold_name(fold)}: {first_line(e)}") from None
            if not any(c.split == "train" and c.label == SPOOF for c in kept):
                raise UsageError(f"holdout {xc.fold_name(fold)}: holding out {', '.join(fold)} leaves no spoof in "
                                 f"the train split of {', '.join(paths)}; hold out fewer attacks")


def is_finished(folder: Path) -> bool:
    """A finished run has its final checkpoint (weights + meta written last)."""
    return (folder / "final" / "model.safetensors").is_file() and (folder / "final" / "meta.json").is_file()


def mining_rounds(task: dict, folder: Path) -> str:
    """Round 1 and the selection of a mining variant (see config.Mining); returns the mined
    manifest that round 2 trains on. Each step is skipped when its output exists, so a re-run resumes."""
    from manifests.mine import mine

    from ..config import RunConfig
    from ..scoring.evaluate import score
    from ..training.loop import train

    m, seed = task["mine"], task["seed"]
    mined = folder / "mined.parquet"
    if mined.is_file():
        return str(mined)
    scores = None
    if m["select"] == "hard":
        first = folder / "round1"
        extra = []
        if m["round1"] == "random":
            extra = [str(folder / "round1-random.parquet")]
            if not Path(extra[0]).is_file():
                mine(m["manifest"], None, m["keep"], m["per"], extra[0], random=True, seed=seed)
        if not is_finished(first):
            train(task["manifests"] + extra, first, RunConfig.from_dict(task["config"]), resume=True, progress=False)
        scores = first / "candidates.tsv"
        if not scores.is_file():
            score(first, m["manifest"], scores, batch_size=task["batch_size"], progress=False)
    mine(m["manifest"], scores, m["keep"], m["per"], mined, random=m["select"] == "random", seed=seed)
    return str(mined)


def run_one(task: dict) -> list[dict]:
    """Train one variant x seed (unless finished) and evaluate it on every eval set; returns result rows.

    A plain function of plain data, so it runs in-process or as a Ray task.
    """
    from ..config import RunConfig
    from ..training.data import manifest_hash
    from ..scoring.evaluate import evaluate
    from ..training.loop import train

    if task.get("threads"):
        import torch

        torch.set_num_threads(task["threads"])
    folder = Path(task["run_dir"])
    info_path = folder / "experiment.json"
    ckpt = task.get("zero_shot") or folder  # a zero-shot variant evaluates a published model as it is
    skipped = True if task.get("zero_shot") else is_finished(folder)
    if not skipped:
        t0 = time.time()
        extra = [mining_rounds(task, folder)] if task.get("mine") else []
        train(task["manifests"] + extra, folder, RunConfig.from_dict(task["config"]), resume=True, progress=False)
        info_path.write_text(json.dumps({"train_seconds": time.time() - t0, "manifests": task["manifests"]}))
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    meta = {} if task.get("zero_shot") else json.loads((folder / "final" / "meta.json").read_text())
    rows = []
    held_out = task.get("held_out", [])
    pct = lambda v: None if v is None else 100 * v  # noqa: E731
    for name, manifest, split in task["evals"]:
        # a zero-shot model scores the same whatever the fold: scored once, into a folder its folds share
        where = Path(task["out"]) / "zero-shot" / task["slug"] if task.get("zero_shot") \
            else folder
        cache = where / "eval" / name / "result.json"
        key = f"{manifest_hash(manifest)}:{split}:{'' if task.get('zero_shot') else ','.join(held_out)}:v3"
        res = json.loads(cache.read_text()) if cache.is_file() else {}
        if res.get("key") != key:
            r = evaluate(ckpt, manifest, where / "eval" / name, batch_size=task["batch_size"], progress=False,
                         split=split, held_out=held_out,
                         frontend_cache_dir=task["config"].get("train", {}).get("frontend_cache_dir"))
            res = {"key": key, "eer": r["eer"], "min_dcf": r["min_dcf"], "n": r["n"], "held_out_eer": r["held_out_eer"],
                   "seen_eer": r["seen_eer"], "per_attack": {a: 100 * v for a, v in r["per_attack"].items()}}
            cache.write_text(json.dumps(res))
        if task.get("zero_shot"):
            res = {**res, **fold_eers(where / "eval" / name / "scores.tsv", held_out)}
        rows.append({"variant": task["variant"], "seed": task["seed"], "fold": task.get("fold", "all"),
                     "eval_set": name, "eer": 100 * res["eer"], "held_out_eer": pct(res["held_out_eer"]),
                     "seen_eer": pct(res["seen_eer"]), "min_dcf": res["min_dcf"], "n_clips": res["n"],
                     "dev_eer": pct(meta.get("dev_eer")), "per_attack_eer": json.dumps(res["per_attack"], sort_keys=True),
                     "train_seconds": info.get("train_seconds"), "trained_now": not skipped,
                     "run_dir": os.path.relpath(folder, task.get("out", folder.parent))})
    return rows


def fold_eers(scores_file: Path, held_out: list[str]) -> dict:
    """Held-out and seen-attack EER (fractions) of one fold from a scores file with label and attack columns."""
    from manifests import scores_tsv

    from ..scoring.metrics import eer

    rows = [r for r in scores_tsv.read(scores_file) if r.get("score") not in (None, "")]
    score = np.array([float(r["score"]) for r in rows])
    bona = np.array([r["label"] == "bonafide" for r in rows])
    held = np.array([r["attack"] in held_out for r in rows]) & ~bona
    seen = ~held & ~bona
    return {k: (float(eer(score[bona], score[sel])[0]) if sel.any() and bona.any() else None)
            for k, sel in (("held_out_eer", held), ("seen_eer", seen))}


def _execute(tasks: list[dict], ray_address: str | None) -> list[dict]:
    if not ray_address:
        rows = []
        for i, t in enumerate(tasks, 1):
            state = "zero-shot, evaluating" if t.get("zero_shot") else \
                "done, evaluating" if is_finished(Path(t["run_dir"])) else "training"
            fold = f" without {t['fold']}" if t.get("held_out") else ""
            click.echo(f"[{i}/{len(tasks)}] {t['variant']}{fold} seed {t['seed']}: {state}", err=True)
            rows += run_one(t)
        return rows
    import ray

    started = not ray.is_initialized()  # an already connected driver (e.g. tests) keeps its connection
    if started:
        ray.init(address=ray_address, log_to_driver=True)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        cpus = (tasks[0].get("threads") or 1) if tasks else 1
        remote = ray.remote(num_gpus=1 if gpus >= 1 else 0, num_cpus=cpus)(run_one)
        click.echo(f"ray: {len(tasks)} task(s), {'1 GPU' if gpus >= 1 else f'{cpus} CPU'} each", err=True)
        return [row for rows in ray.get([remote.remote(t) for t in tasks]) for row in rows]
    finally:
        if started:
            ray.shutdown()


def run_experiment(exp: xc.Experiment, out: str | os.PathLike, ray_address: str | None = None,
                   command: str = "", finished_only: bool = False) -> dict:
    """Everything above; returns {'rows': n, 'trained': n, 'files': [...], 'seconds': s}. With `finished_only`,
    nothing is reconstructed or trained: the runs finished so far are evaluated (cached) and reported."""
    t0 = time.time()
    out = Path(out).resolve()
    if finished_only and not out.is_dir():
        raise UsageError(f"no finished run under {out / 'runs'} to report ({out} does not exist)")
    storage.check_writable(out)  # creates it; a place that cannot hold it is one line before any work
    train_manifests = [source_manifest(t, out) for t in exp.train]
    check_folds(exp, [tuple(train_manifests)], names_only=True)  # before reconstruction runs: a misnamed attack
    evals = [(e.name, source_manifest(e, out), e.split) for e in exp.evals]
    needed = {r for v in exp.variants for r in v.reconstructions} | {v.mine.candidates for v in exp.variants if v.mine}
    recon = {} if finished_only else \
        {r.name: reconstruction_manifest(r, out, ray_address) for r in exp.reconstructions if r.name in needed}
    if not finished_only:
        check_folds(exp, [tuple(train_manifests + [recon[r] for r in v.reconstructions]) for v in exp.variants])
    tasks = [{"run_dir": str(run_dir(out, v, s, fold)), "out": str(out), "variant": v.name, "seed": s, "fold": xc.fold_name(fold),
              "held_out": list(fold), "batch_size": exp.eval_batch_size, "threads": exp.threads,
              "manifests": train_manifests + [recon[r] for r in v.reconstructions if r in recon],
              "config": v.run.replace("train", seed=s).replace("data", holdout_attacks=fold).to_dict(), "evals": evals,
             "mine": dataclasses.asdict(v.mine) | {"manifest": recon.get(v.mine.candidates)} if v.mine else None,
             "zero_shot": v.zero_shot, "slug": v.slug}
             for fold in exp.folds for v in exp.variants for s in (v.seeds or exp.seeds)]
    missing = []
    if finished_only:
        missing = [f"{t['variant']}{' without ' + t['fold'] if t['held_out'] else ''} seed {t['seed']}"
                   for t in tasks if not (t["zero_shot"] or is_finished(Path(t["run_dir"])))]
        tasks = [t for t in tasks if t["zero_shot"] or is_finished(Path(t["run_dir"]))]
        if not tasks:
            raise UsageError(f"no finished run under {out / 'runs'} to report")
    try:
        rows = _execute(tasks, None if finished_only else ray_address)
    except UsageError as e:
        raise RunFailed(f"a training/eval run failed: {first_line(e)}") from None
    seconds = time.time() - t0
    trained = len({r["run_dir"] for r in rows if r["trained_now"]})
    with open(out / "invocations.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "command": command,
                             "wall_seconds": round(seconds, 1), "runs": len(tasks), "trained": trained}) + "\n")
    files = write_reports(rows, exp, out, missing)
    return {"rows": len(rows), "trained": trained, "runs": len(tasks), "files": files, "seconds": seconds}


def _overrides(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--set {pair!r}: expected NAME=VALUE")
        out[name] = value
    return out


@click.command()
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False), help="Experiment YAML.")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder [the config's `out`].")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
              help="Set a variable of the config's `vars:` (e.g. a corpus location); repeatable. "
                   "An environment variable of the same name works too; --set wins.")
@click.option("--ray-address", help="Train variants as Ray tasks on this cluster ('auto', 'ray://HOST:10001'); "
                                    "one GPU per task when the cluster has GPUs. Default: sequential, in-process.")
@click.option("--finished-only", is_flag=True,
              help="Train and reconstruct nothing: report the runs finished so far (a long study's interim table).")
@click.option("--variant", "only", multiple=True, metavar="NAME",
              help="Run only this variant (repeatable), and only the reconstructions it needs: a long study in "
                   "parts. The table lists those variants; --finished-only without --variant reports them all.")
def experiment(config_file: str, out: str | None, sets: tuple[str, ...], ray_address: str | None,
               finished_only: bool, only: tuple[str, ...] = ()) -> None:
    """Train every variant x seed of an experiment YAML, evaluate each on every eval set, write the table.

    Re-running skips finished runs (OUT/runs/<variant>/seed<S>/final) and cached evaluations.
    Writes OUT/results.parquet (EER in %), OUT/results.md, OUT/results.png; appends to OUT/invocations.jsonl.
    """
    exp = xc.load(config_file, _overrides(sets))
    if only:
        unknown = [v for v in only if v not in {x.name for x in exp.variants}]
        if unknown:
            raise UsageError(f"--variant {unknown[0]!r} is not in {config_file}; its variants: "
                             + ", ".join(repr(v.name) for v in exp.variants))
        exp = dataclasses.replace(exp, variants=tuple(v for v in exp.variants if v.name in only))
    command = f"detector experiment --config {config_file}" + (f" --out {out}" if out else "") + \
        "".join(f" --set {s}" for s in sets) + (f" --ray-address {ray_address}" if ray_address else "") + \
        (" --finished-only" if finished_only else "") + "".join(f" --variant '{v}'" for v in only)
    if not (out or exp.out):
        raise UsageError("no output folder: pass --out or set `out` in the config")
    r = run_experiment(exp, out or exp.out, ray_address, command, finished_only)
    click.echo(f"{r['runs']} run(s), {r['trained']} trained now, {r['rows']} result row(s) in {r['seconds']:.0f} s")
    click.echo("wrote " + ", ".join(r["files"]))
