"""The portfolio and risk commands as a user meets them: reason codes on stderr with exit 3,
Kelly orders, stops, the dashboard as JSON, the PNG chart, and refusals that write nothing.
Runs in-process on SQLite and PostgreSQL stores.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.cli.main import main
from stakeledger.domain.model.portfolio import Portfolio
from stakeledger.domain.service.log import iter_events

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOKEN = 10**6


def run(capsys, monkeypatch, *args: str) -> tuple[int | str, str, str]:
    """Run the console script in-process. An exception that escapes ``main`` (a crash a
    user would see as a traceback) comes back as the code "uncaught" with the traceback."""
    monkeypatch.setattr(sys, "argv", ["stakeledger", *args])
    crash = ""
    try:
        main()
        code: int | str = 0
    except SystemExit as done:
        code = done.code or 0
    except Exception:  # noqa: BLE001 - reported through the result, so the assertion names it
        code, crash = "uncaught", traceback.format_exc()
    out, err = capsys.readouterr()
    return code, out, err + crash


def events_after(url: str, after: int) -> list[Any]:
    app = open_ledger(url)
    try:
        return [event for _, event in iter_events(app, after=after)]
    finally:
        app.close()


def event_count(url: str) -> int:
    app = open_ledger(url)
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


@pytest.fixture
def db(durable_store_url) -> str:
    """alice (1,000 tokens) holds ART/p1 (10 tokens long, bought before any limits); bob has 1,000.
    Built through the application in one connection: the commands under test go through the CLI."""
    app = open_ledger(durable_store_url)
    try:
        app.initialise(decimals=6)
        for name in ("alice", "bob"):
            app.open_account(name)
            app.mint(name, 1_000 * TOKEN)
        for artifact_id in ("ART", "ART2"):
            app.list_artifact(artifact_id, f"Artifact {artifact_id}", 100 * TOKEN, group="bio", min_hold_days=0)
        assert app.open_position("alice", "ART", "long", 10 * TOKEN)["position"] == "ART/p1"
    finally:
        app.close()
    return durable_store_url


def cli(capsys, monkeypatch, url: str, *args: str) -> tuple[int | str, str, str]:
    return run(capsys, monkeypatch, "--db", url, *args)


def test_trade_open_when_over_position_limit_then_reason_on_stderr_exit_3_and_only_the_rejection_written(
    db, capsys, monkeypatch
):
    assert cli(capsys, monkeypatch, db, "portfolio", "config", "alice")[0] == 0
    before = event_count(db)

    code, out, err = cli(capsys, monkeypatch, db, "trade", "open", "alice", "ART2", "--side", "long", "--tokens", "60")

    assert err.startswith("error: MAX_POSITION_PCT:"), err
    assert err.strip().count("\n") == 0, err
    assert "limit_pct=5" in err
    assert event_count(db) == before + 1
    (event,) = events_after(db, before)
    assert isinstance(event, Portfolio.OrderRejected)
    assert (event.reason, event.artifact_id, event.tokens_units) == ("MAX_POSITION_PCT", "ART2", 60 * TOKEN)
    assert code == 3  # the order was not placed


def test_trade_open_when_rejected_with_json_then_rejection_on_stdout_and_exit_3(db, capsys, monkeypatch):
    cli(capsys, monkeypatch, db, "portfolio", "config", "alice")

    code, out, _ = cli(
        capsys, monkeypatch, db, "--json", "trade", "open", "alice", "ART", "--side", "long", "--tokens", "10"
    )

    assert json.loads(out)["rejected"]["reason"] == "ALREADY_IN_MARKET"
    assert code == 3


def test_trade_kelly_when_belief_has_edge_then_order_placed(db, capsys, monkeypatch):
    cli(capsys, monkeypatch, db, "portfolio", "config", "alice")
    before = event_count(db)

    code, out, err = cli(capsys, monkeypatch, db, "--json", "trade", "kelly", "alice", "ART2", "--belief", "0.7")

    assert code == 0, err
    result = json.loads(out)
    assert (result["side"], result["full_kelly"], result["placed"]) == ("long", "2/5", True)
    assert result["trade"]["position"] == "ART2/p1"
    assert result["capped_by"] == "MAX_POSITION_PCT"
    assert event_count(db) > before
    code, out, _ = cli(capsys, monkeypatch, db, "--json", "portfolio", "summary", "alice")
    assert json.loads(out)["active_positions"] == 2


def test_trade_kelly_when_no_edge_then_reason_on_stderr_exit_3_and_nothing_written(db, capsys, monkeypatch):
    cli(capsys, monkeypatch, db, "portfolio", "config", "alice")
    before = event_count(db)

    code, out, err = cli(capsys, monkeypatch, db, "trade", "kelly", "alice", "ART2", "--belief", "0.5")

    assert err.startswith("error: NO_EDGE:"), err
    assert event_count(db) == before
    assert code == 3


def test_trade_stop_when_position_open_then_stop_set_on_the_artifact(db, capsys, monkeypatch):
    code, out, err = cli(
        capsys, monkeypatch, db, "--json", "trade", "stop", "ART/p1", "--trail-pct", "10", "--min-ratchet-pct", "1"
    )

    assert code == 0, err
    result = json.loads(out)
    assert (result["position"], result["trail_pct"], result["min_ratchet_pct"]) == ("ART/p1", "10", "1")
    assert int(result["trigger_wad"]) == int(result["high_water_wad"]) * 9 // 10
    app = open_ledger(db)
    try:
        assert app.get_artifact("ART").stops["ART/p1"]["stop"]["trigger_wad"] == int(result["trigger_wad"])
    finally:
        app.close()


@pytest.mark.parametrize(
    ("command", "kind"),
    [("summary", dict), ("concentration", list), ("pairs", list), ("rebalance", list), ("metrics", dict)],
)
def test_portfolio_read_when_json_then_output_parses(db, capsys, monkeypatch, command, kind):
    cli(capsys, monkeypatch, db, "portfolio", "config", "alice")
    before = event_count(db)

    code, out, err = cli(capsys, monkeypatch, db, "--json", "portfolio", command, "alice")

    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, kind)
    if command == "summary":
        assert (data["agent"], data["active_positions"], data["risk_limited"]) == ("alice", 1, True)
    elif command in ("concentration", "pairs"):
        assert [row["artifact"] for row in data] == ["ART"]
    elif command == "rebalance":
        assert all({"artifact_id", "action", "reason"} <= set(row) for row in data)
    else:
        assert {"sharpe", "sortino", "max_drawdown_pct", "win_rate_pct"} <= set(data)
    assert event_count(db) == before  # reads write nothing


def test_portfolio_chart_when_out_is_png_then_png_written(db, capsys, monkeypatch, tmp_path):
    out_path = tmp_path / "chart.png"

    code, _, err = cli(capsys, monkeypatch, db, "portfolio", "chart", "alice", "--out", str(out_path))

    assert code == 0, err
    assert out_path.read_bytes()[:8] == PNG_SIGNATURE


def test_portfolio_chart_when_out_is_not_png_then_refused_and_no_file(db, capsys, monkeypatch, tmp_path):
    out_path = tmp_path / "chart.jpg"
    code, _, err = cli(capsys, monkeypatch, db, "portfolio", "chart", "alice", "--out", str(out_path))
    assert code != 0
    assert err.startswith("error: INVALID_INPUT:"), err
    assert not out_path.exists()


@pytest.mark.parametrize("where", ["under a file", "a directory"])
def test_portfolio_chart_when_out_cannot_be_written_then_one_line_error(db, capsys, monkeypatch, tmp_path, where):
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-dir.png").mkdir()
    out_path = tmp_path / "a-file" / "chart.png" if where == "under a file" else tmp_path / "a-dir.png"

    code, _, err = cli(capsys, monkeypatch, db, "portfolio", "chart", "alice", "--out", str(out_path))

    assert code not in (0, "uncaught"), err
    assert err.startswith("error: INVALID_INPUT: cannot write the chart"), err
    assert err.strip().count("\n") == 0, err


BAD_INPUTS = [
    ("negative pct", ["portfolio", "config", "alice", "--max-position-size-pct", "-5"], "INVALID_INPUT"),
    ("NaN pct", ["portfolio", "config", "alice", "--max-total-exposure-pct", "NaN"], "INVALID_INPUT"),
    ("positive loss pct", ["portfolio", "config", "alice", "--emergency-liquidation-loss-pct", "10"], "INVALID_INPUT"),
    ("unknown agent", ["portfolio", "config", "nobody"], "UNKNOWN_ACCOUNT"),
    ("market config NaN", ["portfolio", "market-config", "alice", "ART", "--trail-pct", "NaN"], "INVALID_INPUT"),
    ("bad belief", ["trade", "kelly", "alice", "ART2", "--belief", "1.5"], "INVALID_AMOUNT"),
    ("NaN belief", ["trade", "kelly", "alice", "ART2", "--belief", "NaN"], "INVALID_AMOUNT"),
    ("kelly unknown agent", ["trade", "kelly", "nobody", "ART2", "--belief", "0.7"], "UNKNOWN_ACCOUNT"),
    ("NaN fraction", ["trade", "kelly", "alice", "ART2", "--belief", "0.7", "--fraction", "nan"], "INVALID_AMOUNT"),
    ("negative trail", ["trade", "stop", "ART/p1", "--trail-pct", "-5"], "INVALID_INPUT"),
    ("non-numeric trail", ["trade", "stop", "ART/p1", "--trail-pct", "abc"], "INVALID_INPUT"),
    ("stop unknown position", ["trade", "stop", "ART/p9", "--trail-pct", "10"], "UNKNOWN_POSITION"),
    ("liquidate without limits", ["portfolio", "liquidate", "alice"], "STATE_CONFLICT"),
]


@pytest.mark.parametrize(("case", "args", "code"), BAD_INPUTS, ids=[c for c, _, _ in BAD_INPUTS])
def test_bad_input_when_refused_then_one_line_on_stderr_nonzero_exit_and_log_unchanged(
    db, capsys, monkeypatch, case, args, code
):
    before = event_count(db)

    exit_code, _, err = cli(capsys, monkeypatch, db, *args)

    assert exit_code != 0
    assert exit_code != "uncaught", err
    assert err.strip().count("\n") == 0, err
    assert err.startswith(f"error: {code}:"), err
    assert event_count(db) == before


@pytest.mark.parametrize(("option", "value"), [("--belief", "1.5"), ("--fraction", "nan")])
def test_trade_kelly_when_option_is_bad_then_the_error_names_that_option(db, capsys, monkeypatch, option, value):
    args = {"--belief": "0.7", "--fraction": "0.25", option: value}

    code, _, err = cli(
        capsys, monkeypatch, db, "trade", "kelly", "alice", "ART2", *(t for kv in args.items() for t in kv)
    )

    assert code not in (0, "uncaught")
    assert err.startswith(f"error: INVALID_AMOUNT: {option.lstrip('-')} must"), err
