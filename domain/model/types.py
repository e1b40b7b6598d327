"""Annotated field types for event payloads, checked by the mapper's strict pydantic models."""

from typing import Annotated

from pydantic import Field

from stakeledger.domain.rules.money import MAX_UINT256
from stakeledger.domain.vocabulary import WAD

Units = Annotated[int, Field(ge=0, le=MAX_UINT256)]
PositiveUnits = Annotated[int, Field(gt=0, le=MAX_UINT256)]
SignedUnits = Annotated[int, Field(ge=-MAX_UINT256, le=MAX_UINT256)]
PriceWad = Annotated[int, Field(gt=0, lt=WAD)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Refs = dict[str, str]
