"""trim_silence: long pauses cut to the maximum, short ones kept, edges set, levelling, CLI errors."""
from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import soundfile as sf
from click.testing import CliRunner

_spec = importlib.util.spec_from_file_location("trim_silence", Path(__file__).resolve().parents[1] / "trim_silence.py")
ts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ts)

SR = 16000


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), dtype=np.float32)


def quiet_runs(wav: np.ndarray) -> list[int]:
    """Lengths (samples) of the runs of near-zero samples longer than 5 ms (not a sine's zero crossing)."""
    q = np.abs(wav) < 1e-4
    edges = np.diff(np.concatenate([[0], q.astype(np.int8), [0]]))
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return [int(n) for n in runs if n > 0.005 * SR]


def test_long_pause_is_cut_to_the_maximum_and_short_pause_kept():
    wav = np.concatenate([silence(0.4), tone(0.5), silence(0.8), tone(0.5), silence(0.05), tone(0.5), silence(0.3)])
    out = ts.trim_pauses(wav, SR, max_pause_s=0.1, edge_s=0.05)
    runs = sorted(quiet_runs(out[int(0.06 * SR):-int(0.06 * SR)]))
    # the 50 ms pause survives (VAD smear +- 15 ms); the 800 ms one is at most 100 ms now
    assert len(runs) == 2
    assert 0.1 * SR - 0.02 * SR <= runs[-1] <= 0.1 * SR + 0.015 * SR
    assert 0.05 * SR - 0.015 * SR <= runs[0] <= 0.05 * SR + 0.015 * SR
    # total: 1.5 s of tone + pauses (<= 0.15 s) + 2 edges of 50 ms (+ at most a frame each of VAD smearing)
    assert abs(len(out) / SR - (1.5 + 0.15 + 0.1)) < 0.06


def test_edges_are_set_to_edge_length_padding_with_zeros():
    wav = np.concatenate([silence(0.01), tone(1.0), silence(0.7)])
    out = ts.trim_pauses(wav, SR, edge_s=0.05)
    lead = np.flatnonzero(np.abs(out) > 1e-4)[0]
    tail = len(out) - 1 - np.flatnonzero(np.abs(out) > 1e-4)[-1]
    assert abs(lead - 0.05 * SR) <= 0.025 * SR
    assert abs(tail - 0.05 * SR) <= 0.025 * SR


def test_level_sets_rms_and_caps_peak():
    out = ts.level(tone(1.0))
    assert abs(20 * np.log10(np.sqrt(np.mean(out ** 2))) + 26) < 0.01
    spike = tone(1.0) * 0.01
    spike[100] = 0.9
    assert np.max(np.abs(ts.level(spike))) <= 10 ** (-1 / 20) + 1e-6


def test_corpus_copy_keeps_rows_and_updates_duration(tmp_path: Path):
    corpus = tmp_path / "c"
    (corpus / "a").mkdir(parents=True)
    sf.write(corpus / "a" / "x.flac", np.concatenate([tone(0.5), silence(1.0), tone(0.5)]), SR, subtype="PCM_16")
    with open(corpus / "protocol.csv", "w", newline="") as fh:
        fh.write("path,label,attack,split,duration_s\na/x.flac,bonafide,-,train,2.000\n")
    res = CliRunner().invoke(ts.main, ["--corpus", str(corpus), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(tmp_path / "o" / "protocol.csv")))
    assert [r["path"] for r in rows] == ["a/x.flac"] and rows[0]["label"] == "bonafide"
    info = sf.info(tmp_path / "o" / "a" / "x.flac")
    assert info.samplerate == SR and abs(float(rows[0]["duration_s"]) - info.duration) < 1e-3
    assert info.duration < 1.3


def test_missing_protocol_is_a_usage_error(tmp_path: Path):
    res = CliRunner().invoke(ts.main, ["--corpus", str(tmp_path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "protocol.csv" in res.output
