/*
 * schema.c - the store's tables, as numbered migrations run on open.
 *
 * Each migration runs in its own transaction together with the row that
 * records it in nf_schema (version, when, what), so a database is always
 * at exactly one version. A database at a version newer than this code
 * knows is refused: an older nofussd must not write into a schema it does
 * not understand. Several nodes opening one PostgreSQL database at once
 * take turns under an advisory lock; SQLite's BEGIN IMMEDIATE does the
 * same for a file.
 *
 * Never edit a migration once released: add the next one. The tables are
 * described in docs/STORE.md section 9.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store.h"

/* The key PostgreSQL nodes lock while migrating: "nofuss" in ASCII. */
#define MIGRATION_LOCK "121424739398515"

/* Migration 1: devices and their history. Times are ms since 1970. Only
 * the id column differs: SQLite's rowid alias against an identity. */
#define DEVICE_COLUMNS                                                                    \
	"key TEXT NOT NULL UNIQUE, mac TEXT NOT NULL DEFAULT '', ip TEXT NOT NULL DEFAULT '', " \
	"device TEXT NOT NULL DEFAULT '', version TEXT NOT NULL DEFAULT '', "                \
	"build TEXT NOT NULL DEFAULT '', client INTEGER NOT NULL DEFAULT 0, "                \
	"chip_id BIGINT NOT NULL DEFAULT 0, chip_size BIGINT NOT NULL DEFAULT 0, "            \
	"free_space BIGINT NOT NULL DEFAULT 0, sketch_size BIGINT NOT NULL DEFAULT 0, "       \
	"sketch_md5 TEXT NOT NULL DEFAULT '', sdk TEXT NOT NULL DEFAULT '', "                 \
	"first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL, "                             \
	"last_check BIGINT NOT NULL DEFAULT 0, checks BIGINT NOT NULL DEFAULT 0, "            \
	"answer INTEGER NOT NULL DEFAULT 0, answer_target TEXT NOT NULL DEFAULT '', "         \
	"answer_rule INTEGER NOT NULL DEFAULT -1, answer_reason TEXT NOT NULL DEFAULT '', "   \
	"prev_check BIGINT NOT NULL DEFAULT 0, prev_answer INTEGER NOT NULL DEFAULT 0, "      \
	"prev_target TEXT NOT NULL DEFAULT '', prev_reason TEXT NOT NULL DEFAULT '', "        \
	"state INTEGER NOT NULL DEFAULT 0, state_ms BIGINT NOT NULL DEFAULT 0, "              \
	"offer_target TEXT NOT NULL DEFAULT '', offer_rule INTEGER NOT NULL DEFAULT -1, "     \
	"offer_ms BIGINT NOT NULL DEFAULT 0, offer_from TEXT NOT NULL DEFAULT '', "           \
	IMAGE_COLUMNS("img0") ", " IMAGE_COLUMNS("img1") ", " IMAGE_COLUMNS("early") ", "    \
	"early_ms BIGINT NOT NULL DEFAULT 0, hist_seq BIGINT NOT NULL DEFAULT 0"
#define IMAGE_COLUMNS(p)                                                                  \
	p "_path TEXT NOT NULL DEFAULT '', " p "_md5 TEXT NOT NULL DEFAULT '', " p            \
	"_size BIGINT NOT NULL DEFAULT 0, " p "_bytes BIGINT NOT NULL DEFAULT 0, " p          \
	"_done INTEGER NOT NULL DEFAULT 0"
#define DEVICE_INDEXES                                                                    \
	"CREATE INDEX devices_ip ON devices (ip);"                                            \
	"CREATE INDEX devices_type_version ON devices (device, version);"                     \
	"CREATE INDEX devices_state ON devices (state, state_ms);"
#define HISTORY_TABLE                                                                     \
	"CREATE TABLE history (device_id BIGINT NOT NULL REFERENCES devices (id) "            \
	"ON DELETE CASCADE, slot INTEGER NOT NULL, seq BIGINT NOT NULL, "                     \
	"at_ms BIGINT NOT NULL, kind INTEGER NOT NULL, state INTEGER NOT NULL, "              \
	"target TEXT NOT NULL, rule INTEGER NOT NULL, version TEXT NOT NULL, "                \
	"image TEXT NOT NULL, bytes BIGINT NOT NULL, total BIGINT NOT NULL, "                 \
	"detail TEXT NOT NULL, PRIMARY KEY (device_id, slot));"

/* Migration 2: tags an operator puts on devices, and the store's settings
 * that shape stored data (the history_max the history ring was made for). */
#define TAGS_TABLE                                                                        \
	"CREATE TABLE tags (device_id BIGINT NOT NULL REFERENCES devices (id) "               \
	"ON DELETE CASCADE, tag TEXT NOT NULL, PRIMARY KEY (device_id, tag));"                \
	"CREATE INDEX tags_tag ON tags (tag);"                                                \
	"CREATE TABLE settings (name TEXT PRIMARY KEY, value BIGINT NOT NULL);"

/* Migration 3: releases (issue 10 item 1) and the audit log of admin
 * writes (item 8). A release's images are stored under public/ by content;
 * the rows hold their digests as computed once, at upload. */
#define RELEASE_IMAGE_COLUMNS(p)                                                          \
	p "_path TEXT NOT NULL DEFAULT '', " p "_size BIGINT NOT NULL DEFAULT 0, " p          \
	"_md5 TEXT NOT NULL DEFAULT '', " p "_sha256 TEXT NOT NULL DEFAULT '', " p            \
	"_format INTEGER NOT NULL DEFAULT 0, " p "_flash_mode INTEGER NOT NULL DEFAULT -1, " p \
	"_flash_size BIGINT NOT NULL DEFAULT 0, " p "_chip TEXT NOT NULL DEFAULT ''"
#define RELEASE_COLUMNS                                                                   \
	"device TEXT NOT NULL, version TEXT NOT NULL, created_ms BIGINT NOT NULL, "           \
	"created_by TEXT NOT NULL DEFAULT '', notes TEXT NOT NULL DEFAULT '', "               \
	RELEASE_IMAGE_COLUMNS("fw") ", " RELEASE_IMAGE_COLUMNS("fs") ", "                     \
	"UNIQUE (device, version)"
#define AUDIT_COLUMNS                                                                     \
	"at_ms BIGINT NOT NULL, token TEXT NOT NULL, action TEXT NOT NULL, "                  \
	"target TEXT NOT NULL, status INTEGER NOT NULL, outcome TEXT NOT NULL"
#define PG_ID "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "

/* Migration 4: rollouts (issue 10 item 2): one release offered in phases.
 * Percentages as text ("1,10,50,100"), thresholds in basis points. */
#define ROLLOUT_COLUMNS                                                                   \
	"release_id BIGINT NOT NULL, device TEXT NOT NULL, state INTEGER NOT NULL, "         \
	"state_ms BIGINT NOT NULL, reason TEXT NOT NULL DEFAULT '', phases TEXT NOT NULL, "   \
	"phase INTEGER NOT NULL DEFAULT 0, phase_ms BIGINT NOT NULL, "                        \
	"min_version TEXT NOT NULL DEFAULT '', max_version TEXT NOT NULL DEFAULT '', "        \
	"tags TEXT NOT NULL DEFAULT '', macs TEXT NOT NULL DEFAULT '', "                      \
	"success_bp INTEGER NOT NULL, error_bp INTEGER NOT NULL, soak_ms BIGINT NOT NULL, "   \
	"silent_ms BIGINT NOT NULL, approval INTEGER NOT NULL DEFAULT 0, "                    \
	"created_ms BIGINT NOT NULL, created_by TEXT NOT NULL DEFAULT ''"
#define ROLLOUT_INDEXES "CREATE INDEX rollouts_release ON rollouts (release_id, state);"

/* Migration 5: rollouts offer (issue 10). Devices get an operator's pin
 * and exclusion; offers made by rollouts carry rule codes <= -2
 * (nf_rollout_rule), which a partial index serves to the gates' counts,
 * and how often in a row the device reverted the same target (update.c);
 * rollouts get a time window and an offer rate. */
#define ROLLOUT_OFFERS                                                                    \
	"ALTER TABLE devices ADD COLUMN pin_release BIGINT NOT NULL DEFAULT 0;"              \
	"ALTER TABLE devices ADD COLUMN excluded INTEGER NOT NULL DEFAULT 0;"                 \
	"ALTER TABLE devices ADD COLUMN offer_reverts INTEGER NOT NULL DEFAULT 0;"            \
	"CREATE INDEX devices_rollout ON devices (offer_rule, state) WHERE offer_rule <= -2;" \
	"CREATE INDEX devices_controls ON devices (key) "                                     \
	"WHERE pin_release <> 0 OR excluded <> 0;"                                             \
	"ALTER TABLE rollouts ADD COLUMN window_start INTEGER NOT NULL DEFAULT -1;"           \
	"ALTER TABLE rollouts ADD COLUMN window_end INTEGER NOT NULL DEFAULT -1;"             \
	"ALTER TABLE rollouts ADD COLUMN rate INTEGER NOT NULL DEFAULT 0;"

/* Migration 6: a release id is never given again (SQLite). Without
 * AUTOINCREMENT SQLite hands out the largest id plus one, so deleting the
 * newest release and uploading another gave the new one the old id, and
 * whatever still named the old one (a completed rollout that still offers,
 * an audit entry, a stale page's delete button) now named the new one. The
 * table is made again with AUTOINCREMENT, its counter set past every id
 * anything names. PostgreSQL's identity columns never reuse an id. */
#define RELEASES_AUTOINCREMENT                                                            \
	"CREATE TABLE releases_new (id INTEGER PRIMARY KEY AUTOINCREMENT, " RELEASE_COLUMNS   \
	");"                                                                                  \
	"INSERT INTO releases_new SELECT * FROM releases;"                                   \
	"DROP TABLE releases;"                                                                \
	"ALTER TABLE releases_new RENAME TO releases;"                                        \
	"DELETE FROM sqlite_sequence WHERE name = 'releases';"                                \
	"INSERT INTO sqlite_sequence (name, seq) SELECT 'releases', COALESCE(MAX(x), 0) FROM " \
	"(SELECT MAX(id) AS x FROM releases UNION ALL SELECT MAX(release_id) FROM rollouts "  \
	"UNION ALL SELECT MAX(pin_release) FROM devices);"

struct migration {
	const char *what;
	const char *sqlite, *pg;
};

static const struct migration migrations[NF_STORE_SCHEMA_VERSION] = {
	{"devices and their history",
	 "CREATE TABLE devices (id INTEGER PRIMARY KEY, " DEVICE_COLUMNS ");" DEVICE_INDEXES
	         HISTORY_TABLE,
	 "CREATE TABLE devices (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
	 DEVICE_COLUMNS ") WITH (fillfactor = 70);" DEVICE_INDEXES HISTORY_TABLE},
	{"device tags and store settings", TAGS_TABLE, TAGS_TABLE},
	{"releases and the audit log",
	 "CREATE TABLE releases (id INTEGER PRIMARY KEY, " RELEASE_COLUMNS ");"
	 "CREATE TABLE audit (id INTEGER PRIMARY KEY, " AUDIT_COLUMNS ");",
	 "CREATE TABLE releases (" PG_ID RELEASE_COLUMNS ");"
	 "CREATE TABLE audit (" PG_ID AUDIT_COLUMNS ");"},
	{"rollouts",
	 "CREATE TABLE rollouts (id INTEGER PRIMARY KEY, " ROLLOUT_COLUMNS ");" ROLLOUT_INDEXES,
	 "CREATE TABLE rollouts (" PG_ID ROLLOUT_COLUMNS ");" ROLLOUT_INDEXES},
	{"rollout offers: pins, exclusions, windows", ROLLOUT_OFFERS, ROLLOUT_OFFERS},
	{"release ids never given again", RELEASES_AUTOINCREMENT, "SELECT 1"},
};

static void get_version(void *user, const struct nf_db_row *row)
{
	*(int *)user = (int)nf_db_int(row, 0);
}

/* The version in the database, inside the current transaction; -1 on error. */
static int current_version(struct nf_db *db)
{
	int version = -1;

	if (nf_db_run(db, -1, "SELECT COALESCE(MAX(version), 0) FROM nf_schema", NULL, 0,
	              get_version, &version) != 0 ||
	    nf_db_sync(db) != 0)
		return -1;
	return version;
}

/* Runs the next migration if the database is below target. Returns the
 * version now in the database (unchanged when at or past target), or -1. */
static int step(struct nf_db *db, int target, char *err, size_t errlen)
{
	bool sqlite = nf_db_backend(db) == NF_DB_SQLITE;
	int version = -1;

	if (nf_db_exec(db, sqlite ? "BEGIN IMMEDIATE" : "BEGIN") != 0 ||
	    (version = current_version(db)) < 0)
		goto fail;
	if (version > NF_STORE_SCHEMA_VERSION) {
		snprintf(err, errlen,
		         "the store's schema is at version %d, newer than this nofussd knows (%d): "
		         "run a newer nofussd, or point it at another store",
		         version, NF_STORE_SCHEMA_VERSION);
		nf_db_exec(db, "ROLLBACK");
		return -1;
	}
	if (version >= target)
		return nf_db_exec(db, "COMMIT") == 0 ? version : -1;

	const struct migration *m = &migrations[version];
	struct nf_db_val v[3] = {NF_DB_INT_V(version + 1), NF_DB_INT_V((int64_t)time(NULL) * 1000),
	                         NF_DB_TEXT_V(m->what)};
	if (nf_db_exec(db, sqlite ? m->sqlite : m->pg) != 0 ||
	    nf_db_run(db, -1, "INSERT INTO nf_schema (version, applied_ms, what) VALUES ($1, $2, $3)",
	              v, 3, NULL, NULL) != 0 ||
	    nf_db_sync(db) != 0 || nf_db_exec(db, "COMMIT") != 0)
		goto fail;
	return version + 1;
fail:
	if (version >= 0)
		snprintf(err, errlen, "store migration to version %d (%s): %s", version + 1,
		         migrations[version].what, nf_db_error(db));
	else
		snprintf(err, errlen, "store: %s", nf_db_error(db));
	nf_db_clear(db);
	nf_db_exec(db, "ROLLBACK");
	return -1;
}

int nf_schema_migrate(struct nf_db *db, int target, char *err, size_t errlen)
{
	bool pg = nf_db_backend(db) == NF_DB_PG;
	int version = 0, last = -1;

	if (target <= 0 || target > NF_STORE_SCHEMA_VERSION)
		target = NF_STORE_SCHEMA_VERSION;
	nf_db_clear(db);
	if ((pg && nf_db_exec(db, "SELECT pg_advisory_lock(" MIGRATION_LOCK ")") != 0) ||
	    nf_db_exec(db, "CREATE TABLE IF NOT EXISTS nf_schema (version INTEGER PRIMARY KEY, "
	                   "applied_ms BIGINT NOT NULL, what TEXT NOT NULL)") != 0) {
		snprintf(err, errlen, "store: %s", nf_db_error(db));
		version = -1;
		goto done;
	}
	while (version >= 0 && version != last) {
		last = version;
		version = step(db, target, err, errlen);
	}
done:
	if (pg) {
		nf_db_clear(db);
		nf_db_exec(db, "SELECT pg_advisory_unlock(" MIGRATION_LOCK ")");
	}
	return version;
}

/* History ring size ------------------------------------------------------- */

static void get_value(void *user, const struct nf_db_row *row)
{
	*(int64_t *)user = nf_db_int(row, 0);
}

int nf_schema_history(struct nf_db *db, unsigned history_max, char *err, size_t errlen)
{
	bool sqlite = nf_db_backend(db) == NF_DB_SQLITE;
	struct nf_db_val max = NF_DB_INT_V(history_max);
	int64_t old = 0;

	nf_db_clear(db);
	if (nf_db_exec(db, sqlite ? "BEGIN IMMEDIATE" : "BEGIN") != 0 ||
	    nf_db_run(db, -1, "SELECT value FROM settings WHERE name = 'history_max'", NULL, 0,
	              get_value, &old) != 0 ||
	    nf_db_sync(db) != 0)
		goto fail;
	if (old != (int64_t)history_max) {
		/* Keep each device's newest history_max entries, each in slot
		 * seq % history_max; through negative slots so that no two rows
		 * ever share one on the way. */
		static const char *const steps[] = {
			"DELETE FROM history WHERE seq <= (SELECT hist_seq FROM devices "
			"WHERE devices.id = history.device_id) - $1",
			"UPDATE history SET slot = -1 - (seq % $1)",
			"UPDATE history SET slot = -1 - slot WHERE slot < 0 AND $1 > 0",
			"INSERT INTO settings (name, value) VALUES ('history_max', $1) "
			"ON CONFLICT (name) DO UPDATE SET value = excluded.value",
		};
		for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
			if (nf_db_run(db, -1, steps[i], &max, 1, NULL, NULL) != 0)
				goto fail;
	}
	if (nf_db_sync(db) != 0 || nf_db_exec(db, "COMMIT") != 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "store: resizing the history to %u entries: %s", history_max,
	         nf_db_error(db));
	nf_db_clear(db);
	nf_db_exec(db, "ROLLBACK");
	return -1;
}
