/**
 * The chat's browser client: one WebSocket to `/ws`, speaking the typed frames of
 * `lib/chat_frames.ts` (one JSON object per message, both ways).
 *
 * The top of this module is pure (no DOM, no sockets) so Deno can import it for tests:
 * {@linkcode nameColor}, {@linkcode describe}, {@linkcode ownEcho}, {@linkcode isLeaving},
 * {@linkcode InputHistory} and {@linkcode Backoff}. Only {@linkcode main} touches `document`
 * and `WebSocket`, and it runs only in a browser.
 *
 * Text from the server is only ever inserted with `textContent` / text nodes, never as HTML,
 * and nothing is inline (the page's Content-Security-Policy forbids it).
 *
 * @module
 */

/** The protocol version this page speaks (`PROTOCOL_VERSION` in lib/chat_frames.ts). */
export const PROTOCOL_VERSION = 1;

/** The operator's name on the wire (lib/chat_protocol.ts). */
export const SERVER_NAME = "Server";

/** Colours for names, as lib/chat_display.ts; red is kept for `Server`. */
export const PALETTE = [
  "cyan",
  "green",
  "yellow",
  "blue",
  "magenta",
  "cyanBright",
  "greenBright",
  "yellowBright",
  "blueBright",
  "magentaBright",
];

/**
 * The palette colour of a name, exactly as the terminal client picks it (FNV-1a over the
 * lowercased name's code points).
 * @param {string} name
 * @returns {string}
 */
export function nameColor(name) {
  let hash = 0x811c9dc5;
  for (const char of name.toLowerCase()) {
    hash ^= char.codePointAt(0) ?? 0;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return PALETTE[hash % PALETTE.length];
}

/**
 * The CSS class that colours a name: `c-server` for the operator, else `c-` + its colour.
 * @param {string} name
 * @returns {string}
 */
export function nameClass(name) {
  return name === SERVER_NAME ? "c-server" : `c-${nameColor(name)}`;
}

/** What the others see when someone leaves, by reason (as lib/chat_frames.ts). */
const LEFT = {
  bye: "left",
  disconnected: "disconnected",
  slow: "was disconnected (not reading fast enough)",
  kicked: `was removed by ${SERVER_NAME}`,
  idle: "was disconnected for being idle",
  shutdown: "left",
  denied: "left",
};

/** A run of text; `cls` (CSS classes) styles it. @typedef {{ text: string, cls?: string }} Part */

/**
 * What to show for one event: `type` is the event's, `kind` how it looks (`message`, `server`,
 * `action`, `private`, `notice` or `error`), `own` for your own lines, `history` for replays.
 * @typedef {{ type: string, kind: string, own: boolean, history: boolean, parts: Part[] }} Line
 */

/** A name, coloured (or bold, when it is yours). */
function name(who, me) {
  who = String(who);
  return { text: who, cls: who === me ? "name me" : `name ${nameClass(who)}` };
}

/** Names separated by ", ", yours marked "(you)". */
function nameList(names, me) {
  return names.flatMap((n, i) => [i > 0 ? ", " : "", name(n, me), n === me ? " (you)" : ""]);
}

/** `* ` before each line of a notice. */
function starred(text) {
  return String(text).split("\n").map((line) => `* ${line}`).join("\n");
}

/**
 * Turns an event from the server into what to show, with `me` your name now (or `null`).
 * @param {Record<string, any>} event
 * @param {string | null} me
 * @returns {Line}
 */
export function describe(event, me) {
  // Plain strings in `items` are text; empty ones are dropped.
  const line = (kind, items, own = false) => ({
    type: event.type,
    kind,
    own,
    history: false,
    parts: items.filter((x) => x !== "").map((x) => typeof x === "string" ? { text: x } : x),
  });
  const tag = (text) => ({ text, cls: "tag" });
  const text = String(event.text ?? "");
  const from = name(event.from, me);
  switch (event.type) {
    case "message":
      if (event.from === SERVER_NAME) return line("server", [from, ": ", text]);
      return line("message", [from, ": ", text], event.from === me);
    case "action":
      return line("action", ["* ", from, " ", text], event.from === me);
    case "private":
      return event.sent
        ? line(
          "private",
          ["* ", tag("(private to "), name(event.to, me), tag(")"), " ", text],
          true,
        )
        : line("private", [from, " ", tag("(private)"), ": ", text]);
    case "welcome": {
      const others = Array.isArray(event.others) ? event.others : [];
      const count = Number(event.count) || 0;
      const more = count > others.length
        ? ` and ${count - others.length} more (/who lists everyone)`
        : "";
      return line("notice", [
        "* Welcome to the chat, ",
        name(event.name, me),
        "! Type a message and press Enter to talk to everyone. /help lists the commands; " +
        "type bye to leave.\n",
        ...(count > 0
          ? [`* ${count} other${count === 1 ? "" : "s"} here: `, ...nameList(others, me), more]
          : ["* You are the only one here."]),
      ]);
    }
    case "history": {
      const inner = describe(event.event ?? {}, me);
      const stamp = { text: `[${event.stamp}]`, cls: "stamp" };
      return {
        ...inner,
        type: "history",
        history: true,
        parts: [stamp, { text: " " }, ...inner.parts],
      };
    }
    case "join":
      return line("notice", ["* ", name(event.name, me), " joined"]);
    case "leave":
      return line("notice", ["* ", name(event.name, me), ` ${LEFT[event.reason] ?? "left"}`]);
    case "rename":
      return event.you
        ? line("notice", ["* you are now known as ", name(event.to, me)])
        : line("notice", ["* ", name(event.from, me), " is now known as ", name(event.to, me)]);
    case "who": {
      const names = Array.isArray(event.names) ? event.names : [];
      return line("notice", [`* ${names.length} here: `, ...nameList(names, event.you ?? me)]);
    }
    case "error":
      return line("error", [starred(text)]);
    default: { // notice, auth, and any type newer than this page
      const notice = starred(event.text ?? `(${event.type})`);
      // Several lines (the /help table) are laid out in columns: monospace keeps them aligned.
      return line("notice", [notice.includes("\n") ? { text: notice, cls: "pre" } : notice]);
    }
  }
}

/**
 * Whether a typed line leaves the room, as the server decides: `bye` alone (any case) or
 * `/quit` (with or without a reason).
 * @param {string} text
 */
export function isLeaving(text) {
  const word = text.trim().toLowerCase();
  return word === "bye" || word === "/quit" || word.startsWith("/quit ");
}

/**
 * The event to show locally for a line you typed, since the server does not echo your own
 * messages: a message, a `/me` action, or `null` (commands, blank lines, leaving).
 * @param {string} typed
 * @param {string} me
 */
export function ownEcho(typed, me) {
  const text = typed.trimEnd();
  if (text.trim() === "" || isLeaving(text)) return null;
  if (text.startsWith("//")) return { type: "message", from: me, text: text.slice(1) };
  const action = text.match(/^\/me (.*)$/is);
  if (action) {
    return action[1].trim() === "" ? null : { type: "action", from: me, text: action[1].trim() };
  }
  if (text.startsWith("/")) return null;
  return { type: "message", from: me, text };
}

/** Up/Down recall of the lines you sent, like a shell's history. */
export class InputHistory {
  #lines = [];
  #index = 0;
  #draft = "";
  #max;

  /** Keeps at most `max` lines. */
  constructor(max = 100) {
    this.#max = max;
  }

  /** Records a sent line (not blanks, not a repeat of the last one) and ends any recall. */
  push(line) {
    if (line.trim() !== "" && this.#lines.at(-1) !== line) this.#lines.push(line);
    if (this.#lines.length > this.#max) this.#lines.shift();
    this.reset();
  }

  /** Ends recall: the next `up` starts from the newest line. */
  reset() {
    this.#index = this.#lines.length;
    this.#draft = "";
  }

  /** The older line to show, or `null` at the oldest; `current` is kept as the draft. */
  up(current) {
    if (this.#index === 0) return null;
    if (this.#index === this.#lines.length) this.#draft = current;
    return this.#lines[--this.#index];
  }

  /** The newer line to show (the draft after the newest), or `null` when not recalling. */
  down() {
    if (this.#index >= this.#lines.length) return null;
    this.#index++;
    return this.#index === this.#lines.length ? this.#draft : this.#lines[this.#index];
  }
}

/** Reconnection delays: `min` ms doubling up to `max`, each up to `jitter` shorter at random. */
export class Backoff {
  #attempts = 0;
  #min;
  #max;
  #jitter;
  #random;

  /** `random` is a seam for tests (a function returning [0, 1)). */
  constructor({ min = 500, max = 10_000, jitter = 0.2, random = Math.random } = {}) {
    [this.#min, this.#max, this.#jitter, this.#random] = [min, max, jitter, random];
  }

  /** The delay before the next attempt, in ms. */
  next() {
    const base = Math.min(this.#max, this.#min * 2 ** this.#attempts++);
    return Math.round(base * (1 - this.#jitter * this.#random()));
  }

  /** Starts again from `min` (after a successful connection). */
  reset() {
    this.#attempts = 0;
  }
}

/**
 * Close reasons the server gives when coming straight back would be wrong: you left, were
 * kicked or dropped for idling, or your address is refused (lib/chat_room.ts says which).
 */
const FINAL_REASONS = /^(bye|kicked|idle|denied|locked)$/;
/** Lines kept in the log; older ones are dropped. */
const MAX_LINES = 2000;

/** Runs the page. */
export function main() {
  const $ = (id) => document.getElementById(id);
  const ids = "log who who-count banner status reconnect composer message auth auth-text password";
  const [
    log,
    who,
    whoCount,
    banner,
    status,
    reconnect,
    composer,
    input,
    authForm,
    authText,
    password,
  ] = ids.split(" ").map($);
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  const recall = new InputHistory();
  const backoff = new Backoff();

  let socket = null; // the WebSocket, while open or opening
  let timer; // the pending reconnection
  let me = null; // your name in the room, once welcomed
  let chosen = null; // a name you took with /nick, taken again after reconnecting
  let names = []; // who is here, in order of arrival
  let unlisted = 0; // others counted by the welcome but not named
  let quietWho = 0; // `who` replies we asked for ourselves: update the list, print nothing
  let secret = null; // the password accepted before (in memory only)
  let tried = null; // the password sent on this connection
  let ending = null; // why the server is about to close, when we must not reconnect
  let everWelcomed = false;

  // The log follows new lines while it is scrolled to the end, also when it is resized (the
  // banner grows, a phone's keyboard opens); scrolled up to read, it stays put.
  let following = true;
  const follow = () => {
    if (following) log.scrollTop = log.scrollHeight;
  };
  log.addEventListener("scroll", () => {
    following = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
  });
  new ResizeObserver(follow).observe(log);

  /** Shows one line in the log. */
  function show({ type, kind, own, history, parts }) {
    const line = document.createElement("div");
    line.className = `line k-${kind}`;
    line.classList.toggle("own", own);
    line.classList.toggle("history", history);
    line.dataset.type = type;
    for (const part of parts) {
      if (!part.cls) line.append(document.createTextNode(part.text));
      else {
        const span = document.createElement("span");
        span.className = part.cls;
        span.textContent = part.text;
        line.append(span);
      }
    }
    log.append(line);
    while (log.childElementCount > MAX_LINES) log.firstElementChild.remove();
    follow();
  }

  /** A line of the page's own (connection state), not from the server. */
  const local = (text) =>
    show({ type: "local", kind: "local", own: false, history: false, parts: [{ text }] });

  let statusText = "";
  /** Sets the banner; unchanged text is not rewritten, so screen readers hear changes only. */
  function setStatus(state, text) {
    if (banner.dataset.state === state && status.textContent === text) return;
    banner.dataset.state = state;
    statusText = text;
    status.textContent = text;
    const offer = state === "stopped" || state === "waiting";
    if (!offer && document.activeElement === reconnect) input.focus();
    reconnect.hidden = !offer;
    reconnect.textContent = state === "waiting" ? "Reconnect now" : "Reconnect";
  }

  function renderWho() {
    who.replaceChildren(...names.map((n) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = n === me ? "name me" : `name ${nameClass(n)}`;
      button.textContent = n;
      button.dataset.name = n;
      if (n !== me) button.title = `Send ${n} a private message`;
      li.classList.toggle("me", n === me);
      li.append(button);
      return li;
    }));
    whoCount.textContent = me === null ? "" : `(${names.length + unlisted})`;
  }

  function send(frame) {
    if (socket?.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  function showAuth(text) {
    authText.textContent = text;
    authForm.hidden = false;
    password.value = "";
    password.focus();
  }

  function hideAuth() {
    if (authForm.hidden) return;
    const hadFocus = authForm.contains(document.activeElement);
    authForm.hidden = true;
    if (hadFocus) input.focus();
  }

  /** Applies one event to the page's state; returns `false` to keep it out of the log. */
  function apply(event) {
    switch (event.type) {
      case "welcome":
        me = event.name;
        names = [...(event.others ?? []), me];
        unlisted = Math.max(0, (Number(event.count) || 0) - (event.others?.length ?? 0));
        everWelcomed = true;
        backoff.reset();
        if (event.version !== PROTOCOL_VERSION) {
          local(
            `The server speaks protocol ${event.version}; this page knows ${PROTOCOL_VERSION}.`,
          );
        }
        if (unlisted > 0 && send({ type: "who" })) quietWho++;
        if (chosen && chosen !== me) send({ type: "say", text: `/nick ${chosen}` });
        break;
      case "join":
        if (!names.includes(event.name)) names.push(event.name);
        break;
      case "leave":
        names = names.filter((n) => n !== event.name);
        break;
      case "rename":
        names = names.map((n) => n === event.from ? event.to : n);
        if (event.you) {
          me = event.to;
          chosen = event.to;
        }
        break;
      case "who":
        names = [...(event.names ?? [])];
        me = event.you ?? me;
        unlisted = 0;
        if (quietWho > 0) {
          quietWho--;
          return false;
        }
        break;
      case "auth":
        if (event.state === "accepted") {
          secret = tried;
          hideAuth();
        } else if (event.state === "required" && secret !== null && tried === null) {
          tried = secret; // reconnecting: give the password that worked before
          send({ type: "auth", password: secret });
        } else if (event.state === "required" || event.state === "wrong") {
          if (event.state === "wrong" && tried === secret) secret = null;
          // The server's text speaks of /auth for TCP users; the form needs plainer words.
          showAuth(
            event.state === "wrong" ? "Wrong password; try again." : "This room needs a password.",
          );
        } else { // denied, locked: the server closes
          ending = event.text;
          hideAuth();
        }
        break;
    }
    if (me !== null) setStatus("connected", `Connected as ${me}`);
    else if (!authForm.hidden) setStatus("auth", "Connected: the room needs a password");
    return true;
  }

  function connect() {
    clearTimeout(timer);
    if (socket) return;
    [me, quietWho, tried, ending] = [null, 0, null, null];
    setStatus("connecting", everWelcomed ? "Disconnected — reconnecting…" : "Connecting…");
    const ws = socket = new WebSocket(url);
    ws.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (typeof event?.type !== "string") return;
      if (apply(event)) show(describe(event, me));
      renderWho();
    };
    ws.onclose = (close) => {
      if (socket !== ws) return;
      socket = null;
      closed(close);
    };
  }

  function closed(close) {
    const wasIn = me !== null;
    me = null;
    names = []; // unknown until the next welcome
    unlisted = 0;
    hideAuth();
    renderWho();
    const final = ending ?? (FINAL_REASONS.test(close.reason) ? close.reason : null);
    if (final) {
      local("Disconnected.");
      setStatus("stopped", `Disconnected: ${final}`);
      return;
    }
    if (wasIn) local("Disconnected from the server.");
    const delay = backoff.next();
    setStatus(
      "waiting",
      `Disconnected — reconnecting in ${Math.max(1, Math.round(delay / 1000))} s…`,
    );
    timer = setTimeout(connect, delay);
  }

  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const line = input.value;
    if (line.trim() === "") return;
    if (!send({ type: "say", text: line })) {
      status.textContent = `${statusText} Not sent: your message is still in the box.`;
      return input.focus(); // the line stays in the input
    }
    if (!/^\/auth\b/i.test(line)) recall.push(line);
    else recall.reset();
    input.value = "";
    if (isLeaving(line)) ending = "You left the room.";
    const echo = me === null ? null : ownEcho(line, me);
    if (echo) show(describe(echo, me));
    input.focus();
  });

  input.addEventListener("keydown", (event) => {
    if (event.isComposing || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) {
      return;
    }
    const line = event.key === "ArrowUp"
      ? recall.up(input.value)
      : event.key === "ArrowDown"
      ? recall.down()
      : null;
    if (line === null) return;
    event.preventDefault();
    input.value = line;
    input.setSelectionRange(line.length, line.length);
  });

  authForm.addEventListener("submit", (event) => {
    event.preventDefault();
    tried = password.value;
    password.value = "";
    if (send({ type: "auth", password: tried })) authText.textContent = "Checking the password…";
  });

  // A name in the list starts a private message to that person.
  who.addEventListener("click", (event) => {
    const target = event.target.closest("button[data-name]");
    if (!target || target.dataset.name === me) return;
    input.value = `/msg ${target.dataset.name} `;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  });

  reconnect.addEventListener("click", () => {
    backoff.reset();
    connect();
    input.focus();
  });

  // Back online: try at once rather than waiting out the backoff.
  globalThis.addEventListener("online", () => {
    if (!socket && banner.dataset.state === "waiting") connect();
  });

  connect();
  input.focus();
}

if (globalThis.document) main();
