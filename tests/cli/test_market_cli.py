"""Markets, settlement and bounties from the command line: refusals are one line and write
nothing; order files are read exactly as written."""

import json

import pytest

from tests.cli.test_cli import event_count, run

ART = "ART"


@pytest.fixture
def db(durable_store_url, capsys, monkeypatch) -> str:
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
        code, _, err = run(capsys, monkeypatch, "--db", durable_store_url, *step)
        assert code == 0, (step, err)
    return durable_store_url


def refused(db: str, capsys, monkeypatch, *args: str) -> str:
    """Run a command that must be refused; return its one-line error, having checked nothing was written."""
    before = event_count(db)
    code, _, err = run(capsys, monkeypatch, "--db", db, *args)
    assert code not in (0, 2), err  # 2 would be a usage error, not a refusal of the input
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert event_count(db) == before
    return err.strip()


BAD_ORDER_FILES = [
    ("not UTF-8", "orders.csv", b"\xff\xfeagent\n", "INVALID_INPUT: ", "is not UTF-8 text"),
    (
        "JSON exponent",
        "orders.json",
        b'[{"agent":"alice","artifact":"ART","side":"long","tokens":1e3}]',
        "INVALID_AMOUNT: order 1: ",
        "'1e3'",
    ),
    (
        "JSON float past the decimals",
        "orders.json",
        b'[{"agent":"alice","artifact":"ART","side":"long","tokens":0.30000000000000001}]',
        "INVALID_AMOUNT: order 1: ",
        "'0.30000000000000001' has 17 fractional digits",
    ),
    (
        "JSON null agent",
        "orders.json",
        b'[{"agent":null,"artifact":"ART","side":"long","tokens":"1"}]',
        "INVALID_INPUT: order 1: ",
        "missing field 'agent'",
    ),
    (
        "JSON list agent",
        "orders.json",
        b'[{"agent":["alice"],"artifact":"ART","side":"long","tokens":"1"}]',
        "INVALID_INPUT: order 1: ",
        "agent must be text",
    ),
    (
        "short CSV row",
        "orders.csv",
        b"agent,artifact,side,tokens\nalice,ART\n",
        "INVALID_INPUT: order 1: ",
        "missing field 'side'",
    ),
    (
        "expiry on a market order",
        "orders.csv",
        b"agent,artifact,side,tokens,limit_price,expires_in_days\nalice,ART,long,1,,2\n",
        "INVALID_INPUT: order 1: ",
        "limit orders only",
    ),
    (
        "NaN expiry",
        "orders.csv",
        b"agent,artifact,side,tokens,limit_price,expires_in_days\nalice,ART,long,1,0.3,nan\n",
        "INVALID_INPUT: order 1: ",
        "expires_in_days must be a number of days",
    ),
    (
        "expiry with an underscore",
        "orders.csv",
        b"agent,artifact,side,tokens,limit_price,expires_in_days\nalice,ART,long,1,0.3,1_0\n",
        "INVALID_INPUT: order 1: ",
        "'1_0'",
    ),
    (
        "expiry in other digits",
        "orders.json",
        '[{"agent":"alice","artifact":"ART","side":"long","tokens":"1","limit_price":"0.3","expires_in_days":"\u0663"}]'.encode(),
        "INVALID_INPUT: order 1: ",
        "number of days",
    ),
    (
        "expiry under a second",
        "orders.csv",
        b"agent,artifact,side,tokens,limit_price,expires_in_days\nalice,ART,long,1,0.3,0.00001\n",
        "INVALID_INPUT: order 1: ",
        "at least a second",
    ),
    (
        "second order bad",
        "orders.csv",
        b"agent,artifact,side,tokens\nalice,ART,long,1\nalice,ART,long,-1\n",
        "INVALID_AMOUNT: order 2: ",
        "negative",
    ),
]


@pytest.mark.parametrize(
    ("case", "name", "content", "code", "says"), BAD_ORDER_FILES, ids=[c[0] for c in BAD_ORDER_FILES]
)
def test_trade_batch_when_file_is_bad_then_named_and_nothing_written(
    db, capsys, monkeypatch, tmp_path, case, name, content, code, says
):
    path = tmp_path / name
    path.write_bytes(content)

    err = refused(db, capsys, monkeypatch, "trade", "batch", str(path))

    assert err.startswith(f"error: {code}") and says in err, err


def test_trade_batch_when_csv_has_a_byte_order_mark_and_an_expiring_limit_then_placed(
    db, capsys, monkeypatch, tmp_path
):
    path = tmp_path / "orders.csv"
    path.write_bytes(
        b"\xef\xbb\xbfagent,artifact,side,tokens,limit_price,expires_in_days\nbob,ART,short,3,0.2,2\nbob,ART,long,5,,\n"
    )

    code, out, err = run(capsys, monkeypatch, "--db", db, "--json", "trade", "batch", str(path))

    assert code == 0, err
    order, position = json.loads(out)["results"]
    assert order["status"] == "open" and position["position"].startswith(f"{ART}/p")
    code, out, _ = run(capsys, monkeypatch, "--db", db, "--json", "artifact", "book", ART)
    [resting] = json.loads(out)["orders"]
    assert resting["order_id"] == order["order"] and resting["expires_at"] is not None


def test_trade_cancel_when_agent_not_given_then_the_owner_s_order_is_cancelled(db, capsys, monkeypatch):
    code, out, err = run(
        capsys,
        monkeypatch,
        "--db",
        db,
        "--json",
        "trade",
        "open",
        "bob",
        ART,
        "--side",
        "short",
        "--tokens",
        "3",
        "--limit-price",
        "0.2",
    )
    assert code == 0, err
    order_id = json.loads(out)["order"]
    assert refused(db, capsys, monkeypatch, "trade", "cancel", order_id, "--agent", "alice").startswith(
        "error: NOT_OWNER:"
    )

    code, out, err = run(capsys, monkeypatch, "--db", db, "--json", "trade", "cancel", order_id)

    assert code == 0, err
    assert json.loads(out)["status"] == "cancelled"


BAD_COMMANDS = [
    ("transition price 1", ["artifact", "transition", ART, "validated", "--price", "1"], "INVALID_AMOUNT"),
    ("transition price abc", ["artifact", "transition", ART, "validated", "--price", "abc"], "INVALID_AMOUNT"),
    ("transition unknown state", ["artifact", "transition", ART, "approved"], "INVALID_INPUT"),
    ("transition unknown artifact", ["artifact", "transition", "NOPE", "validated"], "UNKNOWN_ARTIFACT"),
    ("bounty negative", ["bounty", "post", ART, "bob", "-1"], "INVALID_AMOUNT"),
    ("bounty unknown sponsor", ["bounty", "post", ART, "nobody", "1"], "UNKNOWN_ACCOUNT"),
    ("weight with underscore", ["bounty", "distribute", f"{ART}/b1", "alice=1_000"], "INVALID_AMOUNT"),
    ("weight in other digits", ["bounty", "distribute", f"{ART}/b1", "alice=\u0663"], "INVALID_AMOUNT"),
    ("weight over zero", ["bounty", "distribute", f"{ART}/b1", "alice=1/0"], "INVALID_AMOUNT"),
    ("weight a decimal over a number", ["bounty", "distribute", f"{ART}/b1", "alice=0.5/1"], "INVALID_AMOUNT"),
    ("amount in other digits", ["mint", "alice", "\u0661\u0660"], "INVALID_AMOUNT"),
    ("name with a newline", ["account", "open", "eve\n"], "INVALID_INPUT"),
    ("artifact id with a newline", ["artifact", "add", "ART2\n", "--title", "t", "--liquidity", "1"], "INVALID_INPUT"),
    ("reason with a newline", ["transfer", "alice", "bob", "1", "--reason", "transfer\n"], "INVALID_INPUT"),
    ("settlements of no artifact", ["settlements", "--artifact", "NOPE"], "UNKNOWN_ARTIFACT"),
    ("settlements of no agent", ["settlements", "--agent", "nobody"], "UNKNOWN_ACCOUNT"),
]


@pytest.mark.parametrize(("case", "args", "code"), BAD_COMMANDS, ids=[c for c, _, _ in BAD_COMMANDS])
def test_bad_input_when_refused_then_one_line_and_nothing_written(db, capsys, monkeypatch, case, args, code):
    assert refused(db, capsys, monkeypatch, *args).startswith(f"error: {code}:")


def test_init_when_decimals_refused_then_no_database_file_is_left(tmp_path, capsys, monkeypatch):
    path = tmp_path / "new.db"

    code, _, err = run(capsys, monkeypatch, "--db", f"sqlite:///{path}", "init", "--decimals", "99")

    assert code == 1 and err.startswith("error: INVALID_INPUT: decimals"), err
    assert not path.exists()
