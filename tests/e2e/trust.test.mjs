// A shop people trust, in a real browser: the listing says what can be bought, the terms are
// accepted and recorded, every attendee's PDF ticket is downloaded from the booking page and
// attached to the mails (their text read back with pdftotext), each attendee with an email
// gets their own ticket mail, find-my-booking mails the links, and a cancel at PayPal is said
// on the booking page, whose print stylesheet prints one ticket per page. Run by scripts/test-e2e with the stack and checks of lib/harness.mjs
// (which also checks the footer's legal links on every page); screenshots go to target/e2e/.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { waitForMail, linkIn } from "./lib/mail.mjs";
import {
  outDir,
  stack,
  journey,
  reserve,
  fillDetails,
  goToPayPal,
  approveAtPayPal,
  openMail,
  unique,
} from "./lib/harness.mjs";

/** The text of a PDF file, as pdftotext (poppler-utils) reads it. */
function pdfText(path) {
  return execFileSync("pdftotext", ["-layout", path, "-"], { encoding: "utf8" });
}

/** The listing card of an event, by its title. */
function card(page, title) {
  return page.locator(".event-card", { has: page.locator(".card-title", { hasText: title }) });
}

journey("6-trust", async ({ person }) => {
  // What can be bought, said on the listing: one event not on sale yet, one closed, one full.
  stack.sql(`UPDATE ticket_types SET sales_open_at = now() + interval '5 days'
             WHERE event_id = (SELECT id FROM events WHERE slug = 'midwinter-jazz-night')`);
  stack.sql(`UPDATE ticket_types SET sales_close_at = now() - interval '1 hour'
             WHERE event_id = (SELECT id FROM events WHERE slug = 'chefs-table-tasting-dinner')`);
  stack.sql(`UPDATE ticket_types SET capacity = 0
             WHERE event_id = (SELECT id FROM events WHERE slug = 'tokyo-night-market-walk')`);
  const w = await person();
  const page = w.page;
  await page.goto(`${stack.baseUrl}/`);
  await w.check("listing-sale-states");
  assert.match(await card(page, "Midwinter Jazz Night").locator(".card-meta").textContent(), /On sale from .*\d{1,2} \w{3}/);
  assert.match(await card(page, "Chef's Table Tasting Dinner").locator(".card-meta").textContent(), /Sales closed/);
  assert.match(await card(page, "Tokyo Night Market Walk").locator(".card-meta").textContent(), /Sold out/);
  const free = (await card(page, "Rust Meetup: Async in Practice").locator(".card-meta").textContent()).trim();
  assert.equal(free, "Free");
  assert.match(await card(page, "Sunrise Trail Run 10K").locator(".card-meta").textContent(), /€\d+\.\d\d/);

  // The legal pages the footer links to are there and say who sells.
  await page.getByRole("navigation", { name: "Legal" }).getByRole("link", { name: /Terms/ }).click();
  await page.waitForURL(/\/legal\/terms$/);
  await page.getByRole("heading", { level: 1 }).waitFor();
  await w.check("terms-page");

  // Two tickets, the second attendee with their own email; the terms must be accepted.
  const buyer = { name: "Lena Fischer", email: `lena.${unique()}@example.test` };
  const friend = { name: "Tom Becker", email: `tom.${unique()}@example.test` };
  await page.goto(`${stack.baseUrl}/events/sunrise-trail-run-10k`);
  await reserve(w, { Runner: 2 });
  await fillDetails(w, buyer, [{ name: buyer.name }, friend]);
  const box = page.getByLabel("I accept the terms and the refund policy");
  assert.equal(await box.isChecked(), false, "the terms box starts unticked");
  await page.getByRole("button", { name: /^Pay .* with PayPal$/ }).click();
  assert.ok(await box.evaluate((b) => !b.checkValidity()), "paying without accepting the terms is refused");
  await w.check("review-terms");
  await goToPayPal(w);
  await approveAtPayPal(w);
  await w.check("paid");
  const bookingUrl = page.url();
  const token = new URL(bookingUrl).pathname.split("/").pop();
  const reference = (await page.locator("p:has-text('Booking reference') strong").textContent()).trim();
  const recorded = stack.sql(
    `SELECT terms_version IS NOT NULL AND terms_accepted_at IS NOT NULL FROM bookings WHERE access_token = '${token}'`,
  );
  assert.equal(recorded, "t", "the accepted terms version and time are recorded on the booking");

  // Every ticket as a PDF from the booking page: all in one, and one per attendee.
  const codes = (await page.locator(".ticket-code").allTextContents()).map((c) => c.trim());
  assert.equal(codes.length, 2);
  const save = async (link, name) => {
    w.expectAbort(new URL(await link.getAttribute("href"), stack.baseUrl).href);
    const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
    const path = join(outDir, name);
    await download.saveAs(path);
    return pdfText(path);
  };
  const all = await save(page.getByRole("link", { name: "Download all tickets (PDF)", exact: true }), "6-trust-tickets.pdf");
  for (const [i, who] of [buyer, friend].entries()) {
    assert.ok(all.includes(who.name) && all.includes(codes[i]), `all tickets PDF lacks ${who.name}:\n${all}`);
  }
  assert.ok(all.includes("Sunrise Trail Run 10K") && all.includes("Runner"), all);
  const one = await save(page.getByRole("link", { name: `Ticket of ${friend.name} (PDF)` }), "6-trust-ticket-tom.pdf");
  assert.ok(one.includes(friend.name) && one.includes(codes[1]) && !one.includes(buyer.name), one);

  // Printing the booking page prints the tickets only: no header, footer or links, one
  // ticket per page (Chromium's own print to PDF, read back with pdftotext).
  await page.emulateMedia({ media: "print" });
  for (const hidden of [".site-header", ".site-footer"]) {
    assert.equal(await page.locator(hidden).first().isVisible(), false, `${hidden} is printed`);
  }
  await page.screenshot({ path: join(outDir, "6-trust-booking-print.png"), fullPage: true });
  const printed = join(outDir, "6-trust-booking-print.pdf");
  await page.pdf({ path: printed, format: "A4" });
  const pages = pdfText(printed).split("\f").filter((p) => p.trim());
  assert.equal(pages.length, 2, `one printed page per ticket:\n${pages.join("\n----\n")}`);
  for (const [i, who] of [buyer, friend].entries()) {
    assert.ok(pages[i].includes(who.name) && pages[i].includes(codes[i]), pages[i]);
  }
  assert.ok(!pages.join("").includes("Find my booking"), "the footer is not printed");
  await page.emulateMedia({ media: "screen" });

  // The confirmation mail carries the tickets as a PDF and the QR codes inline.
  const [confirmation] = await waitForMail(stack.maildir, (m) => m.to.includes(buyer.email) && m.subject.includes(reference));
  const pdfs = confirmation.attachments.filter((a) => a.type === "application/pdf");
  assert.ok(pdfs.length >= 1, "the confirmation has the tickets attached as PDF");
  const attached = join(outDir, "6-trust-confirmation-attachment.pdf");
  writeFileSync(attached, Buffer.from(pdfs[0].base64, "base64"));
  const attachedText = pdfText(attached);
  assert.ok(attachedText.includes(codes[0]) && attachedText.includes(codes[1]), attachedText);
  assert.ok(confirmation.inline.length >= 2, "each ticket's QR code is inline in the HTML mail");
  const mailTab = await w.newTab("mail");
  await openMail(mailTab, confirmation, "confirmation-mail");

  // The second attendee gets their own ticket mail, with only their ticket.
  const [own] = await waitForMail(stack.maildir, (m) => m.to.includes(friend.email) && m.subject === "Your ticket for Sunrise Trail Run 10K");
  await openMail(mailTab, own, "friend-ticket-mail");
  const ownPdf = own.attachments.find((a) => a.type === "application/pdf");
  assert.ok(ownPdf, "the attendee's ticket mail has their PDF ticket");
  const ownPath = join(outDir, "6-trust-friend-attachment.pdf");
  writeFileSync(ownPath, Buffer.from(ownPdf.base64, "base64"));
  const ownText = pdfText(ownPath);
  assert.ok(ownText.includes(codes[1]) && !ownText.includes(codes[0]), ownText);

  // Find my booking: the same answer for any address; the links arrive by mail.
  await page.goto(`${stack.baseUrl}/`);
  await page.getByRole("navigation", { name: "Legal" }).getByRole("link", { name: "Find my booking" }).click();
  await page.waitForURL(/\/find-booking$/);
  await w.check("find-booking");
  await page.getByLabel("Email you booked with").fill(buyer.email);
  await page.getByRole("button", { name: "Send me my bookings" }).click();
  const known = (await page.getByRole("status").textContent()).replace(buyer.email, "<email>");
  await w.check("find-booking-sent");
  await page.goto(`${stack.baseUrl}/find-booking`);
  const stranger = `nobody.${unique()}@example.test`;
  await page.getByLabel("Email you booked with").fill(stranger);
  await page.getByRole("button", { name: "Send me my bookings" }).click();
  assert.equal((await page.getByRole("status").textContent()).replace(stranger, "<email>"), known);
  const [links] = await waitForMail(stack.maildir, (m) => m.to.includes(buyer.email) && m.subject.startsWith("Your bookings at"));
  await openMail(mailTab, links, "booking-links-mail");
  assert.equal(linkIn(links.html, "/bookings/"), bookingUrl);
  await mailTab.page.getByRole("link", { name: "Sunrise Trail Run 10K" }).first().click();
  await mailTab.page.waitForURL(bookingUrl);
  await mailTab.check("booking-from-links-mail");

  // A cancel at PayPal: the booking page says so and offers to pay again or let the seats go.
  const second = await person("cancel");
  await second.page.goto(`${stack.baseUrl}/events/sunrise-trail-run-10k`);
  await reserve(second, { Runner: 1 });
  await fillDetails(second, { name: "Ida Kraus", email: `ida.${unique()}@example.test` }, [{ name: "Ida Kraus" }]);
  const cancelledUrl = second.page.url().replace(/\/checkout\/([^/]+)\/review$/, "/bookings/$1");
  await goToPayPal(second);
  await second.page.getByRole("button", { name: "Cancel and return" }).click();
  await second.page.getByRole("heading", { name: "Payment cancelled" }).waitFor();
  await second.page.goto(cancelledUrl);
  const said = second.page.locator("[data-cancelled-at-paypal]");
  await said.waitFor();
  assert.match(await said.textContent(), /cancelled the payment at PayPal/);
  assert.ok(!(await second.page.getByText("waiting for your payment to be confirmed").count()));
  await second.check("booking-after-cancel");
  await second.page.getByRole("button", { name: "Release the seats" }).click();
  await second.page.waitForURL(cancelledUrl);
  assert.notEqual(await second.page.locator("[data-state]").getAttribute("data-state"), "awaiting_payment");
  await second.check("seats-released");
});
