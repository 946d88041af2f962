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

With BENCH_MEMIF_TAP=1 every cell is also run the usual way, for the same
generator on both sides of the comparison: sluiced in the lab (tests/lab,
TAP profile, same [storage]/[smtp] settings) and `sluice-bench gen
--transport kernel` in the lab namespace; the table gets a "tap" row per
cell (the lab is brought up and down per cell; not while someone else's
lab runs).

Environment: SLUICE_BUILD (default ./build), BENCH_MEMIF_SIZES (1024),
BENCH_MEMIF_SESSIONS (20,100), BENCH_MEMIF_COUNT (100000), BENCH_MEMIF_DIR
(parent of the temp dir; default /var/tmp, the queue is fsynced there),
BENCH_MEMIF_TAP (0).
Cleans up: its own PIDs, socket file, temp dir, EAL runtime dirs, the lab.
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
TAP = os.environ.get("BENCH_MEMIF_TAP", "0") == "1"
LAB = os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "lab")


def map_mb(size):
    """[storage] map_size_mb that holds a whole cell (delivery is off): the
    default 1 GiB fills at ~77,000 10 KB messages (452 4.3.1, then 421
    after 20 errors); twice the bodies plus 256 MiB"""
    return max(1024, 2 * COUNT * (size + 1024) // (1 << 20) + 256)


def gen_args(size, sessions, gen_json):
    """the load, the same over both transports"""
    return ["-c", str(sessions), "-n", str(COUNT), "-d", "30s", "--drain", "10s",
            "--msgs-per-conn", "900", "--size", str(size), "--to", "rcpt@" + tb.DOMAIN,
            "--json", gen_json]


def result(size, sessions, gen_json, queue, before, after, transport):
    g = json.load(open(gen_json))
    t = g["latency"]["t250"]
    return dict(size=size, sessions=sessions, transport=transport, msgs_s=g["msgs_per_s"],
                delivered=g["messages"]["delivered"], errors=g["messages"]["errors"],
                err=g["errors"], p50=t["p50_us"] / 1e3 if "p50_us" in t else None,
                p99=t["p99_us"] / 1e3 if "p99_us" in t else None, t250=t,
                queued=len(tb.queued(queue)), elapsed=g["elapsed_s"], load_before=before,
                load_after=after)


def tap_cell(size, sessions):
    """the same cell against the lab's sluiced (TAP), gen over kernel sockets
    in the lab namespace"""
    tmp = tempfile.mkdtemp(prefix="sb-tap-bench-", dir=PARENT)
    state = os.path.join(tmp, "state")
    up = False
    try:
        os.mkdir(state)
        r = subprocess.run([LAB, "up", "--state", state, "--domain", tb.DOMAIN,
                            "--set", "delivery.enabled=no", "--set", "storage.durability=full",
                            "--set", "storage.map_size_mb=%d" % map_mb(size),
                            "--set", "smtp.per_client_max_conns=0",
                            "--set", "smtp.per_client_rate_per_min=0"],
                           capture_output=True, text=True, timeout=180)
        up = True
        if r.returncode != 0:
            raise RuntimeError("tests/lab up: " + (r.stdout + r.stderr)[-1500:])
        env = dict(ln.split("=", 1) for ln in r.stdout.splitlines() if "=" in ln)
        gen_json = os.path.join(tmp, "gen.json")
        before = loadavg()
        g = subprocess.run(["ip", "netns", "exec", "sluice-lab", tb.BENCH, "gen",
                            "-s", env["SLUICE_ADDR"] + ":25"] + gen_args(size, sessions, gen_json),
                           capture_output=True, text=True, timeout=120)
        after = loadavg()
        if g.returncode not in (0, 1) or not os.path.exists(gen_json):
            raise RuntimeError("gen (kernel) exit %d: %s" % (g.returncode, g.stderr[-1500:]))
        subprocess.run([LAB, "down"], capture_output=True, timeout=120)
        up = False
        return result(size, sessions, gen_json, os.path.join(state, "queue"), before, after, "tap")
    finally:
        if up:
            subprocess.run([LAB, "down"], capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


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
            f.write(tb.SLUICED_CONF.replace("durability = full\n", "durability = full\nmap_size_mb = %d\n"
                                            % map_mb(size)).format(
                profile=os.path.join(tmp, "memif.conf"), prefix=sl_prefix, ip=tb.SLUICE_IP,
                state=state))
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
             "--link-timeout", "30s"] + gen_args(size, sessions, gen_json),
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
        return result(size, sessions, gen_json, os.path.join(state, "queue"), before, after,
                      "memif")
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
    print("%-6s %8s %-6s %10s %9s %9s %7s %8s  %s" % (
        "size", "sessions", "via", "msgs/s", "p50 ms", "p99 ms", "errors", "queued",
        "loadavg before -> after"))
    rows = []
    cells = [(size, s, fn) for size in SIZES for s in SESSIONS
             for fn in ([cell, tap_cell] if TAP else [cell])]
    for size, s, fn in cells:
        r = fn(size, s)
        rows.append(r)
        print("%-6d %8d %-6s %10.0f %9.3f %9.3f %7d %8d  %s -> %s" % (
            size, s, r["transport"], r["msgs_s"], r["p50"], r["p99"], r["errors"], r["queued"],
            " ".join(r["load_before"]), " ".join(r["load_after"])), flush=True)
        if r["errors"]:
            print("  errors: %s" % json.dumps(r["err"]))
        if r["queued"] != r["delivered"]:
            print("  MISMATCH: gen counted %d x 250, queue holds %d" % (r["delivered"],
                                                                      r["queued"]))
    print("summary: " + ", ".join("%dB x %d %s: %.0f msgs/s p99 %.2f ms" % (
        r["size"], r["sessions"], r["transport"], r["msgs_s"], r["p99"]) for r in rows))
    bad = [r for r in rows if r["errors"] or r["queued"] != r["delivered"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
