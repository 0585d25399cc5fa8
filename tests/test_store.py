"""Tests for tvapp.server.store: every method against a real SQLite file, migrations, batches, file mode."""

from __future__ import annotations

import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tvapp.server.store import (
    MIGRATIONS,
    InviteRow,
    RefreshResult,
    RoomNameTaken,
    RoomRow,
    SessionRow,
    Store,
    StoreError,
    migrate,
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tvapp.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store(db_path)
    yield s
    s.close()


def room(sid: str, name: str = "movie-night", created_at: float = 100.0, status: str = "open") -> RoomRow:
    return RoomRow(sid=sid, name=name, status=status, max_participants=6, empty_timeout=300, created_at=created_at)


def invite(code_hash: str = "h1", room_sid: str = "RM_1", expires_at: float = 200.0, max_uses: int = 2) -> InviteRow:
    return InviteRow(
        code_hash=code_hash, room_sid=room_sid, created_at=100.0, expires_at=expires_at,
        max_uses=max_uses, uses=0, created_by="host",
    )


# opening, pragmas, file


def test_fresh_db_is_created_private_in_wal_mode_at_latest_version(db_path: Path, store: Store) -> None:
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700
    assert store.schema_version == Store.SCHEMA_VERSION == len(MIGRATIONS)
    assert store.integrity_ok()
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == Store.SCHEMA_VERSION


def test_wal_and_shm_files_are_private_too(db_path: Path, store: Store) -> None:
    store.insert_room(room("RM_1"))
    for suffix in ("-wal", "-shm"):
        side = db_path.with_name(db_path.name + suffix)
        assert stat.S_IMODE(side.stat().st_mode) == 0o600, suffix


def test_connection_pragmas(store: Store) -> None:
    conn = store._connection()
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.isolation_level is None


def test_reopen_keeps_data_and_version(db_path: Path) -> None:
    s = Store(db_path)
    s.insert_room(room("RM_1"))
    s.close()
    s = Store(db_path)
    try:
        assert s.get_room("RM_1") == room("RM_1")
        assert s.schema_version == Store.SCHEMA_VERSION
    finally:
        s.close()


def test_db_newer_than_code_is_refused(db_path: Path) -> None:
    Store(db_path).close()
    with sqlite3.connect(db_path) as raw:
        raw.execute(f"PRAGMA user_version = {Store.SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=r"newer than this tvapp supports"):
        Store(db_path)


def test_not_a_database_raises_store_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Store(db_path)


def test_closed_store_raises(db_path: Path) -> None:
    s = Store(db_path)
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.get_room("RM_1")


def test_two_stores_on_one_file_coexist(db_path: Path, store: Store) -> None:
    other = Store(db_path)
    try:
        store.insert_room(room("RM_1"))
        assert other.get_room("RM_1") == room("RM_1")
        with store.batch():
            store.insert_room(room("RM_2", name="other"))
            assert other.get_room("RM_2") is None  # WAL: the reader sees the last commit, not blocked
        assert other.get_room("RM_2") is not None
    finally:
        other.close()


# migrations


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_migrate_fresh_db_from_zero(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        assert migrate(conn, MIGRATIONS, tmp_path / "m.db") == len(MIGRATIONS)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        expected = {"rooms", "sessions", "invites", "refresh_tokens", "revoked_families", "revoked_jtis", "bans"}
        assert expected <= _tables(conn)
    finally:
        conn.close()


def test_migrate_old_db_forward_runs_only_the_new_steps(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrate(conn, MIGRATIONS, path)
        conn.execute("INSERT INTO rooms (sid, name, status, max_participants, empty_timeout, created_at)"
                     " VALUES ('RM_1', 'n', 'open', 6, 300, 1.0)")
        calls: list[int] = []

        def add_topic(c: sqlite3.Connection) -> None:
            calls.append(1)
            c.execute("ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT ''")

        newer = MIGRATIONS + (add_topic,)
        assert migrate(conn, newer, path) == len(MIGRATIONS) + 1
        assert migrate(conn, newer, path) == len(MIGRATIONS) + 1
        assert calls == [1]
        assert conn.execute("SELECT sid, topic FROM rooms").fetchall() == [("RM_1", "")]
        with pytest.raises(StoreError, match="newer"):
            migrate(conn, MIGRATIONS, path)
    finally:
        conn.close()


def test_failing_migration_leaves_db_at_old_version(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrate(conn, MIGRATIONS, path)

        def half_done(c: sqlite3.Connection) -> None:
            c.execute("CREATE TABLE extra (x INTEGER)")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            migrate(conn, MIGRATIONS + (half_done,), path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert "extra" not in _tables(conn)
        assert not conn.in_transaction
    finally:
        conn.close()


def test_store_opens_a_version_zero_file_created_elsewhere(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    sqlite3.connect(db_path).close()
    s = Store(db_path)
    try:
        assert s.schema_version == Store.SCHEMA_VERSION
    finally:
        s.close()


def test_concurrent_opens_migrate_once(db_path: Path) -> None:
    errors: list[BaseException] = []
    stores: list[Store] = []
    lock = threading.Lock()

    def open_one() -> None:
        try:
            s = Store(db_path)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
            return
        with lock:
            stores.append(s)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert all(s.schema_version == Store.SCHEMA_VERSION for s in stores)
        assert stores[0].integrity_ok()
    finally:
        for s in stores:
            s.close()


# rooms


def test_room_insert_get_and_missing(store: Store) -> None:
    r = RoomRow("RM_1", "movie-night", "open", 4, 120, 100.5)
    store.insert_room(r)
    assert store.get_room("RM_1") == r
    assert store.get_room("RM_nope") is None


def test_live_name_is_unique_until_completed(store: Store) -> None:
    store.insert_room(room("RM_1"))
    with pytest.raises(RoomNameTaken):
        store.insert_room(room("RM_2", created_at=101.0))
    store.set_room_status("RM_1", "in-progress", started_at=110.0)
    with pytest.raises(RoomNameTaken):
        store.insert_room(room("RM_2", created_at=101.0))
    store.set_room_status("RM_1", "completed", ended_at=150.0)
    store.insert_room(room("RM_2", created_at=160.0))
    assert store.find_live_room("movie-night") == room("RM_2", created_at=160.0)


def test_duplicate_room_sid_is_a_store_error_not_name_taken(store: Store) -> None:
    store.insert_room(room("RM_1"))
    with pytest.raises(StoreError) as info:
        store.insert_room(room("RM_1", name="other"))
    assert not isinstance(info.value, RoomNameTaken)


def test_set_room_status_keeps_unset_timestamps(store: Store) -> None:
    store.insert_room(room("RM_1"))
    store.set_room_status("RM_1", "in-progress", started_at=110.0)
    store.set_room_status("RM_1", "completed", ended_at=150.0)
    got = store.get_room("RM_1")
    assert got is not None
    assert (got.status, got.started_at, got.ended_at) == ("completed", 110.0, 150.0)


def test_set_room_status_rejects_unknown_room_and_bad_status(store: Store) -> None:
    with pytest.raises(StoreError, match="no room"):
        store.set_room_status("RM_nope", "completed")
    store.insert_room(room("RM_1"))
    with pytest.raises(StoreError):
        store.set_room_status("RM_1", "exploded")
    assert store.get_room("RM_1") == room("RM_1")


def test_reopening_a_completed_room_whose_name_is_reused_is_name_taken(store: Store) -> None:
    store.insert_room(room("RM_1"))
    store.set_room_status("RM_1", "completed", ended_at=120.0)
    store.insert_room(room("RM_2", created_at=130.0))
    with pytest.raises(RoomNameTaken):
        store.set_room_status("RM_1", "open")


def test_find_live_latest_list_and_live_rooms(store: Store) -> None:
    store.insert_room(room("RM_1", "a", 100.0))
    store.set_room_status("RM_1", "completed", ended_at=105.0)
    store.insert_room(room("RM_2", "a", 110.0))
    store.insert_room(room("RM_3", "b", 120.0))
    store.set_room_status("RM_3", "in-progress", started_at=121.0)
    store.insert_room(room("RM_4", "c", 130.0))
    store.set_room_status("RM_4", "completed", ended_at=131.0)

    live_a = store.find_live_room("a")
    assert live_a is not None and live_a.sid == "RM_2"
    assert store.find_live_room("c") is None
    latest_c = store.latest_room("c")
    assert latest_c is not None and latest_c.sid == "RM_4"
    latest_a = store.latest_room("a")
    assert latest_a is not None and latest_a.sid == "RM_2"
    assert store.latest_room("zzz") is None

    assert [r.sid for r in store.list_rooms()] == ["RM_4", "RM_3", "RM_2", "RM_1"]
    assert [r.sid for r in store.list_rooms(limit=2)] == ["RM_4", "RM_3"]
    assert [r.sid for r in store.list_rooms(status="completed")] == ["RM_4", "RM_1"]
    assert [r.sid for r in store.list_rooms(status="open")] == ["RM_2"]
    assert {r.sid for r in store.live_rooms()} == {"RM_2", "RM_3"}


# participant sessions


def test_sessions_insert_list_end(store: Store) -> None:
    store.insert_room(room("RM_1"))
    store.insert_room(room("RM_2", name="other"))
    store.insert_session(SessionRow("PA_2", "RM_1", "bob", "Bob", 102.0))
    store.insert_session(SessionRow("PA_1", "RM_1", "alice", "Alice", 101.0))
    store.insert_session(SessionRow("PA_3", "RM_2", "carol", "Carol", 103.0))

    assert [s.sid for s in store.list_sessions("RM_1")] == ["PA_1", "PA_2"]
    store.end_session("PA_1", 110.0, "left")
    store.end_session("PA_1", 999.0, "again")  # already ended: unchanged
    store.end_session("PA_nope", 999.0, "x")  # unknown: no error
    assert store.list_sessions("RM_1")[0] == SessionRow("PA_1", "RM_1", "alice", "Alice", 101.0, 110.0, "left")

    assert store.end_open_sessions(200.0, "server-restart") == 2
    assert store.end_open_sessions(300.0, "server-restart") == 0
    restarted = SessionRow("PA_3", "RM_2", "carol", "Carol", 103.0, 200.0, "server-restart")
    assert store.list_sessions("RM_2") == [restarted]
    assert store.list_sessions("RM_1")[0].left_at == 110.0


def test_session_needs_an_existing_room(store: Store) -> None:
    with pytest.raises(StoreError):
        store.insert_session(SessionRow("PA_1", "RM_nope", "alice", "Alice", 101.0))


# invites


def test_invite_insert_get(store: Store) -> None:
    store.insert_room(room("RM_1"))
    store.insert_invite(invite())
    assert store.get_invite("h1") == invite()
    assert store.get_invite("nope") is None
    with pytest.raises(StoreError):
        store.insert_invite(invite())


def test_use_invite_counts_uses_up_to_max(store: Store) -> None:
    store.insert_room(room("RM_1"))
    store.insert_invite(invite(max_uses=2))
    first = store.use_invite("h1", now=150.0)
    assert first is not None and first.uses == 1
    second = store.use_invite("h1", now=150.0)
    assert second is not None and second.uses == 2
    assert store.use_invite("h1", now=150.0) is None
    got = store.get_invite("h1")
    assert got is not None and got.uses == 2


def test_use_invite_refuses_expired_and_unknown(store: Store) -> None:
    store.insert_room(room("RM_1"))
    store.insert_invite(invite(expires_at=200.0, max_uses=5))
    assert store.use_invite("h1", now=199.9) is not None
    assert store.use_invite("h1", now=200.0) is None
    assert store.use_invite("unknown", now=0.0) is None
    got = store.get_invite("h1")
    assert got is not None and got.uses == 1


def test_use_invite_is_atomic_across_threads(db_path: Path) -> None:
    setup = Store(db_path)
    setup.insert_room(room("RM_1"))
    setup.insert_invite(invite(max_uses=10))
    setup.close()
    wins: list[int] = []
    lock = threading.Lock()

    def redeem() -> None:
        s = Store(db_path)
        try:
            for _ in range(5):
                if s.use_invite("h1", now=150.0) is not None:
                    with lock:
                        wins.append(1)
        finally:
            s.close()

    threads = [threading.Thread(target=redeem) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 10
    check = Store(db_path)
    try:
        got = check.get_invite("h1")
        assert got is not None and got.uses == 10
    finally:
        check.close()


# refresh-token families


def test_rotate_ok_retires_old_and_continues_family(store: Store) -> None:
    store.insert_refresh("j1", "fam", expires_at=1000.0)
    assert store.rotate_refresh("j1", "j2", 2000.0, now=10.0) is RefreshResult.OK
    assert store.rotate_refresh("j2", "j3", 3000.0, now=20.0) is RefreshResult.OK
    assert not store.family_revoked("fam")


def test_rotate_retired_token_revokes_the_family(store: Store) -> None:
    store.insert_refresh("j1", "fam", expires_at=1000.0)
    store.insert_refresh("other", "fam2", expires_at=1000.0)
    assert store.rotate_refresh("j1", "j2", 2000.0, now=10.0) is RefreshResult.OK
    assert store.rotate_refresh("j1", "j2b", 2000.0, now=11.0) is RefreshResult.RETIRED
    assert store.family_revoked("fam")
    assert not store.family_revoked("fam2")
    # the thief's replacement was never inserted, and the legitimate newest token is now dead too
    assert store.rotate_refresh("j2b", "j9", 2000.0, now=12.0) is RefreshResult.UNKNOWN
    assert store.rotate_refresh("j2", "j3", 2000.0, now=12.0) is RefreshResult.REVOKED
    assert store.rotate_refresh("other", "other2", 2000.0, now=12.0) is RefreshResult.OK


def test_rotate_unknown_expired_and_revoked(store: Store) -> None:
    assert store.rotate_refresh("nope", "j2", 2000.0, now=10.0) is RefreshResult.UNKNOWN
    store.insert_refresh("j1", "fam", expires_at=100.0)
    assert store.rotate_refresh("j1", "j2", 2000.0, now=100.0) is RefreshResult.EXPIRED
    assert store.rotate_refresh("j2", "j3", 2000.0, now=10.0) is RefreshResult.UNKNOWN  # j2 was not inserted
    assert not store.family_revoked("fam")
    store.insert_refresh("k1", "famk", expires_at=1000.0)
    store.revoke_family("famk", now=50.0)
    store.revoke_family("famk", now=60.0)  # twice is fine
    assert store.family_revoked("famk")
    assert store.rotate_refresh("k1", "k2", 2000.0, now=70.0) is RefreshResult.REVOKED


def test_rotate_to_an_existing_jti_fails_and_changes_nothing(store: Store) -> None:
    store.insert_refresh("j1", "fam", expires_at=1000.0)
    store.insert_refresh("j2", "fam", expires_at=1000.0)
    with pytest.raises(StoreError):
        store.rotate_refresh("j1", "j2", 2000.0, now=10.0)
    assert store.rotate_refresh("j1", "j3", 2000.0, now=10.0) is RefreshResult.OK


# revoked access-token ids and bans


def test_revoke_jti(store: Store) -> None:
    assert not store.jti_revoked("a1")
    store.revoke_jti("a1", expires_at=500.0, reason="removed")
    store.revoke_jti("a1", expires_at=400.0, reason="again")
    assert store.jti_revoked("a1")
    assert store.purge_expired(now=450.0) == 0  # the later expiry was kept
    assert store.jti_revoked("a1")


def test_bans_are_per_room_session(store: Store) -> None:
    store.insert_room(room("RM_1"))
    store.insert_room(room("RM_2", name="b"))
    store.ban("RM_1", "mallory", now=120.0)
    store.ban("RM_1", "mallory", now=130.0)
    assert store.is_banned("RM_1", "mallory")
    assert not store.is_banned("RM_2", "mallory")
    assert not store.is_banned("RM_1", "alice")


def test_purge_expired(store: Store) -> None:
    store.insert_room(room("RM_1"))
    store.insert_invite(invite("old", expires_at=100.0))
    store.insert_invite(invite("new", expires_at=300.0))
    store.insert_refresh("j_old", "fam_old", expires_at=100.0)
    store.insert_refresh("j_new", "fam_new", expires_at=300.0)
    store.revoke_family("fam_old", now=50.0)
    store.revoke_family("fam_new", now=50.0)
    store.revoke_jti("a_old", expires_at=100.0, reason="r")
    store.revoke_jti("a_new", expires_at=300.0, reason="r")
    store.ban("RM_1", "mallory", now=50.0)

    # invite, refresh token, revoked jti, and the family left with no tokens
    assert store.purge_expired(now=200.0) == 4
    assert store.get_invite("old") is None and store.get_invite("new") is not None
    assert store.rotate_refresh("j_old", "x", 999.0, now=1.0) is RefreshResult.UNKNOWN
    assert not store.family_revoked("fam_old") and store.family_revoked("fam_new")
    assert not store.jti_revoked("a_old") and store.jti_revoked("a_new")
    assert store.is_banned("RM_1", "mallory")
    assert store.purge_expired(now=200.0) == 0


# transactions and batches


def test_batch_commits_all_at_once(db_path: Path, store: Store) -> None:
    reader = Store(db_path)
    try:
        with store.batch():
            store.insert_room(room("RM_1"))
            store.insert_refresh("j1", "fam", 1000.0)
            assert reader.get_room("RM_1") is None
        assert reader.get_room("RM_1") is not None
    finally:
        reader.close()


def test_batch_failing_op_rolls_back_alone(store: Store) -> None:
    store.insert_room(room("RM_0", name="taken"))
    with store.batch():
        store.insert_room(room("RM_1", name="a"))
        with pytest.raises(RoomNameTaken):
            store.insert_room(room("RM_2", name="taken"))
        with pytest.raises(StoreError):
            store.insert_session(SessionRow("PA_1", "RM_nope", "alice", "Alice", 101.0))
        store.insert_room(room("RM_3", name="b"))
    assert store.get_room("RM_1") is not None
    assert store.get_room("RM_2") is None
    assert store.get_room("RM_3") is not None


def test_nested_batch_is_a_savepoint(store: Store) -> None:
    with store.batch():
        store.insert_room(room("RM_1", name="a"))
        with pytest.raises(ValueError):
            with store.batch():
                store.insert_room(room("RM_2", name="b"))
                store.insert_refresh("j1", "fam", 1000.0)
                raise ValueError("the op changed its mind")
        store.insert_room(room("RM_3", name="c"))
    assert store.get_room("RM_1") is not None
    assert store.get_room("RM_2") is None
    assert store.rotate_refresh("j1", "j2", 2000.0, now=1.0) is RefreshResult.UNKNOWN
    assert store.get_room("RM_3") is not None


def test_exception_escaping_batch_rolls_everything_back(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.batch():
            store.insert_room(room("RM_1"))
            raise RuntimeError("abort")
    assert store.get_room("RM_1") is None
    store.insert_room(room("RM_1"))  # the connection is usable again
    assert store.get_room("RM_1") is not None


def test_write_outside_batch_is_committed_on_return(db_path: Path, store: Store) -> None:
    store.insert_room(room("RM_1"))
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT sid FROM rooms").fetchall() == [("RM_1",)]
    assert not store._connection().in_transaction
