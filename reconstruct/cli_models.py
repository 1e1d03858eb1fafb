"""`reconstruct models list|pull|verify` and `reconstruct bench`: thin click shells over `models.py`.

Attach to the main group with `main.add_command(models)` and `main.add_command(bench)`.
"""
from __future__ import annotations

import dataclasses
import json
import sys

import click

from manifests.clitools import Group
from manifests.errors import UsageError


@click.group("models", cls=Group)
def models() -> None:
    """Stage, list and check pretrained weights in the local model store (HARDSPOOF_MODELS)."""


@models.command("list")
@click.option("--method", default="", help="Only this paradigm (codec, vocoder, diffusion); with --variants, as "
              "`reconstruct run --method` (comma-separated).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (one object per back-end or variant).")
@click.option("--variants", is_flag=True, help="List the model variants `reconstruct run` would make with the "
              "same --method/--model/--param/--grid/--checkpoint (default models resolved), not the back-ends.")
@click.option("--model", "names", multiple=True, help="With --variants: back-end name (repeatable).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="With --variants: back-end parameter.")
@click.option("--grid", "grid", multiple=True, metavar="KEY=V1,V2,...", help="With --variants: parameter grid.")
@click.option("--checkpoint", type=click.Path(), help="With --variants: weights of the one selected model.")
def list_cmd(method: str, as_json: bool, variants: bool, names: tuple[str, ...], params: tuple[str, ...],
             grid: tuple[str, ...], checkpoint: str | None) -> None:
    """Each back-end: paradigm, sample rate, weights source, and where its weights are offline. With
    --variants: each model variant (name as in utt_ids and audio folders, back-end, paradigm, parameters)."""
    from . import models as M
    from .weights import store_dir

    if variants:
        from manifests.clitools import parse_grid, parse_kv

        rows = M.list_variants(tuple(m.strip() for m in method.split(",") if m.strip()), names, parse_kv(params),
                               checkpoint, dict(parse_grid(grid)))
        for row in rows if not as_json else ():
            click.echo(f"{row['variant']:<40} {row['model']:<24} {row['method']:<10} {json.dumps(row['params'])}")
        if as_json:
            click.echo(json.dumps(rows))
        return
    if (names or params or grid or checkpoint) and not variants:
        raise UsageError("--model, --param, --grid and --checkpoint go with --variants")
    if method and method not in ("codec", "vocoder", "diffusion"):
        raise UsageError(f"--method {method!r}: choose from codec, vocoder, diffusion")
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(m) for m in M.list_models(method or None)]))
        return
    click.echo(f"model store: {store_dir()}")
    click.echo(f"{'model':<24} {'method':<10} {'rate':>6}  {'source':<40} offline")
    for m in M.list_models(method or None):
        click.echo(f"{m.name:<24} {m.method:<10} {m.sample_rate:>6}  {m.source:<40} {m.offline}")


@models.command("pull")
@click.argument("name")
@click.option("--force", is_flag=True, help="Download again even if the store already has it.")
def pull_cmd(name: str, force: bool) -> None:
    """Download NAME's weights into the model store and record their sha256 (online machines)."""
    from . import models as M

    click.echo(f"{name}: {M.pull(name, force=force)}")


@models.command("verify")
@click.argument("names", nargs=-1)
def verify_cmd(names: tuple[str, ...]) -> None:
    """Re-hash staged weights against the record written at pull time; exit 1 on any mismatch."""
    from . import models as M

    results = M.verify(list(names))
    if not results:
        click.echo("no staged models to verify")
    for name, problems in results.items():
        click.echo(f"{name}: {'ok' if not problems else 'FAILED: ' + '; '.join(problems)}")
    if any(results.values()):
        sys.exit(1)


@click.command("bench")
@click.option("--method", type=click.Choice(["codec", "vocoder", "diffusion"]), help="Only this paradigm.")
@click.option("--model", "names", multiple=True, help="Back-end name (repeatable); default: all of --method.")
@click.option("--seconds", type=float, default=4.0, show_default=True, help="Length of the test clip.")
@click.option("--repeats", type=int, default=3, show_default=True, help="Timed runs per back-end (median).")
@click.option("--threads", type=int, help="torch CPU threads (default: torch's).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--json", "json_out", type=click.Path(), help="Also write the rows as JSON here.")
def bench(method: str | None, names: tuple[str, ...], seconds: float, repeats: int, threads: int | None,
          device: str, json_out: str | None) -> None:
    """Real-time factor (processing time / audio time) per back-end on this machine.

    Back-ends without local weights are timed with random weights in the published
    configuration, labelled `random-init` (same speed, meaningless audio).
    """
    from manifests import storage

    from . import models as M

    if json_out:
        storage.check_writable(storage.parent(storage.normalize(json_out)))  # before timing anything
    rows = M.bench(method, list(names), seconds, repeats, threads, device, echo=lambda s: click.echo(s, err=True))
    click.echo(M.format_table(rows))
    if json_out:
        text = json.dumps([dataclasses.asdict(r) for r in rows], indent=1)
        try:
            storage.write_atomic(json_out, lambda fh: fh.write(text.encode()))
        except OSError as e:
            raise UsageError(f"cannot write --json {json_out}: {e.strerror or e}") from None
