"""The published countermeasures hardspoof can start from: one pinned entry each, and how to stage and load them.

An entry names the authors' weights file (pinned by sha256, with its upstream repository, commit, path and
licence), what it was trained on, the input its reference code feeds it, and the result its authors report.
`load(name)` reads the staged file (torch.load with weights_only=True), checks its sha256, maps it into
hardspoof's own modules through its family's `convert` (aasist.py, lcnn.py, rawnetlite.py) and returns a
`Detector` whose logit is the bona fide log-odds (higher = bona fide), with the RunConfig that scores it the
reference's way (crop length, padding).

Staging: `$HARDSPOOF_MODELS/pretrained/<name>/<file>`; `stage(name, source)` copies a local file or a folder
holding it (offline), or downloads the upstream file when online; each by temp file + rename, after the sha256
matched. Nothing is downloaded when loading.
"""
from __future__ import annotations

import difflib
import importlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from manifests import storage
from manifests.errors import UsageError, first_line
from manifests.modelstore import offline, store_dir

PREFIX = "pretrained:"
REPEAT, NO_PAD = "repeat", "none"


@dataclass(frozen=True)
class Entry:
    name: str
    family: str          # module of detector.model.pretrained that maps this architecture's state dicts
    file: str            # the authors' file name, kept as is in the store
    sha256: str          # of that file, byte for byte as the authors committed it
    upstream: str        # owner/repo@commit path (the full commit: raw file URLs need it)
    licence: str
    trained_on: str
    crop: int            # samples per window the reference feeds the model (whole clip: a long window, NO_PAD)
    pad: str             # REPEAT: shorter clips are repeated up to `crop`, as the reference does; NO_PAD: as they are
    input: str           # the reference's input convention, in words
    reported: str        # the authors' own result, with where it is stated

    @property
    def url(self) -> str:
        """The upstream raw file at the pinned commit."""
        repo, rest = self.upstream.split("@", 1)
        commit, path = rest.split(" ", 1)
        return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


_AASIST_INPUT = "raw 16 kHz waveform, first 64,600 samples (4.04 s), repeated when shorter; no normalisation"
_RAWNETLITE_INPUT = ("raw 16 kHz mono: the whole clip (windows of up to 60 s, never padded) goes in; the model "
                     "divides it by its peak and keeps the first 3 s (48,000 samples, zero-padded when shorter)")
ENTRIES = {e.name: e for e in [
    Entry("aasist", "aasist", "AASIST.pth", "51d2d9cf0738172f61e2a384ec50a54a55363240f67c971ed55a92435bc1a1c0",
          "clovaai/aasist@a04c9863f63d44471dde8a6abcb3b082b07cd1d1 models/weights/AASIST.pth", "MIT (NAVER Corp.)", "ASVspoof 2019 LA train",
          64600, REPEAT, _AASIST_INPUT, "0.83 % EER on ASVspoof 2019 LA eval (clovaai/aasist README)"),
    Entry("aasist-l", "aasist", "AASIST-L.pth", "814331d088032bb4c3fa61cc014789eadeed464209dd094ab3a2dd6ffbdce27a",
          "clovaai/aasist@a04c9863f63d44471dde8a6abcb3b082b07cd1d1 models/weights/AASIST-L.pth", "MIT (NAVER Corp.)", "ASVspoof 2019 LA train",
          64600, REPEAT, _AASIST_INPUT, "0.99 % EER on ASVspoof 2019 LA eval (clovaai/aasist README)"),
    Entry("aasist-asvspoof5", "aasist", "best.pth",
          "8f10fe1d1ce3ac62c19f00b86dfaf79f86f464301d23e08726b16b02edbb601c",
          "asvspoof-challenge/asvspoof5@fe23d3053a0889b305d98c9e4cadf418c213d972 Baseline-AASIST/models/weights/AASIST/best.pth", "MIT (NAVER Corp.)",
          "ASVspoof 5 track 1 train", 64600, REPEAT, _AASIST_INPUT,
          "15.2 % EER on ASVspoof 5 dev (asvspoof5 Baseline-AASIST README)"),
    Entry("rawgat-st", "aasist", "RawGAT_ST_mul.pth",
          "8a91ce8201d42119cbfb9ebca8850e5914f1a85959b3ca962819783738c2a9e2",
          "eurecom-asp/RawGAT-ST-antispoofing@e3b049f79b3cd9552e66f6d0ba844cbb9399c479 Pre_trained_models/RawGAT_ST_mul/Best_epoch.pth", "MIT",
          "ASVspoof 2019 LA train", 64600, REPEAT, "raw 16 kHz waveform, first 64,600 samples, repeated when shorter",
          "about 1 % EER on ASVspoof 2019 LA eval (Tak et al., ASVspoof 2021 workshop)"),
    Entry("lfcc-lcnn-lstm", "lcnn", "trained_network.pt",
          "111d4ff1a4ce0e910531f3c6faa6e8f0b43e4c4fd0846bdef304a6222838eb25",
          "nii-yamagishilab/project-NN-Pytorch-scripts@112ec0ff021e58a6c92e945547e7bfb21c11424e project/04-asvspoof2021-toy/"
          "lfcc-lcnn-lstm-sig_toy_example/__pretrained/trained_network.pt", "BSD-3-Clause", "ASVspoof 2019 LA train",
          16000 * 60, NO_PAD, "raw 16 kHz waveform of any length (here: windows of up to 60 s, never padded); "
          "LFCC inside the model", "2.7-3.5 % EER on ASVspoof 2019 LA eval over 6 runs (NII project README)"),
    Entry("rawnetlite", "rawnetlite", "triple_cross_domain_focal_rawnet_lite.pt",
          "6154d91f34f0a49d58e30bac602915f6b6853419419804be63b5274603891a9b",
          "adipiz99/RawNetLite@fcb0fe8d0f40146d110e322c00a0723ba27d5520 models/triple_cross_domain_focal_rawnet_lite.pt", "MIT",
          "FakeOrReal + ASVspoof 2021 + CodecFake", 16000 * 60, NO_PAD, _RAWNETLITE_INPUT,
          "0.25 % EER in-domain (FakeOrReal), 16.4 % out of domain (RawNetLite paper)"),
    Entry("rawnetlite-cross-domain", "rawnetlite", "cross_domain_focal_rawnet_lite.pt",
          "a28249d1b1b38ff6e91af914656adbd84e2b571696789fb418df9f31004e13f7",
          "adipiz99/RawNetLite@fcb0fe8d0f40146d110e322c00a0723ba27d5520 models/cross_domain_focal_rawnet_lite.pt", "MIT",
          "FakeOrReal + ASVspoof 2021", 16000 * 60, NO_PAD, _RAWNETLITE_INPUT,
          "see the RawNetLite paper (cross-domain model)"),
]}


def is_pretrained(spec: str | os.PathLike) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def entry(name: str) -> Entry:
    """The entry called `name` (`pretrained:` prefix allowed); an unknown name lists the choices."""
    name = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if name not in ENTRIES:
        close = difflib.get_close_matches(name, ENTRIES, n=1)
        raise UsageError(f"unknown pretrained model {name!r}{f' (did you mean {close[0]!r}?)' if close else ''}; "
                         f"known: {', '.join(ENTRIES)}")
    return ENTRIES[name]


def family(e: Entry):
    """The module mapping `e`'s architecture (`VARIANTS`, `convert`)."""
    try:
        return importlib.import_module(f"{__package__}.{e.family}")
    except ModuleNotFoundError as err:
        raise UsageError(f"pretrained model {e.name}: its architecture module {e.family!r} is not part of this "
                         f"installation ({first_line(err)})") from None


def staged_path(e: Entry) -> Path:
    return store_dir() / "pretrained" / e.name / e.file


def file_sha256(path: Path) -> str:
    return storage.sha256(str(path))


def _find(e: Entry, source: Path) -> Path:
    """`source` itself, or the file named like the entry's anywhere under a folder."""
    if source.is_file():
        return source
    if source.is_dir():
        found = sorted(p for p in source.rglob(e.file) if p.is_file())
        for p in found:
            if file_sha256(p) == e.sha256:
                return p
        if found:
            return found[0]  # hashed again below, so the mismatch is reported for this file
        raise UsageError(f"--from {source}: no file named {e.file} under it")
    raise UsageError(f"--from {source}: no such file or folder")


def _download(e: Entry, dest: Path) -> None:
    import urllib.request

    try:
        with urllib.request.urlopen(e.url, timeout=60) as r, open(dest, "wb") as fh:
            shutil.copyfileobj(r, fh)
    except OSError as err:
        raise UsageError(f"could not download {e.name} from {e.url}: {first_line(err)}; stage a local copy with "
                         f"`detector models pull {e.name} --from FILE`") from None


def stage(name: str, source: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Copy (or, online and without `source`, download) `name`'s weights into the store, sha256 checked first.
    Nothing is written when the hash differs. Returns the staged path."""
    e = entry(name)
    dest = staged_path(e)
    if dest.is_file() and not force and source is None and file_sha256(dest) == e.sha256:
        return dest
    if source is None and offline():
        raise UsageError(f"{e.name} is not staged and this machine is offline; stage a local copy of {e.file} with "
                         f"`detector models pull {e.name} --from FILE_OR_FOLDER`")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if source is None:
            _download(e, tmp)
            where = e.url
        else:
            src = _find(e, Path(source).expanduser())
            shutil.copyfile(src, tmp)
            where = str(src)
        got = file_sha256(tmp)
        if got != e.sha256:
            raise UsageError(f"{where}: sha256 {got[:16]}... is not {e.name}'s pinned {e.sha256[:16]}... "
                             f"(another file or another version); nothing staged")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def verify(names: list[str]) -> dict[str, list[str]]:
    """{name: problems} for the given (default: every staged) entries; [] = the file matches its pin."""
    chosen = [entry(n) for n in names] if names else [e for e in ENTRIES.values() if staged_path(e).is_file()]
    out = {}
    for e in chosen:
        path = staged_path(e)
        if not path.is_file():
            out[e.name] = [f"not staged ({path})"]
        else:
            got = file_sha256(path)
            out[e.name] = [] if got == e.sha256 else [f"sha256 {got[:16]}... differs from the pin {e.sha256[:16]}..."]
    return out


def read_state(path: Path, what: str) -> dict:
    """The authors' state dict from `path`, refusing anything that is not plain tensors (weights_only)."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UsageError(f"{what} ({path}) holds more than weights (torch refused it with weights_only=True: "
                         f"{first_line(err)[:120]}); load only files you trust, staged by `detector models pull`") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise UsageError(f"{what} ({path}) cannot be read as a torch checkpoint ({first_line(err)[:160]}); "
                         "truncated or not a .pth file") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise UsageError(f"{what} ({path}) is not a state dict (got {type(state).__name__})")
    return state


def model_config(name: str) -> dict:
    """The ModelConfig fields that build entry `name`'s architecture as a hardspoof Detector."""
    e = entry(name)
    return dict(family(e).VARIANTS[e.name])


def run_config(name: str):
    """The RunConfig a pretrained model is scored with: its architecture and the reference's input convention."""
    from ...config import DataConfig, ModelConfig, RunConfig

    e = entry(name)
    return RunConfig(data=DataConfig(crop=e.crop, pad=e.pad), model=ModelConfig(**model_config(name)))


def converted_state(name: str, path: Path | None = None) -> dict:
    """The authors' weights of `name` (its staged file, or `path`), hash-checked and mapped to Detector keys."""
    e = entry(name)
    path = staged_path(e) if path is None else Path(path)
    if not path.is_file():
        raise UsageError(f"pretrained model {e.name} is not staged (looked for {path}); run `detector models pull "
                         f"{e.name}` online, or `detector models pull {e.name} --from FILE_OR_FOLDER` with a copy of {e.file}")
    got = file_sha256(path)
    if got != e.sha256:
        raise UsageError(f"{path}: sha256 {got[:16]}... is not {e.name}'s pinned {e.sha256[:16]}...; "
                         f"re-stage it with `detector models pull {e.name} --from FILE --force`")
    return family(e).convert(e.name, read_state(path, f"pretrained model {e.name}"))


def load_into(model, state: dict, what: str) -> None:
    """Load a converted state dict into `model`, every key and shape exactly (a family's `convert` makes them)."""
    own = model.state_dict()
    bad = sorted(set(own) ^ set(state)) or [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if bad:
        raise UsageError(f"{what}: the converted weights do not fit the model built for it (first mismatch: {bad[0]})")
    model.load_state_dict(state, strict=True)


def load(name: str):
    """(Detector in eval mode on the training device, its RunConfig, meta) for `pretrained:NAME`.

    meta holds the threshold (0: the reference's own decision, bona fide when its bona fide output wins),
    the source and its sha256, so scores and checkpoints say which weights made them."""
    from ...training.distributed import device
    from ..detector import Detector

    e = entry(name)
    cfg = run_config(e.name)
    model = Detector(cfg.model)
    load_into(model, converted_state(e.name), f"pretrained model {e.name}")
    return model.to(device()).eval(), cfg, meta(e.name)


def meta_file(name: str) -> Path:
    """Where `detector calibrate --checkpoint pretrained:NAME` keeps its calibration: beside the staged file."""
    return staged_path(entry(name)).parent / "meta.json"


def meta(name: str) -> dict:
    """A published model's checkpoint meta: threshold 0 (the reference's own decision: bona fide when its bona
    fide output wins), source and sha256, and the calibration a `detector calibrate` stored for it."""
    import json

    e = entry(name)
    base = {"threshold": 0.0, "source": f"{PREFIX}{e.name}", "source_sha256": e.sha256, "upstream": e.upstream,
            "score": "bona fide log-odds of the published model: higher = more likely bona fide"}
    path = meta_file(e.name)
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise UsageError(f"{path}: unreadable calibration of {e.name} ({first_line(err)}); delete it and "
                             "re-run `detector calibrate`") from None
        base["calibration"] = stored.get("calibration")
    return base
