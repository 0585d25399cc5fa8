"""Screenshots show secrets (invite code, pairing code, QR secret): a real TV keeps them private.

Without a screen and without --screenshots the TV picks a fresh folder of its own (mode 0700); every screenshot
and sidecar it writes, there or in a folder it was given, is mode 0600.
"""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import time
from pathlib import Path

from tvapp.testing.tv import TvProcess, tv_env


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def wait_for_file(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the TV exited: {log.read_text()}"
        assert time.monotonic() < deadline, f"no {path.name} within {timeout} s: {log.read_text()}"
        time.sleep(0.05)


def test_without_a_screen_the_screenshots_folder_is_private(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir(mode=0o777)
    temp.chmod(0o777)  # a shared temporary directory, as /tmp is
    log = tmp_path / "tv.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tvapp", "tv", "--host", "127.0.0.1", "--port", "0", "--data",
             str(tmp_path / "data"), "--no-audio", "--size", "640x360"],
            stdout=out, stderr=subprocess.STDOUT, env=tv_env(tmp_path, {"TMPDIR": str(temp)}), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"screenshots go to (\S+)/latest\.png", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        folder = Path(found.group(1))
        assert folder.parent == temp and folder.name.startswith("tvapp-screens-")
        wait_for_file(folder / "latest.json", proc, log)
        assert mode(folder) == 0o700
        assert mode(folder / "latest.png") == 0o600
        assert mode(folder / "latest.json") == 0o600
    finally:
        proc.terminate()
        proc.wait(20)


def test_screenshots_in_a_given_folder_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    with TvProcess(tmp_path, ["--host", "127.0.0.1", "--port", "0", "--data", str(tmp_path / "data"),
                              "--no-audio"], size="640x360") as tv:
        tv.screenshot()
        assert mode(tv.shots / "latest.png") == 0o600
        assert mode(tv.shots / "latest.json") == 0o600
        assert mode(tv.shots) == 0o700
