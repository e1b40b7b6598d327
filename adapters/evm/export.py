"""``stakeledger export``: the ledger at a log position as files Ethereum tooling can check.

``export_ledger(app, out_dir, at=None, signing_key=None)`` writes the directory that
projections/evm/bundle.py describes and returns an ``ExportSummary``;
``balance_proof(app, account_id, at=None)`` gives one balance row with its Merkle
proof, ready for a contract call. docs/evm-export.md is the reference.

A stored event becomes a record like this:
- ``seq`` counts 1, 2, 3, ... in log order (the store's notification ids may have gaps
  on PostgreSQL; the id is kept in events.jsonl for reference);
- ``originatorId``/``originatorVersion``/``topic`` are the stored event's own;
- ``timestampMicros`` is the event's timestamp in whole microseconds since the epoch;
- ``payload`` is the canonical JSON of the stored state (keys sorted, no spaces), from
  which import rebuilds the stored event exactly;
- for ``Account.Debited``/``Credited``: ``account`` is the address of the account the
  aggregate holds (learnt from its ``Account.Opened``, earlier in the log) and
  ``debit``/``credit`` is ``amount_units``; every other event has the zero address and 0/0.

``at`` is an export seq (the at-th event), not a notification id. A position inside a
transaction (one side of a transfer written, not the other) is refused: its balances
would not add up to the header's totalSupply.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from uuid import UUID

from eth_utils import to_checksum_address

from stakeledger.adapters.evm.addresses import account_address_bytes
from stakeledger.adapters.evm.bundle import (
    ACCOUNTS,
    ALL_FILES,
    BALANCES_TREE,
    DATA_FILES,
    EVENTS_ABI,
    EVENTS_JSONL,
    EVENTS_TREE,
    HEADER,
    MANIFEST,
    ExportError,
    ExportInvalidError,
    FoldError,
    LedgerFold,
    ProgressFn,
    SigningKeyError,
    abi_line,
    accounts_document,
    events_tree_of,
    header_document,
    hex0x,
    json_document,
    jsonl_line,
    make_header,
    manifest_document,
    no_progress,
    notification_id_line,
    tree_document,
)
from stakeledger.adapters.evm.eip712 import Eip712Domain, SnapshotHeader, header_digest, sign_header, signer_address
from stakeledger.adapters.evm.export_files import (
    PARTIAL_FILES,
    ExportDirectory,
    Limit,
    parse_json,
    partial_name,
    stated_sizes,
)
from stakeledger.adapters.evm.hashing import keccak
from stakeledger.adapters.evm.merkle import BALANCES_LEAF_ENCODING, StandardMerkleTree
from stakeledger.adapters.evm.parallel import (
    PARALLEL_MIN_RECORDS,
    chunks,
    export_chunk,
    jsonl_of,
    ordered_map,
    state_parts,
    stitch,
    worker_count,
)
from stakeledger.adapters.evm.records import ZERO_ADDRESS, ZERO_HASH, EventRecord
from stakeledger.adapters.evm.trees import balances_tree
from stakeledger.domain.errors import InvalidInputError, UnknownAccountError
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.log import iter_notifications, max_position

PROGRESS_EVERY = 1_000
PAGE_SIZE = 5_000
WRITE_BLOCK_LINES = 1_000
_KEY = re.compile(r"(0x)?([0-9a-fA-F]{64})")


@dataclass
class Snapshot:
    """The ledger at one log position, everything but the files' bytes."""

    last_seq: int
    record_hashes: list[bytes]
    fold: LedgerFold
    events_tree: StandardMerkleTree
    balances_tree: StandardMerkleTree
    header: SnapshotHeader
    domain: Eip712Domain
    last_notification_id: int

    @property
    def balances_root(self) -> str:
        return self.balances_tree.root

    @property
    def events_root(self) -> str:
        return self.events_tree.root


@dataclass(frozen=True)
class ExportSummary:
    out_dir: Path
    last_seq: int
    events: int
    accounts: int
    balance_rows: int
    events_root: str
    balances_root: str
    snapshot_id: str
    total_supply_units: int
    typed_data_hash: str
    decimals: int | None
    signature: str | None
    signer: str | None
    last_notification_id: int
    seconds: float
    files: dict[str, int] = field(default_factory=dict)  # name -> bytes
    replaced: str | None = None  # "export" (with --force), "interrupted" (a killed export's leftovers) or None

    def as_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out_dir),
            "lastSeq": self.last_seq,
            "events": self.events,
            "accounts": self.accounts,
            "balanceRows": self.balance_rows,
            "eventsRoot": self.events_root,
            "balancesRoot": self.balances_root,
            "snapshotId": self.snapshot_id,
            "totalSupply": str(self.total_supply_units),
            "typedDataHash": self.typed_data_hash,
            "decimals": self.decimals,
            "signature": self.signature,
            "signer": self.signer,
            "lastNotificationId": self.last_notification_id,
            "seconds": round(self.seconds, 3),
            "files": self.files,
            "replaced": self.replaced,
        }


class ChainedRecord(NamedTuple):
    """One record as the exporter writes it, with the facts events.jsonl adds. A named
    tuple: one is made per record, and a frozen dataclass sets each field through
    object.__setattr__."""

    record: EventRecord | None  # None when a worker built the record (``jsonl`` is then its line)
    encoded: bytes
    record_hash: bytes
    notification_id: int
    account_id: str | None
    jsonl: bytes | None = None

    def jsonl_line(self) -> bytes:
        if self.jsonl is not None:
            return self.jsonl
        assert self.record is not None
        return jsonl_line(self.record, self.record_hash, self.notification_id, self.account_id)


# Public API ----------------------------------------------------------------------------


def export_ledger(
    app: StakeLedger,
    out_dir: str | os.PathLike[str],
    *,
    at: int | None = None,
    signing_key: str | None = None,
    domain: Eip712Domain | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> ExportSummary:
    """Write the export of ``app``'s log (up to seq ``at``) into ``out_dir``.

    ``signing_key`` is a 0x-hex secp256k1 private key; with it the header carries an
    EIP-712 signature and the signer's address. Files are written under temporary names
    and renamed at the end, the manifest last; on any refusal nothing is left behind.
    """
    started = time.perf_counter()
    domain = domain or Eip712Domain()
    key = check_signing_key(signing_key) if signing_key is not None else None
    out = Path(out_dir)
    created = not out.exists()
    replaces = _prepare_directory(out, overwrite)
    partial = {name: out / partial_name(name) for name in ALL_FILES}
    digests = {name: hashlib.sha256() for name in DATA_FILES}
    sizes = dict.fromkeys(DATA_FILES, 0)
    ids_digest = hashlib.sha256()
    try:
        with open(partial[EVENTS_ABI], "wb") as abi_file, open(partial[EVENTS_JSONL], "wb") as jsonl_file:
            # Lines are gathered and written, hashed and counted a block at a time: one
            # write and one digest update per file per block, not per record.
            abi_lines: list[bytes] = []
            jsonl_lines: list[bytes] = []
            id_lines: list[bytes] = []

            def write(name: str, handle: Any, lines: list[bytes]) -> None:
                data = b"".join(lines)
                lines.clear()
                handle.write(data)
                digests[name].update(data)
                sizes[name] += len(data)

            def flush() -> None:
                write(EVENTS_ABI, abi_file, abi_lines)
                write(EVENTS_JSONL, jsonl_file, jsonl_lines)
                ids_digest.update(b"".join(id_lines))
                id_lines.clear()

            def sink(item: ChainedRecord) -> None:
                id_lines.append(notification_id_line(item.notification_id))
                abi_lines.append(abi_line(item.encoded))
                jsonl_lines.append(item.jsonl_line())
                if len(abi_lines) >= WRITE_BLOCK_LINES:
                    flush()

            snapshot = build_snapshot(app, at=at, domain=domain, progress=progress, sink=sink, workers=workers)
            flush()
        signature, signer = sign_header(snapshot.header, domain, key) if key else (None, None)
        report = progress or no_progress
        report("writing trees", 0, 4)
        documents = {
            EVENTS_TREE: tree_document(snapshot.events_tree),
            BALANCES_TREE: tree_document(snapshot.balances_tree),
            ACCOUNTS: json_document(accounts_document(snapshot.fold)),
            HEADER: json_document(header_document(snapshot.header, domain, signature, signer)),
        }
        for done, (name, data) in enumerate(documents.items(), start=1):
            partial[name].write_bytes(data)
            digests[name].update(data)
            sizes[name] = len(data)
            report("writing trees", done, 4)
        files = {name: {"bytes": sizes[name], "sha256": digests[name].hexdigest()} for name in DATA_FILES}
        manifest = manifest_document(
            header=snapshot.header,
            fold=snapshot.fold,
            events=snapshot.last_seq,
            last_record_hash=snapshot.record_hashes[-1],
            balance_rows=len(snapshot.balances_tree),
            signer=signer,
            files=files,
            notification_ids=notification_ids_document(snapshot, ids_digest),
        )
        partial[MANIFEST].write_bytes(json_document(manifest))
        # The old manifest goes first and the new one comes last: killed in between, the
        # directory has no manifest and reads as the interrupted export it is.
        (out / MANIFEST).unlink(missing_ok=True)
        for name in ALL_FILES:
            os.replace(partial[name], out / name)
    except BaseException:
        for path in partial.values():
            path.unlink(missing_ok=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    header = snapshot.header
    return ExportSummary(
        out_dir=out,
        last_seq=header.last_seq,
        events=snapshot.last_seq,
        accounts=len(snapshot.fold.by_uuid),
        balance_rows=len(snapshot.balances_tree),
        events_root=hex0x(header.events_root),
        balances_root=hex0x(header.balances_root),
        snapshot_id=hex0x(header.snapshot_id),
        total_supply_units=header.total_supply,
        typed_data_hash=hex0x(header_digest(header, domain)),
        decimals=snapshot.fold.decimals,
        signature=signature,
        signer=signer,
        last_notification_id=snapshot.last_notification_id,
        seconds=time.perf_counter() - started,
        files={name: (out / name).stat().st_size for name in ALL_FILES},
        replaced=replaces,
    )


def notification_ids_document(snapshot: Snapshot, digest: Any) -> dict[str, Any]:
    return {"last": snapshot.last_notification_id, "sha256": digest.hexdigest()}


def balance_proof(
    app: StakeLedger,
    account_id: str,
    *,
    at: int | None = None,
    domain: Eip712Domain | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """The balance row of ``account_id`` at seq ``at`` (default: the end) and its proof."""
    snapshot = build_snapshot(app, at=at, domain=domain or Eip712Domain(), progress=progress)
    return proof_document(
        snapshot.balances_tree,
        snapshot.header,
        account_id,
        snapshot.fold.decimals,
        treasury_id=snapshot.fold.treasury_id,
        known=snapshot.fold.balances,
    )


def proof_from_export(directory: str | os.PathLike[str], account_id: str) -> dict[str, Any]:
    """The same proof read from an export directory (its tree is validated against its header).

    Only the balances tree and the header are checked here; ``verify_export`` checks all.
    The files are read as ``verify`` reads them: regular files only, within the sizes the
    manifest states, JSON of bounded depth.
    """
    from stakeledger.adapters.evm.verification import read_header_file

    with ExportDirectory(directory) as root:
        root.check_names()
        manifest = parse_json(MANIFEST, root.manifest_bytes())
        if not isinstance(manifest, dict):
            raise ExportInvalidError(MANIFEST, "not a JSON object")
        sizes = stated_sizes(manifest)
        header, _, _, _ = read_header_file(root, Limit.stated(HEADER, sizes[HEADER]))
        document = parse_json(
            BALANCES_TREE, root.read(BALANCES_TREE, Limit.stated(BALANCES_TREE, sizes[BALANCES_TREE]))
        )
    try:
        tree = StandardMerkleTree.load(document)
    except ValueError as error:
        raise ExportError(f"{Path(directory) / BALANCES_TREE}: {error}") from None
    if tree.root_bytes != header.balances_root:
        raise ExportError(
            f"{BALANCES_TREE} root {tree.root} is not the header's balancesRoot "
            f"{hex0x(header.balances_root)}: run 'stakeledger verify'"
        )
    decimals = manifest.get("decimals")
    return proof_document(tree, header, account_id, decimals if isinstance(decimals, int) else None)


def check_signing_key(text: str) -> str:
    """A 0x-hex secp256k1 private key, checked; the key itself never appears in an error."""
    match = _KEY.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise SigningKeyError("a signing key is 0x followed by 64 hex digits (a secp256k1 private key)")
    key = "0x" + match.group(2).lower()
    try:
        signer_address(key)
    except (ValueError, TypeError):
        raise SigningKeyError(
            "the signing key is not a valid secp256k1 private key (zero or above the curve order)"
        ) from None
    return key


def load_signing_key(path: str | os.PathLike[str]) -> str:
    """Read a key file holding one 0x-hex private key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SigningKeyError(
            f"cannot read signing key file {path}: {getattr(error, 'strerror', None) or error}"
        ) from None
    try:
        return check_signing_key(text)
    except SigningKeyError as error:
        raise SigningKeyError(f"{path}: {error}") from None


def make_domain(
    name: str = "stakeledger", version: str = "1", chain_id: int = 1, verifying_contract: str = "0x" + "00" * 20
) -> Eip712Domain:
    try:
        return Eip712Domain(name=name, version=version, chain_id=chain_id, verifying_contract=verifying_contract)
    except ValueError as error:
        raise InvalidInputError(f"EIP-712 domain: {error}") from None


# Building the snapshot -------------------------------------------------------------------


def build_snapshot(
    app: StakeLedger,
    *,
    at: int | None = None,
    domain: Eip712Domain | None = None,
    progress: ProgressFn | None = None,
    sink: Any = None,
    decode: bool = False,
    workers: int | None = None,
) -> Snapshot:
    """Replay the log into records, trees and the header; ``sink(ChainedRecord)`` sees each record.

    ``decode`` also turns every stored event into its domain event with the app's mapper
    (import uses it to prove the rebuilt store reads back).
    """
    domain = domain or Eip712Domain()
    if at is not None and (isinstance(at, bool) or not isinstance(at, int) or at < 1):
        raise InvalidInputError(f"--at is an export seq (1 for the first event), got {at!r}")
    report = progress or no_progress
    fold = LedgerFold()
    hashes: list[bytes] = []
    last_notification_id = 0
    until = max_position(app)
    total = min(at, until) if at is not None else until
    report("exporting events", 0, total)
    for seq, item in enumerate(iter_records(app, fold, until=until, limit=at, decode=decode, workers=workers), 1):
        hashes.append(item.record_hash)
        last_notification_id = item.notification_id
        if sink is not None:
            sink(item)
        if seq % PROGRESS_EVERY == 0:
            report("exporting events", seq, max(total, seq))
    last_seq = len(hashes)
    report("exporting events", last_seq, last_seq)
    if last_seq == 0:
        raise ExportError("the log is empty: nothing to export (run 'stakeledger init' first)")
    if at is not None and last_seq < at:
        raise ExportError(f"--at {at} is beyond the last event (seq {last_seq})")
    if fold.net_units != 0:
        raise ExportError(
            f"seq {last_seq} falls inside a transaction (a transfer has one side only, balances are off by "
            f"{fold.net_units} units); the nearest earlier consistent position is seq {fold.last_balanced_seq}"
        )
    rows = fold.row_balances()
    if not rows:
        raise ExportError(f"no account besides the treasury at seq {last_seq}: a balances tree needs a row")
    report("building trees", 0, 2)
    events = events_tree_of(hashes)
    report("building trees", 1, 2)
    balances = balances_tree(rows)
    report("building trees", 2, 2)
    header = make_header(domain, last_seq, events.root_bytes, balances.root_bytes, fold.total_supply_units)
    return Snapshot(last_seq, hashes, fold, events, balances, header, domain, last_notification_id)


def iter_records(
    app: StakeLedger,
    fold: LedgerFold,
    *,
    until: int,
    limit: int | None = None,
    decode: bool = False,
    workers: int | None = None,
) -> Iterator[ChainedRecord]:
    """Stored notifications (ids up to ``until``) as chained records, seq from 1.

    ``workers`` processes share the per-record work (``adapters.evm.parallel``); by
    default one per core once the log is long enough to repay starting them, and none
    with ``decode`` (the mapper stays in this process). The records are the same."""
    mapper = app.mapper
    if getattr(mapper, "cipher", None) is not None or getattr(mapper, "compressor", None) is not None:
        raise ExportError("this store encrypts or compresses its events; the export needs plain JSON states")
    if limit is not None and limit <= 0:
        return
    count = worker_count(workers)
    size = until if limit is None else min(until, limit)
    notifications = _notifications(app, until, limit)
    if decode or count < 2 or (workers is None and size < PARALLEL_MIN_RECORDS):
        yield from _serial_records(notifications, fold, mapper if decode else None)
    else:
        yield from _parallel_records(notifications, fold, count)


def _notifications(app: StakeLedger, until: int, limit: int | None) -> Iterator[Any]:
    for seq, notification in enumerate(iter_notifications(app, until=until, page_size=PAGE_SIZE), start=1):
        yield notification
        if limit is not None and seq >= limit:
            return


def _originator_uuid(notification: Any) -> UUID:
    originator_id = notification.originator_id
    return originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))


def _refused(notification: Any, seq: int, originator_id: UUID, error: Exception) -> ExportError:
    return ExportError(
        f"event at notification {notification.id} (seq {seq}, {notification.topic}, "
        f"aggregate {originator_id} v{notification.originator_version}): {error}"
    )


def _serial_records(notifications: Iterator[Any], fold: LedgerFold, mapper: Any) -> Iterator[ChainedRecord]:
    prev_hash = ZERO_HASH
    for seq, notification in enumerate(notifications, start=1):
        originator_id = _originator_uuid(notification)
        try:
            state, payload, stamp = state_parts(bytes(notification.state))
            entry, credit, debit = fold.movement(originator_id, notification.topic, state)
        except (FoldError, TypeError, ValueError) as error:
            raise _refused(notification, seq, originator_id, error) from None
        if mapper is not None:
            try:
                mapper.to_domain_event(notification)
            except Exception as error:  # any failure to read an event back is the finding
                raise ExportError(
                    f"event at notification {notification.id} (seq {seq}) does not decode: "
                    f"{type(error).__name__}: {error}"
                ) from None
        fold.settle(seq)
        item = _chained(seq, prev_hash, originator_id, notification, stamp, entry, credit, debit, payload)
        yield item
        prev_hash = item.record_hash


def _chained(
    seq: int,
    prev_hash: bytes,
    originator_id: UUID,
    notification: Any,
    stamp: int,
    entry: Any,
    credit: int,
    debit: int,
    payload: bytes,
) -> ChainedRecord:
    if entry is not None:
        account, account_id = entry.address, entry.account_id
    else:
        account, account_id = ZERO_ADDRESS, None
    record = EventRecord(
        seq,
        prev_hash,
        originator_id,
        notification.originator_version,
        notification.topic,
        stamp,
        account,
        credit,
        debit,
        payload,
    )
    encoded = record.encode()
    return ChainedRecord(record, encoded, keccak(encoded), notification.id, account_id)


def _parallel_records(notifications: Iterator[Any], fold: LedgerFold, workers: int) -> Iterator[ChainedRecord]:
    """The records of ``_serial_records``, the per-record work done by ``workers`` processes."""
    sent: deque[list[Any]] = deque()

    def tasks() -> Iterator[tuple[int, list[tuple]]]:
        first = 1
        for batch in chunks(notifications):
            sent.append(batch)
            rows = [(n.id, _originator_uuid(n).bytes, n.originator_version, n.topic, bytes(n.state)) for n in batch]
            yield first, rows
            first += len(batch)

    prev_hash = ZERO_HASH
    seq = 0
    for results in ordered_map(export_chunk, tasks(), workers):
        batch = sent.popleft()
        for notification, result in zip(batch, results):
            seq += 1
            originator_id = _originator_uuid(notification)
            kind = result[0]
            if kind == "state":
                raise _refused(notification, seq, originator_id, ValueError(result[1]))
            facts = result[2]
            try:
                entry, credit, debit = fold.movement(originator_id, notification.topic, facts)
            except FoldError as error:
                raise _refused(notification, seq, originator_id, error) from None
            fold.settle(seq)
            if kind == "raise":
                raise result[1]
            _, encoded, _, middle, tail, worker_credit, worker_debit = result
            if (credit, debit) != (worker_credit, worker_debit):
                # Amounts the worker could not encode: build the record here, as one process
                # does (and fail as it does).
                _, payload, stamp = state_parts(bytes(notification.state))
                item = _chained(seq, prev_hash, originator_id, notification, stamp, entry, credit, debit, payload)
            else:
                account, account_id = (entry.address, entry.account_id) if entry is not None else (ZERO_ADDRESS, None)
                final, record_hash = stitch(encoded, prev_hash, account)
                line = jsonl_of(seq, notification.id, record_hash, prev_hash, middle, account, account_id, tail)
                item = ChainedRecord(None, final, record_hash, notification.id, account_id, line)
            yield item
            prev_hash = item.record_hash


# Proofs -----------------------------------------------------------------------------------


def proof_document(
    tree: StandardMerkleTree,
    header: SnapshotHeader,
    account_id: str,
    decimals: int | None,
    *,
    treasury_id: str | None = None,
    known: dict[str, int] | None = None,
) -> dict[str, Any]:
    if treasury_id is not None and account_id == treasury_id:
        raise ExportError(
            f"the treasury {account_id!r} has no balance row: its balance is minus the "
            f"header's totalSupply ({header.total_supply} units)"
        )
    try:
        address_bytes = account_address_bytes(account_id)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"account id: {error}") from None
    address = to_checksum_address(address_bytes)
    index = next((i for i, (row_address, _) in tree.entries() if row_address == address_bytes), None)
    if index is None:
        if known is not None and account_id not in known:
            raise UnknownAccountError(f"unknown account {account_id!r} at seq {header.last_seq}")
        raise UnknownAccountError(f"account {account_id!r} ({address}) has no row in the balances tree")
    _, balance = tree.at(index)
    proof = tree.get_proof(index)
    leaf = tree.leaf_hash((address, balance))
    root = tree.root
    return {
        "account": account_id,
        "address": address,
        "balance": str(balance),
        "decimals": decimals,
        "lastSeq": header.last_seq,
        "snapshotId": hex0x(header.snapshot_id),
        "eventsRoot": hex0x(header.events_root),
        "balancesRoot": root,
        "totalSupply": str(header.total_supply),
        "leafEncoding": list(BALANCES_LEAF_ENCODING),
        "leaf": hex0x(leaf),
        "proof": proof,
        "treeIndex": index,
        "contractCall": {
            "function": "verify_balance(bytes32 root, address account, uint256 balance, bytes32[] proof)",
            "args": [root, address, str(balance), proof],
            "openZeppelin": "MerkleProof.verify(proof, balancesRoot, leaf)",
        },
    }


def _prepare_directory(out: Path, overwrite: bool) -> str | None:
    """Make ``out`` ready for an export; what it replaces: ``"export"``, ``"interrupted"`` or None.

    A directory with a manifest holds a complete export (the manifest is renamed into
    place last) and is replaced only with ``overwrite``. Export files without a manifest,
    or ``.NAME.partial`` files, are what a killed export leaves: they are replaced without
    ``overwrite``. Any other file is refused, with or without it: ``verify`` refuses a
    file the manifest does not list, so the export would not verify.
    """
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ExportError(f"{out} exists and is not a directory")
    replaces = None
    if out.is_dir():
        try:
            names = sorted(os.listdir(out))
        except OSError as error:
            raise ExportError(f"cannot read {out}: {error.strerror or error}") from None
        strangers = [name for name in names if name not in ALL_FILES and name not in PARTIAL_FILES]
        if strangers:
            raise ExportError(
                f"{out} holds files that are not part of an export ({', '.join(strangers[:5])}"
                f"{', …' if len(strangers) > 5 else ''}); verify would refuse them: choose an empty or new directory"
            )
        if MANIFEST in names:
            if not overwrite:
                present = [name for name in ALL_FILES if name in names]
                raise ExportError(
                    f"{out} already holds an export ({', '.join(present)}); choose another "
                    "directory or pass --force to replace it"
                )
            replaces = "export"
        elif names:
            replaces = "interrupted"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"cannot create {out}: {error.strerror or error}") from None
    return replaces
