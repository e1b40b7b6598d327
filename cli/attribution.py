"""``portfolio attribution``: realised and unrealised P&L by market, group and signal feature."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from stakeledger.cli.context import get_context
from stakeledger.cli.output import emit_json, say, table
from stakeledger.domain.rules.money import format_amount
from stakeledger.domain.rules.rationale import wad_text
from stakeledger.projections import attribution as attributed


def register(app: typer.Typer) -> None:
    """Adds ``attribution`` to the portfolio group (registered after cli.portfolio)."""
    from stakeledger.cli.portfolio import portfolio_app

    portfolio_app.command("attribution")(attribution)


def attribution(
    ctx: typer.Context,
    agent: str,
    by: Annotated[str, typer.Option("--by", help="Break the P&L down by market, group or feature.")] = "market",
    material: Annotated[
        Optional[str],
        typer.Option("--material", help="A triggered feature is material at |log-odds| >= this (default 0.05)."),
    ] = None,
    material_for: Annotated[
        Optional[list[str]],
        typer.Option("--material-for", help="A feature's own threshold, NAME=VALUE (news_lo=0.10); repeatable."),
    ] = None,
    no_catch_up: Annotated[
        bool,
        typer.Option(
            "--no-catch-up",
            help="Accepted as portfolio show takes it; attribution reads the ledger itself, as portfolio "
            "summary does, so it is always current and never waits for the views.",
        ),
    ] = False,
) -> None:
    """Where an agent's P&L came from: per market, per correlation group, or shared among the
    signal features its orders recorded (in proportion to |log-odds|, to the base unit).

    Positions are marked at exit value, as portfolio summary marks them: the total row is the
    summary's realized + unrealized P&L exactly. By feature, each feature's P&L is split into
    the positions where it was material (|value| at least the threshold) and those where it
    was triggered (non-zero) but not material."""
    del no_catch_up  # nothing to catch up: see the option's help
    context = get_context(ctx)
    by = attributed.check_by(by)
    thresholds = attributed.Thresholds.from_inputs(material, material_for or (), names=("--material", "--material-for"))
    data = attributed.attribution(context.app, agent, by=by, thresholds=thresholds)
    if context.as_json:
        emit_json(data)
        return
    d = context.app.decimals
    money = lambda units: format_amount(int(units), d)  # noqa: E731
    total = data["total"]
    if by in ("market", "group"):
        labels = ["artifact", "group"] if by == "market" else ["group"]
        figures = ["positions", "live", "open shares", "cost", "realized", "unrealized", "total"]

        def cells(row: dict[str, Any], names: list[str]) -> list[Any]:
            return [
                *names,
                row["positions"],
                row["live_positions"],
                money(row["open_shares_units"]),
                money(row["cost_units"]),
                money(row["realized_pnl_units"]),
                money(row["unrealized_pnl_units"]),
                money(row["total_pnl_units"]),
            ]

        rows = [cells(r, [r[label] for label in labels]) for r in data["rows"]]
        rows.append(cells(total, ["total", *[""] * (len(labels) - 1)]))
        table(f"Attribution by {by} — {agent} (at exit value)", [*labels, *figures], rows, right=figures)
        return
    unattributed, figures = data["no_features"], ["positions", "realized", "unrealized", "P&L"]
    rows = [
        [
            r["feature"],
            r["triggered_positions"],
            money(r["realized_pnl_units"]),
            money(r["unrealized_pnl_units"]),
            money(r["pnl_units"]),
        ]
        for r in data["rows"]
    ]
    rows.append(
        [
            unattributed["feature"],
            unattributed["positions"],
            money(unattributed["realized_pnl_units"]),
            money(unattributed["unrealized_pnl_units"]),
            money(unattributed["pnl_units"]),
        ]
    )
    rows.append(
        [
            "total",
            total["positions"],
            money(total["realized_pnl_units"]),
            money(total["unrealized_pnl_units"]),
            money(total["total_pnl_units"]),
        ]
    )
    table(f"Attribution by feature — {agent} (at exit value)", ["feature", *figures], rows, right=figures)
    split = ["material at", "triggered", "material", "material P&L", "not material", "not material P&L"]
    table(
        "Triggered (non-zero) and material (|log-odds| at least the threshold), per feature",
        ["feature", *split],
        [
            [
                r["feature"],
                wad_text(int(r["threshold_wad"])),
                r["triggered_positions"],
                r["material_positions"],
                money(r["material_pnl_units"]),
                r["not_material_positions"],
                money(r["not_material_pnl_units"]),
            ]
            for r in data["rows"]
        ],
        right=split,
    )
    say(
        f"Realized {money(total['realized_pnl_units'])} + unrealized {money(total['unrealized_pnl_units'])} = "
        f"{money(total['total_pnl_units'])}; each position's realized and unrealized P&L are shared among its features by |log-odds|."
    )
