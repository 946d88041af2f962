"""The userspace stack against the Linux stack as a peer: many concurrent
connections, many sequential ones with pools back at baseline afterwards,
and a SYN flood during which a normal connection still succeeds."""
import subprocess

from conftest import wait_for

GAUGES = ("tcp.conns.used", "tcp.conns.free", "tcp.conns.syn_recv",
          "tcp.conns.established", "arp.pending")


def gauges(lab):
    c = lab.counters()
    return {k: c[k] for k in GAUGES}


def test_1000_concurrent_connections_exchange_data(lab):
    base = gauges(lab)
    r = lab.client("concurrent", lab.sluice, 7, 1000, 4096, timeout=300)
    assert r["done"] == 1000, (r, {k: v for k, v in lab.counters().items()
                                   if v and k.startswith(("tcp.", "arp.", "ip."))})
    assert wait_for(lambda: gauges(lab) == base, timeout=20), gauges(lab)
    assert lab.counters()["tcp.accepts"] >= 1000


def test_20000_sequential_connections_leave_pools_at_baseline(lab):
    base = gauges(lab)
    accepts0 = lab.counters()["tcp.accepts"]
    r = lab.client("sequential", lab.sluice, 7, 20000, timeout=900)
    assert r["ok"] == 20000, r
    c = lab.counters()
    assert c["tcp.accepts"] - accepts0 == 20000
    assert wait_for(lambda: gauges(lab) == base, timeout=20), gauges(lab)


def test_syn_flood_still_serves_a_normal_connection(lab):
    c0 = lab.counters()
    # the namespace's kernel would answer each SYN-ACK with RST and so
    # empty the SYN queue for us; drop those RSTs to make the flood real
    lab.exec("nft", "add table inet slflood")
    try:
        lab.exec("nft", "add chain inet slflood out "
                 "{ type filter hook output priority 0; }")
        lab.exec("nft", "add rule inet slflood out tcp dport 7 "
                 "tcp flags rst drop")
        flood = subprocess.Popen(
            ["tests/lab", "exec", "timeout", "30", "hping3", "-S", "-p", "7",
             "-i", "u50", "-c", "40000", "-q", lab.sluice],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # once cookies are flowing, a real client must still get in
            assert wait_for(lambda: lab.counters()["tcp.syncookies_sent"] >
                            c0["tcp.syncookies_sent"], timeout=20)
            r = lab.client("echo-once", lab.sluice, 7, timeout=30)
            assert r["ok"] is True, r
        finally:
            flood.wait(timeout=60)
    finally:
        lab.exec("nft", "delete table inet slflood", check=False)
    c = lab.counters()
    assert c["tcp.syncookies_sent"] > c0["tcp.syncookies_sent"]
    # the flood's half-open state drains: SYN_RECV back to where it was
    assert wait_for(lambda: lab.counters()["tcp.conns.syn_recv"] <=
                    c0["tcp.conns.syn_recv"], timeout=120)
