"""Helpers for the tests that attack export directories and kill imports: a small ledger of a
few thousand events, its export, the CLI in this process and in a child process."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from stakeledger.adapters.evm.bundle import MANIFEST, json_document
from stakeledger.adapters.evm.export import export_ledger
from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.cli import evm as evm_cli
from stakeledger.cli import main as cli_main
from stakeledger.domain.service.application import StakeLedger, TransferRequest
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
STAKELEDGER = str(Path(sys.executable).with_name("stakeledger"))
# Hardhat/Anvil accounts #0 and #1: well-known test keys that never hold value.
KEY_A = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
SIGNER_A = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
KEY_B = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
SIGNER_B = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
AGENTS = ("alice", "bob", "carol")
# 1,000 transfers in one batch: 2,009 events, one import batch of 2,000 and a part-batch.
KILL_TEST_TRANSFERS = 1_000
CHILD_TIMEOUT_SECONDS = 120


def build_small_ledger(url: str, transfers: int = 10, seed: int = 11) -> StakeLedger:
    """Settings, four accounts, two mints and one batch of transfers (2 events each): 9 + 2 * transfers events."""
    app = open_ledger(url, clock=ManualClock(), new_id=SeededIds(seed))
    app.initialise(decimals=6)
    for name in AGENTS:
        app.open_account(name)
    app.mint("alice", 1_000_000_000)
    app.mint("bob", 500_000_000)
    app.transfer_many(
        [
            TransferRequest("alice", "bob", 1_000) if index % 2 == 0 else TransferRequest("bob", "carol", 700)
            for index in range(transfers)
        ]
    )
    return app


def balances(app: StakeLedger) -> dict[str, int]:
    return {name: app.balance_of(name) for name in AGENTS}


def make_export(directory: Path, *, signing_key: str | None = None, transfers: int = 10) -> dict[str, int]:
    """Export a fresh small ledger (on SQLite, beside ``directory``) into ``directory``; its agents' balances."""
    source = build_small_ledger(f"sqlite:///{directory.parent / (directory.name + '-source.db')}", transfers)
    try:
        export_ledger(source, directory, signing_key=signing_key)
        return balances(source)
    finally:
        source.close()


def refresh_manifest_entry(directory: Path, name: str) -> None:
    """Make the manifest state ``name``'s current size and sha256, as a careful forger would."""
    data = (directory / name).read_bytes()
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (directory / MANIFEST).write_bytes(json_document(manifest))


def deep_json(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def run_cli(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """The CLI in this process: (exit code, stdout, stderr)."""
    names = {command.name for command in cli_main.app.registered_commands}
    if "verify" not in names:
        evm_cli.register(cli_main.app)
    monkeypatch.setattr(sys, "argv", ["stakeledger", *args])
    try:
        cli_main.main()
        code = 0
    except SystemExit as done:
        code = done.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def run_child(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed ``stakeledger`` console script in a child process."""
    return subprocess.run(
        [STAKELEDGER, *args],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_SECONDS,
        env={**os.environ, **(env or {})},
        cwd=REPO_ROOT,
        check=False,
    )


# A child process running the real CLI whose progress callback SIGKILLs it the first time
# phase KILL_PHASE reports KILL_AT or more done: a kill at an exact point of the import.
KILL_AT_PROGRESS = textwrap.dedent(
    """
    import os, signal, sys
    from contextlib import contextmanager

    import stakeledger.cli.evm as evm
    from stakeledger.cli.main import main

    phase, at = os.environ["KILL_PHASE"], int(os.environ["KILL_AT"])

    @contextmanager
    def killing(enabled):
        def update(name, done, total):
            if name == phase and done >= at:
                os.kill(os.getpid(), signal.SIGKILL)
        yield update

    evm.progress_bars = killing
    sys.argv = ["stakeledger", *sys.argv[1:]]
    main()
    """
)


def run_child_killed_at(phase: str, at: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-c", KILL_AT_PROGRESS, *args],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_SECONDS,
        env={**os.environ, "KILL_PHASE": phase, "KILL_AT": str(at)},
        cwd=REPO_ROOT,
        check=False,
    )


def assert_clean_refusal(completed: subprocess.CompletedProcess[str], *expected: str) -> None:
    """Exit 1 (never a signal), one error line on stderr naming ``expected``, no traceback."""
    assert completed.returncode == 1, (completed.returncode, completed.stderr[-2000:])
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr[-2000:]
    assert lines[0].startswith("error: "), lines
    assert "Traceback" not in completed.stderr
    for text in expected:
        assert text in lines[0], lines[0]
