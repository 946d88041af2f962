"""sluice-bench gen over memif against sluiced on the memif NIC profile.

No lab, no namespace, no kernel network: two DPDK processes joined by a
net_memif shared-memory link. sluice-bench gen is the memif server and runs
sluice's own TCP/IP stack (--transport memif); sluiced is the memif client
with a copy of nic-profiles/memif.conf that names this test's socket file.
Both run with --no-huge and file prefixes of their own. Delivery is off,
durability full, queue and directory in a temporary state dir.

Asserts what a user would notice: every message gen counted as 250 is in
sluiced's queue exactly once (run id and seq from the X-Sluice-Bench stamp),
its body's SHA-256 matches the stamp, the bytes stored after sluiced's
trace header add up to gen's delivered bytes, and nothing failed.

Cleans up whatever happens: the two processes it started (by PID, SIGTERM
then SIGKILL), the socket file, the state dir, the EAL runtime dirs of its
own prefixes. Bounded: gen has -n and -d, every wait has a timeout.
"""
import hashlib
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
SLUICED = os.path.join(BUILD, "sluiced")
STOR = os.path.join(BUILD, "storage", "sluice-stor")
BENCH = os.path.join(BUILD, "perf", "sluice-bench", "sluice-bench")
PROFILE = os.path.join(ROOT, "nic-profiles", "memif.conf")

SESSIONS, COUNT = 10, 500          # 10 sessions x 50 messages
SLUICE_IP, GEN_IP = "198.18.99.1", "198.18.99.2"   # on the memif link only
DOMAIN = "bench.test"


def memif_profile(sock):
    """nic-profiles/memif.conf with this test's socket file"""
    out = []
    for line in open(PROFILE):
        if line.strip().startswith("vdev"):
            line = "vdev = net_memif0,role=client,id=0,socket=%s,socket-abstract=no\n" % sock
        out.append(line)
    return "".join(out)


SLUICED_CONF = """\
[sluice]
nic_profile = {profile}
[eal]
file_prefix = {prefix}
huge = no
telemetry = no
[lcores]
main = 0
io = 1
[interface]
address = {ip}/24
[services]
smtp = yes
[smtp]
hostname = sluice.memif.test
per_client_max_conns = 0
per_client_rate_per_min = 0
[storage]
state_dir = {state}
durability = full
[delivery]
enabled = no
[reactor]
idle_spins = 256
idle_sleep_us_max = 200
[control]
metrics_listen = off
"""


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return "(%s)" % e


def stop(proc, what, timeout=15):
    """SIGTERM the process we started (by its PID), SIGKILL if it stays"""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print("%s (pid %d) ignored SIGTERM: SIGKILL" % (what, proc.pid), file=sys.stderr)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def hugepage_files(prefixes):
    try:
        names = os.listdir("/dev/hugepages")
    except OSError:
        return []
    return [n for n in names if any(p in n for p in prefixes)]


def queued(queue):
    """{qid: size} from sluice-stor queue-list"""
    r = subprocess.run([STOR, "queue-list", queue], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        f = line.split(" ")
        out[f[0]] = int(f[4])
    return out


def body_of(queue, qid):
    r = subprocess.run([STOR, "queue-show", queue, qid, "--body"], capture_output=True, timeout=30)
    assert r.returncode == 0, (qid, r.stderr)
    return r.stdout


def test_bench_memif():
    for p in (SLUICED, STOR, BENCH):
        assert os.access(p, os.X_OK), "%s not built (SLUICE_BUILD=%s)" % (p, BUILD)
    tag = "%d" % os.getpid()
    gen_prefix, sl_prefix = "sbmemif-gen-" + tag, "sbmemif-sl-" + tag
    assert not hugepage_files([gen_prefix, sl_prefix])
    tmp = tempfile.mkdtemp(prefix="sb-memif-")
    sock = os.path.join(tmp, "memif.sock")
    state = os.path.join(tmp, "state")
    gen = sl = None
    gen_log, sl_log = os.path.join(tmp, "gen.out"), os.path.join(tmp, "sluiced.log")
    try:
        os.mkdir(state)
        with open(os.path.join(tmp, "memif.conf"), "w") as f:
            f.write(memif_profile(sock))
        conf = os.path.join(tmp, "sluiced.conf")
        with open(conf, "w") as f:
            f.write(SLUICED_CONF.format(profile=os.path.join(tmp, "memif.conf"), prefix=sl_prefix,
                                        ip=SLUICE_IP, state=state))
        with open(os.path.join(tmp, "directory.txt"), "w") as f:
            f.write("domain %s local\nrcpt *@%s accept\n" % (DOMAIN, DOMAIN))
        r = subprocess.run([STOR, "dir-import", os.path.join(state, "directory"),
                            os.path.join(tmp, "directory.txt")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([SLUICED, "-c", conf, "--check"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr

        # the memif server first: sluiced's client connects once, at start
        gen_json = os.path.join(tmp, "gen.json")
        gen = subprocess.Popen(
            [BENCH, "gen", "--transport", "memif", "--local-ip", GEN_IP + "/24",
             "-s", SLUICE_IP + ":25", "--memif-socket", sock,
             "--memif-devargs", "socket-abstract=no", "--file-prefix", gen_prefix, "--no-huge",
             "-c", str(SESSIONS), "-n", str(COUNT), "-d", "60s", "--drain", "10s",
             "--timeout", "20s", "--link-timeout", "30s", "--to", "rcpt@" + DOMAIN,
             "--json", gen_json],
            stdout=open(gen_log, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        end = time.monotonic() + 20
        while not os.path.exists(sock) and gen.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
        assert os.path.exists(sock), "gen made no memif socket:\n" + tail(gen_log)

        sl = subprocess.Popen([SLUICED, "-c", conf], stdout=open(sl_log, "w"),
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              start_new_session=True)
        try:
            rc = gen.wait(timeout=150)
        except subprocess.TimeoutExpired:
            raise AssertionError("gen did not finish in 150 s:\n%s\nsluiced:\n%s" % (
                tail(gen_log), tail(sl_log)))
        out = open(gen_log, errors="replace").read()
        assert rc == 0, "gen exit %d:\n%s\nsluiced:\n%s" % (rc, out[-3000:], tail(sl_log))
        assert sl.poll() is None, "sluiced died:\n" + tail(sl_log)
        stop(sl, "sluiced")
        assert sl.returncode == 0, "sluiced exit %d:\n%s" % (sl.returncode, tail(sl_log))
        # the driver removes its socket file when gen closes the port
        assert not os.path.exists(sock), "memif socket file left behind by gen"

        g = json.load(open(gen_json))
        m = g["messages"]
        assert g["config"]["transport"] == "memif"
        assert m["errors"] == 0 and g["errors"] == {}, g["errors"]
        assert m["delivered"] == COUNT and g["replies"] == {"250": COUNT}, (m, g["replies"])
        assert g["connections"] == SESSIONS, g["connections"]

        # the queue: each 250 is one stored message, byte-exact
        q = queued(os.path.join(state, "queue"))
        assert len(q) == m["delivered"], "gen counted %d x 250, queue holds %d" % (
            m["delivered"], len(q))
        seqs, total = {}, 0
        for qid, size in q.items():
            stored = body_of(os.path.join(state, "queue"), qid)
            assert len(stored) == size, (qid, size, len(stored))
            at = stored.find(b"From: <")
            assert at >= 0, (qid, stored[:300])
            for line in stored[:at].split(b"\r\n")[:-1]:   # sluiced's trace header only
                assert line.startswith((b"Received:", b" ", b"\t")), (qid, line)
            msg = stored[at:]
            total += len(msg)
            head, sep, body = msg.partition(b"\r\n\r\n")
            assert sep, qid
            stamp = [l for l in head.split(b"\r\n") if l.startswith(b"X-Sluice-Bench:")]
            assert len(stamp) == 1, (qid, head)
            run, seq, digest = stamp[0].split()[1:4]
            assert run.decode() == g["run_id"], (qid, run)
            assert hashlib.sha256(body).hexdigest() == digest.decode(), "body digest of " + qid
            assert int(seq) not in seqs, "seq %s stored twice (%s, %s)" % (seq, seqs[int(seq)], qid)
            seqs[int(seq)] = qid
        assert sorted(seqs) == list(range(1, COUNT + 1))
        assert total == g["bytes_delivered"], (total, g["bytes_delivered"])
        assert not hugepage_files([gen_prefix, sl_prefix])
        print("memif: %d x 250 in %.3f s (%.0f msg/s), queue holds %d, %d bytes byte-exact" % (
            m["delivered"], g["elapsed_s"], g["msgs_per_s"], len(q), total))
    finally:
        stop(gen, "sluice-bench gen")
        stop(sl, "sluiced")
        if os.path.exists(sock):
            os.unlink(sock)
        for p in (gen_prefix, sl_prefix):   # only our own EAL runtime dirs
            shutil.rmtree(os.path.join("/var/run/dpdk", p), ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    test_bench_memif()
    print("ok")
