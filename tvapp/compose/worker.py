"""The worker side of a composition: a job file in, JSON progress lines out (one per line on stdout).

The core writes ``{"request": {...}, "tracks": [...], "root": DIR, "output": FILE}`` to a file and starts
``python -m tvapp.compose FILE``; the worker prints ``{"done": s, "total": s}`` at most every PROGRESS_EVERY
seconds while it renders, then ``{"status": "completed", "duration": s}`` or ``{"status": "failed",
"reason": ...}`` and exits (0 or 1).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tvapp.compose.render import Job, RenderError, render
from tvapp.core.compositions import Request, Track

PROGRESS_EVERY = 0.25


def job_json(job: Job) -> dict[str, Any]:
    """Return a job as the worker's job file holds it."""
    return {"request": dataclasses.asdict(job.request), "tracks": [dataclasses.asdict(t) for t in job.tracks],
            "root": str(job.root), "output": str(job.output), "threads": job.threads}


def job_from_json(data: dict[str, Any]) -> Job:
    """Return the job a job file holds."""
    raw = dict(data["request"])
    for key in ("audio_sources", "video_sources"):
        if raw.get(key) is not None:
            raw[key] = tuple(raw[key])
    return Job(request=Request(**raw), tracks=[Track(**t) for t in data["tracks"]], root=Path(data["root"]),
               output=Path(data["output"]), threads=int(data.get("threads", 1)))


def run(job: Job, out: TextIO, every: float = PROGRESS_EVERY) -> int:
    """Render `job`, writing progress lines to `out` (at most one per `every` seconds); return the exit status."""
    last = [-1e9]

    def progress(done: float, total: float) -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            out.write(json.dumps({"done": round(done, 3), "total": round(total, 3)}) + "\n")
            out.flush()

    try:
        duration = render(job, progress)
    except RenderError as exc:
        out.write(json.dumps({"status": "failed", "reason": str(exc)[:300]}) + "\n")
        out.flush()
        return 1
    out.write(json.dumps({"done": duration, "total": duration}) + "\n")
    out.write(json.dumps({"status": "completed", "duration": round(duration, 3)}) + "\n")
    out.flush()
    return 0


def main(argv: list[str]) -> int:
    """Run the job in the file argv[0]."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m tvapp.compose JOB.json\n")
        return 2
    job = job_from_json(json.loads(Path(argv[0]).read_text()))
    return run(job, sys.stdout)
