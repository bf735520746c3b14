// A private-link guest in a real browser: the event is reached only through its secret link. Run by scripts/test-e2e with the
// stack and checks of lib/harness.mjs; screenshots (desktop and 375 px) go to target/e2e/.
import assert from "node:assert/strict";

import {
  stack,
  journey,
  reserve,
  fillDetails,
  goToPayPal,
  approveAtPayPal,
  unique,
} from "./lib/harness.mjs";

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
