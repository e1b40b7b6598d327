"""Audit metadata on every order (issue 19): why an order was placed, recorded on its event.

Market, limit (through its fill), Kelly and batch orders carry a Rationale to the position
they open, on memory, SQLite and PostgreSQL; the stored state holds only ints and text;
bad metadata is refused with nothing written; an order without any writes what it always
did; the command id covers the metadata; and the EVM export carries it unchanged.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given
from hypothesis import strategies as st

from stakeledger.adapters.evm.bundle import EVENTS_JSONL
from stakeledger.adapters.evm.export import export_ledger
from stakeledger.adapters.evm.importer import import_export
from stakeledger.adapters.evm.verification import verify_export
from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.api.inputs import FORBIDDEN_TEXT_CLASS
from stakeledger.domain.decisions.trading import LimitOrder, MarketOrder
from stakeledger.domain.errors import CommandConflictError, InvalidInputError, UnknownPositionError
from stakeledger.domain.model.artifacts import artifact_uuid
from stakeledger.domain.model.positions import Position, position_uuid
from stakeledger.domain.rules import rationale as rationale_rules
from stakeledger.domain.rules.rationale import Rationale, parse_wad
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.vocabulary import WAD, Side
from stakeledger.projections import queries
from stakeledger.projections.replay_check import replay_check
from stakeledger.projections.runner import Runner
from stakeledger.projections.store import open_store
from tests.conftest import make_store_url, stored_event_count
from tests.integration.test_markets import ART, TOKEN, list_market, open_funded, position_of, price

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ledger-before-layout.db"

WHY = Rationale.from_inputs(
    belief="0.62",
    edge="-0.05",
    reasoning="fg_lo=0.12 mom_lo=-0.03: fear and greed up, momentum fading",
    features=["fg_lo=0.12", "mom_lo=-0.03"],
)
WHY_STORED = {
    "belief_wad": 62 * 10**16,
    "edge_wad": -5 * 10**16,
    "reasoning": "fg_lo=0.12 mom_lo=-0.03: fear and greed up, momentum fading",
    "features": {"fg_lo": 12 * 10**16, "mom_lo": -3 * 10**16},
}


def opened_states(ledger: StakeLedger, topic: str = "stakeledger:Position.Opened") -> list[dict[str, Any]]:
    return [json.loads(n.state) for n in ledger.recorder.select_notifications(start=1, limit=10_000, topics=(topic,))]


def assert_plain(value: Any) -> None:
    """Only ints (never bools or floats), text, None and containers of them."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            assert_plain(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain(item)
    else:
        assert value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def trading(ledger: StakeLedger) -> None:
    open_funded(ledger, "alice", "bob")
    list_market(ledger)


# Every order path ---------------------------------------------------------------------------


def test_every_order_path_when_given_a_rationale_then_the_position_it_opens_carries_it(ledger):
    trading(ledger)
    kelly_why = Rationale.from_inputs(edge="0.2", reasoning="kelly on a strong prior", features={"news_lo": "0.4"})

    market = ledger.open_position("alice", ART, "long", 5 * TOKEN, rationale=WHY)["position"]
    order = ledger.place_limit_order("bob", ART, "short", 3 * TOKEN, price("0.45"), rationale=WHY)["order"]
    assert ledger.get_artifact(ART).orders[order]["rationale"] == WHY_STORED  # resting, with its reason
    crossing = ledger.open_position("alice", ART, "long", 20 * TOKEN)["position"]
    fill = ledger.get_artifact(ART).position_ids[2]  # the crossing trade filled bob's order
    kelly = ledger.kelly_order("alice", ART, price("0.9"), rationale=kelly_why)
    assert kelly["placed"], kelly
    batch = ledger.trade_batch(
        [
            MarketOrder("bob", ART, Side.SHORT, 2 * TOKEN, rationale=WHY),
            MarketOrder("bob", ART, Side.SHORT, 1 * TOKEN),
            LimitOrder("bob", ART, Side.LONG, 1 * TOKEN, price("0.05"), rationale=kelly_why),
        ]
    )
    first, second, resting = batch["results"]

    assert position_of(ledger, market).rationale == WHY_STORED
    assert position_of(ledger, fill).order_id == order and position_of(ledger, fill).rationale == WHY_STORED
    assert position_of(ledger, crossing).rationale is None
    assert position_of(ledger, kelly["trade"]["position"]).rationale == {
        "belief_wad": 9 * 10**17,  # a Kelly order's input belief, recorded by itself
        "edge_wad": 2 * 10**17,
        "reasoning": "kelly on a strong prior",
        "features": {"news_lo": 4 * 10**17},
    }
    assert position_of(ledger, first["position"]).rationale == WHY_STORED
    assert position_of(ledger, second["position"]).rationale is None
    assert ledger.get_artifact(ART).orders[resting["order"]]["rationale"] == kelly_why.to_event()
    assert ledger.position_rationale(market) == WHY
    for state in opened_states(ledger) + opened_states(ledger, "stakeledger:Artifact.OrderPlaced"):
        assert_plain(state)
        assert state["rationale"] is None or set(state["rationale"]) <= set(WHY_STORED)


def test_kelly_order_when_no_rationale_given_then_its_belief_alone_is_recorded(ledger):
    trading(ledger)
    placed = ledger.kelly_order("alice", ART, price("0.8"))
    assert position_of(ledger, placed["trade"]["position"]).rationale == {"belief_wad": 8 * 10**17}


def test_kelly_order_when_the_rationale_names_another_belief_then_refused_and_nothing_written(ledger):
    trading(ledger)
    before = stored_event_count(ledger)
    with pytest.raises(InvalidInputError, match="input belief"):
        ledger.kelly_order("alice", ART, price("0.8"), rationale=Rationale(belief_wad=price("0.7")))
    assert stored_event_count(ledger) == before
    same = ledger.kelly_order("alice", ART, price("0.8"), rationale=Rationale(belief_wad=price("0.8")))
    assert position_of(ledger, same["trade"]["position"]).rationale == {"belief_wad": 8 * 10**17}


def test_position_history_when_read_then_events_in_order_with_times_and_the_rationale(ledger, clock):
    trading(ledger)
    position_id = ledger.open_position("alice", ART, "long", 5 * TOKEN, rationale=WHY)["position"]
    clock.advance(days=1)
    ledger.close_position(position_id, shares_units=TOKEN)
    history = ledger.position_history(position_id)
    assert [row["event"] for row in history] == ["Opened", "PartiallyClosed"]
    assert [row["version"] for row in history] == [1, 2]
    assert history[0]["at"] < history[1]["at"]
    assert history[0]["rationale"] == WHY_STORED and history[0]["cost_units"] == 5 * TOKEN
    assert "rationale" not in history[1]  # a close carries no metadata
    with pytest.raises(UnknownPositionError):
        ledger.position_history(f"{ART}/p99")
    with pytest.raises(InvalidInputError):
        ledger.position_history("no-slash")


# Refusals -------------------------------------------------------------------------------------

BAD_INPUTS = [
    ({"belief": "0"}, "belief"),
    ({"belief": "1"}, "belief"),
    ({"belief": "-0.1"}, "belief"),
    ({"belief": "1.5"}, "belief"),
    ({"belief": "NaN"}, "belief"),
    ({"belief": "inf"}, "belief"),
    ({"belief": "1e-3"}, "belief"),
    ({"belief": "+0.5"}, "belief"),
    ({"belief": " 0.5"}, "belief"),
    ({"belief": "0." + "1" * 19}, "belief"),
    ({"belief": 0.5}, "belief"),
    ({"edge": "1.000000000000000001"}, "edge"),
    ({"edge": "-1.5"}, "edge"),
    ({"reasoning": ""}, "reasoning"),
    ({"reasoning": "x" * 1001}, "reasoning"),
    ({"reasoning": "a\x00b"}, "reasoning"),
    ({"reasoning": "line\nbreak"}, "reasoning"),
    ({"reasoning": "bidi\u202eoverride"}, "reasoning"),
    ({"features": ["FG=0.1"]}, "feature names"),
    ({"features": ["1x=0.1"]}, "feature names"),
    ({"features": ["a-b=0.1"]}, "feature names"),
    ({"features": ["a" * 49 + "=0.1"]}, "feature names"),
    ({"features": [f"f{i}=0.1" for i in range(33)]}, "at most 32"),
    ({"features": ["fg_lo=0.1", "fg_lo=0.2"]}, "twice"),
    ({"features": "fg_lo=0.1;fg_lo=0.2"}, "twice"),
    ({"features": ["fg_lo=100.000000000000000001"]}, "100 log-odds"),
    ({"features": ["fg_lo=-101"]}, "100 log-odds"),
    ({"features": ["fg_lo"]}, "name=value"),
    ({"features": {"fg_lo": 0.12}}, "decimal string"),
]


@pytest.mark.parametrize("inputs, message", BAD_INPUTS, ids=[repr(i)[:40] for i, _ in BAD_INPUTS])
def test_bad_metadata_when_given_then_refused_naming_the_field(inputs, message):
    with pytest.raises(InvalidInputError, match=message):
        Rationale.from_inputs(**inputs)


def test_bad_metadata_when_built_by_hand_and_sent_on_any_path_then_refused_and_nothing_written(ledger):
    trading(ledger)
    before = stored_event_count(ledger)
    bad_values = [
        {"belief_wad": 0},
        {"belief_wad": WAD},
        {"belief_wad": True},
        {"edge_wad": WAD + 1},
        {"reasoning": "x" * 1001},
        {"features": {"FG": 1}},
        {"features": {"fg": 101 * WAD}},
        {"features": {"fg": 0.5}},
    ]
    for values in bad_values:
        with pytest.raises(InvalidInputError):
            Rationale(**values)
    not_a_rationale: Any = {"belief_wad": 62 * 10**16}
    with pytest.raises(InvalidInputError, match="Rationale"):
        ledger.open_position("alice", ART, "long", TOKEN, rationale=not_a_rationale)
    with pytest.raises(InvalidInputError, match="Rationale"):
        ledger.place_limit_order("alice", ART, "long", TOKEN, price("0.3"), rationale=not_a_rationale)
    with pytest.raises(InvalidInputError, match="Rationale"):
        ledger.kelly_order("alice", ART, price("0.8"), rationale=not_a_rationale)
    with pytest.raises(InvalidInputError, match="Rationale"):
        ledger.trade_batch(
            [
                MarketOrder("alice", ART, Side.LONG, TOKEN),
                MarketOrder("alice", ART, Side.LONG, TOKEN, rationale=not_a_rationale),
            ]
        )
    assert stored_event_count(ledger) == before


def test_a_float_smuggled_into_a_stored_rationale_when_saved_then_the_mapper_refuses_it(ledger):
    trading(ledger)
    before = stored_event_count(ledger)
    position = Position.open(
        f"{ART}/p9", "alice", ART, Side.LONG, TOKEN, TOKEN, None, ledger.clock.now(), {"belief_wad": 0.62}
    )
    with pytest.raises(InvalidInputError, match="rationale"):
        ledger.save(position)
    assert stored_event_count(ledger) == before


# What an order without metadata writes ------------------------------------------------------------

# Position.Opened and Artifact.OrderPlaced as the release before issue 19 (commit 53034e8) wrote
# them for the same commands; today's records add only the new key (None) and the class version
# that says it is there.
OPENED_BEFORE = {
    "originator_topic": "stakeledger:Position",
    "position_id": "ART/p1",
    "owner": "alice",
    "artifact_id": "ART",
    "side": "long",
    "quantity_units": 9_761_859,
    "cost_units": 5_000_000,
    "entry_price_wad": 512_197_523_033_266_512,
    "order_id": None,
}
ORDER_BEFORE = {
    "order_id": "ART/o1",
    "agent": "bob",
    "side": "short",
    "tokens_units": 3_000_000,
    "limit_price_wad": 45 * 10**16,
    "expires_at": None,
}


def test_order_without_metadata_when_saved_then_it_writes_what_it_wrote_before(ledger):
    trading(ledger)
    ledger.open_position("alice", ART, "long", 5 * TOKEN)
    ledger.place_limit_order("bob", ART, "short", 3 * TOKEN, price("0.45"))
    (opened,) = opened_states(ledger)
    (placed,) = opened_states(ledger, "stakeledger:Artifact.OrderPlaced")
    opened.pop("timestamp"), placed.pop("timestamp")
    assert opened == {**OPENED_BEFORE, "rationale": None, "class_version": 2}
    assert placed == {**ORDER_BEFORE, "rationale": None, "class_version": 2}
    assert "rationale" not in ledger.get_artifact(ART).orders["ART/o1"]  # rests exactly as before


def test_version_1_records_when_read_then_they_carry_no_rationale(ledger):
    trading(ledger)
    ledger.open_position("alice", ART, "long", 5 * TOKEN, rationale=WHY)
    ledger.place_limit_order("bob", ART, "short", 3 * TOKEN, price("0.3"), rationale=WHY)
    records = list(ledger.recorder.select_notifications(start=1, limit=10_000))
    opened = next(r for r in records if r.topic == "stakeledger:Position.Opened")
    artifact_events = ledger.recorder.select_events(artifact_uuid(ART))
    old_events = []
    for record, originator in ((opened, position_uuid("OLD/p1")),):
        state = {k: v for k, v in json.loads(record.state).items() if k not in ("rationale", "class_version")}
        state["position_id"] = "OLD/p1"
        old_events.append(StoredEvent(originator, 1, record.topic, json.dumps(state).encode()))
    ledger.recorder.insert_events(old_events)
    assert position_of(ledger, "OLD/p1").rationale is None
    assert ledger.position_history("OLD/p1")[0]["rationale"] is None
    placed = next(e for e in artifact_events if e.topic == "stakeledger:Artifact.OrderPlaced")
    state = {k: v for k, v in json.loads(placed.state).items() if k not in ("rationale", "class_version")}
    event = ledger.mapper.to_domain_event(
        StoredEvent(placed.originator_id, 9, placed.topic, json.dumps(state).encode())
    )
    assert event.rationale is None and event.limit_price_wad == price("0.3")


def test_store_written_before_issue_19_when_read_then_its_positions_and_orders_have_no_rationale(tmp_path):
    shutil.copyfile(FIXTURE, tmp_path / "old.db")
    app = open_ledger(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        for topic in ("stakeledger:Position.Opened", "stakeledger:Artifact.OrderPlaced"):
            records = list(app.recorder.select_notifications(start=1, limit=10_000, topics=(topic,)))
            assert records, topic
            for record in records:
                assert "class_version" not in json.loads(record.state)
                assert app.mapper.to_domain_event(record).rationale is None
        position_id = opened_states(app)[0]["position_id"]
        assert app.position_rationale(position_id) is None
        assert position_of(app, position_id).rationale is None
    finally:
        app.close()


# Idempotency ------------------------------------------------------------------------------------


def test_same_command_id_when_the_metadata_differs_then_conflict_and_nothing_written(ledger):
    trading(ledger)
    other = Rationale.from_inputs(belief="0.63")
    first = ledger.open_position("alice", ART, "long", TOKEN, rationale=WHY, command_id="m")
    assert ledger.open_position("alice", ART, "long", TOKEN, rationale=WHY, command_id="m") == first
    ledger.place_limit_order("alice", ART, "long", TOKEN, price("0.2"), rationale=WHY, command_id="l")
    ledger.kelly_order("alice", ART, price("0.9"), rationale=replace(WHY, belief_wad=None), command_id="k")
    ledger.trade_batch([MarketOrder("bob", ART, Side.SHORT, TOKEN, rationale=WHY)], command_id="b")
    ledger.open_position("alice", ART, "long", TOKEN, command_id="bare")
    before = stored_event_count(ledger)
    retries = [
        lambda: ledger.open_position("alice", ART, "long", TOKEN, rationale=other, command_id="m"),
        lambda: ledger.open_position("alice", ART, "long", TOKEN, command_id="m"),
        lambda: ledger.open_position("alice", ART, "long", TOKEN, rationale=WHY, command_id="bare"),
        lambda: ledger.place_limit_order("alice", ART, "long", TOKEN, price("0.2"), rationale=other, command_id="l"),
        lambda: ledger.kelly_order("alice", ART, price("0.9"), command_id="k"),
        lambda: ledger.trade_batch([MarketOrder("bob", ART, Side.SHORT, TOKEN, rationale=other)], command_id="b"),
    ]
    for retry in retries:
        with pytest.raises(CommandConflictError):
            retry()
    assert stored_event_count(ledger) == before


# The EVM export ---------------------------------------------------------------------------------


def test_export_when_positions_carry_metadata_then_payloads_hold_the_ints_and_import_keeps_them(
    durable_store_url, tmp_path, request
):
    ledger = open_ledger(durable_store_url)
    try:
        ledger.initialise(decimals=6)
        trading(ledger)
        market = ledger.open_position("alice", ART, "long", 5 * TOKEN, rationale=WHY)["position"]
        ledger.place_limit_order("bob", ART, "short", 3 * TOKEN, price("0.45"), rationale=WHY)
        ledger.open_position("alice", ART, "long", 20 * TOKEN)
        filled = ledger.get_artifact(ART).position_ids[2]
        out = tmp_path / "export"
        export_ledger(ledger, out)
        verify_export(out)
        records = [json.loads(line) for line in (out / EVENTS_JSONL).read_text().splitlines()]
        with_why = [r["payload"] for r in records if (r["payload"].get("rationale") or None) is not None]
        assert len(with_why) == 3  # the market order, the resting order, the position it filled
        assert all(payload["rationale"] == WHY_STORED for payload in with_why)
        (bare,) = [
            r["payload"]
            for r in records
            if r["topic"] == "stakeledger:Position.Opened" and r["payload"]["position_id"] == f"{ART}/p2"
        ]
        assert bare["rationale"] is None and bare["class_version"] == 2
        backend = "postgres" if durable_store_url.startswith("sqlite") else "sqlite"
        (tmp_path / "target").mkdir()
        target_url = make_store_url(backend, tmp_path / "target", request)
        assert import_export(out, target_url).audit_clean
        imported = open_ledger(target_url)
        try:
            for position_id in (market, filled):
                assert position_of(imported, position_id).rationale == WHY_STORED
                assert imported.position_rationale(position_id) == WHY
        finally:
            imported.close()
    finally:
        ledger.close()


def test_portfolio_view_when_positions_carry_metadata_then_it_shows_it_and_a_replay_agrees(ledger):
    trading(ledger)
    market = ledger.open_position("alice", ART, "long", 5 * TOKEN, rationale=WHY)["position"]
    ledger.place_limit_order("bob", ART, "short", 3 * TOKEN, price("0.45"), rationale=WHY)
    bare = ledger.open_position("alice", ART, "long", 20 * TOKEN)["position"]
    filled = ledger.get_artifact(ART).position_ids[2]
    store = open_store(ledger)
    try:
        Runner(ledger, store, page_size=3).catch_up()
        shown = {
            row["position_id"]: row["rationale"]
            for agent in ("alice", "bob")
            for row in queries.portfolio(store, agent)["positions"]
        }
        exact = {
            **{key: str(value) for key, value in WHY_STORED.items() if key != "features"},
            "features": {name: str(value) for name, value in WHY_STORED["features"].items()},
        }
        assert shown == {market: exact, filled: exact, bare: None}
        assert replay_check(ledger, store) == []  # a fresh replay folds the same rationale
    finally:
        store.close()


# Properties ---------------------------------------------------------------------------------------

decimals_text = st.decimals(min_value=Decimal("-100"), max_value=Decimal("100"), places=18, allow_nan=False).map(
    lambda d: format(d, "f")
)
names = st.from_regex(r"[a-z][a-z0-9_]{0,47}", fullmatch=True)


@given(value=decimals_text)
def test_parse_wad_when_given_a_decimal_then_it_is_exact(value):
    assert parse_wad(value, "x") == int(Decimal(value) * WAD)


@given(
    belief=st.integers(1, WAD - 1) | st.none(),
    edge=st.integers(-WAD, WAD) | st.none(),
    reasoning=st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Zl", "Zp")), min_size=1, max_size=50
    ).filter(str.strip)
    | st.none(),
    features=st.dictionaries(names, st.integers(-100 * WAD, 100 * WAD), max_size=5),
)
def test_rationale_when_stored_and_read_back_then_equal(belief, edge, reasoning, features):
    rationale = Rationale(belief, edge, reasoning, features)
    stored = json.loads(json.dumps(rationale.to_event()))
    assert_plain(stored)
    assert Rationale.from_event(stored) == (None if rationale.is_empty else rationale)
    shown = rationale.as_decimals()
    again = Rationale.from_inputs(
        belief=shown.get("belief"),
        edge=shown.get("edge"),
        reasoning=shown.get("reasoning"),
        features=shown.get("features"),
    )
    assert again == (None if rationale.is_empty else rationale)


def test_forbidden_text_when_compared_with_the_api_then_the_same_characters():
    for code in range(0x3000):
        char = chr(code)
        in_api = __import__("re").search(f"[{FORBIDDEN_TEXT_CLASS}]", char) is not None
        assert (rationale_rules._FORBIDDEN_TEXT.search(char) is not None) == in_api, hex(code)
    assert (rationale_rules._FORBIDDEN_TEXT.search("\ufeff") is not None) is True
