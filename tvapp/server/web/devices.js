// tvapp phone web client: the devices around a call. The "test your camera and mic" level meter on the preview
// (the RMS of the microphone through a WebAudio AnalyserNode), camera and microphone choice (the SDK's switchDevice:
// the publication keeps its sid), camera flip (the SDK's flipCamera: front/back by facingMode on a phone, the next
// camera elsewhere; the self view is mirrored only for a camera facing the user), speaker choice (setSinkId, hidden
// where the browser cannot) and screen share. app.js makes it with the page's session and helpers.

import { mirrored } from "/sdk/tvapp.js";

const $ = (id) => document.getElementById(id);

/** Mirror `video`'s picture when it shows a camera facing the user (a back camera is shown as it is). */
export function mirrorFor(video, stream) {
  const track = stream && stream.getVideoTracks ? stream.getVideoTracks()[0] : null;
  const settings = track && track.getSettings ? track.getSettings() : {};
  const capabilities = track && track.getCapabilities ? track.getCapabilities() : {};
  video.classList.toggle("mirror", mirrored(settings, capabilities));
}

/** Return the device functions for the page whose state is `session`. */
export function makeDevices({ session, showError, renderControls }) {
  // The "test your camera and mic" level: the RMS of the microphone through a WebAudio AnalyserNode, 10 times a second.
  function startMeter(stream) {
    stopMeter();
    const track = stream.getAudioTracks()[0];
    const Context = window.AudioContext || window.webkitAudioContext;
    $("level-row").hidden = !track || !Context;
    if (!track || !Context) return;
    const context = new Context();
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const x of samples) sum += x * x;
      session.micLevel = Math.min(1, Math.sqrt(sum / samples.length) * 4);
      $("mic-level").value = session.micLevel;
    }, 100);
    session.meter = { context, timer };
  }

  function stopMeter() {
    if (!session.meter) return;
    clearInterval(session.meter.timer);
    session.meter.context.close();
    session.meter = null;
    session.micLevel = 0;
    $("mic-level").value = 0;
  }

  // --- devices: camera, microphone and speaker choice, camera flip ----------------------------------------------

  async function fillDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    const devices = await navigator.mediaDevices.enumerateDevices();
    const tracks = session.room ? session.room.localParticipant.tracks : new Map();
    const using = (cid) => {
      const publication = tracks.get(cid);
      return publication && publication.track.getSettings ? publication.track.getSettings().deviceId : "";
    };
    const cameras = devices.filter((d) => d.kind === "videoinput");
    fill($("camera-select"), cameras, using("camera"), "Camera", !tracks.has("camera"));
    fill($("mic-select"), devices.filter((d) => d.kind === "audioinput"), using("microphone"), "Microphone",
      !tracks.has("microphone"));
    $("flip").hidden = cameras.length < 2 || !tracks.has("camera");
    const outputs = devices.filter((d) => d.kind === "audiooutput");
    const routable = "setSinkId" in HTMLMediaElement.prototype && outputs.length > 0; // not every browser may
    $("speaker-row").hidden = !routable;
    if (routable) fill($("speaker-select"), outputs, session.sinkId || "default", "Speaker", false);
  }

  function fill(select, list, selected, word, off) {
    select.replaceChildren(...list.map((d, i) => {
      const option = new Option(d.label || `${word} ${i + 1}`, d.deviceId);
      option.selected = d.deviceId === selected;
      return option;
    }));
    select.disabled = off || list.length === 0;
  }

  async function useDevice(cid, deviceId) {
    // Another camera or microphone on the same publication (same track sid): the SDK replaces the sent track.
    const room = session.room;
    if (!room || !deviceId) return;
    try {
      await room.localParticipant.switchDevice(cid, deviceId);
    } catch (err) {
      showError("device_failed", `Could not use that ${cid}.`);
    }
    await fillDevices();
  }

  async function flipCamera() {
    // The SDK flips by facingMode where the camera tells one, else to the next camera; the publication keeps its sid.
    const room = session.room;
    if (!room) return;
    try {
      await room.localParticipant.flipCamera();
    } catch (err) {
      showError("device_failed", "Could not flip the camera.");
    }
    await fillDevices();
  }

  function useSpeaker(sinkId) {
    session.sinkId = sinkId;
    for (const element of $("audio-sink").children) route(element);
  }

  function route(element) {
    if (session.sinkId && element.setSinkId && element.sinkId !== session.sinkId) {
      element.setSinkId(session.sinkId).catch(() => showError("device_failed", "Could not use that speaker."));
    }
  }

  function showSelf() {
    const room = session.room;
    const camera = room && room.localParticipant.tracks.get("camera");
    const video = $("self-video");
    if (camera && (!video.srcObject || video.srcObject.getVideoTracks()[0] !== camera.track)) {
      video.srcObject = new MediaStream([camera.track]);
    }
    if (video.srcObject) mirrorFor(video, video.srcObject);
  }

  async function toggleShare() {
    const room = session.room;
    if (!room) return;
    const lp = room.localParticipant;
    try {
      await lp.setScreenShareEnabled(!lp.tracks.has("screen"));
    } catch (err) {
      if (!err || err.name !== "NotAllowedError") showError("share_failed", "Could not share the screen.");
    }
    renderControls();
  }

  return { startMeter, stopMeter, fillDevices, useDevice, flipCamera, useSpeaker, route, showSelf, toggleShare };
}
