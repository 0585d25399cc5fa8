"""Webhooks from a real `tvapp serve` to a real HTTP receiver on 127.0.0.1, with SDK participants.

Every event arrives once after de-duplication by id, in order per room, signed (tvapp.client.webhooks.verify);
a failing receiver gets the event on a retry while other rooms go on; a kill -9 of the core between enqueue
and delivery loses nothing; a room's status_callback gets its room's events; no secret reaches the log.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tvapp.client.rest import RestClient
from tvapp.client.webhooks import WebhookError, verify
from tvapp.protocol.messages import ParticipantLeft, Publish, TrackPublished, Unpublish
from tvapp.testing.aio import run
from tvapp.testing.rest import room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.signal_clients import connect
from tvapp.testing.waiting import wait_until, wait_until_async
from tvapp.testing.webhook_receiver import Received, WebhookReceiver

FAST = {"TVAPP_WEBHOOKS_BASE_DELAY": "0.05", "TVAPP_WEBHOOKS_MAX_DELAY": "0.2", "TVAPP_WEBHOOKS_TIMEOUT": "5"}


def room_events(items: list[Received], room: str) -> list[tuple[str, str | None]]:
    """Return (event, participant identity) of one room's deliveries, in arrival order."""
    return [(r.data["event"], (r.data.get("participant") or {}).get("identity"))
            for r in items if r.data["room"]["name"] == room]


async def a_session(srv: ServerProcess, room: str) -> None:
    """alice (host) and bob join; bob publishes, unpublishes and leaves; the room is completed."""
    alice = await connect(srv, room, "alice", host=True)
    bob = await connect(srv, room, "bob")
    await bob.send(Publish(cid="c1", kind="audio", source="microphone"))
    track = (await bob.wait_for(TrackPublished)).track.sid
    await bob.send(Unpublish(track_sid=track))
    await bob.close()
    await alice.wait_for(ParticipantLeft)
    srv.http.post(f"/v1/rooms/{room}/complete").raise_for_status()
    await alice.wait_closed()


EXPECTED = [("room_started", None), ("participant_joined", "alice"), ("participant_joined", "bob"),
            ("track_published", "bob"), ("track_unpublished", "bob"), ("participant_left", "bob"),
            ("participant_left", "alice"), ("room_finished", None)]


def test_every_event_once_in_order_signed(make_server: Callable[..., ServerProcess]) -> None:
    with WebhookReceiver() as hooks, WebhookReceiver() as own:
        srv = make_server(TVAPP_WEBHOOKS_URLS=hooks.url + "/all", **FAST)
        rooms = [room_name(), room_name()]
        created = asyncio.run(RestClient(srv.url, api_key=srv.key).create_room(
            rooms[1], status_callback=own.url + "/mine"))
        assert created.name == rooms[1]

        async def both() -> None:
            await asyncio.gather(*(a_session(srv, room) for room in rooms))

        run(both())
        wait_until(lambda: len(hooks.delivered()) == 2 * len(EXPECTED), what="every event at the receiver")
        wait_until(lambda: len(own.delivered()) == len(EXPECTED), what="every event at the status_callback")
        key, secret = srv.key
        for room in rooms:
            assert room_events(hooks.delivered(), room) == EXPECTED
        assert room_events(own.delivered(), rooms[1]) == EXPECTED  # only its own room's events
        for item in hooks.snapshot() + own.snapshot():
            event = verify(item.body, item.authorization, key, secret)
            assert event.id.startswith("WH_") and item.content_type == "application/webhook+json"
            with pytest.raises(WebhookError):
                verify(item.body, item.authorization, key, "x" * len(secret))
        ids = [r.data["id"] for r in hooks.delivered()]
        assert len(set(ids)) == len(ids)
        published = next(r.data for r in hooks.delivered() if r.data["event"] == "track_published")
        assert published["track"]["kind"] == "audio" and published["participant"]["identity"] == "bob"
        finished = [r.data for r in hooks.delivered() if r.data["event"] == "room_finished"]
        assert {f["reason"] for f in finished} == {"completed_by_api"}
        log = "".join(srv.output)
        assert secret not in log and "Authorization" not in log


def test_a_failing_head_is_retried_and_blocks_only_its_room(make_server: Callable[..., ServerProcess]) -> None:
    failing = room_name()
    others_done = threading.Event()
    failures: list[bytes] = []

    def answer(path: str, body: bytes) -> int:
        if failing.encode() in body and len(failures) < 3:
            failures.append(body)
            if len(failures) == 3:
                others_done.wait(30)  # the third failure is held until the other room's events all arrived
            return 500
        return 200

    with WebhookReceiver(answer) as hooks:
        srv = make_server(TVAPP_WEBHOOKS_URLS=hooks.url, **FAST)
        run(a_session(srv, failing))
        wait_until(lambda: len(failures) == 3, what="three failed attempts")
        other = room_name()
        run(a_session(srv, other))
        wait_until(lambda: len(room_events(hooks.delivered(), other)) == len(EXPECTED), what="the other room")
        assert room_events(hooks.delivered(), failing) == []  # its head failed: its later events wait
        others_done.set()
        wait_until(lambda: len(room_events(hooks.delivered(), failing)) == len(EXPECTED), what="the failing room")
        assert room_events(hooks.delivered(), failing) == EXPECTED
        first = [r for r in hooks.snapshot() if failing.encode() in r.body][:4]
        assert [r.status for r in first] == [500, 500, 500, 200]
        assert len({r.data["id"] for r in first}) == 1  # the same event, retried


def queued(data_dir: Path) -> int:
    with sqlite3.connect(f"file:{data_dir / 'tvapp.db'}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM webhook_queue").fetchone()[0])


def test_a_core_killed_before_delivery_loses_nothing(tmp_path: Path) -> None:
    up = threading.Event()
    with WebhookReceiver(lambda path, body: 200 if up.is_set() else 503) as hooks:
        env = {"TVAPP_WEBHOOKS_URLS": hooks.url, **FAST}
        room = room_name()
        still = room_name()
        with ServerProcess(tmp_path, env=env, log_level="debug") as srv:
            secret = srv.key[1]
            run(a_session(srv, room))

            async def killed_while_connected() -> None:
                zed = await connect(srv, still, "zed", host=True)
                await wait_until_async(lambda: queued(tmp_path) == len(EXPECTED) + 2, what="every event queued")
                await asyncio.to_thread(srv.kill)
                await zed.close()

            wait_until(lambda: len(hooks.snapshot()) >= 2, what="delivery attempts")
            run(killed_while_connected())
        assert hooks.delivered() == []
        up.set()
        with ServerProcess(tmp_path, env=env, log_level="debug") as again:
            total = len(EXPECTED) + 3  # and zed: room_started, participant_joined, participant_left at restart
            wait_until(lambda: len(hooks.delivered()) == total, what="every event after the restart")
            assert room_events(hooks.delivered(), room) == EXPECTED
            assert room_events(hooks.delivered(), still) == [("room_started", None), ("participant_joined", "zed"),
                                                             ("participant_left", "zed")]
            zed_left = [r.data for r in hooks.delivered() if r.data["room"]["name"] == still][-1]
            assert zed_left["reason"] == "server_restart"
            wait_until(lambda: queued(tmp_path) == 0, what="an empty queue")
            log = "".join(srv.output) + "".join(again.output)
            assert "failed (HTTP 503)" in log  # the retries were logged at this level
            assert secret not in log and "Authorization" not in log
            assert not any(r.authorization in log for r in hooks.snapshot())


def test_given_up_after_max_attempts(make_server: Callable[..., ServerProcess]) -> None:
    with WebhookReceiver(lambda path, body: 500) as hooks:
        srv = make_server(TVAPP_WEBHOOKS_URLS=hooks.url, TVAPP_WEBHOOKS_MAX_ATTEMPTS="3", **FAST)
        srv.http.post("/v1/rooms", json={"name": room_name()}).raise_for_status()

        async def join() -> None:
            room = room_name()
            client = await connect(srv, room, "alice", host=True)
            await client.close()

        run(join())
        # room_started, participant_joined, participant_left: 3 attempts each, then the queue is empty
        wait_until(lambda: queued(srv.data_dir) == 0 and len(hooks.snapshot()) == 9, what="three tries of each")
        assert [r.data["event"] for r in hooks.snapshot()] == ["room_started"] * 3 + ["participant_joined"] * 3 + [
            "participant_left"] * 3


@pytest.mark.parametrize("callback", ["ftp://x/", "https://u:p@example.org/", "https://example.org/" + "x" * 2100,
                                      "not a url"])
def test_bad_status_callback_is_refused(server: ServerProcess, callback: str) -> None:
    response = server.http.post("/v1/rooms", json={"name": room_name(), "status_callback": callback})
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("invalid_callback", "invalid_request")
    assert "u:p" not in response.text


def test_a_receiver_slower_than_the_timeout_counts_as_failed(make_server: Callable[..., ServerProcess]) -> None:
    release = threading.Event()
    calls: list[int] = []

    def answer(path: str, body: bytes) -> int:
        calls.append(1)
        if len(calls) == 1:
            release.wait(30)  # the first attempt hangs until the test ends it
        return 200

    with WebhookReceiver(answer) as hooks:
        srv = make_server(TVAPP_WEBHOOKS_URLS=hooks.url, **{**FAST, "TVAPP_WEBHOOKS_TIMEOUT": "0.5"})

        async def join() -> None:
            client = await connect(srv, room_name(), "alice", host=True)
            await client.close()

        run(join())
        wait_until(lambda: len(calls) >= 2, what="a second attempt while the first still hangs")
        assert not release.is_set()
        release.set()
        wait_until(lambda: [r.data["event"] for r in hooks.delivered()] == [
            "room_started", "participant_joined", "participant_left"], what="every event")
