// The buyer's checkout tells them where they stand (issue 15), in a real browser: on a phone a
// refused ticket choice brings the error summary into view and focus; the running total
// follows the quantities; the hold timer stays in view (sticky) and shows the deadline in
// the buyer's own zone; a hold that runs out while typing keeps the input and the seats can
// be held again; and after paying, "You're booked". Run by scripts/test-e2e with the stack
// and checks of lib/harness.mjs; screenshots (desktop and 375 px) go to target/e2e/.
import assert from "node:assert/strict";

import { stack, journey, reserve, fillDetails, goToPayPal, approveAtPayPal, unique } from "./lib/harness.mjs";

const PHONE = { width: 375, height: 700 };
const DESKTOP = { width: 1280, height: 900 };

/** The page checks and screenshots at both widths, for a journey that runs on a phone. */
async function checkBoth(w, name) {
  await w.page.setViewportSize(DESKTOP);
  await w.check(name);
  await w.page.setViewportSize(PHONE);
}

journey("7-checkout-phone", async ({ person }) => {
  const w = await person();
  const page = w.page;
  await page.setViewportSize(PHONE);
  const buyer = { name: "Lena Vogel", email: `lena.${unique()}@example.test` };
  await page.goto(`${stack.baseUrl}/events/sunrise-trail-run-10k`);
  assert.match(await page.title(), /^Choose tickets — Sunrise Trail Run 10K/);

  // The running total follows the quantity typed; its no-JS button is not needed here.
  const qty = page.getByLabel("Quantity of Runner", { exact: true });
  await qty.fill("2");
  await page.locator("[data-order-sum]", { hasText: "Total: €60.00" }).waitFor();
  assert.equal((await page.locator("[data-order-lines] li").textContent()).trim(), "Runner: 2 × €30.00 = €60.00");
  assert.equal(await page.locator("[data-update-total]").isVisible(), false);
  await qty.fill("3");
  await page.locator("[data-order-sum]", { hasText: "Total: €90.00" }).waitFor();
  await checkBoth(w, "running-total");

  // A refused choice: the page lands on the error summary, ~1,000 px down on a phone.
  await qty.fill("9");
  w.expectStatus(422, "/checkout/hold");
  await page.getByRole("button", { name: "Reserve tickets" }).click();
  await page.locator("[data-error-summary]").waitFor();
  const seen = await page.evaluate(() => {
    const s = document.querySelector("[data-error-summary]");
    const r = s.getBoundingClientRect();
    return {
      focused: document.activeElement === s,
      inView: r.top >= 0 && r.top < window.innerHeight,
      scrolled: window.scrollY,
      text: s.textContent,
    };
  });
  assert.ok(seen.focused, "the error summary has the focus");
  assert.ok(seen.inView, `the error summary is in view (scrolled ${seen.scrolled})`);
  assert.ok(seen.scrolled > 300, `the page scrolled down to the form (${seen.scrolled})`);
  assert.match(seen.text, /At most 4 per booking\./);
  assert.equal(await qty.getAttribute("aria-invalid"), "true");
  assert.equal(await qty.inputValue(), "9");
  assert.match(await page.title(), /^Error: Choose tickets/);
  await checkBoth(w, "refused-choice");
  // Its link leads to the field.
  await page.locator("[data-error-summary] a").click();
  assert.equal(await page.evaluate(() => document.activeElement?.id), await qty.getAttribute("id"));

  await qty.fill("2");
  await reserve(w, {});
  assert.match(await page.title(), /^Your details — Sunrise Trail Run 10K/);
  // On a phone the order summary comes first and the timer stays in view while scrolling.
  const layout = await page.evaluate(() => {
    window.scrollTo(0, document.body.scrollHeight);
    const timer = document.querySelector(".hold-timer").getBoundingClientRect();
    const summary = document.querySelector(".order-summary").getBoundingClientRect();
    const form = document.querySelector("[data-details-form]").getBoundingClientRect();
    return {
      position: getComputedStyle(document.querySelector(".hold-timer")).position,
      timerTop: timer.top,
      summaryAboveForm: summary.top < form.top,
      scrolled: window.scrollY,
    };
  });
  assert.equal(layout.position, "sticky");
  assert.ok(layout.scrolled > 200, `the page scrolled (${layout.scrolled})`);
  assert.ok(Math.abs(layout.timerTop) <= 1, `the timer sticks to the top (${layout.timerTop})`);
  assert.ok(layout.summaryAboveForm, "the order summary is above the form on a phone");
  assert.match(await page.locator(".order-summary").textContent(), /2 × Runner[\s\S]*€60\.00/);
  assert.match(await page.locator(".hold-timer").textContent(), /\d+:\d\d left/);
  await checkBoth(w, "details-phone");

  // A bad field: summary, focus, and the field marked.
  await page.getByLabel("Full name", { exact: true }).fill(buyer.name);
  await page.getByLabel("Email (your tickets go here)").fill("lena-at-example");
  w.expectStatus(422, new URL(page.url()).pathname);
  await page.getByRole("button", { name: "Continue to review" }).click();
  await page.locator("[data-error-summary] a[href='#buyer_email']").waitFor();
  assert.ok(await page.evaluate(() => document.activeElement?.hasAttribute("data-error-summary")));
  assert.equal(await page.locator("#buyer_email").getAttribute("aria-invalid"), "true");
  await checkBoth(w, "details-error");

  await fillDetails(w, buyer, [{ name: buyer.name }, { name: "Tom Vogel" }]);
  assert.match(await page.title(), /^Review and pay — Sunrise Trail Run 10K/);
  await checkBoth(w, "review");
  await goToPayPal(w);
  await approveAtPayPal(w);

  // "You're booked": what was bought, where the tickets went, what to do next.
  await page.getByRole("heading", { name: "You're booked", level: 1 }).waitFor();
  assert.match(await page.title(), /^You're booked — Sunrise Trail Run 10K/);
  const booked = page.locator("[data-booked]");
  assert.match(await booked.textContent(), /2 × Runner — €60\.00/);
  const emailed = (await booked.locator("[data-emailed-to]").textContent()).replace(/\s+/g, " ");
  assert.ok(emailed.includes(`Your tickets were emailed to ${buyer.email}.`), emailed);
  await booked.getByRole("link", { name: "download all tickets (PDF)" }).waitFor();
  // Every runner signs a waiver: one link each, or the promise of the mails.
  for (let i = 0; i < 20 && (await booked.locator("[data-next-waiver]").count()) === 0; i++) {
    assert.match(await booked.textContent(), /we are emailing each of them a link/);
    await page.waitForTimeout(500);
    await page.reload();
  }
  assert.equal(await booked.locator("[data-next-waiver]").count(), 2);
  await booked.getByRole("link", { name: "Sign the waiver for Tom Vogel" }).waitFor();
  await checkBoth(w, "booked");
});

journey("8-checkout-buyer-zone-and-expiry", async ({ person }) => {
  // A buyer in Berlin books a walk in Tokyo.
  const w = await person(undefined, { timezoneId: "Europe/Berlin" });
  const page = w.page;
  const buyer = { name: "Jana Horn", email: `jana.${unique()}@example.test` };
  await page.goto(`${stack.baseUrl}/events/tokyo-night-market-walk`);
  const qty = page.getByLabel("Quantity of Walk with tastings", { exact: true });
  await qty.fill("2");
  await page.locator("[data-order-sum]", { hasText: "Total: ¥7,000" }).waitFor();
  await reserve(w, {});
  const token = new URL(page.url()).pathname.split("/").pop();

  // The deadline in the event's zone (from the server) and in the buyer's own.
  const timer = page.locator(".hold-timer");
  const expires = await timer.locator("[data-expires-at]").getAttribute("data-expires-at");
  const clock = (timeZone) =>
    new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", timeZone }).format(new Date(expires));
  await timer.locator("[data-buyer-time]:not([hidden])").waitFor();
  const text = (await timer.textContent()).replace(/\s+/g, " ");
  assert.ok(text.includes(`${clock("Asia/Tokyo")} (Asia/Tokyo)`), text);
  assert.ok(text.includes(`that is ${clock("Europe/Berlin")} your time (Europe/Berlin)`), text);
  await w.check("buyer-zone");

  // The hold runs out while the buyer types.
  stack.sql(`UPDATE bookings SET hold_expires_at = now() + interval '6 seconds' WHERE access_token = '${token}'`);
  // The page's own files first: a reload would abort them (a failed request).
  await page.waitForLoadState("load");
  await page.reload();
  await page.getByLabel("Full name", { exact: true }).fill(buyer.name);
  await page.getByLabel("Email (your tickets go here)").fill(buyer.email);
  await page.locator("#attendee-0-name").fill(buyer.name);
  await page.locator("#attendee-1-name").fill("Mia Horn");
  await page.locator(".hold-expired", { hasText: "What you typed stays here" }).waitFor({ timeout: 15000 });
  w.expectStatus(409, `/checkout/${token}`);
  await page.getByRole("button", { name: "Continue to review" }).click();
  const ranOut = page.locator("[data-hold-ran-out]");
  await ranOut.waitFor();
  assert.match(await ranOut.textContent(), /Your hold ran out at \d\d:\d\d \(Asia\/Tokyo\); the seats were released/);
  assert.ok(await page.evaluate(() => document.activeElement?.hasAttribute("data-hold-ran-out")));
  assert.equal(await page.locator("#attendee-1-name").inputValue(), "Mia Horn");
  assert.match(await page.title(), /^Your hold ran out — Tokyo Night Market Walk/);
  await w.check("ran-out");

  await page.getByRole("button", { name: "Hold my seats again" }).click();
  await page.getByRole("button", { name: "Continue to review" }).waitFor();
  assert.equal(await page.getByLabel("Full name", { exact: true }).inputValue(), buyer.name);
  assert.equal(await page.locator("#attendee-1-name").inputValue(), "Mia Horn");
  assert.match(await page.locator(".hold-timer").textContent(), /your time \(Europe\/Berlin\)/);
  await w.check("held-again");
  await page.getByRole("button", { name: "Continue to review" }).click();
  await page.waitForURL(/\/review$/);
  assert.match(await page.locator("[data-total]").textContent(), /¥7,000/);
  await w.check("review-again");
});
