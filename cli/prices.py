"""Price history and the trade tape: ``artifact prices`` and ``artifact trades``.

Both read projection views (``candles``, ``tape``), caught up with the log first unless
``--no-catch-up``. Tables show tokens in the ledger's decimals and prices as
probabilities; ``--json`` adds the exact base units and WAD integers beside them.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from stakeledger.cli.context import get_context
from stakeledger.cli.output import emit_json, say, table
from stakeledger.cli.views import Limit, NoCatchUp, current_views
from stakeledger.projections import queries
from stakeledger.projections.views.candles import INTERVALS

ArtifactArgument = Annotated[str, typer.Argument(metavar="ID", help="The artifact whose market to read.")]


def register(app: typer.Typer) -> None:
    """Adds the price-history commands to the artifact group (registered after cli.markets)."""
    from stakeledger.cli.markets import artifact_app

    artifact_app.command("prices")(prices)
    artifact_app.command("trades")(trades)


def prices(
    ctx: typer.Context,
    artifact_id: ArtifactArgument,
    interval: Annotated[str, typer.Option("--interval", help=f"Bucket length: {', '.join(INTERVALS)}.")] = "1h",
    since: Annotated[
        Optional[str],
        typer.Option("--since", help="ISO 8601 time: candles from the bucket holding it (UTC without an offset)."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", help="At most this many candles, the latest (1-10000).")
    ] = queries.CANDLES_DEFAULT_LIMIT,
    no_catch_up: NoCatchUp = False,
) -> None:
    """Candles, oldest first: open, high, low and close of p(long), volume in tokens and trade count."""
    context = get_context(ctx)
    moment = queries.parse_since(since)
    queries.check_interval(interval)
    with current_views(context, no_catch_up=no_catch_up) as store:
        answer = queries.candles(store, artifact_id, interval, decimals=context.app.decimals, since=moment, limit=limit)
    if context.as_json:
        emit_json(answer)
        return
    if not answer["candles"]:
        say(f"No trades on {artifact_id} in that time.")
        return
    table(
        f"{artifact_id}: {interval} candles of p(long) (UTC, oldest first)",
        ["start", "open", "high", "low", "close", "volume", "trades"],
        [
            [c["start"][:19], c["open"], c["high"], c["low"], c["close"], c["volume"], c["trades"]]
            for c in answer["candles"]
        ],
        right=["open", "high", "low", "close", "volume", "trades"],
    )


def trades(
    ctx: typer.Context,
    artifact_id: ArtifactArgument,
    limit: Limit = queries.DEFAULT_LIMIT,
    before: Annotated[
        Optional[int],
        typer.Option("--before", help="Only trades at log positions below this (the previous page's next position)."),
    ] = None,
    no_catch_up: NoCatchUp = False,
) -> None:
    """The trade tape, newest first: time, side, kind, tokens, shares, p(long) before and after, taker."""
    context = get_context(ctx)
    with current_views(context, no_catch_up=no_catch_up) as store:
        answer = queries.trades(store, artifact_id, decimals=context.app.decimals, limit=limit, before=before)
    if context.as_json:
        emit_json(answer)
        return
    if not answer["trades"]:
        say(f"No trades on {artifact_id}" + (f" before position {before}." if before else "."))
        return
    table(
        f"{artifact_id}: trades (newest first)",
        ["pos", "time", "side", "kind", "tokens", "shares", "before", "after", "taker"],
        [
            [
                t["position"],
                t["at"][:19],
                t["side"],
                t["kind"],
                t["tokens"],
                t["shares"],
                t["price_before"] or "",
                t["price_after"],
                t["taker"],
            ]
            for t in answer["trades"]
        ],
        right=["pos", "tokens", "shares", "before", "after"],
    )
    if answer["next_before"] is not None:
        say(f"More: stakeledger artifact trades {artifact_id} --before {answer['next_before']}")
