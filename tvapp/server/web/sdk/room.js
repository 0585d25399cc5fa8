// tvapp SDK: a Room, in the shape of the Python SDK's tvapp.client.Room. `Room.connect(url, token, options)` joins
// over the signaling websocket (`url` is the core's http(s) base) and resolves once joined. The server makes every
// SDP offer and this page answers (the offer's `transceivers` say which m-line carries what). A dropped websocket is
// "reconnecting": the room resumes the same participant with its resume token (same sid, tracks and peer
// connection); when the server refuses (`resume_refused`: the grace window passed, or the core restarted) it joins
// afresh and republishes; a dead media path gets a fresh peer connection (`media_restart{generation}`).

import { Emitter } from "./events.js";
import { encode, decode } from "./codec.js";
import { nextState, canTransition, reconnectStep, retryDelayMs, FINAL_ERRORS, SESSION_ENDING_ERRORS } from "./state.js";
import { tokenTimes, refreshDelay, FINAL_REFRESH_STATUSES } from "./tokens.js";
import { RoomClock } from "./steering.js";
import { Playback } from "./playback.js";
import { LocalParticipant, RemoteParticipant, RemoteTrackPublication } from "./participants.js";
import { MediaMethods } from "./media.js";

const DEFAULTS = Object.freeze({
  autoSubscribe: true,
  refreshToken: null,
  graceMs: 20_000, // the server's [signal] reconnect_grace: resume within it
  giveUpMs: 120_000, // then join afresh until this long after the drop
  silenceMs: 3_500, // nothing from the server this long: the socket is dead
  mediaDeadMs: 2_000, // ICE "disconnected" this long (or "failed"): a fresh peer connection
  joinTimeoutMs: 10_000,
});

export class Room extends Emitter {
  /** Join the room named in `token` on the core at `url`; resolve with the Room once joined. */
  static async connect(url, token, options = {}) {
    const room = new Room(url, token, options);
    await room.connect();
    return room;
  }

  constructor(url, token, options = {}) {
    super();
    this.url = String(url).replace(/\/+$/, "");
    this.options = { ...DEFAULTS, ...options };
    this.accessToken = token;
    this.refreshToken = this.options.refreshToken;
    this.state = "idle";
    this.name = null;
    this.sid = null;
    this.grants = null;
    this.participants = new Map();
    this.localParticipant = new LocalParticipant(this);
    this.clock = new RoomClock();
    this.playback = new Playback(this);
    this.activeSpeakers = [];
    this.pc = null;
    this.ws = null;
    this.generation = 0;
    this.resumeToken = null;
    this.iceServers = [];
    this.stats = { offersAnswered: 0, resumes: 0, rejoins: 0, mediaRestarts: 0 };
    this._subscriptions = new Map(); // mid -> RemoteTrack
    this._negotiation = Promise.resolve();
    this._timers = new Set();
    this._pingTimer = null;
    this._lastHeard = 0;
    this._dropAt = 0;
    this._refused = false;
    this._attempt = 0;
    this._mediaBadSince = null;
  }

  // --- public API -------------------------------------------------------------------------------------------

  /** Leave the room for good. */
  async disconnect() {
    if (this.state === "disconnected") return;
    this._send("leave", {});
    this._finish("client_initiated");
  }

  /** Start receiving a track (when joined with autoSubscribe false). */
  subscribe(trackSid) {
    return this._send("subscribe", { track_sid: trackSid });
  }

  /** Stop receiving a track. */
  unsubscribe(trackSid) {
    return this._send("unsubscribe", { track_sid: trackSid });
  }

  /** Return the peer connection's stats report. */
  getStats() {
    return this.pc ? this.pc.getStats() : Promise.resolve(new Map());
  }

  // --- connecting -------------------------------------------------------------------------------------------

  _setState(event) {
    this.state = nextState(this.state, event);
  }

  /** Join (for a Room made with `new Room(url, token, options)`, to add listeners before joining). */
  async connect() {
    this._setState("connect");
    try {
      await this._openSocket(null);
    } catch (err) {
      if (this.state !== "disconnected") this._finish(err.code || "join_failed", false);
      throw err;
    }
    this._scheduleRefresh();
  }

  // Open a websocket and join (resuming with `resumeToken` if given); resolve on "joined", reject on an error or close.
  _openSocket(resumeToken) {
    const wsUrl = this.url.replace(/^http/, "ws") + "/v1/signal";
    const ws = new WebSocket(wsUrl);
    this.ws = ws;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (code, message) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(Object.assign(new Error(message || code), { code }));
      };
      const timer = setTimeout(() => {
        fail("timeout", "no answer to join");
        ws.close();
      }, this.options.joinTimeoutMs);
      ws.onopen = () => {
        const join = { token: this.accessToken, auto_subscribe: this.options.autoSubscribe };
        if (resumeToken) join.resume_token = resumeToken;
        ws.send(encode("join", join));
      };
      ws.onmessage = (event) => {
        if (ws !== this.ws) return;
        let msg;
        try {
          msg = decode(event.data);
        } catch (err) {
          this._emit("error", { code: err.code || "bad_message", message: err.message });
          return;
        }
        this._lastHeard = Date.now();
        this._emit("message", msg); // every server message as it came (a page may keep its own views of some)
        if (!settled && msg.type === "error") return fail(msg.code, msg.message);
        if (!settled && msg.type === "joined") {
          settled = true;
          clearTimeout(timer);
          this._onJoined(msg, Boolean(resumeToken));
          resolve(msg);
          return undefined;
        }
        try {
          this._dispatch(msg);
        } catch (err) {
          console.warn("tvapp: could not handle", msg.type, err);
        }
        return undefined;
      };
      ws.onclose = (event) => {
        fail("closed", `the connection closed (${event.code})`);
        if (ws === this.ws && settled) this._onDrop(event);
      };
    });
  }

  _onJoined(msg, resuming) {
    const wasReconnecting = this.state === "reconnecting";
    const resumed = Boolean(msg.resumed) && wasReconnecting && this.pc !== null;
    this.resumeToken = msg.resume_token || null;
    this.name = msg.room.name;
    this.sid = msg.room.sid;
    this.grants = msg.grants;
    this.iceServers = msg.ice_servers || [];
    this.pingInterval = Number(msg.ping_interval) || 10;
    const lp = this.localParticipant;
    lp.sid = msg.participant.sid;
    lp.identity = msg.participant.identity;
    lp.name = msg.participant.name || "";
    this._syncRoster(msg.participants || [], msg.participant.sid);
    if (!resumed) {
      // A fresh participant: a new peer connection; local tracks are published again under new sids.
      this._closePc();
      this.generation = 0;
      this.pc = this._newPc();
      for (const publication of lp._all()) publication.sid = null; // (a rendition: once its camera has a sid)
      for (const publication of lp.tracks.values()) this._announce(publication);
    }
    this._setState("joined");
    this._attempt = 0;
    this._refused = false;
    this._startPinging();
    this.playback._joined();
    if (resumed) this._askMediaAgain(); // a media_restart sent while the socket was dying may be lost
    if (wasReconnecting) {
      if (resumed) this.stats.resumes += 1;
      else this.stats.rejoins += 1;
      this._emit("reconnected", { reason: "signal", resumed });
    } else {
      this._emit("connected", { room: this, participant: lp });
    }
  }

  _syncRoster(list, selfSid) {
    const seen = new Set();
    for (const info of list) {
      if (info.sid === selfSid) continue;
      seen.add(info.sid);
      if (!this.participants.has(info.sid)) {
        const p = new RemoteParticipant(info);
        this.participants.set(p.sid, p);
        this._emit("participant_joined", { participant: p });
        for (const pub of p.tracks.values()) this._emit("track_published", { track: pub, participant: p });
      } else {
        const p = this.participants.get(info.sid);
        p.reconnecting = Boolean(info.reconnecting);
        const tracks = new Set((info.tracks || []).map((t) => t.sid));
        for (const t of info.tracks || []) {
          if (!p.tracks.has(t.sid)) {
            const pub = new RemoteTrackPublication(t);
            p.tracks.set(t.sid, pub);
            this._emit("track_published", { track: pub, participant: p });
          } else {
            p.tracks.get(t.sid).muted = Boolean(t.muted);
          }
        }
        for (const [sid, pub] of Array.from(p.tracks)) {
          if (!tracks.has(sid)) this._dropPublication(p, pub);
        }
      }
    }
    for (const [sid, p] of Array.from(this.participants)) {
      if (!seen.has(sid)) this._removeParticipant(p, "left");
    }
  }

  // --- after a drop ------------------------------------------------------------------------------------------

  _onDrop(event) {
    if (this.state !== "connected") return;
    this._stopPinging();
    this.ws = null;
    this._setState("drop");
    this._dropAt = Date.now();
    this._refused = false;
    this._attempt = 0;
    this._emit("reconnecting", { reason: "signal", code: event ? event.code : 1006 });
    this._later(() => this._reconnect(), 100);
  }

  async _reconnect() {
    if (this.state !== "reconnecting") return;
    const step = reconnectStep({ since: this._dropAt, now: Date.now(), resumeToken: this.resumeToken,
      refused: this._refused, graceMs: this.options.graceMs, giveUpMs: this.options.giveUpMs });
    if (step === "give_up") return this._finish("reconnect_failed");
    this._attempt += 1;
    try {
      await this._freshToken();
      await this._openSocket(step === "resume" ? this.resumeToken : null);
    } catch (err) {
      if (this.state !== "reconnecting") return undefined;
      if (err.code === "resume_refused") {
        this._refused = true;
        this.resumeToken = null;
        return this._later(() => this._reconnect(), 0);
      }
      if (FINAL_ERRORS.has(err.code)) return this._finish(err.code);
      this.ws = null;
      return this._later(() => this._reconnect(), retryDelayMs(this._attempt));
    }
    return undefined;
  }

  _finish(reason, emit = true) {
    if (this.state === "disconnected") return;
    if (canTransition(this.state, "end")) this._setState("end");
    else this.state = "disconnected";
    for (const t of this._timers) clearTimeout(t);
    this._timers.clear();
    this._stopPinging();
    this.playback._left();
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= 1) ws.close(1000, "left");
    for (const p of Array.from(this.participants.values())) this._removeParticipant(p, reason);
    this._closePc();
    this.localParticipant._stopAll();
    if (emit) this._emit("disconnected", { reason });
  }

  _later(fn, ms) {
    const t = setTimeout(() => {
      this._timers.delete(t);
      fn();
    }, ms);
    this._timers.add(t);
    return t;
  }

  // --- keepalive, clock and silence -------------------------------------------------------------------------

  _startPinging() {
    this._stopPinging();
    this._lastHeard = Date.now();
    this.clock = new RoomClock();
    const tick = () => {
      if (this.state !== "connected") return;
      if (Date.now() - this._lastHeard > this.options.silenceMs) {
        // The socket went silent (the network dropped without a close): treat it as a drop.
        const ws = this.ws;
        this._onDrop({ code: 4000 });
        if (ws) ws.close();
        return;
      }
      this._send("ping", { t0: this.clock.stamp() });
      this._checkMedia();
      const every = Math.min(this.clock.nextPingMs(), this.pingInterval * 1000, 1000);
      this._pingTimer = setTimeout(tick, every);
    };
    tick();
  }

  _stopPinging() {
    clearTimeout(this._pingTimer);
    this._pingTimer = null;
  }

  // --- messages ------------------------------------------------------------------------------------------------

  _dispatch(msg) {
    const p = msg.participant_sid ? this.participants.get(msg.participant_sid) : undefined;
    switch (msg.type) {
      case "participant_joined": {
        if (msg.participant.sid === this.localParticipant.sid) return;
        this._syncRoster([...Array.from(this.participants.values(), toInfo), msg.participant], null);
        return;
      }
      case "participant_left":
        if (p) this._removeParticipant(p, msg.reason || "");
        return;
      case "participant_reconnecting":
      case "participant_reconnected":
        if (!p) return;
        p.reconnecting = msg.type === "participant_reconnecting";
        this._emit(msg.type, { participant: p, cause: msg.cause || "" });
        return;
      case "track_published":
        return this._onTrackPublished(msg, p);
      case "track_unpublished": {
        const pub = p && p.tracks.get(msg.track_sid);
        if (pub) this._dropPublication(p, pub);
        return;
      }
      case "track_muted":
      case "track_unmuted":
        return this._onMuted(msg, p, msg.type === "track_muted");
      case "active_speakers":
        this.activeSpeakers = (msg.speakers || []).map((s) => ({ ...s,
          participant: this.participants.get(s.participant_sid) || null }));
        this._emit("active_speakers", { speakers: this.activeSpeakers, dominantSid: msg.dominant_sid || null });
        return;
      case "network_quality":
        for (const entry of msg.levels || []) {
          const who = entry.participant_sid === this.localParticipant.sid ? this.localParticipant
            : this.participants.get(entry.participant_sid);
          if (!who) continue;
          const previous = who.networkQuality ?? null;
          who.networkQuality = entry.level ?? null;
          if (previous !== who.networkQuality) {
            this._emit("network_quality", { participant: who, level: who.networkQuality, previous,
              uplink: entry.uplink || null, downlink: entry.downlink || null });
          }
        }
        return;
      case "track_switched_off":
      case "track_switched_on": {
        // The SFU stopped (resumed) sending this page a video track: its downlink cannot carry everything.
        for (const who of this.participants.values()) {
          const publication = who.tracks.get(msg.sid);
          if (!publication) continue;
          publication.switchedOff = msg.type === "track_switched_off" ? msg.reason : null;
          this._emit(msg.type, { track: publication, participant: who, reason: msg.reason || "" });
          return;
        }
        return;
      }
      case "unmute_request":
        this._emit("unmute_requested", { trackSid: msg.track_sid });
        return;
      case "publish_constraints":
        return this._applyConstraints(msg);
      case "data":
        this._emit("data", { payload: msg.payload, topic: msg.topic || "", participant:
          this.participants.get(msg.from_sid) || null, identity: msg.from_identity });
        return;
      case "offer":
        return this._negotiate(this._answerOffer, msg);
      case "candidate":
        return this._negotiate(this._addCandidate, msg);
      case "pong":
        this.clock.pong(msg);
        this.playback._tick();
        return;
      case "playback_state":
        return this.playback._onState(msg);
      case "error":
        if (msg.code === "media_restart_too_soon") this._later(() => this._askMediaAgain(), 1100);
        this._emit("error", { code: msg.code, message: msg.message || "" });
        if (SESSION_ENDING_ERRORS.has(msg.code)) this._finish(msg.code);
        return;
      case "removed":
        return this._finish("removed");
      case "room_completed":
        return this._finish("room_completed");
      default:
    }
  }

  _onTrackPublished(msg, p) {
    const lp = this.localParticipant;
    if (msg.participant_sid === lp.sid) {
      const publication = msg.cid ? lp._all().find((x) => x.cid === msg.cid) : null;
      if (!publication) return;
      const renewed = publication.sid !== msg.track.sid && publication.constraints; // a full rejoin: unconstrained
      publication.sid = msg.track.sid;
      if (renewed) this._applyConstraints({ sid: publication.sid, max_width: null, max_height: null,
        max_framerate: null, max_bitrate: null, paused: Boolean(publication.renditionOf) }); // (a rendition: paused)
      if (publication.low && !publication.low.sid) this._announce(publication.low);
      if (publication.muted !== Boolean(msg.track.muted)) {
        this._send("mute", { track_sid: publication.sid, muted: publication.muted });
      }
      this._emit("local_track_published", { publication });
      return;
    }
    if (!p || p.tracks.has(msg.track.sid)) return;
    const pub = new RemoteTrackPublication(msg.track);
    p.tracks.set(pub.sid, pub);
    this._emit("track_published", { track: pub, participant: p });
  }

  _onMuted(msg, p, muted) {
    const lp = this.localParticipant;
    if (msg.participant_sid === lp.sid) {
      for (const publication of lp.tracks.values()) {
        if (publication.sid === msg.track_sid && msg.by_server) {
          publication.muted = muted;
          publication.track.enabled = !muted;
          if (publication.low) this._muteRendition(publication);
        }
      }
      return;
    }
    const pub = p && p.tracks.get(msg.track_sid);
    if (!pub) return;
    pub.muted = muted;
    this._emit(muted ? "track_muted" : "track_unmuted", { track: pub, participant: p });
  }

  _dropPublication(p, pub) {
    p.tracks.delete(pub.sid);
    if (pub.track) {
      for (const [mid, t] of this._subscriptions) if (t === pub.track) this._subscriptions.delete(mid);
      this._unsubscribed(pub.track);
    }
    this._emit("track_unpublished", { track: pub, participant: p });
  }

  _removeParticipant(p, reason) {
    for (const pub of Array.from(p.tracks.values())) this._dropPublication(p, pub);
    this.participants.delete(p.sid);
    this._emit("participant_left", { participant: p, reason });
  }

  // --- tokens ----------------------------------------------------------------------------------------------

  _scheduleRefresh() {
    if (!this.refreshToken) return;
    const times = tokenTimes(this.accessToken);
    if (!times) return;
    const wait = refreshDelay(times.issuedAt, times.expiresAt, Date.now() / 1000);
    this._later(async () => {
      try {
        await this.refreshTokens();
        this._scheduleRefresh();
      } catch (err) {
        if (err.status && FINAL_REFRESH_STATUSES.has(err.status)) {
          this._emit("error", { code: "token_refresh_refused", message: err.message });
        } else {
          this._later(() => this._scheduleRefresh(), 2000);
        }
      }
    }, Math.min(wait * 1000, 2 ** 31 - 1));
  }

  /** Trade the refresh token for a new access/refresh pair (the refresh token rotates). */
  async refreshTokens() {
    const response = await fetch(`${this.url}/v1/tokens/refresh`, {
      method: "POST", headers: { "Content-Type": "application/json" }, cache: "no-store",
      body: JSON.stringify({ refresh_token: this.refreshToken }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = body.error || {};
      throw Object.assign(new Error(error.message || `refresh answered ${response.status}`),
        { status: response.status, code: error.code });
    }
    this.accessToken = body.access_token;
    this.refreshToken = body.refresh_token;
    this._emit("token_refreshed", { expiresAt: body.expires_at });
  }

  async _freshToken() {
    const times = tokenTimes(this.accessToken);
    if (this.refreshToken && times && times.expiresAt - 5 < Date.now() / 1000) await this.refreshTokens();
  }

  // --- plumbing --------------------------------------------------------------------------------------------

  _send(type, fields) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(encode(type, fields));
    return true;
  }

  _emit(name, event) {
    return this.emit(name, event);
  }
}

function toInfo(p) {
  return { sid: p.sid, identity: p.identity, name: p.name, reconnecting: p.reconnecting,
    tracks: Array.from(p.tracks.values(), (t) => ({ sid: t.sid, kind: t.kind, source: t.source, name: t.name,
      muted: t.muted })) };
}

Object.assign(Room.prototype, MediaMethods);
