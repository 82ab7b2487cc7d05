// The file listing of `sockit http serve DIR --upload` in headless
// Chromium. Driven by tests/browser.rs:
//   node listing.mjs BASE_URL FILE_TO_UPLOAD SCREENSHOT_DIR
// Every step prints `ok NAME`; the first failure prints `FAIL …`.
import { STEP, launch, step } from "./steps.mjs";

const [base, upload, shots] = process.argv.slice(2);

const browser = await launch();
try {
  const desk = await (await browser.newContext({ viewport: { width: 1000, height: 640 } })).newPage();
  const phone = await (
    await browser.newContext({ viewport: { width: 390, height: 760 }, colorScheme: "dark" })
  ).newPage();

  await step("directories come first", async () => {
    await desk.goto(base + "/");
    const rows = await desk.$$eval("tbody tr", (trs) => trs.map((tr) => tr.className));
    const firstFile = rows.findIndex((c) => c !== "directory");
    if (firstFile < 1 || rows.slice(firstFile).includes("directory")) throw new Error(`rows ${rows}`);
  });

  await step("a click on Size sorts by size, a second turns it around", async () => {
    await desk.click("th.size a");
    await desk.waitForURL(/sort=size&order=asc/, { timeout: STEP });
    const sizes = await desk.$$eval("tbody tr:not(.directory) td.size", (tds) => tds.map((td) => Number(td.dataset.bytes)));
    if (sizes.join() !== [...sizes].sort((a, b) => a - b).join()) throw new Error(`ascending? ${sizes}`);
    await desk.click("th.size a");
    await desk.waitForURL(/sort=size&order=desc/, { timeout: STEP });
    const down = await desk.$$eval("tbody tr:not(.directory) td.size", (tds) => tds.map((td) => Number(td.dataset.bytes)));
    if (down.join() !== [...down].sort((a, b) => b - a).join()) throw new Error(`descending? ${down}`);
  });

  await step("the form uploads a file and the listing shows it", async () => {
    await desk.goto(base + "/");
    await desk.setInputFiles('input[type="file"]', upload);
    await Promise.all([desk.waitForNavigation({ timeout: STEP }), desk.click('form.upload button[type="submit"]')]);
    const shown = await desk.$$eval("td.name a", (links) => links.map((a) => a.textContent));
    if (!shown.some((t) => t.endsWith("from-the-browser.txt"))) throw new Error(`listing: ${shown}`);
  });

  await step("a parent link in a subdirectory", async () => {
    await desk.goto(base + "/photos/");
    await desk.click("tr.parent a");
    await desk.waitForURL(base + "/", { timeout: STEP });
  });

  await step("dark mode on a phone hides the date column", async () => {
    await phone.goto(base + "/");
    const bg = await phone.evaluate(() => getComputedStyle(document.body).backgroundColor);
    if (bg !== "rgb(22, 24, 28)") throw new Error(`background ${bg}`);
    const shown = await phone.$eval("td.modified", (td) => getComputedStyle(td).display);
    if (shown !== "none") throw new Error(`date column ${shown}`);
    const wide = await phone.evaluate(() => document.documentElement.scrollWidth);
    if (wide > 390) throw new Error(`page is ${wide}px wide on a 390px screen`);
  });

  await step("screenshots of the listing", async () => {
    await desk.goto(base + "/");
    await desk.screenshot({ path: `${shots}/listing.png` });
    await phone.screenshot({ path: `${shots}/listing-phone-dark.png` });
  });
} finally {
  await browser.close();
}
