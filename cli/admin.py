"""Ledger-wide commands: init and audit."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from stakeledger.cli.context import get_context
from stakeledger.cli.output import emit_json, fail, redact_url, say, table
from stakeledger.domain.rules.money import format_amount
from stakeledger.domain.service.accounts import check_decimals
from stakeledger.domain.vocabulary import DEFAULT_DECIMALS
from stakeledger.projections.audit import audit as run_audit


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("audit")(audit)


def init(
    ctx: typer.Context,
    decimals: Annotated[
        int, typer.Option(help="Fractional digits of one token; fixed for the ledger's life.")
    ] = DEFAULT_DECIMALS,
) -> None:
    """Create a new ledger: its settings and the treasury account."""
    context = get_context(ctx)
    check_decimals(decimals)  # before the store exists: a refused init leaves no database behind
    context.creating = True
    result = context.app.initialise(decimals=decimals)
    store = redact_url(context.url)  # a PostgreSQL password is never printed
    if context.as_json:
        emit_json({"initialised": True, **result, "store": store})
    else:
        say(f"Initialised ledger at {store} with {result['decimals']} decimals.")


def audit(ctx: typer.Context) -> None:
    """Replay the whole log and check every invariant; exit 1 on any violation."""
    context = get_context(ctx)
    app = context.app
    decimals = app.decimals
    with Progress(
        TextColumn("auditing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=context.as_json,
    ) as progress:
        task = progress.add_task("audit", total=None)
        report = run_audit(app, progress=lambda done, total: progress.update(task, completed=done, total=total))
    if context.as_json:
        emit_json(
            {
                "clean": report.clean,
                "events": report.events,
                "last_position": report.last_position,
                "accounts": report.accounts,
                "transfers": report.transfers,
                "total_supply_units": str(report.total_supply_units),
                "seconds": round(report.seconds, 3),
                "violation_count": report.violation_count,
                "violations": [str(v) for v in report.violations],
                "findings": [v.to_dict() for v in report.violations],
            }
        )
    else:
        table(
            "Audit" + (" — clean" if report.clean else " — VIOLATIONS"),
            ["events", "last position", "accounts", "transfers", "total supply", "seconds"],
            [
                [
                    report.events,
                    report.last_position,
                    report.accounts,
                    report.transfers,
                    format_amount(report.total_supply_units, decimals),
                    f"{report.seconds:.3f}",
                ]
            ],
            right=["events", "last position", "accounts", "transfers", "total supply", "seconds"],
        )
        for violation in report.violations:
            fail("AUDIT", str(violation))
        if report.violation_count > len(report.violations):
            fail("AUDIT", f"... and {report.violation_count - len(report.violations)} more")
    if not report.clean:
        raise typer.Exit(1)
