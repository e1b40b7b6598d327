"""``stakeledger import DIR --db URL``: rebuild an empty event store from a verified export.

This is how a ledger moves between SQLite and PostgreSQL (docs/migration.md):

1. a target that already holds events is refused before anything else;
2. the export is verified in full (``verify_export``); any problem refuses the import
   and nothing is written (a missing SQLite file is not even created);
3. each record becomes the stored event it came from,
   ``StoredEvent(originatorId, originatorVersion, topic, state=payload)``, inserted
   through the target's own recorder in seq order, a batch per transaction;
4. the new store is read back: every event decodes with the ledger's mapper, the records
   rebuilt from it have the verified hashes (so a re-export gives the same roots and the
   same events.abi), and the audit is clean.

Stored states are written in the canonical JSON of the payload, which decodes to the same
domain events as the original bytes. Snapshots are a cache and are not exported; the
imported ledger takes new ones as it is used. Notification ids start again from 1.

If step 3 or 4 fails after events were written (the database went away, the audit found
something), ``ImportFailedError`` says so: drop the target and import again.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from eth_hash.auto import keccak
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
from stakeledger.adapters.evm.records import decode_record
from stakeledger.adapters.evm.verification import VerifiedExport, verify_export
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
            "seconds": round(self.seconds, 3),
        }


def import_export(
    directory: str | os.PathLike[str],
    target_url: str,
    *,
    progress: ProgressFn | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportSummary:
    """Verify the export in ``directory`` and rebuild the empty store at ``target_url`` from it."""
    started = time.perf_counter()
    report = progress or no_progress
    target = redact(target_url)
    env_for_url(target_url)  # a malformed URL is refused before the long verification
    if _store_exists(target_url):
        _refuse_non_empty(target_url, target)
    verified = verify_export(directory, progress=progress)
    app = open_ledger(target_url)
    try:
        if app.recorder.max_notification_id():
            raise ImportTargetNotEmptyError(f"{target} already holds events: import needs an empty store")
        try:
            _insert(app, Path(directory), verified, report, batch_size)
        except ExportInvalidError:
            raise ImportFailedError(
                f"{EVENTS_ABI} changed while it was being imported; {target} may hold part of it: "
                "drop that store, then import again"
            ) from None
        except PersistenceError as error:
            raise ImportFailedError(
                f"the store refused a batch ({type(error).__name__}: {error}); {target} may "
                "hold part of the export: drop that store, then import again"
            ) from None
        try:
            rebuilt = build_snapshot(app, domain=verified.domain, progress=progress, decode=True)
        except Exception as error:
            raise ImportFailedError(
                f"the imported store does not read back ({error}); drop {target} and import again"
            ) from None
        if (
            rebuilt.record_hashes != verified.record_hashes
            or rebuilt.events_root != verified.events_root
            or rebuilt.balances_root != verified.balances_root
        ):
            raise ImportFailedError(f"the imported store re-exports differently from the export; drop {target}")
        report("auditing", 0, None)
        audited = audit(app, progress=lambda done, total: report("auditing", done, total))
        if not audited.clean:
            first = audited.violations[0] if audited.violations else "violations"
            raise ImportFailedError(
                f"the imported ledger fails the audit ({audited.violation_count} violations, "
                f"first: {first}); drop {target}"
            )
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
    )


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


def _insert(app: StakeLedger, directory: Path, verified: VerifiedExport, report: ProgressFn, batch_size: int) -> None:
    """Insert every record as its stored event, in seq order, re-checking each line's hash."""
    hashes = verified.record_hashes
    total = len(hashes)
    batch: list[StoredEvent] = []
    done = 0
    report("importing events", 0, total)
    with open(directory / EVENTS_ABI, "rb") as abi_file:
        for index, raw in enumerate(abi_file):
            encoded = bytes.fromhex(raw[2:].rstrip(b"\n").decode("ascii"))
            # The file was verified a moment ago; the hash proves this is the same line.
            if index >= total or keccak(encoded) != hashes[index]:
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
                app.recorder.insert_events(batch)
                done += len(batch)
                batch = []
                report("importing events", done, total)
    if batch:
        app.recorder.insert_events(batch)
        done += len(batch)
    if done != total:
        raise ExportInvalidError(EVENTS_ABI, f"holds {done} records, {total} were verified")
    report("importing events", done, total)


def _store_exists(url: str) -> bool:
    env = env_for_url(url)
    path = env.get("SQLITE_DBNAME")
    if path is not None:
        return path == ":memory:" or os.path.exists(path)
    return True


def _refuse_non_empty(url: str, shown: str) -> None:
    if stored_event_count(url):
        raise ImportTargetNotEmptyError(f"{shown} already holds events: import needs an empty store")
