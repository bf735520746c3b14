// Door staff in a real browser: checking tickets in. Run by scripts/test-e2e with the
// stack and checks of lib/harness.mjs; screenshots (desktop and 375 px) go to target/e2e/.
import assert from "node:assert/strict";

import { waitForMail, linkIn } from "./lib/mail.mjs";

import {
  stack,
  journey,
  reserve,
  fillDetails,
  adminNav,
  adminLogin,
  unique,
} from "./lib/harness.mjs";

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
  // No password on screen: the account is invited by mail and chooses its own.
  await admin.page.getByText("An invite to choose a password was mailed").waitFor();
  await admin.check("staff-created");

  // At the door: typed code, then the same code again.
  const door = await person("door");
  const [invite] = await waitForMail(stack.maildir, (m) => m.to.includes(doorEmail) && m.subject.startsWith("Your account at"));
  const password = `door-${unique()}-${unique()}`;
  await door.page.goto(linkIn(invite.html, "/admin/set-password/"));
  await door.check("set-password");
  await door.page.getByLabel("New password (12 characters or more)").fill(password);
  await door.page.getByLabel("The same password again").fill(password);
  await door.page.getByRole("button", { name: "Set my password" }).click();
  await door.page.getByText("Your password is set").waitFor();
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
