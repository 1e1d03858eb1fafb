"""`reconstruct fit`: train a small reconstruction model on a corpus (thin shell over reconstruct.fit)."""
from __future__ import annotations

import click


@click.command("fit")
@click.option("--method", type=click.Choice(["diffusion"]), required=True,
              help="Paradigm to train: diffusion = the mel-diffusion back-end.")
@click.option("--corpus", required=True, help="Corpus: folder, CSV/TSV/Parquet, protocol file or 'demo'. "
              "Trains on its bona fide clips (train split when it has splits).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Checkpoint folder; re-running with the same folder resumes.")
@click.option("--steps", default=1500, show_default=True, help="Total optimizer steps.")
@click.option("--batch-size", default=16, show_default=True, help="Crops per step.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--seed", default=0, show_default=True, help="Seed for weights, crops and noise.")
@click.option("--checkpoint-every", default=250, show_default=True, help="Steps between checkpoints.")
@click.option("--threads", default=0, show_default=True, help="Torch CPU threads (0 = torch default).")
@click.option("--max-minutes", default=0.0, show_default=True,
              help="Stop and checkpoint after this wall time (0 = no limit); re-run to continue.")
def fit(method: str, corpus: str, out: str, steps: int, batch_size: int, device: str, seed: int,
        checkpoint_every: int, threads: int, max_minutes: float) -> None:
    """Train mel-diffusion on a corpus; `reconstruct run --model mel-diffusion --checkpoint OUT` uses it."""
    from manifests.errors import UsageError

    from .fit import FitConfig, fit_mel_diffusion

    cfg = FitConfig(corpus=corpus, out=out, steps=steps, batch_size=batch_size, device=device, seed=seed,
                    checkpoint_every=checkpoint_every, threads=threads, max_minutes=max_minutes)
    try:
        prov = fit_mel_diffusion(cfg)
    except UsageError as e:
        raise click.UsageError(str(e)) from None
    click.echo(f"{out}: {prov['steps']} steps on {prov['n_clips']} clips ({prov['audio_s']} s), "
               f"{prov['wall_time_s']} s, weights sha256 {prov['weights_sha256'][:12]}")


if __name__ == "__main__":
    fit()
