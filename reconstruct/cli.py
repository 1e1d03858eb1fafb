"""`reconstruct`: the hard-sample generator's command line (a thin shell over the library)."""
from __future__ import annotations

import sys

import click

from manifests import storage
from manifests.clitools import FiniteRange, Group, parse_grid, parse_kv
from manifests.errors import UsageError
from manifests.select import parse_select

from .cli_fit import fit
from .cli_models import bench, list_cmd, models
from .config import RunConfig


@click.group(cls=Group)
def main() -> None:
    """Reconstruct speech with codec, vocoder and diffusion back-ends into hard spoof samples."""


@main.command()
@click.option("--method", "methods", default="", help="Paradigm(s), comma-separated: codec,vocoder,diffusion.")
@click.option("--model", "models", multiple=True, help="Back-end name (repeatable); see `reconstruct list`.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Back-end parameter (repeatable).")
@click.option("--grid", "grid", multiple=True, metavar="KEY=V1,V2,...",
              help="Parameter grid (repeatable): one model variant per combination, e.g. --grid strength=0.1,0.2,0.4.")
@click.option("--checkpoint", type=click.Path(), help="Weights folder/file for the one selected model.")
@click.option("--corpus", required=True, help="'demo', a folder of audio, a CSV/TSV/Parquet (path,label), or an ASVspoof "
              "protocol; local, or an s3:// / gs:// URI.")
@click.option("--audio-dir", type=click.Path(), help="Audio folder of an ASVspoof protocol corpus.")
@click.option("--out", required=True, help="Output folder (local, or an s3:// / gs:// URI): OUT/manifest/ and OUT/audio/.")
@click.option("--executor", type=click.Choice(["ray", "local"]), default="ray", show_default=True)
@click.option("--workers", type=int, default=0, help="Actors per model (default: one per CPU, or per GPU share).")
@click.option("--gpus-per-worker", type=float, default=0.0, show_default=True, help="GPUs per actor; fractions share a GPU.")
@click.option("--threads-per-worker", type=int, default=0, help="Torch threads per worker (default: cores / workers).")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Clips per worker call and manifest part.")
@click.option("--ray-address", help="Join a running cluster: 'auto' or 'ray://HOST:10001'.")
@click.option("--seed", type=int, default=0, show_default=True, help="Run seed; per-clip seeds derive from it.")
@click.option("--select", "select", multiple=True, metavar="COLUMN=VALUE[,VALUE...]",
              help="Only corpus clips whose COLUMN (utt_id, label, attack, speaker, language, split) is one of the "
              "values; repeatable, all must hold: --select label=bonafide --select split=train.")
@click.option("--limit", type=int, help="Only the first N corpus clips (after --select).")
@click.option("--retry-failed", is_flag=True, help="Redo clips whose earlier row is `failed`.")
@click.option("--dry-run", is_flag=True, help="Print the plan without loading any model.")
@click.option("--max-failure-rate", type=float, default=0.05, show_default=True, help="Exit 1 above this share of failed clips.")
@click.option("--allow-outside-root", is_flag=True, help="Accept protocol paths outside the corpus folder.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, or auto.")
@click.option("--max-duration", "max_duration_s", type=float, default=4 * 3600.0, show_default=True,
              help="Longest clip read, in seconds, as its header declares; longer ones are failed rows.")
@click.option("--spectrograms", type=int, default=0, help="Also write OUT/spectrograms.png for N clips (original vs each model).")
def run(methods: str, models: tuple[str, ...], params: tuple[str, ...], grid: tuple[str, ...], spectrograms: int,
        select: tuple[str, ...], **options) -> None:
    """Reconstruct every corpus clip with every selected model; re-running resumes."""
    from manifests.listing import driver_allocator

    from .run import run as run_job

    driver_allocator()

    if spectrograms < 0:
        raise UsageError(f"--spectrograms is a number of clips >= 0, got {spectrograms}")
    cfg = RunConfig(methods=tuple(m.strip() for m in methods.split(",") if m.strip()), models=models,
                    params=tuple(parse_kv(params).items()), grid=parse_grid(grid), select=parse_select(select),
                    **options)
    summary = run_job(cfg, echo=lambda s: click.echo(s, err=True))
    if summary.dry_run:
        click.echo(summary.table())
        return
    click.echo(summary.table())
    manifest_dir = storage.join(summary.out, "manifest")
    click.echo(f"manifest: {manifest_dir}")
    if spectrograms:
        from .figures import spectrogram_grid

        try:
            png = spectrogram_grid(manifest_dir, storage.join(summary.out, "spectrograms.png"), spectrograms)
            click.echo(f"spectrograms: {png}")
        except ValueError as e:  # nothing to plot is no reason to fail a finished run
            click.echo(f"warning: no spectrograms: {e}", err=True)
    lost = sum(t.lost for t in summary.tallies.values())
    if lost:
        click.echo(f"error: {lost} planned reconstruction(s) got no row in this run; re-run the same command to make "
                   "them", err=True)
        sys.exit(1)
    ok, failed, kept_ok = (sum(getattr(t, k) for t in summary.tallies.values()) for k in ("ok", "failed", "skipped"))
    kept_ok -= sum(t.skipped_failed for t in summary.tallies.values())
    if not ok and not kept_ok and any(t.todo for t in summary.tallies.values()):
        click.echo("error: no clip was reconstructed: every selected clip failed (in this run or before); see the "
                   "`error` column", err=True)
        sys.exit(1)
    if summary.failure_rate > cfg.max_failure_rate:
        click.echo(f"error: {summary.failure_rate:.1%} of clips failed (> --max-failure-rate "
                   f"{cfg.max_failure_rate:.1%}); see the `error` column", err=True)
        sys.exit(1)


@main.command()
@click.argument("run_dir")
@click.option("--out", help="Where to write the page [RUN_DIR/report.html].")
@click.option("--examples", type=click.IntRange(0, 1000), default=5, show_default=True,
              help="Originals shown beside their reconstructions.")
@click.option("--seconds", type=FiniteRange(0.1, 60), default=4.0, show_default=True,
              help="Length of each spectrogram.")
def report(run_dir: str, out: str | None, examples: int, seconds: float) -> None:
    """One self-contained HTML page of a run: counts, LSD/SNR histograms, originals beside their
    reconstructions with spectrograms and audio players."""
    from .report import write_report

    click.echo(f"report: {write_report(run_dir, out, examples, seconds)}")


# `reconstruct list` is `reconstruct models list`; fit and bench live beside their libraries.
main.add_command(models)
main.add_command(list_cmd, "list")
main.add_command(bench)
main.add_command(fit)

if __name__ == "__main__":
    main()
