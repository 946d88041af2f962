"""200 MB echo round trip, byte-exact, through loss, reordering,
duplication and delay applied by netem on the namespace's end."""
import pytest

from conftest import lab_down, lab_up

NETEM = "loss 1% reorder 5% duplicate 1% delay 1ms"


@pytest.fixture(scope="module")
def netem_lab():
    l = lab_up("--netem", NETEM)
    yield l
    lab_down()


def test_200mb_echo_byte_exact_under_netem(netem_lab):
    lab = netem_lab
    c0 = lab.counters()
    r = lab.client("bulk", lab.sluice, 7, 200 * 1000 * 1000, timeout=600)
    assert r["match"] is True, r
    c = lab.counters()
    # the path really was lossy: the stack had to recover
    assert c["tcp.retransmits"] > c0["tcp.retransmits"]
    print("netem bulk echo: %s MB/s" % r["mbytes_per_s"])
