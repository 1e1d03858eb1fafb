"""Every selected clip ends as ok, failed or skipped in `reconstruct run`'s table, and the three add up to todo
(issue 29, case 1): originals that cannot be decoded count as failed, in --max-failure-rate too."""
import re
from pathlib import Path

import soundfile as sf
from click.testing import CliRunner

from reconstruct.cli import main
from tests.conftest import speechlike


def _table(output: str) -> dict[str, list[int]]:
    """{model: [todo, skipped, ok, failed]} from the run's summary table."""
    after = output[output.index("todo  skipped"):]  # a progress bar may share the table's first line
    return {m[0]: [int(x) for x in m[1:]] for m in
            re.findall(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+[\d.]+\s+(?:[\d.]+|nan)$", after, re.M)}


def _corpus(root: Path, good: int, bad: int) -> Path:
    root.mkdir()
    for i in range(good):
        sf.write(root / f"g{i}.wav", speechlike(0.3, seed=i), 16000)
    for i in range(bad):
        (root / f"b{i}.wav").write_bytes(b"not audio at all\n" * (i + 1))
    return root


def run(corpus: Path, out: Path, *extra: str):
    return CliRunner().invoke(main, ["run", "--model", "opus", "--model", "vorbis", "--executor", "local",
                                     "--corpus", str(corpus), "--out", str(out), *extra])


def test_undecodable_originals_count_as_failed_and_in_the_failure_rate(tmp_path):
    corpus = _corpus(tmp_path / "c", good=3, bad=2)
    r = run(corpus, tmp_path / "o", "--max-failure-rate", "0.5")
    table = _table(r.output)
    assert set(table) == {"opus", "vorbis"}, r.output
    for todo, skipped, ok, failed in table.values():
        assert (todo, skipped, ok, failed) == (5, 0, 3, 2), r.output
    assert r.exit_code == 0, r.output  # 2 of 5 failed: 40% <= 50%
    r = run(corpus, tmp_path / "o2", "--max-failure-rate", "0.3")
    assert r.exit_code == 1 and "40.0% of clips failed" in r.output, r.output


def test_a_resume_counts_earlier_failed_sources_as_skipped(tmp_path):
    corpus = _corpus(tmp_path / "c", good=2, bad=2)
    assert run(corpus, tmp_path / "o", "--max-failure-rate", "1").exit_code == 0
    r = run(corpus, tmp_path / "o", "--max-failure-rate", "1")
    assert r.exit_code == 0, r.output
    assert all(v == [4, 4, 0, 0] for v in _table(r.output).values()), r.output


def test_a_run_where_nothing_succeeded_exits_1_whatever_the_failure_rate(tmp_path):
    corpus = _corpus(tmp_path / "c", good=0, bad=4)
    r = run(corpus, tmp_path / "o", "--max-failure-rate", "1")
    assert all(v == [4, 0, 0, 4] for v in _table(r.output).values()), r.output
    assert r.exit_code == 1 and "no clip was reconstructed" in r.output, r.output
    r = run(corpus, tmp_path / "o", "--max-failure-rate", "1")  # a rerun: all skipped, and still nothing made
    assert all(v == [4, 4, 0, 0] for v in _table(r.output).values()), r.output
    assert r.exit_code == 1 and "no clip was reconstructed" in r.output, r.output
