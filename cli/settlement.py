"""Lifecycle transitions (which settle positions) and bounties."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from stakeledger.api.inputs import check_weights_sum_to_one
from stakeledger.api.render import human
from stakeledger.cli.context import get_context
from stakeledger.cli.markets import artifact_app, price
from stakeledger.cli.output import emit_json, say, table
from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.rules.money import format_amount, parse_amount, parse_fraction, parse_price_wad

bounty_app = typer.Typer(
    help="Bounties: sponsors escrow tokens on an artifact; claimants share them by weight.", no_args_is_help=True
)

CommandId = Annotated[
    Optional[str],
    typer.Option(
        "--command-id", help="Client command id: a retry with the same id and payload returns the first result."
    ),
]


def register(app: typer.Typer) -> None:
    artifact_app.command("transition")(transition)
    artifact_app.command("reopen")(reopen)
    artifact_app.command("history")(history)
    app.add_typer(bounty_app, name="bounty")


def transition(
    ctx: typer.Context,
    artifact_id: Annotated[str, typer.Argument(metavar="ID")],
    state: Annotated[
        str, typer.Argument(metavar="STATE", help="listed, flagged, challenged, validated, deprecated or invalid")
    ],
    price_: Annotated[
        Optional[str],
        typer.Option(
            "--price", help="Settlement long price (an oracle); default: the window's time-weighted average p(long)."
        ),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why the artifact changes state.")] = "",
    actor: Annotated[str, typer.Option(help="Who decided the transition.")] = "operator",
    command_id: CommandId = None,
) -> None:
    """Move an artifact through its lifecycle; settles its positions in the same transaction."""
    context = get_context(ctx)
    app = context.app
    result = app.transition_artifact(
        artifact_id,
        state,
        actor=actor,
        reason=reason,
        price_wad=parse_price_wad(price_) if price_ is not None else None,
        command_id=command_id,
    )
    if context.as_json:
        emit_json(result)
        return
    d = app.decimals
    at = (
        "(N/A: every stake goes back)" if result["to"] == "invalid" else f"at p(long) {price(result['price_long_wad'])}"
    )
    line = f"{artifact_id}: {result['from']} → {result['to']} {at}; {result['positions']} live positions"
    if "paid_units" in result:
        line += f"; paid {format_amount(int(result['paid_units']), d)}"
    if "tax_units" in result:
        line += f"; {format_amount(int(result['tax_units']), d)} returned to the treasury"
    say(line + ".")


def reopen(
    ctx: typer.Context,
    artifact_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option(help="Why the resolution was wrong (required).")],
    actor: Annotated[str, typer.Option(help="Who corrects it.")] = "operator",
    command_id: CommandId = None,
) -> None:
    """Correct a wrong resolution within the market's correction window (admin).

    Every settlement, payout, reputation change, tax and subsidy of the terminal transition is
    reversed by new events, the orders it released rest again, and the market returns to the
    state it had before (trading resumes). Refused past the window (CORRECTION_WINDOW_CLOSED)
    or when a payout was spent (REVERSAL_NOT_COVERED, naming the accounts); nothing is written."""
    context = get_context(ctx)
    app = context.app
    result = app.reopen_artifact(artifact_id, reason=reason, actor=actor, command_id=command_id)
    if context.as_json:
        emit_json(human(result, app.decimals))
        return
    d = app.decimals
    say(
        f"{artifact_id}: {result['from']} → {result['to']} (reopened transition {result['reverses']}); "
        f"{result['positions']} positions live again; took back {format_amount(int(result['payouts_reversed_units']), d)} "
        f"of payouts, put back {format_amount(int(result['tax_reversed_units']), d)} of tax, returned "
        f"{format_amount(int(result['subsidy_reversed_units']), d)} of subsidy; "
        f"{result['orders_restored']} orders rest again."
    )


def history(
    ctx: typer.Context,
    artifact_id: Annotated[str, typer.Argument(metavar="ID")],
) -> None:
    """Every lifecycle step of an artifact, oldest first: actor, reason, settlement price, the
    window's average then, what it paid, minted (subsidy) and returned as tax, and reopens."""
    context = get_context(ctx)
    app = context.app
    steps = app.artifact_history(artifact_id)
    if context.as_json:
        emit_json(human(steps, app.decimals))
        return
    d = app.decimals

    def tokens(units: str | None) -> str:
        return "-" if units is None else format_amount(int(units), d)

    rows = []
    for step in steps:
        if step["kind"] == "listed":
            rows.append([0, step["at"], "listed", "", "", "", "", "", "", ""])
            continue
        move = f"{step['from']} → {step['to']}"
        if step["kind"] == "reopen":
            move = f"reopen of #{step['reverses']}: {move}"
        elif step.get("reopened_by"):
            move += f" (reopened by #{step['reopened_by']})"
        rows.append(
            [
                step["transition"],
                step["at"],
                move,
                step["actor"],
                price(step["price_long_wad"]) if "price_long_wad" in step else "",
                price(step["window_average_wad"]) if "window_average_wad" in step else "",
                tokens(step["paid_units"]),
                tokens(step["subsidy_units"]),
                tokens(step["tax_units"]),
                step["reason"],
            ]
        )
    table(
        f"History of {artifact_id}",
        ["#", "at", "step", "actor", "price", "average", "paid", "subsidy", "tax", "reason"],
        rows,
    )


@bounty_app.command(
    "post", context_settings={"ignore_unknown_options": True}
)  # "-1" is an amount to refuse, not an option
def post(
    ctx: typer.Context,
    artifact_id: Annotated[str, typer.Argument(metavar="ARTIFACT")],
    sponsor: str,
    amount: str,
    command_id: CommandId = None,
) -> None:
    """Escrow tokens from a sponsor as a bounty on an artifact."""
    context = get_context(ctx)
    app = context.app
    result = app.post_bounty(artifact_id, sponsor, parse_amount(amount, app.decimals), command_id=command_id)
    emit_json(result) if context.as_json else say(f"Posted bounty {result['bounty']} of {amount} tokens.")


@bounty_app.command("distribute")
def distribute(
    ctx: typer.Context,
    bounty_id: Annotated[str, typer.Argument(metavar="BOUNTY")],
    claimants: Annotated[
        list[str], typer.Argument(metavar="CLAIMANT=WEIGHT...", help="e.g. ada=4/5 bob=1/5; weights sum to 1.")
    ],
    normalise: Annotated[
        bool,
        typer.Option(
            "--normalise", help="Weights need not sum to 1: each claimant gets weight / sum of weights of the bounty."
        ),
    ] = False,
    command_id: CommandId = None,
) -> None:
    """Split a bounty among claimants by weight: floors first, leftover units in the order given.

    The weights are shares of the bounty and must sum to exactly 1 (0.8 + 0.2, or 4/5 + 1/5);
    with --normalise any positive weights are scaled to shares (2 and 3 give 2/5 and 3/5)."""
    context = get_context(ctx)
    app = context.app
    weights = []
    for item in claimants:
        name, equals, weight = item.partition("=")
        if not equals or not name or not weight:
            raise InvalidInputError(f"claimants look like NAME=WEIGHT, got {item!r}")
        weights.append((name, parse_fraction(weight)))
    if not normalise:
        check_weights_sum_to_one(weights, normalise_hint="--normalise")
    result = app.distribute_bounty(bounty_id, weights, command_id=command_id)
    if context.as_json:
        emit_json(result)
        return
    shares = ", ".join(f"{name} {format_amount(int(units), app.decimals)}" for name, units in result["shares"].items())
    say(f"Distributed {bounty_id}: {shares}.")


@bounty_app.command("refund")
def refund(
    ctx: typer.Context, bounty_id: Annotated[str, typer.Argument(metavar="BOUNTY")], command_id: CommandId = None
) -> None:
    """Return an unclaimed bounty to its sponsor."""
    context = get_context(ctx)
    app = context.app
    result = app.refund_bounty(bounty_id, command_id=command_id)
    if context.as_json:
        emit_json(result)
    else:
        say(f"Refunded {format_amount(int(result['refunded_units']), app.decimals)} to {result['sponsor']}.")
