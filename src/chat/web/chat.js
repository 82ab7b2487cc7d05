// The sockit chat page. It speaks the server's line protocol over a
// WebSocket (one line per text frame) with `/tags on`, so every line it
// gets starts with `@kind=…;…`. User text only ever goes into the page as
// text nodes, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const store = window.sessionStorage;
// Messages kept per room for a reload to show again.
const KEEP = 300;

const state = {
  me: "",
  // The nick this tab chose with /nick, asked for again on reconnect.
  wanted: store.getItem("sockit.nick") || "",
  room: store.getItem("sockit.room") || "lobby",
  // Per room: the id of the last message shown, `EPOCH-SEQ`.
  last: JSON.parse(store.getItem("sockit.last") || "{}"),
  // Per room: what /rooms said it had posted when last looked at.
  seen: JSON.parse(store.getItem("sockit.seen") || "{}"),
  kept: JSON.parse(store.getItem("sockit.kept") || "{}"),
  rooms: [],
  who: new Set(),
  ws: null,
  retry: 0,
  sent: [],
  recall: -1,
};

// Stringifying every kept line on every message would make a busy room
// cost the page more with each line: writes are gathered, at most one a
// second, and flushed when the page goes away.
let saving = 0;
function save() {
  if (!saving) saving = setTimeout(saveNow, 1000);
}

function saveNow() {
  clearTimeout(saving);
  saving = 0;
  store.setItem("sockit.nick", state.wanted);
  store.setItem("sockit.room", state.room);
  store.setItem("sockit.last", JSON.stringify(state.last));
  store.setItem("sockit.seen", JSON.stringify(state.seen));
  store.setItem("sockit.kept", JSON.stringify(state.kept));
}

// `@k=v;k=v body` into its tags and body; untagged lines have no tags.
function parse(line) {
  if (!line.startsWith("@")) return { tags: {}, body: line };
  const space = line.indexOf(" ");
  const head = space < 0 ? line.slice(1) : line.slice(1, space);
  const tags = {};
  for (const kv of head.split(";")) {
    const eq = kv.indexOf("=");
    if (eq > 0) tags[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { tags, body: space < 0 ? "" : line.slice(space + 1) };
}

function splitId(id) {
  const dash = (id || "").lastIndexOf("-");
  if (dash < 0) return null;
  return { epoch: id.slice(0, dash), seq: Number(id.slice(dash + 1)) };
}

// Whether message `id` in `room` was shown already (same server run, not
// newer than the last one shown).
function isOld(room, id) {
  const seen = splitId(state.last[room]);
  const got = splitId(id);
  return !!(seen && got && seen.epoch === got.epoch && got.seq <= seen.seq);
}

function hue(nick) {
  let h = 0;
  for (const c of nick) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return h % 360;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function clock(ms) {
  const d = ms ? new Date(Number(ms)) : new Date();
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function nickEl(nick) {
  const n = el("span", "nick", nick);
  n.style.color = `hsl(${hue(nick)} 65% var(--nick-light))`;
  return n;
}

function scrolled(fn) {
  const log = $("log");
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  fn(log);
  while (log.children.length > 2000) log.firstChild.remove();
  if (atEnd) log.scrollTop = log.scrollHeight;
}

function show(kind, tags, body) {
  scrolled((log) => {
    const li = el("li", kind);
    li.append(el("time", "", clock(tags.t)));
    if (kind === "msg" || kind === "me") {
      li.dataset.id = tags.id;
      if (kind === "me") li.append(el("span", "star", "* "));
      li.append(nickEl(tags.from), el("span", "text", (kind === "msg" ? ": " : " ") + body));
    } else if (kind === "pm") {
      const out = tags.from === state.me;
      li.append(
        el("span", "star", out ? "to " : "from "),
        nickEl(out ? tags.to : tags.from),
        el("span", "text", ": " + body.replace(/^\[[^\]]*\] (-[^ ]+- |-> [^:]+: )/, "")),
      );
    } else {
      li.append(el("span", "text", body));
    }
    log.append(li);
  });
}

function keep(room, line) {
  const list = (state.kept[room] = state.kept[room] || []);
  list.push(line);
  if (list.length > KEEP) list.splice(0, list.length - KEEP);
}

// A room message, kept for its room whichever room is on screen: a join's
// replay may arrive before the line saying the join happened.
function message(kind, tags, body, line) {
  if (!tags.room || isOld(tags.room, tags.id)) return;
  state.last[tags.room] = tags.id;
  keep(tags.room, line);
  if (tags.room === state.room) show(kind, tags, body);
  save();
}

function switchRoom(room) {
  if (room === state.room) return;
  state.room = room;
  state.who = new Set();
  $("log").replaceChildren();
  for (const line of state.kept[room] || []) {
    const { tags, body } = parse(line);
    show(tags.kind, tags, body);
  }
  $("room-name").textContent = "#" + room;
  document.title = `#${room} · sockit chat`;
  save();
  renderRooms();
  renderWho();
}

function handle(line) {
  const { tags, body } = parse(line);
  // Before `/tags on` took effect: the greeting and a lobby replay that
  // `/resume` sends again, with ids.
  if (!tags.kind) return;
  switch (tags.kind) {
    case "tags":
      setMe(tags.nick);
      break;
    case "msg":
    case "me":
      message(tags.kind, tags, body, line);
      break;
    case "pm":
      show("pm", tags, body);
      break;
    case "nick":
      if (tags.old === state.me) {
        setMe(tags.new);
        state.wanted = tags.new;
        save();
      }
      if (state.who.delete(tags.old)) state.who.add(tags.new);
      renderWho();
      show("event", tags, body);
      break;
    case "join":
      if (tags.nick === state.me) {
        switchRoom(tags.room);
        send("/who");
        send("/rooms");
      } else if (tags.room === state.room) {
        state.who.add(tags.nick);
        renderWho();
        show("event", tags, body);
      }
      break;
    case "leave":
      if (tags.room === state.room && tags.nick !== state.me) {
        state.who.delete(tags.nick);
        renderWho();
        show("event", tags, body);
      }
      break;
    case "who":
      if (tags.room === state.room) {
        state.who = new Set(tags.nicks ? tags.nicks.split(",") : []);
        renderWho();
      }
      break;
    case "rooms":
      state.rooms = (tags.rooms || "").split(",").filter(Boolean).map((r) => {
        const [name, people, posted] = r.split(":");
        return { name, people: Number(people), posted: Number(posted) };
      });
      renderRooms();
      break;
    case "gap":
      if (tags.room === state.room) {
        scrolled((log) => log.append(el("li", "gap", body.replace(/^\* /, ""))));
      }
      break;
    case "resumed":
    case "echo":
      break;
    case "error":
      show("error", tags, body);
      break;
    default:
      show("info", tags, body);
  }
}

function setMe(nick) {
  state.me = nick;
  $("me").textContent = nick;
}

function renderRooms() {
  const list = $("room-list");
  list.replaceChildren();
  const rooms = state.rooms.length ? state.rooms : [{ name: state.room, people: 0, posted: 0 }];
  for (const r of rooms) {
    // A room never looked at has all its posts unread; one whose count
    // went down was emptied and made again by the server.
    if (r.name === state.room) state.seen[r.name] = r.posted;
    else if (!(state.seen[r.name] <= r.posted)) state.seen[r.name] = 0;
    const unread = r.posted - state.seen[r.name];
    const b = el("button", r.name === state.room ? "room current" : "room");
    b.type = "button";
    b.dataset.room = r.name;
    b.append(el("span", "name", "#" + r.name), el("span", "people", String(r.people)));
    if (unread > 0) {
      b.append(el("span", "unread", String(unread)));
      b.setAttribute("aria-label", `#${r.name}, ${r.people} here, ${unread} unread`);
    }
    if (r.name === state.room) b.setAttribute("aria-current", "true");
    const li = el("li");
    li.append(b);
    list.append(li);
  }
  save();
}

function renderWho() {
  const list = $("who");
  list.replaceChildren();
  const nicks = [...state.who].sort();
  for (const n of nicks) {
    const li = el("li");
    li.append(nickEl(n));
    if (n === state.me) li.append(el("span", "you", " (you)"));
    list.append(li);
  }
  $("who-count").textContent = nicks.length ? `(${nicks.length})` : "";
}

function status(cls, text) {
  const s = $("status");
  s.className = cls;
  s.textContent = text;
}

function send(line) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(line);
    return true;
  }
  return false;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + "/ws");
  state.ws = ws;
  status("connecting", "connecting…");
  ws.onopen = () => {
    state.retry = 0;
    status("online", "connected");
    send("/tags on");
    // The page shows what its user said when the server sends it back, with
    // its id, so a resume after a reload does not show it twice.
    send("/echo on");
    if (state.wanted) send("/nick " + state.wanted);
    const last = state.last[state.room];
    send(last ? `/resume ${state.room} ${last}` : `/resume ${state.room}`);
    send("/rooms");
    send("/who");
  };
  ws.onmessage = (e) => {
    for (const line of String(e.data).split("\n")) if (line) handle(line);
  };
  ws.onclose = (e) => {
    if (state.ws !== ws) return;
    state.ws = null;
    // Back off 0.5 s, 1 s, 2 s … up to 15 s, with jitter so a restarted
    // server is not met by every page at once.
    const delay = Math.min(15000, 500 * 2 ** state.retry) * (0.5 + Math.random() / 2);
    state.retry = Math.min(state.retry + 1, 10);
    const why = e.reason ? ` (${e.reason})` : "";
    status("offline", `offline${why}, retrying in ${Math.ceil(delay / 1000)} s`);
    setTimeout(connect, delay);
  };
}

function submit(ev) {
  ev.preventDefault();
  const input = $("line");
  const text = input.value;
  if (!text.trim()) return;
  if (!send(text)) {
    show("error", {}, "! not connected: the line was not sent");
    return;
  }
  const nick = text.match(/^\/nick\s+(\S+)/i);
  if (nick) state.wanted = nick[1];
  state.sent.push(text);
  state.recall = -1;
  input.value = "";
}

function keys(ev) {
  const input = $("line");
  if (ev.key === "Escape") {
    input.focus();
    return;
  }
  if (ev.altKey && (ev.key === "ArrowUp" || ev.key === "ArrowDown")) {
    const names = state.rooms.map((r) => r.name);
    const at = names.indexOf(state.room);
    const next = names[(at + (ev.key === "ArrowUp" ? -1 : 1) + names.length) % names.length];
    if (next && next !== state.room) send("/join " + next);
    ev.preventDefault();
    return;
  }
  if (document.activeElement === input && ev.key === "ArrowUp" && state.sent.length) {
    state.recall = state.recall < 0 ? state.sent.length - 1 : Math.max(0, state.recall - 1);
    input.value = state.sent[state.recall];
    ev.preventDefault();
  }
}

window.addEventListener("pagehide", saveNow);

document.addEventListener("DOMContentLoaded", () => {
  $("send").addEventListener("submit", submit);
  document.addEventListener("keydown", keys);
  $("room-list").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-room]");
    if (b && b.dataset.room !== state.room) send("/join " + b.dataset.room);
  });
  for (const line of state.kept[state.room] || []) {
    const { tags, body } = parse(line);
    show(tags.kind, tags, body);
  }
  $("room-name").textContent = "#" + state.room;
  renderRooms();
  connect();
  // The room list and who is here, kept fresh while the page is looked at.
  setInterval(() => {
    if (document.visibilityState === "visible") {
      send("/rooms");
      send("/who");
    }
  }, 5000);
});
