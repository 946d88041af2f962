"""Backpressure end to end, with real clients over the real stack.

The lab runs with a writer that falls behind on purpose
(`[storage] lab_commit_delay_ms` = DELAY_MS: the writer thread holds every
batch that long before its commit; LAB ONLY), small priority rings
(`[smtp] ring_size` = RING, the minimum) and a short `queue_wait_ms`
(WAIT_MS). Clients are asyncio sessions in a thread inside the lab
namespace; every session first gets to 354 (DATA), then all send their
message at once (a barrier), so the ends of data reach sluiced together.

Arithmetic of the accept path (dataplane/smtpd.c, worker.c, mstore.c):
a finished message is first in a priority ring (RING slots, rte_ring
with RING_F_EXACT_SZ; every message here has the default priority, so
one ring), then taken by the worker, which submits it to the writer
through its producer (PRODUCER_DEPTH = 256 outstanding submissions,
mstore_producer); a submission refused for depth is held by the worker
(one message) and the worker stops taking from the rings. So while the
writer sleeps on its first batch at most

    IN_FLIGHT = PRODUCER_DEPTH + 1 + RING = 256 + 1 + 64 = 321

messages are in the pipeline; a session that finishes DATA when the ring
is full waits (reads nothing, answers nothing) and, WAIT_MS later, gets
`451 4.3.0 Local error in processing: queue busy, try again later`
(push_ring_full, push_wait_timeout). No ring slot frees before the first
commit (DELAY_MS after the first gather), and DELAY_MS (3000) is well
above WAIT_MS (1000), so with N_BURST = 400 sessions in one burst at
least N_BURST - IN_FLIGHT = 79 must get 451 and at least IN_FLIGHT = 321
get 250 (every message that entered the pipeline is committed). Every
250 comes at least DELAY_MS after the client sent the final dot: the
commit that carried it slept DELAY_MS after gathering it.

Also here: a queue above its high watermark answers 452 4.3.1 (at end of
data once the writer refuses a message, then at MAIL), in its own small
lab (map_size_mb 2, high_watermark 0.5).

Bounded: every session has a deadline, every loop a count; < 3 minutes.
"""
import asyncio
import re
import time

import pytest

from conftest import telemetry
from smtplab import DOMAIN, LabThread, in_lab, lab_down, make_body, mail_lab_up, qid_of

DELAY_MS = 3000
WAIT_MS = 1000
RING = 64
PRODUCER_DEPTH = 256        # mstore_producer: stor_writer_producer(w, 256)
IN_FLIGHT = PRODUCER_DEPTH + 1 + RING
N_BURST = 400
N_SLOW = 24                 # well below IN_FLIGHT: the writer is slow, rings never fill
BODY = 1500

BUSY_451 = "451 4.3.0 Local error in processing: queue busy, try again later"


@pytest.fixture(scope="module")
def ml():
    lab = mail_lab_up("--set", "storage.lab_commit_delay_ms=%d" % DELAY_MS,
                      "--set", "smtp.queue_wait_ms=%d" % WAIT_MS,
                      "--set", "smtp.ring_size=%d" % RING,
                      "--set", "smtp.per_client_max_conns=0",
                      # the accept path alone: with delivery on, the
                      # scheduler's updates go through the same writer and
                      # its counters
                      "--set", "delivery.enabled=no")
    yield lab
    lab_down()


def counters():
    return telemetry("/sluice/smtp/counters")


def delta(after, before, key):
    return after[key] - before[key]


# ---- the burst client ----

def stuff(body):
    """RFC 5321 4.5.2 transparency: a line starting with '.' gets one more"""
    return b"\r\n".join(b"." + l if l.startswith(b".") else l
                         for l in body.split(b"\r\n"))


async def _reply(r):
    lines = []
    while True:
        line = await r.readline()
        if not line:
            raise ConnectionError("closed after %r" % b"".join(lines))
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), b"".join(lines).decode(errors="replace").rstrip("\r\n")


async def _session(host, i, seed, body, st):
    """one transaction; result dict in st['res'][i]"""
    res = st["res"][i] = {"stage": "connect"}
    r, w = await asyncio.open_connection(host, 25)
    try:
        code, text = await _reply(r)
        steps = [(b"EHLO bp%d.client.test\r\n" % i, 250),
                 (b"MAIL FROM:<bp%d.%d@client.test>\r\n" % (seed, i), 250),
                 (b"RCPT TO:<bp%d.%d@%s>\r\n" % (seed, i, DOMAIN.encode()), 250),
                 (b"DATA\r\n", 354)]
        if code != 220:
            res.update(stage="banner", code=code, text=text)
            return
        for line, want in steps:
            w.write(line)
            code, text = await _reply(r)
            if code != want:
                res.update(stage=line.decode().strip(), code=code, text=text)
                return
        res["stage"] = "ready"
        st["ready"] += 1
        if st["ready"] == st["n"]:
            st["go"].set()
        await st["go"].wait()
        w.write(stuff(body) + b".\r\n")
        t0 = time.monotonic()
        await w.drain()
        code, text = await _reply(r)
        res.update(stage="eod", code=code, text=text, latency=time.monotonic() - t0)
        w.write(b"QUIT\r\n")
        res["quit"] = (await _reply(r))[0]
    finally:
        w.close()


async def _burst(host, n, seed, bodies, limit_s):
    st = {"res": [None] * n, "ready": 0, "n": n, "go": asyncio.Event()}

    async def one(i):
        try:
            await asyncio.wait_for(_session(host, i, seed, bodies[i], st), limit_s)
        except Exception as e:  # noqa: BLE001 - reported per session
            st["res"][i] = dict(st["res"][i] or {}, error=repr(e))

    tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
    # the barrier opens when all are at 354, or after 60 s (then the
    # test fails on the sessions that did not get there)
    try:
        await asyncio.wait_for(st["go"].wait(), 60)
    except asyncio.TimeoutError:
        st["go"].set()
    await asyncio.gather(*tasks)
    return st["res"]


def burst(ml, n, seed, limit_s=90):
    """n concurrent transactions from the lab namespace, ends of data sent
    together; returns (results, bodies)"""
    bodies = [make_body(i, BODY, seed) for i in range(n)]
    t = LabThread(lambda: asyncio.run(_burst(ml.sluice, n, seed, bodies, limit_s)))
    t.start()
    return t.result(limit_s + 70), bodies


def sender(seed, i):
    return "bp%d.%d@client.test" % (seed, i)


def check_burst_sane(res):
    bad = [(i, r) for i, r in enumerate(res) if not r or r.get("stage") != "eod" or "error" in r]
    assert not bad, "sessions that did not reach an end-of-data reply: %d, e.g. %r" % (
        len(bad), bad[:5])
    assert all(r.get("quit") == 221 for r in res), [r for r in res if r.get("quit") != 221][:5]


def wait_idle(before_queued=None, timeout=30):
    """counters once no session waits for a ring and the rings are empty"""
    end = time.monotonic() + timeout
    while True:
        c = counters()
        if c["waiting"] == 0 and all(c["ring/%d/depth" % p] == 0 for p in range(8)):
            return c
        assert time.monotonic() < end, "still waiting after %d s: %r" % (timeout, c)
        time.sleep(0.2)


# ---- tests ----

def test_slow_writer_sessions_wait_for_commit(ml):
    """N_SLOW concurrent messages: every one is answered 250 only after its
    commit, at least DELAY_MS after its final dot (the session waited); no
    ring filled (N_SLOW < RING), nothing was refused, all are in the queue
    byte-exact"""
    seed = 1
    c0 = counters()
    res, bodies = burst(ml, N_SLOW, seed)
    check_burst_sane(res)
    codes = [r["code"] for r in res]
    assert codes == [250] * N_SLOW, [(r["code"], r["text"]) for r in res if r["code"] != 250]
    lat = sorted(r["latency"] for r in res)
    assert lat[0] >= DELAY_MS / 1000.0, "250 before the delayed commit: %r" % lat[:5]
    # two or three batches at most (the first gather, then the rest)
    assert lat[-1] < 4 * DELAY_MS / 1000.0, lat[-5:]
    c1 = wait_idle()
    assert delta(c1, c0, "queued") == N_SLOW
    assert delta(c1, c0, "pushback/ring_full") == 0
    assert delta(c1, c0, "pushback/wait_timeout") == 0
    assert delta(c1, c0, "pushback/writer_busy") == 0
    assert delta(c1, c0, "writer/committed") == N_SLOW
    assert 1 <= delta(c1, c0, "writer/batches") <= 3, (c0, c1)
    assert c1["eod_to_250_max_us"] >= DELAY_MS * 1000
    for i, r in enumerate(res):
        ml.check_queued(qid_of(r["text"]), sender(seed, i), ["bp%d.%d@%s" % (seed, i, DOMAIN)],
                        bodies[i])


def test_full_rings_wait_then_451(ml):
    """N_BURST messages at once: IN_FLIGHT fill producer + held + ring, the
    rest wait for the ring past WAIT_MS and get 451 4.3.0 (counted as
    ring_full and wait_timeout; writer_busy shows the worker held back).
    Every 250 is in the queue byte-exact, no 451 is"""
    seed = 2
    c0 = counters()
    t0 = time.monotonic()
    res, bodies = burst(ml, N_BURST, seed)
    took = time.monotonic() - t0
    check_burst_sane(res)
    ok = [i for i, r in enumerate(res) if r["code"] == 250]
    busy = [i for i, r in enumerate(res) if r["code"] == 451]
    other = [(r["code"], r["text"]) for r in res if r["code"] not in (250, 451)]
    assert not other, other[:5]
    # exactly IN_FLIGHT entered the pipeline before it was full; the rest
    # waited and timed out long before the first commit freed a slot
    assert (len(ok), len(busy)) == (IN_FLIGHT, N_BURST - IN_FLIGHT), took
    for i in busy:
        assert res[i]["text"] == BUSY_451, res[i]
    # each 451 waited WAIT_MS for the ring (sluiced counts whole
    # milliseconds: up to 1 ms less), and was answered before any commit
    # could free a slot
    early = sorted(round(res[i]["latency"], 4) for i in busy
                   if res[i]["latency"] < (WAIT_MS - 2) / 1000.0)
    assert not early, "%d of %d sessions got 451 before queue_wait_ms (%d ms): " \
        "after %r s" % (len(early), len(busy), WAIT_MS, early[:20])
    late = [res[i]["latency"] for i in busy if res[i]["latency"] >= DELAY_MS / 1000.0]
    assert not late, late[:10]
    for i in ok:
        assert res[i]["latency"] >= DELAY_MS / 1000.0, res[i]
    c1 = wait_idle()
    print("burst of %d: %d x 250 (latency %.2f..%.2f s), %d x 451 (%.2f..%.2f s); "
          "ring_full +%d, wait_timeout +%d, writer_busy +%d, batches +%d, max_batch %d" % (
              N_BURST, len(ok), min(res[i]["latency"] for i in ok),
              max(res[i]["latency"] for i in ok), len(busy),
              min([res[i]["latency"] for i in busy] or [0]),
              max([res[i]["latency"] for i in busy] or [0]),
              delta(c1, c0, "pushback/ring_full"), delta(c1, c0, "pushback/wait_timeout"),
              delta(c1, c0, "pushback/writer_busy"), delta(c1, c0, "writer/batches"),
              c1["writer/max_batch"]))
    assert c1["waiting"] == 0
    assert delta(c1, c0, "pushback/wait_timeout") == len(busy)
    assert delta(c1, c0, "pushback/ring_full") >= len(busy)
    assert delta(c1, c0, "pushback/writer_busy") >= 1
    assert delta(c1, c0, "queued") == len(ok)
    assert delta(c1, c0, "writer/committed") == len(ok)
    assert delta(c1, c0, "replies_4xx") == len(busy)
    # the queue: every 250 byte-exact, no 451
    q = ml.queue_list()
    senders = {v["sender"] for v in q.values()}
    for i in busy:
        assert sender(seed, i) not in senders, "a message answered 451 is queued: %d" % i
    for i in ok:
        ml.check_queued(qid_of(res[i]["text"]), sender(seed, i),
                        ["bp%d.%d@%s" % (seed, i, DOMAIN)], bodies[i])
    assert sum(1 for v in q.values() if v["sender"].startswith("bp%d." % seed)) == len(ok)


def test_accepts_again_after_pressure(ml):
    """once the burst drained (no session waiting, rings empty) new mail is
    accepted: 250 for each (after the still-delayed commit), in the queue,
    and nothing waits or times out"""
    seed = 3
    c0 = wait_idle()
    res, bodies = burst(ml, 8, seed)
    check_burst_sane(res)
    assert [r["code"] for r in res] == [250] * 8, [r["text"] for r in res]
    c1 = wait_idle()
    assert delta(c1, c0, "pushback/ring_full") == 0
    assert delta(c1, c0, "pushback/wait_timeout") == 0
    for i, r in enumerate(res):
        ml.check_queued(qid_of(r["text"]), sender(seed, i), ["bp%d.%d@%s" % (seed, i, DOMAIN)],
                        bodies[i])


# ---- queue above its high watermark ----

WM_BODY = 100000


def _fill(host, n_max):
    """messages of WM_BODY bytes one after another until one is refused;
    then one more MAIL. Returns [(final code, text, qid or None)], mail"""
    import smtplib
    out = []
    for i in range(n_max):
        body = make_body(i, WM_BODY, 7)
        s = smtplib.SMTP(host, 25, timeout=30)
        try:
            s.ehlo("wm.client.test")
            code, text = s.mail("wm%d@client.test" % i)
            if code != 250:
                out.append(("mail", code, text.decode(), None))
                break
            assert s.rcpt("wm%d@%s" % (i, DOMAIN))[0] == 250
            try:
                code, text = s.data(body)
            except smtplib.SMTPDataError as e:
                code, text = e.smtp_code, e.smtp_error
            text = text.decode()
            out.append(("data", code, text, body))
            if code != 250:
                code2, text2 = s.rset()
                code2, text2 = s.mail("wm%d.again@client.test" % i)
                out.append(("mail", code2, text2.decode(), None))
                break
        finally:
            try:
                s.quit()
            except smtplib.SMTPException:
                pass
    return out


def test_queue_above_watermark_452():
    """map_size_mb 2, high_watermark 0.5: messages of 100 kB are accepted
    until the writer refuses one (452 4.3.1 at end of data, store_full);
    from then on MAIL gets 452 4.3.1 (queue_full). Every 250 is in the
    queue byte-exact, the refused one is not. Runs last: its own lab."""
    lab_down()          # the module's lab, ours
    lab = mail_lab_up("--set", "storage.map_size_mb=2", "--set", "storage.high_watermark=0.5",
                      "--set", "delivery.enabled=no")
    try:
        c0 = counters()
        out = in_lab(_fill, lab.sluice, 20, timeout=240)
        c1 = counters()
        accepted = [x for x in out if x[0] == "data" and x[1] == 250]
        # 0.5 of 2 MiB holds some, not all, of 20 messages of 100 kB
        assert 3 <= len(accepted) <= 12, [(x[0], x[1], x[2]) for x in out]
        kind, code, text, _ = out[-1]
        assert kind == "mail" and code == 452 and text.startswith("4.3.1"), out[-1][:3]
        refused = [x for x in out if x[0] == "data" and x[1] != 250]
        assert len(refused) == 1 and refused[0][1] == 452 and \
            refused[0][2].startswith("4.3.1"), [x[:3] for x in out]
        assert delta(c1, c0, "pushback/store_full") == 1
        assert delta(c1, c0, "pushback/queue_full") >= 1
        assert c1["queue/full"] == 1
        q = lab.queue_list()
        assert len(q) == len(accepted), (len(q), len(accepted))
        n = len(accepted)
        assert not any(v["sender"] == "wm%d@client.test" % n for v in q.values())
        for i, (_, _, text, body) in enumerate(accepted):
            qid = re.search(r"queued as ([0-9A-Za-z]{13})", text).group(1)
            lab.check_queued(qid, "wm%d@client.test" % i, ["wm%d@%s" % (i, DOMAIN)], body)
    finally:
        lab_down()
