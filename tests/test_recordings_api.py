"""/v1/recordings and /v1/rooms/{room}/recording on a real core with real recordings (one `tvapp bot`):
filters, pages, downloads with Range, deletion one by one and in bulk, auth, and every refusal as a JSON error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_recordings import MEDIA_ENV, Bot, recordings

from tvapp.client.rest import ApiError, Recording, RestClient
from tvapp.testing.rest import create_room, room_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.waiting import wait_until


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, Any]]]:
    """A core with one room session whose bot (audio + video) was recorded for 2 s, then stopped."""
    with ServerProcess(tmp_path_factory.mktemp("rec-api"), env=MEDIA_ENV) as server:
        name = room_name("api")
        room = create_room(server, name, record=True)
        bot = Bot(server, name, "api-bot", "red")
        try:
            wait_until(lambda: len(rows := recordings(server, room=name)) == 2
                       and all(r["duration"] >= 2.0 for r in rows), 40, "two recordings of 2 s")
            # While a recording is written it can be neither downloaded nor deleted.
            busy = recordings(server, room=name)[0]
            doc = server.http.get("/v1/openapi.json").json()["paths"]
            for method, answer in (("get", server.http.get(f"/v1/recordings/{busy['sid']}/media")),
                                   ("delete", server.http.delete(f"/v1/recordings/{busy['sid']}"))):
                assert answer.status_code == 409 and answer.json()["error"]["code"] == "recording_in_progress"
                path = "/v1/recordings/{sid}" + ("/media" if method == "get" else "")
                assert "409" in doc[path][method]["responses"]
            assert server.http.delete("/v1/recordings", params={"room": name}).json() == {"deleted": 0, "skipped": 2}
            server.http.post(f"/v1/rooms/{name}/recording", json={"action": "stop"}).raise_for_status()
            wait_until(lambda: all(r["status"] == "completed" for r in recordings(server, room=name)), 20)
        finally:
            bot.stop()
        yield server, room


def error_of(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body["error"]) == {"code", "message"}
    return str(body["error"]["code"])


def test_filters_select_and_pages_follow_each_other(recorded: tuple[ServerProcess, dict[str, Any]]) -> None:
    server, room = recorded
    rows = recordings(server, session=room["sid"])
    assert len(rows) == 2 and rows[0]["created_at"] >= rows[1]["created_at"]
    participant_sid = rows[0]["participant_sid"]
    assert [r["type"] for r in recordings(server, room=room["name"], type="audio")] == ["audio"]
    assert len(recordings(server, room=room["sid"])) == 2
    assert len(recordings(server, participant="api-bot")) == 2
    assert len(recordings(server, participant=participant_sid)) == 2
    assert len(recordings(server, status="completed", room=room["name"])) == 2
    assert recordings(server, status="failed", room=room["name"]) == []
    first = min(r["created_at"] for r in rows)
    assert len(recordings(server, started_after=str(first - 1), started_before=str(time.time()))) == 2
    assert recordings(server, started_after=str(time.time() + 60)) == []
    assert recordings(server, participant="nobody") == []
    page = server.http.get("/v1/recordings", params={"limit": 1})
    assert page.status_code == 200 and len(page.json()) == 1
    after = page.headers["X-Next-After"]
    rest = server.http.get("/v1/recordings", params={"limit": 1, "after": after}).json()
    assert [r["sid"] for r in rest] == [rows[1]["sid"]] and after == rows[0]["sid"]
    last = server.http.get("/v1/recordings", params={"limit": 1, "after": rest[0]["sid"]})
    assert last.json() == [] and "X-Next-After" not in last.headers


def test_bad_filters_and_limits_are_400(recorded: tuple[ServerProcess, dict[str, Any]]) -> None:
    server, _ = recorded
    for params in ({"status": "done"}, {"type": "screen"}, {"session": "PA_x"}, {"room": "a/b"},
                   {"room": "x" * 65}, {"participant": "a b"}, {"started_after": "soon"},
                   {"started_after": "20", "started_before": "10"}, {"started_before": "-1"}, {"limit": "0"},
                   {"limit": "1001"}, {"limit": "ten"}, {"after": "RE_unknown"}, {"after": "x" * 65},
                   {"rooom": "den"}):
        code = error_of(server.http.get("/v1/recordings", params=params), 400)
        assert code in ("invalid_filter", "invalid_request"), (params, code)
    assert error_of(server.http.delete("/v1/recordings"), 400) == "filter_required"
    assert error_of(server.http.delete("/v1/recordings", params={"limit": "5", "type": "audio"}), 400) == \
        "invalid_filter"
    assert error_of(server.http.delete("/v1/recordings", params={"status": "gone"}), 400) in (
        "invalid_filter", "invalid_request")


def test_unknown_sids_are_404(recorded: tuple[ServerProcess, dict[str, Any]]) -> None:
    server, _ = recorded
    for sid in ("RE_nothere", "nothing", "RE_..", "RE_" + "x" * 61, "..%2F..%2Fkeys.json"):
        for answer in (server.http.get(f"/v1/recordings/{sid}"), server.http.get(f"/v1/recordings/{sid}/media"),
                       server.http.delete(f"/v1/recordings/{sid}")):
            assert error_of(answer, 404) in ("recording_not_found", "not_found"), (sid, answer.text)
    long = "RE_" + "x" * 70
    assert error_of(server.http.get(f"/v1/recordings/{long}"), 400) == "invalid_request"


def test_downloads_serve_byte_ranges(recorded: tuple[ServerProcess, dict[str, Any]]) -> None:
    server, room = recorded
    row = recordings(server, room=room["name"], type="video")[0]
    whole = server.http.get(f"/v1/recordings/{row['sid']}/media")
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "video/webm" and len(whole.content) == row["size"]
    assert whole.content == (server.data_dir / "recordings" / f"{row['sid']}.webm").read_bytes()
    size = row["size"]
    for header, start, end in (("bytes=0-9", 0, 9), ("bytes=10-", 10, size - 1), ("bytes=-16", size - 16, size - 1),
                               (f"bytes={size - 1}-{size + 100}", size - 1, size - 1)):
        part = server.http.get(f"/v1/recordings/{row['sid']}/media", headers={"Range": header})
        assert part.status_code == 206, header
        assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert part.content == whole.content[start:end + 1]
    for header in (f"bytes={size}-", "bytes=9-3", "bytes=0-1,4-5", "lines=0-3", "bytes=-0", "bytes=x-"):
        answer = server.http.get(f"/v1/recordings/{row['sid']}/media", headers={"Range": header})
        assert error_of(answer, 416) == "range_not_satisfiable", header
        assert "416" in server.http.get("/v1/openapi.json").json()["paths"]["/v1/recordings/{sid}/media"]["get"][
            "responses"]
        assert answer.headers["content-range"] == f"bytes */{size}"


def test_auth_follows_the_room_rules(recorded: tuple[ServerProcess, dict[str, Any]]) -> None:
    server, room = recorded
    sid = recordings(server, room=room["name"])[0]["sid"]
    anonymous = httpx.Client(base_url=server.url, timeout=10)
    assert error_of(anonymous.get("/v1/recordings"), 401) == "unauthorized"
    assert error_of(anonymous.get(f"/v1/recordings/{sid}/media"), 401) == "unauthorized"
    host = server.token(room["name"], "host-1", host=True)["access_token"]
    guest = server.token(room["name"], "guest-1")["access_token"]
    other_room = create_room(server, room_name("other"))
    stranger = server.token(other_room["name"], "host-2", host=True)["access_token"]
    as_host = {"Authorization": f"Bearer {host}"}
    assert anonymous.get(f"/v1/recordings/{sid}", headers=as_host).json()["sid"] == sid
    assert anonymous.get(f"/v1/recordings/{sid}/media", headers=as_host).status_code == 200
    assert anonymous.get(f"/v1/rooms/{room['name']}/recording", headers=as_host).json()["recording"] is False
    assert error_of(anonymous.get("/v1/recordings", headers=as_host), 403) == "key_required"
    assert error_of(anonymous.delete("/v1/recordings", params={"type": "audio"}, headers=as_host), 403) == \
        "key_required"
    assert error_of(anonymous.get(f"/v1/recordings/{sid}", headers={"Authorization": f"Bearer {guest}"}),
                    403) == "not_host"
    assert error_of(anonymous.get(f"/v1/recordings/{sid}", headers={"Authorization": f"Bearer {stranger}"}),
                    403) == "wrong_room"
    assert error_of(anonymous.delete(f"/v1/recordings/{sid}", headers={"Authorization": f"Bearer {stranger}"}),
                    403) == "wrong_room"


def test_the_room_switch_refuses_bad_input(recorded: tuple[ServerProcess, dict[str, Any]]) -> None:
    server, _ = recorded
    fresh = create_room(server, room_name("switch"))
    path = f"/v1/rooms/{fresh['name']}/recording"
    for body in ({"action": "pause"}, {}, {"action": "start", "extra": 1}, {"action": 1}):
        assert error_of(server.http.post(path, json=body), 400) == "invalid_request"
    assert error_of(server.http.post("/v1/rooms/no-such-room/recording", json={"action": "start"}), 404) == \
        "room_not_found"
    assert server.http.post(path, json={"action": "start"}).json() == {
        "room": fresh["name"], "session": fresh["sid"], "recording": True}
    server.http.post(f"/v1/rooms/{fresh['name']}/complete").raise_for_status()
    assert error_of(server.http.post(f"/v1/rooms/{fresh['sid']}/recording", json={"action": "stop"}), 410) == \
        "room_completed"
    assert error_of(server.http.post("/v1/rooms", json={"name": room_name("r"), "record": "yes"}), 400) == \
        "invalid_request"


def test_the_sdk_helpers_list_get_download_and_refuse_like_the_api(
        recorded: tuple[ServerProcess, dict[str, Any]]) -> None:
    server, room = recorded

    async def scenario() -> None:
        api = RestClient(server.url, api_key=server.key)
        listed = await api.list_recordings(room=room["name"], type="audio")
        assert len(listed) == 1 and isinstance(listed[0], Recording) and listed[0].codec == "opus"
        page = await api.list_recordings(limit=1)
        assert len(page) == 1 and len(await api.list_recordings(limit=1, after=page[0].sid)) == 1
        one = await api.get_recording(listed[0].sid)
        assert one == listed[0]
        whole = await api.download_recording(one.sid)
        assert len(whole) == one.size
        assert await api.download_recording(one.sid, start=4, end=11) == whole[4:12]
        assert await api.download_recording(one.sid, start=one.size - 5) == whole[-5:]
        fresh = await api.create_room(room_name("sdk"), record=True)
        assert server.http.get(f"/v1/rooms/{fresh.sid}/recording").json()["recording"] is True
        assert await api.set_recording(fresh.name, False) is False
        for call, code in ((api.get_recording("RE_nothere"), "recording_not_found"),
                           (api.delete_recordings(), "filter_required"),
                           (api.list_recordings(status="done"), "invalid_filter"),
                           (api.download_recording(one.sid, start=one.size), "range_not_satisfiable")):
            with pytest.raises(ApiError) as caught:
                await call
            assert caught.value.code == code

    asyncio.run(scenario())


def test_deleting_removes_the_file_and_keeps_the_row_as_deleted(
        recorded: tuple[ServerProcess, dict[str, Any]]) -> None:
    server, room = recorded
    rows = {r["type"]: r for r in recordings(server, room=room["name"])}
    folder = Path(server.data_dir) / "recordings"
    bulk = server.http.delete("/v1/recordings", params={"room": room["name"], "type": "video"})
    assert bulk.status_code == 200 and bulk.json() == {"deleted": 1, "skipped": 0}
    video = server.http.get(f"/v1/recordings/{rows['video']['sid']}").json()
    assert video["status"] == "deleted" and not (folder / f"{video['sid']}.webm").exists()
    assert error_of(server.http.get(f"/v1/recordings/{video['sid']}/media"), 410) == "recording_deleted"
    audio = rows["audio"]["sid"]
    assert server.http.delete(f"/v1/recordings/{audio}").status_code == 204
    assert server.http.delete(f"/v1/recordings/{audio}").status_code == 204  # already deleted: still 204
    assert not (folder / f"{audio}.mka").exists()
    assert {r["status"] for r in recordings(server, room=room["name"])} == {"deleted"}
    assert server.http.delete("/v1/recordings", params={"room": room["name"]}).json() == {"deleted": 0, "skipped": 0}
