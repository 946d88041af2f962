"""Real SMTP clients against the real sluiced in the lab: every message
that got `250 2.0.0 Ok: queued as ID` is in the queue with that id, the
envelope the client gave and the exact body bytes (after sluiced's trace
header).

Clients: swaks (plain, STARTTLS, AUTH on 587, PIPELINING), Python smtplib
(many messages per session, dot-leading lines, 8-bit; BDAT/CHUNKING with
low-level commands, as swaks 20201014 has no CHUNKING) and Postfix's
smtp-source (20 sessions x 50 messages). Bounded: < 3 minutes.
"""
import os
import re
import tempfile

import pytest

from smtplab import (DOMAIN, PASSWORD, USER, check_body, in_lab, lab_down,
                     make_body, mail_lab_up, qid_of)

QID_ANY = re.compile(r"250[ -]2\.0\.0 Ok: queued as ([0-9A-Z]{13})")


@pytest.fixture(scope="module")
def ml():
    lab = mail_lab_up()
    yield lab
    lab_down()


def data_file(body):
    """swaks --data file for body: swaks sends CRLF.CRLF after the data, so
    the file holds the body without its last CRLF"""
    assert body.endswith(b"\r\n")
    f = tempfile.NamedTemporaryFile(prefix="sluice-swaks-", suffix=".eml", delete=False)
    f.write(body[:-2])
    f.close()
    os.chmod(f.name, 0o644)
    return f.name


def swaks_body(n):
    # no leading dots and no '%' (swaks tokens): swaks' own handling of
    # those is not what is under test here
    return (b"From: <swaks@client.test>\r\nTo: <r@lab.test>\r\n"
            b"Subject: swaks %d\r\n\r\n" % n +
            b"".join(b"line %d of a swaks message, some text\r\n" % i for i in range(40)))


def test_swaks_plain(ml):
    body = swaks_body(1)
    path = data_file(body)
    try:
        rc, out = ml.swaks("--to", "r1@" + DOMAIN, "--from", "s1@client.test",
                           "--data", path)
    finally:
        os.unlink(path)
    assert rc == 0, out
    ml.check_queued(qid_of_any(out), "s1@client.test", ["r1@" + DOMAIN], body)


def test_swaks_starttls(ml):
    body = swaks_body(2)
    path = data_file(body)
    try:
        rc, out = ml.swaks("--tls", "--to", "r2@" + DOMAIN, "--from", "s2@client.test",
                           "--data", path)
    finally:
        os.unlink(path)
    assert rc == 0, out
    assert "STARTTLS" in out and "<~ " in out, out     # replies over TLS
    env, stored = ml.check_queued(qid_of_any(out), "s2@client.test", ["r2@" + DOMAIN], body)
    assert b"ESMTPS" in stored.split(b"\r\n\r\n")[0] or b"TLS" in stored[:600], stored[:600]


def test_swaks_auth_submission(ml):
    body = swaks_body(3)
    path = data_file(body)
    try:
        # authenticated: relaying to a foreign domain is allowed
        rc, out = ml.swaks("--port", "587", "--tls", "--auth", "PLAIN",
                           "--auth-user", USER, "--auth-password", PASSWORD,
                           "--to", "someone@elsewhere.example", "--from", USER,
                           "--data", path)
        assert rc == 0, out
        assert re.search(r"235[ -]", out), out
        ml.check_queued(qid_of_any(out), USER, ["someone@elsewhere.example"], body)
        # wrong password: 535, nothing queued
        rc, out = ml.swaks("--port", "587", "--tls", "--auth", "PLAIN",
                           "--auth-user", USER, "--auth-password", "wrong",
                           "--to", "someone@elsewhere.example", "--from", USER,
                           "--data", path)
        assert rc != 0 and re.search(r"535[ -]", out), out
        assert not QID_ANY.search(out), out
        # no AUTH on the submission port: refused even for a local domain
        rc, out = ml.swaks("--port", "587", "--tls", "--to", "r3@" + DOMAIN,
                           "--from", "s3@client.test", "--data", path)
        assert rc != 0 and re.search(r"\n<~\*? +5\d\d[ -]", out), out
        assert not QID_ANY.search(out), out
    finally:
        os.unlink(path)


def test_swaks_pipelining_two_rcpts(ml):
    body = swaks_body(4)
    path = data_file(body)
    try:
        rc, out = ml.swaks("--pipeline", "--to", "a4@%s,b4@%s" % (DOMAIN, DOMAIN),
                           "--from", "s4@client.test", "--data", path)
    finally:
        os.unlink(path)
    assert rc == 0, out
    assert "PIPELINING" in out, out
    ml.check_queued(qid_of_any(out), "s4@client.test", ["a4@" + DOMAIN, "b4@" + DOMAIN], body)


def qid_of_any(text):
    m = QID_ANY.findall(text)
    assert len(m) == 1, "expected one queued id in:\n" + text[-3000:]
    return m[0]


def smtplib_session(host, msgs, seed):
    """one session, many messages; returns [(qid, n, sender, rcpts, body)]"""
    import smtplib
    out = []
    with smtplib.SMTP(host, 25, local_hostname="client.lab.test", timeout=30) as s:
        code, _ = s.ehlo()
        assert code == 250
        for n in range(msgs):
            body = make_body(n, 200 + (n * 997) % 20000, seed)
            sender = "sender%d@client.test" % n
            rcpts = ["r%d@%s" % (i, DOMAIN) for i in range(1 + n % 3)]
            code, resp = s.mail(sender, ["BODY=8BITMIME"])
            assert code == 250, (code, resp)
            for r in rcpts:
                code, resp = s.rcpt(r)
                assert code == 250, (r, code, resp)
            code, resp = s.data(body)
            assert code == 250, (code, resp)
            out.append((qid_of("250 " + resp.decode()), n, sender, rcpts, body))
    return out


def test_smtplib_many_messages(ml):
    got = in_lab(smtplib_session, ml.sluice, 30, 11)
    assert len({g[0] for g in got}) == 30
    for qid, n, sender, rcpts, body in got:
        ml.check_queued(qid, sender, rcpts, body)


def smtplib_bdat(host, chunks, binary=False):
    import smtplib
    with smtplib.SMTP(host, 25, local_hostname="client.lab.test", timeout=30) as s:
        s.ehlo()
        if not s.has_extn("chunking"):
            return "no-chunking", None
        if binary and not s.has_extn("binarymime"):
            return "no-binarymime", None
        code, resp = s.mail("bdat@client.test", ["BODY=BINARYMIME"] if binary else [])
        assert code == 250, resp
        code, resp = s.rcpt("bdat@" + DOMAIN)
        assert code == 250, resp
        for i, c in enumerate(chunks):
            last = " LAST" if i == len(chunks) - 1 else ""
            s.send(b"BDAT %d%s\r\n" % (len(c), last.encode()) + c)
            code, resp = s.getreply()
            if last:
                assert code == 250, (code, resp)
                return "ok", qid_of("250 " + resp.decode())
            assert code == 250, (i, code, resp)


def test_smtplib_bdat(ml):
    body = make_body(1, 30000, seed=5)
    chunks = [body[:7], body[7:1000], body[1000:1001], body[1001:]]
    status, qid = in_lab(smtplib_bdat, ml.sluice, chunks)
    if status == "no-chunking":
        pytest.fail("sluiced does not offer CHUNKING (issue 5 asks for BDAT)")
    ml.check_queued(qid, "bdat@client.test", ["bdat@" + DOMAIN], body)


def test_smtplib_bdat_binarymime(ml):
    import random
    rng = random.Random(3)
    body = bytes(rng.randrange(256) for _ in range(20000))   # bare CR/LF, NULs
    status, qid = in_lab(smtplib_bdat, ml.sluice, [body[:5000], body[5000:]], binary=True)
    if status != "ok":
        pytest.skip("BINARYMIME not offered (%s)" % status)
    env, stored = ml.queue_show(qid)
    assert stored.endswith(body)


SOURCE_QID = re.compile(r"<<< 250 2\.0\.0 Ok: queued as ([0-9A-Z]{13})")


def test_smtp_source_many_sessions(ml):
    before = set(ml.queue_list())
    r = ml.exec("smtp-source", "-v", "-s", "20", "-m", "1000", "-l", "1024",
                "-M", "source.lab.test", "-f", "src@client.test", "-t", "dst@" + DOMAIN,
                "%s:25" % ml.sluice, timeout=240, check=False)
    log = r.stderr.decode(errors="replace") + r.stdout.decode(errors="replace")
    ids = SOURCE_QID.findall(log)
    assert r.returncode == 0, log[-3000:]
    assert len(ids) == 1000 and len(set(ids)) == 1000, (len(ids), log[-2000:])
    q = ml.queue_list()
    new = set(q) - before
    assert set(ids) <= new, sorted(set(ids) - new)[:10]
    # smtp-source's message: its headers, a blank line, 1024 bytes of
    # digit/X lines, the same for every message
    pat = re.compile(rb"From: <src@client\.test>\r\nTo: <dst@lab\.test>\r\n"
                     rb"Date: [^\r\n]+\r\nMessage-Id: <[^\r\n]+>\r\n\r\n"
                     rb"((?:[0-9X]+\r\n)+)\Z")
    tails = set()
    for qid in ids:
        assert q[qid]["sender"] == "src@client.test" and q[qid]["rcpts"] == ["dst@" + DOMAIN]
        env, stored = ml.queue_show(qid)
        start = stored.find(b"From: <src@client.test>")
        assert start >= 0, stored[:400]
        check_body(stored, stored[start:], qid)
        m = pat.match(stored, start)
        assert m, (qid, stored[start:start + 400])
        tails.add(m.group(1))
    assert len(tails) == 1 and len(tails.pop()) >= 1024


def test_received_header_well_formed(ml):
    """RFC 5322 3.6.7: the trace field is "Received: tokens ; date-time";
    with one recipient (for <...>; date) and with several (no for clause)"""
    import smtplib

    def go(host):
        out = []
        with smtplib.SMTP(host, 25, local_hostname="client.lab.test", timeout=30) as s:
            assert s.ehlo()[0] == 250
            for rcpts in (["one@" + DOMAIN], ["two@" + DOMAIN, "three@" + DOMAIN]):
                assert s.mail("rh@client.test")[0] == 250
                for r in rcpts:
                    assert s.rcpt(r)[0] == 250
                code, resp = s.data(b"Subject: rh\r\n\r\nx\r\n")
                assert code == 250, resp
                out.append(qid_of("250 " + resp.decode()))
        return out

    for qid in in_lab(go, ml.sluice):
        env, stored = ml.queue_show(qid)
        head = stored.split(b"\r\nSubject: rh")[0]
        unfolded = re.sub(rb"\r\n[ \t]+", b" ", head)
        assert re.match(rb"Received: from \S+ .*\bby \S+ .*;\s*\w{3}, \d{1,2} \w{3} \d{4} "
                        rb"\d\d:\d\d:\d\d [+-]\d{4}$", unfolded), unfolded
