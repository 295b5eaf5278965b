/*
 * store_pg.c - the fleet store against a real PostgreSQL server, run by
 * test_store_pg.py, which starts a throw-away cluster on a free loopback
 * port and gives this program:
 *   NOFUSS_PG_BASE     postgresql://user@127.0.0.1:port (no database)
 *   NOFUSS_PG_CONTROL  "W,R": descriptors on which this program asks for
 *                      "stop" or "start" of the server and reads "ok"
 *   NOFUSS_PG_PROXY    postgresql://user@127.0.0.1:port of a proxy in front
 *                      of the server that, after "cut-commit", cuts the
 *                      next connection whose COMMIT the server answered
 *                      before that answer is passed on; after
 *                      "hold-commit", the next whose client sent a
 *                      COMMIT, before it reaches the server, leaving the
 *                      server's side open ("cut-done" is answered "ok"
 *                      once it did either)
 *
 * Each test gets a database of its own (CREATE DATABASE). Here run the
 * checks of store_checks.c (the same as on SQLite), then what only a
 * server shows: a newer schema refused, two store instances ("nodes")
 * writing the same devices at the same time with no device or check
 * counted twice, and the server stopped mid-run: posts never wait, a small
 * queue drops and counts, the writer resumes by itself and nothing it had
 * taken is lost; and a COMMIT whose answer never came back, whether it
 * committed or was still in progress, whose events are counted once. Every wait is bounded.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "common.h"
#include "store_checks.h"

#define CONTROL_TIMEOUT_MS 60000

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* Runs sql on database db of the cluster; fails the test on error. */
static void admin(const char *db, const char *sql)
{
	char url[1024];
	PGconn *c;
	PGresult *r;

	snprintf(url, sizeof url, "%s/%s", getenv("NOFUSS_PG_BASE"), db);
	c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("%s: %s", url, PQerrorMessage(c));
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

static int setup(void **state)
{
	static int serial;
	struct store_fixture *f = calloc(1, sizeof *f);
	char sql[128], name[64];

	if (f == NULL)
		return -1;
	snprintf(name, sizeof name, "nf_%ld_%d", (long)getpid(), ++serial);
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
	admin("postgres", sql);
	snprintf(f->url, sizeof f->url, "%s/%s", getenv("NOFUSS_PG_BASE"), name);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

static const char *url_of(void **state)
{
	return ((struct store_fixture *)*state)->url;
}

static void test_newer_schema_refused(void **state)
{
	char err[512] = "", db[64];

	nf_store_close(store_check_open(url_of(state), NULL));
	snprintf(db, sizeof db, "%s", strrchr(url_of(state), '/') + 1);
	admin(db, "INSERT INTO nf_schema VALUES (99, 0, 'from the future')");
	assert_null(nf_store_open(url_of(state), NULL, err, sizeof err));
	assert_non_null(strstr(err, "version 99"));
}

/* Two nodes -------------------------------------------------------------------- */

#define NODES_DEVICES 400
#define NODES_ROUNDS  6

static void node_mac(char mac[18], int i)
{
	snprintf(mac, 18, "02:00:00:03:%02X:%02X", i >> 8, i & 0xff);
}

static void expect_by_state(struct nf_store *s, int state, uint64_t n)
{
	struct nf_fleet_summary sum;
	char err[512];

	assert_int_equal(nf_store_summary(s, STORE_T0 + 10000, &sum, err, sizeof err), 0);
	assert_int_equal(sum.devices, NODES_DEVICES);
	assert_int_equal(sum.by_state[state], n);
	nf_fleet_summary_free(&sum);
}

/* Every device: checked 2 + NODES_ROUNDS times, offered, downloaded and
 * confirmed exactly once. */
static void expect_each_once(struct nf_store *s)
{
	struct nf_device_filter f = {.state = -1, .limit = NF_STORE_MAX_PAGE};
	struct nf_device_list list;
	char err[512];

	assert_int_equal(nf_store_devices(s, &f, &list, err, sizeof err), 0);
	assert_int_equal(list.total, NODES_DEVICES);
	for (size_t i = 0; i < list.count; i++) {
		struct nf_history *h;
		size_t n;

		assert_int_equal(list.devices[i].checks, 2 + NODES_ROUNDS);
		store_check_device(s, list.devices[i].key, STORE_T0 + 10000, &h, &n);
		assert_int_equal(n, 3);
		assert_int_equal(h[0].kind, NF_HISTORY_CONFIRMED);
		assert_int_equal(h[1].kind, NF_HISTORY_DOWNLOADED);
		assert_int_equal(h[2].kind, NF_HISTORY_OFFERED);
		free(h);
	}
	nf_device_list_free(&list);
}

/* Node A answers each device's check with an offer while node B serves its
 * download, both at once; then both take checks of the same devices in
 * turn, their writers updating the same rows at the same time. */
static void test_two_nodes(void **state)
{
	/* Small batches: many transactions of either node overlap. */
	struct nf_store_options o = {.batch_max = 50};
	struct nf_store *a = store_check_open(url_of(state), &o);
	struct nf_store *b = store_check_open(url_of(state), &o);
	struct nf_store *nodes[2] = {a, b};
	struct nf_store_stats sa, sb;
	char mac[18];

	/* The devices known from a first check (a download makes no device of
	 * its own: docs/STORE.md section 4). */
	for (int i = 0; i < NODES_DEVICES; i++) {
		node_mac(mac, i);
		struct nf_event e = store_check_event(mac, "10.4.0.1", "NODE", "1.0", STORE_T0 - 1);
		assert_int_equal(nf_store_post(nodes[i % 2], &e), 0);
	}
	store_check_sync(a);
	store_check_sync(b);
	for (int i = 0; i < NODES_DEVICES; i++) {
		node_mac(mac, i);
		struct nf_event e = store_check_event(mac, "10.4.0.1", "NODE", "1.0", STORE_T0);
		store_check_offer(&e, "2.0", "/fw/node-2.0.bin", NULL);
		assert_int_equal(nf_store_post(a, &e), 0);
		e = store_check_download(NF_EVENT_DOWNLOAD_DONE, mac, "10.4.0.1",
		                         "/fw/node-2.0.bin", 4096, 4096, STORE_T0 + 1);
		assert_int_equal(nf_store_post(b, &e), 0);
	}
	store_check_sync(a);
	store_check_sync(b);
	expect_by_state(a, NF_UPDATE_DOWNLOADED, NODES_DEVICES);

	for (int r = 0; r < NODES_ROUNDS; r++)
		for (int i = 0; i < NODES_DEVICES; i++) {
			node_mac(mac, i);
			struct nf_event e =
				store_check_event(mac, "10.4.0.1", "NODE", "2.0", STORE_T0 + 100 + r);
			assert_int_equal(nf_store_post(nodes[(i + r) % 2], &e), 0);
		}
	store_check_sync(a);
	store_check_sync(b);
	expect_by_state(b, NF_UPDATE_CONFIRMED, NODES_DEVICES);
	expect_each_once(a);

	nf_store_stats(a, &sa);
	nf_store_stats(b, &sb);
	assert_int_equal(sa.written + sb.written, NODES_DEVICES * (3 + NODES_ROUNDS));
	assert_int_equal(sa.dropped + sb.dropped, 0);
	print_message("two nodes: %d devices, %llu + %llu events in %llu + %llu transactions, "
	              "%llu + %llu retried\n",
	              NODES_DEVICES, (unsigned long long)sa.written, (unsigned long long)sb.written,
	              (unsigned long long)sa.batches, (unsigned long long)sb.batches,
	              (unsigned long long)sa.failures, (unsigned long long)sb.failures);
	nf_store_close(a);
	nf_store_close(b);
}

/* Path-form devices behind one IP, each of its own type and image, whose
 * downloads carry a MAC their checks never did: node A offers, node B
 * serves the downloads while node A takes more checks at that IP, both
 * writers locking rows of that IP at once. Every download goes to the
 * device its check made; no device is made for a MAC. */
#define PATH_DEVICES 200

static void path_device(char name[16], char fw[32], char mac[18], int i)
{
	snprintf(name, 16, "PF%03d", i);
	snprintf(fw, 32, "/fw/pf%03d-2.0.bin", i);
	snprintf(mac, 18, "02:00:00:05:%02X:%02X", i >> 8, i & 0xff);
}

static void test_two_nodes_path_form(void **state)
{
	struct nf_store_options o = {.batch_max = 50};
	struct nf_store *a = store_check_open(url_of(state), &o);
	struct nf_store *b = store_check_open(url_of(state), &o);
	struct nf_store_stats sa, sb;
	struct nf_fleet_summary sum;
	char name[16], fw[32], mac[18], err[512];

	for (int i = 0; i < PATH_DEVICES; i++) {
		path_device(name, fw, mac, i);
		struct nf_event e = store_check_event(NULL, "10.5.0.1", name, "1.0", STORE_T0);
		store_check_offer(&e, "2.0", fw, NULL);
		assert_int_equal(nf_store_post(a, &e), 0);
	}
	store_check_sync(a);
	for (int i = 0; i < PATH_DEVICES; i++) {
		path_device(name, fw, mac, i);
		struct nf_event e = store_check_download(NF_EVENT_DOWNLOAD_DONE, mac, "10.5.0.1", fw,
		                                         4096, 4096, STORE_T0 + 1);
		assert_int_equal(nf_store_post(b, &e), 0);
		/* Meanwhile, on the other node, another device at that IP
		 * checks in (its row locked while B looks up the IP's offers).
		 * Not the same device again: whether its check commits before
		 * or after the download would decide between "still
		 * downloading" and "reverted" (checked after a complete
		 * download, still on 1.0), a race the test must not have. */
		char other[16];
		snprintf(other, sizeof other, "PX%03d", i);
		e = store_check_event(NULL, "10.5.0.1", other, "1.0", STORE_T0 + 2);
		assert_int_equal(nf_store_post(a, &e), 0);
	}
	store_check_sync(a);
	store_check_sync(b);
	for (int i = 0; i < PATH_DEVICES; i++) {
		path_device(name, fw, mac, i);
		struct nf_event e = store_check_event(NULL, "10.5.0.1", name, "2.0", STORE_T0 + 100);
		assert_int_equal(nf_store_post(i % 2 ? a : b, &e), 0);
	}
	store_check_sync(a);
	store_check_sync(b);

	assert_int_equal(nf_store_summary(a, STORE_T0 + 1000, &sum, err, sizeof err), 0);
	assert_int_equal(sum.devices, 2 * PATH_DEVICES); /* PF (offered) and PX (not) */
	assert_int_equal(sum.by_state[NF_UPDATE_CONFIRMED], PATH_DEVICES);
	assert_int_equal(sum.by_state[NF_UPDATE_NONE], PATH_DEVICES);
	nf_fleet_summary_free(&sum);
	for (int i = 0; i < PATH_DEVICES; i++) {
		char key[64];
		struct nf_history *h;
		size_t n;

		path_device(name, fw, mac, i);
		snprintf(key, sizeof key, "%s@10.5.0.1", name);
		struct nf_device d = store_check_device(a, key, STORE_T0 + 1000, &h, &n);
		assert_int_equal(d.checks, 2);
		assert_int_equal(n, 3);
		assert_int_equal(h[0].kind, NF_HISTORY_CONFIRMED);
		assert_int_equal(h[1].kind, NF_HISTORY_DOWNLOADED);
		assert_int_equal(h[2].kind, NF_HISTORY_OFFERED);
		free(h);
	}
	nf_store_stats(a, &sa);
	nf_store_stats(b, &sb);
	assert_int_equal(sa.unmatched + sb.unmatched, 0);
	assert_int_equal(sa.dropped + sb.dropped, 0);
	print_message("two nodes, path form: %d devices at one IP, %llu + %llu retried\n",
	              PATH_DEVICES, (unsigned long long)sa.failures,
	              (unsigned long long)sb.failures);
	nf_store_close(a);
	nf_store_close(b);
}

/* Both nodes take the first check of the same new devices at the same
 * time, both offering the same update: each node's batch reads them
 * missing and inserts them, and the node that inserts second finds its
 * insert did nothing (ON CONFLICT DO NOTHING, no id returned) and writes
 * its batch again, now updating the first node's rows. One row per device,
 * both checks counted, one offer, and no batch failed. */
#define NEW_DEVICES 1000

static void test_two_nodes_new_devices(void **state)
{
	struct nf_store_options o = {.batch_max = 50};
	struct nf_store *a = store_check_open(url_of(state), &o);
	struct nf_store *b = store_check_open(url_of(state), &o);
	struct nf_device_filter f = {.state = -1, .limit = NF_STORE_MAX_PAGE};
	struct nf_device_list list;
	struct nf_store_stats sa, sb;
	char mac[18], err[512];
	size_t seen = 0;

	for (int i = 0; i < NEW_DEVICES; i++) {
		node_mac(mac, i);
		struct nf_event e = store_check_event(mac, "10.6.0.1", "NEW", "1.0", STORE_T0);
		store_check_offer(&e, "2.0", "/fw/new-2.0.bin", NULL);
		assert_int_equal(nf_store_post(a, &e), 0);
		assert_int_equal(nf_store_post(b, &e), 0);
	}
	store_check_sync(a);
	store_check_sync(b);
	for (f.offset = 0; seen < NEW_DEVICES; f.offset += list.count) {
		assert_int_equal(nf_store_devices(a, &f, &list, err, sizeof err), 0);
		assert_int_equal(list.total, NEW_DEVICES);
		assert_true(list.count > 0);
		for (size_t i = 0; i < list.count; i++) {
			struct nf_history *h;
			size_t n;

			assert_int_equal(list.devices[i].checks, 2);
			assert_int_equal(list.devices[i].state, NF_UPDATE_OFFERED);
			store_check_device(a, list.devices[i].key, STORE_T0 + 1000, &h, &n);
			assert_int_equal(n, 1);
			assert_int_equal(h[0].kind, NF_HISTORY_OFFERED);
			free(h);
		}
		seen += list.count;
		nf_device_list_free(&list);
	}
	nf_store_stats(a, &sa);
	nf_store_stats(b, &sb);
	assert_int_equal(sa.written + sb.written, 2 * NEW_DEVICES);
	assert_int_equal(sa.failures + sb.failures, 0);
	print_message("two nodes, new devices: %d devices in %llu + %llu transactions\n",
	              NEW_DEVICES, (unsigned long long)sa.batches, (unsigned long long)sb.batches);
	nf_store_close(a);
	nf_store_close(b);
}

/* The server goes away ----------------------------------------------------------- */

/* Asks test_store_pg.py to "stop" or "start" the server; waits for "ok". */
static void control(const char *what)
{
	int wfd, rfd;
	char line[64] = "";
	size_t n = 0;
	struct pollfd p;

	assert_int_equal(sscanf(getenv("NOFUSS_PG_CONTROL"), "%d,%d", &wfd, &rfd), 2);
	assert_int_equal(dprintf(wfd, "%s\n", what), (int)strlen(what) + 1);
	p = (struct pollfd){rfd, POLLIN, 0};
	while (n < sizeof line - 1 && strchr(line, '\n') == NULL) {
		assert_int_equal(poll(&p, 1, CONTROL_TIMEOUT_MS), 1);
		ssize_t got = read(rfd, line + n, 1);
		assert_int_equal(got, 1);
		n++;
	}
	assert_string_equal(line, "ok\n");
}

struct poster {
	struct nf_store *s;
	unsigned next;       /* device number */
	unsigned accepted;
	uint64_t slowest_us;
};

static void post_one(struct poster *p, unsigned prefix)
{
	char mac[18];
	struct timespec t0, t1;

	snprintf(mac, sizeof mac, "02:00:%02X:%02X:%02X:%02X", prefix, (p->next >> 16) & 0xff,
	         (p->next >> 8) & 0xff, p->next & 0xff);
	struct nf_event e = store_check_event(mac, "10.5.0.1", "OUTAGE", "1.0", STORE_T0 + p->next);
	p->next++;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	p->accepted += nf_store_post(p->s, &e) == 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	uint64_t us = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000 +
	              (uint64_t)(t1.tv_nsec - t0.tv_nsec) / 1000;
	p->slowest_us = us > p->slowest_us ? us : p->slowest_us;
}

/* Posts to x about rate_per_s events for ms milliseconds. */
static void post_for(struct poster *x, unsigned prefix, unsigned ms, unsigned rate_per_s)
{
	uint64_t until = nf_clock_ms() + ms;

	while (nf_clock_ms() < until) {
		for (unsigned i = 0; i < rate_per_s / 100; i++)
			post_one(x, prefix);
		sleep_ms(10);
	}
}

static void test_outage(void **state)
{
	struct nf_store_options o = {.retry_max_ms = 500};
	struct nf_store_options small = {.retry_max_ms = 500, .queue_capacity = 500};
	struct nf_store_stats sx, sy;
	struct nf_fleet_summary sum;
	char err[512];

	if (getenv("NOFUSS_PG_CONTROL") == NULL)
		skip(); /* run by hand, without test_store_pg.py to stop the server */
	struct poster x = {store_check_open(url_of(state), &o), 0, 0, 0};
	struct poster y = {store_check_open(url_of(state), &small), 0, 0, 0};
	post_for(&x, 4, 1000, 2000);
	store_check_sync(x.s);

	control("stop");
	post_for(&x, 4, 3000, 2000); /* 6,000: fits the default queue */
	for (int i = 0; i < 800; i++)
		post_one(&y, 5);
	nf_store_stats(x.s, &sx);
	nf_store_stats(y.s, &sy);
	assert_true(sx.failing);
	assert_true(sx.depth > 0);
	assert_int_equal(y.accepted, 500);
	assert_int_equal(sy.dropped, 300);
	/* The queries fail, with a message, and do not hang. */
	assert_int_equal(nf_store_summary(x.s, STORE_T0, &sum, err, sizeof err), -1);
	print_message("outage: summary while stopped: %s\n", err);

	control("start");
	post_for(&x, 4, 1000, 2000);
	assert_int_equal(nf_store_sync(x.s, 60000), 0);
	assert_int_equal(nf_store_sync(y.s, 60000), 0);
	nf_store_stats(x.s, &sx);
	nf_store_stats(y.s, &sy);
	print_message("outage: %u posted to a default queue (slowest post %llu us, %llu failed "
	              "transactions), 800 to a queue of 500 (slowest %llu us)\n",
	              x.accepted, (unsigned long long)x.slowest_us,
	              (unsigned long long)sx.failures, (unsigned long long)y.slowest_us);
	assert_true(sx.failures >= 1);
	assert_false(sx.failing);
	assert_int_equal(sx.dropped, 0);
	assert_int_equal(x.accepted, x.next);
	assert_int_equal(sx.written, x.accepted);
	assert_int_equal(sy.written, 500);
	/* A post copies: 100 ms leaves room for a loaded machine. */
	assert_true(x.slowest_us < 100000 && y.slowest_us < 100000);
	assert_int_equal(nf_store_summary(x.s, STORE_T0, &sum, err, sizeof err), 0);
	assert_int_equal(sum.devices, x.accepted + 500);
	nf_fleet_summary_free(&sum);
	nf_store_close(x.s);
	nf_store_close(y.s);
}

/* The COMMIT whose answer is lost ------------------------------------------------ */

#define CUT_DEVICES 100

/* Devices offered and downloaded; then their confirming checks and one
 * download of no device are posted, and the proxy, armed with how
 * ("cut-commit" or "hold-commit"), cuts the writer's connection in its
 * COMMIT. The writer must ask what became of that transaction
 * (docs/STORE.md section 6) rather than write it again blindly: each check
 * counted once, each confirmation and the unmatched download counted once
 * in the stats. Returns the failed transactions. */
static uint64_t commit_cut(void **state, const char *how)
{
	struct nf_store_options o = {.retry_max_ms = 200};
	struct nf_device_filter f = {.state = -1, .limit = NF_STORE_MAX_PAGE};
	struct nf_device_list list;
	struct nf_store_stats st;
	char url[1024], mac[18], err[512];
	const char *proxy = getenv("NOFUSS_PG_PROXY");

	snprintf(url, sizeof url, "%s%s", proxy, strrchr(url_of(state), '/'));
	struct nf_store *s = store_check_open(url, &o);
	for (int i = 0; i < CUT_DEVICES; i++) {
		node_mac(mac, i);
		struct nf_event e = store_check_event(mac, "10.6.0.1", "CUT", "1.0", STORE_T0);
		store_check_offer(&e, "2.0", "/fw/cut-2.0.bin", NULL);
		assert_int_equal(nf_store_post(s, &e), 0);
		e = store_check_download(NF_EVENT_DOWNLOAD_DONE, mac, "10.6.0.1", "/fw/cut-2.0.bin",
		                         4096, 4096, STORE_T0 + 1);
		assert_int_equal(nf_store_post(s, &e), 0);
	}
	store_check_sync(s);

	control(how);
	for (int i = 0; i < CUT_DEVICES; i++) {
		node_mac(mac, i);
		struct nf_event e = store_check_event(mac, "10.6.0.1", "CUT", "2.0", STORE_T0 + 100);
		assert_int_equal(nf_store_post(s, &e), 0);
	}
	struct nf_event e = store_check_download(NF_EVENT_DOWNLOAD_DONE, "02:00:00:06:FF:FF",
	                                         "10.6.0.2", "/fw/cut-2.0.bin", 4096, 4096,
	                                         STORE_T0 + 100);
	assert_int_equal(nf_store_post(s, &e), 0);
	store_check_sync(s);
	control("cut-done"); /* "ok": the cut happened, the test is not vacuous */

	nf_store_stats(s, &st);
	print_message("%s: %llu events in %llu transactions, %llu failed\n", how,
	              (unsigned long long)st.written, (unsigned long long)st.batches,
	              (unsigned long long)st.failures);
	assert_true(st.failures >= 1);
	assert_false(st.failing);
	assert_int_equal(st.written, 3 * CUT_DEVICES + 1);
	assert_int_equal(st.confirmed, CUT_DEVICES);
	assert_int_equal(st.unmatched, 1);
	assert_int_equal(nf_store_devices(s, &f, &list, err, sizeof err), 0);
	assert_int_equal(list.total, CUT_DEVICES);
	for (size_t i = 0; i < list.count; i++) {
		struct nf_history *h;
		size_t n;

		assert_int_equal(list.devices[i].checks, 2);
		store_check_device(s, list.devices[i].key, STORE_T0 + 1000, &h, &n);
		assert_int_equal(n, 3);
		assert_int_equal(h[0].kind, NF_HISTORY_CONFIRMED);
		free(h);
	}
	nf_device_list_free(&list);
	nf_store_close(s);
	return st.failures;
}

/* The server committed, its answer was lost: the batch is not written
 * again. */
static void test_commit_cut(void **state)
{
	if (getenv("NOFUSS_PG_PROXY") == NULL || getenv("NOFUSS_PG_CONTROL") == NULL)
		skip(); /* run by hand, without test_store_pg.py's proxy */
	commit_cut(state, "cut-commit");
}

/* The COMMIT never reached the server, whose side of the connection stays
 * open: the transaction stays in progress until the writer ends its
 * backend; then it is aborted and the batch written again. Without that,
 * the sync would time out: the proxy never closes the server's side. */
static void test_commit_held(void **state)
{
	if (getenv("NOFUSS_PG_PROXY") == NULL || getenv("NOFUSS_PG_CONTROL") == NULL)
		skip();
	/* The write, and at least one answer "in progress". */
	assert_true(commit_cut(state, "hold-commit") >= 2);
}

int main(void)
{
#define X(name) cmocka_unit_test_setup_teardown(name, setup, teardown),
	const struct CMUnitTest tests[] = {
		STORE_CHECKS(X)
		X(test_newer_schema_refused)
		X(test_two_nodes)
		X(test_two_nodes_path_form)
		X(test_two_nodes_new_devices)
		X(test_outage)
		X(test_commit_cut)
		X(test_commit_held)
	};
#undef X
	if (getenv("NOFUSS_PG_BASE") == NULL) {
		fprintf(stderr, "store_pg_test: NOFUSS_PG_BASE is not set; run test_store_pg.py\n");
		return 2;
	}
	if (getenv("NOFUSS_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("NOFUSS_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
