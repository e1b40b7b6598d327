"""Export and verify on every core: the per-record work in worker processes, the chain in one.

Everything an export does to one record but two things depends on that record alone:
parsing its stored state, writing the canonical payload, ABI-encoding it, composing its
events.jsonl line. The two exceptions are sequential: ``prevHash`` is keccak256 of the
previous record's bytes, and ``account`` is the address of the account the aggregate was
opened for, learnt by replaying the log (``LedgerFold``). Both are static words of the
record's ABI head, at fixed offsets, so a worker encodes a record with zeros there and
the parent process writes the previous hash and the address into the bytes, hashes
them and moves on: the chain is stitched at the cost of one keccak256 per record.

Verify is split the same way: a worker decodes a range of lines, re-encodes each record
(only the canonical encoding is accepted), hashes it, decodes its payload with the
ledger's mapper and rebuilds its events.jsonl line; the parent checks what is
sequential (seq, the chain, the fold, notification ids) in order. A record a worker
could not clear is checked again by the parent with the one-process code, so the first
problem reported, and its message, are the same as a one-process verify's.

Workers are forked from the process (spawned where there is no fork) and kept for the
next export or verify; they touch no inherited connection. Their tasks are ranges of a
few thousand records, at most ``IN_FLIGHT_PER_WORKER`` per worker waiting at a time, so
memory stays bounded on a log of any length.
"""

from __future__ import annotations

import atexit
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from uuid import UUID

from stakeledger.adapters.evm.bundle import (
    TOPIC_CREDITED,
    TOPIC_DEBITED,
    FoldError,
    checksum_address,
    stored_state_timestamp_micros,
)
from stakeledger.adapters.evm.canonical import canonical_json, loads_canonical
from stakeledger.adapters.evm.hashing import keccak
from stakeledger.adapters.evm.records import UINT256_MAX, ZERO_ADDRESS, ZERO_HASH, EventRecord

# Records per task: large enough that sending a task costs little beside its work.
CHUNK_RECORDS = 2_000
IN_FLIGHT_PER_WORKER = 3
# Below this many records the one-process path is used: starting workers costs more.
PARALLEL_MIN_RECORDS = 20_000
# The ABI head of a record: word 0 is the tuple's offset, then one word per field.
PREV_HASH_SLICE = slice(2 * 32, 3 * 32)
ACCOUNT_SLICE = slice(7 * 32 + 12, 8 * 32)
# The state keys LedgerFold.movement reads; a worker hands only these to the parent.
FOLD_KEYS = ("account_id", "kind", "amount_units", "decimals")

_pool: Any = None
_pool_size = 0


def worker_count(requested: int | None = None) -> int:
    """Worker processes to use: ``requested``, else one per core (1 means no workers)."""
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"workers must be a positive integer, got {requested!r}")
        return requested
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _get_pool(workers: int) -> Any:
    """A pool of ``workers`` processes, kept for the next export or verify in this process."""
    global _pool, _pool_size
    if _pool is not None and _pool_size == workers:
        return _pool
    shutdown()
    # Forked workers start at once, with this module and its imports loaded, and never
    # import the main script again. They use no inherited connection: a task carries its
    # records, and a result goes back through the pool's pipe.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    _pool = context.Pool(workers)
    _pool_size = workers
    # Stopped before the interpreter tears its modules down (the pool's finaliser needs them).
    atexit.register(shutdown)
    return _pool


def shutdown() -> None:
    """Stop the worker processes (they stop with the process too)."""
    global _pool, _pool_size
    if _pool is not None:
        atexit.unregister(shutdown)
        _pool.terminate()
        _pool.join()
    _pool, _pool_size = None, 0


def ordered_map(function: Callable[..., Any], tasks: Iterable[tuple], workers: int) -> Iterator[Any]:
    """``function(*task)`` for every task, on ``workers`` processes, results in task order.
    Tasks are taken from ``tasks`` only as results are collected, so few wait at once."""
    pool = _get_pool(workers)
    waiting: deque[Any] = deque()
    try:
        for task in tasks:
            waiting.append(pool.apply_async(function, task))
            if len(waiting) >= workers * IN_FLIGHT_PER_WORKER:
                yield waiting.popleft().get()
        while waiting:
            yield waiting.popleft().get()
    except BaseException:
        # A consumer that stops early (an invalid record) leaves tasks running: drop them.
        shutdown()
        raise


def chunks(items: Iterable[Any], size: int = CHUNK_RECORDS) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# Export ---------------------------------------------------------------------------------

# What a worker returns for one record: ("ok", encoded with zero prevHash and account,
# the fold's state keys, the jsonl line's middle and tail, (credit, debit) as encoded)
# or ("state", message) for a state export refuses, or ("raise", exception) for a
# record whose fields do not fit the ABI types (raised after the fold, as before).


def state_parts(stored_state: bytes) -> tuple[dict[str, Any], bytes, int]:
    """(the stored state's JSON object, its canonical JSON, its timestamp in microseconds);
    FoldError, TypeError or ValueError for a state an export refuses. A state of plain
    JSON (every one the ledger writes) is parsed and re-written by C code alone."""
    fast = loads_canonical(stored_state)
    if fast is not None:
        state, payload = fast
    else:
        state = json.loads(stored_state)
        if not isinstance(state, dict):
            raise FoldError("the stored state is not a JSON object")
        payload = canonical_json(state)
    return state, payload, stored_state_timestamp_micros(state)


def export_chunk(first_seq: int, rows: list[tuple[int, bytes, int, str, bytes]]) -> list[tuple]:
    """The per-record half of an export for records ``first_seq``, ``first_seq + 1``, ...
    Each row is (notification id, originator id bytes, originator version, topic, state)."""
    out: list[tuple] = []
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for offset, (_, id_bytes, version, topic, stored_state) in enumerate(rows):
        seq = first_seq + offset
        try:
            state, payload, stamp = state_parts(stored_state)
        except (FoldError, TypeError, ValueError) as error:
            out.append(("state", str(error)))
            return out  # the parent stops here
        facts = {key: state[key] for key in FOLD_KEYS if key in state}
        credit = debit = 0
        if topic == TOPIC_CREDITED or topic == TOPIC_DEBITED:
            amount = facts.get("amount_units")
            # What the fold returns when it accepts the movement; when it refuses, this
            # encoding is never used.
            if isinstance(amount, int) and not isinstance(amount, bool) and 0 < amount <= UINT256_MAX:
                credit, debit = (amount, 0) if topic == TOPIC_CREDITED else (0, amount)
        originator_id = UUID(bytes=id_bytes)
        try:
            record = EventRecord(
                seq, ZERO_HASH, originator_id, version, topic, stamp, ZERO_ADDRESS, credit, debit, payload
            )
            encoded = record.encode()
        except (TypeError, ValueError, OverflowError) as error:
            out.append(("raise", error, facts))
            continue
        middle = dumps(
            {
                "originatorId": str(originator_id),
                "originatorVersion": version,
                "topic": topic,
                "timestampMicros": stamp,
            }
        )[1:-1].encode("utf-8")
        tail = (
            dumps({"credit": str(credit), "debit": str(debit)})[1:-1].encode("utf-8")
            + b',"payload":'
            + payload
            + b"}\n"
        )
        out.append(("ok", encoded, facts, middle, tail, credit, debit))
    return out


_account_id_json: dict[str | None, bytes] = {}


def account_id_json(account_id: str | None) -> bytes:
    text = _account_id_json.get(account_id)
    if text is None:
        if len(_account_id_json) > 1 << 18:
            _account_id_json.clear()
        text = _account_id_json[account_id] = json.dumps(account_id, ensure_ascii=False).encode("utf-8")
    return text


def stitch(encoded: bytes, prev_hash: bytes, account: bytes) -> tuple[bytes, bytes]:
    """The record's bytes with its prevHash and account written in, and their keccak256."""
    data = bytearray(encoded)
    data[PREV_HASH_SLICE] = prev_hash
    data[ACCOUNT_SLICE] = account
    final = bytes(data)
    return final, keccak(final)


def jsonl_of(
    seq: int,
    notification_id: int,
    record_hash: bytes,
    prev_hash: bytes,
    middle: bytes,
    account: bytes,
    account_id: str | None,
    tail: bytes,
) -> bytes:
    """events.jsonl's line, byte for byte what bundle.jsonl_line writes."""
    return b"".join(
        (
            b'{"seq":%d,"notificationId":%d,"recordHash":"0x' % (seq, notification_id),
            record_hash.hex().encode("ascii"),
            b'","prevHash":"0x',
            prev_hash.hex().encode("ascii"),
            b'",',
            middle,
            b',"account":"',
            checksum_address(account).encode("ascii"),
            b'","accountId":',
            account_id_json(account_id),
            b",",
            tail,
        )
    )
