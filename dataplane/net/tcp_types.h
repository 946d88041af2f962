/*
 * tcp_types.h - structures shared by the TCP modules (tcp_*.c) and nothing
 * else. L3 sees struct tcp_state only as an opaque pointer (net_types.h).
 *
 * Pools (allocated once in tcp_create, never on the packet path):
 *   conns[max_conns]      struct tcp_conn, each owning a fixed send and
 *                         receive ring carved from one buffer allocation
 *   listeners[max_listeners]
 *   tw[timewait_max]      compact TIME_WAIT entries (struct tcp_tw)
 * Links are 32-bit indexes (TCP_NIL = none), so every list is intrusive and
 * bounded by its pool.
 *
 * Sequence bookkeeping of a connection:
 *   snd_una <= snd_nxt <= snd_max (mod 2^32). The send ring holds the
 *   bytes [snd_buf_seq, snd_buf_seq + snd_len); SYN and FIN occupy
 *   sequence space but no ring bytes. Our FIN, once queued, has sequence
 *   number snd_buf_seq + snd_len.
 *   The receive ring holds rcv_len readable bytes starting at rcv_head;
 *   rcv_nxt is the sequence number of the byte after them. Out-of-order
 *   bytes sit at their natural ring position after the readable ones,
 *   described by ooo[] ranges.
 */
#ifndef SLUICE_TCP_TYPES_H
#define SLUICE_TCP_TYPES_H

#include "net_types.h"

#define TCP_NIL UINT32_MAX

/* header flags (RFC 9293 3.1) */
#define TCP_FIN 0x01u
#define TCP_SYN 0x02u
#define TCP_RST 0x04u
#define TCP_PSH 0x08u
#define TCP_ACK 0x10u
#define TCP_URG 0x20u
#define TCP_ECE 0x40u
#define TCP_CWR 0x80u

#define TCP_HLEN 20
#define TCP_MAX_OPTLEN 40

/* modular sequence comparisons (RFC 9293 3.4) */
#define SEQ_LT(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) <= 0)
#define SEQ_GT(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) > 0)
#define SEQ_GEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) >= 0)
#define SEQ_MAX(a, b) (SEQ_GT(a, b) ? (a) : (b))
#define SEQ_MIN(a, b) (SEQ_LT(a, b) ? (a) : (b))

/* connection states; numbering is what net_sockinfo().state reports */
enum tcp_st {
	TCPS_CLOSED = 0,
	TCPS_LISTEN,
	TCPS_SYN_SENT,
	TCPS_SYN_RECV,
	TCPS_ESTABLISHED,
	TCPS_FIN_WAIT1,
	TCPS_FIN_WAIT2,
	TCPS_CLOSE_WAIT,
	TCPS_CLOSING,
	TCPS_LAST_ACK,
	TCPS_TIME_WAIT,
	TCPS_NSTATES
};

/* connection flags (tcp_conn.flags) */
#define TCP_CF_USED        0x00000001u /* allocated from the pool */
#define TCP_CF_HASHED      0x00000002u /* in the flow hash */
#define TCP_CF_ACTIVE      0x00000004u /* we sent the first SYN */
#define TCP_CF_APP_SEEN    0x00000008u /* handle given to the app */
#define TCP_CF_APP_CLOSED  0x00000010u /* net_close called: orphan */
#define TCP_CF_FIN_QUEUED  0x00000020u /* our FIN follows the ring data */
#define TCP_CF_FIN_SENT    0x00000040u /* our FIN has been sent once */
#define TCP_CF_PEER_FIN    0x00000080u /* peer's FIN received in order */
#define TCP_CF_FIN_OOO     0x00000100u /* peer FIN seen out of order */
#define TCP_CF_TS          0x00000200u /* timestamps negotiated */
#define TCP_CF_SACK        0x00000400u /* SACK permitted both ways */
#define TCP_CF_WS          0x00000800u /* window scaling negotiated */
#define TCP_CF_ACK_NOW     0x00001000u /* send an ACK at the next flush */
#define TCP_CF_IN_OUTQ     0x00002000u /* on the output list */
#define TCP_CF_IN_EVQ      0x00004000u /* on the event ready list */
#define TCP_CF_IN_WHEEL    0x00008000u /* linked in the timer wheel */
#define TCP_CF_PERSIST     0x00010000u /* rto_at is the persist timer */
#define TCP_CF_RECOVERY    0x00020000u /* fast recovery (RFC 6582/6675) */
#define TCP_CF_RTT_TIMING  0x00040000u /* rtt_seq is being timed */
#define TCP_CF_WR_BLOCKED  0x00080000u /* app saw a full send buffer */
#define TCP_CF_DONE        0x00100000u /* protocol finished; socket left */
#define TCP_CF_SYN_OUT     0x00200000u /* (re)send SYN or SYN-ACK */
#define TCP_CF_CLOSED_EV   0x00400000u /* NET_EV_CLOSED queued */
#define TCP_CF_SYNQ        0x00800000u /* counted in listener syn_recv */
#define TCP_CF_RXT_UNA     0x01000000u /* NewReno: resend at snd_una */
#define TCP_CF_FORCE_PROBE 0x02000000u /* persist: send 1 probe byte */
#define TCP_CF_COOKIE      0x04000000u /* created from a SYN cookie */
#define TCP_CF_DONE_EV     0x08000000u /* free slot: CLOSED was taken, the
					  old handle still reads as EOF */

#define TCP_OOO_MAX 8      /* out-of-order ranges kept per connection */
#define TCP_SACK_MAX 8     /* scoreboard ranges kept per connection */

/* one out-of-order range held in the receive ring [start, end) */
struct tcp_ooo {
	uint32_t start, end;
	uint32_t age;      /* larger = more recently updated (RFC 2018 4) */
};

/* one SACKed range of our send sequence space [start, end) */
struct tcp_sackblk {
	uint32_t start, end;
};

struct tcp_conn {
	/* --- hot: touched for every established in-order segment --- */
	uint8_t state;          /* enum tcp_st */
	uint8_t snd_wscale;     /* peer's shift (applied to its windows) */
	uint8_t rcv_wscale;     /* our shift (applied to windows we send) */
	uint8_t dupacks;
	uint32_t flags;         /* TCP_CF_* */
	uint32_t snd_una, snd_nxt, snd_max;
	uint32_t snd_wnd;       /* peer's window in bytes */
	uint32_t snd_wl1, snd_wl2;
	uint32_t rcv_nxt;
	uint32_t rcv_adv;       /* right edge last advertised */
	uint32_t last_ack_sent;
	uint32_t cwnd, ssthresh;
	uint32_t ts_recent;     /* peer's TSval to echo */
	uint32_t ts_off;        /* our per-connection TSval offset */
	uint32_t snd_buf_seq, snd_head, snd_len;
	uint32_t rcv_head, rcv_len;
	uint16_t mss;           /* max payload per segment (minus TS option) */
	uint8_t n_ooo, n_sack;
	uint8_t segs_unacked;   /* full segments received since our last ACK */
	uint8_t rto_shift;      /* exponential backoff count */
	uint8_t retries;        /* consecutive timeouts / probes */
	uint8_t pad0;
	uint8_t *snd_buf, *rcv_buf;
	uint32_t rtt_seq;       /* sequence being timed (no timestamps) */
	uint32_t srtt_us, rttvar_us, rto_us;
	uint64_t rtt_start;
	uint64_t rto_at;        /* retransmit, persist or SYN timer (us), 0 off */
	uint64_t delack_at;     /* delayed ACK (us), 0 off */
	uint64_t fw2_at;        /* orphaned FIN-WAIT-2 timeout (us), 0 off */

	/* --- links (indexes into the pools) --- */
	uint32_t hnext;         /* flow hash chain / free list */
	uint32_t out_next;      /* output list */
	uint32_t ev_next;       /* event ready list */
	uint32_t t_next, t_prev;/* timer wheel slot list */
	uint64_t t_at;          /* wheel tick this conn is linked at */

	/* --- cold --- */
	uint32_t laddr, raddr;
	uint16_t lport, rport;
	uint32_t iss, irs;
	uint16_t gen;           /* handle generation */
	uint16_t listener;      /* listener index (passive opens) */
	uint16_t peer_mss;      /* MSS option the peer sent (or 536) */
	uint16_t pad1;
	uint32_t ev_pending;    /* NET_EV_* not yet taken */
	int ev_error;           /* error for NET_EV_CLOSED */
	void *user;
	uint32_t max_snd_wnd;   /* largest window the peer offered */
	uint32_t recover;       /* snd_max at start of recovery (RFC 6582) */
	uint32_t rxt_next;      /* next hole byte to retransmit (RFC 6675) */
	uint32_t fin_seq;       /* peer FIN sequence when TCP_CF_FIN_OOO */
	uint32_t ooo_age;
	uint32_t probes;        /* zero-window probes sent without answer */
	uint64_t retransmits;
	struct tcp_ooo ooo[TCP_OOO_MAX];
	struct tcp_sackblk sack[TCP_SACK_MAX];
};

/* compact TIME_WAIT entry (RFC 9293 3.6.1); the full conn is already free */
struct tcp_tw {
	uint32_t laddr, raddr;
	uint16_t lport, rport;
	uint32_t snd_nxt, rcv_nxt;
	uint32_t ts_recent, ts_off;
	uint16_t win;          /* window field to put in our ACKs */
	uint8_t ts_ok, used;
	uint64_t expiry;       /* us */
	uint32_t hnext;        /* hash chain / free list */
	uint32_t prev, next;   /* expiry FIFO (oldest at tw_head) */
};

struct tcp_listener {
	uint16_t port;
	uint8_t used;
	void *user;
	uint32_t syn_recv;     /* SYN_RECV conns charged to this listener */
};

/* event and drop counters; names in tcp_core.c */
struct tcp_stats {
	uint64_t rx_segs, tx_segs, rx_bytes, tx_bytes;
	uint64_t retransmits, fast_retransmits, sack_retransmits, rto_timeouts;
	uint64_t syn_retransmits, syncookies_sent, syncookies_ok;
	uint64_t syncookies_bad, syn_refused_nomem, syn_dropped;
	uint64_t rst_tx, rst_rx, rst_ignored, challenge_acks;
	uint64_t challenge_ack_limited;
	uint64_t bad_csum, bad_hdr, paws_drop, no_ts_drop, ooo_segs;
	uint64_t ooo_drop, dup_acks, zero_window_probes, accepts, connects;
	uint64_t connect_fail, conn_timeouts, resets_recv, aborts;
	uint64_t abort_on_data, fin_wait2_timeouts, out_of_window;
	uint64_t urg_ignored, delayed_acks, acks_tx, rx_data_dropped;
	uint64_t tw_created, tw_recycled, tw_reused, tw_acks, tw_rst_ignored;
	uint64_t closed_port_segs, icmp_errors, tx_fail, fast_path;
	uint64_t partial_acks, recoveries, persist_timeouts, rcv_win_full;
};

#define TCP_WHEEL_BITS 12
#define TCP_WHEEL_SLOTS (1u << TCP_WHEEL_BITS)  /* 1 ms ticks: 4.096 s */

struct tcp_state {
	struct tcp_conn *conns;
	uint32_t nconns;
	uint32_t free_head, n_free;
	uint8_t *bufmem;

	/* flow hash: chained through tcp_conn.hnext */
	uint32_t *fbuckets;
	uint32_t fmask;
	uint32_t n_hashed;
	uint64_t hkey0, hkey1;   /* keyed mix for the flow hashes */

	struct tcp_listener *listeners;
	uint32_t nlisteners;

	/* TIME_WAIT table */
	struct tcp_tw *tw;
	uint32_t ntw, tw_used, tw_free;
	uint32_t tw_head, tw_tail;
	uint32_t *twbuckets;
	uint32_t twmask;

	/* timer wheel (1 ms ticks) */
	uint32_t wslot[TCP_WHEEL_SLOTS];
	uint64_t wbits[TCP_WHEEL_SLOTS / 64];
	uint64_t wtick;          /* last tick processed */
	uint32_t n_wheel;

	/* output and event lists (FIFO) */
	uint32_t out_head, out_tail;
	uint32_t ev_head, ev_tail;

	uint8_t isn_key[16];     /* RFC 6528 F() key */
	uint8_t cookie_key[16];  /* RFC 4987 cookie key */
	uint8_t rcv_wscale;      /* shift we offer, from rcvbuf */
	uint16_t mss_local;      /* mtu - 40 */
	uint16_t eph_next;       /* ephemeral port cursor */
	uint64_t chal_window;    /* RFC 5961 7 rate limit: window start */
	uint32_t chal_count;

	struct tcp_stats st;
};

#endif
