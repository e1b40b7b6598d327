from fractions import Fraction

import pytest

from stakeledger.domain.errors import InvalidAmountError
from stakeledger.domain.rules.money import (
    MAX_UINT256,
    format_amount,
    mul_div_down,
    mul_div_up,
    parse_amount,
    parse_fraction,
    parse_price_wad,
    split_by_weights,
)


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [
        ("12.5", 18, 12_500_000_000_000_000_000),
        ("0.000001", 6, 1),
        ("1", 0, 1),
        ("007.10", 2, 710),
        (str(MAX_UINT256), 0, MAX_UINT256),
    ],
)
def test_parse_amount_when_plain_decimal_then_exact_base_units(text, decimals, units):
    assert parse_amount(text, decimals) == units


@pytest.mark.parametrize(
    ("text", "decimals", "fragment"),
    [
        ("-1", 18, "negative"),
        ("0", 18, "greater than zero"),
        ("0.000", 18, "greater than zero"),
        ("NaN", 18, "plain decimal"),
        ("nan", 18, "plain decimal"),
        ("inf", 18, "plain decimal"),
        ("Infinity", 18, "plain decimal"),
        ("1e999", 18, "plain decimal"),
        ("1E3", 18, "plain decimal"),
        ("1.2.3", 18, "plain decimal"),
        ("", 18, "plain decimal"),
        ("12,5", 18, "plain decimal"),
        ("+5", 18, "plain decimal"),
        ("0x10", 18, "plain decimal"),
        (".5", 18, "plain decimal"),
        ("0.0000001", 6, "7 fractional digits"),
        (str(MAX_UINT256 + 1), 0, "2**256 - 1"),
        ("1" + "0" * 60, 18, "2**256 - 1"),
        (" 3 ", 2, "whitespace around it"),  # as the API's AMOUNT_PATTERN: no stripping anywhere
        (" 5", 6, "whitespace around it"),
        ("5\n", 6, "whitespace around it"),
        ("\t5", 6, "whitespace around it"),
    ],
)
def test_parse_amount_when_bad_input_then_clear_error(text, decimals, fragment):
    with pytest.raises(InvalidAmountError, match=fragment.replace("*", r"\*")):
        parse_amount(text, decimals)


def test_parse_amount_when_zero_allowed_then_zero():
    assert parse_amount("0", 6, allow_zero=True) == 0


@pytest.mark.parametrize(
    ("units", "decimals", "text"), [(12_500, 3, "12.5"), (1, 6, "0.000001"), (-2_000, 3, "-2"), (0, 18, "0")]
)
def test_format_amount_when_units_then_shortest_decimal(units, decimals, text):
    assert format_amount(units, decimals) == text
    if units > 0:
        assert parse_amount(text, decimals) == units


@pytest.mark.parametrize("text", ["0", "1", "1.5", "-0.1", "abc"])
def test_parse_price_when_outside_open_interval_then_refused(text):
    with pytest.raises(InvalidAmountError):
        parse_price_wad(text)


def test_parse_price_when_inside_interval_then_wad():
    assert parse_price_wad("0.65") == 650_000_000_000_000_000


def test_split_by_weights_when_fifteen_units_then_floor_then_leftover_in_declared_order():
    weights = [("a", Fraction(4, 5)), ("b", Fraction(2, 25)), ("c", Fraction(3, 25))]
    assert split_by_weights(15, weights) == [("a", 13), ("b", 1), ("c", 1)]


def test_split_by_weights_when_unnormalised_weights_then_shares_follow_ratio():
    assert split_by_weights(10, [("x", Fraction(1)), ("y", Fraction(1)), ("z", Fraction(1))]) == [
        ("x", 4),
        ("y", 3),
        ("z", 3),
    ]


def test_split_by_weights_when_all_zero_then_refused():
    with pytest.raises(InvalidAmountError):
        split_by_weights(10, [("x", Fraction(0))])


def test_parse_fraction_when_slash_or_decimal_then_exact():
    assert parse_fraction("4/5") == Fraction(4, 5)
    assert parse_fraction("0.08") == Fraction(2, 25)
    with pytest.raises(InvalidAmountError):
        parse_fraction("-1")
    with pytest.raises(InvalidAmountError):
        parse_fraction("1/0")


@pytest.mark.parametrize(
    "text", ["1.5/2", "0.5/1", "4/5/6", "1_000", "\u0663", "1e3", ".5", "5.", "+1", "nan", "", " "]
)
def test_parse_fraction_when_not_a_plain_decimal_or_fraction_then_one_clear_refusal(text):
    with pytest.raises(InvalidAmountError, match="weight must"):
        parse_fraction(text)


def test_mul_div_when_inexact_then_down_and_up_differ_by_one():
    assert mul_div_down(10, 1, 3) == 3
    assert mul_div_up(10, 1, 3) == 4
    assert mul_div_up(9, 1, 3) == 3


def test_tokens_in_text_when_base_units_then_tokens_and_the_uint256_bound_kept():
    from stakeledger.domain.rules.money import tokens_in_text

    message = "account 'a' holds 117500000000000000000 base units, 500000000000000000000 base units needed"
    assert tokens_in_text(message, 18) == "account 'a' holds 117.5 tokens, 500 tokens needed"
    needed = "account 'b' holds 1000000 base units, 1500250000 needed"
    assert tokens_in_text(needed, 6) == "account 'b' holds 1 tokens, 1500.25 tokens needed"
    assert tokens_in_text("amount exceeds 2**256 - 1 base units: '9'", 6) == "amount exceeds 2**256 - 1 base units: '9'"
