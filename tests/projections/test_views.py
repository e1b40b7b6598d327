"""Each view's rows after the scenario, checked against the write side's own aggregates,
on the in-memory store, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from stakeledger.domain.errors import InvalidInputError, UnknownAccountError, UnknownArtifactError
from stakeledger.domain.model.accounts import pool_account_id
from stakeledger.domain.model.positions import LIVE_STATUSES, Position, position_uuid
from stakeledger.domain.model.reputation import Reputation, reputation_uuid
from stakeledger.domain.service.application import StakeLedger
from stakeledger.projections import queries
from stakeledger.projections.replay_check import replay_check
from stakeledger.projections.runner import Runner
from stakeledger.projections.statements import statement_lines
from stakeledger.projections.store import ViewStore
from stakeledger.projections.views.markets import ARTIFACTS
from tests.projections.scenario import AGENTS, TOKEN, VALIDATE_PRICE_WAD, head

ARTIFACT_IDS = ("MKT", "LIFE", "DEP")


def caught_up(ledger: StakeLedger, store: ViewStore, *, page_size: int = 7) -> None:
    """Small pages, so every page boundary of the scenario is exercised."""
    report = Runner(ledger, store, page_size=page_size).catch_up()
    assert report.positions and set(report.positions.values()) == {head(ledger)}


def positions_of(ledger: StakeLedger, artifact_id: str) -> list[Position]:
    artifact = ledger.get_artifact(artifact_id)
    return [ledger.repository.get(position_uuid(position_id)) for position_id in artifact.position_ids]


def test_catch_up_when_scenario_then_every_balance_equals_the_account_aggregate(ledger, scenario, store):
    caught_up(ledger, store)
    balances = queries.balances(store)
    assert {"ada", "bob", "cy", "dee", "sys:treasury", "pool:MKT", "escrow:orders:MKT"} <= {
        b["account"] for b in balances
    }
    for row in balances:
        assert int(row["balance_units"]) == ledger.balance_of(row["account"]), row["account"]
    assert sum(int(row["balance_units"]) for row in balances) == 0


def test_statement_when_scenario_then_lines_equal_a_scan_of_the_log(ledger, scenario, store):
    caught_up(ledger, store)
    for agent in AGENTS:
        expected = [
            (l.position, l.reason, l.counterparty, l.delta_units, l.balance_units, l.transfer_id, l.refs)
            for l in statement_lines(ledger, agent)
        ]
        lines = queries.statement(store, agent)["lines"]
        assert [
            (
                l["position"],
                l["reason"],
                l["counterparty"],
                int(l["delta_units"]),
                int(l["balance_units"]),
                l["transfer_id"],
                l["refs"],
            )
            for l in lines
        ] == expected
        assert {"trade:open", "mint"} <= {l["reason"] for l in lines}


def test_statement_at_position_when_earlier_positions_then_balance_as_it_stood(ledger, scenario, store):
    caught_up(ledger, store)
    assert int(queries.statement(store, "ada", at=scenario.after_mints)["balance_units"]) == 1_000 * TOKEN
    assert int(queries.statement(store, "ada", at=scenario.after_transfer)["balance_units"]) == 975 * TOKEN
    assert int(queries.statement(store, "bob", at=scenario.after_transfer)["balance_units"]) == 1_025 * TOKEN
    assert queries.statement(store, "ada", at=0)["balance_units"] == "0"
    for at in range(0, head(ledger) + 1, 5):
        scanned = list(statement_lines(ledger, "cy", until=at))
        expected = scanned[-1].balance_units if scanned else 0
        assert queries.balance_at(store, "cy", at) == expected
        assert int(queries.statement(store, "cy", at=at)["balance_units"]) == expected


def test_statement_at_position_when_beyond_the_view_then_refused(ledger, scenario, store):
    caught_up(ledger, store)
    last = head(ledger)
    assert queries.statement(store, "ada", at=last)["as_of_position"] == last
    with pytest.raises(InvalidInputError, match=f"log position {last + 1} is beyond {last}"):
        queries.statement(store, "ada", at=last + 1)


def test_statement_when_limit_then_latest_lines_oldest_first(ledger, scenario, store):
    caught_up(ledger, store)
    full = queries.statement(store, "ada")
    latest = queries.statement(store, "ada", limit=2)
    assert latest["lines"] == full["lines"][-2:]
    assert latest["lines_total"] == len(full["lines"]) > 2
    assert latest["balance_units"] == full["balance_units"] == str(ledger.balance_of("ada"))


def test_markets_when_scenario_then_each_artifact_matches_its_aggregate(ledger, scenario, store):
    caught_up(ledger, store)
    rows = {row["artifact"]: row for row in queries.artifacts(store)}
    assert list(rows) == list(ARTIFACT_IDS)
    for artifact_id in ARTIFACT_IDS:
        artifact, row = ledger.get_artifact(artifact_id), rows[artifact_id]
        assert row["state"] == artifact.state
        assert (int(row["q_long_units"]), int(row["q_short_units"])) == (artifact.q_long, artifact.q_short)
        assert int(row["pool_units"]) == ledger.balance_of(pool_account_id(artifact_id))
        assert row["price_long"] == queries.price(artifact.price_long_wad)
        live = [p for p in positions_of(ledger, artifact_id) if p.is_live]
        assert int(row["capital_committed_units"]) == sum(p.cost_units for p in live)
        assert row["live_positions"] == len(live)
        assert row["resting_orders"] == len(artifact.orders)
    assert rows["MKT"]["live_positions"] == 2 and int(rows["MKT"]["capital_committed_units"]) == 70 * TOKEN
    assert rows["LIFE"]["state"] == "validated" and rows["LIFE"]["settlement_price_wad"] == str(VALIDATE_PRICE_WAD)


def test_artifacts_by_capital_when_one_market_live_then_it_comes_first(ledger, scenario, store):
    caught_up(ledger, store)
    ranked = queries.artifacts_by_capital(store)
    assert [row["artifact"] for row in ranked] == ["MKT", "DEP", "LIFE"]  # 70 tokens, then 0 and 0 by name
    assert [int(row["capital_committed_units"]) for row in ranked] == [70 * TOKEN, 0, 0]


def test_book_when_resting_order_then_orders_and_depth_match_the_write_side(ledger, scenario, store):
    caught_up(ledger, store)
    book = queries.book(store, "MKT")
    artifact = ledger.get_artifact("MKT")
    assert [order["order_id"] for order in book["orders"]] == list(artifact.orders) == [scenario.resting_order]
    assert book["orders"][0]["remaining_units"] == str(artifact.orders[scenario.resting_order]["remaining_units"])
    assert [
        {k: r[k] for k in ("target_long_wad", "side", "shares_units", "cost_units")} for r in book["depth"]
    ] == ledger.market_depth("MKT")
    with pytest.raises(UnknownArtifactError):
        queries.book(store, "NOPE")


def test_portfolio_when_scenario_then_each_position_matches_its_aggregate(ledger, scenario, store):
    caught_up(ledger, store)
    for agent in AGENTS:
        data = queries.portfolio(store, agent)
        assert data["positions"], agent
        for row in data["positions"]:
            position = ledger.repository.get(position_uuid(row["position_id"]))
            assert row["status"] == position.status
            assert (int(row["quantity_units"]), int(row["cost_units"])) == (
                position.quantity_units,
                position.cost_units,
            )
            assert int(row["realized_pnl_units"]) == position.realized_pnl_units
            assert int(row["payout_units"]) == position.payout_units
            assert int(row["proceeds_units"]) == position.proceeds_units
            assert row["live"] == (position.status in LIVE_STATUSES)
        assert data["positions"] == sorted(data["positions"], key=lambda r: not r["live"])
    ada = queries.portfolio(store, "ada")
    assert [p["position_id"] for p in ada["positions"] if p["live"]] == ["MKT/p1"]
    assert queries.portfolio(store, "dee")["orders"][0]["order_id"] == scenario.resting_order
    assert queries.portfolio(store, "bob")["positions"][-1]["status"] == "closed"
    with pytest.raises(UnknownAccountError):
        queries.portfolio(store, "nobody")


def test_settlements_when_filtered_then_newest_first_per_artifact_and_agent(ledger, scenario, store):
    caught_up(ledger, store)
    every = queries.settlement_history(store, limit=100)
    assert [row["position"] for row in every] == sorted((row["position"] for row in every), reverse=True)
    life = queries.settlement_history(store, artifact="LIFE", limit=100)
    assert sorted(row["kind"] for row in life) == ["partial"] * 3 + ["settled"] * 3
    settled = {row["position_id"]: row for row in life if row["kind"] == "settled"}
    for position in positions_of(ledger, "LIFE"):
        row = settled[position.position_id]
        assert row["price_long_wad"] == str(VALIDATE_PRICE_WAD) and row["state"] == "validated"
        assert int(row["payout_units"]) == position.payout_units - _partial_payout(life, position.position_id)
    cy = queries.settlement_history(store, agent="cy", limit=100)
    assert {row["agent"] for row in cy} == {"cy"}
    assert {row["kind"] for row in cy} == {"partial", "settled", "bounty"}
    bounty = [row for row in every if row["kind"] == "bounty"]
    assert {row["agent"]: int(row["payout_units"]) for row in bounty} == {"ada": 10 * TOKEN, "cy": 20 * TOKEN}
    assert len(queries.settlement_history(store, limit=2)) == 2
    assert queries.settlement_history(store, artifact="MKT") == []
    with pytest.raises(InvalidInputError):
        queries.settlement_history(store, limit=0)


def _partial_payout(rows: list[dict], position_id: str) -> int:
    return sum(
        int(row["payout_units"]) for row in rows if row["position_id"] == position_id and row["kind"] == "partial"
    )


def test_reputation_when_settled_then_believability_and_history_match_the_aggregate(ledger, scenario, store):
    caught_up(ledger, store)
    everyone = queries.reputation(store)
    assert [row["agent"] for row in everyone] == sorted(
        (row["agent"] for row in everyone), key=lambda a: -ledger.repository.get(reputation_uuid(a)).believability_wad
    )
    for row in everyone:
        aggregate: Reputation = ledger.repository.get(reputation_uuid(row["agent"]))
        assert int(row["believability_wad"]) == aggregate.believability_wad
        assert (row["predictions"], row["correct"]) == (aggregate.predictions, aggregate.correct)
        detail = queries.reputation(store, row["agent"])
        history = list(reversed(detail["history"]))
        assert history[0]["before_wad"] == str(10**18 // 2)
        assert all(a["after_wad"] == b["before_wad"] for a, b in zip(history, history[1:]))
        assert history[-1]["after_wad"] == str(aggregate.believability_wad)
        settled = {
            (r["position_id"], r["transition"])
            for r in queries.settlement_history(store, agent=row["agent"], limit=100)
        }
        assert {(h["position_id"], h["transition"]) for h in history} <= settled
    assert queries.reputation(store, "dee")["predictions"] == 1


def test_inbox_when_life_of_an_artifact_then_one_message_per_change_newest_first(ledger, scenario, store):
    caught_up(ledger, store)
    ada = queries.inbox(store, "ada", decimals=6)
    assert [m["kind"] for m in ada] == [
        "bounty_payout",
        "settled",
        "settled",
        "reopened",
        "frozen",
        "partially_settled",
    ]
    assert ada[0]["message"] == f"You received 10 from bounty {scenario.bounty} on DEP."
    assert ada[-1]["message"].startswith("Your long position LIFE/p1 on LIFE was partly settled")
    bob = queries.inbox(store, "bob", decimals=6)
    assert [m["kind"] for m in bob] == ["settled", "reopened", "frozen", "partially_settled"]
    assert "validated at p(long) 0.800000; paid 0" in bob[0]["message"]
    assert queries.inbox(store, "ada", decimals=6, limit=1) == ada[:1]
    with pytest.raises(UnknownAccountError):
        queries.inbox(store, "nobody", decimals=6)


def test_catch_up_when_page_size_differs_then_rows_are_identical(ledger, scenario, store):
    caught_up(ledger, store, page_size=3)
    from stakeledger.projections.store import memory_store
    from tests.projections.scenario import view_rows

    other = memory_store()
    Runner(ledger, other, page_size=10_000).catch_up()
    assert view_rows(store) == view_rows(other)
    assert view_rows(store)[ARTIFACTS.name]


def test_portfolio_when_order_rejected_and_portfolio_liquidated_then_both_listed_newest_first(ledger, scenario, store):
    ledger.configure_portfolio("cy")  # cy already holds a position on MKT
    rejected = ledger.open_position("cy", "MKT", "long", 50 * TOKEN)
    assert rejected["rejected"]["reason"] == "ALREADY_IN_MARKET"
    ledger.configure_portfolio("ada")
    liquidation = ledger.liquidate_portfolio("ada")
    caught_up(ledger, store)

    cy = queries.portfolio(store, "cy")["risk_events"]
    assert [(e["kind"], e["reason"], e["artifact"], e["side"], e["tokens_units"]) for e in cy] == [
        ("rejected", "ALREADY_IN_MARKET", "MKT", "long", str(50 * TOKEN))
    ]
    assert cy[0]["context"] == rejected["rejected"]["context"]
    ada = queries.portfolio(store, "ada")["risk_events"]
    assert [(e["kind"], e["reason"]) for e in ada] == [("liquidated", "manual")]
    assert ada[0]["context"]["positions"] == ",".join(liquidation["closed"])
    assert queries.portfolio(store, "bob")["risk_events"] == []
    assert replay_check(ledger, store) == []
