"""Rationale from the command line (issue 19): `trade open` and `trade kelly` take --belief,
--edge, --reasoning and --feature; batch files take belief, edge, reasoning and features
columns; `trade show` prints a position's history with its rationale. Bad metadata is one
line on stderr and writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from tests.cli.test_cli import event_count, run
from tests.cli.test_market_cli import refused

ART = "ART"
WHY_OPTIONS = (
    "--belief",
    "0.62",
    "--edge",
    "-0.05",
    "--reasoning",
    "fear and greed up, momentum fading",
    "--feature",
    "fg_lo=0.12",
    "--feature",
    "mom_lo=-0.03",
)
WHY_STORED = {
    "belief_wad": 62 * 10**16,
    "edge_wad": -5 * 10**16,
    "reasoning": "fear and greed up, momentum fading",
    "features": {"fg_lo": 12 * 10**16, "mom_lo": -3 * 10**16},
}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """Two funded agents and a market, written once; each test works on a copy."""
    path = tmp_path_factory.mktemp("rationale") / "template.db"
    app = open_ledger(f"sqlite:///{path}")
    try:
        app.initialise(decimals=6)
        for name in ("alice", "bob"):
            app.open_account(name)
            app.mint(name, 1_000 * 10**6)
        app.list_artifact(ART, "A claim", 100 * 10**6)
    finally:
        app.close()
    return path


@pytest.fixture
def db(template: Path, tmp_path: Path) -> str:
    shutil.copyfile(template, tmp_path / "ledger.db")
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def cli(db: str, capsys, monkeypatch, *args: str) -> str:
    code, out, err = run(capsys, monkeypatch, "--db", db, *args)
    assert code == 0, err
    return out


def stored_rationale(db: str, position_id: str):
    app = open_ledger(db)
    try:
        return app.position_history(position_id)[0]["rationale"]
    finally:
        app.close()


def test_trade_open_when_given_a_rationale_then_trade_show_prints_it_and_json_gives_the_ints(db, capsys, monkeypatch):
    cli(db, capsys, monkeypatch, "trade", "open", "alice", ART, "--side", "long", "--tokens", "5", *WHY_OPTIONS)
    assert stored_rationale(db, f"{ART}/p1") == WHY_STORED

    shown = cli(db, capsys, monkeypatch, "trade", "show", f"{ART}/p1")
    for text in ("0.62", "-0.05", "fear and greed up", "fg_lo", "0.12 log-odds", "-0.03 log-odds", "Opened"):
        assert text in shown, text
    view = json.loads(cli(db, capsys, monkeypatch, "--json", "trade", "show", f"{ART}/p1"))
    assert view["rationale"] == WHY_STORED  # exact ints, not strings or floats
    assert view["rationale_decimal"] == {
        "belief": "0.62",
        "edge": "-0.05",
        "reasoning": "fear and greed up, momentum fading",
        "features": {"fg_lo": "0.12", "mom_lo": "-0.03"},
    }
    assert [row["event"] for row in view["events"]] == ["Opened"]
    assert view["events"][0]["cost_units"] == 5_000_000 and view["events"][0]["at"]


def test_trade_show_when_closed_in_part_then_every_event_in_order(db, capsys, monkeypatch):
    cli(db, capsys, monkeypatch, "trade", "open", "alice", ART, "--side", "long", "--tokens", "5")
    cli(db, capsys, monkeypatch, "trade", "close", f"{ART}/p1", "--shares", "1")
    view = json.loads(cli(db, capsys, monkeypatch, "--json", "trade", "show", f"{ART}/p1"))
    assert [(row["event"], row["version"]) for row in view["events"]] == [("Opened", 1), ("PartiallyClosed", 2)]
    assert view["rationale"] is None and view["rationale_decimal"] is None
    assert "none recorded" in cli(db, capsys, monkeypatch, "trade", "show", f"{ART}/p1")
    assert refused(db, capsys, monkeypatch, "trade", "show", f"{ART}/p9").startswith("error: UNKNOWN_POSITION")


def test_limit_order_when_given_a_rationale_then_the_position_its_fill_opens_carries_it(db, capsys, monkeypatch):
    cli(
        db,
        capsys,
        monkeypatch,
        "trade",
        "open",
        "bob",
        ART,
        "--side",
        "short",
        "--tokens",
        "3",
        "--limit-price",
        "0.45",
        *WHY_OPTIONS,
    )
    cli(db, capsys, monkeypatch, "trade", "open", "alice", ART, "--side", "long", "--tokens", "25")
    view = json.loads(cli(db, capsys, monkeypatch, "--json", "trade", "show", f"{ART}/p2"))
    assert (view["owner"], view["order"], view["rationale"]) == ("bob", f"{ART}/o1", WHY_STORED)


def test_trade_kelly_when_given_edge_and_features_then_its_belief_is_recorded_with_them(db, capsys, monkeypatch):
    out = cli(
        db, capsys, monkeypatch, "--json", "trade", "kelly", "alice", ART, "--belief", "0.8",
        "--edge", "0.3", "--reasoning", "strong prior", "--feature", "news_lo=0.4",
    )  # fmt: skip
    position_id = json.loads(out)["trade"]["position"]
    assert stored_rationale(db, position_id) == {
        "belief_wad": 8 * 10**17,
        "edge_wad": 3 * 10**17,
        "reasoning": "strong prior",
        "features": {"news_lo": 4 * 10**17},
    }


BATCH_CSV = (
    "agent,artifact,side,tokens,limit_price,belief,edge,reasoning,features\n"
    "alice,ART,long,5,,0.62,-0.05,fear and greed up,fg_lo=0.12;mom_lo=-0.03\n"
    "alice,ART,long,1,,,,,\n"
    "bob,ART,short,1,0.2,,0.1,,\n"
)
BATCH_JSON = [
    {"agent": "alice", "artifact": ART, "side": "long", "tokens": "5", "belief": "0.62", "edge": -0.05,
     "reasoning": "fear and greed up", "features": {"fg_lo": "0.12", "mom_lo": -0.03}},
    {"agent": "alice", "artifact": ART, "side": "long", "tokens": "1"},
    {"agent": "bob", "artifact": ART, "side": "short", "tokens": "1", "limit_price": "0.2", "edge": "0.1"},
]  # fmt: skip


@pytest.mark.parametrize("name, text", [("orders.csv", BATCH_CSV), ("orders.json", json.dumps(BATCH_JSON))])
def test_trade_batch_when_rows_carry_rationale_columns_then_each_position_has_its_own(
    db, capsys, monkeypatch, tmp_path, name, text
):
    path = tmp_path / name
    path.write_text(text)
    result = json.loads(cli(db, capsys, monkeypatch, "--json", "trade", "batch", str(path)))
    first, second, resting = result["results"]
    assert stored_rationale(db, first["position"]) == {**WHY_STORED, "reasoning": "fear and greed up"}
    assert stored_rationale(db, second["position"]) is None
    app = open_ledger(db)
    try:
        assert app.get_artifact(ART).orders[resting["order"]]["rationale"] == {"edge_wad": 10**17}
    finally:
        app.close()


BAD_OPTIONS = [
    (("--belief", "0"), "--belief: belief must be strictly between 0 and 1"),
    (("--belief", "1"), "--belief: belief must be strictly between 0 and 1"),
    (("--belief", "-0.1"), "--belief: belief must be strictly between 0 and 1"),
    (("--belief", "1.5"), "--belief: belief must be strictly between 0 and 1"),
    (("--belief", "NaN"), "--belief: belief must be a plain decimal"),
    (("--belief", "1e-3"), "--belief: belief must be a plain decimal"),
    (("--belief", "0.1234567890123456789"), "--belief: belief has 19 decimals"),
    (("--edge", "1.01"), "--edge: edge must be between -1 and 1"),
    (("--reasoning", ""), "--reasoning: reasoning must be 1-1000 characters"),
    (("--reasoning", "x" * 1001), "--reasoning: reasoning must be 1-1000 characters"),
    (("--reasoning", "a\x00b"), "control or invisible character U+0000"),
    (("--reasoning", "a\nb"), "control or invisible character U+000A"),
    (("--feature", "FG=0.1"), "--feature: feature names are"),
    (("--feature", "1x=0.1"), "--feature: feature names are"),
    (("--feature", "a-b=0.1"), "--feature: feature names are"),
    (("--feature", "a" * 49 + "=0.1"), "--feature: feature names are"),
    (tuple(part for i in range(33) for part in ("--feature", f"f{i}=0.1")), "at most 32 features"),
    (("--feature", "fg=0.1", "--feature", "fg=0.2"), "feature 'fg' is given twice"),
    (("--feature", "fg=100.5"), "at most 100 log-odds"),
    (("--feature", "fg"), "name=value"),
]


@pytest.mark.parametrize("options, message", BAD_OPTIONS, ids=[repr(o)[:40] for o, _ in BAD_OPTIONS])
def test_trade_open_when_the_metadata_is_bad_then_refused_in_one_line_and_nothing_written(
    db, capsys, monkeypatch, options, message
):
    err = refused(db, capsys, monkeypatch, "trade", "open", "alice", ART, "--side", "long", "--tokens", "1", *options)
    assert err.startswith("error: INVALID_INPUT: ") and message in err, err


def test_trade_kelly_when_the_metadata_is_bad_then_refused_and_nothing_written(db, capsys, monkeypatch):
    kelly = ("trade", "kelly", "alice", ART, "--belief", "0.8")
    assert "--edge" in refused(db, capsys, monkeypatch, *kelly, "--edge", "-2")
    assert "--feature" in refused(db, capsys, monkeypatch, *kelly, "--feature", "Bad=1")


@pytest.mark.parametrize(
    "row, message",
    [
        ({"belief": "1.5"}, "order 1: belief must be strictly between 0 and 1"),
        ({"features": "fg=0.1;fg=0.2"}, "order 1: feature 'fg' is given twice"),
        ({"features": {"FG": "0.1"}}, "order 1: feature names are"),
        ({"features": {"fg": {"x": "1"}}}, "order 1: feature 'fg' must be a decimal"),
        ({"reasoning": "a\u202eb"}, "order 1: reasoning holds the control or invisible character U+202E"),
        ({"edge": "1e-3"}, "order 1: edge must be a plain decimal"),
    ],
)
def test_trade_batch_when_a_row_has_bad_metadata_then_the_batch_is_refused_and_nothing_written(
    db, capsys, monkeypatch, tmp_path, row, message
):
    path = tmp_path / "orders.json"
    orders = [{"agent": "alice", "artifact": ART, "side": "long", "tokens": "1", **row}]
    path.write_text(json.dumps(orders))
    err = refused(db, capsys, monkeypatch, "trade", "batch", str(path))
    assert message in err, err


def test_trade_open_when_retried_with_the_same_command_id_and_other_metadata_then_conflict(db, capsys, monkeypatch):
    order = ("trade", "open", "alice", ART, "--side", "long", "--tokens", "1", "--command-id", "c1")
    cli(db, capsys, monkeypatch, *order, "--belief", "0.6")
    cli(db, capsys, monkeypatch, *order, "--belief", "0.6")  # the same retry replays
    before = event_count(db)
    err = refused(db, capsys, monkeypatch, *order, "--belief", "0.61")
    assert err.startswith("error: IDEMPOTENCY_MISMATCH"), err
    assert event_count(db) == before
