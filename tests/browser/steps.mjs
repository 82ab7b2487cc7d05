// What the browser scripts share: the step protocol tests/browser.rs
// reads (`ok NAME` per step, `FAIL …` and exit 1 on the first failure),
// and Debian's Chromium, headless.
import { chromium } from "playwright-core";

export const STEP = 10_000;

export function fail(why) {
  console.log(`FAIL ${why}`);
  process.exit(1);
}

export async function step(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    fail(`${name}: ${e.message.split("\n")[0]}`);
  }
}

export function launch() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}
