"""/api/market: artifacts, quotes, the book, market and limit orders, closes, cancels,
settlement history, one position's history with the rationale its order recorded. Market
data is public; every write, and a position's history, needs a key that may act for the
agent."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Body, Path, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from stakeledger.api.errors import responses
from stakeledger.api.inputs import rationale_of
from stakeledger.api.models import (
    NAME_PATTERN,
    TEXT_PATTERN,
    Amount,
    ArtifactIn,
    ArtifactOut,
    CancelOut,
    CloseIn,
    CloseOut,
    LimitOrderIn,
    MarketOrderIn,
    OrderOut,
    QuoteOut,
    Side,
    TakeProfitIn,
    TakeProfitOut,
    TradeOut,
)
from stakeledger.api.render import human, respond
from stakeledger.api.state import Caller, CommandId, State
from stakeledger.domain.errors import UnknownOrderError
from stakeledger.domain.model.artifacts import artifact_of
from stakeledger.domain.rules.lmsr import prices_wad
from stakeledger.domain.rules.money import parse_amount, parse_price_wad
from stakeledger.domain.rules.rationale import Rationale
from stakeledger.domain.rules.resolution import ResolutionRules
from stakeledger.projections import queries
from stakeledger.projections.views.markets import ORDERS  # the orders view: every order ever placed, with its owner

router = APIRouter(prefix="/api/market", tags=["market"])

ArtifactPath = Annotated[str, Path(pattern=NAME_PATTERN, description="Artifact id.")]


def child_id_path(kind: str, example: str) -> Any:
    """Ids of positions, orders and bounties hold a slash ("ART-1/p7"): send it as is or
    URL-encoded (%2F). Their shape is checked by the ledger, which answers 422 or 404."""
    return Path(
        min_length=3,
        max_length=140,
        pattern=TEXT_PATTERN,
        description=f"{kind} id, e.g. {example}.",
        openapi_examples={kind.lower(): {"summary": f"a {kind.lower()} id", "value": example}},
    )


PositionPath = Annotated[str, child_id_path("Position", "ART-1/p1")]
OrderPath = Annotated[str, child_id_path("Order", "ART-1/o1")]
Limit = Annotated[int, Query(ge=1, le=queries.MAX_LIMIT, description="At most this many rows.")]


def rejected_or(result: dict[str, Any], decimals: int, status_code: int = 200) -> Any:
    """A risk rejection was recorded as an event but placed nothing: 409 with its reason
    code (e.g. MAX_POSITION_PCT). Anything else is the command's result."""
    if "rejected" in result:
        rejection = result["rejected"]
        return JSONResponse(
            jsonable_encoder(
                {
                    "error": str(rejection["reason"]),
                    "rejection": rejection,
                    "message": result.get("message", "rejected by risk limits"),
                }
            ),
            status_code=409,
        )
    return respond(result, decimals, status_code)


# Reads -------------------------------------------------------------------------------------------


@router.get("/artifacts", summary="Every listed artifact with state, prices, pool and capital committed")
def list_artifacts(
    state: State,
    by_capital: Annotated[bool, Query(description="Order by capital committed in live positions, most first.")] = False,
) -> list[dict[str, Any]]:
    with state.views() as store:
        rows = queries.artifacts(store, by_capital=by_capital)
    return human(rows, state.decimals)


@router.post(
    "/artifacts",
    status_code=201,
    response_model=ArtifactOut,
    responses=responses(401, 403, 409),
    summary="List an artifact and open its market (admin)",
)
def add_artifact(body: ArtifactIn, caller: Caller, state: State, command_id: CommandId) -> Any:
    caller.require_admin("listing an artifact")
    ledger = state.ledger
    listed = ledger.list_artifact(
        body.artifact,
        body.title,
        parse_amount(body.liquidity, state.decimals),
        group=body.group,
        min_hold_days=body.min_hold_days,
        fee_bps=body.fee_bps,
        resolution=resolution_of(body),
        command_id=command_id,
    )
    return respond(as_listed(ledger.artifact_state(body.artifact), listed), state.decimals, 201)


# What a listing fixes for good: read from the aggregate, as it never changes.
LISTING_FIELDS = (
    "artifact",
    "title",
    "group",
    "liquidity_units",
    "min_hold_days",
    "fee_bps",
    "listed_at",
    "resolution",
)


def resolution_of(body: ArtifactIn) -> ResolutionRules | None:
    """The market's resolution rules from the body (seed 000's for fields not given), or None."""
    given = (
        body.validated_at,
        body.deprecated_at,
        body.flagged_below,
        body.window_days,
        body.correction_hours,
        body.sustained_hours,
    )
    if all(value is None for value in given) and not body.auto_resolve:
        return None
    defaults = ResolutionRules()
    return ResolutionRules(
        validated_min_wad=defaults.validated_min_wad
        if body.validated_at is None
        else parse_price_wad(body.validated_at, "validated_at"),
        deprecated_max_wad=defaults.deprecated_max_wad
        if body.deprecated_at is None
        else parse_price_wad(body.deprecated_at, "deprecated_at"),
        flagged_below_wad=defaults.flagged_below_wad
        if body.flagged_below is None
        else parse_price_wad(body.flagged_below, "flagged_below"),
        window_days=defaults.window_days if body.window_days is None else body.window_days,
        correction_hours=defaults.correction_hours if body.correction_hours is None else body.correction_hours,
        auto_resolve=body.auto_resolve,
        sustained_hours=defaults.sustained_hours if body.sustained_hours is None else body.sustained_hours,
    )


def as_listed(now: dict[str, Any], listed: dict[str, Any]) -> dict[str, Any]:
    """The artifact as its listing left it, so a retry with the same Idempotency-Key answers
    what the first request did even after trades moved the market: what a listing fixes
    (``LISTING_FIELDS``) is read from the aggregate, the rest is a fresh market (no shares,
    p = 0.5 and a window averaging 0.5, the pool holds the subsidy, nothing resting, no
    bounties, not settled). Built from a list of fields rather than from the current state
    minus what moves, so a field added to the state later cannot leak into a replay."""
    long_wad, short_wad = prices_wad(0, 0, int(listed["b_units"]))
    fresh = {
        "state": "listed",
        "q_long_units": "0",
        "q_short_units": "0",
        "price_long_wad": str(long_wad),
        "price_short_wad": str(short_wad),
        "settlement_price_wad": None,
        "window_average_wad": str(long_wad),
        "pool_units": str(listed["subsidy_units"]),
        "open_interest_units": "0",
        "resting_orders": 0,
        "positions": 0,
        "bounties": {},
    }
    return {**{name: now[name] for name in LISTING_FIELDS if name in now}, **fresh}


@router.get(
    "/artifacts/{artifact_id}",
    response_model=ArtifactOut,
    responses=responses(404),
    summary="One artifact, read from its aggregate",
)
def get_artifact(artifact_id: ArtifactPath, state: State) -> Any:
    return human(state.ledger.artifact_state(artifact_id), state.decimals)


@router.get(
    "/artifacts/{artifact_id}/book",
    responses=responses(404),
    summary="Prices, resting limit orders and the depth to move p(long) to 0.1 … 0.9",
)
def get_book(artifact_id: ArtifactPath, state: State) -> dict[str, Any]:
    with state.views() as store:
        data = queries.book(store, artifact_id)
    return human(data, state.decimals)


@router.get(
    "/artifacts/{artifact_id}/quote",
    response_model=QuoteOut,
    responses=responses(404),
    summary="What a buy would cost: give exactly one of shares or tokens; writes nothing",
)
def get_quote(
    artifact_id: ArtifactPath,
    side: Annotated[Side, Query()],
    state: State,
    shares: Annotated[Optional[Amount], Query(description="Buy this many shares.")] = None,
    tokens: Annotated[Optional[Amount], Query(description="Spend this many tokens.")] = None,
) -> Any:
    d = state.decimals
    result = state.ledger.quote(
        artifact_id,
        side,
        shares_units=parse_amount(shares, d) if shares is not None else None,
        tokens_units=parse_amount(tokens, d) if tokens is not None else None,
    )
    return human(result, d)


@router.get("/settlements", summary="Settlement history, newest first (and bounty payouts)", responses=responses(404))
def settlements(
    state: State,
    artifact_id: Annotated[Optional[str], Query(pattern=NAME_PATTERN)] = None,
    agent_id: Annotated[Optional[str], Query(pattern=NAME_PATTERN)] = None,
    limit: Limit = queries.DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    with state.views() as store:
        rows = queries.settlement_history(store, artifact=artifact_id, agent=agent_id, limit=limit)
    return human(rows, state.decimals)


# Writes ------------------------------------------------------------------------------------------


@router.post(
    "/positions",
    status_code=201,
    response_model=TradeOut,
    responses=responses(401, 403, 404, 409),
    summary="Market order: buy the shares that `tokens` pay for",
)
def open_position(body: MarketOrderIn, caller: Caller, state: State, command_id: CommandId) -> Any:
    caller.require_agent(body.agent)
    d = state.decimals
    result = state.ledger.open_position(
        body.agent,
        body.artifact,
        body.side,
        parse_amount(body.tokens, d),
        max_price_wad=parse_price_wad(body.max_price) if body.max_price is not None else None,
        min_shares_units=parse_amount(body.min_shares, d) if body.min_shares is not None else None,
        rationale=rationale_of(body.rationale),
        command_id=command_id,
    )
    return rejected_or(result, d, 201)


@router.get(
    "/positions/{position_id:path}",
    responses=responses(401, 403, 404),
    summary="One position: its holder, status, the rationale its order recorded and its events in order",
)
def get_position(position_id: PositionPath, caller: Caller, state: State) -> Any:
    """``rationale`` holds the stored ints at 10**18 as exact strings (``belief_wad``,
    ``edge_wad``, ``features``), ``rationale_decimal`` the same as decimals ("0.62"); each
    event has its name, version, time and fields. A trade key reads only its own agent's
    positions (403 otherwise)."""
    view = state.ledger.position_view(position_id)
    caller.require_agent(view["owner"])
    return JSONResponse(jsonable_encoder(position_document(view, state.decimals)))


def position_document(view: dict[str, Any], decimals: int) -> dict[str, Any]:
    """``position_view`` with every amount and WAD as an exact string (JSON numbers this large
    do not survive a JavaScript reader) and a human twin beside each; the rationale twice,
    exact and as decimals, with no six-place twin that would round it."""
    stored = view["rationale"]
    rationale = Rationale.from_event(stored)
    events = []
    for row in view["events"]:
        fields = human(_exact({key: value for key, value in row.items() if key != "rationale"}), decimals)
        if "rationale" in row:
            fields["rationale"] = _exact(row["rationale"], every_int=True)
        events.append(fields)
    return {
        **human(_exact({key: value for key, value in view.items() if key not in ("rationale", "events")}), decimals),
        "rationale": _exact(stored, every_int=True),
        "rationale_decimal": rationale.as_decimals() if rationale is not None else None,
        "events": events,
    }


def _exact(value: Any, *, every_int: bool = False, key: str = "") -> Any:
    """Amounts (``*_units``) and WADs (``*_wad``; every int with ``every_int``) as strings."""
    if isinstance(value, dict):
        return {name: _exact(item, every_int=every_int, key=name) for name, item in value.items()}
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if every_int or key.endswith(("_units", "_wad")) else value
    return value


@router.post(
    "/positions/{position_id:path}/close",
    response_model=CloseOut,
    responses=responses(401, 403, 404, 409),
    summary="Sell a position back to the market maker at the current price: all of it, or part of it "
    "(a body with `shares` or `tokens`)",
)
def close_position(
    position_id: PositionPath,
    caller: Caller,
    state: State,
    command_id: CommandId,
    body: Annotated[Optional[CloseIn], Body()] = None,
) -> Any:
    # A trade key may close only its own agent's positions (403 NOT_OWNER otherwise).
    agent = None if caller.is_admin else caller.agent
    d = state.decimals
    part = body or CloseIn()
    result = state.ledger.close_position(
        position_id,
        agent=agent,
        shares_units=parse_amount(part.shares, d) if part.shares is not None else None,
        tokens_units=parse_amount(part.tokens, d) if part.tokens is not None else None,
        command_id=command_id,
    )
    return rejected_or(result, d)


@router.post(
    "/positions/{position_id:path}/take-profit",
    status_code=201,
    response_model=TakeProfitOut,
    responses=responses(401, 403, 404, 409),
    summary="Take-profit: rest a sell of the position that fills while its side's price is above the limit "
    "(cancel it as any order)",
)
def place_take_profit(
    position_id: PositionPath, body: TakeProfitIn, caller: Caller, state: State, command_id: CommandId
) -> Any:
    agent = None if caller.is_admin else caller.agent
    result = state.ledger.place_take_profit(
        position_id,
        parse_price_wad(body.limit_price),
        agent=agent,
        expires_in_days=Decimal(body.expires_in_days) if body.expires_in_days is not None else None,
        command_id=command_id,
    )
    return rejected_or(result, state.decimals, 201)


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
    responses=responses(401, 403, 404, 409),
    summary="Limit order: escrow tokens and buy while the side's price is below the limit",
)
def place_order(body: LimitOrderIn, caller: Caller, state: State, command_id: CommandId) -> Any:
    caller.require_agent(body.agent)
    d = state.decimals
    result = state.ledger.place_limit_order(
        body.agent,
        body.artifact,
        body.side,
        parse_amount(body.tokens, d),
        parse_price_wad(body.limit_price),
        expires_in_days=Decimal(body.expires_in_days) if body.expires_in_days is not None else None,
        rationale=rationale_of(body.rationale),
        command_id=command_id,
    )
    return rejected_or(result, d, 201)


@router.delete(
    "/orders/{order_id:path}",
    response_model=CancelOut,
    responses=responses(401, 403, 404, 409),
    summary="Cancel a resting limit order and release its escrow",
)
def cancel_order(order_id: OrderPath, caller: Caller, state: State, command_id: CommandId) -> Any:
    agent = _order_owner(state, order_id) if caller.is_admin else caller.agent
    result = state.ledger.cancel_order(order_id, agent, command_id=command_id)
    return rejected_or(result, state.decimals)


def _order_owner(state: State, order_id: str) -> str:
    """Whose order this is, so an admin cancels on the owner's behalf. A resting order is
    read from its artifact; one that left the book from the orders view, so a retried
    cancel names the same agent as the first one and replays its result."""
    artifact = state.ledger.get_artifact(artifact_of(order_id))
    resting = artifact.orders.get(order_id)
    if resting is not None:
        return str(resting["agent"])
    take_profit = artifact.take_profits.get(order_id)  # kept on the artifact, resting or ended
    if take_profit is not None:
        return str(take_profit["agent"])
    with state.views() as store:
        with store.read():
            rows = store.select(ORDERS, "order_id = ?", (order_id,))
    if not rows:
        raise UnknownOrderError(f"unknown order {order_id!r}")
    return str(rows[0]["agent"])
