// Unit tests of realtime.js in Node, over a scripted WebSocket: `node --test` in this
// directory (`cargo xtask test` runs them). The browser test of the demo drives the client
// against a real server.
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { RealtimeClient, parseMessage, decodeBase64 } from "./realtime.js";

/** A WebSocket the test drives: records what the client sends, delivers what it is told. */
class ScriptedSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 1;
    this.sent = [];
    ScriptedSocket.all.push(this);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close(code = 1000) {
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }
  /** The server says `message` (an object: a text frame; a Uint8Array: a binary one). */
  receive(message) {
    const data = message instanceof Uint8Array ? message.buffer : JSON.stringify(message);
    this.onmessage?.({ data });
  }
  greet() {
    this.receive({ type: "subscribed", topics: [], client_id: "c-1" });
  }
}

function client(options = {}) {
  ScriptedSocket.all = [];
  const seen = { events: [], gaps: [], states: [], errors: [] };
  const instance = new RealtimeClient("ws://server/ws?token=t", {
    WebSocket: ScriptedSocket,
    pingIntervalMs: 0,
    onEvent: (e) => seen.events.push(e),
    onGap: (g) => seen.gaps.push(g),
    onState: (s) => seen.states.push(s),
    onError: (e) => seen.errors.push(e),
    ...options,
  });
  return { instance, seen, socket: () => ScriptedSocket.all.at(-1) };
}

test("parseMessage reads text, JSON and binary events, and refuses a binary frame without its line", () => {
  assert.deepEqual(parseMessage('{"type":"event","channel":"c","id":"a-1","data":"hi"}'),
    { type: "event", channel: "c", id: "a-1", data: "hi", format: "text" });
  assert.deepEqual(parseMessage('{"type":"event","channel":"c","id":"a-1","format":"json","data":{"n":1}}').data, { n: 1 });
  const head = new TextEncoder().encode('{"type":"event","channel":"c","id":"a-2","format":"binary"}\n');
  const frame = new Uint8Array([...head, 0, 10, 255]);
  const binary = parseMessage(frame.buffer);
  assert.equal(binary.format, "binary");
  assert.deepEqual([...binary.data], [0, 10, 255]);
  assert.throws(() => parseMessage(new Uint8Array([123, 125]).buffer), /JSON line/);
  assert.deepEqual([...decodeBase64("AAoN/w==")], [0, 10, 13, 255]);
});

test("after the greeting it subscribes every channel, resuming each after its last id", () => {
  const { instance, seen, socket } = client({ channels: ["a"], lastEventIds: { b: "e1-7" }, backlog: 5 });
  assert.equal(socket().url, "ws://server/ws?token=t");
  socket().greet();
  assert.deepEqual(socket().sent, [
    { type: "subscribe", topics: ["b", "a"], last_event_ids: { b: "e1-7" }, backlog: 5 },
  ]);
  assert.equal(instance.state, "connecting", "open once the subscribe is answered");
  socket().receive({ type: "subscribed", topics: ["b", "a"] });
  assert.equal(instance.state, "open");
  assert.equal(instance.clientId, "c-1");
  socket().receive({ type: "event", channel: "b", id: "e1-8", data: "x" });
  socket().receive({ type: "event", channel: "b", id: "e1-8", data: "x" }); // repeated: dropped
  socket().receive({ type: "event", channel: "a", id: "e2-1", event: "note", format: "json", data: [1] });
  assert.deepEqual(seen.events, [
    { channel: "b", id: "e1-8", type: "message", format: "text", data: "x" },
    { channel: "a", id: "e2-1", type: "note", format: "json", data: [1] },
  ]);
  socket().receive({ type: "gap", channel: "a", reason: "trimmed", head: "e2-9" });
  assert.deepEqual(seen.gaps, [{ channel: "a", reason: "trimmed", head: "e2-9" }]);
  assert.equal(instance.lastEventId("a"), "e2-9", "a gap moves the resume point to its head");
  instance.close();
});

test("a cut reconnects after a jittered, growing delay and resumes from the newest ids", () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  const random = mock.method(Math, "random", () => 0.999);
  try {
    const { instance, seen, socket } = client({ channels: ["a"], initialDelayMs: 100, maxDelayMs: 300, stableMs: 0 });
    socket().greet();
    socket().receive({ type: "subscribed", topics: ["a"] });
    socket().receive({ type: "event", channel: "a", id: "e-4", data: "x" });
    // Connections that never get as far as open keep growing the back-off.
    socket().close(1001);
    mock.timers.tick(100);
    const delays = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      const count = ScriptedSocket.all.length;
      socket().close(1001);
      assert.equal(instance.state, "reconnecting");
      let waited = 0;
      while (ScriptedSocket.all.length === count) {
        mock.timers.tick(1);
        waited += 1;
        assert.ok(waited <= 1000, "reconnects");
      }
      delays.push(waited);
    }
    // Bounds 200, 300, 300, 300 (the cap): the first cut took the 100 ms one.
    assert.deepEqual(delays, [200, 300, 300, 300]);
    random.mock.mockImplementation(() => 0);
    socket().greet();
    assert.deepEqual(socket().sent.at(-1), { type: "subscribe", topics: ["a"], last_event_ids: { a: "e-4" } });
    socket().receive({ type: "subscribed", topics: ["a"] });
    assert.equal(instance.state, "open");
    // Open again: the next cut starts from the first bound, at its half (random() = 0).
    const count = ScriptedSocket.all.length;
    socket().close(1013);
    mock.timers.tick(49);
    assert.equal(ScriptedSocket.all.length, count, "not before half the first bound");
    mock.timers.tick(1);
    assert.equal(ScriptedSocket.all.length, count + 1);
    instance.close();
    assert.equal(instance.state, "closed");
    assert.deepEqual(seen.states.filter((s) => s === "open").length, 2);
  } finally {
    random.mock.restore();
    mock.timers.reset();
  }
});

test("subscribe resolves on the server's answer, a refusal rejects and the channel is not kept", async () => {
  const { instance, seen, socket } = client();
  const early = instance.subscribe(["a"]); // before the greeting: sent with it
  socket().greet();
  assert.deepEqual(socket().sent, [{ type: "subscribe", topics: ["a"] }]);
  socket().receive({ type: "subscribed", topics: ["a"] });
  await early;
  const refused = instance.subscribe(["bad topic"]);
  socket().receive({ type: "error", code: "invalid_topic", message: "no" });
  await assert.rejects(refused, (e) => e.code === "invalid_topic");
  assert.deepEqual(instance.channels, ["a"]);
  assert.equal(instance.state, "open");
  instance.unsubscribe(["a"]);
  assert.deepEqual(socket().sent.at(-1), { type: "unsubscribe", topics: ["a"] });
  const before = seen.events.length;
  socket().receive({ type: "event", channel: "a", id: "e-1", data: "late" });
  assert.equal(seen.events.length, before, "no event of a channel left");
  const pending = instance.subscribe(["b"]);
  instance.close();
  await assert.rejects(pending, /closed/);
});

test("a reconnect rule can stop it: a server disconnect (1000) ends the client", () => {
  const { instance, socket } = client({ reconnect: ({ code }) => code !== 1000 });
  socket().greet();
  const count = ScriptedSocket.all.length;
  socket().close(1000);
  assert.equal(instance.state, "closed");
  assert.equal(ScriptedSocket.all.length, count);
});

test("a hostile server's messages are refused without escaping, and ids are checked", () => {
  const { instance, seen, socket } = client({ channels: ["a", "__proto__"], lastEventIds: { b: "x".repeat(100) } });
  socket().greet();
  // A kept id must look like a position: the 100-character one is not sent back.
  assert.deepEqual(socket().sent[0].last_event_ids, undefined);
  socket().receive({ type: "subscribed", topics: ["a"] });
  socket().receive({ type: "event", channel: "a", id: 5, data: "x" });
  socket().receive({ type: "gap", channel: "a", reason: "trimmed", head: { evil: true } });
  socket().receive({ type: "gap", channel: "not-mine", reason: "trimmed", head: "e-9" });
  socket().receive({ type: "event", channel: "__proto__", id: "e-2", data: "y" });
  assert.equal(seen.errors.length, 2, "two unreadable messages reported");
  assert.deepEqual(seen.gaps, [], "no gap of a channel not subscribed");
  assert.equal(instance.lastEventId("__proto__"), "e-2");
  // Resumed with it: the id of `__proto__` is sent like any other.
  socket().close(1001);
  instance.close();
});

test("a refused resume reconnects with back-off and drops only the channels asked while away", async () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const { instance, seen, socket } = client({ channels: ["a"], initialDelayMs: 100 });
    socket().greet();
    socket().receive({ type: "subscribed", topics: ["a"] });
    socket().close(1001);
    const asked = instance.subscribe(["revoked"]);
    mock.timers.tick(100);
    socket().greet();
    assert.deepEqual(socket().sent.at(-1).topics, ["a", "revoked"]);
    socket().receive({ type: "error", code: "forbidden", message: "no" });
    await assert.rejects(asked, (e) => e.code === "forbidden");
    assert.equal(instance.state, "reconnecting", "not open with nothing joined");
    assert.deepEqual(instance.channels, ["a"]);
    assert.ok(seen.errors.some((e) => e.code === "forbidden"));
    mock.timers.tick(200);
    socket().greet();
    assert.deepEqual(socket().sent.at(-1).topics, ["a"]);
    socket().receive({ type: "subscribed", topics: ["a"] });
    assert.equal(instance.state, "open");
    instance.close();
  } finally {
    mock.timers.reset();
  }
});
