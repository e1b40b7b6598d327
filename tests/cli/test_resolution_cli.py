"""Resolution rules from the command line and over HTTP: set at listing, shown by `artifact show`,
enforced on every transition (refused with THRESHOLD_NOT_MET, nothing written), and a settled
market shows the price it settled at, never a stale pool price."""

from __future__ import annotations

import json
import re

import pytest

from tests.api.conftest import Api, make_api
from tests.cli.test_cli import run
from tests.cli.test_market_cli import refused

ART = "ART-R"


@pytest.fixture
def db(durable_store_url, capsys, monkeypatch, wall) -> str:
    steps = [
        ("init", "--decimals", "6"),
        ("account", "open", "alice"),
        ("mint", "alice", "1000"),
        ("artifact", "add", ART, "--title", "A claim", "--liquidity", "100", "--min-hold-days", "0"),
        ("artifact", "add", "ART-LOOSE", "--title", "Loose rules", "--liquidity", "100", "--min-hold-days", "0",
         "--validated-at", "0.55", "--flagged-below", "0.4", "--deprecated-at", "0.2", "--window-days", "2"),
        ("trade", "open", "alice", ART, "--side", "long", "--tokens", "30"),
        ("trade", "open", "alice", "ART-LOOSE", "--side", "long", "--tokens", "30"),
    ]  # fmt: skip
    for step in steps:
        wall.advance(seconds=1)
        code, _, err = run(capsys, monkeypatch, "--db", durable_store_url, *step)
        assert code == 0, (step, err)
    wall.advance(seconds=1)
    return durable_store_url


def show(db: str, capsys, monkeypatch, artifact_id: str) -> dict:
    code, out, err = run(capsys, monkeypatch, "--db", db, "--json", "artifact", "show", artifact_id)
    assert code == 0, err
    return json.loads(out)


def test_artifact_add_when_rules_given_then_show_prints_them_and_defaults_are_seed_000s(db, capsys, monkeypatch):
    default, loose = show(db, capsys, monkeypatch, ART), show(db, capsys, monkeypatch, "ART-LOOSE")
    assert default["resolution"] == {
        "validated_min_wad": str(7 * 10**17),
        "deprecated_max_wad": str(10**17),
        "flagged_below_wad": str(3 * 10**17),
        "window_days": 7,
    }
    assert loose["resolution"]["validated_min_wad"] == str(55 * 10**16) and loose["resolution"]["window_days"] == 2
    # The listing's 0.5 stood for 2 s, the price after the trade for 1 s: the average lies between.
    assert default["settlement_price"] is None
    assert 5 * 10**17 < int(default["window_average_wad"]) < int(default["price_long_wad"])
    code, out, _ = run(capsys, monkeypatch, "--db", db, "artifact", "show", "ART-LOOSE")
    assert code == 0 and "validated >= 0.550000, deprecated <= 0.200000, flagged < 0.400000; 2-day average" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("validated",), "needs a settlement price >= 0.7, and the 7-day average of p(long) is 0.5"),
        (("validated", "--price", "0.69"), "needs a settlement price >= 0.7, and the given price is 0.69"),
        (("deprecated", "--price", "0.11"), "needs a settlement price <= 0.1"),
        (("flagged",), "needs a settlement price < 0.3"),
    ],
)
def test_transition_when_price_misses_the_threshold_then_refused_and_nothing_written(
    db, capsys, monkeypatch, args, expected
):
    error = refused(db, capsys, monkeypatch, "artifact", "transition", ART, *args)
    assert error.startswith("error: THRESHOLD_NOT_MET: ") and expected in error, error


def test_transition_when_loose_rules_met_by_the_average_then_settles_and_show_has_the_settled_price(
    db, capsys, monkeypatch, wall
):
    wall.advance(days=1)  # the price after the trade has now stood long enough to lift the average past 0.55
    before = show(db, capsys, monkeypatch, "ART-LOOSE")
    assert 55 * 10**16 <= int(before["window_average_wad"]) < int(before["price_long_wad"])
    code, _, err = run(capsys, monkeypatch, "--db", db, "artifact", "transition", "ART-LOOSE", "validated")
    assert code == 0, err
    after = show(db, capsys, monkeypatch, "ART-LOOSE")
    assert after["state"] == "validated"
    # Settled at the average of the moment (the clock has not moved since `before`), not the pool's price.
    assert after["settlement_price_wad"] == before["window_average_wad"]
    assert after["window_average"] is None
    code, out, _ = run(capsys, monkeypatch, "--db", db, "artifact", "show", "ART-LOOSE")
    assert code == 0 and re.search(rf"│ settlement_price\s+│ {after['settlement_price']}\s", out), out
    assert "price_long " not in out  # the pool's stale quote is not shown for a settled market
    code, out, _ = run(capsys, monkeypatch, "--db", db, "--json", "artifact", "list")
    listed = {row["artifact"]: row for row in json.loads(out)}
    assert listed["ART-LOOSE"]["settlement_price"] == after["settlement_price"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--validated-at", "0.2"), "thresholds must be ordered"),
        (("--flagged-below", "1.5"), "--flagged-below must be strictly between 0 and 1"),
        (("--window-days", "0"), "averaging window"),
    ],
)
def test_artifact_add_when_rules_are_bad_then_refused_and_nothing_written(db, capsys, monkeypatch, args, expected):
    error = refused(db, capsys, monkeypatch, "artifact", "add", "ART-BAD", "--title", "x", "--liquidity", "5", *args)
    assert expected in error, error


@pytest.fixture
def api(clock) -> Api:
    yield from make_api("memory://", clock)


def test_api_when_listed_with_rules_then_enforced_and_refusal_writes_nothing(api: Api):
    body = {"artifact": "ART-H", "title": "Over HTTP", "liquidity": "100", "min_hold_days": 0, "validated_at": "0.8"}
    created = api.post("/api/market/artifacts", body, api.admin)
    assert created.status_code == 201, created.text
    assert created.json()["resolution"]["validated_min_wad"] == str(8 * 10**17)
    head = api.head()
    answer = api.post("/api/artifacts/ART-H/lifecycle-transition", {"state": "validated", "price": "0.75"}, api.admin)
    assert answer.status_code == 409 and answer.json()["error"] == "THRESHOLD_NOT_MET", answer.text
    assert api.head() == head
    answer = api.post("/api/artifacts/ART-H/lifecycle-transition", {"state": "validated", "price": "0.85"}, api.admin)
    assert answer.status_code == 200, answer.text
    shown = api.get("/api/market/artifacts/ART-H", api.admin).json()
    assert shown["settlement_price_wad"] == str(85 * 10**16) and shown["window_average_wad"] is None


def test_api_when_rules_are_unordered_then_422_and_nothing_written(api: Api):
    head = api.head()
    body = {"artifact": "ART-U", "title": "Bad", "liquidity": "100", "deprecated_at": "0.5"}
    answer = api.post("/api/market/artifacts", body, api.admin)
    assert answer.status_code in (400, 422) and "thresholds must be ordered" in answer.text, answer.text
    assert api.head() == head
