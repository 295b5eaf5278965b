/*
 * test_config.c - unit tests for config.c: nofussd's settings.
 *
 * Covers the defaults; nf_config_set for every key, with its range and
 * length errors and their exact messages; the yes/no forms of "watch";
 * nf_config_load on real INI files in a mkdtemp() folder (with and without
 * a [nofussd] section, errors reported as "file:line: message", another
 * section refused, a missing file); and nf_config_finish, which derives the
 * rules and public paths from data-dir and normalises base.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nofussd.h"
#include "testutil.h"

/* Helpers ----------------------------------------------------------------- */

/* Every INI file of this program goes in one mkdtemp() folder, made before
 * the first test and removed after the last, failed or not. */
static char *tmpdir;

static int make_tmpdir(void **state)
{
	(void)state;
	tmpdir = nf_test_mkdtemp("config");
	return tmpdir == NULL ? -1 : 0;
}

static int remove_tmpdir(void **state)
{
	int rc = nf_test_rmtree(tmpdir);

	(void)state;
	free(tmpdir);
	tmpdir = NULL;
	return rc;
}

static void set_ok(struct nf_config *cfg, const char *key, const char *value)
{
	char err[512] = "";

	if (nf_config_set(cfg, key, value, err, sizeof err) != 0)
		fail_msg("%s = %s: %s", key, value, err);
}

static void set_fails(const char *key, const char *value, const char *message)
{
	struct nf_config cfg, before;
	char err[512] = "";

	nf_config_defaults(&cfg);
	memcpy(&before, &cfg, sizeof cfg);
	if (nf_config_set(&cfg, key, value, err, sizeof err) != -1)
		fail_msg("%s = \"%s\" accepted, expected: %s", key, value, message);
	assert_string_equal(err, message);
	assert_memory_equal(&cfg, &before, sizeof cfg); /* nothing changed */
}

/* Writes text to an INI file in tmpdir (its path in path) and loads it
 * into freshly defaulted cfg. Returns nf_config_load's result, with the
 * message in err. */
static int load_text(struct nf_config *cfg, const char *text, char *err, size_t errlen,
                     char *path, size_t pathlen)
{
	snprintf(path, pathlen, "%s/nofussd.conf", tmpdir);
	nf_test_write_file(path, text);
	nf_config_defaults(cfg);
	return nf_config_load(cfg, path, err, errlen);
}

/* Asserts that text fails to load with "<path>:<line>: <message>". */
static void load_fails(const char *text, int line, const char *message)
{
	char path[256], err[512] = "", want[1024];
	struct nf_config cfg;

	if (load_text(&cfg, text, err, sizeof err, path, sizeof path) != -1)
		fail_msg("accepted, expected line %d: %s\n%s", line, message, text);
	snprintf(want, sizeof want, "%s:%d: %s", path, line, message);
	assert_string_equal(err, want);
}

/* Defaults and keys -------------------------------------------------------- */

static void test_defaults(void **state)
{
	(void)state;
	struct nf_config cfg;

	memset(&cfg, 0x5a, sizeof cfg);
	nf_config_defaults(&cfg);
	assert_string_equal(cfg.listen, "");
	assert_int_equal(cfg.port, 8080);
	assert_string_equal(cfg.base, "");
	assert_string_equal(cfg.data_dir, "/var/lib/nofuss");
	assert_string_equal(cfg.rules_path, "");
	assert_string_equal(cfg.public_dir, "");
	assert_string_equal(cfg.check_log, "-");
	assert_int_equal(cfg.max_connections, 16384);
	assert_int_equal(cfg.per_ip_limit, 0);
	assert_int_equal(cfg.memory_limit, 2048);
	assert_int_equal(cfg.idle_timeout, 30);
	assert_int_equal(cfg.grace_seconds, 10);
	assert_int_equal(cfg.sndbuf, 65536);
	assert_true(cfg.watch);
	assert_string_equal(cfg.store, "");
	assert_false(cfg.store_set);
	assert_int_equal(cfg.store_queue, 16384);
	assert_int_equal(cfg.store_history, 32);
	assert_int_equal(cfg.store_silent, 86400);
	assert_int_equal(cfg.max_downloads, 0); /* no limit */
	assert_int_equal(cfg.retry_after, 30);
	assert_string_equal(cfg.admin_listen, "127.0.0.1");
	assert_int_equal(cfg.admin_port, 8081);
	assert_string_equal(cfg.admin_token_file, "");
	assert_true(cfg.admin_metrics_auth);
}

/* The admin listener's keys (docs/ADMIN.md section 1). */
static void test_admin_keys(void **state)
{
	(void)state;
	struct nf_config cfg;
	char err[512] = "";

	nf_config_defaults(&cfg);
	set_ok(&cfg, "store", "sqlite:///var/lib/nofuss/store/fleet.db");
	set_ok(&cfg, "admin-token-file", "/etc/nofuss/admin-tokens");
	set_ok(&cfg, "admin-port", "0");
	set_ok(&cfg, "admin-metrics-auth", "no");
	assert_false(cfg.admin_metrics_auth);
	set_fails("admin-port", "65536", "admin-port: \"65536\" is not a number from 0 to 65535");
	set_fails("admin-metrics-auth", "maybe", "admin-metrics-auth: \"maybe\" is not yes or no");
	set_ok(&cfg, "admin-listen", "::1");
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), 0);
	static const struct { const char *value, *msg; } bad[] = {
	    {"localhost", "admin-listen: \"localhost\" is not an IPv4 or IPv6 address"},
	    {"*", "admin-listen: name one address (127.0.0.1, ::1, 0.0.0.0, ::)"},
	    {"", "admin-listen: name one address (127.0.0.1, ::1, 0.0.0.0, ::)"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		nf_config_defaults(&cfg);
		set_ok(&cfg, "admin-listen", bad[i].value);
		assert_int_equal(nf_config_finish(&cfg, err, sizeof err), -1);
		assert_string_equal(err, bad[i].msg);
	}
}

/* admin-tls-cert and admin-tls-key: both or neither, only with the admin
 * listener; tls-priorities with either listener's TLS (docs/ADMIN.md
 * section 1). The files themselves are read by main.c (tls.c). */
static void test_admin_tls_keys(void **state)
{
	(void)state;
	struct nf_config cfg;
	char err[512] = "";
	static const struct { const char *cert, *key, *tokens, *priorities, *msg; } cases[] = {
	    {"/c.pem", "/k.pem", "/t", "", NULL},
	    {"/c.pem", "/k.pem", "/t", "NORMAL", NULL}, /* priorities for the admin listener alone */
	    {"", "", "", "", NULL},
	    {"/c.pem", "", "/t", "", "admin-tls-cert and admin-tls-key: give both (TLS on the admin "
	                             "listener) or neither (plain HTTP)"},
	    {"", "/k.pem", "/t", "", "admin-tls-cert and admin-tls-key: give both (TLS on the admin "
	                             "listener) or neither (plain HTTP)"},
	    {"/c.pem", "/k.pem", "", "", "admin-tls-cert: only with admin-token-file (the admin "
	                                 "listener)"},
	    {"", "", "/t", "NORMAL", "tls-priorities: only with tls-cert or admin-tls-cert"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		nf_config_defaults(&cfg);
		set_ok(&cfg, "admin-tls-cert", cases[i].cert);
		set_ok(&cfg, "admin-tls-key", cases[i].key);
		set_ok(&cfg, "admin-token-file", cases[i].tokens);
		set_ok(&cfg, "tls-priorities", cases[i].priorities);
		assert_string_equal(cfg.admin_tls_cert, cases[i].cert);
		assert_string_equal(cfg.admin_tls_key, cases[i].key);
		if (cases[i].msg == NULL) {
			if (nf_config_finish(&cfg, err, sizeof err) != 0)
				fail_msg("case %zu: %s", i, err);
			continue;
		}
		assert_int_equal(nf_config_finish(&cfg, err, sizeof err), -1);
		assert_string_equal(err, cases[i].msg);
	}
}

static void test_set_every_key(void **state)
{
	(void)state;
	struct nf_config cfg;

	nf_config_defaults(&cfg);
	set_ok(&cfg, "listen", "127.0.0.1");
	set_ok(&cfg, "port", "8266");
	set_ok(&cfg, "base", "/nofuss");
	set_ok(&cfg, "data-dir", "/srv/nofuss");
	set_ok(&cfg, "rules", "/etc/nofuss/versions.json");
	set_ok(&cfg, "public", "/srv/images");
	set_ok(&cfg, "check-log", "/var/log/nofuss/check.log");
	set_ok(&cfg, "max-connections", "100");
	set_ok(&cfg, "per-ip-limit", "4");
	set_ok(&cfg, "memory-limit", "8192");
	set_ok(&cfg, "idle-timeout", "60");
	set_ok(&cfg, "grace", "5");
	set_ok(&cfg, "sndbuf", "65536");
	set_ok(&cfg, "watch", "no");
	set_ok(&cfg, "store", "postgresql://db/fleet");
	set_ok(&cfg, "store-queue", "2048");
	set_ok(&cfg, "store-history", "8");
	set_ok(&cfg, "store-silent", "3600");
	set_ok(&cfg, "max-downloads", "20");
	set_ok(&cfg, "retry-after", "90");

	assert_string_equal(cfg.listen, "127.0.0.1");
	assert_int_equal(cfg.port, 8266);
	assert_string_equal(cfg.base, "/nofuss");
	assert_string_equal(cfg.data_dir, "/srv/nofuss");
	assert_string_equal(cfg.rules_path, "/etc/nofuss/versions.json");
	assert_string_equal(cfg.public_dir, "/srv/images");
	assert_string_equal(cfg.check_log, "/var/log/nofuss/check.log");
	assert_int_equal(cfg.max_connections, 100);
	assert_int_equal(cfg.per_ip_limit, 4);
	assert_int_equal(cfg.memory_limit, 8192);
	assert_int_equal(cfg.idle_timeout, 60);
	assert_int_equal(cfg.grace_seconds, 5);
	assert_int_equal(cfg.sndbuf, 65536);
	assert_false(cfg.watch);
	assert_string_equal(cfg.store, "postgresql://db/fleet");
	assert_true(cfg.store_set);
	assert_int_equal(cfg.store_queue, 2048);
	assert_int_equal(cfg.store_history, 8);
	assert_int_equal(cfg.store_silent, 3600);
	assert_int_equal(cfg.max_downloads, 20);
	assert_int_equal(cfg.retry_after, 90);

	/* strings may be set to empty, later values win */
	set_ok(&cfg, "check-log", "");
	assert_string_equal(cfg.check_log, "");
	set_ok(&cfg, "port", "1");
	set_ok(&cfg, "port", "2");
	assert_int_equal(cfg.port, 2);
}

struct range_case {
	const char *key;
	const char *low, *high;        /* the bounds: accepted */
	const char *below, *above;     /* one past them: refused (NULL: none) */
	unsigned lo, hi;
};

static const struct range_case ranges[] = {
	{"port", "0", "65535", NULL, "65536", 0, 65535},
	{"max-connections", "1", "1000000", "0", "1000001", 1, 1000000},
	{"per-ip-limit", "0", "1000000", NULL, "1000001", 0, 1000000},
	{"memory-limit", "1024", "1048576", "1023", "1048577", 1024, 1048576},
	{"idle-timeout", "1", "86400", "0", "86401", 1, 86400},
	{"grace", "0", "3600", NULL, "3601", 0, 3600},
	{"sndbuf", "0", "67108864", NULL, "67108865", 0, 67108864},
	{"store-queue", "1024", "1048576", "1023", "1048577", 1024, 1048576},
	{"store-history", "1", "1000", "0", "1001", 1, 1000},
	{"store-silent", "60", "31622400", "59", "31622401", 60, 31622400},
	{"max-downloads", "0", "1000000", NULL, "1000001", 0, NF_MAX_DOWNLOADS},
	{"retry-after", "1", "3600", "0", "3601", NF_MIN_RETRY_AFTER, NF_MAX_RETRY_AFTER},
};

static void test_number_ranges(void **state)
{
	(void)state;
	char msg[256];

	for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
		const struct range_case *r = &ranges[i];
		static const char *const garbage[] = {
			"", "-1", "+1", " 1", "1 ", "1x", "0x10", "1.5", "abc",
			"99999999999999999999999", "18446744073709551616", "4294967296",
		};
		struct nf_config cfg;

		nf_config_defaults(&cfg);
		set_ok(&cfg, r->key, r->low);
		set_ok(&cfg, r->key, r->high);
		if (r->below != NULL) {
			snprintf(msg, sizeof msg, "%s: \"%s\" is not a number from %u to %u", r->key,
			         r->below, r->lo, r->hi);
			set_fails(r->key, r->below, msg);
		}
		snprintf(msg, sizeof msg, "%s: \"%s\" is not a number from %u to %u", r->key, r->above,
		         r->lo, r->hi);
		set_fails(r->key, r->above, msg);
		for (size_t g = 0; g < sizeof garbage / sizeof garbage[0]; g++) {
			snprintf(msg, sizeof msg, "%s: \"%s\" is not a number from %u to %u", r->key,
			         garbage[g], r->lo, r->hi);
			set_fails(r->key, garbage[g], msg);
		}
	}
	/* leading zeros are still decimal */
	struct nf_config cfg;
	nf_config_defaults(&cfg);
	set_ok(&cfg, "port", "08080");
	assert_int_equal(cfg.port, 8080);
}

static void test_string_lengths(void **state)
{
	(void)state;
	static const struct {
		const char *key;
		size_t cap;
	} strings[] = {
		{"listen", sizeof ((struct nf_config *)0)->listen},
		{"base", sizeof ((struct nf_config *)0)->base},
		{"data-dir", sizeof ((struct nf_config *)0)->data_dir},
		{"rules", sizeof ((struct nf_config *)0)->rules_path},
		{"public", sizeof ((struct nf_config *)0)->public_dir},
		{"check-log", sizeof ((struct nf_config *)0)->check_log},
		{"admin-tls-cert", sizeof ((struct nf_config *)0)->admin_tls_cert},
		{"admin-tls-key", sizeof ((struct nf_config *)0)->admin_tls_key},
	};
	char value[2048], msg[256];

	for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
		struct nf_config cfg;

		nf_config_defaults(&cfg);
		memset(value, 'x', strings[i].cap - 1);
		value[strings[i].cap - 1] = '\0';
		set_ok(&cfg, strings[i].key, value);
		value[strings[i].cap - 1] = 'x';
		value[strings[i].cap] = '\0';
		snprintf(msg, sizeof msg, "%s: longer than %zu bytes", strings[i].key,
		         strings[i].cap - 1);
		set_fails(strings[i].key, value, msg);
	}
}

static void test_unknown_keys(void **state)
{
	(void)state;
	set_fails("portt", "1", "unknown setting \"portt\"");
	set_fails("Port", "1", "unknown setting \"Port\"");
	set_fails("data_dir", "/x", "unknown setting \"data_dir\"");
	set_fails("", "1", "unknown setting \"\"");
	set_fails("check_log", "-", "unknown setting \"check_log\"");
}

static void test_watch_bool(void **state)
{
	(void)state;
	static const char *const yes[] = {"1", "yes", "true", "on", "YES", "True", "On"};
	static const char *const no[] = {"0", "no", "false", "off", "NO", "False", "OFF"};
	static const char *const bad[] = {"", "2", "y", "n", "maybe", "yes ", " no", "enabled"};
	struct nf_config cfg;
	char msg[256];

	nf_config_defaults(&cfg);
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		cfg.watch = false;
		set_ok(&cfg, "watch", yes[i]);
		assert_true(cfg.watch);
	}
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		cfg.watch = true;
		set_ok(&cfg, "watch", no[i]);
		assert_false(cfg.watch);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(msg, sizeof msg, "watch: \"%s\" is not yes or no", bad[i]);
		set_fails("watch", bad[i], msg);
	}
}

/* INI files ------------------------------------------------------------------- */

static void test_load_with_section(void **state)
{
	(void)state;
	char path[256], err[512] = "";
	struct nf_config cfg;

	if (load_text(&cfg,
	              "; nofussd settings\n"
	              "# another comment\n"
	              "\n"
	              "[nofussd]\n"
	              "port = 8266\n"
	              "listen=0.0.0.0\n"
	              "base = /nofuss/  \n"
	              "data-dir = /srv/nofuss\n"
	              "check-log = /var/log/nofuss.log\n"
	              "watch = off\n"
	              "idle-timeout = 45\n",
	              err, sizeof err, path, sizeof path) != 0)
		fail_msg("%s", err);
	assert_int_equal(cfg.port, 8266);
	assert_string_equal(cfg.listen, "0.0.0.0");
	assert_string_equal(cfg.base, "/nofuss/"); /* normalised by finish */
	assert_string_equal(cfg.data_dir, "/srv/nofuss");
	assert_string_equal(cfg.check_log, "/var/log/nofuss.log");
	assert_false(cfg.watch);
	assert_int_equal(cfg.idle_timeout, 45);
	assert_int_equal(cfg.grace_seconds, 10); /* untouched keys keep defaults */
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), 0);
	assert_string_equal(cfg.base, "/nofuss");
	assert_string_equal(cfg.rules_path, "/srv/nofuss/versions.json");
	assert_string_equal(cfg.public_dir, "/srv/nofuss/public");
}

static void test_load_without_section(void **state)
{
	(void)state;
	char path[256], err[512] = "";
	struct nf_config cfg;

	struct nf_config defaults;

	if (load_text(&cfg, "port=9000\nper-ip-limit = 3\n", err, sizeof err, path, sizeof path) != 0)
		fail_msg("%s", err);
	assert_int_equal(cfg.port, 9000);
	assert_int_equal(cfg.per_ip_limit, 3);

	/* An empty file is fine and changes nothing. */
	nf_config_defaults(&defaults);
	assert_int_equal(load_text(&cfg, "", err, sizeof err, path, sizeof path), 0);
	assert_memory_equal(&cfg, &defaults, sizeof cfg);
}

static void test_load_errors_name_line(void **state)
{
	(void)state;
	load_fails("[nofussd]\nport = 8266\nport = 70000\n", 3,
	           "port: \"70000\" is not a number from 0 to 65535");
	load_fails("[nofussd]\n\nportt = 1\n", 3, "unknown setting \"portt\"");
	load_fails("watch = sometimes\n", 1, "watch: \"sometimes\" is not yes or no");
	load_fails("[nofussd]\nport = 1\n[other]\nport = 2\n", 4,
	           "section [other]: only [nofussd] is read");
	load_fails("[NOFUSSD]\nport = 1\n", 2, "section [NOFUSSD]: only [nofussd] is read");
	load_fails("[nofussd]\nthis line has no equals sign\n", 2, "syntax error");
	load_fails("[nofussd\nport = 1\n", 1, "syntax error");
	/* the first error is the one reported */
	load_fails("port = x\nwatch = maybe\n", 1, "port: \"x\" is not a number from 0 to 65535");
}

/* When a syntax error comes before a bad value, the message must be the
 * one of the line reported. */
static void test_load_first_error_message_matches_line(void **state)
{
	(void)state;
	/* Regression (was a bug): config.c keeps the first *handler* message, while inih reports
	 * the line of the first error of any kind. A syntax error on line 2
	 * followed by a bad value on line 3 gives "file:2: port: \"x\" is not a
	 * number from 0 to 65535" (line 2's number with line 3's message).
	 * Expected: "file:2: syntax error". */
	load_fails("[nofussd]\nno equals sign here\nport = x\n", 2, "syntax error");
}

static void test_load_missing_file(void **state)
{
	(void)state;
	char path[256], err[512] = "", want[512];
	struct nf_config cfg;

	snprintf(path, sizeof path, "%s/missing.conf", tmpdir);
	nf_config_defaults(&cfg);
	assert_int_equal(nf_config_load(&cfg, path, err, sizeof err), -1);
	snprintf(want, sizeof want, "%s: %s", path, strerror(ENOENT));
	assert_string_equal(err, want);
}

/* A folder given as the config file must not load as an empty file. */
static void test_load_directory(void **state)
{
	(void)state;
	char err[512] = "";
	struct nf_config cfg;

	nf_config_defaults(&cfg);
	/* Regression (was a bug): inih's fopen() succeeds on a directory and the first read fails
	 * with EISDIR, which inih takes for end of file: nf_config_load returns
	 * 0 and nofussd silently runs on defaults ("-c /etc/nofuss/").
	 * Expected: -1 with a message naming the path. */
	assert_int_equal(nf_config_load(&cfg, tmpdir, err, sizeof err), -1);
	assert_non_null(strstr(err, tmpdir));
}

/* finish -------------------------------------------------------------------- */

static void expect_base(const char *in, const char *out)
{
	struct nf_config cfg;
	char err[512] = "";

	nf_config_defaults(&cfg);
	set_ok(&cfg, "base", in);
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), 0);
	if (strcmp(cfg.base, out) != 0)
		fail_msg("base \"%s\" -> \"%s\", expected \"%s\"", in, cfg.base, out);
}

static void test_finish_base(void **state)
{
	(void)state;
	expect_base("", "");
	expect_base("/", "");
	expect_base("//", "");
	expect_base("/nofuss", "/nofuss");
	expect_base("/nofuss/", "/nofuss");
	expect_base("nofuss", "/nofuss");
	expect_base("nofuss/", "/nofuss");
	expect_base("//nofuss", "/nofuss");
	expect_base("//a//b/", "/a/b");
	expect_base("a/b/c", "/a/b/c");
	expect_base("/a/b///", "/a/b");
}

/* The longest base set accepts (255 bytes) must survive normalisation. */
static void test_finish_long_base(void **state)
{
	(void)state;
	struct nf_config cfg;
	char base[sizeof cfg.base], err[512] = "";

	base[0] = '/';
	memset(base + 1, 'b', sizeof base - 2);
	base[sizeof base - 1] = '\0';
	nf_config_defaults(&cfg);
	set_ok(&cfg, "base", base);
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), 0);
	/* Regression (was a bug): normalise_base() stops copying at n + 2 < sizeof out, so a
	 * 255-byte base such as "/bbb...b" comes out 254 bytes long, silently
	 * serving a different prefix. Expected: unchanged (and a base that
	 * cannot fit once a leading '/' is added should be an error, not cut). */
	assert_string_equal(cfg.base, base);
}

static void test_finish_paths(void **state)
{
	(void)state;
	struct nf_config cfg;
	char err[512] = "";

	nf_config_defaults(&cfg);
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), 0);
	assert_string_equal(cfg.rules_path, "/var/lib/nofuss/versions.json");
	assert_string_equal(cfg.public_dir, "/var/lib/nofuss/public");

	nf_config_defaults(&cfg);
	set_ok(&cfg, "data-dir", "/srv/nf");
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), 0);
	assert_string_equal(cfg.rules_path, "/srv/nf/versions.json");
	assert_string_equal(cfg.public_dir, "/srv/nf/public");

	/* explicit paths are kept, whatever the order they were set in */
	nf_config_defaults(&cfg);
	set_ok(&cfg, "rules", "/etc/nofuss/versions.json");
	set_ok(&cfg, "data-dir", "/srv/nf");
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), 0);
	assert_string_equal(cfg.rules_path, "/etc/nofuss/versions.json");
	assert_string_equal(cfg.public_dir, "/srv/nf/public");

	nf_config_defaults(&cfg);
	set_ok(&cfg, "public", "/srv/images");
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), 0);
	assert_string_equal(cfg.rules_path, "/var/lib/nofuss/versions.json");
	assert_string_equal(cfg.public_dir, "/srv/images");

	/* a data-dir too long to hold "/versions.json" after it */
	char dir[sizeof cfg.data_dir];
	memset(dir, 'd', sizeof dir - 1);
	dir[0] = '/';
	dir[sizeof dir - 1] = '\0';
	nf_config_defaults(&cfg);
	set_ok(&cfg, "data-dir", dir);
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), -1);
	assert_string_equal(err, "data-dir: path too long");
	/* ... or, with rules set explicitly, only "/public" */
	memset(dir, 'd', sizeof dir - 1);
	dir[0] = '/';
	dir[sizeof dir - 1 - strlen("/public")] = '\0'; /* 1016 bytes: just fits */
	nf_config_defaults(&cfg);
	set_ok(&cfg, "rules", "/etc/v.json");
	set_ok(&cfg, "data-dir", dir);
	/* the default store's URL, "sqlite://DIR/store/fleet.db", cannot fit */
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), -1);
	assert_string_equal(err, "data-dir: path too long for the store's URL");
	nf_config_defaults(&cfg);
	set_ok(&cfg, "rules", "/etc/v.json");
	set_ok(&cfg, "data-dir", dir);
	set_ok(&cfg, "store", "off");
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), 0);
	assert_int_equal(strlen(cfg.public_dir), sizeof cfg.public_dir - 1);
	dir[sizeof dir - 1 - strlen("/public")] = 'd';
	dir[sizeof dir - strlen("/public")] = '\0'; /* 1017 bytes: one too many */
	nf_config_defaults(&cfg);
	set_ok(&cfg, "rules", "/etc/v.json");
	set_ok(&cfg, "data-dir", dir);
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), -1);
	assert_string_equal(err, "data-dir: path too long");
}

/* The store: the default follows data-dir, off and none turn it off, the
 * backends the store knows pass (nf_store_open checks the rest), anything
 * else is refused without showing what may be a password. */
static void test_finish_store(void **state)
{
	(void)state;
	struct nf_config cfg;
	char err[512] = "";
	static const char *const good[] = {"sqlite:///srv/fleet.db", "sqlite://rel/fleet.db",
	                                   "postgresql://u:p@db/fleet", "postgres://db/fleet"};

	nf_config_defaults(&cfg);
	set_ok(&cfg, "data-dir", "/srv/nf");
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), 0);
	assert_string_equal(cfg.store, "sqlite:///srv/nf/store/fleet.db");
	for (int i = 0; i < 4; i++) {
		const char *off = (const char *[]){"off", "none", "OFF", "None"}[i];
		nf_config_defaults(&cfg);
		set_ok(&cfg, "store", off);
		assert_int_equal(nf_config_finish(&cfg, err, sizeof err), 0);
		assert_string_equal(cfg.store, "");
	}
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		nf_config_defaults(&cfg);
		set_ok(&cfg, "store", good[i]);
		assert_int_equal(nf_config_finish(&cfg, err, sizeof err), 0);
		assert_string_equal(cfg.store, good[i]);
	}
	/* "store =" (empty) means the default */
	nf_config_defaults(&cfg);
	set_ok(&cfg, "store", "");
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), 0);
	assert_string_equal(cfg.store, "sqlite:///var/lib/nofuss/store/fleet.db");
	nf_config_defaults(&cfg);
	set_ok(&cfg, "store", "mysql://root:hunter2@db/x");
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), -1);
	assert_string_equal(err, "store: \"mysql:...\" is not sqlite:///PATH, postgresql://..., "
	                         "off or none");
	nf_config_defaults(&cfg);
	set_ok(&cfg, "store", "/var/lib/fleet.db");
	assert_int_equal(nf_config_finish(&cfg, err, sizeof err), -1);
	assert_null(strstr(err, "hunter2"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_finish_store),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_set_every_key),
		cmocka_unit_test(test_number_ranges),
		cmocka_unit_test(test_string_lengths),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_watch_bool),
		cmocka_unit_test(test_admin_keys),
		cmocka_unit_test(test_admin_tls_keys),
		cmocka_unit_test(test_load_with_section),
		cmocka_unit_test(test_load_without_section),
		cmocka_unit_test(test_load_errors_name_line),
		cmocka_unit_test(test_load_first_error_message_matches_line),
		cmocka_unit_test(test_load_missing_file),
		cmocka_unit_test(test_load_directory),
		cmocka_unit_test(test_finish_base),
		cmocka_unit_test(test_finish_long_base),
		cmocka_unit_test(test_finish_paths),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
