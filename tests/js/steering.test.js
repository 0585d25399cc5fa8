// The playback steering's pure parts (shared by the SDK's SyncedVideo and the phone page's watch.js), on a fake clock.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RoomClock, moving, positionAt, steer, median, learnFrame, frameError, measuredError, DEADBAND_S, SETTLED_S,
  SEEK_THRESHOLD_S, MAX_RATE_CHANGE } from "../../tvapp/server/web/sdk/steering.js";

function fakeClock(start = 1000) {
  const clock = { t: start };
  clock.now = () => clock.t;
  return clock;
}

test("the clock's offset comes from the lowest-delay exchanges", () => {
  const t = fakeClock();
  const clock = new RoomClock(t.now);
  assert.equal(clock.serverNow(), null);
  // The server runs 5 s ahead; one slow, asymmetric exchange would mislead a plain mean.
  const exchange = (up, down) => {
    const t0 = clock.stamp();
    const t1 = t0 + up + 5;
    const t2 = t1 + 0.001;
    t.t = t0 + up + 0.001 + down;
    assert.equal(clock.pong({ t0, t1, t2 }, t.t), true);
  };
  for (let i = 0; i < 7; i += 1) exchange(0.01, 0.01);
  exchange(0.4, 0.01);
  assert.ok(Math.abs(clock.offset - 5) < 1e-6, String(clock.offset));
  assert.ok(Math.abs(clock.serverNow() - (t.t + 5)) < 1e-6);
  assert.ok(Math.abs(clock.localTimeOf(t.t + 5) - t.t) < 1e-6);
  assert.ok(Math.abs(clock.delay - 0.02) < 1e-6);
});

test("a pong that answers no ping of ours is ignored; bursts then steady pings", () => {
  const t = fakeClock();
  const clock = new RoomClock(t.now);
  assert.equal(clock.pong({ t0: 1, t1: 2, t2: 2 }, 3), false);
  assert.equal(clock.nextPingMs(), 100);
  for (let i = 0; i < 8; i += 1) {
    const t0 = clock.stamp();
    clock.pong({ t0, t1: t0, t2: t0 }, t0);
  }
  assert.equal(clock.nextPingMs(), 1000);
});

const playing = { content: "/media/a.mp4", playing: true, position: 10, rate: 1, at: 100, waiting_for: [], duration: 60 };

test("the timeline moves only while playing with nobody waited for, and stops at the duration", () => {
  assert.equal(positionAt(playing, 105), 15);
  assert.equal(positionAt(playing, 99), 10);
  assert.equal(positionAt(playing, 1000), 60);
  assert.equal(positionAt({ ...playing, playing: false }, 105), 10);
  assert.equal(moving({ ...playing, waiting_for: ["tv"] }), false);
  assert.equal(positionAt({ ...playing, waiting_for: ["tv"] }, 105), 10);
  assert.equal(moving(null), false);
});

test("inside the 15 ms deadband the rate stays 1; outside it the rate is nudged by 0.8 x error", () => {
  assert.deepEqual(steer(0.014, false), { action: "rate", rate: 1, correcting: false });
  assert.deepEqual(steer(-0.015, false), { action: "rate", rate: 1, correcting: false });
  const ahead = steer(0.02, false);
  assert.equal(ahead.action, "rate");
  assert.ok(Math.abs(ahead.rate - (1 - 0.8 * 0.02)) < 1e-12);
  assert.equal(ahead.correcting, true);
  const behind = steer(-0.02, false);
  assert.ok(behind.rate > 1);
  assert.equal(DEADBAND_S, 0.015);
});

test("once correcting it keeps going until within 7.5 ms", () => {
  assert.equal(steer(0.01, true).correcting, true);
  assert.equal(steer(SETTLED_S, true).correcting, false);
  assert.equal(steer(SETTLED_S, true).rate, 1);
});

test("the rate change is at most 5 % and far off it seeks", () => {
  assert.equal(steer(0.4, false).rate, 1 - MAX_RATE_CHANGE);
  assert.equal(steer(-0.4, false).rate, 1 + MAX_RATE_CHANGE);
  assert.equal(steer(SEEK_THRESHOLD_S + 0.001, false).action, "seek");
  assert.equal(steer(-(SEEK_THRESHOLD_S + 0.001), true).action, "seek");
});

test("the error is the presented frames' median when there are 3 or more, else currentTime's", () => {
  assert.equal(measuredError([0.03, 0.01, 0.02], 5, 4, false), 0.02);
  assert.equal(measuredError([0.03, 0.01], 5, 4, false), 1);
  assert.equal(measuredError([0.03, 0.01, 0.02], 5, 4, true), 1);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test("a presented frame's error is its middle against the timeline at its display time", () => {
  // A 25 fps frame at media time 15.0 shown at server time 105.0 (timeline 15.0): its middle is 20 ms ahead.
  assert.ok(Math.abs(frameError(playing, 15.0, 0.04, 105) - 0.02) < 1e-9);
});

test("the frame duration is learnt from plausible steps only, and moves a tenth of the way per step", () => {
  assert.equal(learnFrame(null, null), null);
  assert.equal(learnFrame(null, 0.5), null); // a seek, not a frame
  assert.equal(learnFrame(null, 0.04), 0.04);
  assert.ok(Math.abs(learnFrame(0.04, 0.08) - 0.044) < 1e-12); // a dropped frame moves it a tenth of the way
  assert.ok(learnFrame(0.04, 0.033) < 0.04);
});
