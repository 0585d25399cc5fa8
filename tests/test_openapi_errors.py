"""/v1/openapi.json documents what the API answers: every error status of every route, one Error schema, no 422.

The document is read from a real server; then errors are provoked on that server and each one's status must be
documented for its operation.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tvapp.server.api.openapi import ROUTE_ERRORS
from tvapp.testing.server import ServerProcess

ERROR_REF = "#/components/schemas/Error"


@pytest.fixture(scope="module")
def doc(server: ServerProcess) -> dict[str, Any]:
    answer = httpx.get(server.url + "/v1/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def test_no_operation_documents_422_and_no_validation_schema_is_left(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        assert "422" not in op["responses"], f"{method} {path} documents 422"
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "ValidationError" not in doc["components"]["schemas"]


def test_every_error_answer_uses_the_error_schema(doc: dict[str, Any]) -> None:
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert set(error["properties"]["error"]["required"]) == {"code", "message"}
    for method, path, op in operations(doc):
        errors = {status: r for status, r in op["responses"].items() if int(status) >= 400}
        assert {"400", "403", "413", "500"} <= set(errors), f"{method} {path}: {sorted(errors)}"
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": ERROR_REF}, f"{method} {path} {status}"


def test_every_route_is_in_the_table(doc: dict[str, Any]) -> None:
    assert {(method, path) for method, path, _ in operations(doc)} == set(ROUTE_ERRORS)


def documented(doc: dict[str, Any], method: str, path: str, status: int) -> bool:
    return str(status) in doc["paths"][path][method]["responses"]


def test_errors_provoked_on_the_real_server_are_documented(server: ServerProcess, doc: dict[str, Any]) -> None:
    http = server.http
    anonymous = httpx.Client(base_url=server.url, timeout=10)
    http.post("/v1/rooms", json={"name": "oa-room"})
    guest = server.token("oa-room", "guest")["access_token"]  # no host grant
    bearer = {"Authorization": f"Bearer {guest}"}
    cases: list[tuple[str, str, httpx.Response]] = [
        ("post", "/v1/tokens", http.post("/v1/tokens", json={"room": "..", "identity": "a"})),
        ("post", "/v1/tokens", anonymous.post("/v1/tokens", json={"room": "r", "identity": "a"})),
        ("post", "/v1/tokens", http.post("/v1/tokens", content=b"x" * 70_000,
                                         headers={"content-type": "application/json"})),
        ("post", "/v1/tokens/refresh", anonymous.post("/v1/tokens/refresh", json={"refresh_token": "nope"})),
        ("post", "/v1/rooms", http.post("/v1/rooms", json={"name": "oa-room"})),
        ("get", "/v1/rooms", anonymous.get("/v1/rooms", headers=bearer)),
        ("get", "/v1/rooms/{room}", http.get("/v1/rooms/no-such-room")),
        ("get", "/v1/rooms/{room}", anonymous.get("/v1/rooms/oa-room", headers=bearer)),
        ("post", "/v1/invites/{code}/redeem", anonymous.post("/v1/invites/ABCD-EFGH/redeem",
                                                             json={"identity": "g", "name": "G"})),
        ("get", "/v1/rooms/{room}/participants/{identity}", http.get("/v1/rooms/oa-room/participants/nobody")),
        ("post", "/v1/rooms/{room}/playback", http.post("/v1/rooms/oa-room/playback", json={"action": "fly"})),
        ("get", "/v1/recordings", http.get("/v1/recordings", params={"status": "done"})),
        ("get", "/v1/recordings", anonymous.get("/v1/recordings", headers=bearer)),
        ("delete", "/v1/recordings", http.delete("/v1/recordings")),
        ("get", "/v1/recordings/{sid}", http.get("/v1/recordings/RE_nothere")),
        ("delete", "/v1/recordings/{sid}", http.delete("/v1/recordings/RE_nothere")),
        ("get", "/v1/recordings/{sid}/media", http.get("/v1/recordings/RE_nothere/media")),
        ("post", "/v1/compositions", http.post("/v1/compositions", json={"session": "RM_x", "layout": "mosaic"})),
        ("post", "/v1/compositions", http.post("/v1/compositions", json={"session": "RM_nothere"})),
        ("post", "/v1/compositions", anonymous.post("/v1/compositions", json={"session": "RM_x"}, headers=bearer)),
        ("get", "/v1/compositions", http.get("/v1/compositions", params={"status": "done"})),
        ("get", "/v1/compositions/{sid}", http.get("/v1/compositions/CJ_nothere")),
        ("delete", "/v1/compositions/{sid}", http.delete("/v1/compositions/CJ_nothere")),
        ("get", "/v1/compositions/{sid}/media", http.get("/v1/compositions/CJ_nothere/media")),
        ("get", "/v1/rooms/{room}/recording", http.get("/v1/rooms/no-such-room/recording")),
    ]
    session = http.get("/v1/rooms/oa-room").json()["sid"]
    act = "/v1/rooms/{room}/sessions/{session}/actions/{action}"
    search = "/v1/rooms/{room}/sessions/{session}/participants"
    cases += [
        ("post", "/v1/rooms", http.post("/v1/rooms", json={"name": "oa-cb", "status_callback": "ftp://x/"})),
        ("post", act, http.post("/v1/rooms/oa-room/sessions/RM_nope/actions/mute", json={"participants": "all"})),
        ("post", act, http.post(f"/v1/rooms/oa-room/sessions/{session}/actions/mute", json={"participants": []})),
        ("post", act, anonymous.post(f"/v1/rooms/oa-room/sessions/{session}/actions/end")),
        ("post", act, anonymous.post(f"/v1/rooms/oa-room/sessions/{session}/actions/end", headers=bearer)),
        ("get", search, http.get("/v1/rooms/oa-room/sessions/RM_nope/participants")),
        ("get", search, http.get(f"/v1/rooms/oa-room/sessions/{session}/participants?after=PA_nope")),
        ("get", search, anonymous.get(f"/v1/rooms/oa-room/sessions/{session}/participants")),
    ]
    http.post("/v1/rooms/oa-room/complete")
    cases.append(("get", "/v1/rooms/{room}/playback", http.get("/v1/rooms/oa-room/playback")))
    cases.append(("post", act, http.post(f"/v1/rooms/oa-room/sessions/{session}/actions/end")))
    cases.append(("post", "/v1/rooms/{room}/recording", http.post("/v1/rooms/oa-room/recording",
                                                                  json={"action": "start"})))
    statuses = set()
    for method, path, answer in cases:
        assert answer.status_code >= 400, (method, path, answer.text)
        assert set(answer.json()["error"]) == {"code", "message"}
        assert documented(doc, method, path, answer.status_code), (method, path, answer.status_code, answer.text)
        statuses.add(answer.status_code)
    assert {400, 401, 403, 404, 409, 410, 413} <= statuses


def test_every_json_success_answer_has_a_schema(server: ServerProcess, doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        for status, response in op["responses"].items():
            if not status.startswith("2") or status == "204" or path.endswith("/media"):
                continue
            schema = response["content"]["application/json"]["schema"]
            assert schema, f"{method} {path} {status}: no schema for its answer"
    health = httpx.get(server.url + "/healthz").json()
    assert set(health) == set(doc["components"]["schemas"]["HealthOut"]["properties"])


def test_headers_a_client_must_read_are_documented(doc: dict[str, Any]) -> None:
    # The next page of recordings is only named by X-Next-After; a throttled redeem says when to retry only in
    # Retry-After; a range answer's extent only in Content-Range.
    paths = doc["paths"]
    assert "X-Next-After" in paths["/v1/recordings"]["get"]["responses"]["200"]["headers"]
    assert "Retry-After" in paths["/v1/invites/{code}/redeem"]["post"]["responses"]["429"]["headers"]
    for path in ("/v1/recordings/{sid}/media", "/v1/compositions/{sid}/media"):
        assert "Content-Range" in paths[path]["get"]["responses"]["206"]["headers"]
