/**
 * The chat's web transport: `Deno.serve` with three routes and nothing else.
 *
 * - `GET /` the page (and `/app.js`, `/app.css`, `/favicon.svg`, served from `web/`): no
 *   build step, no CDN, works offline;
 * - `GET /ws` a WebSocket that joins the room (see `chat_ws.ts`);
 * - `GET /healthz` one line of status.
 *
 * Every answer carries a strict Content-Security-Policy (scripts and styles only from this
 * server, no inline code, no frames) and `X-Content-Type-Options: nosniff`. A WebSocket is
 * accepted only from a page of this server (its `Origin` names the host the request was sent
 * to) or from an origin given with `--web-origin`; a client that sends no `Origin` is not a
 * browser and cannot be used by another site, so it is let in.
 *
 * @module
 */
import type { ChatRoom } from "./chat_room.ts";
import { addressKey, type AddressLimit, tooManyText } from "./address_limit.ts";
import { FatalError } from "./cli.ts";
import type { Logger } from "./log.ts";
import { errorText, formatAddress, normalizeHost } from "./net.ts";
import type { ServerTls } from "./tls.ts";
import { settleWithin } from "./time.ts";
import { CLOSE, joinWebSocket } from "./chat_ws.ts";

/** Settings of {@linkcode serveChatWeb}. */
export interface ChatWebOptions {
  /** Address to listen on (the chat's `--host`). */
  host: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Longest line, in bytes. */
  maxLine: number;
  /** Bytes a browser may leave unread before it is dropped. */
  maxQueue: number;
  /** Serve https and wss with this certificate and key. */
  tls?: ServerTls | null;
  /** Other origins whose pages may open the WebSocket (`https://example.org`). */
  origins?: readonly string[];
  /** Connection log. */
  logger: Logger;
  /** Connections per address, shared with the TCP transport. */
  addressLimit: AddressLimit;
}

/** The running web transport. */
export interface ChatWebTransport {
  /** The address bound. */
  readonly addr: Deno.NetAddr;
  /** `http` or `https`. */
  readonly scheme: "http" | "https";
  /** WebSockets open now. */
  readonly connections: number;
  /** Stops taking requests and new WebSockets. */
  stopAccepting(): Promise<void>;
  /** Waits up to `ms` for every WebSocket to close, then closes the rest. */
  closeAll(ms: number): Promise<void>;
}

/** A file of the page, read once at start. */
interface Asset {
  body: Uint8Array<ArrayBuffer>;
  type: string;
}

const ASSETS: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/app.css": { file: "app.css", type: "text/css; charset=utf-8" },
  "/favicon.svg": { file: "favicon.svg", type: "image/svg+xml" },
};

/** The page's policy: nothing inline, nothing from elsewhere, WebSocket to this server only. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
};

/** Reads the page's files from `web/` beside `lib/`, or throws a {@linkcode FatalError}. */
function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [path, { file, type }] of Object.entries(ASSETS)) {
    const url = new URL(`../web/${file}`, import.meta.url);
    try {
      assets.set(path, { body: Deno.readFileSync(url), type });
    } catch (error) {
      throw new FatalError(`cannot read the web page's ${file} (${errorText(error)})`);
    }
  }
  return assets;
}

/** Whether a WebSocket request's `Origin` may open a member. */
export function originAllowed(
  origin: string | null,
  host: string | null,
  allowed: readonly string[],
): boolean {
  if (origin === null) return true; // not a browser: no other site can be behind it
  if (allowed.includes(origin)) return true;
  try {
    return host !== null && new URL(origin).host === host;
  } catch {
    return false;
  }
}

function text(status: number, body: string, extra: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: {
      ...SECURITY_HEADERS,
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
      ...extra,
    },
  });
}

/** Serves the page, the WebSocket and the status line, joining each WebSocket to `room`. */
export function serveChatWeb(room: ChatRoom, options: ChatWebOptions): ChatWebTransport {
  const log = options.logger;
  const assets = loadAssets();
  const origins = options.origins ?? [];
  const open = new Map<WebSocket, Promise<void>>();
  let accepting = true;

  function upgrade(request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return text(426, "this is the chat's WebSocket: connect with a WebSocket client\n", {
        upgrade: "websocket",
      });
    }
    // Read before the upgrade: the request's connection info is gone after it.
    const peer = formatAddress(info.remoteAddr);
    const address = addressKey(info.remoteAddr);
    const origin = request.headers.get("origin");
    if (!originAllowed(origin, request.headers.get("host"), origins)) {
      log.warn(`Refused a WebSocket from ${peer}: origin ${origin} is not allowed (--web-origin)`);
      return text(403, "this origin may not open the chat (see --web-origin)\n");
    }
    if (!accepting) return text(503, "the server is shutting down\n");
    const { socket, response } = Deno.upgradeWebSocket(request);
    if (!options.addressLimit.tryAdd(address)) {
      socket.onopen = () => {
        const max = options.addressLimit.max;
        socket.send(JSON.stringify({ type: "error", code: "busy", text: tooManyText(max) }));
        socket.close(CLOSE.policy, "busy");
      };
      return response;
    }
    const member = joinWebSocket(room, socket, {
      maxLine: options.maxLine,
      maxQueue: options.maxQueue,
      peer,
      address,
      logger: log,
    }).finally(() => {
      open.delete(socket);
      options.addressLimit.release(address);
    });
    open.set(socket, member);
    return response;
  }

  function handle(request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response {
    const url = new URL(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return text(405, "only GET is served here\n", { allow: "GET, HEAD" });
    }
    if (url.pathname === "/ws") return upgrade(request, info);
    if (url.pathname === "/healthz") {
      return text(200, `ok: ${room.size} in the room, ${open.size} on the web\n`);
    }
    const asset = assets.get(url.pathname);
    if (!asset) return text(404, "not found\n");
    return new Response(request.method === "HEAD" ? null : asset.body, {
      headers: {
        ...SECURITY_HEADERS,
        "content-type": asset.type,
        "cache-control": "no-cache",
      },
    });
  }

  const hostname = normalizeHost(options.host);
  let server: Deno.HttpServer<Deno.NetAddr>;
  const listening = { hostname, port: options.port };
  try {
    server = Deno.serve({
      ...listening,
      ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
      onListen() {},
      onError(error) {
        log.warn(`web request failed: ${errorText(error)}`);
        return text(500, "internal error\n");
      },
    }, handle);
  } catch (error) {
    const where = formatAddress({ transport: "tcp", ...listening });
    if (error instanceof Deno.errors.AddrInUse) {
      throw new FatalError(
        `${where} is already in use: stop the program using it, or pick another port with --web-port`,
      );
    }
    throw new FatalError(`cannot serve the web page on ${where}: ${errorText(error)}`);
  }

  return {
    addr: server.addr,
    scheme: options.tls ? "https" : "http",
    get connections() {
      return open.size;
    },
    stopAccepting() {
      accepting = false;
      return Promise.resolve();
    },
    async closeAll(ms: number) {
      await settleWithin(Promise.all(open.values()), ms);
      for (const socket of open.keys()) socket.close(CLOSE.goingAway);
      // Ends the HTTP server and with it any WebSocket whose peer never answered the close.
      await server.shutdown();
    },
  };
}
