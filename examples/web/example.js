// A minimal page on the tvapp web SDK: join a room with a core URL and an access token (`tvapp token --room ROOM --identity IDENTITY`
// makes one), publish camera and microphone, and show a tile per participant. The SDK is loaded from the core
// itself (/sdk/tvapp.js), so the page can live anywhere the core's [server] cors_origins lets in.
// window.example is there for tests.

const $ = (id) => document.getElementById(id);
const state = { room: null, events: [] };
window.example = state;

function tileOf(participant) {
  let tile = document.querySelector(`.tile[data-sid="${CSS.escape(participant.sid)}"]`);
  if (!tile) {
    tile = document.createElement("div");
    tile.className = "tile";
    tile.dataset.sid = participant.sid;
    tile.dataset.identity = participant.identity;
    const video = document.createElement("video");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = participant.name || participant.identity;
    tile.append(video, name);
    $("tiles").append(tile);
  }
  return tile;
}

async function join(url, token) {
  $("status").textContent = "Joining…";
  const { Room } = await import(new URL("/sdk/tvapp.js", url).href);
  const room = new Room(url, token);
  state.room = room;
  const log = (name) => room.on(name, (event) => {
    state.events.push({ name, reason: event.reason, resumed: event.resumed, at: Date.now() });
  });
  ["connected", "disconnected", "reconnecting", "reconnected", "participant_joined", "participant_left",
    "track_subscribed", "track_unsubscribed", "error"].forEach(log);
  room.on("participant_joined", ({ participant }) => tileOf(participant));
  room.on("participant_left", ({ participant }) => tileOf(participant).remove());
  room.on("participant_reconnecting", ({ participant }) => tileOf(participant).classList.add("reconnecting"));
  room.on("participant_reconnected", ({ participant }) => tileOf(participant).classList.remove("reconnecting"));
  room.on("track_subscribed", ({ track, participant }) => {
    if (!participant) return;
    const tile = tileOf(participant);
    if (track.kind === "video") track.attach(tile.querySelector("video"));
    else tile.append(track.attach()); // an <audio> element per audio track
  });
  room.on("track_unsubscribed", ({ track }) => {
    for (const el of track.detach()) if (el.tagName === "AUDIO") el.remove();
  });
  room.on("active_speakers", ({ dominantSid }) => {
    for (const tile of document.querySelectorAll(".tile")) tile.classList.toggle("speaking", tile.dataset.sid === dominantSid);
  });
  room.on("reconnecting", () => { $("status").textContent = "Reconnecting…"; });
  room.on("reconnected", () => { $("status").textContent = `In ${room.name}`; });
  room.on("disconnected", ({ reason }) => {
    $("status").textContent = `Left (${reason}).`;
    $("tiles").replaceChildren();
    $("join").disabled = false;
    $("leave").disabled = true;
    $("share").disabled = true;
  });
  room.on("error", ({ code, message }) => console.warn("tvapp:", code, message));
  try {
    await room.connect(); // Room.connect(url, token) in one step, but with the listeners above in place first
  } catch (err) {
    $("status").textContent = `Could not join: ${err.code || err.message}`;
    $("join").disabled = false;
    return;
  }
  for (const p of room.participants.values()) tileOf(p);
  $("status").textContent = `In ${room.name}`;
  $("leave").disabled = false;
  $("share").disabled = false;
  await room.localParticipant.setMicrophoneEnabled(true);
  await room.localParticipant.setCameraEnabled(true);
}

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  $("join").disabled = true;
  join($("url").value.trim(), $("token").value.trim());
});
$("leave").addEventListener("click", () => state.room && state.room.disconnect());
$("share").addEventListener("click", async () => {
  // Screen capture needs a click (a user gesture); the screen is a track of its own ("screen" source).
  const sharing = $("share").getAttribute("aria-pressed") !== "true";
  try {
    await state.room.localParticipant.setScreenShareEnabled(sharing);
    $("share").setAttribute("aria-pressed", String(sharing));
    $("share").textContent = sharing ? "Stop sharing" : "Share screen";
  } catch (err) {
    $("status").textContent = `Cannot share the screen: ${err.name}`;
  }
});

// #url=...&token=... (a fragment: never sent to a server, so never in an access log) fills the form and joins; the
// fragment is removed from the address bar at once so the token does not stay in history or get shared with a link.
const params = new URLSearchParams(location.hash.slice(1));
if (location.hash) history.replaceState(null, "", location.pathname + location.search);
if (params.has("url")) $("url").value = params.get("url");
if (params.has("token")) $("token").value = params.get("token");
if (params.has("url") && params.has("token")) join(params.get("url"), params.get("token"));
