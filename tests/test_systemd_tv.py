"""Check systemd/tvapp.service (the kiosk TV): it verifies clean, and keeps its kiosk wiring and hardening.

Verified byte for byte as shipped inside a scratch root built by tests/test_systemd.py's `make_root` (the host's
units plus this checkout's real `tvapp` entry point at /opt/tvapp/.venv/bin/tvapp), with this unit added.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from test_systemd import INSTALLED_TVAPP, UNIT as SERVER_UNIT, make_root, read_unit
from test_systemd import analyze as analyze_unit
from tvapp.tv.watchdog import Notifier

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "tvapp.service"

HARDENING = {
    "DynamicUser": "yes",
    "StateDirectory": "tvapp",
    "UMask": "0077",
    "DevicePolicy": "closed",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallFilter": "@system-service",
    "SystemCallArchitectures": "native",
    "CapabilityBoundingSet": "",
}


def entries(text: str) -> dict[str, list[tuple[str, str]]]:
    """Return every (key, value) of each section in order, repeated keys included (configparser keeps one)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        else:
            key, _, value = line.partition("=")
            current.append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    """Return every value of `key` in `section`."""
    return [value for name, value in section if name == key]


def tv_root(tmp_path: Path, unit_text: str, with_executable: bool = True) -> Path:
    """Build the scratch root of tests/test_systemd.py and add the TV unit to it."""
    root = make_root(tmp_path, SERVER_UNIT.read_text(), with_executable)
    (root / "etc/systemd/system" / UNIT.name).write_text(unit_text)
    return root


def analyze(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `systemd-analyze ARGS --root=root tvapp.service`; stdout and stderr together."""
    return analyze_unit(root, UNIT.name, *args)


def test_unit_verifies_clean_as_shipped(tmp_path: Path) -> None:
    result = analyze(tv_root(tmp_path, UNIT.read_text()), "verify")
    assert (result.returncode, result.stdout) == (0, "")


def test_verify_reports_a_misspelled_key(tmp_path: Path) -> None:
    text = UNIT.read_text()
    assert "\nWatchdogSec=10\n" in text
    result = analyze(tv_root(tmp_path, text.replace("\nWatchdogSec=10\n", "\nWatchDogSecs=10\n")), "verify")
    assert "Unknown key 'WatchDogSecs'" in result.stdout


def test_verify_reports_a_missing_executable(tmp_path: Path) -> None:
    result = analyze(tv_root(tmp_path, UNIT.read_text(), with_executable=False), "verify")
    assert result.returncode != 0
    assert f"{INSTALLED_TVAPP} is not executable" in result.stdout


def test_systemd_rates_the_sandbox_well(tmp_path: Path) -> None:
    result = analyze(tv_root(tmp_path, UNIT.read_text()), "security", "--offline=yes")
    found = re.search(r"Overall exposure level for tvapp\.service: (\d+\.\d+)", result.stdout)
    assert found is not None, result.stdout[-2000:]
    # 0 is fully locked down, 10 is unprotected; the standalone server scores 1.7.
    assert float(found.group(1)) <= 2.5


def test_unit_keeps_its_hardening() -> None:
    service = read_unit(UNIT.read_text())["Service"]
    assert {key: service.get(key) for key in HARDENING} == HARDENING
    assert "ReadWritePaths" not in service
    # Would hide the display, sound and input devices, or crash Mesa's JIT: left off on purpose (see the unit).
    assert "PrivateDevices" not in service and "MemoryDenyWriteExecute" not in service
    assert "MemoryDenyWriteExecute=: " in UNIT.read_text()


def test_only_display_sound_camera_input_and_tty1_devices_are_allowed() -> None:
    service = entries(UNIT.read_text())["Service"]
    assert sorted(values(service, "DeviceAllow")) == sorted(
        ["char-drm rw", "char-alsa rw", "char-video4linux rw", "char-input r", "/dev/tty1 rw"]
    )
    assert values(service, "SupplementaryGroups") == ["video audio render input"]


def test_starts_the_tv_on_tty1_with_kmsdrm_instead_of_a_login_prompt() -> None:
    unit = entries(UNIT.read_text())
    service = unit["Service"]
    assert values(service, "ExecStart") == [f"{INSTALLED_TVAPP} tv"]
    assert values(service, "TTYPath") == ["/dev/tty1"]
    assert values(service, "StandardInput") == ["tty"]
    environment = values(service, "Environment")
    assert "SDL_VIDEODRIVER=kmsdrm" in environment
    assert "TVAPP_DATA=%S/tvapp" in environment and values(service, "StateDirectory") == ["tvapp"]
    assert values(unit["Unit"], "Conflicts") == ["getty@tty1.service"]
    after = " ".join(values(unit["Unit"], "After")).split()
    assert {"getty@tty1.service", "network.target", "sound.target"} <= set(after)
    assert values(unit["Install"], "WantedBy") == ["multi-user.target"]


def test_is_a_notify_service_restarted_when_its_watchdog_starves() -> None:
    service = read_unit(UNIT.read_text())["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert service["Restart"] == "always" and service["RestartSec"]
    watchdog_sec = int(service["WatchdogSec"])
    assert watchdog_sec == 10
    # What systemd hands the process for that setting makes the frame loop ping twice per period.
    notifier = Notifier.from_env({"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": str(watchdog_sec * 10**6)})
    assert notifier.watchdog_interval == watchdog_sec / 2
    notifier.close()
