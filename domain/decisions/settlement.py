"""Settlement decisions: lifecycle transitions settle every position on the artifact,
in the same transaction as the transition itself.

The pool is the counterparty. Payouts come from the artifact's pool; when the pool
cannot cover one, the shortfall is first minted into it from the treasury
(``amm:subsidy``). After a terminal settlement whatever is left in the pool goes back
to the treasury (``amm:tax``), so per artifact, to the unit:
    sum of every position's realised P&L = subsidies − tax.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from stakeledger.domain.decisions.loading import load_artifact, load_position, require_agent
from stakeledger.domain.decisions.pool import pay_from_pool
from stakeledger.domain.decisions.unit_of_work import UnitOfWork
from stakeledger.domain.errors import (
    CorrectionWindowClosedError,
    InvalidInputError,
    ReversalNotCoveredError,
    StateError,
    ThresholdNotMetError,
    UnknownBountyError,
)
from stakeledger.domain.model.accounts import (
    TREASURY,
    agent_account_id,
    bounty_escrow_account_id,
    order_escrow_account_id,
    pool_account_id,
)
from stakeledger.domain.model.artifacts import Artifact, artifact_of, micros_text
from stakeledger.domain.model.positions import FROZEN, Position, position_uuid
from stakeledger.domain.model.reputation import Reputation, reputation_uuid
from stakeledger.domain.rules.money import check_units, format_amount, split_by_weights
from stakeledger.domain.rules.settlement import compute_settlement_pnl
from stakeledger.domain.vocabulary import CHALLENGED, FLAGGED, INVALID, LISTED, TERMINAL_STATES, WAD, Reason, Side

REFERENCE_STAKE_TOKENS = 100
AUTO_ACTOR = "auto-resolution"  # the actor of every automatic transition
MAX_CLAIMANTS = 1_000


def transition_artifact(
    unit: UnitOfWork, artifact_id: str, to_state: str, actor: str, reason: str, price_wad: int | None
) -> dict[str, Any]:
    """Move the artifact to ``to_state`` and settle what that transition settles.

    The settlement price is ``price_wad`` (the resolver's oracle) or, without one, the
    time-weighted average of p(long) over the market's window; either must meet the
    market's threshold for ``to_state`` (``ResolutionRules``), or nothing is written.
    """
    artifact = load_artifact(unit, artifact_id)
    # A transition the lifecycle forbids is refused as such, before any price is weighed:
    # a validated artifact asked to deprecate is told it is validated, not that 0.5 > 0.1.
    artifact.require_transition(to_state)
    average_wad = artifact.window_average_price_wad(unit.at)
    settlement_price = price_wad if price_wad is not None else average_wad
    _require_threshold(artifact, to_state, settlement_price, given=price_wad is not None)
    from_state = artifact.transition(to_state, actor, reason, settlement_price, unit.at, average_wad=average_wad)
    transition = artifact.transition_count
    unit.preload([position_uuid(position_id) for position_id in artifact.position_ids], Position)
    positions = [load_position(unit, position_id) for position_id in artifact.position_ids]
    live = [position for position in positions if position.is_live]
    summary: dict[str, Any] = {
        "artifact": artifact_id,
        "from": from_state,
        "to": to_state,
        "transition": transition,
        "price_long_wad": str(settlement_price),
        "window_average_wad": str(average_wad),
        "positions": len(live),
    }
    if to_state == CHALLENGED:
        for position in live:
            position.freeze(transition, unit.at)
        return summary
    if to_state in (LISTED, FLAGGED):
        # Trading resumes: frozen positions open again. A terminal transition settles them
        # straight from frozen, so nobody is told a position is open that is being settled.
        for position in live:
            position.reopen(transition, unit.at)
    if to_state == LISTED:
        return summary
    redeemed = {Side.LONG: 0, Side.SHORT: 0}
    if to_state == FLAGGED:
        # A flag settles a position partially once in its life: a later flag pays nothing
        # to positions that already took their half back or their bonus.
        first = [position for position in live if position.partial_settlements == 0]
        treasury_before = unit.account(TREASURY).balance_units
        paid = sum(_settle_partially(unit, artifact, position, transition, redeemed) for position in first)
        _redeem(unit, artifact, redeemed)
        artifact.book_resolution(paid, treasury_before - unit.account(TREASURY).balance_units, 0, unit.at)
        return {**summary, "paid_units": str(paid), "already_partially_settled": len(live) - len(first)}
    assert to_state in TERMINAL_STATES
    treasury_before = unit.account(TREASURY).balance_units
    paid = sum(_settle_finally(unit, artifact, position, transition, settlement_price, redeemed) for position in live)
    # Only the payouts' shortfalls moved the treasury so far: together, the subsidy minted.
    subsidy_units = treasury_before - unit.account(TREASURY).balance_units
    _redeem(unit, artifact, redeemed)
    _release_resting_orders(unit, artifact)
    tax_units = unit.account(pool_account_id(artifact_id)).balance_units
    if tax_units > 0:
        unit.post(
            pool_account_id(artifact_id),
            TREASURY,
            tax_units,
            Reason.AMM_TAX,
            artifact=artifact_id,
            transition=transition,
        )
    artifact.book_resolution(paid, subsidy_units, tax_units, unit.at)
    return {**summary, "paid_units": str(paid), "subsidy_units": str(subsidy_units), "tax_units": str(tax_units)}


def reopen_artifact(unit: UnitOfWork, artifact_id: str, actor: str, reason: str) -> dict[str, Any]:
    """Correct a wrong resolution: reverse every settlement, payout, reputation change, tax and
    subsidy of the artifact's terminal transition, put back the orders it released, and return
    the market to the state it had before (trading resumes). Refused past the market's
    correction window, and when an account no longer holds what it must give back."""
    artifact = load_artifact(unit, artifact_id)
    if artifact.state not in TERMINAL_STATES:
        raise StateError(f"artifact {artifact_id!r} is {artifact.state}: only a resolved market can be reopened")
    until = artifact.may_reopen_until()
    booked = artifact.before_resolution
    if until is None or booked is None or not booked["booked"]:
        raise CorrectionWindowClosedError(
            f"artifact {artifact_id!r} was resolved before reopens were recorded: it cannot be reopened"
        )
    if unit.at > until:
        raise CorrectionWindowClosedError(
            f"artifact {artifact_id!r} was resolved {artifact.state} at {booked['resolved_at'].isoformat()}; "
            f"its {artifact.correction_hours}-hour correction window closed at {until.isoformat()}"
        )
    reversed_transition = booked["transition"]
    unit.preload([position_uuid(position_id) for position_id in artifact.position_ids], Position)
    positions = [load_position(unit, position_id) for position_id in artifact.position_ids]
    settled = [position for position in positions if position.settled_by(reversed_transition)]
    owed: dict[str, int] = {}
    for position in settled:
        assert position.last_settlement is not None
        owed[position.owner] = owed.get(position.owner, 0) + position.last_settlement["payout_units"]
    orders = booked["orders"]
    for order in orders.values():
        owed[order["agent"]] = owed.get(order["agent"], 0) + order["remaining_units"]
    _require_covered(unit, artifact_id, owed)

    from_state = artifact.state
    payout_units = sum(position.last_settlement["payout_units"] for position in settled if position.last_settlement)
    artifact.reverse_resolution(actor, reason, payout_units, unit.at)
    transition = artifact.transition_count
    pool = pool_account_id(artifact_id)
    refs = {"artifact": artifact_id, "transition": transition, "reverses": reversed_transition}
    if booked["tax_units"] > 0:
        unit.post(TREASURY, pool, booked["tax_units"], Reason.AMM_TAX_REVERSAL, **refs)
    for position in settled:
        payout = position.reverse_settlement(transition, reversed_transition, unit.at)
        if payout > 0:
            unit.post(position.owner, pool, payout, Reason.SETTLEMENT_REVERSAL, position=position.position_id, **refs)
    reverted = 0
    for owner in sorted({position.owner for position in settled}):
        reputation = unit.find(reputation_uuid(owner), Reputation)
        if reputation is not None:
            reverted += reputation.revert_resolution(artifact_id, transition, reversed_transition, unit.at)
    if booked["subsidy_units"] > 0:
        unit.post(pool, TREASURY, booked["subsidy_units"], Reason.AMM_SUBSIDY_REVERSAL, **refs)
    escrow = order_escrow_account_id(artifact_id)
    for order_id, order in sorted(orders.items(), key=lambda item: item[1]["sequence"]):
        if order["remaining_units"] > 0:
            unit.post(order["agent"], escrow, order["remaining_units"], Reason.ORDER_ESCROW, order=order_id, **refs)
    return {
        "artifact": artifact_id,
        "from": from_state,
        "to": artifact.state,
        "transition": transition,
        "reverses": reversed_transition,
        "positions": len(settled),
        "payouts_reversed_units": str(payout_units),
        "tax_reversed_units": str(booked["tax_units"]),
        "subsidy_reversed_units": str(booked["subsidy_units"]),
        "orders_restored": len(orders),
        "reputation_changes_reverted": reverted,
    }


def _require_covered(unit: UnitOfWork, artifact_id: str, owed: dict[str, int]) -> None:
    """Refuse, naming every account, when some agent now holds less than it must give back."""
    short = []
    for account_id in sorted(owed):
        balance = unit.account(account_id).balance_units
        if balance < owed[account_id]:
            short.append(
                f"{account_id} holds {format_amount(balance, unit.decimals)} tokens and must give back "
                f"{format_amount(owed[account_id], unit.decimals)}"
            )
    if short:
        raise ReversalNotCoveredError(
            f"artifact {artifact_id!r} cannot be reopened: its payouts were partly spent ({'; '.join(short)})"
        )


def _release_resting_orders(unit: UnitOfWork, artifact: Artifact) -> None:
    """A resolved market's resting orders leave the book and their escrow goes back.

    Settlement releases its own orders rather than through the trading decisions, so that
    trading may call ``resolve_if_due`` after a trade without an import cycle."""
    escrow = order_escrow_account_id(artifact.artifact_id)
    for order_id in list(artifact.orders):
        agent = artifact.orders[order_id]["agent"]
        released_units = artifact.release_order(order_id, "settled", unit.at)
        if released_units > 0:
            unit.post(
                escrow, agent, released_units, Reason.ORDER_RELEASE, artifact=artifact.artifact_id, order=order_id
            )


def resolve_if_due(unit: UnitOfWork, artifact: Artifact) -> dict[str, Any] | None:
    """The trade hook of automatic resolution: when the market opted in and the window's
    average has met a threshold for the whole sustained period, as sampled at every trade up
    to and including the one just made, the transition happens now, in the same transaction.

    It reads only the artifact's recorded events and the unit's time, so a replay decides
    the same. Returns the transition's summary, or None when none is due."""
    to_state = artifact.due_auto_transition(unit.at)
    if to_state is None:
        return None
    rules = artifact.resolution_rules
    average_wad = artifact.window_average_price_wad(unit.at)
    if not rules.meets(to_state, average_wad):
        return None  # the trade itself took the average back: nothing is due after all
    comparison, bound = rules.bound_for(to_state) or ("", 0)
    since = artifact.since_beyond[to_state]
    reason = (
        f"automatic: the {rules.window_days}-day average p(long) met {comparison} {_price(bound)} "
        f"for {rules.sustained_hours} hours (since {micros_text(since)})"
    )
    return transition_artifact(unit, artifact.artifact_id, to_state, AUTO_ACTOR, reason, None)


def _require_threshold(artifact: Artifact, to_state: str, price_wad: int, *, given: bool) -> None:
    rules = artifact.resolution_rules
    bound = rules.bound_for(to_state)
    if bound is None or rules.meets(to_state, price_wad):
        return
    comparison, limit = bound
    source = "the given price" if given else f"the {rules.window_days}-day average of p(long)"
    raise ThresholdNotMetError(
        f"artifact {artifact.artifact_id!r} cannot become {to_state}: it needs a settlement price "
        f"{comparison} {_price(limit)}, and {source} is {_price(price_wad)}"
    )


def _price(price_wad: int) -> str:
    whole, fraction = divmod(price_wad, WAD)
    return f"{whole}.{str(fraction).rjust(18, '0').rstrip('0') or '0'}"


def _redeem(unit: UnitOfWork, artifact: Artifact, redeemed: dict[Side, int]) -> None:
    for side, shares_units in redeemed.items():
        artifact.redeem_shares(side, shares_units, unit.at)


def _settle_partially(
    unit: UnitOfWork, artifact: Artifact, position: Position, transition: int, redeemed: dict[Side, int]
) -> int:
    outcome = compute_settlement_pnl(position, artifact.price_long_wad, FLAGGED)
    released_shares = position.quantity_units - outcome.quantity_left_units
    if outcome.quantity_left_units == 0 or outcome.cost_left_units == 0:
        return 0  # too small to halve: nothing to hand back
    _pay(unit, artifact, position, outcome.payout_units, outcome.reason, transition)
    redeemed[Side(position.side)] += released_shares
    position.partially_settle(transition, FLAGGED, outcome, unit.at)
    return outcome.payout_units


def _settle_finally(
    unit: UnitOfWork, artifact: Artifact, position: Position, transition: int, price_wad: int, redeemed: dict[Side, int]
) -> int:
    outcome = compute_settlement_pnl(position, price_wad, artifact.state)
    _pay(unit, artifact, position, outcome.payout_units, outcome.reason, transition)
    redeemed[Side(position.side)] += position.quantity_units
    position.settle(transition, artifact.state, price_wad, outcome, unit.at)
    if artifact.state == INVALID:
        return outcome.payout_units  # no outcome, no prediction: reputation stays where it was
    reputation = unit.find(reputation_uuid(position.owner), Reputation) or unit.add(
        Reputation.start(position.owner, unit.at)
    )
    reputation.record_prediction(
        position.position_id,
        artifact.artifact_id,
        transition,
        correct=outcome.correct,
        stake_units=outcome.cost_released_units,
        reference_stake_units=REFERENCE_STAKE_TOKENS * 10**unit.decimals,
        at=unit.at,
    )
    return outcome.payout_units


def _pay(
    unit: UnitOfWork, artifact: Artifact, position: Position, amount_units: int, reason: str, transition: int
) -> None:
    if amount_units > 0:
        pay_from_pool(
            unit,
            artifact.artifact_id,
            position.owner,
            amount_units,
            reason,
            position=position.position_id,
            transition=transition,
        )


# Bounties -----------------------------------------------------------------------------------


def post_bounty(unit: UnitOfWork, artifact_id: str, sponsor: str, amount_units: int) -> dict[str, Any]:
    sponsor_account = require_agent(unit, sponsor)
    check_units(amount_units)
    artifact = load_artifact(unit, artifact_id)
    bounty_id = artifact.post_bounty(sponsor_account, amount_units, unit.at)
    unit.post(
        sponsor_account,
        bounty_escrow_account_id(bounty_id),
        amount_units,
        Reason.BOUNTY_FUND,
        artifact=artifact_id,
        bounty=bounty_id,
    )
    return {"bounty": bounty_id, "amount_units": str(amount_units)}


def distribute_bounty(unit: UnitOfWork, bounty_id: str, claimants: list[tuple[str, Fraction]]) -> dict[str, Any]:
    """Split the escrow among claimants by weight: floor of each share, leftovers in order."""
    if not claimants:
        raise InvalidInputError("a distribution needs at least one claimant")
    if len(claimants) > MAX_CLAIMANTS:
        raise InvalidInputError(f"at most {MAX_CLAIMANTS} claimants")
    names = [agent_account_id(name) for name, _ in claimants]
    if len(set(names)) != len(names):
        raise InvalidInputError("each claimant may appear once")
    artifact, bounty = _open_bounty(unit, bounty_id)
    for name in names:
        require_agent(unit, name)
    shares = split_by_weights(bounty["amount_units"], claimants)
    for name, share in shares:
        if share > 0:
            unit.post(
                bounty_escrow_account_id(bounty_id),
                name,
                share,
                Reason.BOUNTY_PAYOUT,
                artifact=artifact.artifact_id,
                bounty=bounty_id,
            )
    artifact.close_bounty(bounty_id, "distributed", {name: share for name, share in shares}, unit.at)
    return {"bounty": bounty_id, "shares": {name: str(share) for name, share in shares}}


def refund_bounty(unit: UnitOfWork, bounty_id: str) -> dict[str, Any]:
    artifact, bounty = _open_bounty(unit, bounty_id)
    unit.post(
        bounty_escrow_account_id(bounty_id),
        bounty["sponsor"],
        bounty["amount_units"],
        Reason.BOUNTY_REFUND,
        artifact=artifact.artifact_id,
        bounty=bounty_id,
    )
    artifact.close_bounty(bounty_id, "refunded", {bounty["sponsor"]: bounty["amount_units"]}, unit.at)
    return {"bounty": bounty_id, "refunded_units": str(bounty["amount_units"]), "sponsor": bounty["sponsor"]}


def _open_bounty(unit: UnitOfWork, bounty_id: str) -> tuple[Artifact, dict[str, Any]]:
    artifact = load_artifact(unit, artifact_of(bounty_id))
    bounty = artifact.bounties.get(bounty_id)
    if bounty is None:
        raise UnknownBountyError(f"unknown bounty {bounty_id!r}")
    if bounty["status"] != "open":
        raise StateError(f"bounty {bounty_id!r} is already {bounty['status']}")
    return artifact, bounty


__all__ = ["FROZEN", "compute_settlement_pnl"]
