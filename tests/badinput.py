"""A corpus of bad inputs, generated (no binary fixtures), and what each one must give.

`python -m tests.badinput` prints the table of docs/bad-input.md ("What happens to bad input") from the
same cases the tests run.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from tests.conftest import speechlike


def _wav_header(frames: int, sr: int = 16000) -> bytes:
    data = frames * 2
    return b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, sr, sr * 2, 2, 16) \
        + b"data" + struct.pack("<I", data)


def _write(subtype: str, sr: int = 16000, channels: int = 1, seconds: float = 0.5, fmt: str = "WAV"):
    def write(path: Path) -> None:
        x = speechlike(seconds, sr)
        with open(path, "wb") as fh:  # a handle, so names that are not UTF-8 work too
            sf.write(fh, np.stack([x] * channels, axis=1) if channels > 1 else x, sr, subtype=subtype, format=fmt)
    return write


def _bytes(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def _truncated_flac(path: Path) -> None:
    sf.write(path, speechlike(0.5), 16000, format="FLAC")
    path.write_bytes(path.read_bytes()[:60])


def _nan_wav(path: Path) -> None:
    x = speechlike(0.5).astype(np.float32)
    x[100:200] = np.nan
    x[300] = np.inf
    sf.write(path, x, 16000, subtype="FLOAT")


def _symlink_loop(path: Path) -> None:
    other = path.with_name("loop-b.wav")
    path.symlink_to(other)
    other.symlink_to(path)


def _symlink_out(path: Path) -> None:
    """`path` -> a good clip beside the corpus folder (outside it)."""
    target = path.parent.parent / "outside-the-corpus.wav"
    sf.write(target, speechlike(0.5), 16000)
    path.symlink_to(target)


def _symlinked_folder(path: Path) -> None:
    """`path` -> a folder of one good clip beside the corpus folder."""
    target = path.parent.parent / "folder-outside"
    target.mkdir(exist_ok=True)
    sf.write(target / "x.wav", speechlike(0.5), 16000)
    path.symlink_to(target)


# name, file name, how to make it, what `reconstruct run` gives, what `detector score` gives
CASES: list[tuple[str, str, Callable[[Path], None], str, str]] = [
    ("truncated WAV header", "trunc-header.wav", _bytes(_wav_header(8000)[:20]), "failed: cannot decode", "error: cannot decode"),
    ("WAV header, data cut short", "trunc-data.wav", _bytes(_wav_header(8000) + b"\x00\x01" * 2000), "ok", "score"),
    ("truncated FLAC", "trunc.flac", _truncated_flac, "failed: cannot decode", "error: cannot decode"),
    ("corrupt FLAC header", "corrupt.flac", _bytes(b"fLaC" + os.urandom(64)), "failed: cannot decode", "error: cannot decode"),
    ("zero-length file", "empty.wav", _bytes(b""), "failed: cannot decode", "error: cannot decode"),
    ("WAV with no samples", "no-samples.wav", _bytes(_wav_header(0)), "failed: no audio samples", "error: has no samples"),
    ("all-zero silence", "silence.wav", lambda p: sf.write(p, np.zeros(8000, np.float32), 16000), "ok", "score"),
    ("NaN/Inf in float WAV", "nan.wav", _nan_wav, "failed: NaN or Inf", "error: NaN or Inf"),
    ("8-bit WAV", "u8.wav", _write("PCM_U8"), "ok", "score"),
    ("24-bit WAV", "s24.wav", _write("PCM_24"), "ok", "score"),
    ("float64 WAV", "f64.wav", _write("DOUBLE"), "ok", "score"),
    ("6-channel WAV", "six.wav", _write("PCM_16", channels=6), "ok", "score"),
    ("8 kHz", "sr8k.wav", _write("PCM_16", sr=8000), "ok", "score"),
    ("96 kHz", "sr96k.flac", _write("PCM_24", sr=96000, fmt="FLAC"), "ok", "score"),
    ("1 ms clip", "one-ms.wav", _write("PCM_16", seconds=0.001), "failed: shorter than", "error: too short to score"),
    ("20 min clip (chunked)", "twenty-min.flac", _write("PCM_16", sr=8000, seconds=1200, fmt="FLAC"), "ok", "score"),
    ("text file named .wav", "text.wav", _bytes(b"hello, I am not audio\n" * 10), "failed: cannot decode", "error: cannot decode"),
    ("non-UTF-8 file name", "caf\udce9.wav", _write("PCM_16"), "skipped: not valid UTF-8", "skipped: not valid UTF-8"),
    ("symlink loop", "loop-a.wav", _symlink_loop, "skipped: broken or looping symlink", "skipped: broken or looping symlink"),
    ("folder named like a file", "folder.wav", lambda p: p.mkdir(), "skipped: folder(s) named like audio", "skipped: folder(s) named like audio"),
    ("header that says 1 Hz (32 kB WAV)", "one-hz.wav", _bytes(_wav_header(16000, sr=1) + b"\x01\x00" * 16000),
     "failed: sample rate of 1 Hz", "error: sample rate of 1 Hz"),
    ("named pipe (FIFO)", "fifo.wav", lambda p: os.mkfifo(p), "skipped: named pipe(s)", "skipped: named pipe(s)"),
    ("254-byte file name", "n" * 250 + ".wav", _write("PCM_16"), "ok", "score"),
    ("255-byte file name (its `.flac` output would be 256: shortened, with a hash)", "m" * 251 + ".wav",
     _write("PCM_16"), "ok", "score"),
    ("garbage bytes named `.mp3`", "garbage.mp3", _bytes(bytes(range(256)) * 12),
     "failed: not in an audio format", "error: not in an audio format"),
    ("symlink to a file outside the corpus folder", "outside.wav", _symlink_out,
     "skipped: symlink(s) leading outside the corpus folder", "skipped: symlink(s) leading outside the corpus folder"),
    ("symlinked folder", "linked-folder", _symlinked_folder, "skipped: symlinked folder(s), not followed",
     "skipped: symlinked folder(s), not followed"),
    ("tab, newline, quote, leading # in a file name", '#tab\tnew\nline"q.wav', _write("PCM_16"), "ok", "score"),
]


def make_bad_corpus(root: Path, cases=CASES) -> Path:
    """Write every case under root (plus one good clip); returns root."""
    root.mkdir(parents=True, exist_ok=True)
    sf.write(root / "good.wav", speechlike(0.5), 16000)
    for _, name, make, *_ in cases:
        make(root / name)  # a surrogate-escaped name becomes its raw bytes on disk
    return root


# Whole-run problems (exit code 2 with one line, nothing written) and cases beyond one folder of files:
# (input, what `reconstruct run` gives, what `detector score`/`eval` give); tested where their tests say.
USAGE_CASES = [
    ("duplicate utt_id in a protocol", "exit 2: duplicate utt_id"),
    ("protocol path `../../etc/passwd` or `/etc/passwd`", "exit 2: outside the corpus root (unless --allow-outside-root)"),
    ("protocol path through a symlinked folder that leads outside the root", "exit 2: outside the corpus root "
     "(real paths are compared)"),
    ("protocol line with the wrong field count", "exit 2: names the line"),
    ("FIFO named in a protocol or manifest", "a `failed` row: \"... is a named pipe (FIFO), not a regular file\"",
     "a row with no score, the same reason"),
    ("two corpus clips with one output path (`x.wav` and `x.flac` in a table)", "exit 2 before any work: names the pair"),
    ("corpus utt_id that ends like a reconstruction's (`y__vorbis`)", "exit 2 before any work: names the utt_id"),
    ("`--out` inside a folder `--corpus`", "its files are left out of the import (counted on stderr), never "
     "read as originals"),
    ("a folder `--corpus` holding another run's output (`--corpus c --out c/out2` after `--out c/out`)",
     "every folder holding a hardspoof manifest is left out (counted and named on stderr); such a folder given "
     "as `--corpus` itself: exit 2 naming its manifest"),
    ("originals that cannot be decoded", "each counts as a `failed` reconstruction of each model (todo = skipped + "
     "ok + failed), in `--max-failure-rate` too; a run after which no selected clip has a reconstruction: exit 1"),
    ("disk full during a run", "exit 2, one line (\"disk full ... re-run the same command\"), no traceback and no "
     "`failed` row; the rerun redoes what was not written"),
    ("header declaring more than `--max-duration` seconds (default 14400, 4 h)", "a `failed` row, not decoded",
     "a row with no score, not decoded"),
    ("2-hour clip", "a reconstruction, streamed in bounded memory", "a score, streamed in bounded memory"),
    ("remote path (`s3://`, `http://`) in a local manifest", "(in a corpus table: exit 2, outside the corpus root)",
     "a row with no score unless `--allow-remote-paths`; with it, an unreachable one fails alone"),
    ("manifest with one utt_id in two parts under opposite labels, nulls in required columns, an unknown "
     "label/kind/status/split/method, a negative or NaN `duration_s`", "`manifests validate`: exit 2 naming each "
     "problem with a count (`--schema-only`: metadata only)"),
    ("manifest of a newer major schema version, a wrong type, a missing column", "exit 2: names each problem"),
    ("`--device bogus`, `--limit 0`, `--max-failure-rate 2`, an unwritable `--out`, `manifests import --out x.csv`",
     "exit 2, one line, before any work", "exit 2, one line, before any work (`--batch-size 0`, `--out /proc/x.tsv`)"),
    ("temp files, the `.plan-*` folder and the write probe left by a run killed with `kill -9`",
     "removed when the run is started again (a live run's are kept)"),
    ("a rerun after `kill -9` (finished clips, orphan audio of unfinished ones) whose finished clips' sources must be "
     "described again (touched since)", "every pending clip is made (each plan file has a name of its own); a planned "
     "clip that still gets no row is counted `failed` (\"no row came back\"), exit 1, and the same command makes it"),
    ("`--out ''`, `--corpus ''`, `--checkpoint` for a weight-free model or a path that does not exist; "
     "`manifests mine --scores` a binary file", "exit 2, one line, before any work"),
    ("torch checkpoint that would run code when unpickled", "refused: weights_only loading"),
    ("`detector train` on manifests (or parts) that list one utt_id under another label, kind or source_id",
     "-", "exit 2, one line: the count and the first utt_id (identical rows are merged, and counted)"),
    ("`state.pt` that is a pickle with code, truncated `state.pt`, corrupt `model.safetensors` or `config.json`",
     "-", "exit 2, one line naming the file; resuming from a damaged `last/` says `--fresh`"),
    ("`detector score --out /nonexistent/dir/s.tsv`, `detector export --out /proc/x.onnx`, `--noise-dir` a file",
     "-", "exit 2, one line (of `--out`'s folder only the last level is created)"),
    ("two `detector score` runs into one `--out`", "-", "the second: exit 2, one line naming the first's pid; a "
     "lock left by `kill -9` holds nothing"),
]


def _says(expect: str) -> str:
    kind, _, why = expect.partition(": ")
    return {"ok": "a reconstruction (`ok` row)", "failed": f"a `failed` row: \"{why}...\"",
            "score": "a score", "error": f"a TSV row with no score, error \"{why}...\"",
            "skipped": f"skipped and counted on stderr: \"{why}...\""}[kind]


def markdown_table() -> str:
    lines = ["| input | `reconstruct run` gives | `detector score` on the folder gives |", "|---|---|---|"]
    for label, _, _, recon, score in CASES:
        same = recon == score and recon.startswith("skipped")
        lines.append(f"| {label} | {_says(recon)} | {'the same' if same else _says(score)} |")
    for label, what, *score in USAGE_CASES:
        lines.append(f"| {label} | {what} | {score[0] + ' ' if score else ''}|")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
