// End-to-end: the demo page in headless Chromium. `cargo xtask test` builds the demo and runs
// this with DEMO_BIN (the server binary), DEMO_ARGS (more arguments for it, e.g. `--framework
// actix`) and SCREENSHOT (where to save a picture of the page).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chromium } from "playwright-core";

const DEADLINE_MS = 15_000;
const RETRY_MS = 1_500; // the demo's announced reconnection delay: time "away" after a cut
let server, base, browser;

before(async () => {
  const bin = process.env.DEMO_BIN;
  assert.ok(bin, "DEMO_BIN must name the realtime-demo binary");
  // DEMO_ARGS adds arguments, e.g. `--framework actix`: the same test on either framework.
  const extra = (process.env.DEMO_ARGS ?? "").split(" ").filter((a) => a !== "");
  server = spawn(bin, ["--addr", "127.0.0.1:0", "--retry-ms", String(RETRY_MS), ...extra], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  base = await new Promise((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const match = out.match(/listening on (http:\/\/\S+)/);
      if (match) resolve(match[1]);
    });
    server.on("exit", (code) => reject(new Error(`demo exited early with ${code}`)));
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    server.kill("SIGINT");
    await once(server, "exit");
  }
});

async function publish(channel, data, type) {
  const res = await fetch(`${base}/publish`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(type ? { channel, data, type } : { channel, data }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.id;
}

async function stats() {
  return (await fetch(`${base}/stats`)).json();
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
async function eventually(what, check) {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`not within ${DEADLINE_MS} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const log = (page) => page.evaluate(() => window.realtimeLog);

for (const mode of ["sse", "ws"]) {
test(`${mode}: events arrive, and a cut stream resumes exactly from the last id`, async () => {
  const channel = `e2e-${mode}-${Date.now()}`;
  const page = await browser.newPage();
  await page.goto(`${base}/?channel=${channel}&mode=${mode}`);
  assert.equal(await page.evaluate(() => window.realtimeMode), mode);
  await eventually("page connected", () => page.evaluate(() => window.realtimeState === "open"));

  const live = [];
  for (const n of [1, 2, 3]) live.push(await publish(channel, `live ${n}`));
  await eventually("3 live events shown", async () => (await log(page)).length >= 3);

  // The form publishes too.
  await page.fill("#p-data", "from the form");
  await page.fill("#p-type", "note");
  await page.click("button[type=submit]");
  await eventually("form event shown", async () => (await log(page)).length >= 4);

  // The server ends every stream; while the browser waits to reconnect, three more events.
  const cut = await (await fetch(`${base}/admin/disconnect-all`, { method: "POST" })).json();
  // This page's stream, and on actix-web possibly the closed page of the previous test too
  // (actix notices a gone client only at its next write, a heartbeat).
  assert.ok(cut.disconnected >= 1, JSON.stringify(cut));
  await eventually("browser away", async () => (await stats()).connections === 0);
  const missed = [];
  for (const n of [1, 2, 3]) missed.push(await publish(channel, `missed ${n}`));
  assert.equal((await stats()).connections, 0, "the events must be published while it is away");

  await eventually("reconnected with the missed events", async () => (await log(page)).length >= 7);
  const entries = await log(page);
  assert.deepEqual(entries.filter((e) => e.kind === "gap"), [], "no gap on an exact resume");
  const ids = entries.map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length, `no duplicates: ${ids}`);
  assert.deepEqual(ids.slice(0, 3), live);
  assert.deepEqual(ids.slice(4), missed, "exactly the events published while away, in order");
  assert.deepEqual(entries.map((e) => e.data), [
    "live 1", "live 2", "live 3", "from the form", "missed 1", "missed 2", "missed 3",
  ]);
  assert.equal(entries[3].type, "note");
  assert.equal(await page.evaluate(() => window.realtimeReconnects), 1);
  assert.equal(await page.evaluate(() => window.realtimeState), "open");

  if (process.env.SCREENSHOT) {
    const path = process.env.SCREENSHOT.replace(/\.png$/, `-${mode}.png`);
    await page.screenshot({ path, fullPage: true });
  }
  await page.close();
});
}

for (const mode of ["sse", "ws"]) {
test(`${mode}: an unknown last id shows the gap signal`, async () => {
  const channel = `gap-${mode}-${Date.now()}`;
  const head = await publish(channel, "before");
  // A well-formed id the server never issued (from its future).
  const unknown = head.replace(/-\d+$/, "-999999");
  const page = await browser.newPage();
  await page.goto(`${base}/?channel=${channel}&mode=${mode}&last_event_id=${unknown}`);
  const gap = await eventually("gap shown", async () => (await log(page)).find((e) => e.kind === "gap"));
  assert.deepEqual(gap, { kind: "gap", channel, reason: "unknown_position", head });
  assert.match(await page.textContent("li.gap"), /unknown_position/);
  const after = await publish(channel, "after");
  await eventually("live after the gap", async () => (await log(page)).some((e) => e.id === after));
  assert.deepEqual((await log(page)).map((e) => e.kind), ["gap", "event"], "no replay after a gap");
  await page.close();
});
}

async function publishBody(body) {
  const res = await fetch(`${base}/publish`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await res.json();
  assert.equal(res.status, 200, JSON.stringify(answer));
  return answer.id;
}

for (const mode of ["sse", "ws"]) {
test(`${mode}: JSON and binary data arrive as the page can read them`, async () => {
  const channel = `formats-${mode}-${Date.now()}`;
  const page = await browser.newPage();
  await page.goto(`${base}/?channel=${channel}&mode=${mode}`);
  await eventually("page connected", () => page.evaluate(() => window.realtimeState === "open"));
  await publishBody({ channel, data: { n: 1, tags: ["a", "b"] } });
  await publishBody({ channel, data: "{\"n\":1}" });
  await publishBody({ channel, data_base64: "AP8K" });
  const entries = await eventually("3 events shown", async () => {
    const seen = await log(page);
    return seen.length >= 3 && seen;
  });
  if (mode === "ws") {
    // One parse: JSON data is the value itself; a string stays a string; bytes are bytes.
    assert.deepEqual(entries.map((e) => [e.format, e.data]), [
      ["json", { n: 1, tags: ["a", "b"] }], ["text", "{\"n\":1}"], ["binary", [0, 255, 10]],
    ]);
  } else {
    // EventSource hands over text: JSON as its text, bytes as base64.
    assert.deepEqual(entries.map((e) => e.data), ["{\"n\":1,\"tags\":[\"a\",\"b\"]}", "{\"n\":1}", "AP8K"]);
  }
  await page.close();
});
}

test("ws client: channels joined at runtime resume each at its own id; left ones stay quiet", async () => {
  const a = `client-a-${Date.now()}`;
  const b = `client-b-${Date.now()}`;
  const page = await browser.newPage();
  await page.goto(`${base}/?channel=${a}&mode=ws`);
  await eventually("page connected", () => page.evaluate(() => window.realtimeState === "open"));
  // subscribe() resolves once the server has joined the channel.
  await page.evaluate((b) => window.realtimeClient.subscribe([b]), b);
  const first = [await publish(a, "a 1"), await publish(b, "b 1")];
  await eventually("both shown", async () => (await log(page)).length >= 2);

  // Cut; both channels move on while the client is away; it resumes each after its own id.
  await fetch(`${base}/admin/disconnect-all`, { method: "POST" });
  await eventually("client away", async () => (await stats()).connections === 0);
  const missed = [await publish(b, "b 2"), await publish(a, "a 2"), await publish(b, "b 3")];
  await eventually("resumed", async () => (await log(page)).length >= 5);
  const entries = await log(page);
  const byChannel = (ch) => entries.filter((e) => e.channel === ch).map((e) => e.id);
  assert.deepEqual(byChannel(a), [first[0], missed[1]]);
  assert.deepEqual(byChannel(b), [first[1], missed[0], missed[2]]);
  assert.equal(await page.evaluate((b) => window.realtimeClient.lastEventId(b), b), missed[2]);

  // Left: nothing more from b, though a's next event arrives.
  await page.evaluate((b) => window.realtimeClient.unsubscribe([b]), b);
  await publish(b, "b 4");
  const last = await publish(a, "a 3");
  await eventually("a 3 shown", async () => (await log(page)).some((e) => e.id === last));
  assert.equal((await log(page)).filter((e) => e.channel === b).length, 3, "no event of a left channel");
  // A refused subscribe rejects with the server's code; the connection stays open.
  const refused = await page.evaluate(() => window.realtimeClient.subscribe(["no spaces"]).then(() => "joined", (e) => e.code));
  assert.equal(refused, "invalid_topic");
  assert.equal(await page.evaluate(() => window.realtimeState), "open");
  await page.close();
});
