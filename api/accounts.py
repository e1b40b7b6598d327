"""Accounts, statements, inboxes and portfolios. An agent's own data is readable with
that agent's key or an admin key; opening an account and transfers need a key that may
act for the agent; minting needs an admin key."""

from __future__ import annotations

from typing import Annotated, Any, Optional

from fastapi import APIRouter, Path, Query

from stakeledger.api.errors import responses
from stakeledger.api.models import NAME_PATTERN, AccountIn, AccountOut, MintIn, TransferIn, TransferOut
from stakeledger.api.render import human, respond
from stakeledger.api.state import Caller, CommandId, State
from stakeledger.domain.model.accounts import agent_account_id
from stakeledger.domain.rules.money import parse_amount
from stakeledger.projections import dashboard, queries

router = APIRouter(tags=["accounts"])

AgentPath = Annotated[str, Path(pattern=NAME_PATTERN, description="Agent name.")]
Limit = Annotated[int, Query(ge=1, le=queries.MAX_LIMIT, description="At most this many rows.")]
# Log positions are BIGINT in PostgreSQL.
MAX_POSITION = 2**63 - 1


def _account(state: State, agent: str) -> dict[str, Any]:
    account = state.ledger.get_account(agent_account_id(agent))
    return {
        "account": account.account_id,
        "kind": account.kind,
        "balance_units": str(account.balance_units),
        "version": account.version,
    }


@router.post(
    "/api/accounts",
    status_code=201,
    response_model=AccountOut,
    responses=responses(401, 403, 409),
    summary="Open an agent account with a zero balance",
)
def open_account(body: AccountIn, caller: Caller, state: State, command_id: CommandId) -> Any:
    caller.require_agent(body.agent)
    state.ledger.open_account(body.agent, command_id=command_id)
    return respond(_account(state, body.agent), state.decimals, 201)


@router.get(
    "/api/accounts/{agent}",
    response_model=AccountOut,
    responses=responses(401, 403, 404),
    summary="An agent's balance, read from its aggregate",
)
def get_account(agent: AgentPath, caller: Caller, state: State) -> Any:
    """``available_units`` is the balance plus the escrow of the agent's orders past their
    expiry whose release is not written yet: tokens a dead order no longer locks."""
    caller.require_agent(agent)
    data = _account(state, agent)
    data["available_units"] = str(int(data["balance_units"]) + _expired_escrow_units(state, agent))
    return human(data, state.decimals)


def _expired_escrow_units(state: State, agent: str) -> int:
    ledger = state.ledger
    now = ledger.clock.now()
    total = 0
    for artifact_id, order_id in ledger.get_account(agent_account_id(agent)).orders_due(now):
        order = ledger.get_artifact(artifact_id).orders.get(order_id)
        if order is not None and order["expires_at"] is not None and order["expires_at"] <= now:
            total += order["remaining_units"]
    return total


@router.get(
    "/api/accounts/{agent}/statement",
    responses=responses(401, 403, 404),
    summary="Every movement with reason, counterparty and running balance",
)
def statement(
    agent: AgentPath,
    caller: Caller,
    state: State,
    at: Annotated[
        Optional[int], Query(ge=0, le=MAX_POSITION, description="Log position: the statement as it stood then.")
    ] = None,
    limit: Limit = queries.MAX_LIMIT,
) -> dict[str, Any]:
    caller.require_agent(agent)
    with state.views() as store:
        data = queries.statement(store, agent, at=at, limit=limit)
    return human(data, state.decimals)


@router.get(
    "/api/accounts/{agent}/inbox",
    responses=responses(401, 403, 404),
    summary="Settlement notifications the agent received, newest first",
)
def inbox(agent: AgentPath, caller: Caller, state: State, limit: Limit = queries.DEFAULT_LIMIT) -> list[dict[str, Any]]:
    caller.require_agent(agent)
    with state.views() as store:
        rows = queries.inbox(store, agent, decimals=state.decimals, limit=limit)
    return human(rows, state.decimals)


@router.post(
    "/api/accounts/{agent}/mint",
    response_model=TransferOut,
    responses=responses(401, 403, 404),
    summary="Create tokens in an agent's account (admin)",
)
def mint(agent: AgentPath, body: MintIn, caller: Caller, state: State, command_id: CommandId) -> Any:
    caller.require_admin("minting")
    result = state.ledger.mint(agent, parse_amount(body.amount, state.decimals), command_id=command_id)
    return human(result, state.decimals)


@router.post(
    "/api/accounts/{agent}/transfers",
    response_model=TransferOut,
    responses=responses(401, 403, 404, 409),
    summary="Move tokens from this agent to another",
)
def transfer(agent: AgentPath, body: TransferIn, caller: Caller, state: State, command_id: CommandId) -> Any:
    caller.require_agent(agent)
    result = state.ledger.transfer(
        agent, body.to, parse_amount(body.amount, state.decimals), reason=body.reason, command_id=command_id
    )
    return human(result, state.decimals)


@router.get(
    "/api/portfolio/{agent}",
    tags=["portfolio"],
    responses=responses(401, 403, 404),
    summary="Positions at exit value (what closing each now pays), resting orders and P&L",
)
def portfolio(agent: AgentPath, caller: Caller, state: State) -> dict[str, Any]:
    """An order past its expiry is not resting: its escrow counts as free
    (``expired_escrow_units``) whether or not the release is written yet."""
    caller.require_agent(agent)
    with state.views() as store:
        data = queries.portfolio_at_exit(store, agent, now=state.ledger.clock.now())
    return human(data, state.decimals)


@router.get(
    "/api/portfolio/{agent}/metrics",
    tags=["portfolio"],
    responses=responses(401, 403, 404),
    summary="Capital, P&L, concentration, exposure, Sharpe, Sortino and drawdown",
)
def metrics(agent: AgentPath, caller: Caller, state: State) -> dict[str, Any]:
    """Read from the write side and a replay of the log (projections.dashboard), so it
    costs time in proportion to the log; the figures match `stakeledger portfolio summary`."""
    caller.require_agent(agent)
    ledger = state.ledger
    ledger.get_account(agent_account_id(agent))  # 404 for an unknown agent before any replay
    return human(
        {"summary": dashboard.summary(ledger, agent), "performance": dashboard.metrics(ledger, agent)}, state.decimals
    )
