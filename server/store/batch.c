/*
 * batch.c - writes one batch of events in one transaction, applying the
 * proof-of-update state machine (update.c) to each device they concern.
 *
 * 1. Group. The events are sorted, stably, by MAC, or by "@ip" for those
 *    without one (path-form checks, and MAC-less downloads), so that each
 *    group holds one device's checks in the order they were posted.
 * 2. Read. One statement reads every row the batch needs: the devices that
 *    checked, and the rows the downloads may belong to (the device keyed
 *    by a download's MAC, and the devices at its IP, without a MAC, whose
 *    open offer names its image). On PostgreSQL it locks them (FOR UPDATE,
 *    in key order) until commit. A device that checked and was not found
 *    is new. Nothing is written yet.
 * 3. Apply. The events run through nf_update_apply in the order they were
 *    posted, each check on its device, each download on the device route()
 *    picks from the offers as applied so far (a path-form device's check
 *    and its download with a MAC may share a batch).
 * 4. Store. Each device is written once: the rows read, by an UPDATE that
 *    merges what the checks told (the newest check wins, checks are added
 *    up, first and last seen are a min and a max) and sets the offer as
 *    applied (one UPDATE for the devices whose offer changed, one of only
 *    the inventory for the others); the new devices by one INSERT ... ON
 *    CONFLICT DO NOTHING RETURNING their ids. Then each new history entry
 *    goes to its device's ring (slot = seq % history_max), commit.
 *
 * Concurrency (PostgreSQL, READ COMMITTED, several nodes): the read takes
 * all the row locks a batch needs in one statement, in key order, so that
 * two nodes' batches never deadlock on them, and nobody changes a row
 * between its read and its write. A new device has no row to lock: when
 * another node inserts the same key between this batch's read and its
 * insert, the insert waits for that node's transaction and then does
 * nothing; the batch sees its row missing from RETURNING, rolls back and
 * is written again (at most NF_BATCH_MAX_RACES times), now reading that
 * row. The insert waits only on other inserts, each in key order, and a
 * read waits only on locks: no cycle (docs/STORE.md section 7).
 *
 * Steps 2 and 4 are one statement per kind for the whole batch on
 * PostgreSQL (the rows travel as arrays: nf_db_run_rows), one per row on
 * SQLite (per-row statements would spend the server's time setting up
 * each one); either way each device is written once per batch. Any failure
 * rolls the whole transaction back; the caller keeps the same events and
 * tries again, except when PostgreSQL's connection was lost: the COMMIT may
 * have committed, and nf_batch_resolve asks the server by the
 * transaction's id (txid_status) whether it did.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

enum { ST_READ, ST_READ_KEY, ST_UPDATE, ST_CHECKS, ST_INSERT, ST_HISTORY };
#define NF_BATCH_MAX_RACES 4 /* attempts when other nodes insert the batch's new devices */

/* A device's inventory columns, from its newest check. With NF_OFFER_COLUMNS
 * they make the row the writer writes (ROW_NCOLS values: row_values). */
#define INV_COLUMNS                                                                        \
	"key, mac, ip, device, version, build, client, chip_id, chip_size, free_space, "       \
	"sketch_size, sketch_md5, sdk, first_seen, last_seen, last_check, checks, answer, "    \
	"answer_target, answer_rule, answer_reason"
#define INV_NCOLS 21
#define ROW_NCOLS (INV_NCOLS + NF_OFFER_NCOLS)
/* The update's rows: the device's id, then the row. */
#define UPDATE_NCOLS (1 + ROW_NCOLS)

/* The rows a batch needs, locked, in one statement: for each (key, ip,
 * image) row, the device keyed by key (a device that checked, or a
 * download's MAC; '' for none), and for a download's image the devices at
 * its IP, without a MAC, whose open offer names the image. Never inserts:
 * a key not found is a new device (step 4 inserts it). On PostgreSQL FOR
 * UPDATE in key order: each node takes all of a batch's row locks in this
 * one statement, in the same order, so that two nodes' reads never
 * deadlock, and holds them until commit, so that what it read is still
 * the row when it writes it (docs/STORE.md section 7). */
#define READ_NCOLS 3
#define READ_COLS                                                                          \
	"SELECT key, id, " NF_OFFER_COLUMNS ", last_check, answer, answer_target, "             \
	"answer_reason, mac, ip FROM devices "
#define READ_OPEN "mac = '' AND state IN (1, 2, 3, 6) "
static const char read_row[] =
	READ_COLS "WHERE key = $1 OR ($3 <> '' AND ip = $2 AND " READ_OPEN
	"AND (img0_path = $3 OR img1_path = $3))";
/* A batch of checks only on PostgreSQL, and SQLite's devices that
 * checked: by key alone (the IP's part costs a second index search a
 * row). */
static const char read_key[] = READ_COLS "WHERE key = $1";
static const char read_key_arrays[] =
	READ_COLS "WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE";
static const char read_arrays[] =
	READ_COLS "WHERE id IN (SELECT d.id FROM devices AS d WHERE d.key = ANY($1::text[]) "
	"UNION ALL SELECT d.id FROM unnest($2::text[], $3::text[]) AS u (ip, img) "
	"JOIN devices AS d ON u.img <> '' AND d.ip = u.ip AND d." READ_OPEN
	"AND (d.img0_path = u.img OR d.img1_path = u.img)) ORDER BY key FOR UPDATE";

/* The update of a device read (and locked) by the batch: its offer as
 * applied, and its inventory merged as checks merge whichever node writes
 * first: the newest check's values win (a check older than the one stored,
 * from another node, does not overwrite them), checks are added up, first
 * and last seen are a min and a max. A device with downloads only
 * (checks 0) keeps its inventory but last seen. The SET clause is made by
 * make_sql from the column lists. */
#define NEWER "x.checks > 0 AND x.last_check >= devices.last_check"
static const char *const merge_set[] = {
	"first_seen = CASE WHEN x.checks > 0 AND x.first_seen < devices.first_seen "
	"THEN x.first_seen ELSE devices.first_seen END",
	"last_seen = CASE WHEN x.last_seen > devices.last_seen THEN x.last_seen "
	"ELSE devices.last_seen END",
	"checks = devices.checks + x.checks",
	"last_check = CASE WHEN x.last_check > devices.last_check THEN x.last_check "
	"ELSE devices.last_check END",
};
/* Inventory columns that take the newest check's value. */
static const char *const newer_cols[] = {
	"mac", "ip", "device", "version", "build", "client", "chip_id", "chip_size",
	"free_space", "sketch_size", "sketch_md5", "sdk", "answer", "answer_target",
	"answer_rule", "answer_reason",
};

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
	bool fetched;      /* known: read, or new (its checks make it) */
	bool is_new;       /* not in the table when read: step 4 inserts it */
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

/* The update's and the insert's text, made from the column lists. */
#define MAX_SQL 16384
enum {
	SQL_UPDATE_ROW, SQL_UPDATE_ARRAYS,  /* inventory and offer */
	SQL_CHECKS_ROW, SQL_CHECKS_ARRAYS,  /* inventory only: the offer unchanged */
	SQL_INSERT_ROW, SQL_INSERT_ARRAYS,
	SQL_COUNT
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
	struct bdev **bykey;   /* the devices that checked, by key */
	struct hrow *hist;
	size_t nhist, histcap;
	struct nf_db_val *vals; /* rows of values for nf_db_run_rows */
	char (*sql)[MAX_SQL];   /* [SQL_COUNT] */
	int64_t txid;          /* PostgreSQL: the last transaction's id while its fate is unknown */
	uint64_t lost;         /* its downloads without a device */
};

static int make_sql(struct nf_batch *b);

struct nf_batch *nf_batch_new(size_t batch_max)
{
	struct nf_batch *b = calloc(1, sizeof *b);
	size_t nvals;

	if (b == NULL)
		return NULL;
	b->max = batch_max;
	b->devcap = 2 * batch_max;
	b->histcap = NF_UPDATE_MAX_HISTORY * batch_max;
	nvals = b->devcap * UPDATE_NCOLS > b->histcap * HISTORY_NCOLS ? b->devcap * UPDATE_NCOLS
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
	b->sql = calloc(SQL_COUNT, sizeof *b->sql);
	if (b->order == NULL || b->evdev == NULL || b->sort == NULL || b->key == NULL ||
	    b->groups == NULL || b->devs == NULL || b->bykey == NULL || b->hist == NULL ||
	    b->vals == NULL || b->sql == NULL || make_sql(b) != 0) {
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
	free(b->sql);
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

/* A row read: key, id, the offer, then the last check and answer. */
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

/* The device with a check in this batch keyed key, or NULL. */
static struct bdev *checked(const struct nf_batch *b, const char *key)
{
	struct bdev probe, *p = &probe, **found;

	snprintf(probe.key, sizeof probe.key, "%s", key);
	found = bsearch(&p, b->bykey, b->nfetch, sizeof *b->bykey, by_key);
	return found != NULL ? *found : NULL;
}

/* A row read: a device that checked, or one a download may belong to; each
 * device once (SQLite's per-row reads may return one twice). Beyond the
 * table, rows are left out: their downloads count as unmatched. */
static void on_read(void *user, const struct nf_db_row *row)
{
	struct nf_batch *b = user;
	struct bdev *d = checked(b, nf_db_text(row, 0));
	int64_t id = nf_db_int(row, 1);

	if (d != NULL) {
		if (!d->fetched)
			read_dev(d, row);
		return;
	}
	for (size_t i = 0; i < b->ndevs; i++)
		if (b->devs[i].fetched && b->devs[i].id == id)
			return;
	if ((d = add_dev(b, NULL, nf_db_text(row, 0))) != NULL)
		read_dev(d, row);
}

/* Device d's row, in INV_COLUMNS then NF_OFFER_COLUMNS' order, into
 * v[ROW_NCOLS]: its inventory from its last check (with downloads only, ''
 * and 0, which the update does not take, and last seen), and its offer as
 * applied. */
static void row_values(const struct bdev *d, struct nf_db_val *v)
{
	static const struct nf_event none;
	const struct nf_event *c = d->m.check != NULL ? d->m.check : &none;

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
	v[14] = NF_DB_INT_V(d->m.last > d->seen_ms ? d->m.last : d->seen_ms);
	v[15] = NF_DB_INT_V(d->m.last_check);
	v[16] = NF_DB_INT_V(d->m.checks);
	v[17] = NF_DB_INT_V(c->answer);
	v[18] = NF_DB_TEXT_V(c->target);
	v[19] = NF_DB_INT_V(c->rule);
	v[20] = NF_DB_TEXT_V(c->reason);
	nf_offer_values(&d->o, v + INV_NCOLS);
}

/* Appends to one of b's statements; false once it would overflow. */
static bool put(char *sql, const char *fmt, ...)
{
	size_t len = strlen(sql);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(sql + len, MAX_SQL - len, fmt, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < MAX_SQL - len;
}

/* The SET of a column of the update (x is the row's new values). */
static bool put_set(char *sql, int i, const char *name)
{
	const char *sep = i > 1 ? ", " : "";

	if (i >= INV_NCOLS)
		return put(sql, "%s%s = x.%s", sep, name, name);
	for (size_t k = 0; k < sizeof newer_cols / sizeof *newer_cols; k++)
		if (strcmp(newer_cols[k], name) == 0)
			return put(sql, "%s%s = CASE WHEN " NEWER " THEN x.%s ELSE devices.%s END", sep,
			           name, name, name);
	for (size_t k = 0; k < sizeof merge_set / sizeof *merge_set; k++)
		if (strncmp(merge_set[k], name, strlen(name)) == 0 &&
		    merge_set[k][strlen(name)] == ' ')
			return put(sql, "%s%s", sep, merge_set[k]);
	return false; /* an inventory column without its rule */
}

/* src with each x.<column> replaced by that column's parameter in the
 * update's row form ($2 for the first of the row, after the id): SQLite
 * runs the update one row at a time, and an UPDATE ... FROM a one-row
 * subquery costs it twice as much. false when it would not fit. */
static bool to_params(char *dst, const char *src, char name[][48])
{
	size_t n = 0;

	for (const char *p = src; *p != '\0';) {
		bool ref = p[0] == 'x' && p[1] == '.' && (p == src || p[-1] == ' ' || p[-1] == '(');
		size_t len = ref ? strspn(p + 2, "abcdefghijklmnopqrstuvwxyz0123456789_") : 0;
		int i = 0;

		while (ref && i < ROW_NCOLS && (strlen(name[i]) != len || strncmp(name[i], p + 2, len) != 0))
			i++;
		if (ref && i == ROW_NCOLS)
			return false;
		int w = ref ? snprintf(dst + n, MAX_SQL - n, "$%d", i + 2)
		            : snprintf(dst + n, MAX_SQL - n, "%c", *p);
		if (w < 0 || (size_t)w >= MAX_SQL - n)
			return false;
		n += (size_t)w;
		p += ref ? 2 + len : 1;
	}
	return true;
}

/* An update of a device read, in both forms, from the first ncols columns
 * of the row (name, and v for their types): the id then those columns. */
static bool make_update(struct nf_batch *b, int form, int ncols, char name[][48],
                        const struct nf_db_val *v)
{
	char *row = b->sql[form], *arrays = b->sql[form + 1];
	bool ok = put(arrays, "UPDATE devices SET ");

	for (int i = 1; ok && i < ncols; i++)
		ok = put_set(arrays, i, name[i]);
	ok = ok && to_params(row, arrays, name) && put(row, " WHERE id = $1 AND key = $2") &&
	     put(arrays, " FROM unnest($1::bigint[]");
	for (int i = 0; ok && i < ncols; i++)
		ok = put(arrays, ", $%d::%s[]", i + 2, v[i].type == NF_DB_TEXT ? "text" : "bigint");
	ok = ok && put(arrays, ") AS x (id");
	for (int i = 0; ok && i < ncols; i++)
		ok = put(arrays, ", %s", name[i]);
	return ok && put(arrays, ") WHERE devices.id = x.id");
}

/* The updates' and the insert's text, for both backends, from the column
 * lists (INV_COLUMNS, NF_OFFER_COLUMNS), so that a column added to the
 * offer is written without a change here. PostgreSQL's arrays carry
 * text or bigint, as row_values' values are (an integer column takes a
 * bigint by assignment). 0, or -1 when a text would not fit. */
static int make_sql(struct nf_batch *b)
{
	static const char cols[] = INV_COLUMNS ", " NF_OFFER_COLUMNS;
	char name[ROW_NCOLS][48];
	struct nf_db_val v[ROW_NCOLS];
	struct nf_event ev = {0};
	struct bdev d = {0};
	const char *p = cols;
	bool ok;
	int i;

	for (i = 0; i < ROW_NCOLS && *p != '\0'; i++) {
		size_t len = strcspn(p, ",");

		if (len >= sizeof name[i])
			return -1;
		memcpy(name[i], p, len);
		name[i][len] = '\0';
		p += len;
		p += strspn(p, ", ");
	}
	if (i != ROW_NCOLS || *p != '\0')
		return -1;
	d.m.check = &ev;
	row_values(&d, v);
	ok = make_update(b, SQL_UPDATE_ROW, ROW_NCOLS, name, v) &&
	     make_update(b, SQL_CHECKS_ROW, INV_NCOLS, name, v) &&
	     put(b->sql[SQL_INSERT_ROW], "INSERT INTO devices (%s) VALUES (", cols) &&
	     put(b->sql[SQL_INSERT_ARRAYS], "INSERT INTO devices (%s) SELECT * FROM unnest(", cols);
	for (i = 0; ok && i < ROW_NCOLS; i++)
		ok = put(b->sql[SQL_INSERT_ROW], "%s$%d", i > 0 ? ", " : "", i + 1) &&
		     put(b->sql[SQL_INSERT_ARRAYS], "%s$%d::%s[]", i > 0 ? ", " : "", i + 1,
		         v[i].type == NF_DB_TEXT ? "text" : "bigint");
	ok = ok && put(b->sql[SQL_INSERT_ROW], ") ON CONFLICT (key) DO NOTHING RETURNING key, id") &&
	     put(b->sql[SQL_INSERT_ARRAYS],
	         ") AS x ORDER BY 1 ON CONFLICT (key) DO NOTHING RETURNING key, id");
	return ok ? 0 : -1;
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

/* The read's rows (key, ip, image), into v from its start: with
 * checks, one per device that checked; then one per download of every
 * group, the same row twice in a row once. Returns their number. */
static size_t read_values(struct nf_batch *b, struct nf_db_val *v, bool checks)
{
	size_t n = 0, first;

	for (; checks && n < b->nfetch; n++) {
		v[n * READ_NCOLS] = NF_DB_TEXT_V(b->bykey[n]->key);
		v[n * READ_NCOLS + 1] = v[n * READ_NCOLS + 2] = NF_DB_TEXT_V("");
	}
	first = n;
	for (size_t k = 0; k < b->ngroups; k++) {
		const struct group *g = &b->groups[k];

		for (size_t j = g->first; g->downloads && j < g->first + g->count; j++) {
			size_t i = b->order[j];
			const struct nf_event *ev = b->events[i];
			struct nf_db_val *r = v + n * READ_NCOLS;

			if (!valid_kind(ev) || ev->kind == NF_EVENT_CHECK ||
			    ev->images[0].path[0] == '\0')
				continue;
			/* The MAC's device: read already when it checked. */
			r[0] = NF_DB_TEXT_V(g->by_mac && g->head < 0 ? b->key[i] : "");
			r[1] = NF_DB_TEXT_V(ev->ip);
			r[2] = NF_DB_TEXT_V(ev->images[0].path);
			if (n > first && strcmp(r[0].s, r[-3].s) == 0 && strcmp(r[1].s, r[-2].s) == 0 &&
			    strcmp(r[2].s, r[-1].s) == 0)
				continue;
			n++;
		}
	}
	return n;
}

/* Reads (and on PostgreSQL locks) every row the batch needs: the devices
 * with a check, and those the downloads may belong to, in one statement
 * on PostgreSQL (SQLite, one writer at a time, reads the devices that
 * checked by key first). Its rows arrive by nf_db_sync. */
static int fetch(struct nf_batch *b, struct nf_db *db)
{
	bool pg = nf_db_backend(db) == NF_DB_PG;
	struct nf_db_val *v = b->vals;
	size_t nread;

	for (size_t k = 0; k < b->ngroups; k++)
		if (collect(b, &b->groups[k]) != 0)
			return nf_db_fail(db, "internal: batch device table full");
	b->nfetch = b->ndevs;
	for (size_t k = 0; k < b->nfetch; k++)
		b->bykey[k] = &b->devs[k];
	qsort(b->bykey, b->nfetch, sizeof *b->bykey, by_key);
	/* The devices that checked by key: the whole read of a batch without
	 * downloads on PostgreSQL, the first part on SQLite. */
	if (!pg || read_values(b, v, true) == b->nfetch) {
		int rc;

		for (size_t k = 0; k < b->nfetch; k++)
			v[k] = NF_DB_TEXT_V(b->bykey[k]->key);
		rc = nf_db_run_rows(db, ST_READ_KEY, read_key, read_key_arrays, v, b->nfetch, 1,
		                    on_read, b);
		if (rc != 0 || pg)
			return rc;
		v += b->nfetch;
	}
	nread = read_values(b, v, pg);
	return nf_db_run_rows(db, ST_READ, read_row, read_arrays, v, nread, READ_NCOLS, on_read,
	                      b);
}

/* After the read: a device that checked and was not found is new (no
 * offer, nothing applied); one found is at the IP of its newest check when
 * that is newer than the row's (as the update will store it), for
 * route(). */
static void known(struct nf_batch *b)
{
	for (size_t k = 0; k < b->nfetch; k++) {
		struct bdev *d = &b->devs[k];
		const struct nf_event *c = d->m.check;

		if (!d->fetched) {
			memset(&d->o, 0, sizeof d->o);
			d->before = d->o;
			d->fetched = d->is_new = true;
			if (nf_store_mac_normalize(c->mac, d->mac) != 0)
				d->mac[0] = '\0';
			snprintf(d->ip, sizeof d->ip, "%s", c->ip);
		} else if (d->m.last_check >= d->o.checked_ms) {
			snprintf(d->ip, sizeof d->ip, "%s", c->ip);
		}
	}
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

/* A new device's id, from the insert. */
static void on_insert(void *user, const struct nf_db_row *row)
{
	struct bdev *d = checked(user, nf_db_text(row, 0));

	if (d != NULL && d->is_new)
		d->id = nf_db_int(row, 1);
}

/* The key of a new device the insert gave no id (another node's), or NULL. */
static const char *not_inserted(const struct nf_batch *b)
{
	for (size_t k = 0; k < b->nfetch; k++)
		if (b->devs[k].is_new && b->devs[k].id == 0)
			return b->devs[k].key;
	return NULL;
}


/* Writes each device once: the devices read (and locked) by one update of
 * those whose offer changed and one of the others' inventory; the new ones
 * by one insert that returns their ids. A new key
 * another node inserted after the read (its insert conflicts: DO NOTHING)
 * returns no id: nf_batch_write then writes the batch again. */
static int save_devices(struct nf_batch *b, struct nf_db *db, size_t *nnew)
{
	struct nf_db_val row[ROW_NCOLS];
	size_t n = 0;

	/* First the devices whose offer changed (inventory and offer), then
	 * the others that checked (inventory only: an offer unchanged is not
	 * written, which spares SQLite the devices_state index). */
	for (int only = 0; only <= 1; only++) {
		int ncols = only ? 1 + INV_NCOLS : UPDATE_NCOLS;

		n = 0;
		for (size_t k = 0; k < b->ndevs; k++) {
			struct bdev *d = &b->devs[k];
			struct nf_db_val *r = b->vals + n * (size_t)ncols;

			if (!d->fetched || d->is_new || nf_offer_changed(&d->before, &d->o) == only ||
			    (only && d->m.checks == 0 && d->seen_ms == 0))
				continue;
			r[0] = NF_DB_INT_V(d->id);
			row_values(d, row);
			memcpy(r + 1, row, (size_t)(ncols - 1) * sizeof *row);
			n++;
		}
		if (nf_db_run_rows(db, only ? ST_CHECKS : ST_UPDATE,
		                   b->sql[only ? SQL_CHECKS_ROW : SQL_UPDATE_ROW],
		                   b->sql[only ? SQL_CHECKS_ARRAYS : SQL_UPDATE_ARRAYS], b->vals, n,
		                   ncols, NULL, NULL) != 0)
			return -1;
	}
	n = 0;
	for (size_t k = 0; k < b->ndevs; k++)
		if (b->devs[k].is_new)
			row_values(&b->devs[k], b->vals + n++ * ROW_NCOLS);
	*nnew = n;
	return nf_db_run_rows(db, ST_INSERT, b->sql[SQL_INSERT_ROW], b->sql[SQL_INSERT_ARRAYS],
	                      b->vals, n, ROW_NCOLS, on_insert, b);
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

/* One attempt: 0 committed, -1 failed and rolled back (roll_back), 1 a
 * new device of the batch was inserted by another node after the read
 * (rolled back: write the batch again, which then reads that row). */
static int write_once(struct nf_batch *b, struct nf_db *db, size_t n, unsigned history_max,
                      int64_t skew_ms)
{
	bool pg = nf_db_backend(db) == NF_DB_PG;
	size_t nnew = 0;
	const char *taken;

	b->txid = 0;
	b->lost = 0;
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
	known(b);
	if (apply_events(b, n, skew_ms, &b->lost, db) != 0 || save_devices(b, db, &nnew) != 0)
		return roll_back(b, db);
	/* The history needs the new devices' ids: one more round trip, only
	 * for a batch with new devices. */
	if (nnew > 0 && nf_db_sync(db) != 0)
		return roll_back(b, db);
	if (nnew > 0 && (taken = not_inserted(b)) != NULL) {
		nf_db_fail(db, "device %s was inserted by another node meanwhile", taken);
		roll_back(b, db);
		b->txid = 0; /* no COMMIT was sent: it did not commit */
		if (!nf_db_ok(db))
			return -1;
		nf_db_clear(db);
		return 1;
	}
	if (save_history(b, db, history_max) != 0 ||
	    nf_db_run(db, -1, "COMMIT", NULL, 0, NULL, NULL) != 0 || nf_db_sync(db) != 0)
		return roll_back(b, db);
	b->txid = 0;
	return 0;
}

int nf_batch_write(struct nf_batch *b, struct nf_db *db, struct nf_event *const *events,
                   size_t n, unsigned history_max, int64_t skew_ms, uint64_t *unmatched)
{
	int rc = 1;

	b->txid = 0;
	b->lost = 0;
	if (n == 0)
		return 0;
	if (n > b->max)
		return nf_db_fail(db, "internal: batch of %zu over %zu", n, b->max);
	nf_db_clear(db);
	b->events = events;
	/* Another node inserting one of the batch's new devices between its
	 * read and its insert is rare (both saw its first check within one
	 * batch); a few attempts more, then the writer's own retry. */
	for (int attempt = 0; rc == 1 && attempt < NF_BATCH_MAX_RACES; attempt++)
		rc = write_once(b, db, n, history_max, skew_ms);
	if (rc == 1)
		return nf_db_fail(db, "new devices of the batch inserted by other nodes %d times",
		                  NF_BATCH_MAX_RACES);
	if (rc == 0)
		*unmatched += b->lost;
	return rc;
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
