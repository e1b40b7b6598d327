"""README.md's command blocks, from "Using it" to the HTTP API, run as written and in order on
a fresh SQLite ledger: the walkthrough a new user types must work."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_readme_when_walked_through_in_order_then_every_command_does_what_it_says(tmp_path):
    commands = walkthrough()
    assert len(commands) > 40 and commands[0].startswith("stakeledger init")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("STAKELEDGER_DATABASE_URL", None)  # the README's default store: ./stakeledger.db
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (command, done.stdout[-500:], done.stderr[-500:])
    assert (tmp_path / "snapshot" / "header.json").exists() and (tmp_path / "alice.png").exists()
