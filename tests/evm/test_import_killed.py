"""A killed import leaves nothing half-done: ``stakeledger import`` is SIGKILLed at exact points
(before, inside and after its one transaction) on SQLite and PostgreSQL; every command then sees
either an empty store or the whole export, and a rerun completes."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from stakeledger.adapters.evm.bundle import ImportTargetNotEmptyError
from stakeledger.adapters.evm.importer import import_export, stored_event_count
from stakeledger.adapters.persistence.store_url import open_ledger
from tests.evm.hostile import (
    KILL_TEST_TRANSFERS,
    balances,
    build_small_ledger,
    make_export,
    run_child_killed_at,
    run_cli,
)

EVENTS = 9 + 2 * KILL_TEST_TRANSFERS  # 2,009: one batch of 2,000 and one of 9
# (progress phase, done): the child kills itself the first time that phase reports that far.
KILL_POINTS = {
    "after the first batch": ("importing events", 2_000),
    "before the commit": ("importing events", EVENTS),  # reported inside the transaction
    "after the commit": ("exporting events", 0),  # the read-back, once everything is committed
}


@pytest.fixture(scope="module")
def kill_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    directory = tmp_path_factory.mktemp("killed-import") / "export"
    return directory, make_export(directory, transfers=KILL_TEST_TRANSFERS)


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_import_when_killed_at_a_point_then_store_is_empty_or_whole_and_a_rerun_completes(
    point: str, kill_export: tuple[Path, dict[str, int]], durable_store_url: str, capsys, monkeypatch
) -> None:
    directory, expected = kill_export
    url = durable_store_url
    phase, at = KILL_POINTS[point]

    killed = run_child_killed_at(phase, at, "import", str(directory), "--db", url)

    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    if point == "after the commit":
        # Committed whole: every command sees the complete ledger.
        assert stored_event_count(url) == EVENTS
    else:
        # Nothing of the transaction is visible: no command can read a truncated ledger.
        assert stored_event_count(url) == 0
        code, _, err = run_cli(capsys, monkeypatch, "--db", url, "audit")
        assert code != 0 and "NOT_INITIALISED" in err, err
        code, _, err = run_cli(capsys, monkeypatch, "--db", url, "account", "show", "alice")
        assert code != 0, err

    summary = import_export(directory, url)

    # import_export audits the store it wrote (or found) and raises unless the audit is clean.
    assert summary.audit_clean and summary.already_imported == (point == "after the commit")
    app = open_ledger(url)
    try:
        assert balances(app) == expected
        # Ids start at 1 again, even after a PostgreSQL transaction drew 2,000 of them and rolled back.
        assert app.recorder.max_notification_id() == EVENTS
    finally:
        app.close()


def test_import_when_target_holds_as_many_other_events_then_refused_and_target_unchanged(
    tmp_path: Path, durable_store_url: str
) -> None:
    directory = tmp_path / "export"
    make_export(directory)
    other = build_small_ledger(durable_store_url, seed=99)  # as many events, other ids
    before = other.recorder.max_notification_id()
    other.close()

    with pytest.raises(ImportTargetNotEmptyError, match="already holds events"):
        import_export(directory, durable_store_url)

    assert stored_event_count(durable_store_url) == before
