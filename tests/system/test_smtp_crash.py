"""SIGKILL sluiced during SMTP load, 8 times: after each restart every
message that got `250 ... queued as ID` is in the queue intact.

Load per round: 4 smtplib sessions in the lab namespace (each id is recorded
only after its 250 arrived, with the exact body sent) and one smtp-source
run (-v: its 250 replies carry the ids). After a random 0.3-1.5 s the test
runs `tests/lab kill` (SIGKILL), waits for the clients to notice, checks
nothing was lost (every id present with its envelope; exact bodies for a
random sample of 120 smtplib and 30 smtp-source messages per round), and
`tests/lab restart` brings sluiced back on the same
queue (on disk under /var/tmp, mode full). Bounded: 8 rounds, < 4 minutes.
"""
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time

from smtplab import (DOMAIN, LAB, LabThread, check_body, lab_cmd, lab_down,
                     make_body, mail_lab_up, qid_of)

ROUNDS = 8
BUDGET_S = 230
SOURCE_QID = re.compile(r"<<< 250 2\.0\.0 Ok: queued as ([0-9A-Z]{13})")


def loader(host, seed, stop, acked):
    """sessions of up to 10 messages until stop; appends (qid, sender,
    rcpt, body) after each 250; connection errors end the session"""
    import smtplib
    n = 0
    while not stop.is_set():
        try:
            with smtplib.SMTP(host, 25, local_hostname="crash.lab.test", timeout=5) as s:
                if s.ehlo()[0] != 250:
                    continue
                for _ in range(10):
                    if stop.is_set():
                        break
                    n += 1
                    body = make_body(n, 300 + (n * 131) % 8000, seed)
                    sender = "c%d-%d@client.test" % (seed, n)
                    rcpt = "k%d@%s" % (n % 5, DOMAIN)
                    if s.mail(sender, ["BODY=8BITMIME"])[0] != 250 or s.rcpt(rcpt)[0] != 250:
                        break
                    code, resp = s.data(body)
                    if code == 250:
                        acked.append((qid_of("250 " + resp.decode()), sender, rcpt, body))
        except (OSError, smtplib.SMTPException):
            time.sleep(0.05)
    return n


def test_sigkill_during_load_loses_nothing():
    base = os.environ.get("SLUICE_SMTP_CRASH_DIR", "/var/tmp")
    work = tempfile.mkdtemp(prefix="sluice-smtp-crash-", dir=base)
    seed = int(os.environ.get("SLUICE_CRASH_SEED", time.time_ns() % 1000003))
    rng = random.Random(seed)
    print("seed", seed, "state", work)
    start = time.monotonic()
    ml = mail_lab_up("--state", work, "--set", "storage.durability=full")
    acked_all, source_all = [], []
    try:
        for rnd in range(ROUNDS):
            assert time.monotonic() - start < BUDGET_S, "too slow: %d rounds" % rnd
            stop = threading.Event()
            acked = []
            threads = [LabThread(loader, ml.sluice, rnd * 10 + i, stop, acked) for i in range(4)]
            for t in threads:
                t.start()
            # its -v transcript goes to a file: a pipe nobody reads while
            # it runs would fill up and stall it
            src_log = os.path.join(work, "source%d.log" % rnd)
            with open(src_log, "wb") as f:
                src = subprocess.Popen([LAB, "exec", "smtp-source", "-v", "-s", "5",
                                        "-m", "100000", "-l", "2000",
                                        "-f", "src%d@client.test" % rnd,
                                        "-t", "dst@" + DOMAIN, "%s:25" % ml.sluice],
                                       stdout=f, stderr=subprocess.STDOUT)
            time.sleep(rng.uniform(0.3, 1.5))
            lab_cmd("kill")
            # connections to a dead sluiced get no RST (its TAP is gone):
            # smtp-source would wait minutes; stop it (our process)
            try:
                src.wait(timeout=3)
            except subprocess.TimeoutExpired:
                src.kill()
                src.wait()
            out = open(src_log, "rb").read()
            stop.set()
            for t in threads:
                t.result(timeout=60)
            ids = SOURCE_QID.findall(out.decode(errors="replace"))
            source_all += [(q, "src%d@client.test" % rnd) for q in ids]
            acked_all += acked
            lab_cmd("restart", timeout=120)
            q = ml.queue_list()
            missing = [a[0] for a in acked_all if a[0] not in q]
            missing += [i for i, _ in source_all if i not in q]
            assert not missing, "round %d: acknowledged but not queued: %s" % (rnd, missing[:10])
            # envelope and exact body: a sample of this round (every id
            # was checked present above)
            for qid, sender, rcpt, body in rng.sample(acked, min(len(acked), 120)):
                ml.check_queued(qid, sender, [rcpt], body)
            for qid, sender in source_all:
                assert q[qid]["sender"] == sender and q[qid]["rcpts"] == ["dst@" + DOMAIN]
            for qid in ids[:30]:
                env, stored = ml.queue_show(qid)
                start_at = stored.find(b"From: <")
                assert start_at >= 0
                check_body(stored, stored[start_at:], qid)
            print("round %d: %d smtplib + %d smtp-source acknowledged, all queued (%d in queue)"
                  % (rnd, len(acked), len(ids), len(q)))
        # the load was real
        assert len(acked_all) >= 8 * ROUNDS and len(source_all) >= 50 * ROUNDS, \
            (len(acked_all), len(source_all))
        # and the check can fail: an id never acknowledged is not in the queue
        assert "0000000000001" not in ml.queue_list()
        log = open(ml.log, errors="replace").read()
        assert log.count("info: ready:") >= ROUNDS + 1
    finally:
        lab_down()
        shutil.rmtree(work, ignore_errors=True)
