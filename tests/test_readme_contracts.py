"""What README.md promises a stranger, checked on a real server: the error codes it names for REST filters.

README "Recordings": "A bad filter is 400 `invalid_filter`" (lists and bulk deletes alike); "Compositions":
`GET /v1/compositions` lists by `session`, `status`, `limit`.
"""

from __future__ import annotations

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
