"""The EVM export commands: ``export``, ``export proof``, ``verify`` and ``import``.

``export`` is a command group whose callback runs the export when no subcommand is
given, so both of these work:

    stakeledger export --out DIR [--at SEQ] [--signing-key FILE]
    stakeledger export proof ACCOUNT [--at SEQ | --from DIR]

``export-proof ACCOUNT`` is the same as ``export proof ACCOUNT``, for scripts that
prefer one word. Long steps show progress bars on stderr (none with ``--json``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from stakeledger.cli.context import get_context
from stakeledger.cli.output import emit_json, error_console, say, table
from stakeledger.domain.rules.money import format_amount

if TYPE_CHECKING:
    from stakeledger.adapters.evm.bundle import ProgressFn

# The EVM stack (eth-abi, eth-account and the py_ecc curves it loads) costs about a second
# to import, so each command imports it when it runs: every other command starts without it.

export_app = typer.Typer(
    help="Export the ledger as ABI records, OpenZeppelin Merkle trees and a signed EIP-712 header.",
    invoke_without_command=True,
    no_args_is_help=False,
)

At = Annotated[
    Optional[int],
    typer.Option("--at", min=1, help="Export the log up to and including the SEQ-th event (default: all of it)."),
]


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
    app.command("export-proof")(proof)
    app.command("verify")(verify)
    app.command("import")(import_command)


@contextmanager
def progress_bars(enabled: bool) -> Iterator[ProgressFn]:
    """A ProgressFn that draws one rich bar per phase on stderr."""
    with Progress(
        TextColumn("{task.description:<26}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=error_console,
        transient=True,
        disable=not (enabled and error_console.is_terminal),
    ) as bars:
        tasks: dict[str, int] = {}

        def update(phase: str, done: int, total: int | None) -> None:
            task = tasks.get(phase)
            if task is None:
                task = tasks[phase] = bars.add_task(phase, total=total)
            bars.update(task, completed=done, total=total)

        yield update


Workers = Annotated[
    Optional[int],
    typer.Option(
        "--workers",
        min=1,
        help="Worker processes that share the per-record work (default: one per core on a long log; 1: none).",
    ),
]


@export_app.callback()
def export(
    ctx: typer.Context,
    out: Annotated[Optional[Path], typer.Option("--out", help="Directory to write the export into.")] = None,
    at: At = None,
    signing_key: Annotated[
        Optional[Path],
        typer.Option("--signing-key", help="File holding a 0x-hex secp256k1 private key that signs the header."),
    ] = None,
    domain_name: Annotated[
        str, typer.Option("--domain-name", envvar="STAKELEDGER_EIP712_NAME", help="EIP-712 domain name.")
    ] = "stakeledger",
    domain_version: Annotated[
        str, typer.Option("--domain-version", envvar="STAKELEDGER_EIP712_VERSION", help="EIP-712 domain version.")
    ] = "1",
    chain_id: Annotated[
        int, typer.Option("--chain-id", envvar="STAKELEDGER_EIP712_CHAIN_ID", min=0, help="EIP-712 domain chainId.")
    ] = 1,
    verifying_contract: Annotated[
        str,
        typer.Option(
            "--verifying-contract",
            envvar="STAKELEDGER_EIP712_CONTRACT",
            help="EIP-712 domain verifyingContract address.",
        ),
    ] = "0x" + "00" * 20,
    force: Annotated[bool, typer.Option("--force", help="Replace an export already in --out.")] = False,
    workers: Workers = None,
) -> None:
    """Write the export (run without a subcommand), or see 'export proof'."""
    if ctx.invoked_subcommand is not None:
        return
    if out is None:
        raise typer.BadParameter("--out DIR is required to write an export", param_hint="--out")
    from stakeledger.adapters.evm.export import export_ledger, load_signing_key, make_domain

    context = get_context(ctx)
    domain = make_domain(domain_name, domain_version, chain_id, verifying_contract)
    key = load_signing_key(signing_key) if signing_key is not None else None
    app = context.app
    with progress_bars(not context.as_json) as progress:
        summary = export_ledger(
            app, out, at=at, signing_key=key, domain=domain, overwrite=force, progress=progress, workers=workers
        )
    if context.as_json:
        emit_json(summary.as_json())
        return
    decimals = summary.decimals
    supply = (
        format_amount(summary.total_supply_units, decimals) if decimals is not None else str(summary.total_supply_units)
    )
    table(
        f"Export — {summary.out_dir}",
        ["last seq", "accounts", "balance rows", "total supply", "seconds"],
        [[summary.last_seq, summary.accounts, summary.balance_rows, supply, f"{summary.seconds:.2f}"]],
        right=["last seq", "accounts", "balance rows", "total supply", "seconds"],
    )
    say(f"eventsRoot    {summary.events_root}")
    say(f"balancesRoot  {summary.balances_root}")
    say(f"snapshotId    {summary.snapshot_id}")
    say(f"EIP-712 hash  {summary.typed_data_hash}")
    say(f"signer        {summary.signer}" if summary.signer else "signer        (unsigned: pass --signing-key FILE)")
    if summary.replaced == "interrupted":
        say(f"replaced the leftovers of an interrupted export in {summary.out_dir} (it had no manifest.json)")


@export_app.command("proof")
def proof(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="Account id, e.g. alice or pool:ART-1.")],
    at: At = None,
    from_dir: Annotated[
        Optional[Path], typer.Option("--from", help="Read the proof from this export directory instead of the ledger.")
    ] = None,
) -> None:
    """One account's balance row and its Merkle proof against the balances root."""
    from stakeledger.adapters.evm.export import balance_proof, proof_from_export

    context = get_context(ctx)
    if from_dir is not None:
        if at is not None:
            raise typer.BadParameter(
                "--at and --from exclude each other: an export is at one position", param_hint="--at"
            )
        document = proof_from_export(from_dir, account)
    else:
        parent_at = ctx.parent.params.get("at") if ctx.parent is not None else None
        with progress_bars(not context.as_json) as progress:
            document = balance_proof(context.app, account, at=at if at is not None else parent_at, progress=progress)
    if context.as_json:
        emit_json(document)
        return
    decimals = document["decimals"]
    shown = format_amount(int(document["balance"]), decimals) if decimals is not None else document["balance"]
    table(
        f"Balance proof — {account} at seq {document['lastSeq']}",
        ["address", "balance", "balance units", "proof nodes"],
        [[document["address"], shown, document["balance"], len(document["proof"])]],
        right=["balance", "balance units", "proof nodes"],
    )
    say(f"balancesRoot  {document['balancesRoot']}")
    say(f"leaf          {document['leaf']}")
    for index, node in enumerate(document["proof"]):
        say(f"proof[{index:>2}]     {node}")


Signer = Annotated[
    Optional[str],
    typer.Option(
        "--signer",
        metavar="ADDRESS",
        help="Refuse the export unless its header is signed by this 0x address (implies --require-signature).",
    ),
]
RequireSignature = Annotated[
    bool,
    typer.Option("--require-signature", help="Refuse an unsigned export (any signer is accepted unless --signer)."),
]
UNPINNED_NOTE = (
    "note: no --signer given, so this proves integrity, not origin: anyone can write and sign "
    "a consistent export; pass --signer ADDRESS to accept only the key you trust"
)


def verify(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="An export directory written by 'stakeledger export'.")],
    signer: Signer = None,
    require_signature: RequireSignature = False,
    workers: Workers = None,
) -> None:
    """Check every record, root, balance and signature of an export; name the first bad one."""
    from stakeledger.adapters.evm.bundle import ExportInvalidError
    from stakeledger.adapters.evm.verification import verify_export

    context = get_context(ctx)
    try:
        with progress_bars(not context.as_json) as progress:
            result = verify_export(
                directory, progress=progress, signer=signer, require_signature=require_signature, workers=workers
            )
    except ExportInvalidError as error:
        if context.as_json:
            emit_json(
                {
                    "ok": False,
                    "code": error.code,
                    "file": error.file,
                    "seq": error.seq,
                    "problem": error.problem,
                    "message": str(error),
                }
            )
        raise
    if context.as_json:
        emit_json(result.as_json())
        return
    table(
        f"Verified — {directory}",
        ["last seq", "accounts", "balance rows", "total supply units", "signer", "seconds"],
        [
            [
                result.last_seq,
                result.accounts,
                result.balance_rows,
                result.total_supply_units,
                result.signer or "(unsigned)",
                f"{result.seconds:.2f}",
            ]
        ],
        right=["last seq", "accounts", "balance rows", "total supply units", "seconds"],
    )
    say(f"eventsRoot    {result.events_root}")
    say(f"balancesRoot  {result.balances_root}")
    say(f"snapshotId    {result.snapshot_id}")
    say("ok: every record, root, balance and signature checks out")
    if result.signer_pinned:
        say(f"signed by the pinned signer {result.signer}")
    else:
        say(UNPINNED_NOTE)


def import_command(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="An export directory written by 'stakeledger export'.")],
    db: Annotated[
        Optional[str], typer.Option("--db", help="The EMPTY target store (default: the global --db).")
    ] = None,
    signer: Signer = None,
    require_signature: RequireSignature = False,
) -> None:
    """Verify an export, then rebuild an empty event store from it in one transaction (e.g. SQLite -> PostgreSQL)."""
    from stakeledger.adapters.evm.importer import import_export

    context = get_context(ctx)
    target = db or context.url
    with progress_bars(not context.as_json) as progress:
        summary = import_export(
            directory, target, progress=progress, signer=signer, require_signature=require_signature
        )
    if context.as_json:
        emit_json(summary.as_json())
        return
    if summary.already_imported:
        say(f"{summary.target} already holds this export: read back and audited again, nothing written")
    table(
        f"Imported into {summary.target}",
        ["events", "accounts", "total supply units", "audit", "seconds"],
        [[summary.events, summary.accounts, summary.total_supply_units, "clean", f"{summary.seconds:.2f}"]],
        right=["events", "accounts", "total supply units", "seconds"],
    )
    say(f"eventsRoot    {summary.events_root}")
    say(f"balancesRoot  {summary.balances_root}")
    say("Build its read views with 'stakeledger projections catch-up' (the first read does it too).")
