"""Web SDK: its size, and page join -> first remote video frame against the Python SDK in the same run.

Size: the SDK's modules (tvapp/server/web/sdk/*.js, what a page downloads) concatenated, raw and gzip -9, and each
module minified by terser (pinned in tests/js/package.json, installed by `make test`/`make js-deps`; else one on
PATH) then gzip -9, summed (a page fetches each module as its own file). Goal: <= 40 KB minified + gzip.
Join: an SDK bot publishes a 320x240 test pattern in a room; each join is timed from Room.connect() to the first
frame of the bot's video: in Chromium (a page on another origin importing /sdk/tvapp.js; first frame = the first
requestVideoFrameCallback of a <video> it is attached to) and with the Python SDK (first decoded frame from
track.recv()), alternating, `--joins` each (20; 3 with --quick).

Run: python -m bench.web_join [--quick] [--joins N]. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import http.server
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import emit, latency_ms, parser, running_server
from tvapp.client import Room, TrackSubscribed
from tvapp.client.sources import TestPatternTrack
from tvapp.testing.browser import Browser

ROOT = Path(__file__).resolve().parent.parent
SDK = ROOT / "tvapp" / "server" / "web" / "sdk"
GOAL_GZIP_KB = 40.0

PAGE_JOIN = """async ([url, token]) => {
  const { Room } = await import(new URL('/sdk/tvapp.js', url).href);
  const t0 = performance.now();
  const room = new Room(url, token);
  const first = new Promise((resolve) => room.on('track_subscribed', ({ track }) => {
    if (track.kind !== 'video') return;
    const video = track.attach();
    document.body.append(video);
    video.requestVideoFrameCallback(() => resolve(performance.now() - t0));
  }));
  await room.connect();
  const ms = await first;
  await room.disconnect();
  return ms;
}"""


def sdk_size() -> dict[str, Any]:
    """Return the SDK's size: raw and gzip -9 of its modules (minified first when terser is installed)."""
    source = "".join(p.read_text() for p in sorted(SDK.glob("*.js"))).encode()
    out: dict[str, Any] = {"sdk_raw_kb": round(len(source) / 1024, 1),
                           "sdk_gzip_kb": round(len(gzip.compress(source, 9)) / 1024, 1), "minifier": None}
    local = SDK.parents[3] / "tests" / "js" / "node_modules" / ".bin" / "terser"
    terser = str(local) if local.exists() else shutil.which("terser")
    if terser:
        minified = [subprocess.run([terser, "--module", "-c", "-m"], input=p.read_bytes(), capture_output=True,
                                   check=True).stdout for p in sorted(SDK.glob("*.js"))]
        out.update(minifier="terser", sdk_min_kb=round(sum(map(len, minified)) / 1024, 1),
                   sdk_min_gzip_kb=round(sum(len(gzip.compress(m, 9)) for m in minified) / 1024, 1))
    out["size_goal_met"] = out.get("sdk_min_gzip_kb", out["sdk_gzip_kb"]) <= GOAL_GZIP_KB
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


async def python_join(url: str, token: str) -> float:
    """Return seconds from Room.connect to the first decoded frame of a remote video track."""
    start = time.perf_counter()
    first: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def on_track(event: TrackSubscribed) -> None:
        if event.track.kind == "video" and not first.done():
            await event.track.recv()
            if not first.done():
                first.set_result(time.perf_counter() - start)

    room = await Room.connect(url, token, host_addresses=["127.0.0.1"])
    room.on(TrackSubscribed, on_track)
    try:
        return await asyncio.wait_for(first, 20)
    finally:
        await room.disconnect()


def main() -> None:
    args = parser(__doc__ or "").parse_known_args()[0]
    joins = 3 if args.quick else 20
    figures: dict[str, Any] = sdk_size()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(ROOT / "examples" / "web")))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{httpd.server_address[1]}"
    env = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1", "TVAPP_SERVER_ALLOWED_ORIGINS": site}
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def call(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(60)

    try:
        with running_server(env) as srv, Browser() as browser:
            srv.http.post("/v1/rooms", json={"name": "bench-web", "max_participants": 10}).raise_for_status()

            async def bot() -> Room:
                room = await Room.connect(srv.url, srv.token("bench-web", "bot")["access_token"],
                                          host_addresses=["127.0.0.1"])
                await room.local_participant.publish_track(TestPatternTrack(320, 240, 30), source="camera")
                return room

            publisher = call(bot())
            page = browser.new_page()
            page.goto(site + "/")
            web: list[float] = []
            py: list[float] = []
            for i in range(joins):
                web.append(page.evaluate(PAGE_JOIN, [srv.url, srv.token("bench-web", f"web-{i}")["access_token"]])
                           / 1000)
                py.append(call(python_join(srv.url, srv.token("bench-web", f"py-{i}")["access_token"])))
            call(publisher.disconnect())
        figures.update(joins=joins, web_page=latency_ms(web), python_sdk=latency_ms(py))
    finally:
        httpd.shutdown()
        loop.call_soon_threadsafe(loop.stop)
    emit("web_join", figures)


if __name__ == "__main__":
    main()
