"""CORS for SDK pages on other origins (`[server] cors_origins`), over real HTTP and websockets against a real core.

A listed origin's preflight is answered (204, the API's methods, Authorization and Content-Type, no credentials),
its answers carry its origin in Access-Control-Allow-Origin and its websocket is accepted; any other origin's
preflight gets 403 bad_origin, its answers no CORS header and its websocket 403. The config refuses "*" and
anything that is not an origin. (tests/test_web_sdk.py shows a real Chromium page on another origin doing both.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tvapp.config import Config, ConfigError
from tvapp.config import load as load_config
from tvapp.server.app import create_app
from tvapp.testing.server import ServerProcess

LISTED = "http://127.0.0.1:4567"
ALSO_LISTED = "https://app.example.org"
OLD_NAME = "http://127.0.0.1:4999"  # listed under the older key, allowed_origins
STRANGER = "http://127.0.0.1:4568"
REFRESH = "/v1/tokens/refresh"


def preflight(url: str, origin: str, method: str = "POST", headers: str = "content-type") -> httpx.Response:
    return httpx.options(url, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                       "Access-Control-Request-Headers": headers})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"TVAPP_SERVER_CORS_ORIGINS": f"{LISTED}, {ALSO_LISTED}/", "TVAPP_SERVER_ALLOWED_ORIGINS": OLD_NAME}
    with ServerProcess(tmp_path_factory.mktemp("cors"), env=env) as srv:
        yield srv


def test_a_listed_origins_preflight_is_answered_with_the_apis_methods_and_headers(server: ServerProcess) -> None:
    for origin in (LISTED, ALSO_LISTED, OLD_NAME, LISTED.upper()):
        answer = preflight(server.url + REFRESH, origin, headers="authorization, content-type")
        assert answer.status_code == 204, (origin, answer.text)
        assert answer.headers["access-control-allow-origin"] == origin  # echoed, never "*"
        assert set(answer.headers["access-control-allow-methods"].split(", ")) >= {"GET", "POST", "DELETE"}
        assert answer.headers["access-control-allow-headers"] == "Authorization, Content-Type"
        assert answer.headers["access-control-max-age"] == "600"
        assert "Origin" in answer.headers["vary"]
        assert "access-control-allow-credentials" not in answer.headers
        assert answer.content == b""


def test_another_origins_preflight_is_refused_without_cors_headers(server: ServerProcess) -> None:
    for origin in (STRANGER, "null", "https://app.example.org.evil.example", "http://app.example.org"):
        answer = preflight(server.url + REFRESH, origin)
        assert answer.status_code == 403, origin
        assert answer.json()["error"]["code"] == "bad_origin"
        assert not any(name.startswith("access-control-") for name in answer.headers), answer.headers


def test_a_listed_origin_may_read_answers_and_refresh_a_token(server: ServerProcess) -> None:
    pair = server.token("cors-room", "page")
    answer = httpx.post(server.url + REFRESH, json={"refresh_token": pair["refresh_token"]},
                        headers={"Origin": LISTED})
    assert answer.status_code == 200, answer.text
    assert answer.json()["access_token"] != pair["access_token"]
    assert answer.headers["access-control-allow-origin"] == LISTED
    assert "Origin" in answer.headers["vary"]
    assert answer.headers["access-control-expose-headers"] == "Retry-After"
    refused = httpx.post(server.url + REFRESH, json={"refresh_token": "nonsense"}, headers={"Origin": LISTED})
    assert 400 <= refused.status_code < 500 and refused.json()["error"]["code"]
    assert refused.headers["access-control-allow-origin"] == LISTED  # the page can read why


def test_another_origin_gets_no_cors_headers_and_cannot_change_anything(server: ServerProcess) -> None:
    read = httpx.get(server.url + "/healthz", headers={"Origin": STRANGER})
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers
    write = httpx.post(server.url + REFRESH, json={"refresh_token": "x"}, headers={"Origin": STRANGER})
    assert write.status_code == 403 and write.json()["error"]["code"] == "bad_origin"
    assert "access-control-allow-origin" not in write.headers
    own = httpx.get(server.url + "/healthz", headers={"Origin": server.url})
    assert own.status_code == 200 and "access-control-allow-origin" not in own.headers  # same-origin needs none


def test_the_sdk_files_keep_their_single_star(server: ServerProcess) -> None:
    answer = httpx.get(server.url + "/sdk/tvapp.js", headers={"Origin": LISTED})
    assert answer.status_code == 200
    assert answer.headers.get_list("access-control-allow-origin") == ["*"]


def _signal_url(server: ServerProcess) -> str:
    return server.url.replace("http://", "ws://") + "/v1/signal"


def test_the_websocket_takes_the_same_list(server: ServerProcess) -> None:
    for origin in (LISTED, ALSO_LISTED, OLD_NAME):
        with connect(_signal_url(server), origin=origin, open_timeout=10) as ws:  # type: ignore[arg-type]
            assert ws.protocol.state.name == "OPEN"
    with pytest.raises(InvalidStatus) as refused:
        connect(_signal_url(server), origin=STRANGER, open_timeout=10)  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403


def test_by_default_only_the_cores_own_origin_is_let_in() -> None:
    asyncio.run(_default_config_preflights())


async def _default_config_preflights() -> None:
    """Ask an app made from the default config (the guard answers preflights before any route or the store)."""
    transport = httpx.ASGITransport(app=create_app(Config()))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8800") as client:
        other = await client.options(REFRESH, headers={"Origin": LISTED, "Access-Control-Request-Method": "POST"})
        assert other.status_code == 403 and other.json()["error"]["code"] == "bad_origin"
        own = await client.options(REFRESH, headers={"Origin": "http://127.0.0.1:8800",
                                                      "Access-Control-Request-Method": "POST"})
        assert own.status_code == 204 and own.headers["access-control-allow-origin"] == "http://127.0.0.1:8800"


@pytest.mark.parametrize("value", ["*", "app.example.org", "https://app.example.org/page", "ftp://app.example.org",
                                   "https://", "https://app.example.org:0", "https://app.example.org?x=1",
                                   "https://user@app.example.org", "https://app.example.org:99999"])
def test_the_config_refuses_a_star_or_anything_not_an_origin(tmp_path: Path, value: str) -> None:
    for key in ("cors_origins", "allowed_origins"):
        path = tmp_path / "tvapp.toml"
        path.write_text(f'[server]\n{key} = ["{value}"]\n')
        with pytest.raises(ConfigError, match=f"\\[server\\] {key}"):
            load_config(path, env={})


def test_the_config_merges_the_older_name(tmp_path: Path) -> None:
    path = tmp_path / "tvapp.toml"
    path.write_text('[server]\ncors_origins = ["https://a.example"]\nallowed_origins = ["https://b.example", '
                    '"https://a.example"]\n')
    loaded: Any = load_config(path, env={})
    assert loaded.server.origins == ("https://a.example", "https://b.example")
    assert Config().server.origins == ()


def test_the_openapi_document_describes_cors(server: ServerProcess) -> None:
    description = httpx.get(server.url + "/v1/openapi.json").json()["info"]["description"]
    assert "[server] cors_origins" in description and "Authorization, Content-Type" in description
    assert "403 bad_origin" in description
