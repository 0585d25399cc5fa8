"""Freeze time and audio loss per subscriber in a 6-person room with one member on 600 kb/s and one on 3 Mb/s.

    python -m bench.quality [--quick] [--seconds S]

Three `tvapp bot` publishers (500 kb/s of noise video each, the encoder needs all of it, and a tone; one talks)
and three measuring SDK subscribers (tvapp.testing.member): "good" on loopback, "mid" behind a userspace netem
link shaped to 3 Mb/s and "weak" behind one shaped to 600 kb/s (token bucket, 100 ms queue). The same room is
run twice in this run: with per-subscriber congestion handling (`[media] congestion_control = true`, the default)
and without it (`false`: today's behaviour, every subscriber gets every track), and a third time with congestion
handling and publishers sending a 160x90@15 rendition next to each video (`tvapp bot --simulcast`, simulcast by two
tracks: the SFU carries a congested subscriber's track as its low rendition before switching it off). For each
subscriber:

- stall_s_per_min: seconds a video track showed no new frame for > 500 ms while it was NOT switched off, per
  minute of measurement, summed over its video tracks (the freezes a viewer sees as stalls);
- switched_off_s_per_min: the same for gaps while the track was switched off (announced, a tile mark), counted
  from the switch events' times up to 1 s after a switch-on (the resume keyframe's way); a gap that lasts longer
  after its switch-on is a stall from then on (before, a gap that began switched off was announced all along);
- stall_kinds_s_per_min: the stalls by kind (tvapp.testing.congestion.freeze_kinds): after_switch_on (the frames
  did not come back after a switch-on), before_switch_off (they had stopped before the switch-off) and
  unannounced (no switch in the gap);
- audio_loss: fraction of its audio packets lost (RTP sequence gaps) over the measurement;
- video_fps: frames decoded per second over all its video tracks;
- video_s_per_min_by_size: seconds a video track decoded new frames at each size ("320x240" main, "160x90" the low
  rendition), per minute, summed over its video tracks (read from its 0.5 s stats lines).

The first 5 s after everyone is in are not measured (the start-up overload and its switch-offs).

For the simulcast-by-two-tracks decision it also measures what a second, low-resolution rendition would cost a
publisher (`rendition`): the SDK's encoder (tvapp.client.encoder, VP8 real-time) run on the same noise video at
the bots' 320x240@15, 500 kb/s, and at 160x90@15, 100 kb/s (scaling included): CPU seconds per second of video
and the bitrate it produced. `--rendition-only` runs just that part. Prints one JSON line; figures with the
command in bench/README.md.
"""

from __future__ import annotations

import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from bench.common import emit, parser
from tvapp.testing.congestion import (
    MemberProcess,
    audio_loss,
    freeze_kinds,
    freezes,
    noise_video,
    subscriptions,
    window,
)
from tvapp.testing.netem import NetemLink, netem_available, unique_name
from tvapp.testing.server import ServerProcess
from tvapp.testing.tv import BotProcess

PUBLISHERS = {"pa": [], "pb": ["--talk", "999998/1000000@1"], "pc": ["--talk", "999999/1000000@1"]}
LINKS_KBPS = {"weak": 600.0, "mid": 3000.0}
SETTLE_S = 5.0


def run_room(workdir: Path, links: dict[str, NetemLink], video: Path, *, congestion: bool,
             seconds: float, simulcast: bool = False) -> dict[str, Any]:
    """Run the room once; return each member's figures."""
    hosts = ",".join([*(link.host_ip for link in links.values()), "127.0.0.1"])
    server = ServerProcess(workdir / "server", host="0.0.0.0", env={
        "TVAPP_MEDIA_HOST_ADDRESSES": hosts, "TVAPP_SERVER_TLS": "off",
        "TVAPP_MEDIA_CONGESTION_CONTROL": "true" if congestion else "false"}).start()
    port = server.url.rsplit(":", 1)[1]
    server.http.post("/v1/rooms", json={"name": "q"})
    bots: list[BotProcess] = []
    members: dict[str, MemberProcess] = {}
    try:
        for name, extra in PUBLISHERS.items():
            bots.append(BotProcess(workdir, name, ["--server", f"http://127.0.0.1:{port}", "--token",
                                                   server.token("q", name)["access_token"], "--video", str(video),
                                                   *(["--simulcast"] if simulcast else []), *extra]))
        for bot in bots:
            bot.wait_published(2, timeout=60)
        members["good"] = MemberProcess(workdir, "good", f"http://127.0.0.1:{port}",
                                        server.token("q", "good")["access_token"], host_address="127.0.0.1")
        for name, link in links.items():
            members[name] = MemberProcess(workdir, name, f"http://{link.host_ip}:{port}",
                                          server.token("q", name)["access_token"], host_address=link.ns_ip, link=link)
        for member in members.values():
            member.wait("6 subscriptions", lambda rs: len(subscriptions(rs)) >= 6, timeout=60)
        start = time.monotonic() + SETTLE_S
        end = start + seconds
        while time.monotonic() < end + 1.0:
            time.sleep(0.5)
            for member in members.values():
                if member.proc.poll() is not None:
                    raise RuntimeError(f"member {member.name} exited: {member.log_text()}")
        for member in members.values():
            member.stop()
        out = {}
        minutes = seconds / 60.0
        for name, member in members.items():
            records = member.records()
            stalls, announced = freezes(records, start, end)
            w = window(records, start, end)
            out[name] = {
                "stall_s_per_min": round(stalls / minutes, 2),
                "switched_off_s_per_min": round(announced / minutes, 2),
                "stall_kinds_s_per_min": {kind: round(s / minutes, 2) for kind, s in
                                          freeze_kinds(records, start, end).items() if kind != "switched_off"},
                "audio_loss": round(audio_loss(records, start, end), 4),
                "video_fps": round(sum(v["fps"] for v in w.values() if v["kind"] == "video"), 1),
                "video_s_per_min_by_size": {size: round(s / minutes, 1)
                                            for size, s in sorted(time_by_size(records, start, end).items())},
                "switched_off_events": sum(1 for r in records if r.get("event") == "track_switched_off"
                                           and start <= r["t"] <= end),
            }
        return out
    finally:
        for member in members.values():
            member.stop()
        for bot in bots:
            bot.stop()
        server.stop()


def time_by_size(records: list[dict[str, Any]], start: float, end: float) -> dict[str, float]:
    """Return, per decoded size ("WxH"), the seconds video tracks decoded new frames at it within [start, end]."""
    out: dict[str, float] = {}
    last: dict[str, tuple[float, int]] = {}  # sid -> (time, frames) of its previous stats line
    for r in records:
        if "stats" not in r:
            continue
        for sid, s in r["stats"].items():
            if s["kind"] != "video":
                continue
            before = last.get(sid)
            last[sid] = (r["t"], s["frames"])
            if before is None or not start <= r["t"] <= end or s["frames"] <= before[1] or not s.get("size"):
                continue
            key = f"{s['size'][0]}x{s['size'][1]}"
            out[key] = out.get(key, 0.0) + r["t"] - before[0]
    return out


def rendition_cost(video: Path, *, loops: int = 4) -> dict[str, Any]:
    """Encode the video as the bots publish it and as a 160x90 second rendition; return CPU and bitrate of each."""
    import av

    from tvapp.client.encoder import VideoEncoder

    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)]
    fps = 15
    out: dict[str, Any] = {}
    for label, (width, height, bps) in {"main_320x240": (320, 240, 500_000), "low_160x90": (160, 90, 100_000)}.items():
        encoder = VideoEncoder("vp8", width, height, fps=fps, bitrate=bps)
        sent = 0
        cpu = time.process_time()
        for index in range(loops * len(frames)):
            frame = av.VideoFrame.from_ndarray(frames[index % len(frames)], format="yuv420p")
            if (frame.width, frame.height) != (width, height):
                frame = frame.reformat(width=width, height=height)
            frame.pts, frame.time_base = index, Fraction(1, fps)
            sent += sum(packet.size for packet in encoder.encode(frame))
        seconds = loops * len(frames) / fps
        out[label] = {"cpu_s_per_s": round((time.process_time() - cpu) / seconds, 4),
                      "kbps": round(8 * sent / seconds / 1000, 1)}
    main, low = out["main_320x240"], out["low_160x90"]
    out["extra_cpu_share"] = round(low["cpu_s_per_s"] / main["cpu_s_per_s"], 3)
    out["extra_uplink_share"] = round(low["kbps"] / main["kbps"], 3)
    return out


def main() -> None:
    """Run the room with and without congestion handling and print the figures."""
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=40.0, help="measured seconds per run (default 40)")
    p.add_argument("--rendition-only", action="store_true", help="only the second rendition's encode cost")
    args = p.parse_args()
    seconds = 8.0 if args.quick else args.seconds
    if args.rendition_only:
        with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
            emit("quality", {"rendition": rendition_cost(noise_video(Path(tmp) / "noise.mp4"))})
        return
    problem = netem_available()
    if problem is not None:
        sys.exit(f"bench.quality needs network namespaces and TUN devices: {problem}")
    links: dict[str, NetemLink] = {}
    try:
        for seed, (name, kbps) in enumerate(LINKS_KBPS.items()):
            links[name] = NetemLink(unique_name("bq"), down_kbps=kbps, seed=seed)
        with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
            video = noise_video(Path(tmp) / "noise.mp4")
            figures: dict[str, Any] = {"measured_s": seconds, "links_kbps": LINKS_KBPS, "publishers": len(PUBLISHERS)}
            figures["rendition"] = rendition_cost(video)
            for label, congestion, simulcast in (("congestion_control", True, False),
                                                 ("baseline_without", False, False), ("simulcast", True, True)):
                workdir = Path(tmp) / label
                workdir.mkdir()
                figures[label] = run_room(workdir, links, video, congestion=congestion, seconds=seconds,
                                          simulcast=simulcast)
    finally:
        for link in links.values():
            link.close()
    with_, without = figures["congestion_control"], figures["baseline_without"]
    figures["goal_weak_audio_loss_below_1pct"] = with_["weak"]["audio_loss"] < 0.01
    figures["goal_no_stalls_on_unconstrained"] = with_["good"]["stall_s_per_min"] == 0
    figures["mid_stall_ratio_without_to_with"] = round(
        without["mid"]["stall_s_per_min"] / max(0.01, with_["mid"]["stall_s_per_min"]), 1)
    figures["weak_stall_ratio_without_to_with"] = round(
        without["weak"]["stall_s_per_min"] / max(0.01, with_["weak"]["stall_s_per_min"]), 1)
    sim = figures["simulcast"]
    figures["goal_simulcast_weak_audio_loss_below_1pct"] = sim["weak"]["audio_loss"] < 0.01
    figures["weak_switched_off_s_per_min_simulcast_vs_without"] = [
        sim["weak"]["switched_off_s_per_min"], with_["weak"]["switched_off_s_per_min"]]
    emit("quality", figures)


if __name__ == "__main__":
    main()
