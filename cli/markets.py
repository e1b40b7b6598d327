"""Artifact markets and trading: artifact add/show/quote, trade open/close/cancel/batch (list and book are in cli.views)."""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from stakeledger.api.inputs import check_json_shape, shown
from stakeledger.cli.context import get_context
from stakeledger.cli.inputs import BELIEF_HELP, EDGE_HELP, FEATURE_HELP, REASONING_HELP, rationale_options
from stakeledger.cli.output import REJECTED_EXIT, emit_json, fail, report_rejection, say, table
from stakeledger.domain.decisions.trading import LimitOrder, MarketOrder, order_lifetime
from stakeledger.domain.errors import InvalidInputError, LedgerError
from stakeledger.domain.model.artifacts import check_side
from stakeledger.domain.rules.money import format_amount, parse_amount, parse_price_wad
from stakeledger.domain.rules.rationale import Rationale, wad_text
from stakeledger.domain.rules.resolution import ResolutionRules
from stakeledger.domain.vocabulary import MAX_BATCH_ORDERS, WAD

artifact_app = typer.Typer(help="List research artifacts and read their markets.", no_args_is_help=True)
trade_app = typer.Typer(
    help="Trade on artifact markets: market and limit orders, closes, cancels, batches, one position's history.",
    no_args_is_help=True,
)

CommandId = Annotated[
    Optional[str],
    typer.Option(
        "--command-id", help="Client command id: a retry with the same id and payload returns the first result."
    ),
]
Side = Annotated[str, typer.Option("--side", help="long (predicts validated) or short (predicts deprecated).")]
# An order's rationale (issue 19): why it was placed, stored on its event (docs/rationale.md).
Edge = Annotated[Optional[str], typer.Option("--edge", help=EDGE_HELP)]
Reasoning = Annotated[Optional[str], typer.Option("--reasoning", help=REASONING_HELP)]
Features = Annotated[Optional[list[str]], typer.Option("--feature", metavar="NAME=VALUE", help=FEATURE_HELP)]


def register(app: typer.Typer) -> None:
    app.add_typer(artifact_app, name="artifact")
    app.add_typer(trade_app, name="trade")


def price(wad: int | str) -> str:
    return str((Decimal(int(wad)) / WAD).quantize(Decimal("0.000001")))


@artifact_app.command("add")
def add(
    ctx: typer.Context,
    artifact_id: Annotated[str, typer.Argument(metavar="ID")],
    title: Annotated[str, typer.Option(help="What the artifact is.")],
    liquidity: Annotated[str, typer.Option(help="LMSR liquidity b in tokens; the pool is funded with b·ln 2.")],
    group: Annotated[Optional[str], typer.Option(help="Correlation group, e.g. a research field.")] = None,
    min_hold_days: Annotated[
        int, typer.Option(help="Days an artifact must be listed before voluntary closes (0, the default: at once).")
    ] = 0,
    fee_bps: Annotated[
        int,
        typer.Option(
            help="Trade fee in basis points (100 = 1 %), charged on top of a buy and withheld from a sale; "
            "credited to sys:fees (default 0)."
        ),
    ] = 0,
    validated_at: Annotated[
        Optional[str], typer.Option(help="Validated needs a settlement price at or above this (default 0.7).")
    ] = None,
    deprecated_at: Annotated[
        Optional[str], typer.Option(help="Deprecated needs a settlement price at or below this (default 0.1).")
    ] = None,
    flagged_below: Annotated[
        Optional[str], typer.Option(help="Flagged needs a settlement price below this (default 0.3).")
    ] = None,
    window_days: Annotated[
        Optional[int],
        typer.Option(help="Days of p(long) averaged into the default settlement price (default 7)."),
    ] = None,
    correction_hours: Annotated[
        Optional[int],
        typer.Option(
            help="Hours after a terminal transition during which 'artifact reopen' may correct it (default 24)."
        ),
    ] = None,
    auto_resolve: Annotated[
        bool,
        typer.Option(
            "--auto-resolve",
            help="Resolve by itself: when the window's average meets a threshold for the sustained period, "
            "the trade that completes it also makes the transition.",
        ),
    ] = False,
    sustained_hours: Annotated[
        Optional[int],
        typer.Option(help="With --auto-resolve: hours the average must stay beyond a threshold (default 24)."),
    ] = None,
    command_id: CommandId = None,
) -> None:
    """List an artifact and open its binary LMSR market, with its resolution thresholds."""
    context = get_context(ctx)
    app = context.app
    result = app.list_artifact(
        artifact_id,
        title,
        parse_amount(liquidity, app.decimals),
        group=group,
        min_hold_days=min_hold_days,
        fee_bps=fee_bps,
        resolution=_resolution(
            validated_at, deprecated_at, flagged_below, window_days, correction_hours, auto_resolve, sustained_hours
        ),
        command_id=command_id,
    )
    if context.as_json:
        emit_json(result)
    else:
        say(
            f"Listed {artifact_id}; pool funded with {format_amount(int(result['subsidy_units']), app.decimals)} tokens."
        )


def _resolution(
    validated_at: str | None,
    deprecated_at: str | None,
    flagged_below: str | None,
    window_days: int | None,
    correction_hours: int | None = None,
    auto_resolve: bool = False,
    sustained_hours: int | None = None,
) -> ResolutionRules | None:
    """The market's rules from the options given (seed 000's for the rest), or None for all defaults."""
    given = (validated_at, deprecated_at, flagged_below, window_days, correction_hours, sustained_hours)
    if all(option is None for option in given) and not auto_resolve:
        return None
    if sustained_hours is not None and not auto_resolve:
        raise InvalidInputError("--sustained-hours only means something with --auto-resolve")
    defaults = ResolutionRules()
    return ResolutionRules(
        validated_min_wad=parse_price_wad(validated_at, "--validated-at")
        if validated_at is not None
        else defaults.validated_min_wad,
        deprecated_max_wad=parse_price_wad(deprecated_at, "--deprecated-at")
        if deprecated_at is not None
        else defaults.deprecated_max_wad,
        flagged_below_wad=parse_price_wad(flagged_below, "--flagged-below")
        if flagged_below is not None
        else defaults.flagged_below_wad,
        window_days=window_days if window_days is not None else defaults.window_days,
        correction_hours=correction_hours if correction_hours is not None else defaults.correction_hours,
        auto_resolve=auto_resolve,
        sustained_hours=sustained_hours if sustained_hours is not None else defaults.sustained_hours,
    )


def rules_text(resolution: dict[str, Any]) -> str:
    """'validated >= 0.7, deprecated <= 0.1, flagged < 0.3; 7-day average' from artifact_state's rules."""
    return (
        f"validated >= {price(resolution['validated_min_wad'])}, deprecated <= "
        f"{price(resolution['deprecated_max_wad'])}, flagged < {price(resolution['flagged_below_wad'])}; "
        f"{resolution['window_days']}-day average"
    )


def _correction_text(status: dict[str, Any]) -> str:
    hours = f"{status['correction_hours']} h after a terminal transition"
    return f"{hours}; reopenable until {status['reopen_until']}" if status["reopen_until"] else hours


def _auto_text(status: dict[str, Any]) -> str:
    if not status["auto_resolve"]:
        return "off (transitions only by 'artifact transition')"
    return f"on: a threshold met for {status['sustained_hours']} h resolves the market at the next trade"


def _threshold_text(threshold: dict[str, Any]) -> str:
    """'needs >= 0.700000: met since ..., due at ...' or 'needs >= 0.700000: 0.105000 away'."""
    needs = f"needs {threshold['comparison']} {price(threshold['bound_wad'])}"
    if not threshold["met"]:
        return f"{needs}: the average is {price(threshold['distance_wad'])} away"
    if threshold["met_since"] is not None:
        return f"{needs}: met since {threshold['met_since']}, resolves by itself at a trade from {threshold['due_at']}"
    return f"{needs}: met now"


@artifact_app.command("show")
def show(ctx: typer.Context, artifact_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """State, prices (the settlement price once settled), resolution rules, pool and open interest."""
    context = get_context(ctx)
    app = context.app
    state = app.artifact_state(artifact_id)
    status = app.resolution_status(artifact_id)
    if "window_average_wad" in status:  # read a moment later: one average for the price and its distances
        state["window_average_wad"] = status["window_average_wad"]
    settled = state["settlement_price_wad"]
    summary = {
        **state,
        "price_long": price(state["price_long_wad"]),
        "price_short": price(state["price_short_wad"]),
        "settlement_price": None if settled is None else price(settled),
        "window_average": None if settled is not None else price(state["window_average_wad"]),
        "correction": {key: status[key] for key in ("correction_hours", "reopen_until")},
        "auto_resolution": {
            "enabled": status["auto_resolve"],
            "sustained_hours": status["sustained_hours"],
            "thresholds": [
                {**t, "bound": price(t["bound_wad"]), "distance": price(t["distance_wad"])}
                for t in status["thresholds"]
            ],
        },
    }
    if context.as_json:
        emit_json(summary)
        return
    shown = {
        **{k: v for k, v in summary.items() if k not in ("correction", "auto_resolution")},
        "resolution": rules_text(state["resolution"]),
        "correction window": _correction_text(status),
        "auto-resolution": _auto_text(status),
        **{f"to {t['state']}": _threshold_text(t) for t in status["thresholds"]},
        "pool": format_amount(int(state["pool_units"]), app.decimals),
        "bounties": ", ".join(state["bounties"]) or "none",
    }
    if settled is not None:  # the pool's quote no longer trades: show only what the market settled at
        for stale in (
            "price_long_wad",
            "price_short_wad",
            "price_long",
            "price_short",
            "window_average_wad",
            "window_average",
        ):
            shown.pop(stale)
    else:
        shown.pop("settlement_price_wad")
        shown.pop("settlement_price")
    table(f"Artifact {artifact_id}", ["field", "value"], [[key, value] for key, value in shown.items()])


@artifact_app.command("quote")
def quote(
    ctx: typer.Context,
    artifact_id: Annotated[str, typer.Argument(metavar="ID")],
    side: Side,
    shares: Annotated[Optional[str], typer.Option(help="Buy this many shares.")] = None,
    tokens: Annotated[Optional[str], typer.Option(help="Spend this many tokens.")] = None,
) -> None:
    """What a buy would cost, its average price and the price after; writes nothing."""
    context = get_context(ctx)
    app = context.app
    d = app.decimals
    result = app.quote(
        artifact_id,
        side,
        shares_units=parse_amount(shares, d) if shares is not None else None,
        tokens_units=parse_amount(tokens, d) if tokens is not None else None,
    )
    if context.as_json:
        emit_json(result)
        return
    table(
        f"Quote {artifact_id} {side}",
        ["shares", "cost", "fee", "avg price", "p(long) before", "p(long) after"],
        [
            [
                format_amount(int(result["shares_units"]), d),
                format_amount(int(result["cost_units"]), d),
                format_amount(int(result["fee_units"]), d),
                price(result["average_price_wad"]),
                price(result["price_long_before_wad"]),
                price(result["price_long_after_wad"]),
            ]
        ],
    )


@trade_app.command("open", context_settings={"ignore_unknown_options": True})
def open_trade(
    ctx: typer.Context,
    agent: str,
    artifact_id: Annotated[str, typer.Argument(metavar="ARTIFACT")],
    side: Side,
    tokens: Annotated[str, typer.Option(help="Tokens to commit.")],
    max_price: Annotated[
        Optional[str], typer.Option(help="Market order: refuse if the average price exceeds this.")
    ] = None,
    min_shares: Annotated[
        Optional[str], typer.Option(help="Market order: refuse if fewer shares would be bought.")
    ] = None,
    limit_price: Annotated[
        Optional[str],
        typer.Option(help="Limit order: escrow the tokens and buy when the side's price falls below this."),
    ] = None,
    expires_in: Annotated[Optional[float], typer.Option(help="Limit order: days until it expires.")] = None,
    belief: Annotated[Optional[str], typer.Option("--belief", help=BELIEF_HELP)] = None,
    edge: Edge = None,
    reasoning: Reasoning = None,
    feature: Features = None,
    command_id: CommandId = None,
) -> None:
    """Buy long or short shares at market, or rest a limit order; --belief, --edge, --reasoning
    and --feature record why (shown by `trade show`)."""
    context = get_context(ctx)
    app = context.app
    d = app.decimals
    tokens_units = parse_amount(tokens, d)
    rationale = rationale_options(belief=belief, edge=edge, reasoning=reasoning, features=feature)
    if limit_price is not None:
        if max_price is not None or min_shares is not None:
            raise InvalidInputError("--max-price and --min-shares apply to market orders, not limit orders")
        result = app.place_limit_order(
            agent,
            artifact_id,
            side,
            tokens_units,
            parse_price_wad(limit_price),
            expires_in_days=expires_in,
            rationale=rationale,
            command_id=command_id,
        )
        report_rejection(context, result)
        message = f"Order {result['order']} is {result['status']}."
    else:
        if expires_in is not None:
            raise InvalidInputError("--expires-in applies to limit orders only")
        result = app.open_position(
            agent,
            artifact_id,
            side,
            tokens_units,
            max_price_wad=parse_price_wad(max_price) if max_price is not None else None,
            min_shares_units=parse_amount(min_shares, d) if min_shares is not None else None,
            rationale=rationale,
            command_id=command_id,
        )
        report_rejection(context, result)
        message = (
            f"Opened {result['position']}: {format_amount(int(result['shares_units']), d)} {side} shares for "
            f"{tokens} tokens (avg {price(result['average_price_wad'])}); p(long) now {price(result['price_long_wad'])}."
        )
    if context.as_json:
        emit_json(result)
        return
    say(message)
    say_fills(result.get("fills", []), d)


def say_fills(fills: list[dict[str, Any]], d: int) -> None:
    """One line per order a trade filled: buy limits bought, take-profits sold."""
    for fill in fills:
        shares = format_amount(int(fill["shares_units"]), d)
        if fill.get("kind") == "take_profit":
            proceeds = format_amount(int(fill["proceeds_units"]), d)
            say(f"  take-profit {fill['order']} sold {shares} shares of {fill['position']} for {proceeds}")
        else:
            cost = format_amount(int(fill["cost_units"]), d)
            say(f"  filled {fill['order']} → {fill['position']}: {shares} shares for {cost}")


@trade_app.command("close")
def close(
    ctx: typer.Context,
    position_id: Annotated[str, typer.Argument(metavar="POSITION")],
    agent: Annotated[Optional[str], typer.Option(help="Refuse unless the position belongs to this agent.")] = None,
    shares: Annotated[
        Optional[str], typer.Option(help="Sell only this many shares; the rest stays open with its remaining cost.")
    ] = None,
    tokens: Annotated[
        Optional[str], typer.Option(help="Sell the fewest shares whose sale pays at least this many tokens.")
    ] = None,
    limit_price: Annotated[
        Optional[str],
        typer.Option(
            help="Take-profit: rest a sell that fills while the side's price is above this (cancel with trade cancel)."
        ),
    ] = None,
    expires_in: Annotated[Optional[float], typer.Option(help="Take-profit: days until it expires.")] = None,
    command_id: CommandId = None,
) -> None:
    """Sell a position (all of it, or part with --shares or --tokens) back to the market maker at the current price,
    or rest a take-profit with --limit-price."""
    context = get_context(ctx)
    app = context.app
    d = app.decimals
    if limit_price is not None:
        if shares is not None or tokens is not None:
            raise InvalidInputError("--shares and --tokens apply to closes at market, not to a take-profit")
        placed = app.place_take_profit(
            position_id, parse_price_wad(limit_price), agent=agent, expires_in_days=expires_in, command_id=command_id
        )
        if context.as_json:
            emit_json(placed)
            return
        say(
            f"Take-profit {placed['order']} on {position_id} at {price(placed['limit_price_wad'])} is {placed['status']}."
        )
        say_fills(placed.get("fills", []), d)
        return
    if expires_in is not None:
        raise InvalidInputError("--expires-in applies to a take-profit (--limit-price) only")
    result = app.close_position(
        position_id,
        agent=agent,
        shares_units=parse_amount(shares, d) if shares is not None else None,
        tokens_units=parse_amount(tokens, d) if tokens is not None else None,
        command_id=command_id,
    )
    if context.as_json:
        emit_json(result)
        return
    sold = format_amount(int(result["shares_sold_units"]), d)
    proceeds = format_amount(int(result["proceeds_units"]), d)
    pnl = format_amount(int(result["pnl_units"]), d)
    after = f"p(long) now {price(result['price_long_wad'])}"
    if int(result["shares_left_units"]):
        left = format_amount(int(result["shares_left_units"]), d)
        say(f"Sold {sold} shares of {position_id} for {proceeds} (P&L {pnl}); {left} shares stay open; {after}.")
    else:
        say(f"Closed {position_id} for {proceeds} (P&L {pnl}); {after}.")


@trade_app.command("cancel")
def cancel(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(metavar="ORDER")],
    agent: Annotated[Optional[str], typer.Option(help="Refuse unless this agent placed the order.")] = None,
    command_id: CommandId = None,
) -> None:
    """Cancel a resting limit order and release its escrow."""
    context = get_context(ctx)
    app = context.app
    result = app.cancel_order(order_id, agent, command_id=command_id)
    if context.as_json:
        emit_json(result)
    else:
        say(f"Cancelled {order_id}; released {format_amount(int(result['released_units']), app.decimals)} tokens.")


@trade_app.command("show")
def show_position(ctx: typer.Context, position_id: Annotated[str, typer.Argument(metavar="POSITION")]) -> None:
    """One position: holder, status, why its order was placed (the rationale) and its events in order.

    Probabilities and log-odds are shown as exact decimals; --json gives the stored ints
    (WAD, 10**18) and base units exactly."""
    context = get_context(ctx)
    app = context.app
    view = app.position_view(position_id)
    rationale = Rationale.from_event(view["rationale"])
    if context.as_json:
        emit_json({**view, "rationale_decimal": rationale.as_decimals() if rationale is not None else None})
        return
    d = app.decimals
    say(
        f"Position {position_id}: {view['owner']} {view['side']} on {view['artifact']}, {view['status']}; "
        f"{format_amount(view['quantity_units'], d)} shares, cost {format_amount(view['cost_units'], d)}"
        + (f" (from order {view['order']})" if view["order"] else "")
    )
    if rationale is None:
        say("Rationale: none recorded.")
    else:
        rows = [[name, value] for name, value in rationale.as_decimals().items() if name != "features"]
        rows += [[f"feature {name}", f"{wad_text(value)} log-odds"] for name, value in rationale.features.items()]
        table("Rationale", ["field", "value"], rows)
    table(
        "History",
        ["#", "at", "event", "details"],
        [[row["version"], row["at"], row["event"], _event_details(row, d)] for row in view["events"]],
    )


# Event fields a history row shows, in order; amounts in tokens, prices as probabilities.
_HIDDEN_FIELDS = ("event", "version", "at", "rationale", "position_id", "owner", "artifact_id", "side", "order_id")


def _event_details(row: dict[str, Any], d: int) -> str:
    parts = []
    for key, value in row.items():
        if key in _HIDDEN_FIELDS or value is None:
            continue
        if key.endswith("_units") and isinstance(value, int):
            parts.append(f"{key[:-6]} {format_amount(value, d)}")
        elif key.endswith("_wad") and isinstance(value, int):
            parts.append(f"{key[:-4]} {price(value)}")
        else:
            parts.append(f"{key} {value}")
    return ", ".join(parts)


@trade_app.command("batch")
def batch(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with a header row, or a JSON list of objects. Columns (keys): agent, artifact, side, tokens; "
            "for a market order also max_price, min_shares; for a limit order limit_price and expires_in_days "
            "(or expires_in); for either the rationale: belief, edge, reasoning, features (CSV: "
            "fg_lo=0.12;mom_lo=-0.03, JSON: that text or an object of decimal strings). Any other column, a column "
            "named twice or a key given twice is refused. At most 1,000 orders and 1 MiB."
        ),
    ],
    command_id: CommandId = None,
) -> None:
    """Place many orders in one transaction: each sees the state the earlier ones left; all or nothing.

    Bad input refuses the whole batch. An order a risk limit rejects is recorded and not
    placed while the others are: each rejected row is named with its reason code on stderr
    and the command exits 3, as `trade open` does."""
    context = get_context(ctx)
    app = context.app
    orders = [_order_from_row(row, app.decimals, number) for number, row in enumerate(_read_rows(file), start=1)]
    result = app.trade_batch(orders, command_id=command_id)
    rejected = [(number, outcome) for number, outcome in enumerate(result["results"], start=1) if "rejected" in outcome]
    if context.as_json:
        emit_json(result)
    else:
        placed = len(orders) - len(rejected)
        summary = f"Placed {placed} of {len(orders)} orders in one transaction"
        say(f"{summary}; {len(rejected)} rejected by risk limits." if rejected else f"{summary}.")
        for number, outcome in enumerate(result["results"], start=1):
            if "rejected" not in outcome:
                say(f"  order {number}: {outcome.get('position') or outcome.get('order')}")
        for number, outcome in rejected:
            fail(
                outcome["rejected"]["reason"],
                f"order {number} ({outcome['agent']} on {outcome['artifact']}) rejected: {outcome['message']}",
            )
    if rejected:  # as `trade open`: a rejected order ends the command with exit 3
        raise typer.Exit(REJECTED_EXIT)


_DAYS = re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,6})?")

# The columns of an order row: the options of `trade open`, with the same meaning.
REQUIRED_COLUMNS = ("agent", "artifact", "side", "tokens")
OPTIONAL_COLUMNS = ("max_price", "min_shares", "limit_price", "expires_in_days")
RATIONALE_COLUMNS = ("belief", "edge", "reasoning", "features")  # why (docs/rationale.md), each optional
ALIASES = {"expires_in": "expires_in_days"}  # `trade open --expires-in`, in days
COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, *RATIONALE_COLUMNS)
# Checked before the file is parsed: 1,000 orders of every column fit in well under 1 MiB.
MAX_BATCH_FILE_BYTES = 1 << 20


class _Pairs(list):  # type: ignore[type-arg]
    """A JSON object as the (key, value) pairs it was written with, so a key given twice is seen."""


def _read_rows(file: Path) -> list[dict[str, Any]]:
    """The file's order rows, every value as the text it was written as (JSON numbers too, so
    no amount passes through a float). The size and order caps are checked first, the whole
    file is parsed as one CSV or JSON document, and a column or key that is not an order
    field, or that is given twice, is refused by name."""
    try:
        with open(file, "rb") as handle:
            data = handle.read(MAX_BATCH_FILE_BYTES + 1)  # never more, whatever the file is
    except OSError as error:
        raise InvalidInputError(f"cannot read {file}: {error.strerror}") from None
    if len(data) > MAX_BATCH_FILE_BYTES:
        raise InvalidInputError(
            f"{file} is larger than {MAX_BATCH_FILE_BYTES} bytes; a batch holds at most {MAX_BATCH_ORDERS} orders"
        )
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark, as spreadsheets write, is not data
    except UnicodeDecodeError as error:
        raise InvalidInputError(f"{file} is not UTF-8 text (byte {error.start})") from None
    if file.suffix.lower() == ".json":
        return _json_rows(file, text)
    return _csv_rows(file, text)


def _json_rows(file: Path, text: str) -> list[dict[str, Any]]:
    check_json_shape(text, str(file))  # 200,000 nested brackets never reach the parser
    try:
        rows = json.loads(text, parse_int=str, parse_float=str, parse_constant=str, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"{file} is not valid JSON: {error.msg} at line {error.lineno}") from None
    if not isinstance(rows, list) or not all(isinstance(row, _Pairs) for row in rows):
        raise InvalidInputError(f"{file} must hold a JSON list of order objects")
    _check_order_count(file, len(rows))
    return [_json_row(pairs, number) for number, pairs in enumerate(rows, start=1)]


def _json_row(pairs: _Pairs, number: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in pairs:
        if key in row:
            raise InvalidInputError(f"order {number}: duplicate key {shown(key)}")
        if key == "features" and isinstance(value, _Pairs):
            value = _json_features(value, number)
        row[key] = value
    _check_columns(list(row), f"order {number}: ")
    return {ALIASES.get(key, key): value for key, value in row.items()}


def _json_features(pairs: _Pairs, number: int) -> dict[str, str]:
    """A JSON ``features`` object: name -> decimal (text, or a number read as its text)."""
    features: dict[str, str] = {}
    for name, value in pairs:
        if name in features:
            raise InvalidInputError(f"order {number}: feature {shown(name)} is given twice")
        if not isinstance(value, str):
            raise InvalidInputError(f"order {number}: feature {shown(name)} must be a decimal, not {shown(value)}")
        features[name] = value
    return features


def _csv_rows(file: Path, text: str) -> list[dict[str, Any]]:
    # The csv module reads the whole text, so a quoted field may hold a newline (and the
    # amount "5\n6" is refused as one value, not read as two lines).
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[dict[str, Any]] = []
    header: list[str] | None = None
    try:
        for fields in reader:
            if not fields:  # a blank line
                continue
            if header is None:
                header = [name.strip() for name in fields]
                _check_columns(header, f"{file}: ")
                header = [ALIASES.get(name, name) for name in header]
                missing = [name for name in REQUIRED_COLUMNS if name not in header]
                if missing:
                    raise InvalidInputError(f"{file}: no column {', '.join(map(repr, missing))} in the header")
                continue
            number = len(rows) + 1
            _check_order_count(file, number)
            if len(fields) > len(header):
                raise InvalidInputError(
                    f"order {number}: has {len(fields)} fields, but the header names {len(header)} columns"
                )
            rows.append(dict(zip(header, fields)))  # a short row lacks its last fields
    except csv.Error as error:
        raise InvalidInputError(f"{file} is not valid CSV: {error} (line {reader.line_num})") from None
    if header is None:
        raise InvalidInputError(f"{file} is empty: it needs a header row and at least one order")
    return rows


def _check_order_count(file: Path, count: int) -> None:
    if count > MAX_BATCH_ORDERS:
        raise InvalidInputError(f"{file} holds more than {MAX_BATCH_ORDERS} orders; a batch holds at most that")


def _check_columns(names: list[str], where: str) -> None:
    """Refuse a column (or key) that is not an order field, or one named twice, by name."""
    known = set(COLUMNS) | set(ALIASES)
    unknown = [name for name in names if name not in known]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name.lower(), sorted(known), n=1, cutoff=0.6)
            hints.append(f"{shown(name)} (did you mean {close[0]!r}?)" if close else shown(name))
        raise InvalidInputError(
            f"{where}unknown column{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; "
            f"an order has {', '.join(COLUMNS)}"
        )
    seen: dict[str, str] = {}
    for name in names:
        field = ALIASES.get(name, name)
        if field in seen:
            same = repr(name) if seen[field] == name else f"{seen[field]!r} and {name!r}"
            raise InvalidInputError(f"{where}column {same} given twice")
        seen[field] = name


def _order_from_row(row: dict[str, Any], decimals: int, number: int) -> MarketOrder | LimitOrder:
    def field(name: str, *, required: bool = True) -> str | None:
        value = row.get(name)
        if value is None:
            if required:
                raise InvalidInputError(f"order {number}: missing field {name!r}")
            return None
        if not isinstance(value, str):
            raise InvalidInputError(f"order {number}: {name} must be text or a number, not {shown(value)}")
        # Names are read without the spaces a CSV writer leaves after a comma (spaces only: a
        # newline or tab is part of the name and refused by its check); amounts, prices and
        # days are not: " 5" is refused here as by `trade open` and the API.
        text = value.strip(" ") if name in ("agent", "artifact", "side") else value
        return text if text.strip() or required else None  # an empty optional cell is an absent one

    agent, artifact_id, side, tokens = field("agent"), field("artifact"), field("side"), field("tokens")
    limit, lifetime = field("limit_price", required=False), field("expires_in_days", required=False)
    max_price, min_shares = field("max_price", required=False), field("min_shares", required=False)
    try:
        rationale = _row_rationale(row, field)
        side, tokens_units = check_side(side), parse_amount(tokens, decimals)
        if limit is None:
            if lifetime is not None:
                raise InvalidInputError("expires_in_days applies to limit orders only")
            return MarketOrder(
                agent,
                artifact_id,
                side,
                tokens_units,
                max_price_wad=parse_price_wad(max_price, "max_price") if max_price is not None else None,
                min_shares_units=parse_amount(min_shares, decimals) if min_shares is not None else None,
                rationale=rationale,
            )
        if max_price is not None or min_shares is not None:
            raise InvalidInputError("max_price and min_shares apply to market orders, not limit orders")
        expires_in = order_lifetime(_days(lifetime)) if lifetime is not None else None
        return LimitOrder(
            agent,
            artifact_id,
            side,
            tokens_units,
            parse_price_wad(limit, "limit_price"),
            expires_in=expires_in,
            rationale=rationale,
        )
    except LedgerError as error:
        raise type(error)(f"order {number}: {error}") from None


def _row_rationale(row: dict[str, Any], field: Any) -> Rationale | None:
    """The row's rationale columns as a Rationale; None when all are empty or absent."""
    features = row.get("features")
    if not isinstance(features, dict):  # a JSON object was checked already; text is read here
        features = field("features", required=False)
    return Rationale.from_inputs(
        belief=field("belief", required=False),
        edge=field("edge", required=False),
        reasoning=field("reasoning", required=False),
        features=features,
    )


def _days(text: str) -> float:
    if not _DAYS.fullmatch(text):
        raise InvalidInputError(f"expires_in_days must be a number of days such as 7 or 0.5, not {shown(text)}")
    return float(text)
