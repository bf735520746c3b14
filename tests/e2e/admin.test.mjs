// An admin in a real browser: events, ticket types, bookings, refunds, exports, users. Run by scripts/test-e2e with the
// stack and checks of lib/harness.mjs; screenshots (desktop and 375 px) go to target/e2e/.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { waitForMail } from "./lib/mail.mjs";
import {
  outDir,
  stack,
  journey,
  reserve,
  fillDetails,
  goToPayPal,
  approveAtPayPal,
  adminNav,
  adminLogin,
  unique,
} from "./lib/harness.mjs";

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
  await page.locator("td[data-label=Refunded]", { hasText: "€12.50" }).waitFor();
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
