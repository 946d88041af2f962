"""SMTP policy over the real stack, from a client in the lab namespace:
relay denial (untrusted network, default), relaying from a trusted network,
unknown users, the size and recipient limits, SMTP smuggling (bare LF/CR
end-of-data variants sent raw), and a slow client trickling bytes. Every
refusal leaves the queue unchanged; every acceptance is in it byte-exact.
Bounded: < 2 minutes.
"""
import time

import pytest

from smtplab import (DOMAIN, USERS_DOMAIN, Raw, in_lab, lab_down, mail_lab_up,
                     qid_of)

MAX_SIZE = 200000
MAX_RCPTS = 10
MAX_RECEIVED = 5
MAX_CONNS = 5


@pytest.fixture(scope="module")
def ml():
    lab = mail_lab_up("--set", "smtp.max_message_size=%d" % MAX_SIZE,
                      "--set", "smtp.max_recipients=%d" % MAX_RCPTS,
                      "--set", "smtp.max_received=%d" % MAX_RECEIVED,
                      "--set", "smtp.per_client_max_conns=%d" % MAX_CONNS)
    yield lab
    lab_down()


def session(host, steps, port=25):
    """run [(line or bytes, expect_code or None)], return the replies"""
    c = Raw(host, port)
    out = [c.reply()]
    assert out[0][0] == 220, out
    for data, _ in steps:
        if isinstance(data, str):
            data = data.encode() + b"\r\n"
        c.send(data)
        out.append(c.reply())
    c.close()
    return out


def expect(replies, steps):
    for (data, want), (code, text) in zip(steps, replies[1:]):
        if want is not None:
            assert code == want, "%r -> %d %s (wanted %d)" % (data[:60], code, text, want)


def run(ml, steps):
    r = in_lab(session, ml.sluice, steps, timeout=120)
    expect(r, steps)
    return r


def test_relay_denied_untrusted(ml):
    before = len(ml.queue_list())
    steps = [("EHLO client.lab.test", 250), ("MAIL FROM:<s@client.test>", 250),
             ("RCPT TO:<victim@elsewhere.example>", 554),
             ("RCPT TO:<x@relay-not-ours.test>", 554),
             ("DATA", None), ("QUIT", 221)]
    r = run(ml, steps)
    assert "5.7.1" in r[3][1] and "5.7.1" in r[4][1], r
    assert r[5][0] in (503, 554), r        # no valid recipient
    assert len(ml.queue_list()) == before


def test_unknown_user_in_known_domain(ml):
    body = b"Subject: u\r\n\r\nhello alice\r\n"
    steps = [("EHLO client.lab.test", 250), ("MAIL FROM:<s@client.test>", 250),
             ("RCPT TO:<mallory@%s>" % USERS_DOMAIN, 550),
             ("RCPT TO:<alice@%s>" % USERS_DOMAIN, 250),
             ("DATA", 354), (body + b".\r\n", 250), ("QUIT", 221)]
    r = run(ml, steps)
    assert "5.1.1" in r[3][1], r
    ml.check_queued(qid_of("250 " + r[6][1][4:]), "s@client.test",
                    ["alice@" + USERS_DOMAIN], body)


def test_size_limit(ml):
    before = len(ml.queue_list())
    steps = [("EHLO client.lab.test", 250),
             ("MAIL FROM:<s@client.test> SIZE=%d" % (MAX_SIZE + 1000), 552),
             ("RSET", 250), ("MAIL FROM:<s@client.test>", 250),
             ("RCPT TO:<big@%s>" % DOMAIN, 250), ("DATA", 354),
             (b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * (MAX_SIZE // 1000 + 10) + b".\r\n", 552),
             ("QUIT", 221)]
    r = run(ml, steps)
    assert "5.3.4" in r[2][1] and "5.3.4" in r[7][1], r
    ehlo = r[1][1]
    assert "SIZE %d" % MAX_SIZE in ehlo, ehlo
    assert len(ml.queue_list()) == before
    # just under the limit is fine
    body = b"Subject: fits\r\n\r\n" + (b"y" * 998 + b"\r\n") * (MAX_SIZE // 1000 - 10)
    steps = [("EHLO client.lab.test", 250), ("MAIL FROM:<s@client.test>", 250),
             ("RCPT TO:<fits@%s>" % DOMAIN, 250), ("DATA", 354), (body + b".\r\n", 250)]
    r = run(ml, steps)
    ml.check_queued(qid_of("250 " + r[5][1][4:]), "s@client.test", ["fits@" + DOMAIN], body)


def test_recipient_limit(ml):
    rc = ["RCPT TO:<r%d@%s>" % (i, DOMAIN) for i in range(MAX_RCPTS + 2)]
    body = b"Subject: many\r\n\r\nmany recipients\r\n"
    steps = ([("EHLO client.lab.test", 250), ("MAIL FROM:<s@client.test>", 250)] +
             [(x, 250) for x in rc[:MAX_RCPTS]] + [(x, 452) for x in rc[MAX_RCPTS:]] +
             [("DATA", 354), (body + b".\r\n", 250)])
    r = run(ml, steps)
    assert all("4.5.3" in t for c, t in r[-4:-2]), r[-4:]
    ml.check_queued(qid_of("250 " + r[-1][1][4:]), "s@client.test",
                    ["r%d@%s" % (i, DOMAIN) for i in range(MAX_RCPTS)], body)


SMUGGLE = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r\n.\r", b"\r.\r\n"]


@pytest.mark.parametrize("end", SMUGGLE, ids=lambda e: e.hex())
def test_smuggling_refused(ml, end):
    """a fake end of data, then a smuggled transaction, then the real end:
    one reply (550 5.6.0) after the real end, nothing queued, nothing
    answered for the smuggled commands"""
    before = set(ml.queue_list())
    payload = (b"Subject: smuggle\r\n\r\nfirst part" + end +
               b"MAIL FROM:<evil@client.test>\r\nRCPT TO:<victim@" + DOMAIN.encode() +
               b">\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\n")

    def go(host):
        c = Raw(host)
        c.reply()
        for line, want in (("EHLO client.lab.test", 250), ("MAIL FROM:<s@client.test>", 250),
                           ("RCPT TO:<real@%s>" % DOMAIN, 250), ("DATA", 354)):
            code, text = c.cmd(line)
            assert code == want, (line, code, text)
        c.send(payload)
        final = c.reply()
        # the next reply must belong to our NOOP, not to smuggled commands
        nxt = c.cmd("NOOP")
        c.cmd("QUIT")
        c.close()
        return final, nxt

    final, nxt = in_lab(go, ml.sluice, timeout=60)
    assert final[0] == 550 and "5.6.0" in final[1], final
    assert nxt[0] == 250, nxt
    assert set(ml.queue_list()) == before


def test_bare_lf_command_refused(ml):
    def go(host):
        c = Raw(host)
        c.reply()
        c.cmd("EHLO client.lab.test")
        c.send(b"MAIL FROM:<s@client.test>\nRCPT TO:<x@lab.test>\r\n")
        a = c.reply()
        c.cmd("QUIT")
        return a
    code, text = in_lab(go, ml.sluice, timeout=60)
    assert code == 500, text


def test_slow_client_is_served(ml):
    """every byte of a transaction sent on its own, 4 ms apart (about 3 s):
    answered and queued intact, well inside the command/data timeouts"""
    body = b"Subject: slow\r\n\r\n" + b"".join(b"slow line %d\r\n" % i for i in range(25))

    def go(host):
        c = Raw(host, timeout=30)
        c.s.setsockopt(__import__("socket").IPPROTO_TCP, __import__("socket").TCP_NODELAY, 1)
        c.reply()
        out = []
        for data in (b"EHLO slow.lab.test\r\n", b"MAIL FROM:<slow@client.test>\r\n",
                     b"RCPT TO:<slow@" + DOMAIN.encode() + b">\r\n", b"DATA\r\n",
                     body + b".\r\n", b"QUIT\r\n"):
            for i in range(len(data)):
                c.send(data[i:i + 1])
                time.sleep(0.004)
            out.append(c.reply())
        c.close()
        return out

    t0 = time.monotonic()
    r = in_lab(go, ml.sluice, timeout=120)
    assert [x[0] for x in r] == [250, 250, 250, 354, 250, 221], r
    assert time.monotonic() - t0 < 60
    ml.check_queued(qid_of("250 " + r[4][1][4:]), "slow@client.test", ["slow@" + DOMAIN], body)


def test_mail_loop_refused(ml):
    """more Received headers than max_received: 554 5.4.6, nothing queued;
    exactly max_received is still accepted"""
    before = set(ml.queue_list())

    def msg(n):
        return b"".join(b"Received: from hop%d.example by hop%d.example; "
                        b"Mon, 23 Nov 2026 10:00:00 +0000\r\n" % (i, i + 1)
                        for i in range(n)) + b"Subject: loop\r\n\r\nround and round\r\n"

    steps = [("EHLO client.lab.test", 250), ("MAIL FROM:<s@client.test>", 250),
             ("RCPT TO:<loop@%s>" % DOMAIN, 250), ("DATA", 354),
             (msg(MAX_RECEIVED + 1) + b".\r\n", 554), ("QUIT", 221)]
    r = run(ml, steps)
    assert "5.4.6" in r[5][1], r
    assert set(ml.queue_list()) == before
    # with sluiced's own Received that makes MAX_RECEIVED: still fine
    body = msg(MAX_RECEIVED - 1)
    steps = steps[:4] + [(body + b".\r\n", 250)]
    r = run(ml, steps)
    ml.check_queued(qid_of("250 " + r[5][1][4:]), "s@client.test", ["loop@" + DOMAIN], body)


def test_per_client_connection_limit(ml):
    """MAX_CONNS sessions from one address are served, one more gets 421"""
    def go(host):
        conns = [Raw(host) for _ in range(MAX_CONNS)]
        greet = [c.reply()[0] for c in conns]
        extra = Raw(host)
        try:
            code, text = extra.reply()
        except ConnectionError:
            code, text = None, "closed without a reply"
        extra.close()
        ok = [c.cmd("NOOP")[0] for c in conns]
        for c in conns:
            c.cmd("QUIT")
            c.close()
        return greet, (code, text), ok

    greet, extra, ok = in_lab(go, ml.sluice, timeout=60)
    assert greet == [220] * MAX_CONNS and ok == [250] * MAX_CONNS, (greet, ok)
    assert extra[0] == 421, extra
    time.sleep(0.5)     # the slots come back: a new session is served
    r = run(ml, [("NOOP", 250), ("QUIT", 221)])
    assert r[0][0] == 220


def test_trusted_network_may_relay():
    """--trusted: the lab network relays to any domain without AUTH
    (runs last: it restarts the lab with another directory)"""
    lab_down()          # the module's lab: ours, no need to wait for it
    lab = mail_lab_up("--trusted")
    try:
        body = b"Subject: out\r\n\r\nto the world\r\n"
        steps = [("EHLO client.lab.test", 250), ("MAIL FROM:<s@client.test>", 250),
                 ("RCPT TO:<someone@elsewhere.example>", 250), ("DATA", 354),
                 (body + b".\r\n", 250)]
        r = run(lab, steps)
        lab.check_queued(qid_of("250 " + r[5][1][4:]), "s@client.test",
                         ["someone@elsewhere.example"], body)
    finally:
        lab_down()
