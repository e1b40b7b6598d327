"""``stakeledger portfolio attribution`` as a user meets it: tables in tokens, ``--json`` in exact
base units whose total is ``portfolio summary``'s realised + unrealised, and refusals (one line
on stderr, exit 1) that write nothing. In-process, on SQLite and PostgreSQL stores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.rules.money import format_amount
from stakeledger.domain.rules.rationale import Rationale
from stakeledger.domain.vocabulary import WAD
from tests.cli.test_portfolio_cli import event_count, run

TOKEN = 10**6
CENT = WAD // 100


def build(url: str) -> str:
    """alice holds BIO1 (bio, with features), BIO2 (bio, partly sold) and LONE (no group, no
    rationale, closed); bob trades against her."""
    app = open_ledger(url)
    try:
        app.initialise(decimals=6)
        for name in ("alice", "bob"):
            app.open_account(name)
            app.mint(name, 1_000 * TOKEN)
        for artifact_id, group in (("BIO1", "bio"), ("BIO2", "bio"), ("LONE", None)):
            app.list_artifact(artifact_id, f"Artifact {artifact_id}", 100 * TOKEN, group=group)
        features = Rationale(features={"fg_lo": 12 * CENT, "news_lo": -8 * CENT})
        app.open_position("alice", "BIO1", "long", 30 * TOKEN, rationale=features)
        second = app.open_position("alice", "BIO2", "short", 20 * TOKEN, rationale=Rationale(features={"mom_lo": CENT}))
        lone = app.open_position("alice", "LONE", "long", 10 * TOKEN)
        for artifact_id in ("BIO1", "BIO2", "LONE"):
            app.open_position("bob", artifact_id, "long", 9 * TOKEN)
        app.close_position(second["position"], shares_units=int(second["shares_units"]) // 2)
        app.close_position(lone["position"])
    finally:
        app.close()
    return url


@pytest.fixture
def db(durable_store_url: str) -> str:
    return build(durable_store_url)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    return build(f"sqlite:///{tmp_path / 'ledger.db'}")


def cli(capsys, monkeypatch, url: str, *args: str) -> tuple[int | str, str, str]:
    return run(capsys, monkeypatch, "--db", url, *args)


def test_attribution_when_json_then_every_breakdown_totals_the_summary_and_nothing_is_written(db, capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch, db, "--json", "portfolio", "summary", "alice")
    assert code == 0, err
    summary = json.loads(out)
    before = event_count(db)

    results = {}
    for by in ("market", "group", "feature"):
        code, out, err = cli(capsys, monkeypatch, db, "--json", "portfolio", "attribution", "alice", "--by", by)
        assert code == 0, err
        results[by] = json.loads(out)

    assert event_count(db) == before  # a read writes nothing
    for by, data in results.items():
        total = data["total"]
        assert data["by"] == by
        assert (total["realized_pnl_units"], total["unrealized_pnl_units"]) == (
            summary["realized_pnl_units"],
            summary["unrealized_pnl_units"],
        )
        assert int(total["total_pnl_units"]) == int(summary["total_pnl_units"])
    markets = {row["artifact"]: row for row in results["market"]["rows"]}
    assert [(a, r["group"], r["positions"], r["live_positions"]) for a, r in markets.items()] == [
        ("BIO1", "bio", 1, 1),
        ("BIO2", "bio", 1, 1),
        ("LONE", "(none)", 1, 0),
    ]
    assert int(markets["BIO2"]["realized_pnl_units"]) != 0  # the partial close is realised
    assert [row["group"] for row in results["group"]["rows"]] == ["bio", "(none)"]
    features = results["feature"]
    assert [row["feature"] for row in features["rows"]] == ["fg_lo", "mom_lo", "news_lo"]
    assert features["no_features"]["pnl_units"] == markets["LONE"]["total_pnl_units"]
    assert sum(int(row["pnl_units"]) for row in features["rows"]) + int(features["no_features"]["pnl_units"]) == int(
        summary["total_pnl_units"]
    )


def test_attribution_when_table_then_tokens_in_the_ledgers_decimals_with_a_total_row(sqlite_db, capsys, monkeypatch):
    code, out, _ = cli(capsys, monkeypatch, sqlite_db, "--json", "portfolio", "attribution", "alice")
    total = json.loads(out)["total"]

    code, out, err = cli(capsys, monkeypatch, sqlite_db, "portfolio", "attribution", "alice", "--no-catch-up")

    assert code == 0, err
    assert "Attribution by market — alice" in out
    assert all(name in out for name in ("BIO1", "BIO2", "LONE", "bio", "(none)", "total"))
    for key in ("realized_pnl_units", "unrealized_pnl_units", "total_pnl_units", "cost_units"):
        assert format_amount(int(total[key]), 6) in out, key  # every decimal, not cents
    code, out, err = cli(
        capsys, monkeypatch, sqlite_db, "portfolio", "attribution", "alice", "--by", "feature", "--material", "0.1"
    )
    assert code == 0, err
    assert "(no" in out and "features)" in out  # the row may wrap in a narrow terminal
    assert "fg_lo" in out and "0.1" in out and format_amount(int(total["total_pnl_units"]), 6) in out


def test_attribution_when_thresholds_given_then_the_material_split_follows_them(sqlite_db, capsys, monkeypatch):
    def feature_rows(*options: str) -> dict[str, dict]:
        code, out, err = cli(
            capsys, monkeypatch, sqlite_db, "--json", "portfolio", "attribution", "alice", "--by", "feature", *options
        )
        assert code == 0, err
        return {row["feature"]: row for row in json.loads(out)["rows"]}

    default = feature_rows()
    tuned = feature_rows("--material", "0.1", "--material-for", "news_lo=0.08", "--material-for", "mom_lo=0")

    # fg_lo 0.12, news_lo -0.08, mom_lo 0.01: at 0.05 only mom_lo is not material.
    assert [default[name]["material_positions"] for name in ("fg_lo", "news_lo", "mom_lo")] == [1, 1, 0]
    assert [tuned[name]["material_positions"] for name in ("fg_lo", "news_lo", "mom_lo")] == [1, 1, 1]
    assert (tuned["fg_lo"]["threshold_wad"], tuned["news_lo"]["threshold_wad"]) == (str(10 * CENT), str(8 * CENT))
    assert default["mom_lo"]["not_material_pnl_units"] == tuned["mom_lo"]["material_pnl_units"]


@pytest.mark.parametrize(
    ("args", "code_words"),
    [
        (["--by", "artifact"], "INVALID_INPUT: attribution is by one of market, group, feature"),
        (["--material", "-0.05"], "INVALID_INPUT: --material is a size in log-odds and must not be negative"),
        (["--material", "NaN"], "INVALID_INPUT: --material must be a plain decimal number"),
        (["--material", "0.0000000000000000001"], "INVALID_INPUT: --material has 19 decimals"),
        (["--material", "101"], "INVALID_INPUT: --material must be at most 100 log-odds"),
        (["--material-for", "News=0.1"], "INVALID_INPUT: --material-for: feature names are"),
        (["--material-for", "news_lo"], "INVALID_INPUT: --material-for is written NAME=VALUE"),
        (["--material-for", "news_lo=-1"], "INVALID_INPUT: --material-for news_lo is a size in log-odds"),
        (["--material-for", "a=1", "--material-for", "a=2"], "INVALID_INPUT: --material-for: the threshold for"),
    ],
)
def test_attribution_when_bad_options_then_one_line_error_exit_1_and_nothing_written(
    sqlite_db, capsys, monkeypatch, args, code_words
):
    before = event_count(sqlite_db)

    code, out, err = cli(capsys, monkeypatch, sqlite_db, "portfolio", "attribution", "alice", *args)

    assert code == 1, err
    assert err.startswith(f"error: {code_words}"), err
    assert err.strip().count("\n") == 0 and out == ""
    assert event_count(sqlite_db) == before


def test_attribution_when_unknown_agent_then_unknown_account_and_nothing_written(sqlite_db, capsys, monkeypatch):
    before = event_count(sqlite_db)

    code, out, err = cli(capsys, monkeypatch, sqlite_db, "--json", "portfolio", "attribution", "nobody")

    assert (code, out) == (1, "")
    assert err.startswith("error: UNKNOWN_ACCOUNT: unknown account 'nobody'"), err
    assert event_count(sqlite_db) == before
