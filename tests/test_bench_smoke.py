"""Smoke test of the benchmarks: each runs with tiny sizes as a real subprocess and prints one sound JSON line.

Checks shape and internal consistency only, never speed: benchmarks report numbers, tests check behaviour.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_bench(name: str, timeout: float = 60) -> dict[str, Any]:
    """Run `python -m bench.NAME --quick` and return its one JSON line."""
    proc = subprocess.run([sys.executable, "-m", f"bench.{name}", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    result = json.loads(lines[0])
    assert result["benchmark"] == name
    assert result["cores"] == os.cpu_count()
    assert isinstance(result["pinned"], bool)
    return result  # type: ignore[no-any-return]


def assert_latency(figure: dict[str, float]) -> None:
    assert 0 < figure["p50_ms"] <= figure["p95_ms"] <= figure["max_ms"]


def test_join_latency_quick_prints_its_figures() -> None:
    result = run_bench("join_latency")
    assert result["clients"] == 5 and result["rounds"] == 2 and result["samples"] == 10
    for key in ("join", "baseline_ping", "connect", "connect_join_cold"):
        assert_latency(result[key])
    ratio = result["join"]["p95_ms"] / result["baseline_ping"]["p95_ms"]
    assert result["ratio_join_p95_to_ping_p95"] == pytest.approx(ratio, rel=0.02)
    assert result["goal_met"] == (result["join"]["p95_ms"] <= result["goal_join_p95_ms"])
    assert 0 < result["client_cpu_busy_during_joins"]
    assert result["server_cpu_ms_per_join"] >= 0  # whole 10 ms kernel ticks: a quick run may see none


def test_rest_throughput_quick_prints_its_figures() -> None:
    result = run_bench("rest_throughput")
    assert result["connections"] == 4
    for key in ("healthz", "reads", "writes_4_connections", "writes_1_connection"):
        figure = result[key]
        assert figure["per_s"] > 0, key
        assert 0 <= figure["load_cpu_busy"] and 0 <= figure["server_cpu_busy"], key
    ratio = result["reads"]["per_s"] / result["healthz"]["per_s"]
    assert result["ratio_reads_to_healthz"] == pytest.approx(ratio, rel=0.02)
    assert result["goal_met"] == (result["reads"]["per_s"] >= result["goal_reads_per_s"]
                                  and result["writes_4_connections"]["per_s"] >= result["goal_writes_per_s"])


def test_sfu_fanout_quick_prints_its_figures() -> None:
    result = run_bench("sfu_fanout")
    assert result["subscribers"] == 5 and result["measured_s"] == 3.0
    for phase in ("sfu", "relay"):
        figures = result[phase]
        for kind in ("video", "audio"):
            assert figures["received"][kind]["frames"] > 0, (phase, kind)
            assert figures["frames_sent"][kind] > 0, (phase, kind)
        assert figures["cpu_busy"] > 0, phase
    assert result["sfu"]["errors"] == []
    forwarding = result["sfu"]["forwarding"]
    assert forwarding["samples"] > 0
    assert 0 <= forwarding["p50_ms"] <= forwarding["p95_ms"] <= forwarding["max_ms"]
    ratio = result["relay"]["cpu_busy"] / result["sfu"]["cpu_busy"]
    assert result["cpu_ratio_relay_to_sfu"] == pytest.approx(ratio, rel=0.02)
    assert result["goal_met"] == (result["cpu_ratio_relay_to_sfu"] >= result["goal_cpu_ratio"]
                                  and forwarding["p95_ms"] <= result["goal_forwarding_p95_ms"])


def test_sfu_room_quick_prints_its_figures() -> None:
    result = run_bench("sfu_room")
    assert result["participants"] == 6
    for phase in ("sfu", "udp_relay"):
        figures = result[phase]
        received = figures["received"]
        for kind in ("video", "audio"):
            assert received[kind]["frames"] > 0 and received[kind]["expected"] > 0, (phase, kind)
        packets = received["video"]["packets"] + received["audio"]["packets"]
        assert figures["forwarded_packets_per_s"] == pytest.approx(packets / result["measured_s"], rel=0.2), phase
        frames = received["video"]["frames"] + received["audio"]["frames"]
        expected = received["video"]["expected"] + received["audio"]["expected"]
        assert figures["frame_loss_pct"]["all"] == pytest.approx(100 * (1 - frames / expected), abs=0.01), phase
    sfu = result["sfu"]
    assert sfu["cpu_busy"] > 0 and sfu["packets_per_core_s"] > 0
    assert result["goal_met"] == (sfu["cpu_busy"] <= result["goal_cpu_busy"]
                                  and sfu["frame_loss_pct"]["all"] < result["goal_loss_pct"]
                                  and sfu["packets_per_core_s"] >= result["goal_packets_per_core_s"])


def test_glass_to_glass_quick_prints_its_figures() -> None:
    result = run_bench("glass_to_glass")
    for mode in ("sfu", "p2p"):
        figures = result[mode]
        assert figures["samples"] > 0 and figures["frames_per_s"] > 0, mode
        assert_latency(figures)
    assert result["sfu_added_p95_ms"] == pytest.approx(result["sfu"]["p95_ms"] - result["p2p"]["p95_ms"], abs=0.02)
    assert result["goal_met"] == (result["sfu"]["p95_ms"] <= result["goal_p95_ms"])


def test_sfu_memory_quick_prints_its_figures() -> None:
    result = run_bench("sfu_memory")
    assert result["participants"] == [2]
    for mode in ("media", "signaling"):
        figures = result[mode]["2"]
        assert figures["rss_empty_kib"] > 0 and figures["rss_full_kib"] > 0, mode
        assert figures["per_participant_kib"] == round((figures["rss_full_kib"] - figures["rss_empty_kib"]) / 2), mode


def test_speaker_switch_quick_prints_its_figures() -> None:
    result = run_bench("speaker_switch")
    assert result["benchmark"] == "speaker_switch" and result["cores"] >= 1
    detector, baseline = result["detector"], result["baseline_loudest_300ms"]
    assert 0 < detector["switch_p50_ms"] <= detector["switch_p90_ms"]
    assert 0 < baseline["switch_p50_ms"] <= baseline["switch_p90_ms"]
    assert detector["switches"] > 0 and 0.0 <= detector["interjection_false_switch_rate"] <= 1.0


def test_tv_compositor_quick_prints_its_figures() -> None:
    result = run_bench("tv_compositor")
    assert result["screen"] == "1920x1080" and result["tiles"] == 6 and result["frames_per_way"] == 120
    for way in ("ours_ms", "naive_ms", "naive_even_width_ms", "naive_even_width_kept_scaler_ms"):
        figure = result[way]
        assert 0 < figure["p50"] <= figure["p95"] and figure["mean"] > 0, way
    assert result["speedup"] == pytest.approx(result["naive_ms"]["mean"] / result["ours_ms"]["mean"], rel=0.02)
    frames = result["ours_frames"]
    assert frames["received"] == frames["converted"] + frames["skipped"]
    assert result["ours_conversions_per_frame"] == pytest.approx(3.0, abs=0.1)  # six 30 fps tiles at 60 fps
    assert result["goal_met"] == (result["ours_ms"]["mean"] <= result["goal_ms"]
                                  and result["speedup"] >= result["goal_speedup"])


def test_tv_pipeline_quick_prints_its_figures() -> None:
    result = run_bench("tv_pipeline", timeout=150)
    assert result["streams"] == 5 and result["screen"] == "1920x1080@30"
    assert 0 < result["baseline_decode_only_core_share"] and 0 < result["tv_core_share"]
    assert result["showing_and_playing_core_share"] == pytest.approx(
        result["tv_core_share"] - result["baseline_decode_only_core_share"], abs=0.002)
    assert len(result["shown_fps_per_stream"]) == 5 and min(result["shown_fps_per_stream"]) > 0
    assert result["loop_fps"] > 0 and result["longest_frame_interval_ms"] > 0


def test_tv_camera_quick_prints_its_figures() -> None:
    result = run_bench("tv_camera", timeout=180)
    assert result["streams_received"] == 5 and result["screen"] == "1920x1080@30"
    assert 0 < result["tv_baseline_core_share"] and 0 < result["tv_publishing_core_share"]
    assert result["added_core_share"] == pytest.approx(
        result["tv_publishing_core_share"] - result["tv_baseline_core_share"], abs=0.002)
    assert result["camera_fps_read"] > 5        # the camera TV really captured (the bench checks it published)


def test_tv_latency_quick_prints_its_figures() -> None:
    result = run_bench("tv_latency", timeout=150)
    assert result["rounds"] == 2 and result["join_to_first_frame"]["samples"] == 2
    for figure in ("join_to_first_frame", "glass_to_glass", "baseline_sdk_capture_to_decoded"):
        assert_latency(result[figure])
    assert result["glass_to_glass"]["samples"] > 0
    assert result["audio_added_latency_ms"]["samples"] > 0
    lip = result["lip_sync_ms"]
    assert isinstance(lip["samples"], int)
    if lip["samples"]:
        assert lip["min"] <= lip["p5"] <= lip["p50"] <= lip["p95"] <= lip["max"]


def test_tv_remote_quick_prints_its_figures() -> None:
    result = run_bench("tv_remote", timeout=200)
    for key in ("discovery", "discovery_baseline_zeroconf_default", "command_to_screen", "command_baseline_status_rtt"):
        assert result[key]["p95_ms"] > 0, result
    assert result["rounds"] == 3


def test_watch_sync_quick_prints_its_figures() -> None:
    result = run_bench("watch_sync", timeout=400)
    for key in ("steady_offset", "frame_error", "clock_error", "clock_baseline_single_exchange"):
        assert result[key]["samples"] > 0 and result[key]["p95_ms"] >= 0, result
    assert result["baseline_loopback"]["steady_offset"]["samples"] > 0
    assert result["seek_resync_s"] is not None and result["resume_resync_s"] is not None, result


def test_watch_cpu_quick_prints_its_figures() -> None:
    result = run_bench("watch_cpu", timeout=400)
    assert 0 < result["tv_cpu_baseline_tiles_only"] and 0 < result["tv_cpu_with_content"], result
    assert result["content_shown"]["frames_per_s"] > 0, result


def test_reach_quick_prints_a_figure_per_path_each_over_the_path_it_names() -> None:
    result = run_bench("reach", timeout=150)
    assert result["runs"] == 2 and result["errors"] == {}, result["errors"]
    assert list(result["paths"]) == ["loopback", "direct", "nat_eim", "nat_symmetric", "turn_udp", "turn_tcp",
                                     "turn_tls"]
    for name, figure in result["paths"].items():
        assert figure["samples"] == 2, name
        assert_latency(figure)
        # each sample's nominated candidate proves the path: through coturn exactly where it says turn_
        assert figure["candidate"] == {"relay" if name.startswith("turn_") else "host": 2}, (name, figure)
    assert result["coturn_allocations"] >= 6
    assert result["goal_met"] == all(f["p95_ms"] <= result["goal_p95_ms"] for f in result["paths"].values())


def test_echo_quick_prints_its_figures() -> None:
    result = run_bench("echo", timeout=120)
    (run,) = result["runs"]
    assert run["delay_ms"] == 40 and run["agc"] is True
    assert run["erle_film_db"] > 0 and run["near_corr_raw_mic"] > 0 and 0 < run["cpu_core_fraction"] < 1
    assert result["tv_output"]["seconds"] >= 12.0
    assert result["goal_met"] == run["meets_goals"]


def test_recording_quick_prints_its_figures() -> None:
    result = run_bench("recording", timeout=120)
    assert result["participants"] == 6 and result["tracks_recorded"] == 12
    assert len(result["windows_cpu_busy"]) == 2 * result["rounds"]
    assert result["not_recorded_cpu_busy"] > 0 and result["recorded_cpu_busy"] > 0
    assert result["extra_cpu_of_a_core"] == pytest.approx(
        result["recorded_cpu_busy"] - result["not_recorded_cpu_busy"], abs=0.002)
    assert result["goal_met"] == (result["extra_cpu_of_a_core"] <= result["goal_extra_cpu"])
    recordings = result["recordings"]
    assert recordings["count"] >= 12 and recordings["completed"] == recordings["count"] and recordings["bytes"] > 0


def test_web_join_quick_prints_its_figures() -> None:
    result = run_bench("web_join", timeout=300)
    assert result["joins"] == 3
    assert_latency(result["web_page"])
    assert_latency(result["python_sdk"])
    assert 0 < result["sdk_gzip_kb"] < result["sdk_raw_kb"]
    assert result["size_goal_met"] == (result.get("sdk_min_gzip_kb", result["sdk_gzip_kb"]) <= 40.0)


def test_composition_quick_prints_its_figures() -> None:
    result = run_bench("composition", timeout=120)
    assert result["people"] == 6 and result["resolution"] == "640x360" and result["output_seconds"] == 6.0
    assert result["speed_x_realtime"] == pytest.approx(result["output_seconds"] / result["wall_seconds"], rel=0.02)
    assert result["met"] == (result["speed_x_realtime"] >= result["goal_x_realtime"]) and result["output_bytes"] > 0


def test_tv_decode_quick_prints_its_figures() -> None:
    result = run_bench("tv_decode", timeout=120)
    assert result["publishers"] == 2 and result["seconds"] == 3.0
    adaptive, full = result["adaptive"], result["baseline_full_size"]
    for run in (adaptive, full):
        assert run["tiles_with_video"] == 2 and run["tv_core_share"] > 0 and run["shown_mpixels_per_s"] > 0
        assert run["tv_cpu_ms_per_s"] == pytest.approx(1000 * run["tv_core_share"], abs=1.0)
        # The TV's own decode records: its decoders ran over the window, a part of its whole CPU.
        assert run["decoded_pictures_per_s"] > 0 and run["decode_cpu_ms_per_s"] > 0
        assert run["tracks_metered"] == 2  # room.decode_costs() found each tile's receiver
        assert run["decode_cpu_ms_per_s"] < run["tv_cpu_ms_per_s"]
        assert run["decode_cpu_ms_per_picture"] == pytest.approx(
            run["decode_cpu_ms_per_s"] / run["decoded_pictures_per_s"], rel=0.05, abs=0.01)
    assert full["median_decoded_size"] == "1280x720"  # no track_settings: full size
    w, h = map(int, adaptive["median_decoded_size"].split("x"))
    assert w < 1280 and h < 720  # two tiles on a 1920x1080 grid: scaled down to fit them
    # Decoded pixels follow the sizes: full-size pictures are the larger ones.
    assert full["decoded_mpixels_per_s"] / full["decoded_pictures_per_s"] == pytest.approx(1280 * 720 / 1e6, rel=0.05)
    assert adaptive["decoded_mpixels_per_s"] / adaptive["decoded_pictures_per_s"] < 0.9 * 1280 * 720 / 1e6
    ratio = full["decode_cpu_ms_per_s"] / adaptive["decode_cpu_ms_per_s"]
    assert result["decode_cpu_ratio_full_to_adaptive"] == pytest.approx(ratio, rel=0.02)
    assert result["goal_met"] == (result["rates_comparable"] and ratio >= 2.0)
    assert result["max_video_bitrate"] == 2_500_000 * 4 // 30  # a 30 fps camera's bits per picture at 4 fps
    whole = result["whole_process"]
    assert whole["cpu_ratio_full_to_adaptive"] == pytest.approx(full["tv_core_share"] / adaptive["tv_core_share"],
                                                                rel=0.02)
    # --quick runs no video-less TV: the whole process's video share is not estimated, said so by nulls.
    assert whole["tv_without_video_cpu_ms_per_s"] is None and whole["note"]
    assert whole["video_cpu_ms_per_s"] == {"adaptive": None, "full_size": None}
