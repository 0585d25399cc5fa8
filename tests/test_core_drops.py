"""Tests for tvapp.core.drops: counting what a guard dropped, reported at most once per interval per kind."""

from tvapp.core.drops import DropCounter, DropReport


def test_the_first_drop_of_a_kind_is_reported_at_once() -> None:
    counter = DropCounter(interval_s=60.0)
    assert counter.drop("empty datagrams", 100.0) == DropReport("empty datagrams", 1, 1)
    assert counter.drop("REMB lies", 100.5) == DropReport("REMB lies", 1, 1)


def test_later_drops_are_reported_once_per_interval_with_the_count_they_stand_for() -> None:
    counter = DropCounter(interval_s=60.0)
    counter.drop("empty datagrams", 0.0)
    assert [counter.drop("empty datagrams", t) for t in (1.0, 30.0, 59.9)] == [None, None, None]
    assert counter.drop("empty datagrams", 60.0) == DropReport("empty datagrams", 4, 5)
    assert counter.drop("empty datagrams", 61.0) is None
    assert counter.drop("empty datagrams", 200.0) == DropReport("empty datagrams", 2, 7)


def test_a_million_drops_make_one_report_a_minute_and_none_is_lost_from_the_totals() -> None:
    counter = DropCounter(interval_s=60.0)
    reports = [r for i in range(1_000_000) if (r := counter.drop("datagrams", i * 0.0006)) is not None]
    assert len(reports) == 10  # 600 s of drops: one report at once, then one a minute
    assert sum(r.count for r in reports) + counter.totals()["datagrams"] - reports[-1].total == 1_000_000
    assert counter.totals() == {"datagrams": 1_000_000}


def test_kinds_are_counted_apart() -> None:
    counter = DropCounter()
    for _ in range(3):
        counter.drop("a", 0.0)
    counter.drop("b", 0.0)
    assert counter.totals() == {"a": 3, "b": 1}
