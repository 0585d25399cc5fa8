// The JS SDK's codec against the signaling examples both SDKs share (tests/fixtures/signaling/messages.json).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { encode, decode, parseServerMessage, ProtocolError, CLIENT_MESSAGES, SERVER_MESSAGES, MAX_MESSAGE_BYTES }
  from "../../tvapp/server/web/sdk/codec.js";

const FIXTURES = JSON.parse(readFileSync(new URL("../fixtures/signaling/messages.json", import.meta.url), "utf8"));

test("every client example is what encode() builds from its fields", () => {
  for (const { name, message } of FIXTURES.client) {
    const { type, v, ...fields } = message;
    assert.equal(v, 1, name);
    assert.deepEqual(JSON.parse(encode(type, fields)), message, name);
  }
});

test("every invalid client example is refused naming its field", () => {
  for (const { name, message, field } of FIXTURES.client_invalid) {
    const { type, v, ...fields } = message;
    assert.throws(() => encode(type, fields), (err) => err instanceof ProtocolError && err.message.includes(field),
      name);
  }
});

test("every server example decodes to itself", () => {
  for (const { name, message } of FIXTURES.server) {
    assert.deepEqual(decode(JSON.stringify(message)), message, name);
  }
});

test("every invalid server example is refused naming its field", () => {
  for (const { name, message, field } of FIXTURES.server_invalid) {
    assert.throws(() => parseServerMessage(message), (err) => err instanceof ProtocolError && err.message.includes(field),
      name);
  }
});

test("the codec knows exactly the message types the examples (and so the Python protocol) have", () => {
  const types = (group) => new Set(FIXTURES[group].map((e) => e.message.type));
  assert.deepEqual(new Set(Object.keys(CLIENT_MESSAGES)), types("client"));
  assert.deepEqual(new Set(Object.keys(SERVER_MESSAGES)), types("server"));
});

test("decode refuses non-JSON, oversized text, a wrong version and an unknown type", () => {
  assert.throws(() => decode("{nope"), /not JSON/);
  assert.throws(() => decode(" ".repeat(MAX_MESSAGE_BYTES + 1)), /too big/);
  assert.throws(() => decode('{"type":"leave","v":2}'), (err) => err.code === "unsupported_version");
  assert.throws(() => decode('{"type":"teleport","v":1}'), (err) => err.code === "unknown_type");
  assert.throws(() => decode("[]"), /expected an object/);
});

test("decode ignores unknown extra fields (newer servers may add some)", () => {
  const msg = decode('{"type":"removed","v":1,"reason":"x","future":true}');
  assert.equal(msg.reason, "x");
});
