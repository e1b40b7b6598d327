"""Fixtures for the projection tests: a ledger with the scenario run on it, and its view store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.projections.store import ViewStore, open_store
from tests.projections.scenario import Scenario, run_scenario


@pytest.fixture
def scenario(ledger: StakeLedger, clock: ManualClock) -> Scenario:
    return run_scenario(ledger, clock)


@pytest.fixture
def store(ledger: StakeLedger) -> Iterator[ViewStore]:
    views = open_store(ledger)
    yield views
    views.close()
