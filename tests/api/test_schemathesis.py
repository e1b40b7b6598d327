"""Property test of the whole API from its own OpenAPI document: schemathesis generates
requests for every operation (valid and edge-case paths, queries, headers and bodies) and
sends them, schema-valid and schema-violating, with a valid admin key; no response may be a 5xx. Bounded: a few hundred
requests per store, on SQLite and PostgreSQL (whose text columns refuse NUL bytes and
whose integers stop at 2**63, so bad input must be refused before it gets there)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from stakeledger.api.app import create_app
from stakeledger.domain.service.clock import ManualClock
from tests.api.conftest import seed

EXAMPLES_PER_OPERATION = 12
# A hang guard, not a speed limit: the bound grows with the number of operations fuzzed.
MAX_SECONDS_PER_OPERATION = 4
# The portfolio and risk verbs (api/portfolio.py) are in the schema and so are fuzzed too.
PORTFOLIO_OPERATIONS = {
    "PUT /api/portfolio/{agent}/config",
    "PUT /api/portfolio/{agent}/markets/{artifact_id}/config",
    "POST /api/portfolio/{agent}/kelly",
    "PUT /api/portfolio/stops/{position_id}",
    "DELETE /api/portfolio/stops/{position_id}",
    "POST /api/portfolio/orders/batch",
    "POST /api/portfolio/{agent}/liquidate",
    "POST /api/orders/expire",
    "GET /api/portfolio/{agent}/summary",
    "GET /api/portfolio/{agent}/concentration",
    "GET /api/portfolio/{agent}/pairs",
    "GET /api/portfolio/{agent}/rebalance",
    "GET /api/portfolio/{agent}/attribution",
    "GET /api/market/positions/{position_id}",
}


@pytest.fixture
def served(durable_store_url: str) -> Iterator[tuple[object, dict[str, str]]]:
    app = create_app(durable_store_url, ManualClock())
    keys = seed(app.state.api.ledger)
    # Some state for generated ids to find: a position, a resting order and a bounty.
    ledger = app.state.api.ledger
    ledger.open_position("alice", "ART-1", "long", 10**6)
    ledger.place_limit_order("bob", "ART-1", "short", 10**6, 3 * 10**17)
    ledger.post_bounty("ART-1", "alice", 10**6)
    yield app, keys
    app.state.api.close()


def test_every_operation_when_fuzzed_with_an_admin_key_then_never_a_server_error(served):
    app, keys = served
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {keys['admin']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert PORTFOLIO_OPERATIONS <= {operation.label for operation in operations}
    started = time.monotonic()

    statuses: dict[int, int] = {}
    without_input: set[str] = set()
    for operation, mode in [(operation, mode) for operation in operations for mode in GenerationMode]:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(mode))
        def call(case) -> None:
            response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        try:
            call()
        except Unsatisfiable:
            # An operation that takes no input cannot be sent a schema-violating one.
            if mode is GenerationMode.POSITIVE:
                raise
            without_input.add(operation.label)

    assert len(operations) >= 26
    assert sum(statuses.values()) >= 2 * len(operations) * 2
    assert without_input <= {"GET /healthz", "GET /api/reputation", "GET /api/projections", "GET /api/audit"}
    assert max(statuses) < 500 and {200, 404, 422} <= set(statuses), statuses
    assert time.monotonic() - started < MAX_SECONDS_PER_OPERATION * len(operations)
