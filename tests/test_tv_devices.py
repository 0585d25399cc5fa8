"""DeviceStore on a real SQLite file: pairing, checking, revoking, listing; only hashes on disk; 0600 file."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from tvapp.core.credentials import credential_hash
from tvapp.tv.remote.devices import DeviceStore


def test_add_check_list_revoke(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path / "tv.sqlite3")
    first, first_credential = store.add("Ann's phone", 100.0)
    second, second_credential = store.add("Bob's phone", 200.0)
    assert first.startswith("dev_") and first_credential.startswith("tvd_") and first != second
    assert store.check(first_credential, 150.0) == first
    assert store.check(second_credential, 250.0) == second
    assert store.check("tvd_" + "A" * 43, 250.0) is None
    assert store.check(first_credential + "x", 250.0) is None
    assert store.check("not a credential", 250.0) is None
    listed = store.list()
    assert [(d.device_id, d.name, d.paired_at, d.last_seen) for d in listed] == [
        (first, "Ann's phone", 100.0, 150.0), (second, "Bob's phone", 200.0, 250.0)]
    assert store.is_active(first)
    assert store.revoke(first, 300.0) is True
    assert store.revoke(first, 301.0) is False
    assert store.revoke("dev_unknown00000", 301.0) is False
    assert store.check(first_credential, 310.0) is None
    assert not store.is_active(first) and not store.is_active("dev_unknown00000")
    assert [d.device_id for d in store.list()] == [second]
    store.close()


def test_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "tv.sqlite3"
    store = DeviceStore(path)
    device, credential = store.add("phone", 1.0)
    store.close()
    again = DeviceStore(path)
    assert again.check(credential, 2.0) == device
    again.close()


def test_only_the_hash_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "tv.sqlite3"
    store = DeviceStore(path)
    device, credential = store.add("phone", 1.0)
    store.close()
    for name in os.listdir(tmp_path):
        assert credential.encode() not in (tmp_path / name).read_bytes()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT device_id, credential_hash FROM devices").fetchall()
    assert rows == [(device, credential_hash(credential))]


def test_file_is_private_and_a_new_directory_is_0700(tmp_path: Path) -> None:
    path = tmp_path / "data" / "tv.sqlite3"
    store = DeviceStore(path)
    store.add("phone", 1.0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for name in os.listdir(path.parent):  # the WAL and shared-memory files SQLite made next to it
        assert stat.S_IMODE((path.parent / name).stat().st_mode) & 0o077 == 0, name
    store.close()


def test_the_tv_id_lasts_across_restarts_and_differs_between_tvs(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path / "tv.sqlite3")
    first = store.tv_id()
    assert len(first) == 16 and store.tv_id() == first
    store.close()
    again = DeviceStore(tmp_path / "tv.sqlite3")
    assert again.tv_id() == first
    again.close()
    other = DeviceStore(tmp_path / "other.sqlite3")
    assert other.tv_id() != first
    other.close()
