"""Zeroconf on 127.0.0.1: the real TV advertises `_tvapp._tcp.local.`, `tvapp remote discover` finds it, the TXT
record holds only the allowed fields (no room, no names of people), it follows the TV's state, and the service
disappears when the TV exits (goodbye packets)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tvapp.testing.tv import TvProcess
from tvapp.protocol.discovery import TXT_KEYS

ZEROCONF_ENV = {"TVAPP_TV_ZEROCONF_INTERFACES": "127.0.0.1"}


def discover(timeout: float = 2.0) -> list[dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-m", "tvapp", "remote", "discover", "--json", "--interface", "127.0.0.1",
                           "--timeout", str(timeout)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_remote_discover_finds_the_tv_with_only_the_allowed_txt_fields_and_loses_it_on_exit(tmp_path: Path) -> None:
    tv = TvProcess(tmp_path, ["--host", "127.0.0.1", "--port", "0", "--room", "secret-room-name", "--name", "Den TV",
                              "--data", str(tmp_path / "data"), "--no-audio"], size="1280x720", env=ZEROCONF_ENV)
    try:
        _, sidecar = tv.wait_for(lambda s: s["screen"] == "RoomScreen" and s["invite_code"], timeout=60,
                                 what="the hosted room")
        found = [t for t in discover() if t["name"] == "Den TV"]
        assert len(found) == 1, found
        entry = found[0]
        assert set(entry["txt"]) == TXT_KEYS
        assert entry["txt"]["state"] == "room" and entry["txt"]["pair"] in ("0", "1")
        assert entry["txt"]["txtvers"] == "1" and entry["txt"]["proto"] == "1" and len(entry["txt"]["id"]) >= 16
        assert entry["addresses"] == ["127.0.0.1"]
        assert entry["url"] == tv.remote_url()  # phones reach the TV's pairing and remote endpoints
        assert entry["txt"]["pair"] == "1"
        everything = json.dumps(entry)
        for private in ("secret-room-name", sidecar["invite_code"], "tvapp-"):
            assert private not in json.dumps(entry["txt"]), private
        assert entry["found_after_s"] < 2.0, everything
    finally:
        assert tv.stop() == 0, tv.output
    assert not [t for t in discover(1.5) if t["name"] == "Den TV"], "the TV is still advertised after it exited"


def test_each_start_has_a_new_instance_id(tmp_path: Path) -> None:
    ids = []
    for run in range(2):
        tv = TvProcess(tmp_path / str(run), ["--host", "127.0.0.1", "--port", "0", "--name", "Id TV",
                                             "--data", str(tmp_path / "data"), "--no-audio"], size="640x360",
                       env=ZEROCONF_ENV)
        try:
            tv.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=60, what="the room")
            found = [t for t in discover() if t["name"] == "Id TV"]
            assert len(found) == 1, found
            ids.append(found[0]["id"])
        finally:
            assert tv.stop() == 0, tv.output
    assert ids[0] != ids[1]
