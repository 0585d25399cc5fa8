"""The JavaScript SDK (tvapp/server/web/sdk): its node unit tests pass, it is an npm package whose version is the
Python package's and that `npm pack` packs offline, and the core serves it at /sdk/ like its other static files."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import tvapp
from tvapp.testing.server import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
SDK = ROOT / "tvapp" / "server" / "web" / "sdk"


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (scripts/install-system-deps.sh installs nodejs and npm)"
    return path


def test_node_unit_tests_pass() -> None:
    result = subprocess.run([_tool("node"), "--test", "tests/js/"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout


def test_package_version_is_the_python_packages() -> None:
    package = json.loads((SDK / "package.json").read_text())
    assert package["version"] == tvapp.__version__
    assert f'export const VERSION = "{tvapp.__version__}";' in (SDK / "tvapp.js").read_text()
    assert package["types"] == "tvapp.d.ts" and package["main"] == "tvapp.js" and package["type"] == "module"


def test_every_module_the_sdk_imports_is_in_the_package() -> None:
    package = json.loads((SDK / "package.json").read_text())
    modules = {p.name for p in SDK.glob("*.js")}
    assert modules <= set(package["files"]), modules - set(package["files"])


def test_npm_pack_works_offline_and_holds_the_sdk(tmp_path: Path) -> None:
    result = subprocess.run([_tool("npm"), "pack", "--offline", "--json", "--pack-destination", str(tmp_path)],
                            cwd=SDK, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    name = json.loads(result.stdout)[0]["filename"]
    with tarfile.open(tmp_path / name) as tar:
        names = set(tar.getnames())
    assert {"package/tvapp.js", "package/tvapp.d.ts", "package/package.json", "package/room.js"} <= names
    assert not any("test" in n for n in names)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("sdk-server")) as srv:
        yield srv


def test_core_serves_the_sdk_with_content_types_and_the_static_rules(server: ServerProcess) -> None:
    js = httpx.get(server.url + "/sdk/tvapp.js")
    assert js.status_code == 200
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert js.headers["x-content-type-options"] == "nosniff"
    assert js.headers["access-control-allow-origin"] == "*"  # pages elsewhere may import it as a module
    assert js.text == (SDK / "tvapp.js").read_text()
    static = httpx.get(server.url + "/static/app.js")
    for header in ("etag", "last-modified"):  # the caching rules of /static/
        assert header in js.headers and header in static.headers
    assert httpx.get(server.url + "/sdk/tvapp.js", headers={"If-None-Match": js.headers["etag"]}).status_code == 304
    dts = httpx.get(server.url + "/sdk/tvapp.d.ts")
    assert dts.status_code == 200
    assert dts.headers["content-type"] == "application/typescript; charset=utf-8"
    assert "export declare class Room" in dts.text
    for name in ("room.js", "codec.js", "steering.js", "package.json"):
        assert httpx.get(server.url + "/sdk/" + name).status_code == 200, name


def test_sdk_path_keeps_the_host_guard_and_json_errors(server: ServerProcess) -> None:
    missing = httpx.get(server.url + "/sdk/nothing.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    escaped = httpx.get(server.url + "/sdk/%2e%2e/app.js")
    assert escaped.status_code == 404
    rebound = httpx.get(server.url + "/sdk/tvapp.js", headers={"Host": "attacker.example"})
    assert rebound.status_code == 400
    assert rebound.json()["error"]["code"] == "bad_host"
