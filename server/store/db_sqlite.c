/*
 * db_sqlite.c - the SQLite half of struct nf_db: a file opened in WAL mode
 * (readers never wait for the writer, and a commit is one append to the
 * log), synchronous=NORMAL (a commit survives the process being killed;
 * only a power cut may lose the last ones), and a lock wait of busy_ms.
 *
 * Statements run at once: nf_db_run steps through the rows and hands each
 * to the callback; nf_db_sync only reports whether one failed. Rows for
 * nf_db_run_rows go one statement each: in-process, that costs little. Statements
 * with an id are prepared once and kept for the connection's life.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "store.h"

struct sqlite_db {
	struct nf_db base; /* first: struct nf_db * and struct sqlite_db * are one */
	sqlite3 *handle;
	sqlite3_stmt *stmts[NF_DB_MAX_STMTS];
};

static void sq_close(struct nf_db *db)
{
	struct sqlite_db *s = (struct sqlite_db *)db;

	for (int i = 0; i < NF_DB_MAX_STMTS; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite3_close(s->handle);
	free(s);
}

static int sq_exec(struct nf_db *db, const char *sql)
{
	struct sqlite_db *s = (struct sqlite_db *)db;
	char *msg = NULL;

	if (sqlite3_exec(s->handle, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	nf_db_fail(db, "sqlite: %s", msg != NULL ? msg : sqlite3_errmsg(s->handle));
	sqlite3_free(msg);
	return -1;
}

/* Prepares sql with $N turned into SQLite's ?N. */
static sqlite3_stmt *prepare(struct sqlite_db *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	char *text = strdup(sql);

	if (text == NULL) {
		nf_db_fail(&s->base, "sqlite: out of memory");
		return NULL;
	}
	for (char *p = text; *p != '\0'; p++)
		if (*p == '$')
			*p = '?';
	if (sqlite3_prepare_v3(s->handle, text, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
	    SQLITE_OK)
		nf_db_fail(&s->base, "sqlite: %s", sqlite3_errmsg(s->handle));
	free(text);
	return st;
}

static int bind(struct sqlite_db *s, sqlite3_stmt *st, const struct nf_db_val *v, int n)
{
	for (int i = 0; i < n; i++) {
		int rc;

		if (v[i].type == NF_DB_INT)
			rc = sqlite3_bind_int64(st, i + 1, v[i].i);
		else if (v[i].type == NF_DB_TEXT && v[i].s != NULL)
			rc = sqlite3_bind_text(st, i + 1, v[i].s, -1, SQLITE_STATIC);
		else
			rc = sqlite3_bind_null(st, i + 1);
		if (rc != SQLITE_OK)
			return nf_db_fail(&s->base, "sqlite: %s", sqlite3_errmsg(s->handle));
	}
	return 0;
}

static int sq_run(struct nf_db *db, int id, const char *sql, const struct nf_db_val *v, int n,
                  nf_db_row_fn fn, void *user)
{
	struct sqlite_db *s = (struct sqlite_db *)db;
	sqlite3_stmt *st = id >= 0 ? s->stmts[id] : NULL;
	struct nf_db_row row = {db, NULL, 0};
	int rc = -1, step;

	if (st == NULL && (st = prepare(s, sql)) == NULL)
		return -1;
	if (id >= 0)
		s->stmts[id] = st;
	if (bind(s, st, v, n) != 0)
		goto done;
	row.handle = st;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (fn != NULL)
			fn(user, &row);
		row.row++;
	}
	if (step != SQLITE_DONE) {
		nf_db_fail(db, "sqlite: %s", sqlite3_errmsg(s->handle));
		goto done;
	}
	rc = 0;
done:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (id < 0)
		sqlite3_finalize(st);
	return rc;
}

static int sq_run_rows(struct nf_db *db, int id, const char *sql_row, const char *sql_arrays,
                       const struct nf_db_val *rows, size_t nrows, int ncols, nf_db_row_fn fn,
                       void *user)
{
	(void)sql_arrays;
	for (size_t r = 0; r < nrows; r++)
		if (sq_run(db, id, sql_row, rows + r * (size_t)ncols, ncols, fn, user) != 0)
			return -1;
	return 0;
}

static int sq_sync(struct nf_db *db)
{
	return db->error[0] != '\0' ? -1 : 0;
}

static bool sq_ok(const struct nf_db *db)
{
	(void)db;
	return true;
}

static int sq_reconnect(struct nf_db *db)
{
	(void)db;
	return 0;
}

static int64_t sq_int(const struct nf_db_row *row, int i)
{
	return sqlite3_column_int64(row->handle, i);
}

static const char *sq_text(const struct nf_db_row *row, int i)
{
	const unsigned char *t = sqlite3_column_text(row->handle, i);

	return t != NULL ? (const char *)t : "";
}

static const struct nf_db_ops sqlite_ops = {
	sq_close, sq_exec, sq_run, sq_run_rows, sq_sync, sq_ok, sq_reconnect, sq_int, sq_text,
};

/* Creates path's folder (one level) when it is missing. */
static int make_folder(const char *path, char *err, size_t errlen)
{
	char dir[NF_STORE_MAX_URL];
	const char *slash = strrchr(path, '/');

	if (slash == NULL || slash == path || (size_t)(slash - path) >= sizeof dir)
		return 0;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if (mkdir(dir, 0750) == 0 || errno == EEXIST)
		return 0;
	snprintf(err, errlen, "store folder %s cannot be made: %s", dir, strerror(errno));
	return -1;
}

struct nf_db *nf_db_sqlite_open(const char *path, unsigned busy_ms, char *err, size_t errlen)
{
	struct sqlite_db *s = calloc(1, sizeof *s);
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->base.ops = &sqlite_ops;
	s->base.backend = NF_DB_SQLITE;
	if (make_folder(path, err, errlen) != 0)
		goto fail;
	if (sqlite3_open_v2(path, &s->handle, flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "store %s: %s", path,
		         s->handle != NULL ? sqlite3_errmsg(s->handle) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->handle, (int)busy_ms);
	if (sq_exec(&s->base, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
	                      "PRAGMA foreign_keys = ON") != 0) {
		snprintf(err, errlen, "store %s: %s", path, s->base.error);
		goto fail;
	}
	return &s->base;
fail:
	sq_close(&s->base);
	return NULL;
}
