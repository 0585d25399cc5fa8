"""Exercise the core server's runtime inside an emulation of the unit's sandbox; print "ok" when it works.

tests/test_systemd.py starts this script under a seccomp filter that refuses what
`MemoryDenyWriteExecute=yes` and `RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK` refuse.
Usage: python systemd_sandbox_child.py SCRATCH_DIR. Exit status 0 means every step passed.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import mmap
import socket
import sqlite3
import sys
from pathlib import Path

import aiortc  # the SFU's libraries (av's FFmpeg, libsrtp, OpenSSL) must load and gather ICE candidates
import fastapi
import jwt
import numpy as np
import uvicorn
import uvloop
import websockets


def check_sandbox_is_active() -> None:
    """Fail unless writable+executable memory and packet sockets are refused."""
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except PermissionError:
        pass
    else:
        raise SystemExit("sandbox not active: a writable+executable mapping was allowed")
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    except OSError as exc:
        if exc.errno != errno.EAFNOSUPPORT:
            raise
    else:
        raise SystemExit("sandbox not active: an AF_PACKET socket was allowed")


async def check_ice_gathering() -> None:
    """Gather ICE host candidates as the SFU does by default: every address of the machine (getifaddrs)."""
    pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    candidates = [line for line in pc.localDescription.sdp.splitlines() if line.startswith("a=candidate")]
    await pc.close()
    assert candidates, "no ICE host candidate was gathered"


def check_numpy() -> None:
    """Run an FFT and a LAPACK solve."""
    spectrum = np.fft.rfft(np.sin(np.arange(4800) * 2 * np.pi * 440 / 48000))
    assert int(np.argmax(np.abs(spectrum))) == 44
    matrix = np.array([[3.0, 1.0], [1.0, 2.0]])
    assert np.allclose(np.linalg.solve(matrix, np.array([9.0, 8.0])), [2.0, 3.0])


def check_ctypes_callback() -> None:
    """Sort through libc's qsort with a Python comparison callback (a libffi closure)."""
    compare_type = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)
    )
    values = (ctypes.c_int * 5)(5, 1, 4, 2, 3)
    libc = ctypes.CDLL(None)
    libc.qsort(values, 5, ctypes.sizeof(ctypes.c_int), compare_type(lambda a, b: a[0] - b[0]))
    assert list(values) == [1, 2, 3, 4, 5]


def check_sqlite(scratch: Path) -> None:
    """Write through a WAL-mode database file with a Python SQL function."""
    db = sqlite3.connect(scratch / "sandbox.db")
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.create_function("twice", 1, lambda x: 2 * x, deterministic=True)
        with db:
            db.execute("CREATE TABLE t (x INTEGER)")
            db.execute("INSERT INTO t VALUES (twice(21))")
        assert db.execute("SELECT x FROM t").fetchone() == (42,)
    finally:
        db.close()


def check_jwt() -> None:
    """Round-trip an HS256 token."""
    token = jwt.encode({"sub": "alice"}, "k" * 32, algorithm="HS256")
    assert jwt.decode(token, "k" * 32, algorithms=["HS256"]) == {"sub": "alice"}


async def check_http_and_websocket() -> None:
    """Serve a FastAPI app with uvicorn (uvloop, httptools) and talk HTTP and websocket to it."""
    app = fastapi.FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.websocket("/echo")
    async def echo(ws: fastapi.WebSocket) -> None:
        await ws.accept()
        await ws.send_text((await ws.receive_text()).upper())
        await ws.close()

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http="httptools", ws="websockets", log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            raise SystemExit("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    response = await reader.read()
    writer.close()
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
    assert response.endswith(b'{"status":"ok"}'), response[-200:]

    async with websockets.connect(f"ws://127.0.0.1:{port}/echo") as ws:
        await ws.send("hello")
        assert await ws.recv() == "HELLO"

    server.should_exit = True
    await serving


def main() -> None:
    """Run every check and print "ok"."""
    scratch = Path(sys.argv[1])
    check_sandbox_is_active()
    check_numpy()
    check_ctypes_callback()
    check_sqlite(scratch)
    check_jwt()
    uvloop.run(check_http_and_websocket())
    asyncio.run(check_ice_gathering())
    print("ok")


if __name__ == "__main__":
    main()
