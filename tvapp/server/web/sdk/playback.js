// tvapp SDK: the room's shared content. `room.playback` sends load/play/pause/seek/stop and, for a live stream,
// backToLive (the server decides who may:
// error `not_allowed`), keeps the latest playback_state (event "playback_changed") and, with `attach(video)`, keeps a
// <video> on the room's timeline with syncvideo.js (the same controller the phone page's watch.js uses), on the
// Room's own clock.

import { positionAt } from "./steering.js";
import { createSyncedVideo } from "./syncvideo.js";

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

  /** A live stream (HLS): go back to the room's live point after a pause or a seek back (action "live"). */
  backToLive() {
    return this._command({ action: "live" });
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

  /** Keep `video` on the room's timeline; return its controller (call its detach() to stop). */
  attach(video) {
    const room = this._room;
    const synced = createSyncedVideo(video, {
      send: ({ type, ...fields }) => room._send(type, fields),
      clock: () => room.clock,
      base: room.url,
    });
    const handle = Object.freeze(Object.create(synced, { detach: { value: () => {
      this.synced.delete(handle);
      synced.detach();
    } } }));
    this.synced.add(handle);
    if (room.state === "connected") this._join(handle);
    return handle;
  }

  _join(synced) {
    const room = this._room;
    synced.joined({ grants: room.grants, ping_interval: room.pingInterval });
    if (this.state) synced.handle({ type: "playback_state", ...this.state });
  }

  _joined() {
    // After a resume the videos keep going (the server's playback_state follows); after a first join they start.
    for (const s of this.synced) if (!s.joinedRoom) this._join(s);
  }

  _command(fields) {
    return this._room._send("playback", fields);
  }

  _onState(msg) {
    const previous = this.state;
    if (previous && previous.content === msg.content && msg.seq < previous.seq) return; // a stale copy
    this.state = { ...msg, waiting_for: Array.isArray(msg.waiting_for) ? msg.waiting_for.slice() : [] };
    for (const s of this.synced) s.handle(msg);
    this._room._emit("playback_changed", { state: this.state });
  }

  _tick() {
    for (const s of this.synced) s.tick();
  }

  _left() {
    this.state = null;
    for (const s of this.synced) s.left();
  }
}
