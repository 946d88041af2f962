#!/usr/bin/python3
"""perf/bench accept-memif - sluiced accepting mail over memif, driven by
sluice-bench gen --transport memif (sluice's TCP stack on the client side,
no kernel, no TAP).

Per cell (size x sessions): a fresh state dir, gen started first (memif
server, --no-huge), then sluiced on a copy of nic-profiles/memif.conf with
this run's socket file (memif client, --no-huge, delivery off, durability
full, per-client limits off); gen runs a closed loop of BENCH_MEMIF_COUNT
messages (default 100,000; at most 30 s, 900 messages a connection since
sluiced ends a session after 1000), then sluiced is stopped and the queue
counted. sluiced is restarted for each cell: DPDK 22.11's memif client does
not reconnect to a new server.

Prints per cell: accepted msgs/s, p50/p99 time-to-250 (gen's histogram),
errors, messages in the queue, and /proc/loadavg before and after; the last
line is a "summary:" line. Both DPDK processes poll; on a 2-core machine
they share the cores with each other and everything else running.

Environment: SLUICE_BUILD (default ./build), BENCH_MEMIF_SIZES (1024),
BENCH_MEMIF_SESSIONS (20,100), BENCH_MEMIF_COUNT (100000), BENCH_MEMIF_DIR
(parent of the temp dir; default /var/tmp, the queue is fsynced there).
Cleans up: its own PIDs, socket file, temp dir, EAL runtime dirs.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "system"))
import test_bench_memif as tb  # noqa: E402  (profile/config text, helpers)

SIZES = [int(x) for x in os.environ.get("BENCH_MEMIF_SIZES", "1024").split(",")]
SESSIONS = [int(x) for x in os.environ.get("BENCH_MEMIF_SESSIONS", "20,100").split(",")]
COUNT = int(os.environ.get("BENCH_MEMIF_COUNT", "100000"))
PARENT = os.environ.get("BENCH_MEMIF_DIR", "/var/tmp")


def loadavg():
    return open("/proc/loadavg").read().split()[0:3]


def cell(size, sessions):
    tag = "%d" % os.getpid()
    gen_prefix, sl_prefix = "sbbench-gen-" + tag, "sbbench-sl-" + tag
    tmp = tempfile.mkdtemp(prefix="sb-memif-bench-", dir=PARENT)
    sock, state = os.path.join(tmp, "memif.sock"), os.path.join(tmp, "state")
    gen = sl = None
    gen_log, sl_log = os.path.join(tmp, "gen.out"), os.path.join(tmp, "sluiced.log")
    try:
        os.mkdir(state)
        with open(os.path.join(tmp, "memif.conf"), "w") as f:
            f.write(tb.memif_profile(sock))
        conf = os.path.join(tmp, "sluiced.conf")
        with open(conf, "w") as f:
            f.write(tb.SLUICED_CONF.format(profile=os.path.join(tmp, "memif.conf"),
                                           prefix=sl_prefix, ip=tb.SLUICE_IP, state=state))
            f.write("[pools]\nmax_conns = 4096\n")
        with open(os.path.join(tmp, "dir.txt"), "w") as f:
            f.write("domain %s local\nrcpt *@%s accept\n" % (tb.DOMAIN, tb.DOMAIN))
        subprocess.run([tb.STOR, "dir-import", os.path.join(state, "directory"),
                        os.path.join(tmp, "dir.txt")], check=True, capture_output=True, timeout=60)
        gen_json = os.path.join(tmp, "gen.json")
        gen = subprocess.Popen(
            [tb.BENCH, "gen", "--transport", "memif", "--local-ip", tb.GEN_IP + "/24",
             "-s", tb.SLUICE_IP + ":25", "--memif-socket", sock,
             "--memif-devargs", "socket-abstract=no", "--file-prefix", gen_prefix, "--no-huge",
             "-c", str(sessions), "-n", str(COUNT), "-d", "30s", "--drain", "10s",
             "--msgs-per-conn", "900", "--size", str(size), "--link-timeout", "30s",
             "--to", "rcpt@" + tb.DOMAIN, "--json", gen_json],
            stdout=open(gen_log, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        end = time.monotonic() + 20
        while not os.path.exists(sock) and gen.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
        if not os.path.exists(sock):
            raise RuntimeError("gen made no memif socket:\n" + tb.tail(gen_log))
        before = loadavg()
        sl = subprocess.Popen([tb.SLUICED, "-c", conf], stdout=open(sl_log, "w"),
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              start_new_session=True)
        try:
            rc = gen.wait(timeout=120)
        except subprocess.TimeoutExpired:
            raise RuntimeError("gen did not finish in 120 s:\n" + tb.tail(gen_log))
        after = loadavg()
        tb.stop(sl, "sluiced")
        if rc not in (0, 1) or not os.path.exists(gen_json):
            raise RuntimeError("gen exit %d:\n%s\nsluiced:\n%s" % (rc, tb.tail(gen_log),
                                                                 tb.tail(sl_log)))
        g = json.load(open(gen_json))
        nq = len(tb.queued(os.path.join(state, "queue")))
        t = g["latency"]["t250"]
        return dict(size=size, sessions=sessions, msgs_s=g["msgs_per_s"],
                    delivered=g["messages"]["delivered"], errors=g["messages"]["errors"],
                    err=g["errors"], p50=t["p50_us"] / 1e3 if "p50_us" in t else None,
                    p99=t["p99_us"] / 1e3 if "p99_us" in t else None, t250=t,
                    queued=nq, elapsed=g["elapsed_s"], load_before=before, load_after=after)
    finally:
        tb.stop(gen, "sluice-bench gen")
        tb.stop(sl, "sluiced")
        if os.path.exists(sock):
            os.unlink(sock)
        for p in (gen_prefix, sl_prefix):
            shutil.rmtree(os.path.join("/var/run/dpdk", p), ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    for p in (tb.SLUICED, tb.STOR, tb.BENCH):
        if not os.access(p, os.X_OK):
            sys.exit("perf/bench accept-memif: %s not built" % p)
    print("perf/bench accept-memif: sluice-bench gen --transport memif (sluice TCP stack, "
          "DPDK net_memif server) -> sluiced on the memif profile (client); delivery off, "
          "durability full, queue in %s; both --no-huge; closed loop, pipelining, DATA, "
          "%d messages a cell (<= 30 s), %d CPUs" % (PARENT, COUNT, os.cpu_count()))
    print("%-6s %8s %10s %9s %9s %7s %8s  %s" % ("size", "sessions", "msgs/s", "p50 ms",
                                               "p99 ms", "errors", "queued", "loadavg before -> after"))
    rows = []
    for size in SIZES:
        for s in SESSIONS:
            r = cell(size, s)
            rows.append(r)
            print("%-6d %8d %10.0f %9.3f %9.3f %7d %8d  %s -> %s" % (
                size, s, r["msgs_s"], r["p50"], r["p99"], r["errors"], r["queued"],
                " ".join(r["load_before"]), " ".join(r["load_after"])), flush=True)
            if r["errors"]:
                print("  errors: %s" % json.dumps(r["err"]))
            if r["queued"] != r["delivered"]:
                print("  MISMATCH: gen counted %d x 250, queue holds %d" % (r["delivered"],
                                                                          r["queued"]))
    print("summary: " + ", ".join("%dB x %d: %.0f msgs/s p99 %.2f ms" % (
        r["size"], r["sessions"], r["msgs_s"], r["p99"]) for r in rows))
    bad = [r for r in rows if r["errors"] or r["queued"] != r["delivered"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
