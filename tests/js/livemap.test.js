// Mapping a live event's instants (program date-time) to a <video>'s media time through hls.js's fragments.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fragmentMap, nativeMap, toMedia, toInstant } from "../../tvapp/server/web/sdk/livemap.js";

const near = (a, b) => Math.abs(a - b) < 1e-9;

test("with program date-time each fragment maps through its own tag", () => {
  // ffmpeg's tags drift a few ms from the durations: the fragment holding the time decides.
  const map = fragmentMap([
    { sn: 8, start: 1.0, duration: 1.0, programDateTime: 1_700_000_010_000 },
    { sn: 7, start: 0.0, duration: 1.0, programDateTime: 1_700_000_009_000 },
    { sn: 9, start: 2.0, duration: 1.0, programDateTime: 1_700_000_011_004 },
  ], 1);
  assert.deepEqual(map.map((e) => e.start), [0, 1, 2]);
  assert.ok(near(toMedia(map, 1_700_000_009.5), 0.5));
  assert.ok(near(toMedia(map, 1_700_000_011.504), 2.5));
  assert.ok(near(toInstant(map, 2.5), 1_700_000_011.504));
  assert.ok(near(toInstant(map, 1.25), 1_700_000_010.25));
  // Beyond the window: through the nearest fragment.
  assert.ok(near(toMedia(map, 1_700_000_008.0), -1.0));
  assert.ok(near(toInstant(map, 3.5), 1_700_000_012.504));
});

test("without program date-time: media sequence x target duration, as the server's fallback", () => {
  const map = fragmentMap([
    { sn: 100, start: 12.0, duration: 2.0, programDateTime: null },
    { sn: 101, start: 14.0, duration: 1.5, programDateTime: null },
    { sn: 102, start: 15.5, duration: 2.0, programDateTime: null },
  ], 2);
  assert.deepEqual(map.map((e) => e.instant), [200, 202, 203.5]);
  assert.ok(near(toMedia(map, 203.75), 15.75));
  assert.ok(near(toInstant(map, 14.5), 202.5));
  assert.deepEqual(fragmentMap([{ start: 0, duration: 1, programDateTime: null }], 0), []);
});

test("nothing known yet maps nothing; native HLS maps from the start date", () => {
  assert.deepEqual(fragmentMap([], 1), []);
  assert.equal(toMedia([], 5), null);
  assert.equal(toInstant([], 5), null);
  assert.deepEqual(nativeMap(NaN), []);
  const map = nativeMap(1_700_000_000_000);
  assert.ok(near(toMedia(map, 1_700_000_012.5), 12.5));
  assert.ok(near(toInstant(map, 3), 1_700_000_003));
});
