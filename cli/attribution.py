"""``portfolio attribution``: realised and unrealised P&L by market, group and signal feature."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds ``attribution`` to the portfolio group (registered after cli.portfolio)."""
