"""Scalars of the contract: Decimal money as an exact string."""
from __future__ import annotations

import decimal

import strawberry

from livecart.models.errors import bad_input
from livecart.models.fields import to_money


MONEY = "Decimal"  # the scalar's name; its refusals name it until schema/extensions.py names the argument


def _parse_money(value: object) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise bad_input(MONEY, "send money as a string such as \"19.99\"")
    try:
        amount = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise bad_input(MONEY, f"{value!r} is not a decimal amount") from None
    if not amount.is_finite():
        raise bad_input(MONEY, f"{value!r} is not a decimal amount")
    try:
        in_cents = amount.quantize(decimal.Decimal("0.01"), rounding=decimal.ROUND_DOWN)
    except decimal.InvalidOperation:  # more digits than the context holds: "1e30", forty nines
        raise bad_input(MONEY, f"{value!r} is too large an amount") from None
    if amount != in_cents:
        raise bad_input(MONEY, f"{value!r} needs at most two decimal places")
    return amount


Money = strawberry.scalar(
    name=MONEY,
    description='An exact decimal amount of money, as a string: "19.99".',
    serialize=lambda value: format(to_money(value), "f"),
    parse_value=_parse_money,
)

SCALAR_OVERRIDES = {decimal.Decimal: Money}


# Issue 15: every subscription payload of a stream carries its event's cursor (opaque), to follow
# again with `after:` from there. A description, not a scalar: the contract only gains a field.
EVENT_CURSOR = (
    "In a subscription's payload: where this event stands in the stream's event log (opaque). "
    "Follow again with `after:` this cursor to get what came after it, nothing twice. Null outside subscriptions."
)
