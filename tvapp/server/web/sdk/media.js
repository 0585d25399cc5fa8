// tvapp SDK: a Room's media, mixed into Room.prototype. The server makes every SDP offer and the page answers: the
// offer's `transceivers` say which m-line carries one of this page's publications ("publish", by cid) or one of its
// subscriptions; offers of an older peer connection (`generation` below the room's) are ignored. A peer connection
// whose ICE failed, or stayed "disconnected" for mediaDeadMs, or that received RTP but then none for mediaDeadMs while
// a subscribed track should send (its publisher here, not reconnecting, the track not muted), is replaced in the same
// session (media_restart).
// Adaptive stream: a subscribed video track tells the server how it is shown (RemoteTrack.attach observes its
// elements); the server's publish_constraints for this page's video go to its RTCRtpSender (`_applyConstraints`).

import { RemoteTrack } from "./participants.js";
import { publishFields, renditionEncoding } from "./simulcast.js";

export const MediaMethods = {
  _newPc() {
    const servers = this.iceServers.map((s) => ({ urls: s.urls, ...(s.username ? { username: s.username } : {}),
      ...(s.credential ? { credential: s.credential } : {}) }));
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", iceServers: servers });
    pc.onicecandidate = (event) => {
      const c = event.candidate;
      this._send("candidate", c && c.candidate
        ? { candidate: c.candidate, sdp_mid: c.sdpMid, sdp_mline_index: c.sdpMLineIndex }
        : { candidate: "", sdp_mid: null, sdp_mline_index: null });
    };
    pc.onconnectionstatechange = () => this._checkMedia();
    return pc;
  },

  _closePc() {
    for (const track of this._subscriptions.values()) this._unsubscribed(track);
    this._subscriptions = new Map();
    if (this.pc) this.pc.close();
    this._negotiation = Promise.resolve();
    this._mediaRepairing = false;
  },

  // A peer connection whose ICE failed, or stayed disconnected for mediaDeadMs, is replaced (media_restart).
  _checkMedia() {
    const pc = this.pc;
    if (!pc || this.state !== "connected" || this._mediaRepairing) return;
    const bad = pc.connectionState === "failed" || pc.connectionState === "disconnected";
    if (!bad) {
      if (this._mediaBadSince !== null) this._mediaBadSince = null;
      this._checkInbound(pc);
      return;
    }
    if (this._mediaBadSince === null) this._mediaBadSince = Date.now();
    if (pc.connectionState === "failed" || Date.now() - this._mediaBadSince >= this.options.mediaDeadMs) {
      this.restartMedia("ice_" + pc.connectionState);
    }
  },

  // No inbound RTP for mediaDeadMs on a connected pc that got some, while a subscribed track should send: dead.
  async _checkInbound(pc) {
    const inbound = this._inbound && this._inbound.pc === pc ? this._inbound : { pc, bytes: -1, since: Date.now() };
    this._inbound = inbound;
    if (pc.connectionState !== "connected" || !this._expectsInbound()) {
      Object.assign(inbound, { bytes: -1, since: Date.now() });
      return;
    }
    let bytes = 0;
    try {
      (await pc.getStats()).forEach((s) => { if (s.type === "inbound-rtp") bytes += s.bytesReceived || 0; });
    } catch (err) {
      return;
    }
    if (pc !== this.pc || this._mediaRepairing || this.state !== "connected") return;
    if (bytes === 0 || bytes !== inbound.bytes) { // (a pc that never got any is ICE's to judge)
      Object.assign(inbound, { bytes, since: Date.now() });
    } else if (Date.now() - inbound.since >= this.options.mediaDeadMs) {
      this.restartMedia("no_inbound_rtp");
    }
  },

  _expectsInbound() {
    for (const track of this._subscriptions.values()) {
      const p = this.participants.get(track.participantSid);
      const pub = p && p.tracks.get(track.sid);
      if (p && !p.reconnecting && pub && !pub.muted) return true;
    }
    return false;
  },

  /** Replace the peer connection (the media path is dead); the tracks keep their sids. */
  restartMedia(cause = "requested") {
    this._mediaBadSince = null;
    this.generation += 1;
    this.stats.mediaRestarts += 1;
    this.stats.lastMediaRestart = cause;
    this._emit("reconnecting", { reason: "media", cause });
    this._closePc();
    this.pc = this._newPc();
    this._mediaRepairing = true;
    this._send("media_restart", { generation: this.generation });
  },

  // Ask again for the fresh peer connection still awaited (refused as too soon, or asked while the socket was down).
  _askMediaAgain() {
    if (this._mediaRepairing && this.state === "connected") this._send("media_restart", { generation: this.generation });
  },

  // A rendition is announced once its camera has a sid, and once per camera sid (a full rejoin renews it).
  _announce(publication) {
    const fields = publishFields(publication);
    if (!fields || (publication.renditionOf && publication.announcedFor === fields.rendition_of)) return;
    if (publication.renditionOf) publication.announcedFor = fields.rendition_of;
    this._send("publish", fields);
  },

  // A camera's rendition follows its mute: no frames, and its encoding inactive while the camera is muted.
  _muteRendition(main) {
    const low = main.low;
    low.track.enabled = !main.muted;
    this._negotiate(() => this._applyToSender(low), null);
  },

  async _replaceTrack(publication) {
    if (!this.pc || publication.mid === null) return;
    for (const t of this.pc.getTransceivers()) {
      if (t.mid === publication.mid) await t.sender.replaceTrack(publication.track);
    }
  },

  _negotiate(step, msg) {
    const pc = this.pc;
    this._negotiation = this._negotiation.then(() => step.call(this, pc, msg)).catch((err) => {
      if (pc !== this.pc || pc.signalingState === "closed") return;
      this._emit("error", { code: "negotiation_failed", message: String(err && err.message) });
    });
  },

  async _answerOffer(pc, msg) {
    if (!pc || pc.signalingState === "closed" || (msg.generation || 0) !== this.generation) return;
    await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
    const byMid = new Map();
    for (const t of pc.getTransceivers()) if (t.mid !== null) byMid.set(t.mid, t);
    const listed = new Set();
    const wanted = new Map();
    const local = new Map(this.localParticipant._all().map((p) => [p.cid, p]));
    const applies = [];
    for (const publication of local.values()) publication.mid = null;
    for (const info of msg.transceivers || []) {
      const t = byMid.get(info.mid);
      if (!t) continue;
      listed.add(info.mid);
      if (info.direction === "publish") {
        const publication = info.cid ? local.get(info.cid) : undefined;
        if (!publication) {
          await idle(t);
          continue;
        }
        if (t.sender.track !== publication.track) await t.sender.replaceTrack(publication.track);
        t.direction = "sendonly";
        publication.mid = info.mid;
        if (publication.constraints) applies.push(publication);
      } else {
        t.direction = "recvonly";
        wanted.set(info.mid, { info, track: t.receiver.track });
      }
    }
    for (const [mid, t] of byMid) if (!listed.has(mid)) await idle(t);
    for (const publication of applies) { // a rendition starts paused: never a burst before its parameters apply
      if (publication.renditionOf) await this._applyToSender(publication).catch(() => {});
    }
    await pc.setLocalDescription(await pc.createAnswer());
    if (pc !== this.pc) return;
    this._send("answer", { sdp: pc.localDescription.sdp });
    this.stats.offersAnswered += 1;
    for (const publication of applies) await this._applyToSender(publication);
    for (const [mid, track] of Array.from(this._subscriptions)) {
      const now = wanted.get(mid);
      if (!now || now.info.track_sid !== track.sid) {
        this._subscriptions.delete(mid);
        this._unsubscribed(track);
      }
    }
    for (const [mid, { info, track }] of wanted) {
      if (this._subscriptions.has(mid)) continue;
      const remote = new RemoteTrack(info.track_sid, info.kind, track, mid);
      remote.participantSid = info.participant_sid;
      if (info.kind === "video") remote._sendSettings = (fields) => this._send("track_settings", fields);
      this._subscriptions.set(mid, remote);
      const p = this.participants.get(info.participant_sid);
      const pub = p && p.tracks.get(info.track_sid);
      if (pub) pub.track = remote;
      this._emit("track_subscribed", { track: remote, publication: pub || null, participant: p || null });
    }
    if (this._mediaRepairing) {
      this._mediaRepairing = false;
      this._emit("reconnected", { reason: "media", resumed: true });
    }
  },

  _unsubscribed(track) {
    const p = this.participants.get(track.participantSid);
    const pub = p && p.tracks.get(track.sid);
    if (pub && pub.track === track) pub.track = null;
    track._sendSettings = null; // gone: its elements' observers say nothing more
    // Listeners see the elements still attached (track.detach() returns them); whatever they leave is detached next.
    this._emit("track_unsubscribed", { track, publication: pub || null, participant: p || null });
    track.detach();
  },

  // publish_constraints for one of this page's video tracks: kept on the publication (applied again to the sender
  // of a new peer connection) and applied to its RTCRtpSender now.
  _applyConstraints(msg) {
    const publication = this.localParticipant._all().find((p) => p.sid === msg.sid);
    if (!publication || publication.kind !== "video") return;
    publication.constraints = msg;
    this._negotiate(() => this._applyToSender(publication), msg);
  },

  async _applyToSender(publication) {
    const c = publication.constraints;
    const t = this.pc && this.pc.getTransceivers().find((x) => x.mid !== null && x.mid === publication.mid);
    if (!c || !t) return;
    const params = t.sender.getParameters();
    if (!params.encodings || !params.encodings.length) params.encodings = [{}];
    const e = params.encodings[0];
    const s = publication.track.getSettings ? publication.track.getSettings() : {};
    if (publication.renditionOf) { // its own size, rate and bitrate, never more than the server asks
      Object.assign(e, renditionEncoding(s.width || 0, s.height || 0, c, !publication.renditionOf.muted));
      await t.sender.setParameters(params);
      publication.appliedConstraints = { ...c, scaleResolutionDownBy: e.scaleResolutionDownBy };
      this._emit("publish_constraints", { publication, constraints: c });
      return;
    }
    e.active = !c.paused;
    e.scaleResolutionDownBy = scaleFor(s.width || 0, s.height || 0, c.max_width, c.max_height);
    if (c.max_bitrate) e.maxBitrate = c.max_bitrate; else delete e.maxBitrate;
    if (c.max_framerate) e.maxFramerate = c.max_framerate; else delete e.maxFramerate;
    await t.sender.setParameters(params);
    publication.appliedConstraints = { ...c, scaleResolutionDownBy: e.scaleResolutionDownBy };
    this._emit("publish_constraints", { publication, constraints: c });
  },

  async _addCandidate(pc, msg) {
    if (!pc || pc.signalingState === "closed" || !pc.remoteDescription) return;
    if (!msg.candidate) return pc.addIceCandidate();
    return pc.addIceCandidate({ candidate: msg.candidate, sdpMid: msg.sdp_mid, sdpMLineIndex: msg.sdp_mline_index });
  },
};

// The same steps as tvapp.core.adaptive.SCALE_STEPS: the smallest that fits the picture into the box.
const SCALE_STEPS = [1, 1.5, 2, 3, 4, 6, 8, 12, 16];

export function scaleFor(width, height, maxWidth, maxHeight) {
  let need = 1;
  if (maxWidth && width > 0) need = Math.max(need, width / maxWidth);
  if (maxHeight && height > 0) need = Math.max(need, height / maxHeight);
  return SCALE_STEPS.find((step) => step >= need - 1e-9) || need;
}

async function idle(transceiver) {
  if (transceiver.currentDirection === "stopped") return;
  if (transceiver.sender.track) await transceiver.sender.replaceTrack(null);
  transceiver.direction = "inactive";
}
