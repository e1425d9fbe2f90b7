// realtime.js — the browser and Node client of the `realtime` WebSocket protocol, and helpers
// for EventSource users. An ES module with no dependencies and no build step:
//
//   import { RealtimeClient } from "./realtime.js";
//   const client = new RealtimeClient("wss://example.com/ws", {
//     onEvent: (event) => render(event.channel, event.data),
//     onGap: (gap) => refetch(gap.channel),
//   });
//   client.subscribe(["orders"]);
//
// The client reconnects by itself (exponential back-off with jitter), keeps the newest
// id of every channel and resumes from it, so after a cut it receives exactly the events it
// missed — or a gap, when the server cannot replay them (then refetch the channel's state).
// Types: realtime.d.ts. Protocol: the `realtime-ws` crate's documentation.

/** The states a client goes through. */
export const State = Object.freeze({
  CONNECTING: "connecting",
  OPEN: "open",
  RECONNECTING: "reconnecting",
  CLOSED: "closed",
});

const DEFAULTS = Object.freeze({
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  stableMs: 10_000,
  pingIntervalMs: 30_000,
  backlog: undefined,
});

/** A position token as the server writes it (anything else is not kept or sent back). */
const POSITION = /^[0-9a-f]{1,16}-[0-9]{1,20}$/;

/**
 * Reads one server message (a text frame's string, or a binary frame's ArrayBuffer or
 * Uint8Array) into `{type, …}`. An event's `data` is a string (text), the JSON value itself
 * (`format: "json"`) or a Uint8Array (`format: "binary"`); `format` is always set.
 * Throws on a message that is not the protocol's.
 */
export function parseMessage(data) {
  if (typeof data === "string") {
    const message = JSON.parse(data);
    if (message.type === "event") message.format ??= "text";
    return message;
  }
  const frame = data instanceof Uint8Array ? data : new Uint8Array(data);
  const end = frame.indexOf(10);
  if (end < 0) throw new Error("binary message without its JSON line");
  const message = JSON.parse(new TextDecoder().decode(frame.subarray(0, end)));
  message.data = frame.slice(end + 1);
  return message;
}

/** Standard base64 (as SSE carries binary data) to bytes. */
export function decodeBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * For EventSource users: calls `onGap({channel, reason, head})` for each `realtime-gap` event
 * of `source` — the same callback the WebSocket client takes. Returns a function that stops
 * listening.
 */
export function onSseGap(source, onGap) {
  const listener = (e) => {
    let gap;
    try {
      gap = JSON.parse(e.data);
    } catch {
      return;
    }
    onGap(gap);
  };
  source.addEventListener("realtime-gap", listener);
  return () => source.removeEventListener("realtime-gap", listener);
}

/** `a` is at or before `b`: two ids of one channel, `<epoch hex>-<offset>`, same epoch. */
function notAfter(a, b) {
  const [ea, oa] = a.split("-");
  const [eb, ob] = b.split("-");
  if (ea !== eb || oa === undefined || ob === undefined) return false;
  return oa.length < ob.length || (oa.length === ob.length && oa <= ob);
}

/** A WebSocket client that keeps its channels and resumes them exactly after every cut. */
export class RealtimeClient {
  #url;
  #options;
  #socket = null;
  #channels = new Set();
  #lastIds = new Map();
  #state = State.CONNECTING;
  #attempt = 0;
  #timer = null;
  #closed = false;
  #clientId = null;
  /** The current socket has greeted: subscribe and unsubscribe messages can go out. */
  #greeted = false;
  /** One per subscribe sent on the current socket and not answered yet, in order. */
  #answers = [];
  /** subscribe() calls waiting for the next connection to be open. */
  #whenOpen = [];
  /** When the current connection opened (the back-off starts over only after a stable one). */
  #openedAt = null;
  /** When the current socket last received anything. */
  #lastSeen = 0;
  #pinger = null;

  /**
   * `url`: the server's WebSocket endpoint (`ws://` or `wss://`), or a function returning it,
   * called on every connect (to put a fresh token in the query). `options`: see realtime.d.ts.
   */
  constructor(url, options = {}) {
    this.#url = url;
    this.#options = { ...DEFAULTS, ...options };
    for (const [channel, id] of Object.entries(options.lastEventIds ?? {})) {
      if (POSITION.test(id)) this.#lastIds.set(channel, id);
      this.#channels.add(channel);
    }
    for (const channel of options.channels ?? []) this.#channels.add(channel);
    this.#connect();
  }

  /** The connection's state: "connecting", "open", "reconnecting" or "closed". */
  get state() {
    return this.#state;
  }

  /** The id the server gave this connection (its greeting's `client_id`), once open. */
  get clientId() {
    return this.#clientId;
  }

  /** The newest id seen on `channel` (what a resume starts after), or undefined. */
  lastEventId(channel) {
    return this.#lastIds.get(channel);
  }

  /** The channels the client keeps subscribed. */
  get channels() {
    return [...this.#channels];
  }

  /**
   * Subscribes to `channels` (kept across reconnects). A channel with a known last id
   * resumes after it; the others get `options.backlog` newest events (if set), then live.
   * Resolves once the server has joined them (on this connection or the next), rejects with
   * its refusal (`error.code`: `invalid_topic`, `forbidden`, …; the channels are then not
   * kept) or when the client is closed.
   */
  subscribe(channels) {
    const added = channels.filter((c) => !this.#channels.has(c));
    for (const channel of added) this.#channels.add(channel);
    return new Promise((resolve, reject) => {
      const settle = (error) => {
        if (!error) return resolve();
        // Refused (nothing was joined): not kept either, or every reconnect would ask again.
        for (const channel of added) {
          this.#channels.delete(channel);
          this.#lastIds.delete(channel);
        }
        reject(error);
      };
      if (this.#closed) settle(new Error("the client is closed"));
      else if (added.length === 0 && this.#state === State.OPEN) settle(null);
      else if (!(added.length > 0 && this.#greeted && this.#sendSubscribe(added, settle))) {
        this.#whenOpen.push(settle);
      }
    });
  }

  /** Unsubscribes from `channels` and forgets their last ids. */
  unsubscribe(channels) {
    const removed = channels.filter((c) => this.#channels.delete(c));
    for (const channel of removed) this.#lastIds.delete(channel);
    if (removed.length > 0 && this.#greeted) {
      this.#send({ type: "unsubscribe", topics: removed });
    }
  }

  /** Closes the connection for good (no reconnect). */
  close() {
    this.#closed = true;
    clearTimeout(this.#timer);
    const socket = this.#socket;
    this.#socket = null; // its close event is not a cut to report or recover from
    socket?.close(1000);
    this.#end();
  }

  /** Closed for good: state, timers, and every pending subscribe rejected. */
  #end() {
    this.#closed = true;
    clearInterval(this.#pinger);
    this.#setState(State.CLOSED);
    const closed = new Error("the client is closed");
    for (const settle of this.#answers.splice(0).concat(this.#whenOpen.splice(0))) settle(closed);
  }

  #connect() {
    const WebSocketImpl = this.#options.WebSocket ?? globalThis.WebSocket;
    let socket;
    try {
      socket = new WebSocketImpl(typeof this.#url === "function" ? this.#url() : this.#url);
    } catch (error) {
      this.#report(error);
      this.#retry();
      return;
    }
    this.#socket = socket;
    this.#greeted = false;
    this.#openedAt = null;
    this.#lastSeen = Date.now();
    socket.binaryType = "arraybuffer";
    socket.onmessage = (e) => {
      if (this.#socket !== socket) return;
      this.#lastSeen = Date.now();
      // Nothing a server sends, and nothing a callback throws, may escape into the event
      // loop (in Node, an uncaught exception ends the process).
      try {
        this.#onMessage(e.data);
      } catch (error) {
        this.#report(error);
      }
    };
    socket.onclose = (e) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      clearInterval(this.#pinger);
      if (!this.#greeted) this.#report(Object.assign(new Error(`connection failed (${e.code})`), { code: "connect_failed" }));
      this.#greeted = false;
      // A connection that held for a while starts the back-off over.
      if (this.#openedAt !== null && Date.now() - this.#openedAt >= this.#options.stableMs) this.#attempt = 0;
      // Unanswered subscribes are asked again, with every channel, on the next connection.
      this.#whenOpen.push(...this.#answers.splice(0));
      this.#call("onClose", { code: e.code, reason: e.reason });
      let again = true;
      try {
        again = this.#options.reconnect?.({ code: e.code, reason: e.reason }) ?? true;
      } catch (error) {
        this.#report(error);
      }
      if (this.#closed || !again) this.#end();
      else this.#retry();
    };
    const every = this.#options.pingIntervalMs;
    if (every > 0) {
      // Liveness: a half-open connection shows no error; silence does. The server answers
      // a ping with a pong.
      this.#pinger = setInterval(() => {
        if (this.#socket !== socket) return;
        if (Date.now() - this.#lastSeen > 2 * every) socket.close(4001, "no answer");
        else if (this.#greeted) this.#send({ type: "ping" });
      }, every);
    }
  }

  #report(error) {
    try {
      this.#options.onError?.(error);
    } catch {
      // An error handler that throws is not called again for it.
    }
  }

  #call(name, value) {
    try {
      this.#options[name]?.(value);
    } catch (error) {
      this.#report(error);
    }
  }

  #retry() {
    clearInterval(this.#pinger);
    this.#setState(State.RECONNECTING);
    // Jitter: a random delay between half the exponential bound and the bound, so that
    // clients cut together (a server restart) do not come back together, and none comes
    // back at once.
    const bound = Math.min(this.#options.maxDelayMs, this.#options.initialDelayMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    this.#timer = setTimeout(() => {
      if (!this.#closed) this.#connect();
    }, bound / 2 + (Math.random() * bound) / 2);
  }

  #onMessage(raw) {
    const message = parseMessage(raw);
    const text = (value) => typeof value === "string";
    switch (message.type) {
      case "subscribed":
        if (message.client_id !== undefined) {
          // The greeting: the connection is up; ask for every channel, resuming each.
          this.#clientId = message.client_id;
          this.#greeted = true;
          if (this.#channels.size > 0) {
            const waiting = this.#whenOpen.splice(0);
            const socket = this.#socket;
            const settle = (error) => {
              waiting.forEach((s) => s(error));
              if (!error || this.#socket !== socket) return;
              // Refused (a channel revoked, a token expired): nothing was joined. The channels
              // of the subscribe() calls above are dropped by their rejection; reconnect, with
              // the back-off, and ask again for the rest.
              this.#greeted = false;
              socket.close(4000, "subscribe refused");
            };
            if (!this.#sendSubscribe([...this.#channels], settle)) this.#whenOpen.push(...waiting);
          }
        } else {
          this.#answers.shift()?.(null);
        }
        this.#openWhenAnswered();
        return;
      case "event": {
        if (!text(message.channel) || !text(message.id) || !POSITION.test(message.id)) {
          throw new Error("an event without a valid channel and id");
        }
        const last = this.#lastIds.get(message.channel);
        // The server replays exactly; this only guards against a repeated id.
        if (last !== undefined && notAfter(message.id, last)) return;
        if (!this.#channels.has(message.channel)) return;
        this.#lastIds.set(message.channel, message.id);
        this.#call("onEvent", {
          channel: message.channel,
          id: message.id,
          type: message.event ?? "message",
          format: message.format,
          data: message.data,
        });
        return;
      }
      case "gap":
        if (!text(message.channel) || !text(message.head) || !POSITION.test(message.head)) {
          throw new Error("a gap without a valid channel and head");
        }
        if (!this.#channels.has(message.channel)) return;
        // Events continue after the head: resume from there next time.
        this.#lastIds.set(message.channel, message.head);
        this.#call("onGap", { channel: message.channel, reason: String(message.reason), head: message.head });
        return;
      case "error": {
        // A subscribe the server refused (a bad topic, the hook's 403) is answered by this
        // instead of `subscribed`: the connection is up all the same.
        const error = new Error(`${message.code}: ${message.message}`);
        error.code = message.code;
        this.#answers.shift()?.(error);
        this.#report(error);
        this.#openWhenAnswered();
        return;
      }
      default:
        return;
    }
  }

  /** Open once the greeting came and every subscribe sent since was answered. */
  #openWhenAnswered() {
    if (!this.#greeted || this.#answers.length > 0 || this.#state === State.OPEN) return;
    this.#openedAt = Date.now();
    this.#setState(State.OPEN);
    for (const settle of this.#whenOpen.splice(0)) settle(null);
  }

  /** Sends a subscribe for `channels`; `settle(error | null)` is called with its answer. */
  #sendSubscribe(channels, settle) {
    const request = { type: "subscribe", topics: channels };
    const ids = Object.create(null); // a channel named `__proto__` is a key like any other
    for (const channel of channels) {
      const id = this.#lastIds.get(channel);
      if (id !== undefined) ids[channel] = id;
    }
    if (Object.keys(ids).length > 0) request.last_event_ids = ids;
    if (this.#options.backlog !== undefined) request.backlog = this.#options.backlog;
    if (!this.#send(request)) return false;
    this.#answers.push(settle);
    return true;
  }

  #send(message) {
    if (this.#socket?.readyState !== 1) return false;
    this.#socket.send(JSON.stringify(message));
    return true;
  }

  #setState(state) {
    if (state === this.#state) return;
    this.#state = state;
    this.#call("onState", state);
  }
}
