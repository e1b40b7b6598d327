"""The JSON reads the web page added (api/web/endpoints.py), on the in-memory store, SQLite
and PostgreSQL: who a key is, an agent's equity curve, the export roots and a balance proof.
Each answer is checked against the ledger computed another way, and each refusal writes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stakeledger.adapters.evm.export import build_snapshot
from stakeledger.adapters.evm.merkle import StandardMerkleTree
from stakeledger.domain.service.clock import ManualClock
from stakeledger.projections import dashboard
from tests.api.conftest import Api, make_api


@pytest.fixture
def api(store_url: str, clock: ManualClock) -> Iterator[Api]:
    yield from make_api(store_url, clock)


def test_whoami_when_a_key_is_sent_then_it_names_its_agent_and_scope(api: Api) -> None:
    alice = api.get("/api/whoami", api.alice)
    admin = api.get("/api/whoami", api.admin)

    assert alice.status_code == 200
    assert (alice.json()["agent"], alice.json()["scope"], alice.json()["admin"]) == ("alice", "trade", False)
    assert (admin.json()["agent"], admin.json()["scope"], admin.json()["admin"]) == ("operator", "admin", True)
    assert api.alice.startswith(f"sl_{alice.json()['key_id']}_")


@pytest.mark.parametrize("key", [None, "sl_0000000000000000_nope"])
def test_whoami_when_no_or_an_unknown_key_then_401(api: Api, key: str | None) -> None:
    response = api.get("/api/whoami", key)

    assert response.status_code == 401
    assert response.json()["error"] == "UNAUTHENTICATED"


def test_equity_when_alice_traded_then_it_is_the_dashboard_curve(api: Api) -> None:
    assert api.buy(api.alice, tokens="30").status_code == 201

    response = api.get("/api/portfolio/alice/equity", api.alice)

    assert response.status_code == 200
    expected = [[day.isoformat(), str(units)] for day, units in dashboard.equity_curve(api.ledger, "alice")]
    assert [[p["day"], p["equity_units"]] for p in response.json()["points"]] == expected
    assert expected  # a funded, trading agent has at least one day


@pytest.mark.parametrize(
    ("path", "key", "status", "code"),
    [
        ("/api/portfolio/alice/equity", "bob", 403, "FORBIDDEN"),
        ("/api/portfolio/alice/equity", None, 401, "UNAUTHENTICATED"),
        ("/api/portfolio/nobody/equity", "admin", 404, "UNKNOWN_ACCOUNT"),
        ("/api/export/proof/alice", "bob", 403, "FORBIDDEN"),
        ("/api/export/proof/nobody", "admin", 404, "UNKNOWN_ACCOUNT"),
        ("/api/export/roots", None, 401, "UNAUTHENTICATED"),
        ("/api/export/roots?at=0", "admin", 422, "INVALID_INPUT"),
    ],
)
def test_page_reads_when_refused_then_the_error_table_answers_and_nothing_is_written(
    api: Api, path: str, key: str | None, status: int, code: str
) -> None:
    head = api.head()

    response = api.get(path, getattr(api, key) if key else None)

    assert (response.status_code, response.json()["error"]) == (status, code)
    assert api.head() == head


def test_export_roots_when_asked_then_they_are_the_snapshot_header_at_that_seq(api: Api) -> None:
    assert api.buy(api.alice, tokens="12").status_code == 201
    snapshot = build_snapshot(api.ledger)

    latest = api.get("/api/export/roots", api.alice).json()
    earlier = api.get("/api/export/roots?at=3", api.alice).json()

    assert latest["lastSeq"] == snapshot.header.last_seq
    assert latest["balancesRoot"] == "0x" + snapshot.header.balances_root.hex()
    assert latest["eventsRoot"] == "0x" + snapshot.header.events_root.hex()
    assert latest["totalSupply"] == str(snapshot.header.total_supply)
    assert earlier["lastSeq"] == 3
    assert earlier["balancesRoot"] == "0x" + build_snapshot(api.ledger, at=3).header.balances_root.hex()


def test_export_proof_when_alice_asks_then_it_verifies_against_the_roots_endpoint(api: Api) -> None:
    assert api.buy(api.alice, tokens="7").status_code == 201

    proof = api.get("/api/export/proof/alice", api.alice).json()
    roots = api.get(f"/api/export/roots?at={proof['lastSeq']}", api.admin).json()

    assert proof["balance"] == str(api.ledger.balance_of("alice"))
    assert StandardMerkleTree.verify(
        roots["balancesRoot"], ("address", "uint256"), (proof["address"], int(proof["balance"])), proof["proof"]
    )
