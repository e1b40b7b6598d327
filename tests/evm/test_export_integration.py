"""The EVM export end to end: a real ledger on SQLite and PostgreSQL, exported, verified,
checked by OpenZeppelin's npm package, tampered with, and imported into the other backend."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stakeledger.adapters.evm import (
    BALANCES_LEAF_ENCODING,
    Eip712Domain,
    SnapshotHeader,
    StandardMerkleTree,
    recover_signer,
)
from stakeledger.adapters.evm import verify as verify_proof
from stakeledger.adapters.evm.addresses import account_address_bytes
from stakeledger.adapters.evm.bundle import (
    ACCOUNTS,
    ALL_FILES,
    BALANCES_TREE,
    EVENTS_ABI,
    EVENTS_JSONL,
    EVENTS_TREE,
    HEADER,
    MANIFEST,
    ExportError,
    ExportInvalidError,
    ImportTargetNotEmptyError,
    json_document,
    tree_document,
)
from stakeledger.adapters.evm.export import balance_proof, export_ledger
from stakeledger.adapters.evm.importer import import_export, stored_event_count
from stakeledger.adapters.evm.verification import verify_export
from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.cli import evm as evm_cli
from stakeledger.cli import main as cli_main
from stakeledger.domain.model.accounts import TREASURY
from stakeledger.domain.service.application import StakeLedger, TransferRequest
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.projections.audit import audit
from stakeledger.projections.runner import Runner
from stakeledger.projections.statements import statement_lines
from stakeledger.projections.store import open_store as open_views
from stakeledger.projections.views import ALL_VIEWS
from tests.conftest import make_store_url
from tests.evm.conftest import VERIFY_SCRIPT, node_with_ozverify

# A fixed, well-known test key (Hardhat/Anvil account #0); never holds value.
PRIVATE_KEY_HEX = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
SIGNER_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
AGENTS = ("alice", "bob", "carol")
NODE_TIMEOUT_SECONDS = 60
HEX_DIGITS = b"0123456789abcdef"


# Building ledgers ---------------------------------------------------------------------------


def build_ledger(url: str) -> StakeLedger:
    """Accounts, mints, transfers (one batched), a burn and an artifact market with two positions."""
    clock = ManualClock()
    app = open_ledger(url, clock=clock, new_id=SeededIds(7))
    app.initialise(decimals=6)
    for name in AGENTS:
        app.open_account(name)
    app.mint("alice", 1_000_000_000, command_id="grant-alice")
    app.mint("bob", 500_000_000)
    clock.advance(days=1)
    app.transfer("alice", "bob", 12_500_000)
    app.transfer_many([TransferRequest("bob", "carol", 1_000_000), TransferRequest("alice", "carol", 2_000_000)])
    app.burn("carol", 500_000)
    app.list_artifact("ART-1", "t", 100_000_000, min_hold_days=0)
    app.open_position("alice", "ART-1", "long", 10_000_000)
    clock.advance(days=1, seconds=0.000123)
    app.open_position("bob", "ART-1", "short", 6_000_000)
    return app


def other_backend_url(source_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty store on the backend the source is not on."""
    backend = "postgres" if source_url.startswith("sqlite") else "sqlite"
    target_dir = tmp_path / "target"
    target_dir.mkdir(exist_ok=True)
    return make_store_url(backend, target_dir, request)


@pytest.fixture
def source(durable_store_url: str):
    app = build_ledger(durable_store_url)
    yield app
    app.close()


@pytest.fixture
def exported(source: StakeLedger, tmp_path: Path) -> Path:
    out = tmp_path / "export"
    export_ledger(source, out, signing_key=PRIVATE_KEY_HEX)
    return out


def open_store(url: str) -> StakeLedger:
    return open_ledger(url)


def statement_view(app: StakeLedger, account_id: str) -> list[tuple]:
    return [
        (line.at, line.reason, line.counterparty, line.delta_units, line.balance_units, line.transfer_id, line.refs)
        for line in statement_lines(app, account_id)
    ]


def views_without_positions(app: StakeLedger) -> dict[str, list[tuple]]:
    """Every view table's rows, caught up, with the log-position columns left out: an
    export numbers records 1..N, so a source whose ids have gaps imports renumbered."""
    store = open_views(app)
    try:
        Runner(app, store).catch_up()
        tables = {}
        with store.read():
            for view in ALL_VIEWS:
                for table in view.tables:
                    kept = [
                        i
                        for i, name in enumerate(table.column_names)
                        if name != "position" and not name.endswith("_position")
                    ]
                    tables[table.name] = sorted(
                        (tuple(row[i] for i in kept) for row in store.raw_rows(table)), key=repr
                    )
        return tables
    finally:
        store.close()


def account_ids(directory: Path) -> list[str]:
    return [row["accountId"] for row in json.loads((directory / ACCOUNTS).read_text())["accounts"]]


def run_node_verify(directory: Path, tree_file: str, index: int, root: str, proof: list[str] | None = None) -> dict:
    node = node_with_ozverify()
    args = [node, str(VERIFY_SCRIPT), "--dump", str(directory / tree_file), "--root", root, "--index", str(index)]
    if proof is not None:
        proof_path = directory.parent / "proof.json"
        proof_path.write_text(json.dumps(proof))
        args += ["--proof", str(proof_path)]
    completed = subprocess.run(args, capture_output=True, text=True, timeout=NODE_TIMEOUT_SECONDS, check=False)
    assert completed.stdout, completed.stderr
    result = json.loads(completed.stdout)
    assert completed.returncode == 0, result
    return result


# Export, verify, npm ------------------------------------------------------------------------


def test_export_when_ledger_has_markets_then_verify_passes_and_npm_verifies_both_trees(
    source: StakeLedger, exported: Path
) -> None:
    result = verify_export(exported)
    header = json.loads((exported / HEADER).read_text())
    total_events = source.recorder.max_notification_id()
    assert result.last_seq == total_events
    assert result.signer == SIGNER_ADDRESS
    # Mints minus the burn, plus the pool subsidy b·ln 2 the treasury funded for ART-1.
    assert result.total_supply_units == source.total_supply() == 1_500_000_000 - 500_000 + 69_314_719
    assert header["header"]["eventsRoot"] == result.events_root
    assert sorted(account_ids(exported)) == sorted([*AGENTS, TREASURY, "pool:ART-1"])

    events = run_node_verify(exported, EVENTS_TREE, 5, header["header"]["eventsRoot"])
    assert events["checks"] == {"validate": True, "root": True, "derivedProofVerifies": True}
    assert events["value"][0] == "6"

    proof = balance_proof(source, "bob")
    index = proof["treeIndex"]
    balances = run_node_verify(exported, BALANCES_TREE, index, header["header"]["balancesRoot"], proof["proof"])
    assert balances["checks"]["suppliedProofVerifies"] is True
    assert balances["checks"]["suppliedProofEqualsDerived"] is True
    assert balances["value"] == [proof["address"], str(source.balance_of("bob"))]


def test_export_when_run_twice_then_every_file_is_byte_identical(
    source: StakeLedger, exported: Path, tmp_path: Path
) -> None:
    again = tmp_path / "again"
    export_ledger(source, again, signing_key=PRIVATE_KEY_HEX)
    for name in ALL_FILES:
        assert (again / name).read_bytes() == (exported / name).read_bytes(), name


def test_events_abi_when_read_then_one_line_per_event_in_contiguous_chain(exported: Path) -> None:
    lines = (exported / EVENTS_JSONL).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [record["seq"] for record in records] == list(range(1, len(records) + 1))
    assert records[0]["prevHash"] == "0x" + "00" * 32
    assert all(later["prevHash"] == earlier["recordHash"] for earlier, later in zip(records, records[1:]))
    assert len((exported / EVENTS_ABI).read_text().splitlines()) == len(records)
    credited = [record for record in records if record["topic"] == "stakeledger:Account.Credited"]
    assert credited and all(record["accountId"] and int(record["credit"]) > 0 for record in credited)
    opened = [record for record in records if record["topic"] == "stakeledger:Account.Opened"]
    assert all(record["account"] == "0x" + "00" * 20 and record["credit"] == "0" for record in opened)


# Import into the other backend ----------------------------------------------------------------


def test_import_when_moved_to_other_backend_then_audit_clean_and_reexport_identical(
    source: StakeLedger, exported: Path, tmp_path: Path, request: pytest.FixtureRequest, durable_store_url: str
) -> None:
    target_url = other_backend_url(durable_store_url, tmp_path, request)
    summary = import_export(exported, target_url)
    assert summary.audit_clean is True
    imported = open_store(target_url)
    try:
        report = audit(imported)
        assert report.clean, report.violations
        assert report.total_supply_units == source.total_supply()
        for account_id in account_ids(exported):
            assert statement_view(imported, account_id) == statement_view(source, account_id), account_id
            assert imported.balance_of(account_id) == source.balance_of(account_id)
        source_views, imported_views = views_without_positions(source), views_without_positions(imported)
        assert sum(map(len, source_views.values())) > 0
        for table, rows in source_views.items():
            assert imported_views[table] == rows, table
        original_market, imported_market = source.get_artifact("ART-1"), imported.get_artifact("ART-1")
        assert (imported_market.q_long, imported_market.q_short, imported_market.price_long_wad) == (
            original_market.q_long,
            original_market.q_short,
            original_market.price_long_wad,
        )
        again = tmp_path / "reexport"
        export_ledger(imported, again, signing_key=PRIVATE_KEY_HEX)
    finally:
        imported.close()
    for name in (EVENTS_ABI, EVENTS_TREE, BALANCES_TREE, ACCOUNTS, HEADER):
        assert (again / name).read_bytes() == (exported / name).read_bytes(), name
    assert verify_export(again).events_root == verify_export(exported).events_root


def test_import_when_target_holds_events_then_refused_and_target_unchanged(
    exported: Path, tmp_path: Path, request: pytest.FixtureRequest, durable_store_url: str
) -> None:
    target_url = other_backend_url(durable_store_url, tmp_path, request)
    busy = build_ledger(target_url)
    busy.mint("carol", 1)  # not the exported ledger (a store holding exactly it reads as imported already)
    before = busy.recorder.max_notification_id()
    busy.close()
    with pytest.raises(ImportTargetNotEmptyError, match="already holds events"):
        import_export(exported, target_url)
    assert stored_event_count(target_url) == before


FLIP_FRACTIONS = (0.2, 0.5, 0.8)


@pytest.mark.parametrize("name", ALL_FILES)
def test_verify_when_one_byte_changes_in_a_file_then_names_it_and_import_writes_nothing(
    name: str, exported: Path, tmp_path: Path, request: pytest.FixtureRequest, durable_store_url: str
) -> None:
    target_url = other_backend_url(durable_store_url, tmp_path, request)
    open_store(target_url).close()  # the target exists, with its tables, and is empty
    original = (exported / name).read_bytes()
    tampered = tmp_path / "tampered"
    for fraction in FLIP_FRACTIONS:
        for position, replacement in _one_byte_changes(original, int(len(original) * fraction)):
            shutil.rmtree(tampered, ignore_errors=True)
            shutil.copytree(exported, tampered)
            (tampered / name).write_bytes(original[:position] + bytes([replacement]) + original[position + 1 :])
            with pytest.raises(ExportInvalidError) as caught:
                verify_export(tampered)
            assert caught.value.file == name, (position, str(caught.value))
            if name in (EVENTS_ABI, EVENTS_JSONL):
                assert caught.value.seq is not None, str(caught.value)
            with pytest.raises(ExportInvalidError):
                import_export(tampered, target_url)
            assert stored_event_count(target_url) == 0


def test_verify_when_a_record_changes_mid_log_then_names_that_seq(exported: Path) -> None:
    lines = (exported / EVENTS_ABI).read_bytes().split(b"\n")
    seq = 9
    line = bytearray(lines[seq - 1])
    # The 5th head word is originatorVersion; its last hex digit is at 2 + 32 * 2 * 5 (after the tuple offset).
    index = 2 + 64 * 5 - 1
    line[index] = ord("7") if line[index] != ord("7") else ord("8")
    lines[seq - 1] = bytes(line)
    (exported / EVENTS_ABI).write_bytes(b"\n".join(lines))
    with pytest.raises(ExportInvalidError) as caught:
        verify_export(exported)
    assert (caught.value.file, caught.value.seq) == (EVENTS_ABI, seq)
    assert "originatorVersion" in str(caught.value)


def test_verify_when_a_notification_id_changes_then_blames_events_jsonl(exported: Path) -> None:
    lines = (exported / EVENTS_JSONL).read_text().splitlines(keepends=True)
    last = json.loads(lines[-1])
    lines[-1] = lines[-1].replace(
        f'"notificationId":{last["notificationId"]}', f'"notificationId":{last["notificationId"] + 1}', 1
    )
    (exported / EVENTS_JSONL).write_text("".join(lines))
    with pytest.raises(ExportInvalidError) as caught:
        verify_export(exported)
    assert caught.value.file == EVENTS_JSONL
    assert "notificationId" in str(caught.value)


# What a tree cannot prove: a consistent tree over the wrong rows ---------------------------------


def _rewrite_balance_rows(directory: Path, edit) -> None:
    """Replace balances-tree.json by a well-formed tree over ``edit(rows)``: only verify's own checks
    of the rows, not the tree's hashes, can catch it."""
    loaded = StandardMerkleTree.load(json.loads((directory / BALANCES_TREE).read_text()))
    rows = [row for _, row in sorted(loaded.entries())]
    rebuilt = StandardMerkleTree.of(edit(rows), BALANCES_LEAF_ENCODING)
    data = tree_document(rebuilt)
    (directory / BALANCES_TREE).write_bytes(data)
    # The manifest's size and digest follow, as a careful forger's would: verify reads no
    # more of a file than the manifest states, and checks the digests only at the end.
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["files"][BALANCES_TREE] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (directory / MANIFEST).write_bytes(json_document(manifest))


TREASURY_ADDRESS = account_address_bytes(TREASURY)
STRANGER_ADDRESS = bytes.fromhex("11" * 20)
ROW_EDITS = {
    "a second row": (lambda rows: rows + [rows[0]], "a second row for"),
    "a missing row": (lambda rows: rows[1:], "has no row"),
    "a treasury row": (lambda rows: rows + [(TREASURY_ADDRESS, 0)], "the treasury has no row"),
    "a stranger's row": (lambda rows: rows + [(STRANGER_ADDRESS, 0)], "is no account opened in the records"),
    "a balance plus one": (lambda rows: [(rows[0][0], rows[0][1] + 1)] + rows[1:], "the row says"),
}


@pytest.mark.parametrize("case", list(ROW_EDITS))
def test_verify_when_balance_rows_are_wrong_under_a_valid_tree_then_names_the_row(
    case: str, exported: Path, tmp_path: Path, request: pytest.FixtureRequest, durable_store_url: str
) -> None:
    edit, message = ROW_EDITS[case]
    _rewrite_balance_rows(exported, edit)
    target_url = other_backend_url(durable_store_url, tmp_path, request)
    open_store(target_url).close()

    with pytest.raises(ExportInvalidError) as caught:
        verify_export(exported)
    assert caught.value.file == BALANCES_TREE and message in str(caught.value), str(caught.value)
    with pytest.raises(ExportInvalidError):
        import_export(exported, target_url)
    assert stored_event_count(target_url) == 0


def test_verify_when_total_supply_is_not_the_issuance_then_names_the_header(exported: Path) -> None:
    document = json.loads((exported / HEADER).read_text())
    inflated = str(int(document["header"]["totalSupply"]) + 1)
    document["header"]["totalSupply"] = document["typedData"]["message"]["totalSupply"] = inflated
    (exported / HEADER).write_text(json.dumps(document, indent=2) + "\n")

    with pytest.raises(ExportInvalidError) as caught:
        verify_export(exported)
    assert caught.value.file == HEADER and "is not the treasury's issuance" in str(caught.value)


# Proofs, signatures and prefixes ---------------------------------------------------------------


def test_export_proof_when_account_given_then_row_verifies_against_balances_root(
    source: StakeLedger, exported: Path
) -> None:
    header = json.loads((exported / HEADER).read_text())["header"]
    for account_id in ("alice", "carol", "pool:ART-1"):
        proof = balance_proof(source, account_id)
        assert proof["balancesRoot"] == header["balancesRoot"]
        assert proof["balance"] == str(source.balance_of(account_id))
        assert verify_proof(
            proof["balancesRoot"], proof["leafEncoding"], [proof["address"], int(proof["balance"])], proof["proof"]
        )
        assert not verify_proof(
            proof["balancesRoot"], proof["leafEncoding"], [proof["address"], int(proof["balance"]) + 1], proof["proof"]
        )
        root, address, balance, nodes = proof["contractCall"]["args"]
        assert (root, address, balance, nodes) == (
            header["balancesRoot"],
            proof["address"],
            proof["balance"],
            proof["proof"],
        )


def test_export_proof_when_account_is_treasury_then_refused(source: StakeLedger) -> None:
    with pytest.raises(ExportError, match="no balance row"):
        balance_proof(source, TREASURY)


def test_export_when_signed_then_header_recovers_the_signer(source: StakeLedger, tmp_path: Path) -> None:
    domain = Eip712Domain(
        name="stakeledger", version="1", chain_id=31337, verifying_contract="0x5FbDB2315678afecb367f032d93F642f64180aa3"
    )
    out = tmp_path / "signed"
    summary = export_ledger(source, out, signing_key=PRIVATE_KEY_HEX, domain=domain)
    document = json.loads((out / HEADER).read_text())
    fields = document["header"]
    header = SnapshotHeader(
        fields["snapshotId"],
        int(fields["lastSeq"]),
        fields["eventsRoot"],
        fields["balancesRoot"],
        int(fields["totalSupply"]),
    )
    assert document["domain"]["chainId"] == 31337
    assert summary.signer == document["signer"] == SIGNER_ADDRESS
    assert recover_signer(header, domain, document["signature"]) == SIGNER_ADDRESS
    assert recover_signer(header, Eip712Domain(chain_id=1), document["signature"]) != SIGNER_ADDRESS
    assert verify_export(out).signer == SIGNER_ADDRESS


def test_export_at_when_prefix_then_balances_match_the_statement_at_that_point(
    source: StakeLedger, tmp_path: Path
) -> None:
    full = tmp_path / "full"
    export_ledger(source, full)
    records = [json.loads(line) for line in (full / EVENTS_JSONL).read_text().splitlines()]
    # The position right after the transfer from alice to bob (both sides written).
    at = next(
        record["seq"]
        for record in records
        if record["topic"] == "stakeledger:Account.Credited"
        and record["accountId"] == "bob"
        and record["payload"]["reason"] == "transfer"
    )
    out = tmp_path / "prefix"
    summary = export_ledger(source, out, at=at)
    assert summary.last_seq == at
    assert len((out / EVENTS_ABI).read_bytes().splitlines()) == at
    until = records[at - 1]["notificationId"]
    tree = StandardMerkleTree.load(json.loads((out / BALANCES_TREE).read_text()))
    rows = {address: balance for _, (address, balance) in tree.entries()}
    assert len(rows) == len(AGENTS)  # no market yet at that point: only the agents
    for name in AGENTS:
        lines = list(statement_lines(source, name, until=until))
        expected = lines[-1].balance_units if lines else 0
        proof = balance_proof(source, name, at=at)
        assert int(proof["balance"]) == expected
        assert rows[bytes.fromhex(proof["address"][2:])] == expected
    assert verify_export(out).last_seq == at
    assert summary.balances_root != verify_export(full).balances_root


def test_export_at_when_inside_a_transaction_then_refused_and_nothing_written(
    source: StakeLedger, tmp_path: Path
) -> None:
    records = [json.loads(line) for line in _export_jsonl(source, tmp_path)]
    # The first side of the first posting, whichever side the ledger writes first.
    movements = ("stakeledger:Account.Debited", "stakeledger:Account.Credited")
    first_side = next(record["seq"] for record in records if record["topic"] in movements)
    out = tmp_path / "inside"
    with pytest.raises(ExportError, match="inside a transaction"):
        export_ledger(source, out, at=first_side)
    assert not out.exists()
    with pytest.raises(ExportError, match="beyond the last event"):
        export_ledger(source, out, at=len(records) + 1)


# The command line --------------------------------------------------------------------------------


def run_cli(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    _ensure_registered()
    monkeypatch.setattr(sys, "argv", ["stakeledger", *args])
    try:
        cli_main.main()
        code = 0
    except SystemExit as done:
        code = done.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_export_verify_import_when_valid_then_exit_zero(
    source: StakeLedger, tmp_path: Path, capsys, monkeypatch, request: pytest.FixtureRequest, durable_store_url: str
) -> None:
    url = durable_store_url
    key_file = tmp_path / "key.hex"
    key_file.write_text(PRIVATE_KEY_HEX + "\n")
    out = tmp_path / "cli-export"
    code, stdout, err = run_cli(
        capsys,
        monkeypatch,
        "--db",
        url,
        "--json",
        "export",
        "--out",
        str(out),
        "--signing-key",
        str(key_file),
        "--chain-id",
        "5",
    )
    assert code == 0, err
    exported = json.loads(stdout)
    assert exported["signer"] == SIGNER_ADDRESS
    code, stdout, err = run_cli(capsys, monkeypatch, "--json", "verify", str(out))
    assert code == 0, err
    assert json.loads(stdout)["balancesRoot"] == exported["balancesRoot"]
    code, stdout, err = run_cli(capsys, monkeypatch, "--json", "export", "proof", "alice", "--from", str(out))
    assert (code, json.loads(stdout)["balance"]) == (0, str(source.balance_of("alice"))), err
    code, stdout, err = run_cli(capsys, monkeypatch, "--db", url, "--json", "export-proof", "bob")
    assert (code, json.loads(stdout)["balancesRoot"]) == (0, exported["balancesRoot"]), err
    target = other_backend_url(url, tmp_path, request)
    code, stdout, err = run_cli(capsys, monkeypatch, "--json", "import", str(out), "--db", target)
    assert code == 0, err
    assert json.loads(stdout)["eventsRoot"] == exported["eventsRoot"]
    # Again into the same store: it holds exactly this export, so the rerun checks it and writes nothing.
    code, stdout, err = run_cli(capsys, monkeypatch, "--json", "import", str(out), "--db", target)
    assert code == 0, err
    assert json.loads(stdout)["alreadyImported"] is True
    assert stored_event_count(target) == exported["events"]


def test_cli_verify_when_export_is_tampered_then_exit_one_with_one_line(exported: Path, capsys, monkeypatch) -> None:
    data = bytearray((exported / BALANCES_TREE).read_bytes())
    position = data.rindex(b'"treeIndex"') - 5  # inside the last row's balance digits
    data[position] = ord("1") if data[position] != ord("1") else ord("2")
    (exported / BALANCES_TREE).write_bytes(bytes(data))
    code, stdout, err = run_cli(capsys, monkeypatch, "verify", str(exported))
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: EXPORT_INVALID: balances-tree.json")
    code, stdout, _ = run_cli(capsys, monkeypatch, "--json", "verify", str(exported))
    assert code == 1
    assert json.loads(stdout)["file"] == BALANCES_TREE


def test_cli_export_when_arguments_are_bad_then_clear_errors_and_nothing_written(
    source: StakeLedger, tmp_path: Path, capsys, monkeypatch, durable_store_url: str
) -> None:
    url = durable_store_url
    out = tmp_path / "bad"
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("0x1234\n")
    code, _, err = run_cli(capsys, monkeypatch, "--db", url, "export", "--out", str(out), "--signing-key", str(bad_key))
    assert code == 1 and "INVALID_SIGNING_KEY" in err and "0x1234" not in err
    code, _, err = run_cli(
        capsys, monkeypatch, "--db", url, "export", "--out", str(out), "--signing-key", str(tmp_path / "missing.key")
    )
    assert code == 1 and "INVALID_SIGNING_KEY" in err
    code, _, err = run_cli(
        capsys, monkeypatch, "--db", url, "export", "--out", str(out), "--verifying-contract", "0x12"
    )
    assert code == 1 and "INVALID_INPUT" in err
    code, _, _ = run_cli(capsys, monkeypatch, "--db", url, "export")
    assert code == 2
    code, _, err = run_cli(capsys, monkeypatch, "verify", str(tmp_path / "nowhere"))
    assert code == 1 and "EXPORT_INVALID" in err
    assert not out.exists()


# Helpers ---------------------------------------------------------------------------------------------


def _export_jsonl(app: StakeLedger, tmp_path: Path) -> list[str]:
    out = tmp_path / "lines"
    export_ledger(app, out)
    return (out / EVENTS_JSONL).read_text().splitlines()


def _one_byte_changes(data: bytes, position: int) -> list[tuple[int, int]]:
    """Two changes at ``position``: another hex digit (stays well-formed) and a flipped low bit."""
    byte = data[position]
    changes = [(position, byte ^ 0x01)]
    if byte in HEX_DIGITS:
        changes.append((position, HEX_DIGITS[(HEX_DIGITS.index(byte) + 7) % 16]))
    return changes


def _ensure_registered() -> None:
    """cli/main.py registers these commands; until it does, register them here."""
    names = {command.name for command in cli_main.app.registered_commands}
    if "verify" not in names:
        evm_cli.register(cli_main.app)
