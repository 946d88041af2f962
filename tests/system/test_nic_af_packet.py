"""The af_packet NIC profile: sluiced on one end of a veth pair through
DPDK's net_af_packet PMD, the Linux peer on the other end in the lab
namespace. Same checks as on TAP: ARP/ping, byte-exact echo, many
connections, pools back at baseline."""
import os

import pytest

from conftest import ROOT, lab_down, lab_up, wait_for


@pytest.fixture(scope="module")
def afp_lab():
    l = lab_up("--config", os.path.join(ROOT, "tests", "lab-af_packet.conf"))
    yield l
    lab_down()


def test_af_packet_ping(afp_lab):
    r = afp_lab.exec("ping", "-c", "2", "-i", "0.2", "-W", "2", afp_lab.sluice)
    assert " 0% packet loss" in r.stdout


def test_af_packet_bulk_echo_byte_exact(afp_lab):
    r = afp_lab.client("bulk", afp_lab.sluice, 7, 50 * 1000 * 1000,
                       timeout=300)
    assert r["match"] is True, r


def test_af_packet_concurrent_and_baseline(afp_lab):
    base = afp_lab.counters()["tcp.conns.used"]
    r = afp_lab.client("concurrent", afp_lab.sluice, 7, 300, 4096,
                       timeout=120)
    assert r["done"] == 300, r
    assert wait_for(lambda: afp_lab.counters()["tcp.conns.used"] == base,
                    timeout=20)
