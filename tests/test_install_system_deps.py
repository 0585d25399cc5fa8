"""Run scripts/install-system-deps.sh: a no-op when all is present, advice without installing when not root."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install-system-deps.sh"
NOBODY = 65534


def run_script(env: dict[str, str], **options: Any) -> subprocess.CompletedProcess[str]:
    """Feed the script to bash on stdin: no PATH lookup, and no file access for a dropped user."""
    return subprocess.run(
        ["/bin/bash", "-s"],
        input=SCRIPT.read_text(),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        **options,
    )


def test_does_nothing_when_every_command_is_present() -> None:
    result = run_script(dict(os.environ))
    assert (result.returncode, result.stderr) == (0, "")
    match = re.fullmatch(r"install-system-deps: all present \(([^)]*)\), nothing to do\n", result.stdout)
    assert match is not None, result.stdout
    assert "systemd" in match.group(1).split()


def test_only_advises_when_not_root_and_a_command_is_missing(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    drop_root: dict[str, Any] = (
        {"user": NOBODY, "group": NOBODY, "extra_groups": []} if os.geteuid() == 0 else {}
    )
    result = run_script({"PATH": str(empty_bin)}, **drop_root)
    assert (result.returncode, result.stderr) == (0, "")
    match = re.fullmatch(
        r"install-system-deps: missing ([^;]*); not root, so not installing: "
        r"as root run `apt-get install --no-install-recommends ([^`]*)` \(the tests needing them will fail\)\n",
        result.stdout,
    )
    assert match is not None, result.stdout
    assert "systemd" in match.group(1).split()
    assert match.group(1) == match.group(2)
