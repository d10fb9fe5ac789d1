"""run_rollup: a day's runs of every status fold into one row; reasons, buckets and series
survive the fold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.store.run_length import BOUNDS
from monitor.store.run_rollup import (
    Runs,
    Series,
    buckets_from_cumulative,
    fold,
    parse_reasons,
    parse_series,
    quantile,
    series_text,
    with_series,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def runs(status: str, reason: str, count: int, hour: int, buckets: dict[int, int] | None) -> Runs:
    at = T0 + timedelta(hours=hour)
    return Runs(status, reason, count, 2.0 * count, 3.0, at, at + timedelta(minutes=30), buckets)


def test_runs_of_every_status_and_reason_of_a_day_fold_into_one_row() -> None:
    (row,) = fold(
        [
            ("cert_expiry", "shop", "2026-01-01", runs("ok", "", 10, 1, {6: 10})),
            ("cert_expiry", "shop", "2026-01-01", runs("error", "unreachable", 2, 5, {6: 2})),
            ("cert_expiry", "shop", "2026-01-01", runs("timeout", "unreachable", 1, 7, {16: 1})),
            ("cert_expiry", "shop", "2026-01-01", runs("skipped", "", 4, 9, {0: 4})),
        ]
    )
    assert (row["runs_ok"], row["runs_error"], row["runs_timeout"], row["runs_skipped"]) == (
        10,
        2,
        1,
        4,
    )
    assert parse_reasons(row["error_reasons"]) == {"unreachable": 3}
    assert row["duration_buckets"] == "0:4,6:12,16:1"
    assert row["first_started"] == T0 + timedelta(hours=1)
    assert row["last_started"] == T0 + timedelta(hours=7, minutes=30)  # skipped runs not counted
    assert row["ok_last_started"] == T0 + timedelta(hours=1, minutes=30)


def test_a_part_of_unknown_durations_makes_the_day_s_buckets_unknown() -> None:
    (row,) = fold(
        [
            ("c", "t", "2026-01-01", runs("ok", "", 1, 1, {6: 1})),
            ("c", "t", "2026-01-01", runs("ok", "", 1, 2, None)),
        ]
    )
    assert row["duration_buckets"] is None
    assert row["runs_ok"] == 2


def test_bucket_counts_from_cumulative_counts_put_the_rest_above_every_bound() -> None:
    cumulative = [0] * 6 + [3] * (len(BOUNDS) - 6)
    assert buckets_from_cumulative(cumulative, 5) == {6: 3, len(BOUNDS): 2}


def test_a_quantile_is_interpolated_within_its_bucket_and_capped_at_the_longest() -> None:
    assert quantile(0.5, "6:2,7:2", 2.0) == pytest.approx(1.0)  # 2 of 4 at most 1 s
    assert quantile(0.95, "6:2,16:2", 400.0) == 400.0


def test_series_survive_their_text_and_a_day_of_series_only_gets_a_row_of_no_runs() -> None:
    one = Series("cert_days_left", '{"position": "leaf"}', 3, 1.0, 4.0, 2.0, T0)
    assert parse_series(series_text([one])) == [one]
    (row,) = with_series([], [("c", "t", "2026-01-02", one)])
    assert (row["runs_ok"], row["first_started"], parse_series(row["series"])) == (0, T0, [one])
