/*
 * batch.c - writes one batch of events in one transaction, applying the
 * proof-of-update state machine (update.c) to each device they concern.
 *
 * 1. Group. The events are sorted, stably, by MAC, or by "@ip" for those
 *    without one (path-form checks, and MAC-less downloads), so that each
 *    group holds one device's checks in the order they were posted.
 * 2. Fetch. One upsert row per device that checked (INSERT ... ON CONFLICT
 *    DO UPDATE ... RETURNING) records what its checks told (the newest
 *    check wins, checks are added up, first and last seen are a min and a
 *    max) and returns its offer as it was, taking the row's lock until
 *    commit on PostgreSQL: a second node writing the same device waits,
 *    then sees this one's result. The prev_* columns carry the last check
 *    and answer as they were before this upsert. Only checks upsert: a
 *    download never makes a device. When the batch has downloads, one
 *    lookup (FOR UPDATE, in key order as the upsert) fetches the rows they
 *    may belong to: the device keyed by a download's MAC, and the devices at
 *    its IP, without a MAC, whose open offer names its image.
 * 3. Apply. The events run through nf_update_apply in the order they were
 *    posted, each check on its device, each download on the device route()
 *    picks from the offers as applied so far (a path-form device's check
 *    and its download with a MAC may share a batch).
 * 4. Store. The offers that changed are written back, each new history
 *    entry goes to its device's ring (slot = seq % history_max), commit.
 *
 * Steps 2 and 4 are one statement per kind for the whole batch on
 * PostgreSQL (the rows travel as arrays: nf_db_run_rows), one per row on
 * SQLite (per-row statements would spend the server's time setting up
 * each one); either way each device is written once per statement. Any failure
 * rolls the whole transaction back; the caller keeps the same events and
 * tries again, except when PostgreSQL's connection was lost: the COMMIT may
 * have committed, and nf_batch_resolve asks the server by the
 * transaction's id (txid_status) whether it did.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

enum { ST_UPSERT, ST_LOOKUP, ST_SAVE, ST_HISTORY };

/* The upsert: a device's inventory from its newest check (or, with no
 * check in the batch, only when it was last seen). */
#define UPSERT_INTO                                                                        \
	"INSERT INTO devices (key, mac, ip, device, version, build, client, chip_id, "          \
	"chip_size, free_space, sketch_size, sketch_md5, sdk, first_seen, last_seen, "         \
	"last_check, checks, answer, answer_target, answer_rule, answer_reason) "
/* col takes the value of the newest check: a check older than the one
 * stored (from another node, committed later) does not overwrite it. */
#define NEWER(col)                                                                        \
	", " col " = CASE WHEN excluded.last_check >= devices.last_check THEN excluded." col \
	" ELSE devices." col " END"
#define UPSERT_SET                                                                         \
	" ON CONFLICT (key) DO UPDATE SET prev_check = devices.last_check, "                   \
	"prev_answer = devices.answer, prev_target = devices.answer_target, "                  \
	"prev_reason = devices.answer_reason, "                                                \
	"first_seen = CASE WHEN excluded.first_seen < devices.first_seen "                     \
	"THEN excluded.first_seen ELSE devices.first_seen END, "                               \
	"last_seen = CASE WHEN excluded.last_seen > devices.last_seen "                        \
	"THEN excluded.last_seen ELSE devices.last_seen END, "                                 \
	"checks = devices.checks + excluded.checks"                                            \
	NEWER("mac") NEWER("ip") NEWER("device") NEWER("version") NEWER("build")             \
	NEWER("client") NEWER("chip_id") NEWER("chip_size") NEWER("free_space")               \
	NEWER("sketch_size") NEWER("sketch_md5") NEWER("sdk") NEWER("answer")                 \
	NEWER("answer_target") NEWER("answer_rule") NEWER("answer_reason")                    \
	", last_check = CASE WHEN excluded.last_check > devices.last_check "                   \
	"THEN excluded.last_check ELSE devices.last_check END"                                 \
	" RETURNING key, id, " NF_OFFER_COLUMNS ", prev_check, prev_answer, prev_target, "        \
	"prev_reason, mac, ip"
#define UPSERT_NCOLS 21

static const char upsert_row[] =
	UPSERT_INTO "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
	"$16, $17, $18, $19, $20, $21)" UPSERT_SET;
/* In key order, so that every node locks rows in the same order. */
static const char upsert_arrays[] =
	UPSERT_INTO "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
	"$5::text[], $6::text[], $7::int[], $8::bigint[], $9::bigint[], $10::bigint[], "
	"$11::bigint[], $12::text[], $13::text[], $14::bigint[], $15::bigint[], $16::bigint[], "
	"$17::bigint[], $18::int[], $19::text[], $20::int[], $21::text[]) AS u ORDER BY 1"
	UPSERT_SET;

/* The rows a batch's downloads may belong to, for each (key, ip, image) of
 * them: the device keyed by the download's MAC ('' when it sent none, or
 * when that device's checks in this batch upserted it), and the devices at
 * its IP, without a MAC, whose open offer names the image. Never inserts:
 * a download makes no row of its own. In key order, as the upsert. */
#define LOOKUP_NCOLS 3
#define LOOKUP_COLS                                                                        \
	"SELECT key, id, " NF_OFFER_COLUMNS ", last_check, answer, answer_target, "             \
	"answer_reason, mac, ip FROM devices "
#define LOOKUP_OPEN "mac = '' AND state IN (1, 2, 3, 6) "
static const char lookup_row[] =
	LOOKUP_COLS "WHERE key = $1 OR (ip = $2 AND " LOOKUP_OPEN
	"AND (img0_path = $3 OR img1_path = $3))";
static const char lookup_arrays[] =
	LOOKUP_COLS "WHERE id IN (SELECT d.id FROM devices AS d WHERE d.key = ANY($1::text[]) "
	"UNION ALL SELECT d.id FROM unnest($2::text[], $3::text[]) AS u (ip, img) "
	"JOIN devices AS d ON d.ip = u.ip AND d." LOOKUP_OPEN
	"AND (d.img0_path = u.img OR d.img1_path = u.img)) ORDER BY key FOR UPDATE";

/* The offer written back: id, NF_OFFER_COLUMNS, and the newest download
 * matched by IP for last_seen. */
#define SAVE_NCOLS (2 + NF_OFFER_NCOLS)
static const char save_row[] =
	"UPDATE devices SET state = $2, state_ms = $3, offer_target = $4, offer_rule = $5, "
	"offer_ms = $6, offer_from = $7, img0_path = $8, img0_md5 = $9, img0_size = $10, "
	"img0_bytes = $11, img0_done = $12, img1_path = $13, img1_md5 = $14, img1_size = $15, "
	"img1_bytes = $16, img1_done = $17, early_path = $18, early_md5 = $19, "
	"early_size = $20, early_bytes = $21, early_done = $22, early_ms = $23, hist_seq = $24, "
	"offer_reverts = $25, last_seen = CASE WHEN $26 > last_seen THEN $26 ELSE last_seen END "
	"WHERE id = $1";
#define IMAGE_TYPES(a, b, c, d, e)                                                          \
	"$" #a "::text[], $" #b "::text[], $" #c "::bigint[], $" #d "::bigint[], $" #e "::int[], "
#define IMAGE_NAMES(p) p "_path, " p "_md5, " p "_size, " p "_bytes, " p "_done, "
#define IMAGE_SET(p)                                                                        \
	p "_path = u." p "_path, " p "_md5 = u." p "_md5, " p "_size = u." p "_size, " p         \
	"_bytes = u." p "_bytes, " p "_done = u." p "_done, "
static const char save_arrays[] =
	"UPDATE devices AS d SET state = u.state, state_ms = u.state_ms, "
	"offer_target = u.offer_target, offer_rule = u.offer_rule, offer_ms = u.offer_ms, "
	"offer_from = u.offer_from, " IMAGE_SET("img0") IMAGE_SET("img1") IMAGE_SET("early")
	"early_ms = u.early_ms, hist_seq = u.hist_seq, offer_reverts = u.offer_reverts, "
	"last_seen = CASE WHEN u.seen > d.last_seen THEN u.seen ELSE d.last_seen END "
	"FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::text[], $5::int[], $6::bigint[], "
	"$7::text[], " IMAGE_TYPES(8, 9, 10, 11, 12) IMAGE_TYPES(13, 14, 15, 16, 17)
	IMAGE_TYPES(18, 19, 20, 21, 22) "$23::bigint[], $24::bigint[], $25::int[], $26::bigint[]) "
	"AS u (id, state, state_ms, offer_target, offer_rule, offer_ms, offer_from, "
	IMAGE_NAMES("img0") IMAGE_NAMES("img1") IMAGE_NAMES("early")
	"early_ms, hist_seq, offer_reverts, seen) WHERE d.id = u.id";

/* One history entry into its device's ring. */
#define HISTORY_NCOLS 13
#define HISTORY_INTO                                                                       \
	"INSERT INTO history (device_id, slot, seq, at_ms, kind, state, target, rule, "         \
	"version, image, bytes, total, detail) "
#define HISTORY_SET                                                                        \
	" ON CONFLICT (device_id, slot) DO UPDATE SET seq = excluded.seq, "                    \
	"at_ms = excluded.at_ms, kind = excluded.kind, state = excluded.state, "               \
	"target = excluded.target, rule = excluded.rule, version = excluded.version, "         \
	"image = excluded.image, bytes = excluded.bytes, total = excluded.total, "             \
	"detail = excluded.detail"
static const char history_row[] =
	HISTORY_INTO "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)" HISTORY_SET;
static const char history_arrays[] =
	HISTORY_INTO "SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[], "
	"$4::bigint[], $5::int[], $6::int[], $7::text[], $8::int[], $9::text[], $10::text[], "
	"$11::bigint[], $12::bigint[], $13::text[]) AS u" HISTORY_SET;

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
	char mac[NF_STORE_MAC_LEN]; /* as stored: "" for a device keyed by device@ip */
	char ip[NF_STORE_IP_LEN];
	bool fetched;
	int64_t seen_ms;   /* newest download matched to it (last seen) */
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
	const struct bdev *dev;
	int64_t seq;
	struct nf_history h;
};

struct nf_batch {
	size_t max;
	struct nf_event *const *events;
	size_t *order;
	long *evdev;           /* per event: its device (checks), -1 */
	char (*sort)[NF_STORE_IP_LEN + 1];
	char (*key)[NF_STORE_MAX_KEY];
	struct group *groups;
	size_t ngroups;
	struct bdev *devs;
	size_t ndevs, devcap, nfetch;
	struct bdev **bykey;   /* the devices to upsert, by key */
	struct hrow *hist;
	size_t nhist, histcap;
	struct nf_db_val *vals; /* rows of values for nf_db_run_rows */
	int64_t txid;          /* PostgreSQL: the last transaction's id while its fate is unknown */
	uint64_t lost;         /* its downloads without a device */
};

struct nf_batch *nf_batch_new(size_t batch_max)
{
	struct nf_batch *b = calloc(1, sizeof *b);
	size_t nvals;

	if (b == NULL)
		return NULL;
	b->max = batch_max;
	b->devcap = 2 * batch_max;
	b->histcap = NF_UPDATE_MAX_HISTORY * batch_max;
	nvals = b->devcap * SAVE_NCOLS > b->histcap * HISTORY_NCOLS ? b->devcap * SAVE_NCOLS
	                                                            : b->histcap * HISTORY_NCOLS;
	b->order = calloc(batch_max, sizeof *b->order);
	b->evdev = calloc(batch_max, sizeof *b->evdev);
	b->sort = calloc(batch_max, sizeof *b->sort);
	b->key = calloc(batch_max, sizeof *b->key);
	b->groups = calloc(batch_max, sizeof *b->groups);
	b->devs = calloc(b->devcap, sizeof *b->devs);
	b->bykey = calloc(b->devcap, sizeof *b->bykey);
	b->hist = calloc(b->histcap, sizeof *b->hist);
	b->vals = calloc(nvals, sizeof *b->vals);
	if (b->order == NULL || b->evdev == NULL || b->sort == NULL || b->key == NULL ||
	    b->groups == NULL || b->devs == NULL || b->bykey == NULL || b->hist == NULL ||
	    b->vals == NULL) {
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
	free(b->evdev);
	free(b->sort);
	free(b->key);
	free(b->groups);
	free(b->devs);
	free(b->bykey);
	free(b->hist);
	free(b->vals);
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
	if (g == NULL)
		return b->ndevs++, d;
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

/* A fetched row: key, id, the offer, then the last check and answer. */
static void read_dev(struct bdev *d, const struct nf_db_row *row)
{
	d->id = nf_db_int(row, 1);
	nf_offer_read(row, 2, &d->o);
	d->o.checked_ms = nf_db_int(row, 2 + NF_OFFER_NCOLS);
	d->o.answer = (int)nf_db_int(row, 3 + NF_OFFER_NCOLS);
	nf_db_copy(row, 4 + NF_OFFER_NCOLS, d->o.answer_target, sizeof d->o.answer_target);
	nf_db_copy(row, 5 + NF_OFFER_NCOLS, d->o.answer_reason, sizeof d->o.answer_reason);
	nf_db_copy(row, 6 + NF_OFFER_NCOLS, d->mac, sizeof d->mac);
	nf_db_copy(row, 7 + NF_OFFER_NCOLS, d->ip, sizeof d->ip);
	d->before = d->o;
	d->fetched = true;
}

static int by_key(const void *x, const void *y)
{
	return strcmp((*(struct bdev *const *)x)->key, (*(struct bdev *const *)y)->key);
}

static void on_upsert(void *user, const struct nf_db_row *row)
{
	struct nf_batch *b = user;
	struct bdev probe, *p = &probe, **found;

	nf_db_copy(row, 0, probe.key, sizeof probe.key);
	found = bsearch(&p, b->bykey, b->nfetch, sizeof *b->bykey, by_key);
	if (found != NULL)
		read_dev(*found, row);
}

/* A row a download may belong to; each device once (SQLite's per-row
 * lookups may return one twice, and a device with a check in this batch
 * was fetched by the upsert). Beyond the table, rows are left out: their
 * downloads count as unmatched. */
static void on_lookup(void *user, const struct nf_db_row *row)
{
	struct nf_batch *b = user;
	int64_t id = nf_db_int(row, 1);
	struct bdev *d;

	for (size_t i = 0; i < b->ndevs; i++)
		if (b->devs[i].fetched && b->devs[i].id == id)
			return;
	if ((d = add_dev(b, NULL, nf_db_text(row, 0))) != NULL)
		read_dev(d, row);
}

/* The upsert's values for device d, into v[UPSERT_NCOLS]: from its last
 * check (only checks upsert). */
static void upsert_values(struct bdev *d, struct nf_db_val *v)
{
	const struct nf_event *c = d->m.check;

	if (nf_store_mac_normalize(c->mac, d->mac) != 0)
		d->mac[0] = '\0';
	v[0] = NF_DB_TEXT_V(d->key);
	v[1] = NF_DB_TEXT_V(d->mac);
	v[2] = NF_DB_TEXT_V(c->ip);
	v[3] = NF_DB_TEXT_V(c->device);
	v[4] = NF_DB_TEXT_V(c->version);
	v[5] = NF_DB_TEXT_V(c->build);
	v[6] = NF_DB_INT_V(c->client);
	v[7] = NF_DB_INT_V(c->hw.chip_id);
	v[8] = NF_DB_INT_V(c->hw.chip_size);
	v[9] = NF_DB_INT_V(c->hw.free_space);
	v[10] = NF_DB_INT_V(c->hw.sketch_size);
	v[11] = NF_DB_TEXT_V(c->hw.sketch_md5);
	v[12] = NF_DB_TEXT_V(c->hw.sdk);
	v[13] = NF_DB_INT_V(d->m.first);
	v[14] = NF_DB_INT_V(d->m.last);
	v[15] = NF_DB_INT_V(d->m.last_check);
	v[16] = NF_DB_INT_V(d->m.checks);
	v[17] = NF_DB_INT_V(c->answer);
	v[18] = NF_DB_TEXT_V(c->target);
	v[19] = NF_DB_INT_V(c->rule);
	v[20] = NF_DB_TEXT_V(c->reason);
}

/* The devices group g's checks name (one per key). Downloads name none:
 * they go to a device their checks made (step 3). 0 or -1 (table full). */
static int collect(struct nf_batch *b, struct group *g)
{
	for (size_t k = g->first; k < g->first + g->count; k++) {
		size_t i = b->order[k];
		const struct nf_event *ev = b->events[i];
		struct bdev *d;

		b->evdev[i] = -1;
		if (!valid_kind(ev))
			continue;
		if (ev->kind != NF_EVENT_CHECK) {
			g->downloads = true;
			continue;
		}
		d = find_key(b, g, b->key[i]);
		if (d == NULL && (d = add_dev(b, g, b->key[i])) == NULL)
			return -1;
		b->evdev[i] = d - b->devs;
		merge(&d->m, ev);
	}
	return 0;
}

/* The lookup's rows (key, ip, image) for the downloads of every group,
 * into v from its start; the same row twice in a row once. Returns their
 * number. */
static size_t lookup_values(struct nf_batch *b, struct nf_db_val *v)
{
	size_t n = 0;

	for (size_t k = 0; k < b->ngroups; k++) {
		const struct group *g = &b->groups[k];

		for (size_t j = g->first; g->downloads && j < g->first + g->count; j++) {
			size_t i = b->order[j];
			const struct nf_event *ev = b->events[i];
			struct nf_db_val *r = v + n * LOOKUP_NCOLS;

			if (!valid_kind(ev) || ev->kind == NF_EVENT_CHECK ||
			    ev->images[0].path[0] == '\0')
				continue;
			/* The MAC's device: fetched already when it checked. */
			r[0] = NF_DB_TEXT_V(g->by_mac && g->head < 0 ? b->key[i] : "");
			r[1] = NF_DB_TEXT_V(ev->ip);
			r[2] = NF_DB_TEXT_V(ev->images[0].path);
			if (n > 0 && strcmp(r[0].s, r[-3].s) == 0 && strcmp(r[1].s, r[-2].s) == 0 &&
			    strcmp(r[2].s, r[-1].s) == 0)
				continue;
			n++;
		}
	}
	return n;
}

/* Every device with a check, upserted, then the rows the downloads may
 * belong to (lookup), both in key order. Their rows arrive by
 * nf_db_sync. */
static int fetch(struct nf_batch *b, struct nf_db *db)
{
	struct nf_db_val *lv;
	size_t nlook;

	for (size_t k = 0; k < b->ngroups; k++)
		if (collect(b, &b->groups[k]) != 0)
			return nf_db_fail(db, "internal: batch device table full");
	b->nfetch = b->ndevs;
	for (size_t k = 0; k < b->nfetch; k++) {
		b->bykey[k] = &b->devs[k];
		upsert_values(&b->devs[k], b->vals + k * UPSERT_NCOLS);
	}
	qsort(b->bykey, b->nfetch, sizeof *b->bykey, by_key);
	if (nf_db_run_rows(db, ST_UPSERT, upsert_row, upsert_arrays, b->vals, b->nfetch,
	                   UPSERT_NCOLS, on_upsert, b) != 0)
		return -1;
	/* After the upsert's values (nf_batch_new sized vals for both). */
	lv = b->vals + b->nfetch * UPSERT_NCOLS;
	nlook = lookup_values(b, lv);
	if (nlook == 0)
		return 0; /* a batch of checks only: the check path's cost as before */
	return nf_db_run_rows(db, ST_LOOKUP, lookup_row, lookup_arrays, lv, nlook, LOOKUP_NCOLS,
	                      on_lookup, b);
}

/* Step 3 ------------------------------------------------------------------ */

/* The device download ev (event i) belongs to, or NULL: identity follows
 * what checks established (docs/STORE.md section 4). The device keyed by
 * its MAC when that device's open offer names the image (header-form
 * NoFUSS, stock updaters); else the device at its IP, without a MAC, whose
 * open offer names it, the newest offer first (path-form NoFUSS, whose
 * updater sends a MAC its checks never did); else the MAC's device when it
 * exists, which keeps the download for an offer yet to come (update.c). */
static struct bdev *route(struct nf_batch *b, size_t i)
{
	const struct nf_event *ev = b->events[i];
	const char *path = ev->images[0].path;
	bool by_mac = b->sort[i][0] != '@';
	struct bdev *own = NULL, *best = NULL;

	for (size_t k = 0; k < b->ndevs; k++) {
		struct bdev *d = &b->devs[k];

		if (!d->fetched)
			continue;
		if (by_mac && strcmp(d->key, b->key[i]) == 0)
			own = d;
		else if (d->mac[0] == '\0' && strcmp(d->ip, ev->ip) == 0 && path[0] != '\0' &&
		         nf_update_open(&d->o) && nf_update_image(&d->o, path) >= 0 &&
		         (best == NULL || d->o.offered_ms > best->o.offered_ms))
			best = d;
	}
	if (own != NULL && nf_update_open(&own->o) && nf_update_image(&own->o, path) >= 0)
		return own;
	return best != NULL ? best : own;
}

/* Applies the events in the order they were posted (each device's in its
 * order; a download's device may be one another group's check made). */
static int apply_events(struct nf_batch *b, size_t n, int64_t skew_ms, uint64_t *unmatched,
                        struct nf_db *db)
{
	for (size_t i = 0; i < n; i++) {
		const struct nf_event *ev = b->events[i];
		struct bdev *d;
		struct nf_history h[NF_UPDATE_MAX_HISTORY];
		int nh;

		if (!valid_kind(ev))
			continue;
		if (ev->kind == NF_EVENT_CHECK) {
			d = b->evdev[i] >= 0 ? &b->devs[b->evdev[i]] : NULL;
			if (d == NULL || !d->fetched)
				return nf_db_fail(db, "internal: device %s not fetched", b->key[i]);
		} else if ((d = route(b, i)) == NULL) {
			(*unmatched)++;
			continue;
		}
		nh = nf_update_apply(&d->o, ev, skew_ms, h);
		if (b->nhist + (size_t)nh > b->histcap)
			return nf_db_fail(db, "internal: batch history table full");
		for (int j = 0; j < nh; j++)
			b->hist[b->nhist++] = (struct hrow){d, ++d->o.hist_seq, h[j]};
		if (ev->kind != NF_EVENT_CHECK && ev->time_ms > d->seen_ms)
			d->seen_ms = ev->time_ms;
	}
	return 0;
}

/* Step 4 ------------------------------------------------------------------ */

static int save_devices(struct nf_batch *b, struct nf_db *db)
{
	size_t n = 0;

	for (size_t k = 0; k < b->ndevs; k++) {
		struct bdev *d = &b->devs[k];
		struct nf_db_val *v = b->vals + n * SAVE_NCOLS;

		if (!d->fetched || (!nf_offer_changed(&d->before, &d->o) && d->seen_ms == 0))
			continue;
		v[0] = NF_DB_INT_V(d->id);
		nf_offer_values(&d->o, v + 1);
		v[1 + NF_OFFER_NCOLS] = NF_DB_INT_V(d->seen_ms);
		n++;
	}
	return nf_db_run_rows(db, ST_SAVE, save_row, save_arrays, b->vals, n, SAVE_NCOLS, NULL,
	                      NULL);
}

/* The new history entries; of a device with more than history_max new
 * ones, only its newest history_max (each slot once per statement). */
static int save_history(struct nf_batch *b, struct nf_db *db, unsigned history_max)
{
	size_t n = 0;

	for (size_t k = 0; k < b->nhist; k++) {
		const struct hrow *r = &b->hist[k];
		struct nf_db_val *v = b->vals + n * HISTORY_NCOLS;

		if (r->seq <= r->dev->o.hist_seq - (int64_t)history_max)
			continue;
		v[0] = NF_DB_INT_V(r->dev->id);
		v[1] = NF_DB_INT_V(r->seq % history_max);
		v[2] = NF_DB_INT_V(r->seq);
		v[3] = NF_DB_INT_V(r->h.at_ms);
		v[4] = NF_DB_INT_V(r->h.kind);
		v[5] = NF_DB_INT_V(r->h.state);
		v[6] = NF_DB_TEXT_V(r->h.target);
		v[7] = NF_DB_INT_V(r->h.rule);
		v[8] = NF_DB_TEXT_V(r->h.version);
		v[9] = NF_DB_TEXT_V(r->h.image);
		v[10] = NF_DB_INT_V(r->h.bytes);
		v[11] = NF_DB_INT_V(r->h.total);
		v[12] = NF_DB_TEXT_V(r->h.detail);
		n++;
	}
	return nf_db_run_rows(db, ST_HISTORY, history_row, history_arrays, b->vals, n,
	                      HISTORY_NCOLS, NULL, NULL);
}

/* Rolls back, keeping the error that caused it. A transaction whose
 * connection was lost keeps its id: its COMMIT may have been sent and done
 * (nf_batch_resolve); any other failure leaves it aborted for sure. */
static int roll_back(struct nf_batch *b, struct nf_db *db)
{
	char why[sizeof db->error];

	if (nf_db_ok(db))
		b->txid = 0;
	memcpy(why, db->error, sizeof why);
	nf_db_clear(db);
	nf_db_run(db, -1, "ROLLBACK", NULL, 0, NULL, NULL);
	nf_db_sync(db);
	nf_db_clear(db);
	nf_db_fail(db, "%s", why[0] != '\0' ? why : "transaction failed");
	return -1;
}

static void on_txid(void *user, const struct nf_db_row *row)
{
	((struct nf_batch *)user)->txid = nf_db_int(row, 0);
}

int nf_batch_write(struct nf_batch *b, struct nf_db *db, struct nf_event *const *events,
                   size_t n, unsigned history_max, int64_t skew_ms, uint64_t *unmatched)
{
	bool pg = nf_db_backend(db) == NF_DB_PG;

	b->txid = 0;
	b->lost = 0;
	if (n == 0)
		return 0;
	if (n > b->max)
		return nf_db_fail(db, "internal: batch of %zu over %zu", n, b->max);
	nf_db_clear(db);
	b->events = events;
	b->ndevs = b->nhist = b->nfetch = 0;
	make_groups(b, n);
	/* On PostgreSQL the transaction's id comes in the first round trip, so
	 * that a COMMIT whose answer is lost can be looked up after
	 * (docs/STORE.md section 6). txid_current(), not pg_current_xact_id():
	 * it exists from PostgreSQL 10 on (txid_status's first release) and
	 * still in 17. The transaction writes anyway: taking an id costs it
	 * nothing more. SQLite commits locally and needs none. */
	if (nf_db_run(db, -1, pg ? "BEGIN" : "BEGIN IMMEDIATE", NULL, 0, NULL, NULL) != 0 ||
	    (pg && nf_db_run(db, -1, "SELECT txid_current()", NULL, 0, on_txid, b) != 0) ||
	    fetch(b, db) != 0 || nf_db_sync(db) != 0)
		return roll_back(b, db);
	if (apply_events(b, n, skew_ms, &b->lost, db) != 0)
		return roll_back(b, db);
	if (save_devices(b, db) != 0 || save_history(b, db, history_max) != 0 ||
	    nf_db_run(db, -1, "COMMIT", NULL, 0, NULL, NULL) != 0 || nf_db_sync(db) != 0)
		return roll_back(b, db);
	b->txid = 0;
	*unmatched += b->lost;
	return 0;
}

bool nf_batch_cut(const struct nf_batch *b)
{
	return b->txid != 0;
}

static void on_status(void *user, const struct nf_db_row *row)
{
	nf_db_copy(row, 0, user, 16);
}

int nf_batch_resolve(struct nf_batch *b, struct nf_db *db, uint64_t *unmatched)
{
	struct nf_db_val id = NF_DB_INT_V(b->txid);
	char status[16] = "";

	if (b->txid == 0)
		return 0;
	nf_db_clear(db);
	if (nf_db_run(db, -1, "SELECT txid_status($1)", &id, 1, on_status, status) != 0 ||
	    nf_db_sync(db) != 0) {
		/* Lost again: ask again. An error on a working connection ("in
		 * the future": a standby promoted without it) means this server
		 * never committed it: write the events again. */
		if (!nf_db_ok(db))
			return -1;
		b->txid = 0;
		return 0;
	}
	if (strcmp(status, "committed") == 0) {
		b->txid = 0;
		*unmatched += b->lost;
		return 1;
	}
	if (strcmp(status, "in progress") == 0) {
		/* Its backend has not yet seen its client go (a partition: it
		 * may not for hours). It may still commit (a COMMIT received is
		 * carried out without the client), so writing the events again
		 * now could count them twice, and would wait on its row locks
		 * anyway. Its client is gone for good: end it (the same role
		 * may; a backend in its commit finishes it first), and ask
		 * again after a pause, when the answer is final. Its xid is the
		 * id's low 32 bits; an error here (no right to) only leaves the
		 * server to end it by itself. */
		nf_db_clear(db);
		nf_db_run(db, -1,
		          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
		          " WHERE backend_xid::text = ($1 % 4294967296)::text"
		          " AND pid <> pg_backend_pid()",
		          &id, 1, NULL, NULL);
		nf_db_sync(db);
		nf_db_clear(db);
		return nf_db_fail(db, "postgresql: transaction %lld, cut off before its COMMIT's "
		                      "answer, still in progress",
		                  (long long)b->txid);
	}
	/* "aborted", or NULL: too old for the server's commit log, which takes
	 * hundreds of millions of transactions, not a retry's seconds. Writing
	 * again is then the safe side: a device counted twice rather than an
	 * update's proof lost. */
	b->txid = 0;
	return 0;
}

void nf_batch_count(const struct nf_batch *b, uint64_t counts[NF_HISTORY_COUNT])
{
	for (size_t k = 0; k < b->nhist; k++) {
		int kind = b->hist[k].h.kind;
		if (kind > 0 && kind < NF_HISTORY_COUNT)
			counts[kind]++;
	}
}
