"""`detector models list|pull|verify`: the published countermeasures (model/pretrained/registry.py).

Attach to the main group with `main.add_command(models)`.
"""
from __future__ import annotations

import sys

import click

from manifests.clitools import Group


class CheckpointPath(click.Path):
    """A checkpoint argument: an existing path (run folder, checkpoint folder, .onnx file), or
    `pretrained:NAME` for a published countermeasure staged by `detector models pull`."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.startswith("pretrained:"):
            return value
        return super().convert(value, param, ctx)


@click.group("models", cls=Group)
def models() -> None:
    """Published anti-spoofing countermeasures: list them, stage their weights (HARDSPOOF_MODELS), check them.

    A staged model scores with `--checkpoint pretrained:NAME` (detector score / eval / export / calibrate) and
    starts a training with `detector train --init pretrained:NAME`."""


@models.command("list")
@click.option("--verbose", "-v", is_flag=True, help="Also licence, upstream file and input convention.")
def list_cmd(verbose: bool) -> None:
    """Each model: architecture, training data, reported result, and whether it is staged here."""
    from .model.pretrained import registry as R

    click.echo(f"model store: {R.store_dir() / 'pretrained'}")
    for e in R.ENTRIES.values():
        staged = "staged" if R.staged_path(e).is_file() else "not staged"
        click.echo(f"{e.name:<24} {e.family:<11} {staged:<11} trained on {e.trained_on}; reported {e.reported}")
        if verbose:
            click.echo(f"{'':<24} licence {e.licence}; {e.upstream} (sha256 {e.sha256[:12]}...)")
            click.echo(f"{'':<24} input: {e.input}")


@models.command("pull")
@click.argument("name")
@click.option("--from", "source", type=click.Path(), help="A local copy of the authors' file, or a folder holding "
              "it (offline staging); default: download the upstream file (online machines).")
@click.option("--force", is_flag=True, help="Stage again even if the store already has a matching file.")
def pull_cmd(name: str, source: str | None, force: bool) -> None:
    """Stage NAME's weights into the model store; the file must match its pinned sha256."""
    from .model.pretrained import registry as R

    path = R.stage(name, source, force)
    click.echo(f"{R.entry(name).name}: {path} (sha256 ok)")


@models.command("verify")
@click.argument("names", nargs=-1)
def verify_cmd(names: tuple[str, ...]) -> None:
    """Re-hash staged files against their pins (default: every staged one); exit 1 on any mismatch."""
    from .model.pretrained import registry as R

    results = R.verify(list(names))
    if not results:
        click.echo("no pretrained model is staged")
    for name, problems in results.items():
        click.echo(f"{name}: {'ok' if not problems else 'FAILED: ' + '; '.join(problems)}")
    if any(results.values()):
        sys.exit(1)
