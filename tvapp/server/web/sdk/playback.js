// tvapp SDK: the room's shared content. `room.playback` sends load/play/pause/seek/stop (the server decides who may:
// error `not_allowed`), keeps the latest playback_state (event "playback_changed") and, with `attach(video)`, keeps a
// <video> on the room's timeline: SyncedVideo steers on requestVideoFrameCallback presented frames (else currentTime)
// with steering.js's rules (seek when > 0.5 s off, else a playbackRate nudge outside a 15 ms deadband).

import { moving, positionAt, steer, measuredError, learnFrame, frameError, localNow } from "./steering.js";

const TICK_MS = 200;
const PAUSED_TOLERANCE_S = 0.04;
const FIRST_SEEK_LAG_S = 0.15;
const HAVE_METADATA = 1;

/** Where a browser can open a content: an http(s) URL or a file the core serves at /media/ (else null). */
export function playableUrl(content, base = "") {
  if (/^https?:\/\//i.test(content)) return content;
  if (content.startsWith("/media/")) return base + content;
  return null;
}

export class Playback {
  constructor(room) {
    this._room = room;
    this.state = null;
    this.synced = new Set();
  }

  /** Load `content` (a URL or /media/ path) for everyone, from `position`, playing unless `play` is false. */
  load(content, { title = "", position = 0, play = true } = {}) {
    return this._command({ action: "load", content, title, position, play });
  }

  /** Play the room's content. */
  play() {
    return this._command({ action: "play" });
  }

  /** Pause it. */
  pause() {
    return this._command({ action: "pause" });
  }

  /** Seek it to `position` seconds. */
  seek(position) {
    return this._command({ action: "seek", position });
  }

  /** Unload it. */
  stop() {
    return this._command({ action: "stop" });
  }

  /** Return the timeline's position now (seconds), or null without content or clock. */
  position() {
    const now = this._room.clock.serverNow();
    return this.state && now !== null ? positionAt(this.state, now) : null;
  }

  /** Keep `video` on the room's timeline; return a SyncedVideo (call its detach() to stop). */
  attach(video) {
    const synced = new SyncedVideo(video, this._room.clock, this._room.url);
    this.synced.add(synced);
    synced.detached = () => this.synced.delete(synced);
    if (this.state) synced.update(this.state);
    return synced;
  }

  _command(fields) {
    return this._room._send("playback", fields);
  }

  _onState(msg) {
    const previous = this.state;
    if (previous && previous.content === msg.content && msg.seq < previous.seq) return; // a stale copy
    this.state = { ...msg, waiting_for: Array.isArray(msg.waiting_for) ? msg.waiting_for.slice() : [] };
    for (const s of this.synced) s.update(this.state);
    this._room._emit("playback_changed", { state: this.state });
  }

  _tick() {
    for (const s of this.synced) s.tick();
  }

  _left() {
    this.state = null;
    for (const s of this.synced) s.update(null);
  }
}

/** A <video> kept on the room's timeline. */
export class SyncedVideo {
  constructor(video, clock, base) {
    this.video = video;
    this.clock = clock;
    this.base = base;
    this.state = null;
    this.src = null;
    this.correcting = false;
    this.seeks = 0;
    this.seekLag = FIRST_SEEK_LAG_S;
    this.lastError = null;
    this.presented = [];
    this.frameS = null;
    this.lastMediaTime = null;
    this.video.playsInline = true;
    this.video.preload = "auto";
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.frameHandle = "requestVideoFrameCallback" in video ? video.requestVideoFrameCallback(this._onFrame) : null;
  }

  /** Take a new playback state (null: nothing to show). */
  update(state) {
    const content = state ? state.content : "";
    if (!this.state || content !== this.state.content) this._open(content);
    this.state = state;
    this.correcting = false;
    this.tick();
  }

  /** Stop steering (the video keeps what it has). */
  detach() {
    clearInterval(this.timer);
    if (this.frameHandle !== null) this.video.cancelVideoFrameCallback(this.frameHandle);
    this.frameHandle = null;
    if (this.detached) this.detached();
  }

  _open(content) {
    const url = content ? playableUrl(content, this.base) : null;
    this.lastMediaTime = null;
    this.presented = [];
    if (url === this.src) return;
    this.src = url;
    if (url) this.video.src = url;
    else {
      this.video.pause();
      this.video.removeAttribute("src");
    }
    this.video.load();
  }

  _onFrame = (now, meta) => {
    const step = this.lastMediaTime === null ? null : meta.mediaTime - this.lastMediaTime;
    this.lastMediaTime = meta.mediaTime;
    this.frameS = learnFrame(this.frameS, step);
    const serverAt = this.clock.serverNow();
    const v = this.video;
    if (moving(this.state) && serverAt !== null && !v.seeking && !v.paused && this.frameS !== null) {
      const display = serverAt + (performance.timeOrigin + meta.expectedDisplayTime) / 1000 - localNow();
      this.presented.push(frameError(this.state, meta.mediaTime, this.frameS, display));
    }
    this.frameHandle = v.requestVideoFrameCallback(this._onFrame);
  };

  /** Compare the video with the timeline and steer (seek, or nudge playbackRate). */
  tick() {
    const state = this.state;
    const v = this.video;
    if (!state || !this.src || v.readyState < HAVE_METADATA) return;
    const now = this.clock.serverNow();
    if (now === null) return;
    const target = positionAt(state, now);
    const ended = typeof state.duration === "number" && target >= state.duration;
    const runs = moving(state) && now >= state.at && !ended;
    const presented = this.presented;
    this.presented = [];
    if (v.seeking) return;
    this.lastError = measuredError(presented, v.currentTime, target, v.paused);
    if (!runs) {
      if (!v.paused) v.pause();
      this._rate(1);
      if (Math.abs(this.lastError) > PAUSED_TOLERANCE_S) this._seek(target);
      return;
    }
    if (v.paused) {
      if (Math.abs(this.lastError) > 0.5) this._seek(target + this.seekLag);
      v.play().catch((err) => {
        if (err && err.name === "NotAllowedError" && !v.muted) {
          v.muted = true; // autoplay with sound refused: play muted (the page may offer the sound on a tap)
          v.play().catch(() => {});
        }
      });
      return;
    }
    const decision = steer(this.lastError, this.correcting);
    if (decision.action === "seek") {
      this._seek(target + this.seekLag);
      return;
    }
    this.correcting = decision.correcting;
    this._rate(decision.rate);
  }

  _rate(rate) {
    if (this.video.playbackRate !== rate) this.video.playbackRate = rate;
  }

  _seek(position) {
    this.seeks += 1;
    this.correcting = false;
    this._rate(1);
    this.video.currentTime = position;
    this.presented = [];
  }
}
