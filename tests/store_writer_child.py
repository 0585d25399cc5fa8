"""Write to a store through StoreWriter forever, printing each acknowledged id; killed by test_store_durability.

Usage: python tests/store_writer_child.py DBPATH

Prints "ready" once the writer is open, then lines "<kind> <id>" (kind: room, session, completed, refresh,
rotated), each flushed right after the ``call`` that wrote it returned, i.e. after its COMMIT.
Several workers write concurrently so that commits hold several ops each.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from tvapp.server.store import RefreshResult, RoomRow, SessionRow
from tvapp.server.writer import StoreWriter

WORKERS = 6


def ack(kind: str, ident: str) -> None:
    sys.stdout.write(f"{kind} {ident}\n")
    sys.stdout.flush()


async def worker(writer: StoreWriter, prefix: str) -> None:
    i = 0
    while True:
        rid, pid, jti = f"RM_{prefix}_{i}", f"PA_{prefix}_{i}", f"JT_{prefix}_{i}"
        now = time.time()
        room = RoomRow(rid, f"room-{prefix}-{i}", "open", 6, 300, now)
        await writer.call(lambda s: s.insert_room(room))
        ack("room", rid)
        session = SessionRow(pid, rid, f"user-{prefix}-{i}", "User", now)
        await writer.call(lambda s: s.insert_session(session))
        ack("session", pid)
        await writer.call(lambda s: s.insert_refresh(jti, f"FA_{prefix}_{i}", now + 3600))
        ack("refresh", jti)
        result = await writer.call(lambda s: s.rotate_refresh(jti, jti + "_r", now + 7200, now))
        if result is not RefreshResult.OK:
            raise SystemExit(f"rotation failed: {result}")
        ack("rotated", jti)
        await writer.call(lambda s: s.set_room_status(rid, "completed", ended_at=now))
        ack("completed", rid)
        i += 1


async def main(path: str) -> None:
    writer = StoreWriter(path)
    await writer.start()
    ack("ready", str(os.getpid()))
    prefix = str(os.getpid())
    await asyncio.gather(*(worker(writer, f"{prefix}w{n}") for n in range(WORKERS)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
