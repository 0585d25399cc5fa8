"""Compositions: render a room session's recordings into one video file (grid, speaker or single layout).

    render      the renderer (PyAV decode, numpy compositing, H.264/AAC or VP8/Opus encode)
    worker      the job file the server hands a worker process, and its progress lines
    __main__    ``python -m tvapp.compose JOB.json``: the worker process the core starts per composition

The rules (request validation, tiles, the speaker timeline, progress) are pure, in tvapp.core.compositions.
"""
