"""`reconstruct list --json` and `reconstruct list --variants`: what other tools (the experiment harness in
`detector`, which never imports `reconstruct`) learn about back-ends and model variants through the CLI."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reconstruct.cli import main


def _list(*args: str):
    return CliRunner().invoke(main, ["list", *args])


def test_list_json_is_every_back_end():
    r = _list("--json")
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert rows["opus"]["method"] == "codec" and rows["opus"]["sample_rate"] == 16000
    assert rows["mel-diffusion"]["offline"] == "bundled"
    assert {"griffinlim", "encodec-24khz", "semanticodec"} <= set(rows)
    only = json.loads(_list("--json", "--method", "vocoder").output)
    assert only and {row["method"] for row in only} == {"vocoder"}


def test_variants_resolve_defaults_params_and_grids_as_run_does():
    r = _list("--variants", "--json", "--method", "diffusion", "--param", "steps=5", "--grid", "gl_iters=4,8")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [row["variant"] for row in rows] == ["mel-diffusion@gl_iters=4,steps=5", "mel-diffusion@gl_iters=8,steps=5"]
    assert rows[0]["model"] == "mel-diffusion" and rows[0]["params"]["steps"] == 5
    plain = json.loads(_list("--variants", "--json", "--model", "opus", "--param", "bitrate_kbps=12.0").output)
    assert [row["variant"] for row in plain] == ["opus@bitrate_kbps=12"]


@pytest.mark.parametrize("args,needle", [
    (["--variants", "--method", "bogus"], "unknown method 'bogus'"),
    (["--variants", "--model", "opus", "--grid", "steps"], "not key=v1,v2"),
    (["--model", "opus"], "go with --variants"),
    (["--method", "bogus"], "choose from codec, vocoder, diffusion"),
])
def test_bad_options_are_one_line_exit_2(args, needle):
    r = _list(*args)
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output, r.output


def test_the_experiment_harness_learns_variants_through_the_cli():
    from detector.experiment.config import Recon
    from detector.experiment.runner import _variants
    from manifests.errors import UsageError

    r = Recon(name="gl", corpus="demo", model="griffinlim", grid=(("n_iter", (4, 16)),))
    assert _variants(r) == {"griffinlim@n_iter=4", "griffinlim@n_iter=16"}
    with pytest.raises(UsageError, match=r"reconstructions.bad: .*no selected model has parameter 'nope'"):
        _variants(Recon(name="bad", corpus="demo", model="opus", params=(("nope", 1),)))
