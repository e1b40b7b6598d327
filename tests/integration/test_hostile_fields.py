"""Every id, name and code the ledger accepts, sent hostile through every entry point.

One table per entry point (CLI arguments and options, HTTP paths, JSON bodies, batch files,
export files); each field gets four values built from a valid one: a trailing newline, a NUL,
10 kB more characters, and a right-to-left override (U+202E) in front. Each must be refused
with a clear error, no traceback and no 5xx, and the store's event count must not move. A
positive control sends the valid value through the same row and sees it accepted, so a row
that could never be refused for the right reason (a typo in the command) fails loudly.

Numbers are bounded in length before they are parsed: a 100,000-digit amount, price, weight,
percentage or day count is refused at once, on the command line and over HTTP.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.api.app import create_app
from stakeledger.cli.main import main
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from tests.api.conftest import ART, auth, seed

HOSTILE = {
    "newline": lambda valid: valid + "\n",
    "nul": lambda valid: valid + "\x00",
    "10kB": lambda valid: valid + "x" * 10_000,
    "rtl": lambda valid: "\u202e" + valid,
}
HUGE_NUMBER = "1" * 100_000
# A refusal of a 100,000-digit number must not parse it: well under a second on a loaded machine.
FAST_SECONDS = 1.0
TOKEN = 10**6


# The command line ----------------------------------------------------------------------------

CLI_ART = "ART"


def _seed_cli_store(url: str) -> None:
    """alice and bob funded, a market with alice's position, bob's resting order and bounty,
    alice's portfolio limits and API key; bob trades without limits."""
    from stakeledger.domain.service import apikeys

    ledger = open_ledger(url, clock=ManualClock())
    try:
        ledger.initialise(decimals=6)
        for agent in ("alice", "bob"):
            ledger.open_account(agent)
            ledger.mint(agent, 1_000 * TOKEN)
        ledger.list_artifact(CLI_ART, "A claim", 100 * TOKEN, min_hold_days=0)
        ledger.open_position("alice", CLI_ART, "long", 10 * TOKEN)  # ART/p1
        ledger.place_limit_order("bob", CLI_ART, "short", 5 * TOKEN, 10**17)  # ART/o1
        ledger.post_bounty(CLI_ART, "bob", 15 * TOKEN)  # ART/b1
        ledger.configure_portfolio("alice", min_trade_size_units=1)  # market-config needs a portfolio
        apikeys.issue_key(ledger, "alice", apikeys.TRADE, key_id="0123456789abcdef")
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def seeded_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "seed.db"
    _seed_cli_store(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="module")
def shared_db(seeded_file: Path) -> str:
    """One store for every refusal: nothing is written to it, which each test proves."""
    copy = seeded_file.with_name("shared.db")
    shutil.copy(seeded_file, copy)
    return f"sqlite:///{copy}"


@pytest.fixture
def fresh_db(seeded_file: Path, tmp_path: Path) -> str:
    copy = tmp_path / "ledger.db"
    shutil.copy(seeded_file, copy)
    return f"sqlite:///{copy}"


def event_count(url: str) -> int:
    ledger = open_ledger(url)
    try:
        return ledger.recorder.max_notification_id() or 0
    finally:
        ledger.close()


def cli(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["stakeledger", *args])
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


# (row name, argv with "{}" where the field goes, a valid value for the field)
CLI_FIELDS: list[tuple[str, list[str], str]] = [
    ("account open NAME", ["account", "open", "{}"], "carol"),
    ("mint AGENT", ["mint", "{}", "5"], "alice"),
    ("burn AGENT", ["burn", "{}", "5"], "alice"),
    ("transfer FROM", ["transfer", "{}", "bob", "5"], "alice"),
    ("transfer TO", ["transfer", "alice", "{}", "5"], "bob"),
    ("transfer --reason", ["transfer", "alice", "bob", "5", "--reason", "{}"], "transfer:rent"),
    ("--command-id", ["mint", "alice", "5", "--command-id", "{}"], "retry-1"),
    ("artifact add ID", ["artifact", "add", "{}", "--title", "T", "--liquidity", "10"], "ART-9"),
    ("artifact add --group", ["artifact", "add", "ART-9", "--title", "T", "--liquidity", "10", "--group", "{}"], "g1"),
    ("artifact transition ID", ["artifact", "transition", "{}", "challenged"], CLI_ART),
    ("artifact transition STATE", ["artifact", "transition", CLI_ART, "{}"], "challenged"),
    ("artifact transition --actor", ["artifact", "transition", CLI_ART, "challenged", "--actor", "{}"], "operator"),
    ("trade open AGENT", ["trade", "open", "{}", CLI_ART, "--side", "long", "--tokens", "1"], "bob"),
    ("trade open ARTIFACT", ["trade", "open", "bob", "{}", "--side", "long", "--tokens", "1"], CLI_ART),
    ("trade open --side", ["trade", "open", "bob", CLI_ART, "--side", "{}", "--tokens", "1"], "long"),
    ("trade close POSITION", ["trade", "close", "{}"], f"{CLI_ART}/p1"),
    ("trade close --agent", ["trade", "close", f"{CLI_ART}/p1", "--agent", "{}"], "alice"),
    ("trade cancel ORDER", ["trade", "cancel", "{}"], f"{CLI_ART}/o1"),
    ("trade stop POSITION", ["trade", "stop", "{}", "--trail-pct", "10"], f"{CLI_ART}/p1"),
    ("trade kelly AGENT", ["trade", "kelly", "{}", CLI_ART, "--belief", "0.9"], "bob"),
    ("trade kelly ARTIFACT", ["trade", "kelly", "bob", "{}", "--belief", "0.9"], CLI_ART),
    ("bounty post ARTIFACT", ["bounty", "post", "{}", "alice", "5"], CLI_ART),
    ("bounty post SPONSOR", ["bounty", "post", CLI_ART, "{}", "5"], "alice"),
    ("bounty distribute BOUNTY", ["bounty", "distribute", "{}", "alice=1"], f"{CLI_ART}/b1"),
    ("bounty distribute CLAIMANT", ["bounty", "distribute", f"{CLI_ART}/b1", "{}=1"], "alice"),
    ("bounty refund BOUNTY", ["bounty", "refund", "{}"], f"{CLI_ART}/b1"),
    ("portfolio config AGENT", ["portfolio", "config", "{}", "--max-positions", "5"], "alice"),
    ("portfolio market-config AGENT", ["portfolio", "market-config", "{}", CLI_ART, "--trail-pct", "10"], "alice"),
    ("portfolio market-config ARTIFACT", ["portfolio", "market-config", "alice", "{}", "--trail-pct", "10"], CLI_ART),
    (
        "portfolio market-config --correlation-group",
        ["portfolio", "market-config", "alice", CLI_ART, "--correlation-group", "{}"],
        "g1",
    ),
    ("apikey create AGENT", ["apikey", "create", "{}"], "bob"),
    ("apikey create --scope", ["apikey", "create", "bob", "--scope", "{}"], "trade"),
    ("apikey revoke KEY_ID", ["apikey", "revoke", "{}"], "0123456789abcdef"),
]


def _fill(argv: list[str], value: str) -> list[str]:
    return [part.replace("{}", value) for part in argv]


@pytest.mark.parametrize("variant", sorted(HOSTILE))
@pytest.mark.parametrize(("row", "argv", "valid"), CLI_FIELDS, ids=[row for row, _, _ in CLI_FIELDS])
def test_cli_field_when_hostile_then_refused_and_nothing_written(
    shared_db, capsys, monkeypatch, row, argv, valid, variant
):
    before = event_count(shared_db)
    code, out, err = cli(capsys, monkeypatch, "--db", shared_db, *_fill(argv, HOSTILE[variant](valid)))

    assert code != 0, (row, variant, out)
    assert "Traceback" not in out + err
    assert err.strip(), "a refusal says why"
    assert len(err) < 2_000, "the refusal quotes a cut of the value, not all of it"
    assert event_count(shared_db) == before


@pytest.mark.parametrize(("row", "argv", "valid"), CLI_FIELDS, ids=[row for row, _, _ in CLI_FIELDS])
def test_cli_field_when_valid_then_accepted(fresh_db, capsys, monkeypatch, row, argv, valid):
    """The control: the same row with the valid value is accepted and writes."""
    before = event_count(fresh_db)
    code, out, err = cli(capsys, monkeypatch, "--db", fresh_db, *_fill(argv, valid))

    assert code == 0, (row, err)
    assert event_count(fresh_db) > before


# Batch files ---------------------------------------------------------------------------------

BATCH_FIELDS = [("agent", "bob"), ("artifact", CLI_ART), ("side", "long")]


def _batch_row(field: str, value: str) -> dict[str, str]:
    row = {"agent": "bob", "artifact": CLI_ART, "side": "long", "tokens": "1"}
    row[field] = value
    return row


def _csv(row: dict[str, str]) -> str:
    return ",".join(row) + "\n" + ",".join(f'"{value}"' for value in row.values()) + "\n"


# A batch row's names lose the spaces a CSV writer leaves after a comma, and nothing else:
# "alice\n" is refused like every other hostile name.
BATCH_VARIANTS = sorted(HOSTILE)


@pytest.mark.parametrize("variant", BATCH_VARIANTS)
@pytest.mark.parametrize("form", ["csv", "json"])
@pytest.mark.parametrize(("field", "valid"), BATCH_FIELDS)
def test_batch_file_field_when_hostile_then_refused_and_nothing_written(
    shared_db, capsys, monkeypatch, tmp_path, field, valid, form, variant
):
    row = _batch_row(field, HOSTILE[variant](valid))
    path = tmp_path / f"orders.{form}"
    path.write_text(_csv(row) if form == "csv" else json.dumps([row]), encoding="utf-8")
    before = event_count(shared_db)

    code, out, err = cli(capsys, monkeypatch, "--db", shared_db, "trade", "batch", str(path))

    assert code != 0, (field, form, variant, out)
    assert "Traceback" not in out + err and err.strip()
    assert event_count(shared_db) == before


@pytest.mark.parametrize("form", ["csv", "json"])
def test_batch_file_when_every_field_is_valid_then_placed(fresh_db, capsys, monkeypatch, tmp_path, form):
    row = _batch_row("agent", "bob")
    path = tmp_path / f"orders.{form}"
    path.write_text(_csv(row) if form == "csv" else json.dumps([row]), encoding="utf-8")
    before = event_count(fresh_db)

    code, _, err = cli(capsys, monkeypatch, "--db", fresh_db, "trade", "batch", str(path))

    assert code == 0, err
    assert event_count(fresh_db) > before


# Export files --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def export_dir(seeded_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "out"
    monkeypatch = pytest.MonkeyPatch()
    try:
        monkeypatch.setattr(
            sys, "argv", ["stakeledger", "--db", f"sqlite:///{seeded_file}", "export", "--out", str(out)]
        )
        with pytest.raises(SystemExit) as done:
            main()
        assert not done.value.code, done.value.code
    finally:
        monkeypatch.undo()
    return out


def _string_values(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _string_values(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_values(item, (*path, index))
    elif isinstance(value, str):
        yield path, value


def _replaced(document: Any, path: tuple[Any, ...], new: str) -> Any:
    if not path:
        return new
    copy = dict(document) if isinstance(document, dict) else list(document)
    copy[path[0]] = _replaced(document[path[0]], path[1:], new)
    return copy


# The keys under which an export names an account, an artifact, an event's kind or a code.
EXPORT_ID_KEYS = {"treasury", "accountId", "account_id", "kind", "topic", "artifact_id", "agent", "owner", "reason"}


def _documents(file: Path) -> list[Any]:
    text = file.read_text()
    return [json.loads(line) for line in text.splitlines() if line] if file.suffix == ".jsonl" else [json.loads(text)]


def _export_fields(directory: Path) -> list[tuple[str, int, tuple[Any, ...], str]]:
    """In every JSON and JSON-lines file of the export, the first string under each id key:
    (file, document number, path in it, value): the ids the verifier and importer read back."""
    fields = []
    for file in sorted([*directory.glob("*.json"), *directory.glob("*.jsonl")]):
        seen: set[str] = set()
        for number, document in enumerate(_documents(file)):
            for path, value in _string_values(document):
                key = next((part for part in reversed(path) if isinstance(part, str)), None)
                if key in EXPORT_ID_KEYS and key not in seen and value:
                    seen.add(key)
                    fields.append((file.name, number, path, value))
    return fields


def _write_documents(file: Path, documents: list[Any]) -> None:
    if file.suffix == ".jsonl":
        file.write_text("".join(json.dumps(document, separators=(",", ":")) + "\n" for document in documents))
    else:
        file.write_text(json.dumps(documents[0], indent=2))


def test_export_has_id_fields_to_attack(export_dir: Path) -> None:
    files = {name for name, _, _, _ in _export_fields(export_dir)}
    assert {"accounts.json", "events.jsonl"} <= files, sorted(p.name for p in export_dir.iterdir())


@pytest.mark.parametrize("variant", sorted(HOSTILE))
def test_export_file_id_when_hostile_then_import_refuses_and_nothing_written(
    export_dir, capsys, monkeypatch, tmp_path, variant
):
    for case, (name, number, path, valid) in enumerate(_export_fields(export_dir)):
        tampered = tmp_path / f"{case}-{variant}"
        shutil.copytree(export_dir, tampered)
        documents = _documents(tampered / name)
        documents[number] = _replaced(documents[number], path, HOSTILE[variant](valid))
        _write_documents(tampered / name, documents)
        target = f"sqlite:///{tmp_path / f'target-{case}.db'}"

        if case == 0:  # import verifies first; verify alone once per variant
            code, out, err = cli(capsys, monkeypatch, "verify", str(tampered))
            assert code != 0 and "Traceback" not in out + err, (name, path, out)
        code, out, err = cli(capsys, monkeypatch, "import", str(tampered), "--db", target)
        assert code != 0 and "Traceback" not in out + err, (name, path, out)
        assert event_count(target) == 0, (name, path)


def test_export_when_untouched_then_it_verifies(export_dir, capsys, monkeypatch) -> None:
    code, _, err = cli(capsys, monkeypatch, "verify", str(export_dir))
    assert code == 0, err


# The HTTP API --------------------------------------------------------------------------------


class _Served:
    def __init__(self) -> None:
        app = create_app("memory://", ManualClock())
        self.ledger: StakeLedger = app.state.api.ledger
        self.keys = seed(self.ledger)
        self.client = TestClient(app, raise_server_exceptions=False)
        self.client.__enter__()
        admin = self.keys["admin"]
        self.client.post(
            "/api/market/positions",
            json={"agent": "alice", "artifact": ART, "side": "long", "tokens": "10"},
            headers=auth(self.keys["alice"]),
        ).raise_for_status()  # ART-1/p1
        self.client.post(
            "/api/market/orders",
            json={"agent": "bob", "artifact": ART, "side": "short", "tokens": "5", "limit_price": "0.1"},
            headers=auth(self.keys["bob"]),
        ).raise_for_status()  # ART-1/o1
        self.client.post(
            "/api/bounties", json={"artifact": ART, "sponsor": "bob", "amount": "15"}, headers=auth(admin)
        ).raise_for_status()  # ART-1/b1

    def head(self) -> int:
        return self.ledger.recorder.max_notification_id() or 0

    def send(self, method: str, path: str, body: Any, key: str) -> Any:
        return self.client.request(method, path, json=body, headers=auth(self.keys[key]))


@pytest.fixture(scope="module")
def served() -> Iterator[_Served]:
    api = _Served()
    try:
        yield api
    finally:
        api.client.__exit__(None, None, None)


# (row name, method, path, body, key) with "{}" where the field goes (in the path: URL-quoted), valid value
API_FIELDS: list[tuple[str, str, str, Any, str, str]] = [
    ("POST accounts agent", "POST", "/api/accounts", {"agent": "{}"}, "admin", "carol"),
    ("mint path agent", "POST", "/api/accounts/{}/mint", {"amount": "5"}, "admin", "alice"),
    ("transfer path agent", "POST", "/api/accounts/{}/transfers", {"to": "bob", "amount": "5"}, "admin", "alice"),
    ("transfer to", "POST", "/api/accounts/alice/transfers", {"to": "{}", "amount": "5"}, "admin", "bob"),
    (
        "transfer reason",
        "POST",
        "/api/accounts/alice/transfers",
        {"to": "bob", "amount": "5", "reason": "{}"},
        "admin",
        "transfer:rent",
    ),
    (
        "artifact id",
        "POST",
        "/api/market/artifacts",
        {"artifact": "{}", "title": "T", "liquidity": "10"},
        "admin",
        "ART-9",
    ),
    (
        "artifact group",
        "POST",
        "/api/market/artifacts",
        {"artifact": "ART-9", "title": "T", "liquidity": "10", "group": "{}"},
        "admin",
        "g1",
    ),
    (
        "position agent",
        "POST",
        "/api/market/positions",
        {"agent": "{}", "artifact": ART, "side": "long", "tokens": "1"},
        "admin",
        "alice",
    ),
    (
        "position artifact",
        "POST",
        "/api/market/positions",
        {"agent": "alice", "artifact": "{}", "side": "long", "tokens": "1"},
        "admin",
        ART,
    ),
    (
        "position side",
        "POST",
        "/api/market/positions",
        {"agent": "alice", "artifact": ART, "side": "{}", "tokens": "1"},
        "admin",
        "long",
    ),
    (
        "order agent",
        "POST",
        "/api/market/orders",
        {"agent": "{}", "artifact": ART, "side": "short", "tokens": "1", "limit_price": "0.1"},
        "admin",
        "bob",
    ),
    (
        "order artifact",
        "POST",
        "/api/market/orders",
        {"agent": "bob", "artifact": "{}", "side": "short", "tokens": "1", "limit_price": "0.1"},
        "admin",
        ART,
    ),
    ("close path position", "POST", "/api/market/positions/{}/close", None, "admin", f"{ART}/p1"),
    ("cancel path order", "DELETE", "/api/market/orders/{}", None, "admin", f"{ART}/o1"),
    (
        "transition path artifact",
        "POST",
        "/api/artifacts/{}/lifecycle-transition",
        {"state": "challenged"},
        "admin",
        ART,
    ),
    ("transition state", "POST", f"/api/artifacts/{ART}/lifecycle-transition", {"state": "{}"}, "admin", "challenged"),
    (
        "transition actor",
        "POST",
        f"/api/artifacts/{ART}/lifecycle-transition",
        {"state": "challenged", "actor": "{}"},
        "admin",
        "operator",
    ),
    ("bounty artifact", "POST", "/api/bounties", {"artifact": "{}", "sponsor": "bob", "amount": "5"}, "admin", ART),
    ("bounty sponsor", "POST", "/api/bounties", {"artifact": ART, "sponsor": "{}", "amount": "5"}, "admin", "bob"),
    (
        "distribute path bounty",
        "POST",
        "/api/bounties/{}/distribute",
        {"claimants": [{"agent": "alice", "weight": "1"}]},
        "admin",
        f"{ART}/b1",
    ),
    (
        "distribute claimant",
        "POST",
        f"/api/bounties/{ART}/b1/distribute",
        {"claimants": [{"agent": "{}", "weight": "1"}]},
        "admin",
        "alice",
    ),
    ("refund path bounty", "POST", "/api/bounties/{}/refund", None, "admin", f"{ART}/b1"),
]


def _fill_body(body: Any, value: str) -> Any:
    if isinstance(body, dict):
        return {key: _fill_body(item, value) for key, item in body.items()}
    if isinstance(body, list):
        return [_fill_body(item, value) for item in body]
    return value if body == "{}" else body


def _fill_path(path: str, value: str) -> str:
    return path.replace("{}", quote(value, safe="/"))


@pytest.mark.parametrize("variant", sorted(HOSTILE))
@pytest.mark.parametrize(
    ("row", "method", "path", "body", "key", "valid"), API_FIELDS, ids=[row[0] for row in API_FIELDS]
)
def test_api_field_when_hostile_then_4xx_and_nothing_written(served, row, method, path, body, key, valid, variant):
    value = HOSTILE[variant](valid)
    before = served.head()

    response = served.send(method, _fill_path(path, value), _fill_body(body, value), key)

    assert 400 <= response.status_code < 500, (row, variant, response.status_code, response.text[:300])
    assert len(response.text) < 20_000, "the refusal does not echo 10 kB back whole"
    assert served.head() == before


@pytest.mark.parametrize(
    ("row", "method", "path", "body", "key", "valid"), API_FIELDS, ids=[row[0] for row in API_FIELDS]
)
def test_api_field_when_valid_then_accepted(row, method, path, body, key, valid):
    """The control, on a fresh service each: the valid value is accepted and writes."""
    api = _Served()
    try:
        before = api.head()
        response = api.send(method, _fill_path(path, valid), _fill_body(body, valid), key)
        assert response.status_code < 300, (row, response.status_code, response.text[:300])
        assert api.head() > before
    finally:
        api.client.__exit__(None, None, None)


# Numbers bounded before they are parsed ------------------------------------------------------

CLI_NUMBERS = [
    ("mint AMOUNT", ["mint", "alice", "{}"]),
    ("transfer AMOUNT", ["transfer", "alice", "bob", "{}"]),
    ("trade open --tokens", ["trade", "open", "alice", CLI_ART, "--side", "long", "--tokens", "{}"]),
    (
        "trade open --max-price",
        ["trade", "open", "alice", CLI_ART, "--side", "long", "--tokens", "1", "--max-price", "{}"],
    ),
    (
        "trade open --limit-price",
        ["trade", "open", "alice", CLI_ART, "--side", "long", "--tokens", "1", "--limit-price", "{}"],
    ),
    (
        "trade open --expires-in",
        [
            "trade",
            "open",
            "alice",
            CLI_ART,
            "--side",
            "long",
            "--tokens",
            "1",
            "--limit-price",
            "0.2",
            "--expires-in",
            "{}",
        ],
    ),
    ("artifact add --liquidity", ["artifact", "add", "ART-9", "--title", "T", "--liquidity", "{}"]),
    (
        "artifact add --min-hold-days",
        ["artifact", "add", "ART-9", "--title", "T", "--liquidity", "9", "--min-hold-days", "{}"],
    ),
    ("artifact transition --price", ["artifact", "transition", CLI_ART, "challenged", "--price", "{}"]),
    ("trade stop --trail-pct", ["trade", "stop", f"{CLI_ART}/p1", "--trail-pct", "{}"]),
    ("trade kelly --belief", ["trade", "kelly", "alice", CLI_ART, "--belief", "{}"]),
    ("trade kelly --fraction", ["trade", "kelly", "alice", CLI_ART, "--belief", "0.9", "--fraction", "{}"]),
    ("bounty post AMOUNT", ["bounty", "post", CLI_ART, "alice", "{}"]),
    ("bounty distribute WEIGHT", ["bounty", "distribute", f"{CLI_ART}/b1", "alice={}"]),
    ("portfolio config --max-positions", ["portfolio", "config", "alice", "--max-positions", "{}"]),
]


@pytest.mark.parametrize(("row", "argv"), CLI_NUMBERS, ids=[row for row, _ in CLI_NUMBERS])
def test_cli_number_when_100000_digits_then_refused_at_once(shared_db, capsys, monkeypatch, row, argv):
    before = event_count(shared_db)
    started = time.perf_counter()
    code, out, err = cli(capsys, monkeypatch, "--db", shared_db, *_fill(argv, HUGE_NUMBER))
    seconds = time.perf_counter() - started

    assert code != 0, (row, out)
    assert "Traceback" not in out + err and err.strip()
    assert len(err) < 2_000, err[:300]
    assert seconds < FAST_SECONDS + 1.0, f"{row} took {seconds:.2f} s"  # the CLI run itself costs up to ~1 s
    assert event_count(shared_db) == before


API_NUMBERS = [
    ("mint amount", "POST", "/api/accounts/alice/mint", {"amount": "{}"}),
    ("transfer amount", "POST", "/api/accounts/alice/transfers", {"to": "bob", "amount": "{}"}),
    (
        "position tokens",
        "POST",
        "/api/market/positions",
        {"agent": "alice", "artifact": ART, "side": "long", "tokens": "{}"},
    ),
    (
        "position max_price",
        "POST",
        "/api/market/positions",
        {"agent": "alice", "artifact": ART, "side": "long", "tokens": "1", "max_price": "{}"},
    ),
    (
        "order limit_price",
        "POST",
        "/api/market/orders",
        {"agent": "bob", "artifact": ART, "side": "short", "tokens": "1", "limit_price": "{}"},
    ),
    ("artifact liquidity", "POST", "/api/market/artifacts", {"artifact": "ART-9", "title": "T", "liquidity": "{}"}),
    ("bounty amount", "POST", "/api/bounties", {"artifact": ART, "sponsor": "bob", "amount": "{}"}),
    (
        "distribute weight",
        "POST",
        f"/api/bounties/{ART}/b1/distribute",
        {"claimants": [{"agent": "alice", "weight": "{}"}]},
    ),
    ("transition price", "POST", f"/api/artifacts/{ART}/lifecycle-transition", {"state": "challenged", "price": "{}"}),
]


@pytest.mark.parametrize(("row", "method", "path", "body"), API_NUMBERS, ids=[row[0] for row in API_NUMBERS])
@pytest.mark.parametrize("as_json_number", [False, True], ids=["string", "number"])
def test_api_number_when_100000_digits_then_422_at_once(served, row, method, path, body, as_json_number):
    before = served.head()
    filled = _fill_body(body, HUGE_NUMBER)
    text = json.dumps(filled)
    if as_json_number:
        text = text.replace(f'"{HUGE_NUMBER}"', HUGE_NUMBER)
    headers = {**auth(served.keys["admin"]), "Content-Type": "application/json"}
    started = time.perf_counter()
    response = served.client.request(method, path, content=text, headers=headers)
    seconds = time.perf_counter() - started

    assert response.status_code == 422, (row, response.status_code, response.text[:300])
    assert len(response.text) < 2_000, response.text[:300]
    assert seconds < FAST_SECONDS, f"{row} took {seconds:.2f} s"
    assert served.head() == before
