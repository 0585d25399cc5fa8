"""`tvapp remote pair/send/watch/forget` against the TV's real endpoints (uvicorn on 127.0.0.1, a recording controller).

The CLI runs as a real subprocess with TVAPP_REMOTE_CONFIG pointing into tmp_path; the TV side runs in this
process so the test can read the code the TV would show (the controller's show_pairing view).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tvapp.client.paired_tvs import CredentialFile, PairedTv
from tvapp.client.remote_link import (
    RemoteLink,
    RemoteLinkError,
    fingerprint_of,
    fingerprints_equal,
    request_pairing,
)
from tvapp.core.pairing import PairingConfig
from tvapp.protocol.remote_messages import (
    Command,
    CreateRoom,
    Playback,
    PlaybackInfo,
    SetCamera,
    SetLayout,
    SetMic,
    SetVolume,
    ShowInvite,
    State,
    StatusCommand,
)
from tvapp.tv.remote.devices import DeviceStore
from tvapp.tv.remote.controller import CommandRefused, PairingView
from tvapp.tv.remote.endpoints import RemoteEndpoints
from tvapp.testing.uvicorn_thread import ThreadedServer, loopback_socket
from tvapp.testing.waiting import wait_until
from tvapp.web.tls import ensure_certificate

REPO = Path(__file__).resolve().parent.parent
FAST = PairingConfig(backoff_base=0.0)


class RecordingController:
    """A TV that records commands and keeps a little state (volume, layout, room, invite visibility)."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.views: list[PairingView | None] = []
        self.state = State(tv_name="Den TV", status="idle", volume=0.8, layout="grid")
        self.endpoints: RemoteEndpoints | None = None

    def tv_state(self) -> State:
        return self.state

    async def execute(self, command: Command) -> None:
        self.commands.append(command)
        if command.TYPE in ("remove_participant", "mute_participant"):
            raise CommandRefused("not_host", "only the room's host can do that")
        if isinstance(command, SetVolume):
            self.state = dataclasses.replace(self.state, volume=command.volume)
        elif isinstance(command, SetLayout):
            self.state = dataclasses.replace(self.state, layout=command.layout)
        elif isinstance(command, CreateRoom):
            self.state = dataclasses.replace(self.state, status="in_room", room=command.name or "room-1",
                                             invite_code="ABCD-EFGH")
        elif isinstance(command, ShowInvite):
            self.state = dataclasses.replace(self.state, invite_visible=command.visible)
        elif isinstance(command, Playback):
            self.play(command)
        elif isinstance(command, (SetMic, SetCamera)):
            which = "mic" if isinstance(command, SetMic) else "camera"
            self.state = dataclasses.replace(self.state, **{which: "on" if command.enabled else "off"})
        assert self.endpoints is not None
        self.endpoints.push_state()

    def play(self, command: Playback) -> None:
        now = self.state.playback or PlaybackInfo()
        if command.action == "load":
            assert command.content is not None
            now = PlaybackInfo(content=command.content, title=command.title, playing=True,
                               position=command.position or 0.0, duration=5400.0)
        elif not now.content:
            raise CommandRefused("no_content", "nothing is loaded in the room")
        elif command.action == "stop":
            now = PlaybackInfo()
        elif command.action == "seek":
            assert command.position is not None
            now = dataclasses.replace(now, position=command.position)
        else:
            now = dataclasses.replace(now, playing=command.action == "play")
        self.state = dataclasses.replace(self.state, playback=now)

    def show_pairing(self, view: PairingView | None) -> None:
        self.views.append(view)

    def code(self, timeout: float = 10.0) -> str:
        """Return the code the TV shows now, waiting for one."""
        view = wait_until(lambda: self.views[-1] if self.views else None, timeout,
                          lambda: f"a code on the TV (views: {len(self.views)})", 0.02)
        return view.code


@dataclasses.dataclass
class Tv:
    url: str
    controller: RecordingController
    devices: DeviceStore
    endpoints: RemoteEndpoints
    fingerprint: str | None = None


def _serve(tmp: Path, *, tls: bool = False, pairing: PairingConfig = FAST) -> Iterator[Tv]:
    controller = RecordingController()
    devices = DeviceStore(tmp / "tv.sqlite3")
    sock = loopback_socket()
    port = sock.getsockname()[1]
    scheme = "https" if tls else "http"
    cert = ensure_certificate(tmp / "tls", ["localhost"], ["127.0.0.1"]) if tls else None
    endpoints = RemoteEndpoints(controller=controller, devices=devices, tv_name="Den TV", instance_id="test1",
                                base_url=f"{scheme}://127.0.0.1:{port}", pairing_config=pairing,
                                fingerprint=cert.fingerprint if cert else None)
    controller.endpoints = endpoints
    try:
        with ThreadedServer(endpoints.app, sock, lifespan="off", ssl_certfile=str(cert.cert_path) if cert else None,
                            ssl_keyfile=str(cert.key_path) if cert else None):
            yield Tv(f"{scheme}://127.0.0.1:{port}", controller, devices, endpoints,
                     cert.fingerprint if cert else None)
    finally:
        devices.close()


@pytest.fixture
def tv(tmp_path: Path) -> Iterator[Tv]:
    yield from _serve(tmp_path / "tv")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "phone" / "tvapp" / "remote.json"


def cli(config: Path, *args: str, stdin: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TVAPP_REMOTE_CONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "tvapp", "remote", *args], input=stdin, capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=timeout)


def start_cli(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TVAPP_REMOTE_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "tvapp", "remote", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def pair_with_code(tv: Tv, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Start a pairing from this address (the CLI gets the same one back), read the code off the TV, pair."""
    asyncio.run(request_pairing(tv.url, "test", tv.fingerprint))
    return cli(config, "pair", "--tv", tv.url, "--code", tv.controller.code(), "--device-name", "Ann's laptop", *extra)


def stored(config: Path) -> list[PairedTv]:
    return CredentialFile(config).load()


def test_pair_by_prompt_after_a_wrong_code_saves_a_0600_credential_and_never_prints_it(tv: Tv, config: Path) -> None:
    proc = start_cli(config, "pair", "--tv", tv.url, "--device-name", "Ann's laptop")
    code = tv.controller.code()
    wrong = "000000" if code != "000000" else "111111"
    out, err = proc.communicate(f"{wrong}\n{code}\n", timeout=30)
    assert proc.returncode == 0, err
    assert "Code shown on the TV:" in out
    assert "wrong code" in out and "new code" not in out
    assert "paired with Den TV" in out
    [paired] = stored(config)
    assert paired.url == tv.url and paired.tv_name == "Den TV" and paired.fingerprint is None
    assert paired.credential.startswith("tvd_") and paired.credential not in out + err
    assert [d.device_id for d in tv.devices.list()] == [paired.device_id]
    assert tv.devices.list()[0].name == "Ann's laptop"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    assert tv.controller.views[-1] is None  # the code left the screen


def test_three_wrong_codes_say_the_code_changed_and_give_up(tv: Tv, config: Path) -> None:
    proc = start_cli(config, "pair", "--tv", tv.url)
    code = tv.controller.code()
    wrong = "000000" if code != "000000" else "111111"
    out, err = proc.communicate(f"{wrong}\n{wrong}\n{wrong}\n", timeout=30)
    assert proc.returncode == 1
    assert out.count("wrong code") == 3 and out.count("the TV shows a new code now") == 1
    assert "no right code after 3 tries" in err
    assert tv.controller.code() != code and not config.exists()


def test_a_wrong_try_too_soon_waits_for_the_tv(tmp_path: Path, config: Path) -> None:
    for tv in _serve(tmp_path / "tv", pairing=PairingConfig(backoff_base=1.0)):
        proc = start_cli(config, "pair", "--tv", tv.url)
        code = tv.controller.code()
        wrong = "000000" if code != "000000" else "111111"
        out, err = proc.communicate(f"{wrong}\n{code}\n", timeout=30)
        assert proc.returncode == 0, err
        assert "waiting" in out and "paired with Den TV" in out


def test_send_commands_reach_the_tv_and_status_prints_its_state(tv: Tv, config: Path) -> None:
    paired = pair_with_code(tv, config)
    assert paired.returncode == 0, paired.stderr
    for args in (["volume", "0.5"], ["layout", "speaker"], ["create-room", "movie"], ["invite", "show"],
                 ["mic", "on"], ["camera", "off"]):
        done = cli(config, "send", *args)
        assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
    assert tv.controller.commands[-6:] == [SetVolume(volume=0.5, id="1"), SetLayout(layout="speaker", id="1"),
                                           CreateRoom(name="movie", id="1"), ShowInvite(visible=True, id="1"),
                                           SetMic(enabled=True, id="1"), SetCamera(enabled=False, id="1")]
    status = cli(config, "send", "status")
    assert status.returncode == 0, status.stderr
    assert "Den TV: in room" in status.stdout and "room movie on this TV, invite ABCD-EFGH (shown)" in status.stdout
    assert "volume 0.50, layout speaker" in status.stdout
    assert "the TV's camera off, microphone on" in status.stdout
    raw = json.loads(cli(config, "send", "status", "--json").stdout)
    assert (raw["type"], raw["volume"], raw["layout"], raw["room"]) == ("state", 0.5, "speaker", "movie")
    devices = cli(config, "send", "devices")
    assert devices.returncode == 0 and "Ann's laptop" in devices.stdout and "(this phone)" in devices.stdout
    assert not any(isinstance(c, StatusCommand) for c in tv.controller.commands)  # status is the TV's own


def test_playback_commands_reach_the_tv_and_status_says_what_plays(tv: Tv, config: Path) -> None:
    assert pair_with_code(tv, config).returncode == 0
    refused = cli(config, "send", "play")
    assert refused.returncode == 1 and "nothing is loaded" in refused.stderr and "no_content" in refused.stderr
    for args in (["load", "http://nas.local:8080/films/Big Buck Bunny.mp4", "--title", "Bunny"], ["pause"],
                 ["seek", "1:02:03.5"], ["play"], ["seek", "90"]):
        done = cli(config, "send", *args)
        assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
    assert tv.controller.commands[-5:] == [
        Playback(id="1", action="load", content="http://nas.local:8080/films/Big Buck Bunny.mp4", title="Bunny"),
        Playback(id="1", action="pause"), Playback(id="1", action="seek", position=3723.5),
        Playback(id="1", action="play"), Playback(id="1", action="seek", position=90.0)]
    status = cli(config, "send", "status")
    assert "playing Bunny at 1:30 of 1:30:00" in status.stdout, status.stdout
    raw = json.loads(cli(config, "send", "status", "--json").stdout)
    assert raw["playback"] == {"content": "http://nas.local:8080/films/Big Buck Bunny.mp4", "title": "Bunny",
                               "playing": True, "position": 90.0, "duration": 5400.0, "waiting": False,
                               "live": False, "delay": None}
    assert cli(config, "send", "load", "/srv/films/a.mkv").returncode == 0
    assert cli(config, "send", "pause").returncode == 0
    assert "paused /srv/films/a.mkv at 0:00 of 1:30:00" in cli(config, "send", "status").stdout
    assert cli(config, "send", "stop").returncode == 0
    assert tv.controller.commands[-1] == Playback(id="1", action="stop")
    assert "playing" not in cli(config, "send", "status").stdout


def test_a_refused_command_exits_1_with_the_tvs_message(tv: Tv, config: Path) -> None:
    assert pair_with_code(tv, config).returncode == 0
    refused = cli(config, "send", "remove", "bob")
    assert refused.returncode == 1
    assert "only the room's host can do that" in refused.stderr and "not_host" in refused.stderr
    unknown = cli(config, "send", "forget-device", "dev_nobody")
    assert unknown.returncode == 1 and "device_not_found" in unknown.stderr


def test_watch_prints_each_pushed_state_until_ctrl_c(tv: Tv, config: Path) -> None:
    assert pair_with_code(tv, config).returncode == 0
    watch = start_cli(config, "watch", "--json")
    try:
        assert watch.stdout is not None
        first = json.loads(watch.stdout.readline())
        assert (first["type"], first["volume"]) == ("state", 0.8)
        assert cli(config, "send", "volume", "0.25").returncode == 0
        second = json.loads(watch.stdout.readline())
        assert second["volume"] == 0.25
        assert cli(config, "send", "layout", "watch").returncode == 0
        third = json.loads(watch.stdout.readline())
        assert (third["volume"], third["layout"]) == (0.25, "watch")
        watch.send_signal(signal.SIGINT)
        assert watch.wait(10) == 0
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()


def test_watch_in_text_prints_one_line_per_change(tv: Tv, config: Path) -> None:
    assert pair_with_code(tv, config).returncode == 0
    watch = start_cli(config, "watch")
    try:
        assert watch.stdout is not None
        assert "Den TV: idle, volume 0.80, layout grid" in watch.stdout.readline()
        assert cli(config, "send", "create-room", "film").returncode == 0
        assert "in room, room film on this TV, invite ABCD-EFGH (hidden)" in watch.stdout.readline()
        watch.send_signal(signal.SIGINT)
        assert watch.wait(10) == 0
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()


def test_forget_makes_the_tv_refuse_the_credential_and_deletes_it(tv: Tv, config: Path) -> None:
    assert pair_with_code(tv, config).returncode == 0
    [paired] = stored(config)
    forgot = cli(config, "forget")
    assert forgot.returncode == 0, forgot.stderr
    assert "forgot this phone" in forgot.stdout
    assert stored(config) == [] and tv.devices.list() == []
    with pytest.raises(RemoteLinkError) as refused:
        asyncio.run(RemoteLink.connect(tv.url, paired.credential))
    assert refused.value.code == "auth_failed"
    again = cli(config, "send", "status")
    assert again.returncode == 2 and "no paired TV" in again.stderr


def test_forget_with_the_tv_unreachable_deletes_locally_and_says_the_tv_still_lists_it(config: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    CredentialFile(config).add(PairedTv(url=f"http://127.0.0.1:{port}", tv_name="Gone TV", device_id="dev_x",
                                        credential="tvd_secret"))
    forgot = cli(config, "forget")
    assert forgot.returncode == 0, forgot.stderr
    assert "still lists this phone" in forgot.stdout and "tvd_secret" not in forgot.stdout + forgot.stderr
    assert stored(config) == []


def test_a_forgotten_phone_is_told_to_pair_again(tv: Tv, config: Path) -> None:
    assert pair_with_code(tv, config).returncode == 0
    [paired] = stored(config)
    tv.devices.revoke(paired.device_id, time.time())
    refused = cli(config, "send", "status")
    assert refused.returncode == 1 and "no longer accepts this phone" in refused.stderr


@pytest.mark.parametrize("args, message", [
    (["send", "dance"], "unknown command 'dance'"),
    (["send", "volume", "2"], "volume is from 0 to 1"),
    (["send", "volume", "loud"], "volume is a number"),
    (["send", "layout", "mosaic"], "must be one of grid, speaker, watch"),
    (["send", "mic", "maybe"], "mic takes on or off"),
    (["send", "join"], "usage: send join CODE"),
    (["send", "seek"], "usage: send seek SECONDS"),
    (["send", "seek", "soon"], "seek takes seconds (90) or M:SS"),
    (["send", "seek", "1:75"], "seek takes a point in the content from 0 on"),
    (["send", "seek", "1e9"], "seek: position: must be between 0 and 604800 seconds"),
    (["send", "play", "now"], "usage: send play"),
    (["send", "pause", "--title", "A"], "--title goes with load only"),
    (["send", "load"], "usage: send load URL_OR_PATH"),
    (["send", "load", "film.mp4"], "a media URL or an absolute path on the TV"),
    (["send", "load", "/" + "a" * 2048], "load: content: longer than 2048 characters"),
    (["send", "status"], "no paired TV"),
    (["watch"], "no paired TV"),
    (["forget"], "no paired TV"),
    (["pair"], "say which TV"),
    (["pair", "--tv", "ftp://x"], "http:// or https://"),
])
def test_bad_input_exits_2_with_a_clear_message(config: Path, args: list[str], message: str) -> None:
    done = cli(config, *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_several_paired_tvs_need_tv_to_pick_one(tv: Tv, config: Path) -> None:
    assert pair_with_code(tv, config).returncode == 0
    CredentialFile(config).add(PairedTv(url="http://127.0.0.1:9", tv_name="Attic TV", device_id="dev_y",
                                        credential="tvd_other"))
    ambiguous = cli(config, "send", "status")
    assert ambiguous.returncode == 2 and "several TVs are paired" in ambiguous.stderr
    by_name = cli(config, "send", "--tv", "den tv", "volume", "0.4")
    assert by_name.returncode == 0, by_name.stderr
    by_url = cli(config, "--tv", tv.url, "send", "status")
    assert by_url.returncode == 0 and "volume 0.40" in by_url.stdout
    nowhere = cli(config, "send", "--tv", "Kitchen TV", "status")
    assert nowhere.returncode == 2 and "no paired TV is called or at 'Kitchen TV'" in nowhere.stderr


def test_https_pins_the_certificate_and_refuses_another(tmp_path: Path, config: Path) -> None:
    for tv in _serve(tmp_path / "tv", tls=True):
        assert tv.url.startswith("https://") and tv.fingerprint is not None
        paired = pair_with_code(tv, config)
        assert paired.returncode == 0, paired.stderr
        [entry] = stored(config)
        assert entry.fingerprint is not None and fingerprints_equal(entry.fingerprint, tv.fingerprint)
        status = cli(config, "send", "status")
        assert status.returncode == 0 and "Den TV: idle" in status.stdout
        CredentialFile(config).save([dataclasses.replace(entry, fingerprint=fingerprint_of(b"another cert"))])
        refused = cli(config, "send", "status")
        assert refused.returncode == 1 and "certificate changed" in refused.stderr
        wrong_pin = cli(config, "pair", "--tv", tv.url, "--code", "123456", "--fingerprint", fingerprint_of(b"x"))
        assert wrong_pin.returncode == 1 and "certificate changed" in wrong_pin.stderr


def test_an_http_url_of_a_tls_tv_falls_back_to_https(tmp_path: Path, config: Path) -> None:
    for tv in _serve(tmp_path / "tv", tls=True):
        plain = "http://" + tv.url.removeprefix("https://")
        asyncio.run(request_pairing(tv.url, "test", tv.fingerprint))
        paired = cli(config, "pair", "--tv", plain, "--code", tv.controller.code())
        assert paired.returncode == 0, paired.stderr
        assert "it is pinned from now on" in paired.stderr
        [entry] = stored(config)
        assert entry.url == tv.url and entry.fingerprint is not None
        assert fingerprints_equal(entry.fingerprint, tv.fingerprint or "")


def test_credential_file_keeps_one_entry_per_tv_and_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "tvapp" / "remote.json"
    store = CredentialFile(path)
    store.add(PairedTv(url="http://10.0.0.2:7881", tv_name="Den", device_id="dev_1", credential="tvd_1"))
    store.add(PairedTv(url="http://10.0.0.2:7881/", tv_name="Den", device_id="dev_2", credential="tvd_2"))
    store.add(PairedTv(url="https://10.0.0.3:7881", tv_name="Attic", device_id="dev_3", credential="tvd_3",
                       fingerprint="sha256:AA"))
    assert [t.device_id for t in store.load()] == ["dev_2", "dev_3"]
    assert store.pick("ATTIC").device_id == "dev_3" and store.pick("http://10.0.0.2:7881").device_id == "dev_2"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    store.remove(store.pick("Den"))
    assert store.pick(None).tv_name == "Attic"
    assert not [p for p in path.parent.iterdir() if p.name != "remote.json"]  # no temp files left behind


def test_remote_help_lists_every_action() -> None:
    done = subprocess.run([sys.executable, "-m", "tvapp", "remote", "--help"], capture_output=True, text=True,
                          cwd=REPO, timeout=30)
    for action in ("discover", "pair", "send", "watch", "forget"):
        assert action in done.stdout
    for action in ("pair", "send", "watch", "forget"):
        helped = subprocess.run([sys.executable, "-m", "tvapp", "remote", action, "--help"], capture_output=True,
                                text=True, cwd=REPO, timeout=30)
        assert helped.returncode == 0 and "usage: tvapp remote " + action in helped.stdout



# --- join on another core: what `send join ...` becomes -------------------------------------------------------


def test_send_join_takes_a_code_a_link_or_a_server_and_code() -> None:
    from tvapp.commands.remote_text import UsageError, build_command
    from tvapp.protocol.remote_messages import JoinRoom, JoinServer

    fp = "sha256:" + ":".join(["AB"] * 32)
    assert build_command("join", ["abcd-efgh"]) == JoinRoom(invite="abcd-efgh")
    link = build_command("join", ["https://core.example/?code=ABCD-EFGH"])
    assert isinstance(link, JoinServer) and link.target() == ("https://core.example", "ABCDEFGH", None)
    pinned = build_command("join", ["https://192.168.1.9:8800", "ABCD-EFGH"], fingerprint=fp)
    assert isinstance(pinned, JoinServer) and pinned.target() == ("https://192.168.1.9:8800", "ABCDEFGH", fp)
    bare = build_command("join", ["192.168.1.9:8800/?code=ABCDEFGH"])
    assert isinstance(bare, JoinServer) and bare.target().server == "http://192.168.1.9:8800"
    with pytest.raises(UsageError, match="--fingerprint goes with join only"):
        build_command("volume", ["0.5"], fingerprint=fp)
    with pytest.raises(UsageError, match="goes with https only"):
        build_command("join", ["http://192.168.1.9:8800", "ABCD-EFGH"], fingerprint=fp)
    with pytest.raises(UsageError, match="usage: send join"):
        build_command("join", ["a", "b", "c"])
