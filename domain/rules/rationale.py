"""Why an order was placed: the audit fields seed 002 records on every trade, kept on the
order's own event so attribution and backtests read them back exactly.

Every number is an int at one fixed scale, WAD = 10**18, so no float reaches an event:

- ``belief_wad``: the agent's probability that the artifact is validated, strictly between
  0 and 1 ("0.62" is 620_000_000_000_000_000). A Kelly order records its input belief here.
- ``edge_wad``: the edge the agent saw, in probability, signed, at most 1 either way
  ("-0.05" is -50_000_000_000_000_000). Gross or net is the agent's convention; say which
  in the reasoning.
- ``reasoning``: 1 to 1,000 characters of free text with no control or invisible
  character (a newline included). Nothing is stripped: text that would need it is refused.
- ``features``: named signal contributions in log-odds, each an int at the same scale
  (1.0 log-odds is 10**18, "fg_lo=0.12" is 120_000_000_000_000_000), signed, at most 100
  log-odds either way; names match ``[a-z][a-z0-9_]{0,47}``; at most 32 features.

Text inputs are read exactly (plain positional decimals, at most 18 fractional digits; no
exponent, sign other than a leading '-', space, NaN or infinity), and every refusal is an
InvalidInputError naming the field. A rationale with nothing in it is no rationale: it is
``None``, and the event stores no metadata at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Optional

from typing_extensions import TypedDict

from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.vocabulary import WAD

MAX_REASONING_CHARS = 1_000
MAX_FEATURES = 32
MAX_FEATURE_NAME_CHARS = 48
MAX_FEATURE_WAD = 100 * WAD
# The longest number text read: a sign, 3 whole digits, a point and 18 decimals fit in far less.
MAX_NUMBER_CHARS = 64

FEATURE_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")
# Plain positional notation only, as ``domain.rules.money`` reads amounts: exponents, '+',
# spaces, NaN and infinities are refused by construction.
_SIGNED_DECIMAL = re.compile(r"(?P<sign>-?)(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")
# The characters free text may not hold: the same class as ``api.inputs.FORBIDDEN_TEXT_CLASS``
# (the domain imports no edge); tests/integration/test_rationale.py checks the two agree.
_FORBIDDEN_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


class RationaleState(TypedDict, total=False):
    """The stored form (``Rationale.to_event``): only the keys that were given."""

    belief_wad: int
    edge_wad: int
    reasoning: str
    features: dict[str, int]


@dataclass(frozen=True)
class Rationale:
    """An order's audit metadata at the fixed WAD scale; checked when built, however built."""

    belief_wad: Optional[int] = None
    edge_wad: Optional[int] = None
    reasoning: Optional[str] = None
    features: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.belief_wad is not None:
            _check_int("belief", self.belief_wad)
            if not 0 < self.belief_wad < WAD:
                raise InvalidInputError(f"belief must be strictly between 0 and 1, got {_decimal(self.belief_wad)}")
        if self.edge_wad is not None:
            _check_int("edge", self.edge_wad)
            if abs(self.edge_wad) > WAD:
                raise InvalidInputError(f"edge must be between -1 and 1, got {_decimal(self.edge_wad)}")
        if self.reasoning is not None:
            _check_reasoning(self.reasoning)
        if not isinstance(self.features, Mapping):
            raise InvalidInputError(f"features must map names to log-odds, got {type(self.features).__name__}")
        if len(self.features) > MAX_FEATURES:
            raise InvalidInputError(f"at most {MAX_FEATURES} features, got {len(self.features)}")
        for name, value in self.features.items():
            check_feature_name(name)
            _check_int(f"feature {name!r}", value)
            if abs(value) > MAX_FEATURE_WAD:
                raise InvalidInputError(
                    f"feature {name!r} must be at most 100 log-odds either way, got {_decimal(value)}"
                )
        # Sorted by name and read-only: two rationales with the same features are equal and
        # hash the same in a command's payload, whatever order they were given in.
        object.__setattr__(self, "features", MappingProxyType(dict(sorted(self.features.items()))))

    @property
    def is_empty(self) -> bool:
        return self.belief_wad is None and self.edge_wad is None and self.reasoning is None and not self.features

    @classmethod
    def from_inputs(
        cls,
        *,
        belief: Optional[str] = None,
        edge: Optional[str] = None,
        reasoning: Optional[str] = None,
        features: Mapping[str, Any] | Iterable[str] | str | None = None,
    ) -> Optional["Rationale"]:
        """The rationale from user-facing text ("0.62", "-0.05", "fg_lo=0.12"), or None when
        nothing is given. ``features`` is a mapping name -> decimal text (the HTTP body), a
        list of ``name=value`` (repeated CLI options) or one ``a=1;b=2`` text (a batch cell)."""
        if reasoning is not None and not isinstance(reasoning, str):
            raise InvalidInputError(f"reasoning must be text, got {type(reasoning).__name__}")
        rationale = cls(
            belief_wad=None if belief is None else parse_wad(belief, "belief"),
            edge_wad=None if edge is None else parse_wad(edge, "edge"),
            reasoning=reasoning,
            features=parse_features(features),
        )
        return None if rationale.is_empty else rationale

    parse = from_inputs  # the same reader, by the name the issue gives it

    def to_event(self) -> RationaleState:
        """A plain dict of ints and strings, holding only the keys that were given."""
        state: RationaleState = {}
        if self.belief_wad is not None:
            state["belief_wad"] = self.belief_wad
        if self.edge_wad is not None:
            state["edge_wad"] = self.edge_wad
        if self.reasoning is not None:
            state["reasoning"] = self.reasoning
        if self.features:
            state["features"] = dict(self.features)
        return state

    @classmethod
    def from_event(cls, state: Optional[Mapping[str, Any]]) -> Optional["Rationale"]:
        """The rationale an event stored (``to_event``'s dict), or None when it stored none."""
        if state is None:
            return None
        unknown = set(state) - set(RationaleState.__annotations__)
        if unknown:
            raise InvalidInputError(f"a stored rationale holds unknown keys: {', '.join(sorted(unknown))}")
        rationale = cls(
            belief_wad=state.get("belief_wad"),
            edge_wad=state.get("edge_wad"),
            reasoning=state.get("reasoning"),
            features=dict(state.get("features") or {}),
        )
        return None if rationale.is_empty else rationale

    def with_belief(self, belief_wad: int) -> "Rationale":
        """This rationale recording ``belief_wad`` (a Kelly order's input belief); refused when it
        already records another belief, so the audit trail never disagrees with the sizing."""
        if self.belief_wad is not None and self.belief_wad != belief_wad:
            raise InvalidInputError(
                f"a Kelly order records its input belief {_decimal(belief_wad)}; "
                f"the rationale's belief {_decimal(self.belief_wad)} differs (leave it out)"
            )
        return Rationale(belief_wad, self.edge_wad, self.reasoning, dict(self.features))

    def as_decimals(self) -> dict[str, Any]:
        """For people: probabilities and log-odds as decimal text ("0.62"), reasoning as given."""
        shown: dict[str, Any] = {}
        if self.belief_wad is not None:
            shown["belief"] = _decimal(self.belief_wad)
        if self.edge_wad is not None:
            shown["edge"] = _decimal(self.edge_wad)
        if self.reasoning is not None:
            shown["reasoning"] = self.reasoning
        if self.features:
            shown["features"] = {name: _decimal(value) for name, value in self.features.items()}
        return shown


def rationale_state(rationale: Optional[Rationale]) -> Optional[RationaleState]:
    """What an event stores for ``rationale``: its dict, or None for none (or an empty one)."""
    if rationale is None:
        return None
    if not isinstance(rationale, Rationale):
        raise InvalidInputError(f"rationale must be a Rationale, got {type(rationale).__name__}")
    return None if rationale.is_empty else rationale.to_event()


def parse_wad(text: Any, what: str) -> int:
    """A signed decimal string ("0.62", "-0.05") as an exact int at 10**18, or
    InvalidInputError naming ``what``. Range checks are the caller's."""
    if not isinstance(text, str):
        # A JSON number (or any non-text) would have passed through a float somewhere.
        raise InvalidInputError(f'{what} must be a decimal string such as "0.12", got {type(text).__name__}')
    if len(text) > MAX_NUMBER_CHARS:
        raise InvalidInputError(f"{what} has {len(text)} characters; at most {MAX_NUMBER_CHARS}")
    match = _SIGNED_DECIMAL.fullmatch(text)
    if match is None:
        raise InvalidInputError(
            f"{what} must be a plain decimal number such as 0.12 or -0.05 (no exponent, sign or space), got {text!r}"
        )
    fraction = match.group("fraction") or ""
    if len(fraction) > 18:
        raise InvalidInputError(f"{what} has {len(fraction)} decimals; at most 18, got {text!r}")
    whole = match.group("whole").lstrip("0")
    if len(whole) > 3:
        raise InvalidInputError(f"{what} is out of range, got {text!r}")
    magnitude = int(whole or "0") * WAD + int(fraction.ljust(18, "0"))
    return -magnitude if match.group("sign") else magnitude


def parse_features(features: Mapping[str, Any] | Iterable[str] | str | None) -> dict[str, int]:
    """Features from a mapping name -> decimal text, a list of ``name=value`` or one
    ``a=1;b=2`` text; a name given twice is refused."""
    if features is None:
        return {}
    if isinstance(features, Mapping):
        pairs = [(name, value) for name, value in features.items()]
    else:
        items = [part for part in features.split(";")] if isinstance(features, str) else list(features)
        if isinstance(features, str) and not features.strip(" "):
            return {}
        pairs = []
        for item in items:
            if not isinstance(item, str):
                raise InvalidInputError(f"a feature is written name=value, got {type(item).__name__}")
            name, equals, value = item.strip(" ").partition("=")
            if not equals:
                raise InvalidInputError(f"a feature is written name=value such as fg_lo=0.12, got {item!r}")
            pairs.append((name, value))
    if len(pairs) > MAX_FEATURES:
        raise InvalidInputError(f"at most {MAX_FEATURES} features, got {len(pairs)}")
    parsed: dict[str, int] = {}
    for name, value in pairs:
        check_feature_name(name)
        if name in parsed:
            raise InvalidInputError(f"feature {name!r} is given twice")
        parsed[name] = parse_wad(value, f"feature {name!r}")
    return parsed


def _check_int(what: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what} must be an int at 10**18 scale, got {type(value).__name__}")


def check_feature_name(name: Any, what: str | None = None) -> None:
    """Refuse a feature name other than ``[a-z][a-z0-9_]{0,47}``; ``what`` prefixes the message."""
    if not isinstance(name, str) or not FEATURE_NAME.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 60 else f"{repr(name)[:50]}… ({len(str(name))} characters)"
        raise InvalidInputError(
            f"{what + ': ' if what else ''}feature names are a lowercase letter then up to 47 lowercase letters, "
            f"digits or '_', got {shown}"
        )


def _check_reasoning(text: Any) -> None:
    if not isinstance(text, str):
        raise InvalidInputError(f"reasoning must be text, got {type(text).__name__}")
    if not 1 <= len(text) <= MAX_REASONING_CHARS:
        raise InvalidInputError(f"reasoning must be 1-{MAX_REASONING_CHARS} characters, got {len(text)}")
    if not text.strip():
        raise InvalidInputError("reasoning must not be only spaces")
    found = _FORBIDDEN_TEXT.search(text)
    if found is not None:
        raise InvalidInputError(
            f"reasoning holds the control or invisible character U+{ord(found.group()):04X} at position "
            f"{found.start() + 1}; free text may not hold control characters"
        )


def _decimal(wad: int) -> str:
    """An int at 10**18 as exact decimal text without trailing zeros: 62 * 10**16 -> "0.62"."""
    sign = "-" if wad < 0 else ""
    whole, fraction = divmod(abs(wad), WAD)
    return f"{sign}{whole}" if fraction == 0 else f"{sign}{whole}.{str(fraction).rjust(18, '0').rstrip('0')}"


def wad_text(wad: int) -> str:
    """An int at 10**18 as exact decimal text ("0.62"): for showing a stored rationale."""
    return _decimal(wad)
