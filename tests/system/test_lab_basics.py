"""sluiced in the lab answers ARP/ping, echoes, discards and refuses
closed ports, as seen from the Linux stack in the lab namespace."""
import socket


def test_ping_answers(lab):
    r = lab.exec("ping", "-c", "3", "-i", "0.2", "-W", "2", lab.sluice)
    assert " 0% packet loss" in r.stdout


def test_echo_round_trip(lab):
    assert lab.client("echo-once", lab.sluice, 7)["ok"] is True


def test_closed_port_is_refused_with_rst(lab):
    before = lab.counters()["tcp.rst_tx"]
    code = ("import socket,sys\n"
            "s=socket.socket(); s.settimeout(5)\n"
            "try:\n s.connect((sys.argv[1], 1)); print('connected')\n"
            "except ConnectionRefusedError: print('refused')\n"
            "except OSError as e: print('other', e)\n")
    r = lab.exec("/usr/bin/python3", "-c", code, lab.sluice)
    assert r.stdout.strip() == "refused"
    assert lab.counters()["tcp.rst_tx"] > before


def test_discard_swallows_and_closes(lab):
    code = ("import socket,sys\n"
            "s=socket.create_connection((sys.argv[1], 9), timeout=5)\n"
            "s.sendall(b'x' * 300000); s.shutdown(socket.SHUT_WR)\n"
            "print(len(s.recv(10)))\n")
    r = lab.exec("/usr/bin/python3", "-c", code, lab.sluice)
    assert r.stdout.strip() == "0"      # nothing echoed, clean EOF


def test_counters_are_exported(lab):
    c = lab.counters()
    for name in ("tcp.conns.used", "tcp.conns.free", "l3.rx_frames",
                 "tcp.accepts"):
        assert name in c, name
    assert c["l3.rx_frames"] > 0
