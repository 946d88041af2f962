"""Delivery status notifications (issue 6, RFC 3461/3464) end to end
through the lab: smtplib clients in the lab namespace give MAIL/RCPT DSN
parameters (ENVID, RET, NOTIFY, ORCPT) to sluiced; sluiced relays to
tests/system/smtpsink.py next hops in the namespace and sends its notices
to the sender's domain, which is routed to a sink too, so every notice is
read back as the sink stored it (envelope + exact bytes) and parsed with
Python's email package (policy default).

Next hops (all on the peer 198.18.0.2):
  port 2525  sink A, no DSN: relay.test (bad@ answers 550) and
             sender.test (where the notices go)
  port 2526  sink B, --dsn: dsn.test
  port 2527  sink C, no DSN: delay.test (451 for two recipients, then
             restarted accepting everything)

What a user would notice, checked here:
  - null sender with a failing recipient: the recipient is bounced in the
    mail log, no notice is generated (none arrives, none is queued, the
    queue ends empty)
  - RET=HDRS: part 3 is text/rfc822-headers holding exactly the original's
    header section (the bytes the next hop got up to the empty line), none
    of its body; RET=FULL: part 3 is message/rfc822 holding the whole
    original byte for byte (8-bit body, so the notice goes with
    BODY=8BITMIME). Both: ENVID -> Original-Envelope-Id, ORCPT ->
    Original-Recipient, Final-Recipient, Action failed, Status 5.1.1,
    Diagnostic-Code with the sink's reply text, Remote-MTA the sink,
    Reporting-MTA and From MAILER-DAEMON@ sluiced's host name (its banner),
    To the sender, envelope sender <>, only the failed recipient listed
  - NOTIFY=NEVER and NOTIFY=SUCCESS on a failing recipient: no notice;
    NOTIFY=FAILURE: a notice
  - NOTIFY=SUCCESS to a next hop without DSN: one "relayed" notice for that
    recipient only (a NOTIFY=FAILURE recipient delivered alongside is not
    listed) and no DSN parameters on the wire; to a next hop with DSN: no
    notice from sluiced, the next hop got NOTIFY=SUCCESS, ORCPT, ENVID and
    RET
  - NOTIFY=DELAY with delay_warning 3s, retry_schedule 1s, the next hop
    answering 451: exactly one "delayed" notice (Status 4.3.0,
    Will-Retry-Until = arrival + max_lifetime, the 451 in Diagnostic-Code;
    a NOTIFY=FAILURE recipient in the same message is not listed), more
    attempts without a second notice, also after a kill -9 and restart of
    sluiced (the notice is recorded in the queue); once the next hop accepts, both
    recipients delivered and no further notice
  - a notice's queue priority is [smtp] notify_priority (set to 1 here,
    the default for other mail is 4): seen with queue show while the
    notice waits on a closed link to sender.test; link open delivers it

Failures print the tail of sluiced's log and the sinks' logs. Bounded:
every wait has a deadline; the module takes about 40 s.
"""
import email
import email.policy
import email.utils
import json
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time

import pytest

from conftest import wait_for
from smtplab import LAB, SinkProc, in_lab, lab_down, mail_lab_up, qid_of

RELAY = "relay.test"          # sink A (routed to peer:2525 by mail_lab_up)
SENDER_DOM = "sender.test"    # sink A too: the notices land there
DSN_DOM = "dsn.test"          # sink B, offers DSN
DELAY_DOM = "delay.test"      # sink C
LIFETIME_S = 600
NOTIFY_PRIO = 1
BAD_REPLY = "550 5.1.1 <bad@relay.test>: no such user here (dsn-test)"
SLOW_REPLY = "451 4.3.0 greylisted, come back later (dsn-test)"
PEER = "198.18.0.2"


# ---------------------------------------------------------------- helpers

def ctl(*args, timeout=30):
    """tests/lab ctl --json ARGS -> the command's data"""
    r = subprocess.run([LAB, "ctl", "--json", *args], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, "tests/lab ctl --json %s: exit %d\n%s%s" % (
        " ".join(args), r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return json.loads(r.stdout)


def queue_ids():
    d = ctl("queue", "list", "limit=1000")
    return {m["id"]: m for m in d["messages"]}


def sluiced_log(n=60):
    return subprocess.run([LAB, "log", str(n)], capture_output=True, text=True,
                          timeout=30).stdout


class Env:
    def __init__(self, ml, a, b, c):
        self.ml, self.a, self.b, self.c = ml, a, b, c
        self.hostname = None

    def diag(self, what):
        out = ["%s" % what, "---- sluiced log (tests/lab log 60) ----", sluiced_log(60)]
        for name, s in (("A", self.a), ("B", self.b), ("C", self.c)):
            out += ["---- sink %s (port %d) stats %s, log tail ----" % (name, s.port, s.stats()),
                    s.log_tail(15)]
        return "\n".join(out)

    def mail_log(self):
        with open(self.ml.log, errors="replace") as f:
            return f.read()

    def notices_to(self, addr):
        """messages sink A got with the null sender for addr"""
        return [m for m in self.a.messages() if m["sender"] == "" and addr in m["rcpts"]]

    def wait_notices(self, addr, n=1, timeout=30):
        got = wait_for(lambda: len(self.notices_to(addr)) >= n or None, timeout=timeout,
                       step=0.2)
        assert got, self.diag("no notice to %s within %d s (have %d)"
                              % (addr, timeout, len(self.notices_to(addr))))
        return self.notices_to(addr)

    def wait_log(self, pattern, timeout=30):
        m = wait_for(lambda: re.search(pattern, self.mail_log(), re.M), timeout=timeout,
                     step=0.2)
        assert m, self.diag("no mail log line matching %r within %d s" % (pattern, timeout))
        return m

    def notice_logged(self, qid):
        return re.search(r"^.*%s: sender [a-z -]+ notification: ([0-9A-Z]{13})" % qid,
                         self.mail_log(), re.M)


def send(host, sender, rcpts, body, mail_opts=()):
    """one smtplib session (run in the lab): rcpts = [(addr, [params])];
    returns (qid, sluiced's banner host name)"""
    s = smtplib.SMTP(timeout=30, local_hostname="client.lab.test")
    try:
        code, banner = s.connect(host, 25)
        assert code == 220, (code, banner)
        assert s.ehlo()[0] == 250
        assert s.has_extn("dsn"), "sluiced does not offer DSN: %r" % s.esmtp_features
        code, resp = s.mail(sender, ["BODY=8BITMIME", *mail_opts])
        assert code == 250, (code, resp)
        for addr, params in rcpts:
            code, resp = s.rcpt(addr, list(params))
            assert code == 250, (addr, code, resp)
        code, resp = s.data(body)
        assert code == 250, (code, resp)
        s.quit()
        return qid_of("250 " + resp.decode()), banner.decode().split()[0]
    finally:
        s.close()


def body_of(tag, eightbit=False, extra_headers=b""):
    """a message with a unique body marker line"""
    tag = tag.encode()
    return (b"From: <%s@client.test>\r\nTo: <someone@relay.test>\r\n"
            b"Subject: dsn test %s\r\nMessage-Id: <%s@client.test>\r\n%s\r\n"
            b"BODY-MARKER-%s first line\r\n.leading dot line\r\n"
            % (tag, tag, tag, extra_headers, tag)
            + (b"caf\xc3\xa9 8-bit line\r\n" if eightbit else b"plain line\r\n")
            + b"".join(b"line %d of the body of %s\r\n" % (i, tag) for i in range(40)))


def parse(raw):
    """(message, per-message fields, [per-recipient fields], parts,
    raw contents of the three parts)"""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report", msg["Content-Type"]
    assert msg.get_param("report-type") == "delivery-status", msg["Content-Type"]
    parts = msg.get_payload()
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks = parts[1].get_payload()
    fields = [{k.lower(): str(v) for k, v in b.items()} for b in blocks]
    # raw part contents for byte comparisons (RFC 2046 5.1.1: the CRLF
    # before a boundary line belongs to the boundary)
    bnd = msg.get_boundary().encode()
    pieces = raw.split(b"\r\n--" + bnd)
    assert len(pieces) == 5 and pieces[4].startswith(b"--"), (len(pieces), raw[-200:])
    contents = [p[2:].split(b"\r\n\r\n", 1)[1] if not p[2:].startswith(b"\r\n")
                else p[4:] for p in pieces[1:4]]
    return msg, fields[0], fields[1:], parts, contents


def addr_of(header_value):
    return email.utils.parseaddr(str(header_value))[1]


def typed(value):
    """'rfc822; a@b' -> ('rfc822', 'a@b')"""
    t, _, a = value.partition(";")
    return t.strip().lower(), a.strip()


def check_notice_common(e, m, sender, qid):
    """envelope and top-level fields every notice must have; returns
    parse()'s result"""
    assert m["sender"] == "", "notice sent with MAIL FROM:<%s>" % m["sender"]
    assert m["rcpts"] == [sender], m["rcpts"]
    msg, mf, rf, parts, contents = parse(m["body"])
    assert addr_of(msg["From"]) == "MAILER-DAEMON@" + e.hostname, msg["From"]
    assert addr_of(msg["To"]) == sender, msg["To"]
    assert str(msg["Auto-Submitted"]).lower() == "auto-replied", msg["Auto-Submitted"]
    assert msg["Date"] and msg["Message-ID"] and msg["Subject"], msg.items()
    assert typed(mf["reporting-mta"]) == ("dns", e.hostname), mf
    assert "arrival-date" in mf, mf
    return msg, mf, rf, parts, contents


# ---------------------------------------------------------------- fixture

@pytest.fixture(scope="module")
def e():
    work = tempfile.mkdtemp(prefix="sluice-dsn-", dir="/var/tmp")
    a = SinkProc(os.path.join(work, "a"), port=2525,
                 args=["--rcpt-reply", "bad@%s=%s" % (RELAY, BAD_REPLY)])
    b = SinkProc(os.path.join(work, "b"), port=2526, args=["--dsn"])
    c = SinkProc(os.path.join(work, "c"), port=2527,
                 args=["--rcpt-reply", "slow@%s=%s" % (DELAY_DOM, SLOW_REPLY),
                       "--rcpt-reply", "slowf@%s=%s" % (DELAY_DOM, SLOW_REPLY)])
    ml = mail_lab_up("--route", "%s=peer:2525" % SENDER_DOM,
                     "--route", "%s=peer:2526" % DSN_DOM,
                     "--route", "%s=peer:2527" % DELAY_DOM,
                     "--set", "delivery.retry_schedule=1s",
                     "--set", "delivery.delay_warning=3s",
                     "--set", "delivery.max_lifetime=%ds" % LIFETIME_S,
                     "--set", "smtp.notify_priority=%d" % NOTIFY_PRIO)
    env = Env(ml, a, b, c)
    try:
        for s in (a, b, c):
            s.start()
        yield env
    finally:
        for s in (a, b, c):
            s.stop()
        lab_down()
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- tests

def test_null_sender_no_notice(e):
    """runs first: the queue is empty afterwards"""
    before = ctl("status")["delivery"]
    qid, e.hostname = in_lab(send, e.ml.sluice, "", [("bad@" + RELAY, []), ("nul-ok@" + RELAY, [])],
                             body_of("nul"))
    e.wait_log(r"^.*%s: to=<bad@%s>,.*\bstatus=bounced\b" % (qid, re.escape(RELAY)))
    ok = wait_for(lambda: [m for m in e.a.messages() if "nul-ok@" + RELAY in m["rcpts"]],
                  timeout=30)
    assert ok and ok[0]["sender"] == "", e.diag("nul-ok@ not delivered with MAIL FROM:<>: %s" % ok)
    # the bounce is settled (nothing left in the queue) and nothing came of it
    assert wait_for(lambda: queue_ids() == {}, timeout=15), \
        e.diag("queue not empty after a null-sender bounce: %s" % queue_ids())
    time.sleep(3)
    assert queue_ids() == {}, e.diag("queue: %s" % queue_ids())
    assert not e.notice_logged(qid), e.diag("notice for a null sender: %s"
                                            % e.notice_logged(qid).group(0))
    nulls = [m for m in e.a.messages() if m["sender"] == ""]
    assert [m["rcpts"] for m in nulls] == [["nul-ok@" + RELAY]], \
        e.diag("messages with the null sender at the sink: %s" % [m["rcpts"] for m in nulls])
    after = ctl("status")["delivery"]
    assert after["failed"] == before["failed"] + 1, (before, after)
    assert after["bounces"] == before["bounces"], (before, after)


@pytest.mark.parametrize("ret", ["HDRS", "FULL"])
def test_failure_notice_ret(e, ret):
    sender = "ret-%s@%s" % (ret.lower(), SENDER_DOM)
    envid = "env-%s+2B1" % ret.lower()              # xtext for "env-...+1"
    body = body_of("ret" + ret, eightbit=(ret == "FULL"))
    qid, e.hostname = in_lab(
        send, e.ml.sluice, sender,
        [("bad@" + RELAY, ["ORCPT=rfc822;orig-bad@example.org"]),
         ("keep-%s@%s" % (ret.lower(), RELAY), [])],
        body, mail_opts=["RET=" + ret, "ENVID=" + envid])
    m, = e.wait_notices(sender)
    kept = [x for x in e.a.messages() if "keep-%s@%s" % (ret.lower(), RELAY) in x["rcpts"]]
    assert len(kept) == 1, e.diag("keep-%s@ delivered %d times" % (ret.lower(), len(kept)))
    original = kept[0]["body"]            # the stored message: Received + what we sent
    assert original.endswith(body) and b" id " + qid.encode() in original[:len(original) - len(body)]

    msg, mf, rf, parts, contents = check_notice_common(e, m, sender, qid)
    assert str(msg["Subject"]) == "Undelivered Mail Returned to Sender", msg["Subject"]
    assert mf.get("original-envelope-id") == "env-%s+1" % ret.lower(), mf
    assert len(rf) == 1, "recipients in the notice: %s" % rf
    f = rf[0]
    assert typed(f["final-recipient"]) == ("rfc822", "bad@" + RELAY), f
    assert typed(f.get("original-recipient", "")) == ("rfc822", "orig-bad@example.org"), f
    assert f["action"] == "failed", f
    assert f["status"] == "5.1.1", f
    assert typed(f.get("diagnostic-code", ""))[0] == "smtp", f
    assert BAD_REPLY in f["diagnostic-code"], f
    assert PEER in f.get("remote-mta", ""), f
    assert "last-attempt-date" in f, f
    text = " ".join(parts[0].get_content().split())        # unwrapped
    assert "at host %s." % e.hostname in text, text
    assert "<bad@%s>: host %s" % (RELAY, PEER) in text and BAD_REPLY in text, text

    hdrs = original[:original.index(b"\r\n\r\n") + 4]
    if ret == "HDRS":
        assert parts[2].get_content_type() == "text/rfc822-headers", parts[2]["Content-Type"]
        assert contents[2] == hdrs, "part 3 is not the original's header section:\n%r\n%r" % (
            contents[2][:600], hdrs[:600])
        assert b"BODY-MARKER-ret" not in m["body"], "RET=HDRS returned the body"
    else:
        assert parts[2].get_content_type() == "message/rfc822", parts[2]["Content-Type"]
        assert contents[2] == original, "part 3 is not the whole original (%d vs %d bytes)" % (
            len(contents[2]), len(original))
        inner = parts[2].get_content()
        assert str(inner["Subject"]) == "dsn test retFULL", inner.items()
        assert "BODY=8BITMIME" in [p.upper() for p in m["mail_params"]], \
            "8-bit notice sent without BODY=8BITMIME: %s" % m["mail_params"]
    # no DSN parameters to a next hop that does not offer DSN
    assert not [p for p in kept[0]["mail_params"] if p.upper().startswith(("RET=", "ENVID="))], \
        kept[0]["mail_params"]
    assert e.wait_log(r"^.*%s: to=<bad@%s>,.*dsn=5\.1\.1, status=bounced" % (qid, re.escape(RELAY)))
    assert wait_for(lambda: qid not in queue_ids(), timeout=15), e.diag("%s still queued" % qid)


def test_notify_never_success_failure(e):
    """550 for each: only the NOTIFY=FAILURE sender gets a notice"""
    cases = {"never": "NOTIFY=NEVER", "succ": "NOTIFY=SUCCESS", "fail": "NOTIFY=FAILURE"}
    qids = {}
    for k, p in cases.items():
        qids[k], e.hostname = in_lab(send, e.ml.sluice, "n-%s@%s" % (k, SENDER_DOM),
                                     [("bad@" + RELAY, [p])], body_of("n" + k))
    m, = e.wait_notices("n-fail@" + SENDER_DOM)
    _, _, rf, _, _ = check_notice_common(e, m, "n-fail@" + SENDER_DOM, qids["fail"])
    assert [(typed(f["final-recipient"])[1], f["action"], f["status"]) for f in rf] == \
        [("bad@" + RELAY, "failed", "5.1.1")], rf
    for k in cases:
        e.wait_log(r"^.*%s: to=<bad@%s>,.*\bstatus=bounced\b" % (qids[k], re.escape(RELAY)))
    assert wait_for(lambda: not set(qids.values()) & set(queue_ids()), timeout=15), \
        e.diag("still queued: %s" % (set(qids.values()) & set(queue_ids())))
    time.sleep(3)
    for k in ("never", "succ"):
        assert not e.notices_to("n-%s@%s" % (k, SENDER_DOM)), e.diag("%s got a notice" % cases[k])
        assert not e.notice_logged(qids[k]), e.diag("%s: %s" % (cases[k], e.notice_logged(qids[k]).group(0)))
    assert len(e.notices_to("n-fail@" + SENDER_DOM)) == 1


def test_notify_success_relayed_without_dsn(e):
    sender = "relayed@" + SENDER_DOM
    before = ctl("status")["delivery"]["relayed_notices"]
    qid, e.hostname = in_lab(
        send, e.ml.sluice, sender,
        [("rl1@" + RELAY, ["NOTIFY=SUCCESS", "ORCPT=rfc822;rl1-orig@example.org"]),
         ("rl2@" + RELAY, ["NOTIFY=FAILURE"])],
        body_of("relayed"), mail_opts=["ENVID=relayed-1"])
    m, = e.wait_notices(sender)
    got = [x for x in e.a.messages() if x["sender"] == sender]
    assert sorted(r for x in got for r in x["rcpts"]) == ["rl1@" + RELAY, "rl2@" + RELAY], got
    for x in got:    # sink A does not offer DSN: none of its parameters
        assert not [p for p in x["mail_params"] if p.upper().startswith(("RET=", "ENVID="))], x
        assert not [p for ps in x["rcpt_params"] for p in ps
                    if p.upper().startswith(("NOTIFY=", "ORCPT="))], x
    msg, mf, rf, parts, contents = check_notice_common(e, m, sender, qid)
    assert mf.get("original-envelope-id") == "relayed-1", mf
    assert len(rf) == 1, "recipients in the relayed notice: %s" % rf
    f = rf[0]
    assert typed(f["final-recipient"]) == ("rfc822", "rl1@" + RELAY), f
    assert typed(f.get("original-recipient", "")) == ("rfc822", "rl1-orig@example.org"), f
    assert f["action"] == "relayed", f
    assert f["status"].startswith("2."), f
    assert PEER in f.get("remote-mta", ""), f
    assert parts[2].get_content_type() == "text/rfc822-headers", parts[2]["Content-Type"]
    assert b"Subject: dsn test relayed" in contents[2] and b"BODY-MARKER" not in contents[2]
    e.wait_log(r"^.*%s: to=<rl1@%s>,.*\bstatus=sent\b" % (qid, re.escape(RELAY)))
    time.sleep(3)
    assert len(e.notices_to(sender)) == 1, e.diag("%d notices" % len(e.notices_to(sender)))
    assert ctl("status")["delivery"]["relayed_notices"] == before + 1


def test_notify_success_passed_on_to_dsn_hop(e):
    sender = "passon@" + SENDER_DOM
    before = ctl("status")["delivery"]["relayed_notices"]
    qid, e.hostname = in_lab(
        send, e.ml.sluice, sender,
        [("p1@" + DSN_DOM, ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;p1-orig+2Bx@example.org"]),
         ("p2@" + DSN_DOM, ["NOTIFY=NEVER"])],
        body_of("passon"), mail_opts=["RET=HDRS", "ENVID=pass+2Bon-1"])
    got = wait_for(lambda: [x for x in e.b.messages() if x["sender"] == sender], timeout=30)
    assert got, e.diag("nothing at the DSN next hop")
    assert len(got) == 1, got
    x = got[0]
    assert x["rcpts"] == ["p1@" + DSN_DOM, "p2@" + DSN_DOM], x["rcpts"]
    mp = [p.upper() for p in x["mail_params"]]
    assert "RET=HDRS" in mp, x["mail_params"]
    assert "ENVID=pass+2Bon-1".upper() in mp, x["mail_params"]
    rp = [{p.split("=", 1)[0].upper(): p.split("=", 1)[1] for p in ps if "=" in p}
          for ps in x["rcpt_params"]]
    assert set(rp[0].get("NOTIFY", "").upper().split(",")) == {"SUCCESS", "FAILURE"}, x["rcpt_params"]
    assert rp[0].get("ORCPT", "").lower() == "rfc822;p1-orig+2bx@example.org", x["rcpt_params"]
    assert rp[1].get("NOTIFY", "").upper() == "NEVER", x["rcpt_params"]
    assert "ORCPT" not in rp[1], x["rcpt_params"]
    e.wait_log(r"^.*%s: to=<p1@%s>,.*\bstatus=sent\b" % (qid, re.escape(DSN_DOM)))
    time.sleep(4)
    assert not e.notices_to(sender), e.diag("sluiced sent a notice although the next hop "
                                            "offers DSN: %s" % e.notices_to(sender)[0]["body"][:1500])
    assert not e.notice_logged(qid), e.notice_logged(qid).group(0)
    assert ctl("status")["delivery"]["relayed_notices"] == before


def test_delay_notice_once(e):
    sender = "delayed@" + SENDER_DOM
    t0 = time.time()
    qid, e.hostname = in_lab(
        send, e.ml.sluice, sender,
        [("slow@" + DELAY_DOM, ["NOTIFY=DELAY,FAILURE", "ORCPT=rfc822;slow-orig@example.org"]),
         ("slowf@" + DELAY_DOM, ["NOTIFY=FAILURE"])],
        body_of("delay"), mail_opts=["ENVID=delay-1"])
    m, = e.wait_notices(sender, timeout=20)
    dt = m["time"] - t0
    assert dt >= 2.5, "delay notice %.1f s after arrival, delay_warning is 3 s" % dt
    msg, mf, rf, parts, contents = check_notice_common(e, m, sender, qid)
    assert str(msg["Subject"]).startswith("Delayed Mail"), msg["Subject"]
    assert mf.get("original-envelope-id") == "delay-1", mf
    assert len(rf) == 1, "recipients in the delay notice (slowf@ has NOTIFY=FAILURE): %s" % rf
    f = rf[0]
    assert typed(f["final-recipient"]) == ("rfc822", "slow@" + DELAY_DOM), f
    assert typed(f.get("original-recipient", "")) == ("rfc822", "slow-orig@example.org"), f
    assert f["action"] == "delayed", f
    assert f["status"] == "4.3.0", f
    assert SLOW_REPLY in f.get("diagnostic-code", ""), f
    until = email.utils.parsedate_to_datetime(f["will-retry-until"]).timestamp()
    assert abs(until - (t0 + LIFETIME_S)) < 5, "Will-Retry-Until %s, arrival %s + %d s" % (
        f["will-retry-until"], time.ctime(t0), LIFETIME_S)
    assert parts[2].get_content_type() == "text/rfc822-headers"
    # still deferred, tried again and again: no second notice
    refused = lambda: sum(1 for ln in e.c.log_tail(100000).splitlines()   # noqa: E731
                          if "RCPT <slow@%s> refused" % DELAY_DOM in ln)
    n_at_notice = refused()
    assert wait_for(lambda: refused() >= n_at_notice + 3, timeout=15), \
        e.diag("no further attempts after the delay notice")
    assert len(e.notices_to(sender)) == 1, e.diag("%d delay notices" % len(e.notices_to(sender)))
    assert qid in queue_ids()
    # kill -9 and restart: the notice was recorded with the message (the
    # next update after it), so the rebuilt scheduler sends no second one
    r = subprocess.run([LAB, "restart", "--kill"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    n_at_restart = refused()
    assert wait_for(lambda: refused() >= n_at_restart + 3, timeout=20), \
        e.diag("no attempts after the restart")
    assert len(e.notices_to(sender)) == 1, e.diag("%d delay notices after a restart" %
                                                  len(e.notices_to(sender)))
    # the next hop accepts again (a restarted sink: sluiced reuses connections)
    e.c.stop()
    e.c.args = []
    e.c.start()
    got = wait_for(lambda: sorted(r for x in e.c.messages() if x["sender"] == sender
                                  for r in x["rcpts"]) == ["slow@" + DELAY_DOM, "slowf@" + DELAY_DOM],
                   timeout=30)
    assert got, e.diag("not delivered after the next hop accepted: %s" % e.c.messages())
    assert wait_for(lambda: qid not in queue_ids(), timeout=15), e.diag("%s still queued" % qid)
    time.sleep(4)
    assert len(e.notices_to(sender)) == 1, e.diag("notices after delivery: %d" % len(e.notices_to(sender)))
    log = e.mail_log()
    assert len(re.findall(r"%s: sender delay notification" % qid, log)) == 1, log[-3000:]


def test_notice_priority_on_closed_link(e):
    sender = "prio@" + SENDER_DOM
    ctl("link", "close", SENDER_DOM)
    try:
        qid, e.hostname = in_lab(send, e.ml.sluice, sender, [("bad@" + RELAY, [])], body_of("prio"))
        nid = e.wait_log(r"^.*%s: sender non-delivery notification: ([0-9A-Z]{13})" % qid).group(1)
        held = wait_for(lambda: (queue_ids().get(nid) or {}).get("state") == "held", timeout=15)
        show = ctl("queue", "show", nid)
        assert held, e.diag("notice %s not held on the closed link: %s" % (nid, show))
        assert show["priority"] == NOTIFY_PRIO, show
        assert show["sender"] == "", show
        assert [(r["address"], r["destination"], r["state"]) for r in show["recipients"]] == \
            [(sender, SENDER_DOM, "pending")], show
        time.sleep(2)
        assert not e.notices_to(sender), e.diag("notice delivered over a closed link")
    finally:
        ctl("link", "open", SENDER_DOM)
    m, = e.wait_notices(sender)
    _, _, rf, _, _ = check_notice_common(e, m, sender, qid)
    assert [typed(f["final-recipient"])[1] for f in rf] == ["bad@" + RELAY], rf
    assert wait_for(lambda: nid not in queue_ids(), timeout=15), e.diag("notice still queued")
