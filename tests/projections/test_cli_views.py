"""The view-backed commands as a user meets them, on SQLite and PostgreSQL: reads catch up
first (or say how far behind they are), projections status/catch-up/rebuild."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import pytest
import typer
from typer.testing import CliRunner

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.cli import views
from stakeledger.cli.context import CliContext
from stakeledger.domain.errors import InvalidInputError, UnknownAccountError
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.projections.views import view_names
from tests.projections.scenario import TOKEN, head, run_scenario


def make_cli() -> typer.Typer:
    """The root of cli.main, with fresh account/artifact/portfolio groups to register into."""
    app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

    @app.callback()
    def root(
        ctx: typer.Context,
        db: Annotated[Optional[str], typer.Option("--db")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        ctx.obj = CliContext(db or "", as_json=as_json)

    groups = {name: typer.Typer(no_args_is_help=True) for name in ("account", "artifact", "portfolio")}
    for name, group in groups.items():
        app.add_typer(group, name=name)
    views.register(
        app, account_app=groups["account"], artifact_app=groups["artifact"], portfolio_app=groups["portfolio"]
    )
    return app


@pytest.fixture
def ledger_url(durable_store_url):
    clock = ManualClock()
    app = open_ledger(durable_store_url, clock=clock, new_id=SeededIds(9))
    app.initialise(decimals=6)
    run_scenario(app, clock)
    app.close()
    return durable_store_url


def invoke(url: str, *args: str):
    return CliRunner().invoke(make_cli(), ["--db", url, *args])


def json_of(url: str, *args: str):
    result = invoke(url, "--json", *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_statement_when_json_then_running_balance_and_balance_at_a_position(ledger_url):
    statement = json_of(ledger_url, "account", "statement", "ada")
    assert [line["reason"] for line in statement["lines"][:2]] == ["mint", "transfer"]
    assert [line["balance_units"] for line in statement["lines"][:2]] == [str(1_000 * TOKEN), str(975 * TOKEN)]
    mint_position = statement["lines"][0]["position"]
    earlier = json_of(ledger_url, "account", "statement", "ada", "--at", str(mint_position))
    assert earlier["balance_units"] == str(1_000 * TOKEN) and len(earlier["lines"]) == 1


def test_read_when_no_catch_up_and_log_moved_on_then_answers_stale_and_says_how_far_behind(ledger_url):
    assert json_of(ledger_url, "projections", "catch-up")["positions"]["statements"] > 0
    app = open_ledger(ledger_url)
    app.mint("ada", 5 * TOKEN)
    behind = head(app)
    app.close()
    stale = invoke(ledger_url, "--json", "account", "statement", "ada", "--no-catch-up")
    assert stale.exit_code == 0
    assert "2 events behind the log" in stale.stderr and f"of {behind}" in stale.stderr
    fresh = json_of(ledger_url, "account", "statement", "ada")
    assert int(fresh["balance_units"]) == int(json.loads(stale.stdout)["balance_units"]) + 5 * TOKEN
    quiet = invoke(ledger_url, "--json", "account", "statement", "ada", "--no-catch-up")
    assert quiet.stderr == ""


def test_projections_status_when_caught_up_then_every_view_at_the_head_with_rows(ledger_url):
    before = json_of(ledger_url, "projections", "status")
    assert [row["view"] for row in before] == list(view_names())
    assert all(row["lag"] == row["head"] > 0 for row in before)
    json_of(ledger_url, "projections", "catch-up", "--page-size", "13")
    after = json_of(ledger_url, "projections", "status")
    assert all(row["lag"] == 0 and row["position"] == row["head"] and row["rows"] > 0 for row in after)


def test_rebuild_when_no_name_or_unknown_name_then_refused_and_nothing_changes(ledger_url):
    json_of(ledger_url, "projections", "catch-up")
    before = json_of(ledger_url, "projections", "status")
    assert isinstance(invoke(ledger_url, "projections", "rebuild").exception, InvalidInputError)
    assert isinstance(invoke(ledger_url, "projections", "rebuild", "inbox", "--all").exception, InvalidInputError)
    assert isinstance(invoke(ledger_url, "projections", "rebuild", "nope").exception, InvalidInputError)
    assert json_of(ledger_url, "projections", "status") == before
    report = json_of(ledger_url, "projections", "rebuild", "settlements")
    assert report["views"] == ["settlements"] and report["from_position"] == 0 and report["events"] > 0
    assert json_of(ledger_url, "projections", "status") == before
    assert set(json_of(ledger_url, "projections", "rebuild", "--all")["positions"]) == set(view_names())


def test_reads_when_scenario_then_each_command_answers_from_the_views(ledger_url):
    history = json_of(ledger_url, "settlements", "--artifact", "LIFE", "--limit", "3")
    assert len(history) == 3 and {row["artifact"] for row in history} == {"LIFE"}
    assert [row["position"] for row in history] == sorted((row["position"] for row in history), reverse=True)
    assert {row["agent"] for row in json_of(ledger_url, "settlements", "--agent", "dee")} == {"dee"}
    reputation = json_of(ledger_url, "reputation", "cy")
    assert reputation["predictions"] == 2 and all(
        h["settlement"].startswith(("LIFE", "DEP")) for h in reputation["history"]
    )
    assert {row["agent"] for row in json_of(ledger_url, "reputation")} == {"ada", "bob", "cy", "dee"}
    portfolio = json_of(ledger_url, "portfolio", "show", "ada")
    assert [p["position_id"] for p in portfolio["positions"] if p["live"]] == ["MKT/p1"]
    inbox = json_of(ledger_url, "account", "inbox", "bob")
    assert inbox[0]["kind"] == "settled" and "LIFE" in inbox[0]["message"]
    book = json_of(ledger_url, "artifact", "book", "MKT")
    assert len(book["orders"]) == 1 and len(book["depth"]) == 9
    ranked = json_of(ledger_url, "artifact", "list", "--by-capital")
    assert ranked[0]["artifact"] == "MKT" and ranked[0]["capital_committed_units"] == str(70 * TOKEN)
    assert isinstance(invoke(ledger_url, "account", "inbox", "nobody").exception, UnknownAccountError)


def test_reads_when_tables_wanted_then_people_see_amounts_in_tokens(ledger_url):
    result = invoke(ledger_url, "account", "statement", "ada", "--at", "20")
    assert result.exit_code == 0
    assert "Statement ada at position 20" in result.stdout and "Balance: 975" in result.stdout
    result = invoke(ledger_url, "artifact", "list", "--by-capital")
    assert result.exit_code == 0 and "by capital committed" in result.stdout and "MKT" in result.stdout


def test_account_show_when_agent_holds_positions_and_orders_then_lists_them(ledger_url):
    ada = json_of(ledger_url, "account", "show", "ada")
    assert [p["position_id"] for p in ada["positions"]] == ["MKT/p1"] and ada["orders"] == []
    dee = json_of(ledger_url, "account", "show", "dee")
    assert [(o["artifact"], o["side"], o["remaining_units"]) for o in dee["orders"]] == [
        ("MKT", "short", str(15 * TOKEN))
    ]
    assert all(p["live"] for p in dee["positions"])
    shown = invoke(ledger_url, "account", "show", "dee")
    assert (
        shown.exit_code == 0 and "Resting limit orders" in shown.stdout and dee["orders"][0]["order_id"] in shown.stdout
    )
    pool = json_of(ledger_url, "account", "show", "pool:MKT")
    assert pool["kind"] == "pool" and "positions" not in pool  # a pool holds no positions of its own
    assert isinstance(invoke(ledger_url, "account", "show", "nobody").exception, UnknownAccountError)


def test_account_show_when_views_lag_behind_a_new_account_then_balance_shown_without_holdings(ledger_url):
    json_of(ledger_url, "account", "show", "ada")  # the views are caught up here
    app = open_ledger(ledger_url)
    app.open_account("zed")
    app.mint("zed", 5 * TOKEN)
    app.close()

    zed = json_of(ledger_url, "account", "show", "zed", "--no-catch-up")

    assert (zed["balance_units"], zed["positions"], zed["orders"]) == (str(5 * TOKEN), [], [])
