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


def run_bench(name: str) -> dict[str, Any]:
    """Run `python -m bench.NAME --quick` and return its one JSON line."""
    proc = subprocess.run([sys.executable, "-m", f"bench.{name}", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
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
