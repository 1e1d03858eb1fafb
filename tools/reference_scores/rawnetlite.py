"""Reference scores of the RawNetLite checkpoints on the parity clips, from the UPSTREAM model code.

Imports `RawNetLite.py` and `audio_preprocessor.preprocess_audio` of a checkout of adipiz99/RawNetLite
(@ fcb0fe8), loads a checkpoint into `RawNetLite()` (strict), and in eval mode under no_grad scores each of
`parity_clips()` as its pipeline does: preprocess_audio(clip (1, T), 16000) (mono, no resampling at 16 kHz,
divided by the clip's peak |x|, then the first 48,000 samples or zero-padded at the end), then the model on
(1, 1, 48000). The output is p(fake) = sigmoid(z) (tester.py: label 1 = fake), so bonafide_logit = -z =
log((1 - p) / p), computed from the model's pre-sigmoid fc2 output read with a forward hook (exact even where
p rounds to 0 or 1 in float32).
Writes tests/detector/model/fixtures/pretrained/<name>.json: rawnetlite (triple_cross_domain_focal_rawnet_lite.pt)
or rawnetlite-cross-domain (cross_domain_focal_rawnet_lite.pt), chosen by --name.

Run (the upstream checkout made with the fetch tool's bare mirror; no extra packages were needed):
    git --git-dir=<MIRROR>/adipiz99+RawNetLite/repo archive --prefix=rawnetlite/ fcb0fe8 RawNetLite.py \
        audio_preprocessor.py LICENSE | tar x -C <UP>
    OMP_NUM_THREADS=1 python tools/reference_scores/rawnetlite.py --upstream <UP>/rawnetlite --name rawnetlite \
        --checkpoint <SHARED>/models/rawnetlite/triple_cross_domain_focal_rawnet_lite.pt
    OMP_NUM_THREADS=1 python tools/reference_scores/rawnetlite.py --upstream <UP>/rawnetlite \
        --name rawnetlite-cross-domain --checkpoint <SHARED>/models/rawnetlite/cross_domain_focal_rawnet_lite.pt
    OMP_NUM_THREADS=2 python tools/reference_scores/rawnetlite.py --upstream <UP>/rawnetlite --name rawnetlite \
        --checkpoint <SHARED>/models/rawnetlite/triple_cross_domain_focal_rawnet_lite.pt --bench --no-write
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from _fixture import REPO, median_seconds, sha256, write_fixture

COMMIT = "fcb0fe8"
FILES = {"rawnetlite": "models/triple_cross_domain_focal_rawnet_lite.pt",
         "rawnetlite-cross-domain": "models/cross_domain_focal_rawnet_lite.pt"}


def upstream(upstream_dir: Path, checkpoint: Path):
    """(the upstream RawNetLite with the checkpoint loaded, in eval mode; its preprocess_audio)."""
    sys.path.insert(0, str(upstream_dir))
    from RawNetLite import RawNetLite
    from audio_preprocessor import preprocess_audio

    model = RawNetLite()
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True), strict=True)
    return model.eval(), preprocess_audio


def reference_outputs(model, preprocess, clip: torch.Tensor) -> tuple[float, float]:
    """clip (T,) float32 -> (p(fake) as the model outputs it, its pre-sigmoid logit z)."""
    seen = {}
    hook = model.fc2.register_forward_hook(lambda mod, inp, out: seen.update(z=out))
    try:
        p = model(preprocess(clip[None], 16000)[None])            # (1, 1, 48000) -> (1, 1)
    finally:
        hook.remove()
    return float(p[0, 0]), float(seen["z"][0, 0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", type=Path, required=True, help="checkout of adipiz99/RawNetLite @ fcb0fe8")
    ap.add_argument("--checkpoint", type=Path, required=True, help="the .pt file of --name")
    ap.add_argument("--name", choices=sorted(FILES), required=True)
    ap.add_argument("--out", type=Path, help="fixture path [tests/detector/model/fixtures/pretrained/NAME.json]")
    ap.add_argument("--bench", action="store_true", help="also time reference vs hardspoof on a 4 s clip, 2 threads")
    ap.add_argument("--no-write", action="store_true", help="do not write the fixture")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from detector.model.pretrained.parity import parity_clips

    torch.set_num_threads(1)
    model, preprocess = upstream(args.upstream, args.checkpoint)
    with torch.no_grad():
        pairs = [reference_outputs(model, preprocess, torch.from_numpy(c)) for c in parity_clips()]
    record = {"upstream": f"adipiz99/RawNetLite@{COMMIT} RawNetLite.py {FILES[args.name]}",
              "checkpoint_sha256": sha256(args.checkpoint),
              "input": "parity_clips() through audio_preprocessor.preprocess_audio(clip (1, T), 16000): divided by "
                       "the whole clip's peak, first 48,000 samples or zero-padded at the end; model input "
                       "(1, 1, 48000), eval mode; outputs = [p_fake, z] with p_fake = sigmoid(z) (z = fc2 output)",
              "outputs": [[p, z] for p, z in pairs], "bonafide_logit": [-z for _, z in pairs]}
    if not args.no_write:
        print("wrote", write_fixture(args.name, record, args.out))
    print("p_fake", [round(p, 6) for p, _ in pairs])
    print("bonafide_logit", [round(-z, 6) for _, z in pairs])
    if args.bench:
        bench(args.name, model, preprocess, args.checkpoint)


def bench(name: str, model, preprocess, checkpoint: Path) -> None:
    """Median seconds per 4 s clip (64,000 samples), reference (preprocess + model) vs hardspoof, 2 threads."""
    from detector.config import ModelConfig
    from detector.model.detector import Detector
    from detector.model.pretrained import rawnetlite
    from detector.model.pretrained.parity import parity_clips

    torch.set_num_threads(2)
    ours = Detector(ModelConfig(**rawnetlite.VARIANTS[name]))
    ours.load_state_dict(rawnetlite.convert(name, torch.load(checkpoint, map_location="cpu", weights_only=True)))
    ours.eval()
    clip = torch.from_numpy(parity_clips((64_000,))[0])
    with torch.no_grad():
        t = median_seconds({"reference": lambda: model(preprocess(clip[None], 16000)[None]),
                            "hardspoof": lambda: ours.score(clip[None])}, repeats=20)
    print(f"bench {name}: median s per 4 s clip at 2 threads: reference {t['reference']:.4f}, "
          f"hardspoof {t['hardspoof']:.4f} (20 interleaved rounds)")


if __name__ == "__main__":
    main()
