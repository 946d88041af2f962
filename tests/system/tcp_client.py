#!/usr/bin/python3
"""tcp_client - Linux-stack TCP peer for the lab (run inside the namespace).

Every mode is bounded in count and time and prints one JSON object.

  bulk HOST PORT BYTES         stream random bytes to an echo service, read
                               them back, compare SHA-256 (byte-exact)
  concurrent HOST PORT N SIZE  open N connections at once, each sends SIZE
                               bytes and must get them echoed, then close
  sequential HOST PORT N       N short connections one after another
                               (connect, 16 bytes echoed, close)
  echo-once HOST PORT          one connection, 100 bytes echoed
  echo-server PORT             Linux echo server on loopback (for the bench),
                               stops after --max-seconds
"""
import errno
import hashlib
import json
import os
import selectors
import socket
import sys
import threading
import time


def out(**kw):
    print(json.dumps(kw), flush=True)


def bulk(host, port, total, deadline):
    s = socket.create_connection((host, port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    h_out, h_in = hashlib.sha256(), hashlib.sha256()
    received = 0
    err = []

    def reader():
        nonlocal received
        try:
            while received < total:
                b = s.recv(1 << 16)
                if not b:
                    break
                h_in.update(b)
                received += len(b)
        except Exception as e:  # reported below
            err.append(repr(e))

    t = threading.Thread(target=reader, daemon=True)
    t0 = time.monotonic()
    t.start()
    sent = 0
    chunk = os.urandom(1 << 20)
    while sent < total and time.monotonic() < deadline:
        n = min(len(chunk), total - sent)
        # vary the content so a misplaced segment cannot hash equal
        piece = chunk[:n] if (sent >> 20) % 2 == 0 else chunk[::-1][:n]
        h_out.update(piece)
        s.sendall(piece)
        sent += n
    s.shutdown(socket.SHUT_WR)
    t.join(max(1.0, deadline - time.monotonic()))
    secs = time.monotonic() - t0
    s.close()
    out(mode="bulk", sent=sent, received=received,
        match=(sent == total and received == total and
               h_out.digest() == h_in.digest()),
        seconds=round(secs, 3),
        mbytes_per_s=round(received / secs / 1e6, 2), errors=err)


def concurrent(host, port, n, size, deadline):
    sel = selectors.DefaultSelector()
    conns = {}
    payload = os.urandom(size)
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((host, port))
        conns[s] = {"sent": 0, "got": b"", "ok": False}
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    done = failed = 0
    why = {}                      # failure reason -> count

    def fail(reason):
        nonlocal failed
        failed += 1
        why[reason] = why.get(reason, 0) + 1
    while done + failed < n and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=0.5):
            s, st = key.fileobj, conns[key.fileobj]
            try:
                if ev & selectors.EVENT_WRITE and st["sent"] < size:
                    st["sent"] += s.send(payload[st["sent"]:])
                    if st["sent"] == size:
                        sel.modify(s, selectors.EVENT_READ)
                if ev & selectors.EVENT_READ:
                    b = s.recv(65536)
                    if not b:
                        raise ConnectionError("early EOF")
                    st["got"] += b
                    if len(st["got"]) >= size:
                        st["ok"] = st["got"] == payload
                        if st["ok"]:
                            done += 1
                        else:
                            fail("data mismatch")
                        sel.unregister(s)
                        s.close()
            except (ConnectionError, OSError) as e:
                fail("%s after %d sent, %d received" % (
                    type(e).__name__ if not getattr(e, "errno", None)
                    else errno.errorcode.get(e.errno, e.errno),
                    -1 if st["sent"] < size else size, len(st["got"])))
                sel.unregister(s)
                s.close()
    for s in list(sel.get_map().values()):
        s.fileobj.close()
    out(mode="concurrent", n=n, done=done, failed=failed,
        timed_out=n - done - failed, why=why)


def sequential(host, port, n, deadline):
    ok = failed = 0
    err = None
    t0 = time.monotonic()
    for i in range(n):
        if time.monotonic() > deadline:
            break
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                msg = b"%015d\n" % i
                s.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    b = s.recv(64)
                    if not b:
                        break
                    got += b
                if got == msg:
                    ok += 1
                else:
                    failed += 1
        except OSError as e:
            failed += 1
            err = repr(e)
    secs = time.monotonic() - t0
    out(mode="sequential", n=n, ok=ok, failed=failed, last_error=err,
        conns_per_s=round(ok / secs, 1))


def echo_once(host, port):
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            msg = os.urandom(100)
            s.sendall(msg)
            got = b""
            while len(got) < 100:
                b = s.recv(100)
                if not b:
                    break
                got += b
            out(mode="echo-once", ok=got == msg)
    except OSError as e:
        out(mode="echo-once", ok=False, error=repr(e))


def echo_server(port, max_seconds):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    ls.settimeout(1)
    end = time.monotonic() + max_seconds

    def serve(c):
        with c:
            while True:
                b = c.recv(1 << 16)
                if not b:
                    return
                c.sendall(b)
    while time.monotonic() < end:
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def main(argv):
    max_seconds = 300.0
    if "--max-seconds" in argv:
        i = argv.index("--max-seconds")
        max_seconds = float(argv[i + 1])
        del argv[i:i + 2]
    deadline = time.monotonic() + max_seconds
    mode = argv[1]
    if mode == "bulk":
        bulk(argv[2], int(argv[3]), int(argv[4]), deadline)
    elif mode == "concurrent":
        concurrent(argv[2], int(argv[3]), int(argv[4]), int(argv[5]),
                   deadline)
    elif mode == "sequential":
        sequential(argv[2], int(argv[3]), int(argv[4]), deadline)
    elif mode == "echo-once":
        echo_once(argv[2], int(argv[3]))
    elif mode == "echo-server":
        echo_server(int(argv[2]), max_seconds)
    else:
        sys.exit("tcp_client: unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
