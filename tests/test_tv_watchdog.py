"""tvapp.tv.watchdog against real AF_UNIX datagram sockets standing in for systemd's notify socket."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tvapp.tv.watchdog import Notifier


class Manager:
    """The service manager's end: a bound datagram socket that collects what the Notifier sends."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(2.0)

    def messages(self) -> list[str]:
        """Return every datagram received so far (waiting for none)."""
        received = []
        self.sock.setblocking(False)
        try:
            while True:
                received.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            pass
        finally:
            self.sock.settimeout(2.0)
        return received

    def next(self) -> str:
        """Wait for and return the next datagram."""
        return self.sock.recv(4096).decode()


@pytest.fixture
def path_manager(tmp_path: Path) -> Iterator[tuple[Manager, str]]:
    path = str(tmp_path / "notify")
    manager = Manager(path)
    yield manager, path
    manager.sock.close()


@pytest.fixture
def abstract_manager() -> Iterator[tuple[Manager, str]]:
    name = f"tvapp-test-{uuid.uuid4().hex}"
    manager = Manager(b"\0" + name.encode())
    yield manager, "@" + name
    manager.sock.close()


def test_ready_status_and_stopping_reach_a_path_socket(path_manager: tuple[Manager, str]) -> None:
    manager, path = path_manager
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path})
    assert notifier.enabled and notifier.watchdog_interval is None
    notifier.ready("joined room demo")
    notifier.status("2 participants\nin the room")
    notifier.stopping()
    notifier.ready()
    assert manager.messages() == [
        "READY=1\nSTATUS=joined room demo",
        "STATUS=2 participants in the room",
        "STOPPING=1",
        "READY=1",
    ]


def test_abstract_socket_names_work(abstract_manager: tuple[Manager, str]) -> None:
    manager, name = abstract_manager
    notifier = Notifier.from_env({"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "10000000"})
    notifier.ready()
    notifier.frame(100.0)
    assert [manager.next(), manager.next()] == ["READY=1", "WATCHDOG=1"]


def test_frame_pings_at_most_every_half_watchdog_period(path_manager: tuple[Manager, str]) -> None:
    manager, path = path_manager
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"})
    assert notifier.watchdog_interval == 5.0
    # 60 fps for 12 s: pings at 0, 5 and 10 s only.
    for index in range(12 * 60):
        notifier.frame(1000.0 + index / 60)
    assert manager.messages() == ["WATCHDOG=1"] * 3


def test_a_frozen_frame_loop_stops_pinging(path_manager: tuple[Manager, str]) -> None:
    manager, path = path_manager
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    notifier.frame(0.0)
    notifier.frame(0.5)
    # ... the loop hangs for 30 s; nothing is sent in between because nothing calls frame() ...
    assert manager.messages() == ["WATCHDOG=1"]
    notifier.frame(30.0)
    assert manager.messages() == ["WATCHDOG=1"]


def test_watchdog_for_another_pid_is_ignored(path_manager: tuple[Manager, str]) -> None:
    manager, path = path_manager
    other = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"})
    ours = Notifier.from_env(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert other.watchdog_interval is None and ours.watchdog_interval == 1.0
    other.frame(0.0)
    ours.frame(0.0)
    assert manager.messages() == ["WATCHDOG=1"]


@pytest.mark.parametrize("usec", ["", "0", "-5", "ten"])
def test_no_or_bad_watchdog_usec_means_no_pings(path_manager: tuple[Manager, str], usec: str) -> None:
    manager, path = path_manager
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": usec})
    notifier.frame(0.0)
    notifier.frame(100.0)
    assert notifier.watchdog_interval is None and manager.messages() == []


@pytest.mark.parametrize("value", ["", "relative/path", "@"])
def test_outside_systemd_everything_is_a_no_op(value: str) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": value, "WATCHDOG_USEC": "1000000"} if value else {})
    assert not notifier.enabled and notifier.watchdog_interval is None
    notifier.ready("x")
    notifier.status("y")
    notifier.frame(0.0)
    notifier.stopping()


def test_a_vanished_socket_logs_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone"), "WATCHDOG_USEC": "2000000"})
    with caplog.at_level(logging.WARNING, logger="tvapp.tv.watchdog"):
        notifier.ready()
        for second in range(10):
            notifier.frame(float(second))
    warnings = [record for record in caplog.records if "cannot notify systemd" in record.getMessage()]
    assert len(warnings) == 1


def test_close_makes_later_calls_no_ops(path_manager: tuple[Manager, str]) -> None:
    manager, path = path_manager
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    notifier.close()
    notifier.ready()
    notifier.frame(0.0)
    assert not notifier.enabled and manager.messages() == []


def test_from_env_reads_the_process_environment_by_default(path_manager: tuple[Manager, str]) -> None:
    manager, path = path_manager
    code = (
        "import os\n"
        "from tvapp.tv.watchdog import Notifier\n"
        "os.environ['WATCHDOG_PID'] = str(os.getpid())\n"
        "n = Notifier.from_env()\n"
        "n.ready('up')\n"
        "n.frame(0.0)\n"
    )
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="4000000")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=30)
    assert manager.messages() == ["READY=1\nSTATUS=up", "WATCHDOG=1"]
