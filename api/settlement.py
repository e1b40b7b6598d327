"""Lifecycle transitions (which settle positions, as ``stakeledger artifact transition``
does), bounties, and reputation. Transitions, distributions and refunds need an admin
key; a sponsor's own trade key may post a bounty; reputation is public."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from stakeledger.api.errors import responses
from stakeledger.api.inputs import check_weights_sum_to_one
from stakeledger.api.market import ArtifactPath, child_id_path
from stakeledger.api.models import (
    NAME_PATTERN,
    BountyIn,
    BountyOut,
    DistributeIn,
    ReopenIn,
    ReopenOut,
    TransitionIn,
    TransitionOut,
)
from stakeledger.api.render import human, respond
from stakeledger.api.state import Caller, CommandId, State
from stakeledger.domain.rules.money import parse_amount, parse_fraction, parse_price_wad
from stakeledger.projections import queries

router = APIRouter(tags=["settlement"])

BountyPath = Annotated[str, child_id_path("Bounty", "ART-1/b1")]


@router.post(
    "/api/artifacts/{artifact_id}/lifecycle-transition",
    response_model=TransitionOut,
    responses=responses(401, 403, 404, 409),
    summary="Move an artifact through its lifecycle and settle (admin)",
)
def lifecycle_transition(
    artifact_id: ArtifactPath, body: TransitionIn, caller: Caller, state: State, command_id: CommandId
) -> Any:
    """The transition and every settlement it causes are one transaction: validated and
    deprecated settle every live position, flagged settles half, challenged freezes."""
    caller.require_admin("a lifecycle transition")
    result = state.ledger.transition_artifact(
        artifact_id,
        body.state,
        actor=body.actor or caller.agent,
        reason=body.reason,
        price_wad=parse_price_wad(body.price) if body.price is not None else None,
        command_id=command_id,
    )
    return human(result, state.decimals)


@router.post(
    "/api/artifacts/{artifact_id}/reopen",
    response_model=ReopenOut,
    responses=responses(401, 403, 404, 409),
    summary="Correct a wrong resolution within the market's correction window (admin)",
)
def reopen(artifact_id: ArtifactPath, body: ReopenIn, caller: Caller, state: State, command_id: CommandId) -> Any:
    """Reverses every settlement, payout, reputation change, tax and subsidy of the terminal
    transition, puts back the orders it released and returns the market to the state it had
    before. 409 CORRECTION_WINDOW_CLOSED past the window; 409 REVERSAL_NOT_COVERED, naming the
    accounts, when a payout was spent. A refusal writes nothing."""
    caller.require_admin("reopening a resolution")
    result = state.ledger.reopen_artifact(
        artifact_id, reason=body.reason, actor=body.actor or caller.agent, command_id=command_id
    )
    return human(result, state.decimals)


@router.get(
    "/api/artifacts/{artifact_id}/history",
    responses=responses(404),
    summary="Every lifecycle step of an artifact: actor, reason, price, average, paid, subsidy, tax, reopens",
)
def history(artifact_id: ArtifactPath, state: State) -> list[dict[str, Any]]:
    """Oldest first, read from the artifact's events: amounts as base-unit strings (``paid_units``)
    beside tokens (``paid``), prices as WAD strings beside probabilities."""
    return human(state.ledger.artifact_history(artifact_id), state.decimals)


@router.post(
    "/api/bounties",
    status_code=201,
    response_model=BountyOut,
    responses=responses(401, 403, 404, 409),
    summary="Escrow a sponsor's tokens as a bounty on an artifact",
)
def post_bounty(body: BountyIn, caller: Caller, state: State, command_id: CommandId) -> Any:
    caller.require_agent(body.sponsor)
    result = state.ledger.post_bounty(
        body.artifact, body.sponsor, parse_amount(body.amount, state.decimals), command_id=command_id
    )
    return respond(result, state.decimals, 201)


@router.post(
    "/api/bounties/{bounty_id:path}/distribute",
    response_model=BountyOut,
    responses=responses(401, 403, 404, 409),
    summary="Split a bounty among claimants by weight (admin)",
)
def distribute_bounty(
    bounty_id: BountyPath, body: DistributeIn, caller: Caller, state: State, command_id: CommandId
) -> Any:
    caller.require_admin("distributing a bounty")
    weights = [(claimant.agent, parse_fraction(claimant.weight)) for claimant in body.claimants]
    if not body.normalise:
        check_weights_sum_to_one(weights, normalise_hint='"normalise": true')
    result = state.ledger.distribute_bounty(bounty_id, weights, command_id=command_id)
    shares = {name: {"amount_units": units} for name, units in result["shares"].items()}
    return human({**result, "shares": shares}, state.decimals)


@router.post(
    "/api/bounties/{bounty_id:path}/refund",
    response_model=BountyOut,
    responses=responses(401, 403, 404, 409),
    summary="Return an unclaimed bounty to its sponsor (admin)",
)
def refund_bounty(bounty_id: BountyPath, caller: Caller, state: State, command_id: CommandId) -> Any:
    # Admin only: a sponsor who could take the bounty back at will could also pull it
    # from under the claimants just before a distribution.
    caller.require_admin("refunding a bounty")
    return human(state.ledger.refund_bounty(bounty_id, command_id=command_id), state.decimals)


@router.get("/api/reputation", tags=["reputation"], summary="Every agent's believability, highest first")
def reputation_all(state: State) -> list[dict[str, Any]]:
    with state.views() as store:
        rows = queries.reputation(store)
    return human(rows, state.decimals)


@router.get(
    "/api/reputation/{agent}",
    tags=["reputation"],
    responses=responses(404),
    summary="One agent's believability and each change, naming the settlement that caused it",
)
def reputation_one(
    agent: Annotated[str, Path(pattern=NAME_PATTERN)],
    state: State,
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = queries.MAX_LIMIT,
) -> dict[str, Any]:
    with state.views() as store:
        data = queries.reputation(store, agent, limit=limit)
    return human(data, state.decimals)
