"""Backtest of the portal's cost projection (portal.projection) on seeded history.

Six past monthly periods of daily usage with a known pattern (weekdays 10,000 calls, weekends
3,000, growing 1 % a week, each day times a random factor of mean 1 and standard deviation 0.15),
projected from the end of day k of each period (k = 7, 14, 21) and compared with the period's
actual end-of-period usage and cost. Costs are priced by the real engine (billing.pricing) under
a graduated price: the first 100,000 calls free, then 0.001 up to 500,000, then 0.0005.

Prints one line per k and, last, a JSON line: `mape_cost_pct` and `mape_usage_pct` (mean absolute
percentage error, by k and overall) and `band_coverage` (share of periods whose actual usage fell
inside the low/high band). Pure computation: no database.

    .venv/bin/python bench/portal_projection.py [--seed N]
"""

from __future__ import annotations

import argparse
import calendar
import json
import random
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from billing.pricing import price_charge
from portal.projection import mape, project

PRICE = {
    "model": "graduated",
    "tiers": [
        {"up_to": "100000", "unit_amount": "0", "flat_amount": "0"},
        {"up_to": "500000", "unit_amount": "0.001", "flat_amount": "0"},
        {"up_to": None, "unit_amount": "0.0005", "flat_amount": "0"},
    ],
}
DAY = 86400
CUTS = (7, 14, 21)
PERIODS = [(2026, month) for month in range(1, 7)]


def seeded_history(seed: int) -> list[list[Decimal]]:
    """Daily usage of each period (a list of days per period)."""
    rng = random.Random(seed)
    first = date(*PERIODS[0], 1)
    out = []
    for year, month in PERIODS:
        days = []
        for d in range(1, calendar.monthrange(year, month)[1] + 1):
            day = date(year, month, d)
            base = 3000 if day.weekday() >= 5 else 10000
            growth = 1.01 ** ((day - first).days / 7)
            noise = max(0.0, rng.gauss(1.0, 0.15))
            days.append(Decimal(round(base * growth * noise)))
        out.append(days)
    return out


def cost(quantity: Decimal) -> Decimal:
    return price_charge(PRICE, quantity).amount


def backtest(seed: int = 7) -> dict:
    history = seeded_history(seed)
    by_cut: dict[int, dict[str, list]] = {k: {"cost": [], "usage": [], "inside": []} for k in CUTS}
    for days in history:
        actual = sum(days, Decimal(0))
        for k in CUTS:
            seen = days[:k]
            p = project(
                aggregation="count",
                so_far=sum(seen, Decimal(0)),
                full_days=seen,
                elapsed_seconds=k * DAY,
                remaining_seconds=(len(days) - k) * DAY,
            )
            by_cut[k]["usage"].append((p.expected, actual))
            by_cut[k]["cost"].append((cost(p.expected), cost(actual)))
            by_cut[k]["inside"].append(p.low <= actual <= p.high)
    every = {key: [x for k in CUTS for x in by_cut[k][key]] for key in ("cost", "usage", "inside")}
    return {
        "seed": seed,
        "periods": len(history),
        "mape_cost_pct": {str(k): round(float(mape(by_cut[k]["cost"])), 2) for k in CUTS}
        | {"all": round(float(mape(every["cost"])), 2)},
        "mape_usage_pct": {str(k): round(float(mape(by_cut[k]["usage"])), 2) for k in CUTS}
        | {"all": round(float(mape(every["usage"])), 2)},
        "band_coverage": round(sum(every["inside"]) / len(every["inside"]), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=7)
    result = backtest(parser.parse_args().seed)
    for k in CUTS:
        print(
            f"from day {k:>2}: cost MAPE {result['mape_cost_pct'][str(k)]:5.2f} %, "
            f"usage MAPE {result['mape_usage_pct'][str(k)]:5.2f} %"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
