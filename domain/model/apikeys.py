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
from datetime import datetime
from typing import Optional
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from stakeledger.domain.errors import InvalidInputError, LedgerError, StateError
from stakeledger.domain.model.copying import CheapCopy
from stakeledger.domain.model.naming import register_aggregate
from stakeledger.domain.model.types import Name

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


class ForbiddenError(LedgerError):
    """A valid key that may not do this: another agent's business, or an admin-only command."""

    code = "FORBIDDEN"


class UnknownKeyError(LedgerError, LookupError):
    code = "UNKNOWN_KEY"


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


def parse_token(token: str) -> str:
    """The key id of a well-formed key string; refuses anything else."""
    match = _TOKEN.match(token) if isinstance(token, str) and len(token) <= MAX_TOKEN_LENGTH else None
    if match is None:
        raise UnauthenticatedError("the bearer key is malformed: keys look like sl_<key id>_<secret>")
    return match.group("key_id")


class ApiKey(CheapCopy, Aggregate):
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
