"""A rebuild writes its rows its own way: a view rebuilt from empty tables knows every row
it has (its cache is complete), so it looks nothing up and inserts the rows it creates
instead of upserting them. Whatever the way, its tables must equal, row for row, those of
a catch-up that followed the log as it grew, and those of the same rebuild on SQLite."""

from __future__ import annotations

import pytest

from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.projections import runner as runner_module
from stakeledger.projections.runner import Runner
from stakeledger.projections.store import ViewStore, memory_store
from tests.projections.scenario import bulk_log, head, run_scenario, view_rows


def _grown_and_followed(ledger: StakeLedger, clock: ManualClock, store: ViewStore) -> dict:
    """The log written in three parts, the views caught up in small pages after each."""
    run_scenario(ledger, clock)
    Runner(ledger, store, page_size=37).catch_up()
    bulk_log(ledger, clock, 1_500, seed=3)
    Runner(ledger, store, page_size=211).catch_up()
    bulk_log(ledger, clock, 1_500, seed=4)
    Runner(ledger, store, page_size=211).catch_up()
    return view_rows(store)


@pytest.mark.parametrize("cache_rows", [None, 40], ids=["cache-kept", "cache-trimmed"])
def test_rebuild_when_pages_create_and_update_rows_then_equals_the_followed_views_and_sqlites(
    ledger: StakeLedger, clock: ManualClock, store: ViewStore, monkeypatch: pytest.MonkeyPatch, cache_rows: int | None
) -> None:
    followed = _grown_and_followed(ledger, clock, store)
    if cache_rows is not None:
        # A trimmed cache is no longer complete: rows are looked up and upserted again.
        monkeypatch.setattr(runner_module, "CACHE_ROWS_MAX", cache_rows)
    report = Runner(ledger, store, page_size=1_000).rebuild()
    assert report.head == head(ledger) and report.pages > 2
    assert view_rows(store) == followed
    on_sqlite = memory_store()
    try:
        Runner(ledger, on_sqlite, page_size=1_000).rebuild()
        assert view_rows(on_sqlite) == followed
    finally:
        on_sqlite.close()
    assert all(followed[name] for name in ("statement_lines", "portfolio_positions", "candles", "settlements"))
