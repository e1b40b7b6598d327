"""The command line as a user meets it: exit codes, one-line errors, nothing written on refusal."""

import json
import sys

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.cli.main import global_options_first, main


def run(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["stakeledger", *args])
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(durable_store_url, capsys, monkeypatch) -> str:
    code, _, err = run(capsys, monkeypatch, "--db", durable_store_url, "init", "--decimals", "6")
    assert code == 0, err
    for args in (("account", "open", "alice"), ("account", "open", "bob"), ("mint", "alice", "100.5")):
        assert run(capsys, monkeypatch, "--db", durable_store_url, *args)[0] == 0
    return durable_store_url


def event_count(url: str) -> int:
    app = open_ledger(url)
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


def test_transfer_then_statement_when_json_then_running_balance(db, capsys, monkeypatch):
    assert run(capsys, monkeypatch, "--db", db, "transfer", "alice", "bob", "20.25")[0] == 0
    code, out, _ = run(capsys, monkeypatch, "--db", db, "--json", "account", "statement", "alice")
    assert code == 0
    statement = json.loads(out)
    assert [line["reason"] for line in statement["lines"]] == ["mint", "transfer"]
    assert [line["balance_units"] for line in statement["lines"]] == ["100500000", "80250000"]
    assert statement["lines"][1]["counterparty"] == "bob"


def test_statement_at_position_when_earlier_then_balance_as_it_stood(db, capsys, monkeypatch):
    _, out, _ = run(capsys, monkeypatch, "--db", db, "--json", "account", "statement", "alice")
    mint_position = json.loads(out)["lines"][0]["position"]
    run(capsys, monkeypatch, "--db", db, "transfer", "alice", "bob", "50")
    _, out, _ = run(
        capsys, monkeypatch, "--db", db, "--json", "account", "statement", "alice", "--at", str(mint_position)
    )
    assert json.loads(out)["balance_units"] == "100500000"


def test_audit_when_clean_then_exit_zero_and_summary(db, capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "--db", db, "--json", "audit")
    report = json.loads(out)
    assert code == 0
    assert report["clean"] is True
    assert report["total_supply_units"] == "100500000"
    assert report["accounts"] == 3


BAD_INPUTS = [
    ("unknown account", ["transfer", "alice", "nobody", "1"], "UNKNOWN_ACCOUNT"),
    ("negative", ["transfer", "alice", "bob", "-1"], "INVALID_AMOUNT"),
    ("zero", ["mint", "alice", "0"], "INVALID_AMOUNT"),
    ("NaN", ["mint", "alice", "NaN"], "INVALID_AMOUNT"),
    ("exponent", ["mint", "alice", "1e999"], "INVALID_AMOUNT"),
    ("too many decimals", ["mint", "alice", "0.0000001"], "INVALID_AMOUNT"),
    ("above uint256", ["mint", "alice", str(2**256)], "INVALID_AMOUNT"),
    ("self transfer", ["transfer", "alice", "alice", "1"], "SELF_TRANSFER"),
    ("insufficient funds", ["transfer", "alice", "bob", "1000"], "INSUFFICIENT_FUNDS"),
    ("burn too much", ["burn", "bob", "1"], "INSUFFICIENT_FUNDS"),
    ("reserved reason", ["transfer", "alice", "bob", "1", "--reason", "mint"], "INVALID_INPUT"),
    ("duplicate account", ["account", "open", "alice"], "ACCOUNT_EXISTS"),
    ("second init", ["init"], "ALREADY_INITIALISED"),
]


@pytest.mark.parametrize(("case", "args", "code"), BAD_INPUTS, ids=[c for c, _, _ in BAD_INPUTS])
def test_bad_input_when_refused_then_one_line_on_stderr_nonzero_exit_and_log_unchanged(
    db, capsys, monkeypatch, case, args, code
):
    before = event_count(db)
    exit_code, out, err = run(capsys, monkeypatch, "--db", db, *args)
    assert exit_code != 0
    assert err.strip().count("\n") == 0, err
    assert err.startswith(f"error: {code}:"), err
    assert event_count(db) == before


def test_malformed_store_url_when_used_then_clear_error(capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "--db", "postgresql://", "account", "list")
    assert code != 0
    assert err.startswith("error: INVALID_STORE_URL:")


def test_read_command_when_sqlite_file_missing_then_error_and_no_file_created(tmp_path, capsys, monkeypatch):
    path = tmp_path / "absent.db"
    code, _, err = run(capsys, monkeypatch, "--db", f"sqlite:///{path}", "account", "list")
    assert code != 0
    assert "NOT_INITIALISED" in err
    assert not path.exists()


def test_help_when_any_command_then_describes_it(capsys, monkeypatch):
    for args in (["--help"], ["account", "--help"], ["transfer", "--help"], ["audit", "--help"]):
        code, out, _ = run(capsys, monkeypatch, *args)
        assert code == 0
        assert "Usage" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["audit", "--json"], ["--json", "audit"]),
        (["account", "show", "ada", "--db", "sqlite:///x.db"], ["--db", "sqlite:///x.db", "account", "show", "ada"]),
        (["mint", "ada", "5", "--db=sqlite:///x.db", "--json"], ["--db=sqlite:///x.db", "--json", "mint", "ada", "5"]),
        (["transfer", "a", "b", "1", "--", "--json"], ["transfer", "a", "b", "1", "--", "--json"]),
    ],
)
def test_global_options_when_written_after_the_command_then_moved_to_the_front(args, expected):
    assert global_options_first(args) == expected


def test_read_command_when_json_comes_last_then_json_printed(db, capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch, "account", "show", "alice", "--json", "--db", db)
    assert code == 0, err
    assert json.loads(out)["balance_units"] == "100500000"
