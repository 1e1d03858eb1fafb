"""Reference scores of the NII LFCC-LCNN-LSTM checkpoint on the parity clips, from the UPSTREAM model code.

Imports `project/04-asvspoof2021-toy/lfcc-lcnn-lstm-sig_toy_example/model.py` of a checkout of
nii-yamagishilab/project-NN-Pytorch-scripts (its `sandbox/` and `core_scripts/` on sys.path, as its env.sh
sets), loads the checkpoint into its `Model` (strict), and in eval mode under no_grad runs what
`Model.forward` runs at inference (`_compute_embedding` then `_compute_score(.., inference=True)`; forward
itself only prints the score) on each of `parity_clips()` as a whole clip: float32 waveform (1, T, 1), no
crop, padding or normalisation, as its data loader feeds one file. The output is the bona fide logit
(trained as sigmoid against bona fide = 1), so bonafide_logit = output.
Writes tests/detector/model/fixtures/pretrained/lfcc-lcnn-lstm.json.

Run (the upstream checkout made with the fetch tool's bare mirror; no extra packages were needed):
    git --git-dir=<MIRROR>/nii-yamagishilab+project-NN-Pytorch-scripts/repo archive --prefix=nii/ 112ec0f | tar x -C <UP>
    OMP_NUM_THREADS=1 python tools/reference_scores/nii_lcnn.py --upstream <UP>/nii \
        --checkpoint <SHARED>/models/nii-lfcc-lcnn-lstm/trained_network.pt
    OMP_NUM_THREADS=2 python tools/reference_scores/nii_lcnn.py --upstream <UP>/nii \
        --checkpoint <SHARED>/models/nii-lfcc-lcnn-lstm/trained_network.pt --bench --no-write
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

from _fixture import REPO, median_seconds, sha256, write_fixture

NAME = "lfcc-lcnn-lstm"
COMMIT = "112ec0f"
MODEL_PY = "project/04-asvspoof2021-toy/lfcc-lcnn-lstm-sig_toy_example/model.py"


def upstream_model(upstream: Path, checkpoint: Path) -> torch.nn.Module:
    """The upstream `Model` with the checkpoint loaded (strict), in eval mode."""
    sys.path.insert(0, str(upstream))
    spec = importlib.util.spec_from_file_location("nii_toy_model", upstream / MODEL_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Skip loading protocol file" (none needed)
        model = module.Model(1, 1, None, SimpleNamespace(optional_argument=[""]))
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


def reference_score(model: torch.nn.Module, clip: torch.Tensor) -> float:
    """clip (T,) float32 -> the reference's inference score (what its forward prints)."""
    x = clip[None, :, None]                                    # (1, T, 1) as its data loader gives it
    emb = model._compute_embedding(x, [clip.shape[0]])
    return float(model._compute_score(emb, True)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", type=Path, required=True, help="checkout of project-NN-Pytorch-scripts @ 112ec0f")
    ap.add_argument("--checkpoint", type=Path, required=True, help="trained_network.pt")
    ap.add_argument("--out", type=Path, help="fixture path [tests/detector/model/fixtures/pretrained/NAME.json]")
    ap.add_argument("--bench", action="store_true", help="also time reference vs hardspoof on a 4 s clip, 2 threads")
    ap.add_argument("--no-write", action="store_true", help="do not write the fixture")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from detector.model.pretrained.parity import parity_clips

    torch.set_num_threads(1)
    model = upstream_model(args.upstream, args.checkpoint)
    with torch.no_grad():
        outputs = [reference_score(model, torch.from_numpy(c)) for c in parity_clips()]
    record = {"upstream": f"nii-yamagishilab/project-NN-Pytorch-scripts@{COMMIT} {MODEL_PY}",
              "checkpoint_sha256": sha256(args.checkpoint),
              "input": "parity_clips() as whole clips: float32 16 kHz waveform (1, T, 1), no crop, no padding, "
                       "no normalisation; eval mode; output = _compute_score(_compute_embedding(x), inference=True)",
              "outputs": outputs, "bonafide_logit": outputs}
    if not args.no_write:
        print("wrote", write_fixture(NAME, record, args.out))
    print("outputs", [round(o, 6) for o in outputs])
    if args.bench:
        bench(model, args.checkpoint)


def bench(model: torch.nn.Module, checkpoint: Path) -> None:
    """Median seconds per 4 s clip (64,000 samples), reference vs hardspoof, torch.set_num_threads(2)."""
    from detector.config import ModelConfig
    from detector.model.detector import Detector
    from detector.model.pretrained import lcnn
    from detector.model.pretrained.parity import parity_clips

    torch.set_num_threads(2)
    ours = Detector(ModelConfig(**lcnn.VARIANTS[NAME]))
    ours.load_state_dict(lcnn.convert(NAME, torch.load(checkpoint, map_location="cpu", weights_only=True)))
    ours.eval()
    clip = torch.from_numpy(parity_clips((64_000,))[0])
    with torch.no_grad():
        t = median_seconds({"reference": lambda: reference_score(model, clip),
                            "hardspoof": lambda: ours.score(clip[None])}, repeats=20)
    print(f"bench {NAME}: median s per 4 s clip at 2 threads: reference {t['reference']:.4f}, "
          f"hardspoof {t['hardspoof']:.4f} (20 interleaved rounds)")


if __name__ == "__main__":
    main()
