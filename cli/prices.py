"""Price history and the trade tape: artifact prices and artifact trades."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the price-history commands to the artifact group (registered after cli.markets)."""
