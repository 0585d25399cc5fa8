// tvapp JavaScript SDK (ES module, no build step): join a tvapp room from a web page, publish camera, microphone and
// screen, see and hear the others, send data, and watch the room's content in sync. Served by the core at
// /sdk/tvapp.js; types in tvapp.d.ts. Start with `const room = await Room.connect(coreUrl, accessToken)`.

export { Room } from "./room.js";
export { Emitter } from "./events.js";
export { encode, decode, parseServerMessage, ProtocolError, PROTOCOL_VERSION, CLIENT_MESSAGES, SERVER_MESSAGES }
  from "./codec.js";
export { nextState, canTransition, reconnectStep, retryDelayMs, STATES } from "./state.js";
export { tokenTimes, refreshDelay, tokenExpired } from "./tokens.js";
export { RoomClock, moving, positionAt, steer, median, learnFrame, frameError, measuredError } from "./steering.js";
export { Playback } from "./playback.js";
export { createSyncedVideo, playableUrl } from "./syncvideo.js";
export { otherFacing, facingOf, flipChoice, flipped, mirrored } from "./facing.js";
export { RENDITION, renditionScale, renditionEncoding } from "./simulcast.js";
export { LocalParticipant, RemoteParticipant, RemoteTrack, RemoteTrackPublication, LocalTrackPublication }
  from "./participants.js";
export const VERSION = "0.1.0"; // = the Python package's version (tests/test_web_sdk_package.py checks)
