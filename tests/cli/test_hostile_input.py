"""Hostile input at the command line (issue 20): deep JSON, batch files that say something other
than they mean, titles that look like rich markup or hold terminal controls, numbers of
thousands of digits, store passwords, and bounty weights that do not sum to 1.

Every refusal is one line ``error: CODE: message`` on stderr with a non-zero exit, and writes
nothing (the log's last position does not move); everything accepted prints as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.cli.output import redact_urls
from tests.cli.test_cli import event_count, run
from tests.conftest import fresh_postgres_url

ART = "ART"
HOSTILE_TITLE = "[/bold] x"
MARKUP_TITLE = "[red]x[/red]"
HOSTILE_GROUP = "[/b]"
DEEP = "[" * 200_000 + "]" * 200_000
HUGE = "9" * 5_000
HEADER = "agent,artifact,side,tokens"


@pytest.fixture
def db(tmp_path, capsys, monkeypatch) -> str:
    """A SQLite ledger (the edge's rules do not depend on the store): alice and bob funded, one market."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    steps = [
        ("init", "--decimals", "6"),
        ("account", "open", "alice"),
        ("account", "open", "bob"),
        ("mint", "alice", "1000"),
        ("mint", "bob", "1000"),
        ("artifact", "add", ART, "--title", "A claim", "--liquidity", "100", "--min-hold-days", "0"),
        ("trade", "open", "alice", ART, "--side", "long", "--tokens", "10"),
        ("bounty", "post", ART, "bob", "15"),
    ]
    for step in steps:
        code, _, err = run(capsys, monkeypatch, "--db", url, *step)
        assert code == 0, (step, err)
    return url


def balances(url: str) -> dict[str, int]:
    app = open_ledger(url)
    try:
        return {name: app.balance_of(name) for name in ("alice", "bob")}
    finally:
        app.close()


def refused(url: str, capsys, monkeypatch, *args: str) -> str:
    """Run a command that must be refused; return its one-line error, having checked that
    nothing was written and no traceback was printed."""
    before, held = event_count(url), balances(url)
    code, out, err = run(capsys, monkeypatch, "--db", url, *args)
    assert code not in (0, 2), (code, err)  # 2 would be a usage error, not a refusal of the input
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert "Traceback" not in err + out
    assert event_count(url) == before and balances(url) == held
    return err.strip()


def batch_file(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


# 1. Deep JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "content"),
    [
        ("200,000 nested lists", DEEP),
        ("200,000 nested objects", '{"":' * 200_000 + "1" + "}" * 200_000),
        ("deep inside an order", '[{"agent": "alice", "artifact": "ART", "side": "long", "tokens": ' + DEEP + "}]"),
        ("unbalanced: only openers", "[" * 200_000),
    ],
)
def test_trade_batch_when_json_nests_200000_levels_then_one_line_refusal(
    db, capsys, monkeypatch, tmp_path, case, content
):
    err = refused(db, capsys, monkeypatch, "trade", "batch", batch_file(tmp_path, "orders.json", content))

    assert err.startswith("error: INVALID_INPUT: ") and "nests deeper than 32 levels" in err, err


def test_trade_batch_when_brackets_are_inside_strings_then_they_are_data_not_nesting(db, capsys, monkeypatch, tmp_path):
    deep_text = "[" * 50 + '\\"' + "{" * 50
    path = batch_file(
        tmp_path, "orders.json", json.dumps([{"agent": deep_text, "artifact": ART, "side": "long", "tokens": "1"}])
    )

    err = refused(db, capsys, monkeypatch, "trade", "batch", path)

    # Parsed: the refusal is of the agent name the string spells, not of the file's shape.
    assert err.startswith("error: INVALID_INPUT: ") and "agent name" in err and "nests deeper" not in err, err


# 3. Batch files mean what they say --------------------------------------------------------------

MANY_ROWS = "".join(f"alice,{ART},long,1\n" for _ in range(1_001))

BAD_BATCH_FILES = [
    (
        "CSV header limit",
        "orders.csv",
        f"{HEADER},limit\nalice,{ART},long,5,0.01\n",
        "INVALID_INPUT: ",
        "unknown column 'limit' (did you mean 'limit_price'?)",
    ),
    (
        "CSV header maxprice",
        "orders.csv",
        f"{HEADER},maxprice\nalice,{ART},long,5,0.01\n",
        "INVALID_INPUT: ",
        "unknown column 'maxprice' (did you mean 'max_price'?)",
    ),
    (
        "CSV unknown column",
        "orders.csv",
        f"{HEADER},colour\nalice,{ART},long,5,red\n",
        "INVALID_INPUT: ",
        "unknown column 'colour'",
    ),
    (
        "CSV agent column twice",
        "orders.csv",
        f"agent,artifact,side,tokens,agent\nalice,{ART},long,5,bob\n",
        "INVALID_INPUT: ",
        "column 'agent' given twice",
    ),
    (
        "CSV expiry under both names",
        "orders.csv",
        f"{HEADER},limit_price,expires_in,expires_in_days\nalice,{ART},long,5,0.2,1,2\n",
        "INVALID_INPUT: ",
        "column 'expires_in' and 'expires_in_days' given twice",
    ),
    (
        "CSV header without tokens",
        "orders.csv",
        f"agent,artifact,side\nalice,{ART},long\n",
        "INVALID_INPUT: ",
        "no column 'tokens'",
    ),
    (
        "CSV row with more fields than the header",
        "orders.csv",
        f"{HEADER}\nalice,{ART},long,5,0.01\n",
        "INVALID_INPUT: order 1: ",
        "has 5 fields, but the header names 4 columns",
    ),
    (
        "CSV quoted amount with a newline",
        "orders.csv",
        f'{HEADER}\nalice,{ART},long,"5\n6"\n',
        "INVALID_AMOUNT: order 1: ",
        "'5\\n6'",
    ),
    (
        "CSV unterminated quote",
        "orders.csv",
        f'{HEADER}\nalice,{ART},long,"5\n',
        "INVALID_INPUT: ",
        "is not valid CSV",
    ),
    (
        "CSV empty file",
        "orders.csv",
        "",
        "INVALID_INPUT: ",
        "is empty",
    ),
    (
        "JSON key twice",
        "orders.json",
        f'[{{"agent":"alice","artifact":"{ART}","side":"long","tokens":"5","agent":"bob"}}]',
        "INVALID_INPUT: order 1: ",
        "duplicate key 'agent'",
    ),
    (
        "JSON unknown key limit",
        "orders.json",
        f'[{{"agent":"alice","artifact":"{ART}","side":"long","tokens":"5","limit":"0.01"}}]',
        "INVALID_INPUT: order 1: ",
        "unknown column 'limit' (did you mean 'limit_price'?)",
    ),
    (
        "JSON not a list of objects",
        "orders.json",
        '{"agent":"alice"}',
        "INVALID_INPUT: ",
        "must hold a JSON list of order objects",
    ),
    (
        "max_price on a limit order",
        "orders.csv",
        f"{HEADER},limit_price,max_price\nalice,{ART},long,5,0.2,0.9\n",
        "INVALID_INPUT: order 1: ",
        "max_price and min_shares apply to market orders",
    ),
    (
        "max_price above 1",
        "orders.csv",
        f"{HEADER},max_price\nalice,{ART},long,5,1.5\n",
        "INVALID_AMOUNT: order 1: ",
        "max_price must be strictly between 0 and 1",
    ),
    (
        "1,001 CSV orders",
        "orders.csv",
        f"{HEADER}\n{MANY_ROWS}",
        "INVALID_INPUT: ",
        "holds more than 1000 orders",
    ),
    (
        # The cap is met while reading: the broken row after the 1,001st is never parsed.
        "1,001 CSV orders then a broken row",
        "orders.csv",
        f'{HEADER}\n{MANY_ROWS}alice,"unterminated\n',
        "INVALID_INPUT: ",
        "holds more than 1000 orders",
    ),
    (
        "1,001 JSON orders",
        "orders.json",
        json.dumps([{"agent": "alice", "artifact": ART, "side": "long", "tokens": "1"}] * 1_001),
        "INVALID_INPUT: ",
        "holds more than 1000 orders",
    ),
    (
        # Over the size cap: refused by its size before a byte of it is decoded or parsed.
        "over 1 MiB, not even UTF-8",
        "orders.csv",
        b"\xff" * ((1 << 20) + 1),
        "INVALID_INPUT: ",
        "is larger than 1048576 bytes",
    ),
    (
        "over 1 MiB of valid rows",
        "orders.json",
        "["
        + ",".join([json.dumps({"agent": "alice", "artifact": ART, "side": "long", "tokens": "1" * 60})] * 15_000)
        + "]",
        "INVALID_INPUT: ",
        "is larger than 1048576 bytes",
    ),
    (
        "5,000-digit CSV amount",
        "orders.csv",
        f"{HEADER}\nalice,{ART},long,{HUGE}\n",
        "INVALID_AMOUNT: order 1: ",
        "amount has 5000 characters; at most 160",
    ),
    (
        "5,000-digit JSON string amount",
        "orders.json",
        f'[{{"agent":"alice","artifact":"{ART}","side":"long","tokens":"{HUGE}"}}]',
        "INVALID_AMOUNT: order 1: ",
        "amount has 5000 characters; at most 160",
    ),
    (
        "5,000-digit JSON number amount",
        "orders.json",
        f'[{{"agent":"alice","artifact":"{ART}","side":"long","tokens":{HUGE}}}]',
        "INVALID_INPUT: ",
        "holds a number of more than 100 digits",
    ),
    (
        "5,000-digit max_price",
        "orders.csv",
        f"{HEADER},max_price\nalice,{ART},long,5,0.{HUGE}\n",
        "INVALID_AMOUNT: order 1: ",
        "at most 160",
    ),
    (
        "5,000-digit expiry",
        "orders.csv",
        f"{HEADER},limit_price,expires_in_days\nalice,{ART},long,5,0.2,{HUGE}\n",
        "INVALID_INPUT: order 1: ",
        "expires_in_days must be a number of days",
    ),
]


@pytest.mark.parametrize(
    ("case", "name", "content", "code", "says"), BAD_BATCH_FILES, ids=[c[0] for c in BAD_BATCH_FILES]
)
def test_trade_batch_when_file_is_hostile_then_named_and_nothing_written(
    db, capsys, monkeypatch, tmp_path, case, name, content, code, says
):
    err = refused(db, capsys, monkeypatch, "trade", "batch", batch_file(tmp_path, name, content))

    assert err.startswith(f"error: {code}") and says in err, err
    assert len(err) < 400, err  # a cut of the hostile value, never all of it


def test_trade_batch_when_file_is_60_mb_then_refused_by_its_size_without_reading_it(db, capsys, monkeypatch, tmp_path):
    path = tmp_path / "orders.csv"
    with open(path, "wb") as handle:
        handle.truncate(60 << 20)  # sparse: 60 MB of NUL bytes that cost no disk

    err = refused(db, capsys, monkeypatch, "trade", "batch", str(path))

    assert "is larger than 1048576 bytes" in err, err


def test_trade_batch_when_max_price_is_below_the_market_then_refused_as_trade_open_is(
    db, capsys, monkeypatch, tmp_path
):
    path = batch_file(tmp_path, "orders.csv", f"{HEADER},max_price\nbob,{ART},long,5,0.01\n")

    from_batch = refused(db, capsys, monkeypatch, "trade", "batch", path)
    from_open = refused(
        db, capsys, monkeypatch, "trade", "open", "bob", ART, "--side", "long", "--tokens", "5", "--max-price", "0.01"
    )

    assert from_batch.startswith("error: SLIPPAGE_EXCEEDED: ") and "0.010000" in from_batch, from_batch
    assert from_open.split(": ", 1)[1] in from_batch  # the same refusal, numbered by its order


def test_trade_batch_when_min_shares_is_more_than_the_tokens_buy_then_refused(db, capsys, monkeypatch, tmp_path):
    path = batch_file(
        tmp_path, "orders.json", f'[{{"agent":"bob","artifact":"{ART}","side":"long","tokens":5,"min_shares":"50"}}]'
    )

    err = refused(db, capsys, monkeypatch, "trade", "batch", path)

    assert err.startswith("error: SLIPPAGE_EXCEEDED: "), err


def test_trade_batch_when_bounds_hold_then_each_row_placed_with_its_own_meaning(db, capsys, monkeypatch, tmp_path):
    path = batch_file(
        tmp_path,
        "orders.csv",
        f"{HEADER},max_price,min_shares,limit_price,expires_in\n"
        f"bob,{ART},long,5,0.99,1,,\n"
        f"bob,{ART},short,3,,,0.01,2\n",
    )

    code, out, err = run(capsys, monkeypatch, "--db", db, "--json", "trade", "batch", path)

    assert code == 0, err
    position, order = json.loads(out)["results"]
    assert position["position"].startswith(f"{ART}/p") and order["status"] == "open"
    _, out, _ = run(capsys, monkeypatch, "--db", db, "--json", "artifact", "book", ART)
    [resting] = json.loads(out)["orders"]
    assert resting["order_id"] == order["order"] and resting["limit_price"].startswith("0.01")
    assert resting["expires_at"] is not None


# 4. Titles, groups and reasons print as written ------------------------------------------------


@pytest.fixture
def hostile_db(db, capsys, monkeypatch) -> str:
    """Markup-like text everywhere free text goes: titles, a group, a transition's reason and actor."""
    steps = [
        ("artifact", "add", "ART-M", "--title", HOSTILE_TITLE, "--liquidity", "100", "--min-hold-days", "0"),
        ("artifact", "add", "ART-R", "--title", MARKUP_TITLE, "--liquidity", "50", "--group", HOSTILE_GROUP),
        ("trade", "open", "alice", "ART-M", "--side", "long", "--tokens", "20"),
        ("trade", "open", "bob", "ART-M", "--side", "short", "--tokens", "10"),
        ("trade", "open", "bob", "ART-R", "--side", "long", "--tokens", "10"),
        ("trade", "open", "alice", "ART-R", "--side", "short", "--tokens", "5", "--limit-price", "0.2"),
        ("bounty", "post", "ART-M", "alice", "10"),
        ("bounty", "distribute", "ART-M/b1", "bob=1"),
        (
            "artifact",
            "transition",
            "ART-M",
            "validated",
            "--price",
            "0.9",
            "--reason",
            "[/bold] why",
            "--actor",
            "[red]board[/red]",
        ),
    ]
    for step in steps:
        code, _, err = run(capsys, monkeypatch, "--db", db, *step)
        assert code == 0, (step, err)
    return db


VIEWS = [
    ["artifact", "list"],
    ["artifact", "list", "--by-capital"],
    ["artifact", "show", "ART-M"],
    ["artifact", "show", "ART-R"],
    ["artifact", "book", "ART-M"],
    ["artifact", "book", "ART-R"],
    ["artifact", "quote", "ART-R", "--side", "long", "--tokens", "1"],
    ["account", "list"],
    ["account", "show", "alice"],
    ["account", "statement", "alice"],
    ["account", "inbox", "bob"],
    ["portfolio", "show", "alice"],
    ["portfolio", "summary", "bob"],
    ["portfolio", "concentration", "bob"],
    ["portfolio", "pairs", "bob"],
    ["portfolio", "rebalance", "bob"],
    ["portfolio", "metrics", "bob"],
    ["settlements"],
    ["settlements", "--artifact", "ART-M"],
    ["reputation"],
    ["reputation", "alice"],
    ["projections", "status"],
    ["audit"],
]


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_every_view_when_free_text_looks_like_markup_then_printed_as_written(hostile_db, capsys, monkeypatch, as_json):
    printed = ""
    for view in VIEWS:
        args = ["--json", *view] if as_json else view
        code, out, err = run(capsys, monkeypatch, "--db", hostile_db, *args)
        assert code == 0, (view, err)
        assert "Traceback" not in out + err and "MarkupError" not in out + err, view
        printed += out
        if as_json:
            json.loads(out)

    if as_json:
        assert json.dumps(HOSTILE_TITLE) in printed and json.dumps(MARKUP_TITLE) in printed
    else:
        assert HOSTILE_TITLE in printed and MARKUP_TITLE in printed and HOSTILE_GROUP in printed


def test_artifact_views_when_title_is_markup_then_the_exact_title_is_in_the_table(hostile_db, capsys, monkeypatch):
    for view in (["artifact", "show", "ART-R"], ["artifact", "list"]):
        code, out, err = run(capsys, monkeypatch, "--db", hostile_db, *view)

        assert code == 0, err
        assert MARKUP_TITLE in out and HOSTILE_GROUP in out, out  # not swallowed as a style


CONTROL_TEXT = [
    ("ANSI clear screen", "\x1b[2J"),
    ("ANSI colour", "x\x1b[31mred"),
    ("C1 control sequence introducer", "x\x9b2J"),
    ("bell", "x\x07"),
    ("carriage return", "ok\rEVIL"),
    ("right-to-left override", "abc\u202edef"),
    ("left-to-right isolate", "abc\u2066def"),
    ("zero-width space", "ab\u200bc"),
    ("byte-order mark", "\ufeffab"),
    ("line separator", "a\u2028b"),
]

CONTROL_COMMANDS = [
    ("title", lambda text: ["artifact", "add", "ART-X", "--title", text, "--liquidity", "10"]),
    ("title with =", lambda text: ["artifact", "add", "ART-X", f"--title={text}", "--liquidity", "10"]),
    ("group", lambda text: ["artifact", "add", "ART-X", "--title", "t", "--liquidity", "10", "--group", text]),
    ("reason", lambda text: ["artifact", "transition", ART, "flagged", "--reason", text]),
    ("actor", lambda text: ["artifact", "transition", ART, "flagged", "--actor", text]),
    ("agent name", lambda text: ["account", "open", f"eve{text}"]),
    ("transfer reason", lambda text: ["transfer", "alice", "bob", "1", "--reason", f"transfer:{text}"]),
]


@pytest.mark.parametrize(("command", "build"), CONTROL_COMMANDS, ids=[c for c, _ in CONTROL_COMMANDS])
@pytest.mark.parametrize(("case", "text"), CONTROL_TEXT, ids=[c for c, _ in CONTROL_TEXT])
def test_free_text_when_it_holds_a_control_character_then_refused_before_anything_runs(
    db, capsys, monkeypatch, command, build, case, text
):
    err = refused(db, capsys, monkeypatch, *build(text))

    assert err.startswith("error: INVALID_INPUT: ") and "control or invisible character U+" in err, err
    assert "\x1b" not in err and "\u202e" not in err and "\r" not in err  # the refusal itself is safe to print


def test_title_with_control_when_refused_then_the_refusal_names_its_option(db, capsys, monkeypatch):
    err = refused(db, capsys, monkeypatch, "artifact", "add", "ART-X", "--title", "\x1b[2J", "--liquidity", "10")

    assert "(after --title)" in err and "U+001B at position 1" in err, err


def test_views_when_text_stored_before_the_rules_holds_controls_then_printed_escaped(db, capsys, monkeypatch):
    app = open_ledger(db)  # the Python API does not pass through the command line's checks
    try:
        app.list_artifact("ART-OLD", "old\x1b[2J\u202etitle", 10 * 10**6, min_hold_days=0)
    finally:
        app.close()

    for view in (["artifact", "show", "ART-OLD"], ["artifact", "list"]):
        code, out, err = run(capsys, monkeypatch, "--db", db, *view)

        assert code == 0, err
        assert "\x1b" not in out and "\u202e" not in out, out
        assert "old\\x1b[2J\\u" in out, out  # the list's narrow column cuts the rest
    assert "old\\x1b[2J\\u202etitle" in run(capsys, monkeypatch, "--db", db, "artifact", "show", "ART-OLD")[1]

    code, out, _ = run(capsys, monkeypatch, "--db", db, "--json", "artifact", "show", "ART-OLD")
    assert code == 0 and "\x1b" not in out and json.loads(out)["title"] == "old\x1b[2J\u202etitle"


# 7. Numbers of thousands of digits --------------------------------------------------------------

HUGE_NUMBERS = [
    ("mint", ["mint", "alice", HUGE], "INVALID_AMOUNT"),
    ("burn", ["burn", "alice", HUGE], "INVALID_AMOUNT"),
    ("transfer", ["transfer", "alice", "bob", HUGE], "INVALID_AMOUNT"),
    ("mint with a fraction", ["mint", "alice", f"1.{HUGE}"], "INVALID_AMOUNT"),
    ("trade tokens", ["trade", "open", "alice", ART, "--side", "long", "--tokens", HUGE], "INVALID_AMOUNT"),
    (
        "trade max price",
        ["trade", "open", "alice", ART, "--side", "long", "--tokens", "1", "--max-price", f"0.{HUGE}"],
        "INVALID_AMOUNT",
    ),
    (
        "trade min shares",
        ["trade", "open", "alice", ART, "--side", "long", "--tokens", "1", "--min-shares", HUGE],
        "INVALID_AMOUNT",
    ),
    (
        "trade limit price",
        ["trade", "open", "alice", ART, "--side", "long", "--tokens", "1", "--limit-price", f"0.{HUGE}"],
        "INVALID_AMOUNT",
    ),
    ("quote shares", ["artifact", "quote", ART, "--side", "long", "--shares", HUGE], "INVALID_AMOUNT"),
    ("listing liquidity", ["artifact", "add", "ART-X", "--title", "t", "--liquidity", HUGE], "INVALID_AMOUNT"),
    ("transition price", ["artifact", "transition", ART, "validated", "--price", f"0.{HUGE}"], "INVALID_AMOUNT"),
    ("bounty amount", ["bounty", "post", ART, "bob", HUGE], "INVALID_AMOUNT"),
    ("bounty weight", ["bounty", "distribute", f"{ART}/b1", f"alice={HUGE}"], "INVALID_AMOUNT"),
    ("bounty weight denominator", ["bounty", "distribute", f"{ART}/b1", f"alice=1/{HUGE}"], "INVALID_AMOUNT"),
    ("kelly belief", ["trade", "kelly", "alice", ART, "--belief", f"0.{HUGE}"], "INVALID_AMOUNT"),
    ("kelly fraction", ["trade", "kelly", "alice", ART, "--belief", "0.7", "--fraction", HUGE], "INVALID_AMOUNT"),
    ("risk percentage", ["portfolio", "config", "alice", "--max-position-size-pct", HUGE], "INVALID_AMOUNT"),
    (
        "loss percentage",
        ["portfolio", "config", "alice", "--emergency-liquidation-loss-pct", f"-{HUGE}"],
        "INVALID_AMOUNT",
    ),
    ("minimum trade size", ["portfolio", "config", "alice", "--min-trade-size", HUGE], "INVALID_AMOUNT"),
    (
        "market position size",
        ["portfolio", "market-config", "alice", ART, "--position-size-pct", HUGE],
        "INVALID_AMOUNT",
    ),
    ("market trail", ["portfolio", "market-config", "alice", ART, "--trail-pct", HUGE], "INVALID_AMOUNT"),
    ("stop trail", ["trade", "stop", f"{ART}/p1", "--trail-pct", HUGE], "INVALID_AMOUNT"),
    ("stop ratchet", ["trade", "stop", f"{ART}/p1", "--trail-pct", "10", "--min-ratchet-pct", HUGE], "INVALID_AMOUNT"),
]


@pytest.mark.parametrize(("case", "args", "code"), HUGE_NUMBERS, ids=[c for c, _, _ in HUGE_NUMBERS])
def test_number_when_5000_digits_then_one_short_line_and_nothing_written(db, capsys, monkeypatch, case, args, code):
    err = refused(db, capsys, monkeypatch, *args)

    assert err.startswith(f"error: {code}: "), err
    assert "5000 characters" in err or "5001 characters" in err or "5002 characters" in err, err
    assert "Exceeds the limit" not in err and len(err) < 300, err


@pytest.mark.parametrize(
    "args",
    [
        ["artifact", "add", "ART-X", "--title", "t", "--liquidity", "10", "--min-hold-days", HUGE],
        ["portfolio", "config", "alice", "--max-positions", HUGE],
        ["account", "statement", "alice", "--at", HUGE],
    ],
    ids=["min hold days", "max positions", "statement at"],
)
def test_whole_number_option_when_5000_digits_then_usage_error_without_traceback(db, capsys, monkeypatch, args):
    before = event_count(db)

    code, out, err = run(capsys, monkeypatch, "--db", db, *args)

    assert code == 2 and "Invalid value" in err and "Traceback" not in out + err, err
    assert event_count(db) == before


# Weaker items: store passwords, bounty weights ------------------------------------------------


def with_password(url: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    user, at, host = rest.partition("@")
    assert at, url
    return f"{scheme}://{user.split(':')[0]}:{password}@{host}"


@pytest.mark.postgres
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_init_when_the_url_has_a_password_then_it_is_never_printed(postgres_server, capsys, monkeypatch, as_json):
    url = with_password(fresh_postgres_url(postgres_server), "s3cr3t-pw")  # the test server trusts local users

    code, out, err = run(capsys, monkeypatch, "--db", url, *(["--json"] if as_json else []), "init")

    assert code == 0, err
    assert "s3cr3t-pw" not in out + err and ":***@" in out, out


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ada:s3cr3t-pw@localhost:99999/ledger",
        "postgresql://ada:s3cr3t-pw@[::1/ledger",
        "postgresql://ada:s3cr3t-pw@localhost/",
        "postgresql://ada:s3cr3t-pw@localhost/a/b",
    ],
    ids=["bad port", "bad host", "no database", "database with a slash"],
)
def test_store_url_when_malformed_then_the_error_hides_the_password(capsys, monkeypatch, url):
    code, out, err = run(capsys, monkeypatch, "--db", url, "account", "list")

    assert code != 0 and err.startswith("error: "), err
    assert "s3cr3t-pw" not in out + err and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://ada:pw@db:5432/x", "postgresql://ada:***@db:5432/x"),
        ("at 'postgres://ada:p%40ss@db/x?schema=s' now", "at 'postgres://ada:***@db/x?schema=s' now"),
        ("postgresql://ada@db/x?password=pw&schema=s", "postgresql://ada@db/x?password=***&schema=s"),
        ("postgresql://ada:p:w@db/x", "postgresql://ada:***@db/x"),
        ("sqlite:///tmp/ledger.db", "sqlite:///tmp/ledger.db"),
        (
            "two: postgresql://a:one@h/x and postgresql://b:two@h/y",
            "two: postgresql://a:***@h/x and postgresql://b:***@h/y",
        ),
    ],
)
def test_redact_urls_when_text_holds_store_urls_then_only_passwords_are_hidden(text, expected):
    assert redact_urls(text) == expected


@pytest.mark.parametrize(
    ("weights", "total"),
    [(["alice=0.9", "bob=0.9"], "9/5"), (["alice=0.1", "bob=0.05"], "3/20"), (["alice=2", "bob=3"], "5")],
    ids=["sum 1.8", "sum 0.15", "sum 5"],
)
def test_bounty_distribute_when_weights_do_not_sum_to_1_then_refused_naming_normalise(
    db, capsys, monkeypatch, weights, total
):
    err = refused(db, capsys, monkeypatch, "bounty", "distribute", f"{ART}/b1", *weights)

    assert err.startswith(f"error: INVALID_AMOUNT: claimant weights sum to {total}, not 1") and "--normalise" in err, (
        err
    )


def test_bounty_distribute_when_normalise_then_shared_by_weight_over_sum(db, capsys, monkeypatch):
    code, out, err = run(
        capsys,
        monkeypatch,
        "--db",
        db,
        "--json",
        "bounty",
        "distribute",
        f"{ART}/b1",
        "alice=0.9",
        "bob=0.6",
        "--normalise",
    )

    assert code == 0, err
    assert json.loads(out)["shares"] == {"alice": str(9 * 10**6), "bob": str(6 * 10**6)}  # 15 tokens as 3/5 and 2/5


def test_bounty_distribute_when_weights_sum_to_exactly_1_then_shared_without_normalise(db, capsys, monkeypatch):
    code, out, err = run(
        capsys, monkeypatch, "--db", db, "--json", "bounty", "distribute", f"{ART}/b1", "alice=4/5", "bob=0.2"
    )

    assert code == 0, err
    assert json.loads(out)["shares"] == {"alice": str(12 * 10**6), "bob": str(3 * 10**6)}
