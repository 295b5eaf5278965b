/*
 * rollout.c - rollouts in the store (issue 10 item 2): one release offered
 * to the devices of its type in phases by percentage, and the state an
 * operator (or, later, a health gate) moves it through. Written at once on
 * the reading connection, like releases (release.c).
 *
 * A state change is one conditional UPDATE ("... WHERE id = $1 AND state
 * IN (...)"), so when two nodes on one PostgreSQL database move the same
 * rollout at once exactly one of them does, and the other is told what the
 * row is now. A release has at most one active (running, paused or halted)
 * rollout: checked in the same transaction that inserts one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

#define ACTIVE_STATES "(0, 1, 2)" /* running, paused, halted */
/* The completed rollout that still offers its release to devices that
 * check in late: of a device type's rollouts that are halted, completed or
 * aborted, the newest, when it is completed. Halting or aborting it (or a
 * newer rollout of the type) ends those offers; an older completed rollout
 * never offers again, so that "halt" means no offer from the rollouts
 * before it either. */
#define OFFERING_COMPLETED                                                                   \
	"(state = 3 AND id IN (SELECT MAX(id) FROM rollouts WHERE state IN (2, 3, 4) "           \
	"GROUP BY device))"
#define ROLLOUT_SELECT                                                                     \
	"SELECT id, release_id, device, state, state_ms, reason, phases, phase, phase_ms, "  \
	"min_version, max_version, tags, macs, success_bp, error_bp, soak_ms, silent_ms, "   \
	"approval, created_ms, created_by, window_start, window_end, rate FROM rollouts"

static const char *const state_names[NF_ROLLOUT_STATES] = {"running", "paused", "halted",
                                                             "completed", "aborted"};

const char *nf_rollout_state_name(int state)
{
	return state >= 0 && state < NF_ROLLOUT_STATES ? state_names[state] : "?";
}

/* "1,10,50,100" into r->phases. */
static void read_phases(const char *text, struct nf_rollout *r)
{
	r->nphases = 0;
	while (text != NULL && *text != '\0' && r->nphases < NF_ROLLOUT_MAX_PHASES) {
		char *end;
		unsigned long v = strtoul(text, &end, 10);
		if (end == text)
			break;
		r->phases[r->nphases++] = (unsigned)v;
		text = *end == ',' ? end + 1 : end;
	}
}

static void write_phases(const struct nf_rollout *r, char *out, size_t cap)
{
	out[0] = '\0';
	for (unsigned i = 0; i < r->nphases; i++)
		snprintf(out + strlen(out), cap - strlen(out), "%s%u", i ? "," : "", r->phases[i]);
}

struct rows {
	struct nf_rollout *one; /* get: NULL for a list */
	struct nf_rollout *list;
	size_t count, cap;
	bool failed;
};

static void on_rollout(void *user, const struct nf_db_row *row)
{
	struct rows *c = user;
	struct nf_rollout *r = nf_rows_slot(c->one, (void **)&c->list, c->count, &c->cap,
	                                    sizeof *r, &c->failed);

	if (r == NULL)
		return;
	c->count++;
	memset(r, 0, sizeof *r);
	r->id = nf_db_int(row, 0);
	r->release_id = nf_db_int(row, 1);
	nf_db_copy(row, 2, r->device, sizeof r->device);
	r->state = (int)nf_db_int(row, 3);
	r->state_ms = nf_db_int(row, 4);
	nf_db_copy(row, 5, r->reason, sizeof r->reason);
	read_phases(nf_db_text(row, 6), r);
	r->phase = (unsigned)nf_db_int(row, 7);
	r->phase_ms = nf_db_int(row, 8);
	nf_db_copy(row, 9, r->min_version, sizeof r->min_version);
	nf_db_copy(row, 10, r->max_version, sizeof r->max_version);
	nf_db_copy(row, 11, r->tags, sizeof r->tags);
	nf_db_copy(row, 12, r->macs, sizeof r->macs);
	r->success_bp = (unsigned)nf_db_int(row, 13);
	r->error_bp = (unsigned)nf_db_int(row, 14);
	r->soak_ms = nf_db_int(row, 15);
	r->silent_ms = nf_db_int(row, 16);
	r->approval = nf_db_int(row, 17) != 0;
	r->created_ms = nf_db_int(row, 18);
	nf_db_copy(row, 19, r->created_by, sizeof r->created_by);
	r->window_start = (int)nf_db_int(row, 20);
	r->window_end = (int)nf_db_int(row, 21);
	r->rate = (unsigned)nf_db_int(row, 22);
}

static void on_id(void *user, const struct nf_db_row *row)
{
	*(int64_t *)user = nf_db_int(row, 0);
}

int nf_rollout_uses_release(struct nf_db *db, int64_t release_id, int64_t *rollout)
{
	struct nf_db_val v = NF_DB_INT_V(release_id);
	int64_t id = 0;

	if (nf_db_run(db, -1,
	              "SELECT id FROM rollouts WHERE release_id = $1 AND state IN " ACTIVE_STATES
	              " ORDER BY id LIMIT 1",
	              &v, 1, on_id, &id) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	if (rollout != NULL)
		*rollout = id;
	return id != 0 ? 1 : 0;
}

/* Add ------------------------------------------------------------------------ */

struct add_ctx {
	struct nf_rollout *r;
	int64_t *other;
};

static int add_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct add_ctx *a = ctx;
	struct nf_rollout *r = a->r;
	bool sqlite = nf_db_backend(db) == NF_DB_SQLITE;
	struct nf_db_val rel = NF_DB_INT_V(r->release_id);
	char phases[NF_ROLLOUT_MAX_PHASES * 4 + 1];
	int64_t found = 0, id = 0;
	int used;

	(void)opt;
	write_phases(r, phases, sizeof phases);
	if (nf_db_exec(db, sqlite ? "BEGIN IMMEDIATE" : "BEGIN") != 0)
		return -1;
	if (nf_db_run(db, -1, "SELECT id FROM releases WHERE id = $1", &rel, 1, on_id, &found) !=
	        0 ||
	    nf_db_sync(db) != 0 || (used = nf_rollout_uses_release(db, r->release_id, a->other)) < 0)
		goto fail;
	if (found == 0 || used == 1)
		return nf_db_exec(db, "COMMIT") == 0 ? (found == 0 ? 0 : -2) : -1;
	struct nf_db_val v[17] = {
	    NF_DB_INT_V(r->release_id), NF_DB_TEXT_V(r->device),     NF_DB_INT_V(r->created_ms),
	    NF_DB_TEXT_V(phases),       NF_DB_TEXT_V(r->min_version), NF_DB_TEXT_V(r->max_version),
	    NF_DB_TEXT_V(r->tags),      NF_DB_TEXT_V(r->macs),        NF_DB_INT_V(r->success_bp),
	    NF_DB_INT_V(r->error_bp),   NF_DB_INT_V(r->soak_ms),      NF_DB_INT_V(r->silent_ms),
	    NF_DB_INT_V(r->approval),   NF_DB_TEXT_V(r->created_by),  NF_DB_INT_V(r->window_start),
	    NF_DB_INT_V(r->window_end), NF_DB_INT_V(r->rate),
	};
	if (nf_db_run(db, -1,
	              "INSERT INTO rollouts (release_id, device, state, state_ms, phases, phase, "
	              "phase_ms, min_version, max_version, tags, macs, success_bp, error_bp, "
	              "soak_ms, silent_ms, approval, created_ms, created_by, window_start, "
	              "window_end, rate) VALUES ($1, $2, 0, $3, $4, 0, $3, $5, $6, $7, $8, $9, "
	              "$10, $11, $12, $13, $3, $14, $15, $16, $17) RETURNING id",
	              v, 17, on_id, &id) != 0 ||
	    nf_db_sync(db) != 0 || nf_db_exec(db, "COMMIT") != 0)
		goto fail;
	r->id = id;
	r->state = NF_ROLLOUT_RUNNING;
	r->state_ms = r->phase_ms = r->created_ms;
	r->phase = 0;
	return 1;
fail:
	nf_db_exec(db, "ROLLBACK");
	return -1;
}

int nf_store_rollout_add(struct nf_store *store, struct nf_rollout *r, int64_t *other, char *err,
                         size_t errlen)
{
	struct add_ctx a = {r, other};

	*other = 0;
	return nf_store_read(store, add_op, &a, err, errlen);
}

/* Read ----------------------------------------------------------------------- */

struct get_ctx {
	struct rows rows;
	int64_t id;    /* > 0 one; 0 the newest NF_STORE_MAX_ROLLOUTS; -2 the live ones */
};

#define LIVE (-2)

static int get_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct get_ctx *g = ctx;
	struct nf_db_val v[1] = {NF_DB_INT_V(g->id)};

	(void)opt;
	g->rows.count = 0;
	if (g->id > 0) {
		if (nf_db_run(db, -1, ROLLOUT_SELECT " WHERE id = $1", v, 1, on_rollout, &g->rows) !=
		    0)
			return -1;
	} else if (g->id == LIVE) {
		v[0] = NF_DB_INT_V(NF_STORE_MAX_ROLLOUTS);
		if (nf_db_run(db, -1,
		              ROLLOUT_SELECT " WHERE state IN (0, 1) OR " OFFERING_COMPLETED
		                             " ORDER BY id DESC LIMIT $1",
		              v, 1, on_rollout, &g->rows) != 0)
			return -1;
	} else {
		v[0] = NF_DB_INT_V(NF_STORE_MAX_ROLLOUTS);
		if (nf_db_run(db, -1, ROLLOUT_SELECT " ORDER BY id DESC LIMIT $1", v, 1, on_rollout,
		              &g->rows) != 0)
			return -1;
	}
	if (nf_db_sync(db) != 0)
		return -1;
	if (g->rows.failed)
		return nf_db_fail(db, "out of memory");
	return g->rows.count > 0 ? 1 : 0;
}

int nf_store_rollout_get(struct nf_store *store, int64_t id, struct nf_rollout *out, char *err,
                         size_t errlen)
{
	struct get_ctx g = {{.one = out}, id > 0 ? id : -1};

	return nf_store_read(store, get_op, &g, err, errlen);
}

static int list(struct nf_store *store, int64_t which, struct nf_rollout **out, size_t *count,
                char *err, size_t errlen)
{
	struct get_ctx g = {{0}, which};

	*out = NULL;
	*count = 0;
	if (nf_store_read(store, get_op, &g, err, errlen) < 0) {
		free(g.rows.list);
		return -1;
	}
	*out = g.rows.list;
	*count = g.rows.count;
	return 0;
}

int nf_store_rollout_list(struct nf_store *store, struct nf_rollout **out, size_t *count,
                          char *err, size_t errlen)
{
	return list(store, 0, out, count, err, errlen);
}

int nf_store_rollout_live(struct nf_store *store, struct nf_rollout **out, size_t *count,
                          char *err, size_t errlen)
{
	return list(store, LIVE, out, count, err, errlen);
}

/* Move ----------------------------------------------------------------------- */

struct move_ctx {
	int64_t id;
	unsigned from_mask;
	int state;
	bool advance;
	const char *reason;
	int64_t now;
	struct nf_rollout *out;
};

static int move_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct move_ctx *m = ctx;
	char from[64] = "";
	char sql[512];
	int64_t moved = 0;
	struct rows rows = {.one = m->out};
	struct nf_db_val v[4] = {NF_DB_INT_V(m->id), NF_DB_INT_V(m->state), NF_DB_TEXT_V(m->reason),
	                         NF_DB_INT_V(m->now)};

	(void)opt;
	for (int s = 0; s < NF_ROLLOUT_STATES; s++)
		if (m->from_mask & (1u << s))
			snprintf(from + strlen(from), sizeof from - strlen(from), "%s%d",
			         from[0] ? ", " : "", s);
	if (from[0] == '\0')
		return nf_db_fail(db, "internal: no state to move from");
	/* The SQL text is made of the fixed fragments above and digits only.
	 * A completed rollout moves only while it still offers: an older one,
	 * moved, would be active again beside the one that replaced it. */
	snprintf(sql, sizeof sql,
	         "UPDATE rollouts SET state = $2, reason = $3, state_ms = $4%s "
	         "WHERE id = $1 AND state IN (%s) AND (state <> 3 OR " OFFERING_COMPLETED ") "
	         "RETURNING id",
	         m->advance ? ", phase = phase + 1, phase_ms = $4" : "", from);
	memset(m->out, 0, sizeof *m->out);
	if (nf_db_run(db, -1, sql, v, 4, on_id, &moved) != 0 ||
	    nf_db_run(db, -1, ROLLOUT_SELECT " WHERE id = $1", v, 1, on_rollout, &rows) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	return moved != 0 ? 1 : 0;
}

int nf_store_rollout_move(struct nf_store *store, int64_t id, unsigned from_mask, int state,
                          bool advance, const char *reason, int64_t now_ms,
                          struct nf_rollout *out, char *err, size_t errlen)
{
	struct move_ctx m = {id, from_mask, state, advance, reason != NULL ? reason : "", now_ms,
	                     out};

	return nf_store_read(store, move_op, &m, err, errlen);
}

struct halt_ctx {
	const char *reason;
	int64_t now, halted;
};

static void on_halted(void *user, const struct nf_db_row *row)
{
	(void)row;
	((struct halt_ctx *)user)->halted++;
}

static int halt_all_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct halt_ctx *h = ctx;
	struct nf_db_val v[2] = {NF_DB_TEXT_V(h->reason), NF_DB_INT_V(h->now)};

	(void)opt;
	h->halted = 0;
	if (nf_db_run(db, -1,
	              "UPDATE rollouts SET state = 2, reason = $1, state_ms = $2 "
	              "WHERE state IN (0, 1) OR " OFFERING_COMPLETED " RETURNING id",
	              v, 2, on_halted, h) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	return 0;
}

int nf_store_rollout_halt_all(struct nf_store *store, const char *reason, int64_t now_ms,
                              char *err, size_t errlen)
{
	struct halt_ctx h = {reason, now_ms, 0};

	return nf_store_read(store, halt_all_op, &h, err, errlen) < 0 ? -1 : (int)h.halted;
}

/* Offers' rule codes ------------------------------------------------------------ */

int32_t nf_rollout_rule(int64_t id, unsigned phase)
{
	return (int32_t)-(NF_RULE_ROLLOUT_BASE + id * NF_RULE_PHASES + (int64_t)phase);
}

bool nf_rollout_of_rule(int32_t rule, int64_t *id, unsigned *phase)
{
	int64_t n = -(int64_t)rule - NF_RULE_ROLLOUT_BASE;

	if (rule > -NF_RULE_ROLLOUT_BASE)
		return false;
	*id = n / NF_RULE_PHASES;
	*phase = (unsigned)(n % NF_RULE_PHASES);
	return true;
}

/* Counts ---------------------------------------------------------------------- */

const char *nf_rollout_count_name(int kind)
{
	static const char *const names[NF_RC_COUNT] = {"pending", "confirmed", "reverted",
	                                               "failed",  "silent",    "withdrawn"};
	return kind >= 0 && kind < NF_RC_COUNT ? names[kind] : "?";
}

struct counts_ctx {
	const struct nf_rollout *r;
	int64_t now;
	struct nf_rollout_counts *out;
};

/* Which count a device's offer state falls in: an offer still open past
 * the rollout's silent_after is silent (the device never came back). */
static int count_kind(int state, bool overdue, bool reverted_before)
{
	if (reverted_before && state != NF_UPDATE_CONFIRMED)
		return NF_RC_REVERTED; /* offered again after a revert, not confirmed since */
	switch (state) {
	case NF_UPDATE_CONFIRMED:
		return NF_RC_CONFIRMED;
	case NF_UPDATE_REVERTED:
		return NF_RC_REVERTED;
	case NF_UPDATE_FAILED:
		return NF_RC_FAILED;
	case NF_UPDATE_OFFERED:
	case NF_UPDATE_DOWNLOADING:
	case NF_UPDATE_DOWNLOADED:
		return overdue ? NF_RC_SILENT : NF_RC_PENDING;
	default:
		return NF_RC_WITHDRAWN;
	}
}

static void on_count(void *user, const struct nf_db_row *row)
{
	struct counts_ctx *c = user;
	int64_t id;
	unsigned phase;
	uint64_t n = (uint64_t)nf_db_int(row, 3);


	if (!nf_rollout_of_rule((int32_t)nf_db_int(row, 0), &id, &phase) || id != c->r->id ||
	    phase >= NF_ROLLOUT_MAX_PHASES)
		return;
	int kind = count_kind((int)nf_db_int(row, 1), nf_db_int(row, 2) != 0, nf_db_int(row, 4) != 0);
	c->out->phase[phase][kind] += n;
	c->out->offered[phase] += n;
	c->out->total[kind] += n;
	c->out->offered_total += n;
}

static void on_seen(void *user, const struct nf_db_row *row)
{
	struct nf_rollout_counts *out = user;

	out->known = (uint64_t)nf_db_int(row, 0);
	out->seen = (uint64_t)nf_db_int(row, 1);
	out->all = (uint64_t)nf_db_int(row, 2);
}

static bool has_window(const struct nf_rollout *r)
{
	/* An empty window is refused by the API, and means none here. */
	return r->window_start >= 0 && r->window_end >= 0 && r->window_start != r->window_end;
}

bool nf_rollout_window_open(const struct nf_rollout *r, int minute)
{
	if (!has_window(r))
		return true;
	if (r->window_start <= r->window_end)
		return minute >= r->window_start && minute < r->window_end;
	return minute >= r->window_start || minute < r->window_end; /* over midnight */
}

/* For a rollout with a window (the server's local time): when its window
 * last opened, in wall-clock ms, while it is open now; -1 while it is
 * closed; 0 without a window. */
static int64_t window_opened_ms(const struct nf_rollout *r, int64_t now_ms)
{
	time_t now = (time_t)(now_ms / 1000);
	struct tm tm;
	int minute, since;

	if (!has_window(r))
		return 0;
	localtime_r(&now, &tm);
	minute = tm.tm_hour * 60 + tm.tm_min;
	if (!nf_rollout_window_open(r, minute))
		return -1;
	since = (minute - r->window_start + 24 * 60) % (24 * 60); /* whole minutes open */
	return now_ms - now_ms % 60000 - (int64_t)since * 60000;
}

static int counts_op(struct nf_db *db, const struct nf_store_options *opt, void *ctx)
{
	struct counts_ctx *c = ctx;
	/* The partial index devices_rollout covers rule codes <= -2; the
	 * literal bound lets both planners use it with parameters. */
	struct nf_db_val v[3] = {
	    NF_DB_INT_V(nf_rollout_rule(c->r->id, NF_RULE_PHASES - 1)),
	    NF_DB_INT_V(nf_rollout_rule(c->r->id, 0)),
	    NF_DB_INT_V(c->now - c->r->silent_ms),
	};

	(void)opt;
	memset(c->out, 0, sizeof *c->out);
	if (nf_db_run(db, -1,
	              "SELECT offer_rule, state, CASE WHEN offer_ms < $3 THEN 1 ELSE 0 END, "
	              "COUNT(*), CASE WHEN offer_reverts > 0 THEN 1 ELSE 0 END FROM devices "
	              "WHERE offer_rule <= -2 AND offer_rule BETWEEN $1 AND $2 GROUP BY offer_rule, "
	              "state, CASE WHEN offer_ms < $3 THEN 1 ELSE 0 END, "
	              "CASE WHEN offer_reverts > 0 THEN 1 ELSE 0 END",
	              v, 3, on_count, c) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	/* Nothing offered yet: is the phase empty, or the fleet away? Asked
	 * only once the phase has soaked (the gates wait for that anyway), and
	 * only of check-ins while the window was open: a device that checked
	 * in while it was closed was not offered because of the window, which
	 * shows nothing about the phase. */
	if (c->out->offered_total > 0 || c->now - c->r->phase_ms < c->r->soak_ms)
		return 0;
	int64_t opened = window_opened_ms(c->r, c->now);
	if (opened < 0) {
		c->out->window_closed = true;
		return 0;
	}
	struct nf_db_val w[3] = {NF_DB_TEXT_V(c->r->device), NF_DB_INT_V(c->r->release_id),
	                         NF_DB_INT_V(opened > c->r->phase_ms ? opened : c->r->phase_ms)};
	if (nf_db_run(db, -1,
	              "SELECT COALESCE(SUM(CASE WHEN version <> rv.v THEN 1 ELSE 0 END), 0), "
	              "COALESCE(SUM(CASE WHEN version <> rv.v AND last_check >= $3 THEN 1 ELSE 0 END), "
	              "0), COUNT(*) FROM devices, (SELECT COALESCE((SELECT version FROM releases "
	              "WHERE id = $2), '') AS v) AS rv WHERE device = $1 AND excluded = 0",
	              w, 3, on_seen, c->out) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	return 0;
}

int nf_store_rollout_counts(struct nf_store *store, const struct nf_rollout *r, int64_t now_ms,
                            struct nf_rollout_counts *out, char *err, size_t errlen)
{
	struct counts_ctx c = {r, now_ms, out};

	return nf_store_read(store, counts_op, &c, err, errlen) < 0 ? -1 : 0;
}

/* Gates ------------------------------------------------------------------------ */

const char *nf_gate_action_name(int action)
{
	static const char *const names[NF_GATE_ACTIONS] = {"wait", "halt", "advance",
	                                                   "awaiting approval"};
	return action >= 0 && action < NF_GATE_ACTIONS ? names[action] : "?";
}

/* n / d in basis points, rounded down; 0 when d is 0. */
static unsigned basis_points(uint64_t n, uint64_t d)
{
	return d == 0 ? 0 : (unsigned)(n * 10000 / d);
}

/* A rollout that has offered nothing, its phase soaked: whether the phase
 * is empty (no device of the type picked for it, as with too few devices
 * for its percentage), which passes it, or the fleet away (devices off, the
 * server just started), which must not: phases passed with nobody there
 * would offer the release to the whole fleet at once when it comes back.
 * Empty once seen of the known devices checked in since the phase began,
 * where seen is 100 / percent (one device expected in the phase) or half
 * of those known, whichever is fewer, and at least one. Else the reason
 * into v->why. */
static bool phase_shown_empty(const struct nf_rollout *r, const struct nf_rollout_counts *c,
                              struct nf_gate_verdict *v)
{
	unsigned pct = r->phase < r->nphases && r->phases[r->phase] > 0 ? r->phases[r->phase] : 100;
	uint64_t need = (100 + pct - 1) / pct, half = (c->known + 1) / 2;

	if (c->window_closed) {
		snprintf(v->why, sizeof v->why,
		         "phase %u (%u%%) has offered nothing, and its window is closed: it passes "
		         "empty only on check-ins while the window is open",
		         r->phase + 1, pct);
		return false;
	}
	/* Every device of the type runs the release already: nothing to offer. */
	if (c->all > 0 && c->known == 0)
		return true;
	if (half < need)
		need = half;
	if (need < 1)
		need = 1;
	if (c->seen >= need)
		return true;
	snprintf(v->why, sizeof v->why,
	         "phase %u (%u%%) has offered nothing: %llu of the %llu %s devices known checked in "
	         "since it began, %llu needed to pass it empty",
	         r->phase + 1, pct, (unsigned long long)c->seen, (unsigned long long)c->known,
	         r->device, (unsigned long long)need);
	return false;
}

void nf_rollout_judge(const struct nf_rollout *r, const struct nf_rollout_counts *c,
                      int64_t now_ms, struct nf_gate_verdict *v)
{
	uint64_t offered = c->offered_total;
	uint64_t errors = c->total[NF_RC_REVERTED] + c->total[NF_RC_FAILED] + c->total[NF_RC_SILENT];
	int64_t soaked = now_ms - r->phase_ms;

	memset(v, 0, sizeof *v);
	v->success_bp = basis_points(c->total[NF_RC_CONFIRMED], offered);
	v->error_bp = basis_points(errors, offered);
	v->soak_left_ms = soaked >= r->soak_ms ? 0 : r->soak_ms - soaked;
	v->action = NF_GATE_WAIT;
	if (r->state != NF_ROLLOUT_RUNNING && r->state != NF_ROLLOUT_PAUSED &&
	    r->state != NF_ROLLOUT_COMPLETED)
		return;
	/* Strictly above: an error threshold of 0 halts on the first error. */
	if (offered > 0 && errors * 10000 > (uint64_t)r->error_bp * offered) {
		v->action = NF_GATE_HALT;
		snprintf(v->why, sizeof v->why,
		         "error gate: %llu of %llu offered failed (%llu reverted, %llu failed, %llu "
		         "silent): %u.%02u%% > %u.%02u%% in phase %u (%u%%)",
		         (unsigned long long)errors, (unsigned long long)offered,
		         (unsigned long long)c->total[NF_RC_REVERTED],
		         (unsigned long long)c->total[NF_RC_FAILED],
		         (unsigned long long)c->total[NF_RC_SILENT], v->error_bp / 100,
		         v->error_bp % 100, r->error_bp / 100, r->error_bp % 100, r->phase + 1,
		         r->phase < r->nphases ? r->phases[r->phase] : 100);
		return;
	}
	if (r->state != NF_ROLLOUT_RUNNING || v->soak_left_ms > 0)
		return;
	if (offered == 0 && !phase_shown_empty(r, c, v))
		return;
	if (offered > 0 && c->total[NF_RC_CONFIRMED] * 10000 < (uint64_t)r->success_bp * offered)
		return;
	v->action = r->approval ? NF_GATE_APPROVAL : NF_GATE_ADVANCE;
	snprintf(v->why, sizeof v->why,
	         "success gate: %llu of %llu offered confirmed (%u.%02u%% >= %u.%02u%%) after the "
	         "soak",
	         (unsigned long long)c->total[NF_RC_CONFIRMED], (unsigned long long)offered,
	         v->success_bp / 100, v->success_bp % 100, r->success_bp / 100,
	         r->success_bp % 100);
}
