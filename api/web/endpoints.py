"""The JSON the web page needs that the rest of the API did not serve: who a key is, an
agent's daily equity, and the auditor's export roots and balance proof.

| method and path | key | what |
|---|---|---|
| ``GET /api/whoami`` | any | the key's id, agent and scope (the page signs in with it) |
| ``GET /api/portfolio/{agent}/equity`` | agent | equity at the end of each day with activity (replays the log) |
| ``GET /api/export/roots[?at=SEQ]`` | any | the header an export at that seq would carry: roots, supply, ids |
| ``GET /api/export/proof/{account}[?at=SEQ]`` | agent | the account's balance row and its Merkle proof |

The last two replay the log as ``stakeledger export`` does (without writing files), so
they cost time in proportion to the log, like the audit: roots need a key (any scope),
and a proof the key of the account's agent or an admin key. The EVM stack is imported only
when one of them is called.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from fastapi import APIRouter, Path, Query

from stakeledger.api.errors import responses
from stakeledger.api.models import NAME_PATTERN
from stakeledger.api.render import human
from stakeledger.api.state import Caller, State
from stakeledger.domain.model.accounts import agent_account_id
from stakeledger.projections import dashboard

router = APIRouter(tags=["web"])

AgentPath = Annotated[str, Path(pattern=NAME_PATTERN, description="Agent name.")]
# An export seq counts records from 1; uint64 in the header.
ExportSeq = Annotated[
    Optional[int], Query(ge=1, le=2**63 - 1, description="Export seq (1 = the first event); default: the end.")
]


@router.get("/api/whoami", responses=responses(401), summary="The key's id, agent and scope")
def whoami(caller: Caller) -> dict[str, Any]:
    return {"key_id": caller.key_id, "agent": caller.agent, "scope": caller.scope, "admin": caller.is_admin}


@router.get(
    "/api/portfolio/{agent}/equity",
    tags=["portfolio"],
    responses=responses(401, 403, 404),
    summary="The agent's equity (cash + positions at the current price) at the end of each day with activity",
)
def equity(agent: AgentPath, caller: Caller, state: State) -> dict[str, Any]:
    caller.require_agent(agent)
    ledger = state.ledger
    ledger.get_account(agent_account_id(agent))  # 404 for an unknown agent before any replay
    curve = dashboard.equity_curve(ledger, agent)
    return human(
        {"agent": agent, "points": [{"day": day.isoformat(), "equity_units": str(units)} for day, units in curve]},
        state.decimals,
    )


@router.get(
    "/api/export/roots",
    tags=["export"],
    responses=responses(401, 403, 409),
    summary="The snapshot header an export at this seq would carry: events and balances roots, total supply",
)
def export_roots(caller: Caller, state: State, at: ExportSeq = None) -> dict[str, Any]:
    """Any key: the roots are what a published export shows anyone, and the key bounds who
    can make the server replay the log (as for a proof)."""
    del caller
    from stakeledger.adapters.evm.bundle import hex0x
    from stakeledger.adapters.evm.export import build_snapshot

    snapshot = build_snapshot(state.ledger, at=at)
    header = snapshot.header
    return {
        "lastSeq": header.last_seq,
        "snapshotId": hex0x(header.snapshot_id),
        "eventsRoot": hex0x(header.events_root),
        "balancesRoot": hex0x(header.balances_root),
        "totalSupply": str(header.total_supply),
        "decimals": snapshot.fold.decimals,
        "domain": snapshot.domain.name,
    }


@router.get(
    "/api/export/proof/{account}",
    tags=["export"],
    responses=responses(401, 403, 404, 409),
    summary="An account's balance row and its Merkle proof against the balances root",
)
def export_proof(account: AgentPath, caller: Caller, state: State, at: ExportSeq = None) -> dict[str, Any]:
    caller.require_agent(account)
    from stakeledger.adapters.evm.export import balance_proof

    return balance_proof(state.ledger, agent_account_id(account), at=at)
