"""Operations commands against a lab sluiced (docs/cli.md: dir, reload,
drain, log), through `tests/lab ctl`, checked as an operator would notice:

  - dir add rcpt: a new SMTP session gets 250 for it at once (no restart);
    dir remove: 550 again
  - dir import with a bad line: exit 1 naming FILE:LINE, the directory
    exported afterwards is byte-identical to before
  - dir export -> dir import -> dir export: identical
  - dir passwd --stdin: AUTH with the new password works, a wrong one not
  - reload after a new certificate was written over the files: a new
    STARTTLS session is served the new certificate
  - reload with [interface] address changed (and a live key beside it):
    exit 1 naming the key, nothing applied (the live key stays old);
    reload with only the live key: applied (452 at the 3rd RCPT)
  - drain under smtp-source load: new connections refused, every message
    that got 250 is delivered to the next hop exactly, drain status ends
    "done"; undrain: a new session gets its 220
  - log debug smtpd on/off and log level warn: visible in sluiced's log
  - log debug deliver/dsched/storage/stack/ctl on: each writes its lines
    for a relayed message and a status request; all off: no debug line

Bounded: every wait has a deadline. Starts its own lab
(conftest.lab_up_env waits for one in use to go away).
"""
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import wait_for
from smtplab import (LAB, USERS_DOMAIN, SinkProc, in_lab, lab_down,
                     mail_lab_up)

RELAY = "relay.test"
SOURCE_QID = re.compile(r"<<< 250 2\.0\.0 Ok: queued as ([0-9A-Z]{13})")
CONF = "/run/sluice-lab/sluiced.conf"
TLS_DIR = "/run/sluice-lab/tls"


def ctl(*args, input=None, timeout=60):
    return subprocess.run([LAB, "ctl", *args], capture_output=True,
                          text=True, timeout=timeout, input=input)


def ctl_ok(*args, **kw):
    r = ctl(*args, **kw)
    assert r.returncode == 0, "ctl %s: exit %d\n%s%s" % (
        " ".join(args), r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r.stdout


@pytest.fixture(scope="module")
def env():
    work = tempfile.mkdtemp(prefix="sluice-ops-", dir="/var/tmp")
    ml = mail_lab_up("--set", "delivery.enabled=yes",
                     "--set", "delivery.retry_schedule=2s,2s,3s")
    sink = SinkProc(os.path.join(work, "sink"), port=2525)
    conf0 = open(CONF).read()
    try:
        sink.start()
        yield ml, sink, work
    finally:
        with open(CONF, "w") as f:
            f.write(conf0)
        sink.stop()
        lab_down()
        shutil.rmtree(work, ignore_errors=True)


def rcpt_code(host, rcpt):
    """(code, text) of RCPT TO:<rcpt> in a fresh session"""
    def go(host):
        s = smtplib.SMTP(host, 25, timeout=30)
        s.ehlo("client.lab.test")
        s.mail("ops@sender.test")
        r = s.rcpt(rcpt)
        s.quit()
        return r
    return in_lab(go, host, timeout=60)


def log_text(ml):
    return open(ml.log, errors="replace").read()


def test_dir_add_remove_takes_effect(env):
    ml, _, _ = env
    who = "carol@" + USERS_DOMAIN
    assert rcpt_code(ml.sluice, who)[0] == 550
    out = ctl_ok("dir", "add", "rcpt", who, "accept")
    assert "added: rcpt %s accept" % who in out
    assert rcpt_code(ml.sluice, who)[0] == 250
    assert ctl_ok("dir", "show", "rcpt", who).strip() == "rcpt %s accept" % who
    # a second add is refused, changes nothing
    r = ctl("dir", "add", "rcpt", who, "reject")
    assert r.returncode == 1 and "duplicate" in r.stderr, r.stderr
    assert rcpt_code(ml.sluice, who)[0] == 250
    # change to reject: 550 at once
    ctl_ok("dir", "change", "rcpt", who, "reject")
    assert rcpt_code(ml.sluice, who)[0] == 550
    ctl_ok("dir", "remove", "rcpt", who)
    assert rcpt_code(ml.sluice, who)[0] == 550
    r = ctl("dir", "remove", "rcpt", who)
    assert r.returncode == 1 and "no rcpt" in r.stderr, r.stderr
    # a domain with recipients cannot go
    r = ctl("dir", "remove", "domain", USERS_DOMAIN)
    assert r.returncode == 1 and "still has recipients" in r.stderr
    lst = ctl_ok("dir", "list", "rcpts", "prefix=alice@")
    assert "rcpt alice@users.test accept" in lst and "bob@" not in lst


def test_dir_import_bad_line_changes_nothing(env):
    _, _, work = env
    before = ctl_ok("dir", "export")
    bad = os.path.join(work, "bad.txt")
    with open(bad, "w") as f:
        f.write("domain new.test local\nrcpt a@new.test accept\n"
                "rcpt b@undeclared.test accept\nnet 10.0.0.0/8\n")
    r = ctl("dir", "import", bad)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "bad.txt:3: recipient's domain is not declared" in r.stderr, r.stderr
    assert "nothing was changed" in r.stderr
    assert ctl_ok("dir", "export") == before


def test_dir_export_import_roundtrip(env):
    _, _, work = env
    one = ctl_ok("dir", "export")
    assert one.startswith("# sluice directory") and "domain users.test" in one
    path = os.path.join(work, "dir.txt")
    with open(path, "w") as f:
        f.write(one)
    out = ctl_ok("dir", "import", path)
    assert "imported dir.txt" in out
    assert ctl_ok("dir", "export") == one
    # from stdin too
    ctl_ok("dir", "import", "-", input=one)
    assert ctl_ok("dir", "export") == one


def auth(host, user, pw):
    def go(host):
        s = smtplib.SMTP(host, 25, timeout=30)
        s.ehlo("client.lab.test")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo("client.lab.test")
        try:
            code = s.login(user, pw)[0]
        except smtplib.SMTPAuthenticationError as e:
            code = e.smtp_code
        s.quit()
        return code
    return in_lab(go, host, timeout=60)


def test_dir_passwd_stdin(env):
    ml, _, _ = env
    user = "dave@" + USERS_DOMAIN
    assert auth(ml.sluice, user, "n3w pass word") == 535
    out = ctl_ok("dir", "passwd", user, "--stdin", input="n3w pass word\n")
    assert "password set for %s" % user in out
    assert auth(ml.sluice, user, "n3w pass word") == 235
    assert auth(ml.sluice, user, "wrong") == 535
    shown = ctl_ok("dir", "show", "user", user)
    assert shown.startswith("user %s $scrypt$" % user) and "n3w" not in shown
    assert "n3w pass word" not in log_text(ml)
    # no password on stdin: usage error, nothing sent
    r = ctl("dir", "passwd", user, "--stdin", input="")
    assert r.returncode == 2, r.stderr


def served_cert(host):
    def go(host):
        s = smtplib.SMTP(host, 25, timeout=30)
        s.ehlo("client.lab.test")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        der = s.sock.getpeercert(binary_form=True)
        s.quit()
        return der
    return in_lab(go, host, timeout=60)


def pem_to_der(path):
    return ssl.PEM_cert_to_DER_cert(open(path).read())


def test_reload_new_certificate(env):
    ml, _, work = env
    old = served_cert(ml.sluice)
    assert old == pem_to_der(os.path.join(TLS_DIR, "cert.pem"))
    key, cert = os.path.join(work, "k.pem"), os.path.join(work, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=renewed.lab.test"],
                   check=True, capture_output=True, timeout=60)
    # a cert that does not match the key: refused, old one stays
    shutil.copy(cert, os.path.join(TLS_DIR, "cert.pem"))
    r = ctl("reload")
    assert r.returncode == 1 and "[tls] cert/key" in r.stderr, r.stderr
    assert served_cert(ml.sluice) == old
    shutil.copy(key, os.path.join(TLS_DIR, "key.pem"))
    out = ctl_ok("reload")
    assert "no setting changed" in out and "TLS certificate" in out, out
    new = served_cert(ml.sluice)
    assert new == pem_to_der(cert) and new != old


def set_key(text, section, key, value):
    """the config text with [section] key = value (replaced or added)"""
    lines, out, sec, done = text.splitlines(), [], None, False
    for ln in lines:
        m = re.match(r"\s*\[(\w+)\]", ln)
        if m:
            if sec == section and not done:
                out.append("%s = %s" % (key, value))
                done = True
            sec = m.group(1)
        elif sec == section and re.match(r"\s*%s\s*=" % key, ln):
            ln, done = "%s = %s" % (key, value), True
        out.append(ln)
    if not done:
        if sec != section:
            out.append("[%s]" % section)
        out.append("%s = %s" % (key, value))
    return "\n".join(out) + "\n"


def rcpts_accepted(host, n):
    def go(host):
        s = smtplib.SMTP(host, 25, timeout=30)
        s.ehlo("client.lab.test")
        s.mail("ops@sender.test")
        codes = [s.rcpt("r%d@lab.test" % i)[0] for i in range(n)]
        s.rset()
        s.quit()
        return codes
    return in_lab(go, host, timeout=60)


def test_reload_restart_key_refused(env):
    ml, _, _ = env
    conf0 = open(CONF).read()
    assert rcpts_accepted(ml.sluice, 3) == [250, 250, 250]
    try:
        c = set_key(conf0, "smtp", "max_recipients", "2")
        with open(CONF, "w") as f:
            f.write(set_key(c, "interface", "address", "198.18.0.7/24"))
        r = ctl("reload")
        assert r.returncode == 1, r.stdout
        assert "[interface] address" in r.stderr and "nothing was applied" in r.stderr, r.stderr
        assert "max_recipients" not in r.stderr
        assert rcpts_accepted(ml.sluice, 3) == [250, 250, 250]
        with open(CONF, "w") as f:
            f.write(c)
        out = ctl_ok("reload")
        assert "changed [smtp] max_recipients" in out, out
        assert rcpts_accepted(ml.sluice, 3) == [250, 250, 452]
    finally:
        with open(CONF, "w") as f:
            f.write(conf0)
    assert "changed [smtp] max_recipients" in ctl_ok("reload")
    assert rcpts_accepted(ml.sluice, 3) == [250, 250, 250]


def connect_result(host):
    def go(host):
        s = socket.socket()
        s.settimeout(10)
        try:
            s.connect((host, 25))
        except ConnectionRefusedError:
            return "refused"
        banner = s.recv(512).decode(errors="replace")
        s.close()
        return banner
    return in_lab(go, host, timeout=30)


def test_drain_under_load(env):
    ml, sink, work = env
    # transcript to a file: a full pipe would stall smtp-source
    tr = open(os.path.join(work, "source.log"), "wb")
    src = subprocess.Popen(
        [LAB, "exec", "smtp-source", "-v", "-s", "4", "-m", "600", "-l",
         "1024", "-f", "src@sender.test", "-t", "src@" + RELAY,
         "%s:25" % ml.sluice], stdout=tr, stderr=subprocess.STDOUT)
    try:
        # some of the load is in before the drain
        assert wait_for(lambda: len(sink.messages()) >= 20, timeout=60,
                        step=0.2)
        out = ctl_ok("drain")
        assert "draining since" in out, out
        assert connect_result(ml.sluice) == "refused"
        src.wait(timeout=120)
    finally:
        if src.poll() is None:
            src.kill()
        tr.close()
    log = open(os.path.join(work, "source.log"), errors="replace").read()
    ids = set(SOURCE_QID.findall(log))
    # part of the load got in, the rest was refused by the drain
    assert 20 <= len(ids) < 600, log[-1500:]
    assert "refused" in log.lower() or "connect" in log.lower(), log[-1500:]
    # the drain finishes: no session, empty queue
    done = wait_for(lambda: "done: no session open, queue empty" in
                    ctl_ok("drain", "status"), timeout=90, step=0.5)
    assert done, ctl_ok("drain", "status")
    got = {}
    for m in sink.messages():
        g = re.search(rb"\bid ([0-9A-Z]{13})\b", m["body"][:2000])
        if g:
            got.setdefault(g.group(1).decode(), 0)
            got[g.group(1).decode()] += 1
    missing = ids - set(got)
    assert not missing, "accepted (250) but not delivered: %s" % sorted(missing)[:10]
    st = ctl_ok("--json", "drain", "status")
    assert '"draining":true' in st and '"sessions":0' in st, st
    out = ctl_ok("undrain")
    assert "not draining" in out
    assert connect_result(ml.sluice).startswith("220 ")


def test_log_levels(env):
    ml, _, _ = env
    ctl_ok("log", "debug", "smtpd", "on")
    n0 = log_text(ml).count("debug: smtpd:")
    assert rcpt_code(ml.sluice, "x@lab.test")[0] == 250
    assert wait_for(lambda: log_text(ml).count("debug: smtpd:") > n0, timeout=5)
    ctl_ok("log", "debug", "smtpd", "off")
    n1 = log_text(ml).count("debug: smtpd:")
    rcpt_code(ml.sluice, "x@lab.test")
    time.sleep(0.5)
    assert log_text(ml).count("debug: smtpd:") == n1
    # level warn: the info line of a directory change is not written
    ctl_ok("log", "level", "warn")
    ctl_ok("dir", "add", "net", "192.0.2.0/24")
    time.sleep(0.3)
    assert "added net 192.0.2.0/24" not in log_text(ml)
    ctl_ok("log", "level", "info")
    ctl_ok("dir", "remove", "net", "192.0.2.0/24")
    assert wait_for(lambda: "removed net 192.0.2.0/24" in log_text(ml), timeout=5)
    assert "log level info" in ctl_ok("log", "show")
    r = ctl("log", "level", "loud")
    assert r.returncode == 1 and "not a level" in r.stderr


def send_one(host, rcpt, subject):
    """one message through a fresh session; returns the 250's queue id"""
    def go(host):
        s = smtplib.SMTP(host, 25, timeout=30)
        s.ehlo("client.lab.test")
        s.mail("ops@sender.test")
        s.rcpt(rcpt)
        code, text = s.data(("Subject: %s\r\n\r\nbody\r\n" % subject).encode())
        s.quit()
        return code, text.decode()
    code, text = in_lab(go, host, timeout=60)
    assert code == 250, (code, text)
    return text.rsplit(" ", 1)[-1]


def test_module_debug_lines(env):
    """each module switch (deliver, dsched, storage, stack, ctl) brings its
    own debug lines for the mail that goes through, and only while on"""
    ml, sink, _ = env
    mods = ("deliver", "dsched", "storage", "stack", "ctl")
    for m in mods:
        ctl_ok("log", "debug", m, "on")
    start = len(log_text(ml))
    n0 = len(sink.messages())
    qid = send_one(ml.sluice, "dbg@" + RELAY, "module debug")
    assert wait_for(lambda: len(sink.messages()) > n0, timeout=30)
    ctl_ok("status")
    time.sleep(1.5)                      # the stack's line comes each second
    new = log_text(ml)[start:]
    want = {
        "deliver": r"debug: deliver: io lcore \d+: %s to %s via [0-9.]+:2525: "
                   r"session, 1 recipient\(s\): 1 2xx 0 4xx 0 5xx" % (qid, RELAY),
        "deliver connect": r"debug: deliver: io lcore \d+: (connecting to|reusing "
                           r"the connection to) [0-9.]+:2525 for %s" % RELAY,
        "dsched": r"debug: dsched: %s: to %s, priority \d, 1 recipient\(s\), "
                  r"attempt 1" % (qid, RELAY),
        "storage": r"debug: storage: committed \d+ submission\(s\) in [0-9.]+ ms",
        "stack": r"debug: stack: io lcore \d+, (last [0-9.]+ s|since start):"
                 r".*\S",
        "ctl": r'debug: ctl: request "status": \d+ byte\(s\) of reply in',
    }
    for name, rx in want.items():
        assert re.search(rx, new), "no %s debug line (%s) in:\n%s" % (
            name, rx, new[-3000:])
    for m in mods:
        ctl_ok("log", "debug", m, "off")
    time.sleep(1.2)     # a stack line being written as it was switched off
    start = len(log_text(ml))
    n0 = len(sink.messages())
    send_one(ml.sluice, "dbg@" + RELAY, "module debug off")
    assert wait_for(lambda: len(sink.messages()) > n0, timeout=30)
    ctl_ok("status")
    time.sleep(1.5)
    assert "debug:" not in log_text(ml)[start:], log_text(ml)[start:][-2000:]
