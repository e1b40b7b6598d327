"""README.md's command blocks, from "Using it" to the HTTP API, run as written and in order on
a fresh SQLite ledger: the walkthrough a new user types must work."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli import run

ROOT = Path(__file__).resolve().parents[2]
# Lines a test cannot run as written: another server, a worker that runs until stopped, the API.
NOT_RUN = ("postgresql://...", "projections run", "stakeledger serve", "curl ", "-H ", "-X ", "-d ", ". .venv")


def walkthrough() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Using it") : readme.index("### Choosing the store")]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            command = re.split(r"\s{2,}#", line)[0].strip()
            if command and not any(marker in command for marker in NOT_RUN):
                commands.append(command)
    return commands


def run_line(command: str, cwd: Path, env: dict[str, str], capsys, monkeypatch) -> tuple[int, str, str]:
    """A ``stakeledger`` line runs in this process through the console script's ``main``, the
    argv split as the shell splits it (start-up is most of a command's time); any other line,
    or one that needs the shell, runs in a shell."""
    words = shlex.split(command)
    if words[0] != "stakeledger" or _needs_shell(command):
        done = subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout, done.stderr
    return run(capsys, monkeypatch, *words[1:])


def _needs_shell(command: str) -> bool:
    """Whether the shell would do more than split the line: a metacharacter outside quotes, or
    an expansion ($, a backquote, ~) anywhere."""
    if any(mark in command for mark in ("$", "`", "~")):
        return True
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return any(token and set(token) <= set("|&;<>()") for token in lexer)


@pytest.mark.slow
def test_readme_when_walked_through_in_order_then_every_command_does_what_it_says(tmp_path, capsys, monkeypatch):
    commands = walkthrough()
    assert len(commands) > 40 and commands[0].startswith("stakeledger init")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("STAKELEDGER_DATABASE_URL", None)  # the README's default store: ./stakeledger.db
    monkeypatch.delenv("STAKELEDGER_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    for command in commands:
        code, out, err = run_line(command, tmp_path, env, capsys, monkeypatch)
        assert code == 0, (command, out[-500:], err[-500:])
    assert (tmp_path / "snapshot" / "header.json").exists() and (tmp_path / "alice.png").exists()
    # The console script itself, as a person types it: one line through a real shell.
    done = subprocess.run(
        "stakeledger audit", shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
