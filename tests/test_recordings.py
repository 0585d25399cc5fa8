"""Recordings with real parts: a real core records two real `tvapp bot` SDK participants (pattern + tone);
ffprobe and ffmpeg (Debian) read every file; kill -9 of the core mid-recording leaves files the restart finishes;
a tiny quota fails a recording cleanly while the call goes on."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tvapp.client.webhooks import verify
from tvapp.testing.bots import BotProcess as Bot
from tvapp.testing.rest import create_room, media_token, recordings, room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until, wait_until_async
from tvapp.testing.webhook_receiver import WebhookReceiver

MEDIA_ENV = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1"}


@pytest.fixture
def bots() -> Iterator[Callable[[ServerProcess, str, str, str], Bot]]:
    started: list[Bot] = []

    def start(server: ServerProcess, room: str, identity: str, color: str) -> Bot:
        bot = Bot(server, room, identity, color)
        started.append(bot)
        return bot

    yield start
    for bot in started:
        bot.stop()


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,codec_type:format=duration",
                          "-of", "json", str(path)], capture_output=True, text=True, timeout=30, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def decode_errors(path: Path) -> str:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True,
                         text=True, timeout=60, check=False)
    return out.stderr.strip() + ("" if out.returncode == 0 else f" (exit {out.returncode})")


def check_file(server: ServerProcess, row: dict[str, Any]) -> Path:
    """Download the recording through the API and check it with ffprobe and ffmpeg; return the local copy."""
    answer = server.http.get(f"/v1/recordings/{row['sid']}/media")
    assert answer.status_code == 200, answer.text
    assert len(answer.content) == row["size"] > 0
    local = server.data_dir / f"download-{row['sid']}.{row['container']}"
    local.write_bytes(answer.content)
    info = probe(local)
    assert [s["codec_name"] for s in info["streams"]] == [row["codec"]]
    assert info["streams"][0]["codec_type"] == row["type"]
    assert abs(float(info["format"]["duration"]) - row["duration"]) <= 0.5, (info, row)
    assert decode_errors(local) == ""
    return local


def test_a_recorded_room_of_two_bots_gives_one_playable_file_per_track(
        make_server: Callable[..., ServerProcess], bots: Callable[..., Bot]) -> None:
    hooks = WebhookReceiver().__enter__()
    server = make_server(**MEDIA_ENV, TVAPP_WEBHOOKS_URLS=hooks.url, TVAPP_WEBHOOKS_BASE_DELAY="0.05")
    name = room_name("rec")
    room = create_room(server, name, record=True)
    assert server.http.get(f"/v1/rooms/{name}/recording").json() == {
        "room": name, "session": room["sid"], "recording": True}
    red, blue = bots(server, name, "red-bot", "red"), bots(server, name, "blue-bot", "blue")
    wait_until(lambda: red.published() == 2 and blue.published() == 2, 30, "both bots publishing")
    wait_until(lambda: len(rows := recordings(server, session=room["sid"])) == 4
               and all(r["duration"] >= 3.0 for r in rows), 40, "four recordings of 3 s")
    stopped = server.http.post(f"/v1/rooms/{name}/recording", json={"action": "stop"})
    assert stopped.status_code == 200 and stopped.json()["recording"] is False
    wait_until(lambda: all(r["status"] == "completed" for r in recordings(server, room=name)), 20, "completed")
    rows = recordings(server, room=name)
    assert sorted((r["participant"], r["type"], r["codec"], r["container"]) for r in rows) == [
        ("blue-bot", "audio", "opus", "mka"), ("blue-bot", "video", "vp8", "webm"),
        ("red-bot", "audio", "opus", "mka"), ("red-bot", "video", "vp8", "webm")]
    for row in rows:
        assert row["session"] == room["sid"] and row["room"] == name
        assert 0 <= row["offset"] < 30 and row["completed_at"] >= row["created_at"]
        check_file(server, row)
    # The two tracks of one bot start close together on the session's timeline (compositions rely on it).
    for who in ("red-bot", "blue-bot"):
        offsets = [r["offset"] for r in rows if r["participant"] == who]
        assert abs(offsets[0] - offsets[1]) < 2.0
    # The call went on while it was recorded and after: nothing the bots said was an error.
    assert not [line for bot in (red, blue) for line in bot.lines if line["event"] in ("disconnected", "error")]
    # Webhooks: each recording started and completed, signed, with the recording's row.
    try:
        def recording_events() -> list[tuple[str, str]]:
            return sorted((item.data["event"], item.data["recording"]["sid"]) for item in hooks.delivered()
                          if item.data["event"].startswith("recording_"))

        expected = sorted((event, r["sid"]) for r in rows for event in ("recording_started", "recording_completed"))
        wait_until(lambda: recording_events() == expected, 20, "recording_started/completed webhooks")
        key, secret = server.key
        for item in hooks.delivered():
            event = verify(item.body, item.authorization, key, secret)
            if event.event == "recording_completed":
                assert item.data["room"]["sid"] == room["sid"] and item.data["recording"]["status"] == "completed"
    finally:
        hooks.__exit__(None, None, None)


def test_kill_9_mid_recording_leaves_files_the_restart_finishes(
        tmp_path: Path, bots: Callable[..., Bot]) -> None:
    server = ServerProcess(tmp_path / "core", env=MEDIA_ENV).start()
    try:
        name = room_name("crash")
        create_room(server, name, record=True)
        bot = bots(server, name, "crash-bot", "green")
        wait_until(lambda: bot.published() == 2, 30, "the bot publishing")
        wait_until(lambda: len(rows := recordings(server, room=name)) == 2
                   and all(r["duration"] >= 3.0 for r in rows), 40, "two recordings of 3 s")
        before = {r["sid"]: r for r in recordings(server, room=name)}
        server.kill()
        bot.stop()
        files = sorted((tmp_path / "core" / "recordings").iterdir())
        assert len(files) == 2
        # What the kill left is already readable by ffprobe (Matroska written progressively).
        for path in files:
            assert probe(path)["streams"]
        server = ServerProcess(tmp_path / "core", env=MEDIA_ENV).start()
        rows = recordings(server, room=name)
        assert {r["sid"] for r in rows} == set(before)
        for row in rows:
            assert row["status"] == "completed", row
            assert row["reason"] == "recovered after the core stopped"
            assert row["duration"] >= before[row["sid"]]["duration"] - 1.5
            check_file(server, row)
    finally:
        server.stop()


def test_a_tiny_quota_fails_the_recording_cleanly_and_the_call_goes_on(
        make_server: Callable[..., ServerProcess], bots: Callable[..., Bot]) -> None:
    server = make_server(**MEDIA_ENV, TVAPP_RECORDINGS_QUOTA_BYTES="60000")
    name = room_name("quota")
    create_room(server, name, record=True)
    bot = bots(server, name, "quota-bot", "red")
    wait_until(lambda: bot.published() == 2, 30, "the bot publishing")
    wait_until(lambda: any(r["status"] == "failed" for r in recordings(server, room=name)), 40, "a failed recording")
    failed = [r for r in recordings(server, room=name) if r["status"] == "failed"]
    assert failed[0]["reason"].startswith("quota_exceeded")
    assert sum(r["size"] for r in recordings(server, room=name)) <= 60000 + 20000  # the container's own bytes
    # The call goes on: the bot is still in the room, publishing, and the room still answers.
    participants = server.http.get(f"/v1/rooms/{name}/participants").json()
    assert [p["identity"] for p in participants] == ["quota-bot"] and bot.proc.poll() is None
    assert not [line for line in bot.lines if line["event"] in ("disconnected", "error")]
    # What was written before the quota stopped it is a finished, playable file.
    for row in failed:
        if row["size"] > 0:
            assert probe(server.data_dir / "recordings" / f"{row['sid']}.{row['container']}")["streams"]


def test_h264_is_recorded_into_matroska_as_received(tmp_path: Path) -> None:
    """A bare aiortc publisher whose m-line the server pins to H.264 (as test_sfu's H.264 test)."""
    from aiortc.mediastreams import VideoStreamTrack

    from tvapp.client.sources import TestPatternTrack
    from tvapp.rtc import internals
    from tvapp.testing import aio
    from tvapp.testing.media_peer import MediaPeer

    env = {**MEDIA_ENV, "TVAPP_MEDIA_VIDEO_CODECS": "H264"}
    with ServerProcess(tmp_path / "core", env=env) as server:
        name = room_name("h264")
        create_room(server, name, record=True)

        async def scenario() -> None:
            alice = await MediaPeer.join(server.url, media_token(server, name, "alice"))
            pattern = TestPatternTrack(320, 240, 15)

            class Frames(VideoStreamTrack):  # aiortc encodes these itself, with the negotiated codec
                async def recv(self):  # type: ignore[no-untyped-def]
                    return await pattern.recv()

            await alice.publish("cam", Frames(), "camera")
            await wait_until_async(lambda: any(r["duration"] >= 3.0 for r in recordings(server, room=name)), 30,
                                   lambda: f"3 s of H.264 recorded: {recordings(server, room=name)}", interval=0.25)
            server.http.post(f"/v1/rooms/{name}/recording", json={"action": "stop"}).raise_for_status()
            await alice.close()

        internals.set_host_addresses(["127.0.0.1"])
        try:
            aio.run(scenario(), 60)
        finally:
            internals.set_host_addresses(None)
        wait_until(lambda: all(r["status"] == "completed" for r in recordings(server, room=name)), 20, "completed")
        (row,) = recordings(server, room=name)
        assert (row["codec"], row["container"], row["type"]) == ("h264", "mkv", "video")
        check_file(server, row)
