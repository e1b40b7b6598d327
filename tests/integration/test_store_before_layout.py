"""A store written by the release before the package move still opens and reads the same.

``tests/fixtures/ledger-before-layout.db`` is the seeded demo, written by commit 972914e
(the last release whose modules were top-level ``domain``, ``projections``, ...);
``ledger-before-layout.json`` is what that release's CLI printed for every read of it.
Today's CLI must print every one of those fields with the same value; it may print more.
"""

import json
import shutil
from pathlib import Path

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from tests.fixtures.dump_ledger import dump, run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def missing_or_changed(expected: object, actual: object, path: str = "") -> list[str]:
    """Where ``actual`` drops or changes something ``expected`` has (new keys are fine)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: not an object"]
        return [
            problem
            for key, value in expected.items()
            for problem in (
                [f"{path}/{key}: missing"]
                if key not in actual
                else missing_or_changed(value, actual[key], f"{path}/{key}")
            )
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: {len(expected)} items expected"]
        return [
            p
            for index, (e, a) in enumerate(zip(expected, actual))
            for p in missing_or_changed(e, a, f"{path}[{index}]")
        ]
    return [] if expected == actual else [f"{path}: {expected!r} became {actual!r}"]


def test_comparison_when_a_field_changes_or_goes_then_it_is_named_and_new_fields_pass():
    before = {"a": [{"b": 1, "c": 2}], "d": "x"}
    assert missing_or_changed(before, {"a": [{"b": 1, "c": 2, "new": 3}], "d": "x", "e": 0}) == []
    assert missing_or_changed(before, {"a": [{"b": 9}], "d": "x"}) == ["/a[0]/b: 1 became 9", "/a[0]/c: missing"]


@pytest.fixture
def old_store(tmp_path: Path) -> str:
    path = tmp_path / "old.db"
    shutil.copyfile(FIXTURES / "ledger-before-layout.db", path)
    return f"sqlite:///{path}"


def test_old_store_when_read_by_todays_code_then_every_read_equals_what_its_release_printed(old_store):
    expected = json.loads((FIXTURES / "ledger-before-layout.json").read_text())
    assert missing_or_changed(expected, dump(old_store)) == []


def test_old_store_when_views_rebuilt_then_every_read_is_unchanged(old_store):
    expected = json.loads((FIXTURES / "ledger-before-layout.json").read_text())
    rebuilt = run(old_store, "projections", "rebuild", "--all")
    assert set(rebuilt["views"]) >= {"statements", "markets", "portfolio", "settlements"}
    assert missing_or_changed(expected, dump(old_store)) == []


def test_old_store_when_every_aggregate_is_loaded_then_each_reaches_its_last_version(old_store):
    app = open_ledger(old_store)
    last_version: dict = {}
    for notification in app.recorder.select_notifications(start=1, limit=100_000):
        last_version[notification.originator_id] = notification.originator_version
    assert len(last_version) > 50
    for originator_id, version in last_version.items():
        aggregate = app.repository.get(originator_id)
        assert aggregate.version == version, (type(aggregate).__qualname__, originator_id)
