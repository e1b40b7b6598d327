"""Reading an export directory without trusting it.

``verify``, ``import`` and ``export proof --from`` read directories anyone could have
written, so every read goes through here:

- the directory is opened once, without following a symbolic link, and every file is
  opened relative to it (``dir_fd``) with ``O_NOFOLLOW``: a symlink, FIFO, device or
  directory where a file is expected is refused before a byte is read (a FIFO is never
  opened for blocking reads, so it cannot hang the process);
- a name the export does not have is refused by name (``.NAME.partial`` files are named
  as the leftovers of an interrupted export);
- no file is read past a bound: the manifest and the header have fixed ceilings, every
  other file the size its manifest states, checked against ``fstat`` before reading and
  enforced while reading (a file that grows is cut off and refused);
- JSON is parsed only after its nesting is known to be at most ``MAX_JSON_DEPTH`` deep
  (``parse_json``), and only as UTF-8 text.

The same JSON bound (``json_too_deep``) guards each events.jsonl line and each record's
payload before they are parsed.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from stakeledger.adapters.evm.bundle import ALL_FILES, DATA_FILES, MANIFEST, ExportInvalidError

# Every document an export holds nests 5 levels at most; a payload at most 33 (canonical.py).
MAX_JSON_DEPTH = 64
# manifest.json is about 3 kB and header.json about 2.5 kB whatever the ledger's size.
MANIFEST_MAX_BYTES = 1 << 20
HEADER_MAX_BYTES = 64 << 10


def partial_name(name: str) -> str:
    """The temporary name ``export`` writes ``name`` under before renaming it."""
    return f".{name}.partial"


PARTIAL_FILES = tuple(partial_name(name) for name in ALL_FILES)

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
# Keep quotes and brackets only, and read {} as []: depth is all that is measured.
_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURAL = bytes(byte for byte in range(256) if byte not in b'"[]{}')


def json_too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether parsing ``data`` as JSON could nest more than ``limit`` arrays/objects.

    Runs in C-speed passes over the bytes, never recursing: escapes and everything but
    quotes and brackets are dropped, then strings, then each pass removes the innermost
    level of brackets. Exact for valid JSON; for invalid JSON it errs towards True only
    when the brackets could nest deeper than ``limit`` before the parser finds the error.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    text = _STRING.sub(b"", _ESCAPE.sub(b"", data).translate(_AS_BRACKETS, _NOT_STRUCTURAL))
    quote = text.find(b'"')
    if quote >= 0:  # an unterminated string: the parser stops there
        text = text[:quote]
    if b"[" * (limit + 1) in text:
        return True
    levels = 0
    while text and levels <= limit:
        shorter = text.replace(b"[]", b"")  # one pass removes exactly the innermost level
        if len(shorter) == len(text):
            break
        levels += 1
        text = shorter
    if not text:
        return levels > limit
    if b"[]" in text:
        return True  # more than ``limit`` levels removed and still nested
    # Left: closers without openers, then openers never closed (a truncated document).
    return levels + text.count(b"[") > limit


def parse_json(name: str, data: bytes, *, what: str = "", max_depth: int = MAX_JSON_DEPTH, **where: Any) -> Any:
    """``data`` parsed as UTF-8 JSON, or ExportInvalidError naming ``name`` (and ``what``)."""
    label = f"{what} " if what else ""
    if json_too_deep(data, max_depth):
        raise ExportInvalidError(name, f"{label}nests deeper than {max_depth} levels: refused unparsed", **where)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ExportInvalidError(name, f"{label}is not UTF-8: {error.reason} at byte {error.start}", **where) from None
    except RecursionError:  # cannot happen below max_depth; kept so nothing ever escapes as a traceback
        raise ExportInvalidError(name, f"{label}nests too deep to parse", **where) from None
    except ValueError as error:
        raise ExportInvalidError(name, f"{label}not valid JSON: {error}", **where) from None


def stated_sizes(manifest: dict[str, Any]) -> dict[str, int]:
    """Each data file's size as the manifest states it: the most ``verify`` reads of it."""
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ExportInvalidError(MANIFEST, "has no files object (each file's size and sha256)")
    sizes: dict[str, int] = {}
    for name in DATA_FILES:
        facts = files.get(name)
        size = facts.get("bytes") if isinstance(facts, dict) else None
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ExportInvalidError(MANIFEST, f"files.{name}.bytes is not a byte count: {size!r}")
        sizes[name] = size
    return sizes


class Limit:
    """The most bytes a file may hold, and who is to blame when it holds more."""

    def __init__(self, size: int, blame: str, reason: str) -> None:
        self.size = size
        self.blame = blame
        self.reason = reason

    @classmethod
    def stated(cls, name: str, size: int) -> Limit:
        return cls(size, MANIFEST, f"{name} is larger than the {size} bytes the manifest records for it")

    @classmethod
    def ceiling(cls, name: str, size: int) -> Limit:
        return cls(size, name, f"is larger than {size} bytes, the most this file may hold")

    def exceeded(self, found: int | None = None) -> ExportInvalidError:
        found_text = f" ({found} bytes)" if found is not None else ""
        return ExportInvalidError(self.blame, self.reason + found_text)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


class ExportDirectory:
    """An export directory opened for reading; use as a context manager."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = Path(directory)
        shown = str(self.path)
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            raise ExportInvalidError(shown, "no such export directory") from None
        except OSError as error:
            raise ExportInvalidError(shown, f"cannot read: {error.strerror or error}") from None
        if stat.S_ISLNK(mode):
            raise ExportInvalidError(
                shown, f"is a symbolic link (to {os.readlink(self.path)}): give the export directory itself"
            )
        if not stat.S_ISDIR(mode):
            raise ExportInvalidError(shown, "no such export directory (not a directory)")
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as error:
            raise ExportInvalidError(shown, f"cannot open the export directory: {error.strerror or error}") from None

    def __enter__(self) -> ExportDirectory:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def names(self) -> list[str]:
        return sorted(os.listdir(self.fd))

    def check_names(self) -> None:
        """Refuse a directory without a manifest (naming an interrupted export) or with a stranger."""
        names = self.names()
        if MANIFEST not in names:
            leftovers = [name for name in names if name in ALL_FILES or name in PARTIAL_FILES]
            if leftovers:
                raise ExportInvalidError(
                    MANIFEST,
                    f"missing from {self.path}, which holds {', '.join(leftovers)}: an interrupted export "
                    "(the manifest is written last); run the export again",
                )
            raise ExportInvalidError(MANIFEST, f"missing from {self.path}")
        for name in names:
            if name in ALL_FILES:
                continue
            if name in PARTIAL_FILES:
                raise ExportInvalidError(
                    name, "is left over from an interrupted export: remove it, or export into this directory again"
                )
            raise ExportInvalidError(name, "is not part of an export (the manifest lists no such file): remove it")

    def open(self, name: str, limit: Limit) -> IO[bytes]:
        """``name`` opened for reading, once it is known to be a regular file within ``limit``."""
        try:
            before = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            raise ExportInvalidError(name, f"missing from {self.path}") from None
        except OSError as error:
            raise ExportInvalidError(name, f"cannot read: {error.strerror or error}") from None
        if not stat.S_ISREG(before.st_mode):
            raise ExportInvalidError(name, f"is {_kind(before.st_mode)}: an export holds regular files only")
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=self.fd)
        except OSError as error:
            raise ExportInvalidError(name, f"cannot read: {error.strerror or error}") from None
        try:
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):  # swapped since the stat above
                raise ExportInvalidError(name, f"is {_kind(status.st_mode)}: an export holds regular files only")
            if status.st_size > limit.size:
                raise limit.exceeded(status.st_size)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def read(self, name: str, limit: Limit) -> bytes:
        with self.open(name, limit) as handle:
            try:
                data = handle.read(limit.size + 1)
            except OSError as error:
                raise ExportInvalidError(name, f"cannot read: {error.strerror or error}") from None
        if len(data) > limit.size:
            raise limit.exceeded()
        return data

    def lines(self, name: str, limit: Limit) -> Iterator[bytes]:
        """The file's lines (newline kept), never more than ``limit`` bytes in all."""
        with self.open(name, limit) as handle:
            left = limit.size
            while True:
                try:
                    line = handle.readline(left + 1)
                except OSError as error:
                    raise ExportInvalidError(name, f"cannot read: {error.strerror or error}") from None
                if not line:
                    return
                left -= len(line)
                if left < 0:
                    raise limit.exceeded()
                yield line

    def manifest_bytes(self) -> bytes:
        return self.read(MANIFEST, Limit.ceiling(MANIFEST, MANIFEST_MAX_BYTES))
