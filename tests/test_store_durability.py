"""kill -9 durability of the store: a child writes through StoreWriter and is SIGKILLed at random moments.

After every kill the database must pass integrity_check and hold every write the child acknowledged
(the child prints an id only after ``StoreWriter.call`` returned, i.e. after the COMMIT).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from tvapp.server.store import Store

REPO = Path(__file__).resolve().parent.parent
CHILD = REPO / "tests" / "store_writer_child.py"
ROUNDS = 5


class ChildRun:
    """One child process and the complete lines it printed."""

    def __init__(self, db_path: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(db_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.endswith("\n"):
                continue  # cut off by the kill: never acknowledged
            self.lines.append(line.rstrip("\n"))
            if line.startswith("ready "):
                self.ready.set()

    def kill(self) -> tuple[int, str]:
        os.kill(self.proc.pid, signal.SIGKILL)
        returncode = self.proc.wait(10)
        self._reader.join(10)
        assert self.proc.stderr is not None
        return returncode, self.proc.stderr.read()


def acked(lines: list[str]) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {k: set() for k in ("room", "session", "refresh", "rotated", "completed")}
    for line in lines:
        kind, _, ident = line.partition(" ")
        if kind in kinds:
            kinds[kind].add(ident)
    return kinds


def assert_acked_writes_present(db_path: Path, acks: dict[str, set[str]], context: str) -> None:
    store = Store(db_path)  # also runs WAL recovery and the migration check on the killed file
    try:
        assert store.integrity_ok(), context
        for sid in acks["completed"]:
            row = store.get_room(sid)
            assert row is not None and row.status == "completed", f"{context}: room {sid} not completed"
    finally:
        store.close()
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)], context
        rooms = {r[0] for r in raw.execute("SELECT sid FROM rooms")}
        sessions = {r[0] for r in raw.execute("SELECT sid FROM sessions")}
        tokens = dict(raw.execute("SELECT jti, state FROM refresh_tokens").fetchall())
    assert acks["room"] <= rooms, f"{context}: lost rooms {sorted(acks['room'] - rooms)[:5]}"
    assert acks["session"] <= sessions, f"{context}: lost sessions {sorted(acks['session'] - sessions)[:5]}"
    assert acks["refresh"] <= tokens.keys(), f"{context}: lost refresh tokens"
    for jti in acks["rotated"]:
        assert tokens.get(jti) == "retired" and tokens.get(jti + "_r") == "active", f"{context}: lost rotation {jti}"


def test_kill_9_never_loses_an_acknowledged_write(tmp_path: Path) -> None:
    db_path = tmp_path / "data" / "tvapp.db"
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    all_acks: dict[str, set[str]] = {}
    started = time.monotonic()
    for round_no in range(ROUNDS):
        delay = rng.uniform(0.2, 1.0)
        context = f"seed={seed} round={round_no} delay={delay:.3f}s"
        child = ChildRun(db_path)
        if not child.ready.wait(15):
            _, stderr = child.kill()
            raise AssertionError(f"{context}: child never became ready: {stderr}")
        time.sleep(delay)
        returncode, stderr = child.kill()
        assert returncode == -signal.SIGKILL, f"{context}: child ended on its own: {stderr}"
        round_acks = acked(child.lines)
        assert len(round_acks["room"]) > 0 and len(round_acks["completed"]) > 0, f"{context}: child wrote nothing"
        for kind, ids in round_acks.items():
            all_acks.setdefault(kind, set()).update(ids)
        # every earlier round's writes must survive this round's kill too
        assert_acked_writes_present(db_path, all_acks, context)
    assert time.monotonic() - started < 30
