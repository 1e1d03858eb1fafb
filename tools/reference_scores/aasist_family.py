"""Reference logits of the AASIST family's published checkpoints, computed by their UPSTREAM code.

Imports the authors' model class from a checkout of their repository, loads the checkpoint, runs it in
eval mode on `parity_clips()` (detector/model/pretrained/parity.py), each cut/padded by the upstream
`pad` (first 64,600 samples, tiled when shorter; taken from the upstream file that defines it, whose
other imports are not needed), one clip per batch, float32 on the CPU, and writes
tests/detector/model/fixtures/pretrained/<name>.json:
{"upstream", "checkpoint_sha256", "config", "input", "lengths", "logits": [[out0, out1], ...]}.
The parity tests (tests/detector/model/test_pretrained_aasist.py) compare hardspoof's modules to these.

--bench also times hardspoof's Detector and the upstream model side by side on one 64,600-sample clip
(batch 1, eval, no grad, torch.set_num_threads(2), interleaved, after one warm-up each) and prints the
median seconds per clip of each.

Run as below (what was run for the committed fixtures and the README numbers; MODELS = the shared model
folder, UPSTREAM/<repo> = `git --git-dir=<fetched bare repo> worktree add --detach UPSTREAM/<repo> <commit>`
at clovaai/aasist a04c986, asvspoof-challenge/asvspoof5 fe23d30, eurecom-asp/RawGAT-ST-antispoofing e3b049f,
so the commit is read with git; the benches with `--bench --reps 10 --out /tmp/bench.json` for aasist and
rawgat-st):
    python tools/reference_scores/aasist_family.py --name aasist --upstream UPSTREAM/aasist \
        --checkpoint MODELS/clovaai-aasist/AASIST.pth [--bench]
    python tools/reference_scores/aasist_family.py --name aasist-l --upstream UPSTREAM/aasist \
        --checkpoint MODELS/clovaai-aasist/AASIST-L.pth
    python tools/reference_scores/aasist_family.py --name aasist-asvspoof5 --upstream UPSTREAM/asvspoof5 \
        --checkpoint MODELS/asvspoof5-aasist/best.pth
    python tools/reference_scores/aasist_family.py --name rawgat-st --upstream UPSTREAM/RawGAT-ST-antispoofing \
        --checkpoint MODELS/rawgat-st/RawGAT_ST_mul.pth
"""
from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from _fixture import REPO, median_seconds, sha256  # this folder's shared helpers

sys.path.insert(0, str(REPO))

from detector.model.pretrained.parity import parity_clips  # noqa: E402

# name -> upstream repository, folder of its code, model file + class, config file, file defining `pad`
UPSTREAM = {
    "aasist": ("clovaai/aasist", ".", "models/AASIST.py", "Model", "config/AASIST.conf", "data_utils.py"),
    "aasist-l": ("clovaai/aasist", ".", "models/AASIST.py", "Model", "config/AASIST-L.conf", "data_utils.py"),
    "aasist-asvspoof5": ("asvspoof-challenge/asvspoof5", "Baseline-AASIST", "models/AASIST.py", "Model",
                         "config/AASIST_ASVspoof5.conf", "data_utils.py"),
    "rawgat-st": ("eurecom-asp/RawGAT-ST-antispoofing", ".", "model.py", "RawGAT_ST", "model_config_RawGAT_ST.yaml",
                  "main.py"),
}


def upstream_function(path: Path, name: str):
    """The top-level function `name` of the Python file `path`, executed alone (with numpy as np)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if node is None:
        sys.exit(f"{path} defines no function {name!r}")
    scope = {"np": np}
    exec(compile(ast.Module([node], type_ignores=[]), str(path), "exec"), scope)
    return scope[name]


def build_reference(name: str, root: Path, checkpoint: Path) -> tuple[torch.nn.Module, dict]:
    """The upstream model of `name` from checkout `root`, in eval mode, holding `checkpoint`; and its config."""
    _, sub, model_file, cls, config_file, _ = UPSTREAM[name]
    code = root / sub
    sys.path.insert(0, str(code))
    module = ".".join(Path(model_file).with_suffix("").parts)
    model_cls = getattr(__import__(module, fromlist=[cls]), cls)
    if config_file.endswith(".yaml"):
        import yaml

        config = yaml.safe_load((code / config_file).read_text(encoding="utf-8"))["model"]
        model = model_cls(config, "cpu")
    else:
        config = json.loads((code / config_file).read_text(encoding="utf-8"))["model_config"]
        model = model_cls(config)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return model.eval(), config


def reference_logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(1, T) -> (1, 2) [out0, out1]; the AASIST classes return (hidden, output), RawGAT-ST the output."""
    out = model(x, Freq_aug=False)
    return out[1] if isinstance(out, tuple) else out


def git_commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        sys.exit(f"--upstream {root} is not a git checkout; pass --commit")


def bench(name: str, reference: torch.nn.Module, checkpoint: Path, clip: np.ndarray, reps: int) -> None:
    """Median seconds per 64,600-sample clip: hardspoof's Detector vs the upstream model, interleaved."""
    from detector.model.pretrained.aasist import load_detector

    torch.set_num_threads(2)
    ours = load_detector(name, torch.load(checkpoint, map_location="cpu", weights_only=True))
    x = torch.from_numpy(clip).unsqueeze(0)
    with torch.no_grad():
        medians = median_seconds({"hardspoof": lambda: ours.score(x),
                                  "reference": lambda: reference_logits(reference, x)}, reps)
    for who, seconds in medians.items():
        print(f"{who}: median {seconds:.3f} s per 4.04 s clip over {reps} runs, torch.set_num_threads(2)")


def to_json(record: dict) -> str:
    """`record` as JSON text, one key per line and one logit pair per line (small, readable diffs)."""
    lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in record.items() if k != "logits"]
    rows = ",\n".join(f"  {json.dumps(r)}" for r in record["logits"])
    return "{\n" + ",\n".join(lines + [f' "logits": [\n{rows}\n ]']) + "\n}\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", required=True, choices=sorted(UPSTREAM))
    ap.add_argument("--upstream", required=True, type=Path, help="checkout of the upstream repository")
    ap.add_argument("--checkpoint", required=True, type=Path, help="the published checkpoint (.pth)")
    ap.add_argument("--commit", help="the checkout's commit, when it is not a git checkout")
    ap.add_argument("--out", type=Path, help="default: tests/detector/model/fixtures/pretrained/<name>.json")
    ap.add_argument("--bench", action="store_true", help="also time hardspoof's forward against the reference's")
    ap.add_argument("--reps", type=int, default=10, help="timed runs per model with --bench")
    args = ap.parse_args()

    torch.set_num_threads(1)
    repo, sub, model_file, _, config_file, pad_file = UPSTREAM[args.name]
    model, config = build_reference(args.name, args.upstream, args.checkpoint)
    pad = upstream_function(args.upstream / sub / pad_file, "pad")
    clips = parity_clips()
    logits = []
    with torch.no_grad():
        for clip in clips:
            x = torch.from_numpy(np.asarray(pad(clip), dtype=np.float32)).unsqueeze(0)  # (1, 64600)
            logits.append([float(v) for v in reference_logits(model, x)[0]])
    commit = args.commit or git_commit(args.upstream)
    record = {
        "upstream": f"{repo}@{commit} {Path(sub, model_file).as_posix()}",
        "checkpoint_sha256": sha256(args.checkpoint),
        "config": f"{Path(sub, config_file).as_posix()}: {json.dumps(config, sort_keys=True)}",
        "input": f"parity_clips() (detector/model/pretrained/parity.py), each through upstream "
                 f"{Path(sub, pad_file).as_posix()} `pad` (first 64,600 samples, tiled when shorter), float32, "
                 f"batch 1, eval mode, CPU, torch {torch.__version__}",
        "lengths": [len(c) for c in clips],
        "logits": logits,
    }
    out = args.out or REPO / "tests/detector/model/fixtures/pretrained" / f"{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_json(record), encoding="utf-8")
    print(f"wrote {out}: out1 - out0 = {[round(b - a, 4) for a, b in logits]}")
    if args.bench:
        bench(args.name, model, args.checkpoint, pad(clips[-1]).astype(np.float32), args.reps)


if __name__ == "__main__":
    main()
