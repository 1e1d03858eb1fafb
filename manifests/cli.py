"""`manifests`: import a corpus, validate a manifest, count what is in it."""
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
    from . import storage, write
    from .corpus import import_corpus
    from .errors import UsageError

    if storage.suffix(out) != ".parquet":
        raise UsageError(f"--out {out}: a manifest is a Parquet file; give a name ending in .parquet")
    storage.check_writable(storage.parent(storage.normalize(out)))  # before reading the corpus

    rows = import_corpus(corpus, audio_dir, allow_outside_root)
    write(rows, out)
    failed = sum(r["status"] != "ok" for r in rows)
    click.echo(f"{len(rows)} clips ({failed} unreadable) -> {out}")


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
