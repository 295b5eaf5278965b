/*
 * test_store.c - unit tests for the fleet store (server/store/) on a real
 * SQLite file in a mkdtemp() folder.
 *
 * The checks of store_checks.c (every proof-of-update transition, the
 * history bound, filters, sorting, pagination, the summary, migrating an
 * old file, close writing everything queued) run here against SQLite;
 * tests/integration/test_store_pg.py runs the same against PostgreSQL.
 * Here too what only SQLite shows: the file made and migrated on open in
 * WAL mode, a newer schema refused, the queue dropping and counting when
 * the writer is held back by another connection's lock (posts never wait,
 * and nothing already queued is lost once the lock goes), and the names,
 * MACs, keys and URLs the store accepts.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "common.h"
#include "store_checks.h"
#include "testutil.h"

static int setup(void **state)
{
	struct store_fixture *f = calloc(1, sizeof *f);

	if (f == NULL || (f->dir = nf_test_mkdtemp("store")) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->url, sizeof f->url, "sqlite://%s/fleet.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct store_fixture *f = *state;
	int rc = nf_test_rmtree(f->dir);

	free(f->dir);
	free(f);
	return rc;
}

static const char *path_of(void **state)
{
	return ((struct store_fixture *)*state)->url + strlen("sqlite://");
}

/* Runs one SQL statement on the file with a connection of the test's own;
 * returns the first column of the first row as an integer (0 if none). */
static long long sql(const char *path, const char *text)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long long v = 0;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_prepare_v2(db, text, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", text, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* The event is small enough to copy into a queue slot. */
static void test_event_size(void **state)
{
	(void)state;
	assert_true(sizeof(struct nf_event) <= 1024);
}

static void test_fresh_file(void **state)
{
	struct nf_store *s = store_check_open(((struct store_fixture *)*state)->url, NULL);
	char text[128];

	assert_int_equal(nf_store_schema(s), NF_STORE_SCHEMA_VERSION);
	nf_store_close(s);
	assert_int_equal(sql(path_of(state), "SELECT count(*) FROM nf_schema"),
	                 NF_STORE_SCHEMA_VERSION);
	assert_int_equal(sql(path_of(state), "SELECT max(version) FROM nf_schema"),
	                 NF_STORE_SCHEMA_VERSION);
	/* WAL mode is a property of the file: it stays. */
	snprintf(text, sizeof text, "SELECT count(*) FROM pragma_journal_mode WHERE "
	                            "journal_mode = 'wal'");
	assert_int_equal(sql(path_of(state), text), 1);
}

static void test_newer_schema_refused(void **state)
{
	const char *url = ((struct store_fixture *)*state)->url;
	char err[512] = "";

	nf_store_close(store_check_open(url, NULL));
	sql(path_of(state), "INSERT INTO nf_schema VALUES (99, 0, 'from the future')");
	assert_null(nf_store_open(url, NULL, err, sizeof err));
	assert_non_null(strstr(err, "version 99"));
	char want[64];
	snprintf(want, sizeof want, "newer than this nofussd knows (%d)", NF_STORE_SCHEMA_VERSION);
	assert_non_null(strstr(err, want));
}

static void test_bad_urls(void **state)
{
	const char *dir = ((struct store_fixture *)*state)->dir;
	char url[1024], err[512];

	assert_null(nf_store_open("mysql://localhost/fleet", NULL, err, sizeof err));
	assert_non_null(strstr(err, "expected sqlite:///path/fleet.db or postgresql://"));
	assert_null(nf_store_open("sqlite://", NULL, err, sizeof err));
	assert_non_null(strstr(err, "names no file"));
	snprintf(url, sizeof url, "sqlite://%s/no/such/fleet.db", dir);
	assert_null(nf_store_open(url, NULL, err, sizeof err));
	assert_non_null(strstr(err, "cannot be made"));
	/* Nothing listens on port 1; the message never shows the password. */
	assert_null(nf_store_open("postgresql://nofuss:s3cret@127.0.0.1:1/fleet", NULL, err,
	                          sizeof err));
	assert_non_null(strstr(err, "postgresql"));
	assert_null(strstr(err, "s3cret"));
	nf_db_redact("postgresql://nofuss:s3cret@db.example/fleet", url, sizeof url);
	assert_string_equal(url, "postgresql://nofuss:***@db.example/fleet");
	nf_db_redact("postgresql://db.example/fleet?user=a@b", url, sizeof url);
	assert_string_equal(url, "postgresql://db.example/fleet?user=a@b");
}

static void test_names(void **state)
{
	char mac[NF_STORE_MAC_LEN], key[NF_STORE_MAX_KEY], image[NF_STORE_MAX_IMAGE], url[64];
	char long_path[300];

	(void)state;
	assert_int_equal(nf_store_mac_normalize("5c:cf:7f:0a:0b:0c", mac), 0);
	assert_string_equal(mac, "5C:CF:7F:0A:0B:0C");
	assert_int_equal(nf_store_mac_normalize("5C-CF-7F-0A-0B-0C", mac), 0);
	assert_int_equal(nf_store_mac_normalize("5ccf7f0a0b0c", mac), 0);
	assert_string_equal(mac, "5C:CF:7F:0A:0B:0C");
	assert_int_equal(nf_store_mac_normalize("00:00:00:00:00:00", mac), -1);
	assert_int_equal(nf_store_mac_normalize("5C:CF:7F:0A:0B", mac), -1);
	assert_int_equal(nf_store_mac_normalize("5C::CF:7F:0A:0B:0C", mac), -1);
	assert_int_equal(nf_store_mac_normalize("5C:CF:7F:0A:0B:0C:", mac), -1);
	assert_int_equal(nf_store_mac_normalize("5C:CF:7F:0A:0B:0G", mac), -1);
	assert_int_equal(nf_store_mac_normalize("", mac), -1);
	assert_int_equal(nf_key_normalize("aa-bb-cc-dd-ee-ff", key), 0);
	assert_string_equal(key, "AA:BB:CC:DD:EE:FF");
	assert_int_equal(nf_key_normalize("LIGHT@192.168.1.5", key), 0);
	assert_string_equal(key, "LIGHT@192.168.1.5");
	assert_int_equal(nf_key_normalize("LIGHT", key), -1);

	for (int i = 0; i < NF_UPDATE_COUNT; i++)
		assert_int_equal(nf_update_state_parse(nf_update_state_name(i)), i);
	assert_int_equal(nf_update_state_parse("SILENT"), -1);
	assert_string_equal(nf_update_state_name(NF_UPDATE_SILENT), "silent");
	assert_int_equal(nf_client_kind_parse("esp32-updater"), NF_CLIENT_ESP32_UPDATER);
	assert_string_equal(nf_client_kind_name(NF_CLIENT_NOFUSS_PATH), "nofuss-path");
	assert_string_equal(nf_history_kind_name(NF_HISTORY_HELD), "held");
	assert_string_equal(nf_answer_kind_name(NF_ANSWER_HELD), "held");

	assert_int_equal(nf_store_default_url("/var/lib/nofuss", url, sizeof url), 0);
	assert_string_equal(url, "sqlite:///var/lib/nofuss/store/fleet.db");
	assert_int_equal(nf_store_default_url("data/", url, sizeof url), 0);
	assert_string_equal(url, "sqlite://data/store/fleet.db");
	assert_int_equal(nf_store_default_url("/var/lib/nofuss", url, 20), -1);

	nf_store_image_key("/firmware/a.bin", 15, image);
	assert_string_equal(image, "/firmware/a.bin");
	memset(long_path, 'x', sizeof long_path - 1);
	long_path[sizeof long_path - 1] = '\0';
	nf_store_image_key(long_path, strlen(long_path), image);
	assert_int_equal(strlen(image), 4 + 32);
	assert_memory_equal(image, "md5:", 4);
	long_path[200] = 'y'; /* another path, another key */
	nf_store_image_key(long_path, strlen(long_path), key);
	assert_string_not_equal(key, image);
}

struct log_count {
	atomic_int errors, recovered;
};

static void count_log(void *ctx, enum nf_store_log_level level, const char *msg)
{
	struct log_count *c = ctx;

	if (level == NF_STORE_LOG_ERROR)
		atomic_fetch_add(&c->errors, 1);
	if (strstr(msg, "writing again") != NULL)
		atomic_fetch_add(&c->recovered, 1);
}

/* Another connection holds the file's write lock: the writer cannot
 * commit, posts fill the queue and the rest are dropped and counted, never
 * waited for. Once the lock goes, every queued event is written. */
static void test_queue_full_drops(void **state)
{
	struct log_count logs = {0, 0};
	struct nf_store_options o = {.queue_capacity = 64, .busy_timeout_ms = 500,
	                             .retry_max_ms = 100, .log = count_log, .log_ctx = &logs};
	struct nf_store *s = store_check_open(((struct store_fixture *)*state)->url, &o);
	struct nf_store_stats st;
	struct nf_fleet_summary sum;
	sqlite3 *lock = NULL;
	uint64_t slowest = 0, until;
	int accepted = 0;
	char mac[18], err[512];

	assert_int_equal(sqlite3_open(path_of(state), &lock), SQLITE_OK);
	assert_int_equal(sqlite3_exec(lock, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	for (int i = 0; i < 100; i++) {
		snprintf(mac, sizeof mac, "02:00:00:00:02:%02x", i);
		struct nf_event e = store_check_event(mac, "10.3.0.1", "FULL", "1.0", STORE_T0 + i);
		uint64_t t = nf_clock_ms();
		accepted += nf_store_post(s, &e) == 0;
		slowest = nf_clock_ms() - t > slowest ? nf_clock_ms() - t : slowest;
	}
	assert_int_equal(accepted, 64);
	/* A copy, never a wait: a post that waited for the writer would take
	 * its 500 ms lock timeout; 200 ms leaves room for a loaded machine or
	 * valgrind's one-thread-at-a-time scheduling. */
	assert_true(slowest < 200);
	until = nf_clock_ms() + 10000;
	do {
		nanosleep(&(struct timespec){0, 10000000}, NULL);
		nf_store_stats(s, &st);
	} while (st.failures < 2 && nf_clock_ms() < until);
	if (st.failures < 2 || !st.failing)
		fail_msg("writer not failing: failures %llu failing %d written %llu depth %zu",
		         (unsigned long long)st.failures, st.failing,
		         (unsigned long long)st.written, st.depth);
	assert_int_equal(st.dropped, 36);
	assert_int_equal(st.depth, 64);
	assert_int_equal(st.written, 0);
	assert_int_equal(atomic_load(&logs.errors), 1); /* said once, not per retry */

	assert_int_equal(sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(lock);
	assert_int_equal(nf_store_sync(s, 10000), 0);
	nf_store_stats(s, &st);
	assert_int_equal(st.written, 64);
	assert_int_equal(st.posted, 64);
	assert_false(st.failing);
	assert_int_equal(atomic_load(&logs.recovered), 1);
	assert_int_equal(nf_store_summary(s, STORE_T0, &sum, err, sizeof err), 0);
	assert_int_equal(sum.devices, 64);
	nf_fleet_summary_free(&sum);
	nf_store_close(s);
}

int main(void)
{
#define X(name) cmocka_unit_test_setup_teardown(name, setup, teardown),
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_size),
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_fresh_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_urls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_full_drops, setup, teardown),
		STORE_CHECKS(X)
	};
#undef X
	if (getenv("NOFUSS_TEST_FILTER") != NULL) /* e.g. "test_queue*" */
		cmocka_set_test_filter(getenv("NOFUSS_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
