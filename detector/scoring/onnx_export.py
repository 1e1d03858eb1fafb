"""A trained detector as one ONNX file, and an onnxruntime scorer that stands in for the PyTorch model.

`export_onnx(ckpt, out)` writes `model.onnx`: input `wav` (batch, samples) float32 in [-1, 1] at the
checkpoint's rate; outputs `logit` (batch,), the bona fide logit (higher = more likely bona fide), and
`layer_weights` (batch, layers). It uses torch.onnx's default (dynamo) exporter, which needs onnxscript,
at opset 18, with every weight inside the file (a frozen XLS-R included; protobuf's 2 GB limit allows it).

The batch axis is always dynamic. The length axis is dynamic where the model allows it, and that is
checked, not assumed: the exported graph is run against PyTorch at the crop length and at five others
(one sample more, a hop less, longer, twice, half), and when the export fails or another length disagrees
(seen with AASIST back-ends, whose graph pooling sizes and ceil-mode pooling depend on the frame count;
ge2e's STFT has no symbolic-length translation) the model is exported again with its length fixed at the
crop. Scoring feeds crop-length windows only (see `scoring`), so a fixed length loses nothing there.

What scoring needs travels in the model's metadata_props, so `detector score --checkpoint model.onnx`
needs no other file: `hardspoof.config` (the checkpoint's config.json), `hardspoof.meta` (its meta.json:
threshold, calibration), `hardspoof.length_axis` (dynamic | fixed), `hardspoof.crop`, `hardspoof.sample_rate`.
"""
from __future__ import annotations

import json
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from manifests import outfile
from manifests.errors import UsageError, first_line

from .. import checkpoint
from ..config import RunConfig

FORMAT = "hardspoof-detector-onnx/1"
OPSET = 18
TOLERANCE = 1e-4  # max |logit difference| to PyTorch that an export must meet
INSTALL = 'ONNX export and scoring need onnx, onnxscript and onnxruntime: pip install "hardspoof[onnx]"'


def require(module: str):
    """Import an optional ONNX package or raise a UsageError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(INSTALL) from None


class _Scores(torch.nn.Module):
    """The detector with only what scoring reads: (logit (B,), layer_weights (B, L))."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(wav)
        return out.logit, out.layer_weights


class _NoTorchvisionNotice(logging.Filter):
    """torch.onnx's op registry says, per torchvision op, that torchvision is missing and the op skipped: a
    detector has no torchvision ops, so that concerns no export of ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("torchvision is not installed")


# the logger torch.onnx's registry warns through (torch/onnx/_internal/exporter/_registration.py)
logging.getLogger("torch.onnx._internal.exporter._registration").addFilter(_NoTorchvisionNotice())


def _export(module: torch.nn.Module, example: torch.Tensor, dynamic_length: bool, min_length: int):
    batch = torch.export.Dim("batch", min=1, max=4096)
    axes = {0: batch, 1: torch.export.Dim("samples", min=min_length, max=1 << 26)} if dynamic_length else {0: batch}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.onnx.export(module, (example,), dynamo=True, dynamic_shapes={"wav": axes}, verbose=False,
                                 input_names=["wav"], output_names=["logit", "layer_weights"], opset_version=OPSET,
                                 external_data=False, optimize=True)


def _max_diff(program, module: torch.nn.Module, inputs: list[torch.Tensor]) -> float:
    """max |logit difference| between the exported program (run by onnxruntime) and PyTorch over `inputs`."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 4  # a candidate that fails is reported by export_model, not as onnxruntime's own error line
    session = ort.InferenceSession(program.model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    worst = 0.0
    for x in inputs:
        with torch.no_grad():
            ref = module(x)[0].double().numpy()
        got = session.run(["logit"], {"wav": x.numpy()})[0]
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def export_onnx(ckpt: str | os.PathLike, out: str | os.PathLike, tolerance: float = TOLERANCE) -> dict:
    """Export the checkpoint (run or final/ folder) to `out` (.onnx); see `export_model`."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise UsageError(f"--out {out}: give a file name ending in .onnx")
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name such as model.onnx")
    outfile.out_folder(out)  # before any work: only its last folder level is created
    with outfile.output_lock(out):  # also finds an unwritable folder (/proc/x.onnx)
        model, cfg, meta = checkpoint.load(ckpt)
        return export_model(model, cfg, meta, out, tolerance)


def export_model(model: torch.nn.Module, cfg: RunConfig, meta: dict[str, Any], out: str | os.PathLike,
                 tolerance: float = TOLERANCE) -> dict:
    """Export a Detector to `out`. Returns {out, length_axis, max_abs_diff, tried}: the length axis kept,
    the largest |logit difference| to PyTorch over the check inputs, and why a dynamic length was given up
    (if it was). Raises UsageError when no export matches PyTorch within `tolerance`."""
    require("onnxscript")
    require("onnx")
    out = Path(out)
    module = _Scores(model.cpu().eval()).eval()
    crop = cfg.data.crop
    gen = torch.Generator().manual_seed(0)
    sample = lambda b, n: 0.1 * torch.randn(b, n, generator=gen)  # noqa: E731
    example = sample(2, crop)
    with torch.no_grad():
        module(example)  # builds lazily cached constants (e.g. ge2e's filterbank) outside the trace
    at_crop = [sample(1, crop), sample(3, crop)]
    shortest = min(crop, 1600)  # of a dynamic length axis (0.1 s: a few front-end frames)
    other = [sample(2, n) for n in (crop + 1, crop - 159, crop + 3217, 2 * crop + 160, crop // 2 + 11) if n >= shortest]
    tried, program, length_axis, diff = [], None, None, float("inf")
    for dynamic in (True, False):
        try:
            candidate = _export(module, example, dynamic, shortest)
        except Exception as e:  # noqa: BLE001 - the exporter raises many types; try the fixed length next
            reason = re.sub(r"\x1b\[[0-9;]*m", "", first_line(e))  # the exporter colours its messages
            tried.append(f"{'dynamic' if dynamic else 'fixed'} length: export failed: {reason}")
            continue
        try:
            diff = _max_diff(candidate, module, at_crop + (other if dynamic else []))
        except Exception as e:  # noqa: BLE001 - e.g. a graph pool's top-k fixed at the traced length: try fixed
            reason = re.sub(r"\x1b\[[0-9;]*m", "", first_line(e))
            tried.append(f"{'dynamic' if dynamic else 'fixed'} length: the exported model fails on other inputs: "
                         f"{reason[:200]}")
            continue
        if diff <= tolerance:
            program, length_axis = candidate, "dynamic" if dynamic else "fixed"
            break
        tried.append(f"{'dynamic' if dynamic else 'fixed'} length: max |logit difference| {diff:.3g} > {tolerance:g}")
    if program is None:
        raise UsageError(f"cannot export front-end {cfg.model.frontend} + {cfg.model.backend} to ONNX: " + "; ".join(tried))
    props = {"hardspoof.format": FORMAT, "hardspoof.config": json.dumps(cfg.to_dict(), sort_keys=True),
             "hardspoof.meta": json.dumps(meta, sort_keys=True), "hardspoof.length_axis": length_axis,
             "hardspoof.crop": str(crop), "hardspoof.sample_rate": str(cfg.data.sample_rate),
             "hardspoof.score": "bona fide logit: higher = more likely bona fide"}
    program.model.metadata_props.update(props)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        program.save(tmp, external_data=False)
        os.replace(tmp, out)
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e.strerror or first_line(e)}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return {"out": str(out), "length_axis": length_axis, "max_abs_diff": diff, "tried": tried}


class OnnxDetector:
    """An exported detector run by onnxruntime: `(wav (B, T) float32) -> (logit (B,), layer_weights (B, L))`,
    what `scoring.score_paths` takes in place of the PyTorch model. `threads`: onnxruntime's intra-op threads
    (default: torch's thread count, so both run alike)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(os.fspath(path), options, providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for unreadable models
            raise UsageError(f"cannot load ONNX model {path}: {first_line(e)}") from None
        props = self.session.get_modelmeta().custom_metadata_map
        if props.get("hardspoof.format") != FORMAT:
            raise UsageError(f"{path} is not a detector exported by `detector export` (no {FORMAT} metadata)")
        self.config = RunConfig.from_dict(json.loads(props["hardspoof.config"]))
        self.meta: dict[str, Any] = json.loads(props.get("hardspoof.meta") or "{}")
        self.length_axis = props.get("hardspoof.length_axis", "fixed")

    def __call__(self, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logit, weights = self.session.run(["logit", "layer_weights"], {"wav": np.ascontiguousarray(wav, np.float32)})
        return logit, weights


def is_onnx(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith(".onnx")


def load(path: str | os.PathLike) -> tuple[OnnxDetector, RunConfig, dict[str, Any]]:
    """(scorer, config, meta) of an exported model, like `checkpoint.load` of a checkpoint folder."""
    if not Path(path).is_file():
        raise UsageError(f"--checkpoint {path}: no such ONNX file")
    scorer = OnnxDetector(path)
    return scorer, scorer.config, scorer.meta


def set_meta(path: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Replace the `hardspoof.meta` of an exported model (e.g. after `detector calibrate`), atomically."""
    onnx = require("onnx")
    path = Path(path)
    model = onnx.load(str(path))
    props = {p.key: p for p in model.metadata_props}
    if props.get("hardspoof.format") is None or props["hardspoof.format"].value != FORMAT:
        raise UsageError(f"{path} is not a detector exported by `detector export`")
    props["hardspoof.meta"].value = json.dumps(meta, sort_keys=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        onnx.save(model, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
