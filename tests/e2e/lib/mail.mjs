// Reads the mail the SMTP server (aiosmtpd) stored, decoded by tests/smtp/dump.py, and waits
// for the messages a journey expects.
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";

const dump = fileURLToPath(new URL("../../smtp/dump.py", import.meta.url));

/** Every message received so far: [{to, subject, text, html, attachments, message_id}]. */
export function allMail(maildir, python = process.env.SMTP_PYTHON || "python3") {
  return JSON.parse(execFileSync(python, [dump, maildir], { encoding: "utf8" }));
}

/** Waits until `count` messages match `pred` and returns them. */
export async function waitForMail(maildir, pred, count = 1, timeoutMs = 30000) {
  const started = Date.now();
  for (;;) {
    const found = allMail(maildir).filter(pred);
    if (found.length >= count) return found;
    if (Date.now() - started > timeoutMs) {
      const subjects = allMail(maildir).map((m) => `${m.to}: ${m.subject}`);
      throw new Error(`expected ${count} matching mail(s), found ${found.length}; received:\n  ${subjects.join("\n  ")}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The href of the first link in `html` whose URL contains `part`. */
export function linkIn(html, part) {
  for (const m of html.matchAll(/href="([^"]+)"/g)) {
    const url = m[1].replaceAll("&amp;", "&");
    if (url.includes(part)) return url;
  }
  throw new Error(`no link containing ${part} in the mail`);
}
