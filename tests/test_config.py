"""Configuration: config/tvapp.toml documents exactly the built-in defaults, env overrides, errors that name
the key, and a program that runs without any config file."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tvapp import config
from tvapp.client.signaling import SignalClient
from tvapp.config import Config, ConfigError
from tvapp.testing.server import ServerProcess

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "config" / "tvapp.toml"


def sections() -> dict[str, type]:
    return {f.name: type(getattr(Config(), f.name)) for f in dataclasses.fields(Config)}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tvapp.toml"
    path.write_text(text)
    return path


def test_the_shipped_file_holds_exactly_the_built_in_defaults() -> None:
    assert config.load(SHIPPED, env={}) == Config()
    assert config.load(str(SHIPPED), env={}) == Config()


def test_every_key_is_in_the_shipped_file_with_a_comment_above_it() -> None:
    lines = SHIPPED.read_text().splitlines()
    section = ""
    documented: dict[tuple[str, str], bool] = {}
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
        elif stripped and not stripped.startswith("#") and "=" in stripped:
            key = stripped.split("=", 1)[0].strip()
            documented[(section, key)] = i > 0 and lines[i - 1].lstrip().startswith("#")
    expected = {(name, f.name) for name, cls in sections().items() for f in dataclasses.fields(cls)}
    assert set(documented) == expected
    assert [k for k, commented in documented.items() if not commented] == []


def test_no_file_means_the_defaults() -> None:
    assert config.load(None, env={}) == Config()
    cfg = Config()
    assert (cfg.rooms.max_participants, cfg.signal.idle_timeout, cfg.server.allowed_hosts) == (6, 30.0, ())


def test_environment_overrides(tmp_path: Path) -> None:
    cfg = config.load(None, env={"TVAPP_SIGNAL_IDLE_TIMEOUT": "5", "TVAPP_SERVER_ALLOWED_HOSTS": "a,b",
                                 "TVAPP_DATA": str(tmp_path / "data"), "TVAPP_SERVER_PORT": "9001",
                                 "TVAPP_ROOMS_REAPER_INTERVAL": "0.2"})
    assert cfg.signal.idle_timeout == 5.0 and isinstance(cfg.signal.idle_timeout, float)
    assert cfg.server.allowed_hosts == ("a", "b")
    assert cfg.server.data_dir == str(tmp_path / "data") and cfg.data_path() == tmp_path / "data"
    assert cfg.server.port == 9001 and cfg.rooms.reaper_interval == 0.2
    assert dataclasses.replace(cfg.signal, idle_timeout=30.0) == Config().signal  # nothing else moved
    assert config.load(None, env={"TVAPP_SERVER_ALLOWED_HOSTS": " tv.example.org , ,x "}).server.allowed_hosts == (
        "tv.example.org", "x")
    assert config.load(None, env={"TVAPP_SERVER_ALLOWED_HOSTS": ""}).server.allowed_hosts == ()


def test_environment_overrides_the_file_and_the_file_the_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, '[signal]\nidle_timeout = 12\nping_interval = 4\n[server]\nallowed_hosts = ["f"]\n'
                           'data_dir = "/from/file"\n')
    from_file = config.load(path, env={})
    assert (from_file.signal.idle_timeout, from_file.signal.ping_interval) == (12.0, 4.0)
    assert from_file.server.allowed_hosts == ("f",) and from_file.server.data_dir == "/from/file"
    both = config.load(path, env={"TVAPP_SIGNAL_IDLE_TIMEOUT": "3", "TVAPP_DATA": "/from/env"})
    assert (both.signal.idle_timeout, both.signal.ping_interval) == (3.0, 4.0)
    assert both.server.data_dir == "/from/env"
    assert config.load(None, env={"TVAPP_CONFIG": str(path)}).signal.idle_timeout == 12.0


def test_data_path_without_a_configured_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert Config().data_path() == tmp_path / "tvapp"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert Config().data_path() == Path.home() / ".local" / "share" / "tvapp"


@pytest.mark.parametrize("text, named", [
    ("[server]\nprot = 80\n", "prot"),
    ("[signal]\nidle_timeout = 5\nheartbeat = 1\n", "heartbeat"),
    ("[sever]\nport = 80\n", "sever"),
    ("[server]\nport = \"eighty\"\n", "port"),
    ("[server]\nport = 80.5\n", "port"),
    ("[server]\nport = true\n", "port"),
    ("[server]\nhost = 5\n", "host"),
    ("[server]\nallowed_hosts = [1, 2]\n", "allowed_hosts"),
    ("[auth]\nleeway = \"soon\"\n", "leeway"),
    ("[auth]\nleeway = false\n", "leeway"),
    ("[server]\nport = [80]\n", "port"),
    ("server = 5\n", "server"),
    ("server = 0\n", "server"),
    ("rooms = \"big\"\n", "rooms"),
])
def test_invalid_files_raise_config_error_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text), env={})
    assert named in str(caught.value)


@pytest.mark.parametrize("env, named", [
    ({"TVAPP_SIGNAL_IDLE_TIMEOUT": "soon"}, "idle_timeout"),
    ({"TVAPP_SERVER_PORT": "8800.5"}, "port"),
    ({"TVAPP_ROOMS_MAX_PARTICIPANTS": ""}, "max_participants"),
    ({"TVAPP_SERVER_MAX_HEADER_BYTES": "1023"}, "max_header_bytes"),
    ({"TVAPP_SERVER_HEADER_TIMEOUT": "0"}, "header_timeout"),
    ({"TVAPP_SERVER_BODY_TIMEOUT": "-1"}, "body_timeout"),
])
def test_invalid_environment_values_raise_config_error_naming_the_key(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(None, env=env)
    assert named in str(caught.value)


def test_a_missing_or_broken_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        config.load(missing, env={})
    assert str(missing) in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        config.load(None, env={"TVAPP_CONFIG": str(missing)})
    assert str(missing) in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, "[server\nport = 1\n"), env={})
    assert "TOML" in str(caught.value)


def test_serve_refuses_a_bad_config_with_a_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TVAPP_")}
    bad = write(tmp_path, "[signal]\nidle_timeout = \"soon\"\n")
    for extra in (["--config", str(bad)], ["--config", str(tmp_path / "missing.toml")]):
        done = subprocess.run([sys.executable, "-m", "tvapp", "serve", "--port", "0", "--data", str(tmp_path / "d"),
                               *extra], capture_output=True, text=True, timeout=30, env=env, cwd=REPO)
        assert done.returncode == 2, done
        assert done.stderr.startswith("tvapp: ") and "Traceback" not in done.stderr
    assert "idle_timeout" in subprocess.run(
        [sys.executable, "-m", "tvapp", "serve", "--port", "0", "--config", str(bad)],
        capture_output=True, text=True, timeout=30, env=env, cwd=REPO).stderr


def test_a_served_server_runs_with_no_config_file_and_built_in_defaults(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TVAPP_")}
    srv = ServerProcess(tmp_path / "data")
    srv.env = env | {"PYTHONUNBUFFERED": "1", "HOME": str(tmp_path / "home")}
    with srv:
        assert srv.proc is not None and "--config" not in srv.proc.args and "TVAPP_CONFIG" not in srv.env
        room = srv.http.post("/v1/rooms", json={"name": "defaults"}).json()
        assert (room["max_participants"], room["empty_timeout"]) == (6, 300)
        token = srv.token("defaults", "alice")["access_token"]

        async def join() -> tuple[float, float]:
            client = await SignalClient.connect(srv.url, token, heartbeat=False)
            await client.close()
            return client.joined.ping_interval, client.joined.idle_timeout

        assert asyncio.run(join()) == (10.0, 30.0)
        assert (tmp_path / "data" / "tvapp.db").exists()
        assert not (tmp_path / "home").exists()  # nothing looked for under HOME


def test_a_server_follows_tvapp_config(tmp_path: Path) -> None:
    path = write(tmp_path, "[rooms]\nmax_participants = 3\nempty_timeout = 7\n[signal]\nping_interval = 2.5\n")
    with ServerProcess(tmp_path / "data", env={"TVAPP_CONFIG": str(path)}) as srv:
        room = srv.http.post("/v1/rooms", json={"name": "configured"}).json()
        assert (room["max_participants"], room["empty_timeout"]) == (3, 7)
