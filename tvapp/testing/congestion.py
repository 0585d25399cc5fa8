"""A room for congestion tests and bench/quality.py: a server, bot publishers and measuring members (subprocesses).

`NetemRoom` is the room the netem congestion tests share (a core behind a shaped link, `tvapp bot` publishers of
a noise video, members on loopback or behind the link, all stopped on exit). `MemberProcess` runs
tvapp.testing.member (optionally inside a netem namespace) and reads back what it wrote; the helpers here turn
those JSON lines into rates, losses and freezes over a time window.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tvapp.testing.bots import stop_process
from tvapp.testing.netem import NetemLink, netem_link
from tvapp.testing.rest import create_room
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import BotProcess


@contextmanager
def shaped_link(prefix: str, *, down_kbps: float, seed: int) -> Iterator[NetemLink]:
    """Yield a userspace netem link shaped to `down_kbps` (closed after); fail loudly where it cannot be made."""
    with netem_link(prefix, down_kbps=down_kbps, seed=seed) as link:
        yield link


def server_behind(workdir: Path, link: NetemLink, room: str) -> tuple[ServerProcess, str]:
    """Start a core that members reach through `link` and bots on loopback, with `room` made; return it and its port."""
    server = ServerProcess(workdir, host="0.0.0.0", env={
        "TVAPP_MEDIA_HOST_ADDRESSES": f"{link.host_ip},127.0.0.1", "TVAPP_SERVER_TLS": "off"}).start()
    create_room(server, room)
    return server, server.url.rsplit(":", 1)[1]


class NetemRoom:
    """A congestion test's room (a context manager): a core behind `link` (server_behind), with `room` made.

    `publish()` starts `tvapp bot` publishers on loopback, `member()` measuring members on loopback or behind the
    link; on exit every member, then every bot, then the core is stopped.
    """

    def __init__(self, workdir: Path, link: NetemLink, room: str) -> None:
        self.workdir, self.link, self.room = workdir, link, room
        self.server, self.port = server_behind(workdir / "server", link, room)
        self.bots: list[BotProcess] = []
        self.members: list[MemberProcess] = []

    def __enter__(self) -> NetemRoom:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def token(self, identity: str) -> str:
        """Return an access token for `identity` in the room."""
        return str(self.server.token(self.room, identity)["access_token"])

    def publish(self, publishers: Mapping[str, Sequence[str]], video: Path, *, kinds: int = 2,
                timeout: float = 45) -> None:
        """Start a bot per publisher (name -> extra `tvapp bot` arguments) sending `video`; wait until each has
        published `kinds` tracks."""
        started = [BotProcess(self.workdir, name, [
            "--server", f"http://127.0.0.1:{self.port}", "--token", self.token(name), "--video", str(video), *extra])
            for name, extra in publishers.items()]
        self.bots.extend(started)
        for bot in started:
            bot.wait_published(kinds, timeout=timeout)

    def member(self, name: str, *, behind_link: bool = False) -> MemberProcess:
        """Start a measuring member on loopback, or inside the link's namespace when `behind_link`."""
        if behind_link:
            member = MemberProcess(self.workdir, name, f"http://{self.link.host_ip}:{self.port}", self.token(name),
                                   host_address=self.link.ns_ip, link=self.link)
        else:
            member = MemberProcess(self.workdir, name, f"http://127.0.0.1:{self.port}", self.token(name),
                                   host_address="127.0.0.1")
        self.members.append(member)
        return member

    def leave(self, member: MemberProcess) -> None:
        """Stop one member before the room closes."""
        member.stop()
        self.members.remove(member)

    def close(self) -> None:
        """Stop every member, every bot, then the core."""
        for member in self.members:
            member.stop()
        for bot in self.bots:
            bot.stop()
        self.server.stop()


class MemberProcess:
    """A measuring SDK subscriber (tvapp.testing.member) in a subprocess; `records()` reads what it wrote."""

    def __init__(self, workdir: Path, name: str, url: str, token: str, *, host_address: str,
                 link: NetemLink | None = None) -> None:
        self.name = name
        self.path = Path(workdir) / f"member-{name}.jsonl"
        self.path.write_text("")
        self._log = open(Path(workdir) / f"member-{name}.log", "w")  # noqa: SIM115 - closed by stop()
        prefix: Sequence[str] = link.exec_prefix if link is not None else ()
        env = {**os.environ, "TVAPP_MEMBER_TOKEN": token, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([*prefix, sys.executable, "-m", "tvapp.testing.member", url, str(self.path),
                                      "--host-address", host_address], stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env)

    def records(self) -> list[dict[str, Any]]:
        """Return every complete record written so far."""
        lines = self.path.read_text().splitlines()
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # the line being written
                continue
        return out

    def events(self, name: str) -> list[dict[str, Any]]:
        """Return the records of one event kind."""
        return [r for r in self.records() if r.get("event") == name]

    def wait(self, what: str, predicate: Any, timeout: float) -> Any:
        """Poll the records until `predicate(records)` is truthy; return its value; fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"member {self.name} exited: {self.log_text()}")
            value = predicate(self.records())
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"member {self.name}: no {what} within {timeout} s")
            time.sleep(0.1)

    def log_text(self) -> str:
        """Return the member's stdout/stderr so far."""
        self._log.flush()
        return Path(self._log.name).read_text()[-3000:]

    def stop(self) -> None:
        """SIGTERM the member and wait (it writes an ongoing freeze first)."""
        stop_process(self.proc)
        self._log.close()


def subscriptions(records: list[dict[str, Any]]) -> dict[str, str]:
    """Return track sid -> kind of every subscription a member announced."""
    return {r["sid"]: r["kind"] for r in records if r.get("event") == "subscribed"}


def flowing(records: list[dict[str, Any]], n: int) -> bool:
    """Return whether a member's last stats line has at least `n` subscriptions, each with packets."""
    last = [r for r in records if "stats" in r]
    if not last:
        return False
    stats = last[-1]["stats"]
    return len(stats) >= n and all(s["packets"] > 0 for s in stats.values())


def stats_at(records: list[dict[str, Any]], t: float) -> dict[str, dict[str, Any]]:
    """Return the last cumulative stats written at or before monotonic time `t` ({} if none)."""
    return _record_at(records, t)[1]


def _record_at(records: list[dict[str, Any]], t: float) -> tuple[float | None, dict[str, dict[str, Any]]]:
    """Return the time and cumulative stats of the last stats record at or before `t` (None, {} if none)."""
    when: float | None = None
    best: dict[str, dict[str, Any]] = {}
    for r in records:
        if "stats" in r and r["t"] <= t:
            when, best = r["t"], r["stats"]
    return when, best


def window(records: list[dict[str, Any]], start: float, end: float) -> dict[str, dict[str, Any]]:
    """Return per track sid over [start, end]: packets/s, frames/s, lost and received packets.

    Rates are over the time between the two stats records that bound the window (the last at or before `start`
    and the last at or before `end`), not over `end - start`: records come every ~0.5 s, later on a loaded
    machine, so the nominal span could be half or twice the counted one (a 1 s window once read a steady 16 fps
    as 8).
    """
    (t_a, a), (t_b, b) = _record_at(records, start), _record_at(records, end)
    span = max(1e-6, (t_b - t_a) if t_a is not None and t_b is not None and t_b > t_a else end - start)
    out = {}
    for sid, after in b.items():
        before = a.get(sid, {"packets": 0, "lost": 0, "frames": 0})
        out[sid] = {"kind": after["kind"], "pps": (after["packets"] - before["packets"]) / span,
                    "fps": (after["frames"] - before["frames"]) / span,
                    "lost": max(0, after["lost"] - before["lost"]), "received": after["packets"] - before["packets"]}
    return out


def audio_loss(records: list[dict[str, Any]], start: float, end: float) -> float:
    """Return the fraction of audio packets lost over [start, end] (all audio tracks together)."""
    w = [v for v in window(records, start, end).values() if v["kind"] == "audio"]
    lost = sum(v["lost"] for v in w)
    total = lost + sum(v["received"] for v in w)
    return lost / total if total else 1.0


RESUME_GRACE_S = 1.0
"""After a switch-on, how long a track may still show no frame and count as switched off: the keyframe asked of its
publisher and its way to the member."""


def switched_off_spans(records: list[dict[str, Any]], sid: str) -> list[tuple[float, float]]:
    """Return the spans track `sid` was switched off (each to RESUME_GRACE_S past its switch-on), merged, in order."""
    spans: list[tuple[float, float]] = []
    since: float | None = None
    for r in records:
        if r.get("sid") != sid:
            continue
        if r.get("event") == "track_switched_off" and since is None:
            since = r["t"]
        elif r.get("event") == "track_switched_on" and since is not None:
            spans.append((since, r["t"] + RESUME_GRACE_S))
            since = None
    if since is not None:
        spans.append((since, float("inf")))
    merged: list[tuple[float, float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def freeze_kinds(records: list[dict[str, Any]], start: float, end: float) -> dict[str, float]:
    """Return the freeze seconds of the video tracks over [start, end] by kind, from the switch events' times.

    "switched_off": while the track was switched off (announced, up to RESUME_GRACE_S after its switch-on); the rest
    is a stall: "after_switch_on" (the frames did not come back RESUME_GRACE_S after the switch-on), "before_switch_off"
    (the frames had stopped before the SFU switched the track off) or "unannounced" (no switch in the gap). The
    member's own `announced` flag (the track was off at any point of the gap) counts all of a gap that began while
    off as announced, however long it lasted after the switch-on.
    """
    kinds = {"switched_off": 0.0, "after_switch_on": 0.0, "before_switch_off": 0.0, "unannounced": 0.0}
    spans: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        if r.get("event") != "freeze":
            continue
        a, b = max(start, r["start"]), min(end, r["end"])
        if b <= a:
            continue
        offs = spans.setdefault(r["sid"], switched_off_spans(records, r["sid"]))
        cursor, resumed = a, False
        for off_a, off_b in offs:
            if off_b <= cursor or off_a >= b:
                continue
            if off_a > cursor:  # no frame before this switch-off: after an earlier switch-on, or running into it
                kinds["after_switch_on" if resumed else "before_switch_off"] += off_a - cursor
            kinds["switched_off"] += min(b, off_b) - max(cursor, off_a)
            cursor, resumed = min(b, off_b), True
        if cursor < b:  # still no frame past the grace after a switch-on, or a gap with no switch at all
            kinds["after_switch_on" if resumed else "unannounced"] += b - cursor
    return kinds


def freezes(records: list[dict[str, Any]], start: float, end: float) -> tuple[float, float]:
    """Return (stall, announced) freeze seconds of the video tracks over [start, end] (see `freeze_kinds`)."""
    kinds = freeze_kinds(records, start, end)
    return sum(v for k, v in kinds.items() if k != "switched_off"), kinds["switched_off"]


def noise_video(path: Path, *, width: int = 320, height: int = 240, fps: int = 15, seconds: float = 4.0) -> Path:
    """Write a video of a moving gradient under noise (an encoder needs its whole bitrate for it); return `path`."""
    import av
    import numpy as np

    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 4_000_000
        for index in range(int(seconds * fps)):
            # A moving gradient under light noise: every frame needs bits, keyframes stay camera-sized.
            x = (np.arange(width)[None, :, None] * 255 // width + index * 8) % 256
            y = np.arange(height)[:, None, None] * 255 // height
            base = ((x + y + np.array([0, 85, 170])) % 256).astype(np.int16)
            image = np.clip(base + rng.integers(-12, 12, (height, width, 3)), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
