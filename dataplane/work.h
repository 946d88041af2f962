/*
 * work.h - one unit of work an io lcore hands off and gets back: a message
 * at end of data (to a worker, then the storage writer) or an AUTH check
 * (to the control plane's aux thread).
 *
 * Ownership (the decision for bodies crossing rings): the work item is
 * embedded in its SMTP session, and the message bytes stay in the session's
 * engine buffer (Received header + body, contiguous). While a work item is
 * out, the session is parked on its verdict: the io lcore neither feeds the
 * engine nor frees the session (a client that disconnects leaves a zombie
 * session, freed when the item comes back). Workers only read the envelope
 * and body; what they allocate (recipient table, strings) they free before
 * handing the item back. Nothing is copied; nothing is freed twice.
 * Items travel as pointers: priority ring -> worker -> stor_producer ->
 * worker -> the owner's done ring (per io lcore, MP/SC).
 */
#ifndef SLUICE_WORK_H
#define SLUICE_WORK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "smtp_server.h"
#include "stor_writer.h"

enum work_kind { WORK_DATA = 1, WORK_AUTH = 2 };

struct work_arena;

struct work {
	uint8_t kind;              /* enum work_kind */
	uint8_t owner;             /* io lcore index: its done ring */
	uint8_t prio;              /* ring level 0..7 */
	void *sess;                /* the owning session (opaque here) */

	/* result, set by whoever finishes the item */
	int code;                  /* 0 = success (default reply) */
	char enh[8];
	char text[200];

	/* WORK_DATA input (read-only for workers) */
	const struct smtp_envelope *env;
	const uint8_t *msg;
	size_t msg_len, received_len;
	uint64_t qid;
	char client[80];           /* "unknown[198.18.0.2]" */
	uint64_t t_eod_us;         /* end of data (latency counters) */
	unsigned nrcpt_out;        /* recipients after aliases (for logs) */

	/* worker-owned while out */
	struct stor_sub sub;
	struct stor_msg smsg;
	struct stor_rcpt *rcpt;
	struct work_arena *arena;
	struct iovec iov;

	/* WORK_AUTH input (wiped when done) */
	char user[256];
	char pw[256];
	size_t pwlen;
};

#endif
