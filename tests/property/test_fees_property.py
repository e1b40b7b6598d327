"""Fees are conserved (issue 15): over random markets with random fee rates and random
sequences of buys, limit orders, partial and full closes, the audit stays clean, sys:fees
holds exactly the sum of the fees the trades reported, and every balance still adds up.
On the in-memory store.
"""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.errors import LedgerError
from stakeledger.domain.model.accounts import FEES
from stakeledger.domain.model.positions import position_uuid
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.domain.vocabulary import WAD
from stakeledger.projections.audit import audit

TOKEN = 10**6
AGENTS = ("alice", "bob", "carol")
STEP = st.one_of(
    st.tuples(st.just("buy"), st.sampled_from(AGENTS), st.sampled_from(["long", "short"]), st.integers(1, 200 * TOKEN)),
    st.tuples(
        st.just("limit"),
        st.sampled_from(AGENTS),
        st.sampled_from(["long", "short"]),
        st.integers(1, 50 * TOKEN),
        st.integers(WAD // 20, WAD - WAD // 20),
    ),
    st.tuples(st.just("close"), st.integers(0, 30), st.integers(0, 100)),  # a position, the percent sold
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fee_bps=st.integers(0, 1_000),
    liquidity=st.integers(5 * TOKEN, 500 * TOKEN),
    steps=st.lists(STEP, min_size=1, max_size=12),
)
def test_fees_when_random_trades_at_a_random_rate_then_the_audit_is_clean_and_sys_fees_is_their_sum(
    fee_bps, liquidity, steps
):
    ledger = open_ledger("memory://", clock=ManualClock(), new_id=SeededIds(7))
    try:
        ledger.initialise(decimals=6)
        for agent in AGENTS:
            ledger.open_account(agent)
            ledger.mint(agent, 1_000 * TOKEN)
        ledger.list_artifact("ART", "Random fees", liquidity, fee_bps=fee_bps)
        reported = 0
        for step in steps:
            try:
                if step[0] == "buy":
                    result = ledger.open_position(step[1], "ART", step[2], step[3])
                    reported += int(result.get("fee_units", 0))
                elif step[0] == "limit":
                    result = ledger.place_limit_order(step[1], "ART", step[2], step[3], step[4])
                else:
                    ids = ledger.get_artifact("ART").position_ids
                    if not ids:
                        continue
                    position_id = ids[step[1] % len(ids)]
                    held = ledger.repository.get(position_uuid(position_id)).quantity_units
                    shares = held * step[2] // 100 or None
                    result = ledger.close_position(position_id, shares_units=shares)
                    reported += int(result["fee_units"])
                reported += sum(int(fill.get("fee_units", 0)) for fill in result.get("fills", []))
            except LedgerError:
                continue  # refused (funds, a closed position): nothing was written
        report = audit(ledger)
        assert report.clean, report.violations
        try:
            held_fees = ledger.balance_of(FEES)
        except LedgerError:
            held_fees = 0
        assert held_fees == report.fees_units == reported
        if fee_bps == 0:
            assert held_fees == 0
    finally:
        ledger.close()
