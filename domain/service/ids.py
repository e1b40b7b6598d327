"""Id generation is injectable so a seeded demo produces the same log, byte for byte."""

from __future__ import annotations

import random
import uuid
from typing import Protocol


class IdFactory(Protocol):
    def __call__(self) -> str: ...


def random_id() -> str:
    return uuid.uuid4().hex


class SeededIds:
    """Reproducible 128-bit hex ids from a seed: for demos and tests, never for production."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def __call__(self) -> str:
        return f"{self._random.getrandbits(128):032x}"
