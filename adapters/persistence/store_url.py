"""Turn a store URL into eventsourcing's persistence settings, and open a ledger on it.

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` — the embedded default
- ``postgresql://user:password@host:port/dbname[?schema=name]`` — production
- ``memory://`` — the in-process store (tests only; nothing survives the process)
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from stakeledger.domain.errors import InvalidStoreUrlError
from stakeledger.domain.service.application import StakeLedger

RECORDERS = "stakeledger.adapters.persistence.recorders:"
DEFAULT_URL = "sqlite:///stakeledger.db"
URL_ENV = "STAKELEDGER_DATABASE_URL"


def resolve_url(url: str | None) -> str:
    return url or os.environ.get(URL_ENV) or DEFAULT_URL


def open_ledger(url: str, **kwargs: Any) -> StakeLedger:
    """The ledger stored at ``url``; keyword arguments (clock, new_id) go to StakeLedger."""
    return StakeLedger(env_for_url(url), **kwargs)


def env_for_url(url: str) -> dict[str, str]:
    if not isinstance(url, str) or "://" not in url:
        raise InvalidStoreUrlError(
            f"store URL must look like sqlite:///path.db or postgresql://user:password@host:port/db, got {url!r}"
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if scheme == "sqlite":
        return _sqlite_env(url)
    if scheme in ("postgresql", "postgres"):
        return _postgres_env(url)
    raise InvalidStoreUrlError(f"unsupported store URL scheme {scheme!r}: use sqlite:// or postgresql://")


def _sqlite_env(url: str) -> dict[str, str]:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise InvalidStoreUrlError(f"SQLite URL must be sqlite:///path/to/file.db, got {url!r}")
    path = unquote(url[len(prefix) :])
    if path != ":memory:":
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise InvalidStoreUrlError(f"directory for SQLite file does not exist: {directory}")
    return {
        "PERSISTENCE_MODULE": RECORDERS + "SQLiteLedgerFactory",
        "SQLITE_DBNAME": path,
        # Writers queue for up to 30 s instead of failing at once under contention.
        "SQLITE_LOCK_TIMEOUT": "30",
    }


def _postgres_env(url: str) -> dict[str, str]:
    try:
        parts = urlsplit(url)
        port = parts.port or 5432
    except ValueError as error:
        raise InvalidStoreUrlError(f"malformed PostgreSQL URL {url!r}: {error}") from None
    dbname = parts.path.lstrip("/")
    if not parts.hostname or not dbname or "/" in dbname:
        raise InvalidStoreUrlError(f"PostgreSQL URL must be postgresql://user:password@host:port/dbname, got {url!r}")
    env = {
        "PERSISTENCE_MODULE": RECORDERS + "PostgresLedgerFactory",
        "POSTGRES_DBNAME": unquote(dbname),
        "POSTGRES_HOST": parts.hostname,
        "POSTGRES_PORT": str(port),
        "POSTGRES_USER": unquote(parts.username or ""),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "8",
        # Insert through the library's stored function instead of a psycopg pipeline: large
        # saves (a 10,000-position settlement) could hang in Pipeline.sync() otherwise.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
    }
    schema = parse_qs(parts.query).get("schema")
    if schema:
        env["POSTGRES_SCHEMA"] = schema[0]
    return env
