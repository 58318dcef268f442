// Browser tests of weir's web console, against a running weir holding real data.
//
// Goal: every page loads without a console error at desktop and phone widths, in light and
// dark mode (screenshots saved for a person to look at), and an offset reset done through
// the group page (preview, execute, undo) changes the committed offsets exactly as the
// preview showed, as the Kafka protocol reads them back (`weir groups describe`).
//
// Usage: node tests/console/console_test.mjs <weir binary> [screenshot dir]
// Chromium comes from the system (Debian's `chromium`); set CHROMIUM to use another.

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { check, failures, freePort, waitFor } from "./support.mjs";

const weirBin = path.resolve(process.argv[2] || "target/release/weir");
const shotsDir = path.resolve(process.argv[3] || "tests/console/screenshots");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

const TOPIC = "orders";
const PARTITIONS = 3;
const RECORDS = 300;
const GROUP = "billing";
const CONSUMED = 120;

/** Runs the weir CLI against the broker; returns stdout. */
function cli(bootstrap, args, input) {
  return execFileSync(weirBin, [...args, "--bootstrap", bootstrap], { input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
}

/** The group's committed offsets through the Kafka protocol: Map "topic/partition" -> offset. */
function committedOffsets(bootstrap) {
  const described = JSON.parse(cli(bootstrap, ["groups", "describe", GROUP, "--output", "json"]));
  const out = new Map();
  for (const p of described.partitions) {
    if (p.committed_offset !== null && p.committed_offset !== undefined) out.set(`${p.topic}/${p.partition}`, p.committed_offset);
  }
  return out;
}

async function main() {
  if (!existsSync(chromiumPath)) throw new Error(`no Chromium at ${chromiumPath}; install Debian's chromium or set CHROMIUM`);
  mkdirSync(shotsDir, { recursive: true });
  const dataDir = mkdtempSync(path.join(tmpdir(), "weir-console-"));
  const kafkaPort = await freePort();
  const httpPort = await freePort();
  const bootstrap = `127.0.0.1:${kafkaPort}`;
  const base = `http://127.0.0.1:${httpPort}`;
  const weir = spawn(weirBin, ["serve", "--data-dir", dataDir, "--listen", bootstrap, "--http-listen", `127.0.0.1:${httpPort}`], { stdio: ["ignore", "inherit", "inherit"] });
  let browser = null;
  try {
    await waitFor("weir's HTTP listener", async () => (await fetch(`${base}/metrics`)).ok);

    // Real data through the Kafka protocol: JSON values with headers, plain text, and a
    // group that has consumed part of the topic.
    cli(bootstrap, ["topics", "create", TOPIC, "--partitions", String(PARTITIONS)]);
    const lines = [];
    for (let i = 0; i < RECORDS; i++) lines.push(`key-${i}:{"order":${i},"amount":${(i * 7) % 100},"currency":"EUR"}`);
    cli(bootstrap, ["produce", TOPIC, "--key-separator", ":", "--header", "source=console-test"], lines.join("\n") + "\n");
    cli(bootstrap, ["topics", "create", "plain", "--partitions", "1"]);
    cli(bootstrap, ["produce", "plain"], "just text\nmore text\n");
    cli(bootstrap, ["consume", TOPIC, "--group", GROUP, "--from-beginning", "--max-messages", String(CONSUMED)]);
    const before = committedOffsets(bootstrap);
    check([...before.values()].reduce((a, b) => a + b, 0) === CONSUMED, `group ${GROUP} committed ${CONSUMED} records before the browser opens`);

    browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
    const pages = [
      ["overview", "/"],
      ["topics", "/topics"],
      ["topic", `/topics/${TOPIC}`],
      ["messages", `/topics/${TOPIC}/messages?partition=0&offset=0`],
      ["messages-plain", `/topics/plain/messages?partition=0&offset=0`],
      ["groups", "/groups"],
      ["group", `/groups/${GROUP}`],
    ];
    const viewports = [
      ["desktop", { width: 1280, height: 900 }],
      ["phone", { width: 390, height: 844 }],
    ];
    for (const scheme of ["light", "dark"]) {
      for (const [device, viewport] of viewports) {
        const context = await browser.newContext({ viewport, colorScheme: scheme });
        const page = await context.newPage();
        const errors = [];
        page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
        page.on("pageerror", (e) => errors.push(String(e)));
        for (const [name, url] of pages) {
          errors.length = 0;
          const response = await page.goto(base + url, { waitUntil: "networkidle" });
          check(response.status() === 200, `${name} (${device}, ${scheme}) answers 200`);
          check(errors.length === 0, `${name} (${device}, ${scheme}) has no console error${errors.length ? ": " + errors.join(" | ") : ""}`);
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
          check(overflow <= 1, `${name} (${device}, ${scheme}) fits the width (overflow ${overflow}px)`);
          await page.screenshot({ path: path.join(shotsDir, `${name}-${device}-${scheme}.png`), fullPage: true });
        }
        await context.close();
      }
    }

    // What the pages show matches the broker.
    {
      const page = await browser.newPage();
      await page.goto(`${base}/topics`);
      check(await page.locator(`#topics a[href="/topics/${TOPIC}"]`).count() === 1, "the topics page links the topic");
      await page.goto(`${base}/topics/${TOPIC}/messages?partition=0&offset=0`);
      const shown = await page.locator("#messages tbody tr").count();
      check(shown > 0, `the message browser shows records of partition 0 (${shown})`);
      const firstValue = await page.locator("#messages tbody tr").first().locator("td.value pre").textContent();
      check(firstValue.includes('\n  "order"'), "a JSON value is pretty-printed");
      check((await page.locator("#messages tbody tr").first().textContent()).includes("source"), "headers are shown");
      await page.goto(`${base}/groups`);
      const groupRow = page.locator(`#groups tr:has(a[href="/groups/${GROUP}"])`);
      check(await groupRow.count() === 1, "the groups page lists the group");
      check((await groupRow.textContent()).includes(String(RECORDS - CONSUMED)), `the group's total lag reads ${RECORDS - CONSUMED}`);
      await page.close();
    }

    // Click through the group page: preview a reset to earliest, execute, then undo.
    {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors = [];
      page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
      page.on("pageerror", (e) => errors.push(String(e)));
      // The console samples lag every 10 s; once it has, the group page draws the chart.
      await waitFor("a lag sample", async () => {
        const history = await (await fetch(`${base}/api/v1/groups/${GROUP}/lag-history`)).json();
        return history.samples.length > 0;
      }, 30000);
      await page.goto(`${base}/groups`);
      await page.click(`#groups a[href="/groups/${GROUP}"]`);
      await page.waitForSelector("#lag tbody tr");
      await page.waitForSelector("[data-lag-chart] canvas", { timeout: 5000 }).catch(() => null);
      check(await page.locator("[data-lag-chart] canvas").count() === 1, "the group page draws the lag chart from the sampled history");
      check(await page.locator("#lag tbody tr").count() === PARTITIONS, "the group page has one lag row per partition");
      await page.click("#reset-offsets");
      await page.selectOption("#reset-form select[name=to]", "earliest");
      await page.click("#reset-preview");
      await page.waitForSelector("#reset-plan tr");
      const plan = await page.$$eval("#reset-plan tr", (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
      check(plan.length === PARTITIONS, `the preview plans ${PARTITIONS} partitions`);
      const reprocessed = plan.reduce((sum, row) => sum + (row[4].endsWith("reprocessed") ? Number(row[4].split(" ")[0].replace(/,/g, "")) : 0), 0);
      check(reprocessed === CONSUMED, `the preview says ${CONSUMED} records will be reprocessed (${reprocessed})`);
      await page.screenshot({ path: path.join(shotsDir, "reset-preview.png"), fullPage: true });
      const planned = new Map(plan.map((row) => [`${row[0]}/${row[1]}`, Number(row[3].replace(/,/g, ""))]));
      check(committedOffsets(bootstrap).size > 0 && [...committedOffsets(bootstrap).values()].some((o) => o > 0), "the preview changed nothing");
      await Promise.all([page.waitForNavigation(), page.click("#reset-execute")]);
      const afterReset = committedOffsets(bootstrap);
      check([...planned].every(([tp, o]) => afterReset.get(tp) === o), "the committed offsets are what the preview showed (read through the Kafka protocol)");
      await page.screenshot({ path: path.join(shotsDir, "reset-done.png"), fullPage: true });
      await Promise.all([page.waitForNavigation(), page.click("#reset-undo")]);
      const afterUndo = committedOffsets(bootstrap);
      check([...before].every(([tp, o]) => afterUndo.get(tp) === o), "undo puts back the offsets from before the reset");
      check(errors.length === 0, `the reset flow logs no console error${errors.length ? ": " + errors.join(" | ") : ""}`);
      await page.close();
    }
  } finally {
    if (browser) await browser.close();
    weir.kill("SIGTERM");
    rmSync(dataDir, { recursive: true, force: true });
  }
  console.log(failures() === 0 ? "console: all checks passed" : `console: ${failures()} check(s) failed`);
  process.exit(failures() === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(`console test failed: ${e.message}`);
  process.exit(1);
});
