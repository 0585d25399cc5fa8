"""What README.md promises a stranger, checked on a real server: the error codes it names for REST filters.

README "Recordings": "A bad filter is 400 `invalid_filter`" (lists and bulk deletes alike); "Compositions":
`GET /v1/compositions` lists by `session`, `status`, `limit`.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tvapp.testing.server import ServerProcess


def code_of(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["error"]["code"]


def test_every_bad_recordings_filter_is_invalid_filter(server: ServerProcess) -> None:
    bad = ({"status": "done"}, {"type": "screen"}, {"session": "PA_x"}, {"room": "a/b"}, {"participant": "a b"},
           {"started_after": "soon"}, {"started_after": "20", "started_before": "10"}, {"started_before": "-1"},
           {"started_after": "nan"}, {"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"after": "RE_unknown"},
           {"rooom": "den"})
    for params in bad:
        assert code_of(server.http.get("/v1/recordings", params=params)) == (400, "invalid_filter"), params
    for params in ({"status": "gone"}, {"type": "screen"}, {"started_before": "later"}):
        assert code_of(server.http.delete("/v1/recordings", params=params)) == (400, "invalid_filter"), params


def test_good_recordings_filters_still_list(server: ServerProcess) -> None:
    answer = server.http.get("/v1/recordings", params={"status": "completed", "type": "audio", "limit": "5",
                                                        "started_after": "0", "started_before": "1e10"})
    assert answer.status_code == 200 and answer.json() == []
    assert server.http.delete("/v1/recordings", params={"type": "video"}).json() == {"deleted": 0, "skipped": 0}


def test_a_bad_compositions_filter_is_invalid_filter_too(server: ServerProcess) -> None:
    # README "Compositions": `GET /v1/compositions` lists by `session`, `status`, `limit`: a bad one is refused as a
    # recordings filter is (400 invalid_filter), not by the framework's generic invalid_request.
    for params in ({"status": "done"}, {"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}):
        assert code_of(server.http.get("/v1/compositions", params=params)) == (400, "invalid_filter"), params
    answer = server.http.get("/v1/compositions", params={"status": "completed", "limit": "5"})
    assert answer.status_code == 200 and answer.json() == []


def test_a_path_that_breaks_the_room_name_rule_is_400_invalid_room(server: ServerProcess) -> None:
    # README: "A room name is 1-64 letters, digits and `_ . : -`, not dots alone ...: anything else is 400
    # `invalid_room`" (in a path as in a body; a valid name that names no room stays 404 room_not_found).
    for ref in ("bad%20name", "%2E%2E", "a%0Ab", "x" * 65, "caf%C3%A9"):
        for method, path in (("GET", f"/v1/rooms/{ref}"), ("GET", f"/v1/rooms/{ref}/participants"),
                             ("POST", f"/v1/rooms/{ref}/complete"), ("GET", f"/v1/rooms/{ref}/playback")):
            answer = server.http.request(method, path)
            assert code_of(answer) == (400, "invalid_room"), (method, path, answer.text)
    assert code_of(server.http.get("/v1/rooms/" + "x" * 64)) == (404, "room_not_found")
    assert code_of(server.http.get("/v1/rooms/RM_nothere")) == (404, "room_not_found")


def test_a_throttled_redeem_answers_as_the_openapi_error_schema_says(make_server: Callable[..., ServerProcess]) -> None:
    # README: wrong invite codes from one address are throttled; OpenAPI: every error body is the Error schema.
    srv = make_server(TVAPP_INVITES_REDEEM_FAILURES="2")
    schema = srv.http.get("/v1/openapi.json").json()["components"]["schemas"]["Error"]
    anonymous = httpx.Client(base_url=srv.url, timeout=10)
    answers = [anonymous.post("/v1/invites/ZZZZ-ZZZZ/redeem", json={"identity": "g", "name": "G"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [404, 404, 429]
    throttled = answers[-1]
    assert throttled.json()["error"]["code"] == "too_many_attempts"
    assert int(throttled.headers["Retry-After"]) >= 1
    assert set(throttled.json()) == set(schema["properties"])
