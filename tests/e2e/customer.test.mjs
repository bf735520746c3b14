// Customer journeys in a real browser: a buyer paying with PayPal and signing waivers, and
// a buyer who cancels at PayPal and one whose hold expires. Run by scripts/test-e2e with the
// stack and checks of lib/harness.mjs; screenshots (desktop and 375 px) go to target/e2e/.
import assert from "node:assert/strict";

import { waitForMail, linkIn } from "./lib/mail.mjs";
import {
  stack,
  journey,
  reserve,
  fillDetails,
  goToPayPal,
  approveAtPayPal,
  seatsLeft,
  openMail,
  unique,
} from "./lib/harness.mjs";

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

  // The page's own files first: a reload would abort them (a failed request).
  await page.waitForLoadState("load");
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

  // A hold that runs out while the buyer types: the page counts down and says so, the form
  // keeps what was typed, and the seats can be held again.
  await page.goto(eventUrl);
  const left = Number(await seatsLeft(page, "Walk with tastings").textContent());
  await reserve(w, { "Walk with tastings": 2 });
  const token = new URL(page.url()).pathname.split("/").pop();
  // The deadline moves to a few seconds from now (enough for a slow machine to reload first).
  stack.sql(`UPDATE bookings SET hold_expires_at = now() + interval '6 seconds' WHERE access_token = '${token}'`);
  // The page's own files first: a reload would abort them (a failed request).
  await page.waitForLoadState("load");
  await page.reload();
  await page.locator(".hold-expired", { hasText: "Your hold has expired" }).waitFor({ timeout: 15000 });
  await w.check("countdown-expired");
  await page.getByLabel("Full name", { exact: true }).fill(buyer.name);
  await page.getByLabel("Email (your tickets go here)").fill(buyer.email);
  await page.locator("#attendee-0-name").fill(buyer.name);
  await page.locator("#attendee-1-name").fill("Yui Sato");
  // Sent after the deadline: 409, told so, and everything typed is still there.
  w.expectStatus(409, `/checkout/${token}`);
  await page.getByRole("button", { name: "Continue to review" }).click();
  await page.locator("[data-hold-ran-out]", { hasText: "Your hold ran out at" }).waitFor();
  assert.equal(await page.locator("#attendee-1-name").inputValue(), "Yui Sato");
  assert.equal(await page.getByLabel("Email (your tickets go here)").inputValue(), buyer.email);
  await w.check("told-expired");

  // The seats are still free: held again in a new hold, with the details kept.
  await page.getByRole("button", { name: "Hold my seats again" }).click();
  await page.getByRole("button", { name: "Continue to review" }).waitFor();
  assert.equal(await page.locator("#attendee-1-name").inputValue(), "Yui Sato");
  await w.check("held-again");
  await page.getByRole("button", { name: "Continue to review" }).click();
  await page.waitForURL(/\/review$/);
  assert.notEqual(new URL(page.url()).pathname.split("/")[2], token, "a new hold, not the expired one");

  // Released: the seats go back on sale.
  await Promise.all([page.waitForURL(/\/bookings\//), page.getByRole("button", { name: "Release my seats" }).click()]);
  await page.locator("[data-state=cancelled]").waitFor();
  await w.check("released");
  await page.getByRole("link", { name: "Back to the event" }).click();
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
