/*
 * batch.c - writes one batch of events in one transaction, applying the
 * proof-of-update state machine (update.c) to each device they concern.
 *
 * 1. Group. The events are sorted, stably, by MAC, or by "@ip" for those
 *    without one (path-form checks, and downloads that can only be matched
 *    by IP), so that each group holds one device's events in the order they
 *    were posted, and every node locks rows in the same order.
 * 2. Fetch. One statement per device: an upsert (INSERT ... ON CONFLICT DO
 *    UPDATE ... RETURNING) records what its checks told (the newest check
 *    wins, checks are added up, first and last seen are a min and a max)
 *    and returns its offer as it was, taking the row's lock until commit on
 *    PostgreSQL: a second node writing the same device waits, then sees
 *    this one's result. The prev_* columns carry the last check and answer
 *    as they were before this upsert. A group of downloads without a MAC
 *    also fetches the devices at that IP with an open offer.
 * 3. Apply. Each group's events run through nf_update_apply in order.
 * 4. Store. The offers that changed are written back, each new history
 *    entry goes to its device's ring (slot = seq % history_max), commit.
 *
 * On PostgreSQL the statements of steps 2 and 4 are pipelined (db_pg.c).
 * Any failure rolls the whole transaction back; the caller keeps the same
 * events and tries again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

enum { ST_UPSERT_CHECK, ST_UPSERT_SEEN, ST_LOOKUP, ST_SAVE, ST_HISTORY };

#define RETURNING                                                                          \
	" RETURNING id, " NF_OFFER_COLUMNS ", prev_check, prev_answer, prev_target, prev_reason"
#define SEEN_SET                                                                           \
	"prev_check = devices.last_check, prev_answer = devices.answer, "                  \
	"prev_target = devices.answer_target, prev_reason = devices.answer_reason, "       \
	"first_seen = CASE WHEN excluded.first_seen < devices.first_seen "                 \
	"THEN excluded.first_seen ELSE devices.first_seen END, "                           \
	"last_seen = CASE WHEN excluded.last_seen > devices.last_seen "                    \
	"THEN excluded.last_seen ELSE devices.last_seen END"
/* col takes the value of the newest check: a check older than the one
 * stored (from another node, committed later) does not overwrite it. */
#define NEWER(col)                                                                        \
	", " col " = CASE WHEN excluded.last_check >= devices.last_check THEN excluded." col \
	" ELSE devices." col " END"

static const char upsert_check_sql[] =
	"INSERT INTO devices (key, mac, ip, device, version, build, client, chip_id, chip_size, "
	"free_space, sketch_size, sketch_md5, sdk, first_seen, last_seen, last_check, checks, "
	"answer, answer_target, answer_rule, answer_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, "
	"$8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) "
	"ON CONFLICT (key) DO UPDATE SET " SEEN_SET ", checks = devices.checks + excluded.checks"
	NEWER("mac") NEWER("ip") NEWER("device") NEWER("version") NEWER("build") NEWER("client")
	NEWER("chip_id") NEWER("chip_size") NEWER("free_space") NEWER("sketch_size")
	NEWER("sketch_md5") NEWER("sdk") NEWER("answer") NEWER("answer_target")
	NEWER("answer_rule") NEWER("answer_reason")
	", last_check = CASE WHEN excluded.last_check > devices.last_check "
	"THEN excluded.last_check ELSE devices.last_check END" RETURNING;

static const char upsert_seen_sql[] =
	"INSERT INTO devices (key, mac, ip, client, first_seen, last_seen) "
	"VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO UPDATE SET " SEEN_SET RETURNING;

/* The devices at an IP with an open offer (at most 64), for its downloads. */
#define LOOKUP_SQL                                                                         \
	"SELECT id, " NF_OFFER_COLUMNS ", last_check, answer, answer_target, answer_reason "   \
	"FROM devices WHERE ip = $1 AND mac = '' AND state IN (1, 2, 3, 6) ORDER BY id LIMIT 64"
static const char lookup_sqlite[] = LOOKUP_SQL;
static const char lookup_pg[] = LOOKUP_SQL " FOR UPDATE";

static const char save_sql[] =
	"UPDATE devices SET state = $2, state_ms = $3, offer_target = $4, offer_rule = $5, "
	"offer_ms = $6, offer_from = $7, img0_path = $8, img0_md5 = $9, img0_size = $10, "
	"img0_bytes = $11, img0_done = $12, img1_path = $13, img1_md5 = $14, img1_size = $15, "
	"img1_bytes = $16, img1_done = $17, early_path = $18, early_md5 = $19, "
	"early_size = $20, early_bytes = $21, early_done = $22, early_ms = $23, hist_seq = $24, "
	"last_seen = CASE WHEN $25 > last_seen THEN $25 ELSE last_seen END WHERE id = $1";

static const char history_sql[] =
	"INSERT INTO history (device_id, slot, seq, at_ms, kind, state, target, rule, version, "
	"image, bytes, total, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
	"$13) ON CONFLICT (device_id, slot) DO UPDATE SET seq = excluded.seq, "
	"at_ms = excluded.at_ms, kind = excluded.kind, state = excluded.state, "
	"target = excluded.target, rule = excluded.rule, version = excluded.version, "
	"image = excluded.image, bytes = excluded.bytes, total = excluded.total, "
	"detail = excluded.detail";

/* What a device's events in this batch tell its inventory row. */
struct merge {
	const struct nf_event *check; /* the last check, or NULL */
	const struct nf_event *any;   /* the first event */
	int64_t first, last, last_check, checks;
};

struct group;

struct bdev {
	int64_t id;
	char key[NF_STORE_MAX_KEY];
	bool fetched;
	int64_t seen_ms;   /* newest download matched by IP (last seen) */
	long next;         /* next device of the group, -1 */
	struct merge m;
	struct nf_offer before, o;
};

struct group {
	struct nf_batch *b;
	size_t first, count; /* its events: order[first .. first + count) */
	long head, tail;     /* its devices */
	bool by_mac, downloads;
};

struct hrow {
	int64_t device_id, seq;
	struct nf_history h;
};

struct nf_batch {
	size_t max;
	struct nf_event *const *events;
	size_t *order;
	char (*sort)[NF_STORE_IP_LEN + 1];
	char (*key)[NF_STORE_MAX_KEY];
	struct group *groups;
	size_t ngroups;
	struct bdev *devs;
	size_t ndevs, devcap;
	struct hrow *hist;
	size_t nhist, histcap;
};

struct nf_batch *nf_batch_new(size_t batch_max)
{
	struct nf_batch *b = calloc(1, sizeof *b);

	if (b == NULL)
		return NULL;
	b->max = batch_max;
	b->devcap = 2 * batch_max;
	b->histcap = NF_UPDATE_MAX_HISTORY * batch_max;
	b->order = calloc(batch_max, sizeof *b->order);
	b->sort = calloc(batch_max, sizeof *b->sort);
	b->key = calloc(batch_max, sizeof *b->key);
	b->groups = calloc(batch_max, sizeof *b->groups);
	b->devs = calloc(b->devcap, sizeof *b->devs);
	b->hist = calloc(b->histcap, sizeof *b->hist);
	if (b->order == NULL || b->sort == NULL || b->key == NULL || b->groups == NULL ||
	    b->devs == NULL || b->hist == NULL) {
		nf_batch_free(b);
		return NULL;
	}
	return b;
}

void nf_batch_free(struct nf_batch *b)
{
	if (b == NULL)
		return;
	free(b->order);
	free(b->sort);
	free(b->key);
	free(b->groups);
	free(b->devs);
	free(b->hist);
	free(b);
}

/* Step 1 ------------------------------------------------------------------ */

/* Terminates every string of ev: the loop fills them, the writer trusts
 * nothing it did not check. */
static void terminate(struct nf_event *ev)
{
	ev->mac[sizeof ev->mac - 1] = ev->ip[sizeof ev->ip - 1] = '\0';
	ev->device[sizeof ev->device - 1] = ev->version[sizeof ev->version - 1] = '\0';
	ev->build[sizeof ev->build - 1] = ev->target[sizeof ev->target - 1] = '\0';
	ev->reason[sizeof ev->reason - 1] = ev->hw.sdk[sizeof ev->hw.sdk - 1] = '\0';
	ev->hw.sketch_md5[sizeof ev->hw.sketch_md5 - 1] = '\0';
	for (int i = 0; i < NF_STORE_IMAGES; i++) {
		ev->images[i].path[sizeof ev->images[i].path - 1] = '\0';
		ev->images[i].md5[sizeof ev->images[i].md5 - 1] = '\0';
	}
}

static bool valid_kind(const struct nf_event *ev)
{
	return ev->kind >= NF_EVENT_CHECK && ev->kind <= NF_EVENT_DOWNLOAD_FAILED;
}

static int by_sort_key(const void *x, const void *y, void *arg)
{
	const struct nf_batch *b = arg;
	size_t i = *(const size_t *)x, j = *(const size_t *)y;
	int c = strcmp(b->sort[i], b->sort[j]);

	return c != 0 ? c : (i > j) - (i < j);
}

static void make_groups(struct nf_batch *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct nf_event *ev = b->events[i];

		terminate(ev);
		b->order[i] = i;
		nf_event_key(ev, b->key[i]);
		if (nf_store_mac_normalize(ev->mac, b->sort[i]) != 0)
			snprintf(b->sort[i], sizeof b->sort[i], "@%s", ev->ip);
	}
	qsort_r(b->order, n, sizeof *b->order, by_sort_key, b);
	b->ngroups = 0;
	for (size_t k = 0; k < n; k++) {
		struct group *g = &b->groups[b->ngroups];

		if (k == 0 || strcmp(b->sort[b->order[k]], b->sort[b->order[k - 1]]) != 0) {
			*g = (struct group){b, k, 0, -1, -1, b->sort[b->order[k]][0] != '@', false};
			b->ngroups++;
		}
		b->groups[b->ngroups - 1].count++;
	}
}

/* Step 2 ------------------------------------------------------------------ */

static struct bdev *add_dev(struct nf_batch *b, struct group *g, const char *key)
{
	struct bdev *d;

	if (b->ndevs == b->devcap)
		return NULL;
	d = &b->devs[b->ndevs];
	memset(d, 0, sizeof *d);
	snprintf(d->key, sizeof d->key, "%s", key);
	d->next = -1;
	if (g->tail >= 0)
		b->devs[g->tail].next = (long)b->ndevs;
	else
		g->head = (long)b->ndevs;
	g->tail = (long)b->ndevs++;
	return d;
}

static struct bdev *find_key(struct nf_batch *b, const struct group *g, const char *key)
{
	for (long i = g->head; i >= 0; i = b->devs[i].next)
		if (strcmp(b->devs[i].key, key) == 0)
			return &b->devs[i];
	return NULL;
}

static void merge(struct merge *m, const struct nf_event *ev)
{
	if (m->any == NULL) {
		m->any = ev;
		m->first = m->last = ev->time_ms;
	}
	m->first = ev->time_ms < m->first ? ev->time_ms : m->first;
	m->last = ev->time_ms > m->last ? ev->time_ms : m->last;
	if (ev->kind == NF_EVENT_CHECK) {
		m->check = ev;
		m->checks++;
		m->last_check = ev->time_ms > m->last_check ? ev->time_ms : m->last_check;
	}
}

/* A fetched row: id, the offer, then the last check and answer. */
static void read_dev(struct bdev *d, const struct nf_db_row *row)
{
	d->id = nf_db_int(row, 0);
	nf_offer_read(row, 1, &d->o);
	d->o.checked_ms = nf_db_int(row, 1 + NF_OFFER_NCOLS);
	d->o.answer = (int)nf_db_int(row, 2 + NF_OFFER_NCOLS);
	nf_db_copy(row, 3 + NF_OFFER_NCOLS, d->o.answer_target, sizeof d->o.answer_target);
	nf_db_copy(row, 4 + NF_OFFER_NCOLS, d->o.answer_reason, sizeof d->o.answer_reason);
	d->before = d->o;
	d->fetched = true;
}

static void on_upsert(void *user, const struct nf_db_row *row)
{
	read_dev(user, row);
}

static void on_lookup(void *user, const struct nf_db_row *row)
{
	struct group *g = user;
	int64_t id = nf_db_int(row, 0);
	struct bdev *d;

	for (long i = g->head; i >= 0; i = g->b->devs[i].next)
		if (g->b->devs[i].fetched && g->b->devs[i].id == id)
			return; /* its own check in this batch fetched it already */
	if ((d = add_dev(g->b, g, "")) != NULL)
		read_dev(d, row);
}

static int send_upsert(struct nf_db *db, struct bdev *d)
{
	const struct nf_event *c = d->m.check, *ev = d->m.any;
	char mac[NF_STORE_MAC_LEN] = "";

	nf_store_mac_normalize(ev->mac, mac);
	if (c == NULL) {
		struct nf_db_val v[6] = {
			NF_DB_TEXT_V(d->key), NF_DB_TEXT_V(mac), NF_DB_TEXT_V(ev->ip),
			NF_DB_INT_V(ev->client), NF_DB_INT_V(d->m.first), NF_DB_INT_V(d->m.last),
		};
		return nf_db_run(db, ST_UPSERT_SEEN, upsert_seen_sql, v, 6, on_upsert, d);
	}
	struct nf_db_val v[21] = {
		NF_DB_TEXT_V(d->key), NF_DB_TEXT_V(mac), NF_DB_TEXT_V(c->ip),
		NF_DB_TEXT_V(c->device), NF_DB_TEXT_V(c->version), NF_DB_TEXT_V(c->build),
		NF_DB_INT_V(c->client), NF_DB_INT_V(c->hw.chip_id), NF_DB_INT_V(c->hw.chip_size),
		NF_DB_INT_V(c->hw.free_space), NF_DB_INT_V(c->hw.sketch_size),
		NF_DB_TEXT_V(c->hw.sketch_md5), NF_DB_TEXT_V(c->hw.sdk), NF_DB_INT_V(d->m.first),
		NF_DB_INT_V(d->m.last), NF_DB_INT_V(d->m.last_check), NF_DB_INT_V(d->m.checks),
		NF_DB_INT_V(c->answer), NF_DB_TEXT_V(c->target), NF_DB_INT_V(c->rule),
		NF_DB_TEXT_V(c->reason),
	};
	return nf_db_run(db, ST_UPSERT_CHECK, upsert_check_sql, v, 21, on_upsert, d);
}

/* The devices of group g, and the statements that fetch them. */
static int fetch_group(struct nf_batch *b, struct group *g, struct nf_db *db)
{
	const char *ip = NULL;

	for (size_t k = g->first; k < g->first + g->count; k++) {
		size_t i = b->order[k];
		const struct nf_event *ev = b->events[i];
		struct bdev *d;

		if (!valid_kind(ev))
			continue;
		if (ev->kind != NF_EVENT_CHECK && !g->by_mac) {
			g->downloads = true;
			ip = ev->ip;
			continue;
		}
		d = find_key(b, g, b->key[i]);
		if (d == NULL && (d = add_dev(b, g, b->key[i])) == NULL)
			return nf_db_fail(db, "internal: batch device table full");
		merge(&d->m, ev);
	}
	for (long i = g->head; i >= 0; i = b->devs[i].next)
		if (send_upsert(db, &b->devs[i]) != 0)
			return -1;
	if (g->downloads) {
		struct nf_db_val v = NF_DB_TEXT_V(ip);
		bool pg = nf_db_backend(db) == NF_DB_PG;
		return nf_db_run(db, ST_LOOKUP, pg ? lookup_pg : lookup_sqlite, &v, 1, on_lookup, g);
	}
	return 0;
}

/* Step 3 ------------------------------------------------------------------ */

/* The device an event of group g is about, or NULL. A download without a
 * MAC goes to the device at that IP whose open offer names the image (the
 * newest offer when several do). */
static struct bdev *pick(struct nf_batch *b, const struct group *g, size_t i)
{
	const struct nf_event *ev = b->events[i];
	struct bdev *best = NULL;

	if (g->by_mac)
		return g->head >= 0 ? &b->devs[g->head] : NULL;
	if (ev->kind == NF_EVENT_CHECK)
		return find_key(b, g, b->key[i]);
	for (long k = g->head; k >= 0; k = b->devs[k].next) {
		struct bdev *d = &b->devs[k];
		if (nf_update_open(&d->o) && nf_update_image(&d->o, ev->images[0].path) >= 0 &&
		    (best == NULL || d->o.offered_ms > best->o.offered_ms))
			best = d;
	}
	return best;
}

static int apply_group(struct nf_batch *b, const struct group *g, int64_t skew_ms,
                       uint64_t *unmatched, struct nf_db *db)
{
	for (size_t k = g->first; k < g->first + g->count; k++) {
		size_t i = b->order[k];
		struct bdev *d;
		struct nf_history h[NF_UPDATE_MAX_HISTORY];
		int nh;

		if (!valid_kind(b->events[i]))
			continue;
		d = pick(b, g, i);
		if (d == NULL || !d->fetched) {
			if (d != NULL)
				return nf_db_fail(db, "internal: device %s not fetched", d->key);
			(*unmatched)++;
			continue;
		}
		nh = nf_update_apply(&d->o, b->events[i], skew_ms, h);
		if (b->nhist + (size_t)nh > b->histcap)
			return nf_db_fail(db, "internal: batch history table full");
		for (int j = 0; j < nh; j++)
			b->hist[b->nhist++] = (struct hrow){d->id, ++d->o.hist_seq, h[j]};
		if (!g->by_mac && b->events[i]->kind != NF_EVENT_CHECK &&
		    b->events[i]->time_ms > d->seen_ms)
			d->seen_ms = b->events[i]->time_ms;
	}
	return 0;
}

/* Step 4 ------------------------------------------------------------------ */

static int store_devices(struct nf_batch *b, struct nf_db *db, unsigned history_max)
{
	for (size_t k = 0; k < b->ndevs; k++) {
		struct bdev *d = &b->devs[k];
		struct nf_db_val v[2 + NF_OFFER_NCOLS];

		if (!nf_offer_changed(&d->before, &d->o) && d->seen_ms == 0)
			continue;
		v[0] = NF_DB_INT_V(d->id);
		nf_offer_values(&d->o, v + 1);
		v[1 + NF_OFFER_NCOLS] = NF_DB_INT_V(d->seen_ms);
		if (nf_db_run(db, ST_SAVE, save_sql, v, 2 + NF_OFFER_NCOLS, NULL, NULL) != 0)
			return -1;
	}
	for (size_t k = 0; k < b->nhist; k++) {
		const struct hrow *r = &b->hist[k];
		struct nf_db_val v[13] = {
			NF_DB_INT_V(r->device_id), NF_DB_INT_V(r->seq % history_max),
			NF_DB_INT_V(r->seq), NF_DB_INT_V(r->h.at_ms), NF_DB_INT_V(r->h.kind),
			NF_DB_INT_V(r->h.state), NF_DB_TEXT_V(r->h.target), NF_DB_INT_V(r->h.rule),
			NF_DB_TEXT_V(r->h.version), NF_DB_TEXT_V(r->h.image), NF_DB_INT_V(r->h.bytes),
			NF_DB_INT_V(r->h.total), NF_DB_TEXT_V(r->h.detail),
		};
		if (nf_db_run(db, ST_HISTORY, history_sql, v, 13, NULL, NULL) != 0)
			return -1;
	}
	return 0;
}

/* Rolls back, keeping the error that caused it. */
static int roll_back(struct nf_db *db)
{
	char why[sizeof db->error];

	memcpy(why, db->error, sizeof why);
	nf_db_clear(db);
	nf_db_run(db, -1, "ROLLBACK", NULL, 0, NULL, NULL);
	nf_db_sync(db);
	nf_db_clear(db);
	nf_db_fail(db, "%s", why[0] != '\0' ? why : "transaction failed");
	return -1;
}

int nf_batch_write(struct nf_batch *b, struct nf_db *db, struct nf_event *const *events,
                   size_t n, unsigned history_max, int64_t skew_ms, uint64_t *unmatched)
{
	bool pg = nf_db_backend(db) == NF_DB_PG;
	uint64_t lost = 0;

	if (n == 0)
		return 0;
	if (n > b->max)
		return nf_db_fail(db, "internal: batch of %zu over %zu", n, b->max);
	nf_db_clear(db);
	b->events = events;
	b->ndevs = b->nhist = 0;
	make_groups(b, n);
	if (nf_db_run(db, -1, pg ? "BEGIN" : "BEGIN IMMEDIATE", NULL, 0, NULL, NULL) != 0)
		return roll_back(db);
	for (size_t k = 0; k < b->ngroups; k++)
		if (fetch_group(b, &b->groups[k], db) != 0)
			return roll_back(db);
	if (nf_db_sync(db) != 0)
		return roll_back(db);
	for (size_t k = 0; k < b->ngroups; k++)
		if (apply_group(b, &b->groups[k], skew_ms, &lost, db) != 0)
			return roll_back(db);
	if (store_devices(b, db, history_max) != 0 ||
	    nf_db_run(db, -1, "COMMIT", NULL, 0, NULL, NULL) != 0 || nf_db_sync(db) != 0)
		return roll_back(db);
	*unmatched += lost;
	return 0;
}
