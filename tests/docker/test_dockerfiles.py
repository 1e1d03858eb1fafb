"""The Dockerfiles parse, copy only tracked files, install what the README installs, and bake weights offline."""
from __future__ import annotations

import re
import shlex
import subprocess

import pytest

from tests.docker.dockerfile import parse
from tests.docker.repo import DOCKER, ROOT, install_extras, pins, pyproject

DOCKERFILES = {"Dockerfile": "python:3.11-slim", "Dockerfile.cuda": "nvidia/cuda:"}


@pytest.fixture(params=sorted(DOCKERFILES), scope="module")
def dockerfile(request):
    return request.param, parse(DOCKER / request.param)


def _run_text(insts) -> str:
    return "\n".join(i.value for i in insts if i.keyword == "RUN")


def _pip_installs(insts) -> list[list[str]]:
    """Argument lists of every `pip install` in the RUN instructions (split at && ; |)."""
    out = []
    for inst in insts:
        if inst.keyword != "RUN":
            continue
        lexer = shlex.shlex(inst.value, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        cmds, words = [], []
        for tok in lexer:
            if tok in ("&&", "||", ";", "|", "(", ")"):
                cmds.append(words)
                words = []
            else:
                words.append(tok)
        for words in [*cmds, words]:
            for i in range(len(words) - 1):
                if words[i].endswith("pip") and words[i + 1] == "install":
                    out.append(words[i + 2:])
    return out


def test_base_image_and_stage(dockerfile):
    name, insts = dockerfile
    froms = [i.expanded() for i in insts if i.keyword == "FROM"]
    assert len(froms) == 1, f"{name}: expected one stage, got FROM {froms}"
    assert froms[0].startswith(DOCKERFILES[name]), f"{name}: base {froms[0]!r}"
    if name == "Dockerfile.cuda":
        assert "runtime" in froms[0], f"{name}: want a CUDA runtime base, got {froms[0]}"
    apt = [i.value for i in insts if i.keyword == "RUN" and "apt-get install" in i.value]
    assert any("libsndfile1" in a for a in apt), f"{name}: libsndfile1 is not apt-installed"


def test_copied_files_are_tracked(dockerfile):
    """Every COPY source exists in a clean checkout (the build context is the repo root)."""
    name, insts = dockerfile
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.splitlines())
    copied = []
    for inst in insts:
        if inst.keyword not in ("COPY", "ADD"):
            continue
        words = inst.exec_form() or shlex.split(inst.expanded())
        assert not any(w.startswith("--from") for w in words), f"{name}:{inst.line}: unexpected COPY --from"
        sources = [w for w in words if not w.startswith("--")][:-1]
        assert sources, f"{name}:{inst.line}: COPY without a source"
        for src in sources:
            assert (ROOT / src).exists(), f"{name}:{inst.line}: COPY {src} does not exist in the repo"
            assert src in tracked or any(t.startswith(src.rstrip("/") + "/") for t in tracked), \
                f"{name}:{inst.line}: COPY {src} is not tracked by git (a fresh clone lacks it)"
            copied.append(src.rstrip("/"))
    needed = {"pyproject.toml", pyproject()["project"]["readme"],
              *pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = {n.rstrip("*") for n in needed}
    assert needed <= set(copied), f"{name}: `pip install .` needs {sorted(needed - set(copied))} in the image"


def test_pip_installs_the_readme_extras_and_pins(dockerfile):
    name, insts = dockerfile
    where, extras = install_extras()
    installs = _pip_installs(insts)
    targets = [w for args in installs for w in args if re.fullmatch(r"\.(\[[\w,-]*\])?", w)]
    assert targets, f"{name}: no `pip install .[...]` of the package"
    for t in targets:
        got = set(filter(None, t[2:-1].split(","))) if "[" in t else set()
        assert got in extras, f"{name}: installs {t!r}, but {where} installs {[sorted(e) for e in extras]}"
    # The torch pair is pinned in pyproject; an image that pre-installs torch must use the same pins.
    want = pins()
    for args in installs:
        for w in args:
            m = re.fullmatch(r"([\w.-]+)==(.+)", w)
            if m and m.group(1).lower() in want:
                assert m.group(2) == want[m.group(1).lower()], f"{name}: {w} but pyproject pins {want[m.group(1).lower()]}"
    assert any(f"torch=={want['torch']}" in args for args in installs), f"{name}: torch not installed at its pin"


def test_models_are_pulled_then_offline(dockerfile):
    from reconstruct.backends import get
    from reconstruct.cli import main
    from tests.docker.commands import resolve

    name, insts = dockerfile
    pull = [i for i in insts if i.keyword == "RUN" and "reconstruct models pull" in i.value]
    assert len(pull) == 1, f"{name}: want one RUN with `reconstruct models pull`"
    assert "${MODELS}" in pull[0].value or "$MODELS" in pull[0].value, f"{name}: the pull RUN ignores the MODELS build arg"
    models = pull[0].env.get("MODELS", "").split()
    assert models, f"{name}: ARG MODELS has no default models"
    for model in models:
        assert get(model).weights, f"{name}: {model} has no pretrained weights to pull"
        resolve(main, ["models", "pull", model])
    after = insts[insts.index(pull[0]):]
    final = insts[-1].env
    assert any(i.keyword == "ENV" and "HF_HUB_OFFLINE" in i.value for i in after), \
        f"{name}: HF_HUB_OFFLINE must be set after the weights are pulled"
    assert final.get("HF_HUB_OFFLINE") == "1" and final.get("HARDSPOOF_MODELS") == "/models"
    assert "HF_HUB_OFFLINE" not in pull[0].env, f"{name}: offline before the pull"


def test_runs_as_non_root_with_the_cli_entrypoint(dockerfile):
    name, insts = dockerfile
    users = [i.expanded() for i in insts if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{name}: runs as {users[-1:] or 'root'}"
    entry = [i for i in insts if i.keyword == "ENTRYPOINT"]
    assert entry and entry[-1].exec_form() == ["reconstruct"], f"{name}: ENTRYPOINT must be the reconstruct CLI"
    scripts = pyproject()["project"]["scripts"]
    assert {"reconstruct", "detector"} <= set(scripts)      # `--entrypoint detector` reaches the detector


def test_readme_documents_the_builds():
    text = (DOCKER / "README.md").read_text()
    for name in DOCKERFILES:
        assert f"-f docker/{name} " in text, f"docker/README.md does not show how to build {name}"
    assert "MODELS=" in text and "build context" in text.lower()
