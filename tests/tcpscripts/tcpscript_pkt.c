/*
 * tcpscript_pkt.c - frames for the TCP script runner.
 *
 * ts_build writes what the scripted peer sends (Ethernet + IPv4 + TCP with
 * correct checksums unless asked to corrupt them). ts_decode/ts_format/
 * ts_match read what the stack sent and compare it with a '>' line.
 *
 * Relative numbers (docs/tcp-scripts.md): sequence numbers the peer owns
 * are offsets from the flow's peer_isn; those the stack owns are offsets
 * from the stack's ISN, learned from its first SYN (0 until known); TS
 * values of the stack are offsets from its first TS val; the peer's TS
 * values are literal. An 'abs' line uses raw numbers throughout.
 */
#include <stdio.h>
#include <string.h>

#include "net_types.h"
#include "tcpscript.h"

static void wr16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint32_t stack_base(const struct ts_flowctx *fc)
{
	return fc->stack_isn_known ? fc->stack_isn : 0;
}

/* enc_opts - encode script options; pads to 4 bytes with EOL */
static int enc_opts(const struct ts_flowctx *fc, const struct ts_seg *sg,
		    uint8_t *o)
{
	int n = 0;

	for (int i = 0; i < sg->nopts; i++) {
		const struct ts_opt *x = &sg->opts[i];
		int need = x->kind <= 1 ? 1 : x->kind == 2 ? 4 : x->kind == 3 ? 3 :
			   x->kind == 4 ? 2 : x->kind == 8 ? 10 : 2 + 8 * x->nsack;

		if (n + need > 40)
			return -1;
		o[n] = x->kind;
		switch (x->kind) {
		case 0: case 1:
			break;
		case 2:
			o[n + 1] = 4;
			wr16(o + n + 2, x->a);
			break;
		case 3:
			o[n + 1] = 3;
			o[n + 2] = (uint8_t)x->a;
			break;
		case 4:
			o[n + 1] = 2;
			break;
		case 8:
			o[n + 1] = 10;
			wr32(o + n + 2, x->a);
			wr32(o + n + 6, sg->abs || !fc->ts_known ? x->b :
				       fc->ts_base + x->b);
			break;
		case 5:
			o[n + 1] = (uint8_t)need;
			for (int k = 0; k < x->nsack; k++) {
				uint32_t b = sg->abs ? 0 : stack_base(fc);

				wr32(o + n + 2 + 8 * k, b + x->sack[k][0]);
				wr32(o + n + 6 + 8 * k, b + x->sack[k][1]);
			}
			break;
		}
		n += need;
	}
	while (n & 3)
		o[n++] = 0;
	return n;
}

/* ts_build - the peer's frame for an inbound line */
int ts_build(const struct ts_flowctx *fc, const struct ts_seg *sg,
	     uint16_t ip_id, uint8_t *buf, size_t cap)
{
	uint8_t opts[48];
	int olen = enc_opts(fc, sg, opts);
	uint8_t *ip = buf + NET_ETH_HLEN, *th = buf + NET_L4_OFF;
	uint32_t seq, rel;
	size_t tcplen, tot;
	uint16_t c;

	if (olen < 0)
		return -1;
	tcplen = 20 + (size_t)olen + sg->len;
	tot = NET_IP_HLEN + tcplen;
	if (tot > 65535 || NET_ETH_HLEN + tot > cap)
		return -1;
	memcpy(buf, fc->stack_mac, 6);
	memcpy(buf + 6, fc->peer_mac, 6);
	wr16(buf + 12, 0x0800);
	ip[0] = 0x45;
	ip[1] = 0;
	wr16(ip + 2, (uint32_t)tot);
	wr16(ip + 4, ip_id);
	wr16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = NET_IPPROTO_TCP;
	ip[10] = ip[11] = 0;
	wr32(ip + 12, fc->peer_ip);
	wr32(ip + 16, fc->stack_ip);
	c = net_csum_fold(net_csum_partial(ip, NET_IP_HLEN, 0));
	memcpy(ip + 10, &c, 2);

	seq = sg->abs ? sg->seq : fc->peer_isn + sg->seq;
	wr16(th, fc->peer_port);
	wr16(th + 2, fc->stack_port);
	wr32(th + 4, seq);
	wr32(th + 8, !sg->has_ack ? 0 : sg->abs ? sg->ack :
		     stack_base(fc) + sg->ack);
	th[12] = (uint8_t)(((20 + olen) / 4) << 4);
	th[13] = sg->flags;
	wr16(th + 14, sg->win);
	th[16] = th[17] = 0;
	wr16(th + 18, 0);
	memcpy(th + 20, opts, (size_t)olen);
	/* payload: literal, or the peer's pattern at its stream offset */
	rel = seq - fc->peer_isn + ((sg->flags & TS_SYN) ? 1 : 0) - 1;
	for (uint32_t i = 0; i < sg->len; i++)
		th[20 + olen + i] = sg->payload ? sg->payload[i] :
				    ts_pattern((uint32_t)(rel + i));
	c = net_csum_fold(net_csum_partial(th, tcplen,
		net_csum_pseudo(fc->peer_ip, fc->stack_ip, NET_IPPROTO_TCP,
				(uint16_t)tcplen)));
	if (sg->badcsum)
		c ^= 0x5a5a;
	memcpy(th + 16, &c, 2);
	return (int)(NET_ETH_HLEN + tot);
}

/* ts_decode - parse a TCP/IPv4 frame the stack emitted */
int ts_decode(const uint8_t *f, size_t len, struct ts_frame *fr,
	      char *why, size_t n)
{
	const uint8_t *ip, *th, *o;
	unsigned ihl, tot, doff, olen;

	memset(fr, 0, sizeof(*fr));
	if (len < NET_ETH_HLEN + 20 || rd16(f + 12) != 0x0800) {
		snprintf(why, n, "not an IPv4 frame (ethertype 0x%04x)",
			 len >= 14 ? rd16(f + 12) : 0);
		return -1;
	}
	ip = f + NET_ETH_HLEN;
	ihl = (ip[0] & 15u) * 4;
	tot = rd16(ip + 2);
	if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl ||
	    NET_ETH_HLEN + tot > len) {
		snprintf(why, n, "malformed IPv4 header");
		return -1;
	}
	if (ip[9] != NET_IPPROTO_TCP) {
		snprintf(why, n, "IPv4 protocol %u (type %u code %u), not TCP",
			 ip[9], tot > ihl ? ip[ihl] : 0,
			 tot > ihl + 1 ? ip[ihl + 1] : 0);
		return -1;
	}
	th = ip + ihl;
	doff = (th[12] >> 4) * 4u;
	if (tot - ihl < 20 || doff < 20 || doff > tot - ihl) {
		snprintf(why, n, "malformed TCP header");
		return -1;
	}
	fr->saddr = rd32(ip + 12);
	fr->daddr = rd32(ip + 16);
	fr->sport = rd16(th);
	fr->dport = rd16(th + 2);
	fr->seq = rd32(th + 4);
	fr->ack = rd32(th + 8);
	fr->flags = th[13];
	fr->win = rd16(th + 14);
	fr->payload = th + doff;
	fr->len = tot - ihl - doff;
	o = th + 20;
	olen = doff - 20;
	for (unsigned i = 0; i < olen;) {
		struct ts_opt *x;
		unsigned ol;

		if (o[i] == 0) /* EOL ends the list */
			break;
		if (fr->nopts >= TS_MAX_OPTS) {
			snprintf(why, n, "too many TCP options");
			return -1;
		}
		x = &fr->opts[fr->nopts++];
		memset(x, 0, sizeof(*x));
		x->kind = o[i];
		if (o[i] == 1) {
			i++;
			continue;
		}
		if (i + 1 >= olen || o[i + 1] < 2 || i + o[i + 1] > olen) {
			snprintf(why, n, "malformed TCP option kind %u", o[i]);
			return -1;
		}
		ol = o[i + 1];
		x->raw_len = (uint8_t)ol;
		if (x->kind == 2 && ol == 4)
			x->a = rd16(o + i + 2);
		else if (x->kind == 3 && ol == 3)
			x->a = o[i + 2];
		else if (x->kind == 8 && ol == 10) {
			x->a = rd32(o + i + 2);
			x->b = rd32(o + i + 6);
		} else if (x->kind == 5 && ol >= 10 && (ol - 2) % 8 == 0 &&
			   (ol - 2) / 8 <= TS_MAX_SACK) {
			x->nsack = (uint8_t)((ol - 2) / 8);
			for (int k = 0; k < x->nsack; k++) {
				x->sack[k][0] = rd32(o + i + 2 + 8 * k);
				x->sack[k][1] = rd32(o + i + 6 + 8 * k);
			}
		} else if (x->kind != 4 || ol != 2) {
			snprintf(why, n, "TCP option kind %u has length %u",
				 x->kind, ol);
			return -1;
		}
		i += ol;
	}
	return 0;
}

/* fmt_flags - "S.", "P.", "F.", "R", ... */
static void fmt_flags(uint8_t fl, char *out)
{
	static const struct { uint8_t bit; char ch; } tab[] = {
		{ TS_SYN, 'S' }, { TS_FIN, 'F' }, { TS_RST, 'R' },
		{ TS_PSH, 'P' }, { TS_URG, 'U' }, { TS_ECE, 'E' },
		{ TS_CWR, 'W' }, { TS_ACK, '.' },
	};
	int k = 0;

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (fl & tab[i].bit)
			out[k++] = tab[i].ch;
	if (k == 0)
		out[k++] = '-';
	out[k] = '\0';
}

/* ts_format - a decoded frame in script syntax, relative to fc */
void ts_format(const struct ts_flowctx *fc, const struct ts_frame *fr,
	       char *out, size_t n)
{
	char fl[12];
	size_t k;
	uint32_t seq = fr->seq - stack_base(fc);

	fmt_flags(fr->flags, fl);
	k = (size_t)snprintf(out, n, "%s%s %u:%u(%u)",
			     fr->sport != fc->stack_port ||
			     fr->dport != fc->peer_port ? "[ports differ] " : "",
			     fl, seq, seq + fr->len, fr->len);
	if ((fr->flags & TS_ACK) && k < n)
		k += (size_t)snprintf(out + k, n - k, " ack %u",
				      fr->ack - fc->peer_isn);
	if (k < n)
		k += (size_t)snprintf(out + k, n - k, " win %u", fr->win);
	if (fr->nopts && k < n) {
		k += (size_t)snprintf(out + k, n - k, " <");
		for (int i = 0; i < fr->nopts && k < n; i++) {
			const struct ts_opt *x = &fr->opts[i];
			const char *sep = i ? "," : "";

			switch (x->kind) {
			case 1:
				k += (size_t)snprintf(out + k, n - k, "%snop", sep);
				break;
			case 2:
				k += (size_t)snprintf(out + k, n - k, "%smss %u",
						      sep, x->a);
				break;
			case 3:
				k += (size_t)snprintf(out + k, n - k,
						      "%swscale %u", sep, x->a);
				break;
			case 4:
				k += (size_t)snprintf(out + k, n - k, "%ssackOK",
						      sep);
				break;
			case 8:
				k += (size_t)snprintf(out + k, n - k,
					"%sTS val %u ecr %u", sep,
					fc->ts_known ? x->a - fc->ts_base : x->a,
					x->b);
				break;
			case 5:
				k += (size_t)snprintf(out + k, n - k, "%ssack", sep);
				for (int j = 0; j < x->nsack && k < n; j++)
					k += (size_t)snprintf(out + k, n - k,
						" %u:%u", x->sack[j][0] - fc->peer_isn,
						x->sack[j][1] - fc->peer_isn);
				break;
			default:
				k += (size_t)snprintf(out + k, n - k,
						      "%skind%u", sep, x->kind);
			}
		}
		if (k < n)
			k += (size_t)snprintf(out + k, n - k, ">");
	}
}

/* nth_real_opt - i-th option that is not nop/eol padding, or NULL */
static const struct ts_opt *nth_real_opt(const struct ts_opt *o, int n, int i)
{
	for (int k = 0; k < n; k++) {
		if (o[k].kind <= 1)
			continue;
		if (i-- == 0)
			return &o[k];
	}
	return NULL;
}

static int count_real(const struct ts_opt *o, int n)
{
	int c = 0;

	for (int k = 0; k < n; k++)
		c += o[k].kind > 1;
	return c;
}

/* ts_match - compare frame fr with expectation exp (see file comment) */
int ts_match(struct ts_flowctx *fc, const struct ts_seg *exp,
	     const struct ts_frame *fr, char *why, size_t n)
{
	const struct ts_opt *fts = NULL;

	if (fr->sport != fc->stack_port || fr->dport != fc->peer_port) {
		snprintf(why, n, "ports %u>%u, expected %u>%u", fr->sport,
			 fr->dport, fc->stack_port, fc->peer_port);
		return -1;
	}
	if (fr->flags != exp->flags) {
		char a[12], b[12];

		fmt_flags(fr->flags, a);
		fmt_flags(exp->flags, b);
		snprintf(why, n, "flags %s, expected %s", a, b);
		return -1;
	}
	/* learn the stack's ISN from its first SYN */
	if ((exp->flags & TS_SYN) && !exp->seq_wild && !exp->abs &&
	    !fc->stack_isn_known) {
		fc->stack_isn = fr->seq - exp->seq;
		fc->stack_isn_known = true;
	}
	if (!exp->seq_wild) {
		uint32_t want = exp->abs ? exp->seq : stack_base(fc) + exp->seq;

		if (fr->seq != want) {
			snprintf(why, n, "seq %u, expected %u", fr->seq -
				 (exp->abs ? 0 : stack_base(fc)), exp->seq);
			return -1;
		}
	}
	if (exp->len != UINT32_MAX && fr->len != exp->len) {
		snprintf(why, n, "payload length %u, expected %u", fr->len,
			 exp->len);
		return -1;
	}
	if (exp->has_ack && !exp->ack_wild) {
		uint32_t want = exp->abs ? exp->ack : fc->peer_isn + exp->ack;

		if (fr->ack != want) {
			snprintf(why, n, "ack %u, expected %u", fr->ack -
				 (exp->abs ? 0 : fc->peer_isn), exp->ack);
			return -1;
		}
	}
	if (exp->has_win && !exp->win_wild && fr->win != exp->win) {
		snprintf(why, n, "win %u, expected %u", fr->win, exp->win);
		return -1;
	}
	/* learn the stack's TS clock base from the first TS it sends */
	for (int i = 0; i < fr->nopts; i++)
		if (fr->opts[i].kind == 8)
			fts = &fr->opts[i];
	if (fts && !fc->ts_known) {
		uint32_t rel = 0;

		for (int i = 0; i < exp->nopts; i++)
			if (exp->opts[i].kind == 8 && !exp->opts[i].wild_a &&
			    !exp->abs)
				rel = exp->opts[i].a;
		fc->ts_base = fts->a - rel;
		fc->ts_known = true;
	}
	if (!exp->opts_wild) {
		int ne = count_real(exp->opts, exp->nopts);
		int nf = count_real(fr->opts, fr->nopts);

		if (ne != nf) {
			snprintf(why, n, "%d options, expected %d", nf, ne);
			return -1;
		}
		for (int i = 0; i < ne; i++) {
			const struct ts_opt *e = nth_real_opt(exp->opts, exp->nopts, i);
			const struct ts_opt *g = nth_real_opt(fr->opts, fr->nopts, i);
			uint32_t va = e->a;

			if (e->kind != g->kind) {
				snprintf(why, n, "option %d is kind %u, expected "
					 "kind %u", i + 1, g->kind, e->kind);
				return -1;
			}
			if (e->kind == 8 && !exp->abs)
				va = fc->ts_base + e->a;
			if ((e->kind == 2 || e->kind == 3 || e->kind == 8) &&
			    !e->wild_a && g->a != va) {
				snprintf(why, n, "option %d value %u, expected %u",
					 i + 1, e->kind == 8 ? g->a - fc->ts_base :
					 g->a, e->a);
				return -1;
			}
			if (e->kind == 8 && !e->wild_b && g->b != e->b) {
				snprintf(why, n, "TS ecr %u, expected %u", g->b,
					 e->b);
				return -1;
			}
			if (e->kind == 5) {
				uint32_t b = exp->abs ? 0 : fc->peer_isn;

				if (e->nsack != g->nsack) {
					snprintf(why, n, "%u SACK blocks, "
						 "expected %u", g->nsack, e->nsack);
					return -1;
				}
				for (int k = 0; k < e->nsack; k++)
					if (g->sack[k][0] != b + e->sack[k][0] ||
					    g->sack[k][1] != b + e->sack[k][1]) {
						snprintf(why, n, "SACK block %d "
							 "%u:%u, expected %u:%u",
							 k + 1, g->sack[k][0] - b,
							 g->sack[k][1] - b,
							 e->sack[k][0], e->sack[k][1]);
						return -1;
					}
			}
		}
	}
	if (exp->payload && memcmp(exp->payload, fr->payload, fr->len) != 0) {
		snprintf(why, n, "payload differs from the literal");
		return -1;
	}
	return 0;
}
