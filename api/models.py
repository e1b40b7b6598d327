"""Request and response bodies. Requests are strict: amounts and prices are decimal
strings (``"12.5"``) of at most 80 digits before the point, unknown fields are refused, free
text has no control characters.
Responses give amounts both as exact ``*_units`` strings and as human strings."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from stakeledger.api.inputs import TEXT_PATTERN
from stakeledger.domain.rules.resolution import MAX_CORRECTION_HOURS, MAX_SUSTAINED_HOURS
from stakeledger.domain.vocabulary import STATES

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
AMOUNT_PATTERN = r"^[0-9]{1,80}(\.[0-9]{1,40})?$"
WEIGHT_PATTERN = r"^[0-9]{1,30}(\.[0-9]{1,30}|/[0-9]{1,30})?$"
# Free text (TEXT_PATTERN, from api.inputs) holds no control or invisible characters: C0 and C1
# controls, DEL, bidirectional overrides and isolates, zero-width characters. They would rewrite
# a terminal, reorder a table or hide text from the people who read it.

AgentName = Annotated[
    str, Field(pattern=NAME_PATTERN, description="An agent: 1-64 letters, digits, '_', '.', '-'.", examples=["alice"])
]
ArtifactId = Annotated[str, Field(pattern=NAME_PATTERN, description="An artifact id.", examples=["ART-1"])]
Amount = Annotated[
    str,
    Field(
        pattern=AMOUNT_PATTERN,
        description="Tokens as a decimal string, at most the ledger's decimals.",
        examples=["12.5"],
    ),
]
Price = Annotated[
    str,
    Field(
        pattern=AMOUNT_PATTERN, max_length=60, description="A probability strictly between 0 and 1.", examples=["0.65"]
    ),
]
# A number of days as a decimal string, like every other number the API takes ("7", "0.5").
Days = Annotated[str, Field(pattern=r"^[0-9]{1,4}(\.[0-9]{1,12})?$", examples=["7", "0.5"])]
Percent = Annotated[
    str,
    Field(
        pattern=r"^-?[0-9]{1,3}(\.[0-9]{1,18})?$",
        description='A percentage as a decimal string: "10" means 10 %.',
        examples=["10"],
    ),
]
Side = Literal["long", "short"]
State = Literal[STATES]  # type: ignore[valid-type]
# A signed decimal string at the rationale's fixed scale (domain.rules.rationale): at most 18
# decimals, no exponent. A JSON number is refused (strict bodies): it would pass through a float.
SignedDecimal = Annotated[str, Field(pattern=r"^-?[0-9]{1,3}(\.[0-9]{1,18})?$", examples=["0.12", "-0.03"])]
FeatureName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$", examples=["fg_lo"])]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RationaleIn(Body):
    """Why the order is placed (issue 19), stored on its event; every field is optional."""

    belief: Optional[SignedDecimal] = Field(
        default=None, description='Your probability that the artifact is validated, strictly between 0 and 1: "0.62".'
    )
    edge: Optional[SignedDecimal] = Field(
        default=None, description='The edge you see, in probability, from -1 to 1: "0.05".'
    )
    reasoning: Optional[str] = Field(
        default=None,
        min_length=1,
        max_length=1_000,
        pattern=TEXT_PATTERN,
        description="Free text, 1-1000 characters, no control characters (no newline).",
    )
    features: Optional[dict[FeatureName, SignedDecimal]] = Field(
        default=None,
        max_length=32,
        description='Signal contributions in log-odds, at most 32, each within ±100: {"fg_lo": "0.12"}.',
    )


class MarketOrderIn(Body):
    agent: AgentName
    artifact: ArtifactId
    side: Side
    tokens: Amount = Field(description="Tokens to spend at market.")
    max_price: Optional[Price] = Field(
        default=None, description="Refuse (409 SLIPPAGE_EXCEEDED) above this average price."
    )
    min_shares: Optional[Amount] = Field(
        default=None, description="Refuse (409 SLIPPAGE_EXCEEDED) below this many shares."
    )
    rationale: Optional[RationaleIn] = Field(default=None, description="Why: stored on the position.")


class LimitOrderIn(Body):
    agent: AgentName
    artifact: ArtifactId
    side: Side
    tokens: Amount = Field(description="Tokens to escrow.")
    limit_price: Price = Field(description="Buy while the side's price is below this.")
    expires_in_days: Optional[Days] = Field(
        default=None, description='Days until the order expires, as a decimal string such as "7" or "0.5".'
    )
    rationale: Optional[RationaleIn] = Field(
        default=None, description="Why: stored on the order and on every position its fills open."
    )


class ArtifactIn(Body):
    artifact: ArtifactId
    title: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)
    liquidity: Amount = Field(
        description="LMSR liquidity b in tokens; the pool is funded with b·ln 2 from the treasury."
    )
    group: Optional[str] = Field(default=None, pattern=NAME_PATTERN, description="Correlation group.")
    min_hold_days: int = Field(default=0, ge=0, le=36_500)
    fee_bps: int = Field(
        default=0,
        ge=0,
        le=1_000,
        description="Trade fee in basis points, charged on top of a buy and withheld from a sale (sys:fees).",
    )
    validated_at: Optional[Price] = Field(default=None, description="Validated needs s >= this (default 0.7).")
    deprecated_at: Optional[Price] = Field(default=None, description="Deprecated needs s <= this (default 0.1).")
    flagged_below: Optional[Price] = Field(default=None, description="Flagged needs s < this (default 0.3).")
    window_days: Optional[int] = Field(
        default=None, ge=1, le=3_650, description="Days averaged into the default settlement price (default 7)."
    )
    correction_hours: Optional[int] = Field(
        default=None,
        ge=0,
        le=MAX_CORRECTION_HOURS,
        description="Hours after a terminal transition during which a reopen may correct it (default 24).",
    )
    auto_resolve: bool = Field(
        default=False,
        description="Resolve by itself: when the window's average meets a threshold for the sustained period, "
        "the trade that completes it also makes the transition.",
    )
    sustained_hours: Optional[int] = Field(
        default=None,
        ge=1,
        le=MAX_SUSTAINED_HOURS,
        description="With auto_resolve: hours the average must stay beyond a threshold (default 24).",
    )


class TransitionIn(Body):
    state: State
    price: Optional[Price] = Field(
        default=None,
        description="Settlement long price (an oracle); default: the time-weighted average of p(long) over the "
        "market's window. Either must meet the market's threshold for the state (409 THRESHOLD_NOT_MET).",
    )
    reason: str = Field(default="", max_length=500, pattern=TEXT_PATTERN)
    actor: Optional[AgentName] = Field(default=None, description="Who decided; default: the key's agent.")


class ReopenIn(Body):
    reason: str = Field(
        min_length=1, max_length=500, pattern=TEXT_PATTERN, description="Why the resolution was wrong (required)."
    )
    actor: Optional[AgentName] = Field(default=None, description="Who corrects it; default: the key's agent.")


class BountyIn(Body):
    artifact: ArtifactId
    sponsor: AgentName
    amount: Amount


class ClaimantIn(Body):
    agent: AgentName
    weight: str = Field(pattern=WEIGHT_PATTERN, description="A decimal or a fraction such as 4/5.", examples=["4/5"])


class DistributeIn(Body):
    claimants: list[ClaimantIn] = Field(min_length=1, max_length=1_000)
    normalise: bool = Field(
        default=False,
        description="Weights must sum to 1 (422 INVALID_AMOUNT otherwise); true: share by weight / sum of weights.",
    )


class AccountIn(Body):
    agent: AgentName


class MintIn(Body):
    amount: Amount


class TransferIn(Body):
    to: AgentName
    amount: Amount
    reason: str = Field(default="transfer", max_length=50, pattern=r"^transfer(:[a-z0-9_\-]{1,40})?$")


# Responses ------------------------------------------------------------------------------------


class Out(BaseModel):
    """Responses may carry more fields than listed (fills, risk actions, …)."""

    model_config = ConfigDict(extra="allow")


class Health(Out):
    status: Literal["ok"]
    initialised: bool
    log_position: int
    decimals: Optional[int] = None


class QuoteOut(Out):
    artifact: str
    side: Side
    shares_units: str
    shares: str
    cost_units: str
    cost: str
    fee_bps: int
    fee_units: str
    fee: str
    total_units: str
    total: str
    average_price_wad: str
    average_price: str
    price_long_before_wad: str
    price_long_before: str
    price_long_after_wad: str
    price_long_after: str


class ArtifactOut(Out):
    artifact: str
    title: str
    group: Optional[str]
    state: str
    liquidity_units: str
    liquidity: str
    min_hold_days: int
    fee_bps: int
    listed_at: str
    q_long_units: str
    q_short_units: str
    price_long_wad: str
    price_long: str
    price_short: str
    pool_units: str
    pool: str
    resting_orders: int
    positions: int
    bounties: dict[str, Any] = Field(default_factory=dict)
    settlement_price_wad: Optional[str] = Field(default=None, description="Set once validated or deprecated.")
    window_average_wad: Optional[str] = Field(
        default=None, description="p(long) averaged over the window; null once settled."
    )
    resolution: dict[str, Any] = Field(default_factory=dict, description="Thresholds (WAD) and window days.")


class TradeOut(Out):
    position: str
    artifact: str
    side: Side
    shares_units: str
    shares: str
    cost_units: str
    cost: str
    average_price_wad: str
    average_price: str
    price_long_wad: str
    price_long: str
    fills: list[dict[str, Any]]


class OrderOut(Out):
    order: str
    status: str
    fills: list[dict[str, Any]]


class CancelOut(Out):
    order: str
    status: str
    released_units: str
    released: str


class CloseIn(Body):
    shares: Optional[Amount] = Field(
        default=None, description="Sell only this many shares; the rest stays open with its remaining cost."
    )
    tokens: Optional[Amount] = Field(
        default=None, description="Sell the fewest shares whose sale pays at least this many tokens."
    )


class TakeProfitIn(Body):
    limit_price: Price = Field(description="Sell while the position's side is priced above this.")
    expires_in_days: Optional[Days] = Field(
        default=None, description='Days until the take-profit expires, as a decimal string such as "7".'
    )


class TakeProfitOut(Out):
    order: str
    position: str
    limit_price_wad: str
    limit_price: str
    status: str
    fills: list[dict[str, Any]]


class CloseOut(Out):
    position: str
    shares_sold_units: str
    shares_sold: str
    shares_left_units: str
    shares_left: str
    proceeds_units: str
    proceeds: str
    cost_released_units: str
    cost_released: str
    pnl_units: str
    pnl: str
    status: str
    price_long_wad: str
    price_long: str
    fills: list[dict[str, Any]]


class AccountOut(Out):
    account: str
    kind: str
    balance_units: str
    balance: str
    version: int


class TransferOut(Out):
    transfer_id: str
    amount_units: str
    amount: str
    reason: str


class TransitionOut(Out):
    artifact: str
    to: str
    transition: int
    price_long_wad: str
    price_long: str
    positions: int


class ReopenOut(Out):
    artifact: str
    to: str
    transition: int
    reverses: int
    positions: int
    payouts_reversed_units: str
    payouts_reversed: str


class BountyOut(Out):
    bounty: str


class FindingOut(Out):
    code: str = Field(description="Stable code of the broken invariant, e.g. NEGATIVE_BALANCE, ARTIFACT_IDENTITY.")
    check: str
    position: int | None
    message: str


class AuditOut(Out):
    clean: bool
    events: int
    last_position: int
    accounts: int
    transfers: int
    total_supply_units: str
    seconds: float
    violation_count: int
    violations: list[str]
    findings: list[FindingOut]


# Portfolio and risk (api/portfolio.py) ---------------------------------------------------------


class PortfolioConfigIn(Body):
    """An agent's risk limits; a field left out keeps its value (or the default)."""

    max_position_size_pct: Optional[Percent] = Field(default=None, description="Largest position, % of equity.")
    max_positions: Optional[int] = Field(default=None, ge=1, le=10_000, description="Most markets held at once.")
    max_correlated_exposure_pct: Optional[Percent] = Field(default=None, description="Cost per group, % of equity.")
    max_total_exposure_pct: Optional[Percent] = Field(default=None, description="All cost committed, % of equity.")
    rebalance_threshold_pct: Optional[Percent] = Field(default=None, description="Drift that triggers advice, %.")
    emergency_liquidation_loss_pct: Optional[Percent] = Field(
        default=None, description='Loss from the baseline that liquidates, % (e.g. "-10").'
    )
    min_trade_size: Optional[Amount] = Field(default=None, description="Smallest order, in tokens.")


class MarketConfigIn(Body):
    position_size_pct: Optional[Percent] = Field(default=None, description="Position limit here, % of equity.")
    trail_pct: Optional[Percent] = Field(
        default=None, description="Start a trailing stop of this % (above 0, below 100) on every new position here."
    )
    correlation_group: Optional[str] = Field(default=None, pattern=NAME_PATTERN, description="Group override.")


class KellyIn(Body):
    artifact: ArtifactId
    belief: Price = Field(description="Your probability that the artifact is validated.")
    fraction: str = Field(
        default="0.25", pattern=WEIGHT_PATTERN, description='Fraction of full Kelly, in (0, 1]: "0.25" or "1/4".'
    )
    dry_run: bool = Field(default=False, description="Only size the order (seed 002's size_order); write nothing.")
    rationale: Optional[RationaleIn] = Field(
        default=None,
        description="Why: stored on the position with the belief above as its belief (leave rationale.belief out).",
    )


class StopIn(Body):
    trail_pct: Percent = Field(description="Trail below the high-water mark, % above 0 and below 100.")
    min_ratchet_pct: Percent = Field(default="0", description="Raise the trigger only by more than this %.")


class BatchOrderIn(Body):
    """A market order, or a limit order when ``limit_price`` is given."""

    agent: AgentName
    artifact: ArtifactId
    side: Side
    tokens: Amount
    max_price: Optional[Price] = None
    min_shares: Optional[Amount] = None
    limit_price: Optional[Price] = None
    expires_in_days: Optional[Days] = None
    rationale: Optional[RationaleIn] = None


class BatchIn(Body):
    orders: list[BatchOrderIn] = Field(min_length=1, max_length=1_000)
