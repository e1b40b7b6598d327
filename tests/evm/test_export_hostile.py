"""Hostile export directories: JSON nested 200,000 deep, symlinks to /dev/zero, FIFOs, files the
manifest does not list, sizes beyond the manifest's, and the leftovers of a killed export.
Each is one clear refusal and nothing written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from pathlib import Path

import pytest

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
)
from stakeledger.adapters.evm.export import export_ledger, proof_from_export
from stakeledger.adapters.evm.export_files import MAX_JSON_DEPTH, json_too_deep, partial_name
from stakeledger.adapters.evm.importer import import_export, stored_event_count
from stakeledger.adapters.evm.verification import verify_export
from tests.evm.hostile import (
    assert_clean_refusal,
    build_small_ledger,
    deep_json,
    make_export,
    refresh_manifest_entry,
    run_child,
    run_child_killed_at,
)

HOSTILE_LEVELS = 200_000  # what segfaulted verify and import (issue 20, item 1)
IN_PROCESS_LEVELS = 2_000  # deep enough to refuse, shallow enough never to hurt this process


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hostile") / "export"
    make_export(directory)
    return directory


@pytest.fixture
def export_copy(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "export"
    shutil.copytree(pristine, copy)
    return copy


def refused(directory: Path, target_url: str | None = None) -> ExportInvalidError:
    """verify refuses the directory; so does import, which writes nothing."""
    with pytest.raises(ExportInvalidError) as caught:
        verify_export(directory)
    if target_url is not None:
        with pytest.raises(ExportInvalidError):
            import_export(directory, target_url)
        assert stored_event_count(target_url) == 0
    return caught.value


# Deep JSON (issue 20, item 1) ---------------------------------------------------------------


def _plant_deep(directory: Path, name: str, levels: int) -> None:
    if name == EVENTS_JSONL:
        lines = (directory / name).read_bytes().splitlines(keepends=True)
        (directory / name).write_bytes(deep_json(levels) + b"\n" + b"".join(lines[1:]))
    else:
        (directory / name).write_bytes(deep_json(levels))
    if name != MANIFEST:
        refresh_manifest_entry(directory, name)  # so the size bound lets the bytes through to the parser


@pytest.mark.parametrize("name", [MANIFEST, ACCOUNTS])
def test_cli_verify_when_a_file_nests_200000_deep_then_one_error_line_and_no_crash(
    name: str, export_copy: Path
) -> None:
    _plant_deep(export_copy, name, HOSTILE_LEVELS)

    completed = run_child("verify", str(export_copy))

    assert_clean_refusal(completed, "EXPORT_INVALID", name, f"nests deeper than {MAX_JSON_DEPTH} levels")


@pytest.mark.parametrize("name", [MANIFEST, ACCOUNTS])
def test_cli_import_when_a_file_nests_200000_deep_then_refused_and_nothing_written(
    name: str, export_copy: Path, durable_store_url: str
) -> None:
    _plant_deep(export_copy, name, HOSTILE_LEVELS)

    completed = run_child("import", str(export_copy), "--db", durable_store_url)

    assert_clean_refusal(completed, "EXPORT_INVALID", name, "nests deeper")
    assert stored_event_count(durable_store_url) == 0


@pytest.mark.parametrize("name", [MANIFEST, HEADER, ACCOUNTS, EVENTS_TREE, BALANCES_TREE, EVENTS_JSONL])
def test_verify_when_any_json_file_nests_too_deep_then_refused_naming_it(name: str, export_copy: Path) -> None:
    _plant_deep(export_copy, name, IN_PROCESS_LEVELS)

    error = refused(export_copy)

    assert error.file == name and "nests deeper" in error.problem, str(error)


def test_json_too_deep_when_depth_is_at_the_bound_then_allowed_and_one_more_refused() -> None:
    at_bound = b'{"a":' * (MAX_JSON_DEPTH - 1) + b'["]]]\\"[[["]' + b"}" * (MAX_JSON_DEPTH - 1)
    assert json.loads(at_bound) and not json_too_deep(at_bound)
    assert json_too_deep(b"[" + at_bound + b"]")
    assert json_too_deep(b"[" * (MAX_JSON_DEPTH + 1))  # truncated, still too deep to parse
    assert not json_too_deep(b"[1," * 10 + b"]]")  # shallow: the parser reports the syntax error
    assert not json_too_deep(b"[" + b"[[]]," * 10_000 + b"[]]")  # wide is fine


def test_verify_when_the_manifest_is_larger_than_its_bound_then_refused_unparsed(export_copy: Path) -> None:
    (export_copy / MANIFEST).write_bytes(b'{"pad": "' + b"x" * (2 << 20) + b'"}')

    error = refused(export_copy)

    assert error.file == MANIFEST and "larger than" in error.problem


# Only regular files inside the directory (issue 18, items 1 and 2) ---------------------------


@pytest.mark.parametrize("name", [HEADER, EVENTS_ABI])
def test_verify_when_a_file_is_a_symlink_to_dev_zero_then_refused_and_import_writes_nothing(
    name: str, export_copy: Path, durable_store_url: str
) -> None:
    (export_copy / name).unlink()
    (export_copy / name).symlink_to("/dev/zero")

    error = refused(export_copy, durable_store_url)

    assert error.file == name and "symbolic link" in error.problem


def test_verify_when_a_file_is_a_symlink_leaving_the_directory_then_refused(export_copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    shutil.move(export_copy / ACCOUNTS, outside)
    (export_copy / ACCOUNTS).symlink_to(outside)

    error = refused(export_copy)

    assert error.file == ACCOUNTS and "symbolic link" in error.problem


def test_verify_when_accounts_json_is_a_fifo_then_refused_at_once_without_hanging(
    export_copy: Path, durable_store_url: str
) -> None:
    (export_copy / ACCOUNTS).unlink()
    os.mkfifo(export_copy / ACCOUNTS)
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            refused(export_copy, durable_store_url)
        except BaseException as error:  # reported below, in the test's own thread
            outcome.append(error)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=30)

    assert not worker.is_alive(), "verify or import blocked on the FIFO"
    assert not outcome, outcome
    with pytest.raises(ExportInvalidError, match="accounts.json: is a FIFO"):
        verify_export(export_copy)


def test_verify_when_a_directory_stands_where_a_file_is_expected_then_refused(export_copy: Path) -> None:
    (export_copy / EVENTS_TREE).unlink()
    (export_copy / EVENTS_TREE).mkdir()

    error = refused(export_copy)

    assert error.file == EVENTS_TREE and "is a directory" in error.problem


def test_verify_when_the_export_directory_is_a_symlink_then_refused(export_copy: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(export_copy, target_is_directory=True)

    error = refused(link)

    assert "symbolic link" in error.problem
    assert verify_export(export_copy).last_seq > 0  # the directory itself verifies


@pytest.mark.parametrize("stranger", ["notes.txt", ".hidden", "events.abi.bak"])
def test_verify_when_a_file_is_not_listed_in_the_manifest_then_refused_by_name(
    stranger: str, export_copy: Path, durable_store_url: str
) -> None:
    (export_copy / stranger).write_text("{}")

    error = refused(export_copy, durable_store_url)

    assert error.file == stranger and "not part of an export" in error.problem


def test_verify_when_a_file_is_larger_than_the_manifest_states_then_refused_without_reading_it(
    export_copy: Path, durable_store_url: str
) -> None:
    with open(export_copy / EVENTS_JSONL, "r+b") as handle:
        handle.truncate(16 << 30)  # 16 GiB, sparse: reading it would take minutes and all memory

    error = refused(export_copy, durable_store_url)

    assert error.file == MANIFEST and "events.jsonl is larger than" in error.problem


def test_export_proof_from_when_balances_tree_is_a_symlink_then_refused(export_copy: Path) -> None:
    (export_copy / BALANCES_TREE).unlink()
    (export_copy / BALANCES_TREE).symlink_to("/dev/zero")

    with pytest.raises(ExportInvalidError, match="symbolic link"):
        proof_from_export(export_copy, "alice")


# Interrupted exports (issue 18, item 3) ---------------------------------------------------------


def test_export_when_killed_while_writing_then_rerun_says_interrupted_and_replaces_it_without_force(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    url = f"sqlite:///{tmp_path / 'source.db'}"
    build_small_ledger(url).close()
    out = tmp_path / "out"

    killed = run_child_killed_at("writing trees", 2, "--db", url, "export", "--out", str(out))

    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    left = sorted(os.listdir(out))
    assert MANIFEST not in left and partial_name(EVENTS_ABI) in left, left
    with pytest.raises(ExportInvalidError, match="an interrupted export"):
        verify_export(out)
    again = run_child("--db", url, "export", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "interrupted export" in again.stdout
    assert sorted(os.listdir(out)) == sorted(ALL_FILES)
    assert verify_export(out).last_seq > 0


def test_export_when_renames_were_cut_short_then_rerun_replaces_without_force_but_a_complete_one_needs_it(
    tmp_path: Path,
) -> None:
    app = build_small_ledger(f"sqlite:///{tmp_path / 'source.db'}")
    try:
        out = tmp_path / "out"
        export_ledger(app, out)
        # Killed inside the rename loop: some files under their final names, others still
        # partial, and no manifest (the old one is removed first, the new one renamed last).
        (out / MANIFEST).unlink()
        shutil.move(out / HEADER, out / partial_name(HEADER))
        with pytest.raises(ExportInvalidError, match="interrupted export"):
            verify_export(out)

        summary = export_ledger(app, out)

        assert summary.replaced == "interrupted"
        assert verify_export(out).last_seq == summary.last_seq
        with pytest.raises(ExportError, match="already holds an export"):
            export_ledger(app, out)
        assert export_ledger(app, out, overwrite=True).replaced == "export"
    finally:
        app.close()


def test_export_when_out_holds_a_stranger_file_then_refused_and_nothing_written(tmp_path: Path) -> None:
    app = build_small_ledger(f"sqlite:///{tmp_path / 'source.db'}")
    try:
        out = tmp_path / "out"
        out.mkdir()
        (out / "notes.txt").write_text("mine")

        with pytest.raises(ExportError, match="not part of an export"):
            export_ledger(app, out, overwrite=True)

        assert os.listdir(out) == ["notes.txt"]
    finally:
        app.close()
