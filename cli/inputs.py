"""Checks on what the command line is given, before any command runs.

- ``check_arguments(argv)``: no argument may hold a control or invisible character (see
  ``api.inputs.check_text``): titles, reasons, names, groups, actors, ids, paths.
- ``text_option(value, what)``: the same check for one free-text option, by name, for
  commands invoked without ``main`` (tests, other typer apps).
- ``number_option(value, what)``: a number given as text to a command that passes it on
  unparsed (risk percentages) is refused above ``MAX_NUMBER_CHARS`` characters before
  anything converts it.
"""

from __future__ import annotations

from collections.abc import Sequence

from stakeledger.api.inputs import check_text, printable, shown
from stakeledger.domain.errors import InvalidAmountError

MAX_NUMBER_CHARS = 160


def check_arguments(argv: Sequence[str]) -> None:
    """InvalidInputError naming the first argument (by its option, when it is an option's
    value) that holds a control or invisible character; nothing has run yet."""
    previous = ""
    for number, argument in enumerate(argv, start=1):
        option, equals, _ = argument.partition("=")
        if argument.startswith("--") and equals:
            what = option
        elif previous.startswith("--") and "=" not in previous:
            what = f"argument {number} (after {previous})"
        else:
            what = f"argument {number}"
        check_text(argument, printable(what))
        previous = argument


def text_option(value: str | None, what: str) -> str | None:
    return None if value is None else check_text(value, what)


def number_option(value: str | None, what: str) -> str | None:
    if value is not None and len(value) > MAX_NUMBER_CHARS:
        raise InvalidAmountError(f"{what} has {len(value)} characters; at most {MAX_NUMBER_CHARS}: {shown(value)}")
    return value
