"""How fast the EVM export runs on a large ledger: seconds, events/s and proofs/s.

    python bench/export.py [--accounts 100000] [--events 1000000] [--quick] [--proofs 10000]
                           [--no-verify] [--workers N] [--repeat N] [--keep DIR]

The ledger is a SQLite file in a temporary directory. Building a million events through
one command per transfer would take far longer than the export itself, so the store is
generated in bulk with the domain's own code: ``Account.open`` creates each account,
``Account.debit``/``credit`` record each side of a mint or transfer exactly as
``UnitOfWork.post`` does (same events, same order: debit side then credit side), the
application's mapper turns the pending events into stored events (payload validation
included), and ``app.recorder.insert_events`` writes them 20,000 per transaction. The
result is a valid ledger: the first events come from ``app.initialise``, every transfer
has both sides, no agent goes negative. (``--audit`` runs the audit to show it.)

Events: 2 (init) + A account openings + 2·A mints + 2 per transfer, transfers between
seeded random agents until the event count is reached.

Measured:
- export: ``export_ledger`` into an empty directory (read the log, ABI-encode and hash
  every record, write events.abi/events.jsonl, build both trees, write every file);
- proofs: ``get_proof`` for N balance rows of the exported balances tree, each checked
  with ``verify`` against the root (what a client does before a contract call);
- verify (unless ``--no-verify``): ``verify_export`` over the whole directory;
- raw: keccak256(abi.encode(record)) of the same records on every core, the ceiling the
  export and verify are held to: the records of events.abi are split into one range per
  worker process, each worker decodes its range (not timed), then all start together and
  each times ``keccak(eth_abi.encode([record type], [values]))`` over its range; the rate
  is the records over the slowest worker's seconds.

Goal (issue 17): export and verify each >= 0.6x the raw rate, in the same run. ``--workers``
sets the export's and verify's worker processes (default: one per core). ``--repeat N``
runs N rounds of export, verify and raw, one of each in turn, and counts each step's best
round: on a shared machine another process's load slows whichever step it overlaps, and
interleaved rounds give every step the same chances (the raw rate is the best of its
rounds too, so the ceiling is never lowered).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import log, machine_info, per_second, report

from stakeledger.adapters.evm import StandardMerkleTree, verify
from stakeledger.adapters.evm.bundle import BALANCES_TREE, EVENTS_ABI
from stakeledger.adapters.evm.export import export_ledger
from stakeledger.adapters.evm.parallel import worker_count
from stakeledger.adapters.evm.verification import verify_export
from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.model.accounts import TREASURY, Account, Transfer
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.projections.audit import audit

INSERT_BATCH = 20_000
MINT_UNITS = 1_000 * 10**18
SEED = 2026


def build_ledger(url: str, accounts: int, events: int) -> tuple[StakeLedger, dict[str, Any]]:
    clock = ManualClock()
    app = open_ledger(url, clock=clock)
    started = time.perf_counter()
    app.initialise(decimals=18)
    fixed = 2 + 3 * accounts
    if events < fixed:
        raise SystemExit(f"--events must be at least {fixed} for {accounts} accounts (init, opening and a mint each)")
    transfers = (events - fixed) // 2
    treasury = app.get_account(TREASURY)
    rng = random.Random(SEED)
    pending: list[Any] = []
    written = 2
    ids = iter(range(1, 1 << 62))

    def flush(force: bool = False) -> None:
        nonlocal pending, written
        if pending and (force or len(pending) >= INSERT_BATCH):
            app.recorder.insert_events([app.mapper.to_stored_event(event) for event in pending])
            written += len(pending)
            pending = []
            if written % 200_000 < INSERT_BATCH:
                log(f"  built {written:,} events")

    def post(debit: Account, credit: Account, amount: int, reason: str) -> None:
        transfer = Transfer(f"{next(ids):032x}", debit.account_id, credit.account_id, amount, reason)
        debit.debit(transfer, clock.now())
        credit.credit(transfer, clock.now())
        pending.extend(debit.collect_events())
        pending.extend(credit.collect_events())
        flush()

    agents: list[Account] = []
    for index in range(accounts):
        account = Account.open(f"agent-{index:07d}", clock.now())
        pending.extend(account.collect_events())
        agents.append(account)
        flush()
    for account in agents:
        post(treasury, account, MINT_UNITS, "mint")
    for number in range(transfers):
        if number % 1_000 == 0:
            clock.advance(seconds=1)
        source, destination = rng.sample(agents, 2)
        amount = rng.randint(1, max(1, source.balance_units // 100))
        post(source, destination, amount, "transfer")
    flush(force=True)
    seconds = time.perf_counter() - started
    return app, {"events": written, "transfers": transfers, "seconds": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=10_000, help="balance proofs to generate and verify")
    parser.add_argument("--quick", action="store_true", help="1,000 accounts, 12,000 events, 1,000 proofs")
    parser.add_argument("--no-verify", dest="verify", action="store_false", help="skip timing 'verify'")
    parser.add_argument(
        "--workers", type=int, help="worker processes for export and verify (default: one per core; 1: none)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of export, verify and raw, one of each in turn; each step counts its best round",
    )
    parser.add_argument("--audit", action="store_true", help="also audit the generated ledger (slow at 1M)")
    parser.add_argument("--keep", type=Path, help="keep the store and the export in this directory")
    args = parser.parse_args()
    if args.quick:
        args.accounts, args.events, args.proofs = 1_000, 12_000, 1_000

    directory = Path(tempfile.mkdtemp(prefix="stakeledger-bench-export-")) if args.keep is None else args.keep
    directory.mkdir(parents=True, exist_ok=True)
    try:
        run(args, directory)
    finally:
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)


def run(args: argparse.Namespace, directory: Path) -> None:
    url = f"sqlite:///{directory / 'ledger.db'}"
    log(f"building a ledger of {args.accounts:,} accounts and {args.events:,} events in {url}")
    app, built = build_ledger(url, args.accounts, args.events)
    log(f"  built {built['events']:,} events in {built['seconds']} s")
    audited: dict[str, Any] | None = None
    if args.audit:
        result = audit(app)
        audited = {"clean": result.clean, "seconds": round(result.seconds, 2)}
        log(f"  audit: {audited}")

    out = directory / "export"
    shutil.rmtree(out, ignore_errors=True)
    log("exporting")
    phases: dict[str, float] = {}
    last = {"phase": None, "at": time.perf_counter()}

    def progress(phase: str, done: int, total: int | None) -> None:
        now = time.perf_counter()
        if last["phase"] is not None:
            phases[last["phase"]] = phases.get(last["phase"], 0.0) + now - last["at"]
        last["phase"], last["at"] = phase, now

    # The worker count is passed on, so a small --quick log is exported in parallel too.
    cores = worker_count(args.workers)
    summary = export_ledger(app, out, progress=progress, workers=cores)
    progress("end", 0, None)
    export_rounds = [summary.seconds]
    log(f"  exported {summary.events:,} events in {summary.seconds:.1f} s")

    tree = StandardMerkleTree.load(json.loads((out / BALANCES_TREE).read_bytes()))
    count = min(args.proofs, len(tree))
    indices = random.Random(SEED).sample(range(len(tree)), count)
    started = time.perf_counter()
    proofs = [tree.get_proof(index) for index in indices]
    generate_seconds = time.perf_counter() - started
    root, encoding = tree.root, tree.leaf_encoding
    started = time.perf_counter()
    verified = sum(1 for index, proof in zip(indices, proofs) if verify(root, encoding, tree.at(index), proof))
    verify_proofs_seconds = time.perf_counter() - started
    if verified != count:
        raise SystemExit(f"only {verified} of {count} proofs verified")
    proof_seconds = generate_seconds + verify_proofs_seconds

    verify_rounds: list[float] = []
    raw_rounds: list[dict[str, Any]] = []
    for round_number in range(args.repeat):
        if round_number > 0:
            shutil.rmtree(out)
            export_rounds.append(export_ledger(app, out, workers=cores).seconds)
            log(f"  round {round_number + 1}: exported in {export_rounds[-1]:.1f} s")
        if args.verify:
            log("verifying the export")
            verify_rounds.append(verify_export(out, workers=cores).seconds)
            log(f"  verified in {verify_rounds[-1]:.1f} s")
        log(f"raw keccak256(abi.encode(record)) on {cores} processes")
        raw_rounds.append(raw_rate(out / EVENTS_ABI, cores))
        log(f"  {raw_rounds[-1]['records_per_second']:,.0f} records/s")
    app.close()
    # Each step's best round: the machine's other load only ever slows a round down.
    export_seconds = min(export_rounds)
    verify_seconds = min(verify_rounds) if verify_rounds else None
    raw = max(raw_rounds, key=lambda measured: measured["records_per_second"])

    sizes = {name: size for name, size in summary.files.items()}
    rows = [
        ["export", summary.events, round(export_seconds, 2), round(per_second(summary.events, export_seconds))],
        ["proofs (get + verify)", count, round(proof_seconds, 3), round(per_second(count, proof_seconds))],
    ]
    if verify_seconds is not None:
        rows.append(
            ["verify", summary.events, round(verify_seconds, 2), round(per_second(summary.events, verify_seconds))]
        )
    rows.append([f"raw keccak(abi.encode) x{cores}", raw["records"], raw["seconds"], raw["records_per_second"]])
    export_ratio = round(per_second(summary.events, export_seconds) / raw["records_per_second"], 3)
    verify_ratio = (
        None
        if verify_seconds is None
        else round(per_second(summary.events, verify_seconds) / raw["records_per_second"], 3)
    )
    rows.append(["export / raw", None, None, export_ratio])
    if verify_ratio is not None:
        rows.append(["verify / raw", None, None, verify_ratio])
    document = {
        "benchmark": "export",
        "backend": "sqlite",
        "accounts": args.accounts,
        "events": summary.events,
        "build": built,
        "audit": audited,
        "export": {
            "seconds": round(export_seconds, 2),
            "events_per_second": round(per_second(summary.events, export_seconds)),
            "balance_rows": summary.balance_rows,
            "file_bytes": sizes,
            "phase_seconds": {phase: round(seconds, 2) for phase, seconds in phases.items()},
        },
        "proofs": {
            "count": count,
            "seconds": round(proof_seconds, 3),
            "proofs_per_second": round(per_second(count, proof_seconds)),
            "get_proof_per_second": round(per_second(count, generate_seconds)),
            "verify_per_second": round(per_second(count, verify_proofs_seconds)),
        },
        "verify": None
        if verify_seconds is None
        else {
            "seconds": round(verify_seconds, 2),
            "events_per_second": round(per_second(summary.events, verify_seconds)),
        },
        "raw": raw,
        "rounds": {
            "count": args.repeat,
            "export_seconds": [round(seconds, 2) for seconds in export_rounds],
            "verify_seconds": [round(seconds, 2) for seconds in verify_rounds],
            "raw_records_per_second": [measured["records_per_second"] for measured in raw_rounds],
        },
        "workers": cores,
        "ratios": {"export_vs_raw": export_ratio, "verify_vs_raw": verify_ratio},
        "machine": machine_info(),
    }
    report(
        "export",
        f"EVM export — {args.accounts:,} accounts, {summary.events:,} events (SQLite)",
        ["step", "items", "seconds", "per second"],
        rows,
        document,
    )


# The raw rate -------------------------------------------------------------------------------


def _raw_worker(path: str, start: int, stop: int, barrier: Any, results: Any) -> None:
    from eth_abi import encode as abi_encode
    from eth_hash.auto import keccak

    from stakeledger.adapters.evm.records import EVENT_RECORD_ABI_TYPE, decode_record

    with open(path, "rb") as handle:
        lines = [line for number, line in enumerate(handle) if start <= number < stop]
    values = [decode_record(bytes.fromhex(line[2:-1].decode("ascii"))).abi_values() for line in lines]
    types = [EVENT_RECORD_ABI_TYPE]
    barrier.wait()
    started = time.perf_counter()
    for record in values:
        keccak(abi_encode(types, [record]))
    results.put((len(values), time.perf_counter() - started))


def _next_result(results: Any, workers: list[Any]) -> tuple[int, float]:
    """A worker's (records, seconds); a worker that died without one (killed, or an
    exception: its traceback is on stderr) stops the benchmark instead of hanging it."""
    import queue

    while True:
        try:
            return results.get(timeout=5)
        except queue.Empty:
            failed = [worker.exitcode for worker in workers if worker.exitcode not in (None, 0)]
            if failed:
                raise SystemExit(f"a raw-rate worker exited with {failed[0]} before reporting") from None


def raw_rate(abi_path: Path, processes: int) -> dict[str, Any]:
    """keccak256(abi.encode(record)) over every record of ``abi_path`` on ``processes`` cores."""
    import multiprocessing

    with abi_path.open("rb") as handle:
        total = sum(1 for _ in handle)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    step = -(-total // processes)
    workers = [
        context.Process(
            target=_raw_worker, args=(str(abi_path), i * step, min(total, (i + 1) * step), barrier, results)
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    measured = [_next_result(results, workers) for _ in workers]
    for worker in workers:
        worker.join()
    records = sum(count for count, _ in measured)
    seconds = max(elapsed for _, elapsed in measured)
    return {
        "records": records,
        "processes": processes,
        "seconds": round(seconds, 3),
        "records_per_second": round(per_second(records, seconds)),
        "per_process_seconds": [round(elapsed, 3) for _, elapsed in measured],
    }


if __name__ == "__main__":
    sys.exit(main())
