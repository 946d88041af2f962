"""sluicectl against a lab sluiced with the real scheduler (docs/cli.md).

Through `tests/lab ctl` (which runs SLUICE_BUILD/control/sluicectl -c on
the lab's config), checked as an operator would notice:
  - link close before mail arrives: the mail waits, queue list shows it
    `held` for that destination, link list/show count it, nothing reaches
    the next hop (tests/system/smtpsink.py on peer:2525)
  - queue hold of one message; a hold with one bad id fails (exit 1, the
    reason on stderr) and changes nothing
  - link open: the others are delivered, the held one stays (state hold);
    queue release: it is delivered too; the queue ends empty
  - queue show: every recipient with its destination and state
  - status: queue depth by state, delivered count, io lcores, rings
  - exit codes 2 (argument with a space) and 3 (no socket)

Bounded: every wait has a deadline; the module takes well under 2 minutes.
Starts its own lab (conftest.lab_up_env waits for one in use to go away).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import wait_for
from smtplab import BUILD, LAB, SinkProc, lab_down, mail_lab_up

QUEUED = re.compile(r"<-\s+250 2\.0\.0 Ok: queued as ([0-9A-Z]{13})\b")
RELAY = "relay.test"          # routed to peer:2525 by mail_lab_up
SENDER = "ops@sender.test"


def ctl(*args, timeout=30):
    """tests/lab ctl ARGS -> CompletedProcess (text)"""
    return subprocess.run([LAB, "ctl", *args], capture_output=True, text=True,
                          timeout=timeout)


def ctl_json(*args):
    r = ctl("--json", *args)
    assert r.returncode == 0, "tests/lab ctl --json %s: exit %d\n%s%s" % (
        " ".join(args), r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return json.loads(r.stdout)


def queue(*filters):
    """{qid: row} of every message (follows the next cursor)"""
    out, after = {}, []
    for _ in range(100):
        d = ctl_json("queue", "list", "limit=1000", *filters, *after)
        for m in d["messages"]:
            out[m["id"]] = m
        if d["next"] is None:
            return out
        after = ["after=" + d["next"]]
    raise AssertionError("queue list never ended")


def delivered_qids(sink):
    """queue ids of the messages the sink received (sluiced's Received
    header says "id QID")"""
    out = []
    for m in sink.messages():
        g = re.search(rb"\bid ([0-9A-Z]{13})\b", m["body"][:2000])
        if g:
            out.append(g.group(1).decode())
    return out


@pytest.fixture(scope="module")
def env():
    work = tempfile.mkdtemp(prefix="sluice-ctl-", dir="/var/tmp")
    ml = mail_lab_up("--set", "delivery.retry_schedule=2s,2s,3s")
    sink = SinkProc(os.path.join(work, "sink"), port=2525)
    try:
        sink.start()
        yield ml, sink
    finally:
        sink.stop()
        lab_down()
        shutil.rmtree(work, ignore_errors=True)


def test_operator_flow(env):
    ml, sink = env
    # close the link before any mail for it exists
    r = ctl("link", "close", RELAY)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "%s: link closed\n" % RELAY
    info = ctl_json("link", "show", RELAY)
    assert info["destination"] == RELAY and info["link"] == "closed", info

    qids = []
    for i in range(3):
        rc, out = ml.swaks("--to", "u%d@%s" % (i, RELAY), "--from", SENDER,
                           "--body", "sluicectl test %d" % i)
        m = QUEUED.search(out)
        assert rc == 0 and m, out
        qids.append(m.group(1))

    # all three wait on the closed link
    held = wait_for(lambda: (lambda q: q if all(
        k in q and q[k]["state"] == "held" for k in qids) else None)(
            queue("dest=" + RELAY)), timeout=20)
    assert held, queue()
    for k in qids:
        assert held[k]["destinations"] == [RELAY], held[k]
        assert held[k]["rcpt_pending"] == 1 and held[k]["sender"] == SENDER
    links = {l["destination"]: l for l in ctl_json("link", "list")["links"]}
    assert links[RELAY]["link"] == "closed" and links[RELAY]["held"] >= 3, links
    show = ctl_json("queue", "show", qids[0])
    assert show["id"] == qids[0] and show["state"] == "held"
    assert [(x["address"], x["destination"], x["state"]) for x in show["recipients"]] == \
        [("u0@" + RELAY, RELAY, "pending")], show
    # text for people: the table header and the three ids
    r = ctl("queue", "list", "dest=" + RELAY)
    assert r.returncode == 0 and r.stdout.startswith("ID            ARRIVED (UTC)"), r
    assert all(k in r.stdout for k in qids), r.stdout

    # hold one; a hold with a bad id changes nothing
    r = ctl("queue", "hold", qids[1], "NOTAQUEUEID")
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr.startswith("sluicectl: queue hold: \"NOTAQUEUEID\" is not a queue id"), r.stderr
    assert ctl_json("queue", "hold", qids[0]) == {"op": "hold", "requested": 1, "changed": 1}
    assert set(queue("state=hold")) == {qids[0]}
    assert sink.messages() == []

    # open: the two others are delivered, the held one stays
    r = ctl("link", "open", RELAY)
    assert r.returncode == 0 and r.stdout == "%s: link open\n" % RELAY, r
    assert wait_for(lambda: set(qids[1:]) <= set(delivered_qids(sink)), timeout=30), \
        (sink.stats(), queue())
    assert wait_for(lambda: set(queue()) == {qids[0]}, timeout=15), queue()
    assert queue()[qids[0]]["state"] == "hold"
    assert qids[0] not in delivered_qids(sink)

    # release it: delivered, queue empty
    assert ctl_json("queue", "release", qids[0])["changed"] == 1
    assert wait_for(lambda: qids[0] in delivered_qids(sink), timeout=30), sink.stats()
    assert wait_for(lambda: queue() == {}, timeout=15), queue()
    assert sorted(delivered_qids(sink)) == sorted(qids)

    st = ctl_json("status")
    assert st["queue"]["messages"] == 0, st
    assert st["delivery"]["delivered"] >= 3, st
    assert st["io_lcores"] and all(l["state"] == "running" for l in st["io_lcores"]), st
    assert len(st["rings"]["prio"]) == 8 and len(st["rings"]["djob"]) == len(st["io_lcores"])
    assert st["storage"]["used_bytes"] > 0
    r = ctl("status")
    assert r.returncode == 0 and r.stdout.startswith("sluiced up "), r


def test_errors(env):
    r = ctl("queue", "show", "0000000000000")
    assert r.returncode == 1
    assert r.stderr == "sluicectl: queue show: no message 0000000000000 in the queue\n"
    r = ctl("queue", "list", "prio=9")
    assert r.returncode == 1 and "prio=\"9\" is not a priority 0..7" in r.stderr
    r = ctl("link", "show", "never.test")
    assert r.returncode == 1 and "unknown destination" in r.stderr
    r = ctl("queue", "hold", "dest=a b")
    assert r.returncode == 2 and "contains a space" in r.stderr
    r = subprocess.run([os.path.join(BUILD, "control", "sluicectl"), "-s",
                        "/run/sluice-lab/no-such.sock", "status"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 3
    assert "cannot reach sluiced at /run/sluice-lab/no-such.sock" in r.stderr
