"""Rendering for people (rich tables) and for programs (``--json``).

Nothing a user or the log supplies is read as rich markup: table cells and titles are
``Text``, ``say`` prints plain text unless a caller builds a ``Text`` itself, and every
control or invisible character (ANSI escapes, bidi overrides) is shown as its escape
(``printable``), so a title such as ``[/bold] x`` or ``\x1b[2J`` prints as written.
Store URLs in messages lose their password (``redact_urls``). ``--json`` output is
ASCII-escaped JSON.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from stakeledger.api.inputs import printable

# Piped output (CI logs, `make demo | less`) gets a fixed width wide enough for our tables.
console = Console(width=None if sys.stdout.isatty() else 110)
error_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def plain(value: Any) -> Text:
    """A value as literal text for the terminal: no markup, control characters escaped."""
    return Text(printable("" if value is None else str(value)))


def table(
    title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[str] = ()
) -> None:
    grid = Table(title=None if title is None else plain(title), title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(plain(column), justify="right" if column in right else "left")
    for row in rows:
        grid.add_row(*(plain(cell) for cell in row))
    console.print(grid)


def say(message: str | Text) -> None:
    """Print a line for people. A string is printed as written (never as markup); a caller
    that wants styling passes a ``Text`` whose parts it made ``printable``."""
    if isinstance(message, Text):
        console.print(message, highlight=False)
    else:
        console.print(printable(message), highlight=False, markup=False)


def strong(value: Any) -> tuple[str, str]:
    """A bold part for ``Text.assemble``: ``say(Text.assemble(strong(name), " ..."))``."""
    return printable(str(value)), "bold"


_URL_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<netloc>[^/\s'\"?#]*)")


_URL_PASSWORD_PARAMETER = re.compile(r"([?&]password=)[^&\s'\"]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***`` (as adapters.evm.importer.redact)."""
    return redact_urls(url)


def redact_urls(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` in it replaced by ``***``."""

    def hide(found: re.Match[str]) -> str:
        netloc = found.group("netloc")
        userinfo, at, host = netloc.rpartition("@")
        if not at or ":" not in userinfo:
            return found.group()
        user = userinfo.split(":", 1)[0]
        return f"{found.group('head')}{user}:***@{host}"

    return _URL_PASSWORD_PARAMETER.sub(r"\g<1>***", _URL_USERINFO.sub(hide, text))


def fail(code: str, message: str) -> None:
    """One line on stderr: ``error: CODE: message``, escaped and without store passwords."""
    line = printable(redact_urls(f"error: {code}: {message}"))  # a newline shows as \n: one line
    error_console.print(line, highlight=False, markup=False, soft_wrap=True)


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
