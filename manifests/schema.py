"""The manifest schema, v1: the one contract between `reconstruct` and `detector`.

One row = one audio clip. The schema version travels in the Parquet schema metadata
(key ``hardspoof.schema_version``, value ``"MAJOR.MINOR"``); readers accept any minor
version of their major and refuse a newer major.
"""
from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1.1"  # 1.1: file_size, file_mtime_ns, hardness, scored_by_sha256 (all optional)
VERSION_KEY = b"hardspoof.schema_version"

LABELS = ("bonafide", "spoof")
KINDS = ("original", "reconstruction")
STATUSES = ("ok", "failed")
SPLITS = ("train", "dev", "eval")
METHODS = ("codec", "vocoder", "diffusion")

# How corpora spell labels and splits (tables, ASVspoof protocols, datasets folders, CutSets; compared in
# lower case) -> the manifest's values. One map for every importer.
LABEL_SPELLINGS = {"bonafide": "bonafide", "bona-fide": "bonafide", "bona_fide": "bonafide", "bona fide": "bonafide",
                   "genuine": "bonafide", "real": "bonafide", "human": "bonafide",
                   "spoof": "spoof", "fake": "spoof", "deepfake": "spoof", "spoofed": "spoof"}
SPLIT_SPELLINGS = {"train": "train", "training": "train", "trn": "train", "dev": "dev", "validation": "dev",
                   "valid": "dev", "val": "dev", "eval": "eval", "evaluation": "eval", "trl": "eval", "test": "eval",
                   "testing": "eval"}

# (name, type, nullable, meaning): the table in DESIGN.md, as code.
COLUMNS: tuple[tuple[str, pa.DataType, bool, str], ...] = (
    ("utt_id", pa.string(), False, "clip id, unique in a manifest"),
    ("path", pa.string(), False, "audio file, relative to the manifest's folder"),
    ("label", pa.string(), False, "bonafide | spoof"),
    ("kind", pa.string(), False, "original | reconstruction"),
    ("source_id", pa.string(), False, "utt_id of the original this clip derives from"),
    ("method", pa.string(), True, "codec | vocoder | diffusion; null for originals"),
    ("model", pa.string(), True, "back-end name, e.g. encodec-24khz"),
    ("params", pa.string(), True, "back-end parameters as JSON"),
    ("checkpoint_sha256", pa.string(), True, "sha256 of the weights that produced the clip"),
    ("seed", pa.int64(), True, "per-clip RNG seed"),
    ("attack", pa.string(), False, "corpus attack id, '-' for bona fide"),
    ("speaker", pa.string(), True, "speaker id from the corpus"),
    ("language", pa.string(), True, "language code from the corpus"),
    ("split", pa.string(), True, "train | dev | eval"),
    ("sample_rate", pa.int32(), True, "of the file, Hz"),
    ("num_samples", pa.int64(), True, "of the file, per channel"),
    ("duration_s", pa.float32(), True, "of the file, seconds"),
    ("sha256", pa.string(), True, "of the file's bytes"),
    ("snr_db", pa.float32(), True, "SNR of a reconstruction against its original, dB"),
    ("lsd_db", pa.float32(), True, "log-spectral distance to the original, dB (phase-free hardness)"),
    ("status", pa.string(), False, "ok | failed"),
    ("error", pa.string(), True, "why a clip failed"),
    ("run_id", pa.string(), True, "the run that wrote the row"),
    ("created_at", pa.timestamp("us", tz="UTC"), True, "when the row was written"),
    ("toolkit_version", pa.string(), True, "hardspoof version that wrote the row"),
    ("file_size", pa.int64(), True, "bytes of the file at `path` when the row was written (1.1)"),
    ("file_mtime_ns", pa.int64(), True, "its modification time, ns since the epoch; with file_size, what lets "
                                        "a resume reuse the row while the file is unchanged (1.1)"),
    ("hardness", pa.float32(), True, "bona fide score (logit) a detector gave a mined reconstruction: higher = "
                                     "harder (1.1, `manifests mine`)"),
    ("scored_by_sha256", pa.string(), True, "sha256 of the detector weights that gave `hardness` (1.1)"),
)

COLUMN_NAMES = tuple(c[0] for c in COLUMNS)
REQUIRED = tuple(c[0] for c in COLUMNS if not c[2])

SCHEMA = pa.schema(
    [pa.field(name, typ, nullable=nullable) for name, typ, nullable, _ in COLUMNS],
    metadata={VERSION_KEY: SCHEMA_VERSION.encode()},
)


def empty_row() -> dict:
    """A row with every column present and set to null."""
    return dict.fromkeys(COLUMN_NAMES)
