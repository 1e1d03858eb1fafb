"""`manifests`: import a corpus, validate a manifest, count what is in it, export it for other tools."""
from __future__ import annotations

import collections

import click

from .clitools import Group


@click.group(cls=Group)
def main() -> None:
    """Work with hardspoof manifests (Parquet, schema v1)."""


@main.command("import")
@click.option("--corpus", required=True, help="'demo', a folder of audio, a CSV/TSV/Parquet (path,label), or an ASVspoof "
              "protocol; local, or an s3:// / gs:// URI.")
@click.option("--audio-dir", type=click.Path(), help="Audio folder of an ASVspoof protocol corpus.")
@click.option("--out", required=True, help="Manifest file to write (.parquet; local, or an s3:// / gs:// URI).")
@click.option("--allow-outside-root", is_flag=True, help="Accept table paths outside the corpus folder.")
def import_(corpus: str, audio_dir: str | None, out: str, allow_outside_root: bool) -> None:
    """Corpus -> a manifest of originals only."""
    from . import storage
    from .corpus import import_chunks
    from .io import write_chunks
    from .errors import UsageError
    from .listing import driver_allocator

    driver_allocator()

    if storage.suffix(out) != ".parquet":
        raise UsageError(f"--out {out}: a manifest is a Parquet file; give a name ending in .parquet")
    storage.check_writable(storage.parent(storage.normalize(out)))  # before reading the corpus

    n, failed = write_chunks(import_chunks(corpus, audio_dir, allow_outside_root), out)
    click.echo(f"{n} clips ({failed} unreadable) -> {out}")


@main.command()
@click.option("--format", "fmt", required=True, type=click.Choice(["hf", "lhotse"]),
              help="hf: a Hugging Face datasets folder (data/<split>-NNNNN-of-NNNNN.parquet, audio embedded); "
                   "lhotse: recordings, supervisions and cuts .jsonl.gz per split.")
@click.option("--manifest", required=True, help="Manifest to export (a .parquet file or a folder of parts; local or a URI).")
@click.option("--out", required=True, help="Folder to write (local; new or empty unless --overwrite).")
@click.option("--max-shard-size", default="500MB", show_default=True,
              help="hf: largest shard, uncompressed, as datasets counts it (500MB, 64MiB, or bytes).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier export in --out (only the files an export writes).")
@click.option("--allow-remote-paths", is_flag=True,
              help="Read s3:// / gs:// / http:// clip paths listed in a local manifest (left out otherwise).")
def export(fmt: str, manifest: str, out: str, max_shard_size: str, overwrite: bool, allow_remote_paths: bool) -> None:
    """A manifest -> a folder other tools read as it is: `datasets.load_dataset(OUT)` (hf) or
    `lhotse.CutSet.from_file(OUT/hardspoof_cuts_train.jsonl.gz)` (lhotse). Only ok rows; audio bytes as they are."""
    from .export_hf import parse_size
    from .exports import export as run

    options = {"max_shard_bytes": parse_size(max_shard_size)} if fmt == "hf" else {}
    r = run(manifest, out, fmt, overwrite=overwrite, allow_remote_paths=allow_remote_paths, **options)
    click.echo(f"{sum(r['splits'].values())} clips ({', '.join(f'{s} {n}' for s, n in r['splits'].items())}) -> {r['out']}")
    if r["skipped"]:
        click.echo(f"{len(r['skipped'])} clip(s) left out, e.g. {next(iter(r['skipped'].items()))}", err=True)


@main.command()
@click.argument("manifest")
@click.option("--schema-only", is_flag=True, help="Check the Parquet metadata only (fast; no rows read).")
def validate(manifest: str, schema_only: bool) -> None:
    """Check a manifest's schema and rows (duplicates across parts, enums, nulls, ranges); exit 2 naming
    every problem with a count."""
    from . import validate as check

    n = check(manifest, content=not schema_only)
    click.echo(f"ok: {n} rows, schema v1{' (schema only)' if schema_only else ''}")


@main.command()
@click.argument("manifest")
def stats(manifest: str) -> None:
    """Counts per split, label, kind and method/model, and hours of audio."""
    from . import read

    table = read(manifest, columns=["split", "label", "kind", "model", "status", "duration_s"])
    counts: dict = collections.Counter()
    hours: dict = collections.Counter()
    for r in table.to_pylist():
        key = (r["split"] or "-", r["label"], r["kind"], r["model"] or "-", r["status"])
        counts[key] += 1
        hours[key] += (r["duration_s"] or 0) / 3600
    click.echo(f"{'split':<6} {'label':<9} {'kind':<15} {'model':<22} {'status':<7} {'clips':>6} {'hours':>7}")
    for key in sorted(counts):
        click.echo(f"{key[0]:<6} {key[1]:<9} {key[2]:<15} {key[3]:<22} {key[4]:<7} {counts[key]:>6} {hours[key]:>7.3f}")


@main.command()
@click.option("--manifest", required=True, help="Candidates: a manifest with reconstructions (e.g. a `--grid` run).")
@click.option("--scores", help="`detector score --input MANIFEST` of those candidates (joined by utt_id); "
              "optional with --random (hardness is then recorded only if given).")
@click.option("--keep", type=float, required=True, help="Share of each group's reconstructions to keep, in (0, 1].")
@click.option("--per", type=click.Choice(["source", "model"]), default="source", show_default=True,
              help="Group: each original's reconstructions, or each model variant's.")
@click.option("--out", required=True, help="Mined manifest to write (.parquet): every other row, the kept reconstructions.")
@click.option("--random", "random_", is_flag=True, help="The control: as many per group, drawn at random (--seed).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --random.")
def mine(manifest: str, scores: str | None, keep: float, per: str, out: str, random_: bool, seed: int) -> None:
    """Keep the hardest reconstructions: those a detector scores most bona fide (hardness = its bona fide logit),
    or as many at random (--random). Scores that do not join the manifest are exit 2."""
    from .mine import mine as run

    r = run(manifest, scores, keep, per, out, random=random_, seed=seed)
    how = f"random (seed {seed})" if random_ else "hardest"
    click.echo(f"kept {r['kept']} of {r['candidates']} reconstructions ({how}, {keep:g} per {per}, {r['groups']} groups"
               + (f"; {r['unscored']} unscored left out" if r["unscored"] else "")
               + (f"); mean hardness kept {r['mean_hardness_kept']:.3f} vs all {r['mean_hardness_all']:.3f}"
                  if scores else ")") + f" -> {r['out']}")


if __name__ == "__main__":
    main()
