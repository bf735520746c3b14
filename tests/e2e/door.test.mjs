// Door staff in a real browser: choosing the event, green, amber (an unsigned waiver signed
// on the staff device) and red results, counts and undo, search, a ticket an admin
// cancelled, and two devices checking tickets offline whose scans sync with the duplicate
// resolved (the first scan to reach the server wins). Run by scripts/test-e2e with the
// stack and checks of lib/harness.mjs; screenshots (desktop and 375 px) go to target/e2e/.
import assert from "node:assert/strict";

import { waitForMail, linkIn } from "./lib/mail.mjs";

import {
  stack,
  journey,
  reserve,
  fillDetails,
  approveAtPayPal,
  adminNav,
  adminLogin,
  unique,
} from "./lib/harness.mjs";

/** Books free meetup tickets for `names` (at most two a booking): the booking page. */
async function freeTickets(w, buyer, names) {
  await w.page.goto(`${stack.baseUrl}/events/rust-meetup-async-in-practice`);
  await reserve(w, { "Free admission": names.length });
  await fillDetails(w, buyer, names.map((name) => ({ name })));
  await w.page.getByLabel("I accept the terms and the refund policy").check();
  await w.page.getByRole("button", { name: "Confirm free booking" }).click();
  await w.page.waitForURL(/\/bookings\//);
}

/** The printed code of `name`'s ticket on a booking page. */
async function codeOf(page, name) {
  return (await page.locator(".ticket", { hasText: name }).locator(".ticket-code").textContent()).trim();
}

/** Types `code` into the door's form and checks it in; the result's message element. */
async function checkIn(page, code) {
  await page.getByLabel("Ticket code", { exact: true }).fill(code);
  await page.getByRole("button", { name: "Check in", exact: true }).click();
  const result = page.locator("[data-result]");
  await result.waitFor();
  return result;
}

async function nextTicket(page) {
  await page.locator("#door-next").click();
  await page.getByLabel("Ticket code", { exact: true }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.id), "code", "focus back on the code field");
}

journey("5-door-staff", async ({ person }) => {
  // Free meetup tickets: Sam and Ada on one booking, Kim on another.
  const guest = await person("guest");
  const visitor = { name: "Sam Lee", email: `sam.${unique()}@example.test` };
  await freeTickets(guest, visitor, ["Sam Lee", "Ada Ng"]);
  await guest.check("ticket");
  const bookingUrl = guest.page.url();
  const sam = await codeOf(guest.page, "Sam Lee");
  const ada = await codeOf(guest.page, "Ada Ng");
  const other = await person("other-guest");
  await freeTickets(other, { name: "Kim Roe", email: `kim.${unique()}@example.test` }, ["Kim Roe"]);
  const kim = await codeOf(other.page, "Kim Roe");

  // Two runners of the trail run, whose waiver is required and not signed yet.
  const runner = await person("runner");
  await runner.page.goto(`${stack.baseUrl}/events/sunrise-trail-run-10k`);
  await reserve(runner, { Runner: 2 });
  await fillDetails(runner, { name: "Mia Park", email: `mia.${unique()}@example.test` }, [{ name: "Mia Park" }, { name: "Leo Park" }]);
  await runner.page.getByLabel("I accept the terms and the refund policy").check();
  await runner.page.getByRole("button", { name: /^Pay .* with PayPal$/ }).click();
  await runner.page.waitForURL((u) => u.href.startsWith(`${stack.simUrl}/checkoutnow`));
  await approveAtPayPal(runner);
  const mia = await codeOf(runner.page, "Mia Park");
  const leo = await codeOf(runner.page, "Leo Park");
  const reference = (await runner.page.locator("p:has-text('Booking reference') strong").textContent()).trim();

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
  // No password on screen: the account is invited by mail and chooses its own.
  await admin.page.getByText("An invite to choose a password was mailed").waitFor();
  await admin.check("staff-created");

  const door = await person("door");
  const page = door.page;
  const [invite] = await waitForMail(stack.maildir, (m) => m.to.includes(doorEmail) && m.subject.startsWith("Your account at"));
  const password = `door-${unique()}-${unique()}`;
  await page.goto(linkIn(invite.html, "/admin/set-password/"));
  await door.check("set-password");
  await page.getByLabel("New password (12 characters or more)").fill(password);
  await page.getByLabel("The same password again").fill(password);
  await page.getByRole("button", { name: "Set my password" }).click();
  await page.getByText("Your password is set").waitFor();
  await adminLogin(door, doorEmail, password);

  // The start page lists the published events, not the draft.
  await adminNav(page, "Check-in").click();
  await door.check("choose-event");
  assert.equal(await page.getByRole("link", { name: /Spring Gala/ }).count(), 0, "no drafts");
  await page.getByRole("link", { name: /Rust Meetup: Async in Practice/ }).click();
  await page.waitForURL(/\/admin\/checkin\/\d+$/);
  const meetupPath = new URL(page.url()).pathname;
  assert.equal(await page.evaluate(() => document.activeElement?.id), "code", "the code field has focus");
  assert.match(await page.locator("#door-count").textContent(), /0 of 3 checked in/);
  await door.check("door");

  // Green, with the attendee's name and ticket type.
  let result = await checkIn(page, sam);
  assert.equal(await result.getAttribute("data-result"), "valid");
  assert.equal(await result.getAttribute("data-tone"), "green");
  assert.match(await result.textContent(), /Sam Lee/);
  assert.match(await page.locator(".door-who").textContent(), /Sam Lee.*Free admission/s);
  await door.check("valid");
  await nextTicket(page);
  assert.match(await page.locator("#door-count").textContent(), /1 of 3 checked in/);
  assert.match(await page.locator(".door-types").textContent(), /Free admission: 1 of 3/);

  // The same code again: red, with when.
  result = await checkIn(page, sam);
  assert.equal(await result.getAttribute("data-result"), "already");
  assert.match(await result.textContent(), /already checked in/i);
  await door.check("already-checked-in");
  await nextTicket(page);

  // Undo (a scan by mistake), then check Sam in again from the search.
  await page.getByRole("button", { name: "Undo my last check-in (Sam Lee)" }).click();
  await page.getByRole("status").getByText("Check-in of Sam Lee undone").waitFor();
  assert.match(await page.locator("#door-count").textContent(), /0 of 3 checked in/);
  await door.check("undone");
  await page.getByLabel("Name or ticket code").fill("sam");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("button", { name: "Check in Sam Lee" }).waitFor();
  await door.check("search");
  await page.getByRole("button", { name: "Check in Sam Lee" }).click();
  assert.equal(await page.locator("[data-result]").getAttribute("data-result"), "valid");
  await nextTicket(page);

  // The trail run: amber for Mia's unsigned waiver, signed on the staff device.
  await page.getByRole("link", { name: "Another event" }).click();
  await page.getByRole("link", { name: /Sunrise Trail Run 10K/ }).click();
  await page.waitForURL(/\/admin\/checkin\/\d+$/);
  const trailPath = new URL(page.url()).pathname;
  result = await checkIn(page, mia);
  assert.equal(await result.getAttribute("data-result"), "waiver_unsigned");
  assert.equal(await result.getAttribute("data-tone"), "amber");
  await page.getByRole("heading", { name: "Valid — waiver not signed" }).waitFor();
  assert.match(await page.locator(".door-waiver-text").textContent(), /at my own risk/);
  await door.check("amber-waiver");
  door.expectStatus(422, `${trailPath}/sign`);
  await page.getByLabel("The attendee's full name").fill("Mia Park");
  await page.getByRole("button", { name: "Sign and check in" }).click();
  await page.getByText("Tick the box to confirm that the attendee has read and agrees").waitFor();
  assert.equal(await page.getByLabel("The attendee's full name").inputValue(), "Mia Park", "the name stays typed");
  await door.check("amber-consent-missing");
  await page.getByLabel("I have read the waiver and agree to it").check();
  await page.getByRole("button", { name: "Sign and check in" }).click();
  result = page.locator("[data-result]");
  assert.equal(await result.getAttribute("data-result"), "valid");
  assert.match(await result.textContent(), /Waiver signed at the door\. Valid: Mia Park/);
  await door.check("signed-at-door");
  await nextTicket(page);

  // An admin cancels Leo's ticket; at the door its code is refused.
  await admin.page.goto(`${stack.baseUrl}/admin/bookings?q=${reference}`);
  await admin.page.getByRole("link", { name: reference }).click();
  const form = admin.page.locator("form", { has: admin.page.getByRole("heading", { name: "Cancel or refund one ticket" }) });
  const leoOption = await form.locator("option", { hasText: leo }).getAttribute("value");
  await form.getByLabel("Ticket", { exact: true }).selectOption(leoOption);
  await form.getByLabel("Reason for the ticket change (shown to the buyer)").fill("Leo is injured");
  await form.getByLabel(/I confirm: this ticket stops being valid/).check();
  await form.getByRole("button", { name: /^Cancel this ticket/ }).click();
  await admin.page.locator("tr[data-ticket='cancelled']").waitFor();
  await admin.check("ticket-cancelled");
  result = await checkIn(page, leo);
  assert.equal(await result.getAttribute("data-result"), "cancelled");
  assert.equal(await result.getAttribute("data-tone"), "red");
  assert.match(await page.locator(".door-who").textContent(), /Leo Park.*Runner/s);
  await door.check("cancelled-refused");
  await nextTicket(page);

  // Staff do not see the admin-only pages, nor reach them.
  assert.equal(await page.getByRole("link", { name: "Audit log" }).count(), 0);
  door.expectStatus(403, "/admin/audit");
  const refused = await page.goto(`${stack.baseUrl}/admin/audit`);
  assert.equal(refused.status(), 403);
  await door.check("audit-log-refused");

  // Offline: two devices download the meetup's list, lose the network, and both scan Ada;
  // the first device also scans Kim.
  const second = await person("door-2");
  await adminLogin(second, doorEmail, password);
  const devices = [door, second];
  for (const d of devices) {
    await d.page.goto(`${stack.baseUrl}${meetupPath}`);
    // The list is downloaded and the page saved by the service worker.
    await d.page.locator("#door[data-list=ready][data-offline-ready=true]").waitFor();
    await d.page.context().setOffline(true);
  }
  result = await checkIn(page, ada);
  assert.equal(await result.getAttribute("data-result"), "valid");
  assert.equal(await result.getAttribute("data-offline"), "true");
  await door.check("offline-valid");
  await nextTicket(page);
  assert.equal(await (await checkIn(page, kim)).getAttribute("data-result"), "valid");
  await nextTicket(page);
  assert.equal(await (await checkIn(page, ada)).getAttribute("data-result"), "already", "this device knows its own scans");
  await nextTicket(page);
  assert.equal(await (await checkIn(second.page, ada)).getAttribute("data-result"), "valid");
  await second.check("offline-second-device");
  await nextTicket(second.page);
  // The page itself comes from the service worker while offline.
  await second.page.reload();
  await second.page.getByLabel("Ticket code", { exact: true }).waitFor();

  // Back online: the first device's scans reach the server first and win; the second is told.
  await door.page.context().setOffline(false);
  await page.locator("#door-offline[data-synced='2']").waitFor();
  await second.page.context().setOffline(false);
  await second.page.evaluate(() => window.dispatchEvent(new Event("online")));
  const duplicate = second.page.locator("[data-sync=duplicate]");
  await duplicate.waitFor();
  assert.match(await duplicate.textContent(), /Already checked in at .* by another device: Ada Ng/);
  // Its counts follow the list downloaded after the sync.
  await second.page.locator("#door-count", { hasText: "3 of 3 checked in" }).waitFor();
  await second.check("synced-duplicate");
  await page.reload();
  assert.match(await page.locator("#door-count").textContent(), /3 of 3 checked in/);
  await door.check("synced-counts");

  await guest.page.goto(bookingUrl);
  await guest.page.getByText("Checked in").first().waitFor();
  await guest.check("ticket-checked-in");
});
