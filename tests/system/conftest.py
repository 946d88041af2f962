"""Fixtures for system tests: a running sluiced in the lab, its counters.

Tests drive sluiced only through its public surfaces: the network (clients
run inside the lab namespace with `tests/lab exec`) and DPDK telemetry.
"""
import json
import os
import socket
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, "tests", "lab")
CLIENT = os.path.join(ROOT, "tests", "system", "tcp_client.py")
TELEMETRY = "/var/run/dpdk/sluice-lab/dpdk_telemetry.v2"


class Lab:
    def __init__(self, env):
        self.sluice = env["SLUICE_ADDR"]
        self.peer = env["PEER_ADDR"]

    def exec(self, *cmd, timeout=600, check=True):
        """run cmd inside the lab namespace; returns CompletedProcess"""
        r = subprocess.run([LAB, "exec", *cmd], capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("lab exec %s failed (%d): %s %s" % (
                cmd, r.returncode, r.stdout[-2000:], r.stderr[-2000:]))
        return r

    def client(self, *args, timeout=600):
        """run tcp_client.py in the namespace; returns its JSON result"""
        r = self.exec("/usr/bin/python3", CLIENT, *map(str, args),
                      "--max-seconds", str(timeout - 10), timeout=timeout)
        return json.loads(r.stdout.strip().splitlines()[-1])

    def counters(self):
        """stack counters, names as in net_counters() (telemetry keys may
        not hold dots, so sluiced exports tcp.rst_tx as tcp/rst_tx)"""
        return {k.replace("/", "."): v
                for k, v in telemetry("/sluice/net/counters").items()}


def telemetry(cmd):
    """one DPDK telemetry v2 request; returns the command's JSON value"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(5)
        s.connect(TELEMETRY)
        json.loads(s.recv(16384).decode())         # greeting
        s.send(cmd.encode())
        return json.loads(s.recv(1 << 20).decode())[cmd]


def lab_up_env(*args):
    """tests/lab up ARGS; returns the KEY=VALUE lines it printed. A lab
    someone else is using (sluiced alive) gets up to 3 minutes to go away
    before it is taken down as stale."""
    end = time.monotonic() + 180
    while time.monotonic() < end and subprocess.run(
            [LAB, "status"], capture_output=True, timeout=30).returncode == 0:
        time.sleep(2)
    subprocess.run([LAB, "down"], capture_output=True, timeout=60)
    r = subprocess.run([LAB, "up", *args], capture_output=True, text=True,
                       timeout=180)
    if r.returncode != 0:
        subprocess.run([LAB, "down"], capture_output=True, timeout=60)
        raise AssertionError("tests/lab up failed:\n%s\n%s" % (r.stdout, r.stderr))
    return dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)


def lab_up(*args):
    return Lab(lab_up_env(*args))


def lab_down():
    r = subprocess.run([LAB, "down"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def lab():
    """sluiced in the lab, default config, no netem"""
    l = lab_up()
    yield l
    lab_down()


def wait_for(pred, timeout=10.0, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()
