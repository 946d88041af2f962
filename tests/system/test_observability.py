"""Observability against a lab sluiced (docs/cli.md stats/top,
docs/operations.md Metrics, Telemetry, Packet capture).

Checked as an operator would notice, after real mail went through:
  - `sluicectl stats` (through tests/lab ctl): per-lcore packets, TCP
    states, SMTP replies by class and accepted messages that match what
    was sent; ring depths per priority; queue by state; a closed link's
    destination with its held count, oldest message age and link state;
    delivery results once the link opens; a bad argument is refused
  - `sluicectl top -n 0.5 -c 3`: three frames, rates from the second on,
    no ANSI codes when stdout is not a terminal, clear-screen codes when
    it is one; SIGINT ends an endless top with exit 0
  - GET /metrics on the management side (kernel socket on the host,
    127.0.0.1:PORT given with --set control.metrics_listen): 200 with the
    0.0.4 content type, counters that match the mail sent, the held
    destination, 404 for another path; every family the scrape has is
    documented in docs/operations.md "Metrics" and every documented name
    is in the scrape
  - dpdk-telemetry.py (Debian's dpdk package) against the lab's file
    prefix lists the /sluice/* commands and answers them

Bounded: every wait has a deadline; the module takes about a minute.
Starts its own lab (conftest.lab_up_env waits for one in use to go away).
"""
import json
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, wait_for
from smtplab import BUILD, LAB, SinkProc, lab_down, mail_lab_up

RELAY = "relay.test"            # routed to peer:2525 by mail_lab_up
SENDER = "obs@sender.test"
N_HELD = 3                      # swaks messages while the link is closed
N_SOURCE = 40                   # smtp-source messages after it opens
TELEMETRY = "/usr/bin/dpdk-telemetry.py"
SLUICECTL = os.path.join(BUILD, "control", "sluicectl")
LAB_CONF = "/run/sluice-lab/sluiced.conf"
DOC = os.path.join(ROOT, "docs", "operations.md")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ctl(*args, timeout=30):
    return subprocess.run([LAB, "ctl", *args], capture_output=True, text=True,
                          timeout=timeout)


def stats(*args):
    r = ctl("--json", "stats", *args)
    assert r.returncode == 0, "stats: exit %d\n%s%s" % (r.returncode, r.stdout[-2000:],
                                                       r.stderr[-2000:])
    return json.loads(r.stdout)


def dest_row(st, name):
    for d in st["destinations"]["largest"]:
        if d["destination"] == name:
            return d
    return None


def scrape(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def samples(text):
    """{(name, frozenset(labels)): value} and the family names (# TYPE)"""
    out, fams = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            fams.append(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        m = re.match(r'^([a-z_0-9]+)(?:\{(.*)\})? (\S+)$', line)
        assert m, "not a sample line: %r" % line
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out, fams


def doc_metric_names():
    """sluice_* names in docs/operations.md's Metrics subsection"""
    text = open(DOC).read()
    m = re.search(r"^### Metrics\n(.*?)(?=^## |^### )", text, re.M | re.S)
    assert m, "docs/operations.md has no '### Metrics' subsection"
    return set(re.findall(r"`(sluice_[a-z0-9_]+)", m.group(1)))


@pytest.fixture(scope="module")
def env():
    work = tempfile.mkdtemp(prefix="sluice-obs-", dir="/var/tmp")
    port = free_port()
    ml = mail_lab_up("--set", "control.metrics_listen=127.0.0.1:%d" % port,
                     "--set", "delivery.retry_schedule=2s,2s,3s")
    sink = SinkProc(os.path.join(work, "sink"), port=2525)
    try:
        sink.start()
        yield ml, sink, port
    finally:
        sink.stop()
        lab_down()
        shutil.rmtree(work, ignore_errors=True)


def test_observability(env):
    ml, sink, port = env
    st0 = stats()
    assert st0["lcores"] and st0["lcores"][0]["state"] == "running", st0["lcores"]
    acc0 = st0["totals"]["accepted"]

    # ---- a closed link: mail waits, stats and /metrics show the destination
    r = ctl("link", "close", RELAY)
    assert r.returncode == 0, r.stderr
    for i in range(N_HELD):
        rc, out = ml.swaks("--to", "h%d@%s" % (i, RELAY), "--from", SENDER,
                           "--body", "observability %d" % i)
        assert rc == 0 and "queued as" in out, out
    held = wait_for(lambda: (lambda s: s if (dest_row(s, RELAY) or {}).get("held", 0) >= N_HELD
                             else None)(stats()), timeout=20)
    assert held, stats()
    d = dest_row(held, RELAY)
    assert d["link"] == "closed" and d["queued"] >= N_HELD, d
    assert d["oldest_age_s"] is not None and 0 <= d["oldest_age_s"] < 120, d
    assert held["queue"]["by_state"]["held"] >= N_HELD, held["queue"]
    assert held["queue"]["messages"] >= N_HELD
    assert len(held["rings"]["prio"]) == 8 and len(held["queue"]["by_priority"]) == 8
    lc = held["lcores"][0]
    assert lc["packets"]["rx"] > 0 and lc["packets"]["tx"] > 0, lc
    assert lc["smtp"]["accepted"] >= acc0 + N_HELD, lc["smtp"]
    assert lc["smtp"]["replies"]["2xx"] >= 4 * N_HELD, lc["smtp"]   # greeting, EHLO, MAIL, RCPT, DATA...
    assert set(lc["tcp"]["connections"]) == {"established", "syn_recv", "syn_sent", "closing",
                                             "zombie", "time_wait"}, lc["tcp"]
    assert lc["tcp"]["accepts"] >= N_HELD, lc["tcp"]
    assert {"tx_full", "ip_fragment", "tcp_bad_csum"} <= set(lc["drops"]), lc["drops"]
    assert set(lc["smtp"]["pushback"]) == {"ring_full", "wait_timeout", "queue_full", "store_full"}
    assert held["totals"]["accepted"] == sum(x["smtp"]["accepted"] for x in held["lcores"])
    assert held["workers"] == [] or "taken" in held["workers"][0]
    # people's table
    r = ctl("stats")
    assert r.returncode == 0 and r.stdout.startswith("sluiced up "), r.stdout[:200]
    assert "LCORE STATE" in r.stdout and "rings: prio" in r.stdout, r.stdout
    assert re.search(r"^  relay\.test +closed +\d+ +\d+ ", r.stdout, re.M), r.stdout
    r = ctl("stats", "dests=x")
    assert r.returncode == 1 and "stats: dests=\"x\" is not a count" in r.stderr, r.stderr
    r = ctl("--json", "stats", "dests=0")
    assert r.returncode == 0 and json.loads(r.stdout)["destinations"]["largest"] == []

    # /metrics from the host while the mail is held
    status, ctype, text = scrape(port)
    assert status == 200 and ctype == "text/plain; version=0.0.4; charset=utf-8", ctype
    smp, fams = samples(text)
    lcore = str(lc["lcore"])
    key = lambda n, **kw: (n, frozenset(kw.items()))   # noqa: E731
    assert smp[key("sluice_destination_held_messages", dest=RELAY)] >= N_HELD, text
    assert smp[key("sluice_destination_link", dest=RELAY, state="closed")] == 1
    assert smp[key("sluice_destination_link", dest=RELAY, state="open")] == 0
    assert smp[key("sluice_queue_messages_by_state", state="held")] >= N_HELD
    assert smp[key("sluice_smtp_messages_accepted_total", lcore=lcore)] >= acc0 + N_HELD
    assert smp[key("sluice_io_lcore_running", lcore=lcore)] == 1
    assert smp[key("sluice_rx_packets_total", lcore=lcore)] > 0
    with pytest.raises(urllib.error.HTTPError) as e:
        scrape(port, "/other")
    assert e.value.code == 404
    # every family documented, every documented name scraped
    doc = doc_metric_names()
    assert len(fams) == len(set(fams)), "a family appears twice"
    assert set(fams) - doc == set(), "not in docs/operations.md: %s" % sorted(set(fams) - doc)
    assert doc - set(fams) == set(), "documented, not served: %s" % sorted(doc - set(fams))

    # ---- open the link, send more: delivery results and rates
    r = ctl("link", "open", RELAY)
    assert r.returncode == 0, r.stderr
    r = ml.exec("smtp-source", "-s", "4", "-m", str(N_SOURCE), "-l", "1024",
                "-f", SENDER, "-t", "src@" + RELAY, "%s:25" % ml.sluice,
                timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    done = wait_for(lambda: (lambda s: s if s["delivery"]["delivered"] >= N_HELD + N_SOURCE
                             and s["queue"]["messages"] == 0 else None)(stats()), timeout=60)
    assert done, stats()
    assert done["delivery"]["deliver_p99_us"] > 0 and done["delivery"]["deliver_p50_us"] > 0
    d = dest_row(done, RELAY)
    assert d is None or (d["link"] == "open" and d["held"] == 0), d
    dl = [x for x in done["lcores"] if x["delivery"]]
    assert dl and sum(x["delivery"]["rcpt_2xx"] for x in dl) >= N_HELD + N_SOURCE, dl
    _, _, text = scrape(port)
    smp, _ = samples(text)
    assert smp[key("sluice_delivery_recipients_total", result="delivered")] >= N_HELD + N_SOURCE
    assert smp[key("sluice_delivery_latency_p99_seconds")] > 0
    assert smp[key("sluice_queue_messages")] == 0


def test_top(env):
    # plain repeated blocks when stdout is a pipe
    t0 = time.monotonic()
    r = ctl("top", "-n", "0.5", "-c", "3", timeout=30)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "\033[" not in out
    frames = re.findall(r"^sluice top .* sample (\d)/3$", out, re.M)
    assert frames == ["1", "2", "3"], out
    assert 0.9 < took < 15, took
    blocks = out.split("\nsluice top ")
    assert re.search(r"per second: accepted - +delivered -", blocks[0]), blocks[0]
    for b in blocks[1:]:
        assert re.search(r"per second: accepted \d+\.\d +delivered \d+\.\d", b), b
        assert re.search(r"^LCORE +STATE", b, re.M) and re.search(r"^\d+ +running", b, re.M), b
    assert "rings: prio" in out and "queue: " in out
    # a terminal gets the clear-screen codes
    master, slave = pty.openpty()
    p = subprocess.Popen([SLUICECTL, "-c", LAB_CONF, "top", "-n", "0.2", "-c", "2"],
                         stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    got = b""
    end = time.monotonic() + 15
    while time.monotonic() < end:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    assert p.wait(timeout=15) == 0, p.stderr.read()
    os.close(master)
    assert got.count(b"\033[H\033[2J") == 2, got[:400]
    # endless top: SIGINT ends it cleanly
    p = subprocess.Popen([SLUICECTL, "-c", LAB_CONF, "top", "-n", "0.3"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.2)
    p.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    rc = p.wait(timeout=5)
    assert rc == 0 and time.monotonic() - t0 < 2, (rc, p.stderr.read())
    assert p.stdout.read().count(b"sluice top ") >= 2
    r = ctl("top", "-n", "0")
    assert r.returncode == 2 and "seconds 0.1..3600" in r.stderr, r.stderr


def test_metrics_listen_config(env, tmp_path):
    """[control] metrics_listen: IPv4:PORT or off; anything else is refused
    at start-up naming the key (sluiced --check on the lab's config)"""
    conf = open(LAB_CONF).read()
    assert re.search(r"^metrics_listen *=", conf, re.M), conf
    for value, ok in (("off", True), ("127.0.0.1:9", True), ("0.0.0.0:65535", True),
                      ("nonsense", False), ("127.0.0.1", False), ("127.0.0.1:0", False),
                      ("localhost:9464", False), ("127.0.0.1:9464x", False)):
        f = tmp_path / "sluiced.conf"
        f.write_text(re.sub(r"^metrics_listen *=.*$", "metrics_listen = " + value, conf,
                            flags=re.M))
        r = subprocess.run([os.path.join(BUILD, "sluiced"), "--check", "-c", str(f)],
                           capture_output=True, text=True, timeout=30)
        if ok:
            assert r.returncode == 0, (value, r.stderr[-1500:])
        else:
            assert r.returncode != 0 and "[control] metrics_listen: \"%s\"" % value in r.stderr, \
                (value, r.returncode, r.stderr[-1500:])


@pytest.mark.skipif(not os.access(TELEMETRY, os.X_OK), reason="no %s (Debian package dpdk)" % TELEMETRY)
def test_dpdk_telemetry(env):
    r = subprocess.run([TELEMETRY, "-f", "sluice-lab"], input="/\n/sluice/info\n/sluice/deliver/counters\n"
                       "/sluice/smtp/counters\n/sluice/queue/status\n", capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    answers = {}
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            answers.update(json.loads(line))
    cmds = set(answers["/"])
    assert {"/sluice/info", "/sluice/net/counters", "/sluice/port/stats", "/sluice/services",
            "/sluice/lcores", "/sluice/smtp/counters", "/sluice/deliver/counters"} <= cmds, cmds
    assert answers["/sluice/info"]["file_prefix"] == "sluice-lab"
    dc = answers["/sluice/deliver/counters"]
    assert {"msgs", "rcpt_2xx", "ring/djob/depth", "ring/dres/depth", "ring/sched_new/depth"} <= set(dc), dc
    sc = answers["/sluice/smtp/counters"]
    assert sc["queued"] >= 1 and "ring/0/depth" in sc, sc
    qs = answers["/sluice/queue/status"]
    assert {"messages", "jobs_active", "delivered", "deferred", "bounces", "links_closed",
            "prio/0", "prio/7", "state/held", "state/deferred"} <= set(qs), qs
    # the scheduler's copy is at most 2 s old: what the lab delivered so far
    # (the mail earlier tests sent through it) shows up
    assert sum(qs["prio/%d" % p] for p in range(8)) == qs["messages"], qs
