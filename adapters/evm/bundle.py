"""The export directory: its files, their exact bytes, and the replay both sides share.

An export is one directory of seven files (docs/evm-export.md describes each):

    events.abi          one line per record: 0x + lowercase hex of abi.encode(record)
    events.jsonl        one line per record: the same fields as JSON, plus its recordHash,
                        the source notification id and the account id behind the address
    events-tree.json    StandardMerkleTree dump ("standard-v1") over (uint256 seq, bytes32 recordHash)
    balances-tree.json  StandardMerkleTree dump over (address account, uint256 balance)
    accounts.json       account id -> address (and kind) for every account opened so far
    header.json         the snapshot header, its EIP-712 typed data and hash, signature, signer
    manifest.json       the record type, tree encodings, counts, roots and a sha256 per file

Every byte of every file is a function of the records (plus the header's domain and
signature, and the source notification ids), so ``verify`` can rebuild each file and
compare bytes: a one-byte change anywhere is caught. The writers below are the single
definition of those bytes; the exporter and the verifier both call them.

``LedgerFold`` replays records into accounts and balances. The exporter uses it to
derive a record's ``account``/``credit``/``debit`` from the stored payload; the
verifier uses the same code to check that a record's fields agree with its payload.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Callable
from uuid import UUID

from eth_abi import encode as abi_encode

from stakeledger.adapters.evm.addresses import ACCOUNT_ADDRESS_PREFIX, account_address_bytes
from stakeledger.adapters.evm.canonical import timestamp_micros
from stakeledger.adapters.evm.eip712 import (
    Eip712Domain,
    SnapshotHeader,
    domain_separator,
    hash_struct,
    header_digest,
    typed_data,
)
from stakeledger.adapters.evm.hashing import checksum_address as fast_checksum_address
from stakeledger.adapters.evm.hashing import keccak
from stakeledger.adapters.evm.merkle import BALANCES_LEAF_ENCODING, EVENTS_LEAF_ENCODING, StandardMerkleTree
from stakeledger.adapters.evm.records import EVENT_RECORD_ABI_TYPE, EVENT_RECORD_FIELDS, EventRecord
from stakeledger.domain.errors import LedgerError
from stakeledger.domain.model.accounts import TREASURY_KIND, Account, account_kind, account_uuid
from stakeledger.domain.model.naming import stable_topic
from stakeledger.domain.model.settings import LedgerSettings

FORMAT = "stakeledger-evm-export/1"

MANIFEST = "manifest.json"
EVENTS_ABI = "events.abi"
EVENTS_JSONL = "events.jsonl"
EVENTS_TREE = "events-tree.json"
BALANCES_TREE = "balances-tree.json"
ACCOUNTS = "accounts.json"
HEADER = "header.json"
# Written in this order; the manifest last, so a directory with a manifest is complete.
DATA_FILES = (EVENTS_ABI, EVENTS_JSONL, EVENTS_TREE, BALANCES_TREE, ACCOUNTS, HEADER)
ALL_FILES = (*DATA_FILES, MANIFEST)

TOPIC_OPENED = stable_topic(Account.Opened)
TOPIC_DEBITED = stable_topic(Account.Debited)
TOPIC_CREDITED = stable_topic(Account.Credited)
TOPIC_SETTINGS = stable_topic(LedgerSettings.Initialised)

SNAPSHOT_ID_SCHEME = "keccak256(abi.encode(string domain.name, uint64 lastSeq, bytes32 eventsRoot))"
ADDRESS_SCHEME = 'last 20 bytes of keccak256("stakeledger:account:" ++ utf8(accountId))'
RECORD_ENCODING = "abi.encode(record) as one tuple (Solidity abi.encode of the struct); 0x-hex, one line per record"
RECORD_HASH = "keccak256(abi.encode(record)); prevHash of seq 1 is bytes32(0)"

# (phase, done, total): how long work reports how far it got.
ProgressFn = Callable[[str, int, "int | None"], None]


def no_progress(phase: str, done: int, total: int | None) -> None:
    return None


# Errors ---------------------------------------------------------------------------------


class ExportError(LedgerError):
    """An export, proof or import the ledger refuses. Nothing was written."""

    code = "EXPORT_ERROR"


class SigningKeyError(ExportError, ValueError):
    code = "INVALID_SIGNING_KEY"


class ExportInvalidError(ExportError):
    """An export directory fails verification; the message names the file and record."""

    code = "EXPORT_INVALID"

    def __init__(self, file: str, problem: str, *, seq: int | None = None, line: int | None = None) -> None:
        self.file = file
        self.problem = problem
        self.seq = seq
        self.line = line
        where = file
        if seq is not None:
            where += f" seq {seq}"
        elif line is not None:
            where += f" line {line}"
        super().__init__(f"{where}: {problem}")


class ImportTargetNotEmptyError(ExportError):
    code = "IMPORT_TARGET_NOT_EMPTY"


class ImportFailedError(ExportError):
    """The import wrote events but the result did not check out (the store must be dropped)."""

    code = "IMPORT_FAILED"


class FoldError(ValueError):
    """A record contradicts the ledger's rules (raised by LedgerFold, wrapped by callers)."""


# The replay ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountEntry:
    account_id: str
    kind: str
    address: bytes


@dataclass
class LedgerFold:
    """Accounts, balances and issuance, replayed one record at a time."""

    by_uuid: dict[UUID, AccountEntry] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    treasury_id: str | None = None
    decimals: int | None = None
    net_units: int = 0  # sum of every balance, the treasury's included: 0 between transactions
    last_balanced_seq: int = 0

    def movement(self, originator_id: UUID, topic: str, state: dict[str, Any]) -> tuple[AccountEntry | None, int, int]:
        """(account, credit, debit) of an event, read from its payload; applies it."""
        if topic == TOPIC_OPENED:
            self._open(originator_id, state)
            return None, 0, 0
        if topic == TOPIC_CREDITED or topic == TOPIC_DEBITED:
            entry = self.by_uuid.get(originator_id)
            if entry is None:
                raise FoldError(f"a movement on account aggregate {originator_id}, which was never opened")
            amount = state.get("amount_units")
            if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
                raise FoldError(f"amount_units must be a positive integer, got {amount!r}")
            if topic == TOPIC_CREDITED:
                self.balances[entry.account_id] += amount
                self.net_units += amount
                return entry, amount, 0
            balance = self.balances[entry.account_id] - amount
            if balance < 0 and entry.kind != TREASURY_KIND:
                raise FoldError(f"account {entry.account_id!r} would go negative ({balance} base units)")
            self.balances[entry.account_id] = balance
            self.net_units -= amount
            return entry, 0, amount
        if topic == TOPIC_SETTINGS:
            decimals = state.get("decimals")
            if isinstance(decimals, bool) or not isinstance(decimals, int):
                raise FoldError(f"ledger settings carry no integer decimals: {decimals!r}")
            self.decimals = decimals
        return None, 0, 0

    def _open(self, originator_id: UUID, state: dict[str, Any]) -> None:
        account_id = state.get("account_id")
        if not isinstance(account_id, str):
            raise FoldError(f"an account opens without an account_id: {account_id!r}")
        # Version 1 records had no kind; the domain's upcaster infers it the same way.
        kind = state.get("kind", account_kind(account_id))
        if originator_id in self.by_uuid or account_id in self.balances:
            raise FoldError(f"account {account_id!r} is opened twice")
        if account_uuid(account_id) != originator_id:
            raise FoldError(
                f"account {account_id!r} is opened on aggregate {originator_id}, "
                f"not on its own id {account_uuid(account_id)}"
            )
        try:
            address = account_address_bytes(account_id)
        except (TypeError, ValueError) as error:
            raise FoldError(str(error)) from None
        if kind == TREASURY_KIND:
            if self.treasury_id is not None:
                raise FoldError(f"a second treasury {account_id!r} (the first is {self.treasury_id!r})")
            self.treasury_id = account_id
        entry = AccountEntry(account_id, kind, address)
        self.by_uuid[originator_id] = entry
        self.balances[account_id] = 0
        self.kinds[account_id] = kind

    def settle(self, seq: int) -> None:
        """Call after each record: remembers the last position between transactions."""
        if self.net_units == 0:
            self.last_balanced_seq = seq

    @property
    def total_supply_units(self) -> int:
        """Minus the treasury's balance: what the treasury has issued, net of burns."""
        return -self.balances.get(self.treasury_id, 0) if self.treasury_id else 0

    def row_balances(self) -> dict[str, int]:
        """One row per account except the treasury (a uint256 cannot hold its balance)."""
        return {account_id: units for account_id, units in self.balances.items() if account_id != self.treasury_id}


def stored_state_timestamp_micros(state: dict[str, Any]) -> int:
    """The event's timestamp from its stored state, as eventsourcing's transcoder wrote it."""
    stamp = state.get("timestamp")
    if not (isinstance(stamp, dict) and stamp.get("_type_") == "datetime_iso" and isinstance(stamp.get("_data_"), str)):
        raise FoldError(f"the stored state has no datetime_iso timestamp: {stamp!r}")
    try:
        return timestamp_micros(datetime.fromisoformat(stamp["_data_"]))
    except ValueError as error:
        raise FoldError(f"bad timestamp {stamp['_data_']!r}: {error}") from None


def snapshot_id(domain_name: str, last_seq: int, events_root: bytes) -> bytes:
    return keccak(abi_encode(["string", "uint64", "bytes32"], [domain_name, last_seq, events_root]))


def make_header(
    domain: Eip712Domain, last_seq: int, events_root: bytes, balances_root: bytes, total_supply: int
) -> SnapshotHeader:
    return SnapshotHeader(
        snapshot_id(domain.name, last_seq, events_root), last_seq, events_root, balances_root, total_supply
    )


def events_tree_of(record_hashes: list[bytes]) -> StandardMerkleTree:
    return StandardMerkleTree.of_record_hashes(record_hashes)


# The bytes of each file ------------------------------------------------------------------


def hex0x(data: bytes) -> str:
    return "0x" + data.hex()


@lru_cache(maxsize=1 << 18)
def checksum_address(address: bytes) -> str:
    """EIP-55 text of a 20-byte address, cached: the same few accounts recur on every line."""
    return fast_checksum_address(address)


def abi_line(encoded: bytes) -> bytes:
    return b"0x" + encoded.hex().encode("ascii") + b"\n"


def jsonl_line(record: EventRecord, record_hash: bytes, notification_id: int, account_id: str | None) -> bytes:
    """One events.jsonl line; the payload is embedded as the canonical JSON it already is."""
    head = {
        "seq": record.seq,
        "notificationId": notification_id,
        "recordHash": hex0x(record_hash),
        "prevHash": hex0x(record.prev_hash),
        "originatorId": str(record.originator_id),
        "originatorVersion": record.originator_version,
        "topic": record.topic,
        "timestampMicros": record.timestamp_micros,
        "account": checksum_address(record.account),
        "accountId": account_id,
        "credit": str(record.credit),
        "debit": str(record.debit),
    }
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
    return (text[:-1] + ',"payload":').encode("utf-8") + record.payload + b"}\n"


def json_document(document: Any) -> bytes:
    return json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"


def tree_document(tree: StandardMerkleTree) -> bytes:
    """The dump exactly as the npm package's dump() gives it, compact."""
    return json.dumps(tree.dump(), separators=(",", ":")).encode("utf-8") + b"\n"


def accounts_document(fold: LedgerFold) -> dict[str, Any]:
    rows = sorted(fold.by_uuid.values(), key=lambda entry: entry.account_id)
    return {
        "scheme": ADDRESS_SCHEME,
        "prefix": ACCOUNT_ADDRESS_PREFIX.decode("ascii"),
        "treasury": fold.treasury_id,
        "accounts": [
            {
                "accountId": entry.account_id,
                "address": checksum_address(entry.address),
                "kind": entry.kind,
                "balanceRow": entry.account_id != fold.treasury_id,
            }
            for entry in rows
        ],
    }


def header_document(
    header: SnapshotHeader, domain: Eip712Domain, signature: str | None, signer: str | None
) -> dict[str, Any]:
    typed = typed_data(header, domain)
    return {
        "header": typed["message"],
        "domain": typed["domain"],
        "typedDataHash": hex0x(header_digest(header, domain)),
        "domainSeparator": hex0x(domain_separator(domain)),
        "structHash": hex0x(hash_struct(header)),
        "signature": signature,
        "signer": signer,
        "snapshotIdScheme": SNAPSHOT_ID_SCHEME,
        "typedData": typed,
    }


def notification_id_line(notification_id: int) -> bytes:
    """What the manifest's notificationIds.sha256 hashes, one line per record."""
    return b"%d\n" % notification_id


def manifest_document(
    *,
    header: SnapshotHeader,
    fold: LedgerFold,
    events: int,
    last_record_hash: bytes,
    balance_rows: int,
    signer: str | None,
    files: dict[str, dict[str, Any]],
    notification_ids: dict[str, Any],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "lastSeq": header.last_seq,
        "events": events,
        "accounts": len(fold.by_uuid),
        "balanceRows": balance_rows,
        "decimals": fold.decimals,
        "lastRecordHash": hex0x(last_record_hash),
        "record": {
            "abiType": EVENT_RECORD_ABI_TYPE,
            "fields": [{"name": name, "type": abi_type} for name, abi_type in EVENT_RECORD_FIELDS],
            "encoding": RECORD_ENCODING,
            "hash": RECORD_HASH,
        },
        "trees": {
            "events": {
                "file": EVENTS_TREE,
                "format": "standard-v1",
                "leafEncoding": list(EVENTS_LEAF_ENCODING),
                "leaf": "(seq, recordHash)",
                "root": hex0x(header.events_root),
            },
            "balances": {
                "file": BALANCES_TREE,
                "format": "standard-v1",
                "leafEncoding": list(BALANCES_LEAF_ENCODING),
                "leaf": "(account address, balance units)",
                "excludes": "the treasury, whose balance is -totalSupply",
                "root": hex0x(header.balances_root),
            },
        },
        "header": {
            "file": HEADER,
            "snapshotId": hex0x(header.snapshot_id),
            "totalSupply": str(header.total_supply),
            "signer": signer,
        },
        "accountsFile": ACCOUNTS,
        # The source store's notification ids (events.jsonl) are no part of any record;
        # this second copy of their digest tells an altered id from an altered manifest.
        "notificationIds": notification_ids,
        "files": files,
    }
