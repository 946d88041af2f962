/*
 * tcpscript.h - scenario runner for the sans-IO TCP stack (see
 * docs/tcp-scripts.md for the script format).
 *
 * tcpscript_parse.c turns a script into an array of struct ts_line;
 * tcpscript_pkt.c builds inbound frames and decodes/matches outbound ones;
 * tcpscript.c drives a net_stack with a virtual clock and a fake net_io
 * (tcpscript_io.c) and runs application calls (tcpscript_call.c); their
 * shared run state is in tcpscript_rt.h.
 */
#ifndef SLUICE_TCPSCRIPT_H
#define SLUICE_TCPSCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TS_MAX_OPTS   16
#define TS_MAX_SACK   4
#define TS_MAX_ARGS   16

/* TCP flag bits as on the wire */
#define TS_FIN 0x01
#define TS_SYN 0x02
#define TS_RST 0x04
#define TS_PSH 0x08
#define TS_ACK 0x10
#define TS_URG 0x20
#define TS_ECE 0x40
#define TS_CWR 0x80

enum ts_kind { TS_IN, TS_OUT, TS_CALL };

/* one TCP option as written in a script or decoded from a frame */
struct ts_opt {
	uint8_t kind;          /* 0 eol 1 nop 2 mss 3 wscale 4 sackOK 5 sack 8 TS */
	bool wild_a, wild_b;   /* '*' for the first/second value */
	uint32_t a, b;         /* mss / wscale / TS val,ecr */
	uint8_t nsack;
	uint32_t sack[TS_MAX_SACK][2];
	uint8_t raw_len;       /* decoded unknown option: its length */
};

struct ts_seg {
	bool abs;              /* numbers are absolute */
	int peer_port;         /* -1: the current flow */
	uint8_t flags;
	bool seq_wild;
	uint32_t seq;
	uint32_t len;
	bool has_ack, ack_wild;
	uint32_t ack;
	bool has_win, win_wild;
	uint32_t win;
	bool has_opts, opts_wild;
	int nopts;
	struct ts_opt opts[TS_MAX_OPTS];
	uint8_t *payload;      /* literal payload, else pattern */
	bool badcsum;          /* inbound: corrupt the TCP checksum */
};

struct ts_line {
	int lineno;
	char *text;            /* the line as written, for messages */
	uint64_t t_us;         /* script time */
	bool has_tol;
	uint64_t tol_us;
	enum ts_kind kind;
	struct ts_seg seg;     /* TS_IN / TS_OUT */
	int argc;              /* TS_CALL: argv[0] is the command */
	char *argv[TS_MAX_ARGS];
	uint32_t arglen[TS_MAX_ARGS]; /* length of quoted args (may hold NUL) */
	bool argquoted[TS_MAX_ARGS];
};

struct ts_script {
	struct ts_line *lines;
	int n;
};

/* ts_parse_file - parse a script; 0, or -1 with a message in err */
int ts_parse_file(const char *path, struct ts_script *sc, char *err,
		  size_t errlen);
void ts_script_free(struct ts_script *sc);

/* --- packets (tcpscript_pkt.c) ---------------------------------------- */

/* relative-number context of one flow, as seen by the packet code */
struct ts_flowctx {
	uint32_t stack_ip, peer_ip;
	uint8_t stack_mac[6], peer_mac[6];
	uint16_t stack_port, peer_port;
	uint32_t peer_isn;
	bool stack_isn_known;
	uint32_t stack_isn;
	bool ts_known;
	uint32_t ts_base;
};

/* a decoded outbound TCP frame */
struct ts_frame {
	uint16_t sport, dport;
	uint32_t saddr, daddr;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	int nopts;
	struct ts_opt opts[TS_MAX_OPTS];
	const uint8_t *payload;
	uint32_t len;
};

/* ts_pattern - byte at offset o of a pattern stream */
static inline uint8_t ts_pattern(uint64_t o)
{
	static const char pat[] =
		"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

	return (uint8_t)pat[o % 62];
}

/* ts_build - write an inbound Ethernet frame for seg into buf (cap bytes);
 * payload bytes come from seg->payload or from pattern(stream offset) */
int ts_build(const struct ts_flowctx *fc, const struct ts_seg *seg,
	     uint16_t ip_id, uint8_t *buf, size_t cap);
/* ts_decode - parse an outbound frame; 0, or -1 with a reason */
int ts_decode(const uint8_t *f, size_t len, struct ts_frame *fr,
	      char *why, size_t n);
/* ts_format - packetdrill-like text of a decoded frame, relative to fc */
void ts_format(const struct ts_flowctx *fc, const struct ts_frame *fr,
	       char *out, size_t n);
/* ts_match - compare a decoded frame with an expected segment, learning
 * the stack ISN/TS base into fc; 0, or -1 with the difference in why */
int ts_match(struct ts_flowctx *fc, const struct ts_seg *exp,
	     const struct ts_frame *fr, char *why, size_t n);

#endif
