"""Packet capture on the live appliance with dpdk-pdump (issue 7,
docs/operations.md "Packet capture").

dpdk-pdump attaches to sluiced as a DPDK secondary process, which maps the
primary's hugepage memory: this needs sluiced on hugepages ([eal] huge =
auto with free hugepages, the lab's way) and its hugepage files kept
([eal] pdump = yes, the default: no --huge-unlink).

The module reserves hugepages for itself when none are free (and mounts
hugetlbfs when nothing is mounted), starts a lab sluiced on them, attaches
dpdk-pdump, runs one SMTP session from the lab namespace and checks that the
pcap files hold the client's EHLO (received) and sluiced's 220 banner
(sent). Afterwards the lab is taken down and the hugepage reservation and
mount are put back as they were, whatever happened.

Bounded: every wait has a deadline; about 30 s.
"""
import os
import signal
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import lab_up, lab_down, wait_for

NR = "/proc/sys/vm/nr_hugepages"
MNT = "/dev/hugepages"
PREFIX = "sluice-lab"


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def hugetlbfs_mounted():
    with open("/proc/mounts") as f:
        return any(l.split()[2] == "hugetlbfs" for l in f)


@pytest.fixture(scope="module")
def huge_lab():
    old_nr = int(open(NR).read())
    mounted = False
    if not hugetlbfs_mounted():
        os.makedirs(MNT, exist_ok=True)
        subprocess.run(["mount", "-t", "hugetlbfs", "nodev", MNT], check=True)
        mounted = True
    try:
        if meminfo("HugePages_Free") < 128:
            with open(NR, "w") as f:
                f.write(str(old_nr + 256))
        if meminfo("HugePages_Free") < 128:
            pytest.skip("the kernel gave no hugepages (HugePages_Free %d "
                        "after asking for %d more)"
                        % (meminfo("HugePages_Free"), 256))
        free_before = meminfo("HugePages_Free")
        lab = lab_up()
        try:
            yield lab, free_before
        finally:
            lab_down()
    finally:
        with open(NR, "w") as f:
            f.write(str(old_nr))
        if mounted:
            subprocess.run(["umount", MNT])


def pcap_tcp_payload(path):
    """concatenated TCP payloads of an Ethernet pcap (micro- or nanosecond
    magic, either byte order) and the packet count"""
    data = open(path, "rb").read()
    assert len(data) >= 24, "%s: no pcap header (%d bytes)" % (path, len(data))
    magic = data[:4]
    assert magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1",
                     b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"), magic
    end = "<" if magic[0] in (0xd4, 0x4d) else ">"
    off, n, payload = 24, 0, b""
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        n += 1
        if len(pkt) >= 34 and pkt[12:14] == b"\x08\x00" and pkt[23] == 6:
            t = 14 + (pkt[14] & 15) * 4
            payload += pkt[t + (pkt[t + 12] >> 4) * 4:]
    return payload, n


def test_sluiced_runs_on_hugepages_with_files_kept(huge_lab):
    lab, free_before = huge_lab
    assert meminfo("HugePages_Free") < free_before, \
        "sluiced took no hugepages (free %d, before %d)" % (
            meminfo("HugePages_Free"), free_before)
    files = [f for f in os.listdir(MNT) if f.startswith(PREFIX + "map_")]
    assert files, "no %smap_* files in %s: --huge-unlink still given?" % (
        PREFIX, MNT)


def test_dpdk_pdump_captures_an_smtp_session(huge_lab):
    lab, _ = huge_lab
    with tempfile.TemporaryDirectory() as d:
        rx, tx, log = (os.path.join(d, n) for n in ("rx.pcap", "tx.pcap",
                                                    "pdump.log"))
        with open(log, "w") as lf:
            p = subprocess.Popen(
                # stdbuf: its progress lines reach the log at once;
                # --no-pci: the lab's port is a vdev, leave the host's
                # PCI devices alone
                ["stdbuf", "-oL", "dpdk-pdump", "--file-prefix=" + PREFIX,
                 "--no-pci", "--",
                 "--pdump", "port=0,queue=*,rx-dev=%s,tx-dev=%s" % (rx, tx)],
                stdout=lf, stderr=subprocess.STDOUT)
        try:
            attached = wait_for(lambda: "capture for" in open(log).read()
                                or p.poll() is not None, timeout=20)
            assert attached and p.poll() is None, \
                "dpdk-pdump did not attach:\n" + open(log).read()[-3000:]
            r = lab.exec("/usr/bin/python3", "-c",
                         "import smtplib\n"
                         "s = smtplib.SMTP('%s', 25, timeout=10)\n"
                         "print(s.ehlo('pdump.test')[0])\n"
                         "s.quit()\n" % lab.sluice, timeout=30)
            assert r.stdout.strip() == "250", r.stdout
            time.sleep(1)
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        out = open(log).read()
        assert p.returncode == 0, "dpdk-pdump exit %s:\n%s" % (
            p.returncode, out[-3000:])
        rx_bytes, rx_n = pcap_tcp_payload(rx)
        tx_bytes, tx_n = pcap_tcp_payload(tx)
        assert b"ehlo pdump.test\r\n" in rx_bytes.lower(), (rx_n, rx_bytes[:300])
        assert b"quit\r\n" in rx_bytes.lower(), (rx_n, rx_bytes[:300])
        assert tx_bytes.startswith(b"220 "), (tx_n, tx_bytes[:300])
        assert b"221 " in tx_bytes, (tx_n, tx_bytes[-300:])
    # sluiced ran on through attach and detach
    r = lab.exec("ping", "-c", "1", "-W", "2", lab.sluice, check=False)
    assert r.returncode == 0, r.stdout
