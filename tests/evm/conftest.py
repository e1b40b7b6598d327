"""Paths and the guard for the npm checker, shared by the EVM export tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
OZVERIFY_DIR = REPO_ROOT / "tools" / "ozverify"
VERIFY_SCRIPT = OZVERIFY_DIR / "verify.mjs"
BUILD_TREE_SCRIPT = Path(__file__).resolve().parent / "oz_build_tree.mjs"
CONTRACT_PATH = Path(__file__).resolve().parent / "BalanceProof.vy"


def node_with_ozverify() -> str:
    """The node executable, failing (never skipping) when the npm checker is not installed.

    Called from the test body rather than used as a fixture, so a missing install is
    reported as a failed test, not as a setup error.
    """
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the OpenZeppelin interop tests need Node.js 20")
    if not (OZVERIFY_DIR / "node_modules" / "@openzeppelin" / "merkle-tree").is_dir():
        pytest.fail("tools/ozverify/node_modules is missing: `make test` installs it (npm ci --prefix tools/ozverify)")
    return node
