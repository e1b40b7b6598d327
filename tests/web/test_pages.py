"""The web page in a real browser: Debian's headless Chromium (/usr/bin/chromium, never a
downloaded one) driven by Playwright, against ``stakeledger serve`` in its own process over
a seeded SQLite ledger, and PostgreSQL for the trading flow.

What a person does: load the markets list, open a market, sign in with a key, place an
order, watch the tape and the chart move without reloading (also for a trade someone else
made), see a refused order's error code, read their account, and as an auditor check a
balance proof in the browser, valid and tampered. Screenshots of the market and the
account page go to tests/web/screenshots/ (ignored by git)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from stakeledger.adapters.evm.export import build_snapshot
from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.service import apikeys
from stakeledger.domain.service.application import StakeLedger
from tests.api.serving import free_port, stop, wait_until_serving
from tests.conftest import fresh_postgres_url

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = 10**6
ART = "ART-1"
OTHER = "ART-2"
# Long enough for a server on a busy two-core machine; a pass never waits this long.
WAIT_MS = 20_000
expect.set_options(timeout=WAIT_MS)


@dataclass
class Site:
    base: str
    ledger: StakeLedger
    keys: dict[str, str]

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return httpx.get(f"{self.base}{path}", headers=headers, timeout=30)

    def buy(self, agent: str, tokens: str, side: str = "long", artifact: str = ART) -> dict:
        response = httpx.post(
            f"{self.base}/api/market/positions",
            json={"agent": agent, "artifact": artifact, "side": side, "tokens": tokens},
            headers={"Authorization": f"Bearer {self.keys[agent]}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return response.json()

    def head(self) -> int:
        return self.get("/healthz").json()["log_position"]


def seed(ledger: StakeLedger) -> dict[str, str]:
    """Two funded traders, two markets, a trade by bob, and keys: admin, alice, bob."""
    ledger.initialise(decimals=6)
    for agent in ("alice", "bob"):
        ledger.open_account(agent)
        ledger.mint(agent, 1000 * TOKEN)
    ledger.list_artifact(ART, "A replicated result", 100 * TOKEN, group="bio", min_hold_days=0)
    ledger.list_artifact(OTHER, "A contested result", 100 * TOKEN, min_hold_days=0)
    ledger.open_position("bob", ART, "long", 10 * TOKEN)
    return {
        "admin": apikeys.issue_key(ledger, "operator", apikeys.ADMIN)["key"],
        "alice": apikeys.issue_key(ledger, "alice", apikeys.TRADE)["key"],
        "bob": apikeys.issue_key(ledger, "bob", apikeys.TRADE)["key"],
    }


def serve(url: str, tmp_path: Path) -> Iterator[Site]:
    ledger = open_ledger(url)
    keys = seed(ledger)
    port = free_port()
    log_path = tmp_path / "serve.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "stakeledger.cli.main", "--db", url, "serve", "--port", str(port), "--no-access-log"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process, log_path)
        yield Site(base, ledger, keys)
    finally:
        stop(process, signal.SIGINT)
        log.close()
        ledger.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A server over a seeded SQLite ledger."""
    yield from serve(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def any_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """The same on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = fresh_postgres_url(request.getfixturevalue("postgres_server"))
    yield from serve(url, tmp_path)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: .ci/chromium.sh installs Debian's chromium")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Tab:
    page: Page
    requests: list[str]
    loads: list[str]
    errors: list[str]


@pytest.fixture
def tab(browser: Browser, site: Site) -> Iterator[Tab]:
    yield from open_tab(browser)


def open_tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    opened = Tab(page, [], [], [])
    page.on("request", lambda request: opened.requests.append(request.url))
    page.on("load", lambda _: opened.loads.append(page.url))
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    yield opened
    context.close()


def sign_in(page: Page, key: str, who: str) -> None:
    page.fill("#signin-key", key)
    page.click("#signin button")
    expect(page.locator("#signedin-who")).to_have_text(who)


def open_market(page: Page, base: str, artifact: str = ART) -> None:
    page.goto(f"{base}/#/market/{artifact}")
    expect(page.locator("#view")).to_have_attribute("data-ready", "market")


def tape_rows(page: Page):
    return page.locator("#tape tbody tr")


# The markets list -------------------------------------------------------------------------------


def test_markets_list_when_loaded_then_every_market_shows_state_price_change_volume_and_capital(
    tab: Tab, site: Site
) -> None:
    page = tab.page
    markets = {m["artifact"]: m for m in site.get("/api/market/artifacts").json()}
    candles = site.get(f"/api/market/artifacts/{ART}/candles?interval=1h").json()["candles"]

    page.goto(site.base + "/")
    expect(page.locator("#view")).to_have_attribute("data-ready", "markets")

    rows = page.locator("#markets tbody tr")
    expect(rows).to_have_count(2)
    art = page.locator(f'#markets tr[data-artifact="{ART}"] td')
    expect(art.nth(2)).to_have_text("listed")
    expect(art.nth(3)).to_have_text(markets[ART]["price_long"])
    expect(art.nth(6)).to_have_text(markets[ART]["capital_committed"])
    # bob's one trade: volume 10 tokens; p(long) moved up from the open of the day.
    expect(art.nth(5)).to_have_text(f"{sum(float(c['volume']) for c in candles):.2f}")
    change = (float(candles[-1]["close"]) - float(candles[0]["open"])) * 100
    expect(art.nth(4)).to_have_text(f"+{change:.2f} pts")
    other = page.locator(f'#markets tr[data-artifact="{OTHER}"] td')
    expect(other.nth(3)).to_have_text(markets[OTHER]["price_long"])
    expect(other.nth(4)).to_have_text("—")  # no trade, no change
    assert not tab.errors


def test_page_when_loaded_then_every_request_stays_on_the_server_and_the_vendored_libraries_load(
    tab: Tab, site: Site
) -> None:
    """Offline: the chart library and keccak256 ship with the package; no CDN is asked."""
    page = tab.page
    open_market(page, site.base)
    expect(page.locator("#chart .uplot")).to_have_count(1)

    assert tab.requests
    assert all(url.startswith(site.base + "/") for url in tab.requests), tab.requests
    assert any(url.endswith("/static/vendor/uPlot.iife.min.js") for url in tab.requests)
    assert any(url.endswith("/static/vendor/keccak.js") for url in tab.requests)
    served = httpx.get(site.base + "/", timeout=30)
    assert "script-src 'self'" in served.headers["content-security-policy"]
    assert httpx.get(site.base + "/static/../../app.py", timeout=30).status_code == 404
    assert httpx.get(site.base + "/static/%2e%2e/endpoints.py", timeout=30).status_code == 404


# A market: sign in, trade, live updates ---------------------------------------------------------


def test_market_when_signed_in_and_trading_then_tape_and_chart_update_without_reload(
    browser: Browser, any_site: Site
) -> None:
    site = any_site
    for opened in open_tab(browser):
        page = opened.page
        page.goto(site.base + "/")
        page.click(f'#markets a[href="#/market/{ART}"]')
        expect(page.locator("#view")).to_have_attribute("data-ready", "market")
        expect(page.locator("#live")).to_have_attribute("data-mode", "stream")
        expect(tape_rows(page)).to_have_count(1)
        expect(page.locator("#trade-signin")).to_be_visible()

        sign_in(page, site.keys["alice"], "alice (trade)")
        expect(page.locator("#trade-form")).to_be_visible()
        before = page.locator("#chart").get_attribute("data-last")

        page.fill("#trade-tokens", "25")
        page.click("#quote-button")
        expect(page.locator("#quote-result")).to_contain_text("25 tokens buy")
        page.click("#trade-button")
        expect(page.locator("#order-placed")).to_contain_text("for 25 tokens")

        expect(tape_rows(page)).to_have_count(2)
        newest = tape_rows(page).first.locator("td")
        expect(newest.nth(3)).to_have_text("25")
        expect(newest.nth(7)).to_have_text("alice")
        price = site.get(f"/api/market/artifacts/{ART}").json()["price_long"]
        expect(page.locator("#price-long")).to_have_text(price)
        expect(page.locator("#chart")).to_have_attribute("data-last", str(float(price)))
        assert page.locator("#chart").get_attribute("data-last") != before

        # Someone else trades through the API: the feed brings it to the open page.
        bob = site.buy("bob", "40", side="short")
        expect(tape_rows(page)).to_have_count(3)
        expect(tape_rows(page).first.locator("td").nth(7)).to_have_text("bob")
        expect(page.locator("#price-long")).to_have_text(bob["price_long"])
        expect(page.locator("#chart")).to_have_attribute("data-last", str(float(bob["price_long"])))

        assert len(opened.loads) == 1, opened.loads  # one page load: nothing was reloaded
        assert not opened.errors
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "market.png"), full_page=True)


def test_market_when_an_order_is_refused_then_its_error_code_shows_and_nothing_is_written(tab: Tab, site: Site) -> None:
    page = tab.page
    open_market(page, site.base)
    sign_in(page, site.keys["alice"], "alice (trade)")
    head = site.head()

    page.fill("#trade-tokens", "5000")  # alice has 1000
    page.click("#trade-button")

    refusal = page.locator("#trade-result .error")
    expect(refusal).to_have_attribute("data-code", "INSUFFICIENT_FUNDS")
    expect(refusal.locator("code")).to_have_text("INSUFFICIENT_FUNDS")
    page.fill("#trade-tokens", "ten")
    page.click("#trade-button")
    expect(refusal).to_have_attribute("data-code", "INVALID_INPUT")
    expect(tape_rows(page)).to_have_count(1)
    assert site.head() == head


def test_market_when_an_admin_challenges_it_then_history_and_state_update_live_and_orders_are_frozen(
    tab: Tab, site: Site
) -> None:
    page = tab.page
    open_market(page, site.base, OTHER)
    expect(page.locator("#live")).to_have_attribute("data-mode", "stream")
    expect(page.locator("#history tbody tr")).to_have_count(1)
    sign_in(page, site.keys["alice"], "alice (trade)")

    response = httpx.post(
        f"{site.base}/api/artifacts/{OTHER}/lifecycle-transition",
        json={"state": "challenged", "reason": "a replication failed"},
        headers={"Authorization": f"Bearer {site.keys['admin']}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text

    newest = page.locator("#history tbody tr").first
    expect(page.locator("#history tbody tr")).to_have_count(2)
    expect(newest).to_have_attribute("data-kind", "transition")
    expect(newest).to_contain_text("challenged")
    expect(newest).to_contain_text("a replication failed")
    expect(page.locator("#market-stats .badge")).to_have_text("challenged")
    head = site.head()
    page.fill("#trade-tokens", "5")
    page.click("#trade-button")
    expect(page.locator("#trade-result .error")).to_have_attribute("data-code", "FROZEN")
    assert site.head() == head
    assert len(tab.loads) == 1


def test_sign_in_when_the_key_is_unknown_then_the_page_says_why_and_keeps_no_key(tab: Tab, site: Site) -> None:
    page = tab.page
    open_market(page, site.base)

    page.fill("#signin-key", "sl_0000000000000000_not-a-key")
    page.click("#signin button")

    expect(page.locator("#notice")).to_contain_text("UNAUTHENTICATED")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#trade-signin")).to_be_visible()
    stored = page.evaluate("() => [sessionStorage.length, Object.keys(localStorage).length]")
    assert stored == [0, 0]


def test_market_when_history_endpoints_answer_404_then_the_page_says_so_and_still_works(tab: Tab, site: Site) -> None:
    """An older server without candles, the tape, the lifecycle history or the feed: each
    part says what is missing, the chart plots the prices the page sees, and it polls."""
    page = tab.page
    missing = json.dumps({"error": "NOT_FOUND", "message": "Not Found"})
    for pattern in ("**/candles?*", "**/trades?*", "**/history", "**/api/stream?*"):
        page.route(pattern, lambda route: route.fulfill(status=404, body=missing, content_type="application/json"))

    open_market(page, site.base)
    sign_in(page, site.keys["alice"], "alice (trade)")

    expect(page.locator("#tape [data-degraded]")).to_contain_text("not served by this server yet")
    expect(page.locator("#history [data-degraded]")).to_contain_text("404")
    expect(page.locator("#chart-note [data-degraded]")).to_contain_text("Price history")
    expect(page.locator("#live")).to_have_attribute("data-mode", "poll")
    page.fill("#trade-tokens", "15")
    page.click("#trade-button")
    expect(page.locator("#order-placed")).to_contain_text("for 15 tokens")
    price = site.get(f"/api/market/artifacts/{ART}").json()["price_long"]
    expect(page.locator("#chart")).to_have_attribute("data-last", str(float(price)))
    assert not tab.errors


# The account ------------------------------------------------------------------------------------


def test_account_when_signed_in_then_portfolio_equity_statement_inbox_settlements_and_reputation_show(
    tab: Tab, site: Site
) -> None:
    page = tab.page
    site.buy("alice", "30")
    site.buy("alice", "12", side="short", artifact=OTHER)
    metrics = site.get("/api/portfolio/alice/metrics", "alice").json()
    statement = site.get("/api/accounts/alice/statement", "alice").json()

    page.goto(site.base + "/#/account")
    expect(page.locator("#view")).to_contain_text("Sign in with an API key")
    sign_in(page, site.keys["alice"], "alice (trade)")
    expect(page.locator("#view")).to_have_attribute("data-ready", "account")

    expect(page.locator("#equity-value")).to_have_text(metrics["summary"]["equity"])
    expect(page.locator("#portfolio tbody tr")).to_have_count(2)
    expect(page.locator(f'#portfolio tr[data-position="{ART}/p2"]')).to_contain_text("open")
    expect(page.locator("#statement tbody tr")).to_have_count(statement["lines_total"])
    expect(page.locator("#statement tbody tr").first.locator("td").nth(5)).to_have_text(statement["balance"])
    expect(page.locator("#equity-chart .uplot")).to_have_count(1)
    expect(page.locator("#reputation")).to_contain_text("0.5000")
    expect(page.locator("#inbox")).to_contain_text("Nothing yet")
    expect(page.locator("#settlements")).to_contain_text("None yet")
    assert not tab.errors
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "account.png"), full_page=True)

    # Another agent's account is refused with the API's code, not shown.
    page.goto(site.base + "/#/account/bob")
    expect(page.locator("#portfolio .error")).to_have_attribute("data-code", "FORBIDDEN")


def test_account_when_a_position_is_closed_from_the_page_then_it_leaves_the_live_positions(
    tab: Tab, site: Site
) -> None:
    page = tab.page
    site.buy("alice", "20")
    open_market(page, site.base)
    sign_in(page, site.keys["alice"], "alice (trade)")
    page.goto(site.base + "/#/account")
    row = page.locator(f'#portfolio tr[data-position="{ART}/p2"]')
    expect(row).to_contain_text("open")

    row.locator("button").click()

    expect(page.locator("#close-result")).to_contain_text(f"Closed {ART}/p2")
    expect(page.locator(f'#portfolio tr[data-position="{ART}/p2"]')).to_contain_text("closed")
    assert site.get("/api/portfolio/alice", "alice").json()["live_positions"] == 0


def test_account_when_the_agent_trades_elsewhere_then_the_open_page_updates_without_reload(
    tab: Tab, site: Site
) -> None:
    page = tab.page
    site.buy("alice", "30")
    page.goto(site.base + "/#/account")
    sign_in(page, site.keys["alice"], "alice (trade)")
    expect(page.locator("#view")).to_have_attribute("data-ready", "account")
    expect(page.locator("#live")).to_have_attribute("data-mode", "stream")
    expect(page.locator("#portfolio tbody tr")).to_have_count(1)
    lines_before = site.get("/api/accounts/alice/statement", "alice").json()["lines_total"]

    # Alice trades from another client (a program with her key): her page follows her account.
    site.buy("alice", "12", side="short", artifact=OTHER)

    expect(page.locator("#portfolio tbody tr")).to_have_count(2)
    expect(page.locator(f'#portfolio tr[data-position="{OTHER}/p1"]')).to_contain_text("open")
    statement = site.get("/api/accounts/alice/statement", "alice").json()
    assert statement["lines_total"] > lines_before
    expect(page.locator("#statement tbody tr")).to_have_count(statement["lines_total"])
    metrics = site.get("/api/portfolio/alice/metrics", "alice").json()
    expect(page.locator("#equity-value")).to_have_text(metrics["summary"]["equity"])
    expect(page.locator("#equity-note")).to_have_count(1)  # a refresh redraws, it does not add
    assert len(tab.loads) == 1, tab.loads  # one page load: nothing was reloaded
    assert not tab.errors
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "account-live.png"), full_page=True)


# The auditor ------------------------------------------------------------------------------------


def test_auditor_when_an_admin_checks_a_proof_then_valid_and_a_tampered_one_invalid(tab: Tab, site: Site) -> None:
    page = tab.page
    site.buy("alice", "8")
    snapshot = build_snapshot(site.ledger)
    root = "0x" + snapshot.header.balances_root.hex()

    page.goto(site.base + "/#/auditor")
    sign_in(page, site.keys["admin"], "operator (admin)")
    expect(page.locator("#view")).to_have_attribute("data-ready", "auditor")

    expect(page.locator("#audit-verdict")).to_have_text("clean")
    expect(page.locator('#roots [data-field="balancesRoot"]')).to_have_text(root)
    expect(page.locator('#roots [data-field="lastSeq"]')).to_have_text(str(snapshot.header.last_seq))
    views = page.locator("#views tbody tr")
    expect(views).to_have_count(len(site.get("/api/projections").json()))
    for row in views.all():  # lag = the log's head - the view's position, as the API says
        position, head, lag = (int(row.locator("td").nth(i).inner_text()) for i in (1, 2, 3))
        assert (head, lag) == (site.head(), head - position)

    page.fill("#proof-account", "alice")
    page.click("#proof-fetch")
    proof = page.locator("#proof-json")
    expect(proof).to_have_value(re.compile(r'"proof": \['))
    page.click("#proof-check")
    expect(page.locator("#proof-verdict")).to_have_text("valid")
    expect(page.locator("#proof-result")).to_contain_text(root)

    document = json.loads(proof.input_value())
    assert document["balance"] == str(site.ledger.balance_of("alice"))
    for tampered in (
        {**document, "balance": str(int(document["balance"]) + 1)},
        {**document, "proof": [node[:-1] + ("0" if node[-1] != "0" else "1") for node in document["proof"]]},
        {**document, "address": "0x" + "11" * 20},
    ):
        proof.fill(json.dumps(tampered))
        page.click("#proof-check")
        expect(page.locator("#proof-verdict")).to_have_text("invalid")

    proof.fill(json.dumps(document))
    page.click("#proof-check")
    expect(page.locator("#proof-verdict")).to_have_text("valid")
    assert not tab.errors


def test_auditor_when_a_trade_key_signs_in_then_the_audit_is_refused_by_code_but_its_proof_checks(
    tab: Tab, site: Site
) -> None:
    page = tab.page
    page.goto(site.base + "/#/auditor")
    sign_in(page, site.keys["bob"], "bob (trade)")

    expect(page.locator("#audit .error")).to_have_attribute("data-code", "FORBIDDEN")
    expect(page.locator("#proof-account")).to_have_value("bob")
    page.click("#proof-fetch")
    expect(page.locator("#proof-json")).to_have_value(re.compile(r'"account": "bob"'))
    page.click("#proof-check")
    expect(page.locator("#proof-verdict")).to_have_text("valid")


# The demo's store ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_store_when_served_then_the_page_shows_its_markets_history_and_an_account(
    browser: Browser, tmp_path: Path
) -> None:
    """`make demo` leaves demo.db: the page serves it, and the demo says how to open it."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    demo = subprocess.run(
        [sys.executable, "-m", "stakeledger.cli.main", "--db", url, "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr
    assert f"stakeledger --db {url} serve, then http://127.0.0.1:8000/" in demo.stdout
    ledger = open_ledger(url)
    key = apikeys.issue_key(ledger, "ada", apikeys.TRADE)["key"]
    ledger.close()
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stakeledger.cli.main",
                "--db",
                url,
                "serve",
                "--port",
                str(port),
                "--no-access-log",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(base, process, log_path)
            markets = httpx.get(f"{base}/api/market/artifacts", timeout=30).json()
            # A market that traded and went through lifecycle steps shows every part of the page.
            traded = max(markets, key=lambda m: (m["positions"] > 0, m["transitions"], m["positions"]))
            for opened in open_tab(browser):
                page = opened.page
                page.goto(base + "/")
                expect(page.locator("#markets tbody tr")).to_have_count(len(markets))
                sign_in(page, key, "ada (trade)")
                open_market(page, base, traded["artifact"])
                expect(page.locator("#chart .uplot")).to_have_count(1)
                expect(page.locator("#tape tbody tr").first).to_be_visible()
                steps = httpx.get(f"{base}/api/artifacts/{traded['artifact']}/history", timeout=30).json()
                expect(page.locator("#history tbody tr")).to_have_count(len(steps))
                SCREENSHOTS.mkdir(exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / "demo-market.png"), full_page=True)
                page.goto(base + "/#/account")
                expect(page.locator("#view")).to_have_attribute("data-ready", "account")
                expect(page.locator("#portfolio tbody tr").first).to_be_visible()
                page.screenshot(path=str(SCREENSHOTS / "demo-account.png"), full_page=True)
                assert not opened.errors
        finally:
            stop(process, signal.SIGINT)
