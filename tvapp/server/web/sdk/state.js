// tvapp SDK: the room's connection state machine (pure: time comes in as an argument). A drop of the signaling
// websocket is a state, not a leave: the room resumes the same participant with its resume token for a while, joins
// afresh when the server refuses the resume (`resume_refused`: it let the participant go, or it restarted), and gives
// up after `giveUpMs`. As tvapp/core/reconnect.py on the server side.

export const STATES = Object.freeze(["idle", "connecting", "connected", "reconnecting", "disconnected"]);

const TRANSITIONS = Object.freeze({
  idle: { connect: "connecting", leave: "disconnected" },
  connecting: { joined: "connected", fail: "disconnected", leave: "disconnected", end: "disconnected" },
  connected: { drop: "reconnecting", leave: "disconnected", end: "disconnected", joined: "connected" },
  reconnecting: { joined: "connected", drop: "reconnecting", fail: "disconnected", leave: "disconnected",
    end: "disconnected" },
  disconnected: {},
});

/** Return the state after `event` in `state`; throw if the event makes no sense there. */
export function nextState(state, event) {
  const to = (TRANSITIONS[state] || {})[event];
  if (!to) throw new Error(`no transition from ${state} on ${event}`);
  return to;
}

/** Return whether `event` is possible in `state`. */
export function canTransition(state, event) {
  return Boolean((TRANSITIONS[state] || {})[event]);
}

// Errors in a joined session that end it (the server closes the connection next).
export const SESSION_ENDING_ERRORS = Object.freeze(new Set(["removed", "room_completed", "replaced",
  "token_revoked"]));
// Refusals of a (re)join that another try cannot fix: the room gives up on them.
export const FINAL_ERRORS = Object.freeze(new Set([...SESSION_ENDING_ERRORS, "room_full", "room_not_found",
  "forbidden", "identity_taken", "invalid_token", "unauthorized"]));

/**
 * Decide the next reconnect step: "resume" (the server may still keep this participant), "rejoin" (join afresh as
 * a new participant), "wait" (try again in `retryMs`) or "give_up".
 * @param {{since: number, now: number, resumeToken: string|null, refused: boolean, graceMs: number,
 *          giveUpMs: number}} p
 */
export function reconnectStep(p) {
  const elapsed = p.now - p.since;
  if (elapsed > p.giveUpMs) return "give_up";
  if (p.resumeToken && !p.refused && elapsed <= p.graceMs) return "resume";
  return "rejoin";
}

/** Return how long to wait before reconnect attempt number `attempt` (1, 2, ...): 0.25 s doubling to 2 s. */
export function retryDelayMs(attempt) {
  return Math.min(2000, 250 * 2 ** Math.max(0, attempt - 1));
}
