"""Shared field helpers: money is always Decimal with two places."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from tortoise import fields

from livecart.models.errors import bad_input

CENT = Decimal("0.01")
MAX_MONEY = Decimal("99999999.99")
# What a money column (12 digits, 2 of them cents) holds: an order's or a cart's total and a
# stream's revenue may not pass it (a price is bounded by MAX_MONEY, a line by 100 units).
MAX_TOTAL = Decimal("9999999999.99")


def MoneyField(**kwargs) -> fields.DecimalField:  # noqa: N802 - reads like a field class
    return fields.DecimalField(max_digits=12, decimal_places=2, **kwargs)


def to_money(value) -> Decimal:
    """Exact conversion to cents; floats are refused because they are not exact."""
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount of money") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not an amount of money")
    try:
        return amount.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # too many digits for the decimal context: not money either
        raise ValueError(f"{value!r} is not an amount of money") from None


def plain_text(argument: str, value: str | None) -> str | None:
    """Text as it will be stored: PostgreSQL keeps no NUL in text (and SQLite must not keep what
    PostgreSQL would refuse), so one is the caller's mistake, not a crash."""
    if value is not None and "\x00" in value:
        raise bad_input(argument, "must not contain NUL characters")
    return value


# Every key column is a 32-bit INTEGER: a larger id names no row, and PostgreSQL would
# refuse to compare it with one ("value out of int32 range") instead of finding nothing.
MAX_ID = 2**31 - 1


def parse_id(argument: str, raw) -> int:
    """A GraphQL ID as a database key; anything else is the caller's mistake."""
    text = str(raw).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or not 0 < int(text) <= MAX_ID:
        raise bad_input(argument, f"{raw!r} is not a valid id")
    return int(text)


# Pages of lists (issue 13): every list the API returns is bounded, so the cost of a query
# can be known before it runs (schema/cost.py).
MAX_PAGE = 100


def check_first(first: int, maximum: int = MAX_PAGE, argument: str = "first") -> int:
    if not 1 <= first <= maximum:
        raise bad_input(argument, f"1 to {maximum}")
    return first
