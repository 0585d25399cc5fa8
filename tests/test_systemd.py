"""Check systemd/tvapp-server.service: it verifies clean, keeps its hardening, and the runtime fits its sandbox.

`systemd-analyze verify` checks that ExecStart's executable exists, and the unit names the documented install
path /opt/tvapp/.venv/bin/tvapp. So the unit is verified byte for byte as shipped inside a scratch root
(`--root`) holding the host's unit files and this checkout's real `tvapp` entry point at that path.
"""

from __future__ import annotations

import configparser
import ctypes
import os
import platform
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "tvapp-server.service"
INSTALLED_TVAPP = "/opt/tvapp/.venv/bin/tvapp"
HOST_UNIT_DIRS = (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))

HARDENING = {
    "DynamicUser": "yes",
    "StateDirectory": "tvapp",
    "UMask": "0077",
    "Restart": "on-failure",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallFilter": "@system-service",
    "CapabilityBoundingSet": "",
}


def systemd_analyze() -> str:
    """Return the path of systemd-analyze, failing the test when it is missing."""
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail(
            "systemd-analyze is missing: run `make test` as root (scripts/install-system-deps.sh "
            "installs it) or `apt-get install systemd`"
        )
    return found


def read_unit(text: str) -> configparser.ConfigParser:
    """Parse unit text into sections with case-preserved keys."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def make_root(tmp_path: Path, unit_text: str, with_executable: bool = True) -> Path:
    """Build a scratch root holding the host's units, the given unit and the tvapp entry point."""
    root = tmp_path / "root"
    host_units = next((d for d in HOST_UNIT_DIRS if d.is_dir()), None)
    assert host_units is not None, f"no systemd unit directory among {HOST_UNIT_DIRS}"
    shutil.copytree(host_units, root / "usr/lib/systemd/system", symlinks=True)
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    (unit_dir / UNIT.name).write_text(unit_text)
    if with_executable:
        venv_tvapp = Path(sys.executable).parent / "tvapp"
        assert venv_tvapp.is_file(), f"{venv_tvapp} is missing: pip install -e . in the venv"
        installed = root / INSTALLED_TVAPP.lstrip("/")
        installed.parent.mkdir(parents=True)
        shutil.copy2(venv_tvapp, installed)
    return root


def analyze(root: Path, unit: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `systemd-analyze ARGS --root=root UNIT` (ARGS: verify, security --offline=yes...); stdout and stderr together."""
    env = dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="", SYSTEMD_COLORS="0")
    return subprocess.run(
        [systemd_analyze(), *args, f"--root={root}", unit],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        timeout=60,
    )


def verify(root: Path) -> subprocess.CompletedProcess[str]:
    """Run `systemd-analyze verify` on the server unit inside root."""
    return analyze(root, UNIT.name, "verify")


def test_unit_verifies_clean_as_shipped(tmp_path: Path) -> None:
    result = verify(make_root(tmp_path, UNIT.read_text()))
    assert (result.returncode, result.stdout) == (0, "")


def test_verify_reports_a_misspelled_key(tmp_path: Path) -> None:
    text = UNIT.read_text()
    assert "\nProtectHome=yes\n" in text
    result = verify(make_root(tmp_path, text.replace("\nProtectHome=yes\n", "\nProtectHomes=yes\n")))
    assert "Unknown key 'ProtectHomes'" in result.stdout


def test_verify_reports_a_missing_executable(tmp_path: Path) -> None:
    result = verify(make_root(tmp_path, UNIT.read_text(), with_executable=False))
    assert result.returncode != 0
    assert f"{INSTALLED_TVAPP} is not executable" in result.stdout


def test_unit_keeps_its_hardening() -> None:
    service = read_unit(UNIT.read_text())["Service"]
    assert {key: service.get(key) for key in HARDENING} == HARDENING
    assert service["ProtectSystem"] == "strict" and "ReadWritePaths" not in service


def test_unit_orders_after_the_network_and_installs_into_multi_user() -> None:
    unit = read_unit(UNIT.read_text())
    assert unit["Unit"]["After"] == "network-online.target"
    assert unit["Unit"]["Wants"] == "network-online.target"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_exec_start_serves_the_state_directory() -> None:
    service = read_unit(UNIT.read_text())["Service"]
    argv = service["ExecStart"].split()
    assert argv == [INSTALLED_TVAPP, "serve", "--host", "0.0.0.0", "--port", "8800", "--data", "%S/tvapp"]
    assert argv[-1] == "%S/" + service["StateDirectory"]


# The sandbox emulation: a seccomp filter refusing what the unit's MemoryDenyWriteExecute= and
# RestrictAddressFamilies= refuse (mmap W+X, mprotect/pkey_mprotect +X, shmat SHM_EXEC; socket() of
# other families), with the same errors systemd returns.

SYSCALLS = {  # machine: (AUDIT_ARCH_*, mmap, mprotect, pkey_mprotect, shmat, socket)
    "x86_64": (0xC000003E, 9, 10, 329, 30, 41),
    "aarch64": (0xC00000B7, 222, 226, 288, 196, 198),
}
BPF_LD_W_ABS, BPF_JEQ_K, BPF_AND_K, BPF_RET_K = 0x20, 0x15, 0x54, 0x06
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
EPERM, EAFNOSUPPORT = 1, 97
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
ARCH_OFFSET, ARG0_OFFSET, ARG2_OFFSET = 4, 16, 32  # in struct seccomp_data (low words, little-endian)

Instruction = tuple[int, int] | tuple[int, int, str, str]


def assemble(program: list[Instruction | str]) -> bytes:
    """Encode BPF instructions; strings are labels, jumps name their true and false labels."""
    labels: dict[str, int] = {}
    index = 0
    for item in program:
        if isinstance(item, str):
            labels[item] = index
        else:
            index += 1
    code = b""
    index = 0
    for item in program:
        if isinstance(item, str):
            continue
        if len(item) == 4:
            op, k, if_true, if_false = item
            jt, jf = labels[if_true] - index - 1, labels[if_false] - index - 1
        else:
            op, k = item
            jt = jf = 0
        code += struct.pack("=HBBI", op, jt, jf, k)
        index += 1
    return code


def sandbox_filter() -> bytes:
    """Return the seccomp program for this machine."""
    machine = platform.machine()
    if machine not in SYSCALLS:
        pytest.fail(f"add the syscall numbers of {machine} to SYSCALLS in {Path(__file__).name}")
    arch, mmap_nr, mprotect_nr, pkey_mprotect_nr, shmat_nr, socket_nr = SYSCALLS[machine]
    def arg2_has(mask: int) -> list[Instruction | str]:
        return [(BPF_LD_W_ABS, ARG2_OFFSET), (BPF_AND_K, mask), (BPF_JEQ_K, mask, "eperm", "allow")]

    return assemble([
        (BPF_LD_W_ABS, ARCH_OFFSET), (BPF_JEQ_K, arch, "native", "allow"),
        "native", (BPF_LD_W_ABS, 0),
        (BPF_JEQ_K, mmap_nr, "mmap", "not_mmap"),
        "not_mmap", (BPF_JEQ_K, mprotect_nr, "mprotect", "not_mprotect"),
        "not_mprotect", (BPF_JEQ_K, pkey_mprotect_nr, "mprotect", "not_pkey_mprotect"),
        "not_pkey_mprotect", (BPF_JEQ_K, shmat_nr, "shmat", "not_shmat"),
        "not_shmat", (BPF_JEQ_K, socket_nr, "socket", "allow"),
        "mmap", *arg2_has(PROT_WRITE | PROT_EXEC),
        "mprotect", *arg2_has(PROT_EXEC),
        "shmat", *arg2_has(SHM_EXEC),
        "socket", (BPF_LD_W_ABS, ARG0_OFFSET), (BPF_JEQ_K, AF_UNIX, "allow", "not_unix"),
        "not_unix", (BPF_JEQ_K, AF_INET, "allow", "not_inet"),
        "not_inet", (BPF_JEQ_K, AF_INET6, "allow", "not_inet6"),
        "not_inet6", (BPF_JEQ_K, AF_NETLINK, "allow", "eafnosupport"),
        "eafnosupport", (BPF_RET_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT),
        "eperm", (BPF_RET_K, SECCOMP_RET_ERRNO | EPERM),
        "allow", (BPF_RET_K, SECCOMP_RET_ALLOW),
    ])


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def sandbox_installer() -> Callable[[], None]:
    """Return a preexec_fn that installs the filter in the child (it survives exec)."""
    code = sandbox_filter()
    buffer = ctypes.create_string_buffer(code, len(code))
    program = SockFprog(len(code) // 8, ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2

    def install() -> None:
        assert buffer  # keeps the program's memory alive until the fork
        if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(program), 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")

    return install


def test_server_runtime_works_inside_the_units_sandbox(tmp_path: Path) -> None:
    child = Path(__file__).with_name("systemd_sandbox_child.py")
    result = subprocess.run(
        [sys.executable, str(child), str(tmp_path)],
        preexec_fn=sandbox_installer(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr[-3000:]
