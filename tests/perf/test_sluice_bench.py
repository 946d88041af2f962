#!/usr/bin/python3
"""test_sluice_bench.py - sluice-bench gen and sink against each other over
loopback: they count and verify correctly, a corrupted message is caught,
4xx/5xx answers are counted as deferrals/rejections, errors are named, and
open-loop latency includes a server stall that a closed loop hides.

usage: test_sluice_bench.py [CASE...]   (no case = all; see CASES)
The binary: $SLUICE_BENCH, else $SLUICE_BUILD/perf/sluice-bench/sluice-bench.
Every process is bounded (--count/--duration and a subprocess timeout) and
stopped by its own PID.
"""
import json
import shutil
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

BENCH = os.environ.get('SLUICE_BENCH') or os.path.join(
    os.environ.get('SLUICE_BUILD', 'build'), 'perf', 'sluice-bench', 'sluice-bench')
TMP = tempfile.mkdtemp(prefix='sb-test-')


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)
    print('  ok:', what)


def no_sanitizer_report(err):
    """an ASan/UBSan build reports on stderr: that fails the case"""
    if 'Sanitizer' in err or 'runtime error:' in err:
        raise Fail('sanitizer report:\n' + err)


class Sink:
    """sluice-bench sink on an ephemeral loopback port"""

    def __init__(self, *args):
        self.n = len(os.listdir(TMP))
        self.portfile = os.path.join(TMP, 'port%d' % self.n)
        self.jsonfile = os.path.join(TMP, 'sink%d.json' % self.n)
        self.p = subprocess.Popen(
            [BENCH, 'sink', '-l', '127.0.0.1:0', '--port-file', self.portfile,
             '--json', self.jsonfile, '--duration', '60s'] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 5
        while not os.path.exists(self.portfile):
            if self.p.poll() is not None or time.time() > deadline:
                self.p.kill()
                raise Fail('sink did not start: %s' % self.p.communicate()[1])
            time.sleep(0.02)
        self.port = int(open(self.portfile).read())

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        out, err = self.p.communicate(timeout=15)
        print('  sink: ' + out.strip().replace('\n', '\n  sink: '))
        no_sanitizer_report(err)
        with open(self.jsonfile) as f:
            return self.p.returncode, json.load(f)


def gen(port, *args, timeout=30):
    """run gen to completion; (exit status, JSON, stdout)"""
    jf = os.path.join(TMP, 'gen%d.json' % len(os.listdir(TMP)))
    t = time.time()
    r = subprocess.run([BENCH, 'gen', '-s', '127.0.0.1:%d' % port, '--json', jf,
                        '--duration', '20s', '--drain', '3s'] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    took = time.time() - t
    print('  gen %s (%.2f s, exit %d):' % (' '.join(args), took, r.returncode))
    print('    ' + r.stdout.strip().replace('\n', '\n    '))
    if r.stderr.strip():
        print('    stderr: ' + r.stderr.strip().replace('\n', '\n    stderr: '))
    no_sanitizer_report(r.stderr)
    with open(jf) as f:
        return r.returncode, json.load(f), r.stdout + r.stderr


def case_counts():
    """every message sent is counted once by gen and once by the sink, and
    every body verifies, over DATA+PIPELINING with a size mix"""
    s = Sink('--verify')
    rc, g, _ = gen(s.port, '-n', '500', '-c', '8', '--size', 'mix:small', '--rcpts', '2')
    src, k = s.stop()
    m = g['messages']
    check(rc == 0 and m['errors'] == 0, 'gen exit 0, no errors')
    check(m['delivered'] == 500 and m['started'] == 500, 'gen: 500 of 500 delivered')
    check(g['replies'] == {'250': 500}, 'gen: replies 250 x 500')
    check(k['messages']['received'] == 500 and k['messages']['accepted'] == 500,
          'sink: 500 received and accepted')
    check(k['verify']['ok'] == 500 and k['verify']['bad'] == 0 and k['verify']['duplicates'] == 0,
          'sink: 500 digests verified, none bad, no duplicates')
    check(k['verify']['runs'] == [g['run_id']], 'sink saw exactly the generator run id')
    check(src == 0, 'sink exit 0')
    check(g['latency']['t250']['count'] == 500, 'one latency sample per delivered message')
    check(k['latency']['delivery']['count'] == 500, 'one time-to-delivery sample per message')
    check(sum(g['series']['msgs']) == 500, 'per-second series adds up to 500')
    check(abs(k['bytes'] - g['bytes_delivered']) == 0, 'sink bytes == gen bytes (%d)' % k['bytes'])


def case_variants():
    """BDAT, no pipelining, a connection per message and STARTTLS all count
    and verify the same"""
    cert, key = os.path.join(TMP, 'cert.pem'), os.path.join(TMP, 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key,
                    '-out', cert, '-days', '1', '-subj', '/CN=sink.test'],
                   check=True, capture_output=True, timeout=30)
    s = Sink('--verify', '--tls-cert', cert, '--tls-key', key)
    runs = [('--bdat', '--rcpts', '3', '--size', '1k-200k'),
            ('--no-pipelining', '--new-conn'),
            ('--starttls', '--msgs-per-conn', '10'),
            ('--starttls', '--bdat', '-j', '2')]
    total = 0
    for a in runs:
        rc, g, _ = gen(s.port, '-n', '100', '-c', '4', *a)
        check(rc == 0 and g['messages']['delivered'] == 100, '%s: 100 delivered' % ' '.join(a))
        total += 100
        if '--new-conn' in a:
            check(g['connections'] == 100, 'a connection per message: 100 connections')
        if '--starttls' in a:
            check(g['tls_handshakes'] == g['connections'] > 0, 'one TLS handshake per connection')
    src, k = s.stop()
    check(k['verify']['ok'] == total and k['verify']['bad'] == 0, 'sink verified all %d' % total)
    check(src == 0, 'sink exit 0')


def case_deferrals():
    """a sink answering 4xx (5xx) to everything: gen counts every message as
    deferred (rejected), none delivered, none as an error"""
    s = Sink('--reply-4xx', '100')
    rc, g, _ = gen(s.port, '-n', '200', '-c', '4')
    src, k = s.stop()
    m = g['messages']
    check(m['deferred'] == 200 and m['delivered'] == 0 and m['rejected'] == 0 and m['errors'] == 0,
          'gen: 200 deferred, 0 delivered/rejected/errors')
    check(g['replies'] == {'451': 200}, 'gen: replies 451 x 200')
    check(rc == 0, 'gen exit 0 (a deferral is an answer, not an error)')
    check(k['messages']['deferred'] == 200 and k['messages']['accepted'] == 0, 'sink: 200 deferred')
    s = Sink('--reply-5xx', '100')
    rc, g, _ = gen(s.port, '-n', '100', '-c', '4', '--no-pipelining')
    s.stop()
    check(g['messages']['rejected'] == 100 and g['replies'] == {'554': 100},
          'gen: 100 rejected, replies 554 x 100')
    s = Sink('--reply-4xx', '30', '--reply-5xx', '20', '--seed', '7')
    rc, g, _ = gen(s.port, '-n', '1000', '-c', '4')
    src, k = s.stop()
    m = g['messages']
    check(m['delivered'] + m['deferred'] + m['rejected'] == 1000, 'mixed: every message answered once')
    check(m['deferred'] == k['messages']['deferred'] and m['rejected'] == k['messages']['rejected'],
          'gen and sink agree: %d deferred, %d rejected' % (m['deferred'], m['rejected']))
    check(200 <= m['deferred'] <= 400 and 100 <= m['rejected'] <= 300, 'shares near 30 % / 20 %')


def case_corrupt():
    """the sink flips one byte of message 17: verification catches exactly it"""
    s = Sink('--verify', '--debug-corrupt', '17')
    rc, g, _ = gen(s.port, '-n', '100', '-c', '4', '--size', '4k')
    src, k = s.stop()
    v = k['verify']
    check(g['messages']['delivered'] == 100, 'gen: 100 delivered')
    check(v['bad'] == 1 and v['bad_seqs'] == [17], 'sink: one bad digest, message 17')
    check(v['ok'] == 99, 'sink: the other 99 verify')
    check(src == 1, 'sink exits 1 when a message failed verification')


def case_errors():
    """a server that is down, refuses, or never answers: counted by reason,
    exit 1, and the run ends within its deadlines"""
    lsock = socket.socket()
    lsock.bind(('127.0.0.1', 0))
    dead = lsock.getsockname()[1]
    lsock.close()
    rc, g, out = gen(dead, '-n', '50', '-c', '5')
    check(rc == 1 and g['errors']['connection refused']['count'] == 50,
          'server down: 50 x "connection refused", exit 1')
    check('connection refused' in out and 'failed' in out, 'the reason is printed')
    s = Sink('--greeting', '554')
    rc, g, _ = gen(s.port, '-n', '20', '-c', '2')
    s.stop()
    check(rc == 1 and g['errors']['greeting refused']['count'] == 20 and
          '554' in g['errors']['greeting refused']['detail'], 'greeting 554: 20 x "greeting refused"')
    mute = socket.socket()
    mute.bind(('127.0.0.1', 0))
    mute.listen(64)  # accepts in the kernel, never says a word
    t = time.time()
    rc, g, _ = gen(mute.getsockname()[1], '-n', '4', '-c', '4', '--timeout', '1s')
    took = time.time() - t
    mute.close()
    check(rc == 1 and g['errors']['reply timeout']['count'] == 4, 'mute server: 4 x "reply timeout"')
    check(took < 5, 'mute server: run ended in %.1f s (timeout 1 s)' % took)
    s = Sink('--delay-ms', '3000')
    t = time.time()
    rc, g, _ = gen(s.port, '-n', '10', '-c', '2', '--duration', '1s', '--drain', '1s')
    took = time.time() - t
    s.stop()
    m = g['messages']
    check(m['errors'] == m['started'] and g['errors']['unfinished at end of run']['count'] == 2,
          'slow server: the 2 in flight when time ran out are "unfinished"')
    check(took < 4.5, 'slow server: --duration 1s --drain 1s ended in %.1f s' % took)


def case_delay():
    """latency is measured: a sink that holds each reply 50 ms gives
    p50 >= 50 ms and well under 2x"""
    s = Sink('--delay-ms', '50')
    rc, g, _ = gen(s.port, '-n', '40', '-c', '4')
    s.stop()
    l = g['latency']['t250']
    check(rc == 0 and l['count'] == 40, '40 delivered')
    check(50000 <= l['min_us'] and l['p50_us'] < 80000,
          'min %.1f ms >= 50, p50 %.1f ms < 80' % (l['min_us'] / 1e3, l['p50_us'] / 1e3))


def case_stall():
    """open loop at 400 msg/s; the server stalls 1 s once. Open-loop
    latency (from each message's scheduled start) shows the stall in p99 and
    above; the service time of the same run and a closed-loop run against
    the same kind of stall keep p99 small: only the max betrays it."""
    s = Sink('--stall-at', '200', '--stall-ms', '1000')
    t = time.time()
    rc, g, _ = gen(s.port, '-n', '800', '-c', '2', '--rate', '400')
    took = time.time() - t
    s.stop()
    lat, svc = g['latency']['t250'], g['latency']['service']
    ms = lambda v: '%.1f ms' % (v / 1e3)
    print('  open loop   time-to-250: p50 %s p90 %s p99 %s p99.9 %s max %s' % tuple(
        ms(lat[k]) for k in ('p50_us', 'p90_us', 'p99_us', 'p99_9_us', 'max_us')))
    print('  same run, service time:  p50 %s p90 %s p99 %s p99.9 %s max %s' % tuple(
        ms(svc[k]) for k in ('p50_us', 'p90_us', 'p99_us', 'p99_9_us', 'max_us')))
    check(rc == 0 and g['messages']['delivered'] == 800, 'open loop: 800 delivered')
    check(1.9 < took < 6, 'open loop run took %.2f s for 800 at 400/s + 1 s stall' % took)
    check(lat['max_us'] >= 1000000 and lat['p99_9_us'] >= 1000000, 'open loop: p99.9 and max >= 1 s')
    check(lat['p99_us'] >= 900000, 'open loop: p99 >= 900 ms (messages queued behind the stall)')
    check(lat['p90_us'] >= 300000, 'open loop: p90 >= 300 ms (a quarter of the run was due during it)')
    check(svc['p99_us'] < 100000 and svc['max_us'] >= 1000000,
          'service time of the same run: p99 < 100 ms, only max >= 1 s')
    s = Sink('--stall-at', '200', '--stall-ms', '1000')
    rc, c, _ = gen(s.port, '-n', '800', '-c', '2')
    s.stop()
    cl = c['latency']['t250']
    print('  closed loop time-to-250: p50 %s p90 %s p99 %s p99.9 %s max %s' % tuple(
        ms(cl[k]) for k in ('p50_us', 'p90_us', 'p99_us', 'p99_9_us', 'max_us')))
    check(cl['p99_us'] < 100000 and cl['max_us'] >= 1000000,
          'closed loop: p99 < 100 ms although the server stalled 1 s (max %s)' % ms(cl['max_us']))


def case_plot():
    """perf/plot.py turns a gen and a sink JSON into two PNGs"""
    s = Sink('--verify')
    rc, g, _ = gen(s.port, '-n', '300', '-c', '2', '--rate', '300')
    s.stop()
    check(rc == 0, 'gen run for the plot')
    here = os.path.dirname(os.path.abspath(__file__))
    plot = os.path.join(here, '..', '..', 'perf', 'plot.py')
    gj = sorted((f for f in os.listdir(TMP) if f.startswith('gen')), key=lambda f: os.path.getmtime(os.path.join(TMP, f)))[-1]
    sj = sorted((f for f in os.listdir(TMP) if f.startswith('sink')), key=lambda f: os.path.getmtime(os.path.join(TMP, f)))[-1]
    prefix = os.path.join(TMP, 'plot')
    r = subprocess.run(['/usr/bin/python3', plot, '-o', prefix, os.path.join(TMP, gj), os.path.join(TMP, sj)],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, 'plot.py exit 0 %s' % r.stderr.strip()[-300:])
    for kind in ('throughput', 'latency'):
        with open('%s-%s.png' % (prefix, kind), 'rb') as f:
            data = f.read()
        check(data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 10000,
              '%s-%s.png is a PNG of %d bytes' % (prefix, kind, len(data)))


CASES = {n[5:]: f for n, f in sorted(globals().items()) if n.startswith('case_')}


def main(argv):
    names = argv[1:] or list(CASES)
    if not os.path.exists(BENCH):
        print('no binary at %s (set SLUICE_BUILD or SLUICE_BENCH)' % BENCH)
        return 1
    failed = []
    for n in names:
        if n not in CASES:
            print('unknown case %s (%s)' % (n, ', '.join(CASES)))
            return 2
        print('== %s: %s' % (n, CASES[n].__doc__.split('\n')[0]))
        try:
            CASES[n]()
        except (Fail, subprocess.TimeoutExpired, KeyError, OSError) as e:
            print('FAIL %s: %s: %s' % (n, type(e).__name__, e))
            failed.append(n)
    print('%d of %d cases passed' % (len(names) - len(failed), len(names)))
    if not failed:
        shutil.rmtree(TMP, ignore_errors=True)
    else:
        print('files kept in', TMP)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
