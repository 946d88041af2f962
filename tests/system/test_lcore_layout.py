"""The "workers on their own lcores" layout, run on this 2-CPU machine.

The lab's sluiced gets `[lcores] workers = 2` (main 0 and io 1 as in
tests/lab.conf) and `cpu_map = 2@1`: EAL is started with
`--lcores 0@0,1@1,2@1`, so lcore 2 exists and shares CPU 1 with the io
lcore. The test checks what sluiced says (EAL line, the shared-CPU
warning, "worker(s) on their own lcores"), that an EAL thread for lcore 2
exists pinned to CPU 1, and that mail is accepted and stored byte-exact
through that worker: 4 concurrent smtplib clients x 10 messages. Without
the map, the same config is refused at start naming the CPU and the key.
Bounded: < 1 minute.
"""
import os
import smtplib
import subprocess

import pytest

from conftest import telemetry
from smtplab import (BUILD, DOMAIN, ROOT, LabThread, lab_down, make_body,
                     mail_lab_up, qid_of)

CLIENTS = 4
PER_CLIENT = 10


@pytest.fixture(scope="module")
def ml():
    lab = mail_lab_up("--set", "lcores.workers=2", "--set", "lcores.cpu_map=2@1")
    yield lab
    lab_down()


def log_text(ml):
    with open(ml.log, errors="replace") as f:
        return f.read()


def sluiced_pid():
    with open("/run/sluice-lab/pid") as f:
        return int(f.read().strip())


def test_log_says_workers_on_own_lcore(ml):
    log = log_text(ml)
    assert "EAL: sluiced --lcores 0@0,1@1,2@1 --main-lcore 0 " in log, log[-3000:]
    assert "warning: lcores 1 (io), 2 (workers) share CPU 1 ([lcores] cpu_map)" in log
    assert "info: lcores: 1 worker(s) on their own lcores" in log
    assert "1 worker(s) on their own lcores, STARTTLS" in log


def test_lcore_2_thread_on_cpu_1(ml):
    """EAL made a thread for lcore 2, pinned to CPU 1"""
    pid = sluiced_pid()
    names = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            names[f.read().strip()] = int(tid)
    assert "rte-worker-2" in names, sorted(names)
    assert "rte-worker-1" in names, sorted(names)
    assert os.sched_getaffinity(names["rte-worker-2"]) == {1}
    assert os.sched_getaffinity(names["rte-worker-1"]) == {1}


def _send(host, k):
    out = []
    s = smtplib.SMTP(host, 25, timeout=30)
    try:
        s.ehlo("layout%d.client.test" % k)
        for i in range(PER_CLIENT):
            n = k * PER_CLIENT + i
            body = make_body(n, 3000, 11)
            code, _ = s.mail("lay%d@client.test" % n)
            assert code == 250
            assert s.rcpt("lay%d@%s" % (n, DOMAIN))[0] == 250
            code, text = s.data(body)
            out.append((n, code, text.decode(), body))
    finally:
        s.quit()
    return out


def test_mail_through_own_lcore_worker(ml):
    c0 = telemetry("/sluice/smtp/counters")
    threads = [LabThread(_send, ml.sluice, k) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    res = [r for t in threads for r in t.result(120)]
    assert len(res) == CLIENTS * PER_CLIENT
    assert all(code == 250 for _, code, _, _ in res), [r[:3] for r in res if r[1] != 250]
    c1 = telemetry("/sluice/smtp/counters")
    assert c1["queued"] - c0["queued"] == CLIENTS * PER_CLIENT
    assert c1["worker/committed"] - c0["worker/committed"] == CLIENTS * PER_CLIENT
    for n, _, text, body in res:
        ml.check_queued(qid_of("250 " + text), "lay%d@client.test" % n,
                        ["lay%d@%s" % (n, DOMAIN)], body)


def test_without_map_refused():
    """workers = 2 without cpu_map on 2 CPUs: sluiced --check refuses,
    naming the key that would make it run"""
    if 2 in os.sched_getaffinity(0):
        pytest.skip("this machine has a CPU 2")
    conf = os.path.join(ROOT, "tests", "lab.conf")
    with open(conf) as f:
        text = f.read().replace("io = 1 ", "io = 1\nworkers = 2\n", 1)
    assert "workers = 2" in text
    path = "/tmp/sluice-layout-%d.conf" % os.getpid()
    with open(path, "w") as f:
        f.write(text.replace("nic_profile = tap",
                             "nic_profile = %s/nic-profiles/tap.conf" % ROOT))
    try:
        r = subprocess.run([os.path.join(BUILD, "sluiced"), "-c", path, "--check"],
                           capture_output=True, text=True, timeout=30)
    finally:
        os.unlink(path)
    assert r.returncode == 1, r
    assert "[lcores] workers: CPU 2 is not available to this process" in r.stderr
    assert "[lcores] cpu_map = 2@CPU" in r.stderr
