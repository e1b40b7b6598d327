"""A store written by the release before the package move still opens and reads the same.

``tests/fixtures/ledger-before-layout.db`` is the seeded demo, written by commit 972914e
(the last release whose modules were top-level ``domain``, ``projections``, ...);
``ledger-before-layout.json`` is what that release's CLI printed for every read of it.
Today's CLI must print every one of those fields with the same value; it may print more.
One change is deliberate: positions are marked at exit value (what closing them now pays)
since issue 15, not at the pool's price, so the figures derived from marks (``MARKED``) may
differ; they must still be there, and no position may be worth more than its old mark.
"""

import json
import shutil
from pathlib import Path

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from tests.fixtures.dump_ledger import dump, run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# Figures derived from a position's mark: exit value today, the pool's price before issue 15.
MARKED = frozenset(
    {
        "value_units",
        "unrealized_pnl_units",
        "equity_units",
        "marked_units",
        "total_pnl_units",
        "total_return_pct",
        "concentration_top1_pct",
        "concentration_top3_pct",
    }
)


def missing_or_changed(
    expected: object, actual: object, path: str = "", ignore: frozenset[str] = frozenset()
) -> list[str]:
    """Where ``actual`` drops or changes something ``expected`` has (new keys are fine); a key
    in ``ignore`` must be there but may hold another value."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: not an object"]
        return [
            problem
            for key, value in expected.items()
            for problem in (
                [f"{path}/{key}: missing"]
                if key not in actual
                else []
                if key in ignore
                else missing_or_changed(value, actual[key], f"{path}/{key}", ignore)
            )
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: {len(expected)} items expected"]
        return [
            p
            for index, (e, a) in enumerate(zip(expected, actual))
            for p in missing_or_changed(e, a, f"{path}[{index}]", ignore)
        ]
    return [] if expected == actual else [f"{path}: {expected!r} became {actual!r}"]


def test_comparison_when_a_field_changes_or_goes_then_it_is_named_and_new_fields_pass():
    before = {"a": [{"b": 1, "c": 2}], "d": "x"}
    assert missing_or_changed(before, {"a": [{"b": 1, "c": 2, "new": 3}], "d": "x", "e": 0}) == []
    assert missing_or_changed(before, {"a": [{"b": 9}], "d": "x"}) == ["/a[0]/b: 1 became 9", "/a[0]/c: missing"]
    assert missing_or_changed(before, {"a": [{"b": 9, "c": 2}], "d": "x"}, ignore=frozenset({"b"})) == []
    assert missing_or_changed(before, {"a": [{"c": 2}], "d": "x"}, ignore=frozenset({"b"})) == ["/a[0]/b: missing"]


def position_values(reads: dict) -> dict[tuple[str, str], int]:
    """Each position's value in every `portfolio show` read: (read, position id) -> units."""
    return {
        (name, position["position_id"]): int(position["value_units"])
        for name, read in reads.items()
        if name.startswith("portfolio show")
        for position in read["positions"]
        if position.get("value_units") is not None
    }


@pytest.fixture
def old_store(tmp_path: Path) -> str:
    path = tmp_path / "old.db"
    shutil.copyfile(FIXTURES / "ledger-before-layout.db", path)
    return f"sqlite:///{path}"


def test_old_store_when_read_by_todays_code_then_every_read_equals_what_its_release_printed(old_store):
    expected = json.loads((FIXTURES / "ledger-before-layout.json").read_text())
    today = dump(old_store)
    assert missing_or_changed(expected, today, ignore=MARKED) == []
    # Selling shares back moves the price against the seller: an exit value is at most the old mark.
    old_values, values = position_values(expected), position_values(today)
    assert old_values and values.keys() == old_values.keys()
    assert all(values[key] <= old_values[key] for key in old_values)
    assert any(values[key] < old_values[key] for key in old_values)


def test_old_store_when_views_rebuilt_then_every_read_is_unchanged(old_store):
    expected = json.loads((FIXTURES / "ledger-before-layout.json").read_text())
    rebuilt = run(old_store, "projections", "rebuild", "--all")
    assert set(rebuilt["views"]) >= {"statements", "markets", "portfolio", "settlements"}
    assert missing_or_changed(expected, dump(old_store), ignore=MARKED) == []


def test_old_store_when_every_aggregate_is_loaded_then_each_reaches_its_last_version(old_store):
    app = open_ledger(old_store)
    last_version: dict = {}
    for notification in app.recorder.select_notifications(start=1, limit=100_000):
        last_version[notification.originator_id] = notification.originator_version
    assert len(last_version) > 50
    for originator_id, version in last_version.items():
        aggregate = app.repository.get(originator_id)
        assert aggregate.version == version, (type(aggregate).__qualname__, originator_id)
