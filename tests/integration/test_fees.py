"""Trade fees per market (issue 15): a market listed with ``fee_bps`` charges
ceil(amount · bps / 10 000) on top of every buy's cost (market orders and limit fills, whose
escrow covers both) and withholds it from every sale's proceeds (closes, partial closes,
take-profits); each fee is a ``trade:fee`` transfer to ``sys:fees``. A market without a fee
writes exactly what it always did. On memory, SQLite and PostgreSQL.
"""

from __future__ import annotations

import sys

import pytest

from stakeledger.cli.main import main
from stakeledger.domain.decisions.pool import fee_units
from stakeledger.domain.errors import InsufficientFundsError, InvalidInputError
from stakeledger.domain.model.accounts import FEES, order_escrow_account_id
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.vocabulary import Reason
from stakeledger.projections import queries
from stakeledger.projections.audit import audit
from stakeledger.projections.runner import Runner
from stakeledger.projections.store import open_store
from tests.integration.test_markets import (
    ART,
    FUNDS_UNITS,
    LIQUIDITY_UNITS,
    TOKEN,
    balance_or_zero,
    open_funded,
    position_of,
    price,
    state_of,
)

FEE_BPS = 250  # 2.5 %


def fee_market(ledger: StakeLedger, fee_bps: int = FEE_BPS) -> None:
    open_funded(ledger, "alice", "bob")
    ledger.list_artifact(ART, "A market with a fee", LIQUIDITY_UNITS, fee_bps=fee_bps)


def assert_fees_conserved(ledger: StakeLedger, charged_units: int) -> None:
    report = audit(ledger)
    assert report.clean, report.violations
    assert report.fees_units == charged_units == balance_or_zero(ledger, FEES)


def test_fee_when_buying_at_market_then_charged_on_top_of_the_cost_to_sys_fees(ledger: StakeLedger):
    fee_market(ledger)
    quote = ledger.quote(ART, "long", tokens_units=40 * TOKEN)
    assert (quote["fee_bps"], int(quote["fee_units"])) == (FEE_BPS, TOKEN)
    assert int(quote["total_units"]) == 41 * TOKEN

    result = ledger.open_position("alice", ART, "long", 40 * TOKEN)

    assert int(result["fee_units"]) == TOKEN
    assert ledger.balance_of("alice") == FUNDS_UNITS - 41 * TOKEN
    assert position_of(ledger, result["position"]).cost_units == 40 * TOKEN  # the fee is not cost basis
    assert ledger.artifact_state(ART)["fee_bps"] == FEE_BPS
    assert_fees_conserved(ledger, TOKEN)


def test_fee_when_closing_whole_or_part_then_withheld_from_the_proceeds(ledger: StakeLedger):
    fee_market(ledger)
    position_id = ledger.open_position("alice", ART, "long", 40 * TOKEN)["position"]
    charged = TOKEN
    quantity = position_of(ledger, position_id).quantity_units
    for shares in (quantity // 3, None):
        before = ledger.balance_of("alice")
        result = ledger.close_position(position_id, shares_units=shares)
        proceeds = int(result["proceeds_units"])
        fee = -(-proceeds * FEE_BPS // 10_000)
        assert int(result["fee_units"]) == fee > 0
        assert ledger.balance_of("alice") == before + proceeds - fee
        charged += fee
    assert_fees_conserved(ledger, charged)


def test_fee_when_a_limit_order_fills_then_its_escrow_pays_cost_and_fee_and_never_more(ledger: StakeLedger):
    fee_market(ledger)
    order = ledger.place_limit_order("alice", ART, "short", 10 * TOKEN, price("0.45"))
    assert order["status"] == "open"
    trade = ledger.open_position("bob", ART, "long", 60 * TOKEN)  # the short gets cheaper than 0.45
    (fill,) = trade["fills"]
    cost, fee = int(fill["cost_units"]), int(fill["fee_units"])
    assert fee == fee_units(cost, FEE_BPS) and cost + fee <= 10 * TOKEN
    artifact = ledger.get_artifact(ART)
    left = artifact.orders[order["order"]]["remaining_units"] if order["order"] in artifact.orders else 0
    assert left == 10 * TOKEN - cost - fee == balance_or_zero(ledger, order_escrow_account_id(ART))
    assert_fees_conserved(ledger, int(trade["fee_units"]) + fee)


def test_fee_when_statements_are_read_then_each_fee_is_a_line_of_its_own(ledger: StakeLedger):
    fee_market(ledger)
    ledger.open_position("alice", ART, "long", 40 * TOKEN)
    store = open_store(ledger)
    try:
        Runner(ledger, store).catch_up()
        mine = queries.statement(store, "alice")["lines"]
        house = queries.statement(store, FEES)
    finally:
        store.close()
    fees = [line for line in mine if line["reason"] == Reason.TRADE_FEE]
    assert [int(line["delta_units"]) for line in fees] == [-TOKEN]
    assert int(house["balance_units"]) == TOKEN and house["kind"] == "fees"


def test_fee_when_the_account_cannot_pay_cost_and_fee_then_refused_and_nothing_written(ledger: StakeLedger):
    fee_market(ledger)
    before = state_of(ledger)
    with pytest.raises(InsufficientFundsError):
        ledger.open_position("alice", ART, "long", FUNDS_UNITS)  # the cost fits, the fee does not
    assert state_of(ledger) == before


@pytest.mark.parametrize("fee_bps", [-1, 1_001, True, 2.5])
def test_fee_when_the_rate_is_out_of_range_then_the_listing_is_refused_and_nothing_written(ledger, fee_bps):
    open_funded(ledger, "alice")
    events = ledger.recorder.max_notification_id()
    with pytest.raises(InvalidInputError):
        ledger.list_artifact(ART, "Bad fee", LIQUIDITY_UNITS, fee_bps=fee_bps)
    assert ledger.recorder.max_notification_id() == events


def test_fee_when_zero_then_no_fee_event_or_transfer_is_written(ledger: StakeLedger):
    open_funded(ledger, "alice")
    ledger.list_artifact(ART, "No fee", LIQUIDITY_UNITS)
    position_id = ledger.open_position("alice", ART, "long", 10 * TOKEN)["position"]
    ledger.close_position(position_id)
    names = [type(event).__name__ for event in ledger.events.get(ledger.get_artifact(ART).id)]
    assert "FeeSet" not in names
    assert balance_or_zero(ledger, FEES) == 0
    assert_fees_conserved(ledger, 0)


def test_fee_when_exported_then_verify_passes_and_an_import_holds_the_fee_account(ledger: StakeLedger, tmp_path):
    from stakeledger.adapters.evm.export import export_ledger
    from stakeledger.adapters.evm.importer import import_export
    from stakeledger.adapters.evm.verification import verify_export
    from stakeledger.adapters.persistence.store_url import open_ledger

    fee_market(ledger)
    position_id = ledger.open_position("alice", ART, "long", 40 * TOKEN)["position"]
    ledger.close_position(position_id, shares_units=TOKEN)
    held = ledger.balance_of(FEES)
    out = tmp_path / "export"

    export_ledger(ledger, out)

    assert verify_export(out).events_root
    assert f'"{Reason.TRADE_FEE.value}"' in (out / "events.jsonl").read_text()
    target = f"sqlite:///{tmp_path / 'imported.db'}"
    assert import_export(out, target).audit_clean is True
    imported = open_ledger(target)
    try:
        assert imported.balance_of(FEES) == held
    finally:
        imported.close()


def test_cli_when_listing_with_a_fee_then_the_quote_shows_it(durable_store_url, capsys, monkeypatch):
    from stakeledger.adapters.persistence.store_url import open_ledger

    app = open_ledger(durable_store_url)
    try:
        app.initialise(decimals=6)
    finally:
        app.close()

    def run(*args: str) -> tuple[int | str, str, str]:
        monkeypatch.setattr(sys, "argv", ["stakeledger", "--db", durable_store_url, *args])
        try:
            main()
            code: int | str = 0
        except SystemExit as done:
            code = done.code or 0
        out, err = capsys.readouterr()
        return code, out, err

    code, _, err = run("artifact", "add", ART, "--title", "Fee", "--liquidity", "100", "--fee-bps", "100")
    assert code == 0, err
    code, out, err = run("--json", "artifact", "quote", ART, "--side", "long", "--tokens", "50")
    assert code == 0, err
    assert '"fee_units": "500000"' in out
    code, out, err = run("artifact", "quote", ART, "--side", "long", "--tokens", "50")
    assert code == 0 and "fee" in out and "0.5" in out


@pytest.fixture
def api(store_url, clock):
    from tests.api.conftest import make_api

    yield from make_api(store_url, clock)


def test_api_when_listing_with_a_fee_then_the_quote_and_the_trade_show_it(api):
    head = api.head()
    refused = api.post(
        "/api/market/artifacts", {"artifact": "FEE", "title": "Fee", "liquidity": "100", "fee_bps": 1_001}, api.admin
    )
    assert refused.status_code == 422 and api.head() == head
    listed = api.post(
        "/api/market/artifacts", {"artifact": "FEE", "title": "Fee", "liquidity": "100", "fee_bps": 100}, api.admin
    )
    assert listed.status_code == 201, listed.text
    assert listed.json()["fee_bps"] == 100
    quote = api.get("/api/market/artifacts/FEE/quote", params={"side": "long", "tokens": "50"}).json()
    assert (quote["fee"], quote["total"]) == ("0.5", "50.5")
    trade = api.buy(api.alice, artifact="FEE", tokens="50").json()
    assert trade["fee"] == "0.5"
    assert api.ledger.balance_of(FEES) == TOKEN // 2
