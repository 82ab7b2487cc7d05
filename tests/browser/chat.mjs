// The chat page in headless Chromium, against a running `sockit chat serve
// --web`. Driven by tests/browser.rs, which starts (and restarts) the
// server:
//   node chat.mjs WEB_HOST:PORT CHAT_PORT SCREENSHOT_DIR
// Every step prints `ok NAME`; the first failure prints `FAIL …` and exits
// 1. For the restart step it prints `restart` and waits for a line on
// stdin saying the server is back.
import { STEP, launch, step } from "./steps.mjs";
import net from "node:net";
import readline from "node:readline";

const [web, chatPort, shots] = process.argv.slice(2);
const url = `http://${web}/`;
const stdin = readline.createInterface({ input: process.stdin });
// Lines from the driver, kept until asked for: one may come before the
// script waits for it.
const inputs = [];
let inputWaiter = null;
stdin.on("line", (line) => (inputWaiter ? (inputWaiter(line), (inputWaiter = null)) : inputs.push(line)));
const nextInput = () =>
  inputs.length ? Promise.resolve(inputs.shift()) : new Promise((resolve) => (inputWaiter = resolve));

// A line-protocol client, as nc would be.
class Nc {
  constructor() {
    this.buf = "";
    this.waiters = [];
    this.sock = net.connect(Number(chatPort), "127.0.0.1");
    this.sock.setEncoding("utf8");
    this.sock.on("data", (d) => {
      this.buf += d;
      this.check();
    });
  }
  check() {
    this.waiters = this.waiters.filter(({ needle, resolve }) => {
      const at = this.buf.indexOf(needle);
      if (at < 0) return true;
      const end = this.buf.indexOf("\n", at);
      resolve(this.buf.slice(this.buf.lastIndexOf("\n", at) + 1, end < 0 ? undefined : end));
      this.buf = end < 0 ? "" : this.buf.slice(end + 1);
      return false;
    });
  }
  expect(needle) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nc never saw ${needle}`)), STEP);
      this.waiters.push({ needle, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      this.check();
    });
  }
  send(line) {
    this.sock.write(line + "\n");
  }
  close() {
    this.sock.end();
  }
}

async function say(page, text) {
  await page.fill("#line", text);
  await page.press("#line", "Enter");
}

// Waits until the page's log shows `text`.
async function sees(page, text) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll("#log li")].some((li) => li.textContent.includes(t)),
    text,
    { timeout: STEP },
  );
}

const count = (page, text) =>
  page.evaluate(
    (t) => [...document.querySelectorAll("#log li")].filter((li) => li.textContent.includes(t)).length,
    text,
  );

async function connected(page) {
  await page.waitForSelector("#status.online", { timeout: 3 * STEP });
}

const browser = await launch();
try {
  const a = await (await browser.newContext({ viewport: { width: 1100, height: 700 } })).newPage();
  const b = await (await browser.newContext({ viewport: { width: 390, height: 760 } })).newPage();
  const dialogs = [];
  for (const p of [a, b]) p.on("dialog", (d) => (dialogs.push(d.message()), d.dismiss()));
  const nc = new Nc();
  await nc.expect("welcome");
  nc.send("/nick ncuser");
  await nc.expect("now known as ncuser");

  await step("pages connect", async () => {
    await a.goto(url);
    await b.goto(url);
    await connected(a);
    await connected(b);
  });

  await step("nick typed into the page", async () => {
    await say(a, "/nick alice");
    await a.waitForFunction(() => document.querySelector("#me").textContent === "alice", null, { timeout: STEP });
    await say(b, "/nick bob");
    await b.waitForFunction(() => document.querySelector("#me").textContent === "bob", null, { timeout: STEP });
    await nc.expect("bob");
  });

  await step("two pages and nc talk in every direction", async () => {
    await say(a, "hello from alice");
    await sees(b, "hello from alice");
    // What you say shows in your own log too, once.
    await sees(a, "hello from alice");
    await nc.expect("<alice> hello from alice");
    await say(b, "hello from bob");
    await sees(a, "hello from bob");
    await nc.expect("<bob> hello from bob");
    nc.send("hello from nc");
    await sees(a, "hello from nc");
    await sees(b, "hello from nc");
    await say(a, "/msg ncuser just for you");
    await nc.expect("-alice- just for you");
    nc.send("/msg bob a secret");
    await sees(b, "a secret");
  });

  await step("who is here and rooms, live", async () => {
    await a.waitForFunction(
      () => ["alice", "bob", "ncuser"].every((n) => document.querySelector("#who").textContent.includes(n)),
      null,
      { timeout: STEP },
    );
    await say(b, "/join dev");
    await b.waitForFunction(() => document.querySelector("#room-name").textContent === "#dev", null, { timeout: STEP });
    await say(b, "first in dev");
    await say(b, "second in dev");
    // The room list refreshes within its five-second poll.
    await a.waitForFunction(
      () => document.querySelector('button[data-room="dev"] .unread')?.textContent === "2",
      null,
      { timeout: 2 * STEP },
    );
    await a.waitForFunction(() => !document.querySelector("#who").textContent.includes("bob"), null, { timeout: 2 * STEP });
    // Joining by keyboard alone: Alt+Up moves to the room above.
    await a.focus("#line");
    await a.keyboard.press("Alt+ArrowUp");
    await a.waitForFunction(() => document.querySelector("#room-name").textContent === "#dev", null, { timeout: STEP });
    await sees(a, "second in dev");
    await say(a, "/join lobby");
    await a.waitForFunction(() => document.querySelector("#room-name").textContent === "#lobby", null, { timeout: STEP });
  });

  await step("html in a message is shown as text", async () => {
    const evil = '<img src=x onerror=alert(1)><b>bold</b><script>alert(2)</script>';
    nc.send(evil);
    await sees(a, "<b>bold</b>");
    const tags = await a.evaluate(() => document.querySelectorAll("#log img, #log b, #log script").length);
    if (tags !== 0 || dialogs.length) throw new Error(`markup ran: ${tags} elements, ${dialogs}`);
  });

  await step("a 10,000-character message is refused with the server's error", async () => {
    await say(a, "z".repeat(10_000));
    await sees(a, "line too long (max 4096 bytes), not sent");
  });

  await step("reload resumes without duplicates or gaps", async () => {
    nc.send("before reload");
    await sees(a, "before reload");
    const reloading = a.reload();
    nc.send("during reload");
    await reloading;
    await connected(a);
    await sees(a, "during reload");
    nc.send("after reload");
    await sees(a, "after reload");
    await a.waitForFunction(
      () => ["alice", "ncuser"].every((n) => document.querySelector("#who").textContent.includes(n)),
      null,
      { timeout: STEP },
    );
    for (const t of ["hello from alice", "hello from nc", "before reload", "during reload", "after reload"]) {
      const n = await count(a, t);
      if (n !== 1) throw new Error(`"${t}" shown ${n} times`);
    }
  });

  await step("screenshot of the chat", async () => {
    await a.screenshot({ path: `${shots}/chat.png` });
    await b.screenshot({ path: `${shots}/chat-phone.png` });
  });

  await step("the page reconnects by itself after a server restart", async () => {
    nc.close();
    console.log("restart");
    await a.waitForSelector("#status.offline", { timeout: STEP });
    const back = await nextInput();
    if (back !== "restarted") throw new Error(`driver said ${back}`);
    await connected(a);
    await connected(b);
    // A new server run: history is gone, and the page says so.
    await a.waitForFunction(() => !!document.querySelector("#log .gap"), null, { timeout: STEP });
    const again = new Nc();
    await again.expect("welcome");
    await say(a, "alive after restart");
    await again.expect("<alice> alive after restart");
    again.close();
  });
} finally {
  await browser.close();
  stdin.close();
}
