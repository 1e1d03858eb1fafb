"""Long clips in bounded memory (issue 19, item 7): the streamed path gives what the in-memory one does.

No memory or time figures here: `benchmarks/bench_long_clip.py` measures those.
"""
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import manifests
from reconstruct.cli import main
from tests.conftest import speechlike


def _spectrum_distance_reference(ref, est, sr):
    """The whole-signal definitions of snr_db and lsd_db (float64 spectrograms of everything)."""
    ref, est = ref.astype(np.float64), est.astype(np.float64)
    n_fft = int(2 ** round(np.log2(512 * sr / 16000)))
    hop = n_fft // 4
    n = 1 + (ref.shape[0] - n_fft) // hop
    idx = np.arange(n_fft)[None] + hop * np.arange(n)[:, None]
    spec = [np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=-1)) ** 2 for x in (ref, est)]
    diff = 10 * (np.log10(spec[0] + 1e-10) - np.log10(spec[1] + 1e-10))
    snr = 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - est) ** 2))
    return snr, float(np.mean(np.sqrt(np.mean(diff ** 2, axis=-1))))


@pytest.mark.parametrize("sr", [16000, 44100])
def test_hardness_fed_in_pieces_equals_the_whole_signal_definition(sr):
    from reconstruct.hardness import Hardness

    rng = np.random.default_rng(0)
    ref = speechlike(3.1, sr)
    est = (ref + 0.05 * rng.standard_normal(ref.shape)).astype(np.float32)
    want = _spectrum_distance_reference(ref, est, sr)
    h = Hardness(sr)
    cuts = np.sort(rng.choice(ref.shape[0], 9, replace=False))
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, ref.shape[0]]):
        h.add(ref[a:b], est[a:b])
    assert h.snr_db() == pytest.approx(want[0], rel=1e-9) and h.lsd_db() == pytest.approx(want[1], rel=1e-9)


@pytest.mark.parametrize("model,sr,channels", [("opus", 16000, 1), ("griffinlim", 22050, 2)])
def test_a_streamed_clip_gives_the_file_and_metrics_of_the_in_memory_path(tmp_path, monkeypatch, model, sr, channels):
    """35 s (two back-end chunks) with streaming forced vs the same run in memory."""
    corpus = tmp_path / "c"
    corpus.mkdir()
    x = speechlike(35.0, sr)
    sf.write(corpus / "long.wav", np.stack([x, 0.5 * x], axis=1) if channels == 2 else x, sr)
    args = ["run", "--model", model, "--param", "n_iter=2"] if model == "griffinlim" else ["run", "--model", model]
    rows = {}
    for mode in ("memory", "stream"):
        if mode == "stream":
            monkeypatch.setattr("manifests.audiostream.STREAM_ABOVE", 1000)
            monkeypatch.setattr("reconstruct.worker.is_long", lambda p: True)
        r = CliRunner().invoke(main, [*args, "--corpus", str(corpus), "--out", str(tmp_path / mode), "--executor", "local"])
        assert r.exit_code == 0, r.output
        rows[mode] = next(x for x in manifests.read(tmp_path / mode / "manifest").to_pylist()
                          if x["kind"] == "reconstruction")
    a, b = rows["memory"], rows["stream"]
    assert a["status"] == b["status"] == "ok", (a["error"], b["error"])
    assert a["num_samples"] == b["num_samples"] == x.shape[0] and a["sample_rate"] == b["sample_rate"] == sr
    wa, wb = sf.read(a["path"])[0], sf.read(b["path"])[0]
    assert np.abs(wa - wb).max() <= 2 / 32768  # identical up to resampling round-off in 16-bit samples
    assert b["snr_db"] == pytest.approx(a["snr_db"], abs=1e-3) and b["lsd_db"] == pytest.approx(a["lsd_db"], abs=1e-3)


def test_a_stream_shorter_than_its_header_is_a_clear_error():
    from reconstruct.backends import get

    backend = get("opus")()
    with pytest.raises(ValueError, match="ended before"):
        list(backend.reconstruct_stream(iter([np.zeros(16000, np.float32)]), 16000, 32000))
