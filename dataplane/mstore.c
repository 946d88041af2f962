/*
 * mstore.c - queue, writer, directory, rings and the aux thread (mstore.h).
 *
 * Input: the config. Output: rings the io lcores and workers use, a
 * running writer thread, a running aux thread. Invariant: only the aux
 * thread writes mail log lines and runs password hashes; only the writer
 * thread writes the queue.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_errno.h>
#include <rte_ring.h>

#include "log.h"
#include "mstore.h"
#include "stor_err.h"
#include "stor_recover.h"

#define MSTORE_AUTHQ 1024
#define MSTORE_LOGQ 16384
#define MSTORE_BURST 64
#define MSTORE_SCHED_NEW 65536
#define MSTORE_DJOBS 4096        /* per io lcore; >= [delivery] max_active share */

/* mstore_stor_log - storage messages into sluiced's log */
static void mstore_stor_log(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level <= STOR_LOG_WARN)
		log_warn("storage: %s", msg);
	else if (level == STOR_LOG_DEBUG)
		log_mdebug(LOG_M_STORAGE, "%s", msg);
	else
		log_info("storage: %s", msg);
}

/* mstore_storage_debug - the writer's per-batch lines (sluicectl log
 * debug storage on) */
static int mstore_storage_debug(void)
{
	return LOG_MDEBUG_ON(LOG_M_STORAGE);
}

static struct rte_ring *mstore_ring(const char *name, unsigned n,
				    unsigned flags, char *err, size_t errlen)
{
	struct rte_ring *r = rte_ring_create(name, n, SOCKET_ID_ANY,
					     flags | RING_F_EXACT_SZ);

	if (!r)
		snprintf(err, errlen, "cannot create ring %s (%u): %s", name,
			 n, rte_strerror(rte_errno));
	return r;
}

void mstore_log(struct mstore *m, const char *line)
{
	char *copy = strdup(line);

	if (!copy || rte_ring_mp_enqueue(m->logq, copy) != 0) {
		free(copy);
		atomic_fetch_add(&m->st.log_drops, 1);
	}
}

int mstore_auth(struct mstore *m, struct work *w)
{
	if (m->xdir && m->xdir->auth)
		return m->xdir->auth(m->xdir_ctx, w);
	return rte_ring_mp_enqueue(m->authq, w) == 0 ? 0 : -1;
}

void mstore_committed(struct mstore *m, uint64_t qid)
{
	if (rte_ring_mp_enqueue(m->sched_new, (void *)(uintptr_t)qid) != 0)
		atomic_store_explicit(&m->sched_rescan, true,
				      memory_order_release);
}

void mstore_done(struct mstore *m, struct work *w)
{
	/* sized for every session of the lcore: cannot be full */
	while (rte_ring_mp_enqueue(m->done[w->owner], w) != 0)
		;
}

void mstore_xdone(struct mstore *m, struct mstore_xreq *q)
{
	/* sized for every session of the lcore: cannot be full */
	while (rte_ring_mp_enqueue(m->xdone[q->owner], q) != 0)
		;
}

int mstore_xdir_attach(struct mstore *m, const struct mstore_xdir_ops *ops,
		       void *ctx, char *err, size_t errlen)
{
	char name[32];

	for (unsigned i = 0; i < m->n_io; i++) {
		snprintf(name, sizeof(name), "sl_xdone%u", i);
		m->xdone[i] = mstore_ring(name, m->xdone_size, RING_F_SC_DEQ,
					  err, errlen);
		if (!m->xdone[i])
			return -1;
	}
	m->xdir = ops;
	m->xdir_ctx = ctx;
	return 0;
}

/* mstore_aux_auth - verify one AUTH against the directory (slow: scrypt) */
static void mstore_aux_auth(struct mstore *m, struct stor_dir_reader *rd,
			    struct work *w)
{
	struct stor_str u = { w->user, (uint32_t)strlen(w->user) };
	int rc = rd ? stor_dir_user_verify(rd, u, w->pw, w->pwlen) : EIO;

	if (rd)
		stor_dir_reader_release(rd);
	explicit_bzero(w->pw, sizeof(w->pw));
	w->pwlen = 0;
	if (rc == 0) {
		w->code = 0;
		atomic_fetch_add(&m->st.auth_ok, 1);
	} else if (rc == EACCES) {
		w->code = 535;
		snprintf(w->enh, sizeof(w->enh), "5.7.8");
		snprintf(w->text, sizeof(w->text),
			 "Authentication credentials invalid");
		atomic_fetch_add(&m->st.auth_fail, 1);
	} else {
		w->code = 454;
		snprintf(w->enh, sizeof(w->enh), "4.7.0");
		snprintf(w->text, sizeof(w->text),
			 "Temporary authentication failure");
		atomic_fetch_add(&m->st.auth_fail, 1);
	}
	mstore_done(m, w);
}

/* mstore_aux_logs - write queued mail log lines; returns how many */
static unsigned mstore_aux_logs(struct mstore *m)
{
	static char buf[MSTORE_BURST * 1100];   /* aux thread only */
	void *p[MSTORE_BURST];
	unsigned n = rte_ring_sc_dequeue_burst(m->logq, p, MSTORE_BURST, NULL);
	size_t len = 0;

	if (!m->pid)
		m->pid = (int)getpid();
	/* one write per burst, whole lines (lines are at most ~1 KB) */
	for (unsigned i = 0; i < n; i++) {
		int w = snprintf(buf + len, sizeof(buf) - len,
				 "sluiced/smtpd[%d]: %s\n", m->pid, (char *)p[i]);

		if (w > 0)
			len += (size_t)w < sizeof(buf) - len ? (size_t)w
							     : sizeof(buf) - len - 1;
		free(p[i]);
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = write(STDERR_FILENO, buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (n)
		atomic_fetch_add(&m->st.log_lines, n);
	return n;
}

/* mstore_aux_main - the aux thread: log lines and AUTH checks */
static void *mstore_aux_main(void *arg)
{
	struct mstore *m = arg;
	struct stor_dir_reader *rd = NULL;
	struct timespec ts = { 0, 500000 };   /* idle: 0.5 ms */

	if (stor_dir_reader_open(m->dir, &rd) != 0)
		rd = NULL;
	for (;;) {
		void *p[MSTORE_BURST];
		unsigned n = mstore_aux_logs(m);
		unsigned k = rte_ring_sc_dequeue_burst(m->authq, p,
						       MSTORE_BURST, NULL);

		for (unsigned i = 0; i < k; i++)
			mstore_aux_auth(m, rd, p[i]);
		if (n + k == 0) {
			if (atomic_load(&m->aux_stop))
				break;
			nanosleep(&ts, NULL);
		}
	}
	if (rd)
		stor_dir_reader_close(rd);
	return NULL;
}

int mstore_open(struct mstore *m, const struct cfg *c, unsigned n_io,
		char *err, size_t errlen)
{
	const struct cfg_smtp *s = &c->smtp;
	struct stor_queue_conf qc = { 0 };
	struct stor_dir_conf dc = { 0 };
	struct stor_writer_conf wc = { 0 };
	struct stor_recover_report rep;
	char name[32];
	int rc;

	memset(m, 0, sizeof(*m));
	m->n_io = n_io;
	m->xdone_size = s->max_sessions_per_lcore * 2 + 8;
	atomic_init(&m->aux_stop, false);
	if (mkdir(s->state_dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: [storage] state_dir: mkdir %s: %s",
			 c->path, s->state_dir, strerror(errno));
		return -1;
	}
	snprintf(m->queue_dir, sizeof(m->queue_dir), "%s/queue", s->state_dir);
	snprintf(m->dir_dir, sizeof(m->dir_dir), "%s/directory", s->state_dir);
	qc.path = m->queue_dir;
	qc.map_size = (size_t)s->map_size_mb << 20;
	qc.high_watermark = s->high_watermark;
	qc.durability = (enum stor_durability)s->durability;
	qc.log = mstore_stor_log;
	/* every io lcore's delivery slots hold a reader each (deliver.h) */
	qc.max_readers = 126 + 40 * n_io;
	rc = stor_queue_open(&qc, &m->q);
	if (rc != 0) {
		snprintf(err, errlen, "queue %s: %s", m->queue_dir,
			 stor_strerror(rc));
		return -1;
	}
	rc = stor_recover_run(m->q, NULL, &rep);
	if (rc != 0) {
		snprintf(err, errlen, "queue %s: recovery: %s", m->queue_dir,
			 stor_strerror(rc));
		return -1;
	}
	m->recovered_msgs = rep.messages;
	log_info("queue %s: %llu messages (%llu pending), %llu quarantined, "
		 "durability %s", m->queue_dir,
		 (unsigned long long)rep.messages,
		 (unsigned long long)rep.pending,
		 (unsigned long long)rep.quarantined,
		 stor_queue_durability_name(qc.durability));
	dc.path = m->dir_dir;
	rc = stor_dir_open(&dc, &m->dir);
	if (rc != 0) {
		snprintf(err, errlen, "directory %s: %s", m->dir_dir,
			 stor_strerror(rc));
		return -1;
	}
	wc.lab_commit_delay_us = s->lab_commit_delay_ms * 1000u;
	wc.debug_on = mstore_storage_debug;
	if (wc.lab_commit_delay_us)
		log_warn("LAB ONLY: every queue commit is delayed by %u ms "
			 "([storage] lab_commit_delay_ms)", s->lab_commit_delay_ms);
	rc = stor_writer_new(m->q, &wc, &m->w);
	if (rc != 0) {
		snprintf(err, errlen, "queue writer: %s", stor_strerror(rc));
		return -1;
	}
	for (unsigned p = 0; p < PRIO_LEVELS; p++) {
		snprintf(name, sizeof(name), "sl_prio%u", p);
		m->prio[p] = mstore_ring(name, s->ring_size, 0, err, errlen);
		if (!m->prio[p])
			return -1;
	}
	for (unsigned i = 0; i < n_io; i++) {
		snprintf(name, sizeof(name), "sl_done%u", i);
		m->done[i] = mstore_ring(name, s->max_sessions_per_lcore * 2 + 8,
					 RING_F_SC_DEQ, err, errlen);
		if (!m->done[i])
			return -1;
	}
	m->authq = mstore_ring("sl_auth", MSTORE_AUTHQ, RING_F_SC_DEQ, err,
			       errlen);
	m->logq = mstore_ring("sl_log", MSTORE_LOGQ, RING_F_SC_DEQ, err,
			      errlen);
	if (!m->authq || !m->logq)
		return -1;
	for (unsigned i = 0; i < n_io; i++) {
		snprintf(name, sizeof(name), "sl_djob%u", i);
		m->djob[i] = mstore_ring(name, MSTORE_DJOBS,
					 RING_F_SP_ENQ | RING_F_SC_DEQ, err,
					 errlen);
		if (!m->djob[i])
			return -1;
	}
	m->dres = mstore_ring("sl_dres", MSTORE_DJOBS * (n_io ? n_io : 1),
			      RING_F_SC_DEQ, err, errlen);
	m->sched_new = mstore_ring("sl_schednew", MSTORE_SCHED_NEW,
				   RING_F_SC_DEQ, err, errlen);
	if (!m->dres || !m->sched_new)
		return -1;
	atomic_init(&m->sched_rescan, false);
	return 0;
}

/* mstore_start - writer and aux threads (after producers are made) */
int mstore_start(struct mstore *m, char *err, size_t errlen)
{
	int rc = stor_writer_start(m->w);

	if (rc != 0) {
		snprintf(err, errlen, "queue writer thread: %s",
			 stor_strerror(rc));
		return -1;
	}
	m->writer_started = true;
	if (m->xdir) {
		if (m->xdir->start(m->xdir_ctx, err, errlen) < 0)
			return -1;
		m->xdir_started = true;
	}
	rc = pthread_create(&m->aux, NULL, mstore_aux_main, m);
	if (rc != 0) {
		snprintf(err, errlen, "aux thread: %s", strerror(rc));
		return -1;
	}
	pthread_setname_np(m->aux, "sluice-aux");
	m->aux_started = true;
	return 0;
}

struct stor_producer *mstore_producer(struct mstore *m, char *err,
				      size_t errlen)
{
	struct stor_producer *p = NULL;
	int rc = stor_writer_producer(m->w, 256, &p);

	if (rc != 0) {
		snprintf(err, errlen, "queue writer producer: %s",
			 stor_strerror(rc));
		return NULL;
	}
	return p;
}

void mstore_stop(struct mstore *m)
{
	if (m->xdir && m->xdir_started) {
		m->xdir->stop(m->xdir_ctx);
		m->xdir_started = false;
	}
	if (m->aux_started) {
		atomic_store(&m->aux_stop, true);
		pthread_join(m->aux, NULL);
		m->aux_started = false;
	}
	if (m->w && m->writer_started) {
		stor_writer_stop(m->w);
		m->writer_started = false;
	}
}

void mstore_close(struct mstore *m)
{
	void *p;

	mstore_stop(m);
	if (m->logq)
		while (rte_ring_sc_dequeue(m->logq, &p) == 0)
			free(p);
	if (m->w)
		stor_writer_free(m->w);
	m->w = NULL;
	for (unsigned i = 0; i < PRIO_LEVELS; i++)
		rte_ring_free(m->prio[i]);
	for (unsigned i = 0; i < m->n_io; i++) {
		rte_ring_free(m->done[i]);
		rte_ring_free(m->djob[i]);
	}
	if (m->xdir)
		m->xdir->free(m->xdir_ctx);
	m->xdir = NULL;
	m->xdir_ctx = NULL;
	for (unsigned i = 0; i < m->n_io; i++)
		rte_ring_free(m->xdone[i]);
	rte_ring_free(m->dres);
	rte_ring_free(m->sched_new);
	rte_ring_free(m->authq);
	rte_ring_free(m->logq);
	if (m->dir)
		stor_dir_close(m->dir);
	if (m->q)
		stor_queue_close(m->q);
	memset(m->prio, 0, sizeof(m->prio));
	m->dir = NULL;
	m->q = NULL;
}
