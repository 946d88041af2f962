"""Helpers for the SMTP system tests: a lab with the mail path, clients in
the lab namespace, and the queue read back with `sluice-stor queue-show`.

Clients: swaks and smtp-source run through `tests/lab exec`; Python clients
(smtplib, raw sockets) run in a thread that joined the lab's network
namespace with setns(2), so their sockets live there while pytest itself,
sluice-stor and tests/lab stay in the root namespace.
"""
import ctypes
import os
import re
import socket
import subprocess
import threading

from conftest import LAB, ROOT, lab_down, lab_up_env  # noqa: F401 (lab_down re-exported)

BUILD = os.environ.get("SLUICE_BUILD", os.path.join(ROOT, "build"))
STOR = os.path.join(BUILD, "storage", "sluice-stor")
NETNS = "/run/netns/sluice-lab"
CLONE_NEWNET = 0x40000000

QUEUED_RE = re.compile(r"^250[ -]2\.0\.0 Ok: queued as ([0-9A-Za-z]{13})\b", re.M)

# every lab in these tests: an open domain, one with listed users, a relay
# route to the peer, an AUTH user
DOMAIN = "lab.test"
USERS_DOMAIN = "users.test"
USER = "alice@users.test"
PASSWORD = "s3cret-lab"


class MailLab:
    def __init__(self, env):
        self.sluice = env["SLUICE_ADDR"]
        self.peer = env["PEER_ADDR"]
        self.state = env["SLUICE_STATE"]
        self.queue = os.path.join(self.state, "queue")
        self.log = env["SLUICE_LOG"]

    # ---- clients ----
    def exec(self, *cmd, timeout=300, check=True, input=None):
        r = subprocess.run([LAB, "exec", *cmd], capture_output=True,
                           timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError("lab exec %s failed (%d):\n%s\n%s" % (
                cmd, r.returncode, r.stdout[-3000:].decode(errors="replace"),
                r.stderr[-3000:].decode(errors="replace")))
        return r

    def swaks(self, *args, timeout=120):
        """swaks against sluiced; returns its transcript (str)"""
        r = self.exec("swaks", "--server", self.sluice, "--helo", "client.lab.test",
                      "--timeout", "30", *args, timeout=timeout, check=False)
        return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")

    # ---- queue ----
    def queue_list(self):
        r = subprocess.run([STOR, "queue-list", self.queue], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        out = {}
        for line in r.stdout.splitlines():
            qid, prio, sender, rcpts, size, state = line.split(" ")
            out[qid] = dict(prio=int(prio), sender=sender, size=int(size), state=state,
                            rcpts=[x.rsplit(":", 1)[0] for x in rcpts.split(",")])
        return out

    def queue_show(self, qid):
        """(envelope dict, body bytes) of one queued message"""
        r = subprocess.run([STOR, "queue-show", self.queue, qid], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, "queue-show %s: %s" % (qid, r.stderr)
        env = {"rcpt": []}
        for line in r.stdout.splitlines():
            k, _, v = line.partition(": ")
            if k == "rcpt":
                env["rcpt"].append(v.split(" ")[0])
            else:
                env[k] = v
        b = subprocess.run([STOR, "queue-show", self.queue, qid, "--body"],
                           capture_output=True, timeout=30)
        assert b.returncode == 0, b.stderr
        return env, b.stdout

    def check_queued(self, qid, sender, rcpts, body):
        """the message is queued with this envelope and exactly these body
        bytes after the trace header(s) sluiced prepends"""
        env, stored = self.queue_show(qid)
        assert env["sender"] == (sender or "<>"), (qid, env)
        assert sorted(env["rcpt"]) == sorted(rcpts), (qid, env)
        assert int(env["size"]) == len(stored)
        check_body(stored, body, qid)
        return env, stored


def check_body(stored, body, what=""):
    """stored == trace header lines + body, byte for byte"""
    assert stored.endswith(body), "%s: stored body does not end with the sent " \
        "bytes (stored %d bytes, sent %d)\nstored head: %r" % (
            what, len(stored), len(body), stored[:300])
    prefix = stored[:len(stored) - len(body)]
    # only complete header lines (Received:, continuation lines) in front
    assert prefix == b"" or prefix.endswith(b"\r\n"), (what, prefix[-200:])
    for line in prefix.split(b"\r\n")[:-1]:
        assert line.startswith((b"Received:", b" ", b"\t", b"Return-Path:")), \
            "%s: unexpected prepended line %r" % (what, line)


def mail_lab_up(*extra):
    """tests/lab up with the mail path; returns a MailLab"""
    env = lab_up_env("--domain", DOMAIN, "--domain", USERS_DOMAIN + ":alice,bob",
                     "--route", "relay.test=peer:2525",
                     "--user", USER + ":" + PASSWORD, *extra)
    assert "SLUICE_STATE" in env, "no mail path in this sluiced: %s" % env
    return MailLab(env)


def lab_cmd(*args, timeout=120):
    r = subprocess.run([LAB, *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, "tests/lab %s: %s%s" % (args, r.stdout, r.stderr)
    return r.stdout


# ---- running Python code inside the lab namespace ----

_libc = ctypes.CDLL(None, use_errno=True)


def _enter_lab_netns():
    fd = os.open(NETNS, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns(%s): %s" % (NETNS, os.strerror(e)))
    finally:
        os.close(fd)


class LabThread(threading.Thread):
    """run fn(*args) in a thread inside the lab namespace; .result()"""

    def __init__(self, fn, *args, **kw):
        super().__init__(daemon=True)
        self.fn, self.args, self.kw = fn, args, kw
        self.value = self.exc = None

    def run(self):
        try:
            _enter_lab_netns()
            self.value = self.fn(*self.args, **self.kw)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            self.exc = e

    def result(self, timeout=None):
        self.join(timeout)
        assert not self.is_alive(), "lab thread still running after %s s" % timeout
        if self.exc:
            raise self.exc
        return self.value


def in_lab(fn, *args, timeout=300, **kw):
    t = LabThread(fn, *args, **kw)
    t.start()
    return t.result(timeout)


# ---- a raw SMTP client (bytes exactly as given) ----

class Raw:
    """a line-level SMTP client over a plain socket (create inside the lab)"""

    def __init__(self, host, port=25, timeout=30):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def reply(self):
        """one (possibly multi-line) reply: (code, text)"""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                d = self.s.recv(65536)
                if not d:
                    raise ConnectionError("closed; have %r" % (self.buf + b"".join(lines)))
                self.buf += d
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode(errors="replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(lines[-1][:3]), "\n".join(lines)

    def cmd(self, line):
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True when the server closed (EOF) within timeout"""
        self.s.settimeout(timeout)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
                self.buf += d
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def qid_of(text):
    m = QUEUED_RE.search(text)
    assert m, "no '250 2.0.0 Ok: queued as ID' in %r" % text[-500:]
    return m.group(1)


def make_body(n, size, seed=0):
    """a deterministic CRLF body of about size bytes with dot-leading lines,
    8-bit octets and long lines; n makes each message unique"""
    import random
    rng = random.Random(n * 7919 + seed)
    lines = [b"From: <s%d@client.test>" % n, b"To: <r@lab.test>",
             b"Subject: lab message %d" % n, b"Message-Id: <%d.%d@client.test>" % (seed, n), b""]
    total = sum(len(x) + 2 for x in lines)
    kinds = [b".", b"..", b". dot", b"", b"\xc3\xa9t\xc3\xa9 8bit", b"From me"]
    while total < size:
        k = rng.randrange(8)
        if k < len(kinds):
            line = kinds[k] + b"%d" % rng.randrange(10 ** 6)
        else:
            line = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz .,-") for _ in range(rng.randrange(1, 200)))
        lines.append(line)
        total += len(line) + 2
    return b"\r\n".join(lines) + b"\r\n"
