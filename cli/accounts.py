"""Accounts and plain token movements: open, list, show, mint, burn, transfer (statements are in cli.views)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from stakeledger.cli.context import get_context
from stakeledger.cli.output import emit_json, say, table
from stakeledger.domain.model.accounts import Account, agent_account_id
from stakeledger.domain.model.naming import stable_topic
from stakeledger.domain.rules.money import format_amount, parse_amount
from stakeledger.domain.service.log import iter_events

account_app = typer.Typer(help="Open accounts and read balances and statements.", no_args_is_help=True)

CommandId = Annotated[
    Optional[str],
    typer.Option(
        "--command-id", help="Client command id: a retry with the same id and payload returns the first result."
    ),
]


def register(app: typer.Typer) -> None:
    app.add_typer(account_app, name="account")
    # A negative amount such as -1 must reach the amount parser (and its clear
    # error), not be mistaken for an unknown option.
    amounts = {"ignore_unknown_options": True}
    app.command("mint", context_settings=amounts)(mint)
    app.command("burn", context_settings=amounts)(burn)
    app.command("transfer", context_settings=amounts)(transfer)


@account_app.command("open")
def open_account(ctx: typer.Context, agent: str, command_id: CommandId = None) -> None:
    """Open an agent account with a zero balance."""
    context = get_context(ctx)
    result = context.app.open_account(agent, command_id=command_id)
    emit_json(result) if context.as_json else say(f"Opened account {result['account']}.")


@account_app.command("list")
def list_accounts(ctx: typer.Context) -> None:
    """Every account with its kind and balance."""
    context = get_context(ctx)
    app = context.app
    decimals = app.decimals
    opened = [event for _, event in iter_events(app, topics=(stable_topic(Account.Opened),))]
    rows = []
    for event in opened:
        balance = app.get_account(event.account_id).balance_units
        rows.append(
            {
                "account": event.account_id,
                "kind": event.kind,
                "balance_units": str(balance),
                "balance": format_amount(balance, decimals),
            }
        )
    if context.as_json:
        emit_json(rows)
    else:
        table(
            "Accounts",
            ["account", "kind", "balance"],
            [[r["account"], r["kind"], r["balance"]] for r in rows],
            right=["balance"],
        )


def _amount(context, text: str) -> int:
    return parse_amount(text, context.app.decimals)


def mint(ctx: typer.Context, agent: str, amount: str, command_id: CommandId = None) -> None:
    """Create tokens in an agent's account (the treasury's balance goes down by as much)."""
    context = get_context(ctx)
    result = context.app.mint(agent_account_id(agent), _amount(context, amount), command_id=command_id)
    emit_json(result) if context.as_json else say(f"Minted {amount} to {agent} (transfer {result['transfer_id']}).")


def burn(ctx: typer.Context, agent: str, amount: str, command_id: CommandId = None) -> None:
    """Destroy tokens from an agent's account back into the treasury."""
    context = get_context(ctx)
    result = context.app.burn(agent_account_id(agent), _amount(context, amount), command_id=command_id)
    emit_json(result) if context.as_json else say(f"Burned {amount} from {agent} (transfer {result['transfer_id']}).")


def transfer(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FROM")],
    destination: Annotated[str, typer.Argument(metavar="TO")],
    amount: str,
    reason: Annotated[str, typer.Option(help="Reason code: 'transfer' or 'transfer:<label>'.")] = "transfer",
    command_id: CommandId = None,
) -> None:
    """Move tokens from one agent to another."""
    context = get_context(ctx)
    result = context.app.transfer(source, destination, _amount(context, amount), reason=reason, command_id=command_id)
    emit_json(result) if context.as_json else say(
        f"Transferred {amount} from {source} to {destination} (transfer {result['transfer_id']})."
    )
