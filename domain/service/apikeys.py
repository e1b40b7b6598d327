"""The API-key verbs: issue, revoke, authenticate and list (the ApiKey aggregate is in
``stakeledger.domain.model.apikeys``, which says how keys are made and checked)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from stakeledger.domain.decisions.unit_of_work import UnitOfWork
from stakeledger.domain.errors import StateError
from stakeledger.domain.model.accounts import agent_account_id
from stakeledger.domain.model.apikeys import (
    ADMIN,
    KEY_ID_HEX_DIGITS,
    LIST_PAGE_SIZE,
    MAX_LISTED_KEYS,
    SCOPES,
    SECRET_BYTES,
    TOKEN_PREFIX,
    TRADE,
    ApiKey,
    ForbiddenError,
    UnauthenticatedError,
    UnknownKeyError,
    apikey_uuid,
    check_key_id,
    check_scope,
    digest_of,
    parse_token,
)
from stakeledger.domain.model.naming import stable_topic
from stakeledger.domain.service.ledger import LedgerCore

# The vocabulary callers use through this module, with the verbs.
__all__ = [
    "ADMIN",
    "SCOPES",
    "TRADE",
    "ApiKey",
    "ForbiddenError",
    "Principal",
    "UnauthenticatedError",
    "UnknownKeyError",
    "authenticate",
    "issue_key",
    "list_keys",
    "parse_token",
    "revoke_key",
]


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


def issue_key(app: LedgerCore, agent: str, scope: str = TRADE, *, key_id: str | None = None) -> dict[str, Any]:
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


def revoke_key(app: LedgerCore, key_id: str) -> dict[str, Any]:
    check_key_id(key_id)

    def decide(unit: UnitOfWork) -> dict[str, Any]:
        key = unit.find(apikey_uuid(key_id), ApiKey)
        if key is None:
            raise UnknownKeyError(f"unknown key {key_id}")
        key.revoke(unit.at)
        return {"key_id": key_id, "agent": key.agent, "scope": key.scope, "revoked_at": unit.at.isoformat()}

    return app.execute("apikey.revoke", decide, payload={"key_id": key_id})


# Reads ------------------------------------------------------------------------------------


def authenticate(app: LedgerCore, token: str | None) -> Principal:
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


def list_keys(app: LedgerCore) -> list[dict[str, Any]]:
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
