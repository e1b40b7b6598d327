"""The live feed of the log: Server-Sent Events at /api/stream, the same messages over a
WebSocket at /api/ws.

    GET /api/stream?topics=trades,prices&artifact=ART-1[&after=POSITION]     (SSE)
    GET /api/ws?topics=account&account=alice[&after=POSITION]               (WebSocket)

The log is the buffer. A message is made from what one log position recorded (a trade's
tape row, an order event, a settlement, the shares a settlement hands back to the pool,
which move its price like a trade and make a ``prices`` message with ``cause: settlement``,
a movement, an inbox notification), so a client
that reconnects with ``Last-Event-ID`` (SSE) or ``?after=`` (either transport) gets every
message after that position, in log order, none twice. A position that makes several
messages (a trade is a ``trades`` and a ``prices`` message) numbers them: their ids are
``N.0``, ``N.1``, …, and resuming after ``N.0`` resumes inside position ``N``; the id of a
position's only message is ``N``.

One hub per worker process follows the log: a thread polls the views' positions every
``POLL_SECONDS`` (catching the views up first, as every read does), turns the new range
into messages once, keeps the latest ``CACHE_MESSAGES`` of them for clients that resume
nearby, and hands each connection the messages its filter accepts. A connection holds at
most ``MAX_BUFFERED`` messages it has not sent; past that the server closes it with
reason ``slow_consumer`` and the id to resume after. Several API workers each run their
own hub over the shared log and views.

Private topics (``transfers``, ``inbox``, ``account``: one agent's fills, orders,
movements, settlements and inbox) need ``account=AGENT`` and that agent's key or an admin
key, in the ``Authorization`` header or, for browsers, ``?key=``.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from stakeledger.api.errors import http_status_for, responses
from stakeledger.api.models import NAME_PATTERN
from stakeledger.api.state import ApiState, bearer, get_state
from stakeledger.domain.errors import InvalidInputError, LedgerError
from stakeledger.domain.model.apikeys import UnauthenticatedError
from stakeledger.domain.model.artifacts import Artifact, artifact_of
from stakeledger.domain.model.naming import stable_topic
from stakeledger.domain.rules.lmsr import prices_wad
from stakeledger.domain.rules.money import format_amount
from stakeledger.domain.service.apikeys import Principal, authenticate
from stakeledger.projections import queries
from stakeledger.projections.store import ViewStore, uuid_text
from stakeledger.projections.views.inbox import MESSAGES
from stakeledger.projections.views.markets import ARTIFACTS, ORDERS
from stakeledger.projections.views.settlements import SETTLEMENTS
from stakeledger.projections.views.statements import LINES
from stakeledger.projections.views.tape import TRADES

logger = logging.getLogger("stakeledger.api.feed")

router = APIRouter(prefix="/api", tags=["feed"])

PUBLIC_TOPICS = ("trades", "prices", "orders", "settlements")
PRIVATE_TOPICS = ("transfers", "inbox", "account")
TOPICS = PUBLIC_TOPICS + PRIVATE_TOPICS
# The views whose rows make messages: the feed reaches a position once all of them have.
FEED_VIEWS = ("tape", "markets", "settlements", "statements", "inbox")

POLL_SECONDS = float(os.environ.get("STAKELEDGER_FEED_POLL_SECONDS", "0.05"))
MAX_BUFFERED = int(os.environ.get("STAKELEDGER_FEED_MAX_BUFFERED", "10000"))
CACHE_MESSAGES = 50_000
PAGE_EVENTS = 2_000
KEEPALIVE_SECONDS = float(os.environ.get("STAKELEDGER_FEED_KEEPALIVE_SECONDS", "15"))
WS_IDLE_CHECK_SECONDS = 2.0
IDLE_SECONDS = 5.0
SLOW_CONSUMER = "slow_consumer"
# A position's messages are numbered below this; the cursor "after all of N" is (N, LAST).
LAST = 1 << 30
_TOKEN = re.compile(r"^(\d{1,18})(?:\.(\d{1,6}))?\Z")
_EVENT_TOPICS = tuple(
    stable_topic(cls)
    for cls in (
        Artifact.OrderPlaced,
        Artifact.OrderFilled,
        Artifact.OrderReleased,
        Artifact.Transitioned,
        Artifact.SharesRedeemed,
    )
)

Cursor = tuple[int, int]


class InvalidTopicError(InvalidInputError):
    code = "INVALID_TOPIC"


# Resume tokens --------------------------------------------------------------------------------


def parse_cursor(text: str | None, what: str) -> Cursor:
    """``N`` -> after everything at position N; ``N.i`` -> after message i of position N."""
    if text is None or text == "":
        return (0, LAST)
    match = _TOKEN.match(text.strip()) if isinstance(text, str) and len(text) <= 32 else None
    if match is None:
        raise InvalidInputError(
            f"{what} must be a log position such as 42 (or a message id such as 42.1), got {text!r}"
        )
    position, index = match.groups()
    return (int(position), LAST if index is None else int(index))


def cursor_text(cursor: Cursor) -> str:
    position, index = cursor
    return str(position) if index == LAST else f"{position}.{index}"


def message_key(message: dict[str, Any]) -> Cursor:
    return message["_key"]


# Building messages from the views and the log ------------------------------------------------


def _amount(units: int | None, decimals: int) -> str | None:
    return None if units is None else format_amount(units, decimals)


def _trade_messages(row: dict[str, Any], decimals: int) -> list[dict[str, Any]]:
    trade = queries.tape_trade(row, decimals)
    trade.update(topic="trades", agent=row["taker"], p_long=trade["price_after"], p_long_wad=trade["price_after_wad"])
    tick = {
        "position": row["position"],
        "topic": "prices",
        "artifact": row["artifact_id"],
        "at": row["at"],
        "agent": None,
        "p_long": trade["price_after"],
        "p_long_wad": trade["price_after_wad"],
        "p_long_before": trade["price_before"],
        "volume": trade["tokens"],
        "volume_units": trade["tokens_units"],
    }
    return [trade, tick]


def _redemption_tick(position: int, event: Any, ledger: Any, decimals: int) -> dict[str, Any]:
    """The ``prices`` message of shares a settlement handed back to the pool (a flag's partial
    settlement): the pool's price moves with no trade, and a client following prices must see it.
    The market as it stood after the event gives the price; adding the shares back, the one before."""
    market = ledger.repository.get(event.originator_id, version=event.originator_version)
    long_back = event.shares_units if event.side == "long" else 0
    short_back = event.shares_units if event.side == "short" else 0
    after_wad = market.price_long_wad
    before_wad = prices_wad(market.q_long + long_back, market.q_short + short_back, market.b_units)[0]
    return {
        "position": position,
        "topic": "prices",
        "artifact": market.artifact_id,
        "at": event.timestamp.isoformat(),
        "agent": None,
        "p_long": queries.price(after_wad),
        "p_long_wad": str(after_wad),
        "p_long_before": queries.price(before_wad),
        "volume": _amount(0, decimals),
        "volume_units": "0",
        "cause": "settlement",
    }


def _event_message(position: int, event: Any, store: ViewStore, ledger: Any, decimals: int) -> dict[str, Any] | None:
    at = event.timestamp.isoformat()
    if isinstance(event, Artifact.SharesRedeemed):
        return _redemption_tick(position, event, ledger, decimals)
    if isinstance(event, Artifact.Transitioned):
        found = store.select(ARTIFACTS, "aggregate_id = ?", (uuid_text(event.originator_id.int),))
        return {
            "position": position,
            "topic": "settlements",
            "event": "transitioned",
            "artifact": found[0]["artifact_id"] if found else None,
            "at": at,
            "agent": None,
            "from_state": event.from_state,
            "to_state": event.to_state,
            "actor": event.actor,
            "price_long": queries.price(event.price_long_wad),
            "price_long_wad": str(event.price_long_wad),
        }
    order_id = event.order_id
    base = {"position": position, "topic": "orders", "artifact": artifact_of(order_id), "at": at, "order_id": order_id}
    if isinstance(event, Artifact.OrderPlaced):
        return {
            **base,
            "event": "placed",
            "agent": event.agent,
            "side": event.side,
            "tokens": _amount(event.tokens_units, decimals),
            "tokens_units": str(event.tokens_units),
            "limit_price": queries.price(event.limit_price_wad),
            "limit_price_wad": str(event.limit_price_wad),
            "status": "open",
        }
    order = store.select(ORDERS, "order_id = ?", (order_id,))
    owner = order[0] if order else {}
    base.update(agent=owner.get("agent"), side=owner.get("side"))
    if isinstance(event, Artifact.OrderFilled):
        return {
            **base,
            "event": "filled",
            "position_id": event.position_id,
            "shares": _amount(event.shares_units, decimals),
            "shares_units": str(event.shares_units),
            "cost": _amount(event.cost_units, decimals),
            "cost_units": str(event.cost_units),
            "status": event.order_status,
        }
    return {
        **base,
        "event": "released",
        "released": _amount(event.released_units, decimals),
        "released_units": str(event.released_units),
        "status": event.why,
    }


def _settlement_message(row: dict[str, Any], decimals: int) -> dict[str, Any]:
    return {
        "position": row["position"],
        "topic": "settlements",
        "event": row["kind"],
        "artifact": row["artifact_id"],
        "at": row["at"],
        "agent": row["agent"],
        "position_id": row["position_id"],
        "bounty_id": row["bounty_id"],
        "side": row["side"],
        "state": row["state"],
        "price_long": queries.price(row["price_long_wad"]),
        "payout": _amount(row["payout_units"], decimals),
        "payout_units": None if row["payout_units"] is None else str(row["payout_units"]),
        "pnl": _amount(row["pnl_units"], decimals),
        "pnl_units": None if row["pnl_units"] is None else str(row["pnl_units"]),
    }


def _transfer_message(row: dict[str, Any], decimals: int) -> dict[str, Any]:
    refs = row["refs"] or {}
    return {
        "position": row["position"],
        "topic": "transfers",
        "artifact": refs.get("artifact"),
        "at": row["at"],
        "agent": row["account"],
        "account": row["account"],
        "transfer_id": row["transfer_id"],
        "reason": row["reason"],
        "counterparty": row["counterparty"],
        "delta": _amount(row["delta_units"], decimals),
        "delta_units": str(row["delta_units"]),
        "balance": _amount(row["balance_units"], decimals),
        "balance_units": str(row["balance_units"]),
        "refs": refs,
    }


def _inbox_message(row: dict[str, Any], decimals: int) -> dict[str, Any]:
    return {
        "position": row["position"],
        "topic": "inbox",
        "artifact": row["artifact_id"],
        "at": row["at"],
        "agent": row["agent"],
        "kind": row["kind"],
        "position_id": row["position_id"],
        "message": queries.inbox_message(row, decimals),
    }


def build_messages(state: ApiState, store: ViewStore, after: int, until: int) -> tuple[list[dict[str, Any]], int]:
    """Every message of the log positions in (after, until], at most about PAGE_EVENTS
    positions' worth, in log order; and the position they reach. The views must have
    applied ``until``."""
    if until <= after:
        return [], after
    ledger, decimals = state.ledger, state.decimals
    page = ledger.recorder.select_notifications(
        start=after, limit=PAGE_EVENTS, stop=until, topics=_EVENT_TOPICS, inclusive_of_start=False
    )
    if len(page) == PAGE_EVENTS:
        until = page[-1].id
    # Stop the view rows at the same place: a busy stretch of movements is paged too.
    with store.read():
        lines = store.select(
            LINES, "position > ? AND position <= ?", (after, until), order="position", limit=PAGE_EVENTS
        )
        if len(lines) == PAGE_EVENTS:
            until = lines[-1]["position"]
            page = [notification for notification in page if notification.id <= until]
        window = (after, until)
        by_position: dict[int, list[dict[str, Any]]] = {}

        def add(items: Iterable[dict[str, Any]]) -> None:
            for item in items:
                by_position.setdefault(item["position"], []).append(item)

        for row in store.select(TRADES, "position > ? AND position <= ?", window, order="position"):
            add(_trade_messages(row, decimals))
        to_domain_event = ledger.mapper.to_domain_event
        add(
            message
            for notification in page
            if (message := _event_message(notification.id, to_domain_event(notification), store, ledger, decimals))
        )
        rows = store.select(SETTLEMENTS, "position > ? AND position <= ?", window, order="position, agent")
        add(_settlement_message(row, decimals) for row in rows)
        add(_transfer_message(row, decimals) for row in lines)
        rows = store.select(MESSAGES, "position > ? AND position <= ?", window, order="position, agent")
        add(_inbox_message(row, decimals) for row in rows)
    messages: list[dict[str, Any]] = []
    for position in sorted(by_position):
        group = by_position[position]
        for index, message in enumerate(group):
            key = (position, LAST if len(group) == 1 else index)
            message["_key"] = key
            message["id"] = cursor_text(key)
            messages.append(message)
    return messages, until


def views_position(store: ViewStore) -> int:
    positions = store.positions()
    return min(positions.get(name, 0) for name in FEED_VIEWS)


# Who may see what -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    topics: frozenset[str]
    artifact: str | None = None
    account: str | None = None

    def accepts(self, message: dict[str, Any]) -> bool:
        if self.artifact is not None and message["artifact"] != self.artifact:
            return False
        topic = message["topic"]
        if self.account is not None and message["agent"] == self.account:
            if "account" in self.topics or topic in self.topics:
                return True
        return topic in self.topics and topic in PUBLIC_TOPICS


def subscription(
    topics: str | None, artifact: str | None, account: str | None, principal: Principal | None
) -> Subscription:
    """Check a request's filter and, for private topics, the caller's key."""
    names = [name.strip() for name in (topics or ",".join(PUBLIC_TOPICS)).split(",") if name.strip()]
    unknown = sorted(set(names) - set(TOPICS))
    if unknown or not names:
        raise InvalidTopicError(f"topics are a comma-separated list of {', '.join(TOPICS)}; got {topics!r}")
    for name, value in (("artifact", artifact), ("account", account)):
        if value is not None and not re.match(NAME_PATTERN, value):
            raise InvalidInputError(f"{name} must be 1-64 letters, digits, '_', '.', '-'; got {value!r}")
    private = sorted(set(names) & set(PRIVATE_TOPICS))
    if private and account is None:
        raise InvalidInputError(f"topic {private[0]!r} is private: name the agent with account=AGENT")
    if account is not None:
        if principal is None:
            raise UnauthenticatedError("private topics need an API key: send 'Authorization: Bearer sl_...' or ?key=")
        principal.require_agent(account)
    return Subscription(frozenset(names), artifact, account)


# The hub: one per worker process ---------------------------------------------------------------


class Subscriber:
    """One connection's messages not yet sent, filled by the hub's thread."""

    def __init__(self, wanted: Subscription, loop: asyncio.AbstractEventLoop, max_buffered: int) -> None:
        self.wanted = wanted
        self.loop = loop
        self.max_buffered = max_buffered
        self.pending: deque[dict[str, Any]] = deque()
        self.overflow = False
        self.lock = threading.Lock()
        self.ready = asyncio.Event()

    def offer(self, messages: list[dict[str, Any]]) -> None:
        accepted = [message for message in messages if self.wanted.accepts(message)]
        if not accepted:
            return
        with self.lock:
            if self.overflow:
                return
            if len(self.pending) + len(accepted) > self.max_buffered:
                # Keep what is queued (a gapless run); the connection ends after sending it.
                self.overflow = True
            else:
                self.pending.extend(accepted)
        try:
            self.loop.call_soon_threadsafe(self.ready.set)
        except RuntimeError:  # the connection's loop is gone
            pass

    async def take(self, timeout: float) -> tuple[list[dict[str, Any]], bool]:
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        self.ready.clear()
        with self.lock:
            batch = list(self.pending)
            self.pending.clear()
            return batch, self.overflow


@dataclass
class FeedHub:
    state: ApiState
    poll_seconds: float = POLL_SECONDS
    max_buffered: int = MAX_BUFFERED
    cache_messages: int = CACHE_MESSAGES
    position: int | None = None
    # Every message at a position above cache_floor, up to ``position``, is in ``cache``.
    cache: list[dict[str, Any]] = field(default_factory=list)
    cache_keys: list[Cursor] = field(default_factory=list)
    cache_floor: int = 0
    subscribers: set[Subscriber] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    running: bool = False
    errors: int = 0

    def _views(self) -> Any:
        return self.state.views() if self.state.catch_up else nullcontext(self.state.store())

    def subscribe(self, subscriber: Subscriber) -> int:
        """Register a connection; returns the position from which the hub hands it messages."""
        with self.lock:
            if self.position is None:
                with self._views() as store:
                    self.position = self.cache_floor = views_position(store)
            self.subscribers.add(subscriber)
            if not self.running:
                self.running = True
                threading.Thread(target=self._run, name="stakeledger-feed", daemon=True).start()
            return self.position

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self.lock:
            self.subscribers.discard(subscriber)

    def history(self, cursor: Cursor, until: int) -> tuple[list[dict[str, Any]], int]:
        """Messages after ``cursor`` up to position ``until`` (a page of them), and the
        position they reach: from the cache when it covers the cursor, else from the views."""
        with self.lock:
            if cursor >= (self.cache_floor, LAST):
                start = bisect.bisect_right(self.cache_keys, cursor)
                end = bisect.bisect_right(self.cache_keys, (until, LAST))
                return self.cache[start:end], until
        store = self.state.store()
        messages, reached = build_messages(self.state, store, cursor[0] - (cursor[1] != LAST), until)
        return [message for message in messages if message_key(message) > cursor], reached

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            time.sleep(self.poll_seconds)
            with self.lock:
                if self.subscribers:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > IDLE_SECONDS:
                    self.running = False
                    return
            try:
                self.advance()
                self.errors = 0
            except Exception as error:  # noqa: BLE001 - a hub that dies would leave every client waiting
                self.errors += 1
                logger.warning("feed: reading the log failed (%s: %s); retrying", type(error).__name__, error)
                time.sleep(min(0.1 * 2**self.errors, 5.0))

    def advance(self) -> int:
        """Read what the views reached since the last call and hand it out; returns the count."""
        assert self.position is not None
        head = self.state.ledger.recorder.max_notification_id() or 0
        if head <= self.position:
            return 0
        with self._views() as store:
            until = views_position(store)
        sent = 0
        while self.position < until:
            messages, reached = build_messages(self.state, self.state.store(), self.position, until)
            with self.lock:
                self.cache.extend(messages)
                self.cache_keys.extend(message_key(message) for message in messages)
                if len(self.cache) > self.cache_messages:
                    cut = len(self.cache) - self.cache_messages // 2
                    self.cache_floor = self.cache_keys[cut - 1][0]
                    # Keep whole positions only: drop up to the end of the floor's position.
                    cut = bisect.bisect_right(self.cache_keys, (self.cache_floor, LAST))
                    del self.cache[:cut], self.cache_keys[:cut]
                self.position = reached
                subscribers = list(self.subscribers)
            for subscriber in subscribers:
                subscriber.offer(messages)
            sent += len(messages)
        return sent


_hub_lock = threading.Lock()
_KEY_IN_QUERY = re.compile(r"([?&]key=)[^&\s]*")


class RedactKeys(logging.Filter):
    """Access-log lines show ``?key=[redacted]`` instead of a browser's key."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _KEY_IN_QUERY.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def redact_access_log() -> None:
    """Install ``RedactKeys`` on uvicorn's loggers (once, after uvicorn set logging up): the
    access log has HTTP request lines, the error log the WebSocket handshakes."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger_ = logging.getLogger(name)
        if not any(isinstance(existing, RedactKeys) for existing in logger_.filters):
            logger_.addFilter(RedactKeys())


def hub_of(app: Any) -> FeedHub:
    """The app's hub, made on first use; ``app.state.feed_settings`` may set its knobs."""
    with _hub_lock:
        hub = getattr(app.state, "feed_hub", None)
        if hub is None:
            redact_access_log()
            hub = app.state.feed_hub = FeedHub(app.state.api, **getattr(app.state, "feed_settings", {}))
        return hub


async def messages_for(
    hub: FeedHub, wanted: Subscription, cursor: Cursor, *, keepalive: float = KEEPALIVE_SECONDS
) -> AsyncIterator[dict[str, Any] | None]:
    """A connection's messages after ``cursor``: first what the log holds, then live ones.
    Yields None when nothing came for ``keepalive`` seconds, and at the end a close
    message when the connection fell ``max_buffered`` messages behind."""
    subscriber = Subscriber(wanted, asyncio.get_running_loop(), hub.max_buffered)
    start = await run_in_threadpool(hub.subscribe, subscriber)
    try:
        while cursor < (start, LAST):
            batch, reached = await run_in_threadpool(hub.history, cursor, start)
            for message in batch:
                if wanted.accepts(message):
                    yield message
            cursor = max(cursor, (reached, LAST))
        while True:
            batch, overflow = await subscriber.take(keepalive)
            sent = False
            for message in batch:
                if message_key(message) > cursor:
                    cursor = message_key(message)
                    sent = True
                    yield message
            if overflow:
                yield {
                    "topic": "close",
                    "reason": SLOW_CONSUMER,
                    "message": f"more than {hub.max_buffered} messages waited to be sent; resume after the last id",
                    "resume_after": cursor_text(cursor),
                }
                return
            if not sent:
                yield None
    finally:
        hub.unsubscribe(subscriber)


def public(message: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key != "_key"}


# Endpoints ----------------------------------------------------------------------------------------

TopicsQuery = Annotated[
    Optional[str],
    Query(max_length=200, description=f"Comma-separated topics: {', '.join(TOPICS)} (default: the public ones)."),
]
ArtifactQuery = Annotated[Optional[str], Query(max_length=64, description="Only messages about this artifact.")]
AccountQuery = Annotated[
    Optional[str], Query(max_length=64, description="The agent of the private topics (needs its key or an admin key).")
]
AfterQuery = Annotated[Optional[str], Query(max_length=32, description="Resume after this log position or message id.")]
KeyQuery = Annotated[
    Optional[str], Query(max_length=200, description="An API key, for clients that cannot send headers.")
]


def _principal(state: ApiState, token: str | None) -> Principal | None:
    return authenticate(state.ledger, token) if token else None


@dataclass(frozen=True)
class FeedRequest:
    wanted: Subscription
    cursor: Cursor


def feed_request(
    state: Annotated[ApiState, Depends(get_state)],
    credentials: Annotated[Optional[HTTPAuthorizationCredentials], Depends(bearer)],
    topics: TopicsQuery = None,
    artifact: ArtifactQuery = None,
    account: AccountQuery = None,
    after: AfterQuery = None,
    key: KeyQuery = None,
    last_event_id: Annotated[
        Optional[str], Header(alias="Last-Event-ID", max_length=32, description="SSE resume: the last id received.")
    ] = None,
) -> FeedRequest:
    redact_access_log()
    token = credentials.credentials if credentials is not None else key
    wanted = subscription(topics, artifact, account, _principal(state, token) if account is not None else None)
    # An EventSource reconnects with its original URL and the header: the header is newer.
    cursor = parse_cursor(last_event_id, "Last-Event-ID") if last_event_id else parse_cursor(after, "after")
    return FeedRequest(wanted, cursor)


def sse_frame(message: dict[str, Any] | None) -> str:
    if message is None:
        return ": keep-alive\n\n"
    body = json.dumps(public(message), separators=(",", ":"))
    if message.get("topic") == "close":
        return f"event: close\ndata: {body}\n\n"
    return f"id: {message['id']}\ndata: {body}\n\n"


@router.get(
    "/stream",
    responses=responses(401, 403),
    summary="The live feed as Server-Sent Events: resumable with Last-Event-ID or ?after=",
    response_class=StreamingResponse,
    # An endless stream: kept out of the OpenAPI document, whose every operation a client
    # generator (schemathesis) calls and reads to the end. docs/api.md describes it.
    include_in_schema=False,
)
async def stream(request: Request, feed: Annotated[FeedRequest, Depends(feed_request)]) -> StreamingResponse:
    hub = hub_of(request.app)

    async def frames() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        async for message in messages_for(hub, feed.wanted, feed.cursor):
            yield sse_frame(message)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _until_disconnect(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it goes: the feed then stops."""
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    except Exception:  # noqa: BLE001 - any failure to read means the client is gone
        return


@router.websocket("/ws")
async def websocket_feed(websocket: WebSocket) -> None:
    """The same messages as /api/stream, one JSON text frame each. A refusal is sent as
    the usual error body, then the socket closes with code 4000 + the HTTP status."""
    redact_access_log()  # before the accept, which uvicorn logs with the query
    await websocket.accept()
    state: ApiState = websocket.app.state.api
    params = websocket.query_params
    header = websocket.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else params.get("key")
    try:
        for name in ("topics", "artifact", "account", "after", "key"):
            if len(params.get(name) or "") > 200:
                raise InvalidInputError(f"{name} is too long")
        account = params.get("account")
        principal = await run_in_threadpool(_principal, state, token) if account is not None else None
        wanted = subscription(params.get("topics"), params.get("artifact"), account, principal)
        cursor = parse_cursor(params.get("after"), "after")
    except LedgerError as refusal:
        await websocket.send_json({"error": refusal.code, "message": str(refusal)})
        await websocket.close(code=4000 + http_status_for(refusal))
        return
    hub = hub_of(websocket.app)
    messages = messages_for(hub, wanted, cursor, keepalive=WS_IDLE_CHECK_SECONDS)
    gone = asyncio.create_task(_until_disconnect(websocket))
    try:
        async for message in messages:
            if gone.done():
                return
            if message is None:
                continue
            await websocket.send_json(public(message))
            if message.get("topic") == "close":
                await websocket.close(code=4008, reason=SLOW_CONSUMER)
                return
    except WebSocketDisconnect:
        return
    finally:
        gone.cancel()
        await messages.aclose()
        if (
            websocket.application_state == WebSocketState.CONNECTED
            and websocket.client_state == WebSocketState.CONNECTED
        ):
            try:
                await websocket.close()
            except RuntimeError:
                pass
