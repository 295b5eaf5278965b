/*
 * db.c - one database connection, either backend: the URL decides
 * (sqlite:// or postgresql://), and the calls below dispatch to
 * db_sqlite.c or db_pg.c. The SQL the store sends is written once, with
 * PostgreSQL's $1..$n placeholders, which the SQLite half turns into its
 * ?1..?n; where the two dialects differ the caller picks the text by
 * nf_db_backend(). Values always travel as bound parameters.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define SQLITE_PREFIX "sqlite://"

struct nf_db *nf_db_open(const char *url, unsigned busy_ms, char *err, size_t errlen)
{
	if (strncmp(url, SQLITE_PREFIX, strlen(SQLITE_PREFIX)) == 0) {
		const char *path = url + strlen(SQLITE_PREFIX);

		if (path[0] == '\0') {
			snprintf(err, errlen, "store URL %s names no file", url);
			return NULL;
		}
		return nf_db_sqlite_open(path, busy_ms, err, errlen);
	}
	if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
		return nf_db_pg_open(url, err, errlen);

	char shown[NF_STORE_MAX_URL];
	nf_db_redact(url, shown, sizeof shown);
	snprintf(err, errlen,
	         "store URL \"%s\": expected sqlite:///path/fleet.db or postgresql://...", shown);
	return NULL;
}

void nf_db_redact(const char *url, char *out, size_t outlen)
{
	const char *scheme = strstr(url, "://");
	const char *at, *colon;

	snprintf(out, outlen, "%s", url);
	if (scheme == NULL)
		return;
	/* postgresql://user:password@host/db: the userinfo ends at the first
	 * '@' before the path. */
	at = strchr(scheme + 3, '@');
	colon = strchr(scheme + 3, ':');
	if (at == NULL || colon == NULL || colon > at || memchr(scheme + 3, '/', (size_t)(at - scheme - 3)))
		return;
	snprintf(out, outlen, "%.*s:***%s", (int)(colon - url), url, at);
}

void nf_db_close(struct nf_db *db)
{
	if (db != NULL)
		db->ops->close(db);
}

enum nf_db_backend nf_db_backend(const struct nf_db *db)
{
	return db->backend;
}

int nf_db_exec(struct nf_db *db, const char *sql)
{
	return db->ops->exec(db, sql);
}

int nf_db_run(struct nf_db *db, int id, const char *sql, const struct nf_db_val *v, int n,
              nf_db_row_fn fn, void *user)
{
	if (n > NF_DB_MAX_PARAMS || id >= NF_DB_MAX_STMTS)
		return nf_db_fail(db, "internal: statement %d with %d parameters", id, n);
	return db->ops->run(db, id, sql, v, n, fn, user);
}

int nf_db_run_rows(struct nf_db *db, int id, const char *sql_row, const char *sql_arrays,
                   const struct nf_db_val *rows, size_t nrows, int ncols, nf_db_row_fn fn,
                   void *user)
{
	if (ncols > NF_DB_MAX_PARAMS || id >= NF_DB_MAX_STMTS)
		return nf_db_fail(db, "internal: statement %d with %d parameters", id, ncols);
	if (nrows == 0)
		return 0;
	return db->ops->run_rows(db, id, sql_row, sql_arrays, rows, nrows, ncols, fn, user);
}

int nf_db_sync(struct nf_db *db)
{
	return db->ops->sync(db);
}

const char *nf_db_error(const struct nf_db *db)
{
	return db->error;
}

void nf_db_clear(struct nf_db *db)
{
	db->error[0] = '\0';
}

bool nf_db_ok(const struct nf_db *db)
{
	return db->ops->ok(db);
}

int nf_db_reconnect(struct nf_db *db)
{
	return db->ops->reconnect(db);
}

int64_t nf_db_int(const struct nf_db_row *row, int i)
{
	return row->db->ops->col_int(row, i);
}

const char *nf_db_text(const struct nf_db_row *row, int i)
{
	return row->db->ops->col_text(row, i);
}

void nf_db_copy(const struct nf_db_row *row, int i, char *dst, size_t cap)
{
	nf_store_copy(dst, cap, nf_db_text(row, i), cap);
}

int nf_db_fail(struct nf_db *db, const char *fmt, ...)
{
	va_list ap;

	if (db->error[0] != '\0')
		return -1;
	va_start(ap, fmt);
	vsnprintf(db->error, sizeof db->error, fmt, ap);
	va_end(ap);
	/* Server messages end with a newline; messages are one line. */
	size_t len = strlen(db->error);
	while (len > 0 && (db->error[len - 1] == '\n' || db->error[len - 1] == ' '))
		db->error[--len] = '\0';
	for (char *p = db->error; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
	return -1;
}
