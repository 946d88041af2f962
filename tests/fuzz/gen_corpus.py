#!/usr/bin/env python3
"""gen_corpus.py - write the seed corpus of fuzz_net_stack.

Each seed is a small program in the byte format read by fuzz_net_stack.c:
a configuration byte, then op bytes with their arguments. Run from
anywhere; writes tests/fuzz/corpus/net_stack/*.bin next to this script.
"""
import os
import struct

SEG, REPLY, RAW, IP, ICMP, ARP, CLOCK = 0, 3, 5, 6, 7, 8, 9
LISTEN, CONNECT, SEND, RECV, CLOSE = 10, 11, 12, 13, 14

def u16(v): return struct.pack('>H', v & 0xffff)
def u32(v): return struct.pack('>I', v & 0xffffffff)

# SEG args: a (bit6 nice options, bits4-5 local port idx, bits0-1 peer idx),
# flags, sm (low 5 bits: seq delta + 8), win, ack delta byte (1 = exact), paylen
def seg(flags, a=0x00, paylen=0, win=0xffff):
    return bytes([SEG, a, flags, 0x08]) + u16(win) + bytes([1, paylen])

def reply(kind, paylen_units=0):
    # kind: 0 ACK, 1 PSH|ACK, 2 FIN|ACK, 3 SYN|ACK, 4 RST, 5 RST|ACK
    return bytes([REPLY, kind, paylen_units])

def clock_ms(ms): return bytes([CLOCK, 1]) + u16(ms)
def clock_walk_s(s): return bytes([CLOCK, 2 | 4]) + u16(s)
def clock_days(s): return bytes([CLOCK, 3]) + u32(s)
def recv(n): return bytes([RECV, 0]) + u16(n & ~1)
def peek(n): return bytes([RECV, 0]) + u16(n | 1)
def send(n): return bytes([SEND, 0]) + u16(n)
def close(): return bytes([CLOSE, 0, 0])
def abort_(): return bytes([CLOSE, 1, 0])
def shutdown(): return bytes([CLOSE, 2, 0])

seeds = {
    'handshake-data-close': bytes([0x00]) +
        seg(0x02, a=0x40) + reply(0) + reply(1, 1) + recv(4096) +
        send(100) + clock_ms(50) + reply(0) + close() + reply(2) +
        clock_walk_s(120),
    'active-open-echo': bytes([0x00]) +
        bytes([CONNECT, 0]) + reply(3) + send(3000) + clock_ms(10) +
        reply(0) + reply(1, 4) + peek(200) + recv(8000) + shutdown() +
        reply(2) + clock_walk_s(70),
    'offload-small-mtu': bytes([0x01 | 0x02 | 0x40]) +
        seg(0x02, a=0x40) + reply(0) + send(5000) + clock_ms(300) +
        clock_ms(600) + reply(0) + abort_(),
    'syn-flood-cookies': bytes([0x10 | 0x20]) +
        b''.join(seg(0x02, a=(i & 3) | 0x40) for i in range(12)) +
        reply(0) + clock_ms(1000) + reply(0),
    'no-arp-answers': bytes([0x04]) +
        clock_days(400) + bytes([CONNECT, 1]) + clock_ms(250) +
        clock_ms(250) + clock_ms(600) + send(10),
    'garbage-l2-l3': bytes([0x00]) +
        bytes([RAW, 0x06, 30]) + bytes(range(61)) +
        bytes([IP, 0x00, 8, 0x00, 64, 0x01]) + bytes(8) +
        bytes([IP, 0x20 | 0x40, 12]) + bytes([0, 0x20, 0x01, 17, 5]) + bytes(12) +
        bytes([ARP, 0x04]) + bytes([ARP, 0x21 | 0x08]) +
        bytes([ARP, 0x10, 3]) + seg(0x02) + bytes([ICMP, 0x00, 4]) + u16(0) +
        bytes([ICMP, 0x81, 3]) + u16(1400),
    'rst-and-stale-handles': bytes([0x08]) +
        seg(0x02) + reply(0) + reply(5) + send(10) + bytes([SEND, 0xc1]) +
        u16(10) + bytes([RECV, 0xc0]) + u32(0x12345) + u16(10) + close(),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus',
                   'net_stack')
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name + '.bin'), 'wb') as f:
        f.write(data)
print(f'wrote {len(seeds)} seeds to {out}')
