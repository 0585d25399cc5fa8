// Camera flip on phones (sdk/facing.js): front/back by facingMode where the track tells one, the next camera in the
// device list otherwise, and the self view mirrored only for a camera facing the user.
import { test } from "node:test";
import assert from "node:assert/strict";
import { otherFacing, facingOf, flipChoice, flipped, mirrored } from "../../tvapp/server/web/sdk/facing.js";

test("the other facing mode: user <-> environment, a side camera flips to the front", () => {
  assert.equal(otherFacing("user"), "environment");
  assert.equal(otherFacing("environment"), "user");
  assert.equal(otherFacing("left"), "user");
  assert.equal(otherFacing(undefined), "user");
});

test("the facing mode comes from the settings, else the capabilities' first value, else none", () => {
  assert.equal(facingOf({ facingMode: "environment" }, { facingMode: ["user"] }), "environment");
  assert.equal(facingOf({}, { facingMode: ["user"] }), "user");
  assert.equal(facingOf({ facingMode: "" }, { facingMode: [] }), null);
  assert.equal(facingOf({ deviceId: "a" }, {}), null);
  assert.equal(facingOf(undefined, undefined), null);
});

test("a front camera flips to the back one: exact first, then ideal, the next device as the last resort", () => {
  const choice = flipChoice({ settings: { deviceId: "front", facingMode: "user" }, cameras: ["front", "back"] });
  assert.deepEqual(choice, { facingMode: "environment", tries: [{ exact: "environment" }, { ideal: "environment" }],
    nextDeviceId: "back" });
  const back = flipChoice({ settings: { deviceId: "back" }, capabilities: { facingMode: ["environment"] },
    cameras: ["front", "back"] });
  assert.deepEqual(back.tries, [{ exact: "user" }, { ideal: "user" }]);
  assert.equal(back.nextDeviceId, "front");
});

test("a camera that tells no facing mode goes to the next one in the list, round to the first", () => {
  const cameras = ["a", "b", "c"];
  assert.deepEqual(flipChoice({ settings: { deviceId: "a" }, cameras }), { facingMode: null, tries: [], nextDeviceId: "b" });
  assert.equal(flipChoice({ settings: { deviceId: "c" }, cameras }).nextDeviceId, "a");
  assert.equal(flipChoice({ settings: { deviceId: "gone" }, cameras }).nextDeviceId, "a"); // not listed: the first
  assert.equal(flipChoice({ settings: { deviceId: "a" }, cameras: ["a"] }).nextDeviceId, null); // nothing to flip to
  assert.equal(flipChoice({ settings: { deviceId: "a" }, cameras: [] }).nextDeviceId, null);
  assert.equal(flipChoice({ settings: { deviceId: "a" }, cameras: ["", "a"] }).nextDeviceId, null); // no ids yet
  assert.deepEqual(flipChoice(), { facingMode: null, tries: [], nextDeviceId: null });
});

test("a flip happened when the new track faces the wanted way, or (telling none) is another device", () => {
  const before = { deviceId: "front", facingMode: "user" };
  assert.equal(flipped(before, { deviceId: "back", facingMode: "environment" }, "environment"), true);
  assert.equal(flipped(before, { deviceId: "front", facingMode: "user" }, "environment"), false); // ideal gave it back
  assert.equal(flipped(before, { deviceId: "other", facingMode: "user" }, "environment"), false);
  assert.equal(flipped(before, { deviceId: "other" }, "environment"), true);
  assert.equal(flipped(before, { deviceId: "front" }, "environment"), false);
  assert.equal(flipped(before, {}, "environment"), false);
});

test("the self view mirrors a camera facing the user (or telling nothing, as a laptop's), never a back camera", () => {
  assert.equal(mirrored({ facingMode: "user" }), true);
  assert.equal(mirrored({}), true);
  assert.equal(mirrored({}, { facingMode: ["user"] }), true);
  assert.equal(mirrored({ facingMode: "environment" }), false);
  assert.equal(mirrored({}, { facingMode: ["environment"] }), false);
  assert.equal(mirrored({ facingMode: "left" }), false);
});
