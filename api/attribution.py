"""Performance attribution over HTTP: ``GET /api/portfolio/{agent}/attribution``.

The agent's realised and unrealised P&L by market, correlation group or signal feature
(``projections/attribution.py``), marked at exit value as the portfolio summary is, so the
total row is the summary's realised + unrealised to the unit. A private read, as the summary
is: the agent's own key or an admin key. Thresholds are decimal strings of log-odds
(``material=0.05``, ``material_for=news_lo:0.10``, repeatable or comma-separated); a bad one
answers 422 ``INVALID_INPUT``, an unknown agent 404 ``UNKNOWN_ACCOUNT``.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from fastapi import APIRouter, Query

from stakeledger.api.errors import responses
from stakeledger.api.portfolio import AgentPath
from stakeledger.api.render import human
from stakeledger.api.state import Caller, State
from stakeledger.domain.model.accounts import agent_account_id
from stakeledger.projections import attribution as attributed

router = APIRouter(tags=["portfolio"])


@router.get(
    "/api/portfolio/{agent}/attribution",
    responses=responses(401, 403, 404),
    summary="Realised and unrealised P&L by market, correlation group or signal feature, at exit value",
)
def attribution(
    agent: AgentPath,
    caller: Caller,
    state: State,
    by: Annotated[str, Query(max_length=16, description="market, group or feature.")] = "market",
    material: Annotated[
        Optional[str],
        Query(max_length=64, description='A triggered feature is material at |log-odds| >= this (default "0.05").'),
    ] = None,
    material_for: Annotated[
        Optional[list[str]],
        Query(
            max_length=attributed.MAX_OVERRIDES,
            description="A feature's own threshold, NAME:VALUE (news_lo:0.10); repeat the parameter or separate with commas.",
        ),
    ] = None,
) -> Any:
    """By feature, each position's P&L is shared among its features in proportion to
    |log-odds| (largest remainder, ties by name), and each feature's P&L is split into the
    positions where it was material and those where it was triggered but not material."""
    caller.require_agent(agent)
    account_id = agent_account_id(agent)
    state.ledger.get_account(account_id)  # 404 before anything is read
    by = attributed.check_by(by)
    overrides = [part for item in material_for or () for part in item.split(",")]
    thresholds = attributed.Thresholds.from_inputs(
        material, overrides, separator=":", names=("material", "material_for")
    )
    data = attributed.attribution(state.ledger, account_id, by=by, thresholds=thresholds)
    return human(data, state.decimals)
