"""Checks on what the command line is given, before any command runs.

- ``check_arguments(argv)``: no argument may hold a control or invisible character (see
  ``api.inputs.check_text``): titles, reasons, names, groups, actors, ids, paths; and none
  may be longer than ``MAX_ARGUMENT_CHARS``, so no refusal further on quotes 10 kB back.
- ``number_option(value, what)``: a number given as text to a command that passes it on
  unparsed (risk percentages) is refused above ``MAX_NUMBER_CHARS`` characters before
  anything converts it.
- ``percent_option(value, what, low, high)``: a ``--*-pct`` option. Every such option takes a
  percentage (``10`` is 10 %), within the option's range; a value strictly between -1 and
  1 other than 0 (``0.02``) looks like a fraction and is refused with the percent it
  probably meant, unless the command's ``--allow-sub-percent`` says it is meant.
- ``rationale_options(...)``: an order's ``--belief/--edge/--reasoning/--feature`` as a
  Rationale (``domain.rules.rationale``), None when none is given; refusals name the option.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from stakeledger.api.inputs import check_text, printable, shown
from stakeledger.domain.errors import InvalidAmountError, InvalidInputError
from stakeledger.domain.rules.rationale import Rationale

MAX_NUMBER_CHARS = 160
# No argument of any command needs more: a path is at most 4,096 bytes on Linux, a title 200
# characters, a reason 500. Numbers are bounded far lower where they are read.
MAX_ARGUMENT_CHARS = 8_192


def check_arguments(argv: Sequence[str]) -> None:
    """InvalidInputError naming the first argument (by its option, when it is an option's
    value) that is longer than MAX_ARGUMENT_CHARS or holds a control or invisible
    character; nothing has run yet."""
    previous = ""
    for number, argument in enumerate(argv, start=1):
        option, equals, _ = argument.partition("=")
        if argument.startswith("--") and equals:
            what = option
        elif previous.startswith("--") and "=" not in previous:
            what = f"argument {number} (after {previous})"
        else:
            what = f"argument {number}"
        if len(argument) > MAX_ARGUMENT_CHARS:
            raise InvalidInputError(
                f"{printable(what)} has {len(argument)} characters; at most {MAX_ARGUMENT_CHARS}: "
                f"{shown(printable(argument))}"
            )
        check_text(argument, printable(what))
        previous = argument


def number_option(value: str | None, what: str) -> str | None:
    if value is not None and len(value) > MAX_NUMBER_CHARS:
        raise InvalidAmountError(f"{what} has {len(value)} characters; at most {MAX_NUMBER_CHARS}: {shown(value)}")
    return value


ALLOW_SUB_PERCENT_HELP = (
    "Accept a --*-pct value between -1 and 1 (e.g. 0.5 meaning 0.5 %); without it such a value is "
    "refused as a likely fraction."
)


def percent_option(
    value: str | None,
    what: str,
    low: Decimal,
    high: Decimal | None,
    *,
    low_open: bool = True,
    high_open: bool = False,
    allow_sub_percent: bool = False,
) -> str | None:
    """``value`` (a percentage as text) checked for the option ``what`` and passed on unchanged.

    Refused: not a plain decimal number (no surrounding spaces), outside ``low``..``high``
    (open at an end when ``low_open`` / ``high_open``; no upper bound if ``high`` is None), and, unless ``allow_sub_percent``,
    a non-zero value strictly between -1 and 1, which is most likely a fraction written
    where a percent is meant (``--trail-pct 0.02`` would be 0.02 %, not 2 %)."""
    if number_option(value, what) is None:
        return None
    assert value is not None
    try:
        pct = Decimal(value) if value == value.strip() else None
    except InvalidOperation:
        pct = None
    if pct is None or not pct.is_finite():
        raise InvalidInputError(f"{what} takes a percentage as a decimal number such as 10 (for 10 %): {shown(value)}")
    below = pct <= low if low_open else pct < low
    above = high is not None and (pct >= high if high_open else pct > high)
    if below or above:
        span = f"{'above' if low_open else 'at least'} {low}"
        if high is not None:
            span += f" and {'below' if high_open else 'at most'} {high}"
        raise InvalidInputError(f"{what} takes a percentage {span} (10 means 10 %): {shown(value)}")
    if not allow_sub_percent and pct != 0 and -1 < pct < 1:
        meant = (pct * 100).normalize()
        raise InvalidInputError(
            f"{what} takes a percentage, so {value} would mean {value} %: did you mean {meant:f} (percent)? "
            "Pass --allow-sub-percent if you mean a value below 1 %"
        )
    return value


BELIEF_HELP = "Rationale: your probability that the artifact is validated, e.g. 0.62 (recorded, not traded on)."
EDGE_HELP = "Rationale: the edge you see, in probability, from -1 to 1, e.g. 0.05."
REASONING_HELP = "Rationale: why, in 1-1000 characters of one line."
FEATURE_HELP = "Rationale: a signal's contribution in log-odds, NAME=VALUE (e.g. fg_lo=0.12); repeatable, at most 32."


def rationale_options(
    *,
    belief: str | None = None,
    edge: str | None = None,
    reasoning: str | None = None,
    features: Sequence[str] | None = None,
) -> Rationale | None:
    """The order's rationale from its options, each number read exactly; None when none is given."""
    try:
        return Rationale.from_inputs(belief=belief, edge=edge, reasoning=reasoning, features=features or None)
    except InvalidInputError as error:
        message = str(error)
        for field, option in (("belief", "--belief"), ("edge", "--edge"), ("reasoning", "--reasoning")):
            if message.startswith(f"{field} "):
                message = f"{option}: {message}"
                break
        else:
            message = f"--feature: {message}" if "feature" in message else message
        raise InvalidInputError(message) from None
