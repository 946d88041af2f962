#!/usr/bin/python3
"""perf/bench relay - end-to-end relay: smtp-source -> server -> smtp-sink,
sluiced vs Postfix 3.7 relaying the same load to the same sink.

Everything but the servers runs in the lab namespace: Postfix's smtp-source
(the load) and Postfix's smtp-sink on 0.0.0.0:2525 (the next hop, every
message dumped with -d to a tmpfs directory, /dev/shm, so its arrival time
is the dump file's mtime). Servers, both durable:
  sluiced  the lab (TAP profile), queue on /var/tmp (ext4), durability full,
           bench.test a relay domain routed to peer:2525 (198.18.0.2),
           delivery defaults but max_conns_per_dest = 20 (Postfix's default
           destination concurrency)
  Postfix  3.7 from Debian, its own config dir and queue on /var/tmp,
           default durability (fsync per queue file), relay_domains =
           bench.test, transport bench.test -> smtp:[198.18.1.2]:2525 (the
           sink, reached over a second veth pair the bench creates:
           198.18.1.1 root namespace <-> 198.18.1.2 lab namespace)
Per cell (server, size, sessions):
  throughput  smtp-source -d -s SESSIONS -m M -l SIZE (M sized from a short
              warm-up run to ~RUN_S seconds); msgs/s = M / (last arrival at
              the sink - start of smtp-source); also the accept-side rate
              (M / smtp-source's wall time) and server CPU in cores
  delay       a paced client (this script, 'client' mode, in the namespace):
              LAT_RATE msgs/s over 10 sessions for LAT_S seconds, each with a
              unique Message-Id; delay = the sink's dump mtime minus the time
              the client read the 250 (both CLOCK_REALTIME on this machine);
              p50/p99 of that. (Not the mail logs' delay=, which counts from
              arrival and is defined differently by each server.)
Each cell waits until every message reached the sink (deadline 120 s) and
checks the Message-Ids are unique (no duplicate deliveries). Bounded: about
4-6 minutes; cleans up the sink, the veth pair, Postfix, the lab (only if
this bench started it) and its temp dirs, also on failure or ^C. Prints a
table and, last, one line starting "summary:".
"""
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SLUICE_BUILD", os.path.join(ROOT, "build"))
LAB = os.path.join(ROOT, "tests", "lab")
STOR = os.path.join(BUILD, "storage", "sluice-stor")
SINK_PY = os.path.join(ROOT, "tests", "system", "smtpsink.py")
NS = "sluice-lab"
VETH, VPEER = "sl-prb0", "sl-prb1"
PF_ADDR, PF_PEER = "198.18.1.1", "198.18.1.2"
SINK_PORT = 2525
SIZES = [int(x) for x in os.environ.get("BENCH_RELAY_SIZES", "1024,10240").split(",")]
SESSIONS = [int(x) for x in os.environ.get("BENCH_RELAY_SESSIONS", "20").split(",")]
RUN_S = float(os.environ.get("BENCH_RELAY_RUN_S", "6"))
LAT_S = float(os.environ.get("BENCH_RELAY_LAT_S", "4"))
LAT_RATE = float(os.environ.get("BENCH_RELAY_LAT_RATE", "100"))
MAX_MSGS = int(os.environ.get("BENCH_RELAY_MAX_MSGS", "20000"))
DRAIN_S = 120
BUDGET_S = float(os.environ.get("BENCH_RELAY_BUDGET_S", "420"))
SERVERS = os.environ.get("BENCH_RELAY_SERVERS", "sluiced,postfix").split(",")

cleanups = []


def log(*a):
    print("bench relay:", *a, file=sys.stderr, flush=True)


def sh(*cmd, check=True, timeout=120, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s%s" % (" ".join(cmd), r.returncode,
                                                    r.stdout[-1500:], r.stderr[-1500:]))
    return r


def cleanup():
    old = [signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)]
    try:
        while cleanups:
            name, fn = cleanups.pop()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - keep cleaning
                log("cleanup %s: %s" % (name, e))
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def on_signal(sig, frame):
    raise KeyboardInterrupt


# ---------------------------------------------------------------- set-up

def lab_up(tmp):
    st = os.path.join(tmp, "state")
    os.mkdir(st)
    args = [LAB, "up", "--route", "bench.test=peer:%d" % SINK_PORT, "--state", st,
            "--set", "storage.durability=full", "--set", "storage.map_size_mb=16384",
            "--set", "smtp.per_client_max_conns=0", "--set", "smtp.per_client_rate_per_min=0",
            "--set", "delivery.max_conns_per_dest=20"]
    for i in range(30):
        r = subprocess.run(args, capture_output=True, text=True, timeout=180,
                           env=dict(os.environ, SLUICE_BUILD=BUILD))
        if r.returncode == 0:
            pid = open("/run/sluice-lab/pid").read().strip()
            cleanups.append(("lab", lambda: lab_down_if_ours(pid)))
            return dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
        if "already up" not in r.stderr:
            raise RuntimeError("tests/lab up failed:\n" + r.stderr[-3000:])
        log("the lab is in use by someone else; waiting (%d/30)" % (i + 1))
        time.sleep(10)
    raise RuntimeError("the lab stayed busy for 5 minutes")


def lab_down_if_ours(pid):
    """tests/lab down, unless the lab up now is not the one this bench
    started (someone else's run replaced it: leave theirs alone)"""
    try:
        now = open("/run/sluice-lab/pid").read().strip()
    except OSError:
        now = None
    if now is not None and now != pid:
        log("the lab now runs sluiced pid %s, not ours (%s): not taking it down" % (now, pid))
        return
    sh(LAB, "down", check=False)


def lab_still_ours(pid):
    try:
        return open("/run/sluice-lab/pid").read().strip() == str(pid)
    except OSError:
        return False


def veth_up():
    for n in (VETH, VPEER):
        if sh("ip", "link", "show", n, check=False).returncode == 0:
            raise RuntimeError("interface %s exists; not touching it" % n)
    sh("ip", "link", "add", VETH, "type", "veth", "peer", "name", VPEER)
    cleanups.append(("veth", lambda: sh("ip", "link", "del", VETH, check=False)))
    sh("ip", "addr", "add", PF_ADDR + "/24", "dev", VETH)
    sh("ip", "link", "set", VETH, "up")
    sh("ip", "link", "set", VPEER, "netns", NS)
    sh("ip", "-n", NS, "addr", "add", PF_PEER + "/24", "dev", VPEER)
    sh("ip", "-n", NS, "link", "set", VPEER, "up")


class Sink:
    """Postfix smtp-sink in the lab namespace, dumping to tmpfs"""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-bench-relay-sink-", dir="/dev/shm")
        cleanups.append(("sink dir", lambda: shutil.rmtree(self.dir, ignore_errors=True)))
        os.chmod(self.dir, 0o755)
        self.dump = os.path.join(self.dir, "dump")
        os.mkdir(self.dump)
        shutil.chown(self.dump, "nobody")
        self.pydir = os.path.join(self.dir, "py")
        self.proc = None
        cleanups.append(("sink", self.stop))
        self.start("postfix")

    def start(self, kind):
        """kind 'postfix': smtp-sink -d (throughput); 'py': smtpsink.py, whose
        per-message JSON has the arrival time in ns (delay phase)"""
        self.stop()
        self.kind = kind
        out = open(os.path.join(self.dir, "sink-%s.out" % kind), "ab")
        if kind == "postfix":
            cmd = ["smtp-sink", "-u", "nobody", "-c", "-m", "1000",
                   "-d", self.dump + "/%H%M%S.", "0.0.0.0:%d" % SINK_PORT, "1024"]
        else:
            cmd = ["/usr/bin/python3", SINK_PY, "--port", str(SINK_PORT), "--dir", self.pydir]
        self.proc = subprocess.Popen(["ip", "netns", "exec", NS] + cmd, stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError("%s sink exited: %s" % (kind, open(out.name, "rb").read()[-1000:]))
            if sh("ip", "netns", "exec", NS, "ss", "-Hltn", "sport = :%d" % SINK_PORT).stdout.strip():
                return
            time.sleep(0.05)
        raise RuntimeError("%s sink does not listen" % kind)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def count(self):
        if self.kind == "py":
            return len(self.py_messages())
        with os.scandir(self.dump) as it:
            return sum(1 for _ in it)

    def py_messages(self):
        """{message-id: [arrival unix s]} from smtpsink.py's files"""
        out = {}
        try:
            names = [n for n in os.listdir(self.pydir) if n.endswith(".json")
                     and n not in ("stats.json", "control.json")]
        except FileNotFoundError:
            return out
        for n in names:
            base = os.path.join(self.pydir, n[:-5])
            try:
                meta = json.load(open(base + ".json"))
                head = open(base + ".msg", "rb").read(4096)
            except (OSError, ValueError):
                continue
            m = MSGID.search(head)
            out.setdefault(m.group(1).decode() if m else n, []).append(meta["time"])
        return out

    def files(self):
        with os.scandir(self.dump) as it:
            return [(e.path, e.stat().st_mtime_ns) for e in it]

    def clear(self):
        for p, _ in self.files():
            os.unlink(p)
        shutil.rmtree(self.pydir, ignore_errors=True)


def postfix_stop(etc, pid):
    sh("postfix", "-c", etc, "stop", check=False, timeout=30)
    for _ in range(100):
        if not alive(pid):
            return
        time.sleep(0.1)
    log("postfix master %d still running: abort" % pid)
    sh("postfix", "-c", etc, "abort", check=False, timeout=30)
    time.sleep(1)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


def postfix_up(tmp):
    d = os.path.join(tmp, "postfix")
    etc, spool, data = (os.path.join(d, x) for x in ("etc", "spool", "data"))
    for x in (etc, spool, data):
        os.makedirs(x)
    shutil.chown(data, "postfix")
    os.chmod(tmp, 0o755)
    os.chmod(d, 0o755)
    shutil.copy("/etc/postfix/master.cf", etc)
    with open(os.path.join(etc, "main.cf"), "w") as f:
        f.write("""compatibility_level = 3.6
queue_directory = %(spool)s
data_directory = %(data)s
myhostname = postfix-bench.test
mydestination =
inet_interfaces = %(addr)s
inet_protocols = ipv4
mynetworks = 127.0.0.0/8 198.18.1.0/24
relay_domains = bench.test
transport_maps = inline:{ { bench.test = smtp:[%(sink)s]:%(port)d } }
maillog_file = %(d)s/maillog
""" % dict(spool=spool, data=data, addr=PF_ADDR, d=d, sink=PF_PEER, port=SINK_PORT))
    if PF_ADDR + ":25" in sh("ss", "-ltn").stdout:
        raise RuntimeError("something already listens on %s:25 (a Postfix left by an "
                           "earlier run?): not starting another" % PF_ADDR)
    sh("postfix", "-c", etc, "check")
    sh("postfix", "-c", etc, "start")
    pidfile = os.path.join(spool, "pid", "master.pid")
    pid = None
    for _ in range(50):
        if pid is None and os.path.exists(pidfile):
            pid = int(open(pidfile).read().split()[0])
            cleanups.append(("postfix", lambda: postfix_stop(etc, pid)))
        if pid and PF_ADDR + ":25" in sh("ss", "-ltn").stdout:
            return d, pid
        time.sleep(0.1)
    if pid is None:
        cleanups.append(("postfix", lambda: sh("postfix", "-c", etc, "stop", check=False)))
    raise RuntimeError("postfix does not listen on %s:25" % PF_ADDR)


def postfix_queued(pfdir):
    """files in Postfix's incoming/active/deferred/hold queues"""
    n = 0
    for q in ("incoming", "active", "deferred", "hold", "maildrop"):
        for _, _, f in os.walk(os.path.join(pfdir, "spool", q)):
            n += len(f)
    return n


def cpu_ticks(root_pid, tree):
    total = 0
    pids = [root_pid]
    if tree:
        kids = {}
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    st = open("/proc/%s/stat" % p).read()
                except OSError:
                    continue
                ppid = int(st.rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(p))
        i = 0
        while i < len(pids):
            pids += kids.get(pids[i], [])
            i += 1
    for p in pids:
        try:
            f = open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        except OSError:
            pass
    return total


# ---------------------------------------------------------------- one cell

def wait_arrivals(sink, n, deadline_s, what):
    end = time.monotonic() + deadline_s
    c = sink.count()
    while c < n and time.monotonic() < end:
        time.sleep(0.2)
        c = sink.count()
    if c < n:
        log("%s: only %d of %d messages reached the sink in %d s" % (what, c, n, deadline_s))
    return c


MSGID = re.compile(rb"^Message-Id: (<[^>\r\n]*>)", re.M | re.I)


def msgids(sink):
    """{message-id: [mtime_ns]} over the dumps"""
    out = {}
    for p, mt in sink.files():
        with open(p, "rb") as f:
            head = f.read(4096)
        m = MSGID.search(head)
        out.setdefault(m.group(1).decode() if m else p, []).append(mt)
    return out


def smtp_source(host, sess, msgs, size):
    t = time.time()
    r = sh(LAB, "exec", "smtp-source", "-d", "-s", str(sess), "-m", str(msgs), "-l", str(size),
           "-M", "bench.lab.test", "-f", "bench@client.test", "-t", "bench@bench.test",
           host + ":25", check=False, timeout=120)
    el = time.time() - t
    if r.returncode != 0 or "fatal" in r.stderr or "error" in r.stderr.lower():
        raise RuntimeError("smtp-source against %s failed: %s" % (host, r.stderr[-1500:]))
    return t, el


def throughput(sink, host, sess, size, msgs, pid, tree):
    sink.clear()
    hz = os.sysconf("SC_CLK_TCK")
    c0 = cpu_ticks(pid, tree)
    t0, el = smtp_source(host, sess, msgs, size)
    got = wait_arrivals(sink, msgs, DRAIN_S, "%s %dB" % (host, size))
    t_end = time.time()
    ids = msgids(sink)
    last = max((max(v) for v in ids.values()), default=int(t0 * 1e9)) / 1e9
    arr = sorted(min(v) for v in ids.values())
    k = int(0.99 * msgs)
    t99 = arr[k - 1] / 1e9 if 0 < k <= len(arr) else None
    cores = (cpu_ticks(pid, tree) - c0) / hz / max(t_end - t0, 1e-6)
    dups = sum(len(v) - 1 for v in ids.values())
    return dict(msgs=msgs, delivered=got, unique=len(ids), dups=dups, accept_s=el,
                e2e_s=last - t0, rate=got / max(last - t0, 1e-6), accept_rate=msgs / el, cores=cores,
                rate99=k / max(t99 - t0, 1e-6) if t99 else 0)


def latency(sink, host, size):
    sink.clear()
    sink.start("py")
    try:
        r = sh(LAB, "exec", "/usr/bin/python3", os.path.abspath(__file__), "client", host,
               str(LAT_RATE), str(LAT_S), str(size), timeout=int(LAT_S) + 120)
        sent = json.loads(r.stdout.strip().splitlines()[-1])
        n = len(sent["t250"])
        got = wait_arrivals(sink, n, 60, "latency phase at %s" % host)
        ids = sink.py_messages()
    finally:
        sink.start("postfix")
    d = sorted(min(ids[k]) - t for k, t in sent["t250"].items() if k in ids)
    pct = (lambda p: d[min(len(d) - 1, int(len(d) * p))] * 1000 if d else None)
    return dict(sent=n, delivered=got, errors=sent["errors"], p50=pct(0.5), p99=pct(0.99),
                max=d[-1] * 1000 if d else None, missing=n - len(d))


def deferred_lines(logfile):
    try:
        with open(logfile, errors="replace") as f:
            return sum(1 for ln in f if "status=deferred" in ln)
    except OSError:
        return 0


def cell(name, sink, host, pid, tree, sess, size, deadline, logfile):
    # warm-up: its accept rate sizes the run (the end-to-end rate would be
    # skewed by a single retry)
    w = throughput(sink, host, sess, size, 400, pid, tree)
    msgs = int(min(max(w["accept_rate"] * RUN_S, 500), MAX_MSGS))
    if time.monotonic() + msgs / max(w["accept_rate"], 1) + LAT_S + 30 > deadline:
        msgs = max(400, int(w["accept_rate"] * 2))
    d0 = deferred_lines(logfile)
    t = throughput(sink, host, sess, size, msgs, pid, tree)
    deferred = deferred_lines(logfile) - d0
    lat = latency(sink, host, size)
    row = dict(server=name, size=size, sessions=sess, **t, lat=lat, deferred=deferred,
               warm_dups=w["dups"], warm_missing=w["msgs"] - w["delivered"])
    log("%s %dB x%d: %d msgs, %d at the sink (%d dup, %d deferrals logged) in %.2fs = %.0f/s end to end "
        "(accepted in %.2fs = %.0f/s), %.2f cores; delay p50 %s p99 %s ms (%d/%d, %d errors)" % (
            name, size, sess, msgs, t["delivered"], t["dups"], deferred, t["e2e_s"], t["rate"], t["accept_s"],
            t["accept_rate"], t["cores"], fmt(lat["p50"]), fmt(lat["p99"]), lat["sent"] - lat["missing"],
            lat["sent"], lat["errors"]))
    return row


def fmt(x):
    return "-" if x is None else "%.1f" % x


# ---------------------------------------------------------------- client mode

async def client_main(host, rate, secs, size):
    """LAT_RATE messages/s spread over 10 sessions; {msgid: unix time of
    the 250} for every accepted message"""
    t250, errs = {}, []
    line = b"x" * 76 + b"\r\n"
    filler = line * max(1, size // len(line))
    start = time.monotonic()
    n_sess = 10
    per = rate / n_sess

    async def reply(r):
        while True:
            ln = await r.readline()
            if not ln:
                raise ConnectionError("closed")
            if ln[3:4] != b"-":
                return int(ln[:3])

    async def session(k):
        try:
            r, w = await asyncio.open_connection(host, 25)
            await reply(r)
            w.write(b"EHLO lat.lab.test\r\n")
            await reply(r)
            i = 0
            while True:
                due = start + (i + k / n_sess) / per
                if due - start >= secs:
                    break
                await asyncio.sleep(max(0, due - time.monotonic()))
                mid = "<lat.%d.%d.%d@bench.lab.test>" % (os.getpid(), k, i)
                i += 1
                w.write(b"MAIL FROM:<lat@client.test>\r\nRCPT TO:<lat@bench.test>\r\nDATA\r\n")
                codes = [await reply(r) for _ in range(3)]
                if codes != [250, 250, 354]:
                    errs.append(codes)
                    if codes[2] == 354:
                        w.write(b".\r\n")
                        await reply(r)
                    w.write(b"RSET\r\n")
                    await reply(r)
                    continue
                w.write(b"Message-Id: " + mid.encode() + b"\r\nSubject: relay latency\r\n\r\n"
                        + filler + b".\r\n")
                c = await reply(r)
                if c == 250:
                    t250[mid] = time.time()
                else:
                    errs.append(c)
            w.write(b"QUIT\r\n")
            await reply(r)
            w.close()
        except (OSError, ConnectionError) as e:
            errs.append(str(e))

    await asyncio.gather(*(session(k) for k in range(n_sess)))
    print(json.dumps({"t250": t250, "errors": len(errs), "first_errors": [str(e) for e in errs[:3]]}))


# ---------------------------------------------------------------- main

def main():
    if os.geteuid() != 0:
        sys.exit("bench relay: must run as root")
    for tool in ("smtp-source", "smtp-sink", "postfix"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            sys.exit("bench relay: %s not installed (scripts/install-deps)" % tool)
    if not os.access(STOR, os.X_OK):
        sys.exit("bench relay: %s missing (build first)" % STOR)
    signal.signal(signal.SIGTERM, on_signal)
    start = time.monotonic()
    deadline = start + BUDGET_S
    tmp = tempfile.mkdtemp(prefix="sluice-bench-relay-", dir="/var/tmp")
    cleanups.append(("tmp", lambda: shutil.rmtree(tmp, ignore_errors=True)))
    rows = []
    try:
        env = lab_up(tmp)
        spid = int(open("/run/sluice-lab/pid").read())
        veth_up()
        sink = Sink()
        pfdir = pfpid = None
        if "postfix" in SERVERS:
            pfdir, pfpid = postfix_up(tmp)
        for size in SIZES:
            for sess in SESSIONS:
                if "sluiced" in SERVERS:
                    rows.append(cell("sluiced", sink, env["SLUICE_ADDR"], spid, False, sess, size, deadline,
                                     env["SLUICE_LOG"]))
                if not lab_still_ours(spid):
                    raise RuntimeError("the lab was replaced by someone else's during the run "
                                       "(another test or bench ran tests/lab down/up): figures void")
                if "postfix" in SERVERS:
                    rows.append(cell("postfix", sink, PF_ADDR, pfpid, True, sess, size, deadline,
                                     os.path.join(pfdir, "maillog")))
        left = None
        if "sluiced" in SERVERS:
            left = len(sh(STOR, "queue-list", os.path.join(env["SLUICE_STATE"], "queue"),
                          timeout=120).stdout.splitlines())
        pf_left = postfix_queued(pfdir) if pfdir else None
        if not lab_still_ours(spid):
            raise RuntimeError("the lab was replaced by someone else's during the run "
                               "(another test or bench ran tests/lab down/up): figures void")
    finally:
        cleanup()
    print("perf/bench relay: smtp-source -d (lab namespace) -> server -> smtp-sink -d to tmpfs "
          "(lab namespace); sluiced on the TAP profile (durability full, queue on /var/tmp, "
          "max_conns_per_dest 20), Postfix %s on a veth pair (fsync per queue file, default "
          "concurrency 20); %d cores; delay = sink arrival - client's 250 at %g msgs/s over 10 "
          "sessions for %g s"
          % (sh("postconf", "-d", "-h", "mail_version", check=False).stdout.strip() or "?",
             os.cpu_count(), LAT_RATE, LAT_S))
    print("%-8s %6s %5s %7s %7s %4s %5s %9s %8s %9s %6s %8s %8s %7s" % (
        "server", "size", "sess", "msgs", "at sink", "dup", "defer", "e2e m/s", "99% m/s", "accept/s", "cores",
        "p50 ms", "p99 ms", "ratio"))
    ratios = {}
    ok = True
    for r in rows:
        ratio = ""
        if r["server"] == "sluiced":
            pf = next((x for x in rows if x["server"] == "postfix" and x["size"] == r["size"]
                       and x["sessions"] == r["sessions"]), None)
            if pf:
                ratios[(r["size"], r["sessions"])] = r["rate"] / pf["rate"]
                ratio = "%.2fx" % ratios[(r["size"], r["sessions"])]
        complete = r["delivered"] == r["msgs"] and r["dups"] == 0 and r["lat"]["missing"] == 0 \
            and r["warm_missing"] == 0 and r["warm_dups"] == 0
        ok = ok and complete
        print("%-8s %6d %5d %7d %7d %4d %5d %9.0f %8.0f %9.0f %6.2f %8s %8s %7s%s" % (
            r["server"], r["size"], r["sessions"], r["msgs"], r["delivered"], r["dups"],
            r["deferred"], r["rate"], r["rate99"],
            r["accept_rate"], r["cores"], fmt(r["lat"]["p50"]), fmt(r["lat"]["p99"]), ratio,
            "" if complete else "  INCOMPLETE (missing or duplicate deliveries)"))
    print("left in the queues after the run: sluiced %s, postfix %s" % (
        "-" if left is None else left, "-" if pf_left is None else pf_left))
    ok = ok and not left and not pf_left
    cells = " ".join("%dKB/%ds %.2fx" % (s // 1024, c, v) for (s, c), v in sorted(ratios.items()))
    best = max((r["rate"] for r in rows if r["server"] == "sluiced"), default=0)
    print("summary: sluiced/postfix relayed msgs/s %s; sluiced best %.0f msgs/s end to end; %.0f s%s"
          % (cells or "-", best, time.monotonic() - start, "" if ok else "; DELIVERY CHECK FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        asyncio.run(client_main(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])))
        sys.exit(0)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        cleanup()
        sys.exit("bench relay: interrupted (cleaned up)")
    except Exception as e:  # noqa: BLE001 - report, cleaned up already in main
        cleanup()
        sys.exit("bench relay: error: %s" % e)
