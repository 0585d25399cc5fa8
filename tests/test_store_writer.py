"""Tests for tvapp.server.writer.StoreWriter: group commit on a real SQLite file, driven from asyncio."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tvapp.server.store import RoomNameTaken, RoomRow, Store, StoreError
from tvapp.server.writer import StoreWriter


def room(sid: str, name: str | None = None) -> RoomRow:
    return RoomRow(sid=sid, name=name or f"name-{sid}", status="open", max_participants=6,
                   empty_timeout=300, created_at=100.0)


def inserting(sid: str) -> Callable[[Store], None]:
    def op(store: Store) -> None:
        store.insert_room(room(sid))
    return op


def committed_room_sids(path: Path) -> set[str]:
    with sqlite3.connect(path) as raw:
        return {r[0] for r in raw.execute("SELECT sid FROM rooms")}


def test_200_concurrent_calls_all_land_in_fewer_transactions(tmp_path: Path) -> None:
    path = tmp_path / "tvapp.db"

    async def main() -> tuple[list[str], int]:
        writer = StoreWriter(path)
        await writer.start()
        try:
            def inserter(sid: str) -> Callable[[Store], str]:
                def op(store: Store) -> str:
                    store.insert_room(room(sid))
                    return sid
                return op

            results = await asyncio.gather(*(writer.call(inserter(f"RM_{i}")) for i in range(200)))
            return list(results), writer.commits
        finally:
            await writer.close()

    results, commits = asyncio.run(main())
    assert results == [f"RM_{i}" for i in range(200)]
    assert committed_room_sids(path) == {f"RM_{i}" for i in range(200)}
    assert 1 <= commits < 200


def test_everything_queued_while_a_commit_runs_goes_into_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "tvapp.db"
    gate_entered = threading.Event()
    gate_open = threading.Event()

    def gate(store: Store) -> None:
        gate_entered.set()
        assert gate_open.wait(10)
        store.insert_room(room("RM_gate"))

    async def main() -> tuple[int, int]:
        writer = StoreWriter(path)
        await writer.start()
        try:
            first = asyncio.ensure_future(writer.call(gate))
            await asyncio.to_thread(gate_entered.wait, 10)
            before = writer.commits
            rest = [asyncio.ensure_future(writer.call(inserting(f"RM_{i}")))
                    for i in range(150)]
            await asyncio.sleep(0.05)  # every task has queued its op behind the gate
            gate_open.set()
            await first
            await asyncio.gather(*rest)
            return before, writer.commits
        finally:
            await writer.close()

    before, after = asyncio.run(main())
    assert before == 0
    assert after == 2
    assert len(committed_room_sids(path)) == 151


def test_a_raising_op_fails_only_its_caller_and_is_rolled_back(tmp_path: Path) -> None:
    path = tmp_path / "tvapp.db"
    gate_open = threading.Event()

    def half_then_fail(store: Store) -> None:
        store.insert_room(room("RM_half"))
        raise ValueError("op failed after its first write")

    async def main() -> list[object]:
        writer = StoreWriter(path)
        await writer.start()
        try:
            await writer.call(lambda s: s.insert_room(room("RM_taken", name="taken")))
            blocker = asyncio.ensure_future(writer.call(lambda s: gate_open.wait(10)))
            await asyncio.sleep(0.05)
            calls = [
                writer.call(lambda s: s.insert_room(room("RM_a"))),
                writer.call(half_then_fail),
                writer.call(lambda s: s.insert_room(room("RM_dup", name="taken"))),
                writer.call(lambda s: s.insert_room(room("RM_b"))),
            ]
            tasks = [asyncio.ensure_future(c) for c in calls]
            await asyncio.sleep(0.05)
            gate_open.set()
            await blocker
            return list(await asyncio.gather(*tasks, return_exceptions=True))
        finally:
            await writer.close()

    outcomes = asyncio.run(main())
    assert outcomes[0] is None and outcomes[3] is None
    assert isinstance(outcomes[1], ValueError)
    assert isinstance(outcomes[2], RoomNameTaken)
    assert committed_room_sids(path) == {"RM_taken", "RM_a", "RM_b"}


def test_return_value_arrives_after_commit_is_visible_to_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "tvapp.db"

    async def main() -> None:
        writer = StoreWriter(path)
        await writer.start()
        reader = Store(path)
        try:
            for i in range(20):
                await writer.call(inserting(f"RM_{i}"))
                assert reader.get_room(f"RM_{i}") is not None
        finally:
            reader.close()
            await writer.close()

    asyncio.run(main())


def test_close_finishes_queued_ops_then_refuses_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "tvapp.db"

    async def main() -> None:
        writer = StoreWriter(path)
        await writer.start()
        tasks = [asyncio.ensure_future(writer.call(inserting(f"RM_{i}")))
                 for i in range(50)]
        await asyncio.sleep(0)
        await writer.close()
        await asyncio.gather(*tasks)
        assert all(t.done() and t.exception() is None for t in tasks)
        with pytest.raises(StoreError):
            await writer.call(lambda s: s.insert_room(room("RM_late")))
        await writer.close()  # twice is fine

    asyncio.run(main())
    assert len(committed_room_sids(path)) == 50


def test_call_before_start_and_bad_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    async def main() -> None:
        writer = StoreWriter(tmp_path / "tvapp.db")
        with pytest.raises(StoreError):
            await writer.call(lambda s: None)
        broken = StoreWriter(blocker / "tvapp.db")
        with pytest.raises(StoreError, match="cannot create"):
            await broken.start()
        with pytest.raises(StoreError):
            await broken.call(lambda s: None)
        await broken.close()

    asyncio.run(main())


def test_event_loop_is_not_blocked_while_the_writer_works(tmp_path: Path) -> None:
    path = tmp_path / "tvapp.db"
    gate_open = threading.Event()

    async def main() -> tuple[bool, float]:
        writer = StoreWriter(path)
        await writer.start()
        try:
            slow = asyncio.ensure_future(writer.call(lambda s: gate_open.wait(5)))
            start = time.monotonic()
            for _ in range(10):
                await asyncio.sleep(0.005)
            elapsed = time.monotonic() - start
            still_running = not slow.done()
            gate_open.set()
            await slow
            return still_running, elapsed
        finally:
            await writer.close()

    still_running, elapsed = asyncio.run(main())
    assert still_running
    assert elapsed < 2.0


def test_settled_waits_for_what_was_queued_and_never_raises(tmp_path: Path) -> None:
    """The REST edge awaits settled() before every answer (tvapp.server.api.auth): a failed op queued before it, a
    writer closing or closed, must not make it raise (a REST call during a leave may wait, never fail)."""
    path = tmp_path / "tvapp.db"
    gate_open = threading.Event()

    async def main() -> None:
        writer = StoreWriter(path)
        await writer.start()
        commits = writer.commits
        await writer.settled()  # nothing outstanding: free, no commit
        assert writer.commits == commits
        held = asyncio.ensure_future(writer.call(lambda s: gate_open.wait(5)))
        queued = [asyncio.ensure_future(writer.call(inserting(f"RM_{i}"))) for i in range(3)]
        failing = asyncio.ensure_future(writer.call(lambda s: s.insert_room(room("RM_0"))))  # a duplicate sid
        settling = asyncio.ensure_future(writer.settled())
        await asyncio.sleep(0)
        gate_open.set()
        await settling  # no exception, though an op queued before it failed
        assert committed_room_sids(path) == {"RM_0", "RM_1", "RM_2"}  # a read after it sees everything queued
        assert held.done() and all(t.done() for t in queued) and failing.done()
        assert failing.exception() is not None  # its caller alone hears of it
        late = asyncio.ensure_future(writer.call(inserting("RM_late")))
        closing = asyncio.ensure_future(writer.close())
        await writer.settled()  # while closing
        await closing
        await late
        await writer.settled()  # closed
        assert "RM_late" in committed_room_sids(path)

    asyncio.run(main())
