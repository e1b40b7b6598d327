"""Portfolio management: risk limits, Kelly orders, stops, liquidation and the dashboard."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Annotated, Optional

import typer

from stakeledger.cli.context import get_context
from stakeledger.cli.inputs import (
    ALLOW_SUB_PERCENT_HELP,
    EDGE_HELP,
    FEATURE_HELP,
    REASONING_HELP,
    percent_option,
    rationale_options,
)
from stakeledger.cli.markets import price, trade_app
from stakeledger.cli.output import REJECTED_EXIT, emit_json, fail, report_rejection, say, table
from stakeledger.domain.rules.money import format_amount, parse_fraction, parse_price_wad
from stakeledger.projections import dashboard

portfolio_app = typer.Typer(
    help="Risk limits, dashboards and emergency liquidation for an agent's portfolio.", no_args_is_help=True
)

CommandId = Annotated[
    Optional[str],
    typer.Option(
        "--command-id", help="Client command id: a retry with the same id and payload returns the first result."
    ),
]
Pct = Optional[str]
AllowSubPercent = Annotated[bool, typer.Option("--allow-sub-percent", help=ALLOW_SUB_PERCENT_HELP)]
ZERO, HUNDRED = Decimal(0), Decimal(100)


orders_app = typer.Typer(help="Resting limit orders across every market: the expiry sweep.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(portfolio_app, name="portfolio")
    app.add_typer(orders_app, name="orders")
    trade_app.command("kelly")(kelly)
    trade_app.command("stop")(stop)


@portfolio_app.command("config")
def config(
    ctx: typer.Context,
    agent: str,
    max_position_size_pct: Annotated[Pct, typer.Option(help="Largest position, % of equity (default 5).")] = None,
    max_positions: Annotated[Optional[int], typer.Option(help="Most markets held at once (default 10).")] = None,
    max_correlated_exposure_pct: Annotated[
        Pct, typer.Option(help="Cost committed per correlation group, % of equity (default 20).")
    ] = None,
    max_total_exposure_pct: Annotated[Pct, typer.Option(help="All cost committed, % of equity (default 30).")] = None,
    rebalance_threshold_pct: Annotated[
        Pct, typer.Option(help="Drift from target that triggers advice, % (default 10).")
    ] = None,
    emergency_liquidation_loss_pct: Annotated[
        Pct, typer.Option(help="Loss from baseline that liquidates, % (default -10).")
    ] = None,
    min_trade_size: Annotated[Optional[str], typer.Option(help="Smallest order in tokens (default 5).")] = None,
    allow_sub_percent: AllowSubPercent = False,
    command_id: CommandId = None,
) -> None:
    """Set an agent's risk limits: from now on every order of theirs passes the pre-trade checks.

    Every --*-pct option takes a percentage: 10 means 10 %. A value between -1 and 1
    (such as 0.05) is refused as a likely fraction unless --allow-sub-percent is given."""
    pct = partial(percent_option, allow_sub_percent=allow_sub_percent)
    context = get_context(ctx)
    app = context.app
    from stakeledger.domain.rules.money import parse_amount

    result = app.configure_portfolio(
        agent,
        command_id=command_id,
        max_position_size_pct=pct(max_position_size_pct, "--max-position-size-pct", ZERO, HUNDRED),
        max_positions=max_positions,
        max_correlated_exposure_pct=pct(max_correlated_exposure_pct, "--max-correlated-exposure-pct", ZERO, HUNDRED),
        max_total_exposure_pct=pct(max_total_exposure_pct, "--max-total-exposure-pct", ZERO, HUNDRED),
        rebalance_threshold_pct=pct(rebalance_threshold_pct, "--rebalance-threshold-pct", ZERO, None, low_open=False),
        emergency_liquidation_loss_pct=pct(
            emergency_liquidation_loss_pct, "--emergency-liquidation-loss-pct", -HUNDRED, ZERO, low_open=False
        ),
        min_trade_size_units=parse_amount(min_trade_size, app.decimals) if min_trade_size is not None else None,
    )
    if context.as_json:
        emit_json(result)
        return
    table(f"Risk limits — {agent}", ["limit", "value"], [[k, v] for k, v in result["config"].items()])
    say(
        f"Baseline equity for emergency liquidation: {format_amount(int(result['baseline_units']), app.decimals, places=6)}"
    )


@portfolio_app.command("market-config")
def market_config(
    ctx: typer.Context,
    agent: str,
    artifact_id: Annotated[str, typer.Argument(metavar="ARTIFACT")],
    position_size_pct: Annotated[Pct, typer.Option(help="Position limit for this market, % of equity.")] = None,
    trail_pct: Annotated[Pct, typer.Option(help="Start a trailing stop of this % on every new position here.")] = None,
    correlation_group: Annotated[
        Optional[str], typer.Option(help="Override the artifact's group for exposure limits.")
    ] = None,
    allow_sub_percent: AllowSubPercent = False,
    command_id: CommandId = None,
) -> None:
    """Per-market settings: position size, trailing stop and correlation group.

    --position-size-pct and --trail-pct take a percentage: 10 means 10 %. A value below 1
    (such as 0.02) is refused as a likely fraction unless --allow-sub-percent is given."""
    pct = partial(percent_option, allow_sub_percent=allow_sub_percent)
    context = get_context(ctx)
    result = context.app.configure_market(
        agent,
        artifact_id,
        position_size_pct=pct(position_size_pct, "--position-size-pct", ZERO, HUNDRED),
        trail_pct=pct(trail_pct, "--trail-pct", ZERO, HUNDRED, high_open=True),
        correlation_group=correlation_group,
        command_id=command_id,
    )
    emit_json(result) if context.as_json else say(f"Configured {artifact_id} for {agent}: {result['config']}")


def kelly(
    ctx: typer.Context,
    agent: str,
    artifact_id: Annotated[str, typer.Argument(metavar="ARTIFACT")],
    belief: Annotated[str, typer.Option(help="Your probability that the artifact is validated, e.g. 0.7.")],
    fraction: Annotated[str, typer.Option(help="Fraction of full Kelly to bet (default quarter Kelly).")] = "0.25",
    edge: Annotated[Optional[str], typer.Option("--edge", help=EDGE_HELP)] = None,
    reasoning: Annotated[Optional[str], typer.Option("--reasoning", help=REASONING_HELP)] = None,
    feature: Annotated[Optional[list[str]], typer.Option("--feature", metavar="NAME=VALUE", help=FEATURE_HELP)] = None,
    command_id: CommandId = None,
) -> None:
    """Size an order by fractional Kelly from your belief, then place it — or say why not. The
    position records the belief as its rationale, with --edge, --reasoning and --feature."""
    context = get_context(ctx)
    app = context.app
    result = app.kelly_order(
        agent,
        artifact_id,
        parse_price_wad(belief, "belief"),
        fraction=parse_fraction(fraction, "fraction"),
        rationale=rationale_options(edge=edge, reasoning=reasoning, features=feature),
        command_id=command_id,
    )
    if result.get("trade"):
        report_rejection(context, result["trade"])
    if context.as_json:
        emit_json(result)
        return
    d = app.decimals
    say(
        f"Kelly for {agent} on {artifact_id}: price {price(result['price_long_wad'])}, belief {belief} → "
        f"{result['side']}, full f* {float(Fraction(result['full_kelly'])):.4f}, applied {float(Fraction(result['applied_fraction'])):.4f}"
    )
    if not result["placed"]:
        fail(
            result["reason"],
            f"no order: {result['reason']} (raw size {format_amount(int(result['raw_size_units']), d, places=6)})",
        )
        raise typer.Exit(REJECTED_EXIT)
    capped = f", capped by {result['capped_by']}" if result["capped_by"] else ""
    say(
        f"Placed {result['trade']['position']}: {format_amount(int(result['size_units']), d, places=6)} tokens{capped}."
    )


def stop(
    ctx: typer.Context,
    position_id: Annotated[str, typer.Argument(metavar="POSITION")],
    trail_pct: Annotated[
        Optional[str],
        typer.Option(help="Trail below the high-water mark, in % (e.g. 10); replaces a stop the position has."),
    ] = None,
    min_ratchet_pct: Annotated[
        str, typer.Option(help="Raise the trigger only when it would rise by more than this %.")
    ] = "0",
    remove: Annotated[
        bool, typer.Option("--remove", help="Remove the position's stop instead of setting one.")
    ] = False,
    allow_sub_percent: AllowSubPercent = False,
    command_id: CommandId = None,
) -> None:
    """Put a trailing stop on a position, replace its stop, or remove it (--remove); every
    price move re-evaluates a stop.

    --trail-pct and --min-ratchet-pct take a percentage: 10 means 10 %, and --trail-pct
    must be above 0 and below 100. A value below 1 (such as 0.02) is refused as a likely
    fraction unless --allow-sub-percent is given."""
    from stakeledger.domain.errors import InvalidInputError

    context = get_context(ctx)
    if remove:
        if trail_pct is not None:
            raise InvalidInputError("give --trail-pct to set or replace a stop, or --remove to remove it, not both")
        result = context.app.remove_stop(position_id, command_id=command_id)
        if context.as_json:
            emit_json(result)
        else:
            say(f"Removed the {result['trail_pct']} % trailing stop from {position_id}.")
        return
    if trail_pct is None:
        raise InvalidInputError("trade stop needs --trail-pct PERCENT (10 means 10 %), or --remove")
    pct = partial(percent_option, allow_sub_percent=allow_sub_percent)
    result = context.app.set_stop(
        position_id,
        pct(trail_pct, "--trail-pct", ZERO, HUNDRED, high_open=True),
        pct(min_ratchet_pct, "--min-ratchet-pct", ZERO, HUNDRED, low_open=False, high_open=True),
        command_id=command_id,
    )
    if context.as_json:
        emit_json(result)
        return
    what = (
        f"Replaced the {result['previous_trail_pct']} % stop on {position_id} with a {result['trail_pct']} % one"
        if result["replaced"]
        else f"Stop of {result['trail_pct']} % on {position_id}"
    )
    say(f"{what}: high-water {price(result['high_water_wad'])}, trigger {price(result['trigger_wad'])}.")


@orders_app.command("expire")
def expire(ctx: typer.Context, command_id: CommandId = None) -> None:
    """Release the escrow of every order past its expiry, on every market.

    An expired order's escrow is already free to read (balances, portfolio, account show);
    this writes the release. The worker (`stakeledger projections run`), the next trade on
    the market and the next command on the agent's account write it too, whichever is first;
    the amounts are the same whoever writes them."""
    context = get_context(ctx)
    result = context.app.expire_orders(command_id=command_id)
    if context.as_json:
        emit_json(result)
        return
    released = result["expired"]
    if not released:
        say("No order is past its expiry.")
        return
    say(f"Released {len(released)} expired order(s): {', '.join(r['order'] for r in released)}.")


@portfolio_app.command("liquidate")
def liquidate(ctx: typer.Context, agent: str, command_id: CommandId = None) -> None:
    """Emergency liquidation by hand: close every position that may be closed now."""
    context = get_context(ctx)
    result = context.app.liquidate_portfolio(agent, command_id=command_id)
    emit_json(result) if context.as_json else say(
        f"Liquidated {agent}: closed {', '.join(result['closed']) or 'nothing'}."
    )


@portfolio_app.command("summary")
def summary(ctx: typer.Context, agent: str) -> None:
    """Capital, positions, P&L, return, concentration, win rate and exposure by group."""
    context = get_context(ctx)
    app = context.app
    data = dashboard.summary(app, agent)
    if context.as_json:
        emit_json(data)
        return
    d = app.decimals
    money = lambda key: format_amount(int(data[key]), d, places=2) if data[key] is not None else "—"  # noqa: E731
    table(
        f"Portfolio — {agent}",
        ["total (equity)", "available", "deployed", "active", "closed", "win rate %"],
        [
            [
                money("equity_units"),
                money("available_units"),
                money("deployed_units"),
                data["active_positions"],
                data["closed_positions"],
                data["win_rate_pct"] or "—",
            ]
        ],
        right=["total (equity)", "available", "deployed"],
    )
    table(
        None,
        ["realized P&L", "unrealized P&L", "total P&L", "return % (vs baseline)", "top-1 %", "top-3 %"],
        [
            [
                money("realized_pnl_units"),
                money("unrealized_pnl_units"),
                money("total_pnl_units"),
                data["total_return_pct"] or "—",
                data["concentration_top1_pct"] or "—",
                data["concentration_top3_pct"] or "—",
            ]
        ],
    )
    if data["exposure_by_group_units"]:
        table(
            "Exposure by correlation group",
            ["group", "cost committed"],
            [[g, format_amount(int(u), d, places=2)] for g, u in data["exposure_by_group_units"].items()],
            right=["cost committed"],
        )


@portfolio_app.command("concentration")
def concentration(ctx: typer.Context, agent: str) -> None:
    """Positions ranked by value with cumulative share of equity."""
    context = get_context(ctx)
    rows = dashboard.concentration(context.app, agent)
    if context.as_json:
        emit_json(rows)
        return
    d = context.app.decimals
    table(
        f"Concentration — {agent}",
        ["position", "side", "value", "share %", "cumulative %"],
        [
            [
                r["position"],
                r["side"],
                format_amount(int(r["value_units"]), d, places=2),
                r["share_pct"],
                r["cumulative_pct"],
            ]
            for r in rows
        ],
        right=["value", "share %", "cumulative %"],
    )


@portfolio_app.command("pairs")
def pairs(ctx: typer.Context, agent: str) -> None:
    """Per market: active and closed positions, capital deployed, value and return."""
    context = get_context(ctx)
    rows = dashboard.pairs(context.app, agent)
    if context.as_json:
        emit_json(rows)
        return
    d = context.app.decimals
    table(
        f"Markets — {agent}",
        ["artifact", "active", "closed", "deployed", "value", "return %", "realized"],
        [
            [
                r["artifact"],
                r["active"],
                r["closed"],
                format_amount(int(r["deployed_units"]), d, places=2),
                format_amount(int(r["value_units"]), d, places=2),
                r["return_pct"] or "—",
                format_amount(int(r["realized_units"]), d, places=2),
            ]
            for r in rows
        ],
        right=["active", "closed", "deployed", "value", "return %", "realized"],
    )


@portfolio_app.command("rebalance")
def rebalance(ctx: typer.Context, agent: str) -> None:
    """Recommended actions for positions that drifted from their target weight."""
    context = get_context(ctx)
    rows = dashboard.rebalance(context.app, agent)
    if context.as_json:
        emit_json(rows)
        return
    if not rows:
        say(f"No rebalancing needed for {agent}.")
        return
    d = context.app.decimals
    table(
        f"Rebalance — {agent}",
        ["artifact", "action", "why", "weight %", "target %", "drift %", "amount"],
        [
            [
                r["artifact_id"],
                r["action"],
                r["reason"],
                r["current_pct"],
                r["target_pct"],
                r["drift_pct"],
                format_amount(int(r["amount_units"]), d, places=2),
            ]
            for r in rows
        ],
        right=["weight %", "target %", "drift %", "amount"],
    )


@portfolio_app.command("metrics")
def metrics(ctx: typer.Context, agent: str) -> None:
    """Sharpe, Sortino and max drawdown on the daily equity curve; win rate and return."""
    context = get_context(ctx)
    data = dashboard.metrics(context.app, agent)
    if context.as_json:
        emit_json(data)
        return
    show = lambda v: "—" if v is None else v  # noqa: E731
    table(
        f"Performance — {agent} ({data['days']} days)",
        ["Sharpe", "Sortino", "max drawdown %", "win rate %", "return %"],
        [
            [
                show(data["sharpe"]),
                show(data["sortino"]),
                show(data["max_drawdown_pct"]),
                show(data["win_rate_pct"]),
                show(data["total_return_pct"]),
            ]
        ],
    )


@portfolio_app.command("chart")
def chart(
    ctx: typer.Context,
    agent: str,
    out: Annotated[Path, typer.Option("--out", help="PNG file to write.")],
) -> None:
    """Draw the equity curve, drawdown and exposure by group to a PNG."""
    context = get_context(ctx)
    from stakeledger.projections.chart import draw_portfolio_chart

    path = draw_portfolio_chart(context.app, agent, out)
    emit_json({"chart": str(path)}) if context.as_json else say(f"Wrote {path}.")
