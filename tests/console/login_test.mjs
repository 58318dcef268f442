// Browser test of the web console with security on: a SASL listener and the ACL authorizer.
//
// Goal: without a login every page answers 401 with the Basic challenge that makes a browser
// ask for one; a wrong password is refused; the super user logs in and works the console as
// before (its script's calls to the API carry the login: an offset reset is previewed and
// executed from the group page, checked through the Kafka protocol); a user without ACLs
// logs in and sees no topic and no group, and is refused a topic's page with 403.
//
// Usage: node tests/console/login_test.mjs <weir binary>
// Chromium comes from the system (Debian's `chromium`); set CHROMIUM to use another.

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { check, failures, freePort, waitFor } from "./support.mjs";

const weirBin = path.resolve(process.argv[2] || "target/release/weir");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

const ADMIN = { username: "admin", password: "admin-secret" };
const CAROL = { username: "carol", password: "carol-secret" };
const TOPIC = "orders";
const GROUP = "billing";

/** The weir CLI as the super user over SASL_PLAINTEXT/SCRAM; returns stdout. */
function cli(bootstrap, args, input) {
  const login = ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanism=SCRAM-SHA-256", "-X", `sasl.username=${ADMIN.username}`];
  return execFileSync(weirBin, [...args, "--bootstrap", bootstrap, ...login], {
    input,
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, WEIR_SASL_PASSWORD: ADMIN.password },
  });
}

function committed(bootstrap) {
  const described = JSON.parse(cli(bootstrap, ["groups", "describe", GROUP, "--output", "json"]));
  return described.partitions.map((p) => p.committed_offset ?? -1);
}

function basic({ username, password }) {
  return "Basic " + Buffer.from(`${username}:${password}`).toString("base64");
}

async function main() {
  if (!existsSync(chromiumPath)) throw new Error(`no Chromium at ${chromiumPath}; install Debian's chromium or set CHROMIUM`);
  const dataDir = mkdtempSync(path.join(tmpdir(), "weir-console-login-"));
  const kafkaPort = await freePort();
  const httpPort = await freePort();
  const bootstrap = `127.0.0.1:${kafkaPort}`;
  const base = `http://127.0.0.1:${httpPort}`;
  const weir = spawn(weirBin, [
    "serve", "--data-dir", dataDir, "--listeners", `SASL_PLAINTEXT://${bootstrap}`, "--http-listen", `127.0.0.1:${httpPort}`,
    "--authorizer", "acl", "--super-users", "User:admin",
    "--add-scram", `SCRAM-SHA-256=[name=admin,password=${ADMIN.password}]`,
    "--add-scram", `SCRAM-SHA-256=[name=carol,password=${CAROL.password}]`,
  ], { stdio: ["ignore", "inherit", "inherit"] });
  let browser = null;
  try {
    await waitFor("weir's HTTP listener", async () => (await fetch(`${base}/api/v1/cluster`)).status === 401);
    cli(bootstrap, ["topics", "create", TOPIC, "--partitions", "2"]);
    const lines = Array.from({ length: 50 }, (_, i) => `value-${i}`);
    cli(bootstrap, ["produce", TOPIC], lines.join("\n") + "\n");
    cli(bootstrap, ["consume", TOPIC, "--group", GROUP, "--from-beginning", "--max-messages", "20"]);
    const before = committed(bootstrap);
    check(before.reduce((a, b) => a + Math.max(b, 0), 0) === 20, `group ${GROUP} committed 20 records over SASL`);

    browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });

    // No login: the challenge a browser answers with its login dialog (Playwright's
    // Chromium gives up on it instead of asking, so these go through fetch).
    for (const url of ["/", "/topics", `/groups/${GROUP}`, "/api/v1/topics", "/metrics"]) {
      const response = await fetch(base + url);
      const challenge = response.headers.get("www-authenticate") || "";
      check(response.status === 401 && challenge.startsWith('Basic realm="weir"'), `${url} without a login answers 401 with a Basic challenge`);
    }
    {
      const response = await fetch(`${base}/topics`, { headers: { authorization: basic({ username: ADMIN.username, password: "wrong" }) } });
      check(response.status === 401, "a wrong password is refused (401)");
    }
    // The super user works the console; the page's script calls the API with the login.
    {
      const context = await browser.newContext({ httpCredentials: ADMIN, viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      const errors = [];
      page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
      page.on("pageerror", (e) => errors.push(String(e)));
      for (const url of ["/", "/topics", `/topics/${TOPIC}`, `/topics/${TOPIC}/messages?partition=0&offset=0`, "/groups", `/groups/${GROUP}`]) {
        const response = await page.goto(base + url, { waitUntil: "networkidle" });
        check(response.status() === 200, `${url} as admin answers 200`);
      }
      await page.goto(`${base}/topics`);
      check(await page.locator(`#topics a[href="/topics/${TOPIC}"]`).count() === 1, "admin's topics page lists the topic");
      await page.goto(`${base}/groups/${GROUP}`);
      await page.click("#reset-offsets");
      await page.selectOption("#reset-form select[name=to]", "earliest");
      await page.click("#reset-preview");
      await page.waitForSelector("#reset-plan tr", { timeout: 10000 });
      check(await page.locator("#reset-plan tr").count() === 2, "admin previews a reset of both partitions from the group page");
      await Promise.all([page.waitForNavigation(), page.click("#reset-execute")]);
      const after = committed(bootstrap);
      check(after.every((o) => o === 0), `the reset to earliest is committed (read through the Kafka protocol: ${after})`);
      check(errors.length === 0, `admin's pages log no console error${errors.length ? ": " + errors.join(" | ") : ""}`);
      await context.close();
    }
    // A user without ACLs sees nothing and is refused what it names.
    {
      const context = await browser.newContext({ httpCredentials: CAROL });
      const page = await context.newPage();
      const topics = await page.goto(`${base}/topics`);
      check(topics.status() === 200 && await page.locator(`#topics a[href="/topics/${TOPIC}"]`).count() === 0, "carol's topics page lists no topic");
      const groups = await page.goto(`${base}/groups`);
      check(groups.status() === 200 && !(await page.content()).includes(`/groups/${GROUP}`), "carol's groups page lists no group");
      const topic = await page.goto(`${base}/topics/${TOPIC}`);
      check(topic.status() === 403, `carol is refused the topic's page (${topic.status()})`);
      const api = await fetch(`${base}/api/v1/topics/${TOPIC}/partitions/0/messages`, { headers: { authorization: basic(CAROL) } });
      const body = await api.json();
      check(api.status === 403 && body.code === "topic_authorization_failed", `carol is refused reading the topic through the API (${api.status} ${body.code})`);
      await context.close();
    }
  } finally {
    if (browser) await browser.close();
    weir.kill("SIGTERM");
    rmSync(dataDir, { recursive: true, force: true });
  }
  console.log(failures() === 0 ? "console login: all checks passed" : `console login: ${failures()} check(s) failed`);
  process.exit(failures() === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(`console login test failed: ${e.message}`);
  process.exit(1);
});
