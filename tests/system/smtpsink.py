#!/usr/bin/python3
"""smtpsink.py - a scriptable SMTP sink for the relay tests (stdlib only).

Run it where the next hop should be, e.g. inside the lab namespace:

  ip netns exec sluice-lab /usr/bin/python3 tests/system/smtpsink.py \
      --port 2525 --dir OUT [--dsn] [--chunking] \
      [--rcpt-reply 'bad@relay.test=550 5.1.1 no such user'] ...

Protocol: ESMTP (RFC 5321) with EHLO/HELO, MAIL, RCPT, DATA, BDAT (RFC
3030, with --chunking), RSET, NOOP, VRFY (252), QUIT; PIPELINING, 8BITMIME,
SIZE, ENHANCEDSTATUSCODES, DSN (with --dsn), CHUNKING (with --chunking).
Commands are answered in order, so pipelined input just works.

Every accepted message is stored in OUT as two files, written in this
order so that a reader never sees half a message:
  NAME.msg   the body exactly as received, after dot-unstuffing (DATA) or
             the concatenated chunks (BDAT)
  NAME.json  {"sender", "mail_params", "rcpts", "rcpt_params", "helo",
              "peer", "conn", "seq", "time" (unix s of the end of data),
              "size", "bdat", "pid"}
NAME = <time_ns>-<pid>-<seq>, so a sort by name is arrival order even
across sink restarts in the same OUT.

Behaviour, fixed at start by options and changeable at run time through
OUT/control.json (re-read at the start of every connection; any key
missing keeps the option's value):
  {"greeting": "421 4.3.2 go away",     # reply instead of 220, then close
   "drop": false,                        # accept, then close at once
   "mail": "451 4.3.0 ...",              # reply to every MAIL
   "rcpt": {"a@b.test": "550 5.1.1 ...", "@b.test": "...", "*": "..."},
   "data": "451 4.3.0 ...",              # reply at end of data / BDAT LAST
   "delay_s": 0.0,                       # sleep before every reply
   "data_delay_s": 0.0}                  # extra sleep before the end-of-data reply
A reply text may hold "\\n" for a multi-line reply. RCPT rules match the
exact address (lower case), then "@domain", then "*".

A session idle for --timeout seconds (default 120) is closed.
Counts: OUT/stats.json (this process: connections, active, messages,
rcpt_ok, rcpt_refused, data_refused, errors, pid, port) is rewritten after
every event; OUT/sink.log has one line per session event. SIGUSR1 prints
the counts on stderr; SIGTERM/SIGINT close the listener and every session
and exit 0. When listening it prints one line on stdout:
  smtpsink: ready pid=PID port=PORT dir=OUT
"""
import argparse
import asyncio
import json
import os
import signal
import sys
import time

MAX_LINE = 1 << 20


def parse_reply(text):
    """'550 5.1.1 x' -> (code, wire bytes)"""
    lines = text.replace("\\n", "\n").split("\n")
    code = lines[0][:3]
    if not (code.isdigit() and len(code) == 3):
        raise ValueError("reply %r does not start with a 3-digit code" % text)
    out = []
    for i, ln in enumerate(lines):
        rest = ln[4:] if ln[:3] == code else ln
        sep = " " if i == len(lines) - 1 else "-"
        out.append("%s%s%s\r\n" % (code, sep, rest))
    return int(code), "".join(out).encode()


class Sink:
    def __init__(self, args):
        self.a = args
        self.dir = os.path.abspath(args.dir)
        os.makedirs(self.dir, exist_ok=True)
        self.rcpt_rules = {}
        for r in args.rcpt_reply or []:
            addr, sep, rep = r.partition("=")
            if not sep:
                raise SystemExit("--rcpt-reply %r: expected ADDR=REPLY" % r)
            parse_reply(rep)
            self.rcpt_rules[addr.strip().lower()] = rep
        self.stats = dict(pid=os.getpid(), port=args.port, connections=0, active=0,
                          messages=0, rcpt_ok=0, rcpt_refused=0, data_refused=0,
                          mail_refused=0, errors=0, started=time.time())
        self.seq = 0
        self.conns = 0
        self.writers = set()
        self.logf = open(os.path.join(self.dir, "sink.log"), "a", buffering=1)

    # ---- bookkeeping ----
    def log(self, conn, what):
        self.logf.write("%.6f %d c%d %s\n" % (time.time(), os.getpid(), conn, what))

    def save_stats(self):
        p = os.path.join(self.dir, "stats.json")
        tmp = p + ".%d.tmp" % os.getpid()
        with open(tmp, "w") as f:
            json.dump(self.stats, f)
        os.replace(tmp, p)

    def behaviour(self):
        """the options, overridden by OUT/control.json if present"""
        b = dict(greeting=None, drop=False, mail=self.a.mail_reply, rcpt=dict(self.rcpt_rules),
                 data=self.a.data_reply, delay_s=self.a.delay, data_delay_s=self.a.data_delay)
        p = os.path.join(self.dir, "control.json")
        try:
            with open(p) as f:
                c = json.load(f)
        except FileNotFoundError:
            return b
        except (OSError, ValueError) as e:
            self.stats["errors"] += 1
            self.logf.write("control.json unreadable (%s): ignored\n" % e)
            return b
        for k in ("greeting", "drop", "mail", "data", "delay_s", "data_delay_s"):
            if k in c:
                b[k] = c[k]
        if "rcpt" in c:
            b["rcpt"].update({k.lower(): v for k, v in (c["rcpt"] or {}).items()})
        return b

    def store(self, conn, helo, peer, sender, mparams, rcpts, rparams, body, bdat):
        self.seq += 1
        now = time.time_ns()
        name = "%019d-%d-%06d" % (now, os.getpid(), self.seq)
        base = os.path.join(self.dir, name)
        with open(base + ".msg", "wb") as f:
            f.write(body)
        meta = dict(sender=sender, mail_params=mparams, rcpts=rcpts, rcpt_params=rparams,
                    helo=helo, peer=peer, conn=conn, seq=self.seq, time=now / 1e9,
                    size=len(body), bdat=bdat, pid=os.getpid(), name=name)
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.replace(base + ".json.tmp", base + ".json")
        return name

    # ---- one session ----
    async def session(self, reader, writer):
        self.conns += 1
        conn = self.conns
        peer = writer.get_extra_info("peername")
        peer = "%s:%d" % (peer[0], peer[1]) if peer else "?"
        self.stats["connections"] += 1
        self.stats["active"] += 1
        self.writers.add(writer)
        b = self.behaviour()
        self.log(conn, "connect %s" % peer)
        self.save_stats()
        try:
            await self.dialogue(conn, peer, reader, writer, b)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.TimeoutError) as e:
            self.log(conn, "lost: %s" % (type(e).__name__,))
        except asyncio.CancelledError:
            self.log(conn, "cancelled (shutdown)")
            raise
        except Exception as e:  # noqa: BLE001 - counted, the sink keeps running
            self.stats["errors"] += 1
            self.log(conn, "error: %r" % e)
        finally:
            self.stats["active"] -= 1
            self.writers.discard(writer)
            self.save_stats()
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass
            self.log(conn, "close")

    async def dialogue(self, conn, peer, reader, writer, b):
        delay = float(b.get("delay_s") or 0)

        async def reply(text):
            if delay:
                await asyncio.sleep(delay)
            code, wire = parse_reply(text)
            writer.write(wire)
            await writer.drain()
            return code

        if b.get("drop"):
            self.log(conn, "drop")
            return
        if b.get("greeting"):
            await reply(b["greeting"])
            self.log(conn, "greeting %s" % b["greeting"])
            return
        await reply("220 %s ESMTP smtpsink" % self.a.hostname)
        helo = None
        sender = None
        mparams = []
        rcpts, rparams = [], []
        chunks = None
        while True:
            line = await asyncio.wait_for(reader.readuntil(b"\r\n"), self.a.timeout)
            cmdline = line[:-2].decode("utf-8", errors="replace")
            verb, _, arg = cmdline.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                helo = arg.strip()
                sender, rcpts, rparams, chunks = None, [], [], None
                if verb == "HELO":
                    await reply("250 %s" % self.a.hostname)
                    continue
                ext = [self.a.hostname, "PIPELINING", "8BITMIME", "SIZE %d" % self.a.max_size,
                       "ENHANCEDSTATUSCODES"]
                if self.a.dsn:
                    ext.append("DSN")
                if self.a.chunking:
                    ext.append("CHUNKING")
                if self.a.smtputf8:
                    ext.append("SMTPUTF8")
                await reply("\n".join("250 " + e for e in ext))
            elif verb == "MAIL":
                if helo is None:
                    await reply("503 5.5.1 EHLO first")
                    continue
                if sender is not None:
                    await reply("503 5.5.1 nested MAIL")
                    continue
                if not arg.upper().startswith("FROM:"):
                    await reply("501 5.5.4 Syntax: MAIL FROM:<address>")
                    continue
                addr, params = split_path(arg[5:])
                if addr is None:
                    await reply("501 5.1.7 bad sender address syntax")
                    continue
                size = next((p.split("=", 1)[1] for p in params if p.upper().startswith("SIZE=")), None)
                if size is not None and size.isdigit() and int(size) > self.a.max_size:
                    await reply("552 5.3.4 message too big")
                    continue
                if b.get("mail"):
                    self.stats["mail_refused"] += 1
                    self.log(conn, "MAIL <%s> refused: %s" % (addr, b["mail"]))
                    await reply(b["mail"])
                    continue
                sender, mparams, rcpts, rparams, chunks = addr, params, [], [], None
                await reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                if sender is None:
                    await reply("503 5.5.1 MAIL first")
                    continue
                if not arg.upper().startswith("TO:"):
                    await reply("501 5.5.4 Syntax: RCPT TO:<address>")
                    continue
                addr, params = split_path(arg[3:])
                if not addr:
                    await reply("501 5.1.3 bad recipient address syntax")
                    continue
                rule = rcpt_rule(b["rcpt"], addr)
                if rule is not None and not rule.startswith("2"):
                    self.stats["rcpt_refused"] += 1
                    self.log(conn, "RCPT <%s> refused: %s" % (addr, rule))
                    await reply(rule)
                    continue
                rcpts.append(addr)
                rparams.append(params)
                self.stats["rcpt_ok"] += 1
                await reply(rule or "250 2.1.5 Ok")
            elif verb == "DATA":
                if sender is None or not rcpts:
                    await reply("503 5.5.1 %s" % ("MAIL first" if sender is None else "no valid recipients"))
                    continue
                await reply("354 End data with <CR><LF>.<CR><LF>")
                body = await asyncio.wait_for(read_data(reader, self.a.max_size), self.a.timeout)
                await self.end_of_data(conn, peer, helo, sender, mparams, rcpts, rparams,
                                       body, False, b, reply)
                sender, rcpts, rparams, chunks = None, [], [], None
            elif verb == "BDAT":
                parts = arg.split()
                if (not self.a.chunking or not parts or not parts[0].isdigit()
                        or len(parts) > 2 or (len(parts) == 2 and parts[1].upper() != "LAST")):
                    if parts and parts[0].isdigit():   # RFC 3030: read the chunk anyway
                        await reader.readexactly(int(parts[0]))
                    await reply("501 5.5.4 Syntax: BDAT size [LAST]" if self.a.chunking
                                else "502 5.5.1 CHUNKING not offered")
                    continue
                data = await asyncio.wait_for(reader.readexactly(int(parts[0])), self.a.timeout)
                if sender is None or not rcpts:
                    await reply("503 5.5.1 %s" % ("MAIL first" if sender is None else "no valid recipients"))
                    continue
                chunks = (chunks or []) + [data]
                if len(parts) == 1:
                    await reply("250 2.0.0 %d octets received" % len(data))
                    continue
                await self.end_of_data(conn, peer, helo, sender, mparams, rcpts, rparams,
                                       b"".join(chunks), True, b, reply)
                sender, rcpts, rparams, chunks = None, [], [], None
            elif verb == "RSET":
                sender, rcpts, rparams, chunks = None, [], [], None
                await reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                await reply("250 2.0.0 Ok")
            elif verb == "VRFY":
                await reply("252 2.0.0 Cannot VRFY user")
            elif verb == "QUIT":
                await reply("221 2.0.0 Bye")
                return
            else:
                await reply("502 5.5.2 command not recognized")

    async def end_of_data(self, conn, peer, helo, sender, mparams, rcpts, rparams, body, bdat, b, reply):
        dd = float(b.get("data_delay_s") or 0)
        if dd:
            await asyncio.sleep(dd)
        if body is None:
            self.stats["data_refused"] += 1
            await reply("552 5.3.4 message too big")
            return
        if b.get("data"):
            self.stats["data_refused"] += 1
            self.log(conn, "end of data from <%s> refused: %s" % (sender, b["data"]))
            await reply(b["data"])
            return
        name = self.store(conn, helo, peer, sender, mparams, rcpts, rparams, body, bdat)
        self.stats["messages"] += 1
        self.log(conn, "message %s from <%s> to %s, %d octets%s" % (
            name, sender, ",".join("<%s>" % r for r in rcpts), len(body), " (BDAT)" if bdat else ""))
        self.save_stats()
        await reply("250 2.0.0 Ok: stored as %s" % name)


def split_path(s):
    """'<a@b> P=1 Q' -> ('a@b', ['P=1', 'Q']); (None, []) if malformed"""
    s = s.strip()
    if not s.startswith("<"):
        return None, []
    end = s.find(">")
    if end < 0:
        return None, []
    return s[1:end], s[end + 1:].split()


def rcpt_rule(rules, addr):
    a = addr.lower()
    dom = "@" + a.rsplit("@", 1)[1] if "@" in a else None
    for k in (a, dom, "*"):
        if k and k in rules:
            return rules[k]
    return None


async def read_data(reader, max_size):
    """DATA body up to CRLF.CRLF, dot-unstuffed (RFC 5321 4.5.2); None if
    it passed max_size (read to the end anyway)"""
    out = []
    n = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        if line == b".\r\n":
            break
        if line.startswith(b"."):
            line = line[1:]
        n += len(line)
        if n <= max_size:
            out.append(line)
    return b"".join(out) if n <= max_size else None


def read_messages(out_dir):
    """every complete message in out_dir, in arrival order:
    [dict(meta..., body=bytes)]"""
    res = []
    try:
        names = sorted(os.listdir(out_dir))
    except FileNotFoundError:
        return res
    for n in names:
        if not n.endswith(".json") or n in ("stats.json", "control.json"):
            continue
        base = os.path.join(out_dir, n[:-5])
        try:
            with open(base + ".json") as f:
                meta = json.load(f)
            with open(base + ".msg", "rb") as f:
                meta["body"] = f.read()
        except (OSError, ValueError):
            continue
        res.append(meta)
    return res


def read_stats(out_dir):
    try:
        with open(os.path.join(out_dir, "stats.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_control(out_dir, **kw):
    """replace OUT/control.json atomically (applies from the next connection)"""
    p = os.path.join(out_dir, "control.json")
    with open(p + ".tmp", "w") as f:
        json.dump(kw, f)
    os.replace(p + ".tmp", p)


async def amain(args):
    sink = Sink(args)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: print(
        "smtpsink: %s" % json.dumps(sink.stats), file=sys.stderr, flush=True))
    server = await asyncio.start_server(sink.session, args.host, args.port,
                                        limit=MAX_LINE, reuse_address=True,
                                        backlog=args.backlog)
    sink.save_stats()
    print("smtpsink: ready pid=%d port=%d dir=%s" % (os.getpid(), args.port, sink.dir), flush=True)
    await stop.wait()
    server.close()
    for w in list(sink.writers):
        w.close()
    try:
        await asyncio.wait_for(server.wait_closed(), 3)
    except asyncio.TimeoutError:
        pass
    sink.stats["stopped"] = time.time()
    sink.save_stats()
    sink.logf.write("%.6f %d exit: %s\n" % (time.time(), os.getpid(), json.dumps(sink.stats)))
    print("smtpsink: exit %s" % json.dumps(sink.stats), file=sys.stderr, flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=2525)
    p.add_argument("--dir", required=True, help="where messages, stats.json, sink.log go")
    p.add_argument("--hostname", default="sink.lab.test")
    p.add_argument("--dsn", action="store_true", help="offer DSN")
    p.add_argument("--chunking", action="store_true", help="offer CHUNKING (BDAT)")
    p.add_argument("--smtputf8", action="store_true", help="offer SMTPUTF8")
    p.add_argument("--max-size", type=int, default=64 << 20)
    p.add_argument("--rcpt-reply", action="append", metavar="ADDR=REPLY",
                   help="reply REPLY to RCPT for ADDR (or @domain, or *)")
    p.add_argument("--mail-reply", default=None, help="reply to every MAIL")
    p.add_argument("--data-reply", default=None, help="reply at every end of data")
    p.add_argument("--delay", type=float, default=0.0, help="sleep before every reply (s)")
    p.add_argument("--data-delay", type=float, default=0.0,
                   help="sleep before the end-of-data reply (s)")
    p.add_argument("--backlog", type=int, default=512)
    p.add_argument("--timeout", type=float, default=120.0,
                   help="close a session that sends nothing for this long (s)")
    args = p.parse_args(argv)
    for r in (args.mail_reply, args.data_reply):
        if r:
            parse_reply(r)
    asyncio.run(amain(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
