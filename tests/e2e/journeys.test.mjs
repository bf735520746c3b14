// The site's journeys in a real browser (Debian's Chromium driven by playwright-core): a
// customer paying with PayPal and signing waivers, a buyer who cancels at PayPal and one
// whose hold expires, a private-link guest, an admin, and door staff. Run by scripts/test
// through scripts/test-e2e, against the real app, the PayPal simulator and an SMTP server on
// 127.0.0.1. Screenshots of every step (desktop and 375 px) go to target/e2e/; a failure
// leaves its screenshot and the page's console log there too.
import { fileURLToPath } from "node:url";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

import { startStack } from "./lib/stack.mjs";
import { DESKTOP, Watch } from "./lib/checks.mjs";
import { waitForMail, linkIn } from "./lib/mail.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));
const outDir = resolve(process.env.E2E_OUT || join(root, "target/e2e"));
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];

let stack;
let browser;

before(async () => {
  rmSync(outDir, { recursive: true, force: true });
  if (!process.env.E2E_ADMIN_DATABASE_URL) throw new Error("E2E_ADMIN_DATABASE_URL is not set (run scripts/test-e2e)");
  stack = await startStack({
    adminUrl: process.env.E2E_ADMIN_DATABASE_URL,
    binDir: resolve(process.env.E2E_BIN_DIR || join(root, "target/debug")),
    outDir,
    python: process.env.SMTP_PYTHON || "python3",
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
function journey(name, fn) {
  test(name, async () => {
    const contexts = [];
    const watches = [];
    const watch = (page, tag) => {
      const w = new Watch(page, tag ? `${name}-${tag}` : name, outDir);
      w.newTab = async (t) => watch(await page.context().newPage(), t);
      watches.push(w);
      return w;
    };
    /** A page in a browser of its own (own cookies): one person. */
    const person = async (tag) => {
      const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
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
async function reserve(w, quantities) {
  const page = w.page;
  for (const [type, n] of Object.entries(quantities)) {
    await page.getByLabel(`Quantity of ${type}`, { exact: true }).fill(String(n));
  }
  await page.getByRole("button", { name: "Reserve tickets" }).click();
  await page.waitForURL(/\/checkout\/[^/]+$/);
}

/** On the details page: the buyer and each attendee, then on to the review. */
async function fillDetails(w, buyer, attendees) {
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
async function goToPayPal(w) {
  await w.page.getByLabel("I accept the terms and the refund policy").check();
  await w.page.getByRole("button", { name: /^Pay .* with PayPal$/ }).click();
  await w.page.waitForURL((u) => u.href.startsWith(`${stack.simUrl}/checkoutnow`));
  await w.check("paypal-approval");
}

/** At PayPal: approve, and land on the paid booking page. */
async function approveAtPayPal(w) {
  await w.page.getByRole("button", { name: "Approve" }).click();
  await w.page.waitForURL(/\/bookings\/[^/]+$/);
  assert.equal(await w.page.locator("[data-state]").getAttribute("data-state"), "paid");
}

/** The seats-left number shown for a ticket type on an event page. */
function seatsLeft(page, typeName) {
  return page
    .locator(".ticket-type", { has: page.locator(".tt-name", { hasText: new RegExp(`^${typeName}$`) }) })
    .locator(".seats-left");
}

/** A link of the admin navigation bar. */
function adminNav(page, name) {
  return page.getByRole("navigation", { name: "Admin" }).getByRole("link", { name, exact: true });
}

async function adminLogin(w, email, password) {
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
async function openMail(w, mail, name) {
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

const unique = () => Math.random().toString(36).slice(2, 8);

// ------------------------------------------------------------------ the journeys

journey("1-customer", async ({ person }) => {
  const w = await person();
  const page = w.page;
  const buyer = { name: "Maria Weber", email: `maria.${unique()}@example.test` };
  const second = { name: "Jonas Weber", email: `jonas.${unique()}@example.test` };

  await page.goto(`${stack.baseUrl}/`);
  await w.check("listing");
  await page.getByRole("link", { name: "Sunrise Trail Run 10K" }).click();
  await page.waitForURL(/\/events\//);
  await w.check("event");
  const eventUrl = page.url();

  // A second tab on the same event page, left open: its number must drop by itself.
  const tab = await w.newTab("second-tab");
  await tab.page.goto(eventUrl);
  await tab.check("event");
  const runnerSeats = seatsLeft(tab.page, "Runner");
  const runnerId = await runnerSeats.getAttribute("data-seats-left");
  const before = Number(await runnerSeats.textContent());
  await tab.page.evaluate(() => {
    window.notReloaded = true;
  });

  await reserve(w, { Runner: 2 });
  await w.check("details");

  // A mistake first: the message is next to the field and what was typed is kept.
  await page.getByLabel("Full name", { exact: true }).fill(buyer.name);
  await page.getByLabel("Email (your tickets go here)").fill("maria-at-example");
  w.expectStatus(422, new URL(page.url()).pathname);
  await page.getByRole("button", { name: "Continue to review" }).click();
  await page.locator("#buyer_email-error").waitFor();
  assert.equal(await page.getByLabel("Email (your tickets go here)").inputValue(), "maria-at-example");
  assert.equal(await page.getByLabel("Full name", { exact: true }).inputValue(), buyer.name);
  await w.check("details-error");

  await fillDetails(w, buyer, [{ name: buyer.name }, second]);
  await w.check("review");
  assert.match(await page.locator("[data-total]").textContent(), /60\.00/);

  // The held seats show on the other tab without a reload.
  await tab.page.waitForFunction(
    ([id, expected]) => Number(document.querySelector(`[data-seats-left="${id}"]`)?.textContent) === expected,
    [runnerId, before - 2],
    { timeout: 10000 },
  );
  assert.equal(await tab.page.evaluate(() => window.notReloaded), true, "the second tab was reloaded");
  await tab.check("seats-dropped");

  await goToPayPal(w);
  await approveAtPayPal(w);
  await w.check("confirmation");
  const bookingUrl = page.url();
  const reference = (await page.locator("p:has-text('Booking reference') strong").textContent()).trim();

  // The confirmation mail, with its link back to the tickets and the calendar file.
  const [confirmation] = await waitForMail(
    stack.maildir,
    (m) => m.to.includes(buyer.email) && m.subject.includes(reference),
  );
  assert.equal(confirmation.subject, `Your tickets for Sunrise Trail Run 10K (${reference})`);
  assert.ok(confirmation.attachments.some((a) => a.name.endsWith(".ics")), "no .ics attached");
  const mailTab = await w.newTab("mail");
  await openMail(mailTab, confirmation, "confirmation-mail");
  await mailTab.page.getByRole("link", { name: "Show my tickets" }).click();
  await mailTab.page.waitForURL(bookingUrl);
  await mailTab.check("tickets-from-mail");
  assert.equal(await mailTab.page.locator("[data-waiver-state=unsigned]").count(), 2);

  // One waiver mail per attendee; each signs from the link in their own mail.
  for (const attendee of [buyer, second]) {
    const [mail] = await waitForMail(
      stack.maildir,
      (m) => m.to.includes(attendee.email) && m.subject === "Please sign the waiver for Sunrise Trail Run 10K",
    );
    await openMail(mailTab, mail, `waiver-mail-${attendee.name.split(" ")[0]}`);
    const link = linkIn(mail.html, "/waivers/");
    assert.ok(link.startsWith(stack.baseUrl), `waiver link ${link} is not on the site`);
    await mailTab.page.getByRole("link", { name: "Read and sign the waiver" }).click();
    await mailTab.page.waitForURL(link);
    await mailTab.check(`waiver-${attendee.name.split(" ")[0]}`);
    await mailTab.page.getByLabel("Type your full name to sign").fill(attendee.name);
    await mailTab.page.getByLabel("I have read this waiver and agree to it.").check();
    await mailTab.page.getByRole("button", { name: "Sign the waiver" }).click();
    await mailTab.page.locator("[data-waiver=signed]").waitFor();
    await mailTab.check(`waiver-signed-${attendee.name.split(" ")[0]}`);
  }

  await page.reload();
  assert.equal(await page.locator("[data-waiver-state=signed]").count(), 2);
  assert.equal(await page.locator("[data-waiver-state=unsigned]").count(), 0);
  await w.check("booking-waivers-signed");
});

journey("2-cancel-and-expiry", async ({ person }) => {
  const w = await person();
  const page = w.page;
  const buyer = { name: "Kenji Sato", email: `kenji.${unique()}@example.test` };
  const eventUrl = `${stack.baseUrl}/events/tokyo-night-market-walk`;

  // Cancelling at PayPal brings the buyer back to a page that lets them try again.
  await page.goto(eventUrl);
  await w.check("event");
  await reserve(w, { "Walk with tastings": 1 });
  await fillDetails(w, buyer, [{ name: buyer.name }]);
  await goToPayPal(w);
  await page.getByRole("button", { name: "Cancel and return" }).click();
  await page.getByRole("heading", { name: "Payment cancelled" }).waitFor();
  await w.check("cancelled");
  await page.getByRole("button", { name: "Try paying again" }).click();
  await page.waitForURL((u) => u.href.startsWith(`${stack.simUrl}/checkoutnow`));
  await w.check("paypal-again");
  await approveAtPayPal(w);
  await w.check("paid-after-retry");

  // A hold that runs out: the page counts down, then the buyer is told it expired.
  await page.goto(eventUrl);
  const left = Number(await seatsLeft(page, "Walk with tastings").textContent());
  await reserve(w, { "Walk with tastings": 2 });
  const token = new URL(page.url()).pathname.split("/").pop();
  // The deadline moves to a few seconds from now (enough for a slow machine to reload first).
  stack.sql(`UPDATE bookings SET hold_expires_at = now() + interval '6 seconds' WHERE access_token = '${token}'`);
  await page.reload();
  await page.locator(".hold-expired", { hasText: "Your hold has expired" }).waitFor({ timeout: 15000 });
  await w.check("countdown-expired");
  await page.getByLabel("Full name", { exact: true }).fill(buyer.name);
  await page.getByLabel("Email (your tickets go here)").fill(buyer.email);
  await page.locator("#attendee-0-name").fill(buyer.name);
  await page.locator("#attendee-1-name").fill("Yui Sato");
  await Promise.all([page.waitForURL(/\/bookings\//), page.getByRole("button", { name: "Continue to review" }).click()]);
  await page.locator("[data-state=expired]").waitFor();
  await page.getByText("Your hold expired before the booking was completed").waitFor();
  await w.check("told-expired");

  // The seats went back on sale.
  await page.getByRole("link", { name: "Choose tickets again" }).click();
  await page.waitForURL(eventUrl);
  const seats = seatsLeft(page, "Walk with tastings");
  const id = await seats.getAttribute("data-seats-left");
  // The page shows the number as it loaded; the live stream keeps it right afterwards.
  await page.waitForFunction(
    ([id, expected]) => Number(document.querySelector(`[data-seats-left="${id}"]`)?.textContent) === expected,
    [id, left],
    { timeout: 5000 },
  );
  await w.check("seats-back");
});

journey("3-private-guest", async ({ person }) => {
  const w = await person();
  const page = w.page;
  const guest = { name: "Ada Brooks", email: `ada.${unique()}@example.test` };

  await page.goto(stack.privateLink);
  await w.check("private-event");
  await page.getByText("Private event · by invitation").waitFor();
  assert.equal(await page.locator('meta[name="robots"]').getAttribute("content"), "noindex, nofollow");
  await reserve(w, { "Dinner seat": 2 });
  await fillDetails(w, guest, [{ name: guest.name }, { name: "Grace Brooks" }]);
  await w.check("review");
  await goToPayPal(w);
  await approveAtPayPal(w);
  await w.check("confirmation");
  await page.getByRole("heading", { name: "Founders' Private Dinner" }).waitFor();

  // Nowhere to be found in public.
  await page.goto(`${stack.baseUrl}/`);
  await w.check("listing");
  assert.equal(await page.getByText("Founders' Private Dinner").count(), 0);
  const sitemap = await (await fetch(`${stack.baseUrl}/sitemap.xml`)).text();
  assert.ok(!sitemap.includes("founders-private-dinner"), "private event in the sitemap");
  assert.ok(!sitemap.includes(new URL(stack.privateLink).pathname), "private link in the sitemap");
  const guessed = await fetch(`${stack.baseUrl}/events/founders-private-dinner`);
  assert.equal(guessed.status, 404, "private event reachable by its slug");
});

journey("4-admin", async ({ person }) => {
  const admin = await person("admin");
  const page = admin.page;
  const title = `Bouldering Night ${unique()}`;

  await adminLogin(admin, stack.admin.email, stack.admin.password);
  await admin.check("dashboard");

  // A new event, saved as a draft with two ticket types, then published.
  await adminNav(page, "Events").click();
  await admin.check("events");
  await page.getByRole("link", { name: "New event" }).click();
  await admin.check("new-event");
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Slug (web address)").fill(title.toLowerCase().replaceAll(" ", "-"));
  await page.getByLabel("Venue").fill("Boulderhalle Ost, Berlin");
  await page.getByLabel("Time zone (IANA)").fill("Europe/Berlin");
  const day = new Date(Date.now() + 40 * 86400000).toISOString().slice(0, 10);
  await page.getByLabel("Starts (local time)").fill(`${day}T19:00`);
  await page.getByLabel("Ends (local time)").fill(`${day}T23:00`);
  await page.getByLabel("Capacity (all ticket types together)").fill("100");
  await page.getByLabel("Visibility").selectOption("draft");
  await page.getByLabel("Description").fill("Climb, then pizza.");
  await page.getByRole("button", { name: "Save event" }).click();
  await page.waitForURL(/\/admin\/events\/\d+$/);
  const eventId = new URL(page.url()).pathname.split("/").pop();
  await admin.check("event-created");
  const newType = () => page.locator("form", { has: page.getByRole("heading", { name: "Add a ticket type" }) });
  // A price that is not a price: the message is next to it and the rest stays typed in.
  admin.expectStatus(422, `/admin/events/${eventId}/ticket-types`);
  await newType().getByLabel("Name").fill("Day pass");
  await newType().getByLabel("Price").fill("twenty");
  await newType().getByLabel("Capacity").fill("60");
  await newType().getByLabel("Sales open (local time, optional)").fill(`${day}T09:00`);
  await newType().getByRole("button", { name: "Add ticket type" }).click();
  await newType().locator("#new-price-error").waitFor();
  assert.match(await newType().locator("#new-price-error").textContent(), /Enter the price like 25\.00/);
  assert.equal(await newType().getByLabel("Name").inputValue(), "Day pass");
  assert.equal(await newType().getByLabel("Capacity").inputValue(), "60");
  assert.equal(await newType().getByLabel("Sales open (local time, optional)").inputValue(), `${day}T09:00`);
  await admin.check("ticket-type-error");
  await newType().getByLabel("Sales open (local time, optional)").fill("");
  for (const [name, price, capacity] of [
    ["Day pass", "20.00", "60"],
    ["Student", "12.50", "40"],
  ]) {
    const form = newType();
    await form.getByLabel("Name").fill(name);
    await form.getByLabel("Price").fill(price);
    await form.getByLabel("Currency").fill("EUR");
    await form.getByLabel("Capacity").fill(capacity);
    await form.getByLabel("Max per booking").fill("4");
    await form.getByRole("button", { name: "Add ticket type" }).click();
    await page.locator("form h3", { hasText: name }).waitFor();
  }
  await admin.check("ticket-types");
  await page.getByRole("button", { name: "Publish" }).click();
  await page.getByText("Visibility: public").waitFor();
  await admin.check("published");

  // A customer finds it in the listing and pays for one of each.
  const buyer = await person("buyer");
  const customer = { name: "Lena Vogel", email: `lena.${unique()}@example.test` };
  await buyer.page.goto(`${stack.baseUrl}/`);
  await buyer.page.getByRole("link", { name: title }).click();
  await buyer.check("event");
  await reserve(buyer, { "Day pass": 1, Student: 1 });
  await fillDetails(buyer, customer, [{ name: customer.name }, { name: "Tim Vogel" }]);
  await goToPayPal(buyer);
  await approveAtPayPal(buyer);
  await buyer.check("confirmation");
  const reference = (await buyer.page.locator("p:has-text('Booking reference') strong").textContent()).trim();

  // It arrives on the dashboard.
  await adminNav(page, "Dashboard").click();
  const row = page.locator("tr", { has: page.getByRole("link", { name: title }) });
  await row.waitFor();
  assert.match(await row.textContent(), /€32\.50/);
  const latest = page.locator("tr", { hasText: reference });
  await latest.waitFor();
  await admin.check("dashboard-with-booking");

  // A partial refund, confirmed with the box.
  await latest.getByRole("link", { name: reference }).click();
  await page.waitForURL(/\/admin\/bookings\/\d+$/);
  await admin.check("booking");
  await page.getByLabel(/^Amount to refund/).fill("12.50");
  await page.getByLabel("Reason (shown to the buyer)").fill("Student pass not used");
  await page.getByLabel(/I confirm this refund/).check();
  await page.getByRole("button", { name: "Refund", exact: true }).click();
  await page.getByRole("status").getByText("Refunded €12.50 through PayPal; the buyer is told by mail.").waitFor();
  await page.getByText(/refunded €12\.50/).waitFor();
  await admin.check("refunded-in-part");
  const [notice] = await waitForMail(
    stack.maildir,
    (m) => m.to.includes(customer.email) && m.subject === `Part of your booking ${reference} was refunded`,
  );
  assert.match(notice.text, /Refunded so far: €12\.50 of the €32\.50 you paid/);
  // The buyer's booking page shows it too, and the tickets stay valid.
  await buyer.page.reload();
  assert.equal((await buyer.page.locator("[data-refunded]").textContent()).trim(), "€12.50");
  assert.equal(await buyer.page.locator("[data-state]").getAttribute("data-state"), "paid");
  await buyer.check("refunded-in-part");

  // The CSV export of the event's bookings.
  await page.goto(`${stack.baseUrl}/admin/bookings?event=${eventId}`);
  await admin.check("bookings");
  const link = page.getByRole("link", { name: "Export bookings (CSV)" });
  admin.expectAbort(new URL(await link.getAttribute("href"), stack.baseUrl).href);
  const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
  const csvPath = join(outDir, "4-admin-bookings.csv");
  await download.saveAs(csvPath);
  const csv = readFileSync(csvPath, "utf8");
  const [header, ...rows] = csv.trim().split(/\r?\n/);
  assert.match(header, /reference/i);
  assert.equal(rows.length, 1, csv);
  assert.ok(rows[0].includes(reference) && rows[0].includes(customer.email), csv);

  // Each change is in the audit log.
  await adminNav(page, "Audit log").click();
  await admin.check("audit-log");
  const entries = await page.locator("tbody tr").allTextContents();
  const has = (action, what) => entries.some((e) => e.includes(action) && e.includes(what));
  assert.ok(has("event.create", `event ${eventId}`), "event.create missing");
  assert.equal(entries.filter((e) => e.includes("ticket_type.create")).length >= 2, true, "ticket_type.create missing");
  assert.ok(has("event.publish", "visibility: draft → public"), "event.publish missing");
  assert.ok(has("booking.refund", "amount: €12.50") && has("booking.refund", "Student pass not used"), "booking.refund missing");
});

journey("5-door-staff", async ({ person }) => {
  // A free ticket for the meetup.
  const guest = await person("guest");
  const visitor = { name: "Sam Lee", email: `sam.${unique()}@example.test` };
  await guest.page.goto(`${stack.baseUrl}/events/rust-meetup-async-in-practice`);
  await reserve(guest, { "Free admission": 1 });
  await fillDetails(guest, visitor, [{ name: visitor.name }]);
  // A free booking is sold under the terms too: confirming without the box is refused.
  await guest.page.getByRole("button", { name: "Confirm free booking" }).click();
  assert.ok(await guest.page.getByLabel("I accept the terms and the refund policy").evaluate((box) => !box.checkValidity()));
  await guest.page.getByLabel("I accept the terms and the refund policy").check();
  await guest.page.getByRole("button", { name: "Confirm free booking" }).click();
  await guest.page.waitForURL(/\/bookings\//);
  await guest.check("ticket");
  const code = (await guest.page.locator(".ticket-code").textContent()).trim();

  // The admin gives the door a staff account.
  const admin = await person("admin");
  await adminLogin(admin, stack.admin.email, stack.admin.password);
  await adminNav(admin.page, "Users").click();
  await admin.check("users");
  const doorEmail = `door.${unique()}@example.test`;
  await admin.page.getByLabel("Email").fill(doorEmail);
  await admin.page.getByLabel("Name").fill("Door Team");
  await admin.page.getByLabel("Role").selectOption("staff");
  await admin.page.getByRole("button", { name: /create/i }).click();
  const password = (await admin.page.locator("[role=status] code").textContent()).trim();
  await admin.check("staff-created");

  // At the door: typed code, then the same code again.
  const door = await person("door");
  await adminLogin(door, doorEmail, password);
  await adminNav(door.page, "Check-in").click();
  await door.check("checkin");
  await door.page.getByLabel("Event").selectOption({ label: "Rust Meetup: Async in Practice" });
  await door.page.getByLabel("Ticket code").fill(code);
  await door.page.getByRole("button", { name: "Check in" }).click();
  const result = door.page.locator("[data-result]");
  await result.waitFor();
  assert.equal(await result.getAttribute("data-result"), "valid");
  assert.match(await result.textContent(), new RegExp(visitor.name));
  await door.check("checked-in");

  await door.page.getByLabel("Ticket code").fill(code);
  await door.page.getByRole("button", { name: "Check in" }).click();
  await door.page.locator("[data-result=already]").waitFor();
  assert.match(await result.textContent(), /already checked in/i);
  await door.check("already-checked-in");

  // Staff do not see the admin-only pages, nor reach them.
  assert.equal(await door.page.getByRole("link", { name: "Audit log" }).count(), 0);
  door.expectStatus(403, "/admin/audit");
  const refused = await door.page.goto(`${stack.baseUrl}/admin/audit`);
  assert.equal(refused.status(), 403);
  await door.check("audit-log-refused");

  await guest.page.reload();
  await guest.page.getByText("Checked in").waitFor();
  await guest.check("ticket-checked-in");
});
