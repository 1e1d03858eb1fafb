"""`reconstruct report`: one self-contained page whose every image and audio clip resolves (data: URIs),
checked by parsing it and, where Chromium is installed, by loading it in headless Chromium."""
from __future__ import annotations

import base64
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

import manifests
from reconstruct.cli import main


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href"):
                self.refs.append((tag, v))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from tests.conftest import write_corpus

    root = tmp_path_factory.mktemp("report")
    corpus = write_corpus(root / "corpus", n_bonafide=3, n_spoof=1)
    out = root / "run"
    r = CliRunner().invoke(main, ["run", "--model", "opus", "--model", "griffinlim", "--corpus", str(corpus),
                                  "--out", str(out), "--executor", "local", "--param", "n_iter=4"])
    assert r.exit_code == 0, r.output
    return out


def test_page_is_self_contained_and_every_reference_resolves(run_dir: Path):
    r = CliRunner().invoke(main, ["report", str(run_dir), "--examples", "2"])
    assert r.exit_code == 0, r.output
    page = (run_dir / "report.html").read_text()
    parser = _Refs()
    parser.feed(page)
    audio = [v for t, v in parser.refs if t == "audio"]
    images = [v for t, v in parser.refs if t == "img"]
    assert len(audio) == 2 * 3 and len(images) == 1 + 2 * 3  # 2 examples x (original + 2 models); histograms
    assert all(v.startswith("data:") for _, v in parser.refs), "nothing refers outside the page"
    for v in images:
        assert base64.b64decode(v.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    rows = {r["path"]: r for r in manifests.read(run_dir / "manifest").to_pylist()}
    embedded = {base64.b64decode(v.split(",", 1)[1]) for v in audio}
    on_disk = {Path(p).read_bytes() for p in rows}
    assert embedded <= on_disk, "each player plays the manifest's own audio bytes"
    assert ">opus</th>" in page and ">griffinlim</th>" in page and ">original</th>" in page


def test_a_run_without_reconstructions_is_exit_2(tmp_path: Path):
    from tests.conftest import write_corpus

    m = manifests.write(manifests.corpus.import_corpus(str(write_corpus(tmp_path / "c"))), tmp_path / "m.parquet")
    r = CliRunner().invoke(main, ["report", str(m)])
    assert r.exit_code == 2 and "no reconstructions" in r.output


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="no Chromium on this machine (Debian package `chromium`)")
def test_page_loads_in_headless_chromium(run_dir: Path, tmp_path: Path):
    """Chromium renders the page and its images decode: the DOM dump after load shows every image with a
    natural width, which a broken data: URI would not have."""
    CliRunner().invoke(main, ["report", str(run_dir), "--examples", "1", "--out", str(tmp_path / "r.html")])
    probe = tmp_path / "probe.html"
    probe.write_text((tmp_path / "r.html").read_text().replace(
        "</body>", "<script>window.onload=()=>{document.title=[...document.images].map(i=>i.naturalWidth>0)"
                   ".join(',')+'|'+[...document.querySelectorAll('audio')].length}</script></body>"))
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                          "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    title = out.split("<title>", 1)[1].split("</title>", 1)[0]
    images, audio = title.split("|")
    assert images.split(",") == ["true"] * 4 and audio == "3"


@pytest.mark.parametrize("seconds", ["nan", "inf", "0", "-1"])
def test_seconds_must_be_a_finite_number_in_range(tmp_path: Path, seconds):
    r = CliRunner().invoke(main, ["report", str(tmp_path), "--seconds", seconds])
    assert r.exit_code == 2 and "--seconds" in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
