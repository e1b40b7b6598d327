"""``stakeledger backtest STRATEGY.py``: a strategy replayed over recorded history."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the ``backtest`` command."""
