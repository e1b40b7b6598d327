"""artifact prices and artifact trades as a user meets them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.service.clock import ManualClock
from tests.cli.test_cli import event_count, run

ART = "ART"
TOKEN = 10**6


@pytest.fixture
def db(durable_store_url) -> str:
    clock = ManualClock()
    ledger = open_ledger(durable_store_url, clock=clock)
    ledger.initialise(decimals=6)
    ledger.open_account("alice")
    ledger.mint("alice", 1_000 * TOKEN)
    ledger.list_artifact(ART, "A claim", 100 * TOKEN, min_hold_days=0)
    for number, tokens_units in enumerate((1_500_000, 2_000_000, 2_250_000)):
        ledger.open_position("alice", ART, "short" if number == 1 else "long", tokens_units)
        clock.advance(seconds=3_600)
    ledger.close()
    return durable_store_url


def test_prices_when_hourly_then_a_table_of_candles_in_tokens_and_json_with_base_units(db, capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch, "--db", db, "artifact", "prices", ART, "--interval", "1h")
    assert code == 0, err
    assert "1h candles" in out and "2026-01-01T00:00:00" in out and "0.500000" in out
    assert "1.5" in out and "2.25" in out and "_units" not in out
    code, out, err = run(capsys, monkeypatch, "--db", db, "artifact", "prices", ART, "--interval", "1h", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert [c["volume"] for c in answer["candles"]] == ["1.5", "2", "2.25"]
    assert [c["volume_units"] for c in answer["candles"]] == ["1500000", "2000000", "2250000"]
    code, out, _ = run(
        capsys, monkeypatch, "--db", db, "--json", "artifact", "prices", ART, "--since", "2026-01-01T01:30:00Z"
    )
    assert [c["volume"] for c in json.loads(out)["candles"]] == ["2", "2.25"]
    code, out, _ = run(capsys, monkeypatch, "--db", db, "--json", "artifact", "prices", ART, "--interval", "1d")
    assert [c["trades"] for c in json.loads(out)["candles"]] == [3]


def test_trades_when_paged_then_newest_first_with_a_hint_for_the_next_page(db, capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch, "--db", db, "artifact", "trades", ART, "--limit", "2")
    assert code == 0, err
    assert out.index("2.25") < out.index("short") and "alice" in out
    assert "--before" in out
    code, out, _ = run(capsys, monkeypatch, "--db", db, "--json", "artifact", "trades", ART, "--limit", "2")
    page = json.loads(out)
    assert [t["tokens"] for t in page["trades"]] == ["2.25", "2"]
    assert page["trades"][0]["tokens_units"] == "2250000"
    code, out, _ = run(
        capsys, monkeypatch, "--db", db, "--json", "artifact", "trades", ART, "--before", str(page["next_before"])
    )
    rest = json.loads(out)
    assert [t["tokens"] for t in rest["trades"]] == ["1.5"] and rest["next_before"] is None


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("artifact", "prices", ART, "--interval", "2h"), "INVALID_INTERVAL"),
        (("artifact", "prices", ART, "--since", "last week"), "INVALID_INPUT"),
        (("artifact", "prices", "NOPE"), "UNKNOWN_ARTIFACT"),
        (("artifact", "trades", "NOPE"), "UNKNOWN_ARTIFACT"),
        (("artifact", "trades", ART, "--limit", "0"), "INVALID_INPUT"),
        (("artifact", "trades", ART, "--before", "0"), "INVALID_INPUT"),
    ],
)
def test_prices_and_trades_when_input_is_bad_then_one_clear_error_and_nothing_written(
    db, capsys, monkeypatch, args, code
):
    before = event_count(db)
    exit_code, _, err = run(capsys, monkeypatch, "--db", db, *args)
    assert exit_code not in (0, 2), err
    assert err.startswith("error: ") and code in err, err
    assert event_count(db) == before
