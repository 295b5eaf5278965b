/*
 * test_checklog.c - unit tests for checklog.c, the one-line-per-check log.
 *
 * The two line formats must be exactly those of docs/PEERS.md section 4
 * (path form "from:... device:... version:... update:..." and header form
 * "IP: ... MAC: ... UPDATE: ..."), stamped in server local time, with
 * "none" when nothing is offered, values escaped as %XX so that a line is
 * one line of printable ASCII that splits into exactly its fields, values
 * cut at NF_MAX_FIELD, and truncation that keeps the trailing '\n'. The
 * file side is run against real files in a mkdtemp() folder: lines are
 * buffered until a flush, appended to what is there, survive the buffer
 * filling up, and nf_checklog_reopen follows a logrotate rename. "" means
 * no log at all. The writer thread never lets a stalled sink (a FIFO nobody
 * reads) block the caller: lines are dropped and counted, and every line
 * is either written whole or counted as dropped; a write cut by a full
 * disk (RLIMIT_FSIZE) is finished later, never glued to the next line.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
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

/* No value may start a line of its own, add a field, or hide part of one. */
static void test_escaping(void **state)
{
	(void)state;
	char buf[NF_MAX_LOG_LINE];
	struct nf_query q = query("A\nB", "1\r2", "\x01MAC\x7f", "b\tc\x1b");

	nf_checklog_format_path(buf, sizeof buf, T_2016, "1.2.3.4\n", &q, "x\ny");
	assert_string_equal(buf, "[2016/07/30 00:17:29] from:1.2.3.4%0A device:A%0AB version:1%0D2 "
	                         "update:x%0Ay\n");
	nf_checklog_format_header(buf, sizeof buf, T_2016, "1.2.3.4", &q, NULL);
	assert_string_equal(buf, "[2016/07/30 00:17:29] IP: 1.2.3.4 MAC: %01MAC%7F DEVICE: A%0AB "
	                         "VERSION: 1%0D2 BUILD: b%09c%1B UPDATE: none\n");
	/* a forged line is flattened into the real one */
	q = query("X", "1.0\n[2016/07/30 00:00:00] from:6.6.6.6 device:X version:9", NULL, NULL);
	nf_checklog_format_path(buf, sizeof buf, T_2016, "1.2.3.4", &q, NULL);
	assert_string_equal(buf, "[2016/07/30 00:17:29] from:1.2.3.4 device:X version:1.0%0A"
	                         "[2016/07/30%2000:00:00]%20from:6.6.6.6%20device:X%20version:9 "
	                         "update:none\n");
	assert_int_equal(strchr(buf, '\n'), buf + strlen(buf) - 1);
	/* spaces cannot add fields (a path-form check of "/SONOFF%20version:9.9.9...") */
	q = query("SONOFF version:9.9.9 update:6.6.6 from:6.6.6.6", "0.1.0", NULL, NULL);
	nf_checklog_format_path(buf, sizeof buf, T_2016, "1.2.3.4", &q, NULL);
	assert_string_equal(buf, "[2016/07/30 00:17:29] from:1.2.3.4 device:SONOFF%20version:9.9.9"
	                         "%20update:6.6.6%20from:6.6.6.6 version:0.1.0 update:none\n");
	/* '%' itself, UTF-8, NEL (C2 85) and U+2028 (E2 80 A8): nothing but
	 * printable ASCII reaches the log */
	q = query("caf\xc3\xa9%41", "1\xc2\x85" "2\xe2\x80\xa8" "3", NULL, NULL);
	nf_checklog_format_path(buf, sizeof buf, T_2016, "1.2.3.4", &q, NULL);
	assert_string_equal(buf, "[2016/07/30 00:17:29] from:1.2.3.4 device:caf%C3%A9%2541 "
	                         "version:1%C2%852%E2%80%A83 update:none\n");
}

/* A value from outside in an ordinary log line: one line, printable. */
static void test_log_value(void **state)
{
	char out[3 * NF_MAX_FIELD + 1], small[8], big[NF_MAX_FIELD + 40];

	(void)state;
	assert_int_equal(nf_log_value(out, sizeof out, "LAMP\n[fake] x%@1.2.3.4"), 28);
	assert_string_equal(out, "LAMP%0A[fake]%20x%25@1.2.3.4");
	assert_int_equal(nf_log_value(out, sizeof out, NULL), 0);
	assert_string_equal(out, "");
	/* Never past cap, never an escape cut in two. */
	assert_int_equal(nf_log_value(small, sizeof small, "ab\x01\x02"), 5);
	assert_string_equal(small, "ab%01");
	/* At most NF_MAX_FIELD bytes of it. */
	memset(big, 'k', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(nf_log_value(out, sizeof out, big), NF_MAX_FIELD);
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

	/* ... and so do the longest values escaped, byte by byte */
	memset(dev, '\n', NF_MAX_FIELD);
	q = query(dev, dev, dev, dev);
	len = nf_checklog_format_header(buf, sizeof buf, T_2019,
	                                "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", &q, dev);
	assert_int_equal(strchr(buf, '\n'), buf + len - 1);
	assert_true(len < NF_MAX_LOG_LINE - 1);
	assert_non_null(strstr(buf, " UPDATE: %0A%0A"));

	/* a value longer than any check carries: cut at NF_MAX_FIELD bytes,
	 * every field still there */
	char *huge = malloc(4 * NF_MAX_LOG_LINE);
	assert_non_null(huge);
	memset(huge, 'H', 4 * NF_MAX_LOG_LINE - 1);
	huge[4 * NF_MAX_LOG_LINE - 1] = '\0';
	q = query("X", "1", huge, huge);
	len = nf_checklog_format_header(buf, sizeof buf, T_2019, "1.2.3.4", &q, NULL);
	assert_int_equal(buf[len - 1], '\n');
	assert_non_null(strstr(buf, " BUILD: HHH"));
	assert_non_null(strstr(buf, "H UPDATE: none\n"));
	assert_int_equal(len, strlen("[2019/06/04 10:00:00] IP: 1.2.3.4 MAC:  DEVICE: X VERSION: 1 "
	                             "BUILD:  UPDATE: none\n") + 2 * NF_MAX_FIELD);
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
	assert_int_equal(nf_checklog_wait(log, 5000), 0);
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
	assert_int_equal(nf_checklog_wait(log, 5000), 0);
	assert_int_equal(rename(path, rotated), 0);
	/* written after the rename, before the reopen: still the old file */
	nf_checklog_path(log, T_2016, "2.2.2.2", &q, NULL);
	assert_int_equal(nf_checklog_reopen(log), 0);
	nf_checklog_path(log, T_2016, "3.3.3.3", &q, NULL);
	nf_checklog_flush(log);
	assert_int_equal(nf_checklog_wait(log, 5000), 0);

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

/* Sinks that stall or fill ------------------------------------------------ */

/* Reads whatever the FIFO holds now into text (grown as needed). */
static void read_available(int fd, char **text, size_t *len, size_t *cap)
{
	for (;;) {
		ssize_t n;
		if (*cap - *len < 65536) {
			*cap = *cap * 2 + 65536;
			*text = realloc(*text, *cap);
			assert_non_null(*text);
		}
		n = read(fd, *text + *len, *cap - *len - 1);
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
	(*text)[*len] = '\0';
}

/* Every line in text is one whole line of the expected shape; returns how
 * many there are. */
static size_t count_whole_lines(const char *text)
{
	size_t lines = 0;

	for (const char *p = text; *p != '\0'; lines++) {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl);
		if (strncmp(p, "[2019/06/04 10:00:00] IP: 10.", 29) != 0 ||
		    strncmp(nl - 13, " UPDATE: none", 13) != 0)
			fail_msg("torn or glued line: %.*s", (int)(nl - p), p);
		p = nl + 1;
	}
	return lines;
}

/* nofussd | (nobody reads): the caller never blocks, lines beyond what the
 * buffers hold are dropped and counted, and every line logged is either
 * read whole or counted as dropped. */
static void test_stalled_sink_never_blocks(void **state)
{
	const char *dir = *state;
	char path[256], err[256] = "", ip[32];
	struct nf_query q = query("ESPURNA_SONOFF_BASIC", "1.13.5", "5C:CF:7F:8B:6B:26", "1");
	struct nf_checklog *log;
	enum { LINES = 100000 };
	size_t len = 0, cap = 0, got;
	char *text = NULL;
	int reader, saved;

	snprintf(path, sizeof path, "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	reader = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(reader >= 0);
	log = nf_checklog_open(path, err, sizeof err);
	assert_non_null(log);

	saved = quiet_stderr();
	for (int i = 0; i < LINES; i++) { /* returns although nothing is read */
		snprintf(ip, sizeof ip, "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		nf_checklog_header(log, T_2019, ip, &q, NULL);
		if (i % 1000 == 0)
			nf_checklog_flush(log);
	}
	assert_true(nf_checklog_dropped(log) > 0);
	assert_true(nf_checklog_dropped(log) < LINES);

	/* the reader comes back: what was kept arrives, whole */
	for (int tries = 0; tries < 1000; tries++) {
		read_available(reader, &text, &len, &cap);
		if (nf_checklog_wait(log, 10) == 0)
			break;
	}
	assert_int_equal(nf_checklog_wait(log, 5000), 0);
	read_available(reader, &text, &len, &cap);
	restore_stderr(saved);
	got = count_whole_lines(text);
	assert_int_equal(got + nf_checklog_dropped(log), LINES);

	/* and new lines flow again */
	nf_checklog_header(log, T_2019, "10.9.9.9", &q, NULL);
	assert_int_equal(nf_checklog_wait(log, 5000), 0);
	len = 0;
	read_available(reader, &text, &len, &cap);
	assert_string_equal(text, "[2019/06/04 10:00:00] IP: 10.9.9.9 MAC: 5C:CF:7F:8B:6B:26 "
	                          "DEVICE: ESPURNA_SONOFF_BASIC VERSION: 1.13.5 BUILD: 1 UPDATE: none\n");
	nf_checklog_close(log);
	close(reader);
	free(text);
}

/* A disk that fills in the middle of a line (RLIMIT_FSIZE cuts the write
 * short, then refuses it), then frees space: the torn line is finished and
 * every line is whole; nothing accepted is lost. */
static void test_full_disk_finishes_torn_line(void **state)
{
	const char *dir = *state;
	char path[256], err[256] = "", ip[32];
	struct nf_query q = query("ESPURNA_SONOFF_BASIC", "1.13.5", "5C:CF:7F:8B:6B:26", "1");
	struct rlimit old, small;
	struct nf_checklog *log;
	enum { LINES = 300 };
	char *text;
	int saved;
	struct stat st;

	snprintf(path, sizeof path, "%s/check.log", dir);
	log = nf_checklog_open(path, err, sizeof err);
	assert_non_null(log);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	small = old;
	small.rlim_cur = 10007; /* not on a line boundary */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);

	saved = quiet_stderr();
	for (int i = 0; i < LINES; i++) {
		snprintf(ip, sizeof ip, "10.0.%d.%d", i >> 8, i & 255);
		nf_checklog_header(log, T_2019, ip, &q, NULL);
	}
	assert_int_equal(nf_checklog_wait(log, 500), -1); /* the disk is full */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 10007);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0); /* space again */
	assert_int_equal(nf_checklog_wait(log, 5000), 0);
	restore_stderr(saved);
	signal(SIGXFSZ, SIG_DFL);

	assert_int_equal(nf_checklog_dropped(log), 0);
	nf_checklog_close(log);
	text = nf_test_read_file(path);
	assert_int_equal(count_whole_lines(text), LINES);
	free(text);
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
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_log_value),
		FILE_TEST(test_write_and_flush),
		FILE_TEST(test_buffer_fills),
		FILE_TEST(test_reopen_after_rename),
		FILE_TEST(test_reopen_failure_keeps_old_file),
		FILE_TEST(test_open_missing_folder),
		cmocka_unit_test(test_no_log),
		cmocka_unit_test(test_stdout_log),
		FILE_TEST(test_stalled_sink_never_blocks),
		FILE_TEST(test_full_disk_finishes_torn_line),
	};
#undef FILE_TEST

	return cmocka_run_group_tests(tests, setup_utc, NULL);
}
