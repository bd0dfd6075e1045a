"""The dashboard's stats engine, checked against numbers computed by hand."""

from __future__ import annotations

import pytest

from jetflow.dashboard.stats import OTHER, DashboardStats
from jetflow.errors import ConfigError
from jetflow.events import Event

WALL = 1_800_000_000.0  # the wall clock (Unix seconds) at every snapshot of these tests


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def commit(operation: str, collection: str, time_us: int = 1_700_000_000_000_000) -> Event:
    return Event(
        "commit", "did:plc:a", time_us, operation=operation, collection=collection, rkey="r"
    )


def other(kind: str, time_us: int = 1_700_000_000_000_000) -> Event:
    return Event(kind, "did:plc:b", time_us, payload={"did": "did:plc:b"})


def engine(clock: FakeClock, **options: object) -> DashboardStats:
    return DashboardStats(clock=clock, wall_clock=lambda: WALL, **options)


def feed(stats: DashboardStats, clock: FakeClock, timeline: list[tuple[float, Event]]) -> None:
    for at, event in timeline:
        clock.now = at
        stats.observe(event)


# Arrival times (engine started at t=100) and events. Buckets by second since the start:
# bucket 0: like create, post create; bucket 1: like delete, identity;
# bucket 3: profile update (the latest time_us), account (an older time_us).
TIMELINE = [
    (100.2, commit("create", "app.bsky.feed.like", 1_799_999_990_000_000)),
    (100.7, commit("create", "app.bsky.feed.post", 1_799_999_991_000_000)),
    (101.1, commit("delete", "app.bsky.feed.like", 1_799_999_992_000_000)),
    (101.5, other("identity", 1_799_999_993_000_000)),
    (103.9, commit("update", "app.bsky.actor.profile", 1_799_999_998_500_000)),
    (103.95, other("account", 1_799_999_995_000_000)),
]


def test_snapshot_totals_rates_history_and_lag_match_hand_computed_numbers() -> None:
    clock = FakeClock(100.0)
    stats = engine(clock, rate_window=2, history=5, top=2, source="test")
    feed(stats, clock, TIMELINE)
    clock.now = 104.5
    snap = stats.snapshot()

    assert snap["state"] == "running"
    assert snap["source"] == "test"
    assert snap["uptime_s"] == pytest.approx(4.5)
    assert snap["totals"] == {
        "events": 6,
        "by_kind": {"commit": 4, "account": 1, "identity": 1},
        "by_operation": {"create": 2, "delete": 1, "update": 1},
        "collections": 3,
        "other_items": 0,
    }
    # now = 4.5 s after the start: current bucket 4, window of 2 -> buckets 2..4, which
    # span 4.5 - 2 = 2.5 s and hold bucket 3's two events: 2 / 2.5 = 0.8 events/s.
    rates = snap["rates"]
    assert rates["window_s"] == pytest.approx(2.5)
    assert rates["events"] == pytest.approx(0.8)
    assert rates["by_kind"] == pytest.approx({"commit": 0.4, "account": 0.4})
    assert rates["by_operation"] == pytest.approx({"update": 0.4})
    assert snap["operations"] == [
        {"operation": "create", "events": 2, "share": 0.5, "rate": 0.0},
        {"operation": "delete", "events": 1, "share": 0.25, "rate": 0.0},
        {"operation": "update", "events": 1, "share": 0.25, "rate": pytest.approx(0.4)},
    ]
    # top=2: the like (2 events), then the tie of post and profile broken by name.
    assert snap["top_collections"] == [
        {"collection": "app.bsky.feed.like", "events": 2, "rate": 0.0},
        {"collection": "app.bsky.actor.profile", "events": 1, "rate": pytest.approx(0.4)},
    ]
    # history=5 complete seconds before bucket 4: buckets -1, 0, 1, 2, 3.
    assert snap["history"] == [0, 2, 2, 0, 2]
    # The lag is measured from the largest time_us seen (the profile update, not the
    # account event that came after it): 1_800_000_000 - 1_799_999_998.5 = 1.5 s.
    assert snap["lag"] == {
        "latest_time_us": 1_799_999_998_500_000,
        "latest_time": "2027-01-15T07:59:58.500Z",
        "lag_s": pytest.approx(1.5),
    }
    assert snap["time_basis"] == "relay"
    assert snap["now_us"] == 1_800_000_000_000_000


def test_rate_in_the_first_second_divides_by_the_time_elapsed() -> None:
    clock = FakeClock(50.0)
    stats = engine(clock)
    feed(stats, clock, [(50.1, commit("create", "a.b.c")), (50.2, commit("create", "a.b.c"))])
    clock.now = 50.5
    snap = stats.snapshot()
    assert snap["rates"]["window_s"] == pytest.approx(0.5)
    assert snap["rates"]["events"] == pytest.approx(4.0)  # 2 events in 0.5 s


def test_rates_fall_to_zero_once_the_events_leave_the_window() -> None:
    clock = FakeClock(0.0)
    stats = engine(clock, rate_window=2)
    feed(stats, clock, [(0.5, commit("create", "a.b.c"))])
    clock.now = 2.9  # bucket 2, window buckets 0..2: the event still counts, over 2.9 s
    assert stats.snapshot()["rates"]["events"] == pytest.approx(1 / 2.9)
    clock.now = 3.0  # bucket 3, window buckets 1..3: gone
    snap = stats.snapshot()
    assert snap["rates"]["events"] == 0.0
    assert snap["totals"]["events"] == 1


def test_nothing_observed_gives_zero_rates_and_no_lag() -> None:
    clock = FakeClock(10.0)
    snap = engine(clock).snapshot()
    assert snap["state"] == "waiting"
    assert snap["rates"]["events"] == 0.0
    assert snap["rates"]["window_s"] == 0.0
    assert snap["lag"] is None
    assert snap["top_collections"] == []
    assert snap["operations"] == []
    assert snap["history"] == [0] * 60


def test_collections_past_the_cap_are_counted_as_other() -> None:
    clock = FakeClock(0.0)
    stats = engine(clock, max_collections=2)
    for collection in ("a.b.one", "a.b.two", "a.b.three", "a.b.four", "a.b.one"):
        stats.observe(commit("create", collection))
    assert stats.by_collection == {"a.b.one": 2, "a.b.two": 1, OTHER: 2}
    assert stats.snapshot()["totals"]["collections"] == 3


def test_wall_time_basis_has_no_lag() -> None:
    clock = FakeClock(0.0)
    stats = engine(clock, time_basis="wall")
    stats.observe(commit("create", "a.b.c"))
    assert stats.snapshot()["lag"] is None


def test_sink_marks_the_end_and_failures() -> None:
    clock = FakeClock(0.0)
    stats = engine(clock)
    sink = stats.sink()
    sink.on_next(commit("create", "a.b.c"))
    sink.on_completed()
    assert stats.snapshot()["state"] == "finished"
    assert sink.done and sink.stats.delivered == 1

    failing = engine(clock)
    failing.sink().on_error(RuntimeError("relay went away"))
    snap = failing.snapshot()
    assert (snap["state"], snap["error"]) == ("failed", "relay went away")


def test_extra_entries_are_read_at_each_snapshot() -> None:
    stats = engine(FakeClock(0.0))
    calls = iter(range(10))
    stats.extra["server"] = lambda: {"n": next(calls)}
    assert stats.snapshot()["server"] == {"n": 0}
    assert stats.snapshot()["server"] == {"n": 1}


@pytest.mark.parametrize(
    "options",
    [
        {"rate_window": 0},
        {"history": -1},
        {"top": 0},
        {"max_collections": True},
        {"time_basis": "sundial"},
    ],
)
def test_bad_options_raise_config_error(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        DashboardStats(**options)
