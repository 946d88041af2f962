#!/usr/bin/python3
"""accept_client.py - closed-loop SMTP load with per-message timing.

    accept_client.py HOST PORT SESSIONS SECONDS SIZE [RCPT]

SESSIONS concurrent sessions (asyncio), each sending messages one after the
other for SECONDS (EHLO once; MAIL, RCPT, DATA, body, '.' per message; a new
connection after 100 messages). For every message it times the interval
from writing the last byte of the end of data ("\\r\\n.\\r\\n") to reading
the complete 250 reply. Prints one JSON line: messages, errors, seconds,
rate, p50_ms, p90_ms, p99_ms, max_ms. Python's own event-loop delay is part
of the figure (the client shares the machine), so these are upper bounds.
"""
import asyncio
import json
import sys
import time


async def reply(r):
    while True:
        line = await r.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return int(line[:3]), line


async def session(host, port, end, body, rcpt, lat, errs):
    while time.monotonic() < end:
        try:
            r, w = await asyncio.open_connection(host, port)
            code, _ = await reply(r)
            w.write(b"EHLO bench.lab.test\r\n")
            code, _ = await reply(r)
            for _ in range(100):
                if time.monotonic() >= end:
                    break
                w.write(b"MAIL FROM:<bench@client.test>\r\n")
                c1, _ = await reply(r)
                w.write(b"RCPT TO:<" + rcpt + b">\r\n")
                c2, _ = await reply(r)
                w.write(b"DATA\r\n")
                c3, _ = await reply(r)
                if (c1, c2, c3) != (250, 250, 354):
                    errs.append((c1, c2, c3))
                    w.write(b"RSET\r\n")
                    await reply(r)
                    continue
                w.write(body)
                await w.drain()
                t0 = time.perf_counter()
                c4, _ = await reply(r)
                t1 = time.perf_counter()
                if c4 == 250:
                    lat.append(t1 - t0)
                else:
                    errs.append(c4)
            w.write(b"QUIT\r\n")
            await reply(r)
            w.close()
        except (OSError, ConnectionError) as e:
            errs.append(str(e))
            await asyncio.sleep(0.05)


def pct(xs, p):
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000


async def main():
    host, port, sess, secs, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        float(sys.argv[4]), int(sys.argv[5])
    rcpt = (sys.argv[6] if len(sys.argv) > 6 else "bench@bench.test").encode()
    line = b"x" * 76 + b"\r\n"
    body = b"Subject: bench\r\n\r\n" + line * max(1, size // len(line)) + b".\r\n"
    lat, errs = [], []
    t = time.monotonic()
    end = t + secs
    await asyncio.gather(*(session(host, port, end, body, rcpt, lat, errs) for _ in range(sess)))
    el = time.monotonic() - t
    lat.sort()
    print(json.dumps({"messages": len(lat), "errors": len(errs), "first_errors": [str(e) for e in errs[:3]],
                      "seconds": round(el, 3), "rate": round(len(lat) / el, 1),
                      "p50_ms": pct(lat, 0.50), "p90_ms": pct(lat, 0.90),
                      "p99_ms": pct(lat, 0.99), "max_ms": lat[-1] * 1000 if lat else None}))


asyncio.run(main())
