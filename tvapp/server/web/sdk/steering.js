// tvapp SDK: the pure parts of keeping a <video> on the room's timeline (used by the SDK's SyncedVideo and by the
// phone page's watch.js). Clock: NTP-style ping/pong over signaling, estimated like tvapp/core/clocksync.py (the
// lowest-delay quarter of the last 60 exchanges, weighted mean). Timeline: tvapp/core/playback.py
// (PlaybackState.position_at). Steering: far off it seeks; within SEEK_THRESHOLD_S it nudges playbackRate by
// GAIN * error (at most 5 %), and leaves the rate at 1 inside a 15 ms deadband (7.5 ms once it is correcting). The
// error is measured on presented frames (requestVideoFrameCallback: each frame's middle against the timeline at its
// display time) when there are enough of them, else on video.currentTime.

export const BURST_PINGS = 8;
export const BURST_INTERVAL_MS = 100;
export const STEADY_INTERVAL_MS = 1000;
const MAX_SAMPLES = 60;
const BEST_FRACTION = 0.25;
const MIN_BEST = 4;
const DELAY_SCALE_S = 0.001;
const MAX_PENDING_PINGS = 32;

export const SEEK_THRESHOLD_S = 0.5;
export const DEADBAND_S = 0.015;
export const SETTLED_S = 0.0075;
export const GAIN = 0.8;
export const MAX_RATE_CHANGE = 0.05;
export const PRESENTED_MIN = 3;
export const FRAME_S = Object.freeze({ min: 1 / 120, max: 1 / 10 });

/** Return this machine's wall clock in seconds (performance-based, monotonic within a page). */
export const localNow = () => (performance.timeOrigin + performance.now()) / 1000;

/** The server's clock as seen from here, from ping/pong exchanges. `now` is injectable for tests. */
export class RoomClock {
  constructor(now = localNow) {
    this.now = now;
    this.samples = []; // {offset, delay}, oldest first
    this.pending = []; // t0 of pings not answered yet, oldest first
    this.offset = null;
    this.delay = null;
    this.exchanges = 0;
  }

  /** Return the t0 for a ping about to be sent (and remember it). */
  stamp() {
    const t0 = this.now();
    this.pending.push(t0);
    if (this.pending.length > MAX_PENDING_PINGS) this.pending.shift();
    return t0;
  }

  /** Return how long to wait before the next ping: a burst first, then steady. */
  nextPingMs() {
    return this.exchanges < BURST_PINGS ? BURST_INTERVAL_MS : STEADY_INTERVAL_MS;
  }

  /** Take a pong received at `t3`; false when it answers no ping of ours or makes no sense. */
  pong(msg, t3 = this.now()) {
    const t0 = Number(msg.t0);
    const index = this.pending.findIndex((sent) => Math.abs(sent - t0) < 1e-6);
    if (index < 0) return false;
    this.pending.splice(0, index + 1); // older pings went unanswered: forget them
    const t1 = Number(msg.t1);
    const t2 = Number(msg.t2);
    if (![t1, t2].every(Number.isFinite) || t3 < t0 || t2 < t1) return false;
    const delay = (t3 - t0) - (t2 - t1);
    if (delay < -0.001) return false;
    this.samples.push({ offset: ((t1 - t0) + (t2 - t3)) / 2, delay: Math.max(delay, 0) });
    if (this.samples.length > MAX_SAMPLES) this.samples.shift();
    this.exchanges += 1;
    this.estimate();
    return true;
  }

  /** Recompute offset and delay from the samples. */
  estimate() {
    const ranked = this.samples.slice().sort((a, b) => a.delay - b.delay);
    const chosen = ranked.slice(0, Math.max(MIN_BEST, Math.ceil(ranked.length * BEST_FRACTION)));
    const best = chosen[0].delay;
    let total = 0;
    let sum = 0;
    for (const s of chosen) {
      const weight = 1 / (1 + ((s.delay - best) / DELAY_SCALE_S) ** 2);
      total += weight;
      sum += weight * s.offset;
    }
    this.offset = sum / total;
    this.delay = best;
  }

  /** Return the server's clock now (seconds), or null before the first exchange. */
  serverNow() {
    return this.offset === null ? null : this.now() + this.offset;
  }

  /** Return the local time of a server time, or null before the first exchange. */
  localTimeOf(serverTime) {
    return this.offset === null ? null : serverTime - this.offset;
  }
}

/** Return whether a playback state's timeline runs (content, playing, nobody waited for). */
export function moving(state) {
  return Boolean(state && state.content && state.playing && !(state.waiting_for || []).length);
}

/** Return the timeline's position at server time `serverTime` (as PlaybackState.position_at). */
export function positionAt(state, serverTime) {
  let position = state.position;
  if (moving(state) && serverTime > state.at) position += state.rate * (serverTime - state.at);
  if (typeof state.duration === "number") position = Math.min(position, state.duration);
  return Math.max(0, position);
}

/**
 * Decide what to do about an error (video position minus timeline, seconds): {action: "seek"} when far off, else
 * {action: "rate", rate, correcting} (rate 1 inside the deadband).
 */
export function steer(error, correcting) {
  if (Math.abs(error) > SEEK_THRESHOLD_S) return { action: "seek", rate: 1, correcting: false };
  const limit = correcting ? SETTLED_S : DEADBAND_S;
  if (Math.abs(error) <= limit) return { action: "rate", rate: 1, correcting: false };
  const change = Math.max(-MAX_RATE_CHANGE, Math.min(MAX_RATE_CHANGE, GAIN * error));
  return { action: "rate", rate: 1 - change, correcting: true };
}

/** Return the median of a non-empty list of numbers. */
export function median(values) {
  const sorted = values.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Return the frame duration estimate after a step between consecutive frames' media times (or the old one). */
export function learnFrame(frameS, step) {
  if (step === null || step < FRAME_S.min || step > FRAME_S.max) return frameS;
  return frameS === null ? step : Math.min(step, 0.9 * frameS + 0.1 * step);
}

/** Return a presented frame's error: its middle (media time + half a frame) against the timeline at display time. */
export function frameError(state, mediaTime, frameS, displayServerTime) {
  return mediaTime + frameS / 2 - positionAt(state, displayServerTime);
}

/** Return the error to steer on: the presented frames' median when there are enough, else currentTime's. */
export function measuredError(presented, currentTime, target, paused) {
  return !paused && presented.length >= PRESENTED_MIN ? median(presented) : currentTime - target;
}
