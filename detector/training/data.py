"""Clips from manifests: label policy, splits, and a Dataset of fixed-length crops.

Labels are integers: 1 = bona fide, 0 = spoof (scores: higher = more likely bona fide).
"""
from __future__ import annotations

import hashlib
import logging
import os
import zlib
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

import manifests
from manifests import storage
from manifests.audio import AudioError, load_audio
from manifests.errors import UsageError
from manifests.io import remote_path_refusal

BONAFIDE, SPOOF = 1, 0
log = logging.getLogger("hardspoof.data")
NEEDED = ("utt_id", "path", "label", "kind", "source_id", "status")


@dataclass(frozen=True)
class Clip:
    utt_id: str
    path: str
    label: int                 # 1 bona fide, 0 spoof (after the label policy)
    kind: str                  # original | reconstruction
    source_id: str             # utt_id of the original this clip derives from
    method: str | None         # reconstruction paradigm, None for originals
    model: str | None          # reconstruction back-end, None for originals
    attack: str                # corpus attack id, '-' for bona fide
    speaker: str | None
    split: str | None


def manifest_hash(path: str | os.PathLike) -> str:
    """sha256 over a manifest's Parquet part files (names + bytes)."""
    h = hashlib.sha256()
    for f in manifests.part_files(path):
        h.update(storage.name(f).encode())
        h.update(storage.read_bytes(f))
    return h.hexdigest()


def _label(row: dict, bonafide_methods: Sequence[str], where: str) -> int:
    if row["kind"] == "reconstruction":
        return BONAFIDE if row.get("method") in bonafide_methods else SPOOF
    if row["label"] not in ("bonafide", "spoof"):
        raise UsageError(f"{where}: row {row['utt_id']} has label {row['label']!r}; allowed: bonafide, spoof")
    return BONAFIDE if row["label"] == "bonafide" else SPOOF


def load_clips(paths: Sequence[str | os.PathLike], bonafide_methods: Sequence[str] = (),
               require_both: bool = True, allow_remote_paths: bool = True) -> list[Clip]:
    """Rows with status == 'ok' of one or more manifests as Clips. Rows `manifests validate` refuses are
    refused here too (`check_content`): the same utt_id under another label, kind or source_id is an error;
    the same utt_id with the same ones is merged (the first manifest's row; counted in a warning).

    Without `allow_remote_paths`, a row of a local manifest whose path is remote (s3://, http://...) is left
    out and counted in a warning (`manifests.io.remote_path_refusal`); eval and score keep such rows and
    refuse them per row instead, so they appear in their TSV.
    Raises UsageError for a content problem, a missing column, or (require_both) when only one class is present.
    """
    check_content(paths)
    clips: dict[str, Clip] = {}
    refused = merged = 0
    for path in paths:
        table = manifests.read(path)
        missing = [c for c in NEEDED if c not in table.column_names]
        if missing:
            raise UsageError(f"manifest {path} lacks column(s) {', '.join(missing)}; re-create it with `manifests import`")
        for row in table.to_pylist():
            if row["status"] != "ok":
                continue
            if row["utt_id"] in clips:  # an identical row of an earlier manifest (check_content refused others)
                merged += 1
                continue
            if remote_path_refusal(row["path"], path, allow_remote_paths):
                refused += 1
                continue
            clips[row["utt_id"]] = Clip(
                utt_id=row["utt_id"], path=row["path"], label=_label(row, bonafide_methods, str(path)),
                kind=row["kind"], source_id=row["source_id"] or row["utt_id"], method=row.get("method"),
                model=row.get("model"), attack=row.get("attack") or "-", speaker=row.get("speaker"),
                split=row.get("split"))
    if merged:
        log.warning("%d utt_id(s) listed again in a later manifest with the same label, kind and source_id: "
                    "merged, the first manifest's row used", merged)
    if refused:
        log.warning("%d clip(s) with a remote path in a local manifest not used (pass --allow-remote-paths "
                    "to read them)", refused)
    out = list(clips.values())
    if not out:
        raise UsageError(f"no rows with status=ok in {', '.join(map(str, paths))}")
    if require_both:
        check_classes(out, "manifest " + ", ".join(map(str, paths)))
    return out


def check_content(paths: Sequence[str | os.PathLike]) -> None:
    """Refuse (UsageError, one line) what `manifests validate` refuses in the rows of `paths`, taken
    together: nulls in required columns, values outside an enumeration, impossible numbers, and an utt_id
    whose rows (in one manifest or across them) disagree on label, kind or source_id (named, with a count).
    Rows that agree are not a problem here (`load_clips` merges and counts them)."""
    from manifests.checks import content_problems

    for path in paths:
        manifests.validate(path, content=False)  # the schema first: an unreadable part is named, not opened
    one = len(paths) == 1
    sources = [(storage.name(f) if one else f"{path}: {storage.name(f)}", storage.readable(f))
               for path in paths for f in manifests.part_files(path)]
    problems = content_problems(sources)
    if problems:
        where = "manifest " + ", ".join(map(str, paths))
        raise UsageError(f"{where} has rows `manifests validate` refuses, {len(problems)} problem(s): "
                         + "; ".join(problems) + " (`manifests validate` lists them too)")


def check_classes(clips: Sequence[Clip], where: str) -> None:
    """UsageError unless `clips` hold both bona fide and spoof."""
    labels = {c.label for c in clips}
    if labels != {BONAFIDE, SPOOF}:
        only = "bonafide" if BONAFIDE in labels else "spoof"
        raise UsageError(f"{where} has only {only} clips ({len(clips)}); training and EER need both "
                         "bonafide and spoof (add the other class, e.g. reconstructions or a second --manifest)")


def assign_splits(clips: Sequence[Clip], dev_fraction: float = 0.2) -> list[Clip]:
    """Give every clip a split: originals keep theirs, or, when none has one, a speaker-disjoint
    hash split; a reconstruction always takes its source's split (no leakage across splits). A
    reconstruction whose source is not among `clips` keeps its own split (or gets the hash split
    when splits are hashed); the trainer counts the ones left without a split."""
    originals = {c.utt_id: c for c in clips if c.kind != "reconstruction"}
    hashed = not any(c.split for c in originals.values())

    def by_speaker(c: Clip) -> str:
        key = c.speaker or c.source_id
        return "dev" if zlib.crc32(key.encode()) % 1000 < dev_fraction * 1000 else "train"

    if hashed:
        originals = {k: replace(c, split=by_speaker(c)) for k, c in originals.items()}
    out = []
    for c in clips:
        if c.kind != "reconstruction":
            out.append(originals[c.utt_id])
            continue
        src = originals.get(c.source_id)
        out.append(replace(c, split=src.split if src else (by_speaker(c) if hashed else c.split)))
    return out


def check_attacks(clips: Sequence[Clip], attacks: Sequence[str]) -> None:
    """UsageError naming the first of `attacks` that no corpus spoof in `clips` has."""
    present = {c.attack for c in clips if c.label == SPOOF and c.kind != "reconstruction"}
    unknown = [a for a in attacks if a not in present]
    if unknown:
        raise UsageError(f"held-out attack {unknown[0]!r} is not in the training manifests; their corpus attacks: "
                         f"{', '.join(sorted(present)) or 'none'}")


def hold_out(clips: Sequence[Clip], attacks: Sequence[str]) -> tuple[list[Clip], int]:
    """(clips without the held-out `attacks`, how many were dropped): a clip is held out when its attack
    or its source's attack is listed (reconstructions of held-out spoofs go with them).

    Raises UsageError for an attack that no clip has, or when nothing spoofed would be left."""
    if not attacks:
        return list(clips), 0
    check_attacks(clips, attacks)
    held = set(attacks)
    origin = {c.utt_id: c.attack for c in clips if c.kind != "reconstruction"}
    kept = [c for c in clips if c.attack not in held and origin.get(c.source_id) not in held]
    if not any(c.label == SPOOF for c in kept):
        raise UsageError(f"holding out {', '.join(attacks)} leaves no spoof to train on; hold out fewer attacks")
    return kept, len(clips) - len(kept)


def fix_length(wav: np.ndarray, length: int, offset: int = 0) -> np.ndarray:
    """(T,) -> (length,): repeat-pad a short clip, or take the window starting at `offset`."""
    if wav.shape[0] < length:
        wav = np.tile(wav, int(np.ceil(length / max(wav.shape[0], 1))))
        return wav[:length]
    return wav[offset:offset + length]


def windows(wav: np.ndarray, length: int, hop: int | None = None, pad: bool = True) -> np.ndarray:
    """Sliding windows covering a clip: (W, length); one repeat-padded window for a short clip (with
    pad=False the short clip itself, (1, T))."""
    hop = hop or length
    if wav.shape[0] <= length:
        return (fix_length(wav, length) if pad else wav)[None]
    starts = list(range(0, wav.shape[0] - length + 1, hop))
    if starts[-1] + length < wav.shape[0]:
        starts.append(wav.shape[0] - length)  # cover the tail
    return np.stack([wav[s:s + length] for s in starts])


def view_rng(seed: int, epoch: int, source_id: str, view: int | None) -> np.random.Generator:
    """The RNG of one training view: keyed by the clip's *source*, so an original and its own
    reconstructions drawn together (same `view`) get the same crop window and augmentation draw."""
    key = [seed, epoch, zlib.crc32(source_id.encode())]
    return np.random.default_rng(key if view is None else key + [view])


class ClipDataset(Dataset):
    """Fixed-length crops of clips, indexed by a dataset index or an (index, view) pair from
    PairedBatchSampler. Item: dict(wav (crop,) float32, label, index, ok=True), or, when the audio
    cannot be read, dict(wav zeros, label, index, ok=False, error=...) so batches keep their size
    (collate pads it with a readable row and the loss masks it out)."""

    def __init__(self, clips: Sequence[Clip], crop: int, sample_rate: int = 16000, train: bool = False,
                 augment=None, seed: int = 0, random_crop: bool = True):
        self.clips, self.crop, self.sr, self.train, self.augment, self.seed = list(clips), crop, sample_rate, train, augment, seed
        self.random_crop = random_crop  # False: every epoch the first `crop` samples (fixed inputs)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        i, view = item if isinstance(item, tuple) else (item, None)
        clip = self.clips[i]
        try:
            wav, _ = load_audio(clip.path, sr=self.sr)
        except AudioError as e:
            return {"wav": torch.zeros(self.crop), "label": clip.label, "index": i, "ok": False, "error": str(e)}
        rng = view_rng(self.seed, self.epoch, clip.source_id, view)
        # a fraction of the free range, not a sample count, so equal-length clips get equal windows
        u = rng.random()
        offset = int(u * (wav.shape[0] - self.crop + 1)) if self.train and self.random_crop and wav.shape[0] > self.crop else 0
        wav = fix_length(wav, self.crop, offset)
        if self.augment is not None:
            wav = self.augment(wav, rng)
        return {"wav": torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)), "label": clip.label,
                "index": i, "ok": True}


def collate(items: list[dict]) -> dict:
    """Stack every item, readable or not, so the batch keeps its size (DDP ranks all-gather equal
    shapes). An unreadable item's row is a copy of the first readable one, masked out by
    `valid`; unreadable ones are also listed under 'failed' as (index, reason)."""
    valid = torch.tensor([bool(it["ok"]) for it in items])
    good = next((it["wav"] for it in items if it["ok"]), None)
    wav = torch.stack([it["wav"] if it["ok"] or good is None else good for it in items])
    return {"wav": wav, "label": torch.tensor([it["label"] for it in items], dtype=torch.float32),
            "index": torch.tensor([it["index"] for it in items], dtype=torch.long), "valid": valid,
            "failed": [(it["index"], it["error"]) for it in items if not it["ok"]]}


def audio_files(path: str | os.PathLike) -> list[str]:
    """A file, or every usable audio file under a folder (sorted; unusable entries skipped and counted);
    local or a URI."""
    from manifests.corpus import audio_in_folder

    loc = storage.normalize(path)
    return [loc] if storage.kind(loc) == storage.FILE else audio_in_folder(loc)
