import { test } from "node:test";
import assert from "node:assert/strict";
import { nextState, canTransition, reconnectStep, retryDelayMs, STATES }
  from "../../tvapp/server/web/sdk/state.js";

test("a room goes idle -> connecting -> connected, drops to reconnecting and comes back", () => {
  let s = "idle";
  for (const [event, want] of [["connect", "connecting"], ["joined", "connected"], ["drop", "reconnecting"],
    ["drop", "reconnecting"], ["joined", "connected"], ["leave", "disconnected"]]) {
    s = nextState(s, event);
    assert.equal(s, want, event);
  }
});

test("disconnected is final and nonsense transitions throw", () => {
  for (const event of ["connect", "joined", "drop", "leave", "end"]) assert.equal(canTransition("disconnected", event), false);
  assert.throws(() => nextState("idle", "drop"), /no transition from idle on drop/);
  assert.throws(() => nextState("connecting", "drop"));
  assert.deepEqual(STATES, ["idle", "connecting", "connected", "reconnecting", "disconnected"]);
});

const base = { since: 1000, resumeToken: "tok", refused: false, graceMs: 20000, giveUpMs: 120000 };

test("within the grace window with a resume token: resume", () => {
  assert.equal(reconnectStep({ ...base, now: 1000 }), "resume");
  assert.equal(reconnectStep({ ...base, now: 21000 }), "resume");
});

test("refused, past the grace window or without a token: rejoin as a new participant", () => {
  assert.equal(reconnectStep({ ...base, now: 2000, refused: true }), "rejoin");
  assert.equal(reconnectStep({ ...base, now: 21001 }), "rejoin");
  assert.equal(reconnectStep({ ...base, now: 2000, resumeToken: null }), "rejoin");
});

test("past giveUpMs: give up", () => {
  assert.equal(reconnectStep({ ...base, now: 121001 }), "give_up");
  assert.equal(reconnectStep({ ...base, now: 121000 }), "rejoin");
});

test("retries back off from 0.25 s doubling to at most 2 s", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 10].map(retryDelayMs), [250, 500, 1000, 2000, 2000, 2000]);
});

test("an error inside a session (not_allowed, rate limits) does not end it; removal and replacement do", async () => {
  const { SESSION_ENDING_ERRORS, FINAL_ERRORS } = await import("../../tvapp/server/web/sdk/state.js");
  for (const code of ["not_allowed", "data_rate_limited", "media_restart_too_soon", "bad_message", "resume_refused"]) {
    assert.equal(SESSION_ENDING_ERRORS.has(code), false, code);
    assert.equal(FINAL_ERRORS.has(code), false, code);
  }
  for (const code of ["removed", "room_completed", "replaced", "token_revoked"]) assert.ok(SESSION_ENDING_ERRORS.has(code));
  assert.ok(FINAL_ERRORS.has("room_full"));
});
