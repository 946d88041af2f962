#!/usr/bin/python3
"""perf/plot.py - PNG plots from sluice-bench JSON (gen --json / sink --json).

usage: perf/plot.py [-o PREFIX] RESULT.json [RESULT.json ...]
       perf/plot.py --compare [-o PREFIX] compare.json

Writes PREFIX-throughput.png (messages/s and MB/s per second of the run,
failures per second dashed) and PREFIX-latency.png (latency CDF on a log
time axis, and the tail on a "nines" axis: 90, 99, 99.9, 99.99 %).
Gen files contribute time-to-250 and service time, sink files
time-to-delivery. PREFIX defaults to the first file's name without .json.
--compare reads perf/compare's compare.json and writes PREFIX.png: bars per
size and server for accepted msgs/s, end-to-end msgs/s, p99 time-to-250 and
server CPU seconds per 1000 messages.
Needs Debian's python3-matplotlib (scripts/install-deps).
"""
import argparse
import json
import math
import os
import sys

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def label_of(path, d):
    return '%s %s (%s)' % (d.get('mode', '?'), d.get('run_id', ''), os.path.basename(path))


def latencies(d):
    """(name, histogram JSON) pairs a result file carries"""
    lat = d.get('latency', {})
    names = {'t250': 'time-to-250', 'service': 'service time', 'delivery': 'time-to-delivery'}
    return [(names.get(k, k), v) for k, v in lat.items() if v.get('count')]


def trim(series):
    """drop the empty seconds before the first message (a sink waiting) and
    after the last (the partial last bucket)"""
    msgs, errs = series.get('msgs', []), series.get('errors', [])
    busy = [i for i in range(len(msgs)) if msgs[i] or errs[i]]
    first, last = (busy[0], busy[-1] + 1) if busy else (0, 0)
    return first, {k: v[first:last] for k, v in series.items() if isinstance(v, list)}


def plot_throughput(files, out):
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    # files of one run (gen + sink) share a time axis: their wall-clock starts
    t0 = min((d.get('start_unix_us', 0) for _, d in files), default=0)
    for path, d in files:
        if 'series' not in d:
            continue
        first, s = trim(d['series'])
        off = (d.get('start_unix_us', t0) - t0) / 1e6
        t = [off + first + i + 0.5 for i in range(len(s['msgs']))]
        lab = label_of(path, d)
        line, = ax1.plot(t, s['msgs'], marker='.', label=lab)
        if any(s['errors']):
            ax1.plot(t, s['errors'], linestyle='--', color=line.get_color(),
                     label=lab + ' failed/deferred')
        ax2.plot(t, [b / 1e6 for b in s['bytes']], marker='.', color=line.get_color(), label=lab)
    ax1.set_ylabel('messages/s')
    ax2.set_ylabel('MB/s')
    ax2.set_xlabel('seconds from the first start (bucket centres)')
    ax1.set_title('sluice-bench throughput')
    ax1.grid(True, alpha=0.3)
    ax2.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_latency(files, out):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5))
    for path, d in files:
        for name, h in latencies(d):
            cdf = h.get('cdf') or []
            if not cdf:
                continue
            xs = [max(v, 1) / 1e3 for v, _ in cdf]
            ys = [f for _, f in cdf]
            lab = '%s: %s' % (label_of(path, d), name)
            ax1.step(xs, ys, where='post', label=lab)
            # tail: x = nines of the percentile reached, y = latency
            nx = [-math.log10(max(1 - f, 1e-6)) for f in [0.0] + ys[:-1]]
            ax2.step(nx, xs, where='post', label=lab)
    ax1.set_xscale('log')
    ax1.set_xlabel('latency, ms (log)')
    ax1.set_ylabel('fraction of messages')
    ax1.set_title('latency CDF')
    ax1.grid(True, which='both', alpha=0.3)
    ax2.set_yscale('log')
    ax2.set_ylabel('latency, ms (log)')
    ax2.set_xticks([0, 1, 2, 3, 4])
    ax2.set_xticklabels(['0%', '90%', '99%', '99.9%', '99.99%'])
    ax2.set_xlabel('percentile')
    ax2.set_title('latency by percentile (tail)')
    ax2.grid(True, which='both', alpha=0.3)
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_compare(path, out):
    """perf/compare's summary: one panel per measure, bars by size and server"""
    with open(path) as f:
        d = json.load(f)
    rows = d.get('rows', [])
    sizes = sorted({r['size'] for r in rows})
    servers = [s for s in ('sluiced', 'postfix', 'opensmtpd') if any(r['server'] == s for r in rows)]
    measures = [('accept_rate', 'accepted msgs/s'), ('e2e_rate', 'end-to-end relay msgs/s'),
                ('t250_p99_ms', 'p99 time-to-250, ms (lower is better)'),
                ('cpu_per_1k', 'server CPU s per 1000 msgs relayed (lower is better)')]
    capped = {r['server'] for r in rows if r.get('relay_capped')}
    if capped:     # perf/compare counts their CPU per message accepted
        measures[3] = ('cpu_per_1k', 'server CPU s per 1000 msgs relayed (*: per 1000 accepted)')
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    width = 0.8 / max(len(servers), 1)
    for ax, (key, title) in zip(axes.flat, measures):
        for i, srv in enumerate(servers):
            xs, ys = [], []
            for j, size in enumerate(sizes):
                r = next((x for x in rows if x['server'] == srv and x['size'] == size), None)
                if r:
                    xs.append(j + (i - (len(servers) - 1) / 2) * width)
                    ys.append(r[key])
            bars = ax.bar(xs, ys, width, label=srv + (' * (relay capped by its design)'
                                                      if srv in capped else ''))
            ax.bar_label(bars, fmt='%.3g', fontsize=7)
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels(['%d KB' % (s // 1024) for s in sizes])
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis='y', alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    c = d.get('conditions', {})
    fig.suptitle('perf/compare %s: %s cores, %s sessions, durable, fsync %.0f/s' % (
        c.get('date', ''), c.get('cores', '?'), c.get('sessions', '?'),
        c.get('fsync_var_tmp', {}).get('per_s', 0)), fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('-o', '--output', help='prefix of the PNG files')
    ap.add_argument('--compare', action='store_true', help="the file is perf/compare's compare.json")
    ap.add_argument('json', nargs='+')
    a = ap.parse_args()
    if a.compare:
        prefix = a.output or os.path.splitext(a.json[0])[0]
        plot_compare(a.json[0], prefix + '.png')
        print(prefix + '.png')
        return
    files = []
    for p in a.json:
        try:
            with open(p) as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit('plot.py: %s: %s' % (p, e))
        if d.get('tool') != 'sluice-bench':
            sys.exit('plot.py: %s: not a sluice-bench result' % p)
        files.append((p, d))
    prefix = a.output or os.path.splitext(a.json[0])[0]
    plot_throughput(files, prefix + '-throughput.png')
    plot_latency(files, prefix + '-latency.png')
    print('%s-throughput.png %s-latency.png' % (prefix, prefix))


if __name__ == '__main__':
    main()
