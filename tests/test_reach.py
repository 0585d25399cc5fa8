"""TURN REST credentials, the reachability config keys, and `tvapp serve --check-reachability` through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tvapp import config as config_mod
from tvapp.auth.turn import turn_credentials
from tvapp.core.reach import (
    Reach,
    parse_announced,
    parse_port_range,
    parse_turn_url,
    reach_warnings,
)
from tvapp.testing.coturn import rest_credentials

SECRET = "turn-secret-Jb62nQ"


def test_credentials_follow_the_turn_rest_scheme() -> None:
    creds = turn_credentials(SECRET, "PA_x", now=1_800_000_000.7, ttl=600)
    assert creds.username == "1800000600:PA_x" and creds.expiry == 1_800_000_600
    assert (creds.username, creds.password) == rest_credentials(SECRET, "PA_x", 1_800_000_600)
    assert turn_credentials("other", "PA_x", now=1_800_000_000, ttl=600).password != creds.password
    assert SECRET not in creds.password and SECRET not in repr(creds)
    for secret, ttl in (("", 600), (SECRET, 0)):
        with pytest.raises(ValueError):
            turn_credentials(secret, "PA_x", now=0, ttl=ttl)


def test_turn_urls_port_ranges_and_announced_addresses_are_parsed_or_refused() -> None:
    assert parse_turn_url("turn:t.example:3479?transport=tcp") == parse_turn_url("turn:t.example:3479?transport=tcp")
    url = parse_turn_url("turns:t.example")
    assert (url.secure, url.host, url.port, url.transport) == (True, "t.example", 5349, "tcp")
    assert parse_turn_url("turn:[2001:db8::1]").port == 3478
    for bad in ("stun:t.example", "turns:t.example?transport=udp", "turn:t.example?foo=1", "turn:u@t.example",
                "turn:t.example:99999", "turn:"):
        with pytest.raises(ValueError):
            parse_turn_url(bad)
    assert parse_port_range("") is None and parse_port_range("50000-50100") == (50000, 50100)
    assert parse_port_range("50000") == (50000, 50000)
    for bad in ("100-200", "50100-50000", "a-b", "50000-70000"):
        with pytest.raises(ValueError):
            parse_port_range(bad)
    assert parse_announced((" 203.0.113.5", "2001:db8::0:1")) == ("203.0.113.5", "2001:db8::1")
    with pytest.raises(ValueError):
        parse_announced(("example.org",))


def test_config_refuses_bad_values_without_showing_the_secret() -> None:
    for env, message in (({"TVAPP_MEDIA_TURN_URLS": "stun:x"}, "not a turn: or turns: URL"),
                         ({"TVAPP_MEDIA_UDP_PORT_RANGE": "9-8"}, "port"),
                         ({"TVAPP_MEDIA_ANNOUNCED_ADDRESSES": "nope"}, "not an IP address"),
                         ({"TVAPP_MEDIA_TURN_TTL": "0"}, "turn_ttl"),
                         ({"TVAPP_MEDIA_SFU_USES_TURN": "true"}, "sfu_uses_turn needs turn_urls")):
        with pytest.raises(config_mod.ConfigError, match=message) as caught:
            config_mod.load(env={**env, "TVAPP_MEDIA_TURN_SECRET": SECRET})
        assert SECRET not in str(caught.value)
    cfg = config_mod.load(env={"TVAPP_MEDIA_TURN_SECRET": SECRET, "TVAPP_MEDIA_ICE_CREDENTIAL": SECRET + "2"})
    assert SECRET not in repr(cfg) and SECRET not in str(cfg.media)


def test_config_rejects_a_non_string_secret_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "tvapp.toml"
    path.write_text("[media]\nturn_secret = 918273645\n")
    with pytest.raises(config_mod.ConfigError, match="turn_secret must be of type str") as caught:
        config_mod.load(path, env={})
    assert "918273645" not in str(caught.value)


def reach(**changes: object) -> Reach:
    base: dict[str, object] = {
        "host_addresses": ("192.168.1.20",), "port_range": (50000, 50099), "announced": ("93.184.216.34",),
        "turn_urls": (), "turn_secret_set": False, "static_ice_servers": (), "max_participants": 6,
        "expect_public": True}
    return Reach(**{**base, **changes})  # type: ignore[arg-type]


def test_reachability_warnings() -> None:
    assert reach_warnings(reach()) == []
    assert "only loopback" in reach_warnings(reach(host_addresses=("127.0.0.1",)))[0]
    assert "cannot reach" in reach_warnings(reach(announced=()))[0]
    assert reach_warnings(reach(announced=(), expect_public=False)) == []
    turn = (parse_turn_url("turn:t.example"),)
    assert ["turn_secret is empty" in w for w in reach_warnings(reach(turn_urls=turn))] == [True]
    assert reach_warnings(reach(turn_urls=turn, turn_secret_set=True)) == []
    assert "only through TURN" in reach_warnings(reach(turn_urls=turn, turn_secret_set=True, announced=()))[0]
    small = reach_warnings(reach(port_range=(50000, 50005), host_addresses=("192.168.1.20", "fd00::2")))
    assert small == [("udp_port_range has 6 ports but 6 participants on 2 host address(es) need 12 "
                      "(one socket per participant and address)")]
    assert reach_warnings(reach(port_range=(50000, 50005))) == []  # 6 ports for 6 participants on 1 address


def cli(tmp_path: Path, toml: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "tvapp.toml"
    path.write_text(toml)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TVAPP_")}
    command = [sys.executable, "-m", "tvapp", "serve", "--config", str(path), "--data", str(tmp_path / "d"),
               "--check-reachability"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_check_reachability_through_the_cli(tmp_path: Path) -> None:
    good = cli(tmp_path, f"""
[server]
host = "0.0.0.0"
allowed_hosts = ["tv.example.org"]
[media]
host_addresses = ["192.168.1.20"]
udp_port_range = "50000-50019"
announced_addresses = ["93.184.216.34"]
turn_urls = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349?transport=tcp"]
turn_secret = "{SECRET}"
""")
    assert good.returncode == 0, good.stdout + good.stderr
    out = good.stdout
    assert "192.168.1.20  (private: this network only)" in out and "udp ports: 50000-50019 (20 ports" in out
    assert "93.184.216.34  (public)" in out
    assert "turn:turn.example.org:3478?transport=udp, turns:turn.example.org:5349?transport=tcp" in out
    assert "reachability: ok" in out and "warning" not in out
    assert SECRET not in out + good.stderr
    bad = cli(tmp_path, """
[server]
allowed_hosts = ["tv.example.org"]
[media]
host_addresses = ["127.0.0.1"]
udp_port_range = "50000-50001"
turn_urls = ["turn:turn.example.org"]
""")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    warnings = [ln for ln in bad.stdout.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 4, bad.stdout
    assert "only loopback" in warnings[0] and "turn_secret is empty" in bad.stdout
    assert "udp_port_range has 2 ports" in bad.stdout and "reachability: problems found" in bad.stdout
    invalid = cli(tmp_path, '[media]\nudp_port_range = "1-2"\n')
    assert invalid.returncode == 2 and "udp_port_range" not in invalid.stdout and "port" in invalid.stderr


def test_joined_ice_servers_keep_the_static_ones_first_and_give_each_participant_its_own_turn_credentials() -> None:
    import dataclasses

    from tvapp.server.media import Sfu

    media = config_mod.MediaConfig(ice_servers=("turn:static.example:3478",), ice_username="u",
                                   ice_credential="c", turn_urls=("turn:t.example?transport=udp", "turns:t.example"),
                                   turn_secret=SECRET, turn_ttl=600)
    sfu = Sfu(media)
    servers = sfu.ice_servers("PA_a", now=1_800_000_000)
    assert [(s.urls, s.username, s.credential) for s in servers] == [
        ("turn:static.example:3478", "u", "c"),
        ("turn:t.example?transport=udp", *rest_credentials(SECRET, "PA_a", 1_800_000_600)),
        ("turns:t.example", *rest_credentials(SECRET, "PA_a", 1_800_000_600))]
    assert sfu.ice_servers("PA_b", now=1_800_000_000)[1].username == "1800000600:PA_b"
    assert all(SECRET not in (s.username, s.credential) for s in servers)
    assert sfu.ice_triples() == [("turn:static.example:3478", "u", "c")]  # the SFU uses TURN only when told to
    uses = Sfu(dataclasses.replace(media, sfu_uses_turn=True)).ice_triples()
    assert [t[0] for t in uses] == ["turn:static.example:3478", "turn:t.example?transport=udp", "turns:t.example"]
    assert uses[1][1].endswith(":sfu")
    no_secret = Sfu(dataclasses.replace(media, turn_secret="")).ice_servers("PA_a", now=0)
    assert [(s.urls, s.username, s.credential) for s in no_secret][1:] == [
        ("turn:t.example?transport=udp", "", ""), ("turns:t.example", "", "")]
