"""``stakeledger backtest`` as a user meets it: the statistics and decisions tables, --json,
the PNG, and bad inputs refused with the CLI's usual one-line error and nothing written
(neither the store nor the PNG). Runs in-process on a SQLite store and a PostgreSQL one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from tests.cli.test_portfolio_cli import PNG_SIGNATURE, event_count, run
from tests.integration.test_backtest import MOMENTUM, build_history

TOKEN = 10**6


def recorded_store(url: str) -> str:
    clock = ManualClock()
    app = open_ledger(url, clock=clock, new_id=SeededIds(7))
    app.initialise(decimals=6)
    build_history(app, clock, trades=40)
    app.close()
    return url


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One recorded history for the module: the commands under test only read it."""
    return recorded_store(f"sqlite:///{tmp_path_factory.mktemp('backtest') / 'ledger.db'}")


def backtest_json(capsys, monkeypatch, store: str, png: Path, *options: str) -> dict:
    """`backtest MOMENTUM *options --png PNG --json` on ``store``: the answer, after a clean exit."""
    code, out, err = run(
        capsys, monkeypatch, "--db", store, "backtest", str(MOMENTUM), *options, "--png", str(png), "--json"
    )
    assert code == 0, err
    return json.loads(out)


def test_backtest_when_run_then_it_prints_the_statistics_and_decisions_and_writes_the_png(
    sqlite_store: str, tmp_path: Path, capsys, monkeypatch
):
    png = tmp_path / "equity.png"
    events = event_count(sqlite_store)
    code, out, err = run(
        capsys, monkeypatch, "--db", sqlite_store, "backtest", str(MOMENTUM), "--agent", "alice", "--png", str(png)
    )
    assert code == 0, err
    for words in ("Backtest of alice", "Sharpe", "Sortino", "max drawdown", "win rate", "exposure", "Decisions ("):
        assert words in out
    assert "market" in out and "ART-" in out  # a decision row
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert f"Wrote {png}." in out
    assert event_count(sqlite_store) == events


def test_backtest_when_asked_for_json_then_it_is_the_result_and_the_same_twice(
    sqlite_store: str, tmp_path: Path, capsys, monkeypatch
):
    answers = []
    for name in ("one.png", "two.png"):
        options = ("--agent", "alice", "--from", "20", "--markets", "ART-A", "--interval", "1m")
        answer = backtest_json(capsys, monkeypatch, sqlite_store, tmp_path / name, *options)
        assert answer.pop("png") == str(tmp_path / name)
        answers.append(answer)
    assert answers[0] == answers[1]
    answer = answers[0]
    assert (answer["from"], answer["interval"], answer["markets"]) == (20, "1m", ["ART-A"])
    assert answer["to"] == event_count(sqlite_store)
    assert {d["market"] for d in answer["decisions"]} <= {"ART-A"}
    assert answer["statistics"]["periods"] == len(answer["equity"]) - 1
    assert answer["replayed"]["skipped:other_market"] > 0


def test_backtest_without_an_agent_when_run_then_a_fresh_agent_trades_the_capital(
    sqlite_store: str, tmp_path: Path, capsys, monkeypatch
):
    answer = backtest_json(
        capsys, monkeypatch, sqlite_store, tmp_path / "fresh.png", "--from", "20", "--capital", "500"
    )
    assert answer["agent"] == "backtest-agent"
    assert answer["statistics"]["start_equity_units"] == str(500 * TOKEN)


def test_backtest_without_from_when_run_then_it_starts_just_after_init_and_replays_the_rest(
    sqlite_store: str, tmp_path: Path, capsys, monkeypatch
):
    answer = backtest_json(capsys, monkeypatch, sqlite_store, tmp_path / "all.png")
    assert answer["from"] == 2  # init wrote the settings and opened the treasury
    assert answer["to"] == event_count(sqlite_store)
    assert answer["decisions"]  # the whole recorded history reached the strategy


@pytest.mark.parametrize(
    ("arguments", "code_word"),
    [
        (["missing.py"], "INVALID_BACKTEST: no strategy file"),
        (["{empty}"], "INVALID_BACKTEST: {empty} defines no function strategy"),
        (["{momentum}", "--from", "30", "--to", "10"], "INVALID_BACKTEST: --from 30 is after --to 10"),
        (["{momentum}", "--to", "99999"], "INVALID_BACKTEST: --to 99999 is beyond the log"),
        (["{momentum}", "--markets", "NOPE"], "UNKNOWN_ARTIFACT: unknown market 'NOPE'"),
        (["{momentum}", "--agent", "nobody"], "UNKNOWN_ACCOUNT: unknown agent 'nobody'"),
        (["{momentum}", "--interval", "2h"], "INVALID_BACKTEST: interval must be one of"),
        (["{momentum}", "--png", "{tmp}/equity.svg"], "INVALID_INPUT: the equity curve is written as PNG"),
        (["{momentum}", "--png", "{tmp}/no/such/dir/equity.png"], "INVALID_INPUT: directory does not exist"),
        (["{momentum}", "--capital", "-5"], "INVALID_AMOUNT"),
    ],
)
def test_backtest_when_an_input_is_bad_then_it_is_refused_and_nothing_is_written(
    sqlite_store: str, tmp_path: Path, capsys, monkeypatch, arguments: list[str], code_word: str
):
    empty = tmp_path / "empty.py"
    empty.write_text("VALUE = 1\n")
    fill = {"empty": str(empty), "momentum": str(MOMENTUM), "tmp": str(tmp_path)}
    arguments = [argument.format(**fill) for argument in arguments]
    if "--png" not in arguments:
        arguments += ["--png", str(tmp_path / "equity.png")]
    events = event_count(sqlite_store)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, monkeypatch, "--db", sqlite_store, "backtest", *arguments)
    assert code == 1, (out, err)
    assert f"error: {code_word.format(**fill)}" in err
    assert event_count(sqlite_store) == events
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty.py"]  # no PNG, no store


def test_backtest_when_the_store_is_postgresql_then_it_reads_it_and_writes_nothing(
    postgres_server: str, tmp_path: Path, capsys, monkeypatch
):
    from tests.conftest import fresh_postgres_url

    url = recorded_store(fresh_postgres_url(postgres_server))
    events = event_count(url)
    png = tmp_path / "pg.png"
    assert backtest_json(capsys, monkeypatch, url, png, "--agent", "alice")["to"] == events
    assert png.exists() and event_count(url) == events
