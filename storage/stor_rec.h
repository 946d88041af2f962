/*
 * stor_rec - every byte layout the storage layer writes, in one module.
 *
 * Input: C structs (struct stor_msg, stor_dest, stor_dir_* views).
 * Output: explicit little-endian, versioned records framed by an 8-byte
 * header [u8 version][u8 type][u16 0][u32 CRC32C of the payload], and
 * big-endian keys (so LMDB's memcmp order is numeric order).
 * Invariants: decode never reads outside the given buffer, accepts only an
 * exact-length record of a known version whose checksum matches, and
 * returns STOR_ECORRUPT otherwise. Decoded strings point into the buffer
 * (not NUL-terminated); keep the buffer (or the read txn) alive while using
 * them. Layouts are documented in docs/storage.md; golden bytes are in
 * tests/unit/storage/test_stor_rec.c - change both together and bump the
 * version.
 */
#ifndef STOR_REC_H
#define STOR_REC_H

#include <stddef.h>
#include <stdint.h>

#define STOR_REC_VERSION   1
#define STOR_REC_HDR       8            /* frame header bytes */
#define STOR_RCPT_MAX      4096         /* recipients per message */
#define STOR_STR_MAX       65535        /* any string field */
#define STOR_ROUTE_HOPS    8            /* next hops per route */
#define STOR_ALIAS_MAX     32           /* alias/rewrite targets */
#define STOR_QID_KEY       8            /* queue id key bytes (BE u64) */
#define STOR_QID_TEXT      13           /* printable queue id characters */
#define STOR_SCHED_KEY     17           /* [prio][next BE64][qid BE64] */

/* record types (second header byte) */
enum stor_rec_type {
	STOR_REC_MSG = 'M', STOR_REC_BODY = 'B', STOR_REC_DEST = 'D',
	STOR_REC_DOMAIN = 'd', STOR_REC_RCPT = 'r', STOR_REC_USER = 'u',
	STOR_REC_NET = 'n', STOR_REC_PRIO = 'p', STOR_REC_LIMIT = 'l',
};

/* a length-delimited byte string; never NUL-terminated by decode */
struct stor_str {
	const char *p;
	uint32_t n;
};
#define STOR_STR(s) ((struct stor_str){ (s), (uint32_t)sizeof(s) - 1 })

/* recipient delivery state */
enum stor_rcpt_state {
	STOR_RCPT_PENDING = 0,   /* not yet delivered (maybe deferred) */
	STOR_RCPT_DELIVERED = 1, /* accepted by the next hop */
	STOR_RCPT_FAILED = 2,    /* permanent failure, notice owed */
	STOR_RCPT_BOUNCED = 3,   /* permanent failure, notice queued (or
				  * none owed): nothing left to do */
};

/* DSN NOTIFY bits (RFC 3461 section 4.1); 0 = not given */
#define STOR_NOTIFY_NEVER    0x01
#define STOR_NOTIFY_SUCCESS  0x02
#define STOR_NOTIFY_FAILURE  0x04
#define STOR_NOTIFY_DELAY    0x08

/* message flags */
#define STOR_MSG_RET_FULL  0x0001   /* RFC 3461 RET=FULL */
#define STOR_MSG_RET_HDRS  0x0002   /* RFC 3461 RET=HDRS */
#define STOR_MSG_8BITMIME  0x0004
#define STOR_MSG_SMTPUTF8  0x0008
#define STOR_MSG_DELAY_SENT 0x0010  /* a delay notice went out (dsched) */

struct stor_rcpt {
	struct stor_str addr;       /* forward path, no angle brackets */
	struct stor_str orcpt;      /* RFC 3461 ORCPT, may be empty */
	struct stor_str dest;       /* destination key (next-hop domain) */
	struct stor_str reply;      /* last reply from a delivery attempt */
	uint64_t last_attempt_us;   /* 0 = never tried */
	uint16_t attempts;
	uint8_t state;              /* enum stor_rcpt_state */
	uint8_t notify;             /* STOR_NOTIFY_* */
};

/* per-message metadata (the `meta` record) */
struct stor_msg {
	uint64_t arrival_us;        /* unix time, microseconds */
	uint64_t next_attempt_us;   /* schedule index time */
	uint32_t attempts;
	uint32_t body_len;          /* filled by the writer on enqueue */
	uint32_t body_crc;          /* CRC32C of the body, writer fills */
	uint16_t flags;             /* STOR_MSG_* */
	uint8_t priority;           /* 0 (most urgent) .. 7 */
	struct stor_str sender;     /* reverse path, empty for <> */
	struct stor_str envid;      /* RFC 3461 ENVID, may be empty */
	struct stor_str client;     /* where it came from (for logs/DSN) */
	uint32_t nrcpt;
	struct stor_rcpt *rcpt;
};

/* destination link state */
enum stor_link { STOR_LINK_OPEN = 0, STOR_LINK_CLOSED = 1, STOR_LINK_HELD = 2 };

/* per-destination state (the `dest` record) */
struct stor_dest {
	uint8_t link;               /* enum stor_link */
	uint32_t failures;          /* consecutive failed attempts */
	uint64_t next_retry_us;
	uint64_t changed_us;        /* when `link` last changed */
	struct stor_str last_error;
};

/* directory: TLS policy for a route */
enum stor_tls { STOR_TLS_NONE = 0, STOR_TLS_OPPORTUNISTIC = 1,
		STOR_TLS_REQUIRED = 2, STOR_TLS_VERIFY = 3 };

struct stor_hop {
	struct stor_str host;
	uint16_t port;
};

struct stor_route {
	uint8_t tls;                /* enum stor_tls */
	uint8_t nhops;              /* 0 = deliver by MX lookup */
	struct stor_hop hop[STOR_ROUTE_HOPS];
};

enum stor_domain_kind { STOR_DOMAIN_LOCAL = 0, STOR_DOMAIN_RELAY = 1 };

struct stor_dir_domain {
	uint8_t kind;               /* enum stor_domain_kind */
	struct stor_route route;
};

enum stor_rcpt_action { STOR_ACT_ACCEPT = 0, STOR_ACT_ALIAS = 1,
			STOR_ACT_REJECT = 2 };

struct stor_dir_rcpt {
	uint8_t action;             /* enum stor_rcpt_action */
	uint8_t has_route;          /* route overrides the domain's */
	uint8_t ntargets;           /* alias/rewrite targets */
	struct stor_str target[STOR_ALIAS_MAX];
	struct stor_route route;
};

/* directory: per-destination delivery limits; 0 = the [delivery] default.
 * Bounds are those of the sluice.conf keys they override. */
#define STOR_LIMIT_CONNS_MAX  100000     /* max_conns_per_dest */
#define STOR_LIMIT_MSGS_MAX   1000000    /* max_msgs_per_conn */
#define STOR_LIMIT_RATE_MAX   10000000   /* rate_per_dest, messages/s */

struct stor_dir_limit {
	uint32_t max_conns;         /* concurrent connections */
	uint32_t msgs_per_conn;     /* messages over one connection */
	uint32_t rate;              /* messages per second */
};

/* stor_crc32c - CRC32C (Castagnoli, as iSCSI/ext4), continuing from crc */
uint32_t stor_crc32c(uint32_t crc, const void *p, size_t n);

/* little/big-endian helpers usable on unaligned memory */
void stor_put_le16(uint8_t *p, uint16_t v);
void stor_put_le32(uint8_t *p, uint32_t v);
void stor_put_le64(uint8_t *p, uint64_t v);
uint16_t stor_get_le16(const uint8_t *p);
uint32_t stor_get_le32(const uint8_t *p);
uint64_t stor_get_le64(const uint8_t *p);
void stor_put_be64(uint8_t *p, uint64_t v);
uint64_t stor_get_be64(const uint8_t *p);

/* queue id: [32 bits unix seconds][12 bits boot generation][20 bits seq].
 * Key form: 8 bytes big-endian. Text form: 13 characters of Crockford
 * base-32 (0-9 A-Z without I L O U), fixed width, so text order is id
 * order. */
void stor_qid_key(uint64_t qid, uint8_t key[STOR_QID_KEY]);
uint64_t stor_qid_from_key(const uint8_t key[STOR_QID_KEY]);
/* stor_qid_format - write 13 characters and a NUL into out[14] */
char *stor_qid_format(uint64_t qid, char out[STOR_QID_TEXT + 1]);
/* stor_qid_parse - 0 or EINVAL (case-insensitive, exactly 13 chars) */
int stor_qid_parse(const char *s, size_t n, uint64_t *qid);

/* schedule key [u8 prio][BE64 next_attempt_us][BE64 qid] */
void stor_sched_key(uint8_t key[STOR_SCHED_KEY], uint8_t prio,
		    uint64_t next_us, uint64_t qid);
void stor_sched_key_parse(const uint8_t key[STOR_SCHED_KEY], uint8_t *prio,
			  uint64_t *next_us, uint64_t *qid);
/* holding key: dest bytes, 0x00, BE64 qid; returns its length, 0 if the
 * destination is empty/too long/contains NUL (cap must be >= n + 9) */
size_t stor_hold_key(uint8_t *key, size_t cap, struct stor_str dest,
		     uint64_t qid);

/* message metadata: size, encode (buf of exactly size bytes), decode.
 * msg_size returns 0 if a field is out of range (too long, too many
 * recipients, priority > 7, bad state). decode returns 0, STOR_ECORRUPT,
 * or ERANGE when more than cap recipients (m->nrcpt then holds the count) */
size_t stor_rec_msg_size(const struct stor_msg *m);
void stor_rec_msg_encode(const struct stor_msg *m, uint8_t *buf, size_t size);
int stor_rec_msg_decode(const void *buf, size_t len, struct stor_msg *m,
			struct stor_rcpt *rcpt, uint32_t cap);

/* body: header of STOR_REC_HDR bytes followed by the message bytes */
void stor_rec_body_header(uint8_t hdr[STOR_REC_HDR], uint32_t crc);
/* stor_rec_body_decode - check header (and, if verify, the checksum);
 * body and n point into buf */
int stor_rec_body_decode(const void *buf, size_t len, int verify,
			 const void **body, size_t *n, uint32_t *crc);

size_t stor_rec_dest_size(const struct stor_dest *d);
void stor_rec_dest_encode(const struct stor_dest *d, uint8_t *buf, size_t size);
int stor_rec_dest_decode(const void *buf, size_t len, struct stor_dest *d);

size_t stor_rec_domain_size(const struct stor_dir_domain *d);
void stor_rec_domain_encode(const struct stor_dir_domain *d, uint8_t *buf, size_t size);
int stor_rec_domain_decode(const void *buf, size_t len, struct stor_dir_domain *d);

size_t stor_rec_rcpt_size(const struct stor_dir_rcpt *r);
void stor_rec_rcpt_encode(const struct stor_dir_rcpt *r, uint8_t *buf, size_t size);
int stor_rec_rcpt_decode(const void *buf, size_t len, struct stor_dir_rcpt *r);

/* user: payload is the self-describing password hash string */
size_t stor_rec_user_size(struct stor_str hash);
void stor_rec_user_encode(struct stor_str hash, uint8_t *buf, size_t size);
int stor_rec_user_decode(const void *buf, size_t len, struct stor_str *hash);

/* trusted network: empty payload; priority rule: one byte level 0..7 */
void stor_rec_net_encode(uint8_t buf[STOR_REC_HDR]);
int stor_rec_net_decode(const void *buf, size_t len);
/* limit: fixed size; encode refuses nothing (check with limit_ok),
 * decode returns STOR_ECORRUPT for a value above its bound */
#define STOR_REC_LIMIT_SIZE (STOR_REC_HDR + 12)
int stor_rec_limit_ok(const struct stor_dir_limit *l);
void stor_rec_limit_encode(const struct stor_dir_limit *l,
			   uint8_t buf[STOR_REC_LIMIT_SIZE]);
int stor_rec_limit_decode(const void *buf, size_t len, struct stor_dir_limit *l);
void stor_rec_prio_encode(uint8_t level, uint8_t buf[STOR_REC_HDR + 1]);
int stor_rec_prio_decode(const void *buf, size_t len, uint8_t *level);

#endif
