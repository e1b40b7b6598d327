"""``stakeledger verify DIR``: check an export, every byte of it, and name the first problem.

The records in events.abi are the source of truth. Reading them in order, ``verify``
checks what no Merkle tree can prove:

- each line is the canonical ABI encoding of one record (``decode`` re-encodes and compares);
- ``seq`` runs 1, 2, 3, ... with no gap, and ``prevHash`` is keccak256 of the previous
  record's encoding (zero for seq 1);
- the payload is canonical JSON, decodes as an event of its topic with the ledger's own
  mapper, and its timestamp is ``timestampMicros``;
- ``account``/``credit``/``debit`` are what the payload says (the account's address for
  ``Account.Debited``/``Credited``, the zero address and 0/0 for everything else), no
  account but the treasury goes negative, and each account is opened once;
- events.jsonl says the same thing line for line.

Then it rebuilds every other file from those records and compares bytes, after the
checks that give the clearest message: one balance row per account (the treasury
excepted), rows that equal the replayed balances, rows that sum to the header's
totalSupply, a totalSupply that equals the treasury's issuance (its debits minus its
credits), roots equal to the trees' roots, the snapshot id, the EIP-712 hash and, when
signed, a signature that recovers to the stated signer. Finally every file's size and
sha256 must match the manifest, which must itself be byte-identical to its rebuild.

The first problem raises ``ExportInvalidError`` (code ``EXPORT_INVALID``) naming the
file and, where there is one, the record's seq.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import deque
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import zip_longest
from pathlib import Path
from typing import Any
from uuid import UUID

from eth_utils import is_checksum_address, is_hex_address, to_checksum_address
from eventsourcing.persistence import Mapper, StoredEvent

from stakeledger.adapters.evm.abi_values import row_codec
from stakeledger.adapters.evm.bundle import (
    ACCOUNTS,
    BALANCES_TREE,
    DATA_FILES,
    EVENTS_ABI,
    EVENTS_JSONL,
    EVENTS_TREE,
    FORMAT,
    HEADER,
    MANIFEST,
    ExportInvalidError,
    FoldError,
    LedgerFold,
    ProgressFn,
    accounts_document,
    checksum_address,
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
from stakeledger.adapters.evm.canonical import canonical_json, canonical_state, timestamp_micros
from stakeledger.adapters.evm.eip712 import Eip712Domain, SnapshotHeader, recover_signer
from stakeledger.adapters.evm.export_files import (
    HEADER_MAX_BYTES,
    MAX_JSON_DEPTH,
    ExportDirectory,
    Limit,
    json_too_deep,
    parse_json,
    stated_sizes,
)
from stakeledger.adapters.evm.hashing import keccak
from stakeledger.adapters.evm.merkle import (
    BALANCES_LEAF_ENCODING,
    EVENTS_LEAF_ENCODING,
    InvalidTreeError,
    StandardMerkleTree,
)
from stakeledger.adapters.evm.parallel import (
    CHUNK_RECORDS,
    FOLD_KEYS,
    PARALLEL_MIN_RECORDS,
    ordered_map,
    worker_count,
)
from stakeledger.adapters.evm.records import (
    EVENT_RECORD_ABI_TYPE,
    EVENT_RECORD_FIELDS,
    ZERO_ADDRESS,
    ZERO_HASH,
    EventRecord,
    decode_record,
)
from stakeledger.adapters.evm.trees import balances_tree
from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.errors import InvalidInputError

PROGRESS_EVERY = 1_000
_HEX_DIGITS = b"0123456789abcdef"
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_BYTES32 = re.compile(r"0x[0-9a-f]{64}")
_SIGNATURE = re.compile(r"0x[0-9a-f]{130}")


@dataclass(frozen=True)
class VerifiedExport:
    directory: Path
    last_seq: int
    accounts: int
    balance_rows: int
    events_root: str
    balances_root: str
    snapshot_id: str
    total_supply_units: int
    typed_data_hash: str
    decimals: int | None
    signer: str | None
    domain: Eip712Domain
    seconds: float
    record_hashes: list[bytes] = field(repr=False, default_factory=list)
    signer_pinned: bool = False
    file_sizes: dict[str, int] = field(repr=False, default_factory=dict)  # each data file's verified size

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "directory": str(self.directory),
            "lastSeq": self.last_seq,
            "accounts": self.accounts,
            "balanceRows": self.balance_rows,
            "eventsRoot": self.events_root,
            "balancesRoot": self.balances_root,
            "snapshotId": self.snapshot_id,
            "totalSupply": str(self.total_supply_units),
            "typedDataHash": self.typed_data_hash,
            "decimals": self.decimals,
            "signer": self.signer,
            # Unpinned, a pass proves integrity, not origin: anyone can sign an export.
            "signerPinned": self.signer_pinned,
            "domain": {
                "name": self.domain.name,
                "version": self.domain.version,
                "chainId": self.domain.chain_id,
                "verifyingContract": self.domain.verifying_contract,
            },
            "seconds": round(self.seconds, 3),
        }


def verify_export(
    directory: str | Path,
    *,
    progress: ProgressFn | None = None,
    signer: str | None = None,
    require_signature: bool = False,
    workers: int | None = None,
) -> VerifiedExport:
    """Check the export in ``directory``; raise ExportInvalidError at the first problem.

    ``workers`` processes check the records (``adapters.evm.parallel``): by default one
    per core when the export is long enough to repay starting them; 1 checks in this
    process. The first problem found, and its message, do not depend on it.

    Unpinned, a pass proves integrity: the files are one consistent, complete export, signed
    by whoever ``header.json`` names, or by nobody. ``signer`` (a 0x address) pins the
    origin: an unsigned export, or one signed by another key, is refused.
    ``require_signature`` refuses an unsigned export but accepts any signer; a pinned
    signer implies it.
    """
    started = time.perf_counter()
    report = progress or no_progress
    pinned = pinned_signer(signer)
    require_signature = require_signature or pinned is not None
    with ExportDirectory(directory) as root:
        return _verify(root, report, started, pinned, require_signature, workers)


def pinned_signer(signer: str | None) -> str | None:
    """The checksummed form of a ``--signer`` address; InvalidInputError for anything else."""
    if signer is None:
        return None
    if not isinstance(signer, str) or not is_hex_address(signer):
        raise InvalidInputError(f"--signer must be a 0x address of 40 hex digits, got {signer!r}")
    digits = signer[2:] if signer[:2] in ("0x", "0X") else signer
    if not signer.startswith("0x") or (
        digits not in (digits.lower(), digits.upper()) and not is_checksum_address(signer)
    ):
        raise InvalidInputError(f"--signer {signer} is not 0x + 40 hex digits with a valid EIP-55 checksum")
    return to_checksum_address(signer)


def check_signer(signer: str | None, pinned: str | None, require_signature: bool) -> None:
    """Refuse an unsigned header when a signature is required, and any signer but the pinned one."""
    if signer is None and require_signature:
        wanted = f"the pinned signer {pinned}" if pinned else "a signature (--require-signature)"
        raise ExportInvalidError(
            HEADER, f"the export is unsigned (signature and signer are null), but {wanted} is required"
        )
    if pinned is not None and signer != pinned:
        raise ExportInvalidError(HEADER, f"the export is signed by {signer}, not by the pinned signer {pinned}")


def _verify(
    root: ExportDirectory,
    report: ProgressFn,
    started: float,
    pinned: str | None,
    require_signature: bool,
    workers: int | None = None,
) -> VerifiedExport:
    root.check_names()
    manifest_bytes = root.manifest_bytes()
    manifest = parse_json(MANIFEST, manifest_bytes)
    _check_manifest_shape(manifest)
    claimed_seq = manifest["lastSeq"]
    limits = {name: Limit.stated(name, size) for name, size in stated_sizes(manifest).items()}
    limits[HEADER] = _header_limit(limits[HEADER])
    if require_signature:
        # The header's claim, checked now so a wrong origin is refused before the long part;
        # the signature is proven to recover to this signer below, and checked again there.
        _, _, _, claimed_signer = parse_header(parse_json(HEADER, root.read(HEADER, limits[HEADER])))
        check_signer(claimed_signer, pinned, require_signature)

    digests = {name: hashlib.sha256() for name in DATA_FILES}
    sizes = dict.fromkeys(DATA_FILES, 0)
    fold = LedgerFold()
    ids = _NotificationIds()
    hashes = _check_records(root, limits, fold, digests, sizes, ids, claimed_seq, report, workers)
    last_seq = len(hashes)
    if last_seq != claimed_seq:
        raise ExportInvalidError(MANIFEST, f"lastSeq says {claimed_seq}, but events.abi holds {last_seq} records")
    if fold.net_units != 0:
        raise ExportInvalidError(
            EVENTS_ABI,
            f"the log ends inside a transaction: balances net to {fold.net_units} units, not zero",
            seq=last_seq,
        )

    def whole(name: str) -> bytes:
        data = root.read(name, limits[name])
        digests[name].update(data)
        sizes[name] = len(data)
        return data

    report("checking trees and header", 0, 4)
    _check_accounts(whole(ACCOUNTS), fold)
    header_bytes = whole(HEADER)
    header_json = parse_json(HEADER, header_bytes)
    header, domain, signature, signer = parse_header(header_json)
    check_signer(signer, pinned, require_signature)
    issuance = fold.total_supply_units
    if header.total_supply != issuance:
        raise ExportInvalidError(
            HEADER,
            f"totalSupply {header.total_supply} is not the treasury's issuance in the "
            f"records ({issuance}: its debits minus its credits)",
        )
    report("checking trees and header", 1, 4)
    events = events_tree_of(hashes)
    _check_events_tree(whole(EVENTS_TREE), events)
    if header.events_root != events.root_bytes:
        raise ExportInvalidError(
            HEADER, f"eventsRoot {hex0x(header.events_root)} is not the root of the records ({events.root})"
        )
    report("checking trees and header", 2, 4)
    balances = _check_balances_tree(whole(BALANCES_TREE), fold, header.total_supply)
    if header.balances_root != balances.root_bytes:
        raise ExportInvalidError(
            HEADER,
            f"balancesRoot {hex0x(header.balances_root)} is not the root of the "
            f"balances in the records ({balances.root})",
        )
    report("checking trees and header", 3, 4)
    expected_header = make_header(domain, last_seq, events.root_bytes, balances.root_bytes, issuance)
    _check_header(header_bytes, header_json, header, expected_header, domain, signature, signer)
    report("checking trees and header", 4, 4)

    files = {name: {"bytes": sizes[name], "sha256": digests[name].hexdigest()} for name in DATA_FILES}
    expected_manifest = manifest_document(
        header=expected_header,
        fold=fold,
        events=last_seq,
        last_record_hash=hashes[-1],
        balance_rows=len(balances),
        signer=signer,
        files=files,
        notification_ids=ids.document(),
    )
    _check_manifest(manifest_bytes, manifest, expected_manifest)
    return VerifiedExport(
        directory=root.path,
        last_seq=last_seq,
        accounts=len(fold.by_uuid),
        balance_rows=len(balances),
        events_root=events.root,
        balances_root=balances.root,
        snapshot_id=hex0x(expected_header.snapshot_id),
        total_supply_units=issuance,
        typed_data_hash=header_json["typedDataHash"],
        decimals=fold.decimals,
        signer=signer,
        domain=domain,
        seconds=time.perf_counter() - started,
        record_hashes=hashes,
        signer_pinned=pinned is not None,
        file_sizes=dict(sizes),
    )


def _header_limit(stated: Limit) -> Limit:
    if stated.size > HEADER_MAX_BYTES:
        return Limit.ceiling(HEADER, HEADER_MAX_BYTES)
    return stated


# The records ------------------------------------------------------------------------------


class _NotificationIds:
    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.last = 0

    def add(self, notification_id: int) -> None:
        self.digest.update(notification_id_line(notification_id))
        self.last = notification_id

    def document(self) -> dict[str, Any]:
        return {"last": self.last, "sha256": self.digest.hexdigest()}


def _check_records(
    root: ExportDirectory,
    limits: dict[str, Limit],
    fold: LedgerFold,
    digests: dict[str, Any],
    sizes: dict[str, int],
    ids: _NotificationIds,
    claimed_seq: int,
    report: ProgressFn,
    workers: int | None = None,
) -> list[bytes]:
    checker = _RecordChecker(fold, digests, sizes, ids)
    report("verifying events", 0, claimed_seq)
    abi_lines = root.lines(EVENTS_ABI, limits[EVENTS_ABI])
    jsonl_lines = root.lines(EVENTS_JSONL, limits[EVENTS_JSONL])
    count = worker_count(workers)
    parallel = count > 1 and (workers is not None or claimed_seq >= PARALLEL_MIN_RECORDS)
    with closing(abi_lines), closing(jsonl_lines):
        pairs = enumerate(zip_longest(abi_lines, jsonl_lines), start=1)
        if parallel:
            checker.parallel(pairs, count, claimed_seq, report)
        else:
            for seq, (abi_raw, jsonl_raw) in pairs:
                checker.one(seq, abi_raw, jsonl_raw)
                if seq % PROGRESS_EVERY == 0:
                    report("verifying events", seq, max(seq, claimed_seq))
    hashes = checker.hashes
    if not hashes:
        raise ExportInvalidError(EVENTS_ABI, "holds no records")
    report("verifying events", len(hashes), len(hashes))
    return hashes


class _RecordChecker:
    """The records' checks in order: ``one`` is the whole check of a record in this
    process; ``parallel`` has workers do what a record alone decides (``precheck_record``)
    and finishes each record here, handing any record a worker could not clear, or whose
    sequential checks fail, to ``one``'s code, so it fails exactly as one process fails."""

    def __init__(self, fold: LedgerFold, digests: dict[str, Any], sizes: dict[str, int], ids: _NotificationIds):
        self.fold = fold
        self.digests = digests
        self.sizes = sizes
        self.ids = ids
        self.mapper = ledger_mapper()
        self.hashes: list[bytes] = []
        self.prev_hash = ZERO_HASH
        self.previous_notification = 0

    def _count(self, name: str, raw: bytes) -> None:
        self.digests[name].update(raw)
        self.sizes[name] += len(raw)

    def one(self, seq: int, abi_raw: bytes | None, jsonl_raw: bytes | None) -> None:
        if abi_raw is None:
            raise ExportInvalidError(EVENTS_JSONL, f"has more lines than events.abi ({seq - 1} records)", line=seq)
        self._count(EVENTS_ABI, abi_raw)
        record, encoded = _decode_line(abi_raw, seq)
        if record.seq != seq:
            raise ExportInvalidError(
                EVENTS_ABI,
                f"the record says seq {record.seq}, but seq must run 1, 2, 3, … with no gap (line {seq})",
                seq=seq,
            )
        if record.prev_hash != self.prev_hash:
            raise ExportInvalidError(
                EVENTS_ABI,
                f"prevHash {hex0x(record.prev_hash)} is not keccak256 of record {seq - 1} ({hex0x(self.prev_hash)})",
                seq=seq,
            )
        record_hash = keccak(encoded)
        entry = _check_payload(record, seq, self.fold, self.mapper)
        if jsonl_raw is None:
            raise ExportInvalidError(EVENTS_JSONL, f"ends after {seq - 1} lines; events.abi has more", seq=seq)
        self._count(EVENTS_JSONL, jsonl_raw)
        self.previous_notification = _check_jsonl(
            jsonl_raw, record, record_hash, entry, seq, self.previous_notification
        )
        self._done(record_hash)

    def _done(self, record_hash: bytes) -> None:
        self.ids.add(self.previous_notification)
        self.hashes.append(record_hash)
        self.prev_hash = record_hash

    def parallel(self, pairs: Iterator[tuple[int, tuple]], workers: int, claimed_seq: int, report: ProgressFn) -> None:
        sent: deque[list[tuple[int, bytes | None, bytes | None]]] = deque()
        stopped: list[BaseException] = []

        def tasks() -> Iterator[tuple[int, list[bytes], list[bytes | None]]]:
            # Lines are read ahead of the checks: a read that fails (a file past its stated
            # size) is raised only once every record before it has been checked.
            batch: list[tuple[int, bytes | None, bytes | None]] = []
            try:
                for seq, (abi_raw, jsonl_raw) in pairs:
                    batch.append((seq, abi_raw, jsonl_raw))
                    if abi_raw is None:
                        break  # ``one`` names it, in its turn
                    if len(batch) >= CHUNK_RECORDS:
                        sent.append(batch)
                        yield batch[0][0], [a for _, a, _ in batch], [j for _, _, j in batch]
                        batch = []
            except ExportInvalidError as error:
                stopped.append(error)
            if batch:
                sent.append(batch)
                clean = [item for item in batch if item[1] is not None]
                yield batch[0][0], [a for _, a, _ in clean], [j for _, _, j in clean]

        for results in ordered_map(verify_chunk, tasks(), workers):
            batch = sent.popleft()
            for index, (seq, abi_raw, jsonl_raw) in enumerate(batch):
                result = results[index] if index < len(results) else None
                if result is None or abi_raw is None or jsonl_raw is None:
                    self.one(seq, abi_raw, jsonl_raw)
                else:
                    self._finish(seq, abi_raw, jsonl_raw, result)
                if seq % PROGRESS_EVERY == 0:
                    report("verifying events", seq, max(seq, claimed_seq))
        if stopped:
            raise stopped[0]

    def _finish(self, seq: int, abi_raw: bytes, jsonl_raw: bytes, result: tuple) -> None:
        """The sequential checks of a record a worker cleared."""
        record_seq, prev_hash, id_bytes, topic, account, credit, debit, facts, record_hash, nid, account_id = result
        if record_seq != seq or prev_hash != self.prev_hash:
            self.one(seq, abi_raw, jsonl_raw)  # raises, naming the problem
            return
        self._count(EVENTS_ABI, abi_raw)
        entry = _check_movement(UUID(bytes=id_bytes), topic, account, credit, debit, facts, seq, self.fold)
        self._count(EVENTS_JSONL, jsonl_raw)
        expected_account_id = entry.account_id if entry is not None else None
        if nid <= self.previous_notification or expected_account_id != account_id:
            record, _ = _decode_line(abi_raw, seq)
            _check_jsonl(jsonl_raw, record, record_hash, entry, seq, self.previous_notification)  # raises
            raise AssertionError("a jsonl line a worker cleared failed here but not in the full check")
        self.previous_notification = nid
        self._done(record_hash)


def precheck_record(abi_raw: bytes, jsonl_raw: bytes, seq: int, mapper: Mapper) -> tuple | None:
    """What a record alone decides, for a worker: None when any of it fails (the parent's
    full check then names the problem), else the facts the sequential checks need."""
    record, encoded = _decode_line(abi_raw, seq)
    record_hash = keccak(encoded)
    state = _check_payload_alone(record, seq, mapper)
    facts = {key: state[key] for key in FOLD_KEYS if key in state}
    found = _line_ids(jsonl_raw, record.seq)
    if found is None:
        return None
    nid, account_id = found
    if jsonl_line(record, record_hash, nid, account_id) != jsonl_raw:
        return None
    return (
        record.seq,
        record.prev_hash,
        record.originator_id.bytes,
        record.topic,
        record.account,
        record.credit,
        record.debit,
        facts,
        record_hash,
        nid,
        account_id,
    )


_ACCOUNT_ID_KEY = b'"accountId":'
_CREDIT_KEY = b',"credit":"'


def _line_ids(raw: bytes, seq: int) -> tuple[int, str | None] | None:
    """(notificationId, accountId) read from where a canonical events.jsonl line holds
    them, without parsing the whole line (it embeds the payload); None when they are not
    there as an int and a string or null.

    The caller rebuilds the line from these and the record and compares bytes, so a
    wrong read can only make it decline (the parent's full check then names the
    problem); on a canonical line the read is exact: outside a JSON string every ``"``
    is bare, inside one every ``"`` is escaped, so the first ``"accountId":`` is the key
    and the first ``,"credit":"`` after it ends its value, as json.loads would read them."""
    prefix = b'{"seq":%d,"notificationId":' % seq
    if not raw.startswith(prefix):
        return None
    end = raw.find(b",", len(prefix))
    digits = raw[len(prefix) : end]
    if end < 0 or not digits.isdigit():
        return None
    at = raw.find(_ACCOUNT_ID_KEY, end)
    stop = raw.find(_CREDIT_KEY, at)
    if at < 0 or stop < 0:
        return None
    account_id = json.loads(raw[at + len(_ACCOUNT_ID_KEY) : stop])
    if not (account_id is None or isinstance(account_id, str)):
        return None
    return int(digits), account_id


_worker_mapper: Mapper | None = None  # a verify worker's ledger mapper, made once


def verify_chunk(first_seq: int, abi_lines: list[bytes], jsonl_lines: list[bytes | None]) -> list[tuple | None]:
    """A worker's task: ``precheck_record`` for lines ``first_seq``, ... ; None for a record
    it could not clear (the parent then checks it the one-process way and names the problem)."""
    global _worker_mapper
    if _worker_mapper is None:
        _worker_mapper = ledger_mapper()
    out: list[tuple | None] = []
    for offset, (abi_raw, jsonl_raw) in enumerate(zip(abi_lines, jsonl_lines)):
        try:
            out.append(precheck_record(abi_raw, jsonl_raw, first_seq + offset, _worker_mapper))
        except Exception:  # noqa: BLE001 - anything odd: the parent's one-process check names it
            out.append(None)
    return out


def _decode_line(raw: bytes, seq: int) -> tuple[Any, bytes]:
    if not raw.endswith(b"\n"):
        raise ExportInvalidError(EVENTS_ABI, "the line does not end with a newline (truncated file?)", seq=seq)
    text = raw[:-1]
    # 0x, then one or more whole bytes in lowercase hex (a C pass over the line, no regex).
    if not (len(text) >= 4 and len(text) % 2 == 0 and text[:2] == b"0x" and not text[2:].translate(None, _HEX_DIGITS)):
        raise ExportInvalidError(EVENTS_ABI, "the line is not 0x followed by lowercase hex bytes", seq=seq)
    encoded = bytes.fromhex(text[2:].decode("ascii"))
    try:
        return decode_record(encoded), encoded
    except Exception as error:  # eth_abi raises several kinds (OverflowError on a huge offset, ...)
        raise ExportInvalidError(
            EVENTS_ABI, f"not a canonical {EVENT_RECORD_ABI_TYPE} record: {error}", seq=seq
        ) from None


def _check_payload(record: Any, seq: int, fold: LedgerFold, mapper: Mapper) -> Any:
    state = _check_payload_alone(record, seq, mapper)
    return _check_movement(
        record.originator_id, record.topic, record.account, record.credit, record.debit, state, seq, fold
    )


def _check_payload_alone(record: Any, seq: int, mapper: Mapper) -> dict[str, Any]:
    """The payload's checks that need no other record: canonical, decodable, on time.
    Returns the payload's JSON object (json.loads of it)."""
    if json_too_deep(record.payload):
        raise ExportInvalidError(
            EVENTS_ABI, f"the payload nests deeper than {MAX_JSON_DEPTH} levels: refused unparsed", seq=seq
        )
    state = canonical_state(record.payload)
    if state is None:
        raise ExportInvalidError(
            EVENTS_ABI, "the payload is not canonical JSON (a JSON object, keys sorted, no spaces)", seq=seq
        )
    try:
        event = mapper.to_domain_event(
            StoredEvent(
                originator_id=record.originator_id,
                originator_version=record.originator_version,
                topic=record.topic,
                state=record.payload,
            )
        )
        event_micros = timestamp_micros(event.timestamp)
    except Exception as error:  # whatever the mapper or the event class raise, the record is bad
        raise ExportInvalidError(
            EVENTS_ABI,
            f"the payload does not decode as a {record.topic!r} event: {type(error).__name__}: {error}",
            seq=seq,
        ) from None
    if event_micros != record.timestamp_micros:
        raise ExportInvalidError(
            EVENTS_ABI,
            f"timestampMicros {record.timestamp_micros} is not the payload's timestamp ({event_micros})",
            seq=seq,
        )
    return state


def _check_movement(
    originator_id: UUID,
    topic: str,
    account: bytes,
    record_credit: int,
    record_debit: int,
    state: dict[str, Any],
    seq: int,
    fold: LedgerFold,
) -> Any:
    """The record's account, credit and debit against the fold's replay of its payload."""
    try:
        entry, credit, debit = fold.movement(originator_id, topic, state)
    except FoldError as error:
        raise ExportInvalidError(EVENTS_ABI, str(error), seq=seq) from None
    fold.settle(seq)
    expected_account = entry.address if entry is not None else ZERO_ADDRESS
    if account != expected_account:
        what = f"account {entry.account_id!r}" if entry is not None else "no account"
        raise ExportInvalidError(
            EVENTS_ABI,
            f"account is {checksum_address(account)}, but the payload "
            f"names {what} ({checksum_address(expected_account)})",
            seq=seq,
        )
    if (record_credit, record_debit) != (credit, debit):
        raise ExportInvalidError(
            EVENTS_ABI,
            f"credit/debit are {record_credit}/{record_debit}, but the payload says {credit}/{debit}",
            seq=seq,
        )
    return entry


def _check_jsonl(raw: bytes, record: Any, record_hash: bytes, entry: Any, seq: int, previous: int) -> int:
    line = parse_json(EVENTS_JSONL, raw, what="the line", seq=seq)
    notification_id = line.get("notificationId") if isinstance(line, dict) else None
    if isinstance(notification_id, bool) or not isinstance(notification_id, int) or notification_id <= previous:
        raise ExportInvalidError(
            EVENTS_JSONL,
            f"notificationId {notification_id!r} is not an integer above the previous line's ({previous})",
            seq=seq,
        )
    expected = jsonl_line(record, record_hash, notification_id, entry.account_id if entry is not None else None)
    if raw != expected:
        wanted = json.loads(expected)
        # recordHash last: when a record changed, the field that changed says more.
        for key in sorted(wanted, key=lambda name: name == "recordHash"):
            value = wanted[key]
            if line.get(key) != value:
                if key != "accountId" and _self_consistent(raw, line):
                    # The line agrees with its own recordHash: it is the events.abi record
                    # that changed (its successor's prevHash would say so too).
                    raise ExportInvalidError(
                        EVENTS_ABI,
                        f"{key} is {value!r}, but events.jsonl (which matches its "
                        f"own recordHash) says {line.get(key)!r}",
                        seq=seq,
                    )
                raise ExportInvalidError(
                    EVENTS_JSONL, f"{key} is {line.get(key)!r}, but the record in events.abi says {value!r}", seq=seq
                )
        extra = sorted(set(line) - set(wanted))
        if extra:
            raise ExportInvalidError(EVENTS_JSONL, f"unexpected fields {extra}", seq=seq)
        raise ExportInvalidError(
            EVENTS_JSONL,
            "the line is not byte-identical to its canonical form (spacing, key order or escapes changed)",
            seq=seq,
        )
    return notification_id


def _self_consistent(raw: bytes, line: dict[str, Any]) -> bool:
    """Whether a jsonl line is the canonical line of a record that hashes to its recordHash."""
    try:
        record = EventRecord(
            line["seq"],
            bytes.fromhex(line["prevHash"][2:]),
            UUID(line["originatorId"]),
            line["originatorVersion"],
            line["topic"],
            line["timestampMicros"],
            bytes.fromhex(line["account"][2:]),
            int(line["credit"]),
            int(line["debit"]),
            canonical_json(line["payload"]),
        )
        record_hash = keccak(record.encode())
        return jsonl_line(record, record_hash, line["notificationId"], line["accountId"]) == raw
    except Exception:  # any malformed field: the line is not self-consistent
        return False


# The other files -------------------------------------------------------------------------


def _check_accounts(data: bytes, fold: LedgerFold) -> None:
    expected = accounts_document(fold)
    if data == json_document(expected):
        return
    document = parse_json(ACCOUNTS, data)
    rows = document.get("accounts") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise ExportInvalidError(ACCOUNTS, "has no accounts list")
    wanted = expected["accounts"]
    for index, (found, want) in enumerate(zip_longest(rows, wanted)):
        if found == want:
            continue
        if want is None:
            raise ExportInvalidError(ACCOUNTS, f"accounts[{index}] {found!r} was never opened in the records")
        if not isinstance(found, dict) or found.get("accountId") != want["accountId"]:
            raise ExportInvalidError(
                ACCOUNTS,
                f"accounts[{index}] should be {want['accountId']!r} "
                f"(every account opened in the records, in id order), found {found!r}",
            )
        for key, value in want.items():
            if found.get(key) != value:
                raise ExportInvalidError(
                    ACCOUNTS, f"account {want['accountId']!r}: {key} is {found.get(key)!r}, expected {value!r}"
                )
        raise ExportInvalidError(ACCOUNTS, f"accounts[{index}] has unexpected fields")
    for key, value in expected.items():
        if document.get(key) != value:
            raise ExportInvalidError(ACCOUNTS, f"{key} is {document.get(key)!r}, expected {value!r}")
    raise ExportInvalidError(ACCOUNTS, "not byte-identical to its canonical form (spacing, key order or escapes)")


def _check_events_tree(data: bytes, expected: StandardMerkleTree) -> None:
    if data == tree_document(expected):
        return
    loaded = _load_tree(EVENTS_TREE, data, EVENTS_LEAF_ENCODING)
    for index, (found, want) in enumerate(zip_longest(_values(loaded), _values(expected))):
        if found != want:
            raise ExportInvalidError(
                EVENTS_TREE,
                f"values[{index}] is {_json_value(loaded, found)}, but the record gives {_json_value(expected, want)}",
                seq=index + 1,
            )
    _tree_layout_differs(EVENTS_TREE, loaded, expected)


def _check_balances_tree(data: bytes, fold: LedgerFold, total_supply: int) -> StandardMerkleTree:
    """The rows the records give: one per account but the treasury, summing to totalSupply."""
    rows = fold.row_balances()
    expected = balances_tree(rows)
    if data == tree_document(expected) and sum(rows.values()) == total_supply:
        # The file is the rebuild's dump, byte for byte: one row per account but the
        # treasury, each the replayed balance. Loading it (an EIP-55 check per row) and
        # checking row by row could find nothing more, so only a differing file is read.
        return expected
    loaded = _load_tree(BALANCES_TREE, data, BALANCES_LEAF_ENCODING)
    by_address = {entry.address: entry.account_id for entry in fold.by_uuid.values()}
    address_of = {account_id: address for address, account_id in by_address.items()}
    seen: set[bytes] = set()
    row_sum = 0
    for index, (address, balance) in loaded.entries():
        account_id = by_address.get(address)
        if address in seen:
            raise ExportInvalidError(
                BALANCES_TREE,
                f"values[{index}]: a second row for {checksum_address(address)} ({account_id!r}); one row per account",
            )
        seen.add(address)
        if account_id is None:
            raise ExportInvalidError(
                BALANCES_TREE, f"values[{index}]: {checksum_address(address)} is no account opened in the records"
            )
        if account_id == fold.treasury_id:
            raise ExportInvalidError(
                BALANCES_TREE, f"values[{index}]: the treasury has no row (its balance is minus totalSupply)"
            )
        if balance != rows[account_id]:
            raise ExportInvalidError(
                BALANCES_TREE, f"account {account_id!r}: the row says {balance}, the records give {rows[account_id]}"
            )
        row_sum += balance
    missing = sorted(account_id for account_id in rows if address_of[account_id] not in seen)
    if missing:
        raise ExportInvalidError(
            BALANCES_TREE, f"account {missing[0]!r} has no row ({len(missing)} missing); one row per account"
        )
    if row_sum != total_supply:
        raise ExportInvalidError(
            BALANCES_TREE, f"rows sum to {row_sum}, but header.json's totalSupply is {total_supply}"
        )
    if data != tree_document(expected):
        for index, (found, want) in enumerate(zip(_values(loaded), _values(expected))):
            if found != want:
                raise ExportInvalidError(
                    BALANCES_TREE,
                    f"values[{index}] is {_json_value(loaded, found)}, "
                    f"expected {_json_value(expected, want)} (rows are in account-id order)",
                )
        _tree_layout_differs(BALANCES_TREE, loaded, expected)
    return expected


def parse_header(document: Any) -> tuple[SnapshotHeader, Eip712Domain, str | None, str | None]:
    """(header, domain, signature, signer) from header.json, each value's form checked."""
    if not isinstance(document, dict):
        raise ExportInvalidError(HEADER, "not a JSON object")
    fields, domain_fields = document.get("header"), document.get("domain")
    if not isinstance(fields, dict) or not isinstance(domain_fields, dict):
        raise ExportInvalidError(HEADER, "needs a header object and a domain object")

    def bytes32(key: str) -> bytes:
        value = fields.get(key)
        if not isinstance(value, str) or not _BYTES32.fullmatch(value):
            raise ExportInvalidError(HEADER, f"header.{key} is not 0x + 64 lowercase hex digits: {value!r}")
        return bytes.fromhex(value[2:])

    def decimal(key: str) -> int:
        value = fields.get(key)
        if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
            raise ExportInvalidError(HEADER, f"header.{key} is not a decimal string: {value!r}")
        return int(value)

    try:
        header = SnapshotHeader(
            bytes32("snapshotId"),
            decimal("lastSeq"),
            bytes32("eventsRoot"),
            bytes32("balancesRoot"),
            decimal("totalSupply"),
        )
    except ValueError as error:
        raise ExportInvalidError(HEADER, str(error)) from None
    chain_id = domain_fields.get("chainId")
    name, version = domain_fields.get("name"), domain_fields.get("version")
    if (
        not isinstance(name, str)
        or not isinstance(version, str)
        or isinstance(chain_id, bool)
        or not isinstance(chain_id, int)
    ):
        raise ExportInvalidError(HEADER, "domain needs a string name and version and an integer chainId")
    try:
        domain = Eip712Domain(name, version, chain_id, domain_fields.get("verifyingContract"))
    except ValueError as error:
        raise ExportInvalidError(HEADER, f"domain: {error}") from None
    signature, signer = document.get("signature"), document.get("signer")
    if (signature is None) != (signer is None):
        raise ExportInvalidError(HEADER, "signature and signer go together: both or neither")
    if signature is not None and (not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature)):
        raise ExportInvalidError(HEADER, "signature is not 0x + 130 lowercase hex digits (r ‖ s ‖ v)")
    if signer is not None and (not isinstance(signer, str) or not is_checksum_address(signer)):
        raise ExportInvalidError(HEADER, f"signer is not a checksummed address: {signer!r}")
    return header, domain, signature, signer


def read_header_file(
    root: ExportDirectory, limit: Limit
) -> tuple[SnapshotHeader, Eip712Domain, str | None, str | None]:
    return parse_header(parse_json(HEADER, root.read(HEADER, _header_limit(limit))))


def _check_header(
    data: bytes,
    document: Any,
    header: SnapshotHeader,
    expected: SnapshotHeader,
    domain: Eip712Domain,
    signature: str | None,
    signer: str | None,
) -> None:
    if header.last_seq != expected.last_seq:
        raise ExportInvalidError(HEADER, f"lastSeq {header.last_seq} is not the last record's seq {expected.last_seq}")
    if header.snapshot_id != expected.snapshot_id:
        raise ExportInvalidError(
            HEADER,
            f"snapshotId {hex0x(header.snapshot_id)} is not "
            f"{hex0x(expected.snapshot_id)} = keccak256(abi.encode(domain.name, lastSeq, "
            "eventsRoot))",
        )
    if signature is not None:
        try:
            recovered = recover_signer(expected, domain, signature)
        except Exception as error:  # a malformed signature (bad v, s out of range) is a finding too
            raise ExportInvalidError(HEADER, f"the signature does not recover: {error}") from None
        if recovered != signer:
            raise ExportInvalidError(HEADER, f"the signature recovers to {recovered}, not to the signer {signer}")
    wanted_document = header_document(expected, domain, signature, signer)
    if data == json_document(wanted_document):
        return
    for path, found, want in _differences(document, wanted_document):
        raise ExportInvalidError(HEADER, f"{path} is {found!r}, expected {want!r}")
    raise ExportInvalidError(HEADER, "not byte-identical to its canonical form (spacing, key order or escapes)")


def _check_manifest_shape(manifest: Any) -> None:
    if not isinstance(manifest, dict):
        raise ExportInvalidError(MANIFEST, "not a JSON object")
    if manifest.get("format") != FORMAT:
        raise ExportInvalidError(MANIFEST, f"format is {manifest.get('format')!r}, this version reads {FORMAT!r}")
    record = manifest.get("record")
    fields = [{"name": name, "type": abi_type} for name, abi_type in EVENT_RECORD_FIELDS]
    if not isinstance(record, dict) or record.get("abiType") != EVENT_RECORD_ABI_TYPE or record.get("fields") != fields:
        raise ExportInvalidError(MANIFEST, f"the record type is not {EVENT_RECORD_ABI_TYPE}")
    last_seq = manifest.get("lastSeq")
    if isinstance(last_seq, bool) or not isinstance(last_seq, int) or last_seq < 1:
        raise ExportInvalidError(MANIFEST, f"lastSeq must be a positive integer, got {last_seq!r}")


def _check_manifest(data: bytes, manifest: dict[str, Any], expected: dict[str, Any]) -> None:
    claimed = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    ids_differ = manifest.get("notificationIds") != expected["notificationIds"]
    for name, facts in expected["files"].items():
        if claimed.get(name) == facts:
            continue
        # Every byte of the other files was rebuilt and compared already, so a digest
        # that differs there is the manifest's fault. events.jsonl also holds the source
        # notification ids, which no record covers: when their own digest differs as
        # well, two manifest fields agree that it is the file that changed.
        if name == EVENTS_JSONL and ids_differ:
            raise ExportInvalidError(
                EVENTS_JSONL,
                "a notificationId was altered: the file's sha256 and the "
                "notificationIds digest both differ from manifest.json",
            )
        raise ExportInvalidError(
            MANIFEST,
            f"{name} is {facts['bytes']} bytes with sha256 {facts['sha256']}, "
            f"but the manifest records {claimed.get(name)!r}",
        )
    if data == json_document(expected):
        return
    for path, found, want in _differences(manifest, expected):
        raise ExportInvalidError(MANIFEST, f"{path} is {found!r}, expected {want!r}")
    raise ExportInvalidError(MANIFEST, "not byte-identical to its canonical form (spacing, key order or escapes)")


# Helpers ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def ledger_mapper() -> Mapper:
    """The ledger's own mapper (stable topics, its transcodings), without a store."""

    app = open_ledger("memory://")
    return app.mapper


def _load_tree(name: str, data: bytes, leaf_encoding: tuple[str, ...]) -> StandardMerkleTree:
    try:
        loaded = StandardMerkleTree.load(parse_json(name, data))
    except InvalidTreeError as error:
        raise ExportInvalidError(name, f"does not load as a standard-v1 tree: {error}") from None
    if loaded.leaf_encoding != tuple(leaf_encoding):
        raise ExportInvalidError(name, f"leafEncoding is {list(loaded.leaf_encoding)}, expected {list(leaf_encoding)}")
    return loaded


def _values(tree: StandardMerkleTree) -> Iterator[tuple]:
    return (value for _, value in tree.entries())


def _json_value(tree: StandardMerkleTree, value: tuple | None) -> str:
    if value is None:
        return "nothing"
    return json.dumps(row_codec(tree.leaf_encoding).to_json(value))


def _tree_layout_differs(name: str, loaded: StandardMerkleTree, expected: StandardMerkleTree) -> None:
    if loaded.root != expected.root:
        raise ExportInvalidError(
            name, f"root {loaded.root} is not the root {expected.root} that the values give in the standard layout"
        )
    raise ExportInvalidError(
        name, "not byte-identical to the canonical dump (tree order, treeIndex, spacing or hex case changed)"
    )


def _differences(found: Any, wanted: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Leaf paths where two JSON documents differ, in the wanted document's order."""
    if isinstance(found, dict) and isinstance(wanted, dict):
        for key, value in wanted.items():
            yield from _differences(found.get(key), value, f"{path}.{key}" if path else key)
        for key in found:
            if key not in wanted:
                yield (f"{path}.{key}" if path else key), found[key], None
        return
    if isinstance(found, list) and isinstance(wanted, list) and len(found) == len(wanted):
        for index, (a, b) in enumerate(zip(found, wanted)):
            yield from _differences(a, b, f"{path}[{index}]")
        return
    if found != wanted or type(found) is not type(wanted):
        yield path, found, wanted
