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


# ---- SMTP sinks as next hops (relay tests, benchmarks) ----
# smtpsink.py (scriptable, stores envelope + exact body) or Postfix's
# smtp-sink (fast, dumps to files), each run inside the lab namespace
# (netns=True) or in ours (netns=False, e.g. on loopback).

SINK_PY = os.path.join(ROOT, "tests", "system", "smtpsink.py")


def _netns_prefix(netns):
    return ["ip", "netns", "exec", "sluice-lab"] if netns else []


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


class _SinkBase:
    """a sink process we started: start() waits until it listens, stop()
    ends exactly that process (SIGTERM, then SIGKILL after 10 s)"""
    proc = None
    pid = None

    def stop(self, timeout=10):
        if self.proc is None:
            return None
        import signal
        import time
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        rc, self.proc = self.proc.returncode, None
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SinkProc(_SinkBase):
    """tests/system/smtpsink.py; messages(), stats(), control(...)"""

    def __init__(self, out_dir, port=2525, args=(), netns=True, host="0.0.0.0"):
        self.dir, self.port, self.args, self.netns, self.host = out_dir, port, list(args), netns, host
        os.makedirs(out_dir, exist_ok=True)

    def start(self, timeout=15):
        import time
        out = os.path.join(self.dir, "sink.out")
        start_at = os.path.getsize(out) if os.path.exists(out) else 0
        with open(out, "ab") as f:
            self.proc = subprocess.Popen(
                _netns_prefix(self.netns) + ["/usr/bin/python3", SINK_PY, "--host", self.host,
                                             "--port", str(self.port), "--dir", self.dir, *self.args],
                stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with open(out, "rb") as f:
                f.seek(start_at)
                m = re.search(rb"smtpsink: ready pid=(\d+) port=(\d+)", f.read())
            if m:
                self.pid = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError("smtpsink did not start: %s" % open(out, "rb").read()[start_at:][-2000:])

    def messages(self):
        from smtpsink import read_messages
        return read_messages(self.dir)

    def stats(self):
        from smtpsink import read_stats
        return read_stats(self.dir)

    def control(self, **kw):
        """behaviour from the next connection on (smtpsink.py docstring)"""
        from smtpsink import write_control
        write_control(self.dir, **kw)

    def log_tail(self, n=40):
        try:
            with open(os.path.join(self.dir, "sink.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def connections_logged(self):
        """connect lines in sink.log (all sink processes on this dir)"""
        try:
            with open(os.path.join(self.dir, "sink.log"), errors="replace") as f:
                return sum(1 for ln in f if " connect " in ln)
        except OSError:
            return 0


class PostfixSink(_SinkBase):
    """Postfix's smtp-sink (-c counters to OUT/counters.txt; with dump=True
    each message to OUT/dump/<time>.<random> via -d, headers X-Mail-Args,
    X-Rcpt-Args, a Received line, then the message as received)"""

    BIN = "/usr/sbin/smtp-sink"

    def __init__(self, out_dir, port=2525, args=(), netns=True, host="0.0.0.0", dump=True,
                 backlog=1024):
        self.dir, self.port, self.args, self.netns = out_dir, port, list(args), netns
        self.host, self.dump, self.backlog = host, dump, backlog
        os.makedirs(os.path.join(out_dir, "dump"), exist_ok=True)
        os.chmod(out_dir, 0o755)     # smtp-sink writes as nobody (parents must be 0755 too)
        import shutil
        shutil.chown(os.path.join(out_dir, "dump"), "nobody")

    def start(self, timeout=15):
        import time
        cmd = [self.BIN, "-u", "nobody", "-c", "-m", "1000", *self.args]
        if self.dump:
            cmd += ["-d", os.path.join(self.dir, "dump", "%Y%m%d%H%M%S.")]
        cmd += ["%s:%d" % (self.host, self.port), str(self.backlog)]
        self.counters_file = os.path.join(self.dir, "counters.txt")
        with open(self.counters_file, "wb") as f:
            self.proc = subprocess.Popen(_netns_prefix(self.netns) + cmd, stdout=f,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("smtp-sink exited: %s" % open(self.counters_file, "rb").read()[-2000:])
            ss = subprocess.run(_netns_prefix(self.netns) + ["ss", "-Hltn", "sport", "= :%d" % self.port],
                                capture_output=True, text=True, timeout=10).stdout
            if ss.strip():
                return self
            time.sleep(0.05)
        self.stop()
        raise AssertionError("smtp-sink does not listen on port %d" % self.port)

    def counters(self):
        """the last 'sess=N quit=N mesg=N' line as a dict ({} before any)"""
        try:
            data = open(self.counters_file, "rb").read().decode(errors="replace")
        except OSError:
            return {}
        last = [x for x in re.split(r"[\r\n]", data) if "mesg=" in x]
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", last[-1])} if last else {}

    def dumps(self):
        """[(path, mtime_ns)] of the dump files, oldest first"""
        d = os.path.join(self.dir, "dump")
        out = []
        for e in os.scandir(d):
            if e.is_file():
                out.append((e.path, e.stat().st_mtime_ns))
        return sorted(out, key=lambda x: x[1])
