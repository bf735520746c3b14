// What every page the journeys visit must satisfy, and the screenshots of their steps:
// no console errors, no failed requests, a label for every form field, no horizontal
// scrolling at a 375-pixel-wide viewport, and no axe-core violations (WCAG 2.1 A/AA and
// best practices) at either width; and every page of the site itself carries the footer with
// the organiser and the links to the imprint, privacy notice, terms and refund policy. A `Watch` follows one browser page from its
// opening; `check()` takes the screenshots of a step and fails on whatever went wrong since
// the previous step.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * axe-core's violations on the page as it is now, one line each. The script is evaluated
 * through the DevTools protocol, so the site's Content-Security-Policy (which refuses inline
 * scripts) stays in force for the page itself. Mails opened on about:blank are not site
 * pages and are skipped.
 */
async function axeViolations(page) {
  if (page.url() === "about:blank") return [];
  const found = await page.evaluate(async (source) => {
    if (!window.axe) (0, eval)(source);
    const result = await window.axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] },
      resultTypes: ["violations"],
    });
    return result.violations.map(
      (v) => `${v.id} (${v.impact}): ${v.help}; ${v.nodes.map((n) => n.target.join(" ")).slice(0, 4).join(", ")}`,
    );
  }, axeSource);
  return found;
}

export const DESKTOP = { width: 1280, height: 900 };
export const PHONE_WIDTH = 375;

export class Watch {
  constructor(page, journey, outDir, siteOrigin = null) {
    this.page = page;
    this.siteOrigin = siteOrigin;
    this.journey = journey;
    this.outDir = outDir;
    this.step = 0;
    this.console = [];
    this.problems = [];
    this.allowed = new Set();
    mkdirSync(outDir, { recursive: true });
    page.on("console", (msg) => {
      this.console.push(`[${msg.type()}] ${msg.text()} (${page.url()})`);
      if (msg.type() !== "error") return;
      // Chromium also logs each 4xx/5xx response; one the journey expects is no error.
      const status = /^Failed to load resource: the server responded with a status of (\d+)/.exec(msg.text());
      const where = msg.location()?.url;
      if (status && where && this.allowed.has(`${status[1]} ${new URL(where).pathname}`)) return;
      this.problems.push(`console error on ${page.url()}: ${msg.text()}`);
    });
    page.on("pageerror", (err) => {
      this.console.push(`[pageerror] ${err.message} (${page.url()})`);
      this.problems.push(`uncaught exception on ${page.url()}: ${err.message}`);
    });
    page.on("requestfailed", (req) => {
      const why = req.failure()?.errorText ?? "failed";
      // Leaving a page closes its live-availability stream: the browser reports that as an
      // aborted request, which is not a failure of the site.
      if (req.resourceType() === "eventsource" && why === "net::ERR_ABORTED") return;
      // A download is handed to the download manager, which Chromium reports as aborted.
      if (why === "net::ERR_ABORTED" && this.allowed.has(`abort ${req.url()}`)) return;
      this.problems.push(`request failed: ${req.method()} ${req.url()} (${why})`);
    });
    page.on("response", (res) => {
      const status = res.status();
      if (status < 400) return;
      const key = `${status} ${new URL(res.url()).pathname}`;
      if (this.allowed.has(key)) return;
      this.problems.push(`request failed: ${res.request().method()} ${res.url()} answered ${status}`);
    });
  }

  /** Lets the next responses for `path` answer `status` (a form sent back with errors, say). */
  expectStatus(status, path) {
    this.allowed.add(`${status} ${path}`);
  }

  /** Lets a request for `url` end as aborted (downloads). */
  expectAbort(url) {
    this.allowed.add(`abort ${url}`);
  }

  /**
   * One step of a journey: full-page screenshots at desktop and phone width under
   * target/e2e/, then the page checks. Throws with everything found wrong.
   */
  async check(name) {
    const page = this.page;
    await page.waitForLoadState("load");
    this.step += 1;
    const base = join(this.outDir, `${this.journey}-${String(this.step).padStart(2, "0")}-${name}`);
    await page.screenshot({ path: `${base}.png`, fullPage: true });

    const unlabelled = await page.evaluate(() => {
      const fields = document.querySelectorAll(
        "input:not([type=hidden]):not([type=submit]):not([type=button]):not([type=reset]):not([type=image]), select, textarea",
      );
      const bad = [];
      for (const f of fields) {
        const fromLabels = Array.from(f.labels || []).some((l) => l.textContent.trim() !== "");
        const fromAria =
          (f.getAttribute("aria-label") || "").trim() !== "" ||
          (f.getAttribute("aria-labelledby") || "")
            .split(/\s+/)
            .some((id) => id && document.getElementById(id)?.textContent.trim());
        if (!fromLabels && !fromAria) bad.push(f.outerHTML.slice(0, 120));
      }
      return bad;
    });
    for (const f of unlabelled) this.problems.push(`field without a label on ${page.url()}: ${f}`);
    for (const v of await axeViolations(page)) this.problems.push(`axe on ${page.url()}: ${v}`);
    if (this.siteOrigin && page.url().startsWith(`${this.siteOrigin}/`)) {
      const legal = await page.evaluate(() =>
        Array.from(document.querySelectorAll('footer nav[aria-label="Legal"] a')).map((a) => a.getAttribute("href")),
      );
      for (const href of ["/legal/imprint", "/legal/privacy", "/legal/terms", "/legal/refunds", "/find-booking"]) {
        if (!legal.includes(href)) this.problems.push(`no footer link to ${href} on ${page.url()}`);
      }
    }

    const viewport = page.viewportSize() ?? DESKTOP;
    await page.setViewportSize({ width: PHONE_WIDTH, height: 800 });
    const overflow = await page.evaluate(() => {
      const doc = document.documentElement;
      if (doc.scrollWidth <= doc.clientWidth) return null;
      const wide = [];
      for (const el of document.body.querySelectorAll("*")) {
        const r = el.getBoundingClientRect();
        if (r.right > doc.clientWidth + 1 && wide.length < 5) {
          wide.push(`<${el.tagName.toLowerCase()} class="${el.className}"> right=${Math.round(r.right)}`);
        }
      }
      return { scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth, wide };
    });
    await page.screenshot({ path: `${base}-375px.png`, fullPage: true });
    for (const v of await axeViolations(page)) this.problems.push(`axe at ${PHONE_WIDTH}px on ${page.url()}: ${v}`);
    await page.setViewportSize(viewport);
    if (overflow) {
      this.problems.push(
        `horizontal scrolling at ${PHONE_WIDTH}px on ${page.url()}: ${overflow.scrollWidth} > ${overflow.clientWidth}; ${overflow.wide.join(", ")}`,
      );
    }
    this.assertClean();
  }

  /** Fails on console errors and failed requests seen so far (also called at the end). */
  assertClean() {
    if (this.problems.length) {
      const list = this.problems.splice(0);
      throw new Error(`page checks failed:\n  ${list.join("\n  ")}`);
    }
  }

  /** After a failure: the page's screenshot and console log under target/e2e/. */
  async saveFailure(tag = "") {
    const base = join(this.outDir, `${this.journey}${tag}-FAILED`);
    writeFileSync(`${base}-console.log`, `${this.console.join("\n")}\n`);
    try {
      await this.page.screenshot({ path: `${base}.png`, fullPage: true });
    } catch (e) {
      writeFileSync(`${base}-screenshot-error.txt`, String(e));
    }
  }
}
