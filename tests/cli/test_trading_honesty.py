"""Issue 15, the CLI saying what happened: a batch with a rejected order says so and exits 3,
messages people read show tokens (base units only in --json), --*-pct options take percents
and refuse a likely fraction, and amounts with spaces around them are refused as the API
refuses them. Runs in-process on SQLite and PostgreSQL stores.
"""

from __future__ import annotations

import json
import time

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.model.portfolio import Portfolio
from stakeledger.domain.service.log import iter_events
from tests.cli.test_cli import run

TOKEN = 10**6


def event_count(url: str) -> int:
    app = open_ledger(url)
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


def events_after(url: str, after: int) -> list:
    app = open_ledger(url)
    try:
        return [event for _, event in iter_events(app, after=after)]
    finally:
        app.close()


@pytest.fixture
def db(durable_store_url) -> str:
    """alice and bob hold 1,000 tokens each; ART, ART2 and ART3 are in group bio; alice holds
    ART/p1 (10 tokens long)."""
    app = open_ledger(durable_store_url)
    try:
        app.initialise(decimals=6)
        for name in ("alice", "bob"):
            app.open_account(name)
            app.mint(name, 1_000 * TOKEN)
        for artifact_id in ("ART", "ART2", "ART3"):
            app.list_artifact(artifact_id, f"Artifact {artifact_id}", 100 * TOKEN, group="bio", min_hold_days=0)
        assert app.open_position("alice", "ART", "long", 10 * TOKEN)["position"] == "ART/p1"
    finally:
        app.close()
    return durable_store_url


def cli(capsys, monkeypatch, url: str, *args: str) -> tuple[int | str, str, str]:
    return run(capsys, monkeypatch, "--db", url, *args)


def refused(url: str, capsys, monkeypatch, *args: str) -> str:
    """Run a command that must be refused; return its one-line error, having checked nothing was written."""
    before = event_count(url)
    code, out, err = cli(capsys, monkeypatch, url, *args)
    assert code not in (0, 2), (code, out, err)  # 2 would be a usage error, not a refusal of the input
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert event_count(url) == before
    return err.strip()


BATCH = "agent,artifact,side,tokens\nbob,ART,long,5\nalice,ART2,long,40\nalice,ART3,long,40\nbob,ART3,long,5\n"


def group_limited(db, capsys, monkeypatch) -> None:
    """alice may hold 10 % per position but only 6 % of equity (about 60 tokens) in group bio."""
    code, _, err = cli(
        capsys,
        monkeypatch,
        db,
        "portfolio",
        "config",
        "alice",
        "--max-position-size-pct",
        "10",
        "--max-correlated-exposure-pct",
        "6",
    )
    assert code == 0, err


# 1. A batch with a rejected order ------------------------------------------------------------


def test_trade_batch_when_one_order_is_rejected_then_counts_named_row_and_exit_3(db, capsys, monkeypatch, tmp_path):
    group_limited(db, capsys, monkeypatch)
    path = tmp_path / "orders.csv"
    path.write_text(BATCH)
    before = event_count(db)

    code, out, err = cli(capsys, monkeypatch, db, "trade", "batch", str(path))

    assert code == 3, (out, err)
    assert "Placed 3 of 4 orders in one transaction; 1 rejected by risk limits." in out
    assert "Placed 4" not in out
    [line] = err.strip().splitlines()
    assert line.startswith("error: GROUP_EXPOSURE: order 3 (alice on ART3) rejected: GROUP_EXPOSURE"), line
    assert "group=bio" in line and " tokens" in line and "_units=" not in line
    rejected = [event for event in events_after(db, before) if isinstance(event, Portfolio.OrderRejected)]
    assert [(event.reason, event.artifact_id) for event in rejected] == [("GROUP_EXPOSURE", "ART3")]
    code, out, _ = cli(capsys, monkeypatch, db, "--json", "portfolio", "summary", "alice")
    assert json.loads(out)["active_positions"] == 2  # ART/p1 and the batch's ART2 order


def test_trade_batch_when_rejected_with_json_then_results_on_stdout_exact_units_and_exit_3(
    db, capsys, monkeypatch, tmp_path
):
    group_limited(db, capsys, monkeypatch)
    path = tmp_path / "orders.csv"
    path.write_text(BATCH)

    code, out, err = cli(capsys, monkeypatch, db, "--json", "trade", "batch", str(path))

    assert code == 3, err
    results = json.loads(out)["results"]
    assert [("rejected" in outcome) for outcome in results] == [False, False, True, False]
    context = results[2]["rejected"]["context"]
    assert context["exposure_units"] == str(90 * TOKEN) and context["limit_units"].isdigit()


def test_trade_batch_when_nothing_rejected_then_exit_0(db, capsys, monkeypatch, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("agent,artifact,side,tokens\nbob,ART,long,5\nbob,ART2,short,5\n")

    code, out, err = cli(capsys, monkeypatch, db, "trade", "batch", str(path))

    assert code == 0, err
    assert "Placed 2 of 2 orders in one transaction." in out and err == ""


# 2. Tokens, not base units, in what people read ----------------------------------------------


def test_trade_open_when_rejected_then_message_in_tokens_and_json_keeps_units(db, capsys, monkeypatch):
    group_limited(db, capsys, monkeypatch)
    cli(capsys, monkeypatch, db, "trade", "open", "alice", "ART2", "--side", "long", "--tokens", "40")

    code, _, err = cli(capsys, monkeypatch, db, "trade", "open", "alice", "ART3", "--side", "long", "--tokens", "40")

    assert code == 3
    assert err.startswith("error: GROUP_EXPOSURE: GROUP_EXPOSURE artifact_id=ART3 group=bio exposure=90 tokens limit=")
    assert "_units=" not in err and "limit_pct=6" in err
    limit = err.split("limit=")[1].split(" tokens")[0]
    assert 59 < float(limit) < 61  # 6 % of about 1,000 tokens, as a decimal in tokens

    code, out, _ = cli(
        capsys, monkeypatch, db, "--json", "trade", "open", "alice", "ART3", "--side", "long", "--tokens", "40"
    )
    assert code == 3
    result = json.loads(out)
    assert result["rejected"]["context"]["exposure_units"] == str(90 * TOKEN)
    assert "exposure=90 tokens" in result["message"]


def test_portfolio_show_when_rejections_then_context_in_tokens(db, capsys, monkeypatch):
    group_limited(db, capsys, monkeypatch)
    cli(capsys, monkeypatch, db, "trade", "open", "alice", "ART2", "--side", "long", "--tokens", "200")

    code, out, err = cli(capsys, monkeypatch, db, "portfolio", "show", "alice")

    assert code == 0, err
    assert "_units=" not in out and "limit_units" not in out
    assert "position=200" in out and "tokens" in out
    # 10 % of equity; equity is cash plus ART1's position at exit value, a unit or so under its
    # cost (no phantom gain from the post-trade price), so the limit is just under 100 tokens.
    limit = float(out.split("limit=")[1].split(" tokens")[0])
    assert 99.99 < limit < 100


def test_transfer_when_short_of_funds_then_message_in_tokens(db, capsys, monkeypatch):
    err = refused(db, capsys, monkeypatch, "transfer", "bob", "alice", "1500.25")

    assert "base units" not in err, err
    assert "holds 1000 tokens, 1500.25 tokens needed" in err, err


def test_trade_open_when_min_shares_not_met_then_shares_in_tokens(db, capsys, monkeypatch):
    err = refused(
        db,
        capsys,
        monkeypatch,
        "trade",
        "open",
        "bob",
        "ART2",
        "--side",
        "long",
        "--tokens",
        "5",
        "--min-shares",
        "500",
    )

    assert err.startswith("error: SLIPPAGE") or "fall short of the minimum 500" in err, err
    assert "fall short of the minimum 500" in err and "500000000" not in err, err


# 3. Percent options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("trade", "stop", "ART/p1", "--trail-pct", "0.02"), "did you mean 2 (percent)?"),
        (("trade", "stop", "ART/p1", "--trail-pct", "0.5"), "did you mean 50 (percent)?"),
        (("trade", "stop", "ART/p1", "--trail-pct", "100"), "--trail-pct takes a percentage above 0 and below 100"),
        (("trade", "stop", "ART/p1", "--trail-pct", "0"), "--trail-pct takes a percentage above 0"),
        (("trade", "stop", "ART/p1", "--trail-pct", "-5"), "--trail-pct takes a percentage above 0"),
        (("trade", "stop", "ART/p1", "--trail-pct", "ten"), "--trail-pct takes a percentage as a decimal number"),
        (("trade", "stop", "ART/p1", "--trail-pct", "10", "--min-ratchet-pct", "0.1"), "did you mean 10 (percent)?"),
        (("portfolio", "config", "alice", "--max-position-size-pct", "0.05"), "did you mean 5 (percent)?"),
        (("portfolio", "config", "alice", "--max-total-exposure-pct", "150"), "at most 100"),
        (("portfolio", "config", "alice", "--emergency-liquidation-loss-pct", "-0.1"), "did you mean -10 (percent)?"),
        (("portfolio", "config", "alice", "--emergency-liquidation-loss-pct", "5"), "at most 0"),
        (("portfolio", "market-config", "alice", "ART", "--trail-pct", "0.02"), "did you mean 2 (percent)?"),
        (("portfolio", "market-config", "alice", "ART", "--position-size-pct", "0.3"), "did you mean 30 (percent)?"),
    ],
)
def test_pct_option_when_fraction_or_out_of_range_then_refused_and_nothing_written(db, capsys, monkeypatch, args, says):
    err = refused(db, capsys, monkeypatch, *args)

    assert err.startswith("error: INVALID_INPUT: ") and says in err, err


def test_trade_stop_when_sub_percent_is_explicit_then_accepted(db, capsys, monkeypatch):
    code, out, err = cli(
        capsys, monkeypatch, db, "--json", "trade", "stop", "ART/p1", "--trail-pct", "0.5", "--allow-sub-percent"
    )

    assert code == 0, err
    assert json.loads(out)["trail_pct"] == "0.5"


def test_trade_stop_when_percent_then_accepted(db, capsys, monkeypatch):
    code, _, err = cli(capsys, monkeypatch, db, "trade", "stop", "ART/p1", "--trail-pct", "2")

    assert code == 0, err


def test_pct_help_says_which_unit_the_flags_take(capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "trade", "stop", "--help")

    assert code == 0
    assert "--allow-sub-percent" in out and "10 means 10 %" in " ".join(out.split())


# 4. Amounts with spaces around them -----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("trade", "open", "alice", "ART2", "--side", "long", "--tokens", " 5"),
        ("trade", "open", "alice", "ART2", "--side", "long", "--tokens", "5 "),
        ("transfer", "alice", "bob", " 5"),
        ("trade", "open", "bob", "ART2", "--side", "long", "--tokens", "5", "--limit-price", " 0.4"),
    ],
)
def test_amount_when_spaces_around_it_then_refused_and_nothing_written(db, capsys, monkeypatch, args):
    err = refused(db, capsys, monkeypatch, *args)

    assert err.startswith("error: INVALID_AMOUNT: ") and "whitespace around it" in err, err


def test_trade_batch_when_amount_cell_has_spaces_then_refused_and_nothing_written(db, capsys, monkeypatch, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("agent,artifact,side,tokens\nbob, ART,long,5\nbob,ART2,long, 5\n")

    err = refused(db, capsys, monkeypatch, "trade", "batch", str(path))

    assert "order 2: " in err and "whitespace around it" in err, err


# 5. Stops that can change, expiry that frees escrow ------------------------------------------------


def test_trade_stop_when_set_twice_then_replaced_with_a_clear_message_and_removable(db, capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch, db, "trade", "stop", "ART/p1", "--trail-pct", "10")
    assert code == 0, err
    assert out.startswith("Stop of 10 % on ART/p1")

    code, out, err = cli(capsys, monkeypatch, db, "trade", "stop", "ART/p1", "--trail-pct", "5")
    assert code == 0, err
    assert out.startswith("Replaced the 10 % stop on ART/p1 with a 5 % one")

    code, out, err = cli(capsys, monkeypatch, db, "trade", "stop", "ART/p1", "--remove")
    assert code == 0, err
    assert out.strip() == "Removed the 5 % trailing stop from ART/p1."

    err = refused(db, capsys, monkeypatch, "trade", "stop", "ART/p1", "--remove")
    assert "has no stop to remove" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--trail-pct", "100"), "--trail-pct takes a percentage above 0 and below 100 (10 means 10 %)"),
        (("--trail-pct", "0"), "--trail-pct takes a percentage above 0 and below 100 (10 means 10 %)"),
        (("--trail-pct", "0.02"), "did you mean 2 (percent)?"),
        ((), "trade stop needs --trail-pct PERCENT (10 means 10 %), or --remove"),
        (("--trail-pct", "5", "--remove"), "not both"),
    ],
)
def test_trade_stop_when_percent_out_of_range_or_flags_clash_then_refused_naming_the_unit(
    db, capsys, monkeypatch, args, expected
):
    err = refused(db, capsys, monkeypatch, "trade", "stop", "ART/p1", *args)
    assert expected in err, err


def test_orders_expire_when_an_order_expired_then_account_show_and_sweep_agree(db, capsys, monkeypatch):
    app = open_ledger(db)
    try:
        order = app.place_limit_order("bob", "ART2", "long", 10 * TOKEN, 3 * 10**17, expires_in_days=1)["order"]
    finally:
        app.close()
    code, out, err = cli(capsys, monkeypatch, db, "--json", "account", "show", "bob")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["balance_units"], shown["available_units"]) == (str(990 * TOKEN), str(990 * TOKEN))
    assert [o["order_id"] for o in shown["orders"]] == [order]

    # The CLI reads the system clock: an order that lives a second and a half, then a wait.
    app = open_ledger(db)
    try:
        old = app.place_limit_order("bob", "ART3", "long", 20 * TOKEN, 3 * 10**17, expires_in_days=1.5 / 86_400)[
            "order"
        ]
    finally:
        app.close()
    time.sleep(1.6)
    code, out, err = cli(capsys, monkeypatch, db, "--json", "account", "show", "bob")
    assert code == 0, err
    shown = json.loads(out)
    assert [o["order_id"] for o in shown["orders"]] == [order]  # the dead order is not shown
    assert shown["available_units"] == str(int(shown["balance_units"]) + 20 * TOKEN)

    code, out, err = cli(capsys, monkeypatch, db, "orders", "expire")
    assert code == 0, err
    assert out.strip() == f"Released 1 expired order(s): {old}."
    code, out, _ = cli(capsys, monkeypatch, db, "orders", "expire")
    assert out.strip() == "No order is past its expiry."
    code, out, err = cli(capsys, monkeypatch, db, "--json", "account", "show", "bob")
    shown = json.loads(out)
    assert shown["balance_units"] == shown["available_units"] == str(990 * TOKEN)


def test_orders_expire_help_when_asked_then_says_what_it_writes(capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "orders", "expire", "--help")
    assert code == 0
    assert "Release the escrow of every order past its expiry" in out
