"""ruff, mypy and deptry run as part of the suite, so the one test command checks them too;
CI runs the README's own install and test commands."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "src", "tests", "bench", "scripts"],
        ["ruff", "format", "--check", "src", "tests", "bench", "scripts"],
        [sys.executable, "-m", "mypy"],
        # every import of src/ is a declared dependency (an undeclared one fails here)
        ["deptry", "src"],
    ],
    ids=["ruff", "ruff-format", "mypy", "deptry"],
)
def test_clean(command: list[str]) -> None:
    if shutil.which(command[0]) is None and command[0] != sys.executable:
        pytest.fail(f"{command[0]} is not installed (pip install -e '.[dev]')")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def readme_command(language_line: str) -> str:
    """The first command of the README's section that starts at ``language_line``."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(language_line) :]
    start = section.index("```bash") + len("```bash")
    return section[start : section.index("```", start)].strip().splitlines()[0]


def test_ci_runs_the_readme_commands_in_a_fresh_environment() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    install = readme_command("## Install")
    tests = readme_command("## Tests")
    assert (install, tests) == ("bash install.sh", "python3 -m pytest")
    lines = [line.strip() for line in ci.splitlines()]
    venv = next(i for i, line in enumerate(lines) if "-m venv" in line)
    activate = next(i for i, line in enumerate(lines) if line.startswith("source"))
    assert venv < activate < lines.index(install) < lines.index(tests)
