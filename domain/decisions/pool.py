"""What the pool pays: shares sold back at market, and payouts with the subsidy for a shortfall.

The LMSR pool is the counterparty to every trade; these are the two ways tokens leave it
for an agent. Trading, stops, liquidation and settlement all pay through here.
"""

from __future__ import annotations

from typing import Any

from stakeledger.domain.decisions.loading import load_artifact
from stakeledger.domain.decisions.unit_of_work import UnitOfWork
from stakeledger.domain.model.accounts import FEES, TREASURY, pool_account_id
from stakeledger.domain.model.positions import Position
from stakeledger.domain.rules.lmsr import sell_proceeds_units
from stakeledger.domain.vocabulary import Reason, Side

MAX_FEE_BPS = 1_000  # 10 %
BPS = 10_000


def fee_units(amount_units: int, fee_bps: int) -> int:
    """A trade fee on ``amount_units``: ceil(amount · bps / 10 000), never more than the amount."""
    return min(-(-amount_units * fee_bps // BPS), amount_units)


def spendable_units(budget_units: int, fee_bps: int) -> int:
    """The most a buy may send to the pool so that it and its fee fit in ``budget_units``."""
    spend_units = budget_units * BPS // (BPS + fee_bps)
    while spend_units > 0 and spend_units + fee_units(spend_units, fee_bps) > budget_units:
        spend_units -= 1
    return spend_units


def charge_fee(unit: UnitOfWork, artifact_id: str, fee_bps: int, payer: str, amount_units: int, **refs: Any) -> int:
    """Post the market's fee on a trade of ``amount_units`` from ``payer`` to sys:fees."""
    fee = fee_units(amount_units, fee_bps)
    if fee > 0:
        unit.post(payer, FEES, fee, Reason.TRADE_FEE, artifact=artifact_id, **refs)
    return fee


def close_live_position(unit: UnitOfWork, position: Position, *, how: str) -> int:
    """Sell a live position back to the pool; the caller has checked it may close."""
    artifact, proceeds_units = _sell_back(unit, position, position.quantity_units)
    position.close(proceeds_units, artifact.price_long_wad, how, unit.at)
    return proceeds_units


def close_part_of_position(unit: UnitOfWork, position: Position, shares_units: int, *, how: str) -> int:
    """Sell ``shares_units`` of a live position (fewer than it holds) back to the pool; the
    caller has checked it may close. Returns the proceeds."""
    artifact, proceeds_units = _sell_back(unit, position, shares_units)
    position.close_part(shares_units, proceeds_units, artifact.price_long_wad, how, unit.at)
    return proceeds_units


def _sell_back(unit: UnitOfWork, position: Position, shares_units: int) -> tuple[Any, int]:
    """The pool buys ``shares_units`` of the position's side: the trade, the payment and the fee.
    Returns the artifact (its price moved) and the proceeds before the fee."""
    artifact = load_artifact(unit, position.artifact_id)
    side = Side(position.side)
    proceeds_units = sell_proceeds_units(artifact.q_long, artifact.q_short, artifact.b_units, side, shares_units)
    artifact.record_trade(side, -shares_units, -proceeds_units, position.position_id, position.owner, None, unit.at)
    if proceeds_units > 0:
        pay_from_pool(
            unit,
            artifact.artifact_id,
            position.owner,
            proceeds_units,
            Reason.TRADE_CLOSE,
            position=position.position_id,
        )
    charge_fee(
        unit, artifact.artifact_id, artifact.fee_bps, position.owner, proceeds_units, position=position.position_id
    )
    return artifact, proceeds_units


def pay_from_pool(unit: UnitOfWork, artifact_id: str, payee: str, amount_units: int, reason: str, **refs: Any) -> None:
    """Pay from the artifact's pool. Partial settlements can leave the pool short of what
    the LMSR owes; the shortfall is minted into it from the treasury first (amm:subsidy)."""
    pool = pool_account_id(artifact_id)
    shortfall = amount_units - unit.account(pool).balance_units
    if shortfall > 0:
        # The subsidy is the market's, not the payee's: it names the transition, not the position.
        market_refs = {key: value for key, value in refs.items() if key != "position"}
        unit.post(TREASURY, pool, shortfall, Reason.AMM_SUBSIDY, artifact=artifact_id, **market_refs)
    unit.post(pool, payee, amount_units, reason, artifact=artifact_id, **refs)
