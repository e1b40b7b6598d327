"""Shared helpers for the benchmark scripts in bench/.

- ``postgres_server()``: the PostgreSQL server to measure against. It reuses the URL in
  ``STAKELEDGER_BENCH_POSTGRES_URL`` or starts a throwaway server with ``.ci/postgres.sh``
  (port ``STAKELEDGER_BENCH_POSTGRES_PORT``, default 55499) and stops it afterwards.
- ``fresh_store(backend, server_url)``: a store URL no other measurement has touched, a
  SQLite file in a new temporary directory or a new PostgreSQL schema (dropped after).
- ``plain_connection(url)``: a DB-API connection to the same store, for plain-SQL baselines.
- ``measure(fn, n)``: seconds taken by ``fn(0) .. fn(n - 1)``, timed with ``time.perf_counter``.
- ``report(name, title, columns, rows, document)``: a rich table, then the JSON document
  (printed last) which is also written to ``bench/results/<name>.json``.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
POSTGRES_URL_ENV = "STAKELEDGER_BENCH_POSTGRES_URL"
POSTGRES_PORT_ENV = "STAKELEDGER_BENCH_POSTGRES_PORT"
DEFAULT_POSTGRES_PORT = 55499
BACKENDS = ("sqlite", "postgresql")

# Run as ``python bench/NAME.py``, a script's own folder comes first on the import path,
# and bench/projections.py would then shadow the projections package it measures. Every
# script imports this module first: from here on the project's packages win.
sys.path[:] = [str(ROOT)] + [entry for entry in sys.path if Path(entry or ".").resolve() not in (BENCH_DIR, ROOT)]
sys.path.append(str(BENCH_DIR))


def log(message: str) -> None:
    """Progress goes to stderr so stdout holds only the table and the JSON."""
    print(message, file=sys.stderr, flush=True)


# Backends -------------------------------------------------------------------------------


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a PostgreSQL server URL: the one in the environment, or a throwaway one."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        yield url
        return
    port = os.environ.get(POSTGRES_PORT_ENV, str(DEFAULT_POSTGRES_PORT))
    directory = tempfile.mkdtemp(prefix="stakeledger-bench-pg-")
    script = str(ROOT / ".ci" / "postgres.sh")
    log(f"starting a throwaway PostgreSQL on port {port} ({POSTGRES_URL_ENV} is not set)")
    try:
        started = subprocess.run([script, "start", directory, port], check=True, capture_output=True, text=True)
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([script, "stop", directory], check=False, capture_output=True)


def split_schema(url: str) -> tuple[str, str | None]:
    """``postgresql://...?schema=s`` -> (the URL without ``schema``, ``s``)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    schema = query.pop("schema", [None])[0]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True))), schema


def with_schema(server_url: str, schema: str) -> str:
    parts = urlsplit(server_url)
    query = parse_qs(parts.query)
    query["schema"] = [schema]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))


@contextmanager
def fresh_schema(server_url: str, label: str = "bench") -> Iterator[str]:
    """A new empty schema on the server as a store URL (``?schema=``); dropped afterwards.
    Close every connection to it (``app.close()``) before leaving the block."""
    import psycopg

    base, _ = split_schema(server_url)
    schema = f"bench_{label}_{uuid.uuid4().hex[:8]}".replace("-", "_")
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_schema(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def fresh_store(backend: str, server_url: str | None = None, label: str = "bench") -> Iterator[str]:
    """A store URL for one measurement: a new SQLite file, or a new PostgreSQL schema."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"stakeledger-{label}-") as directory:
            yield f"sqlite:///{directory}/{label}.db"
    elif backend == "postgresql":
        if not server_url:
            raise ValueError("a PostgreSQL store needs a server URL")
        with fresh_schema(server_url, label) as url:
            yield url
    else:
        raise ValueError(f"unknown backend {backend!r}")


def plain_connection(url: str) -> Any:
    """A DB-API connection to a store URL, for plain-SQL baselines. SQLite: autocommit
    mode (issue BEGIN yourself) and WAL, as eventsourcing uses. PostgreSQL: the URL's
    schema is the search path; transactions begin implicitly."""
    if url.startswith("sqlite:///"):
        connection = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        return connection
    import psycopg

    base, schema = split_schema(url)
    options = f"-c search_path={schema}" if schema else ""
    return psycopg.connect(base, options=options)


def backend_version(backend: str, server_url: str | None = None) -> str:
    if backend == "sqlite":
        return sqlite3.sqlite_version
    import psycopg

    with psycopg.connect(split_schema(server_url or "")[0]) as connection:
        return str(connection.execute("SHOW server_version").fetchone()[0])


# Timing ---------------------------------------------------------------------------------


def measure(fn: Callable[[int], Any], n: int = 1) -> float:
    """Seconds taken by the calls ``fn(0)``, ``fn(1)``, ... ``fn(n - 1)``."""
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return time.perf_counter() - start


def per_second(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def machine_info() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "eventsourcing": version("eventsourcing"),
        "sqlite": sqlite3.sqlite_version,
    }


# Output ---------------------------------------------------------------------------------


def report(name: str, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], document: dict) -> Path:
    """Print a rich table, then the JSON document last; write the JSON to results/<name>.json."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for index, column in enumerate(columns):
        textual = all(isinstance(row[index], str) for row in rows)
        table.add_column(column, justify="left" if textual else "right")
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    Console(width=None if sys.stdout.isatty() else 120).print(table)

    text = json.dumps(document, indent=2)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(text + "\n")
    print(text, flush=True)
    return path


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 10 else f"{value:,.0f}"
    return str(value)
