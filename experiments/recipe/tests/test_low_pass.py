"""low_pass: passband kept, top band removed; the CLI copies the protocol and rejects bad input with exit 2."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import low_pass as lp  # noqa: E402

SR = 16000
T = np.arange(SR) / SR


def level_db(x: np.ndarray) -> float:
    x = x[SR // 4:-SR // 4]                         # away from the filter's edge transients
    return 10 * np.log10(np.mean(x ** 2) + 1e-30)


def test_passband_kept_and_top_band_removed():
    low, high = np.sin(2 * np.pi * 3000 * T), np.sin(2 * np.pi * 7300 * T)
    assert abs(level_db(lp.low_pass(low, SR)) - level_db(low)) < 0.1
    assert level_db(lp.low_pass(high, SR)) - level_db(high) < -40
    out = lp.low_pass(low + high, SR)
    assert out.shape == low.shape and out.dtype == np.float32


def test_cli_writes_every_row_and_rejects_a_cutoff_above_nyquist(tmp_path: Path):
    corpus = tmp_path / "c"
    (corpus / "a").mkdir(parents=True)
    sf.write(corpus / "a" / "x.flac", 0.3 * np.sin(2 * np.pi * 7700 * T), SR, subtype="PCM_16")
    sf.write(corpus / "low.flac", 0.3 * np.sin(2 * np.pi * 7700 * T[:4000]), 8000, subtype="PCM_16")
    (corpus / "protocol.csv").write_text("path,label\na/x.flac,spoof\n")
    res = CliRunner().invoke(lp.main, ["--corpus", str(corpus), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert [r["path"] for r in csv.DictReader(open(tmp_path / "o" / "protocol.csv"))] == ["a/x.flac"]
    wav, sr = sf.read(tmp_path / "o" / "a" / "x.flac")
    assert sr == SR and len(wav) == SR
    (corpus / "protocol.csv").write_text("path,label\nlow.flac,spoof\n")
    res = CliRunner().invoke(lp.main, ["--corpus", str(corpus), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "Nyquist" in res.output
    res = CliRunner().invoke(lp.main, ["--corpus", str(tmp_path / "none"), "--out", str(tmp_path / "o3")])
    assert res.exit_code == 2 and "protocol.csv" in res.output
