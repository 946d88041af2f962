/*
 * bench_storage - durable enqueue throughput of the storage writer.
 *
 * For 1 KB, 10 KB and 100 KB bodies: P producer threads keep up to D
 * submissions each outstanding (like many SMTP sessions ending DATA at
 * once) against the real writer in durability mode `full` (fsync per
 * commit), first with group commit (default batch limits), then with one
 * transaction per message (batch_max_ops = 1). Counts submissions reported
 * committed in a fixed time window; prints a table, then one `summary:`
 * line. Runs on a fresh environment per row under --dir (default
 * /var/tmp, refused if tmpfs) after a syncfs() so rows do not inherit each
 * other's writeback, and removes it afterwards.
 *
 * usage: sluice-bench-storage [--dir D] [--seconds S] [--producers P]
 *                             [--depth D] [--mode full|unsafe-...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "stor_err.h"
#include "stor_queue.h"
#include "stor_recover.h"
#include "stor_writer.h"

#define TMPFS_MAGIC 0x01021994

struct run {
	struct stor_queue *q;
	struct stor_writer *w;
	size_t body;
	unsigned depth;
	volatile int stop;
	uint64_t committed, failed;
	pthread_mutex_t mu;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *producer(void *a)
{
	struct run *r = a;
	struct stor_producer *p;
	if (stor_writer_producer(r->w, r->depth, &p))
		return NULL;
	struct stor_sub *subs = calloc(r->depth, sizeof *subs), **free_ = calloc(r->depth, sizeof *free_);
	struct stor_sub **out = calloc(r->depth, sizeof *out);
	char *body = malloc(r->body);
	for (size_t i = 0; i < r->body; i++)
		body[i] = (char)('a' + (i * 7 + (size_t)pthread_self()) % 26);
	struct iovec iov = { body, r->body };
	struct stor_rcpt rc = { .addr = STOR_STR("user@example.net"), .dest = STOR_STR("example.net") };
	struct stor_msg m = { .priority = 3, .sender = STOR_STR("sender@example.org"),
			      .client = STOR_STR("client.example [192.0.2.1]"),
			      .nrcpt = 1, .rcpt = &rc };
	unsigned nfree = r->depth;
	for (unsigned i = 0; i < r->depth; i++)
		free_[i] = &subs[i];
	uint64_t ok = 0, bad = 0;
	while (!r->stop || stor_producer_outstanding(p)) {
		while (!r->stop && nfree) {
			struct stor_sub *s = free_[--nfree];
			*s = (struct stor_sub){ .op = STOR_OP_ENQUEUE, .qid = stor_queue_new_qid(r->q) };
			s->u.enq.msg = &m;
			s->u.enq.iov = &iov;
			s->u.enq.iovcnt = 1;
			if (stor_producer_submit(p, s)) {
				nfree++;
				break;
			}
		}
		stor_producer_wait(p, 10000);
		unsigned n = stor_producer_poll(p, out, r->depth);
		for (unsigned i = 0; i < n; i++) {
			if (out[i]->result == 0)
				ok++;
			else
				bad++;
			free_[nfree++] = out[i];
		}
		if (!r->stop) {
			pthread_mutex_lock(&r->mu);
			r->committed += ok;
			r->failed += bad;
			pthread_mutex_unlock(&r->mu);
			ok = bad = 0;
		}
	}
	free(subs);
	free(free_);
	free(out);
	free(body);
	return NULL;
}

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
	(void)sb; (void)f; (void)ftw;
	return remove(p);
}

struct result { double rate, avg_batch, commit_ms; uint64_t n, failed; };

/* one_run - fresh env, P producers, S seconds; committed msgs/s */
static int one_run(const char *base, enum stor_durability mode, size_t body,
		   unsigned nprod, unsigned depth, uint32_t batch_ops,
		   double secs, struct result *res)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s/sluice-bench-storage-XXXXXX", base);
	if (!mkdtemp(dir))
		return errno;
	/* start every row with no dirty data from the previous one in the
	 * page cache, so its writeback does not slow this row's fsyncs */
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
	struct stor_queue_conf qc = { .path = dir, .map_size = (size_t)16 << 30,
				      .durability = mode };
	struct run r = { .body = body, .depth = depth };
	pthread_mutex_init(&r.mu, NULL);
	int rc = stor_queue_open(&qc, &r.q);
	if (!rc)
		rc = stor_recover_run(r.q, NULL, NULL);
	struct stor_writer_conf wc = { .batch_max_ops = batch_ops };
	if (!rc)
		rc = stor_writer_new(r.q, &wc, &r.w);
	if (!rc)
		rc = stor_writer_start(r.w);
	if (rc) {
		fprintf(stderr, "bench: %s: %s\n", dir, stor_strerror(rc));
		return rc;
	}
	pthread_t th[64];
	for (unsigned i = 0; i < nprod; i++)
		pthread_create(&th[i], NULL, producer, &r);
	usleep(200 * 1000);                /* warm-up, not counted */
	pthread_mutex_lock(&r.mu);
	struct stor_writer_stats s0;
	stor_writer_stats(r.w, &s0);
	uint64_t c0 = r.committed;
	double t0 = now_s();
	pthread_mutex_unlock(&r.mu);
	usleep((useconds_t)(secs * 1e6));
	pthread_mutex_lock(&r.mu);
	uint64_t c1 = r.committed;
	double t1 = now_s();
	struct stor_writer_stats s1;
	stor_writer_stats(r.w, &s1);
	res->failed = r.failed;
	r.stop = 1;
	pthread_mutex_unlock(&r.mu);
	for (unsigned i = 0; i < nprod; i++)
		pthread_join(th[i], NULL);
	stor_writer_free(r.w);
	stor_queue_close(r.q);
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	res->n = c1 - c0;
	res->rate = (double)(c1 - c0) / (t1 - t0);
	uint64_t nb = s1.batches - s0.batches;
	res->avg_batch = nb ? (double)(s1.committed - s0.committed) / (double)nb : 0;
	res->commit_ms = nb ? (double)(s1.commit_ns - s0.commit_ns) / (double)nb / 1e6 : 0;
	return 0;
}

int main(int argc, char **argv)
{
	const char *base = "/var/tmp";
	double secs = 2.0;
	unsigned nprod = 4, depth = 256;
	enum stor_durability mode = STOR_DUR_FULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			base = argv[++i];
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			secs = atof(argv[++i]);
		else if (!strcmp(argv[i], "--producers") && i + 1 < argc)
			nprod = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--depth") && i + 1 < argc)
			depth = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
			if (stor_queue_durability_parse(argv[++i], &mode)) {
				fprintf(stderr, "bench: unknown mode %s\n", argv[i]);
				return 2;
			}
		} else {
			fprintf(stderr, "usage: %s [--dir D] [--seconds S] [--producers P] "
				"[--depth D] [--mode full|unsafe-nometasync|unsafe-nosync]\n", argv[0]);
			return 2;
		}
	}
	if (secs <= 0 || secs > 10 || !nprod || nprod > 64 || !depth || depth > 4096) {
		fprintf(stderr, "bench: --seconds 0..10, --producers 1..64, --depth 1..4096\n");
		return 2;
	}
	struct statfs sf;
	if (statfs(base, &sf)) {
		perror(base);
		return 2;
	}
	if ((unsigned long)sf.f_type == TMPFS_MAGIC) {
		fprintf(stderr, "bench: %s is tmpfs; durable figures need a disk (--dir)\n", base);
		return 2;
	}
	printf("storage bench: dir %s (fs magic 0x%lx, not tmpfs), durability %s, "
	       "%u producer threads x %u outstanding, writer on its own thread\n",
	       base, (unsigned long)sf.f_type, stor_queue_durability_name(mode),
	       nprod, depth);
	printf("group commit limits: 4096 msgs / 32 MiB / no delay (a batch takes what "
	       "arrived during the previous commit); single: 1 msg per txn\n");
	printf("window: %.1f s per group row, %.1f s per single row, after 0.2 s warm-up; "
	       "1 recipient, fresh env per row\n\n", secs, secs * 0.6);
	printf("%-7s %-7s %12s %10s %11s %10s\n", "body", "commit", "msgs/s", "MB/s",
	       "msgs/txn", "ms/commit");
	size_t sizes[3] = { 1024, 10240, 102400 };
	double g[3], s1[3];
	for (int i = 0; i < 3; i++) {
		struct result rg, rs;
		if (one_run(base, mode, sizes[i], nprod, depth, 0, secs, &rg) ||
		    one_run(base, mode, sizes[i], nprod, depth, 1, secs * 0.6, &rs))
			return 1;
		g[i] = rg.rate;
		s1[i] = rs.rate;
		printf("%-7s %-7s %12.0f %10.1f %11.1f %10.3f%s\n", i == 0 ? "1KB" : i == 1 ? "10KB" : "100KB",
		       "group", rg.rate, rg.rate * sizes[i] / 1e6, rg.avg_batch, rg.commit_ms,
		       rg.failed ? "  (some refused!)" : "");
		printf("%-7s %-7s %12.0f %10.1f %11.1f %10.3f\n", "", "single", rs.rate,
		       rs.rate * sizes[i] / 1e6, rs.avg_batch, rs.commit_ms);
		printf("%-7s %-7s %11.1fx\n", "", "ratio", rs.rate > 0 ? rg.rate / rs.rate : 0);
		fflush(stdout);
	}
	int ok = g[0] >= 50000 && g[1] >= 20000 && g[0] >= 20 * s1[0] && g[1] >= 20 * s1[1];
	printf("summary: storage %s group commit 1KB %.0f/s (%.1fx single), 10KB %.0f/s "
	       "(%.1fx), 100KB %.0f/s (%.1fx); goals 1KB>=50000 10KB>=20000 >=20x: %s\n",
	       stor_queue_durability_name(mode), g[0], g[0] / s1[0], g[1], g[1] / s1[1],
	       g[2], g[2] / s1[2], ok ? "met" : "NOT met");
	return 0;
}
