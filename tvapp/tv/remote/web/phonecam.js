// tvapp Remote page, part two: this phone as the TV's camera and microphone (tvapp/tv/remote/phonecam.py).
// getUserMedia (the page is https, a secure context), one send-only WebRTC connection to the TV on the LAN, its
// offer and answer over the remote websocket (phone_camera_offer -> phone_camera_answer + ok). The phone plays
// nothing (it receives no media at all); the preview is muted. Mute mutes the mic in the room; Stop ends it.
// Read-only debug state for tests is at window.tvappPhoneCamera.
"use strict";

(() => {
  const api = window.tvappRemoteApi;
  const $ = (id) => document.getElementById(id);
  const GATHER_TIMEOUT_MS = 3000;
  const STOP_TEXT = {
    replaced: "Another phone is the TV's camera now.",
    left_room: "The TV left the room, so this phone is no longer its camera.",
    connection_lost: "The connection to the TV was lost. This phone is no longer its camera.",
    stopped: "This phone is no longer the TV's camera.",
  };

  const cam = { state: "off", muted: false, stopped: null, offers: 0, connectionState: "none", error: null,
    receiving: null };
  let pc = null;
  let stream = null;
  let offerId = null;

  function render(status) {
    $("phonecam-start").hidden = cam.state !== "off";
    $("phonecam-live").hidden = cam.state === "off";
    $("phonecam-mute").setAttribute("aria-pressed", String(cam.muted));
    $("phonecam-mute").textContent = cam.muted ? "Unmute" : "Mute";
    if (status !== undefined) $("phonecam-status").textContent = status;
  }

  function release() {
    if (pc) pc.close();
    pc = null;
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    $("phonecam-preview").srcObject = null;
    offerId = null;
    cam.state = "off";
    cam.muted = false;
    cam.connectionState = "none";
  }

  function gathered(connection) {
    if (connection.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
      connection.addEventListener("icegatheringstatechange", () => {
        if (connection.iceGatheringState === "complete") {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  function preferVp8(transceiver) {
    if (!transceiver.setCodecPreferences || !window.RTCRtpReceiver.getCapabilities) return;
    const codecs = RTCRtpReceiver.getCapabilities("video").codecs.filter((c) => /^video\/(vp8|rtx)$/i.test(c.mimeType));
    try {
      transceiver.setCodecPreferences(codecs);
    } catch (err) {
      // an older browser: the TV picks VP8 from the full list
    }
  }

  async function start() {
    api.clearMessage("phonecam-msg");
    cam.stopped = null;
    cam.error = null;
    cam.state = "starting";
    render("Starting the camera…");
    try {
      // The phone's own echo canceller would only cancel what the phone plays (nothing): the TV cancels its speakers.
      stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 }, facingMode: "user" },
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
      });
    } catch (err) {
      release();
      cam.error = err.name || "camera_failed";
      api.showMessage("phonecam-msg", "camera_failed", "This phone's camera or microphone did not start. Allow them and try again.");
      render("");
      return;
    }
    $("phonecam-preview").srcObject = stream;
    pc = new RTCPeerConnection({ iceServers: [] });
    const connection = pc;
    for (const track of stream.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      if (track.kind === "video") preferVp8(transceiver);
    }
    pc.addEventListener("connectionstatechange", () => {
      if (pc !== connection) return;
      cam.connectionState = connection.connectionState;
      if (connection.connectionState === "connected") render("This phone is the TV's camera.");
      if (connection.connectionState === "failed") stopped("connection_lost");
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(connection);
    if (pc !== connection) return;
    cam.offers += 1;
    render("Connecting to the TV…");
    offerId = api.sendCommand("phone_camera_offer", { sdp: connection.localDescription.sdp }, "phonecam-msg", () => {
      if (pc === connection) cam.state = "on";
    }, (error) => { // refused (the message says why): let go of the camera
      if (pc !== connection) return;
      release();
      cam.error = error.code || "refused";
      render("");
    });
    if (!offerId) {
      release();
      render("");
    }
  }

  function stopped(reason) {
    cam.stopped = reason;
    release();
    render(STOP_TEXT[reason] || STOP_TEXT.stopped);
  }

  api.hooks.phone_camera_answer = (msg) => {
    if (!pc || msg.id !== offerId || typeof msg.sdp !== "string") return;
    const connection = pc;
    pc.setRemoteDescription({ type: "answer", sdp: msg.sdp }).then(() => {
      // Nothing comes back from the TV: every m-line only sends, so the phone has nothing to play.
      cam.receiving = connection.getTransceivers().filter((t) => t.currentDirection !== "sendonly").length;
    }).catch((err) => {
      cam.error = "bad_answer";
      api.sendCommand("phone_camera_stop", {}, "phonecam-msg");
      stopped("stopped");
    });
  };
  api.hooks.phone_camera_stopped = (msg) => stopped(msg.reason);
  api.hooks.closed = () => { // the TV ends the camera with the connection: let go of it here too
    if (cam.state !== "off") stopped("connection_lost");
  };

  document.addEventListener("DOMContentLoaded", () => {
    $("phonecam-start").addEventListener("click", () => start());
    $("phonecam-stop").addEventListener("click", () => {
      api.sendCommand("phone_camera_stop", {}, "phonecam-msg");
      stopped("stopped");
    });
    $("phonecam-mute").addEventListener("click", () => {
      const muted = !cam.muted;
      api.sendCommand("phone_camera_mute", { muted }, "phonecam-msg", () => {
        cam.muted = muted;
        render();
      });
    });
    render("");
  });

  window.tvappPhoneCamera = cam;
})();
