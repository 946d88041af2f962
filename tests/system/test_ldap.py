"""The LDAP directory backend (issue 7) against a real slapd (Debian's
/usr/sbin/slapd, own config dir, mdb database, 127.0.0.1 on a free port;
sluiced's control plane reaches it through the kernel's loopback).

Proves, through SMTP from the lab namespace: a user LDAP knows gets 250,
one it does not know 550 5.1.1; asking again is answered from sluiced's
LMDB cache (slapd's own log shows no second search; the backend's
telemetry shows fresh hits); mailHost routes the recipient and
mailForwardingAddress replaces it (queue record); AUTH by LDAP bind:
right password 235, wrong 535; slapd stopped: a cached user (past its TTL)
still 250, a cached unknown still 550, an address never looked up 451
4.4.3, AUTH 454; slapd back: the 451 address is accepted. slapd is killed
by its PID even when a test fails. Bounded: < 2 minutes.

TLS toward LDAP (test_ldap_tls, once with ldaps:// and once with ldap:// +
starttls): a second slapd serves a certificate for 127.0.0.1 from a
throwaway CA made here with openssl. With tls_ca_file = that CA a known
user gets 250 and an unknown one 550 5.1.1, and slapd's log shows that
each search ran on a connection where TLS was established (on the ldaps
port, or after STARTTLS on the plain one); with tls_ca_file = another
throwaway CA, the same addresses get 451 4.4.3 (never 550), slapd sees no
search at all, and sluiced logs a TLS handshake failure for the URI.
"""
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import telemetry
from smtplab import in_lab, lab_down, lab_up_env

SLAPD = "/usr/sbin/slapd"
LDAPADD = "/usr/bin/ldapadd"
SUFFIX = "dc=lab,dc=test"
BASE = "ou=people," + SUFFIX
ROOTDN = "cn=admin," + SUFFIX
ROOTPW = "root-pw-lab"
SVC_DN = "cn=sluice,ou=services," + SUFFIX
SVC_PW = "svc-pw-lab"
DOM = "ldap.test"
DAVE_PW = "dave-pw-lab"
CACHE_TTL = 4              # s: long enough for the cache-hit checks
ROUTE = "mbox1.lab.test:2626"

SCHEMA = """
attributetype ( 1.3.6.1.4.1.4203.666.11.77.1 NAME 'mailAlternateAddress'
	EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )
attributetype ( 1.3.6.1.4.1.4203.666.11.77.2 NAME 'mailForwardingAddress'
	EQUALITY caseIgnoreIA5Match
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )
objectclass ( 1.3.6.1.4.1.4203.666.11.77.3 NAME 'sluiceMailUser'
	SUP top AUXILIARY
	MAY ( mailAlternateAddress $ mailForwardingAddress $ mailHost ) )
"""

SLAPD_CONF = """
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/misc.schema
include {dir}/sluice.schema
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
{tls}access to attrs=userPassword
	by self write
	by anonymous auth
	by * none
access to * by * read
database mdb
maxsize 16777216
suffix "{suffix}"
rootdn "{rootdn}"
rootpw {rootpw}
directory {dir}/db
index objectClass eq
index mail,mailAlternateAddress,uid eq
"""


def person(uid, mail, extra=""):
    return """dn: uid={uid},{base}
objectClass: inetOrgPerson
objectClass: sluiceMailUser
uid: {uid}
cn: {uid}
sn: {uid}
mail: {mail}
{extra}
""".format(uid=uid, base=BASE, mail=mail, extra=extra)


TREE = """dn: {suffix}
objectClass: dcObject
objectClass: organization
o: lab
dc: lab

dn: ou=people,{suffix}
objectClass: organizationalUnit
ou: people

dn: ou=services,{suffix}
objectClass: organizationalUnit
ou: services

dn: {svc}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: sluice
userPassword: {svcpw}

""".format(suffix=SUFFIX, svc=SVC_DN, svcpw=SVC_PW) + "\n".join([
    person("alice", "alice@" + DOM, "mailAlternateAddress: a.liddell@" + DOM),
    person("bob", "bob@" + DOM, "mailHost: " + ROUTE.upper()),
    person("carol", "carol@" + DOM,
           "mailForwardingAddress: carol.new@elsewhere.test\n"
           "mailForwardingAddress: carol.archive@elsewhere.test"),
    person("dave", "dave@" + DOM, "userPassword: " + DAVE_PW),
    person("erin", "erin@" + DOM),
    # *( in a filter value must not match this one (RFC 4515 escaping)
    person("star", "st*r@" + DOM),
])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slapd:
    """our own slapd: config and database in a temp dir, stats log to a file.
    tls: (ca, cert, key) files; then it also listens on ldaps_uri"""

    def __init__(self, tmp, tls=None):
        self.dir = tmp
        self.port = free_port()
        self.uri = "ldap://127.0.0.1:%d" % self.port
        self.tls_port = free_port() if tls else None
        self.ldaps_uri = "ldaps://127.0.0.1:%d" % self.tls_port if tls else None
        self.log = os.path.join(tmp, "slapd.log")
        self.proc = None
        os.makedirs(os.path.join(tmp, "db"), exist_ok=True)
        with open(os.path.join(tmp, "sluice.schema"), "w") as f:
            f.write(SCHEMA)
        self.conf = os.path.join(tmp, "slapd.conf")
        tls_conf = ("TLSCACertificateFile %s\nTLSCertificateFile %s\n"
                    "TLSCertificateKeyFile %s\n" % tls) if tls else ""
        with open(self.conf, "w") as f:
            f.write(SLAPD_CONF.format(dir=tmp, suffix=SUFFIX, rootdn=ROOTDN,
                                      rootpw=ROOTPW, tls=tls_conf))

    def start(self):
        # -d 256: stats (one SRCH line per search) on stderr, foreground
        urls = [self.uri + "/"] + ([self.ldaps_uri + "/"] if self.tls_port else [])
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [SLAPD, "-f", self.conf, "-h", " ".join(urls), "-d", "256"],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        logf.close()
        end = time.monotonic() + 20
        for port in (self.port, self.tls_port):
            while port:
                assert self.proc.poll() is None, "slapd exited:\n" + self.log_text()[-3000:]
                assert time.monotonic() < end, \
                    "slapd did not listen:\n" + self.log_text()[-3000:]
                try:
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    break
                except OSError:
                    time.sleep(0.1)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def add(self, ldif):
        r = subprocess.run([LDAPADD, "-x", "-H", self.uri, "-D", ROOTDN, "-w",
                            ROOTPW], input=ldif, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def searches_for(self, addr):
        """SRCH lines whose filter names addr"""
        return len([l for l in self.log_text().splitlines()
                    if " SRCH base=" in l and addr.lower() in l.lower()])

    def search_conns(self, addr):
        """{conn id: that connection's log lines up to its first search
        naming addr}, for every connection that searched for addr"""
        lines, out = self.log_text().splitlines(), {}
        for i, l in enumerate(lines):
            m = re.search(r" conn=(\d+) op=\d+ SRCH base=", l)
            if m and addr.lower() in l.lower() and m.group(1) not in out:
                out[m.group(1)] = [x for x in lines[:i]
                                   if " conn=%s " % m.group(1) in x]
        return out


def start_with_tree(sl, tmp):
    """start slapd sl, load the test tree; the service account's password
    file (0600 in tmp) for [ldap] bind_password_file"""
    sl.start()
    sl.add(TREE)
    pwfile = os.path.join(tmp, "bind.pw")
    with open(pwfile, "w") as f:
        f.write(SVC_PW + "\n")
    os.chmod(pwfile, 0o600)
    return pwfile


# function scope: the lab is one per machine, and test_ldap_tls brings up
# its own labs after this one is down
@pytest.fixture
def env():
    for tool in (SLAPD, LDAPADD):
        if not os.access(tool, os.X_OK):
            pytest.fail("%s missing: run scripts/install-deps" % tool)
    tmp = tempfile.mkdtemp(prefix="sluice-slapd-")
    sl = Slapd(tmp)
    lab_up_ok = False
    try:
        pwfile = start_with_tree(sl, tmp)
        e = lab_up_env(
            "--domain", DOM + ":", "--domain", "local.test:localuser",
            "--set", "delivery.enabled=no",
            "--set", "ldap.enabled=yes",
            # the first URI refuses connections: failover to the second
            "--set", "ldap.uris=ldap://127.0.0.1:%d %s" % (free_port(), sl.uri),
            "--set", "ldap.bind_dn=" + SVC_DN,
            "--set", "ldap.bind_password_file=" + pwfile,
            "--set", "ldap.base=" + BASE,
            "--set", "ldap.domains=" + DOM,
            "--set", "ldap.auth_filter=(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%s)))",
            "--set", "ldap.timeout_ms=1000",
            "--set", "ldap.cache_ttl_s=%d" % CACHE_TTL,
            "--set", "ldap.negative_ttl_s=600",
            "--set", "ldap.retry_s=1")
        lab_up_ok = True
        assert "SLUICE_STATE" in e, e
        yield dict(slapd=sl, sluice=e["SLUICE_ADDR"], log=e["SLUICE_LOG"],
                   state=e["SLUICE_STATE"])
    finally:
        sl.stop()                 # by its PID (Popen), even on failure
        if lab_up_ok:
            # shown by pytest when the test failed
            try:
                with open(e["SLUICE_LOG"], errors="replace") as f:
                    print("sluiced log tail:\n" + "".join(f.readlines()[-60:]))
            except OSError as x:      # someone else took the lab down
                print("sluiced log: %s" % x)
            lab_down()
            # sanitizer builds report at exit: the log tests/lab down kept
            with open("/run/sluice-lab.last.log", errors="replace") as f:
                last = f.read()
            assert "Sanitizer" not in last and "runtime error:" not in last, \
                last[-5000:]
            # the backend's summary at stop, with the work it did
            m = re.search(r"ldap: (\d+) searches .* AUTH (\d+) ok", last)
            assert m and int(m.group(1)) >= 8 and int(m.group(2)) >= 2, \
                last[-3000:]
        shutil.rmtree(tmp, ignore_errors=True)


def rcpts(host, addrs):
    """one session: MAIL, then RCPT per address; [(code, text)]"""
    out = []
    with smtplib.SMTP(host, 25, timeout=30) as s:
        s.ehlo("client.lab.test")
        code, _ = s.mail("sender@client.test")
        assert code == 250
        for a in addrs:
            code, text = s.rcpt(a)
            out.append((code, text.decode()))
        s.rset()
    return out


def send(host, to, body):
    """a whole message; the reply to DATA"""
    with smtplib.SMTP(host, 25, timeout=30) as s:
        s.ehlo("client.lab.test")
        s.mail("sender@client.test")
        for a in to:
            code, text = s.rcpt(a)
            assert code == 250, (a, code, text)
        return s.data(body)


def auth(host, user, pw):
    """AUTH PLAIN on the submission port after STARTTLS; (code, text)"""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(host, 587, timeout=30) as s:
        s.ehlo("client.lab.test")
        s.starttls(context=ctx)
        s.ehlo("client.lab.test")
        s.user, s.password = user, pw
        try:       # exactly one AUTH PLAIN (login() would try LOGIN too)
            code, text = s.auth("PLAIN", s.auth_plain)
        except smtplib.SMTPAuthenticationError as e:
            code, text = e.smtp_code, e.smtp_error
        return code, text.decode()


def counters():
    return telemetry("/sluice/ldap/counters")


def queued_rcpts(state, qid):
    r = subprocess.run([os.path.join(os.environ.get("SLUICE_BUILD", "build"),
                                     "storage", "sluice-stor"),
                        "queue-show", os.path.join(state, "queue"), qid],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"rcpt: (\S+) state=\S+ dest=(\S*)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_ldap_backend(env):
    sl, host = env["slapd"], env["sluice"]
    c0 = counters()

    # first lookups go to LDAP
    r = in_lab(rcpts, host, ["alice@" + DOM, "nobody@" + DOM,
                             "A.Liddell@" + DOM.upper(), "st*r@" + DOM,
                             "s*@" + DOM, "localuser@local.test",
                             "other@local.test"])
    assert r[0][0] == 250, r
    assert r[1][0] == 550 and "5.1.1" in r[1][1], r
    assert r[2][0] == 250, r                  # mailAlternateAddress, any case
    assert r[3][0] == 250, r
    assert r[4][0] == 550 and "5.1.1" in r[4][1], r   # '*' escaped: no wildcard
    assert r[5][0] == 250, r                  # local directory first
    assert r[6][0] == 550, r                  # not an LDAP domain
    t_first = time.monotonic()
    assert sl.searches_for("alice@" + DOM) == 1
    assert sl.searches_for("nobody@" + DOM) == 1
    assert sl.searches_for("@local.test") == 0
    c1 = counters()
    assert c1["searches"] - c0["searches"] == 5, (c0, c1)
    assert c1["found"] - c0["found"] == 3 and c1["notfound"] - c0["notfound"] == 2

    # again: answered from the cache, slapd sees no new search
    r = in_lab(rcpts, host, ["alice@" + DOM, "nobody@" + DOM])
    assert time.monotonic() - t_first < CACHE_TTL, "too slow for the TTL"
    assert [x[0] for x in r] == [250, 550], r
    assert sl.searches_for("alice@" + DOM) == 1
    assert sl.searches_for("nobody@" + DOM) == 1
    c2 = counters()
    assert c2["hits_fresh"] - c1["hits_fresh"] == 2, (c1, c2)
    assert c2["searches"] == c1["searches"]

    # routing and forwarding from LDAP attributes, in the queue record
    code, text = in_lab(send, host, ["bob@" + DOM, "carol@" + DOM, "alice@" + DOM],
                        b"Subject: ldap\r\n\r\nhello\r\n")
    assert code == 250, text
    qid = re.search(rb"queued as (\w+)", text).group(1).decode()
    q = queued_rcpts(env["state"], qid)
    assert q == {"bob@" + DOM: ROUTE,
                 "carol.new@elsewhere.test": "elsewhere.test",
                 "carol.archive@elsewhere.test": "elsewhere.test",
                 "alice@" + DOM: DOM}, q

    # AUTH by LDAP bind
    assert in_lab(auth, host, "dave", DAVE_PW)[0] == 235
    assert in_lab(auth, host, "dave@" + DOM, DAVE_PW)[0] == 235
    code, text = in_lab(auth, host, "dave", "wrong-password")
    assert code == 535 and "5.7.8" in text, (code, text)
    assert in_lab(auth, host, "nosuchuser", DAVE_PW)[0] == 535
    assert in_lab(auth, host, "erin", "x")[0] == 535      # no userPassword
    c3 = counters()
    assert c3["auth_ok"] - c2["auth_ok"] == 2
    assert c3["auth_fail"] - c2["auth_fail"] == 3

    # LDAP gone: cached answers serve (alice past her TTL: stale), an
    # address never looked up gets 451 4.4.3, never 550
    sl.stop()
    while time.monotonic() - t_first < CACHE_TTL + 0.5:
        time.sleep(0.2)
    r = in_lab(rcpts, host, ["alice@" + DOM, "nobody@" + DOM, "erin@" + DOM,
                             "ghost@" + DOM])
    assert r[0][0] == 250, r
    assert r[1][0] == 550 and "5.1.1" in r[1][1], r
    for x in r[2:]:
        assert x[0] == 451 and "4.4.3" in x[1], r
        assert "Directory server unavailable" in x[1], r
    c4 = counters()
    assert c4["stale_served"] - c3["stale_served"] >= 1, (c3, c4)
    assert c4["unavail"] - c3["unavail"] >= 2, (c3, c4)
    code, text = in_lab(auth, host, "dave", DAVE_PW)
    assert code == 454 and "4.7.0" in text, (code, text)

    # LDAP back: after retry_s the 451 address is accepted
    sl.start()
    time.sleep(1.5)
    r = in_lab(rcpts, host, ["erin@" + DOM, "ghost@" + DOM])
    assert [x[0] for x in r] == [250, 550], r

    # passwords never reach the log
    with open(env["log"], errors="replace") as f:
        log = f.read()
    for pw in (SVC_PW, DAVE_PW, "wrong-password"):
        assert pw not in log
    assert "ldap: service connection to " + sl.uri in log


# ---- TLS toward LDAP ----

def openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, (args, r.stdout, r.stderr)


def make_ca(d, name):
    """a throwaway self-signed CA in d: (cert, key)"""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=sluice test " + name, "-keyout", name + ".key",
            "-out", name + ".pem", cwd=d)
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


def make_server_cert(d, ca, ca_key):
    """a server certificate for 127.0.0.1 / localhost signed by ca"""
    with open(os.path.join(d, "srv.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "srv.key", "-out", "srv.csr", cwd=d)
    openssl("x509", "-req", "-in", "srv.csr", "-CA", ca, "-CAkey", ca_key,
            "-CAcreateserial", "-days", "2", "-extfile", "srv.ext",
            "-out", "srv.pem", cwd=d)
    return os.path.join(d, "srv.pem"), os.path.join(d, "srv.key")


@pytest.fixture(scope="module")
def tls_slapd():
    """a slapd on ldap:// (StartTLS) and ldaps://, certificate from a CA
    made here; also a second CA that signed nothing it serves"""
    for tool in (SLAPD, LDAPADD):
        if not os.access(tool, os.X_OK):
            pytest.fail("%s missing: run scripts/install-deps" % tool)
    tmp = tempfile.mkdtemp(prefix="sluice-slapd-tls-")
    try:
        ca, ca_key = make_ca(tmp, "ca")
        other_ca, _ = make_ca(tmp, "other-ca")
        cert, key = make_server_cert(tmp, ca, ca_key)
        sl = Slapd(tmp, tls=(ca, cert, key))
        try:
            pwfile = start_with_tree(sl, tmp)
            yield dict(slapd=sl, ca=ca, other_ca=other_ca, pwfile=pwfile)
        finally:
            sl.stop()                 # by its PID (Popen), even on failure
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def tls_lab(t, mode, ca):
    """a lab sluiced whose [ldap] talks TLS to t's slapd: ldaps:// or
    ldap:// + starttls, tls_ca_file = ca; its lab_up_env variables"""
    sl = t["slapd"]
    sets = ["ldap.uris=" + (sl.ldaps_uri if mode == "ldaps" else sl.uri),
            "ldap.starttls=" + ("yes" if mode == "starttls" else "no"),
            "ldap.tls_ca_file=" + ca,
            "ldap.bind_dn=" + SVC_DN,
            "ldap.bind_password_file=" + t["pwfile"],
            "ldap.base=" + BASE,
            "ldap.domains=" + DOM,
            "ldap.timeout_ms=1000",
            "ldap.retry_s=1"]
    args = ["--domain", DOM + ":", "--set", "delivery.enabled=no",
            "--set", "ldap.enabled=yes"]
    for x in sets:
        args += ["--set", x]
    return lab_up_env(*args)


def lab_log(e):
    with open(e["SLUICE_LOG"], errors="replace") as f:
        return f.read()


@pytest.mark.parametrize("mode", ["ldaps", "starttls"])
def test_ldap_tls(tls_slapd, mode):
    t, sl = tls_slapd, tls_slapd["slapd"]
    uri = sl.ldaps_uri if mode == "ldaps" else sl.uri
    # addresses of this case only: slapd's log is shared by both cases
    known = {"ldaps": "alice@", "starttls": "bob@"}[mode] + DOM
    unknown = "nobody-%s@%s" % (mode, DOM)
    known_bad = {"ldaps": "erin@", "starttls": "carol@"}[mode] + DOM
    unknown_bad = "ghost-%s@%s" % (mode, DOM)

    # (a) the right CA: real answers, over TLS
    e = tls_lab(t, mode, t["ca"])
    try:
        r = in_lab(rcpts, e["SLUICE_ADDR"], [known, unknown])
        assert r[0][0] == 250, r
        assert r[1][0] == 550 and "5.1.1" in r[1][1], r
        log = lab_log(e)
        assert "ldap: service connection to %s%s" % (
            uri, " (STARTTLS)" if mode == "starttls" else "") in log, log[-3000:]
        assert "TLS handshake failed" not in log, log[-3000:]
    except BaseException:
        print("sluiced log tail:\n" + lab_log(e)[-4000:])
        raise
    finally:
        lab_down()
    for addr in (known, unknown):
        conns = sl.search_conns(addr)
        assert len(conns) == 1, (addr, conns, sl.log_text()[-3000:])
        for cid, lines in conns.items():
            text = "\n".join(lines)
            # the search ran on a connection that was TLS before it
            assert "TLS established" in text, (addr, text)
            if mode == "ldaps":
                assert re.search(r"ACCEPT from IP=127\.0\.0\.1:\d+ "
                                 r"\(IP=127\.0\.0\.1:%d\)" % sl.tls_port,
                                 text), (addr, text)
            else:
                assert re.search(r"ACCEPT from .*:%d\)" % sl.port, text), text
                assert " STARTTLS" in text, (addr, text)
                assert text.index(" STARTTLS") < text.index("TLS established")
            assert 'BIND dn="%s"' % SVC_DN in text, (addr, text)

    # (b) a CA that did not sign slapd's certificate: no answer from LDAP,
    # so 451 4.4.3 for everyone, and the log says TLS failed
    e = tls_lab(t, mode, t["other_ca"])
    try:
        r = in_lab(rcpts, e["SLUICE_ADDR"], [known_bad, unknown_bad])
        for x in r:
            assert x[0] == 451 and "4.4.3" in x[1], r
        c = counters()
        assert c["connect_fails"] >= 1 and c["searches"] == 0, c
        log = lab_log(e)
        assert re.search(r"ldap: %s: TLS handshake failed: " % re.escape(uri),
                         log), log[-3000:]
        assert "chains to tls_ca_file " + t["other_ca"] in log, log[-3000:]
        assert "service connection to" not in log, log[-3000:]
    except BaseException:
        print("sluiced log tail:\n" + lab_log(e)[-4000:])
        raise
    finally:
        lab_down()
    # slapd never saw a search for them (no fallback to plaintext)
    assert sl.searches_for(known_bad) == 0 and sl.searches_for(unknown_bad) == 0
