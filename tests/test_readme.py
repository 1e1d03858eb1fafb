"""README stays true: its two set-up commands are what CI runs, and the main job runs (reduced)."""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Smaller versions of the main job's steps: same commands, fewer clips' worth of compute.
REDUCED = {"reconstruct": ["--param", "steps=5", "--param", "gl_iters=4"],
           "train": ["--epochs", "1", "--max-steps", "2", "--crop", "16000", "--no-progress"],
           "eval": ["--no-progress"]}


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)


def test_readme_test_command_is_what_ci_runs():
    test_command = bash_blocks()[1].strip()
    assert test_command in (ROOT / ".ci/run").read_text()


def _tool(name: str) -> str:
    return shutil.which(name) or str(Path(sys.executable).parent / name)


def test_main_command_runs_reduced(tmp_path):
    steps = [s.strip() for s in bash_blocks()[0].split("&&")]
    assert steps[:3] == ["python3 -m venv .venv", ". .venv/bin/activate", 'pip install -e ".[dev]"']
    env = dict(os.environ, HARDSPOOF_NO_BAR="1")
    output = ""
    for step in steps[3:]:
        argv = shlex.split(step)
        argv[0] = _tool(argv[0])
        key = "reconstruct" if argv[1] == "run" else argv[1]
        proc = subprocess.run(argv + REDUCED.get(key, []), cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, f"{step}\n{proc.stdout}\n{proc.stderr}"
        output = proc.stdout
    assert (tmp_path / "runs/demo/manifest").is_dir()
    eer = re.search(r"EER\s*[:=]?\s*([0-9.]+)\s*%", output)
    assert eer and 0 <= float(eer.group(1)) <= 100, output
