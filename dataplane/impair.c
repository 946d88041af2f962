/*
 * impair.c - netem-style rx impairment for the lab (see impair.h).
 *
 * Input: frames from the rx burst, the clock. Output: frames to deliver.
 * Invariants: delayed frames leave in arrival order (one delay for all);
 * a slot handed out in a call is not rewritten before the next call
 * (enqueue happens before dequeue, and the ring is FIFO).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impair.h"

struct impair_slot {
	uint64_t due;
	uint16_t len;
	uint8_t data[IMPAIR_FRAME_MAX];
};

struct impair {
	struct impair_cfg cfg;
	uint64_t rng;
	unsigned head, tail;             /* tail - head = frames held */
	struct impair_stats st;
	struct impair_slot slot[IMPAIR_SLOTS];
};

/* impair_pct - "1%" or "0.5%" to parts per million */
static int impair_pct(const char *s, uint32_t *ppm)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || strcmp(end, "%") != 0 || v < 0 || v > 100)
		return -1;
	*ppm = (uint32_t)(v * 10000.0 + 0.5);
	return 0;
}

/* impair_time - "1ms", "500us", "1s" to microseconds */
static int impair_time(const char *s, uint32_t *us)
{
	char *end;
	double v = strtod(s, &end);
	double mul;

	if (end == s || v < 0)
		return -1;
	if (strcmp(end, "us") == 0)
		mul = 1;
	else if (strcmp(end, "ms") == 0)
		mul = 1000;
	else if (strcmp(end, "s") == 0)
		mul = 1000000;
	else
		return -1;
	if (v * mul > 10000000)
		return -1;
	*us = (uint32_t)(v * mul + 0.5);
	return 0;
}

int impair_parse(const char *args, struct impair_cfg *c, char *err,
		 size_t errlen)
{
	char buf[256], *save = NULL, *w, *val;

	memset(c, 0, sizeof(*c));
	if (strlen(args) >= sizeof(buf)) {
		snprintf(err, errlen, "impairment \"%s\": too long", args);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", args);
	for (w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t",
							       &save)) {
		int rc;

		val = strtok_r(NULL, " \t", &save);
		if (!val)
			goto bad;
		if (strcmp(w, "loss") == 0)
			rc = impair_pct(val, &c->loss_ppm);
		else if (strcmp(w, "duplicate") == 0)
			rc = impair_pct(val, &c->dup_ppm);
		else if (strcmp(w, "reorder") == 0)
			rc = impair_pct(val, &c->reorder_ppm);
		else if (strcmp(w, "delay") == 0)
			rc = impair_time(val, &c->delay_us);
		else
			goto bad;
		if (rc < 0)
			goto bad;
	}
	c->on = true;
	return 0;
bad:
	snprintf(err, errlen, "impairment \"%s\": cannot use \"%s%s%s\" "
		 "(supported: loss P%%, duplicate P%%, reorder P%%, delay "
		 "T[us|ms|s])", args, w ? w : "", val ? " " : "",
		 val ? val : "");
	return -1;
}

struct impair *impair_create(const struct impair_cfg *c, uint64_t seed)
{
	struct impair *im = calloc(1, sizeof(*im));

	if (!im)
		return NULL;
	im->cfg = *c;
	im->rng = seed | 1;
	return im;
}

void impair_destroy(struct impair *im)
{
	free(im);
}

const struct impair_stats *impair_stats(const struct impair *im)
{
	return &im->st;
}

unsigned impair_held(const struct impair *im)
{
	return im->tail - im->head;
}

/* impair_chance - true with probability ppm / 1e6 (xorshift64) */
static bool impair_chance(struct impair *im, uint32_t ppm)
{
	if (ppm == 0)
		return false;
	im->rng ^= im->rng << 13;
	im->rng ^= im->rng >> 7;
	im->rng ^= im->rng << 17;
	return im->rng % 1000000u < ppm;
}

unsigned impair_rx(struct impair *im, const struct net_rx *in, unsigned n,
		   struct net_rx *out, unsigned max, uint64_t now)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++) {
		unsigned copies;

		im->st.in++;
		if (impair_chance(im, im->cfg.loss_ppm)) {
			im->st.lost++;
			continue;
		}
		copies = 1;
		if (impair_chance(im, im->cfg.dup_ppm)) {
			im->st.duplicated++;
			copies = 2;
		}
		while (copies--) {
			bool now_ = im->cfg.delay_us == 0 ||
				    impair_chance(im, im->cfg.reorder_ppm);
			struct impair_slot *sl;

			if (!now_ && (im->tail - im->head == IMPAIR_SLOTS ||
				      in[i].len > IMPAIR_FRAME_MAX)) {
				im->st.ring_full++;
				now_ = true;
			}
			if (now_) {
				if (im->cfg.delay_us)
					im->st.reordered++;
				if (k < max)
					out[k++] = in[i];
				continue;
			}
			sl = &im->slot[im->tail % IMPAIR_SLOTS];
			sl->due = now + im->cfg.delay_us;
			sl->len = in[i].len;
			memcpy(sl->data, in[i].data, in[i].len);
			im->tail++;
			im->st.delayed++;
		}
	}
	while (im->head != im->tail && k < max) {
		struct impair_slot *sl = &im->slot[im->head % IMPAIR_SLOTS];

		if (sl->due > now)
			break;
		out[k++] = (struct net_rx){ .data = sl->data, .len = sl->len,
					    .flags = 0 };
		im->head++;
	}
	return k;
}
