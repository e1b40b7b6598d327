"""Export and verify on several processes give what one process gives, byte for byte and
error for error: the same files, and on a tampered file the same first bad record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from stakeledger.adapters.evm.bundle import ALL_FILES, EVENTS_ABI, EVENTS_JSONL, ExportError, ExportInvalidError
from stakeledger.adapters.evm.export import export_ledger
from stakeledger.adapters.evm.parallel import CHUNK_RECORDS, worker_count
from stakeledger.adapters.evm.records import EVENT_RECORD_ABI_TYPE, EventRecord, RecordDecodeError, decode_record
from stakeledger.adapters.evm.verification import verify_export
from tests.evm.hostile import build_small_ledger

# Enough records for three worker tasks, the last one partial.
TRANSFERS = CHUNK_RECORDS + CHUNK_RECORDS // 2


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> tuple[Path, Path]:
    """The same ledger exported by one process and by two workers."""
    base = tmp_path_factory.mktemp("parallel")
    app = build_small_ledger(f"sqlite:///{base / 'source.db'}", transfers=TRANSFERS)
    try:
        export_ledger(app, base / "one", workers=1)
        export_ledger(app, base / "two", workers=2)
    finally:
        app.close()
    return base / "one", base / "two"


def test_export_when_run_on_two_workers_then_every_file_equals_the_one_process_export(exports) -> None:
    one, two = exports
    lines = (one / EVENTS_ABI).read_bytes().count(b"\n")
    assert lines > 2 * CHUNK_RECORDS
    for name in ALL_FILES:
        assert (two / name).read_bytes() == (one / name).read_bytes(), name


def test_verify_when_run_on_two_workers_then_it_passes_with_the_same_result(exports) -> None:
    one, _ = exports
    alone, shared = verify_export(one, workers=1), verify_export(one, workers=2)
    assert shared.record_hashes == alone.record_hashes
    assert shared.as_json() | {"seconds": 0} == alone.as_json() | {"seconds": 0}


def _tampered(source: Path, target: Path, name: str, seq: int, change) -> Path:
    shutil.copytree(source, target)
    lines = (target / name).read_bytes().splitlines(keepends=True)
    lines[seq - 1] = change(lines[seq - 1])
    (target / name).write_bytes(b"".join(lines))
    return target


def _refusal(directory: Path, workers: int) -> ExportInvalidError:
    with pytest.raises(ExportInvalidError) as caught:
        verify_export(directory, workers=workers)
    return caught.value


def _flip_digit_after(line: bytes, marker: bytes) -> bytes:
    return _flip_hex_digit(line, line.index(marker) + len(marker))


def _flip_hex_digit(line: bytes, position: int) -> bytes:
    digit = line[position : position + 1]
    return line[:position] + (b"1" if digit != b"1" else b"2") + line[position + 1 :]


@pytest.mark.parametrize(
    ("name", "seq", "change"),
    [
        # The payload's last hex digit: the record no longer decodes as canonical, or its
        # hash changes and the next record's prevHash is wrong.
        (EVENTS_ABI, CHUNK_RECORDS + 7, lambda line: _flip_hex_digit(line, len(line) - 3)),
        # The credit word of a transfer: account/credit disagree with the payload.
        (EVENTS_ABI, 2 * CHUNK_RECORDS + 3, lambda line: _flip_hex_digit(line, 2 + 2 * (8 * 32 + 31))),
        # A notification id in events.jsonl only (same length: the manifest's sizes hold).
        (EVENTS_JSONL, CHUNK_RECORDS - 1, lambda line: _flip_digit_after(line, b'"notificationId":')),
        # The last line's newline turned into a space.
        (EVENTS_JSONL, 9 + 2 * TRANSFERS, lambda line: line[:-1] + b" "),
    ],
)
def test_verify_when_a_file_is_tampered_then_two_workers_name_the_same_first_bad_record(
    exports, tmp_path, name, seq, change
) -> None:
    one, _ = exports
    tampered = _tampered(one, tmp_path / "tampered", name, seq, change)
    alone, shared = _refusal(tampered, 1), _refusal(tampered, 2)
    assert (shared.file, shared.seq, str(shared)) == (alone.file, alone.seq, str(alone))
    assert alone.seq is not None and alone.seq >= seq - 1


def test_verify_when_two_records_are_tampered_then_the_earlier_is_named(exports, tmp_path) -> None:
    one, _ = exports
    tampered = _tampered(
        one, tmp_path / "twice", EVENTS_JSONL, 2 * CHUNK_RECORDS + 5, lambda line: _flip_digit_after(line, b'"seq":')
    )
    lines = (tampered / EVENTS_ABI).read_bytes().splitlines(keepends=True)
    lines[CHUNK_RECORDS + 11] = _flip_hex_digit(lines[CHUNK_RECORDS + 11], 2 + 2 * 63)  # seq of record 2,012
    (tampered / EVENTS_ABI).write_bytes(b"".join(lines))
    alone, shared = _refusal(tampered, 1), _refusal(tampered, 2)
    assert alone.seq == CHUNK_RECORDS + 12
    assert (shared.file, shared.seq, str(shared)) == (alone.file, alone.seq, str(alone))


def test_export_when_a_stored_state_is_bad_then_two_workers_refuse_it_as_one_process_does(tmp_path) -> None:
    app = build_small_ledger(f"sqlite:///{tmp_path / 'source.db'}", transfers=TRANSFERS)
    try:
        # A store whose state at one position is not a JSON object (a corrupted row).
        position = CHUNK_RECORDS + 40
        with app.recorder.datastore.transaction(commit=True) as cursor:
            cursor.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (json.dumps([1]).encode(), position))
        messages = []
        for workers in (1, 2):
            with pytest.raises(ExportError) as caught:
                export_ledger(app, tmp_path / f"out-{workers}", workers=workers)
            messages.append(str(caught.value))
            assert not (tmp_path / f"out-{workers}").exists()
        assert messages[0] == messages[1]
        assert f"notification {position} " in messages[0] and "not a JSON object" in messages[0]
    finally:
        app.close()


def test_worker_count_when_not_positive_then_refused() -> None:
    assert worker_count(3) == 3
    assert worker_count() >= 1
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="positive integer"):
            worker_count(bad)


_uint64 = st.integers(0, 2**64 - 1)
_uint256 = st.integers(0, 2**256 - 1)


@settings(max_examples=200, deadline=None)
@given(
    seq=_uint64,
    prev=st.binary(min_size=32, max_size=32),
    originator=st.uuids(),
    version=_uint64,
    topic=st.text(max_size=80),
    stamp=_uint64,
    account=st.binary(min_size=20, max_size=20),
    credit=_uint256,
    debit=_uint256,
    payload=st.binary(max_size=300),
)
def test_record_encoding_when_any_record_then_bytes_equal_eth_abi_and_decode_back(
    seq, prev, originator, version, topic, stamp, account, credit, debit, payload
) -> None:
    record = EventRecord(seq, prev, originator, version, topic, stamp, account, credit, debit, payload)
    expected = abi_encode([EVENT_RECORD_ABI_TYPE], [record.abi_values()])
    assert record.encode() == expected
    assert decode_record(expected) == record
    # One byte of padding changed: eth_abi would decode it, but it is not canonical.
    padded = bytearray(expected)
    padded[32 + 3 * 32] ^= 1  # the top byte of originatorVersion's word
    with pytest.raises(RecordDecodeError):
        decode_record(bytes(padded))


@given(data=st.binary(max_size=600))
def test_keccak_when_any_bytes_then_equals_eth_hash(data) -> None:
    from eth_hash.auto import keccak as eth_keccak

    from stakeledger.adapters.evm.hashing import keccak

    assert keccak(data) == eth_keccak(data)
    assert keccak(b"") == bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")


@given(address=st.binary(min_size=20, max_size=20))
def test_checksum_address_when_any_address_then_equals_eth_utils(address) -> None:
    from eth_utils import to_checksum_address

    from stakeledger.adapters.evm.hashing import checksum_address

    assert checksum_address(address) == to_checksum_address(address)


@pytest.mark.parametrize("line", [b"0x\n", b"0xABCD\n", b"0xabc\n", b"abcd\n", b"0xabzz\n", b"0x 0ab\n", b"1xabcd\n"])
def test_verify_line_when_not_lowercase_whole_hex_bytes_then_refused(line) -> None:
    from stakeledger.adapters.evm.verification import _decode_line

    with pytest.raises(ExportInvalidError, match="not 0x followed by lowercase hex bytes"):
        _decode_line(line, 1)


def test_cli_export_and_verify_when_workers_given_then_same_files_and_bad_values_refused(
    exports, tmp_path, capsys, monkeypatch
) -> None:
    from tests.evm.hostile import run_cli

    one, _ = exports
    url = f"sqlite:///{one.parent / 'source.db'}"
    out = tmp_path / "cli"
    code, _, err = run_cli(capsys, monkeypatch, "--db", url, "export", "--out", str(out), "--workers", "2")
    assert code == 0, err
    assert all((out / name).read_bytes() == (one / name).read_bytes() for name in ALL_FILES)
    code, stdout, err = run_cli(capsys, monkeypatch, "--json", "verify", str(out), "--workers", "2")
    assert code == 0, err
    assert json.loads(stdout)["lastSeq"] == 9 + 2 * TRANSFERS
    code, _, err = run_cli(capsys, monkeypatch, "verify", str(out), "--workers", "0")
    assert code == 2 and "--workers" in err
    assert not (tmp_path / "never").exists()


@settings(max_examples=50, deadline=None)
@given(hashes=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40))
def test_events_tree_when_built_from_record_hashes_then_equals_the_generic_tree(hashes) -> None:
    from stakeledger.adapters.evm.merkle import EVENTS_LEAF_ENCODING, StandardMerkleTree

    fast = StandardMerkleTree.of_record_hashes(hashes)
    generic = StandardMerkleTree.of(list(enumerate(hashes, start=1)), EVENTS_LEAF_ENCODING)
    assert fast.dump() == generic.dump()
    assert fast.root == generic.root
