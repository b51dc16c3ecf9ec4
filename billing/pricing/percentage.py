"""Percentage pricing: a rate of each event's amount plus a fixed fee per paid event.

Callers must run this inside core.money.exact_context().
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from billing.pricing.results import BreakdownItem
from billing.pricing.schema import PercentagePrice

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


def percentage(price: PercentagePrice, event_values: Sequence[Decimal]) -> tuple[Decimal, list[BreakdownItem]]:
    """Price a period's events, consumed in the order given (the caller passes them in event
    time order, ties broken by event id, so the result is reproducible).

    Free allowance ("the first `free_events` events and the first `free_amount` of value are
    free, whichever runs out first"):
    - An allowance of 0 is not offered and limits nothing; with both at 0 nothing is free.
    - The free window is open while fewer than `free_events` events have been taken free (if
      offered) AND less than `free_amount` of value has been taken free (if offered). Once it
      closes it stays closed.
    - An event met while the window is open is free if its whole value fits in what remains of
      `free_amount` (or no free_amount is offered). An event that does not fit straddles the
      boundary: the remaining free value is taken off it and it is a PAID event charged on the
      part above (so it also owes the fixed fee); the window then closes.
    - Example: free_events=3, free_amount="500", events 200, 100, 100, 50: the first three are
      free; the fourth is paid on all of its 50 because the free events ran out first, even
      though only 400 of the 500 were used.

    A paid event's charge is `charged_value * rate / 100 + fixed_amount`, then clamped to
    [`min_amount_per_event`, `max_amount_per_event`] (each bound only when set). The bounds apply
    to the charge INCLUDING the fixed fee, because they cap what one transaction costs the
    customer; free events are never raised to the minimum (a free event costs nothing).

    Items, always these four in this order (their amounts sum to the total):
    - "free_events": quantity = events taken wholly free, amount 0;
    - "rate": quantity = charged value of paid events, unit_amount = rate / 100;
    - "fixed_fee": quantity = paid events, unit_amount = fixed_amount;
    - "per_event_bounds": quantity = paid events whose charge was clamped, flat_amount = the net
      change the clamping made (negative when maxima cut more than minima added).
    """
    free_events_left = price.free_events if price.free_events > 0 else None
    free_value_left = price.free_amount if price.free_amount > 0 else None
    window_open = free_events_left is not None or free_value_left is not None
    rate = price.rate / _HUNDRED

    free_count = 0
    paid_count = 0
    charged_value = _ZERO
    clamped_count = 0
    adjustment = _ZERO

    for value in event_values:
        if window_open:
            if free_value_left is None or value <= free_value_left:
                free_count += 1
                if free_events_left is not None:
                    free_events_left -= 1
                if free_value_left is not None:
                    free_value_left -= value
                # Either allowance at zero ends the window: that one has run out first.
                window_open = free_events_left != 0 and free_value_left != 0
                continue
            value -= free_value_left  # straddles the free_amount boundary
            window_open = False

        paid_count += 1
        charged_value += value
        charge = value * rate + price.fixed_amount
        bounded = charge
        if price.min_amount_per_event is not None and bounded < price.min_amount_per_event:
            bounded = price.min_amount_per_event
        if price.max_amount_per_event is not None and bounded > price.max_amount_per_event:
            bounded = price.max_amount_per_event
        if bounded != charge:
            clamped_count += 1
            adjustment += bounded - charge

    paid = Decimal(paid_count)
    items = [
        BreakdownItem(
            label="free_events",
            tier=None,
            quantity=Decimal(free_count),
            unit_amount=_ZERO,
            flat_amount=_ZERO,
            amount=_ZERO,
        ),
        BreakdownItem(
            label="rate",
            tier=None,
            quantity=charged_value,
            unit_amount=rate,
            flat_amount=_ZERO,
            amount=charged_value * rate,
        ),
        BreakdownItem(
            label="fixed_fee",
            tier=None,
            quantity=paid,
            unit_amount=price.fixed_amount,
            flat_amount=_ZERO,
            amount=paid * price.fixed_amount,
        ),
        BreakdownItem(
            label="per_event_bounds",
            tier=None,
            quantity=Decimal(clamped_count),
            unit_amount=_ZERO,
            flat_amount=adjustment,
            amount=adjustment,
        ),
    ]
    return sum((item.amount for item in items), _ZERO), items
