/*
 * query.c - what the admin API reads: pages of devices by filter and sort,
 * one device with its history, the fleet summary, and tags. Each runs on
 * the store's reading connection (nf_store_read), never the writer's, and
 * copies its results into memory the caller frees.
 *
 * SQL text is put together only from the fixed fragments below, chosen by
 * which filters are set and by the sort enum; every value a caller gives
 * travels as a bound parameter. Silent is computed here: a device stored as
 * downloaded whose download is older than now - silent_ms reads as silent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

#define DEFAULT_PAGE 100

/* The columns of struct nf_device, in read_device's order; the last one is
 * the device's tags ("%s": the backend's way to join strings). */
#define DEVICE_SELECT                                                                      \
	"SELECT key, mac, ip, device, version, build, client, chip_id, chip_size, "          \
	"free_space, sketch_size, sketch_md5, sdk, first_seen, last_seen, last_check, "      \
	"checks, answer, answer_target, answer_rule, answer_reason, " NF_OFFER_COLUMNS ", "  \
	"(SELECT %s FROM (SELECT tag FROM tags WHERE tags.device_id = devices.id "           \
	"ORDER BY tag) AS t) AS tags, pin_release, excluded, "                               \
	"(SELECT version FROM releases WHERE releases.id = devices.pin_release) AS pin_version " \
	"FROM devices"
#define OFFER_COL 21
#define TAGS_COL (OFFER_COL + NF_OFFER_NCOLS)
#define CONTROLS_COL (TAGS_COL + 1) /* pin_release, excluded, pin_version */

static const char *const sort_columns[NF_SORT_COUNT] = {
	"last_seen", "first_seen", "key", "device", "version", "state", "ip",
};

static int64_t wall_ms(int64_t now_ms)
{
	struct timespec ts;

	if (now_ms > 0)
		return now_ms;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *tag_join(const struct nf_db *db)
{
	return nf_db_backend(db) == NF_DB_PG ? "string_agg(tag, ',')" : "group_concat(tag, ',')";
}

static void read_device(const struct nf_db_row *row, int64_t cut, struct nf_device *d)
{
	struct nf_offer o;

	memset(d, 0, sizeof *d);
	nf_db_copy(row, 0, d->key, sizeof d->key);
	nf_db_copy(row, 1, d->mac, sizeof d->mac);
	nf_db_copy(row, 2, d->ip, sizeof d->ip);
	nf_db_copy(row, 3, d->device, sizeof d->device);
	nf_db_copy(row, 4, d->version, sizeof d->version);
	nf_db_copy(row, 5, d->build, sizeof d->build);
	d->client = (enum nf_client_kind)nf_db_int(row, 6);
	d->hw.chip_id = (uint64_t)nf_db_int(row, 7);
	d->hw.chip_size = (uint32_t)nf_db_int(row, 8);
	d->hw.free_space = (uint32_t)nf_db_int(row, 9);
	d->hw.sketch_size = (uint32_t)nf_db_int(row, 10);
	nf_db_copy(row, 11, d->hw.sketch_md5, sizeof d->hw.sketch_md5);
	nf_db_copy(row, 12, d->hw.sdk, sizeof d->hw.sdk);
	d->first_seen_ms = nf_db_int(row, 13);
	d->last_seen_ms = nf_db_int(row, 14);
	d->last_check_ms = nf_db_int(row, 15);
	d->checks = (uint64_t)nf_db_int(row, 16);
	d->answer = (enum nf_answer_kind)nf_db_int(row, 17);
	nf_db_copy(row, 18, d->answer_target, sizeof d->answer_target);
	d->answer_rule = (int32_t)nf_db_int(row, 19);
	nf_db_copy(row, 20, d->answer_reason, sizeof d->answer_reason);
	nf_offer_read(row, OFFER_COL, &o);
	d->state = (enum nf_update_state)o.state;
	if (o.state == NF_UPDATE_DOWNLOADED && o.state_ms < cut)
		d->state = NF_UPDATE_SILENT;
	d->state_ms = o.state_ms;
	memcpy(d->target, o.target, sizeof d->target);
	d->rule = o.rule;
	d->offered_ms = o.offered_ms;
	memcpy(d->from_version, o.from, sizeof d->from_version);
	for (int i = 0; i < NF_STORE_IMAGES; i++) {
		memcpy(d->images[i].path, o.img[i].path, sizeof d->images[i].path);
		memcpy(d->images[i].md5, o.img[i].md5, sizeof d->images[i].md5);
		d->images[i].size = o.img[i].size;
		d->image_bytes[i] = o.img[i].bytes;
	}
	nf_db_copy(row, TAGS_COL, d->tags, sizeof d->tags);
	d->pin_release = nf_db_int(row, CONTROLS_COL);
	d->excluded = nf_db_int(row, CONTROLS_COL + 1) != 0;
	nf_db_copy(row, CONTROLS_COL + 2, d->pin_version, sizeof d->pin_version);
}

/* Devices ----------------------------------------------------------------- */

struct where {
	char sql[1024];
	struct nf_db_val v[12];
	int n;
	char mac[NF_STORE_MAC_LEN * 2 + 2], ip[NF_STORE_IP_LEN * 2 + 2];
};

/* Appends fragment (with one "$%d") bound to value. */
static void add(struct where *w, const char *fragment, struct nf_db_val value)
{
	size_t len = strlen(w->sql);

	w->v[w->n++] = value;
	snprintf(w->sql + len, sizeof w->sql - len, fragment, w->n);
}

/* A LIKE pattern matching what starts with prefix ('\' escapes). */
static void like_prefix(const char *prefix, bool upper, char *out, size_t cap)
{
	size_t n = 0;

	for (const char *p = prefix; *p != '\0' && n + 3 < cap; p++) {
		if (*p == '%' || *p == '_' || *p == '\\')
			out[n++] = '\\';
		out[n++] = upper && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
	}
	out[n++] = '%';
	out[n] = '\0';
}

static bool set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static void make_where(const struct nf_device_filter *f, int64_t cut, struct where *w)
{
	memset(w, 0, sizeof *w);
	snprintf(w->sql, sizeof w->sql, " WHERE 1 = 1");
	if (set(f->device))
		add(w, " AND device = $%d", NF_DB_TEXT_V(f->device));
	if (set(f->version))
		add(w, " AND version = $%d", NF_DB_TEXT_V(f->version));
	if (f->state == NF_UPDATE_SILENT)
		add(w, " AND state = 3 AND state_ms < $%d", NF_DB_INT_V(cut));
	else if (f->state == NF_UPDATE_DOWNLOADED)
		add(w, " AND state = 3 AND state_ms >= $%d", NF_DB_INT_V(cut));
	else if (f->state >= 0)
		add(w, " AND state = $%d", NF_DB_INT_V(f->state));
	if (f->seen_after_ms > 0)
		add(w, " AND last_seen >= $%d", NF_DB_INT_V(f->seen_after_ms));
	if (f->seen_before_ms > 0)
		add(w, " AND last_seen < $%d", NF_DB_INT_V(f->seen_before_ms));
	if (set(f->mac_prefix)) {
		like_prefix(f->mac_prefix, true, w->mac, sizeof w->mac);
		add(w, " AND mac LIKE $%d ESCAPE '\\'", NF_DB_TEXT_V(w->mac));
	}
	if (set(f->ip_prefix)) {
		like_prefix(f->ip_prefix, false, w->ip, sizeof w->ip);
		add(w, " AND ip LIKE $%d ESCAPE '\\'", NF_DB_TEXT_V(w->ip));
	}
	if (set(f->tag))
		add(w, " AND EXISTS (SELECT 1 FROM tags WHERE tags.device_id = devices.id "
		       "AND tags.tag = $%d)", NF_DB_TEXT_V(f->tag));
	/* "<> 0" first: the partial index devices_controls covers these. */
	if (f->pin > 0)
		add(w, " AND pin_release <> 0 AND pin_release = $%d", NF_DB_INT_V(f->pin));
	else if (f->pin < 0)
		strcat(w->sql, " AND pin_release <> 0");
	if (f->excluded > 0)
		strcat(w->sql, " AND excluded <> 0");
	else if (f->excluded < 0)
		strcat(w->sql, " AND excluded = 0");
}

struct list_ctx {
	const struct nf_device_filter *f;
	int64_t now;
	struct nf_device_list *out;
	size_t cap;
	int64_t cut;
};

static void on_count(void *user, const struct nf_db_row *row)
{
	*(uint64_t *)user = (uint64_t)nf_db_int(row, 0);
}

static void on_device(void *user, const struct nf_db_row *row)
{
	struct list_ctx *c = user;

	if (c->out->count < c->cap)
		read_device(row, c->cut, &c->out->devices[c->out->count++]);
}

static int list_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct list_ctx *c = ctx;
	struct where w;
	char sql[2048];
	const char *dir = c->f->descending ? "DESC" : "ASC";

	c->cut = c->now - opt->silent_ms;
	c->out->count = 0;
	c->out->total = 0;
	make_where(c->f, c->cut, &w);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM devices%s", w.sql);
	if (nf_db_run(db, -1, sql, w.v, w.n, on_count, &c->out->total) != 0)
		return -1;
	int len = snprintf(sql, sizeof sql, DEVICE_SELECT, tag_join(db));
	w.v[w.n] = NF_DB_INT_V(c->cap);
	w.v[w.n + 1] = NF_DB_INT_V(c->f->offset);
	snprintf(sql + len, sizeof sql - (size_t)len, "%s ORDER BY %s %s, id %s LIMIT $%d OFFSET $%d",
	         w.sql, sort_columns[c->f->sort], dir, dir, w.n + 1, w.n + 2);
	if (nf_db_run(db, -1, sql, w.v, w.n + 2, on_device, c) != 0)
		return -1;
	return nf_db_sync(db);
}

static int bad_filter(const struct nf_device_filter *f, char *err, size_t errlen)
{
	if (f->limit > NF_STORE_MAX_PAGE)
		snprintf(err, errlen, "limit must be 1 to %d", NF_STORE_MAX_PAGE);
	else if (f->state < -1 || f->state >= NF_UPDATE_COUNT)
		snprintf(err, errlen, "unknown update state %d", f->state);
	else if ((unsigned)f->sort >= NF_SORT_COUNT)
		snprintf(err, errlen, "unknown sort %d", (int)f->sort);
	else if (f->offset > (size_t)INT64_MAX)
		snprintf(err, errlen, "offset too large");
	else
		return 0;
	return -1;
}

int nf_store_devices(struct nf_store *store, const struct nf_device_filter *filter,
                     struct nf_device_list *out, char *err, size_t errlen)
{
	struct list_ctx c = {filter, wall_ms(filter->now_ms), out, 0, 0};

	memset(out, 0, sizeof *out);
	if (bad_filter(filter, err, errlen) != 0)
		return -1;
	c.cap = filter->limit > 0 ? filter->limit : DEFAULT_PAGE;
	if ((out->devices = calloc(c.cap, sizeof *out->devices)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (nf_store_read(store, list_op, &c, err, errlen) < 0) {
		nf_device_list_free(out);
		return -1;
	}
	return 0;
}

void nf_device_list_free(struct nf_device_list *list)
{
	if (list == NULL)
		return;
	free(list->devices);
	memset(list, 0, sizeof *list);
}

/* One device ----------------------------------------------------------------- */

struct device_ctx {
	const char *key;
	int64_t now, cut;
	struct nf_device *dev;
	bool found;
	struct nf_history *hist;
	size_t count;
};

static void on_one(void *user, const struct nf_db_row *row)
{
	struct device_ctx *c = user;

	read_device(row, c->cut, c->dev);
	c->found = true;
}

static void on_history(void *user, const struct nf_db_row *row)
{
	struct device_ctx *c = user;
	struct nf_history *h = &c->hist[c->count++];

	memset(h, 0, sizeof *h);
	h->at_ms = nf_db_int(row, 0);
	h->kind = (enum nf_history_kind)nf_db_int(row, 1);
	h->state = (enum nf_update_state)nf_db_int(row, 2);
	nf_db_copy(row, 3, h->target, sizeof h->target);
	h->rule = (int32_t)nf_db_int(row, 4);
	nf_db_copy(row, 5, h->version, sizeof h->version);
	nf_db_copy(row, 6, h->image, sizeof h->image);
	h->bytes = (uint64_t)nf_db_int(row, 7);
	h->total = (uint64_t)nf_db_int(row, 8);
	nf_db_copy(row, 9, h->detail, sizeof h->detail);
}

static int device_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct device_ctx *c = ctx;
	struct nf_db_val v[2] = {NF_DB_TEXT_V(c->key), NF_DB_INT_V(opt->history_max)};
	char sql[2048];

	c->found = false;
	c->count = 0;
	c->cut = c->now - opt->silent_ms;
	snprintf(sql, sizeof sql, DEVICE_SELECT " WHERE key = $1", tag_join(db));
	if (nf_db_run(db, -1, sql, v, 1, on_one, c) != 0 ||
	    nf_db_run(db, -1,
	              "SELECT h.at_ms, h.kind, h.state, h.target, h.rule, h.version, h.image, "
	              "h.bytes, h.total, h.detail FROM history h JOIN devices d "
	              "ON d.id = h.device_id WHERE d.key = $1 ORDER BY h.seq DESC LIMIT $2",
	              v, 2, on_history, c) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	return c->found ? 1 : 0;
}

int nf_store_device(struct nf_store *store, const char *key, int64_t now_ms,
                    struct nf_device *dev, struct nf_history **history, size_t *count,
                    char *err, size_t errlen)
{
	char k[NF_STORE_MAX_KEY];
	struct device_ctx c = {k, wall_ms(now_ms), 0, dev, false, NULL, 0};
	int rc;

	*history = NULL;
	*count = 0;
	if (nf_key_normalize(key, k) != 0) {
		snprintf(err, errlen, "\"%.64s\" is neither a MAC nor device@ip", key);
		return -1;
	}
	if ((c.hist = calloc(NF_STORE_MAX_HISTORY, sizeof *c.hist)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = nf_store_read(store, device_op, &c, err, errlen);
	if (rc <= 0) {
		free(c.hist);
		return rc;
	}
	*history = c.hist;
	*count = c.count;
	return 1;
}

/* Summary ---------------------------------------------------------------------- */

struct summary_ctx {
	struct nf_fleet_summary *out;
	int64_t now;
	size_t cap;
	bool oom;
};

static void on_totals(void *user, const struct nf_db_row *row)
{
	struct nf_fleet_summary *s = user;

	s->devices = (uint64_t)nf_db_int(row, 0);
	s->seen_24h = (uint64_t)nf_db_int(row, 1);
	s->held = (uint64_t)nf_db_int(row, 2);
}

static void on_state(void *user, const struct nf_db_row *row)
{
	struct nf_fleet_summary *s = user;
	int64_t state = nf_db_int(row, 0);

	if (state >= 0 && state < NF_UPDATE_COUNT)
		s->by_state[state] += (uint64_t)nf_db_int(row, 1);
}

static void on_row(void *user, const struct nf_db_row *row)
{
	struct summary_ctx *c = user;
	struct nf_summary_row *r;

	if (c->out->count == NF_STORE_MAX_SUMMARY) {
		c->out->truncated = true;
		return;
	}
	if (c->out->count == c->cap) {
		size_t cap = c->cap > 0 ? 2 * c->cap : 64;
		struct nf_summary_row *n = realloc(c->out->rows, cap * sizeof *n);
		if (n == NULL) {
			c->oom = true;
			return;
		}
		c->out->rows = n;
		c->cap = cap;
	}
	r = &c->out->rows[c->out->count++];
	nf_db_copy(row, 0, r->device, sizeof r->device);
	nf_db_copy(row, 1, r->version, sizeof r->version);
	r->count = (uint64_t)nf_db_int(row, 2);
}

/* The totals' SQL counts the held back as answer = 2. */
_Static_assert(NF_ANSWER_HELD == 2, "summary_op's SQL names NF_ANSWER_HELD as 2");

static int summary_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct summary_ctx *c = ctx;
	struct nf_fleet_summary *s = c->out;
	struct nf_db_val v[2] = {NF_DB_INT_V(c->now - 24LL * 3600 * 1000),
	                         NF_DB_INT_V(c->now - opt->silent_ms)};
	struct nf_db_val limit = NF_DB_INT_V(NF_STORE_MAX_SUMMARY + 1);

	free(s->rows);
	memset(s, 0, sizeof *s);
	c->cap = 0;
	if (nf_db_run(db, -1,
	              "SELECT count(*), COALESCE(SUM(CASE WHEN last_seen >= $1 THEN 1 ELSE 0 END), "
	              "0), COALESCE(SUM(CASE WHEN answer = 2 THEN 1 ELSE 0 END), 0) FROM devices",
	              v, 1, on_totals, s) != 0 ||
	    nf_db_run(db, -1,
	              "SELECT CASE WHEN state = 3 AND state_ms < $1 THEN 7 ELSE state END AS s, "
	              "count(*) FROM devices GROUP BY 1",
	              v + 1, 1, on_state, s) != 0 ||
	    nf_db_run(db, -1,
	              "SELECT device, version, count(*) FROM devices GROUP BY device, version "
	              "ORDER BY 3 DESC, 1, 2 LIMIT $1",
	              &limit, 1, on_row, c) != 0)
		return -1;
	if (nf_db_sync(db) != 0)
		return -1;
	if (c->oom)
		return nf_db_fail(db, "out of memory");
	return 0;
}

int nf_store_summary(struct nf_store *store, int64_t now_ms, struct nf_fleet_summary *out,
                     char *err, size_t errlen)
{
	struct summary_ctx c = {out, wall_ms(now_ms), 0, false};

	memset(out, 0, sizeof *out);
	if (nf_store_read(store, summary_op, &c, err, errlen) < 0) {
		nf_fleet_summary_free(out);
		return -1;
	}
	return 0;
}

void nf_fleet_summary_free(struct nf_fleet_summary *summary)
{
	if (summary == NULL)
		return;
	free(summary->rows);
	memset(summary, 0, sizeof *summary);
}

/* Tags ----------------------------------------------------------------------- */

struct tag_ctx {
	const char *key, *tag;
	bool add, found;
};

static void on_found(void *user, const struct nf_db_row *row)
{
	(void)row;
	((struct tag_ctx *)user)->found = true;
}

static int tag_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct tag_ctx *c = ctx;
	struct nf_db_val v[2] = {NF_DB_TEXT_V(c->key), NF_DB_TEXT_V(c->tag)};

	(void)opt;
	c->found = false;
	if (nf_db_run(db, -1, "SELECT id FROM devices WHERE key = $1", v, 1, on_found, c) != 0 ||
	    nf_db_run(db, -1,
	              c->add ? "INSERT INTO tags (device_id, tag) SELECT id, CAST($2 AS TEXT) "
	                       "FROM devices WHERE key = $1 ON CONFLICT DO NOTHING"
	                     : "DELETE FROM tags WHERE tag = $2 AND device_id IN "
	                       "(SELECT id FROM devices WHERE key = $1)",
	              v, 2, NULL, NULL) != 0 ||
	    nf_controls_bump(db) != 0 || nf_db_sync(db) != 0)
		return -1;
	return c->found ? 1 : 0;
}

int nf_store_tag(struct nf_store *store, const char *key, const char *tag, bool add, char *err,
                 size_t errlen)
{
	char k[NF_STORE_MAX_KEY];
	struct tag_ctx c = {k, tag, add, false};
	size_t len = tag != NULL ? strspn(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                                       "0123456789_.-")
	                         : 0;

	if (tag == NULL || len == 0 || tag[len] != '\0' || len >= NF_STORE_MAX_TAG) {
		snprintf(err, errlen, "a tag is 1 to %d of A-Z a-z 0-9 _ . -", NF_STORE_MAX_TAG - 1);
		return -1;
	}
	if (nf_key_normalize(key, k) != 0) {
		snprintf(err, errlen, "\"%.64s\" is neither a MAC nor device@ip", key);
		return -1;
	}
	return nf_store_read(store, tag_op, &c, err, errlen);
}
