"""Every relative link in README.md and docs/*.md resolves: the file exists, and a `#anchor` names a
heading of the target page, by GitHub's rule for heading ids (see `github_slug`)."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$", re.M)


def github_slug(heading: str) -> str:
    """GitHub's id for a heading: the rendered text (links and code marks dropped), lowercased, every
    character that is not a letter, digit, space, hyphen or underscore removed, spaces turned into hyphens.
    E.g. "The manifest (Parquet, schema v1.1)" -> "the-manifest-parquet-schema-v11"."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](url) renders as text
    text = re.sub(r"[`*]", "", text)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The heading ids of a markdown page; a repeated id gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for _, text in HEADING.findall(FENCE.sub("", page.read_text())):
        slug = github_slug(text)
        n = seen.get(slug, 0)
        out.add(slug if n == 0 else f"{slug}-{n}")
        seen[slug] = n + 1
    return out


def relative_links(page: Path) -> list[str]:
    """Link targets of a page outside code, that are not URLs (http:, mailto:, ...)."""
    text = CODE_SPAN.sub("", FENCE.sub("", page.read_text()))
    return [t for t in LINK.findall(text) if not re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", t)]


def _shown(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def broken_links(page: Path) -> list[str]:
    """What is wrong with each relative link of `page` that does not resolve."""
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / unquote(path)).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file {_shown(dest)}")
        elif anchor and dest.suffix == ".md" and unquote(anchor) not in anchors(dest):
            broken.append(f"{target}: no heading with id #{anchor} in {_shown(dest)}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_relative_links_resolve(page):
    assert broken_links(page) == []


def test_every_docs_page_is_reachable_from_the_readme():
    """A page no link leads to is a page no reader finds: each docs/*.md is linked from README.md or from a
    page README.md leads to."""
    seen, todo = {ROOT / "README.md"}, [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        for target in relative_links(page):
            dest = (page.parent / unquote(target.partition("#")[0])).resolve()
            if dest.suffix == ".md" and dest.is_file() and dest not in seen:
                seen.add(dest)
                todo.append(dest)
    assert [p.name for p in PAGES if p.resolve() not in seen] == []


@pytest.mark.parametrize("heading, slug", [
    ("The manifest (Parquet, schema v1.1)", "the-manifest-parquet-schema-v11"),
    ("SemantiCodec, the paper's diffusion codec", "semanticodec-the-papers-diffusion-codec"),
    ("Diffusion on a CPU: `mel-diffusion` and `reconstruct fit`",
     "diffusion-on-a-cpu-mel-diffusion-and-reconstruct-fit"),
    ("Scale: the Ray stage", "scale-the-ray-stage"),
    ("The `demo` corpus", "the-demo-corpus"),
])
def test_github_slug(heading, slug):
    assert github_slug(heading) == slug


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "a.md").write_text("# Title here\n\n[ok](#title-here) [bad](#nope) [gone](b.md) "
                                   "[web](https://example.org/x) `[code](c.md)`\n")
    assert broken_links(tmp_path / "a.md") == ["#nope: no heading with id #nope in a.md", "b.md: no such file b.md"]
