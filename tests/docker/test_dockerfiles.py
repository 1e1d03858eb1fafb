"""The Dockerfiles parse, copy only tracked files, install what the README installs, and bake weights offline."""
from __future__ import annotations

import re
import shlex
import subprocess

import pytest

from tests.docker.dockerfile import parse
from tests.docker.repo import DOCKER, ROOT, pins, pyproject

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


def _stages(insts) -> list[tuple[str, list]]:
    """(stage name or its index, its instructions from FROM on) in order."""
    out = []
    for inst in insts:
        if inst.keyword == "FROM":
            words = inst.expanded().split()
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else str(len(out))
            out.append((name, []))
        if out:
            out[-1][1].append(inst)
    return out


def _apt_installed(insts) -> set[str]:
    """Package names of every `apt-get install` in the RUN instructions."""
    names = set()
    for inst in insts:
        if inst.keyword != "RUN":
            continue
        for chunk in inst.value.split("apt-get install")[1:]:
            for word in re.split(r"&&|;|\|\||\bfi\b", chunk)[0].split():
                if not word.startswith("-"):
                    names.add(word)
    return names


COMPILERS = {"gcc", "g++", "clang", "build-essential", "libc6-dev", "python3-dev", "cpp"}
TEST_TOOLS = {"pytest", "hypothesis", "pytest-timeout", "moto", "gcp-storage-emulator", "jsonschema"}


def test_build_stage_compiles_and_runtime_stage_has_no_compiler(dockerfile):
    name, insts = dockerfile
    stages = _stages(insts)
    assert [s for s, _ in stages] == ["build", "1"], f"{name}: want stages `build` then the runtime, got {stages}"
    froms = [i.expanded().split()[0] for i in insts if i.keyword == "FROM"]
    assert froms[0] == froms[1], f"{name}: the venv is copied between stages, so both need one base: {froms}"
    assert froms[0].startswith(DOCKERFILES[name]), f"{name}: base {froms[0]!r}"
    if name == "Dockerfile.cuda":
        assert "runtime" in froms[0], f"{name}: want a CUDA runtime base, got {froms[0]}"
    build, runtime = stages[0][1], stages[1][1]
    assert {"gcc", "libc6-dev"} <= _apt_installed(build), f"{name}: the build stage needs gcc and libc6-dev"
    assert "python3-dev" in _run_text(build), f"{name}: the build stage needs Python's headers (python3-dev)"
    assert not _apt_installed(runtime) & COMPILERS, f"{name}: compiler in the runtime stage"
    assert "libsndfile1" in _apt_installed(runtime), f"{name}: libsndfile1 is not apt-installed"
    assert not _pip_installs(runtime), f"{name}: the runtime stage must install nothing with pip"
    copies = [i for i in runtime if i.keyword == "COPY" and "--from=" in i.value]
    assert [c.value for c in copies] == ["--from=build /opt/venv /opt/venv"], f"{name}: {[c.value for c in copies]}"


def test_copied_files_are_tracked(dockerfile):
    """Every COPY source from the build context exists in a clean checkout (the context is the repo root)."""
    name, insts = dockerfile
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.splitlines())
    ignore = (DOCKER / f"{name}.dockerignore").read_text().splitlines()
    copied = []
    for inst in insts:
        if inst.keyword not in ("COPY", "ADD"):
            continue
        words = inst.exec_form() or shlex.split(inst.expanded())
        if any(w.startswith("--from") for w in words):
            continue                                       # from a stage, checked above
        sources = [w for w in words if not w.startswith("--")][:-1]
        assert sources, f"{name}:{inst.line}: COPY without a source"
        for src in sources:
            assert (ROOT / src).exists(), f"{name}:{inst.line}: COPY {src} does not exist in the repo"
            assert src in tracked or any(t.startswith(src.rstrip("/") + "/") for t in tracked), \
                f"{name}:{inst.line}: COPY {src} is not tracked by git (a fresh clone lacks it)"
            assert f"!{src.rstrip('/')}" in ignore, f"{name}:{inst.line}: {name}.dockerignore leaves {src} out"
            copied.append(src.rstrip("/"))
    needed = {"pyproject.toml", pyproject()["project"]["readme"],
              *pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = {n.rstrip("*") for n in needed}
    assert needed <= set(copied), f"{name}: `pip install .` needs {sorted(needed - set(copied))} in the image"


def _runtime_extras() -> set[str]:
    """The extras `dev` pulls in through `hardspoof[...]`: everything of dev but its test tools."""
    for dep in pyproject()["project"]["optional-dependencies"]["dev"]:
        m = re.fullmatch(r"hardspoof\[([\w,\s-]+)\]", dep.replace(" ", ""))
        if m:
            return set(m.group(1).split(","))
    raise AssertionError("pyproject's dev extra does not name hardspoof[...]")


def test_pip_installs_the_runtime_extras_and_pins_and_no_test_tools(dockerfile):
    name, insts = dockerfile
    installs = _pip_installs(insts)
    targets = [w for args in installs for w in args if re.fullmatch(r"\.(\[[\w,-]*\])?", w)]
    assert targets, f"{name}: no `pip install .[...]` of the package"
    for t in targets:
        got = set(filter(None, t[2:-1].split(","))) if "[" in t else set()
        assert got == _runtime_extras(), f"{name}: installs {t!r}, want .[{','.join(sorted(_runtime_extras()))}]"
        assert "-e" not in [w for args in installs for w in args], f"{name}: an editable install needs /src at run time"
    words = {re.split(r"[\[<>=!~]", w)[0].lower() for args in installs for w in args}
    assert not words & TEST_TOOLS, f"{name}: test tools in the image: {sorted(words & TEST_TOOLS)}"
    # The torch pair is pinned in pyproject; an image that pre-installs torch must use the same pins.
    want = pins()
    for args in installs:
        for w in args:
            m = re.fullmatch(r"([\w.-]+)==(.+)", w)
            if m and m.group(1).lower() in want:
                assert m.group(2) == want[m.group(1).lower()], f"{name}: {w} but pyproject pins {want[m.group(1).lower()]}"
    assert any(f"torch=={want['torch']}" in args for args in installs), f"{name}: torch not installed at its pin"
    build = _stages(insts)[0][1]
    torch_args = [i for i in build if i.keyword == "ARG" and i.value.startswith("TORCH_INDEX=")]
    assert torch_args and "${TORCH_INDEX:+" in _run_text(build), f"{name}: torch's index must be a build argument"


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


def test_docs_document_the_builds():
    text = (ROOT / "docs" / "clusters.md").read_text()
    for name in DOCKERFILES:
        assert f"-f docker/{name} " in text, f"docs/clusters.md does not show how to build {name}"
    assert "MODELS=" in text and "build context" in text.lower() and "TORCH_INDEX" in text
    for flag in ("--runtime runc", "--ulimit nofile=", "debootstrap --variant=minbase", "CA_BUNDLE="):
        assert flag in text, f"docs/clusters.md: the podman recipe lacks {flag}"
    assert (DOCKER / "README.md").read_text().count("docs/clusters.md"), "docker/README.md must point to the guide"
