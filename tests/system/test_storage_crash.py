"""Storage crash test: SIGKILL the queue writer at random moments, many times.

sluice-stor-crashtool `write` commits under load from 4 producer threads
(enqueue, update, delete) and prints each id only after the writer reported
it committed. The test kills it with SIGKILL after a random 0.02-0.8 s, 30
times; after every kill `verify` restarts the queue (open + recovery) and
checks every id ever printed: present with an identical body (checksum and
generated content), updates kept, deletions gone, recovery clean (nothing
quarantined, no index rebuilt). The queue lives on a real disk (/var/tmp,
or $SLUICE_STOR_CRASH_DIR), never tmpfs. Bounded: 30 kills, < 2 minutes.
"""
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time

BUILD = os.environ.get('SLUICE_BUILD', os.path.join(os.path.dirname(__file__), '..', '..', 'build'))
TOOL = os.path.join(BUILD, 'storage', 'sluice-stor-crashtool')
KILLS = 30
BUDGET_S = 110


def run_verify(qdir, ids_path):
    with open(ids_path, 'rb') as ids:
        return subprocess.run([TOOL, 'verify', qdir], stdin=ids, capture_output=True,
                              text=True, timeout=60)


def test_sigkill_never_loses_committed():
    assert os.access(TOOL, os.X_OK), f'build the tool first: {TOOL}'
    base = os.environ.get('SLUICE_STOR_CRASH_DIR', '/var/tmp')
    work = tempfile.mkdtemp(prefix='sluice-stor-crash-', dir=base)
    seed = int(os.environ.get('SLUICE_CRASH_SEED', time.time_ns() % 1000003))
    rng = random.Random(seed)
    print(f'seed {seed}, dir {work}')
    qdir = os.path.join(work, 'q')
    ids_path = os.path.join(work, 'ids')
    start = time.monotonic()
    total = {'C': 0, 'U': 0, 'D': 0}
    try:
        for k in range(KILLS):
            assert time.monotonic() - start < BUDGET_S, f'too slow: {k} kills done'
            out_path = os.path.join(work, f'out{k}')
            with open(out_path, 'wb') as out, open(os.path.join(work, 'err'), 'wb') as err:
                p = subprocess.Popen([TOOL, 'write', qdir, '4', '30'], stdout=out, stderr=err)
                time.sleep(rng.uniform(0.02, 0.8))
                assert p.poll() is None, 'writer exited on its own: ' + open(os.path.join(work, 'err')).read()
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)
            assert p.returncode == -signal.SIGKILL
            with open(out_path, 'rb') as f:
                data = f.read()
            # only whole lines count (a kill may cut the last one)
            whole = data[:data.rfind(b'\n') + 1]
            for line in whole.splitlines():
                total[chr(line[0])] += 1
            with open(ids_path, 'ab') as ids:
                ids.write(whole)
            os.unlink(out_path)
            r = run_verify(qdir, ids_path)
            assert r.returncode == 0, f'kill {k}: {r.stdout}{r.stderr}'
            print(f'kill {k}: {r.stdout.strip()}')
        # the run did real work across the kills
        assert total['C'] > 2000 and total['U'] > 200 and total['D'] > 100, total
        # and the checker can fail: an id never committed is reported missing
        with open(ids_path, 'ab') as ids:
            ids.write(b'C 0000000000001\n')
        r = run_verify(qdir, ids_path)
        assert r.returncode == 1 and '0000000000001' in r.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)
