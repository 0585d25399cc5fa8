"""The test helpers' one way to stop a subprocess (tvapp.testing.bots.stop_process, used by BotProcess and the
congestion tests' MemberProcess): SIGTERM, SIGKILL after the grace period, and the process is always reaped."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from tvapp.testing.bots import stop_process

IGNORES_SIGTERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
WAITS = "import time; print('up', flush=True); time.sleep(60)"


def started(code: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "up\n"   # its signal handling is in place
    return proc


def test_a_process_that_exits_on_sigterm_is_stopped_by_it() -> None:
    assert stop_process(started(WAITS)) == -signal.SIGTERM


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    proc = started(IGNORES_SIGTERM)
    began = time.monotonic()
    assert stop_process(proc, grace=0.5) == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - began < 5
    assert proc.returncode == -signal.SIGKILL     # reaped: no zombie left behind


def test_stopping_an_exited_process_returns_its_status() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    assert stop_process(proc) == 3
