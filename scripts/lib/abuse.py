"""The abuse benchmark's load (run by scripts/abuse): hostile traffic from loopback addresses
only, bounded in count and time, while a probe times /healthz. Prints a line per phase and
ends with `abuse: rss_start_mib=<x> rss_max_mib=<x> healthz_p99_ms=<x>`.

Clients come from distinct addresses of 127.0.0.0/8, as an attacker with many addresses
would, so per-client limits do not simply turn the traffic away before it costs anything.
"""

import asyncio
import os
import re
import sys
import time
import urllib.parse

PORT = int(sys.argv[1])
PID = int(sys.argv[2])
EVENT = sys.argv[3] if len(sys.argv) > 3 else "/events/midwinter-jazz-night"
HOST = "127.0.0.1"


def rss_mib(field="VmRSS"):
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise SystemExit("the app is gone")


async def connect(src):
    return await asyncio.open_connection(HOST, PORT, local_addr=(src, 0))


async def read_response(reader):
    """Reads one HTTP/1.1 response with a Content-Length body; (status, headers, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.setdefault(k.strip().lower(), []).append(v.strip())
    length = int(headers.get("content-length", ["0"])[0])
    body = await reader.readexactly(length) if length else b""
    return status, headers, body


async def request(reader, writer, method, path, body=b"", headers=()):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{PORT}"]
    lines += list(headers)
    if body:
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()
    return await read_response(reader)


class Probe:
    """Times GET /healthz every 50 ms on its own keep-alive connection."""

    def __init__(self):
        self.samples = []
        self.failures = 0
        self.running = True

    async def run(self):
        conn = None
        while self.running:
            try:
                if conn is None:
                    conn = await connect("127.0.0.254")
                start = time.perf_counter()
                status, _, _ = await asyncio.wait_for(request(*conn, "GET", "/healthz"), 5)
                elapsed = (time.perf_counter() - start) * 1000
                if status == 200:
                    self.samples.append(elapsed)
                else:
                    self.failures += 1
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                self.failures += 1
                conn = None
            await asyncio.sleep(0.05)

    def p99(self):
        if not self.samples:
            return float("nan")
        s = sorted(self.samples)
        return s[min(len(s) - 1, int(len(s) * 0.99))]


async def login_token(src):
    """A login form's CSRF token and its cookie, fetched from `src`."""
    reader, writer = await connect(src)
    status, headers, body = await request(reader, writer, "GET", "/admin/login")
    writer.close()
    token = re.search(rb'name="csrf" value="([^"]+)"', body).group(1).decode()
    cookie = "; ".join(c.split(";", 1)[0] for c in headers.get("set-cookie", []))
    return token, cookie


async def login_posts(sources, emails, password, parallel):
    """Posts the login form once per email, spread over `sources`; counts statuses."""
    tokens = {src: await login_token(src) for src in sources}
    queue = asyncio.Queue()
    for n, email in enumerate(emails):
        queue.put_nowait((sources[n % len(sources)], email))
    counts = {}

    async def worker():
        conns = {}
        while not queue.empty():
            src, email = queue.get_nowait()
            token, cookie = tokens[src]
            body = urllib.parse.urlencode({"csrf": token, "email": email, "password": password}).encode()
            for _ in range(2):
                try:
                    if src not in conns:
                        conns[src] = await connect(src)
                    status, headers, _ = await request(*conns[src], "POST", "/admin/login", body, [f"Cookie: {cookie}"])
                    counts[status] = counts.get(status, 0) + 1
                    if "close" in headers.get("connection", [""])[0]:
                        conns.pop(src)[1].close()
                    break
                except (OSError, asyncio.IncompleteReadError):
                    conns.pop(src, None)
        for _, w in conns.values():
            w.close()

    await asyncio.gather(*(worker() for _ in range(parallel)))
    return counts


async def slow_connections(count, seconds):
    """`count` clients that trickle a request header one byte a second; how many the server
    cut off before `seconds`."""

    async def one(n):
        try:
            reader, writer = await connect(f"127.0.3.{n % 50 + 1}")
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            await writer.drain()
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                await asyncio.sleep(1)
                writer.write(b"X")
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), 0.01) == b"":
                        return True
                except asyncio.TimeoutError:
                    pass
            writer.close()
            return False
        except (OSError, ConnectionError):
            return True

    results = await asyncio.gather(*(one(n) for n in range(count)))
    return sum(results)


async def streams(count, seconds):
    """`count` availability streams held open for `seconds`; (opened, refused, events)."""
    opened = refused = events = 0

    async def one(n):
        nonlocal opened, refused, events
        try:
            reader, writer = await connect(f"127.0.{4 + n // 250}.{n % 250 + 1}")
            writer.write(f"GET {EVENT}/availability HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            if not head.startswith(b"HTTP/1.1 200"):
                refused += 1
                writer.close()
                return
            opened += 1
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    chunk = await asyncio.wait_for(reader.read(4096), max(0.1, end - time.monotonic()))
                except asyncio.TimeoutError:
                    continue
                if not chunk:
                    break
                events += chunk.count(b"\n\n")
            writer.close()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            refused += 1

    await asyncio.gather(*(one(n) for n in range(count)))
    return opened, refused, events


async def main():
    rss_start = rss_mib()
    print(f"start: rss={rss_start:.1f} MiB")
    probe = Probe()
    probe_task = asyncio.create_task(probe.run())
    await asyncio.sleep(1)

    t = time.monotonic()
    sources = [f"127.0.1.{n}" for n in range(1, 101)]
    counts = await login_posts(sources, ["admin@example.com"] * 300, "not the password", 16)
    print(f"300 failed logins: {counts} in {time.monotonic() - t:.1f}s; rss={rss_mib():.1f} MiB")

    t = time.monotonic()
    pad = "x" * 4000
    emails = [f"{n}-{pad}@example.com" for n in range(20_000)]
    counts = await login_posts([f"127.0.2.{n}" for n in range(1, 21)], emails, "guess", 32)
    print(f"20000 distinct-email logins: {counts} in {time.monotonic() - t:.1f}s; rss={rss_mib():.1f} MiB")

    t = time.monotonic()
    cut = await slow_connections(200, 25)
    print(f"200 slow connections: {cut} cut off within 25s; rss={rss_mib():.1f} MiB")

    t = time.monotonic()
    opened, refused, events = await streams(500, 10)
    print(f"500 streams: {opened} open, {refused} refused, {events} events in 10s; rss={rss_mib():.1f} MiB")

    probe.running = False
    await probe_task
    rss_max = rss_mib("VmHWM")
    print(f"healthz: {len(probe.samples)} probes, {probe.failures} failed, p99={probe.p99():.1f} ms")
    print(f"abuse: rss_start_mib={rss_start:.1f} rss_max_mib={rss_max:.1f} healthz_p99_ms={probe.p99():.1f}")


if __name__ == "__main__":
    asyncio.run(main())
