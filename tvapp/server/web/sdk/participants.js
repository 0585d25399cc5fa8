// tvapp SDK: participants and tracks as a Room shows them. Remote participants and their publications mirror the
// server's roster; a RemoteTrack is media arriving (attach it to a <video> or <audio>); the LocalParticipant
// publishes this page's camera, microphone and screen and sends data.

/** Media of a remote track arriving over the room's peer connection. */
export class RemoteTrack {
  constructor(sid, kind, mediaStreamTrack, mid) {
    this.sid = sid;
    this.kind = kind;
    this.mediaStreamTrack = mediaStreamTrack;
    this.mid = mid;
    this.elements = new Set();
  }

  /** Show or play this track in `element` (created when omitted); return the element. */
  attach(element) {
    const el = element || document.createElement(this.kind === "video" ? "video" : "audio");
    el.autoplay = true;
    if (this.kind === "video") {
      el.playsInline = true;
      el.muted = true; // sound comes from the audio track's own element
    }
    el.srcObject = new MediaStream([this.mediaStreamTrack]);
    this.elements.add(el);
    return el;
  }

  /** Take this track out of `element`, or of every element it is attached to; return those elements. */
  detach(element) {
    const els = element ? [element] : Array.from(this.elements);
    for (const el of els) {
      el.srcObject = null;
      this.elements.delete(el);
    }
    return els;
  }
}

/** A track another participant publishes; `track` is set while subscribed. */
export class RemoteTrackPublication {
  constructor(info) {
    this.sid = info.sid;
    this.kind = info.kind;
    this.source = info.source;
    this.name = info.name || "";
    this.muted = Boolean(info.muted);
    this.track = null;
  }
}

/** Another participant in the room. */
export class RemoteParticipant {
  constructor(info) {
    this.sid = info.sid;
    this.identity = info.identity;
    this.name = info.name || "";
    this.reconnecting = Boolean(info.reconnecting);
    this.networkQuality = info.network_quality ?? null; // 0 broken .. 5 excellent (network_quality messages)
    this.tracks = new Map();
    for (const t of info.tracks || []) this.tracks.set(t.sid, new RemoteTrackPublication(t));
  }
}

/** One of this page's tracks: `cid` is the SDK's own id ("camera", "microphone", "screen", "screen_audio"). */
export class LocalTrackPublication {
  constructor(cid, kind, source, track) {
    this.cid = cid;
    this.kind = kind;
    this.source = source;
    this.track = track; // the MediaStreamTrack sent
    this.sid = null; // from the server's track_published
    this.muted = false;
    this.mid = null;
  }
}

const CONSTRAINTS = {
  camera: (deviceId) => ({ video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 },
    ...(deviceId ? { deviceId: { exact: deviceId } } : { facingMode: "user" }) } }),
  microphone: (deviceId) => ({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true,
    ...(deviceId ? { deviceId: { exact: deviceId } } : {}) } }),
};

/** This page in the room: what it publishes and the data it sends. */
export class LocalParticipant {
  constructor(room) {
    this._room = room;
    this.sid = null;
    this.identity = null;
    this.name = "";
    this.tracks = new Map(); // cid -> LocalTrackPublication
    this.devices = { camera: null, microphone: null };
    this.networkQuality = null; // 0 broken .. 5 excellent, as the SFU announces it (network_quality)
  }

  /** Publish the camera (or unmute it); with false, mute it (the publication keeps its sid). */
  setCameraEnabled(enabled, options = {}) {
    return this._setDevice("camera", "video", enabled, options.deviceId, options);
  }

  /** Publish the microphone (or unmute it); with false, mute it. */
  setMicrophoneEnabled(enabled, options = {}) {
    return this._setDevice("microphone", "audio", enabled, options.deviceId, options);
  }

  /** Share the screen (getDisplayMedia) as a "screen" track; with false, unpublish it. */
  async setScreenShareEnabled(enabled) {
    const current = this.tracks.get("screen");
    if (!enabled) {
      if (current) this._unpublish(current);
      return null;
    }
    if (current) return current;
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const track = stream.getVideoTracks()[0];
    track.addEventListener("ended", () => {
      if (this.tracks.get("screen") === publication) this._unpublish(publication);
    });
    const publication = this._publish("screen", "video", "screen", track);
    return publication;
  }

  /** Use another camera or microphone (a deviceId from enumerateDevices); the publication keeps its sid. */
  async switchDevice(kind, deviceId) {
    const cid = kind === "video" || kind === "camera" ? "camera" : "microphone";
    this.devices[cid] = deviceId;
    const publication = this.tracks.get(cid);
    if (!publication) return null;
    const stream = await navigator.mediaDevices.getUserMedia(CONSTRAINTS[cid](deviceId));
    const track = stream.getTracks()[0];
    track.enabled = !publication.muted;
    const old = publication.track;
    publication.track = track;
    await this._room._replaceTrack(publication);
    old.stop();
    this._room._emit("local_track_changed", { publication });
    return publication;
  }

  /** Send `payload` (a string) to the room, or to the identities in `options.to`, on `options.topic`. */
  publishData(payload, options = {}) {
    const fields = { payload: String(payload), topic: options.topic || "" };
    if (options.to && options.to.length) fields.to = Array.from(options.to);
    return this._room._send("send_data", fields);
  }

  async _setDevice(cid, kind, enabled, deviceId, options = {}) {
    if (deviceId) this.devices[cid] = deviceId;
    let publication = this.tracks.get(cid);
    if (!publication && !enabled) return null;
    if (!publication) {
      const track = options.track // a MediaStreamTrack the page opened already (e.g. for its preview)
        || (await navigator.mediaDevices.getUserMedia(CONSTRAINTS[cid](this.devices[cid]))).getTracks()[0];
      publication = this._publish(cid, kind, cid, track);
      return publication;
    }
    if (deviceId && enabled) await this.switchDevice(cid, deviceId);
    this._setMuted(publication, !enabled);
    return publication;
  }

  _publish(cid, kind, source, track) {
    const publication = new LocalTrackPublication(cid, kind, source, track);
    this.tracks.set(cid, publication);
    this._room._announce(publication);
    return publication;
  }

  _unpublish(publication) {
    this.tracks.delete(publication.cid);
    publication.track.stop();
    if (publication.sid) this._room._send("unpublish", { track_sid: publication.sid });
    this._room._emit("local_track_unpublished", { publication });
  }

  _setMuted(publication, muted) {
    publication.muted = muted;
    publication.track.enabled = !muted;
    if (publication.sid) this._room._send("mute", { track_sid: publication.sid, muted });
  }

  /** Stop every local track (the room calls it when it ends). */
  _stopAll() {
    for (const publication of this.tracks.values()) publication.track.stop();
    this.tracks.clear();
  }
}
