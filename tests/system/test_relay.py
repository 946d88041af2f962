"""Relay delivery (issue 6), end to end through the lab: clients in the lab
namespace -> sluiced (accept, durable queue, scheduler, outbound SMTP over
its own stack) -> tests/system/smtpsink.py listening on the namespace's
address 198.18.0.2:2525 (the route of relay.test, sender.test, hold.test).

What a user would notice, checked here:
  - every accepted message arrives exactly once per recipient, its body
    byte-exact after the Received header sluiced prepended at accept (the
    header carries the queue id: "id QID"), with DATA (dot-stuffing on the
    wire) and with CHUNKING offered (BDAT); the queue empties; the mail log
    says status=sent for each recipient
  - next hop down: nothing delivered, mail stays queued; next hop back: all
    delivered after a retry (retry_schedule 2s,2s,3s)
  - sluicectl link close relay.test: no connection to the next hop, queue
    list shows the messages held; link open: delivered in priority order
    (priorities from directory prio rules; one connection per destination)
  - 550 for one of three recipients: the other two delivered, an RFC 3464
    bounce (multipart/report, delivery-status: Action failed, Status 5.1.1,
    Final-Recipient) reaches the sender's domain; 451 throughout past
    max_lifetime (20 s): a bounce for that recipient
  - SIGKILL of sluiced during delivery with a slow next hop: after the
    restart every acknowledged message is delivered (at least once, exact
    body) and a link closed before the kill is still closed
  - Postfix's smtp-sink as the next hop: 2000 messages from smtp-source,
    each dumped exactly once with smtp-source's body, no deferral

Failures print the tail of sluiced's log and the sink's counts and log.
Bounded: every wait has a deadline; the module takes < 5 minutes.
"""
import contextlib
import email
import email.policy
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import wait_for
from smtplab import (BUILD, LAB, STOR, LabThread, PostfixSink, SinkProc, check_body, in_lab, lab_cmd, lab_down,
                     make_body, mail_lab_up, qid_of)

RELAY = "relay.test"          # routed to peer:2525 by mail_lab_up
SENDER_DOM = "sender.test"    # routed to the sink too: bounces land there
LIFETIME_S = 20
DIRECTORY_TXT = "/run/sluice-lab/directory.txt"
RECEIVED_ID = re.compile(rb"^Received: .*?\bid ([0-9A-Za-z]{13})\b", re.S)
SOURCE_QID = re.compile(r"<<< 250 2\.0\.0 Ok: queued as ([0-9A-Z]{13})")


# ---------------------------------------------------------------- helpers

def ctl(*args, timeout=30):
    """tests/lab ctl --json ARGS: the command's JSON data (a tests/lab
    without 'ctl': BUILD/control/sluicectl -c on the lab's config)"""
    import json
    r = subprocess.run([LAB, "ctl", "--json", *args], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode == 2 and "usage: tests/lab" in r.stderr:
        r = subprocess.run([os.path.join(BUILD, "control", "sluicectl"), "-c",
                            "/run/sluice-lab/sluiced.conf", "--json", *args],
                           capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, "tests/lab ctl --json %s failed (%d): %s %s" % (
        " ".join(args), r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return json.loads(r.stdout)


def ctl_queue():
    """{qid: entry} from `queue list` (entries are dicts with a state)"""
    d = ctl("queue", "list")
    items = d
    if isinstance(d, dict):
        if "data" in d and not any(k in d for k in ("messages", "queue")):
            d = d["data"]
        items = d.get("messages", d.get("queue")) if isinstance(d, dict) else d
        if items is None:
            items = next((v for v in d.values() if isinstance(v, list)), [])
    out = {}
    for m in items:
        q = m.get("qid", m.get("id", m.get("queue_id")))
        out[str(q)] = m
    return out


def sluiced_log(n=80):
    r = subprocess.run([LAB, "log", str(n)], capture_output=True, text=True, timeout=30)
    return r.stdout


def diag(sink, what=""):
    """context for a failure message"""
    return "%s\n---- sluiced log (tests/lab log 80) ----\n%s\n---- sink stats ----\n%s\n" \
           "---- sink log tail ----\n%s" % (what, sluiced_log(80), sink.stats(), sink.log_tail(30))


def received_qid(body):
    m = RECEIVED_ID.match(body)
    return m.group(1).decode() if m else None


def deliveries(sink):
    """{qid: [sink message, ...]} for every non-bounce message, by the queue
    id in sluiced's Received header"""
    out = {}
    for m in sink.messages():
        if m["sender"] == "":
            continue
        out.setdefault(received_qid(m["body"]), []).append(m)
    return out


def bounces_to(sink, rcpt):
    return [m for m in sink.messages() if m["sender"] == "" and rcpt in m["rcpts"]]


def wait_delivered(sink, expect, timeout, what):
    """expect: {qid: set(rcpts)}; wait until every rcpt of every qid
    arrived (or fail with the diagnostics); returns deliveries()"""
    def done():
        d = deliveries(sink)
        for q, rcpts in expect.items():
            got = set(r for m in d.get(q, []) for r in m["rcpts"])
            if not rcpts <= got:
                return None
        return d
    d = wait_for(done, timeout=timeout, step=0.25)
    if not d:
        d = deliveries(sink)
        missing = {q: sorted(r - set(x for m in d.get(q, []) for x in m["rcpts"]))
                   for q, r in expect.items()}
        missing = {q: r for q, r in missing.items() if r}
        raise AssertionError(diag(sink, "%s: %d of %d messages not (fully) delivered in %d s: %s"
                                  % (what, len(missing), len(expect), timeout,
                                     sorted(missing.items())[:10])))
    return d


def check_exactly_once(sink, d, expect, bodies, what):
    """each (qid, rcpt) delivered once; each copy's body = Received + sent"""
    for q, rcpts in expect.items():
        copies = d[q]
        per_rcpt = {}
        for m in copies:
            for r in m["rcpts"]:
                per_rcpt[r] = per_rcpt.get(r, 0) + 1
            assert set(m["rcpts"]) <= rcpts, (what, q, m["rcpts"], rcpts)
            check_body(m["body"], bodies[q], "%s %s" % (what, q))
            prefix = m["body"][:len(m["body"]) - len(bodies[q])]
            assert b"id " + q.encode() in prefix, (what, q, prefix[:400])
        dup = {r: n for r, n in per_rcpt.items() if n != 1}
        assert not dup, diag(sink, "%s: %s delivered more than once: %s" % (what, q, dup))


def mail_log_has(qid, rcpt, status):
    log = open(MAIL_LOG[0], errors="replace").read()
    return re.search(r"%s: to=<%s>,.*\bstatus=%s\b" % (re.escape(qid), re.escape(rcpt), status), log)


MAIL_LOG = [None]


def smtp_send(host, msgs, helo="client.lab.test", mail_opts=()):
    """one smtplib session; msgs = [(sender, [rcpts], body)];
    returns [(qid, refused)] after each 250"""
    import smtplib
    out = []
    with smtplib.SMTP(host, 25, local_hostname=helo, timeout=30) as s:
        assert s.ehlo()[0] == 250
        for sender, rcpts, body in msgs:
            code, resp = s.mail(sender, ["BODY=8BITMIME", *mail_opts])
            assert code == 250, (code, resp)
            for r in rcpts:
                code, resp = s.rcpt(r)
                assert code == 250, (r, code, resp)
            code, resp = s.data(body)
            assert code == 250, (code, resp)
            out.append(qid_of("250 " + resp.decode()))
    return out


def add_prio_rules(ml, lines):
    """the lab's directory plus prio lines, imported into the running
    sluiced's directory (applies to the next command)"""
    text = open(DIRECTORY_TXT).read() + "".join(l + "\n" for l in lines)
    f = tempfile.NamedTemporaryFile("w", prefix="sluice-dir-", suffix=".txt", delete=False)
    f.write(text)
    f.close()
    try:
        r = subprocess.run([STOR, "dir-import", os.path.join(ml.state, "directory"), f.name],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    finally:
        os.unlink(f.name)


def lab_pid():
    try:
        return open("/run/sluice-lab/pid").read().strip()
    except OSError:
        return None


def lab_down_if_ours(pid):
    """tests/lab down unless another run replaced our lab meanwhile (the
    lab is shared by everyone on the machine; never take down theirs)"""
    now = lab_pid()
    if now is not None and now != pid:
        print("the lab now runs sluiced pid %s, not ours (%s): left alone" % (now, pid))
        return
    lab_down()


# ---------------------------------------------------------------- fixtures

@contextlib.contextmanager
def own_lab_and_sink(sink_cls, *lab_args, sink_args=()):
    """a lab of this test's own (mail_lab_up LAB_ARGS) and a sink_cls
    (SinkProc or PostfixSink, with SINK_ARGS) on the peer's port 2525 in a
    work dir; everything stopped and removed afterwards"""
    work = tempfile.mkdtemp(prefix="sluice-relay-", dir="/var/tmp")
    os.chmod(work, 0o755)      # smtp-sink writes its dumps as nobody
    try:
        ml = mail_lab_up(*lab_args)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    MAIL_LOG[0] = ml.log
    pid = lab_pid()
    sink = sink_cls(os.path.join(work, "sink"), port=2525, args=list(sink_args))
    try:
        sink.start()
        yield ml, sink
    finally:
        sink.stop()
        lab_down_if_ours(pid)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="class")
def env():
    with own_lab_and_sink(SinkProc, *CLASS_LAB_ARGS,
                          sink_args=["--rcpt-reply", "bad@%s=550 5.1.1 no such user" % RELAY,
                                     "--rcpt-reply", "slow@%s=451 4.3.0 try later" % RELAY]) as e:
        yield e


CLASS_LAB_ARGS = ("--route", "%s=peer:2525" % SENDER_DOM,
                  "--set", "delivery.retry_schedule=2s,2s,3s",
                  "--set", "delivery.max_lifetime=%ds" % LIFETIME_S,
                  "--set", "delivery.delay_warning=0",
                  "--set", "delivery.max_conns_per_dest=1")


# ---------------------------------------------------------------- tests

def parse_dsn(raw):
    """(report message, [per-recipient field dicts], per-message fields)"""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status", msg["Content-Type"]
    parts = msg.get_payload()
    assert parts[0].get_content_type() == "text/plain"
    ds = parts[1]
    assert ds.get_content_type() == "message/delivery-status", ds.get_content_type()
    blocks = ds.get_payload()
    return msg, [dict((k.lower(), v) for k, v in b.items()) for b in blocks[1:]], \
        dict((k.lower(), v) for k, v in blocks[0].items()), parts


@pytest.mark.usefixtures("env")
class TestRelay:
    """one lab for these (class scope, so it is down before the crash test
    brings up its own): retry 2s,2s,3s, lifetime 20 s, one connection per
    destination (delivery order = dispatch order)"""

    def test_byte_exact_exactly_once(self, env):
        ml, sink = env
        bodies, expect = {}, {}
        # smtplib: 3 sessions x 10 messages, 1..3 recipients, dot lines, 8-bit
        def batch(seed):
            msgs = []
            for n in range(10):
                body = make_body(n, 200 + (n * 2741) % 30000, seed)
                rcpts = ["x%d-%d-%d@%s" % (seed, n, i, RELAY) for i in range(1 + n % 3)]
                msgs.append(("s%d-%d@%s" % (seed, n, SENDER_DOM), rcpts, body))
            return msgs, smtp_send(ml.sluice, msgs)
        threads = [LabThread(batch, 100 + i) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            msgs, qids = t.result(120)
            for (sender, rcpts, body), q in zip(msgs, qids):
                bodies[q], expect[q] = body, set(rcpts)
        # swaks
        body = b"From: <sw@sender.test>\r\nSubject: swaks relay\r\n\r\n" + \
            b"".join(b"swaks line %d\r\n" % i for i in range(50))
        path = os.path.join(sink.dir, "..", "swaks.eml")
        with open(path, "wb") as f:
            f.write(body[:-2])
        rc, out = ml.swaks("--to", "sw@" + RELAY, "--from", "sw@" + SENDER_DOM, "--data", path)
        assert rc == 0, out
        q = re.findall(r"queued as ([0-9A-Z]{13})", out)[-1]
        bodies[q], expect[q] = body, {"sw@" + RELAY}
        # smtp-source: 5 sessions x 40 messages of 2 KB
        r = ml.exec("smtp-source", "-v", "-s", "5", "-m", "200", "-l", "2048",
                    "-f", "src@" + SENDER_DOM, "-t", "src@" + RELAY, "%s:25" % ml.sluice,
                    timeout=120, check=False)
        src_log = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        src_ids = SOURCE_QID.findall(src_log)
        assert r.returncode == 0 and len(set(src_ids)) == 200, src_log[-2000:]
        for q in src_ids:
            expect[q] = {"src@" + RELAY}
        d = wait_delivered(sink, expect, 90, "normal operation")
        time.sleep(3)      # late duplicates would show now
        d = deliveries(sink)
        for q in src_ids:  # smtp-source's body: what follows the Received header
            m = d[q][0]["body"]
            start = m.find(b"From: <src@sender.test>")
            assert start > 0, m[:400]
            bodies[q] = m[start:]
            assert re.match(rb"From: <src@sender\.test>\r\nTo: <src@relay\.test>\r\nDate: [^\r\n]+\r\n"
                            rb"Message-Id: <[^\r\n]+>\r\n\r\n(?:[0-9X]+\r\n)+\Z", bodies[q]), m[:300]
        check_exactly_once(sink, d, expect, bodies, "normal operation")
        # the sink's peer is sluiced; the queue empties; the mail log says sent
        assert {m["peer"].split(":")[0] for ms in d.values() for m in ms} == {ml.sluice}
        left = wait_for(lambda: not (set(expect) & set(ml.queue_list())), timeout=20)
        assert left, diag(sink, "delivered messages still queued: %s" %
                          sorted(set(expect) & set(ml.queue_list()))[:10])
        for q, rcpts in list(expect.items())[:40]:
            for r_ in rcpts:
                assert mail_log_has(q, r_, "sent"), diag(sink, "no status=sent line for %s %s" % (q, r_))
        # the next hop was up and answered 250 throughout: no attempt may
        # have been deferred (a deferral costs a retry step of latency)
        log = open(ml.log, errors="replace").read()
        deferred = [ln for ln in log.splitlines() if "status=deferred" in ln
                    and ln.split(": ", 1)[-1].split(":", 1)[0] in expect]
        assert not deferred, diag(sink, "%d deferrals with the next hop up, e.g.\n%s" % (
            len(deferred), "\n".join(deferred[:5])))


    def test_byte_exact_with_bdat(self, env):
        """the same with CHUNKING offered by the next hop"""
        ml, sink = env
        sink.stop()
        sink.args.append("--chunking")
        try:
            sink.start()
            msgs = [("bd%d@%s" % (n, SENDER_DOM), ["bd%d@%s" % (n, RELAY)], make_body(n, 500 + 7000 * n, 77))
                    for n in range(6)]
            qids = in_lab(smtp_send, ml.sluice, msgs)
            expect = {q: set(m[1]) for q, m in zip(qids, msgs)}
            bodies = {q: m[2] for q, m in zip(qids, msgs)}
            d = wait_delivered(sink, expect, 60, "BDAT")
            check_exactly_once(sink, d, expect, bodies, "BDAT")
            assert all(m["bdat"] for q in qids for m in d[q]), \
                diag(sink, "CHUNKING offered but sluiced used DATA")
        finally:
            sink.stop()
            sink.args.remove("--chunking")
            sink.start()


    def test_next_hop_down_then_up(self, env):
        ml, sink = env
        sink.stop()
        msgs = [("dn%d@%s" % (n, SENDER_DOM), ["dn%d@%s" % (n, RELAY)], make_body(n, 3000, 55))
                for n in range(5)]
        t0 = time.monotonic()
        qids = in_lab(smtp_send, ml.sluice, msgs)
        # a few attempts fail (connection refused): still queued, nothing lost
        time.sleep(5)
        q = ml.queue_list()
        assert all(x in q for x in qids), diag(sink, "sink down: messages left the queue: %s"
                                               % [x for x in qids if x not in q])
        assert wait_for(lambda: any(mail_log_has(x, m[1][0], "deferred") for x, m in zip(qids, msgs)),
                        timeout=10), diag(sink, "no status=deferred line while the next hop was down")
        before = len(sink.messages())
        sink.start()
        expect = {x: set(m[1]) for x, m in zip(qids, msgs)}
        d = wait_delivered(sink, expect, 45, "after the next hop came back")
        check_exactly_once(sink, d, expect, {x: m[2] for x, m in zip(qids, msgs)}, "down/up")
        assert len(sink.messages()) >= before + 5
        print("delivered %.1f s after the first send" % (time.monotonic() - t0))


    def test_link_closed_holds_then_priority_order(self, env):
        ml, sink = env
        add_prio_rules(ml, ["prio sender hi@%s 0" % SENDER_DOM, "prio sender lo@%s 7" % SENDER_DOM])
        ctl("link", "close", RELAY)
        try:
            time.sleep(1)
            conns = sink.connections_logged()
            n_before = len(sink.messages())
            # low first, high last: arrival order is the opposite of priority
            order = ["lo", "lo", "mid", "lo", "hi", "mid", "hi", "lo", "mid", "hi"]
            msgs = [("%s@%s" % (p, SENDER_DOM), ["pr%d@%s" % (i, RELAY)],
                     make_body(i, 1500, 91)) for i, p in enumerate(order)]
            qids = in_lab(smtp_send, ml.sluice, msgs)
            level = {q: ml.queue_list()[q]["prio"] for q in qids}
            assert [level[q] for q in qids] == [{"lo": 7, "mid": 4, "hi": 0}[p] for p in order], \
                "directory prio rules not applied: %s" % level
            time.sleep(5)
            assert sink.connections_logged() == conns and len(sink.messages()) == n_before, \
                diag(sink, "link closed, yet the next hop was contacted")
            q = ctl_queue()
            states = {x: (q.get(x) or {}).get("state") for x in qids}
            assert all(s == "held" for s in states.values()), \
                diag(sink, "queue list states while the link is closed: %s" % states)
        finally:
            ctl("link", "open", RELAY)
        expect = {x: set(m[1]) for x, m in zip(qids, msgs)}
        d = wait_delivered(sink, expect, 30, "after link open")
        check_exactly_once(sink, d, expect, {x: m[2] for x, m in zip(qids, msgs)}, "link open")
        arrived = sorted(qids, key=lambda x: d[x][0]["name"])
        got = [level[x] for x in arrived]
        assert got == sorted(got), diag(sink, "delivery order by level after link open: %s "
                                        "(sent as %s)" % (got, [level[x] for x in qids]))


    def test_5xx_one_of_three_bounces(self, env):
        ml, sink = env
        sender = "bouncer@" + SENDER_DOM
        rcpts = ["ok1@" + RELAY, "bad@" + RELAY, "ok2@" + RELAY]
        body = make_body(1, 2500, 33)
        qid, = in_lab(smtp_send, ml.sluice, [(sender, rcpts, body)])
        d = wait_delivered(sink, {qid: {"ok1@" + RELAY, "ok2@" + RELAY}}, 30, "5xx: the good two")
        check_exactly_once(sink, d, {qid: {"ok1@" + RELAY, "ok2@" + RELAY}}, {qid: body}, "5xx")
        b = wait_for(lambda: bounces_to(sink, sender), timeout=30, step=0.25)
        assert b, diag(sink, "no bounce to %s" % sender)
        assert len(b) == 1, "%d bounces" % len(b)
        msg, rcpt_fields, msg_fields, parts = parse_dsn(b[0]["body"])
        assert [f["final-recipient"].split(";", 1)[1].strip().lower() for f in rcpt_fields] == ["bad@" + RELAY], rcpt_fields
        f = rcpt_fields[0]
        assert f["final-recipient"].split(";")[0].strip().lower() == "rfc822"
        assert f["action"].strip().lower() == "failed", f
        assert f["status"].strip() == "5.1.1", f
        assert "no such user" in f.get("diagnostic-code", ""), f
        assert "reporting-mta" in msg_fields, msg_fields
        assert msg["To"] and sender in msg["To"]
        # the original's headers come back (third part)
        assert len(parts) > 2 and b"lab message 1" in parts[2].as_bytes(), \
            "no original headers in the bounce: %r" % b[0]["body"][-800:]
        assert wait_for(lambda: qid not in ml.queue_list(), timeout=20), "bounced message still queued"
        assert mail_log_has(qid, "bad@" + RELAY, "bounced")


    def test_expiry_bounces(self, env):
        ml, sink = env
        sender = "expiring@" + SENDER_DOM
        t0 = time.time()
        qid, = in_lab(smtp_send, ml.sluice, [(sender, ["slow@" + RELAY], make_body(2, 1200, 34))])
        b = wait_for(lambda: bounces_to(sink, sender), timeout=LIFETIME_S + 30, step=0.5)
        assert b, diag(sink, "no bounce %d s after a %d s lifetime" % (LIFETIME_S + 30, LIFETIME_S))
        assert b[0]["time"] - t0 >= LIFETIME_S - 1, "bounced after %.1f s, lifetime %d s" % (
            b[0]["time"] - t0, LIFETIME_S)
        refused = sum(1 for ln in sink.log_tail(100000).splitlines()
                      if "RCPT <slow@%s> refused" % RELAY in ln)
        assert refused >= 2, diag(sink, "only %d attempts for slow@ before it expired" % refused)
        msg, rcpt_fields, _, _ = parse_dsn(b[0]["body"])
        f, = rcpt_fields
        assert f["final-recipient"].split(";", 1)[1].strip().lower() == "slow@" + RELAY
        assert f["action"].strip().lower() == "failed", f
        assert f["status"].strip() in ("4.3.0", "4.4.7", "5.4.7"), f
        assert not [m for m in sink.messages() if "slow@" + RELAY in m["rcpts"]]
        assert wait_for(lambda: qid not in ml.queue_list(), timeout=20), "expired message still queued"


# ---------------------------------------------------------------- crash

def loader(host, seed, stop, acked, limit):
    import smtplib
    n = 0
    while not stop.is_set() and n < limit:
        try:
            with smtplib.SMTP(host, 25, local_hostname="crash.lab.test", timeout=5) as s:
                if s.ehlo()[0] != 250:
                    continue
                for _ in range(10):
                    if stop.is_set() or n >= limit:
                        break
                    n += 1
                    body = make_body(n, 400 + (n * 131) % 6000, seed)
                    sender = "k%d-%d@%s" % (seed, n, SENDER_DOM)
                    rcpt = "k%d-%d@%s" % (seed, n, RELAY)
                    if s.mail(sender, ["BODY=8BITMIME"])[0] != 250 or s.rcpt(rcpt)[0] != 250:
                        break
                    code, resp = s.data(body)
                    if code == 250:
                        acked.append((qid_of("250 " + resp.decode()), rcpt, body))
        except (OSError, smtplib.SMTPException):
            time.sleep(0.05)
    return n


def test_sigkill_during_delivery():
    work = tempfile.mkdtemp(prefix="sluice-relay-crash-", dir="/var/tmp")
    state = os.path.join(work, "state")
    os.mkdir(state)
    try:
        ml = mail_lab_up("--state", state, "--set", "storage.durability=full",
                         "--route", "%s=peer:2525" % SENDER_DOM, "--route", "hold.test=peer:2525",
                         "--set", "delivery.retry_schedule=2s,2s,3s")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    MAIL_LOG[0] = ml.log
    sink = SinkProc(os.path.join(work, "sink"), port=2525, args=["--data-delay", "0.2"])
    try:
        sink.start()
        ctl("link", "close", "hold.test")
        held = [("h%d@%s" % (n, SENDER_DOM), ["h%d@hold.test" % n], make_body(n, 900, 5)) for n in range(3)]
        held_ids = in_lab(smtp_send, ml.sluice, held)
        stop = threading.Event()
        acked = []
        threads = [LabThread(loader, ml.sluice, i, stop, acked, 150) for i in range(4)]
        for t in threads:
            t.start()
        # kill once deliveries are under way (slow sink: several in flight)
        assert wait_for(lambda: sink.stats().get("messages", 0) >= 10, timeout=30), \
            diag(sink, "no deliveries started under load")
        lab_cmd("kill")
        delivered_before_kill = sink.stats().get("messages", 0)
        stop.set()
        for t in threads:
            t.result(60)
        lab_cmd("restart", timeout=120)
        expect = {q: {r} for q, r, _ in acked}
        bodies = {q: b for q, _, b in acked}
        assert len(expect) >= 40, "too little load: %d acknowledged" % len(expect)
        d = wait_delivered(sink, expect, 120, "after SIGKILL + restart")
        for q in expect:                     # at least once, exact bodies
            for m in d[q]:
                check_body(m["body"], bodies[q], q)
        dups = sum(len(d[q]) - 1 for q in expect)
        print("%d acknowledged, %d delivered before the kill, %d duplicates after restart"
              % (len(expect), delivered_before_kill, dups))
        # the closed link survived the restart: nothing for hold.test
        time.sleep(5)
        assert not [m for m in sink.messages() if any(r.endswith("@hold.test") for r in m["rcpts"])], \
            diag(sink, "a link closed before the kill delivered after the restart")
        q = ctl_queue()
        assert all((q.get(x) or {}).get("state") == "held" for x in held_ids), \
            diag(sink, "hold.test messages after restart: %s" % {x: q.get(x) for x in held_ids})
        ctl("link", "open", "hold.test")
        d = wait_delivered(sink, {x: set(m[1]) for x, m in zip(held_ids, held)}, 30,
                           "hold.test after link open")
        for x, m in zip(held_ids, held):
            check_body(d[x][0]["body"], m[2], x)
    finally:
        sink.stop()
        # ours if the lab still runs on our state dir (restart changed the pid)
        if open("/run/sluice-lab/state_dir").read().strip() == os.path.realpath(state) \
                if os.path.exists("/run/sluice-lab/state_dir") else True:
            lab_down()
        else:
            print("the lab now runs on another state dir: someone else's, left alone")
        shutil.rmtree(work, ignore_errors=True)


def test_many_connections_no_spurious_deferrals():
    """20 connections per destination (the default), 4000 messages from 20
    smtp-source sessions, sink up throughout: all delivered within 30 s
    (default retry schedule: a deferral costs a minute) and no deferral
    logged"""
    with own_lab_and_sink(SinkProc, "--route", "%s=peer:2525" % SENDER_DOM,
                          "--set", "smtp.per_client_max_conns=0") as (ml, sink):
        r = ml.exec("smtp-source", "-v", "-s", "20", "-m", "4000", "-l", "1024",
                    "-f", "mc@" + SENDER_DOM, "-t", "mc@" + RELAY, "%s:25" % ml.sluice,
                    timeout=120, check=False)
        ids = set(SOURCE_QID.findall(r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")))
        assert r.returncode == 0 and len(ids) == 4000, (r.returncode, len(ids))
        wait_delivered(sink, {q: {"mc@" + RELAY} for q in ids}, 30, "20 connections per destination")
        log = open(ml.log, errors="replace").read()
        deferred = [ln for ln in log.splitlines() if "status=deferred" in ln]
        assert not deferred, diag(sink, "%d deferrals with the next hop up, e.g.\n%s" % (
            len(deferred), "\n".join(deferred[:5])))


def test_postfix_smtp_sink_next_hop():
    """Postfix's smtp-sink as the next hop (another MTA's SMTP server, not
    ours): 2000 1 KB messages from 20 smtp-source sessions, each arrives
    exactly once (smtp-sink -d dumps one file per message: matched by the
    queue id in sluiced's Received header), every body identical to what
    smtp-source sent (its filler lines), no deferral"""
    n = 2000
    with own_lab_and_sink(PostfixSink, "--set", "smtp.per_client_max_conns=0") as (ml, sink):
        r = ml.exec("smtp-source", "-v", "-s", "20", "-m", str(n), "-l", "1024",
                    "-f", "pf@" + SENDER_DOM, "-t", "pf@" + RELAY, "%s:25" % ml.sluice,
                    timeout=120, check=False)
        ids = SOURCE_QID.findall(r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace"))
        assert r.returncode == 0 and len(set(ids)) == n, (r.returncode, len(set(ids)))
        assert wait_for(lambda: len(sink.dumps()) >= n, timeout=60, step=0.5), \
            "%d of %d messages reached smtp-sink: %s" % (len(sink.dumps()), n, sink.counters())
        time.sleep(1)      # a duplicate would come late
        seen, bodies = {}, set()
        for path, _ in sink.dumps():
            data = open(path, "rb").read()
            head, sep, body = data.partition(b"\n\n")
            assert sep, "%s: no header/body separator" % path
            q = re.findall(rb"by sluice\.lab \(sluice\) with E?SMTP id ([0-9A-Z]{13})", head)
            assert len(q) == 1, "%s: sluiced's Received id %s" % (path, q)
            seen[q[0].decode()] = seen.get(q[0].decode(), 0) + 1
            bodies.add(body)
        assert set(seen) == set(ids), "missing %s, unexpected %s" % (
            sorted(set(ids) - set(seen))[:5], sorted(set(seen) - set(ids))[:5])
        dup = [q for q, c in seen.items() if c > 1]
        assert not dup, "delivered more than once: %s" % dup[:5]
        assert len(bodies) == 1, "%d different bodies" % len(bodies)
        body = bodies.pop()
        lines = body.split(b"\n")
        assert len(body) > 900 and lines[0].startswith(b"1XXXX"), body[:200]
        log = open(ml.log, errors="replace").read()
        deferred = [ln for ln in log.splitlines() if "status=deferred" in ln]
        assert not deferred, "%d deferrals, e.g.\n%s" % (len(deferred), "\n".join(deferred[:5]))
        assert sink.counters().get("mesg") == n, sink.counters()
