// Event media (issue 15) in a real browser: an admin gives a new event an image (a PNG drawn
// in the page), its alt text (required: first refused next to the field), the venue's
// address; the public event page shows the image (it loads: naturalWidth > 0) with its
// srcset, the OpenStreetMap link built from the address, and the organiser's contact; the
// listing shows the thumbnail. Run by scripts/test-e2e with the stack and checks of
// lib/harness.mjs; screenshots (desktop and 375 px) go to target/e2e/.
import assert from "node:assert/strict";

import { stack, journey, adminNav, adminLogin, unique } from "./lib/harness.mjs";

/** A 1200 × 800 PNG drawn on a canvas in `page` (a gradient with a few shapes). */
async function drawPng(page) {
  const base64 = await page.evaluate(() => {
    const canvas = document.createElement("canvas");
    canvas.width = 1200;
    canvas.height = 800;
    const ctx = canvas.getContext("2d");
    const g = ctx.createLinearGradient(0, 0, 1200, 800);
    g.addColorStop(0, "#3b3bd6");
    g.addColorStop(1, "#f0a030");
    ctx.fillStyle = g;
    ctx.fillRect(0, 0, 1200, 800);
    ctx.fillStyle = "#fff";
    for (let i = 0; i < 6; i++) {
      ctx.beginPath();
      ctx.arc(150 + i * 180, 400 + (i % 2 ? 120 : -120), 70, 0, Math.PI * 2);
      ctx.fill();
    }
    return canvas.toDataURL("image/png").split(",")[1];
  });
  return Buffer.from(base64, "base64");
}

/** The one image `selector` finds on the page has loaded with real pixels. */
async function loaded(page, selector) {
  const img = page.locator(selector);
  await img.waitFor();
  await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
  return img.evaluate((el) => ({ natural: el.naturalWidth, src: el.currentSrc }));
}

journey("5-media", async ({ person }) => {
  const admin = await person("admin");
  const page = admin.page;
  const title = `Lantern Walk ${unique()}`;
  const slug = title.toLowerCase().replaceAll(" ", "-");
  const address = "Müller & Söhne Saal\nKöpenicker Straße 1\n10179 Berlin";

  await adminLogin(admin, stack.admin.email, stack.admin.password);
  await adminNav(page, "Events").click();
  await page.getByRole("link", { name: "New event" }).click();
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Slug (web address)").fill(slug);
  await page.getByLabel("Venue", { exact: true }).fill("Müller & Söhne");
  await page.getByLabel("Street address").fill(address);
  await page.getByLabel("Time zone (IANA)").fill("Europe/Berlin");
  const day = new Date(Date.now() + 30 * 86400000).toISOString().slice(0, 10);
  await page.getByLabel("Starts (local time)").fill(`${day}T18:00`);
  await page.getByLabel("Ends (local time)").fill(`${day}T21:00`);
  await page.getByLabel("Capacity (all ticket types together)").fill("80");
  await page.getByLabel("Visibility").selectOption("draft");
  await page.getByLabel("Description", { exact: true }).fill("Lanterns along the river.");
  const png = await drawPng(page);
  await page.getByLabel("Image (optional)").setInputFiles({ name: "lanterns.png", mimeType: "image/png", buffer: png });
  await admin.check("new-event-with-image");

  // Without alt text the image is refused: the message is next to the field, the rest kept.
  admin.expectStatus(422, "/admin/events");
  await page.getByRole("button", { name: "Save event" }).click();
  await page.locator("#ev-image_alt-error").waitFor();
  assert.match(await page.locator("#ev-image_alt-error").textContent(), /Describe the image/);
  assert.match(await page.locator("#ev-image-error").textContent(), /Choose the image again/);
  assert.equal(await page.getByLabel("Title").inputValue(), title);
  assert.equal(await page.getByLabel("Street address").inputValue(), address);
  await admin.check("alt-text-required");

  await page.getByLabel("Alt text: what the image shows").fill("White lanterns over a blue and orange evening sky");
  await page.getByLabel("Image (optional)").setInputFiles({ name: "lanterns.png", mimeType: "image/png", buffer: png });
  await page.getByRole("button", { name: "Save event" }).click();
  await page.waitForURL(/\/admin\/events\/\d+$/);
  const preview = await loaded(page, ".image-preview img");
  assert.ok(preview.natural > 0);
  assert.match(preview.src, /\/media\/[0-9a-f]{32}-480\.jpg$/);
  assert.ok(await page.getByLabel("Remove the image").isVisible());
  await admin.check("event-with-image");
  // issue 16: an event goes public only with a ticket type.
  const newType = page.locator("form", { has: page.getByRole("heading", { name: "Add a ticket type" }) });
  await newType.getByLabel("Name").fill("Walker");
  await newType.getByLabel(/^Price/).fill("8.00");
  await newType.getByLabel("Capacity").fill("80");
  await newType.getByRole("button", { name: "Add ticket type" }).click();
  await page.locator("form h3", { hasText: "Walker" }).waitFor();
  await page.getByRole("button", { name: "Publish" }).click();
  await page.getByText("Visibility: public").waitFor();

  // A visitor sees the image, the venue with its map link, and who to contact.
  const visitor = await person("visitor");
  const v = visitor.page;
  await v.goto(`${stack.baseUrl}/`);
  const thumb = await loaded(v, `.event-card:has-text("${title}") .card-thumb`);
  assert.match(thumb.src, /\/media\/[0-9a-f]{32}-480\.jpg$/);
  await visitor.check("listing-thumbnail");
  await v.getByRole("link", { name: new RegExp(title) }).click();
  await v.waitForURL(new RegExp(`/events/${slug}$`));
  const hero = await loaded(v, "img.event-image");
  assert.ok(hero.natural > 0);
  assert.match(hero.src, /\/media\/[0-9a-f]{32}-(480|960|1200)\.jpg$/);
  const img = v.locator("img.event-image");
  assert.equal(await img.getAttribute("alt"), "White lanterns over a blue and orange evening sky");
  assert.equal(await img.getAttribute("width"), "1200");
  assert.equal(await img.getAttribute("height"), "800");
  assert.match(await img.getAttribute("srcset"), /-480\.jpg 480w, .*-960\.jpg 960w, .*-1200\.jpg 1200w$/);

  const map = v.getByRole("link", { name: "Open in OpenStreetMap" });
  assert.equal(
    await map.getAttribute("href"),
    "https://www.openstreetmap.org/search?query=M%C3%BCller+%26+S%C3%B6hne+Saal%2C+K%C3%B6penicker+Stra%C3%9Fe+1%2C+10179+Berlin",
  );
  const place = v.locator(".event-place");
  assert.match(await place.innerText(), /Müller & Söhne\s+Müller & Söhne Saal\s+Köpenicker Straße 1\s+10179 Berlin/);
  const organiser = v.locator(".event-organiser");
  assert.match(await organiser.innerText(), /Organised by Beispiel Events GmbH — contact: kontakt@example\.org, \+49 30 1234567/);
  assert.equal(await organiser.getByRole("link", { name: "kontakt@example.org" }).getAttribute("href"), "mailto:kontakt@example.org");
  assert.equal(await organiser.getByRole("link", { name: "+49 30 1234567" }).getAttribute("href"), "tel:+49301234567");
  await visitor.check("event-page");

  // The image itself: a year-long immutable cache, its own type.
  const res = await v.request.get(hero.src);
  assert.equal(res.status(), 200);
  assert.equal(res.headers()["content-type"], "image/jpeg");
  assert.equal(res.headers()["cache-control"], "public, max-age=31536000, immutable");
});
