"""CI runs what the README tells a reader to run."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readmes_test_command_verbatim():
    command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert "python -m pytest" in command and command in (ROOT / "README.md").read_text().splitlines()
