/*
 * djob.h - one delivery job: the part of one queued message that goes to
 * one destination, handed from the scheduler (control plane) to an io
 * lcore and back with per-recipient results.
 *
 * Transport: pointers on rte_rings. mstore->djob[k] (SP/SC) carries jobs
 * to io lcore k; mstore->dres (MP/SC) carries every finished job back.
 * Ownership: the scheduler allocates a job and owns it except while it is
 * on a ring or in an io lcore's hands; the io lcore fills in the result
 * fields and returns the same pointer exactly once (also at shutdown:
 * unfinished jobs come back with DJOB_CONN_FAIL, 4.3.2). The io lcore
 * only reads the scheduler's fields and writes the result fields.
 *
 * The io lcore reads the message (metadata for sender, envelope options
 * and the recipients named by rcpt[].index; body in place) from the queue
 * through its own stor_reader, keeping the snapshot open while the body
 * is being sent.
 */
#ifndef SLUICE_DJOB_H
#define SLUICE_DJOB_H

#include <stdbool.h>
#include <stdint.h>

#define DJOB_HOPS 8
#define DJOB_TEXT 256

/* job outcome (djob.status) */
enum djob_status {
	DJOB_OK = 0,         /* a session reached MAIL: per-recipient results
			      * (rcpt[].code) are final for this attempt */
	DJOB_CONN_FAIL = 1,  /* no usable session on any hop (connect, greeting,
			      * EHLO, TLS, 421): every recipient is temporarily
			      * failed; counts against the destination */
	DJOB_MSG_FAIL = 2,   /* the message itself could not be sent (gone from
			      * the queue, unreadable, refused locally by the
			      * engine): code/enh/text say why; 5xx = permanent */
};

struct djob_hop {
	uint32_t addr;       /* IPv4, host order */
	uint16_t port;
};

struct djob_rcpt {
	uint32_t index;      /* recipient index in the queued message */
	/* result */
	int code;            /* SMTP reply code; 0 = not attempted */
	char enh[16];        /* "2.0.0" */
	char text[DJOB_TEXT];
};

struct djob {
	/* ---- set by the scheduler ---- */
	uint64_t qid;
	uint32_t dest_id;    /* scheduler's destination handle (echoed) */
	uint8_t prio;
	uint8_t owner;       /* io lcore index: mstore->djob[owner] */
	uint8_t tls;         /* enum smtp_tls_policy */
	uint8_t nhops;       /* 1..DJOB_HOPS, tried in order on failure */
	uint32_t max_msgs;   /* messages per connection for this destination
			      * (directory limit); 0 = max_msgs_per_conn */
	struct djob_hop hop[DJOB_HOPS];
	char dest[256];      /* destination name (logs; TLS name for verify) */
	uint32_t nrcpt;      /* >= 1 */
	struct djob_rcpt *rcpt;
	void *sched_priv;

	/* ---- set by the io lcore ---- */
	uint8_t status;      /* enum djob_status */
	int code;            /* message-level reply (end of data), or the
			      * failure's code (4xx/5xx) */
	char enh[16];
	char text[DJOB_TEXT];
	unsigned ext;        /* SMTP_EXT_* the next hop offered (DSN etc.) */
	char relay[80];      /* "198.18.0.2:2525" of the hop used */
	bool tls_used;       /* session ran over TLS */
	bool reused;         /* on a connection kept from an earlier job */
	uint64_t t_start_us, t_done_us;   /* tsc_now_us() on the io lcore */
};

#endif
