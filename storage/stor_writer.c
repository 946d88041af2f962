/*
 * stor_writer - group commit over LMDB (contract in stor_writer.h).
 *
 * One round: gather submissions from every producer ring (round robin) until
 * a batch limit closes the batch or the rings are empty (and the optional
 * delay passed), apply them in one write txn, commit, then complete them.
 * run_batch() is the only place results are decided: a submission's result
 * is 0 only if the mdb_txn_commit() that carried it returned 0.
 *
 * Lab fault injection: with lab_commit_delay_us set, the writer thread
 * (never stor_writer_poll) sleeps that long between gathering a non-empty
 * batch and committing it.
 *
 * Sleeping: an idle writer thread waits on a futex; a producer that sees
 * the writer sleeping after enqueueing wakes it (fences on both sides).
 * Producers waiting for completions use the same scheme per producer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <rte_ring.h>

#include "stor_err.h"
#include "stor_writer.h"

#define GATHER_BURST 32
/* pages a txn that stores messages must leave allocatable: room for the
 * bookkeeping that frees space (deletes, updates) and for a restart (boot
 * generation, recovery) even after messages filled the map */
#define HEADROOM_PAGES 32

struct stor_producer {
	struct rte_ring *sub;       /* producer -> writer */
	struct rte_ring *done;      /* writer -> producer */
	struct stor_writer *w;
	unsigned depth;
	unsigned outstanding;       /* producer thread only */
	uint32_t done_seq;          /* futex word */
	uint32_t waiting;
};

struct stor_writer {
	struct stor_queue *q;
	struct stor_writer_conf c;
	struct stor_producer *prod[STOR_WRITER_MAX_PRODUCERS];
	unsigned nprod;             /* atomic, release after prod[] set */
	pthread_mutex_t reg;
	pthread_t th;
	int running;
	int stop;                   /* atomic */
	int stopped;                /* atomic */
	uint32_t sub_seq;           /* futex word */
	uint32_t sleeping;
	unsigned rr;
	struct stor_sub **batch;
	unsigned n;
	size_t bytes;
	uint64_t base_used;         /* exact usage when last counted in this txn */
	uint64_t added;             /* estimated cost of enqueues since then */
	uint64_t used;              /* usage after the last commit (published) */
	uint64_t need;              /* cost of the last refused message, 0 = none */
	uint64_t need_lim;          /* ... usage must drop to need_lim - need */
	int boot_ok;                /* boot generation durable: may store messages */
	unsigned stored;            /* enqueues stored in the open txn */
	int ticked;                 /* no commit but ticks since the last tick */
	struct stor_writer_stats st;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void futex_wait(uint32_t *a, uint32_t v, uint64_t timeout_ns)
{
	struct timespec ts = { (time_t)(timeout_ns / 1000000000ull),
			       (long)(timeout_ns % 1000000000ull) };
	syscall(SYS_futex, a, FUTEX_WAIT_PRIVATE, v, &ts, NULL, 0);
}

static void futex_wake(uint32_t *a)
{
	__atomic_add_fetch(a, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, a, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* ring_new - SP/SC rte_ring in ordinary memory holding >= depth pointers */
static struct rte_ring *ring_new(const char *name, unsigned depth)
{
	unsigned count = rte_align32pow2(depth + 1);
	ssize_t sz = rte_ring_get_memsize(count);
	if (sz < 0)
		return NULL;
	size_t al = ((size_t)sz + RTE_CACHE_LINE_SIZE - 1) & ~(size_t)(RTE_CACHE_LINE_SIZE - 1);
	struct rte_ring *r = aligned_alloc(RTE_CACHE_LINE_SIZE, al);
	if (r && rte_ring_init(r, name, count, RING_F_SP_ENQ | RING_F_SC_DEQ)) {
		free(r);
		r = NULL;
	}
	return r;
}

int stor_writer_new(struct stor_queue *q, const struct stor_writer_conf *c,
		    struct stor_writer **out)
{
	*out = NULL;
	if (!q || !stor_queue_recovered(q))
		return EINVAL;
	struct stor_writer *w = calloc(1, sizeof *w);
	if (!w)
		return ENOMEM;
	w->q = q;
	if (c)
		w->c = *c;
	if (!w->c.batch_max_ops)
		w->c.batch_max_ops = 4096;
	if (!w->c.batch_max_bytes)
		w->c.batch_max_bytes = (size_t)32 << 20;
	w->batch = calloc(w->c.batch_max_ops + GATHER_BURST, sizeof *w->batch);
	if (!w->batch) {
		free(w);
		return ENOMEM;
	}
	pthread_mutex_init(&w->reg, NULL);
	if (stor_queue_usage(q, &w->used, NULL, NULL))
		w->used = 0;
	stor_queue_publish_used(q, w->used, stor_queue_boot_pending(q));
	*out = w;
	return 0;
}

int stor_writer_producer(struct stor_writer *w, unsigned depth,
			 struct stor_producer **out)
{
	*out = NULL;
	if (!depth || depth > (1u << 20))
		return EINVAL;
	struct stor_producer *p = calloc(1, sizeof *p);
	if (!p)
		return ENOMEM;
	p->w = w;
	p->depth = depth;
	p->sub = ring_new("stor_sub", depth);
	p->done = ring_new("stor_done", depth);
	if (!p->sub || !p->done) {
		free(p->sub);
		free(p->done);
		free(p);
		return ENOMEM;
	}
	pthread_mutex_lock(&w->reg);
	unsigned n = __atomic_load_n(&w->nprod, __ATOMIC_RELAXED);
	if (n == STOR_WRITER_MAX_PRODUCERS) {
		pthread_mutex_unlock(&w->reg);
		free(p->sub);
		free(p->done);
		free(p);
		return ENOSPC;
	}
	w->prod[n] = p;
	__atomic_store_n(&w->nprod, n + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&w->reg);
	*out = p;
	return 0;
}

/* sub_cost - bytes a submission adds to a batch (limits and watermark) */
static size_t sub_cost(struct stor_sub *s, size_t psize)
{
	if (s->op != STOR_OP_ENQUEUE || !s->u.enq.msg)
		return 256;
	size_t b = STOR_REC_HDR;
	for (unsigned i = 0; i < s->u.enq.iovcnt; i++)
		b += s->u.enq.iov[i].iov_len;
	if (b > psize / 2)
		b = (b + psize - 1) / psize * psize;   /* overflow pages */
	return b + stor_rec_msg_size(s->u.enq.msg) + 192;
}

/* gather_once - take what the rings hold, within the batch limits */
static unsigned gather_once(struct stor_writer *w)
{
	unsigned np = __atomic_load_n(&w->nprod, __ATOMIC_ACQUIRE), got = 0;
	size_t psize = 4096;
	for (unsigned k = 0; k < np; k++) {
		struct stor_producer *p = w->prod[(w->rr + k) % np];
		while (w->n < w->c.batch_max_ops && w->bytes < w->c.batch_max_bytes) {
			unsigned room = w->c.batch_max_ops - w->n;
			unsigned m = rte_ring_sc_dequeue_burst(p->sub,
				(void **)(w->batch + w->n),
				room < GATHER_BURST ? room : GATHER_BURST, NULL);
			for (unsigned i = 0; i < m; i++) {
				struct stor_sub *s = w->batch[w->n + i];
				s->cost = sub_cost(s, psize);
				w->bytes += s->cost;
			}
			w->n += m;
			got += m;
			if (m < GATHER_BURST)
				break;
		}
	}
	if (np)
		w->rr = (w->rr + 1) % np;
	return got;
}

static int rings_empty(struct stor_writer *w)
{
	unsigned np = __atomic_load_n(&w->nprod, __ATOMIC_ACQUIRE);
	for (unsigned k = 0; k < np; k++)
		if (!rte_ring_empty(w->prod[k]->sub))
			return 0;
	return 1;
}

/* writer_sleep - wait for a producer's wake-up (or timeout) */
static void writer_sleep(struct stor_writer *w, uint64_t timeout_ns)
{
	uint32_t seq = __atomic_load_n(&w->sub_seq, __ATOMIC_SEQ_CST);
	__atomic_store_n(&w->sleeping, 1, __ATOMIC_SEQ_CST);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (rings_empty(w) && !__atomic_load_n(&w->stop, __ATOMIC_SEQ_CST))
		futex_wait(&w->sub_seq, seq, timeout_ns);
	__atomic_store_n(&w->sleeping, 0, __ATOMIC_SEQ_CST);
}

/* clean - apply() failed without writing anything (or wrote a consistent
 * quarantine): keep the txn */
static int clean(int rc)
{
	return rc == 0 || rc == MDB_KEYEXIST || rc == MDB_NOTFOUND ||
	       rc == EINVAL || rc == STOR_EFULL || rc == STOR_ECORRUPT;
}

/* refuse - remember a refused message: the queue stays "full" until a
 * commit leaves usage + cost <= lim */
static int refuse(struct stor_writer *w, struct stor_sub *s, uint64_t lim)
{
	w->need = s->cost;
	w->need_lim = lim;
	return STOR_EFULL;
}

/* admit - watermark check for one ENQUEUE. Uses the running estimate
 * (exact count at txn start + estimated cost of what this txn stored) and
 * recounts exactly before refusing, so a refusal is always based on an
 * exact count that includes this txn's own deletions. */
static int admit(struct stor_writer *w, MDB_txn *t, struct stor_sub *s)
{
	uint64_t wm = stor_queue_watermark(w->q);
	if (!w->boot_ok)
		return STOR_EFULL;   /* stor_queue_full() says so while pending */
	if (w->base_used + w->added + s->cost > wm) {
		uint64_t used;
		int rc = stor_queue_used_in(w->q, t, &used);
		if (rc)
			return rc;
		w->base_used = used;
		w->added = 0;
		if (used + s->cost > wm)
			return refuse(w, s, wm);
	}
	return 0;
}

/* apply - one submission into the open txn */
static int apply(struct stor_writer *w, MDB_txn *t, struct stor_sub *s)
{
	struct stor_queue *q = w->q;
	switch (s->op) {
	case STOR_OP_ENQUEUE: {
		if (!s->u.enq.msg || (s->u.enq.iovcnt && !s->u.enq.iov))
			return EINVAL;
		int rc = admit(w, t, s);
		if (rc)
			return rc;
		size_t len = 0;
		for (unsigned i = 0; i < s->u.enq.iovcnt; i++)
			len += s->u.enq.iov[i].iov_len;
		rc = stor_queue_txn_enqueue(q, t, s->qid, s->u.enq.msg,
					    s->u.enq.iov, s->u.enq.iovcnt, len);
		if (!rc) {
			w->stored++;
			w->added += s->cost;
			if (s->cost >= w->need)
				w->need = 0;    /* one that size fits again */
		}
		return rc;
	}
	case STOR_OP_UPDATE:
		return stor_queue_txn_update(q, t, s->qid, &s->u.upd);
	case STOR_OP_DELETE:
		return stor_queue_txn_delete(q, t, s->qid);
	case STOR_OP_DEST:
		return stor_queue_txn_dest(q, t, s->u.dest.name, s->u.dest.state);
	default:
		return EINVAL;
	}
}

/* publish - after a commit (or a refusal): usage and the full flag */
static void publish(struct stor_writer *w)
{
	if (w->need && w->used + w->need <= w->need_lim)
		w->need = 0;
	stor_queue_publish_used(w->q, w->used,
				w->need != 0 || stor_queue_boot_pending(w->q));
}

static int space_error(int rc)
{
	return rc == MDB_MAP_FULL || rc == MDB_TXN_FULL;
}

static void run_batch_(struct stor_writer *w, unsigned lo, unsigned hi,
		       int may_tick);

/* run_batch - apply batch[lo,hi) in one txn and commit; on a write error
 * abort and retry in halves; sets every result */
static void run_batch(struct stor_writer *w, unsigned lo, unsigned hi)
{
	run_batch_(w, lo, hi, 1);
}

static void run_batch_(struct stor_writer *w, unsigned lo, unsigned hi,
		       int may_tick)
{
	MDB_txn *t;
	unsigned i;
	int at_commit = 0;
	/* a boot generation the map had no room for at open goes first */
	w->boot_ok = !stor_queue_boot_pending(w->q) ||
		     !stor_queue_persist_boot(w->q);
	int rc = mdb_txn_begin(stor_queue_env(w->q), NULL, 0, &t);
	if (!rc && (rc = stor_queue_used_in(w->q, t, &w->base_used)))
		mdb_txn_abort(t);
	if (rc) {
		for (i = lo; i < hi; i++)
			w->batch[i]->result = rc;
		return;
	}
	uint64_t start_used = w->base_used, used;
	w->added = 0;
	w->stored = 0;
	for (i = lo; i < hi; i++) {
		struct stor_sub *s = w->batch[i];
		rc = apply(w, t, s);
		s->result = rc;
		if (clean(rc))
			continue;
		mdb_txn_abort(t);
		goto failed;
	}
	/* messages may not take the last pages: MDB_MAP_FULL if they do */
	if (w->stored &&
	    (rc = stor_queue_headroom(w->q, t, HEADROOM_PAGES))) {
		mdb_txn_abort(t);
		goto failed;
	}
	at_commit = 1;
	if (stor_queue_used_in(w->q, t, &used))
		used = w->base_used + w->added;
	uint64_t now = now_ns(), took;
	rc = mdb_txn_commit(t);
	took = now_ns() - now;
	w->st.commit_ns += took;
	if (!rc && w->c.debug_on && w->c.debug_on())
		stor_queue_log(w->q, STOR_LOG_DEBUG, "committed %u submission(s) "
			       "in %.3f ms, %llu KiB of the map in use", hi - lo,
			       took / 1e6, (unsigned long long)(used >> 10));
	if (!rc) {
		w->used = used;
		w->ticked = 0;
		publish(w);
		w->st.batches++;
		if (hi - lo > w->st.max_batch)
			w->st.max_batch = hi - lo;
		return;
	}
failed:
	if (hi - lo > 1 && (space_error(rc) || !at_commit)) {
		/* too big for the map, or one submission failed a write:
		 * retry in halves so the rest still commit */
		unsigned mid = lo + (hi - lo) / 2;
		w->st.splits++;
		run_batch_(w, lo, mid, may_tick);
		run_batch_(w, mid, hi, may_tick);
		return;
	}
	if (space_error(rc) && may_tick && !w->ticked &&
	    w->batch[lo]->op == STOR_OP_ENQUEUE) {
		/* pages the last two commits freed are not reusable yet
		 * (LMDB): two minimal commits make them so, then one retry */
		w->ticked = 1;
		if (!stor_queue_tick(w->q) && !stor_queue_tick(w->q)) {
			run_batch_(w, lo, hi, 0);
			return;
		}
	}
	if (space_error(rc)) {
		rc = STOR_EFULL;
		if (w->batch[lo]->op == STOR_OP_ENQUEUE) {
			/* MDB_MAP_FULL on top of start_used: full until
			 * deletions free at least this message's size */
			refuse(w, w->batch[lo], start_used);
			publish(w);
		}
	}
	for (unsigned j = lo; j < hi; j++)
		w->batch[j]->result = rc;   /* nothing of this txn is on disk */
	if (rc != STOR_EFULL)
		stor_queue_log(w->q, STOR_LOG_ERR, "queue write failed: %s",
			       stor_strerror(rc));
}

/* complete - hand every submission of the batch back to its producer */
static void complete(struct stor_writer *w)
{
	for (unsigned i = 0; i < w->n; i++) {
		struct stor_sub *s = w->batch[i];
		w->st.ops++;
		if (s->result == 0)
			w->st.committed++;
		else if (s->result == STOR_EFULL)
			w->st.full++;
		rte_ring_sp_enqueue(s->prod->done, s);   /* sized for depth: cannot fail */
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	unsigned np = __atomic_load_n(&w->nprod, __ATOMIC_ACQUIRE);
	for (unsigned k = 0; k < np; k++)
		if (__atomic_load_n(&w->prod[k]->waiting, __ATOMIC_SEQ_CST) &&
		    !rte_ring_empty(w->prod[k]->done))
			futex_wake(&w->prod[k]->done_seq);
	w->n = 0;
	w->bytes = 0;
}

/* lab_delay - LAB ONLY: hold the gathered batch lab_commit_delay_us before
 * its commit (a disk that falls behind); in slices, cut short by stop so a
 * stopping writer finishes at full speed */
static void lab_delay(struct stor_writer *w)
{
	uint64_t end = now_ns() + (uint64_t)w->c.lab_commit_delay_us * 1000;

	for (;;) {
		if (__atomic_load_n(&w->stop, __ATOMIC_SEQ_CST))
			return;
		uint64_t now = now_ns();
		if (now >= end)
			return;
		uint64_t left = end - now;
		if (left > 10 * 1000 * 1000ull)
			left = 10 * 1000 * 1000ull;
		struct timespec ts = { 0, (long)left };
		nanosleep(&ts, NULL);
	}
}

/* round - gather (waiting up to the batch delay if asked), commit, complete */
static unsigned round_(struct stor_writer *w, int may_wait)
{
	if (!gather_once(w))
		return 0;
	if (may_wait && w->c.batch_max_delay_us) {
		uint64_t end = now_ns() + (uint64_t)w->c.batch_max_delay_us * 1000;
		for (;;) {
			if (w->n >= w->c.batch_max_ops || w->bytes >= w->c.batch_max_bytes)
				break;
			uint64_t now = now_ns();
			if (now >= end)
				break;
			if (!gather_once(w))
				writer_sleep(w, end - now);
		}
	}
	unsigned n = w->n;
	if (may_wait && w->c.lab_commit_delay_us)
		lab_delay(w);
	run_batch(w, 0, n);
	complete(w);
	return n;
}

unsigned stor_writer_poll(struct stor_writer *w)
{
	return round_(w, 0);
}

static void *writer_main(void *arg)
{
	struct stor_writer *w = arg;
	for (;;) {
		if (round_(w, 1))
			continue;
		if (__atomic_load_n(&w->stop, __ATOMIC_SEQ_CST) && rings_empty(w))
			break;
		writer_sleep(w, 1000 * 1000 * 1000ull);
	}
	return NULL;
}

int stor_writer_start(struct stor_writer *w)
{
	if (w->running)
		return EINVAL;
	int rc = pthread_create(&w->th, NULL, writer_main, w);
	if (rc)
		return rc;
	pthread_setname_np(w->th, "stor-writer");
	w->running = 1;
	return 0;
}

void stor_writer_stop(struct stor_writer *w)
{
	__atomic_store_n(&w->stop, 1, __ATOMIC_SEQ_CST);
	if (w->running) {
		futex_wake(&w->sub_seq);
		pthread_join(w->th, NULL);
		w->running = 0;
	} else {
		while (stor_writer_poll(w))
			;
	}
	__atomic_store_n(&w->stopped, 1, __ATOMIC_SEQ_CST);
	/* anything that slipped in after the last round is not stored */
	unsigned np = __atomic_load_n(&w->nprod, __ATOMIC_ACQUIRE);
	for (unsigned k = 0; k < np; k++) {
		struct stor_sub *s;
		while (rte_ring_sc_dequeue(w->prod[k]->sub, (void **)&s) == 0) {
			s->result = STOR_ESTOPPED;
			rte_ring_sp_enqueue(w->prod[k]->done, s);
		}
		futex_wake(&w->prod[k]->done_seq);
	}
}

void stor_writer_free(struct stor_writer *w)
{
	if (!w)
		return;
	if (!__atomic_load_n(&w->stopped, __ATOMIC_SEQ_CST))
		stor_writer_stop(w);
	for (unsigned k = 0; k < w->nprod; k++) {
		free(w->prod[k]->sub);
		free(w->prod[k]->done);
		free(w->prod[k]);
	}
	pthread_mutex_destroy(&w->reg);
	free(w->batch);
	free(w);
}

void stor_writer_stats(struct stor_writer *w, struct stor_writer_stats *s)
{
	*s = w->st;   /* plain reads: figures may be a round stale */
}

int stor_producer_submit(struct stor_producer *p, struct stor_sub *s)
{
	struct stor_writer *w = p->w;
	if (!s || s->op < STOR_OP_ENQUEUE || s->op > STOR_OP_DEST)
		return EINVAL;
	if (p->outstanding >= p->depth)
		return STOR_EAGAIN;
	if (__atomic_load_n(&w->stop, __ATOMIC_SEQ_CST))
		return STOR_ESTOPPED;
	s->prod = p;
	s->result = STOR_ESTOPPED;
	if (rte_ring_sp_enqueue(p->sub, s))
		return STOR_EAGAIN;
	p->outstanding++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&w->sleeping, __ATOMIC_SEQ_CST))
		futex_wake(&w->sub_seq);
	return 0;
}

unsigned stor_producer_poll(struct stor_producer *p, struct stor_sub **out,
			    unsigned n)
{
	unsigned m = rte_ring_sc_dequeue_burst(p->done, (void **)out, n, NULL);
	p->outstanding -= m;
	return m;
}

unsigned stor_producer_wait(struct stor_producer *p, uint64_t timeout_us)
{
	unsigned c = rte_ring_count(p->done);
	if (c || !p->outstanding)
		return c;
	uint32_t seq = __atomic_load_n(&p->done_seq, __ATOMIC_SEQ_CST);
	__atomic_store_n(&p->waiting, 1, __ATOMIC_SEQ_CST);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (rte_ring_empty(p->done))
		futex_wait(&p->done_seq, seq, timeout_us * 1000);
	__atomic_store_n(&p->waiting, 0, __ATOMIC_SEQ_CST);
	return rte_ring_count(p->done);
}

unsigned stor_producer_outstanding(const struct stor_producer *p)
{
	return p->outstanding;
}
