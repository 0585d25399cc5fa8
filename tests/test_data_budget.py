"""A sender's data budget: the pure token buckets (tvapp.core.budget) and the real server under a data flood.

Before the budget, 10,000 x 16 KB `send_data` from one participant filled a slower reader's queue past
`send_queue_max` and got that reader disconnected (`1008 too slow`). Now the flooder's messages past its budget
are dropped, it is told `data_rate_limited`, and the slow reader stays connected.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect

from tvapp.client.signaling import SignalClient, signal_url
from tvapp.core.budget import Bucket, DataBudget, DataVerdict
from tvapp.protocol.messages import Error, Ping, Pong, SendData
from tvapp.testing.server import ServerProcess

SEND, TELL, DROP = DataVerdict.SEND, DataVerdict.DROP_AND_TELL, DataVerdict.DROP


def test_a_full_budget_sends_its_burst_then_the_rate() -> None:
    budget = DataBudget.of(rate_bytes=1000, burst_bytes=3000, rate_messages=100, burst_messages=100)
    assert [budget.take(1000, 0.0) for _ in range(4)] == [SEND, SEND, SEND, TELL]
    assert budget.take(1000, 0.5) is DROP  # 500 bytes earned: not enough, and told moments ago
    assert budget.take(1000, 1.0) is SEND  # 1000 earned by now
    assert budget.take(1, 1.0) is TELL     # a second since the last telling
    assert budget.dropped == 3


def test_the_message_bucket_limits_small_messages() -> None:
    budget = DataBudget.of(rate_bytes=0, burst_bytes=0, rate_messages=2, burst_messages=3)
    assert [budget.take(1, 10.0) for _ in range(4)] == [SEND, SEND, SEND, TELL]
    assert budget.take(1, 10.4) is DROP
    assert budget.take(1, 10.5) is SEND   # one message earned in half a second at 2/s
    assert budget.take(10**9, 20.0) is SEND  # rate 0 on bytes: no byte limit


def test_a_dropped_message_costs_nothing_and_a_clock_going_back_earns_nothing() -> None:
    budget = DataBudget.of(rate_bytes=100, burst_bytes=100, rate_messages=10, burst_messages=10)
    assert budget.take(100, 5.0) is SEND
    for _ in range(50):
        budget.take(100, 5.0)
    assert budget.take(100, 6.0) is SEND  # the drops took nothing: one second refilled the whole 100
    assert budget.take(100, 1.0) is TELL  # back in time: no refill
    assert budget.bytes.level == 0


def test_bucket_refuses_negative_settings_and_never_exceeds_its_burst() -> None:
    with pytest.raises(ValueError):
        Bucket(-1, 10)
    with pytest.raises(ValueError):
        DataBudget.of(rate_bytes=10, burst_bytes=10, rate_messages=1, burst_messages=0)
    bucket = Bucket(10, 50)
    bucket.refill(0.0)
    bucket.refill(1000.0)
    assert bucket.level == 50


def test_a_flooder_is_limited_and_a_slow_reader_in_the_room_is_not_disconnected(server: ServerProcess) -> None:
    room = "flood-" + uuid.uuid4().hex[:8]
    payload = "x" * 16_000

    async def scenario() -> None:
        reader_token = server.token(room, "reader", host=True)["access_token"]
        async with ws_connect(signal_url(server.url), max_size=None, max_queue=1) as reader:  # reads no more than asked
            await reader.send(json.dumps({"type": "join", "v": 1, "token": reader_token}))
            assert json.loads(await reader.recv())["type"] == "joined"
            flooder = await SignalClient.connect(server.url, server.token(room, "flooder")["access_token"])
            await reader.recv()  # participant_joined: from here the reader stops reading until the flood is over
            started = time.monotonic()
            for _ in range(10_000):
                await flooder.send(SendData(payload=payload))
            await flooder.send(Ping(t0=time.time()))
            errors: list[Error] = []
            while not isinstance(message := await flooder.next(60), Pong):  # every send_data was handled by then
                assert isinstance(message, Error), message
                errors.append(message)
            elapsed = time.monotonic() - started
            # The slow reader now reads what was queued for it: data only, then it is still connected.
            await reader.send(json.dumps({"type": "ping", "v": 1, "t0": 1.0}))
            received = 0
            while True:
                message = json.loads(await asyncio.wait_for(reader.recv(), 10))
                if message["type"] == "pong":
                    break
                assert message["type"] == "data", message
                received += 1
            budget = 1_048_576 // 16_000 + 1 + elapsed * 262_144 / 16_000
            assert 1 <= received <= budget, (received, elapsed)
            assert errors and {e.code for e in errors} == {"data_rate_limited"}
            assert len(errors) <= elapsed + 2  # told about once a second, not once per dropped message
            await flooder.close()

    asyncio.run(asyncio.wait_for(scenario(), 120))


def test_a_byte_burst_below_one_data_message_is_refused_at_start(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tvapp", "serve", "--host", "127.0.0.1", "--port", "0", "--data",
                           str(tmp_path)], env={**os.environ, "TVAPP_SIGNAL_DATA_BURST_BYTES": "1000"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "config [signal]: data_burst_bytes must be at least 16384" in done.stdout + done.stderr
