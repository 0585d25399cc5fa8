"""`tvapp bot` as a real subprocess against a real `tvapp serve`: JSON event lines, media an SDK room receives,
invites, clean exits on SIGTERM/SIGINT/removal/--duration, and one-line errors with exit codes 1-2."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from tvapp.cli import build_parser
from tvapp.client import ParticipantLeft, Room, RoomEvent, TrackSubscribed
from tvapp.client.stamp import read_stamp
from tvapp.testing.aio import runner
from tvapp.testing.media import audio_samples, dominant_frequency
from tvapp.testing.rest import room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until_async

LOOPBACK = ["127.0.0.1"]


run = runner(deadline=90)


def bot_env() -> dict[str, str]:
    return {**os.environ, "TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1", "PYTHONUNBUFFERED": "1"}


class Bot:
    """A `tvapp bot` subprocess whose stdout is read as JSON lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, *args: str) -> Bot:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tvapp", "bot", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=bot_env())
        return cls(proc)

    async def next(self, event: str, predicate: Callable[[dict[str, Any]], bool] = lambda o: True,
                   timeout: float = 20.0) -> dict[str, Any]:
        """Return the next line of `event` matching `predicate` (earlier lines of other events are kept)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError(f"the bot exited before {event}: {self.lines}")
                obj = json.loads(raw)
                assert isinstance(obj, dict) and isinstance(obj["event"], str) and isinstance(obj["t"], float)
                self.lines.append(obj)
                if obj["event"] == event and predicate(obj):
                    return obj

    async def finish(self, timeout: float = 15.0) -> tuple[int, str]:
        """Wait for the exit; return the status and stderr (stdout lines are collected)."""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        async with asyncio.timeout(timeout):
            rest, err = await self.proc.communicate()
        self.lines += [json.loads(line) for line in rest.decode().splitlines() if line.strip()]
        assert self.proc.returncode is not None
        return self.proc.returncode, err.decode()

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


async def collect(room: Room) -> list[RoomEvent]:
    seen: list[RoomEvent] = []
    room.on(RoomEvent, seen.append)
    return seen


async def wait_event(room: Room, cls: type[Any], predicate: Callable[[Any], bool] = lambda e: True) -> Any:
    return await room.wait_for(cls, predicate, timeout=20)


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tvapp", *args], capture_output=True, text=True, timeout=timeout,
                          env=bot_env())


# --- arguments ------------------------------------------------------------------------------------------------------


def test_bot_arguments() -> None:
    parser = build_parser()
    args = parser.parse_args(["bot", "--server", "http://h:1", "--token", "a.b.c"])
    assert (args.video, args.audio, args.subscribe, args.duration, args.invite) == ("pattern", "tone:440", False,
                                                                                     None, None)
    args = parser.parse_args(["bot", "--server", "http://h:1", "--invite", "ABCD-EFGH", "--name", "Demo",
                              "--video", "none", "--audio", "tone:523", "--room", "r", "--subscribe"])
    assert (args.invite, args.name, args.video, args.audio, args.room, args.subscribe) == (
        "ABCD-EFGH", "Demo", "none", "tone:523", "r", True)
    for bad in (["bot", "--token", "a.b.c"], ["bot", "--server", "http://h:1"],
                ["bot", "--server", "http://h:1", "--token", "a.b.c", "--invite", "X"]):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(bad)
        assert exited.value.code == 2


def test_help_and_argument_errors_exit_without_a_traceback() -> None:
    shown = cli("bot", "--help")
    assert shown.returncode == 0 and "--invite" in shown.stdout and "JSON" in shown.stdout
    for args, fragment in ((["--video", "/no/such/file.mp4"], "not 'pattern'"),
                           (["--audio", "tone:abc"], "not a frequency"),
                           (["--duration", "0"], "--duration"),
                           (["--token", "not-a-jwt"], "not an access token")):
        base = ["--token", "a.eyJpYXQiOjEsImV4cCI6Mn0.c"] if "--token" not in args else []
        result = cli("bot", "--server", "http://127.0.0.1:9", *base, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert fragment in result.stderr and "Traceback" not in result.stderr
        assert result.stdout == ""


# --- against a server -----------------------------------------------------------------------------------------------


def test_bot_publishes_pattern_and_tone_prints_events_and_leaves_on_sigterm(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        token = media_server.token(name, "bot-1", host=True, name="Bot One")["access_token"]
        bot = await Bot.start("--server", media_server.url, "--token", token, "--video", "pattern:320x240@30",
                              "--audio", "tone:440")
        try:
            connected = await bot.next("connected")
            assert connected["identity"] == "bot-1" and connected["room"] == name and connected["participants"] == []
            kinds = {(await bot.next("local_track_published"))["kind"] for _ in range(2)}
            assert kinds == {"audio", "video"}
            viewer = await Room.connect(media_server.url, media_server.token(name, "viewer")["access_token"],
                                        host_addresses=LOOPBACK)
            seen = await collect(viewer)
            joined = await bot.next("participant_joined")
            assert (joined["identity"], joined["participant_sid"]) == ("viewer", viewer.local_participant.sid)
            video = await wait_event(viewer, TrackSubscribed, lambda e: e.track.kind == "video")
            stamps = [read_stamp((await video.track.recv()).to_ndarray(format="rgb24")) for _ in range(20)]
            assert len([s for s in stamps if s is not None]) >= 18
            assert video.participant.identity == "bot-1" and video.publication.source == "camera"
            audio = next((e for e in seen if isinstance(e, TrackSubscribed) and e.track.kind == "audio"), None) \
                or await wait_event(viewer, TrackSubscribed, lambda e: e.track.kind == "audio")
            frames = [await audio.track.recv() for _ in range(75)][25:]
            assert abs(dominant_frequency(audio_samples(frames), frames[0].sample_rate) - 440.0) < 3
            await viewer.local_participant.send_data("hi bot", topic="chat")
            data = await bot.next("data_received")
            assert (data["payload"], data["topic"], data["identity"]) == ("hi bot", "chat", "viewer")
            bot.proc.send_signal(signal.SIGTERM)
            status, err = await bot.finish()
            assert status == 0, err
            assert bot.lines[-1]["event"] == "disconnected" and bot.lines[-1]["reason"] == "client_initiated"
            assert "Traceback" not in err
            left = await wait_until_async(lambda: [e for e in seen if isinstance(e, ParticipantLeft)], 5,
                                          "the bot to leave")
            assert [(e.participant.identity, e.reason) for e in left] == [("bot-1", "left")]
            await viewer.disconnect()
        finally:
            bot.kill()

    run(scenario())


def test_bot_joins_with_an_invite_and_leaves_on_sigint(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        assert media_server.http.post("/v1/rooms", json={"name": name}).status_code == 201
        invite = media_server.http.post(f"/v1/rooms/{name}/invites", json={})
        assert invite.status_code == 201, invite.text
        bot = await Bot.start("--server", media_server.url, "--invite", invite.json()["code"], "--name", "Demo Bot",
                              "--video", "none", "--audio", "none", "--room", name)
        try:
            connected = await bot.next("connected")
            assert connected["room"] == name and connected["identity"].startswith("bot-")
            listed = media_server.http.get(f"/v1/rooms/{name}/participants").json()
            assert [(p["identity"], p["name"], p["tracks"]) for p in listed] == [(connected["identity"], "Demo Bot", [])]
            bot.proc.send_signal(signal.SIGINT)
            status, err = await bot.finish()
            assert status == 0 and "Traceback" not in err
            assert bot.lines[-1] == {**bot.lines[-1], "event": "disconnected", "reason": "client_initiated"}
        finally:
            bot.kill()

    run(scenario())


def test_bot_exits_by_itself_when_removed_or_after_its_duration(media_server: ServerProcess) -> None:
    async def scenario() -> None:
        name = room_name()
        host = await Room.connect(media_server.url, media_server.token(name, "host", host=True)["access_token"],
                                  host_addresses=LOOPBACK)
        token = media_server.token(name, "kicked")["access_token"]
        bot = await Bot.start("--server", media_server.url, "--token", token, "--video", "none", "--audio", "tone:300")
        await bot.next("local_track_published")
        removed = await asyncio.to_thread(media_server.http.delete, f"/v1/rooms/{name}/participants/kicked")
        assert removed.status_code == 204
        status, err = await bot.finish()
        assert status == 0 and bot.lines[-1]["event"] == "disconnected" and bot.lines[-1]["reason"] == "removed"

        token = media_server.token(name, "brief")["access_token"]
        started = time.monotonic()
        bot = await Bot.start("--server", media_server.url, "--token", token, "--video", "none", "--audio", "none",
                              "--duration", "1")
        await bot.next("connected")
        status, err = await bot.finish()
        assert status == 0, err
        assert 1.0 <= time.monotonic() - started < 10
        assert bot.lines[-1]["reason"] == "client_initiated"
        await host.disconnect()

    run(scenario())


def test_bot_errors_are_one_line_with_exit_code_1_or_2(media_server: ServerProcess) -> None:
    name = room_name()
    bad_invite = cli("bot", "--server", media_server.url, "--invite", "ZZZZ-ZZZZ")
    assert bad_invite.returncode == 1
    assert "invite" in bad_invite.stderr and "invite_not_found" in bad_invite.stderr
    no_room = cli("bot", "--server", media_server.url, "--token", media_server.token(name, "x")["access_token"])
    assert no_room.returncode == 1 and "cannot join" in no_room.stderr and "room_not_found" in no_room.stderr
    token = media_server.token(name, "x", host=True)["access_token"]
    unreachable = cli("bot", "--server", "http://127.0.0.1:9", "--token", token)
    assert unreachable.returncode == 1 and "cannot reach the server at http://127.0.0.1:9" in unreachable.stderr
    other_room = cli("bot", "--server", media_server.url, "--token", token, "--room", "elsewhere")
    assert other_room.returncode == 2 and "not 'elsewhere'" in other_room.stderr
    bad_url = cli("bot", "--server", "ftp://127.0.0.1:9", "--token", token)
    assert bad_url.returncode == 2 and "not an http(s) URL" in bad_url.stderr
    for result in (bad_invite, no_room, unreachable, other_room, bad_url):
        assert "Traceback" not in result.stderr and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("tvapp bot: ")
