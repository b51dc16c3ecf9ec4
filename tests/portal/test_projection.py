"""portal.projection: the run-rate projection and its band, with figures worked by hand, and the
backtest on seeded history (bench/portal_projection.py) held to the error the page states."""

import importlib.util
from decimal import Decimal
from pathlib import Path

import pytest

from portal.projection import Projection, mape, project

D = Decimal
DAY = 86400


def test_a_total_grows_at_the_average_rate_so_far():
    # 100 in 2.5 days of a 10-day period: 40 a day, 7.5 days to go: 100 + 300
    p = project(
        aggregation="count", so_far=D(100), full_days=[], elapsed_seconds=DAY * 5 // 2, remaining_seconds=DAY * 15 // 2
    )
    assert (p.expected, p.method) == (D(400), "run_rate_no_spread")
    # no whole days: from what is used to twice the expected remainder
    assert (p.low, p.high) == (D(100), D(700))


def test_the_band_is_the_90_percent_interval_of_the_remaining_days():
    # days 10, 20, 30 (mean 20, sample sd 10), 3 days seen, 6 to go: sd of the remainder
    # 10 * sqrt(6 + 36/3) = 10 * sqrt(18) = 42.42640687119285; times 1.645: 69.79143930311224
    p = project(
        aggregation="sum",
        so_far=D(60),
        full_days=[D(10), D(20), D(30)],
        elapsed_seconds=3 * DAY,
        remaining_seconds=6 * DAY,
    )
    spread = D("1.645") * D(10) * D(18).sqrt()
    assert p.expected == D(180) and p.method == "run_rate"
    q = D("1e-20")
    assert p.low.quantize(q) == (D(180) - spread).quantize(q) and p.high.quantize(q) == (D(180) + spread).quantize(q)
    assert str(p.low)[:12] == "110.20856069" and str(p.high)[:12] == "249.79143930"


def test_the_low_end_never_drops_below_what_is_already_used():
    p = project(
        aggregation="count", so_far=D(10), full_days=[D(0), D(10)], elapsed_seconds=2 * DAY, remaining_seconds=20 * DAY
    )
    assert p.low == D(10) and p.high > p.expected == D(110)


@pytest.mark.parametrize("aggregation", ["max", "min", "latest", "unique_count", "weighted_sum"])
def test_levels_stay_where_they_are(aggregation):
    p = project(
        aggregation=aggregation, so_far=D(7), full_days=[D(1), D(9)], elapsed_seconds=DAY, remaining_seconds=DAY
    )
    assert p == Projection(D(7), D(7), D(7), D(7), "level")
    assert p.factors() == (D(1), D(1), D(1))


def test_nothing_used_projects_nothing_and_an_empty_level_is_zero():
    p = project(aggregation="count", so_far=D(0), full_days=[D(0), D(0)], elapsed_seconds=DAY, remaining_seconds=DAY)
    assert (p.low, p.expected, p.high) == (D(0), D(0), D(0)) and p.factors() == (D(1), D(1), D(1))
    assert (
        project(aggregation="max", so_far=None, full_days=[], elapsed_seconds=DAY, remaining_seconds=DAY).method
        == "none"
    )


def test_factors_scale_what_is_used():
    p = project(aggregation="count", so_far=D(100), full_days=[], elapsed_seconds=DAY, remaining_seconds=DAY)
    assert p.factors() == (D(1), D(2), D(3))


def test_mape_leaves_out_zero_actuals_and_refuses_none():
    assert mape([(D(110), D(100)), (D(45), D(50)), (D(3), D(0))]) == D(10)
    with pytest.raises(ValueError):
        mape([(D(1), D(0))])


def test_backtest_on_seeded_history_matches_the_figure_on_the_page():
    spec = importlib.util.spec_from_file_location("portal_projection_bench", Path("bench/portal_projection.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.backtest(seed=7)
    assert result["periods"] == 6
    assert result["mape_cost_pct"] == {"7": 8.01, "14": 5.45, "21": 4.99, "all": 6.15}
    assert result["band_coverage"] == 1.0
