// What every journey file shares: one stack (the real app, the PayPal simulator and an SMTP
// server on 127.0.0.1, over a fresh database) and one Chromium per file, `journey()` that
// watches and checks its pages (lib/checks.mjs: console, requests, labels, 375 px, axe-core)
// and keeps the evidence of a failure, and the steps journeys have in common. Each
// tests/e2e/*.test.mjs imports it; scripts/test-e2e runs the files one after another.
import { fileURLToPath } from "node:url";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { chromium } from "playwright-core";

import { startStack } from "./stack.mjs";
import { DESKTOP, Watch } from "./checks.mjs";

const root = fileURLToPath(new URL("../../..", import.meta.url));
export const outDir = resolve(process.env.E2E_OUT || join(root, "target/e2e"));
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];

/** The running stack of this file (set before the first journey). */
export let stack;
let browser;

before(async () => {
  // scripts/test-e2e empties target/e2e once; the files write beside each other.
  mkdirSync(outDir, { recursive: true });
  if (!process.env.E2E_ADMIN_DATABASE_URL) throw new Error("E2E_ADMIN_DATABASE_URL is not set (run scripts/test-e2e)");
  stack = await startStack({
    adminUrl: process.env.E2E_ADMIN_DATABASE_URL,
    binDir: resolve(process.env.E2E_BIN_DIR || join(root, "target/debug")),
    outDir,
    python: process.env.SMTP_PYTHON || "python3",
    tag: basename(process.argv[1] ?? "stack", ".test.mjs"),
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** One journey: its pages are watched and checked, and a failure leaves its evidence. */
export function journey(name, fn) {
  test(name, async () => {
    const contexts = [];
    const watches = [];
    const watch = (page, tag) => {
      const w = new Watch(page, tag ? `${name}-${tag}` : name, outDir, stack.baseUrl);
      w.newTab = async (t) => watch(await page.context().newPage(), t);
      watches.push(w);
      return w;
    };
    /** A page in a browser of its own (own cookies): one person; `options` for the context
     * (a time zone, say). */
    const person = async (tag, options = {}) => {
      const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true, ...options });
      contexts.push(context);
      return watch(await context.newPage(), tag);
    };
    try {
      await fn({ person });
      for (const w of watches) w.assertClean();
    } catch (e) {
      // What the page checks saw before the failure often explains it (a 500, say).
      const seen = watches.flatMap((w) => w.problems);
      for (const w of watches) await w.saveFailure();
      if (!seen.length) throw e;
      throw new Error(`${e.message}\npage checks also saw:\n  ${seen.join("\n  ")}`, { cause: e });
    } finally {
      for (const c of contexts) await c.close();
    }
  });
}

// ------------------------------------------------------------------ steps shared by journeys

/** On an event page: choose quantities by ticket type name and reserve. */
export async function reserve(w, quantities) {
  const page = w.page;
  for (const [type, n] of Object.entries(quantities)) {
    await page.getByLabel(`Quantity of ${type}`, { exact: true }).fill(String(n));
  }
  await page.getByRole("button", { name: "Reserve tickets" }).click();
  await page.waitForURL(/\/checkout\/[^/]+$/);
}

/** On the details page: the buyer and each attendee, then on to the review. */
export async function fillDetails(w, buyer, attendees) {
  const page = w.page;
  await page.getByLabel("Full name", { exact: true }).fill(buyer.name);
  await page.getByLabel("Email (your tickets go here)").fill(buyer.email);
  for (const [i, a] of attendees.entries()) {
    await page.locator(`#attendee-${i}-name`).fill(a.name);
    if (a.email) await page.locator(`#attendee-${i}-email`).fill(a.email);
  }
  await page.getByRole("button", { name: "Continue to review" }).click();
  await page.waitForURL(/\/review$/);
}

/** From the review page to the PayPal simulator's approval page. */
export async function goToPayPal(w) {
  await w.page.getByLabel("I accept the terms and the refund policy").check();
  await w.page.getByRole("button", { name: /^Pay .* with PayPal$/ }).click();
  await w.page.waitForURL((u) => u.href.startsWith(`${stack.simUrl}/checkoutnow`));
  await w.check("paypal-approval");
}

/** At PayPal: approve, and land on the paid booking page. */
export async function approveAtPayPal(w) {
  await w.page.getByRole("button", { name: "Approve" }).click();
  await w.page.waitForURL(/\/bookings\/[^/]+$/);
  assert.equal(await w.page.locator("[data-state]").getAttribute("data-state"), "paid");
}

/** The seats-left number shown for a ticket type on an event page. */
export function seatsLeft(page, typeName) {
  return page
    .locator(".ticket-type", { has: page.locator(".tt-name", { hasText: new RegExp(`^${typeName}$`) }) })
    .locator(".seats-left");
}

/** A link of the admin navigation bar. */
export function adminNav(page, name) {
  return page.getByRole("navigation", { name: "Admin" }).getByRole("link", { name, exact: true });
}

export async function adminLogin(w, email, password) {
  const page = w.page;
  await page.goto(`${stack.baseUrl}/admin`);
  await page.waitForURL(/\/admin\/login/);
  await w.check("login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL((u) => !u.pathname.startsWith("/admin/login"));
}

/** Opens an email's HTML part as a page, the way a mail client shows it: in a blank page,
 * not over one of the site's pages, whose Content-Security-Policy (no inline style) would
 * otherwise apply to the mail. */
export async function openMail(w, mail, name) {
  await w.page.goto("about:blank");
  // A mail client shows `cid:` images from the mail's own parts; so does this page.
  let html = mail.html;
  for (const part of mail.inline ?? []) {
    html = html.replaceAll(`cid:${part.cid}`, `data:${part.type};base64,${part.base64}`);
  }
  assert.ok(!html.includes('src="cid:'), "every inline image of the mail is one of its parts");
  await w.page.setContent(html, { waitUntil: "load" });
  await w.check(name);
}

export const unique = () => Math.random().toString(36).slice(2, 8);

