"""`manifests export --format lhotse`: a manifest -> lhotse manifests, written through lhotse's own API.

Per split, the files a lhotse recipe writes (`lhotse.recipes`: `<corpus>_<kind>_<part>.jsonl.gz`):

    OUT/hardspoof_recordings_<split>.jsonl.gz     one Recording per clip: its file, as the manifest resolves it
    OUT/hardspoof_supervisions_<split>.jsonl.gz   one SupervisionSegment over the whole clip
    OUT/hardspoof_cuts_<split>.jsonl.gz           the CutSet: one cut per clip (id = utt_id), recording + supervision

`CutSet.from_file(OUT/hardspoof_cuts_train.jsonl.gz)` is the training CutSet. The supervision carries
speaker and language in lhotse's own fields and every other manifest column (label, attack, method, model,
source_id, kind, split, params, seed, sha256, snr_db, lsd_db, ...) in `custom`. Recordings point at the
audio where it lies (absolute paths, or the URI of a clip in an object store), as lhotse recipes do: the
audio is not copied, so the bytes lhotse reads are the manifest's own. Splits keep the manifest's names
(train, dev, eval); a reconstruction without a split follows its source; rows with no split at all go to
`all` when no row has one, else to `unsplit`. Only `ok` rows are exported. Written with lhotse's sequential
writers, one split at a time: memory holds the manifest's winner keys (see `stream`) and one batch of rows.
"""
from __future__ import annotations

import datetime
import os

from . import storage
from .errors import UsageError, first_line
from .export_folder import prepare_out
from .interop_lhotse import require_lhotse
from .io import remote_path_refusal
from .stream import ManifestStream

PREFIX = "hardspoof"
NATIVE = ("utt_id", "path", "sample_rate", "num_samples", "duration_s", "speaker", "language")  # lhotse fields


def _custom(row: dict) -> dict:
    """The manifest columns lhotse has no field for, JSON-ready (timestamps as ISO 8601); nulls left out, but for
    `split` (a reconstruction's null split means "its source's", which the file's part must not overrule)."""
    return {k: (v.isoformat() if isinstance(v, datetime.datetime) else v) for k, v in row.items()
            if k not in NATIVE and (v is not None or k == "split")}


def _recording(row: dict):
    """A lhotse Recording of the clip's file (header read by lhotse; a URI is described from the manifest)."""
    from lhotse import AudioSource, Recording

    if not storage.is_uri(row["path"]):
        return Recording.from_file(row["path"], recording_id=row["utt_id"])
    return Recording(id=row["utt_id"], sources=[AudioSource(type="url", channels=[0], source=row["path"])],
                     sampling_rate=int(row["sample_rate"]), num_samples=int(row["num_samples"]),
                     duration=int(row["num_samples"]) / int(row["sample_rate"]))


def _cut(row: dict):
    """(recording, supervision, cut) of one manifest row: one cut over the whole clip, id = utt_id."""
    from lhotse import MonoCut, MultiCut, SupervisionSegment

    rec = _recording(row)
    mono = rec.num_channels == 1
    channel = rec.channel_ids[0] if mono else list(rec.channel_ids)
    sup = SupervisionSegment(id=row["utt_id"], recording_id=rec.id, start=0.0, duration=rec.duration,
                             channel=channel, speaker=row.get("speaker"), language=row.get("language"),
                             custom=_custom(row))
    cut = (MonoCut if mono else MultiCut)(id=row["utt_id"], start=0.0, duration=rec.duration, channel=channel,
                                          recording=rec, supervisions=[sup])
    return rec, sup, cut


def export_lhotse(manifest: str | os.PathLike, out: str | os.PathLike, allow_remote_paths: bool = False,
                  overwrite: bool = False) -> dict:
    """Write the lhotse manifests of `manifest` into `out` (see the module docstring). Returns a report:
    cuts per split, the files written, and clips left out {utt_id: reason}."""
    require_lhotse()
    from lhotse import CutSet, RecordingSet, SupervisionSet

    root = prepare_out(os.fspath(out), overwrite, (f"{PREFIX}_*.jsonl.gz",))
    stream = ManifestStream(manifest)
    splits, files, skipped = {}, [], {}
    for split, part in {"train": "train", "dev": "dev", "eval": "eval",
                        None: "unsplit" if stream.has_split else "all"}.items():
        names = {k: root / f"{PREFIX}_{k}_{part}.jsonl.gz" for k in ("recordings", "supervisions", "cuts")}
        n = 0
        with RecordingSet.open_writer(names["recordings"]) as recs, \
                SupervisionSet.open_writer(names["supervisions"]) as sups, CutSet.open_writer(names["cuts"]) as cuts:
            for table in stream.batches():
                for row in table.to_pylist():
                    if stream.split(row) != split or row["status"] != "ok":
                        continue
                    why = remote_path_refusal(row["path"], os.fspath(manifest), allow_remote_paths)
                    try:
                        if why is None:
                            rec, sup, cut = _cut(row)
                    except Exception as e:  # noqa: BLE001 - lhotse's audio backends raise many types; one clip fails
                        why = f"cannot read {row['path']}: {first_line(e)}"
                    if why:
                        skipped[row["utt_id"]] = why
                        continue
                    recs.write(rec)
                    sups.write(sup)
                    cuts.write(cut)
                    n += 1
        if n:
            splits[part] = n
            files += [str(p) for p in names.values()]
        else:
            for p in names.values():
                p.unlink(missing_ok=True)
    if not splits:
        raise UsageError(f"manifest {manifest} has no readable ok clips to export"
                         + (f" ({len(skipped)} left out, e.g. {next(iter(skipped.values()))})" if skipped else ""))
    return {"out": str(root), "splits": splits, "files": files, "skipped": skipped}
