#!/usr/bin/python3
"""perf/bench accept - accepted messages/s: sluiced vs Postfix 3.7, same
machine, same client.

Client: Postfix's smtp-source in the lab namespace (`-d`: many messages per
connection), 1 KB and 10 KB messages, 20 and 100 sessions. Servers, both
durable:
  sluiced  the lab (TAP profile), queue on disk (/var/tmp), durability full,
           domain bench.test accepted
  Postfix  3.7 from Debian, its own config dir (postfix -c DIR) and queue on
           /var/tmp, default durability (fsync per queue file), relay for
           bench.test, the client in mynetworks; mail is put on hold at end
           of data (smtpd_end_of_data_restrictions = static:HOLD) so its
           queue manager does not deliver: accept and store only, the work
           sluiced does with [delivery] off. Reached through a second veth pair the bench
           creates: 198.18.1.1 (root namespace, Postfix) <-> 198.18.1.2 (lab
           namespace).
sluiced runs with [delivery] enabled = no by default, so both servers do
the same work; BENCH_ACCEPT_DELIVERY=yes leaves delivery on (bench.test is a
local domain without a route: every message is then also scheduled and
deferred "no route", which costs sluiced's scheduler, writer and log work on
the same 2 cores). BENCH_ACCEPT_SIZES / BENCH_ACCEPT_SESSIONS (comma lists,
default 1024,10240 / 20,100) pick the cells.
Per cell: a short calibration run, then a run sized for ~6 s (msgs/s =
messages / wall time of smtp-source; sluiced ends a session after 1000
transactions, so a run is several smtp-source runs of at most 900 messages
a session, back to back, their times summed), server CPU (sluiced's process; the
Postfix master's process tree) in cores, then accept_client.py for 3 s at
the same session count for p50/p99 from the end of data to the 250.
Bounded (< 5 min); cleans up the veth pair, the Postfix instance, the lab
(only if this bench started it) and its temp dirs, also on failure or ^C.
Prints a table and, last, one line starting "summary:".
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SLUICE_BUILD", os.path.join(ROOT, "build"))
LAB = os.path.join(ROOT, "tests", "lab")
CLIENT = os.path.join(ROOT, "perf", "accept", "accept_client.py")
STOR = os.path.join(BUILD, "storage", "sluice-stor")
NS = "sluice-lab"
VETH, VPEER = "sl-pfb0", "sl-pfb1"
PF_ADDR, PF_PEER = "198.18.1.1", "198.18.1.2"
SIZES = [int(x) for x in os.environ.get("BENCH_ACCEPT_SIZES", "1024,10240").split(",")]
SESSIONS = [int(x) for x in os.environ.get("BENCH_ACCEPT_SESSIONS", "20,100").split(",")]
DELIVERY = os.environ.get("BENCH_ACCEPT_DELIVERY", "no")
RUN_S = float(os.environ.get("BENCH_ACCEPT_RUN_S", "6"))
LAT_S = float(os.environ.get("BENCH_ACCEPT_LAT_S", "3"))
BUDGET_S = 280
PER_SESSION = 900       # messages per session and smtp-source run (sluiced: 1000 max)
LOAD0 = "?"

cleanups = []


def log(*a):
    print("bench accept:", *a, file=sys.stderr, flush=True)


def sh(*cmd, check=True, timeout=120, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s%s" % (" ".join(cmd), r.returncode,
                                                    r.stdout[-1500:], r.stderr[-1500:]))
    return r


def cleanup():
    # a signal arriving now must not cut a step short (a Postfix left
    # running would hold 198.18.1.1:25 for the next run)
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


def postfix_stop(etc, pid):
    """postfix stop; if its master (the pid we started) is still there
    after 10 s, postfix abort, then SIGKILL that pid"""
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


def on_signal(sig, frame):
    raise KeyboardInterrupt


def lab_up(tmp):
    st = os.path.join(tmp, "state")
    os.mkdir(st)
    args = [LAB, "up", "--domain", "bench.test", "--state", st,
            "--set", "storage.durability=full", "--set", "storage.map_size_mb=16384",
            "--set", "smtp.per_client_max_conns=0", "--set", "smtp.per_client_rate_per_min=0",
            "--set", "delivery.enabled=" + DELIVERY]
    for i in range(30):
        r = subprocess.run(args, capture_output=True, text=True, timeout=180,
                           env=dict(os.environ, SLUICE_BUILD=BUILD))
        if r.returncode == 0:
            cleanups.append(("lab", lambda: sh(LAB, "down", check=False)))
            return dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
        if "already up" not in r.stderr:
            raise RuntimeError("tests/lab up failed:\n" + r.stderr[-3000:])
        log("the lab is in use by someone else; waiting (%d/30)" % (i + 1))
        time.sleep(10)
    raise RuntimeError("the lab stayed busy for 5 minutes")


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
smtpd_end_of_data_restrictions = check_client_access static:HOLD
maillog_file = %(d)s/maillog
""" % dict(spool=spool, data=data, addr=PF_ADDR, d=d))
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


def cpu_ticks(root_pid, tree):
    """utime+stime (clock ticks) of root_pid, or of it and its children"""
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
            total += int(f[11]) + int(f[12])    # utime, stime (+ waited-for children)
            total += int(f[13]) + int(f[14])
        except OSError:
            pass
    return total


def smtp_source(host, sess, msgs, size, rcpt):
    """seconds smtp-source took for msgs over sess sessions; in runs of at
    most PER_SESSION messages a session (sluiced closes a session after 1000
    transactions), one after the other, their times summed"""
    el = 0.0
    left = msgs
    while left > 0:
        m = min(left, sess * PER_SESSION)
        t = time.monotonic()
        r = sh(LAB, "exec", "smtp-source", "-d", "-s", str(sess), "-m", str(m), "-l", str(size),
               "-M", "bench.lab.test", "-f", "bench@client.test", "-t", rcpt, host + ":25",
               check=False, timeout=90)
        el += time.monotonic() - t
        if r.returncode != 0 or "fatal" in r.stderr or "error" in r.stderr.lower():
            raise RuntimeError("smtp-source against %s failed: %s" % (host, r.stderr[-1500:]))
        left -= m
    return el


def cell(name, host, pid, tree, sess, size, deadline):
    rcpt = "bench@bench.test"
    m0 = max(200, 4 * sess)
    el0 = smtp_source(host, sess, m0, size, rcpt)
    msgs = int(min(max(m0 / el0 * RUN_S, 500), 200000))
    if time.monotonic() + msgs / (m0 / el0) + LAT_S + 10 > deadline:
        msgs = max(200, int(m0 / el0 * 2))
    hz = os.sysconf("SC_CLK_TCK")
    c0 = cpu_ticks(pid, tree)
    el = smtp_source(host, sess, msgs, size, rcpt)
    cores = (cpu_ticks(pid, tree) - c0) / hz / el
    lat = json.loads(sh(LAB, "exec", "/usr/bin/python3", CLIENT, host, "25", str(sess),
                        str(LAT_S), str(size), rcpt, timeout=120).stdout.strip().splitlines()[-1])
    row = dict(server=name, size=size, sessions=sess, messages=msgs + m0, run_msgs=msgs,
               seconds=el, rate=msgs / el, cores=cores, lat=lat)
    log("%s %dB x%d: %d msgs in %.2fs = %.0f/s, %.2f cores; p50 %.2f ms p99 %.2f ms (%d msgs, %d errors)" % (
        name, size, sess, msgs, el, msgs / el, cores, lat["p50_ms"] or -1,
        lat["p99_ms"] or -1, lat["messages"], lat["errors"]))
    return row


def main():
    if os.geteuid() != 0:
        sys.exit("bench accept: must run as root")
    for tool in ("smtp-source", "postfix"):
        if not shutil.which(tool):
            sys.exit("bench accept: %s not installed (scripts/install-deps)" % tool)
    if not os.access(STOR, os.X_OK):
        sys.exit("bench accept: %s missing (build first)" % STOR)
    signal.signal(signal.SIGTERM, on_signal)
    global LOAD0
    LOAD0 = open("/proc/loadavg").read().split()[0]
    if DELIVERY not in ("yes", "no", "true", "false", "on", "off", "1", "0"):
        sys.exit("bench accept: BENCH_ACCEPT_DELIVERY must be yes or no")
    start = time.monotonic()
    deadline = start + BUDGET_S
    tmp = tempfile.mkdtemp(prefix="sluice-bench-accept-", dir="/var/tmp")
    cleanups.append(("tmp", lambda: shutil.rmtree(tmp, ignore_errors=True)))
    rows = []
    try:
        env = lab_up(tmp)
        spid = int(open("/run/sluice-lab/pid").read())
        veth_up()
        pfdir, pfpid = postfix_up(tmp)
        for size in SIZES:
            for sess in SESSIONS:
                rows.append(cell("sluiced", env["SLUICE_ADDR"], spid, False, sess, size, deadline))
                rows.append(cell("postfix", PF_ADDR, pfpid, True, sess, size, deadline))
        # everything sluiced acknowledged is in its queue
        n = len(sh(STOR, "queue-list", os.path.join(env["SLUICE_STATE"], "queue"),
                   timeout=120).stdout.splitlines())
        acked = sum(r["messages"] + r["lat"]["messages"] for r in rows if r["server"] == "sluiced")
        queued_ok = n >= acked
        held = sum(len(f) for _, _, f in os.walk(os.path.join(pfdir, "spool", "hold")))
        pf_acked = sum(r["messages"] + r["lat"]["messages"] for r in rows if r["server"] == "postfix")
    finally:
        cleanup()
    print("perf/bench accept: smtp-source -d from the lab namespace; sluiced on the TAP "
          "profile (durability full, queue on /var/tmp, delivery %s), Postfix %s on a veth "
          "pair (fsync per queue file, mail held); %d cores; load average before %s"
          % ("on" if DELIVERY in ("yes", "true", "on", "1") else "off",
             sh("postconf", "-d", "-h", "mail_version", check=False).stdout.strip() or "?",
             os.cpu_count(), LOAD0))
    print("%-8s %6s %5s %8s %9s %6s %8s %8s %7s" % ("server", "size", "sess", "msgs", "msgs/s",
                                                    "cores", "p50 ms", "p99 ms", "ratio"))
    ratios = {}
    for r in rows:
        ratio = ""
        if r["server"] == "sluiced":
            pf = next(x for x in rows if x["server"] == "postfix" and x["size"] == r["size"]
                      and x["sessions"] == r["sessions"])
            ratios[(r["size"], r["sessions"])] = r["rate"] / pf["rate"]
            ratio = "%.2fx" % ratios[(r["size"], r["sessions"])]
        print("%-8s %6d %5d %8d %9.0f %6.2f %8.2f %8.2f %7s" % (
            r["server"], r["size"], r["sessions"], r["run_msgs"], r["rate"], r["cores"],
            r["lat"]["p50_ms"] or -1, r["lat"]["p99_ms"] or -1, ratio))
    print("sluiced queue: %d messages listed, %d acknowledged -> %s; postfix hold queue: %d files, %d acknowledged"
          % (n, acked, "all queued" if queued_ok else "MISSING", held, pf_acked))
    cells = " ".join("%dKB/%ds %.2fx" % (s // 1024, c, v) for (s, c), v in sorted(ratios.items()))
    best = max(r["rate"] for r in rows if r["server"] == "sluiced")
    print("summary: sluiced/postfix accepted msgs/s %s; sluiced best %.0f msgs/s; %.0f s; "
          "load average after %s%s"
          % (cells, best, time.monotonic() - start, open("/proc/loadavg").read().split()[0],
             "" if queued_ok else "; QUEUE CHECK FAILED"))
    return 0 if queued_ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        cleanup()
        sys.exit("bench accept: interrupted (cleaned up)")
    except Exception as e:  # noqa: BLE001 - report, cleaned up already in main
        cleanup()
        sys.exit("bench accept: error: %s" % e)
