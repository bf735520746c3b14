// Starts what the browser journeys run against, all on 127.0.0.1: a fresh database on the
// test PostgreSQL server (migrated and seeded with the demo data by the app's own `seed`
// command), an SMTP server (aiosmtpd) that stores mail in a maildir, the PayPal simulator,
// and the app itself. Everything is stopped and the database dropped by `stop()`.
import { fileURLToPath } from "node:url";
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { mkdirSync, openSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

const root = fileURLToPath(new URL("../../..", import.meta.url));

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/** The same server URL pointing at database `name` (keeps any ?host=... query). */
export function withDb(url, name) {
  const [base, query] = url.split("?", 2);
  return `${base.slice(0, base.lastIndexOf("/"))}/${name}${query ? `?${query}` : ""}`;
}

/** Runs one SQL statement with psql and returns its unaligned output. */
export function psql(url, sql) {
  return execFileSync("psql", [url, "-v", "ON_ERROR_STOP=1", "-qtAc", sql], {
    encoding: "utf8",
  }).trim();
}

async function waitFor(what, check, timeoutMs, child) {
  const started = Date.now();
  for (;;) {
    if (child && child.exitCode !== null) {
      throw new Error(`${what} exited with code ${child.exitCode} before it was ready`);
    }
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() - started > timeoutMs) throw new Error(`${what} was not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function portOpen(port) {
  return fetch(`http://127.0.0.1:${port}/`).then(
    () => true,
    () => false,
  );
}

function smtpOpen(port) {
  return new Promise((ok) => {
    import("node:net").then(({ connect }) => {
      const s = connect(port, "127.0.0.1");
      s.on("connect", () => {
        s.destroy();
        ok(true);
      });
      s.on("error", () => ok(false));
    });
  });
}

/**
 * Starts the whole stack. `opts.adminUrl` is an admin URL of the test PostgreSQL server,
 * `opts.binDir` holds the `ticketing` and `paypal-simulator` binaries, `opts.outDir` gets
 * the logs.
 */
export async function startStack({ adminUrl, binDir, outDir, python = "python3", tag = "stack" }) {
  // Each journey file runs its own stack: its logs and maildir are named after the file.
  outDir = join(outDir, tag);
  mkdirSync(outDir, { recursive: true });
  const children = [];
  const dbName = `e2e_${Date.now()}_${randomBytes(3).toString("hex")}`;
  psql(adminUrl, `CREATE DATABASE ${dbName}`);
  const databaseUrl = withDb(adminUrl, dbName);

  const [appPort, simPort, smtpPort] = [await freePort(), await freePort(), await freePort()];
  const baseUrl = `http://127.0.0.1:${appPort}`;
  const simUrl = `http://127.0.0.1:${simPort}`;
  const maildir = join(outDir, "maildir");
  rmSync(maildir, { recursive: true, force: true });
  for (const sub of ["tmp", "new", "cur"]) mkdirSync(join(maildir, sub), { recursive: true });

  const log = (name) => openSync(join(outDir, `${name}.log`), "w");
  const start = (name, cmd, args, env) => {
    const child = spawn(cmd, args, {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", log(name), log(`${name}.err`)],
    });
    children.push(child);
    return child;
  };

  const stop = async () => {
    for (const c of children.reverse()) {
      if (c.exitCode === null) {
        c.kill("SIGTERM");
        await new Promise((r) => {
          const t = setTimeout(() => {
            c.kill("SIGKILL");
            r();
          }, 5000);
          c.on("exit", () => {
            clearTimeout(t);
            r();
          });
        });
      }
    }
    try {
      psql(adminUrl, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    } catch (e) {
      console.error(`could not drop ${dbName}: ${e.message}`);
    }
  };

  try {
    const appEnv = {
      APP_ENV: "local",
      DATABASE_URL: databaseUrl,
      BIND_ADDRESS: "127.0.0.1",
      PORT: String(appPort),
      BASE_URL: baseUrl,
      SITE_NAME: "Tickets",
      LOG_LEVEL: "info",
      LOG_FORMAT: "pretty",
      HOLD_MINUTES: "15",
      HOLD_RATE_PER_MINUTE: "0",
      // Every journey's browser is one client (127.0.0.1): no per-client caps on streams
      // and held seats (tests/it/hoarding.rs tests them).
      MAX_STREAMS_PER_CLIENT: "0",
      MAX_SEATS_HELD_PER_CLIENT: "0",
      PAYPAL_MODE: "simulator",
      PAYPAL_API_BASE: simUrl,
      PAYPAL_TIMEOUT_SECONDS: "10",
      SMTP_HOST: "127.0.0.1",
      SMTP_PORT: String(smtpPort),
      SMTP_SECURITY: "none",
      MAIL_FROM: "tickets@example.test",
      TEMPLATE_DIR: "templates",
      STATIC_DIR: "static",
    };
    const seed = execFileSync(join(binDir, "ticketing"), ["seed"], {
      cwd: root,
      env: { ...process.env, ...appEnv },
      encoding: "utf8",
    });
    const admin = /^admin account: (\S+) \/ (\S+)/m.exec(seed);
    const privateLink = /^private event "[^"]+": (\S+)/m.exec(seed);
    if (!admin || !privateLink) throw new Error(`unexpected seed output:\n${seed}`);

    const smtp = start("smtp", python, ["-m", "aiosmtpd", "-n", "-l", `127.0.0.1:${smtpPort}`, "-c", "aiosmtpd.handlers.Mailbox", maildir], {});
    await waitFor("aiosmtpd (pip install aiosmtpd)", () => smtpOpen(smtpPort), 20000, smtp);

    const sim = start("paypal-simulator", join(binDir, "paypal-simulator"), [], {
      PORT: String(simPort),
      BIND_ADDRESS: "127.0.0.1",
      SIM_WEBHOOK_URL: `${baseUrl}/payments/paypal/webhook`,
    });
    await waitFor("the PayPal simulator", () => portOpen(simPort), 20000, sim);

    const app = start("app", join(binDir, "ticketing"), ["serve"], appEnv);
    await waitFor(
      "the app",
      async () => (await fetch(`${baseUrl}/healthz`)).ok,
      60000,
      app,
    );

    return {
      baseUrl,
      simUrl,
      databaseUrl,
      maildir,
      admin: { email: admin[1], password: admin[2] },
      privateLink: privateLink[1],
      sql: (q) => psql(databaseUrl, q),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
