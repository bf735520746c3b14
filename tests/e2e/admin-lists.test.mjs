// The admin lists on a phone and a desktop (issue 16): every list page at 375 and 1280 px has
// no horizontal scroll (lib/checks.mjs) and no word broken inside (codes, states, dates,
// amounts and table headers each stay on one line and inside their cell); the event's
// currency is chosen on its form; the needs-attention list shows a payment pending too long.
// Screenshots of every step at both widths go to target/e2e/; axe runs at both.
import assert from "node:assert/strict";

import {
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
import { DESKTOP, PHONE_WIDTH } from "./lib/checks.mjs";

/**
 * Everything that must not break inside, at the page's current width: each text of a code,
 * state, date or amount (and of a visible table header) on one line, and no such cell wider
 * than its box. Returns the offenders.
 */
async function brokenWords(page) {
  return page.evaluate(() => {
    const bad = [];
    const lines = (el) => {
      const tops = new Set();
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (!n.textContent.trim()) continue;
        const range = document.createRange();
        range.selectNodeContents(n);
        for (const r of range.getClientRects()) if (r.width > 0) tops.add(Math.round(r.top));
      }
      return tops.size;
    };
    const selector = ".admin-table .code, .admin-table .nowrap, .admin-table .when, .admin-table .num, .admin-body .state, .admin-table th";
    for (const el of document.querySelectorAll(selector)) {
      const box = el.getBoundingClientRect();
      if (box.width <= 1 || box.height <= 1) continue; // hidden (the phone view's header row)
      if (lines(el) > 1) bad.push(`split over lines: <${el.tagName.toLowerCase()} class="${el.className}"> ${el.textContent.trim().slice(0, 60)}`);
      if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0) {
        bad.push(`wider than its box: <${el.tagName.toLowerCase()} class="${el.className}"> ${el.textContent.trim().slice(0, 60)} (${el.scrollWidth} > ${el.clientWidth})`);
      }
    }
    return bad;
  });
}

/** The page checks, then the word checks at both widths. */
async function checkList(w, name) {
  await w.check(name);
  const page = w.page;
  for (const width of [DESKTOP.width, PHONE_WIDTH]) {
    await page.setViewportSize({ width, height: 900 });
    const bad = await brokenWords(page);
    assert.deepEqual(bad, [], `${name} at ${width}px`);
  }
  await page.setViewportSize(DESKTOP);
}

journey("6-admin-lists", async ({ person }) => {
  const admin = await person("admin");
  const page = admin.page;
  const title = `Harbour Lights Festival ${unique()}`;

  await adminLogin(admin, stack.admin.email, stack.admin.password);
  await checkList(admin, "dashboard");

  // A new event in US dollars, chosen from the list; it cannot go public without a type.
  await adminNav(page, "Events").click();
  await page.getByRole("link", { name: "New event" }).click();
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Slug (web address)").fill(title.toLowerCase().replaceAll(" ", "-"));
  await page.getByLabel("Venue").fill("Pier 4, Hamburg");
  await page.getByLabel("Time zone (IANA)").fill("America/New_York");
  const day = new Date(Date.now() + 20 * 86400000).toISOString().slice(0, 10);
  await page.getByLabel("Starts (local time)").fill(`${day}T19:00`);
  await page.getByLabel("Ends (local time)").fill(`${day}T23:00`);
  await page.getByLabel("Capacity (all ticket types together)").fill("50");
  await page.getByLabel("Visibility").selectOption("public");
  await page.getByLabel("Currency of all prices").selectOption("USD");
  admin.expectStatus(422, "/admin/events");
  await page.getByRole("button", { name: "Save event" }).click();
  await page.locator("#ev-visibility-error").waitFor();
  assert.match(await page.locator("#ev-visibility-error").textContent(), /Add a ticket type first/);
  assert.equal(await page.getByLabel("Currency of all prices").inputValue(), "USD", "the choice is kept");
  await admin.check("public-without-types-refused");
  await page.getByLabel("Visibility").selectOption("draft");
  await page.getByRole("button", { name: "Save event" }).click();
  await page.waitForURL(/\/admin\/events\/\d+$/);
  const eventId = new URL(page.url()).pathname.split("/").pop();
  await page.locator("#no-ticket-types").waitFor();
  await checkList(admin, "event-without-types");
  const newType = () => page.locator("form", { has: page.getByRole("heading", { name: "Add a ticket type" }) });
  await newType().getByLabel("Name").fill("Deck");
  assert.match(await newType().getByLabel(/^Price/).evaluate((el) => el.labels[0].textContent), /Price in USD/);
  await newType().getByLabel(/^Price/).fill("18.50");
  await newType().getByLabel("Capacity").fill("50");
  await newType().getByRole("button", { name: "Add ticket type" }).click();
  await page.locator("form h3", { hasText: "Deck" }).waitFor();
  await page.getByRole("button", { name: "Publish" }).click();
  await page.getByText("Visibility: public").waitFor();
  assert.equal(await page.locator("#no-ticket-types").count(), 0);
  await checkList(admin, "event");
  await adminNav(page, "Events").click();
  await checkList(admin, "events");

  // A buyer pays in dollars; a second basket is left waiting for payment.
  const buyer = await person("buyer");
  await buyer.page.goto(`${stack.baseUrl}/`);
  await buyer.page.getByRole("link", { name: title }).click();
  await reserve(buyer, { Deck: 2 });
  await fillDetails(buyer, { name: "Maximiliane Oberhuber-Schwarzenberg", email: `max.${unique()}@example.test` }, [
    { name: "Maximiliane Oberhuber-Schwarzenberg" },
    { name: "Konstantin Wellington-Featherstonehaugh" },
  ]);
  await goToPayPal(buyer);
  await approveAtPayPal(buyer);
  const reference = (await buyer.page.locator("p:has-text('Booking reference') strong").textContent()).trim();
  const waiting = await person("waiting");
  await waiting.page.goto(`${stack.baseUrl}/`);
  await waiting.page.getByRole("link", { name: title }).click();
  await reserve(waiting, { Deck: 1 });
  // Awaiting payment for 45 minutes, as if PayPal never answered (the hold kept alive).
  const late = stack.sql(
    `UPDATE bookings SET state = 'awaiting_payment', updated_at = now() - interval '45 minutes',
            hold_expires_at = now() + interval '1 hour'
      WHERE event_id = ${eventId} AND state = 'held' RETURNING reference`,
  );
  assert.ok(late, "the waiting basket exists");

  await adminNav(page, "Bookings").click();
  await page.locator("tr", { hasText: reference }).waitFor();
  assert.ok(await page.getByRole("link", { name: "Export bookings (CSV)" }).isVisible(), "export without a filter");
  await checkList(admin, "bookings");
  await page.getByRole("link", { name: reference }).click();
  await page.waitForURL(/\/admin\/bookings\/\d+$/);
  await page.getByText("$37.00").first().waitFor();
  await checkList(admin, "booking");

  await adminNav(page, "Mail").click();
  await checkList(admin, "outbox");
  // Resend asks first.
  await page.getByRole("link", { name: /^Resend mail/ }).first().click();
  await page.waitForURL(/\/admin\/outbox\/\d+\/resend$/);
  assert.match(await page.locator("#resend-question").textContent(), /^Resend “.+” to .+@.+\?$/);
  await admin.check("resend-confirm");
  await page.getByRole("button", { name: "Resend" }).click();
  await page.waitForURL(/\/admin\/bookings\/\d+$/);

  await adminNav(page, "Audit log").click();
  await page.getByLabel("Action").selectOption("event.publish");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/action=event\.publish/);
  await page.getByRole("link", { name: `event ${eventId}` }).first().waitFor();
  await checkList(admin, "audit");

  await adminNav(page, "Users").click();
  await checkList(admin, "users");

  // The needs-attention list, counted in the nav.
  await page.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: /^Needs attention/ }).click();
  await page.waitForURL(/\/admin\/attention$/);
  const row = page.locator("#attention-pending tr", { hasText: late });
  await row.waitFor();
  assert.match(await row.textContent(), /\$18\.50/);
  assert.match(await row.textContent(), /4\d min/);
  await checkList(admin, "attention");

  await adminNav(page, "Dashboard").click();
  await page.locator('[data-kpi="revenue-USD"]').waitFor();
  assert.match(await page.locator('[data-kpi="revenue-USD"] [data-kpi-today]').textContent(), /\$37\.00/);
  await checkList(admin, "dashboard-with-sales");
});
