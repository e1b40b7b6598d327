"""Rendering for people (rich tables) and for programs (``--json``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

# Piped output (CI logs, `make demo | less`) gets a fixed width wide enough for our tables.
console = Console(width=None if sys.stdout.isatty() else 110)
error_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def table(
    title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[str] = ()
) -> None:
    grid = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column, justify="right" if column in right else "left")
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(grid)


def say(message: str) -> None:
    console.print(message, highlight=False)


def fail(code: str, message: str) -> None:
    error_console.print(f"error: {code}: {message}", highlight=False, markup=False, soft_wrap=True)


REJECTED_EXIT = 3


def report_rejection(context: Any, result: dict[str, Any]) -> None:
    """A risk rejection is recorded as an event, printed with its reason code and
    context, and ends the command with exit code 3 (the order was not placed)."""
    import typer

    if "rejected" not in result:
        return
    if context.as_json:
        emit_json(result)
    else:
        fail(result["rejected"]["reason"], result["message"])
    raise typer.Exit(REJECTED_EXIT)
