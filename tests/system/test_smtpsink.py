"""The relay tests' next hop checked on its own, over loopback (no lab):
tests/system/smtpsink.py stores what smtplib sent byte for byte, answers
scripted replies (options and control.json), pipelines, takes BDAT, counts,
and exits 0 on SIGTERM; Postfix's smtp-sink through smtplab.PostfixSink
counts and dumps. Bounded: < 30 s.
"""
import os
import random
import signal
import smtplib
import socket
import tempfile
import time

import pytest

from smtplab import PostfixSink, SinkProc, make_body


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="sluice-sinktest-", dir="/var/tmp")
    yield d
    import shutil
    shutil.rmtree(d, ignore_errors=True)


def sink(tmp, *args):
    return SinkProc(os.path.join(tmp, "out"), port=free_port(), args=args, netns=False,
                    host="127.0.0.1").start()


def test_stores_exact_bytes_and_envelope(tmp):
    s = sink(tmp, "--dsn")
    try:
        with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
            code, _ = c.ehlo("client.test")
            assert code == 250
            for ext in ("pipelining", "8bitmime", "size", "dsn"):
                assert c.has_extn(ext), ext
            assert not c.has_extn("chunking")
            bodies = [make_body(n, 3000 + 5000 * n, seed=4) for n in range(3)]
            for n, body in enumerate(bodies):
                assert b"\r\n." in body          # dot-stuffing is exercised
                rcpts = ["r%d@relay.test" % i for i in range(n + 1)]
                c.sendmail("s%d@sender.test" % n, rcpts, body,
                           mail_options=["BODY=8BITMIME"], rcpt_options=["NOTIFY=FAILURE"])
        msgs = s.messages()
        assert [m["body"] for m in msgs] == bodies
        assert [m["sender"] for m in msgs] == ["s0@sender.test", "s1@sender.test", "s2@sender.test"]
        assert [m["rcpts"] for m in msgs][2] == ["r0@relay.test", "r1@relay.test", "r2@relay.test"]
        assert msgs[0]["mail_params"] == ["size=%d" % len(bodies[0]), "BODY=8BITMIME"]
        assert msgs[1]["rcpt_params"] == [["NOTIFY=FAILURE"]] * 2
        assert msgs[0]["helo"] == "client.test"
        st = s.stats()
        assert (st["connections"], st["messages"], st["rcpt_ok"]) == (1, 3, 6), st
    finally:
        assert s.stop() == 0


def test_scripted_rcpt_replies_and_control_file(tmp):
    s = sink(tmp, "--rcpt-reply", "bad@relay.test=550 5.1.1 no such user",
             "--rcpt-reply", "slow@relay.test=451 4.3.0 try later")
    try:
        body = b"Subject: t\r\n\r\nhello\r\n"
        with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
            refused = c.sendmail("a@sender.test", ["ok@relay.test", "bad@relay.test",
                                                   "slow@relay.test"], body)
        assert refused == {"bad@relay.test": (550, b"5.1.1 no such user"),
                           "slow@relay.test": (451, b"4.3.0 try later")}
        assert [m["rcpts"] for m in s.messages()] == [["ok@relay.test"]]

        # run-time behaviour: a 421 greeting, then a 451 at end of data
        s.control(greeting="421 4.3.2 closed for the test")
        with pytest.raises(smtplib.SMTPConnectError) as e:
            smtplib.SMTP("127.0.0.1", s.port, timeout=10)
        assert e.value.smtp_code == 421
        s.control(data="451 4.3.0 disk full", rcpt={"ok@relay.test": "552 5.2.2 mailbox full"})
        with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                c.sendmail("a@sender.test", ["ok@relay.test"], body)
            c.rset()
            with pytest.raises(smtplib.SMTPDataError) as e:
                c.sendmail("a@sender.test", ["other@relay.test"], body)
            assert e.value.smtp_code == 451
        # the options' rules still apply under control.json
        s.control(delay_s=0.0)
        with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
            refused = c.sendmail("a@sender.test", ["ok@relay.test", "bad@relay.test"], body)
        assert list(refused) == ["bad@relay.test"]
        assert len(s.messages()) == 2
        st = s.stats()
        assert st["data_refused"] == 1 and st["rcpt_refused"] == 4 and st["connections"] == 4, st
    finally:
        assert s.stop() == 0


def test_pipelined_commands_in_one_write(tmp):
    s = sink(tmp)
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            f = c.makefile("rb")
            assert f.readline().startswith(b"220 ")
            c.sendall(b"EHLO p.test\r\n")
            while f.readline()[3:4] == b"-":
                pass
            c.sendall(b"MAIL FROM:<p@sender.test>\r\nRCPT TO:<a@relay.test>\r\n"
                      b"RCPT TO:<b@relay.test>\r\nDATA\r\n")
            codes = [f.readline()[:3] for _ in range(4)]
            assert codes == [b"250", b"250", b"250", b"354"]
            c.sendall(b"..lead\r\nx\r\n.\r\nQUIT\r\n")
            assert f.readline().startswith(b"250 ")
            assert f.readline().startswith(b"221 ")
        m, = s.messages()
        assert m["body"] == b".lead\r\nx\r\n" and m["rcpts"] == ["a@relay.test", "b@relay.test"]
    finally:
        s.stop()


def test_bdat_chunks(tmp):
    s = sink(tmp, "--chunking")
    rng = random.Random(7)
    body = bytes(rng.randrange(256) for _ in range(20000)) + b"\r\n.\r\n"   # binary, a dot line
    try:
        with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
            c.ehlo("b.test")
            assert c.has_extn("chunking")
            assert c.mail("b@sender.test")[0] == 250
            assert c.rcpt("b@relay.test")[0] == 250
            for part, last in ((body[:7], ""), (body[7:], " LAST")):
                c.send(b"BDAT %d%s\r\n" % (len(part), last.encode()) + part)
                assert c.getreply()[0] == 250
        m, = s.messages()
        assert m["body"] == body and m["bdat"]
    finally:
        s.stop()


def test_slow_mode_and_sigterm(tmp):
    s = sink(tmp, "--data-delay", "0.6")
    with smtplib.SMTP("127.0.0.1", s.port, timeout=10) as c:
        t = time.monotonic()
        c.sendmail("a@sender.test", ["x@relay.test"], b"x\r\n")
        assert time.monotonic() - t >= 0.6
    # SIGTERM with a session open: exits 0, promptly
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.recv(100)
    t = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(5) == 0
    assert time.monotonic() - t < 4
    assert c.recv(100) == b""            # the session was closed
    c.close()
    st = s.stats()
    assert st["messages"] == 1 and st["active"] == 0 and "stopped" in st, st
    s.proc = None


def test_postfix_smtp_sink_counts_and_dumps(tmp):
    out = os.path.join(tmp, "pf")
    os.chmod(tmp, 0o755)
    p = PostfixSink(out, port=free_port(), netns=False, host="127.0.0.1").start()
    try:
        with smtplib.SMTP("127.0.0.1", p.port, timeout=10) as c:
            for n in range(3):
                c.sendmail("a@sender.test", ["x@relay.test"], b"Subject: %d\r\n\r\nbody\r\n" % n)
        end = time.monotonic() + 5
        while p.counters().get("mesg") != 3 and time.monotonic() < end:
            time.sleep(0.05)
        assert p.counters().get("mesg") == 3, p.counters()
        d = p.dumps()
        assert len(d) == 3
        text = open(d[0][0], "rb").read()
        assert b"X-Mail-Args: <a@sender.test>" in text and b"Subject: " in text, text
    finally:
        p.stop()
