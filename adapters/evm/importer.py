"""``stakeledger import DIR --db URL``: rebuild an empty event store from a verified export.

This is how a ledger moves between SQLite and PostgreSQL (docs/migration.md):

1. a target that already holds events is refused before anything else, unless it holds
   exactly this export already (a rerun after an import that was killed once its events
   were committed): then its read-back and audit run again and nothing is written;
2. the export is verified in full (``verify_export``, with the same ``signer`` and
   ``require_signature`` options); any problem refuses the import and nothing is written
   (a missing SQLite file is not even created);
3. each record becomes the stored event it came from,
   ``StoredEvent(originatorId, originatorVersion, topic, state=payload)``, inserted
   through the target's own recorder in seq order, a batch at a time, **all in one
   transaction** (``one_transaction``): every other command sees either no event of the
   import or all of them. A killed, failed or refused import leaves the store empty; run
   it again;
4. the new store is read back: every event decodes with the ledger's mapper, the records
   rebuilt from it have the verified hashes (so a re-export gives the same roots and the
   same events.abi), and the audit is clean.

Stored states are written in the canonical JSON of the payload, which decodes to the same
domain events as the original bytes. Snapshots are a cache and are not exported; the
imported ledger takes new ones as it is used. Notification ids start again from 1.

If step 4 fails after the events were committed (the audit found something),
``ImportFailedError`` says so: drop the target and import again.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from eventsourcing.persistence import PersistenceError, StoredEvent

from stakeledger.adapters.evm.bundle import (
    EVENTS_ABI,
    ExportInvalidError,
    ImportFailedError,
    ImportTargetNotEmptyError,
    ProgressFn,
    no_progress,
)
from stakeledger.adapters.evm.export import build_snapshot
from stakeledger.adapters.evm.export_files import ExportDirectory, Limit, parse_json
from stakeledger.adapters.evm.hashing import keccak
from stakeledger.adapters.evm.one_transaction import one_transaction
from stakeledger.adapters.evm.records import decode_record
from stakeledger.adapters.evm.verification import VerifiedExport, pinned_signer, verify_export
from stakeledger.adapters.persistence.store_url import env_for_url, open_ledger
from stakeledger.domain.service.application import StakeLedger
from stakeledger.projections.audit import audit

BATCH_SIZE = 2_000


@dataclass(frozen=True)
class ImportSummary:
    target: str
    events: int
    accounts: int
    last_seq: int
    events_root: str
    balances_root: str
    total_supply_units: int
    audit_clean: bool
    seconds: float
    already_imported: bool = False  # the target held exactly this export already; nothing was written

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "events": self.events,
            "accounts": self.accounts,
            "lastSeq": self.last_seq,
            "eventsRoot": self.events_root,
            "balancesRoot": self.balances_root,
            "totalSupply": str(self.total_supply_units),
            "auditClean": self.audit_clean,
            "alreadyImported": self.already_imported,
            "seconds": round(self.seconds, 3),
        }


def import_export(
    directory: str | os.PathLike[str],
    target_url: str,
    *,
    progress: ProgressFn | None = None,
    batch_size: int = BATCH_SIZE,
    signer: str | None = None,
    require_signature: bool = False,
) -> ImportSummary:
    """Verify the export in ``directory`` and rebuild the empty store at ``target_url`` from it.

    ``signer`` and ``require_signature`` are ``verify_export``'s: with a pinned signer an
    export signed by anyone else (or by nobody) is refused before anything is written.
    """
    started = time.perf_counter()
    report = progress or no_progress
    target = redact(target_url)
    env_for_url(target_url)  # a malformed URL is refused before the long verification
    pinned_signer(signer)  # and so is a malformed --signer
    held = stored_event_count(target_url)
    if held and held != _claimed_last_seq(directory):
        raise ImportTargetNotEmptyError(f"{target} already holds events: import needs an empty store")
    verified = verify_export(directory, progress=progress, signer=signer, require_signature=require_signature)
    app = open_ledger(target_url)
    try:
        already = bool(app.recorder.max_notification_id())
        if already:
            # Only a store holding exactly this export gets this far; prove it below.
            report("checking the imported store", 0, None)
        else:
            _insert_all(app, Path(directory), verified, report, batch_size, target)
        _read_back(app, verified, target, progress, report, already)
    finally:
        app.close()
    return ImportSummary(
        target=target,
        events=verified.last_seq,
        accounts=verified.accounts,
        last_seq=verified.last_seq,
        events_root=verified.events_root,
        balances_root=verified.balances_root,
        total_supply_units=verified.total_supply_units,
        audit_clean=True,
        seconds=time.perf_counter() - started,
        already_imported=already,
    )


def _insert_all(
    app: StakeLedger, directory: Path, verified: VerifiedExport, report: ProgressFn, batch_size: int, target: str
) -> None:
    try:
        _insert(app, directory, verified, report, batch_size, target)
    except ExportInvalidError:
        raise ImportFailedError(
            f"{EVENTS_ABI} changed while it was being imported; nothing was imported into {target}: "
            "verify the export, then import again"
        ) from None
    except (PersistenceError, sqlite3.Error, psycopg.Error) as error:
        raise ImportFailedError(
            f"the store refused the import ({type(error).__name__}: {error}); the transaction rolled back "
            f"and {target} holds none of the export: import again"
        ) from None


def _read_back(
    app: StakeLedger,
    verified: VerifiedExport,
    target: str,
    progress: ProgressFn | None,
    report: ProgressFn,
    already: bool,
) -> None:
    """The store reads back as the export, and its audit is clean."""
    try:
        rebuilt = build_snapshot(app, domain=verified.domain, progress=progress, decode=True)
    except Exception as error:
        if already:
            raise ImportTargetNotEmptyError(
                f"{target} already holds events ({error}): import needs an empty store"
            ) from None
        raise ImportFailedError(
            f"the imported store does not read back ({error}); drop {target} and import again"
        ) from None
    if (
        rebuilt.record_hashes != verified.record_hashes
        or rebuilt.events_root != verified.events_root
        or rebuilt.balances_root != verified.balances_root
    ):
        if already:
            raise ImportTargetNotEmptyError(f"{target} already holds events: import needs an empty store")
        raise ImportFailedError(f"the imported store re-exports differently from the export; drop {target}")
    report("auditing", 0, None)
    audited = audit(app, progress=lambda done, total: report("auditing", done, total))
    if not audited.clean:
        first = audited.violations[0] if audited.violations else "violations"
        raise ImportFailedError(
            f"the imported ledger fails the audit ({audited.violation_count} violations, first: {first}); drop {target}"
        )


def _claimed_last_seq(directory: str | os.PathLike[str]) -> int | None:
    """The manifest's lastSeq, or None when it cannot be read (the target check comes first)."""
    try:
        with ExportDirectory(directory) as root:
            manifest = parse_json("manifest.json", root.manifest_bytes())
    except ExportInvalidError:
        return None
    last_seq = manifest.get("lastSeq") if isinstance(manifest, dict) else None
    return last_seq if isinstance(last_seq, int) and not isinstance(last_seq, bool) else None


def stored_event_count(url: str) -> int:
    """How many events the store at ``url`` holds (0 for a SQLite file that does not exist)."""
    if not _store_exists(url):
        return 0
    app = open_ledger(url)
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _insert(
    app: StakeLedger, directory: Path, verified: VerifiedExport, report: ProgressFn, batch_size: int, target: str
) -> None:
    """Insert every record as its stored event, in seq order, re-checking each line's hash,
    in one transaction that commits when the last record is in."""
    hashes = verified.record_hashes
    total = len(hashes)
    batch: list[StoredEvent] = []
    report("importing events", 0, total)
    limit = Limit.stated(EVENTS_ABI, verified.file_sizes[EVENTS_ABI])
    with ExportDirectory(directory) as root, one_transaction(app.recorder) as writer:
        lines = root.lines(EVENTS_ABI, limit)
        with closing(lines):
            for index, raw in enumerate(lines):
                # The file was verified a moment ago; the hash proves this is the same line.
                if index >= total or not raw.startswith(b"0x") or not raw.endswith(b"\n"):
                    raise ExportInvalidError(EVENTS_ABI, "differs from the verified file", seq=index + 1)
                try:
                    encoded = bytes.fromhex(raw[2:-1].decode("ascii"))
                except ValueError:
                    raise ExportInvalidError(EVENTS_ABI, "differs from the verified file", seq=index + 1) from None
                if keccak(encoded) != hashes[index]:
                    raise ExportInvalidError(EVENTS_ABI, "differs from the verified file", seq=index + 1)
                record = decode_record(encoded)
                batch.append(
                    StoredEvent(
                        originator_id=record.originator_id,
                        originator_version=record.originator_version,
                        topic=record.topic,
                        state=record.payload,
                    )
                )
                if len(batch) >= batch_size:
                    writer.write(batch)
                    batch = []
                    report("importing events", writer.written, total)
        writer.write(batch)
        if writer.written != total:
            raise ExportInvalidError(EVENTS_ABI, f"holds {writer.written} records, {total} were verified")
        writer.check_only_rows(target)
        # Reported inside the transaction, just before it commits.
        report("importing events", writer.written, total)


def _store_exists(url: str) -> bool:
    env = env_for_url(url)
    path = env.get("SQLITE_DBNAME")
    if path is not None:
        return path == ":memory:" or os.path.exists(path)
    return True
