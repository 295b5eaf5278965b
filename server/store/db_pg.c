/*
 * db_pg.c - the PostgreSQL half of struct nf_db, on libpq in pipeline mode:
 * nf_db_run sends a statement without waiting for its answer, and
 * nf_db_sync sends a sync point and reads every answer in order, calling
 * each statement's row callback. A batch of a thousand statements costs a
 * few round trips instead of a thousand. Every PIPE_CHUNK statements the
 * pipeline is synced on its own, so that neither side's socket buffer fills
 * up with answers nobody reads.
 *
 * Parameters travel as text; nf_db_run_rows sends a batch's rows as one
 * array per column, so that the server runs one statement for all of them.
 * Statements with an id are prepared once per
 * connection under the name "nfN"; a reconnection forgets them. The
 * connection has a connect timeout and TCP keepalives so that a server that
 * went away is noticed, and server notices are not printed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "store.h"

#define PIPE_CHUNK 256 /* statements in flight before a sync */

struct pending {
	nf_db_row_fn fn;
	void *user;
	int prepare_id; /* >= 0: the answer to preparing statement prepare_id */
};

struct pg_db {
	struct nf_db base; /* first: struct nf_db * and struct pg_db * are one */
	PGconn *conn;
	bool prepared[NF_DB_MAX_STMTS];
	struct pending *pend;
	size_t npend, cap;
	bool broken; /* answers out of step: reconnect */
};

static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void pg_close(struct nf_db *db)
{
	struct pg_db *p = (struct pg_db *)db;

	PQfinish(p->conn);
	free(p->pend);
	free(p);
}

/* The connection in pipeline mode, prepared statements forgotten. */
static int pg_setup(struct pg_db *p)
{
	memset(p->prepared, 0, sizeof p->prepared);
	p->npend = 0;
	p->broken = false;
	if (PQstatus(p->conn) != CONNECTION_OK)
		return nf_db_fail(&p->base, "postgresql: %s", PQerrorMessage(p->conn));
	PQsetNoticeProcessor(p->conn, ignore_notice, NULL);
	if (PQenterPipelineMode(p->conn) != 1)
		return nf_db_fail(&p->base, "postgresql: %s", PQerrorMessage(p->conn));
	return 0;
}

/* Reads the answers to every pending statement, then the sync point. */
static int read_answers(struct pg_db *p)
{
	int rc = 0;

	for (size_t i = 0; i < p->npend; i++) {
		struct pending *q = &p->pend[i];
		PGresult *res = PQgetResult(p->conn);
		ExecStatusType st;

		if (res == NULL) {
			/* The connection died, or the answers are out of step:
			 * either way it must be made again. */
			nf_db_fail(&p->base, "postgresql: %s", PQerrorMessage(p->conn));
			p->broken = true;
			p->npend = 0;
			return -1;
		}
		st = PQresultStatus(res);
		if (st == PGRES_TUPLES_OK && q->fn != NULL) {
			struct nf_db_row row = {&p->base, res, 0};
			for (row.row = 0; row.row < PQntuples(res); row.row++)
				q->fn(q->user, &row);
		} else if (st == PGRES_FATAL_ERROR) {
			rc = nf_db_fail(&p->base, "postgresql: %s", PQresultErrorMessage(res));
		} else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
			rc = nf_db_fail(&p->base, "postgresql: %s", PQresStatus(st));
		}
		if (q->prepare_id >= 0 && st != PGRES_COMMAND_OK)
			p->prepared[q->prepare_id] = false;
		PQclear(res);
		/* Each statement's answer ends with a NULL result. */
		while ((res = PQgetResult(p->conn)) != NULL)
			PQclear(res);
	}
	p->npend = 0;
	PGresult *res = PQgetResult(p->conn);
	if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
		rc = nf_db_fail(&p->base, "postgresql: pipeline out of step: %s",
		                PQerrorMessage(p->conn));
		p->broken = true;
	}
	PQclear(res);
	return rc;
}

static int pg_sync(struct nf_db *db)
{
	struct pg_db *p = (struct pg_db *)db;

	if (p->npend > 0) {
		if (PQpipelineSync(p->conn) != 1) {
			p->npend = 0;
			return nf_db_fail(db, "postgresql: %s", PQerrorMessage(p->conn));
		}
		read_answers(p);
	}
	return db->error[0] != '\0' ? -1 : 0;
}

static bool pg_ok(const struct nf_db *db)
{
	const struct pg_db *p = (const struct pg_db *)db;

	return PQstatus(p->conn) == CONNECTION_OK && !p->broken;
}

static int push(struct pg_db *p, nf_db_row_fn fn, void *user, int prepare_id)
{
	if (p->npend == p->cap) {
		size_t cap = p->cap > 0 ? 2 * p->cap : 64;
		struct pending *n = realloc(p->pend, cap * sizeof *n);
		if (n == NULL)
			return nf_db_fail(&p->base, "postgresql: out of memory");
		p->pend = n;
		p->cap = cap;
	}
	p->pend[p->npend++] = (struct pending){fn, user, prepare_id};
	return 0;
}

static int pg_run(struct nf_db *db, int id, const char *sql, const struct nf_db_val *v, int n,
                  nf_db_row_fn fn, void *user)
{
	struct pg_db *p = (struct pg_db *)db;
	char ints[NF_DB_MAX_PARAMS][24];
	const char *values[NF_DB_MAX_PARAMS];
	char name[16];
	int sent;

	if (!pg_ok(db))
		return nf_db_fail(db, "postgresql: %s", PQerrorMessage(p->conn));
	for (int i = 0; i < n; i++) {
		values[i] = v[i].type == NF_DB_TEXT ? v[i].s : NULL;
		if (v[i].type == NF_DB_INT) {
			snprintf(ints[i], sizeof ints[i], "%" PRId64, v[i].i);
			values[i] = ints[i];
		}
	}
	snprintf(name, sizeof name, "nf%d", id);
	if (id >= 0 && !p->prepared[id]) {
		if (PQsendPrepare(p->conn, name, sql, n, NULL) != 1 || push(p, NULL, NULL, id) != 0)
			return nf_db_fail(db, "postgresql: %s", PQerrorMessage(p->conn));
		p->prepared[id] = true;
	}
	if (id >= 0)
		sent = PQsendQueryPrepared(p->conn, name, n, values, NULL, NULL, 0);
	else
		sent = PQsendQueryParams(p->conn, sql, n, NULL, values, NULL, NULL, 0);
	if (sent != 1 || push(p, fn, user, -1) != 0)
		return nf_db_fail(db, "postgresql: %s", PQerrorMessage(p->conn));
	if (p->npend >= PIPE_CHUNK)
		return pg_sync(db);
	return 0;
}

/* Column c of the rows as a PostgreSQL array literal, malloc'd: integers
 * bare, strings double-quoted with double quotes and backslashes escaped. */
static char *array_of(const struct nf_db_val *rows, size_t nrows, int ncols, int c)
{
	size_t cap = 3, n = 0;
	char *out;

	for (size_t r = 0; r < nrows; r++) {
		const struct nf_db_val *v = &rows[r * (size_t)ncols + (size_t)c];
		cap += v->type == NF_DB_TEXT ? 2 * strlen(v->s) + 3 : 22;
	}
	if ((out = malloc(cap)) == NULL)
		return NULL;
	out[n++] = '{';
	for (size_t r = 0; r < nrows; r++) {
		const struct nf_db_val *v = &rows[r * (size_t)ncols + (size_t)c];

		if (r > 0)
			out[n++] = ',';
		if (v->type != NF_DB_TEXT) {
			n += (size_t)snprintf(out + n, cap - n, "%" PRId64, v->i);
			continue;
		}
		out[n++] = '"';
		for (const char *p = v->s; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				out[n++] = '\\';
			out[n++] = *p;
		}
		out[n++] = '"';
	}
	out[n++] = '}';
	out[n] = '\0';
	return out;
}

static int pg_run_rows(struct nf_db *db, int id, const char *sql_row, const char *sql_arrays,
                       const struct nf_db_val *rows, size_t nrows, int ncols, nf_db_row_fn fn,
                       void *user)
{
	char *arrays[NF_DB_MAX_PARAMS] = {NULL};
	struct nf_db_val v[NF_DB_MAX_PARAMS];
	int rc = 0;

	(void)sql_row;
	for (int c = 0; c < ncols && rc == 0; c++) {
		if ((arrays[c] = array_of(rows, nrows, ncols, c)) == NULL)
			rc = nf_db_fail(db, "postgresql: out of memory");
		v[c] = NF_DB_TEXT_V(arrays[c]);
	}
	if (rc == 0)
		rc = pg_run(db, id, sql_arrays, v, ncols, fn, user); /* the text is copied */
	for (int c = 0; c < ncols; c++)
		free(arrays[c]);
	return rc;
}

/* Several statements at once, outside the pipeline (migrations). */
static int pg_exec(struct nf_db *db, const char *sql)
{
	struct pg_db *p = (struct pg_db *)db;
	PGresult *res;
	int rc = 0;

	if (pg_sync(db) != 0 || PQexitPipelineMode(p->conn) != 1)
		return nf_db_fail(db, "postgresql: %s", PQerrorMessage(p->conn));
	res = PQexec(p->conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = nf_db_fail(db, "postgresql: %s", PQresultErrorMessage(res));
	PQclear(res);
	if (PQenterPipelineMode(p->conn) != 1)
		rc = nf_db_fail(db, "postgresql: %s", PQerrorMessage(p->conn));
	return rc;
}

static int pg_reconnect(struct nf_db *db)
{
	struct pg_db *p = (struct pg_db *)db;

	PQreset(p->conn);
	return pg_setup(p);
}

static int64_t pg_int(const struct nf_db_row *row, int i)
{
	return strtoll(PQgetvalue(row->handle, row->row, i), NULL, 10);
}

static const char *pg_text(const struct nf_db_row *row, int i)
{
	return PQgetvalue(row->handle, row->row, i); /* "" for NULL */
}

static const struct nf_db_ops pg_ops = {
	pg_close, pg_exec, pg_run, pg_run_rows, pg_sync, pg_ok, pg_reconnect, pg_int, pg_text,
};

struct nf_db *nf_db_pg_open(const char *conninfo, char *err, size_t errlen)
{
	/* The URL's own settings come after ours and win (expand_dbname). */
	static const char *const keys[] = {"connect_timeout", "keepalives", "keepalives_idle",
	                                   "keepalives_interval", "keepalives_count",
	                                   "tcp_user_timeout", "application_name", "dbname", NULL};
	const char *values[] = {"5", "1", "10", "3", "3", "15000", "nofussd", conninfo, NULL};
	struct pg_db *p = calloc(1, sizeof *p);

	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->base.ops = &pg_ops;
	p->base.backend = NF_DB_PG;
	p->conn = PQconnectdbParams(keys, values, 1);
	if (p->conn == NULL || pg_setup(p) != 0) {
		snprintf(err, errlen, "%s", p->conn != NULL ? p->base.error : "postgresql: out of memory");
		pg_close(&p->base);
		return NULL;
	}
	return &p->base;
}
