// Types of realtime.js.

/** The connection's state. */
export type ClientState = "connecting" | "open" | "reconnecting" | "closed";

export declare const State: Readonly<{
  CONNECTING: "connecting";
  OPEN: "open";
  RECONNECTING: "reconnecting";
  CLOSED: "closed";
}>;

/** An event as the application receives it. */
export type RealtimeEvent =
  | { channel: string; id: string; type: string; format: "text"; data: string }
  | { channel: string; id: string; type: string; format: "json"; data: unknown }
  | { channel: string; id: string; type: string; format: "binary"; data: Uint8Array };

/**
 * The server could not replay a channel exactly (`reason`: `unknown_position`,
 * `epoch_changed`, `trimmed`, `limit`, `lagged`…): refetch the channel's state as of `head`;
 * events continue after it.
 */
export interface Gap {
  channel: string;
  reason: string;
  head: string;
}

export interface RealtimeClientOptions {
  /** Channels to subscribe to from the start. */
  channels?: string[];
  /** Where to resume each channel from (e.g. ids kept in storage); these are subscribed too. */
  lastEventIds?: Record<string, string>;
  /** The newest events to send first for a channel with no last id (at most the server's replay limit). */
  backlog?: number;
  onEvent?: (event: RealtimeEvent) => void;
  onGap?: (gap: Gap) => void;
  onState?: (state: ClientState) => void;
  /**
   * A refused subscribe (`error.code`: e.g. `invalid_topic`, `forbidden`; refused on a
   * reconnect, the client reconnects with back-off), a failed connection (`connect_failed`), an
   * unreadable message, an exception of a callback.
   */
  onError?: (error: Error & { code?: string }) => void;
  onClose?: (close: { code: number; reason: string }) => void;
  /**
   * Whether to reconnect after the server closed the connection (default: always). Codes:
   * 1000 disconnected by the server, 1001 server shutting down, 1013 slow consumer.
   */
  reconnect?: (close: { code: number; reason: string }) => boolean;
  /**
   * First reconnection delay bound, ms (default 500); doubles per failed attempt up to
   * `maxDelayMs`. Each delay is picked at random between half the bound and the bound.
   */
  initialDelayMs?: number;
  /** Largest reconnection delay bound, ms (default 30 000). */
  maxDelayMs?: number;
  /** A connection up this long starts the back-off over (default 10 000 ms). */
  stableMs?: number;
  /**
   * A `ping` message every this many ms; a connection that hears nothing for twice as long is
   * replaced (default 30 000; 0 turns it off).
   */
  pingIntervalMs?: number;
  /** A WebSocket constructor (Node before 22: the `ws` package's). Default: globalThis.WebSocket. */
  WebSocket?: new (url: string) => WebSocket;
}

/** A WebSocket client that keeps its channels and resumes them exactly after every cut. */
export declare class RealtimeClient {
  /** `url`, or a function giving it, called on every connect (a fresh token in the query). */
  constructor(url: string | (() => string), options?: RealtimeClientOptions);
  readonly state: ClientState;
  /** The id the server gave the connection, once greeted. */
  readonly clientId: string | null;
  readonly channels: string[];
  lastEventId(channel: string): string | undefined;
  /** Resolves once the server joined them (now or after a reconnect); rejects with its refusal. */
  subscribe(channels: string[]): Promise<void>;
  unsubscribe(channels: string[]): void;
  close(): void;
}

/** A server message; an event's `format` is always set and `data` decoded accordingly. */
export declare function parseMessage(data: string | ArrayBuffer | Uint8Array): { type: string; [field: string]: unknown };

/** Standard base64 (SSE's binary data) to bytes. */
export declare function decodeBase64(text: string): Uint8Array;

/** Calls `onGap` for each `realtime-gap` event of an EventSource; returns a function that stops. */
export declare function onSseGap(source: EventSource, onGap: (gap: Gap) => void): () => void;
