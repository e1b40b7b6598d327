"""The audit's per-artifact identity catches a settled market whose books do not add up.

For a settled artifact, to the unit: long profits + short profits − losses = subsidies − tax.
Each test settles a small market, checks that the audit passes it, then dirties the log so that
every transfer still has two equal sides and every balance still nets to zero, but the identity
no longer holds; the audit (and ``stakeledger audit``) must report exactly that, and any payment
that no position's events account for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.decisions.loading import load_artifact, load_position
from stakeledger.domain.decisions.settlement import _redeem, _settle_partially
from stakeledger.domain.decisions.unit_of_work import UnitOfWork
from stakeledger.domain.model.accounts import TREASURY, pool_account_id
from stakeledger.domain.model.artifacts import Artifact
from stakeledger.domain.model.positions import Position, position_uuid
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.domain.service.log import iter_events
from stakeledger.domain.vocabulary import Side
from stakeledger.projections.audit import audit
from stakeledger.projections.violations import ViolationCode
from tests.cli.test_cli import run
from tests.conftest import stored_event_count
from tests.integration.test_settlement import net_subsidy_from_pool, realised_pnl_from_events

TOKEN = 10**6
ART = "ART"
POOL = pool_account_id(ART)
DELTA_UNITS = 5


def new_test_ledger(url: str) -> StakeLedger:
    ledger = open_ledger(url, clock=ManualClock(), new_id=SeededIds(7))
    if not ledger.is_initialised():
        ledger.initialise(decimals=6)
    return ledger


def trade(ledger: StakeLedger) -> None:
    for agent in ("alice", "bob"):
        ledger.open_account(agent)
        ledger.mint(agent, 100 * TOKEN)
    ledger.list_artifact(ART, "Artifact", 20 * TOKEN, min_hold_days=0)
    ledger.open_position("alice", ART, "long", 10 * TOKEN)
    ledger.open_position("bob", ART, "short", 4 * TOKEN)


VALIDATE_WAD = 8 * 10**17  # meets validated's default bound (>= 0.7): the pool's own price would not


def settle(ledger: StakeLedger) -> None:
    ledger.transition_artifact(ART, "validated", price_wad=VALIDATE_WAD, command_id="settle")


def post(ledger: StakeLedger, *transfers: tuple[str, str, str]) -> None:
    """Write transfers straight through the command loop, past every market rule."""

    def decide(unit: UnitOfWork) -> dict[str, Any]:
        for debit, credit, reason in transfers:
            unit.post(debit, credit, DELTA_UNITS, reason, artifact=ART)
        return {}

    ledger.execute("forged", decide)


def settlement_position(ledger: StakeLedger) -> int:
    """The log position of the artifact's terminal transition, where the audit pins the violation."""
    return next(
        position
        for position, event in iter_events(ledger)
        if isinstance(event, Artifact.Transitioned) and event.to_state == "validated"
    )


# Three ways to break the identity -----------------------------------------------------------


def stray_deposit_swept_as_tax(ledger: StakeLedger) -> None:
    # Tokens reach the pool outside any trade; the settlement sweeps them to the treasury as tax.
    post(ledger, ("alice", POOL, "trade:open"))
    settle(ledger)


def subsidy_paid_straight_out(ledger: StakeLedger) -> None:
    # After settlement the treasury subsidises the pool again and the pool pays it to an agent
    # with no position behind it: the pool is still empty and all balances still net to zero.
    settle(ledger)
    post(ledger, (TREASURY, POOL, "amm:subsidy"), (POOL, "alice", "settlement:profit"))


def forged_second_settlement_event(ledger: StakeLedger) -> None:
    # A crafted stored event: a second Settled on a position, moving no tokens but adding P&L.
    settle(ledger)
    position_id = ledger.get_artifact(ART).position_ids[0]
    last = ledger.recorder.select_events(position_uuid(position_id))[-1]
    assert last.topic == "stakeledger:Position.Settled"
    state = json.loads(last.state)
    state["pnl_units"] = DELTA_UNITS
    ledger.recorder.insert_events(
        [StoredEvent(position_uuid(position_id), last.originator_version + 1, last.topic, json.dumps(state).encode())]
    )


def no_payment_violation(ledger: StakeLedger) -> list[tuple[int | None, str]]:
    return []


def payment_naming_no_position(ledger: StakeLedger) -> list[tuple[int | None, str]]:
    return [
        (
            None,
            f"a pool paid {DELTA_UNITS} to 'alice' naming no position as a settlement or sale that no "
            "position's events account for",
        )
    ]


def payout_paid_once_but_recorded_twice(ledger: StakeLedger) -> list[tuple[int | None, str]]:
    position_id = ledger.get_artifact(ART).position_ids[0]
    settled = [
        (position, event)
        for position, event in iter_events(ledger)
        if isinstance(event, Position.Settled) and event.originator_id == position_uuid(position_id)
    ]
    payout = settled[0][1].payout_units
    return [
        (
            settled[0][0],
            f"position {position_id!r}: its events pay {2 * payout}, the pool's transfers to its owner pay {payout}",
        )
    ]


# (dirtying, how it moves P&L − (subsidies − tax) away from zero, the payment violations it also causes)
DIRTY_LOGS = [
    ("stray deposit swept as tax", stray_deposit_swept_as_tax, +DELTA_UNITS, no_payment_violation),
    ("subsidy paid straight out", subsidy_paid_straight_out, -DELTA_UNITS, payment_naming_no_position),
    ("forged second settlement", forged_second_settlement_event, +DELTA_UNITS, payout_paid_once_but_recorded_twice),
]
IDS = [case for case, *_ in DIRTY_LOGS]


def dirty_ledger(url: str, dirty: Callable[[StakeLedger], None]) -> StakeLedger:
    ledger = new_test_ledger(url)
    trade(ledger)
    clean = audit(ledger)
    assert clean.clean, clean.violations
    dirty(ledger)
    return ledger


def expected_message(ledger: StakeLedger) -> str:
    return f"artifact {ART!r}: positions' P&L {realised_pnl_from_events(ledger)} != subsidies − tax {net_subsidy_from_pool(ledger)}"


def test_audit_when_settled_cleanly_then_identity_holds_and_report_clean(store_url):
    ledger = new_test_ledger(store_url)
    try:
        trade(ledger)
        settle(ledger)
        assert realised_pnl_from_events(ledger) == net_subsidy_from_pool(ledger) != 0
        report = audit(ledger)
        assert report.clean, report.violations
    finally:
        ledger.close()


@pytest.mark.parametrize(("case", "dirty", "delta", "payments"), DIRTY_LOGS, ids=IDS)
def test_audit_when_artifact_identity_broken_then_it_and_the_payments_behind_it_are_reported(
    store_url, case, dirty, delta, payments
):
    ledger = dirty_ledger(store_url, dirty)
    try:
        assert realised_pnl_from_events(ledger) - net_subsidy_from_pool(ledger) == delta
        # Nothing else is wrong: the pool is empty, every balance nets to zero, every transfer pairs.
        assert ledger.balance_of(POOL) == 0
        report = audit(ledger)
        assert report.total_supply_units == ledger.total_supply()
        assert not report.clean
        found = [(v.check, v.position, v.message) for v in report.violations]
        assert found == [("markets", settlement_position(ledger), expected_message(ledger))] + [
            ("markets", at, message) for at, message in payments(ledger)
        ]
        assert str(report.violations[0]) == f"[markets] @{settlement_position(ledger)} {expected_message(ledger)}"
        assert report.violations[0].code == ViolationCode.ARTIFACT_IDENTITY
        assert report.violations[0].to_dict()["code"] == "ARTIFACT_IDENTITY"
    finally:
        ledger.close()


def test_audit_when_pool_keeps_a_stray_subsidy_then_identity_and_pool_violations_reported(store_url):
    def subsidy_left_in_pool(ledger: StakeLedger) -> None:
        settle(ledger)
        post(ledger, (TREASURY, POOL, "amm:subsidy"))

    ledger = dirty_ledger(store_url, subsidy_left_in_pool)
    try:
        report = audit(ledger)
        at = settlement_position(ledger)
        assert [(v.check, v.position, v.message) for v in report.violations] == [
            ("markets", at, expected_message(ledger)),
            ("markets", at, f"artifact {ART!r} is settled but its pool holds {DELTA_UNITS}"),
        ]
    finally:
        ledger.close()


# The command line ---------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "dirty", "delta", "payments"), DIRTY_LOGS, ids=IDS)
def test_cli_audit_when_artifact_identity_broken_then_exit_one_and_violation_printed(
    durable_store_url, capsys, monkeypatch, case, dirty, delta, payments
):
    ledger = new_test_ledger(durable_store_url)
    try:
        trade(ledger)
    finally:
        ledger.close()
    code, out, err = run(capsys, monkeypatch, "--db", durable_store_url, "--json", "audit")
    assert (code, json.loads(out)["clean"]) == (0, True), err

    ledger = new_test_ledger(durable_store_url)
    try:
        dirty(ledger)
        expected = f"[markets] @{settlement_position(ledger)} {expected_message(ledger)}"
        also = [
            f"[markets] {'@' + str(at) + ' ' if at is not None else ''}{message}" for at, message in payments(ledger)
        ]
        events = stored_event_count(ledger)
    finally:
        ledger.close()

    code, out, err = run(capsys, monkeypatch, "--db", durable_store_url, "audit")
    assert code == 1
    assert err.splitlines()[0] == f"error: AUDIT: {expected}"
    assert "VIOLATIONS" in out

    code, out, err = run(capsys, monkeypatch, "--db", durable_store_url, "--json", "audit")
    assert code == 1, err
    report = json.loads(out)
    assert (report["clean"], report["violation_count"], report["violations"]) == (
        False,
        1 + len(also),
        [expected, *also],
    )
    assert report["events"] == events  # the audit only reads


def test_audit_when_a_position_event_has_no_opening_then_reported_not_raised(store_url):
    ledger = new_test_ledger(store_url)
    try:
        trade(ledger)
        settle(ledger)
        position_id = ledger.get_artifact(ART).position_ids[0]
        settled = ledger.recorder.select_events(position_uuid(position_id))[-1]
        orphan = position_uuid("ART/p999")
        ledger.recorder.insert_events([StoredEvent(orphan, 2, settled.topic, settled.state)])
        at = ledger.recorder.max_notification_id()

        report = audit(ledger)

        assert ("markets", at, f"position {orphan} settles or closes but was never opened") in [
            (v.check, v.position, v.message) for v in report.violations
        ]
    finally:
        ledger.close()


# One partial settlement per stake ----------------------------------------------------------------


def test_audit_when_a_position_is_partially_settled_twice_then_partial_settlement_repeated_is_reported(store_url):
    ledger = new_test_ledger(store_url)
    try:
        trade(ledger)
        flag_wad = 2 * 10**17  # meets flagged's default bound (< 0.3)
        ledger.transition_artifact(ART, "flagged", price_wad=flag_wad)
        ledger.transition_artifact(ART, "listed")
        again = ledger.transition_artifact(ART, "flagged", price_wad=flag_wad)
        assert (again["already_partially_settled"], again["paid_units"]) == (2, "0")
        report = audit(ledger)
        assert report.clean, report.violations
        short_id = ledger.get_artifact(ART).position_ids[1]

        # The second flag's bonus, forged past the decision's once-per-stake guard: the same steps a
        # first flag takes (pay from the pool, record PartiallySettled), so the books stay balanced.
        def forge(unit: UnitOfWork) -> dict[str, Any]:
            artifact = load_artifact(unit, ART)
            position = load_position(unit, short_id)
            redeemed = {Side.LONG: 0, Side.SHORT: 0}
            paid = _settle_partially(unit, artifact, position, artifact.transition_count, redeemed)
            _redeem(unit, artifact, redeemed)
            return {"paid_units": paid}

        assert ledger.execute("forged", forge)["paid_units"] > 0
        (first, second) = [
            (position, event)
            for position, event in iter_events(ledger)
            if isinstance(event, Position.PartiallySettled) and event.originator_id == position_uuid(short_id)
        ]
        assert (first[1].transition, second[1].transition) == (1, 3)
        expected = [
            (
                "markets",
                second[0],
                f"position {short_id!r} of 'bob' was settled partially a second time (transition 3): "
                "a flag pays each stake once",
                ViolationCode.PARTIAL_SETTLEMENT_REPEATED,
            )
        ]

        report = audit(ledger)
        assert [(v.check, v.position, v.message, v.code) for v in report.violations] == expected
        assert report.violations[0].to_dict()["code"] == "PARTIAL_SETTLEMENT_REPEATED"

        # Settled, the market's identity holds (every payment has its event): only this check sees it.
        ledger.transition_artifact(ART, "deprecated", price_wad=5 * 10**16)
        assert realised_pnl_from_events(ledger) == net_subsidy_from_pool(ledger)
        report = audit(ledger)
        assert [(v.check, v.position, v.message, v.code) for v in report.violations] == expected
    finally:
        ledger.close()
