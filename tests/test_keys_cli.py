"""The `tvapp keys` and `tvapp token` commands as real subprocesses, checked against a running server."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from security_helpers import assert_error, assert_refused_join, bearer, call, join, run_cli

from tvapp.testing.server import ServerProcess


def create_key(data: Path) -> dict[str, str]:
    """Run `tvapp keys create --json` and return its {"id", "secret"}."""
    done = run_cli("keys", "create", "--json", data=data)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    key = json.loads(lines[0])
    assert set(key) == {"id", "secret"}
    return key  # type: ignore[no-any-return]


def test_keys_create_prints_a_key_that_works_for_basic_auth(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server()
    key = create_key(srv.data_dir)
    assert key["id"].startswith("AK") and len(key["secret"]) >= 32
    response = httpx.get(srv.url + "/v1/rooms", auth=(key["id"], key["secret"]))
    assert response.status_code == 200, response.text
    wrong = httpx.get(srv.url + "/v1/rooms", auth=(key["id"], key["secret"] + "x"))
    assert_error(wrong, 401, "invalid_credentials")


def test_keys_create_makes_distinct_keys(tmp_path: Path) -> None:
    first, second = create_key(tmp_path / "data"), create_key(tmp_path / "data")
    assert first["id"] != second["id"] and first["secret"] != second["secret"]


def test_keys_create_without_json_shows_the_secret_once(tmp_path: Path) -> None:
    done = run_cli("keys", "create", data=tmp_path)
    assert done.returncode == 0, done.stderr
    stored = json.loads((tmp_path / "keys.json").read_text())["keys"]
    assert len(stored) == 1
    assert done.stdout.count(stored[0]["secret"]) == 1 and stored[0]["id"] in done.stdout


def test_keys_list_never_prints_secrets(tmp_path: Path) -> None:
    keys = [create_key(tmp_path) for _ in range(3)]
    revoked = run_cli("keys", "revoke", keys[1]["id"], data=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    listed = run_cli("keys", "list", data=tmp_path)
    assert listed.returncode == 0, listed.stderr
    for key in keys:
        assert key["id"] in listed.stdout
        assert key["secret"] not in listed.stdout and key["secret"] not in listed.stderr
        assert key["secret"][:12] not in listed.stdout
    revoked_line = next(line for line in listed.stdout.splitlines() if keys[1]["id"] in line)
    assert "revoked" in revoked_line
    active_line = next(line for line in listed.stdout.splitlines() if keys[0]["id"] in line)
    assert "active" in active_line


def test_keys_list_on_an_empty_data_dir(tmp_path: Path) -> None:
    listed = run_cli("keys", "list", data=tmp_path / "empty")
    assert listed.returncode == 0, listed.stderr
    assert "no keys" in listed.stdout


def test_keys_revoke_stops_basic_auth_and_tokens_on_a_live_server(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server()
    key = create_key(srv.data_dir)
    auth = (key["id"], key["secret"])
    issued = httpx.post(srv.url + "/v1/tokens", auth=auth,
                        json={"room": "cli-room", "identity": "cli-host", "grants": {"host": True}})
    assert issued.status_code == 201, issued.text
    pair = issued.json()
    first, _ = join(srv.url, pair["access_token"])
    assert first["type"] == "joined"

    revoked = run_cli("keys", "revoke", key["id"], data=srv.data_dir)
    assert revoked.returncode == 0 and key["id"] in revoked.stdout, revoked.stderr
    assert srv.proc is not None and srv.proc.poll() is None  # the server kept running and re-read the store

    assert_error(httpx.get(srv.url + "/v1/rooms", auth=auth), 401, "invalid_credentials")
    assert_error(httpx.post(srv.url + "/v1/tokens", auth=auth, json={"room": "cli-room", "identity": "x"}),
                 401, "invalid_credentials")
    assert_refused_join(srv.url, pair["access_token"], "invalid_token")
    assert_error(httpx.get(srv.url + "/v1/rooms/cli-room", headers=bearer(pair["access_token"])),
                 401, "invalid_token")
    assert_error(call(srv.url, "POST", "/v1/tokens/refresh", json={"refresh_token": pair["refresh_token"]}),
                 401, "invalid_token")
    assert srv.http.get("/v1/rooms").status_code == 200  # the first key still works


def test_keys_revoke_unknown_id_fails(tmp_path: Path) -> None:
    create_key(tmp_path)
    done = run_cli("keys", "revoke", "AKnosuchkey", data=tmp_path)
    assert done.returncode == 1
    assert "AKnosuchkey" in done.stderr and not done.stdout


def test_keys_revoke_twice_keeps_the_first_revocation_time(tmp_path: Path) -> None:
    key = create_key(tmp_path)
    assert run_cli("keys", "revoke", key["id"], data=tmp_path).returncode == 0
    first = json.loads((tmp_path / "keys.json").read_text())["keys"][0]["revoked_at"]
    assert run_cli("keys", "revoke", key["id"], data=tmp_path).returncode == 0
    assert json.loads((tmp_path / "keys.json").read_text())["keys"][0]["revoked_at"] == first


def test_key_store_and_data_dir_modes_from_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    create_key(data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "keys.json").stat().st_mode) == 0o600
    create_key(data)  # rewriting the store keeps the mode
    assert stat.S_IMODE((data / "keys.json").stat().st_mode) == 0o600


def test_key_store_and_data_dir_modes_from_serve(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server()
    assert stat.S_IMODE(srv.data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((srv.data_dir / "keys.json").stat().st_mode) == 0o600


def test_data_dir_created_by_serve_is_0700(tmp_path: Path) -> None:
    data = tmp_path / "made-by-serve"
    with ServerProcess(data):
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert stat.S_IMODE((data / "keys.json").stat().st_mode) == 0o600


HELP_COMMANDS = [(), ("serve",), ("token",), ("keys",), ("keys", "list"), ("keys", "create"), ("keys", "revoke")]


@pytest.mark.parametrize("words", HELP_COMMANDS, ids=["tvapp", *(" ".join(w) for w in HELP_COMMANDS[1:])])
def test_help_exits_zero(words: tuple[str, ...]) -> None:
    done = run_cli(*words, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: tvapp") and not done.stderr


def test_no_command_prints_help_and_fails() -> None:
    done = run_cli()
    assert done.returncode == 2 and "usage: tvapp" in done.stdout


def test_token_command_prints_a_token_the_server_accepts(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server()
    done = run_cli("token", "--room", "cli-tok", "--identity", "cli-tv", "--host", data=srv.data_dir)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token.count(".") == 2 and "\n" not in token
    first, close_code = join(srv.url, token)
    assert first["type"] == "joined" and close_code is None
    assert first["room"]["name"] == "cli-tok" and first["participant"]["identity"] == "cli-tv"
    assert first["grants"]["host"] is True
    assert call(srv.url, "GET", "/v1/rooms/cli-tok/participants", token=token).status_code == 200


def test_token_command_json_output(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server()
    done = run_cli("token", "--room", "cli-json", "--identity", "cli-guest", "--ttl", "60", "--json",
                   data=srv.data_dir)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["room"] == "cli-json" and out["identity"] == "cli-guest" and out["key_id"] == srv.key[0]
    assert 0 < out["expires_at"] - time.time() <= 61
    # A guest token (no host grant) cannot open a room that does not exist yet.
    assert_refused_join(srv.url, out["token"], "room_not_found")


def test_token_from_another_data_dir_is_refused(make_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    srv = make_server()
    done = run_cli("token", "--room", "cli-other", "--identity", "stranger", "--host", data=tmp_path / "other")
    assert done.returncode == 0, done.stderr
    assert "created API key" in done.stderr
    assert_refused_join(srv.url, done.stdout.strip(), "invalid_token")


@pytest.mark.parametrize("ttl", ["999999", "0", "-5"])
def test_token_command_refuses_a_bad_ttl(tmp_path: Path, ttl: str) -> None:
    done = run_cli("token", "--room", "r", "--identity", "i", "--ttl", ttl, data=tmp_path)
    assert done.returncode == 2
    assert "--ttl" in done.stderr and "Traceback" not in done.stderr
    assert not done.stdout


@pytest.mark.parametrize("args", [("--room", "bad room!", "--identity", "i"), ("--room", "r", "--identity", "a b"),
                                  ("--room", "r", "--identity", "i", "--ttl", "soon"), ("--room", "r")])
def test_token_command_refuses_bad_arguments(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = run_cli("token", *args, data=tmp_path)
    assert done.returncode == 2, done.stdout
    assert done.stderr.strip() and "Traceback" not in done.stderr
    assert not done.stdout


def test_token_command_refuses_dots_as_a_room(tmp_path: Path) -> None:
    done = run_cli("token", "--room", "..", "--identity", "i", data=tmp_path)
    assert done.returncode == 2, done.stdout
    assert "not dots alone" in done.stderr and "Traceback" not in done.stderr
