"""API keys: who may call the HTTP API, for which agent, with which scope.

A key is the string ``sl_<key_id>_<secret>``: ``key_id`` is 16 hex digits that name the
key in listings and logs, ``secret`` is 32 random bytes (urlsafe base64). The whole
string is shown once, when the key is issued; the log keeps only its SHA-256 digest
(``sha256:<hex>``). A salt or a slow hash protects secrets people choose, which can be
guessed; 256 random bits cannot be, so a plain SHA-256 is enough here and lets every
request be checked with one hash. The digest is compared with ``hmac.compare_digest``,
in constant time. Note that the digests, agents and scopes travel with the event log
(including the EVM export): that is safe for the same reason, but a key's existence is
not secret.

Each key is an ``ApiKey`` aggregate whose id is a UUID5 of its key id, so a request
loads exactly one aggregate to authenticate. Keys are listed by scanning the log for
``ApiKey.Issued`` (a topic-filtered read of the notification log), which is cheap
because issuing keys is rare; no registry aggregate is kept, so issuing never contends.

Scopes: ``trade`` acts only for its own agent; ``admin`` acts for every agent and may
also transition artifacts, mint, and distribute or refund bounties.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from stakeledger.domain.errors import InvalidInputError, LedgerError, StateError
from stakeledger.domain.model.accounts import agent_account_id
from stakeledger.domain.model.naming import register_aggregate, stable_topic
from stakeledger.domain.model.types import Name

if TYPE_CHECKING:
    from stakeledger.domain.service.application import StakeLedger
    from stakeledger.domain.service.unit_of_work import UnitOfWork

TRADE, ADMIN = "trade", "admin"
SCOPES = (TRADE, ADMIN)
TOKEN_PREFIX = "sl_"
KEY_ID_HEX_DIGITS = 16
SECRET_BYTES = 32
HASH_SCHEME = "sha256"
MAX_TOKEN_LENGTH = 200
MAX_LISTED_KEYS = 100_000
LIST_PAGE_SIZE = 1_000

_NAMESPACE = uuid5(NAMESPACE_URL, "https://stakeledger.invalid/api-key")
_KEY_ID = re.compile(rf"^[0-9a-f]{{{KEY_ID_HEX_DIGITS}}}\Z")
_TOKEN = re.compile(
    rf"^{TOKEN_PREFIX}(?P<key_id>[0-9a-f]{{{KEY_ID_HEX_DIGITS}}})_(?P<secret>[A-Za-z0-9_\-]{{20,100}})\Z"
)


class UnauthenticatedError(LedgerError):
    """No key, a malformed key, or a key the ledger does not accept (unknown or revoked)."""

    code = "UNAUTHENTICATED"
    http_status = 401


class ForbiddenError(LedgerError):
    """A valid key that may not do this: another agent's business, or an admin-only command."""

    code = "FORBIDDEN"
    http_status = 403


class UnknownKeyError(LedgerError, LookupError):
    code = "UNKNOWN_KEY"
    http_status = 404


def apikey_uuid(key_id: str) -> UUID:
    return uuid5(_NAMESPACE, key_id)


def check_key_id(key_id: str) -> str:
    if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
        raise InvalidInputError(f"a key id is {KEY_ID_HEX_DIGITS} lower-case hex digits, got {key_id!r}")
    return key_id


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise InvalidInputError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    return scope


def digest_of(token: str) -> str:
    """The stored form of a key: ``sha256:<hex digest of the whole key string>``."""
    return f"{HASH_SCHEME}:{hashlib.sha256(token.encode()).hexdigest()}"


class ApiKey(Aggregate):
    class Issued(Aggregate.Created):
        key_id: Name
        agent: Name
        scope: Name
        hash: Name
        created: datetime

    class Revoked(Aggregate.Event):
        revoked_at: datetime

        def apply(self, key: "ApiKey") -> None:
            key.revoked_at = self.revoked_at

    def __init__(self, key_id: str, agent: str, scope: str, hash: str, created: datetime) -> None:  # noqa: A002
        self.key_id = key_id
        self.agent = agent
        self.scope = scope
        self.hash = hash
        self.created = created
        self.revoked_at: Optional[datetime] = None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def matches(self, token: str) -> bool:
        """Constant-time comparison of the presented key's digest with the stored one."""
        return hmac.compare_digest(self.hash.encode(), digest_of(token).encode())

    def revoke(self, at: datetime) -> None:
        if self.is_revoked:
            raise StateError(f"key {self.key_id} was already revoked")
        self.trigger_event(self.Revoked, timestamp=at, revoked_at=at)


register_aggregate(ApiKey)


@dataclass(frozen=True)
class Principal:
    """The caller a valid key names."""

    key_id: str
    agent: str
    scope: str

    @property
    def is_admin(self) -> bool:
        return self.scope == ADMIN

    def require_admin(self, action: str) -> None:
        if not self.is_admin:
            raise ForbiddenError(f"{action} needs an admin key; key {self.key_id} has scope {self.scope!r}")

    def require_agent(self, agent: str) -> None:
        """A trade key acts only for its own agent; an admin key for any."""
        if not self.is_admin and agent != self.agent:
            raise ForbiddenError(f"key {self.key_id} acts for {self.agent!r}, not for {agent!r}")


# Commands ---------------------------------------------------------------------------------


def issue_key(app: StakeLedger, agent: str, scope: str = TRADE, *, key_id: str | None = None) -> dict[str, Any]:
    """Issue a key and return it with its secret, the only time the secret is shown."""
    agent = agent_account_id(agent)
    check_scope(scope)
    key_id = check_key_id(key_id) if key_id is not None else secrets.token_hex(KEY_ID_HEX_DIGITS // 2)
    token = f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
    app.settings  # noqa: B018 - refuse before writing when the ledger is not initialised

    def decide(unit: UnitOfWork) -> dict[str, Any]:
        if unit.find(apikey_uuid(key_id), ApiKey) is not None:
            raise StateError(f"key id {key_id} is already taken")
        if scope == TRADE:
            unit.account(agent)  # a trade key acts for an account, which must exist; an admin key names its operator
        unit.add(
            ApiKey._create(
                ApiKey.Issued,
                id=apikey_uuid(key_id),
                timestamp=unit.at,
                key_id=key_id,
                agent=agent,
                scope=scope,
                hash=digest_of(token),
                created=unit.at,
            )
        )
        return {"key_id": key_id, "agent": agent, "scope": scope, "created": unit.at.isoformat()}

    # No command id: a retried issue must not hand back a secret it never stored.
    result = app.execute("apikey.issue", decide, payload={"key_id": key_id, "agent": agent, "scope": scope})
    return {**result, "key": token}


def revoke_key(app: StakeLedger, key_id: str) -> dict[str, Any]:
    check_key_id(key_id)

    def decide(unit: UnitOfWork) -> dict[str, Any]:
        key = unit.find(apikey_uuid(key_id), ApiKey)
        if key is None:
            raise UnknownKeyError(f"unknown key {key_id}")
        key.revoke(unit.at)
        return {"key_id": key_id, "agent": key.agent, "scope": key.scope, "revoked_at": unit.at.isoformat()}

    return app.execute("apikey.revoke", decide, payload={"key_id": key_id})


# Reads ------------------------------------------------------------------------------------


def parse_token(token: str) -> str:
    """The key id of a well-formed key string; refuses anything else."""
    match = _TOKEN.match(token) if isinstance(token, str) and len(token) <= MAX_TOKEN_LENGTH else None
    if match is None:
        raise UnauthenticatedError("the bearer key is malformed: keys look like sl_<key id>_<secret>")
    return match.group("key_id")


def authenticate(app: StakeLedger, token: str | None) -> Principal:
    """The principal a bearer key names, or UnauthenticatedError. Unknown, revoked and
    wrong-secret keys get the same answer, so the answer tells a guesser nothing."""
    if not token:
        raise UnauthenticatedError("this request needs an API key: send 'Authorization: Bearer sl_...'")
    key_id = parse_token(token)
    try:
        key = app.repository.get(apikey_uuid(key_id))
    except AggregateNotFoundError:
        key = None
    # Hash even when the key is unknown, so timing does not tell unknown ids from wrong secrets.
    accepted = key.matches(token) if isinstance(key, ApiKey) else hmac.compare_digest(digest_of(token), digest_of(""))
    if not isinstance(key, ApiKey) or not accepted or key.is_revoked:
        raise UnauthenticatedError("unknown or revoked API key")
    return Principal(key.key_id, key.agent, key.scope)


def list_keys(app: StakeLedger) -> list[dict[str, Any]]:
    """Every key ever issued, oldest first, with its state; never a secret or a digest."""
    topic = stable_topic(ApiKey.Issued)
    rows: list[dict[str, Any]] = []
    position = 0
    while len(rows) < MAX_LISTED_KEYS:
        page = app.recorder.select_notifications(
            start=position, limit=LIST_PAGE_SIZE, topics=(topic,), inclusive_of_start=False
        )
        for notification in page:
            issued = app.mapper.to_domain_event(notification)
            key = app.repository.get(issued.originator_id)
            assert isinstance(key, ApiKey)
            rows.append(
                {
                    "key_id": key.key_id,
                    "agent": key.agent,
                    "scope": key.scope,
                    "created": key.created.isoformat(),
                    "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
                    "status": "revoked" if key.is_revoked else "active",
                }
            )
        if len(page) < LIST_PAGE_SIZE:
            break
        position = page[-1].id
    return rows
