/*
 * release.c - releases (issue 10 item 1) and the audit log of admin writes
 * (item 8) in the store: rows written at once on the reading connection
 * (nf_store_read), never through the event queue, because the admin API
 * must answer with what was written.
 *
 * A release's files live under public/ by content (the admin listener
 * writes them); a row names them. Two releases may share one file (the same
 * image uploaded twice under two versions), so deleting a release reports
 * which of its files no other release still names: only those may go.
 * Every statement is one autocommit statement or one transaction, so the
 * tables are never half-written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define IMAGE_COLS(p)                                                                      \
	p "_path, " p "_size, " p "_md5, " p "_sha256, " p "_format, " p "_flash_mode, " p    \
	"_flash_size, " p "_chip"
#define RELEASE_SELECT                                                                     \
	"SELECT id, device, version, created_ms, created_by, notes, " IMAGE_COLS("fw") ", "  \
	IMAGE_COLS("fs") " FROM releases"
#define IMAGE_NCOLS 8

static void read_image(const struct nf_db_row *row, int i, struct nf_release_image *m)
{
	nf_db_copy(row, i, m->path, sizeof m->path);
	m->size = (uint64_t)nf_db_int(row, i + 1);
	nf_db_copy(row, i + 2, m->md5, sizeof m->md5);
	nf_db_copy(row, i + 3, m->sha256, sizeof m->sha256);
	m->format = (int)nf_db_int(row, i + 4);
	m->flash_mode = (int)nf_db_int(row, i + 5);
	m->flash_size = (uint64_t)nf_db_int(row, i + 6);
	nf_db_copy(row, i + 7, m->chip, sizeof m->chip);
}

static void image_values(const struct nf_release_image *m, struct nf_db_val *v)
{
	v[0] = NF_DB_TEXT_V(m->path);
	v[1] = NF_DB_INT_V(m->size);
	v[2] = NF_DB_TEXT_V(m->md5);
	v[3] = NF_DB_TEXT_V(m->sha256);
	v[4] = NF_DB_INT_V(m->format);
	v[5] = NF_DB_INT_V(m->flash_mode);
	v[6] = NF_DB_INT_V(m->flash_size);
	v[7] = NF_DB_TEXT_V(m->chip);
}

/* Rows into a growing array (list) or one struct (get). */
struct rel_ctx {
	struct nf_release *one; /* get: NULL for a list */
	struct nf_release *list;
	size_t count, cap;
	bool failed;
};

void *nf_rows_slot(void *one, void **list, size_t count, size_t *cap, size_t size, bool *failed)
{
	if (one != NULL)
		return one;
	if (count == *cap) {
		size_t grown_cap = *cap ? *cap * 2 : 16;
		void *grown = *failed ? NULL : realloc(*list, grown_cap * size);
		if (grown == NULL) {
			*failed = true;
			return NULL;
		}
		*list = grown;
		*cap = grown_cap;
	}
	return (char *)*list + count * size;
}

static void on_release(void *user, const struct nf_db_row *row)
{
	struct rel_ctx *c = user;
	struct nf_release *r = nf_rows_slot(c->one, (void **)&c->list, c->count, &c->cap,
	                                    sizeof *r, &c->failed);

	if (r == NULL)
		return;
	c->count++;
	memset(r, 0, sizeof *r);
	r->id = nf_db_int(row, 0);
	nf_db_copy(row, 1, r->device, sizeof r->device);
	nf_db_copy(row, 2, r->version, sizeof r->version);
	r->created_ms = nf_db_int(row, 3);
	nf_db_copy(row, 4, r->created_by, sizeof r->created_by);
	nf_db_copy(row, 5, r->notes, sizeof r->notes);
	read_image(row, 6, &r->fw);
	read_image(row, 6 + IMAGE_NCOLS, &r->fs);
}

static void on_id(void *user, const struct nf_db_row *row)
{
	*(int64_t *)user = nf_db_int(row, 0);
}

/* Add ------------------------------------------------------------------------ */

static int add_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct nf_release *r = ctx;
	struct nf_db_val v[6 + 2 * IMAGE_NCOLS] = {
	    NF_DB_TEXT_V(r->device),  NF_DB_TEXT_V(r->version),    NF_DB_INT_V(r->created_ms),
	    NF_DB_TEXT_V(r->created_by), NF_DB_TEXT_V(r->notes),
	};
	int64_t id = 0;

	(void)opt;
	image_values(&r->fw, v + 5);
	image_values(&r->fs, v + 5 + IMAGE_NCOLS);
	if (nf_db_run(db, -1,
	              "INSERT INTO releases (device, version, created_ms, created_by, notes, "
	              IMAGE_COLS("fw") ", " IMAGE_COLS("fs") ") VALUES ($1, $2, $3, $4, $5, "
	              "$6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) "
	              "ON CONFLICT (device, version) DO NOTHING RETURNING id",
	              v, 5 + 2 * IMAGE_NCOLS, on_id, &id) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	r->id = id;
	return id > 0 ? 1 : 0;
}

int nf_store_release_add(struct nf_store *store, struct nf_release *rel, char *err, size_t errlen)
{
	return nf_store_read(store, add_op, rel, err, errlen);
}

/* Read ----------------------------------------------------------------------- */

struct get_ctx {
	struct rel_ctx rc;
	int64_t id;
	const char *device, *version;
};

static int get_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct get_ctx *g = ctx;
	struct nf_db_val v[2];
	int n;

	(void)opt;
	g->rc.count = 0;
	if (g->device != NULL) {
		v[0] = NF_DB_TEXT_V(g->device);
		v[1] = NF_DB_TEXT_V(g->version);
		n = 2;
	} else {
		v[0] = NF_DB_INT_V(g->id);
		n = 1;
	}
	if (nf_db_run(db, -1,
	              g->device != NULL ? RELEASE_SELECT " WHERE device = $1 AND version = $2"
	                                : RELEASE_SELECT " WHERE id = $1",
	              v, n, on_release, &g->rc) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	return g->rc.count > 0 ? 1 : 0;
}

int nf_store_release_get(struct nf_store *store, int64_t id, struct nf_release *out, char *err,
                         size_t errlen)
{
	struct get_ctx g = {.rc = {.one = out}, .id = id};

	return nf_store_read(store, get_op, &g, err, errlen);
}

int nf_store_release_find(struct nf_store *store, const char *device, const char *version,
                          struct nf_release *out, char *err, size_t errlen)
{
	struct get_ctx g = {.rc = {.one = out}, .device = device, .version = version};

	return nf_store_read(store, get_op, &g, err, errlen);
}

struct list_ctx {
	struct rel_ctx rc;
	const char *device;
};

static int list_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct list_ctx *l = ctx;
	struct nf_db_val v[2] = {NF_DB_TEXT_V(l->device), NF_DB_INT_V(NF_STORE_MAX_RELEASES)};

	(void)opt;
	l->rc.count = 0;
	if (nf_db_run(db, -1,
	              RELEASE_SELECT " WHERE ($1 = '' OR device = $1) ORDER BY id DESC LIMIT $2", v,
	              2, on_release, &l->rc) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	if (l->rc.failed)
		return nf_db_fail(db, "out of memory");
	return 0;
}

int nf_store_release_list(struct nf_store *store, const char *device, struct nf_release **out,
                          size_t *count, char *err, size_t errlen)
{
	struct list_ctx l = {.device = device != NULL ? device : ""};

	*out = NULL;
	*count = 0;
	if (nf_store_read(store, list_op, &l, err, errlen) < 0) {
		free(l.rc.list);
		return -1;
	}
	*out = l.rc.list;
	*count = l.rc.count;
	return 0;
}

/* Write ---------------------------------------------------------------------- */

struct fs_ctx {
	int64_t id;
	const struct nf_release_image *fs;
	bool *had_one;
};

static int set_fs_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct fs_ctx *f = ctx;
	struct nf_db_val v[1 + IMAGE_NCOLS] = {NF_DB_INT_V(f->id)};
	struct nf_db_val idv = NF_DB_INT_V(f->id);
	int64_t set = 0, exists = 0;

	(void)opt;
	image_values(f->fs, v + 1);
	if (nf_db_run(db, -1,
	              "UPDATE releases SET fs_path = $2, fs_size = $3, fs_md5 = $4, fs_sha256 = $5, "
	              "fs_format = $6, fs_flash_mode = $7, fs_flash_size = $8, fs_chip = $9 "
	              "WHERE id = $1 AND fs_path = '' RETURNING id",
	              v, 1 + IMAGE_NCOLS, on_id, &set) != 0 ||
	    nf_db_run(db, -1, "SELECT id FROM releases WHERE id = $1", &idv, 1, on_id, &exists) !=
	        0 ||
	    nf_db_sync(db) != 0)
		return -1;
	*f->had_one = set == 0 && exists != 0;
	return set != 0 ? 1 : 0;
}

int nf_store_release_set_fs(struct nf_store *store, int64_t id, const struct nf_release_image *fs,
                            bool *had_one, char *err, size_t errlen)
{
	struct fs_ctx f = {id, fs, had_one};

	*had_one = false;
	return nf_store_read(store, set_fs_op, &f, err, errlen);
}

struct notes_ctx {
	int64_t id;
	const char *notes;
};

static int notes_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct notes_ctx *n = ctx;
	struct nf_db_val v[2] = {NF_DB_INT_V(n->id), NF_DB_TEXT_V(n->notes)};
	int64_t set = 0;

	(void)opt;
	if (nf_db_run(db, -1, "UPDATE releases SET notes = $2 WHERE id = $1 RETURNING id", v, 2,
	              on_id, &set) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	return set != 0 ? 1 : 0;
}

int nf_store_release_set_notes(struct nf_store *store, int64_t id, const char *notes, char *err,
                               size_t errlen)
{
	struct notes_ctx n = {id, notes};

	return nf_store_read(store, notes_op, &n, err, errlen);
}

struct del_ctx {
	int64_t id;
	char (*unused)[NF_STORE_MAX_IMAGE];
	int64_t *rollout;
	int64_t *pinned;
};

static int delete_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct del_ctx *d = ctx;
	struct nf_release rel;
	struct rel_ctx rc = {.one = &rel};
	struct nf_db_val id = NF_DB_INT_V(d->id);
	bool sqlite = nf_db_backend(db) == NF_DB_SQLITE;
	const char *paths[2] = {rel.fw.path, rel.fs.path};

	(void)opt;
	d->unused[0][0] = d->unused[1][0] = '\0';
	if (nf_db_exec(db, sqlite ? "BEGIN IMMEDIATE" : "BEGIN") != 0)
		return -1;
	if (nf_db_run(db, -1, RELEASE_SELECT " WHERE id = $1", &id, 1, on_release, &rc) != 0 ||
	    nf_db_sync(db) != 0)
		goto fail;
	if (rc.count == 0)
		return nf_db_exec(db, "COMMIT") == 0 ? 0 : -1;
	switch (nf_rollout_uses_release(db, d->id, d->rollout)) {
	case 1:
		return nf_db_exec(db, "COMMIT") == 0 ? -2 : -1;
	case 0:
		break;
	default:
		goto fail;
	}
	/* A pin must name a release that exists (controls.c): "<> 0" lets
	 * the partial index devices_controls answer. */
	*d->pinned = 0;
	if (nf_db_run(db, -1,
	              "SELECT COUNT(*) FROM devices WHERE pin_release <> 0 AND pin_release = $1",
	              &id, 1, on_id, d->pinned) != 0 ||
	    nf_db_sync(db) != 0)
		goto fail;
	if (*d->pinned > 0)
		return nf_db_exec(db, "COMMIT") == 0 ? -3 : -1;
	if (nf_db_run(db, -1, "DELETE FROM releases WHERE id = $1", &id, 1, NULL, NULL) != 0)
		goto fail;
	for (int i = 0; i < 2; i++) {
		struct nf_db_val p = NF_DB_TEXT_V(paths[i]);
		int64_t uses = 0;
		if (paths[i][0] == '\0')
			continue;
		if (nf_db_run(db, -1,
		              "SELECT COUNT(*) FROM releases WHERE fw_path = $1 OR fs_path = $1", &p,
		              1, on_id, &uses) != 0 ||
		    nf_db_sync(db) != 0)
			goto fail;
		if (uses == 0 && (i == 0 || strcmp(paths[1], paths[0]) != 0))
			snprintf(d->unused[i], NF_STORE_MAX_IMAGE, "%s", paths[i]);
	}
	if (nf_db_sync(db) != 0 || nf_db_exec(db, "COMMIT") != 0)
		goto fail;
	return 1;
fail:
	d->unused[0][0] = d->unused[1][0] = '\0';
	nf_db_exec(db, "ROLLBACK");
	return -1;
}

int nf_store_release_delete(struct nf_store *store, int64_t id,
                            char unused[2][NF_STORE_MAX_IMAGE], int64_t *rollout, int64_t *pinned,
                            char *err, size_t errlen)
{
	struct del_ctx d = {id, unused, rollout, pinned};

	return nf_store_read(store, delete_op, &d, err, errlen);
}

struct uses_ctx {
	const char *path;
	int64_t uses;
};

static int uses_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct uses_ctx *u = ctx;
	struct nf_db_val p = NF_DB_TEXT_V(u->path);

	(void)opt;
	if (nf_db_run(db, -1, "SELECT COUNT(*) FROM releases WHERE fw_path = $1 OR fs_path = $1",
	              &p, 1, on_id, &u->uses) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	return 0;
}

int64_t nf_store_release_uses(struct nf_store *store, const char *path, char *err, size_t errlen)
{
	struct uses_ctx u = {path, 0};

	return nf_store_read(store, uses_op, &u, err, errlen) < 0 ? -1 : u.uses;
}

/* The audit log ---------------------------------------------------------------- */

static int audit_add_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	const struct nf_audit *a = ctx;
	struct nf_db_val v[6] = {NF_DB_INT_V(a->at_ms),   NF_DB_TEXT_V(a->token),
	                         NF_DB_TEXT_V(a->action), NF_DB_TEXT_V(a->target),
	                         NF_DB_INT_V(a->status),  NF_DB_TEXT_V(a->outcome)};

	int64_t id = 0;
	uint64_t keep = opt->audit_keep_refused, every = keep / 16 + 1;

	if (nf_db_run(db, -1,
	              "INSERT INTO audit (at_ms, token, action, target, status, outcome) "
	              "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
	              v, 6, on_id, &id) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	/* Refused writes are kept to the newest keep (and up to keep / 16 more
	 * between prunings): a read token sending refused writes in a loop
	 * cannot grow the store without bound. Writes that went through are
	 * the operators' own, and all kept. */
	if (a->status >= 400 && (uint64_t)id % every == 0) {
		struct nf_db_val k[1] = {NF_DB_INT_V((int64_t)keep)};
		if (nf_db_run(db, -1,
		              "DELETE FROM audit WHERE status >= 400 AND id <= (SELECT id FROM audit "
		              "WHERE status >= 400 ORDER BY id DESC LIMIT 1 OFFSET $1)",
		              k, 1, NULL, NULL) != 0 ||
		    nf_db_sync(db) != 0)
			return -1;
	}
	return 0;
}

int nf_store_audit_add(struct nf_store *store, const struct nf_audit *a, char *err, size_t errlen)
{
	return nf_store_read(store, audit_add_op, (void *)a, err, errlen);
}

struct audit_ctx {
	int64_t before;
	size_t limit, count;
	struct nf_audit *list;
};

static void on_audit(void *user, const struct nf_db_row *row)
{
	struct audit_ctx *c = user;
	struct nf_audit *a;

	if (c->count >= c->limit)
		return;
	a = &c->list[c->count++];
	memset(a, 0, sizeof *a);
	a->id = nf_db_int(row, 0);
	a->at_ms = nf_db_int(row, 1);
	nf_db_copy(row, 2, a->token, sizeof a->token);
	nf_db_copy(row, 3, a->action, sizeof a->action);
	nf_db_copy(row, 4, a->target, sizeof a->target);
	a->status = (unsigned)nf_db_int(row, 5);
	nf_db_copy(row, 6, a->outcome, sizeof a->outcome);
}

static int audit_list_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct audit_ctx *c = ctx;
	struct nf_db_val v[2] = {NF_DB_INT_V(c->before), NF_DB_INT_V(c->limit)};

	(void)opt;
	c->count = 0;
	if (nf_db_run(db, -1,
	              "SELECT id, at_ms, token, action, target, status, outcome FROM audit "
	              "WHERE ($1 = 0 OR id < $1) ORDER BY id DESC LIMIT $2",
	              v, 2, on_audit, c) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	return 0;
}

int nf_store_audit_list(struct nf_store *store, int64_t before_id, size_t limit,
                        struct nf_audit **out, size_t *count, char *err, size_t errlen)
{
	struct audit_ctx c = {before_id, limit, 0, NULL};

	*out = NULL;
	*count = 0;
	if (limit == 0 || limit > NF_STORE_MAX_AUDIT) {
		snprintf(err, errlen, "an audit page is 1 to %d entries", NF_STORE_MAX_AUDIT);
		return -1;
	}
	c.list = calloc(limit, sizeof *c.list);
	if (c.list == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (nf_store_read(store, audit_list_op, &c, err, errlen) < 0) {
		free(c.list);
		return -1;
	}
	*out = c.list;
	*count = c.count;
	return 0;
}
