/*
 * controls.c - what an operator sets on one device for rollouts (issue 10
 * item 4): a pin (the device is offered one release, whatever the rollouts
 * do) and an exclusion (no rollout offers it anything). Tags live in their
 * own table (query.c). All three are read back in one pass by the rollout
 * watcher (server/rollwatch.c), which publishes them to the check path; a
 * generation number in the settings table, raised by every change on any
 * node, tells it when to read them again.
 */
#include <stdio.h>
#include <string.h>

#include "store.h"

int nf_controls_bump(struct nf_db *db)
{
	return nf_db_run(db, -1,
	                 "INSERT INTO settings (name, value) VALUES ('controls', 1) "
	                 "ON CONFLICT (name) DO UPDATE SET value = settings.value + 1",
	                 NULL, 0, NULL, NULL);
}

struct set_ctx {
	const char *key;
	const char *column; /* "pin_release" or "excluded": a literal of this file */
	int64_t value;
	int64_t found;
};

static void on_found(void *user, const struct nf_db_row *row)
{
	((struct set_ctx *)user)->found = nf_db_int(row, 0);
}

static int set_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct set_ctx *c = ctx;
	struct nf_db_val v[2] = {NF_DB_TEXT_V(c->key), NF_DB_INT_V(c->value)};
	char sql[128];

	(void)opt;
	c->found = 0;
	snprintf(sql, sizeof sql, "UPDATE devices SET %s = $2 WHERE key = $1 RETURNING id",
	         c->column);
	if (nf_db_run(db, -1, sql, v, 2, on_found, c) != 0 || nf_controls_bump(db) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	return c->found != 0 ? 1 : 0;
}

static int set_control(struct nf_store *store, const char *key, const char *column,
                       int64_t value, char *err, size_t errlen)
{
	char k[NF_STORE_MAX_KEY];
	struct set_ctx c = {k, column, value, 0};

	if (nf_key_normalize(key, k) != 0) {
		snprintf(err, errlen, "\"%.64s\" is neither a MAC nor device@ip", key);
		return -1;
	}
	return nf_store_read(store, set_op, &c, err, errlen);
}

int nf_store_device_pin(struct nf_store *store, const char *key, int64_t release_id, char *err,
                        size_t errlen)
{
	return set_control(store, key, "pin_release", release_id > 0 ? release_id : 0, err,
	                   errlen);
}

int nf_store_device_exclude(struct nf_store *store, const char *key, bool excluded, char *err,
                            size_t errlen)
{
	return set_control(store, key, "excluded", excluded ? 1 : 0, err, errlen);
}

/* Reading them all back -------------------------------------------------------- */

struct read_ctx {
	nf_control_fn fn;
	void *user;
	struct nf_control cur; /* rows come ordered by key: one device's are adjacent */
	bool have;
	int64_t generation;
};

static void flush(struct read_ctx *c)
{
	if (c->have)
		c->fn(c->user, &c->cur);
	c->have = false;
}

static void on_control(void *user, const struct nf_db_row *row)
{
	struct read_ctx *c = user;
	const char *key = nf_db_text(row, 0);
	const char *tag = nf_db_text(row, 3);

	if (c->have && strcmp(c->cur.key, key) != 0)
		flush(c);
	if (!c->have) {
		memset(&c->cur, 0, sizeof c->cur);
		nf_db_copy(row, 0, c->cur.key, sizeof c->cur.key);
		c->have = true;
	}
	if (nf_db_int(row, 1) != 0)
		c->cur.pin_release = nf_db_int(row, 1);
	if (nf_db_int(row, 2) != 0)
		c->cur.excluded = true;
	if (tag[0] != '\0') {
		size_t used = strlen(c->cur.tags), n = strlen(tag);
		/* Tags that do not fit are left out: a device carries at most
		 * NF_CONTROL_TAGS bytes of them for rollouts to match. */
		if (used + n + 2 <= sizeof c->cur.tags)
			snprintf(c->cur.tags + used, sizeof c->cur.tags - used, "%s%s",
			         used > 0 ? "," : "", tag);
	}
}

static void on_generation(void *user, const struct nf_db_row *row)
{
	((struct read_ctx *)user)->generation = nf_db_int(row, 0);
}

static int generation_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	(void)opt;
	((struct read_ctx *)ctx)->generation = 0;
	if (nf_db_run(db, -1, "SELECT value FROM settings WHERE name = 'controls'", NULL, 0,
	              on_generation, ctx) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	return 0;
}

int nf_store_controls_generation(struct nf_store *store, int64_t *generation, char *err,
                                 size_t errlen)
{
	struct read_ctx c = {0};

	if (nf_store_read(store, generation_op, &c, err, errlen) < 0)
		return -1;
	*generation = c.generation;
	return 0;
}

static int read_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct read_ctx *c = ctx;

	(void)opt;
	c->have = false;
	if (generation_op(db, opt, ctx) != 0 ||
	    nf_db_run(db, -1,
	              "SELECT key, pin_release, excluded, '' FROM devices "
	              "WHERE pin_release <> 0 OR excluded <> 0 "
	              "UNION ALL SELECT d.key, 0, 0, t.tag FROM tags AS t "
	              "JOIN devices AS d ON d.id = t.device_id ORDER BY 1, 4",
	              NULL, 0, on_control, c) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	flush(c);
	return 0;
}

int nf_store_controls(struct nf_store *store, nf_control_fn fn, void *user, int64_t *generation,
                      char *err, size_t errlen)
{
	struct read_ctx c = {.fn = fn, .user = user};

	if (nf_store_read(store, read_op, &c, err, errlen) < 0)
		return -1;
	*generation = c.generation;
	return 0;
}
