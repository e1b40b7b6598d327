"""Hostile requests over HTTP (issue 20): 200,000 nested brackets at every JSON endpoint, bodies
naming a key twice, numbers of 5,000 digits, free text with terminal controls, markup-like
titles, bounty weights that do not sum to 1, and an idempotent listing retried after trades.

Every refusal is a clean 4xx ``{"error": CODE, "message": ...}`` and writes nothing (the log's
last position does not move). One test runs a real ``stakeledger serve`` process and proves it
is still serving after the deep body."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.api.app import create_app
from stakeledger.api.inputs import check_json_shape, check_text, printable
from stakeledger.domain.errors import InvalidInputError
from tests.api.conftest import ART, FUNDS, TOKEN, Api, make_api, seed
from tests.api.serving import free_port, stop, wait_until_serving
from tests.cli.test_cli import run
from tests.conftest import ROOT, fresh_postgres_url

DEEP = "[" * 200_000 + "]" * 200_000
HUGE = "9" * 5_000


def body_endpoints() -> list[tuple[str, str]]:
    """Every (method, path) of the API that takes a JSON body, from its OpenAPI document."""
    spec = create_app("memory://").openapi()
    found = [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]
    assert len(found) >= 9, found  # artifacts, positions, orders, transitions, bounties, distribute, accounts, ...
    return found


BODY_ENDPOINTS = body_endpoints()


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: {"{agent}": "alice", "{bounty_id}": f"{ART}/b1"}.get(m.group(), ART), path)


def send(api: Api, method: str, path: str, content: str | bytes, key: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return api.client.request(method, concrete(path), content=content, headers=headers)


def assert_refused(api: Api, response: httpx.Response, before: int, status: int, code: str) -> str:
    body = response.json()
    assert (response.status_code, body["error"]) == (status, code), response.text[:500]
    assert api.head() == before
    assert len(body["message"]) < 400, body["message"]
    return body["message"]


# 1. Deep JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize("with_key", [True, False], ids=["admin", "no key"])
@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS, ids=[f"{m} {p}" for m, p in BODY_ENDPOINTS])
def test_every_json_endpoint_when_body_nests_200000_levels_then_422_and_nothing_written(
    memory_api: Api, method, path, with_key
):
    before = memory_api.head()

    response = send(memory_api, method, path, DEEP, memory_api.admin if with_key else None)

    message = assert_refused(memory_api, response, before, 422, "INVALID_INPUT")
    assert message == "the request body nests deeper than 32 levels"
    assert memory_api.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("case", "content", "says"),
    [
        ("200,000 nested objects", '{"":' * 200_000 + "1" + "}" * 200_000, "nests deeper than 32 levels"),
        ("deep inside a field", '{"agent": "alice", "tokens": ' + DEEP + "}", "nests deeper than 32 levels"),
        ("only openers", "[" * 200_000, "nests deeper than 32 levels"),
        ("UTF-16", DEEP.encode("utf-16"), "nests deeper than 32 levels"),
        ("5,000-digit number", '{"agent": "alice", "tokens": ' + HUGE + "}", "holds a number of more than 100 digits"),
        ("5,000-digit exponent", '{"tokens": 1e' + HUGE + "}", "holds a number of more than 100 digits"),
        ("key twice", '{"agent": "alice", "agent": "bob"}', "duplicate key 'agent'"),
        (
            "key twice, nested",
            '{"claimants": [{"agent": "a", "weight": "1", "weight": "0"}]}',
            "duplicate key 'weight'",
        ),
    ],
)
def test_position_endpoint_when_body_is_hostile_then_422_before_any_route(memory_api: Api, case, content, says):
    before = memory_api.head()

    response = send(memory_api, "POST", "/api/market/positions", content, memory_api.alice)

    assert says in assert_refused(memory_api, response, before, 422, "INVALID_INPUT")


def test_order_when_a_key_is_given_twice_then_refused_not_read_as_its_last_value(memory_api: Api):
    api = memory_api
    before = api.head()
    body = '{"agent": "alice", "artifact": "%s", "side": "long", "tokens": "1", "agent": "bob"}' % ART

    response = send(api, "POST", "/api/market/positions", body, api.admin)

    assert "duplicate key 'agent'" in assert_refused(api, response, before, 422, "INVALID_INPUT")
    assert api.ledger.get_artifact(ART).position_ids == []


@pytest.mark.parametrize(
    ("content", "size"), [(b"x" * ((1 << 20) + 1), "content-length"), (None, "chunked")], ids=["sized", "chunked"]
)
def test_body_when_over_1_mib_then_413_and_nothing_written(memory_api: Api, content, size):
    api = memory_api
    before = api.head()
    deep_chunks = (b"[" * 65_536 for _ in range(17))  # 1.06 MiB of openers, never buffered whole

    response = send(api, "POST", "/api/market/positions", content if content else deep_chunks, api.alice)

    assert_refused(api, response, before, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        ('{"title": "' + "[" * 100 + '"}', False),  # brackets in a string are data
        ('{"title": "\\"' + "[" * 100 + '"}', False),  # after an escaped quote too
        ('{"title": "\\\\"}' + "]" * 5, False),  # an escaped backslash ends the string
        ('{"digits": "' + "9" * 500 + '"}', False),  # digits in a string are data
        ("[" * 32 + "]" * 32, False),
        ("[" * 33 + "]" * 33, True),
        ('"unterminated ' + "[" * 100, True),  # not JSON, and no string ends: its brackets count
    ],
)
def test_json_shape_when_brackets_and_digits_are_inside_strings_then_not_counted(text, deep):
    if deep:
        with pytest.raises(InvalidInputError, match="nests deeper than 32 levels"):
            check_json_shape(text, "it")
    else:
        check_json_shape(text, "it")


# 7. Numbers of thousands of digits --------------------------------------------------------------

ORDER = {"agent": "alice", "artifact": ART, "side": "long", "tokens": "1"}
HUGE_FIELDS = [
    ("mint", "/api/accounts/alice/mint", {"amount": HUGE}),
    ("transfer", "/api/accounts/alice/transfers", {"to": "bob", "amount": HUGE}),
    ("market tokens", "/api/market/positions", {**ORDER, "tokens": HUGE}),
    ("market max price", "/api/market/positions", {**ORDER, "max_price": f"0.{HUGE}"}),
    ("market min shares", "/api/market/positions", {**ORDER, "min_shares": HUGE}),
    ("limit price", "/api/market/orders", {**ORDER, "limit_price": f"0.{HUGE}"}),
    ("listing liquidity", "/api/market/artifacts", {"artifact": "ART-X", "title": "t", "liquidity": HUGE}),
    ("bounty amount", "/api/bounties", {"artifact": ART, "sponsor": "alice", "amount": HUGE}),
    ("bounty weight", f"/api/bounties/{ART}/b1/distribute", {"claimants": [{"agent": "bob", "weight": HUGE}]}),
    ("transition price", f"/api/artifacts/{ART}/lifecycle-transition", {"state": "validated", "price": f"0.{HUGE}"}),
]


@pytest.mark.parametrize(("case", "path", "body"), HUGE_FIELDS, ids=[c for c, _, _ in HUGE_FIELDS])
def test_amount_when_5000_digits_then_422_short_message_and_nothing_written(memory_api: Api, case, path, body):
    api = memory_api
    api.post("/api/bounties", {"artifact": ART, "sponsor": "alice", "amount": "5"}, api.alice)
    before = api.head()

    response = api.post(path, body, api.admin)

    message = assert_refused(api, response, before, 422, "INVALID_INPUT")
    assert HUGE not in response.text and "Exceeds the limit" not in response.text, message


@pytest.mark.parametrize("field", ["min_hold_days", "expires_in_days"])
def test_whole_number_when_5000_digits_then_422_before_conversion(memory_api: Api, field):
    api = memory_api
    before = api.head()
    path, body = (
        ("/api/market/artifacts", '{"artifact": "ART-X", "title": "t", "liquidity": "1", "min_hold_days": %s}')
        if field == "min_hold_days"
        else (
            "/api/market/orders",
            '{"agent": "alice", "artifact": "ART-1", "side": "long", "tokens": "1", '
            '"limit_price": "0.2", "expires_in_days": %s}',
        )
    )

    response = send(api, "POST", path, body % HUGE, api.admin)

    assert "more than 100 digits" in assert_refused(api, response, before, 422, "INVALID_INPUT")


# 4. Free text -----------------------------------------------------------------------------------

CONTROLS = ["\x1b[2J", "x\x1b[31m", "x\x9b2J", "ok\rEVIL", "a\u202eb", "a\u2066b", "a\u200bb", "\ufeffa", "a\u2028b"]


@pytest.mark.parametrize("text", CONTROLS, ids=[printable(t) for t in CONTROLS])
@pytest.mark.parametrize("where", ["title", "reason"])
def test_free_text_when_it_holds_a_control_character_then_422_naming_it_and_nothing_written(
    memory_api: Api, text, where
):
    api = memory_api
    before = api.head()
    if where == "title":
        response = api.post("/api/market/artifacts", {"artifact": "ART-X", "title": text, "liquidity": "10"}, api.admin)
    else:
        response = api.post(
            f"/api/artifacts/{ART}/lifecycle-transition", {"state": "flagged", "reason": text}, api.admin
        )

    message = assert_refused(api, response, before, 422, "INVALID_INPUT")
    code_point = re.search(
        r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]", text
    )
    assert message.startswith(f"body.{where}: ") and f"U+{ord(code_point.group()):04X}" in message, message
    assert api.ledger.get_artifact(ART).state == "listed"


def test_text_rules_when_api_and_cli_check_then_the_same_characters_are_refused():
    from stakeledger.api.inputs import TEXT_PATTERN

    for code in [
        *range(0x20),
        *range(0x7F, 0xA0),
        0x061C,
        *range(0x200B, 0x2010),
        *range(0x2028, 0x202F),
        *range(0x2060, 0x2065),
        *range(0x2066, 0x206A),
        0xFEFF,
    ]:
        text = f"a{chr(code)}b"
        assert re.fullmatch(TEXT_PATTERN, text) is None, hex(code)
        with pytest.raises(InvalidInputError):
            check_text(text, "t")
        assert chr(code) not in printable(text)
    for fine in ("[/bold] x", "[red]x[/red]", "naïve — café 日本", "a\u00a0b", "tab-free"):
        assert re.fullmatch(TEXT_PATTERN, fine) and check_text(fine, "t") == fine and printable(fine) == fine


@pytest.fixture
def sqlite_api(tmp_path, clock) -> Iterator[tuple[Api, str]]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    for api in make_api(url, clock):
        yield api, url


@pytest.mark.parametrize("title", ["[/bold] x", "[red]x[/red]", "[link=file:///etc/passwd]x[/link]"])
def test_title_when_markup_listed_by_an_admin_over_http_then_every_reader_sees_it_as_written(
    sqlite_api, capsys, monkeypatch, title
):
    api, url = sqlite_api

    listed = api.post("/api/market/artifacts", {"artifact": "ART-M", "title": title, "liquidity": "10"}, api.admin)

    assert listed.status_code == 201 and listed.json()["title"] == title
    assert api.get("/api/market/artifacts/ART-M").json()["title"] == title
    for view, shown in ((["artifact", "show", "ART-M"], title), (["artifact", "list"], title[:12])):
        code, out, err = run(capsys, monkeypatch, "--db", url, *view)
        assert code == 0, err
        assert shown in out, out  # the list's title column is narrow: a long title is cut


# Weaker items: bounty weights, idempotent listings ----------------------------------------------


@pytest.mark.parametrize(
    ("weights", "total"), [(["0.9", "0.9"], "9/5"), (["0.1", "0.05"], "3/20")], ids=["sum 1.8", "sum 0.15"]
)
def test_distribute_when_weights_do_not_sum_to_1_then_422_unless_normalise(memory_api: Api, weights, total):
    api = memory_api
    bounty = api.post("/api/bounties", {"artifact": ART, "sponsor": "alice", "amount": "15"}, api.alice).json()[
        "bounty"
    ]
    claimants = [{"agent": "alice", "weight": weights[0]}, {"agent": "bob", "weight": weights[1]}]
    before = api.head()

    refused = api.post(f"/api/bounties/{bounty}/distribute", {"claimants": claimants}, api.admin)
    message = assert_refused(api, refused, before, 422, "INVALID_AMOUNT")
    normalised = api.post(f"/api/bounties/{bounty}/distribute", {"claimants": claimants, "normalise": True}, api.admin)

    assert message.startswith(f"claimant weights sum to {total}, not 1") and '"normalise": true' in message
    assert normalised.status_code == 200, normalised.text
    assert {name: share["amount_units"] for name, share in normalised.json()["shares"].items()} == {
        "alice": str(15 * TOKEN * 2 // 3) if weights == ["0.1", "0.05"] else str(15 * TOKEN // 2),
        "bob": str(15 * TOKEN // 3) if weights == ["0.1", "0.05"] else str(15 * TOKEN // 2),
    }


def test_artifact_listing_when_retried_after_trades_moved_its_market_then_the_first_response(memory_api: Api):
    api = memory_api
    body = {"artifact": "ART-NEW", "title": "A new claim", "liquidity": "50", "group": "bio", "min_hold_days": 0}
    first = api.post("/api/market/artifacts", body, api.admin, idempotency="list-new")
    assert first.status_code == 201, first.text
    assert api.buy(api.alice, artifact="ART-NEW", tokens="20").status_code == 201
    assert (
        api.post(
            "/api/market/orders", {**ORDER, "agent": "bob", "artifact": "ART-NEW", "limit_price": "0.1"}, api.bob
        ).status_code
        == 201
    )
    assert (
        api.post("/api/bounties", {"artifact": "ART-NEW", "sponsor": "bob", "amount": "3"}, api.bob).status_code == 201
    )
    transition = {"state": "flagged", "price": "0.2", "reason": "looks off"}
    assert api.post("/api/artifacts/ART-NEW/lifecycle-transition", transition, api.admin).status_code == 200
    now = api.get("/api/market/artifacts/ART-NEW").json()
    head = api.head()

    retry = api.post("/api/market/artifacts", body, api.admin, idempotency="list-new")

    assert retry.status_code == 201 and retry.json() == first.json()
    assert api.head() == head
    assert now["state"] == "flagged" and now["price_long_wad"] != first.json()["price_long_wad"]
    assert first.json()["state"] == "listed" and first.json()["positions"] == 0 and first.json()["bounties"] == {}


# One real server: the deep body does not take the process down -------------------------------


@pytest.mark.postgres
def test_served_api_when_sent_200000_levels_without_a_key_then_refused_and_still_serving(
    postgres_server: str, tmp_path: Path
):
    url = fresh_postgres_url(postgres_server)
    ledger = open_ledger(url)
    keys = seed(ledger)
    scheme, rest = url.split("://", 1)
    user, _, host = rest.partition("@")
    with_password = f"{scheme}://{user}:s3cr3t-pw@{host}"  # the test server trusts local users
    port = free_port()
    log_path = tmp_path / "serve.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "stakeledger.cli.main", "--db", with_password, "serve", "--port", str(port)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process, log_path)
        before = ledger.recorder.max_notification_id()
        refusals: list[dict[str, Any]] = []
        with httpx.Client(base_url=base, timeout=30) as client:
            for content in (DEEP, '{"":' * 200_000, '{"tokens": ' + HUGE + "}", b"[" * ((1 << 20) + 1)):
                response = client.post(
                    "/api/market/positions", content=content, headers={"Content-Type": "application/json"}
                )
                assert 400 <= response.status_code < 500, response.text[:300]
                refusals.append(response.json())
            assert process.poll() is None, log_path.read_text()
            assert client.get("/healthz").status_code == 200
            traded = client.post(
                "/api/market/positions",
                json={"agent": "alice", "artifact": ART, "side": "long", "tokens": "1"},
                headers={"Authorization": f"Bearer {keys['alice']}"},
            )
        assert [r["error"] for r in refusals] == [
            "INVALID_INPUT",
            "INVALID_INPUT",
            "INVALID_INPUT",
            "PAYLOAD_TOO_LARGE",
        ]
        assert traded.status_code == 201, traded.text
        assert ledger.recorder.max_notification_id() > before
        assert ledger.balance_of("alice") == (int(FUNDS) - 1) * TOKEN
    finally:
        stop(process, signal.SIGINT)
        log.close()
        ledger.close()
    printed = log_path.read_text()
    assert "s3cr3t-pw" not in printed and f"serving {scheme}://{user}:***@" in printed, printed
    assert "Traceback" not in printed and "Segmentation" not in printed, printed


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("delete", "/api/market/orders/ART-1%2Fo1%0A"),  # the trailing newline once cancelled ART-1/o1
        ("delete", "/api/market/orders/ART-1/o1%0A"),
        ("delete", "/api/market/orders/ART-1%2Fo1%00"),
        ("delete", "/api/market/orders/ART-1%2Fo1%E2%80%8F"),  # a right-to-left mark
        ("get", "/api/market/artifacts/ART-1%0A"),
        ("get", "/api/accounts/alice%0A"),
    ],
)
def test_path_when_an_id_ends_in_a_control_character_then_422_and_nothing_written(
    memory_api: Api, method: str, path: str
) -> None:
    api = memory_api
    placed = api.post(
        "/api/market/orders",
        {"agent": "alice", "artifact": ART, "side": "long", "tokens": "5", "limit_price": "0.2"},
        api.alice,
    )
    assert placed.status_code == 201, placed.text
    head = api.head()
    answer = getattr(api, method)(path, api.admin)
    assert answer.status_code == 422 and answer.json()["error"] == "INVALID_INPUT", answer.text
    assert api.head() == head
    assert api.ledger.get_artifact(ART).orders[placed.json()["order"]]["agent"] == "alice"  # still resting
