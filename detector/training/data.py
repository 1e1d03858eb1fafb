"""Clips from manifests: label policy, splits, and a Dataset of fixed-length crops.

Labels are integers: 1 = bona fide, 0 = spoof (scores: higher = more likely bona fide).
"""
from __future__ import annotations

import hashlib
import logging
import os
import zlib
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import Dataset

import manifests
from manifests import storage
from manifests.audio import AudioError, load_audio
from manifests.errors import UsageError
from manifests.listing import release_unused

from .clips import Clip, Clips, check_content  # noqa: F401 - check_content: importable from here too

BONAFIDE, SPOOF = 1, 0
log = logging.getLogger("hardspoof.data")
NEEDED = ("utt_id", "path", "label", "kind", "source_id", "status")
_READ = (*NEEDED, "method", "model", "attack", "speaker", "split")
_REMOTE = r"^[a-zA-Z][a-zA-Z0-9+.-]*://"  # storage.is_uri, as a column operation (file:// is local)


def manifest_hash(path: str | os.PathLike) -> str:
    """sha256 over a manifest's Parquet part files (names + bytes)."""
    h = hashlib.sha256()
    for f in manifests.part_files(path):
        h.update(storage.name(f).encode())
        h.update(storage.read_bytes(f))
    return h.hexdigest()


def _labelled(table: pa.Table, bonafide_methods: Sequence[str], where: str) -> pa.Table:
    """The label policy on a manifest's rows: a reconstruction is bona fide when its method is listed, an
    original keeps its label; the `label` column becomes int8 (1 bona fide, 0 spoof)."""
    recon = pc.equal(table["kind"], "reconstruction")
    listed = pc.fill_null(pc.is_in(table["method"], value_set=pa.array(list(bonafide_methods), pa.string())), False)
    bad = pc.and_(pc.invert(recon), pc.invert(pc.is_in(table["label"], value_set=pa.array(["bonafide", "spoof"]))))
    if pc.any(bad).as_py():
        row = table.filter(bad).slice(0, 1).to_pylist()[0]
        raise UsageError(f"{where}: row {row['utt_id']} has label {row['label']!r}; allowed: bonafide, spoof")
    label = pc.if_else(recon, listed, pc.equal(table["label"], "bonafide")).cast(pa.int8())
    return table.set_column(table.schema.get_field_index("label"), "label", label)


def load_clips(paths: Sequence[str | os.PathLike], bonafide_methods: Sequence[str] = (),
               require_both: bool = True, allow_remote_paths: bool = True) -> Clips:
    """Rows with status == 'ok' of one or more manifests as Clips (a table of columns, see `clips.Clips`).
    Rows `manifests validate` refuses are refused here too (`check_content`): the same utt_id under another
    label, kind or source_id is an error; the same utt_id with the same ones is merged (the first manifest's
    row; counted in a warning).

    Without `allow_remote_paths`, a row of a local manifest whose path is remote (s3://, http://...) is left
    out and counted in a warning (`manifests.io.remote_path_refusal`); eval and score keep such rows and
    refuse them per row instead, so they appear in their TSV.
    Raises UsageError for a content problem, a missing column, or (require_both) when only one class is present.
    """
    check_content(paths)
    parts: list[pa.Table] = []
    refused = merged = 0
    for path in paths:
        table = manifests.read(path, columns=list(_READ))
        missing = [c for c in NEEDED if c not in table.column_names]
        if missing:
            raise UsageError(f"manifest {path} lacks column(s) {', '.join(missing)}; re-create it with `manifests import`")
        ok = pc.equal(table["status"], "ok")
        if not pc.all(ok).as_py():  # a filter copies every column: only when there is a row to drop
            table = table.filter(ok)
        del ok
        if not allow_remote_paths and not storage.is_uri(storage.normalize(path)):
            remote = pc.and_(pc.match_substring_regex(table["path"], _REMOTE),
                             pc.invert(pc.match_substring_regex(table["path"], "^[fF][iI][lL][eE]://")))
            n_remote = pc.sum(remote.cast(pa.int64())).as_py() or 0
            if n_remote:
                refused += n_remote
                table = table.filter(pc.invert(remote))
            del remote
        if parts:  # an identical row of an earlier manifest (check_content refused others)
            again = pc.is_in(table["utt_id"], value_set=pa.concat_arrays([p["utt_id"].combine_chunks() for p in parts]))
            merged += pc.sum(again.cast(pa.int64())).as_py() or 0
            table = table.filter(pc.invert(again))
        source = pc.if_else(pc.fill_null(pc.not_equal(table["source_id"], ""), False), table["source_id"],
                            table["utt_id"])
        attack = pc.if_else(pc.fill_null(pc.not_equal(table["attack"], ""), False), table["attack"], "-")
        table = _labelled(table, bonafide_methods, str(path))
        parts.append(table.set_column(table.schema.get_field_index("source_id"), "source_id", source)
                     .set_column(table.schema.get_field_index("attack"), "attack", attack))
    if merged:
        log.warning("%d utt_id(s) listed again in a later manifest with the same label, kind and source_id: "
                    "merged, the first manifest's row used", merged)
    if refused:
        log.warning("%d clip(s) with a remote path in a local manifest not used (pass --allow-remote-paths "
                    "to read them)", refused)
    out = Clips(pa.concat_tables(parts))
    del parts, table, source, attack
    release_unused()  # the full-width tables read are gone: hand their memory back
    if not len(out):
        raise UsageError(f"no rows with status=ok in {', '.join(map(str, paths))}")
    if require_both:
        check_classes(out, "manifest " + ", ".join(map(str, paths)))
    return out


def check_classes(clips: Sequence[Clip] | Clips, where: str) -> None:
    """UsageError unless `clips` hold both bona fide and spoof."""
    labels = set(np.unique(Clips.of(clips).labels()).tolist())
    if labels != {BONAFIDE, SPOOF}:
        only = "bonafide" if BONAFIDE in labels else "spoof"
        raise UsageError(f"{where} has only {only} clips ({len(clips)}); training and EER need both "
                         "bonafide and spoof (add the other class, e.g. reconstructions or a second --manifest)")


def _by_speaker(clips: Clips, rows: np.ndarray, dev_fraction: float) -> np.ndarray:
    """The speaker-disjoint hash split of `rows` as (len(rows),) bool, True for dev: crc32 of the speaker, or of
    the source_id where there is none, one crc32 per distinct key."""
    speaker = clips.strings("speaker").take(pa.array(rows))
    key = pc.if_else(pc.fill_null(pc.not_equal(speaker, ""), False), speaker,
                     clips.column("source_id").take(pa.array(rows)))
    codes = key.dictionary_encode()
    dev = np.array([zlib.crc32(k.encode()) % 1000 < dev_fraction * 1000 for k in codes.dictionary.to_pylist()], bool)
    return dev[codes.indices.to_numpy(zero_copy_only=False)] if len(rows) else np.zeros(0, bool)


def assign_splits(clips: Sequence[Clip] | Clips, dev_fraction: float = 0.2) -> Clips:
    """Give every clip a split: originals keep theirs, or, when none has one, a speaker-disjoint
    hash split; a reconstruction always takes its source's split (no leakage across splits). A
    reconstruction whose source is not among `clips` keeps its own split (or gets the hash split
    when splits are hashed); the trainer counts the ones left without a split.

    Works on the split column's dictionary codes (-1 for none), not a Python string per clip."""
    clips = Clips.of(clips)
    recon = clips.is_reconstruction()
    col = clips.column("split")
    if not pa.types.is_dictionary(col.type):
        col = col.dictionary_encode()
    words = list(dict.fromkeys([w for w in col.dictionary.to_pylist() if w is not None] + ["train", "dev"]))
    to_word = np.array([-1 if w is None else words.index(w) for w in col.dictionary.to_pylist()] + [-1], np.int64)
    split = to_word[pc.fill_null(col.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)]  # -1: null
    truthy = np.array([bool(w) for w in words] + [False])  # None and "" count as none
    hashed = not truthy[split[~recon]].any()
    train, dev = words.index("train"), words.index("dev")
    if hashed:
        split[~recon] = np.where(_by_speaker(clips, np.flatnonzero(~recon), dev_fraction), dev, train)
    source = clips.positions_of_sources(~recon)
    has_source = recon & (source >= 0)
    split[has_source] = split[source[has_source]]
    orphans = recon & (source < 0)
    if hashed and orphans.any():
        split[orphans] = np.where(_by_speaker(clips, np.flatnonzero(orphans), dev_fraction), dev, train)
    values = pa.DictionaryArray.from_arrays(pa.array(split.astype(np.int32), mask=split < 0),
                                            pa.array(words, pa.string())).dictionary_decode()
    return clips.with_column("split", values)


def check_attacks(clips: Sequence[Clip] | Clips, attacks: Sequence[str]) -> None:
    """UsageError naming the first of `attacks` that no corpus spoof in `clips` has."""
    clips = Clips.of(clips)
    spoof_originals = (clips.labels() == SPOOF) & ~clips.is_reconstruction()
    present = set(pc.unique(clips.strings("attack").filter(pa.array(spoof_originals))).to_pylist())
    unknown = [a for a in attacks if a not in present]
    if unknown:
        raise UsageError(f"held-out attack {unknown[0]!r} is not in the training manifests; their corpus attacks: "
                         f"{', '.join(sorted(present)) or 'none'}")


def hold_out(clips: Sequence[Clip] | Clips, attacks: Sequence[str]) -> tuple[Clips, int]:
    """(clips without the held-out `attacks`, how many were dropped): a clip is held out when its attack
    or its source's attack is listed (reconstructions of held-out spoofs go with them).

    Raises UsageError for an attack that no clip has, or when nothing spoofed would be left."""
    clips = Clips.of(clips)
    if not attacks:
        return clips, 0
    check_attacks(clips, attacks)
    held = pa.array(list(attacks), pa.string())
    attack = clips.strings("attack")
    own = pc.is_in(attack, value_set=held).to_numpy(zero_copy_only=False)
    source = clips.positions_of_sources(~clips.is_reconstruction())
    origin = np.zeros(len(clips), bool)
    origin[source >= 0] = own[source[source >= 0]]
    kept = clips.filter(~own & ~origin)
    if not (kept.labels() == SPOOF).any():
        raise UsageError(f"holding out {', '.join(attacks)} leaves no spoof to train on; hold out fewer attacks")
    return kept, len(clips) - len(kept)


def split_mask(clips: Clips, name: str | None) -> np.ndarray:
    """(N,) bool: the clips of split `name` (None: those without a split)."""
    if name is None:
        return ~pc.is_valid(clips.strings("split")).to_numpy(zero_copy_only=False)
    return clips.equals("split", name)


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
        self.clips, self.crop, self.sr, self.train, self.augment, self.seed = Clips.of(clips), crop, sample_rate, train, augment, seed
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
