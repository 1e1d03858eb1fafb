"""cue_features on synthetic clips with known answers; cues.held_out_eer never trains on the held-out attack."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cue_features as cf  # noqa: E402
import cues  # noqa: E402

SR = 16000
T = np.arange(SR) / SR


def sine(hz: float, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * hz * T)


def test_level_dc_and_silence_of_a_half_silent_tone():
    wav = np.concatenate([sine(997), np.zeros(SR)])   # 997 Hz: no sample falls on a zero crossing
    f = cf.clip_features(wav + 0.0, SR)
    assert f["peak_dbfs"] == pytest.approx(-6.02, abs=0.05)
    assert f["rms_dbfs"] == pytest.approx(-9.03 - 3.01, abs=0.05)
    assert f["quiet_pct"] == pytest.approx(50, abs=2)
    assert f["zero_pct"] == pytest.approx(50, abs=1)
    assert f["floor10_dbfs"] < -100
    assert f["trail_s"] == pytest.approx(1.0, abs=0.03) and f["lead_s"] == 0
    assert f["duration_s"] == 2.0
    assert cf.clip_features(sine(1000) + 0.01, SR)["dc_dbfs"] == pytest.approx(-40, abs=0.5)
    # a part 30 dB down is speech-quiet, not silence (the threshold is 40 dB)
    assert cf.clip_features(np.concatenate([sine(997), 0.03 * sine(997)]), SR)["quiet_pct"] < 2


def test_bandwidth_features_follow_the_tone():
    low, high = cf.clip_features(sine(1000), SR), cf.clip_features(sine(7400), SR)
    assert low["rolloff99_hz"] == pytest.approx(1000, abs=60)
    assert high["rolloff99_hz"] == pytest.approx(7400, abs=60)
    assert low["hf6_db"] < -40 and high["hf6_db"] > -0.5
    assert high["band7k_db"] > -0.5 and low["band7k_db"] < -40
    assert high["edge50_hz"] > 7400 and low["edge50_hz"] < 2500
    two = cf.clip_features(sine(1000) + sine(5000, 0.1), SR)     # 3.8 % of the energy at 5 kHz
    assert two["rolloff99_hz"] == pytest.approx(5000, abs=60)


def test_zeroed_bands_count_as_holes():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(2 * SR) * 0.05
    spec = np.fft.rfft(noise)
    f = np.fft.rfftfreq(len(noise), 1 / SR)
    for centre in range(2500, 7500, 500):           # 200 Hz wide zeroed bands, like a codec's empty bands
        spec[np.abs(f - centre) < 100] = 0
    notched = np.fft.irfft(spec, len(noise))
    assert cf.clip_features(notched, SR)["holes_pct"] > cf.clip_features(noise, SR)["holes_pct"] + 2


def rows_with(values: dict[str, tuple[float, float]], n: int = 30) -> list[dict]:
    """Rows of a fake protocol: features (x, y) drawn around values[attack] for each attack, both splits."""
    rng = np.random.default_rng(1)
    out = []
    for split in ("train", "dev"):
        for attack, (mx, my) in values.items():
            for _ in range(n):
                out.append({"split": split, "attack": attack, "label": "bonafide" if attack == "-" else "spoof",
                            "x": mx + rng.standard_normal() * 0.3, "y": my + rng.standard_normal() * 0.3})
    return out


def test_held_out_attack_is_not_in_training():
    # A and B sit above bona fide on x; C sits below it on x and is told apart only by y, which only a
    # model that saw C in training can have learned
    rows = rows_with({"-": (0.0, 0.0), "A": (5.0, 0.0), "B": (5.0, 0.0), "C": (-5.0, 5.0)})
    assert cues.held_out_eer(rows, ["x", "y"], "A", seen_only=True) < 1
    assert cues.held_out_eer(rows, ["x", "y"], "C", seen_only=True) > 90
    assert cues.held_out_eer(rows, ["x", "y"], "C", seen_only=False) < 1


def test_missing_protocol_is_a_usage_error(tmp_path: Path):
    res = CliRunner().invoke(cues.main, ["--corpus", str(tmp_path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "protocol.csv" in res.output
