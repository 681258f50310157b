"""Every ```python block of README.md runs as written, the way a reader runs it: in a fresh
interpreter, in an empty folder, after `guard init` with GUARD_DATA_DIR pointing there.
(The shell blocks are not run: they need servers, files and keys of the reader's own.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks() -> list[str]:
    return PYTHON_BLOCK.findall(README.read_text(encoding="utf-8"))


def reader_environment(data_dir: Path) -> dict[str, str]:
    """The test run's environment without its GUARD_* settings, as a reader's shell would be."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GUARD_")}
    env["GUARD_DATA_DIR"] = str(data_dir)
    return env


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_the_readme_has_python_snippets() -> None:
    # A change of fence (```py, indented code) must not quietly turn the test below into none.
    assert python_blocks()


@pytest.mark.slow  # two fresh interpreters that load dlib, FAISS and C2PA: about 9 s a block
@pytest.mark.parametrize("number", range(len(python_blocks())))
def test_readme_python_snippet_runs(number: int, tmp_path: Path) -> None:
    env = reader_environment(tmp_path / "var")
    init = run([str(Path(sys.executable).with_name("guard")), "init"], tmp_path, env)
    assert init.returncode == 0, init.stdout + init.stderr
    snippet = tmp_path / f"readme_snippet_{number}.py"
    snippet.write_text(python_blocks()[number], encoding="utf-8")
    ran = run([sys.executable, str(snippet)], tmp_path, env)
    assert ran.returncode == 0, f"README python block {number} failed:\n{ran.stderr[-4000:]}"
    assert "Traceback" not in ran.stderr
