import { test } from "node:test";
import assert from "node:assert/strict";
import { Emitter } from "../../tvapp/server/web/sdk/events.js";

test("on() delivers events until its unsubscribe is called", () => {
  const e = new Emitter();
  const got = [];
  const stop = e.on("data", (ev) => got.push(ev.n));
  assert.equal(e.emit("data", { n: 1 }), 1);
  stop();
  assert.equal(e.emit("data", { n: 2 }), 0);
  assert.deepEqual(got, [1]);
});

test("off() removes a listener by function; other names are untouched", () => {
  const e = new Emitter();
  const got = [];
  const fn = (ev) => got.push(ev);
  e.on("a", fn);
  e.on("b", fn);
  e.off("a", fn);
  e.emit("a", 1);
  e.emit("b", 2);
  assert.deepEqual(got, [2]);
  assert.equal(e.listenerCount("a"), 0);
  assert.equal(e.listenerCount("b"), 1);
});

test("a throwing listener does not stop the others and is reported as an error event", () => {
  const e = new Emitter();
  const errors = [];
  const got = [];
  e.on("error", (ev) => errors.push(ev.code));
  e.on("x", () => {
    throw new Error("boom");
  });
  e.on("x", () => got.push("second"));
  e.emit("x", {});
  assert.deepEqual(got, ["second"]);
  assert.deepEqual(errors, ["listener_failed"]);
});

test("once() resolves with the first event that passes its predicate, then stops listening", async () => {
  const e = new Emitter();
  const waiting = e.once("n", (ev) => ev > 2);
  e.emit("n", 1);
  e.emit("n", 3);
  e.emit("n", 4);
  assert.equal(await waiting, 3);
  assert.equal(e.listenerCount("n"), 0);
});

test("once() with a timeout rejects when nothing comes", async () => {
  const e = new Emitter();
  await assert.rejects(e.once("never", undefined, 20), /no never event within 20 ms/);
  assert.equal(e.listenerCount("never"), 0);
});

test("on() refuses a non-function", () => {
  assert.throws(() => new Emitter().on("x", 5), TypeError);
});
