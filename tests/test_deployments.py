"""The three deployments README.md describes: each config file loads, is shown verbatim, and passes the check."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tvapp import config as config_mod

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "config" / "deploy"
NAMES = ["living-room", "port-forward", "cloud"]


def readme_toml_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```toml\n(.*?)```", text, flags=re.S)


def test_every_deployment_file_is_in_the_readme_verbatim() -> None:
    assert sorted(p.stem for p in DEPLOY.glob("*.toml")) == sorted(NAMES)
    blocks = readme_toml_blocks()
    for name in NAMES:
        assert (DEPLOY / f"{name}.toml").read_text() in blocks, f"README.md does not show config/deploy/{name}.toml"


@pytest.mark.parametrize("name", NAMES)
def test_each_deployment_loads_and_passes_the_reachability_check(name: str, tmp_path: Path) -> None:
    path = DEPLOY / f"{name}.toml"
    env = {**os.environ, "TVAPP_MEDIA_TURN_SECRET": "a-secret-from-the-environment-0123456789"}
    if name == "cloud":
        # The file names 203.0.113.10 (a documentation address Python counts as private): check with a public one.
        env["TVAPP_MEDIA_HOST_ADDRESSES"] = "93.184.216.34"
    cfg = config_mod.load(path, env)
    assert cfg.server.host == "0.0.0.0"
    result = subprocess.run([sys.executable, "-m", "tvapp", "serve", "--config", str(path), "--data", str(tmp_path),
                             "--check-reachability"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "signaling: https://" in result.stdout  # every deployment serves https: phones can publish
    assert "reachability: ok" in result.stdout
    assert "a-secret-from-the-environment" not in result.stdout + result.stderr
    if name == "port-forward":
        assert "198.51.100.23" in result.stdout and "50000-50049" in result.stdout
    if name == "cloud":
        assert "turns:core.example.org:5349" in result.stdout
