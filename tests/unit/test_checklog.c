/*
 * test_checklog.c - unit tests for checklog.c, the one-line-per-check log.
 *
 * The two line formats must be exactly those of docs/PEERS.md section 4
 * (path form "from:... device:... version:... update:..." and header form
 * "IP: ... MAC: ... UPDATE: ..."), stamped in server local time, with
 * "none" when nothing is offered, control bytes replaced by '?' so a value
 * cannot forge a line, and truncation that keeps the trailing '\n'. The
 * file side is run against real files in a mkdtemp() folder: lines are
 * buffered until a flush, appended to what is there, survive the buffer
 * filling up, and nf_checklog_reopen follows a logrotate rename. "" means
 * no log at all.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nofussd.h"
#include "testutil.h"

#define T_2016 ((time_t)1469837849) /* 2016-07-30 00:17:29 UTC */
#define T_2019 ((time_t)1559642400) /* 2019-06-04 10:00:00 UTC */

/* Helpers ----------------------------------------------------------------- */

static void use_tz(const char *tz)
{
	assert_int_equal(setenv("TZ", tz, 1), 0);
	tzset();
}

static int setup_utc(void **state)
{
	(void)state;
	use_tz("UTC");
	return 0;
}

static struct nf_query query(const char *device, const char *version, const char *mac,
                             const char *build)
{
	struct nf_query q = {device, device ? strlen(device) : 0, version,
	                     version ? strlen(version) : 0, mac, build};
	return q;
}

static void assert_file(const char *path, const char *expected)
{
	char *text = nf_test_read_file(path);

	assert_string_equal(text, expected);
	free(text);
}

/* Runs with stderr sent to /dev/null, for calls that are meant to log an
 * error (nf_log cannot be set below NF_LOG_ERROR). */
static int quiet_stderr(void)
{
	int saved = dup(STDERR_FILENO);
	int null = open("/dev/null", O_WRONLY);

	assert_true(saved >= 0 && null >= 0);
	fflush(stderr);
	assert_int_equal(dup2(null, STDERR_FILENO), STDERR_FILENO);
	close(null);
	return saved;
}

static void restore_stderr(int saved)
{
	fflush(stderr);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
}

/* Formats ------------------------------------------------------------------ */

static void test_format_path(void **state)
{
	(void)state;
	char buf[NF_MAX_LOG_LINE];
	struct nf_query q = query("TEST", "0.1.0", NULL, NULL);
	const char *want = "[2016/07/30 00:17:29] from:192.168.1.5 device:TEST version:0.1.0 "
	                   "update:0.1.1\n";
	size_t n = nf_checklog_format_path(buf, sizeof buf, T_2016, "192.168.1.5", &q, "0.1.1");

	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));

	n = nf_checklog_format_path(buf, sizeof buf, T_2016, "192.168.1.5", &q, NULL);
	assert_string_equal(buf, "[2016/07/30 00:17:29] from:192.168.1.5 device:TEST "
	                         "version:0.1.0 update:none\n");
	assert_int_equal(n, strlen(buf));

	/* IPv6 clients, and the device as (pointer, length) from the router */
	q.device = "SONOFF/0.1.0";
	q.device_len = 6;
	n = nf_checklog_format_path(buf, sizeof buf, T_2019, "2001:db8::1", &q, NULL);
	assert_string_equal(buf, "[2019/06/04 10:00:00] from:2001:db8::1 device:SONOFF "
	                         "version:0.1.0 update:none\n");
	assert_int_equal(n, strlen(buf));
}

static void test_format_header(void **state)
{
	(void)state;
	char buf[NF_MAX_LOG_LINE];
	struct nf_query q = query("X", "1.0", "5C:CF:7F:8B:6B:26", "155");
	const char *want = "[2019/06/04 10:00:00] IP: 192.168.1.5 MAC: 5C:CF:7F:8B:6B:26 "
	                   "DEVICE: X VERSION: 1.0 BUILD: 155 UPDATE: none\n";
	size_t n = nf_checklog_format_header(buf, sizeof buf, T_2019, "192.168.1.5", &q, NULL);

	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));

	n = nf_checklog_format_header(buf, sizeof buf, T_2019, "192.168.1.5", &q, "1.1");
	assert_string_equal(buf, "[2019/06/04 10:00:00] IP: 192.168.1.5 MAC: 5C:CF:7F:8B:6B:26 "
	                         "DEVICE: X VERSION: 1.0 BUILD: 155 UPDATE: 1.1\n");
	assert_int_equal(n, strlen(buf));

	/* Empty and missing headers are logged as empty fields. */
	q = query("ESPURNA", "1.13.5", "5C:CF:7F:8B:6B:26", "");
	nf_checklog_format_header(buf, sizeof buf, T_2019, "10.0.0.1", &q, NULL);
	assert_string_equal(buf, "[2019/06/04 10:00:00] IP: 10.0.0.1 MAC: 5C:CF:7F:8B:6B:26 "
	                         "DEVICE: ESPURNA VERSION: 1.13.5 BUILD:  UPDATE: none\n");
	q = query(NULL, NULL, NULL, NULL);
	nf_checklog_format_header(buf, sizeof buf, T_2019, "10.0.0.1", &q, NULL);
	assert_string_equal(buf, "[2019/06/04 10:00:00] IP: 10.0.0.1 MAC:  DEVICE:  VERSION:  "
	                         "BUILD:  UPDATE: none\n");
}

/* The stamp is server local time, as the original server wrote it. */
static void test_local_time(void **state)
{
	(void)state;
	char buf[NF_MAX_LOG_LINE];
	struct nf_query q = query("TEST", "0.1.0", NULL, NULL);

	use_tz("XYZ-2"); /* POSIX TZ: two hours east of UTC, no tzdata needed */
	nf_checklog_format_path(buf, sizeof buf, T_2016, "1.2.3.4", &q, NULL);
	assert_string_equal(buf, "[2016/07/30 02:17:29] from:1.2.3.4 device:TEST version:0.1.0 "
	                         "update:none\n");
	use_tz("ABC+5");
	nf_checklog_format_path(buf, sizeof buf, T_2016, "1.2.3.4", &q, NULL);
	assert_string_equal(buf, "[2016/07/29 19:17:29] from:1.2.3.4 device:TEST version:0.1.0 "
	                         "update:none\n");
	use_tz("UTC");
}

/* No value may start a line of its own or hide part of one. */
static void test_control_characters(void **state)
{
	(void)state;
	char buf[NF_MAX_LOG_LINE];
	struct nf_query q = query("A\nB", "1\r2", "\x01MAC\x7f", "b\tc\x1b");

	nf_checklog_format_path(buf, sizeof buf, T_2016, "1.2.3.4\n", &q, "x\ny");
	assert_string_equal(buf, "[2016/07/30 00:17:29] from:1.2.3.4? device:A?B version:1?2 "
	                         "update:x?y\n");
	nf_checklog_format_header(buf, sizeof buf, T_2016, "1.2.3.4", &q, NULL);
	assert_string_equal(buf, "[2016/07/30 00:17:29] IP: 1.2.3.4 MAC: ?MAC? DEVICE: A?B "
	                         "VERSION: 1?2 BUILD: b?c? UPDATE: none\n");
	/* a forged line is flattened into the real one */
	q = query("X", "1.0\n[2016/07/30 00:00:00] from:6.6.6.6 device:X version:9", NULL, NULL);
	nf_checklog_format_path(buf, sizeof buf, T_2016, "1.2.3.4", &q, NULL);
	assert_string_equal(buf, "[2016/07/30 00:17:29] from:1.2.3.4 device:X version:1.0?"
	                         "[2016/07/30 00:00:00] from:6.6.6.6 device:X version:9 "
	                         "update:none\n");
	assert_int_equal(strchr(buf, '\n'), buf + strlen(buf) - 1);
	/* bytes >= 0x80 (UTF-8) pass through */
	q = query("caf\xc3\xa9", "1", NULL, NULL);
	nf_checklog_format_path(buf, sizeof buf, T_2016, "1.2.3.4", &q, NULL);
	assert_string_equal(buf, "[2016/07/30 00:17:29] from:1.2.3.4 device:caf\xc3\xa9 version:1 "
	                         "update:none\n");
}

static void test_truncation(void **state)
{
	(void)state;
	char full[NF_MAX_LOG_LINE], buf[NF_MAX_LOG_LINE];
	struct nf_query q = query("TEST", "0.1.0", "5C:CF:7F:8B:6B:26", "155");
	size_t len = nf_checklog_format_path(full, sizeof full, T_2016, "192.168.1.5", &q, "0.1.1");

	/* cap from 2 up to one past the full line: always cap-1 bytes ending
	 * in '\n', the rest a prefix of the full line */
	for (size_t cap = 2; cap <= len + 1; cap++) {
		size_t n;

		memset(buf, '#', sizeof buf);
		n = nf_checklog_format_path(buf, cap, T_2016, "192.168.1.5", &q, "0.1.1");
		assert_int_equal(n, cap - 1);
		assert_int_equal(strlen(buf), n);
		assert_int_equal(buf[n - 1], '\n');
		assert_memory_equal(buf, full, n - 1);
		assert_int_equal(buf[cap], '#'); /* nothing written past cap */
	}
	assert_string_equal(buf, full);

	len = nf_checklog_format_header(full, sizeof full, T_2019, "192.168.1.5", &q, NULL);
	for (size_t cap = 2; cap <= len + 1; cap++) {
		size_t n;

		memset(buf, '#', sizeof buf);
		n = nf_checklog_format_header(buf, cap, T_2019, "192.168.1.5", &q, NULL);
		assert_int_equal(n, cap - 1);
		assert_int_equal(buf[n - 1], '\n');
		assert_int_equal(buf[n], '\0');
		assert_memory_equal(buf, full, n - 1);
		assert_int_equal(buf[cap], '#');
	}

	/* fields as long as a check can carry fit in NF_MAX_LOG_LINE */
	char dev[NF_MAX_FIELD + 1], ver[NF_MAX_FIELD + 1], build[NF_MAX_FIELD + 1];
	memset(dev, 'D', NF_MAX_FIELD);
	memset(ver, 'V', NF_MAX_FIELD);
	memset(build, 'B', NF_MAX_FIELD);
	dev[NF_MAX_FIELD] = ver[NF_MAX_FIELD] = build[NF_MAX_FIELD] = '\0';
	q = query(dev, ver, "5C:CF:7F:8B:6B:26", build);
	len = nf_checklog_format_header(buf, sizeof buf, T_2019,
	                                "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", &q, ver);
	assert_non_null(strstr(buf, " UPDATE: VVVV"));
	assert_int_equal(buf[len - 1], '\n');
	assert_int_equal(strlen(buf), len);
	assert_true(len < NF_MAX_LOG_LINE - 1); /* not truncated */

	/* a field longer than the line: cut, '\n' kept */
	char *huge = malloc(4 * NF_MAX_LOG_LINE);
	assert_non_null(huge);
	memset(huge, 'H', 4 * NF_MAX_LOG_LINE - 1);
	huge[4 * NF_MAX_LOG_LINE - 1] = '\0';
	q = query("X", huge, NULL, NULL);
	len = nf_checklog_format_path(buf, sizeof buf, T_2019, "1.2.3.4", &q, NULL);
	assert_int_equal(len, sizeof buf - 1);
	assert_int_equal(buf[len - 1], '\n');
	assert_int_equal(buf[len - 2], 'H');
	free(huge);
}

/* Files ------------------------------------------------------------------ */

static void test_write_and_flush(void **state)
{
	const char *dir = *state;
	char path[256], err[256] = "";
	struct nf_checklog *log;
	struct nf_query pq = query("TEST", "0.1.0", NULL, NULL);
	struct nf_query hq = query("X", "1.0", "5C:CF:7F:8B:6B:26", "155");
	struct stat st;
	mode_t mask;

	snprintf(path, sizeof path, "%s/check.log", dir);
	log = nf_checklog_open(path, err, sizeof err);
	if (log == NULL)
		fail_msg("%s", err);
	assert_int_equal(stat(path, &st), 0);
	mask = umask(0);
	umask(mask);
	assert_int_equal(st.st_mode & 0777, 0640 & ~mask);

	nf_checklog_path(log, T_2016, "192.168.1.5", &pq, "0.1.1");
	nf_checklog_header(log, T_2019, "192.168.1.5", &hq, NULL);
	nf_checklog_path(log, T_2019, "192.168.1.6", &pq, NULL);
	assert_file(path, ""); /* buffered: a check costs no system call */
	nf_checklog_flush(log);
	assert_file(path,
	    "[2016/07/30 00:17:29] from:192.168.1.5 device:TEST version:0.1.0 update:0.1.1\n"
	    "[2019/06/04 10:00:00] IP: 192.168.1.5 MAC: 5C:CF:7F:8B:6B:26 DEVICE: X VERSION: 1.0 "
	    "BUILD: 155 UPDATE: none\n"
	    "[2019/06/04 10:00:00] from:192.168.1.6 device:TEST version:0.1.0 update:none\n");
	nf_checklog_flush(log); /* nothing new: nothing written twice */
	nf_checklog_path(log, T_2016 + 1, "1.1.1.1", &pq, NULL);
	nf_checklog_close(log); /* close flushes */
	assert_file(path,
	    "[2016/07/30 00:17:29] from:192.168.1.5 device:TEST version:0.1.0 update:0.1.1\n"
	    "[2019/06/04 10:00:00] IP: 192.168.1.5 MAC: 5C:CF:7F:8B:6B:26 DEVICE: X VERSION: 1.0 "
	    "BUILD: 155 UPDATE: none\n"
	    "[2019/06/04 10:00:00] from:192.168.1.6 device:TEST version:0.1.0 update:none\n"
	    "[2016/07/30 00:17:30] from:1.1.1.1 device:TEST version:0.1.0 update:none\n");

	/* Opening again appends. */
	log = nf_checklog_open(path, err, sizeof err);
	assert_non_null(log);
	nf_checklog_path(log, T_2019, "2.2.2.2", &pq, NULL);
	nf_checklog_close(log);
	char *text = nf_test_read_file(path);
	assert_non_null(strstr(text, "from:1.1.1.1"));
	assert_non_null(strstr(text, "update:none\n[2019/06/04 10:00:00] from:2.2.2.2 device:TEST "
	                             "version:0.1.0 update:none\n"));
	free(text);
}

/* More lines than the buffer holds: none lost, none reordered. */
static void test_buffer_fills(void **state)
{
	const char *dir = *state;
	char path[256], err[256] = "", ip[32], line[NF_MAX_LOG_LINE];
	struct nf_checklog *log;
	struct nf_query q = query("ESPURNA_SONOFF_BASIC", "1.13.5", "5C:CF:7F:8B:6B:26",
	                          "1559606400");
	enum { LINES = 5000 };
	char *text, *p;

	snprintf(path, sizeof path, "%s/check.log", dir);
	log = nf_checklog_open(path, err, sizeof err);
	assert_non_null(log);
	for (int i = 0; i < LINES; i++) {
		snprintf(ip, sizeof ip, "10.0.%d.%d", i / 256, i % 256);
		nf_checklog_header(log, T_2019 + i / 100, ip, &q, i % 2 ? "1.14.0" : NULL);
	}
	nf_checklog_close(log);

	text = nf_test_read_file(path);
	p = text;
	for (int i = 0; i < LINES; i++) {
		size_t n;

		snprintf(ip, sizeof ip, "10.0.%d.%d", i / 256, i % 256);
		n = nf_checklog_format_header(line, sizeof line, T_2019 + i / 100, ip, &q,
		                              i % 2 ? "1.14.0" : NULL);
		if (strncmp(p, line, n) != 0)
			fail_msg("line %d differs: expected %s", i + 1, line);
		p += n;
	}
	assert_string_equal(p, "");
	free(text);
}

/* logrotate renames the file, then SIGUSR1 makes the daemon reopen it. */
static void test_reopen_after_rename(void **state)
{
	const char *dir = *state;
	char path[256], rotated[256], err[256] = "";
	struct nf_checklog *log;
	struct nf_query q = query("TEST", "0.1.0", NULL, NULL);

	snprintf(path, sizeof path, "%s/check.log", dir);
	snprintf(rotated, sizeof rotated, "%s/check.log.1", dir);
	log = nf_checklog_open(path, err, sizeof err);
	assert_non_null(log);

	nf_checklog_path(log, T_2016, "1.1.1.1", &q, NULL);
	nf_checklog_flush(log);
	assert_int_equal(rename(path, rotated), 0);
	/* written after the rename, before the reopen: still the old file */
	nf_checklog_path(log, T_2016, "2.2.2.2", &q, NULL);
	assert_int_equal(nf_checklog_reopen(log), 0);
	nf_checklog_path(log, T_2016, "3.3.3.3", &q, NULL);
	nf_checklog_flush(log);

	assert_file(rotated,
	    "[2016/07/30 00:17:29] from:1.1.1.1 device:TEST version:0.1.0 update:none\n"
	    "[2016/07/30 00:17:29] from:2.2.2.2 device:TEST version:0.1.0 update:none\n");
	assert_file(path, "[2016/07/30 00:17:29] from:3.3.3.3 device:TEST version:0.1.0 "
	                  "update:none\n");

	/* reopening without a rename keeps appending to the same file */
	assert_int_equal(nf_checklog_reopen(log), 0);
	nf_checklog_path(log, T_2016, "4.4.4.4", &q, NULL);
	nf_checklog_close(log);
	assert_file(path,
	    "[2016/07/30 00:17:29] from:3.3.3.3 device:TEST version:0.1.0 update:none\n"
	    "[2016/07/30 00:17:29] from:4.4.4.4 device:TEST version:0.1.0 update:none\n");
}

/* When the path cannot be opened again, the old file stays in use. */
static void test_reopen_failure_keeps_old_file(void **state)
{
	const char *dir = *state;
	char sub[256], moved[256], path[300], moved_path[300], err[256] = "";
	struct nf_checklog *log;
	struct nf_query q = query("TEST", "0.1.0", NULL, NULL);
	int saved;

	snprintf(sub, sizeof sub, "%s/logs", dir);
	snprintf(moved, sizeof moved, "%s/logs.old", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(path, sizeof path, "%s/check.log", sub);
	snprintf(moved_path, sizeof moved_path, "%s/check.log", moved);
	log = nf_checklog_open(path, err, sizeof err);
	assert_non_null(log);
	nf_checklog_path(log, T_2016, "1.1.1.1", &q, NULL);
	assert_int_equal(rename(sub, moved), 0);

	saved = quiet_stderr(); /* the failure is logged as an error */
	assert_int_equal(nf_checklog_reopen(log), -1);
	restore_stderr(saved);
	nf_checklog_path(log, T_2016, "2.2.2.2", &q, NULL);
	nf_checklog_close(log);
	assert_file(moved_path,
	    "[2016/07/30 00:17:29] from:1.1.1.1 device:TEST version:0.1.0 update:none\n"
	    "[2016/07/30 00:17:29] from:2.2.2.2 device:TEST version:0.1.0 update:none\n");
	assert_int_equal(access(path, F_OK), -1);
}

static void test_open_missing_folder(void **state)
{
	const char *dir = *state;
	char path[256], err[512] = "", want[512];

	snprintf(path, sizeof path, "%s/no/such/folder/check.log", dir);
	assert_null(nf_checklog_open(path, err, sizeof err));
	snprintf(want, sizeof want, "check log %s: %s", path, strerror(ENOENT));
	assert_string_equal(err, want);

	/* a folder is not a log file */
	assert_null(nf_checklog_open(dir, err, sizeof err));
	assert_non_null(strstr(err, dir));
}

/* "" is no log: every call is a no-op; NULL is tolerated too. */
static void test_no_log(void **state)
{
	(void)state;
	char err[256] = "untouched";
	struct nf_checklog *log = nf_checklog_open("", err, sizeof err);
	struct nf_query q = query("TEST", "0.1.0", "5C:CF:7F:8B:6B:26", "1");

	assert_non_null(log);
	assert_string_equal(err, "untouched");
	for (int i = 0; i < 2000; i++) {
		nf_checklog_path(log, T_2016, "1.1.1.1", &q, NULL);
		nf_checklog_header(log, T_2016, "1.1.1.1", &q, "1.0");
	}
	nf_checklog_flush(log);
	assert_int_equal(nf_checklog_reopen(log), 0);
	nf_checklog_close(log);

	nf_checklog_path(NULL, T_2016, "1.1.1.1", &q, NULL);
	nf_checklog_header(NULL, T_2016, "1.1.1.1", &q, NULL);
	nf_checklog_flush(NULL);
	assert_int_equal(nf_checklog_reopen(NULL), 0);
	nf_checklog_close(NULL);
}

/* "-" is stdout, which closing the log must leave open. */
static void test_stdout_log(void **state)
{
	(void)state;
	char err[256] = "";
	struct nf_checklog *log = nf_checklog_open("-", err, sizeof err);

	assert_non_null(log);
	assert_int_equal(nf_checklog_reopen(log), 0);
	nf_checklog_close(log);
	assert_true(fcntl(STDOUT_FILENO, F_GETFD) >= 0);
}

int main(void)
{
/* Tests that touch files get a fresh mkdtemp() folder as their state,
 * removed after the test whether it passed or not. */
#define FILE_TEST(name) cmocka_unit_test_prestate_setup_teardown(name, nf_test_tmpdir_setup, \
                        nf_test_tmpdir_teardown, (void *)"checklog")
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_path),
		cmocka_unit_test(test_format_header),
		cmocka_unit_test(test_local_time),
		cmocka_unit_test(test_control_characters),
		cmocka_unit_test(test_truncation),
		FILE_TEST(test_write_and_flush),
		FILE_TEST(test_buffer_fills),
		FILE_TEST(test_reopen_after_rename),
		FILE_TEST(test_reopen_failure_keeps_old_file),
		FILE_TEST(test_open_missing_folder),
		cmocka_unit_test(test_no_log),
		cmocka_unit_test(test_stdout_log),
	};
#undef FILE_TEST

	return cmocka_run_group_tests(tests, setup_utc, NULL);
}
