/*
 * test_rules.c - unit tests for rules.c: versions.json parsing, validation
 * and matching (docs/PEERS.md sections 1 and 3).
 *
 * Matching: first match wins in file order, with device-specific and "*"
 * rules interleaved; device compared exactly; min/max inclusive; the
 * header-form extras (mac, gt/ge/lt/le/eq, build_not); path-form queries
 * (no MAC, no build) never matching a rule that names a MAC or build_not;
 * strings compared byte for byte. Answers: the compact JSON body, keys in
 * file order, "spiffs":"" appended, unknown keys passed through, escaping.
 * Validation: every refusal with its exact message. Legacy files: a table
 * of files the original PHP server answered (its own samples included),
 * each with exactly what loading prints and what each check gets, in path
 * and header form (stderr is captured into a temporary file). An index
 * test with 10,000 device rules checks the hash index finds the right rule.
 * Rules are written with single quotes for readability; json() turns them
 * into double quotes before parsing.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nofussd.h"
#include "testutil.h"

/* Helpers ----------------------------------------------------------------- */

/* A malloc'd copy of text with every ' turned into ". Caller frees. */
static char *json(const char *text)
{
	char *out = strdup(text);

	assert_non_null(out);
	for (char *p = out; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	return out;
}

/* Parses text exactly as given; fails the test when it is refused. */
static struct nf_rules *parse_raw(const char *text)
{
	char err[512] = "";
	struct nf_rules *rs = nf_rules_parse(text, strlen(text), "test.json", err, sizeof err);

	if (rs == NULL)
		fail_msg("refused: %s\n%s", err, text);
	return rs;
}

/* Parses single-quoted rules; fails the test when they are refused. */
static struct nf_rules *parse_ok(const char *text)
{
	char *j = json(text);
	struct nf_rules *rs = parse_raw(j);

	free(j);
	return rs;
}

/* Parses single-quoted rules with stderr sent to a temporary file; fails
 * the test when they are refused. *log receives what loading printed
 * (malloc'd, "" when nothing; the caller frees it). */
static struct nf_rules *parse_logged(const char *text, char **log)
{
	char err[512] = "";
	char *j = json(text);
	FILE *tmp = tmpfile();
	struct nf_rules *rs;
	long size;
	int saved;

	assert_non_null(tmp);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	rs = nf_rules_parse(j, strlen(j), "test.json", err, sizeof err);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);

	assert_int_equal(fseek(tmp, 0, SEEK_END), 0);
	size = ftell(tmp);
	assert_true(size >= 0);
	rewind(tmp);
	*log = calloc(1, (size_t)size + 1);
	assert_non_null(*log);
	assert_int_equal(fread(*log, 1, (size_t)size, tmp), (size_t)size);
	fclose(tmp);
	if (rs == NULL)
		fail_msg("refused: %s\n%s", err, j);
	free(j);
	return rs;
}

/* The start of one warning line of rule n of test.json, as nf_log prints it. */
#define WARN(n) "nofussd: warning: test.json: rule " #n ": "
/* The middle of every warning about a legacy pattern the original answered. */
#define AS_ORIGINAL ", as in the original NoFUSS server; "
#define NO_IMAGE(n) WARN(n) "target offers neither firmware nor spiffs\n"

/* Asserts that single-quoted rules are refused with exactly message. */
static void expect_error(const char *text, const char *message)
{
	char err[512] = "";
	char *j = json(text);
	struct nf_rules *rs = nf_rules_parse(j, strlen(j), "test.json", err, sizeof err);

	if (rs != NULL) {
		nf_rules_free(rs);
		free(j);
		fail_msg("accepted, expected \"%s\": %s", message, text);
	}
	free(j);
	assert_string_equal(err, message);
}

/* nf_rules_match for a header-form query (mac and build may be NULL for a
 * path-form query). */
static long match(const struct nf_rules *rs, const char *device, const char *version,
                  const char *mac, const char *build)
{
	struct nf_query q = {device, strlen(device), version, strlen(version), mac, build};

	return nf_rules_match(rs, &q);
}

static long match_path(const struct nf_rules *rs, const char *device, const char *version)
{
	return match(rs, device, version, NULL, NULL);
}

/* The body of the target a query matches, or "{}" when none does. */
static const char *answer(const struct nf_rules *rs, long k)
{
	const struct nf_target *t;

	if (k < 0)
		return "{}";
	t = nf_rules_target(rs, (size_t)k);
	assert_non_null(t);
	return t->body;
}

/* File order ---------------------------------------------------------------- */

/* Device-specific and "*" rules interleaved: whichever comes first in the
 * file wins, not the more specific one. */
static void test_first_match_wins_in_file_order(void **state)
{
	(void)state;
	struct nf_rules *rs = parse_ok("["
	    "{'origin':{'device':'A','max':'1.0'},'target':{'version':'r0','firmware':'/0'}},"
	    "{'origin':{'device':'*','max':'2.0'},'target':{'version':'r1','firmware':'/1'}},"
	    "{'origin':{'device':'A'},'target':{'version':'r2','firmware':'/2'}},"
	    "{'origin':{'device':'B','min':'5'},'target':{'version':'r3','firmware':'/3'}},"
	    "{'origin':{'device':'*'},'target':{'version':'r4','firmware':'/4'}},"
	    "{'origin':{'device':'B'},'target':{'version':'r5','firmware':'/5'}}"
	    "]");

	assert_int_equal(nf_rules_count(rs), 6);
	assert_int_equal(nf_rules_count(rs), 6);
	assert_int_equal(match_path(rs, "A", "0.5"), 0);
	assert_int_equal(match_path(rs, "A", "1.0"), 0);  /* max inclusive */
	assert_int_equal(match_path(rs, "A", "1.5"), 1);  /* "*" before A's 2nd rule */
	assert_int_equal(match_path(rs, "A", "3.0"), 2);
	assert_int_equal(match_path(rs, "B", "1.5"), 1);
	assert_int_equal(match_path(rs, "B", "6"), 3);
	assert_int_equal(match_path(rs, "B", "3"), 4);    /* "*" before B's 2nd rule */
	assert_int_equal(match_path(rs, "C", "3"), 4);
	assert_string_equal(nf_rules_target(rs, 4)->version, "r4");
	assert_null(nf_rules_target(rs, 6));
	nf_rules_free(rs);
}

/* Two rules with the same origin: the second is never reached. */
static void test_identical_rules_first_wins(void **state)
{
	(void)state;
	struct nf_rules *rs = parse_ok("["
	    "{'origin':{'device':'X','min':'1.0'},'target':{'version':'first','firmware':'/a'}},"
	    "{'origin':{'device':'X','min':'1.0'},'target':{'version':'second','firmware':'/b'}}"
	    "]");

	assert_int_equal(match_path(rs, "X", "1.0"), 0);
	assert_int_equal(match_path(rs, "X", "0.9"), -1);
	nf_rules_free(rs);
}

static void test_no_rules(void **state)
{
	(void)state;
	struct nf_rules *rs = parse_ok("[]");

	assert_int_equal(nf_rules_count(rs), 0);
	assert_int_equal(match_path(rs, "A", "1.0"), -1);
	assert_int_equal(match(rs, "A", "1.0", "5C:CF:7F:8B:6B:26", "1"), -1);
	assert_string_equal(answer(rs, -1), "{}");
	assert_null(nf_rules_target(rs, 0));
	nf_rules_free(rs);
}

/* Devices ------------------------------------------------------------------- */

static void test_device_exact_and_case_sensitive(void **state)
{
	(void)state;
	struct nf_rules *rs = parse_ok("["
	    "{'origin':{'device':'SONOFF'},'target':{'version':'1','firmware':'/a'}}"
	    "]");

	assert_int_equal(match_path(rs, "SONOFF", "0.1"), 0);
	assert_int_equal(match_path(rs, "sonoff", "0.1"), -1);
	assert_int_equal(match_path(rs, "Sonoff", "0.1"), -1);
	assert_int_equal(match_path(rs, "SONOF", "0.1"), -1);
	assert_int_equal(match_path(rs, "SONOFFX", "0.1"), -1);
	assert_int_equal(match_path(rs, "SONOFF ", "0.1"), -1);
	assert_int_equal(match_path(rs, " SONOFF", "0.1"), -1);
	assert_int_equal(match_path(rs, "*", "0.1"), -1);

	/* The device is (pointer, length), not NUL-terminated: the router hands
	 * out a pointer into "SONOFF/0.1". */
	struct nf_query q = {"SONOFF/0.1", 6, "0.1", 3, NULL, NULL};
	assert_int_equal(nf_rules_match(rs, &q), 0);
	q.device_len = 5;
	assert_int_equal(nf_rules_match(rs, &q), -1);
	q.device_len = 7;
	assert_int_equal(nf_rules_match(rs, &q), -1);
	nf_rules_free(rs);
}

static void test_device_wildcard(void **state)
{
	(void)state;
	struct nf_rules *rs = parse_ok("["
	    "{'origin':{'device':'*','max':'1.0'},'target':{'version':'1.1','firmware':'/a'}}"
	    "]");

	assert_int_equal(match_path(rs, "SONOFF", "0.1"), 0);
	assert_int_equal(match_path(rs, "x", "1.0"), 0);
	assert_int_equal(match_path(rs, "*", "1.0"), 0);
	assert_int_equal(match(rs, "ESPURNA_H801", "0.9", "5C:CF:7F:8B:6B:26", ""), 0);
	assert_int_equal(match_path(rs, "SONOFF", "1.1"), -1);
	nf_rules_free(rs);
}

/* Version ranges -------------------------------------------------------------- */

static void test_min_max_inclusive(void **state)
{
	(void)state;
	struct nf_rules *rs = parse_ok("["
	    "{'origin':{'device':'D','min':'1.0','max':'2.0'},"
	    " 'target':{'version':'2.1','firmware':'/a'}}"
	    "]");

	assert_int_equal(match_path(rs, "D", "0.9"), -1);
	assert_int_equal(match_path(rs, "D", "1.0rc1"), -1); /* rc before release */
	assert_int_equal(match_path(rs, "D", "1.0"), 0);     /* min inclusive */
	assert_int_equal(match_path(rs, "D", "1.00"), 0);    /* numbers: 00 == 0 */
	assert_int_equal(match_path(rs, "D", "1.5"), 0);
	assert_int_equal(match_path(rs, "D", "1.10"), 0);
	assert_int_equal(match_path(rs, "D", "2.0"), 0);     /* max inclusive */
	assert_int_equal(match_path(rs, "D", "2.0.0"), -1);  /* 2.0 < 2.0.0 */
	assert_int_equal(match_path(rs, "D", "2.0pl1"), -1);
	assert_int_equal(match_path(rs, "D", "10.0"), -1);
	nf_rules_free(rs);
}

/* "*" and a missing key both mean any (v1.0 never matched without max). */
static void test_min_max_star_and_missing(void **state)
{
	(void)state;
	struct nf_rules *rs = parse_ok("["
	    "{'origin':{'device':'STAR','min':'*','max':'*'},'target':{'version':'s','firmware':'/a'}},"
	    "{'origin':{'device':'MIN','min':'1.0'},'target':{'version':'m','firmware':'/a'}},"
	    "{'origin':{'device':'MAX','max':'1.0'},'target':{'version':'x','firmware':'/a'}},"
	    "{'origin':{'device':'NONE'},'target':{'version':'n','firmware':'/a'}},"
	    "{'origin':{'device':'MINSTAR','min':'*','max':'1.0'},"
	    " 'target':{'version':'ms','firmware':'/a'}},"
	    "{'origin':{'device':'MAXSTAR','min':'1.0','max':'*'},"
	    " 'target':{'version':'xs','firmware':'/a'}}"
	    "]");
	static const char *const versions[] = {"0", "0.0.1", "1.0", "99.99", "dev", "a"};

	for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
		assert_int_equal(match_path(rs, "STAR", versions[i]), 0);
		assert_int_equal(match_path(rs, "NONE", versions[i]), 3);
	}
	assert_int_equal(match_path(rs, "MIN", "1.0"), 1);
	assert_int_equal(match_path(rs, "MIN", "999"), 1);
	assert_int_equal(match_path(rs, "MIN", "0.9"), -1);
	assert_int_equal(match_path(rs, "MAX", "0.0.1"), 2);
	assert_int_equal(match_path(rs, "MAX", "1.0"), 2);
	assert_int_equal(match_path(rs, "MAX", "1.0.1"), -1);
	assert_int_equal(match_path(rs, "MINSTAR", "0"), 4);
	assert_int_equal(match_path(rs, "MINSTAR", "1.1"), -1);
	assert_int_equal(match_path(rs, "MAXSTAR", "1000"), 5);
	assert_int_equal(match_path(rs, "MAXSTAR", "0.1"), -1);
	nf_rules_free(rs);
}

static void test_version_operators(void **state)
{
	(void)state;
	struct nf_rules *rs = parse_ok("["
	    "{'origin':{'device':'GT','gt':'1.0'},'target':{'version':'gt','firmware':'/a'}},"
	    "{'origin':{'device':'GE','ge':'1.0'},'target':{'version':'ge','firmware':'/a'}},"
	    "{'origin':{'device':'LT','lt':'1.0'},'target':{'version':'lt','firmware':'/a'}},"
	    "{'origin':{'device':'LE','le':'1.0'},'target':{'version':'le','firmware':'/a'}},"
	    "{'origin':{'device':'EQ','eq':'1.0'},'target':{'version':'eq','firmware':'/a'}},"
	    "{'origin':{'device':'ANY','gt':'*','ge':'*','lt':'*','le':'*','eq':'*'},"
	    " 'target':{'version':'any','firmware':'/a'}},"
	    "{'origin':{'device':'BOTH','gt':'1.0','lt':'2.0'},"
	    " 'target':{'version':'both','firmware':'/a'}},"
	    "{'origin':{'device':'ALL','min':'1.0','max':'3.0','ge':'1.5','le':'2.5','gt':'1.5',"
	    "           'lt':'2.5','eq':'2.0'},'target':{'version':'all','firmware':'/a'}}"
	    "]");

	assert_int_equal(match_path(rs, "GT", "1.0"), -1);
	assert_int_equal(match_path(rs, "GT", "1.0.1"), 0);
	assert_int_equal(match_path(rs, "GT", "0.9"), -1);
	assert_int_equal(match_path(rs, "GE", "1.0"), 1);
	assert_int_equal(match_path(rs, "GE", "1.1"), 1);
	assert_int_equal(match_path(rs, "GE", "0.9"), -1);
	assert_int_equal(match_path(rs, "LT", "1.0"), -1);
	assert_int_equal(match_path(rs, "LT", "0.9"), 2);
	assert_int_equal(match_path(rs, "LT", "1.0rc1"), 2);
	assert_int_equal(match_path(rs, "LE", "1.0"), 3);
	assert_int_equal(match_path(rs, "LE", "0.1"), 3);
	assert_int_equal(match_path(rs, "LE", "1.0.0"), -1);
	assert_int_equal(match_path(rs, "EQ", "1.0"), 4);
	assert_int_equal(match_path(rs, "EQ", "1.00"), 4);  /* numeric parts */
	assert_int_equal(match_path(rs, "EQ", "1.0.0"), -1);
	assert_int_equal(match_path(rs, "EQ", "1.1"), -1);
	assert_int_equal(match_path(rs, "ANY", "0"), 5);
	assert_int_equal(match_path(rs, "ANY", "7.7.7"), 5);
	assert_int_equal(match_path(rs, "BOTH", "1.0"), -1);
	assert_int_equal(match_path(rs, "BOTH", "1.5"), 6);
	assert_int_equal(match_path(rs, "BOTH", "2.0"), -1);
	assert_int_equal(match_path(rs, "ALL", "2.0"), 7);
	assert_int_equal(match_path(rs, "ALL", "2.1"), -1);
	assert_int_equal(match_path(rs, "ALL", "1.5"), -1);
	nf_rules_free(rs);
}

/* MAC and build ------------------------------------------------------------ */

static void test_mac_forms(void **state)
{
	(void)state;
	struct nf_rules *rs = parse_ok("["
	    "{'origin':{'device':'STR','mac':'5C:CF:7F:8B:6B:26'},"
	    " 'target':{'version':'s','firmware':'/a'}},"
	    "{'origin':{'device':'ARR','mac':['5C:CF:7F:00:00:01','5C:CF:7F:00:00:02']},"
	    " 'target':{'version':'a','firmware':'/a'}},"
	    "{'origin':{'device':'STAR','mac':'*'},'target':{'version':'*','firmware':'/a'}},"
	    "{'origin':{'device':'INARR','mac':['5C:CF:7F:00:00:01','*']},"
	    " 'target':{'version':'ia','firmware':'/a'}},"
	    "{'origin':{'device':'ABSENT'},'target':{'version':'ab','firmware':'/a'}}"
	    "]");

	assert_int_equal(match(rs, "STR", "1", "5C:CF:7F:8B:6B:26", "1"), 0);
	assert_int_equal(match(rs, "STR", "1", "5C:CF:7F:8B:6B:27", "1"), -1);
	assert_int_equal(match(rs, "STR", "1", "5c:cf:7f:8b:6b:26", "1"), -1); /* exact */
	assert_int_equal(match(rs, "STR", "1", "", "1"), -1);
	assert_int_equal(match(rs, "ARR", "1", "5C:CF:7F:00:00:01", "1"), 1);
	assert_int_equal(match(rs, "ARR", "1", "5C:CF:7F:00:00:02", "1"), 1);
	assert_int_equal(match(rs, "ARR", "1", "5C:CF:7F:00:00:03", "1"), -1);
	assert_int_equal(match(rs, "STAR", "1", "AA:BB:CC:DD:EE:FF", "1"), 2);
	assert_int_equal(match(rs, "INARR", "1", "AA:BB:CC:DD:EE:FF", "1"), 3);
	assert_int_equal(match(rs, "INARR", "1", "5C:CF:7F:00:00:01", "1"), 3);
	assert_int_equal(match(rs, "ABSENT", "1", "AA:BB:CC:DD:EE:FF", "1"), 4);
	nf_rules_free(rs);
}

/* A path-form check carries no MAC and no build (docs/PEERS.md section 3):
 * rules that name a MAC (other than "*") or a build_not are skipped. */
static void test_path_form_query(void **state)
{
	(void)state;
	struct nf_rules *rs = parse_ok("["
	    "{'origin':{'device':'D','mac':'5C:CF:7F:8B:6B:26'},'target':{'version':'0','firmware':'/a'}},"
	    "{'origin':{'device':'D','mac':['5C:CF:7F:8B:6B:26']},"
	    " 'target':{'version':'1','firmware':'/a'}},"
	    "{'origin':{'device':'*','mac':'5C:CF:7F:8B:6B:26'},'target':{'version':'2','firmware':'/a'}},"
	    "{'origin':{'device':'D','build_not':'123'},'target':{'version':'3','firmware':'/a'}},"
	    "{'origin':{'device':'*','build_not':'123'},'target':{'version':'4','firmware':'/a'}},"
	    "{'origin':{'device':'D','mac':'*','max':'1.0'},'target':{'version':'5','firmware':'/a'}},"
	    "{'origin':{'device':'D','mac':['5C:CF:7F:8B:6B:26','*'],'max':'2.0'},"
	    " 'target':{'version':'6','firmware':'/a'}},"
	    "{'origin':{'device':'D'},'target':{'version':'7','firmware':'/a'}}"
	    "]");

	assert_int_equal(match_path(rs, "D", "0.5"), 5);
	assert_int_equal(match_path(rs, "D", "1.5"), 6);
	assert_int_equal(match_path(rs, "D", "3.0"), 7);
	assert_int_equal(match_path(rs, "E", "3.0"), -1);
	/* The same rules for a header-form check with that MAC and a build. */
	assert_int_equal(match(rs, "D", "3.0", "5C:CF:7F:8B:6B:26", "9"), 0);
	assert_int_equal(match(rs, "E", "3.0", "5C:CF:7F:8B:6B:26", "9"), 2);
	assert_int_equal(match(rs, "D", "3.0", "AA:AA:AA:AA:AA:AA", "9"), 3);
	assert_int_equal(match(rs, "E", "3.0", "AA:AA:AA:AA:AA:AA", "9"), 4);
	/* A MAC but no build header at all: the build_not rules are skipped. */
	assert_int_equal(match(rs, "D", "3.0", "AA:AA:AA:AA:AA:AA", NULL), 7);
	nf_rules_free(rs);
}

static void test_build_not(void **state)
{
	(void)state;
	struct nf_rules *rs = parse_ok("["
	    "{'origin':{'device':'D','build_not':'1559606400'},'target':{'version':'2','firmware':'/a'}}"
	    "]");
	const char *mac = "5C:CF:7F:8B:6B:26";

	assert_int_equal(match(rs, "D", "1", mac, "1559606401"), 0); /* different */
	assert_int_equal(match(rs, "D", "1", mac, "1"), 0);
	assert_int_equal(match(rs, "D", "1", mac, "1559606400"), -1); /* equal */
	assert_int_equal(match(rs, "D", "1", mac, ""), -1);           /* empty */
	assert_int_equal(match(rs, "D", "1", mac, NULL), -1);         /* absent */
	assert_int_equal(match(rs, "D", "1", mac, "01559606400"), 0); /* strings, not numbers */
	assert_int_equal(match(rs, "D", "1", mac, "1559606400 "), 0);
	nf_rules_free(rs);
}

/* Strings compare byte for byte: PHP's loose == made "010" equal "10". */
static void test_strings_compare_exactly(void **state)
{
	(void)state;
	nf_log_set_level(NF_LOG_ERROR); /* "010" is not a MAC: a warning */
	struct nf_rules *rs = parse_ok("["
	    "{'origin':{'device':'010'},'target':{'version':'d010','firmware':'/a'}},"
	    "{'origin':{'device':'1e1'},'target':{'version':'d1e1','firmware':'/a'}},"
	    "{'origin':{'device':'M','mac':'010'},'target':{'version':'m010','firmware':'/a'}},"
	    "{'origin':{'device':'N','mac':['10','0x0A']},'target':{'version':'n','firmware':'/a'}}"
	    "]");

	assert_int_equal(match_path(rs, "010", "1"), 0);
	assert_int_equal(match_path(rs, "10", "1"), -1);
	assert_int_equal(match_path(rs, "10.0", "1"), -1);
	assert_int_equal(match_path(rs, "1e1", "1"), 1);
	assert_int_equal(match_path(rs, "1E1", "1"), -1);
	assert_int_equal(match(rs, "M", "1", "010", "1"), 2);
	assert_int_equal(match(rs, "M", "1", "10", "1"), -1);
	assert_int_equal(match(rs, "M", "1", "0010", "1"), -1);
	assert_int_equal(match(rs, "N", "1", "10", "1"), 3);
	assert_int_equal(match(rs, "N", "1", "010", "1"), -1);
	assert_int_equal(match(rs, "N", "1", "0x0a", "1"), -1);
	nf_rules_free(rs);
	nf_log_set_level(NF_LOG_INFO);
}

/* Answers ------------------------------------------------------------------ */

static void assert_body(const struct nf_rules *rs, size_t i, const char *expected)
{
	const struct nf_target *t = nf_rules_target(rs, i);

	assert_non_null(t);
	assert_string_equal(t->body, expected);
	assert_int_equal(t->body_len, strlen(t->body));
	assert_int_equal(t->body_len, strlen(expected));
}

static void test_answer_format(void **state)
{
	(void)state;
	nf_log_set_level(NF_LOG_ERROR); /* rule 6 offers no image: a warning */
	struct nf_rules *rs = parse_raw("[\n"
	    /* the example of docs/PEERS.md section 1, with spaces to compact away */
	    " { \"origin\" : { \"device\" : \"TEST\" } ,\n"
	    "   \"target\" : { \"version\" : \"0.1.1\" ,\n"
	    "                \"firmware\" : \"/firmware/test-0.1.1.bin\" } },\n"
	    /* keys in file order, spiffs present: nothing appended */
	    " {\"origin\":{\"device\":\"B\"},\"target\":{\"spiffs\":\"/s.bin\",\"firmware\":\"/f.bin\","
	    "\"version\":\"2\"}},\n"
	    /* spiffs present and empty: kept once, where it is */
	    " {\"origin\":{\"device\":\"C\"},\"target\":{\"version\":\"3\",\"spiffs\":\"\","
	    "\"firmware\":\"http://example.com/x.bin\"}},\n"
	    /* unknown keys passed through: numbers, objects, arrays, booleans */
	    " {\"origin\":{\"device\":\"D\"},"
	    "\"target\":{\"device\":\"D\",\"version\":\"4\",\"size\":123456,"
	    "\"ratio\":1.5,\"neg\":-7,\"meta\":{\"a\":[1,\"two\",true,false,null],\"b\":{}},"
	    "\"firmware\":\"/d.bin\"}},\n"
	    /* spiffs only */
	    " {\"origin\":{\"device\":\"E\"},\"target\":{\"version\":\"5\",\"spiffs\":\"/fs.bin\"}},\n"
	    /* version only: offers nothing, still answered as written */
	    " {\"origin\":{\"device\":\"F\"},\"target\":{\"version\":\"6\"}}\n"
	    "]\n");

	assert_body(rs, 0,
	    "{\"version\":\"0.1.1\",\"firmware\":\"/firmware/test-0.1.1.bin\",\"spiffs\":\"\"}");
	assert_body(rs, 1, "{\"spiffs\":\"/s.bin\",\"firmware\":\"/f.bin\",\"version\":\"2\"}");
	assert_body(rs, 2,
	    "{\"version\":\"3\",\"spiffs\":\"\",\"firmware\":\"http://example.com/x.bin\"}");
	assert_body(rs, 3,
	    "{\"device\":\"D\",\"version\":\"4\",\"size\":123456,\"ratio\":1.5,\"neg\":-7,"
	    "\"meta\":{\"a\":[1,\"two\",true,false,null],\"b\":{}},\"firmware\":\"/d.bin\","
	    "\"spiffs\":\"\"}");
	assert_body(rs, 4, "{\"version\":\"5\",\"spiffs\":\"/fs.bin\"}");
	assert_body(rs, 5, "{\"version\":\"6\",\"spiffs\":\"\"}");
	for (size_t i = 0; i < nf_rules_count(rs); i++)
		assert_null(strstr(nf_rules_target(rs, i)->body, "\"spiffs\":null"));
	assert_string_equal(nf_rules_target(rs, 0)->version, "0.1.1");
	assert_string_equal(nf_rules_target(rs, 3)->version, "4");
	assert_string_equal(answer(rs, match_path(rs, "TEST", "0.1.0")),
	    "{\"version\":\"0.1.1\",\"firmware\":\"/firmware/test-0.1.1.bin\",\"spiffs\":\"\"}");
	nf_rules_free(rs);
	nf_log_set_level(NF_LOG_INFO);
}

/* "/" is never escaped (even when the file wrote "\/"); backslash, quote and
 * control characters are; non-ASCII comes out as UTF-8. */
static void test_answer_escaping(void **state)
{
	(void)state;
	struct nf_rules *rs = parse_raw("["
	    "{\"origin\":{\"device\":\"X\"},\"target\":{\"version\":\"1\\u00e9\","
	    "\"firmware\":\"\\/fw\\/a\\\\b\\\"c\\u00e9\\u0001.bin\",\"note\":\"tab\\there\"}}"
	    "]");

	assert_body(rs, 0,
	    "{\"version\":\"1\xc3\xa9\",\"firmware\":\"/fw/a\\\\b\\\"c\xc3\xa9\\u0001.bin\","
	    "\"note\":\"tab\\there\",\"spiffs\":\"\"}");
	assert_string_equal(nf_rules_target(rs, 0)->version, "1\xc3\xa9");
	nf_rules_free(rs);

	/* Raw UTF-8 in the file comes out unchanged. */
	rs = parse_raw("[{\"origin\":{\"device\":\"caf\xc3\xa9\"},"
	               "\"target\":{\"version\":\"2\",\"firmware\":\"/caf\xc3\xa9.bin\"}}]");
	assert_body(rs, 0, "{\"version\":\"2\",\"firmware\":\"/caf\xc3\xa9.bin\",\"spiffs\":\"\"}");
	assert_int_equal(match_path(rs, "caf\xc3\xa9", "1"), 0);
	assert_int_equal(match_path(rs, "cafe", "1"), -1);
	nf_rules_free(rs);
}

/* Answers over NF_MAX_ANSWER are refused; past NF_ANSWER_WARN they load
 * (with a warning). */
static void test_answer_size_limits(void **state)
{
	(void)state;
	char *text = malloc(NF_MAX_ANSWER + 256);
	char err[512] = "";
	char *path = malloc(NF_MAX_ANSWER + 1);
	struct nf_rules *rs;
	const char *prefix = "{\"version\":\"1\",\"firmware\":\"/";
	size_t plen;

	assert_non_null(text);
	assert_non_null(path);
	nf_log_set_level(NF_LOG_ERROR);

	/* A body of exactly NF_MAX_ANSWER bytes: accepted. */
	plen = NF_MAX_ANSWER - strlen(prefix) - strlen("\",\"spiffs\":\"\"}");
	memset(path, 'a', plen);
	path[plen] = '\0';
	snprintf(text, NF_MAX_ANSWER + 256,
	         "[{\"origin\":{\"device\":\"X\"},\"target\":{\"version\":\"1\",\"firmware\":\"/%s\"}}]",
	         path);
	rs = nf_rules_parse(text, strlen(text), "test.json", err, sizeof err);
	assert_non_null(rs);
	assert_int_equal(nf_rules_target(rs, 0)->body_len, NF_MAX_ANSWER);
	nf_rules_free(rs);

	/* One more byte: refused. */
	path[plen] = 'a';
	path[plen + 1] = '\0';
	snprintf(text, NF_MAX_ANSWER + 256,
	         "[{\"origin\":{\"device\":\"X\"},\"target\":{\"version\":\"1\",\"firmware\":\"/%s\"}}]",
	         path);
	rs = nf_rules_parse(text, strlen(text), "test.json", err, sizeof err);
	assert_null(rs);
	assert_string_equal(err, "test.json: rule 1: target: answer is 4097 bytes, limit 4096");

	free(path);
	free(text);
	nf_log_set_level(NF_LOG_INFO);
}

/* Validation ------------------------------------------------------------------ */

static void test_json_syntax_error_names_position(void **state)
{
	(void)state;
	char err[512] = "";
	const char *text = "[\n  {\"origin\": }\n]";
	struct nf_rules *rs = nf_rules_parse(text, strlen(text), "/etc/v.json", err, sizeof err);

	assert_null(rs);
	assert_string_equal(err, "/etc/v.json:2:14: unexpected token near '}'");

	text = "[\n{\"origin\":{\"device\":\"A\"},\"target\":{\"version\":\"1\"}},\n]";
	rs = nf_rules_parse(text, strlen(text), "v.json", err, sizeof err);
	assert_null(rs);
	assert_string_equal(err, "v.json:3:1: unexpected token near ']'");

	rs = nf_rules_parse("", 0, "v.json", err, sizeof err);
	assert_null(rs);
	assert_string_equal(err, "v.json:1:0: '[' or '{' expected near end of file");

	/* Only the first len bytes are parsed. */
	text = "[]garbage";
	rs = nf_rules_parse(text, 2, "v.json", err, sizeof err);
	assert_non_null(rs);
	nf_rules_free(rs);
}

/* A key given twice: PHP's json_decode (the original server) kept the last
 * one, so nofussd does too, with a warning naming where the first was. */
static void test_duplicate_keys(void **state)
{
	static const struct {
		const char *json, *warning, *device, *body;
	} cases[] = {
	    {"[{'origin':{'device':'A','device':'B'},'target':{'version':'1'}}]",
	     "test.json:1:33: duplicate object key near '\"device\"'", "B", "{\"version\":\"1\",\"spiffs\":\"\"}"},
	    {"[{'origin':{'device':'A'},'target':{'version':'1','version':'2'}}]",
	     "test.json:1:59: duplicate object key near '\"version\"'", "A",
	     "{\"version\":\"2\",\"spiffs\":\"\"}"},
	    {"[{'origin':{'device':'A'},'origin':{'device':'B'},'target':{'version':'1'}}]",
	     "test.json:1:34: duplicate object key near '\"origin\"'", "B", "{\"version\":\"1\",\"spiffs\":\"\"}"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *log = NULL, want[256];
		struct nf_rules *rs = parse_logged(cases[i].json, &log);
		long t;

		snprintf(want, sizeof want,
		         "nofussd: warning: %s: the last value is used, as in the original NoFUSS "
		         "server; remove the others\n",
		         cases[i].warning);
		assert_non_null(strstr(log, want));
		t = match(rs, cases[i].device, "1", "5C:CF:7F:8B:6B:26", "1");
		assert_int_equal(t, 0);
		assert_string_equal(nf_rules_target(rs, 0)->body, cases[i].body);
		free(log);
		nf_rules_free(rs);
	}
}

struct bad_rules {
	const char *json;
	const char *message;
};

static const struct bad_rules bad[] = {
	{"{}", "test.json: must be an array of rules"},
	{"{'origin':{'device':'A'},'target':{'version':'1'}}", "test.json: must be an array of rules"},
	{"[1]", "test.json: rule 1: must be an object with origin and target"},
	{"[{'origin':{'device':'A'},'target':{'version':'1'}},'x']",
	 "test.json: rule 2: must be an object with origin and target"},
	{"[null]", "test.json: rule 1: must be an object with origin and target"},
	{"[[]]", "test.json: rule 1: must be an object with origin and target"},
	/* origin */
	{"[{'target':{'version':'1'}}]", "test.json: rule 1: origin: missing"},
	{"[{'origin':'A','target':{'version':'1'}}]", "test.json: rule 1: origin: must be an object"},
	{"[{'origin':{},'target':{'version':'1'}}]", "test.json: rule 1: origin.device: missing"},
	{"[{'origin':{'min':'1'},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.device: missing"},
	{"[{'origin':{'device':5},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.device: must be a string"},
	{"[{'origin':{'device':null},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.device: must be a string"},
	{"[{'origin':{'device':['A']},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.device: must be a string"},
	{"[{'origin':{'device':''},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.device: must not be empty"},
	/* a version operator that is a list or an object: PHP's version_compare()
	 * failed on it, so the original could not answer these devices either */
	{"[{'origin':{'device':'A','min':['1']},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.min: must be a string"},
	{"[{'origin':{'device':'A','eq':{}},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.eq: must be a string"},
	/* target */
	{"[{'origin':{'device':'A'}}]", "test.json: rule 1: target: missing"},
	{"[{'origin':{'device':'A'},'target':'1.0'}]", "test.json: rule 1: target: must be an object"},
	{"[{'origin':{'device':'A'},'target':['1']}]",
	 "test.json: rule 1: target: must be an object"},
	{"[{'origin':{'device':'A'},'target':null}]",
	 "test.json: rule 1: target: must be an object"},
	/* the rule number counts from 1 and points at the bad rule */
	{"[{'origin':{'device':'A'},'target':{'version':'1','firmware':'/a'}},"
	 " {'origin':{'device':'B'},'target':{'version':'1','firmware':'/a'}},"
	 " {'origin':{'device':'C'},'target':'/c.bin'}]",
	 "test.json: rule 3: target: must be an object"},
};

static void test_validation_errors(void **state)
{
	(void)state;
	nf_log_set_level(NF_LOG_ERROR);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_error(bad[i].json, bad[i].message);
	nf_log_set_level(NF_LOG_INFO);
}

/* Fields longer than NF_MAX_FIELD (device) or NF_VERSION_MAX (versions). */
static void test_field_length_limits(void **state)
{
	(void)state;
	char field[NF_MAX_FIELD + 2];
	char text[1024], msg[256];
	char err[512];
	struct nf_rules *rs;

	memset(field, 'D', NF_MAX_FIELD);
	field[NF_MAX_FIELD] = '\0';
	snprintf(text, sizeof text,
	         "[{\"origin\":{\"device\":\"%s\",\"min\":\"%s\"},"
	         "\"target\":{\"version\":\"1\",\"firmware\":\"/a\"}}]", field, field);
	rs = nf_rules_parse(text, strlen(text), "test.json", err, sizeof err);
	assert_non_null(rs);
	assert_int_equal(match_path(rs, field, "1"), 0);
	nf_rules_free(rs);

	strcat(field, "D");
	snprintf(text, sizeof text,
	         "[{\"origin\":{\"device\":\"%s\"},\"target\":{\"version\":\"1\"}}]", field);
	rs = nf_rules_parse(text, strlen(text), "test.json", err, sizeof err);
	assert_null(rs);
	snprintf(msg, sizeof msg, "test.json: rule 1: origin.device: longer than %d bytes",
	         NF_MAX_FIELD);
	assert_string_equal(err, msg);

	snprintf(text, sizeof text,
	         "[{\"origin\":{\"device\":\"A\",\"min\":\"%s\"},\"target\":{\"version\":\"1\"}}]",
	         field);
	rs = nf_rules_parse(text, strlen(text), "test.json", err, sizeof err);
	assert_null(rs);
	snprintf(msg, sizeof msg, "test.json: rule 1: origin.min: longer than %d bytes",
	         NF_VERSION_MAX);
	assert_string_equal(err, msg);
}

/* NF_MAX_MACS entries in one rule's mac array, and NF_MAX_RULES rules. */
static void test_count_limits(void **state)
{
	(void)state;
	size_t cap = (size_t)(NF_MAX_MACS + 1) * 22 + 256;
	char *text = malloc(cap);
	char err[512];
	struct nf_rules *rs;
	size_t n;

	assert_non_null(text);
	for (int macs = NF_MAX_MACS; macs <= NF_MAX_MACS + 1; macs++) {
		n = (size_t)snprintf(text, cap, "[{\"origin\":{\"device\":\"A\",\"mac\":[");
		for (int i = 0; i < macs; i++)
			n += (size_t)snprintf(text + n, cap - n, "%s\"5C:CF:7F:00:%02X:%02X\"",
			                      i ? "," : "", (i >> 8) & 0xff, i & 0xff);
		snprintf(text + n, cap - n, "]},\"target\":{\"version\":\"1\",\"firmware\":\"/a\"}}]");
		rs = nf_rules_parse(text, strlen(text), "test.json", err, sizeof err);
		if (macs == NF_MAX_MACS) {
			assert_non_null(rs);
			assert_int_equal(match(rs, "A", "1", "5C:CF:7F:00:0F:FF", ""), 0);
			assert_int_equal(match(rs, "A", "1", "5C:CF:7F:00:10:00", ""), -1);
			nf_rules_free(rs);
		} else {
			assert_null(rs);
			assert_string_equal(err, "test.json: rule 1: origin.mac: more than 4096 entries");
		}
	}
	free(text);

	/* One rule too many is refused before any rule is looked at. */
	cap = (size_t)(NF_MAX_RULES + 1) * 3 + 8;
	text = malloc(cap);
	assert_non_null(text);
	text[0] = '[';
	n = 1;
	for (int i = 0; i <= NF_MAX_RULES; i++) {
		memcpy(text + n, i ? ",{}" : "{}", i ? 3 : 2);
		n += i ? 3 : 2;
	}
	text[n++] = ']';
	rs = nf_rules_parse(text, n, "test.json", err, sizeof err);
	assert_null(rs);
	assert_string_equal(err, "test.json: more than 100000 rules");
	free(text);
}

/* Validation must not depend on where "*" sits in a mac array. */
static void test_mac_array_validated_past_star(void **state)
{
	(void)state;
	/* Regression (was a bug): compile_macs() returned as soon as it met "*", so the
	 * entries after it were never checked: ["*", 7] was accepted while [7, "*"] and
	 * ["5C:CF:7F:8B:6B:26", 7] were refused. Since legacy files load, an entry that
	 * is not a string is left out with a warning (no MAC equals it), on either side
	 * of "*"; "*" still means any MAC, with its own warning. */
	static const char *const files[] = {
	    "[{'origin':{'device':'A','mac':['*',7]},'target':{'version':'1'}}]",
	    "[{'origin':{'device':'A','mac':[7,'*']},'target':{'version':'1'}}]",
	};
	static const char *const logs[] = {
	    WARN(1) "origin.mac[0] is \"*\": any MAC passes, where the original NoFUSS server "
	            "matched no device with \"*\" in a list; write \"mac\": \"*\" for any MAC, "
	            "or remove \"*\"\n"
	    WARN(1) "origin.mac[1] is not a string: left out, as no device's MAC equals it "
	            "(nofussd compares strings exactly); write the MAC in quotes\n" NO_IMAGE(1),
	    WARN(1) "origin.mac[0] is not a string: left out, as no device's MAC equals it "
	            "(nofussd compares strings exactly); write the MAC in quotes\n"
	    WARN(1) "origin.mac[1] is \"*\": any MAC passes, where the original NoFUSS server "
	            "matched no device with \"*\" in a list; write \"mac\": \"*\" for any MAC, "
	            "or remove \"*\"\n" NO_IMAGE(1),
	};

	for (size_t i = 0; i < 2; i++) {
		char *log;
		struct nf_rules *rs = parse_logged(files[i], &log);

		assert_string_equal(log, logs[i]);
		assert_int_equal(match(rs, "A", "1", "5C:CF:7F:8B:6B:26", ""), 0);
		assert_int_equal(match(rs, "A", "1", "7", ""), 0);
		assert_int_equal(match_path(rs, "A", "1"), 0);
		assert_string_equal(answer(rs, 0), "{\"version\":\"1\",\"spiffs\":\"\"}");
		nf_rules_free(rs);
		free(log);
	}
}

/* Warnings only: unknown rule keys, odd MACs, missing images. */
static void test_warnings_do_not_refuse(void **state)
{
	(void)state;
	nf_log_set_level(NF_LOG_ERROR);
	struct nf_rules *rs = parse_ok("["
	    "{'comment':'x','origin':{'device':'A','mac':'5c:cf:7f:8b:6b:26'},"
	    " 'target':{'version':'1','firmware':'/missing.bin'}}"
	    "]");

	assert_int_equal(nf_rules_count(rs), 1);
	assert_int_equal(match(rs, "A", "1", "5c:cf:7f:8b:6b:26", "1"), 0);
	assert_int_equal(match(rs, "A", "1", "5C:CF:7F:8B:6B:26", "1"), -1);
	nf_rules_free(rs);
	nf_log_set_level(NF_LOG_INFO);
}

/* A value the device core's flat answer parser refuses is served as written,
 * with a warning that names the clients that will refuse the answer. */
static void test_nested_target_value_warns(void **state)
{
	(void)state;
	char *log = NULL;
	struct nf_rules *rs = parse_logged("[{'origin':{'device':'A'},'target':{'version':'1',"
	                                   "'firmware':'/f.bin','meta':{'a':1},'files':[1]}}]",
	                                   &log);

	assert_string_equal(log,
	    "nofussd: warning: test.json: rule 1: target.meta is an object: libnofuss devices "
	    "(the nofuss ESP8266 library, nofuss device and fleet) refuse the whole answer as "
	    "PARSE_ERROR; the original NoFUSS client reads it; write a string, a number, true, "
	    "false or null\n"
	    "nofussd: warning: test.json: rule 1: target.files is a list: libnofuss devices "
	    "(the nofuss ESP8266 library, nofuss device and fleet) refuse the whole answer as "
	    "PARSE_ERROR; the original NoFUSS client reads it; write a string, a number, true, "
	    "false or null\n");
	assert_string_equal(nf_rules_target(rs, 0)->body,
	                    "{\"version\":\"1\",\"firmware\":\"/f.bin\",\"meta\":{\"a\":1},"
	                    "\"files\":[1],\"spiffs\":\"\"}");
	free(log);
	nf_rules_free(rs);
}

/* Legacy files ------------------------------------------------------------------ */

/* What the original NoFUSS server answered loads, with a warning for each loose
 * pattern, and answers as the original did (but for the documented deviations:
 * max inclusive, "device": "*" for any device, strings compared exactly). Each
 * file is checked for exactly what loading prints and exactly what each check
 * gets; files 1 and 2 are the original servers' own sample files. */

#define MAC "5C:CF:7F:8B:6B:26"
#define BODY1 "{\"version\":\"1\",\"spiffs\":\"\"}"
#define BODY_FW(v) "{\"version\":\"" v "\",\"firmware\":\"/" v "\",\"spiffs\":\"\"}"
#define NOT_A_STRING(n, key, advice) \
	WARN(n) "target." key " is not a string: sent as it is" AS_ORIGINAL advice "\n"
#define MAC_LEFT_OUT(n, i) \
	WARN(n) "origin.mac[" #i "] is not a string: left out, as no device's MAC equals it " \
	        "(nofussd compares strings exactly); write the MAC in quotes\n"
#define UNKNOWN_KEY(n, key) \
	WARN(n) "origin." key ": unknown key ignored, as in the original NoFUSS server, so it " \
	        "restricts nothing; check its spelling (keys: device, mac, min, max, gt, ge, lt, " \
	        "le, eq, build_not)\n"
#define EMPTY_ABOVE(n, key) \
	WARN(n) "origin." key " is \"\": any version passes" AS_ORIGINAL "remove it\n"
#define EMPTY_BELOW(n, key) \
	WARN(n) "origin." key " is \"\": the rule never matches" AS_ORIGINAL \
	        "give a version, or remove the rule\n"
#define EMPTY_TARGET(n) \
	WARN(n) "target is {}: the rule answers {} (no update), and the rules after it are not " \
	        "tried for the checks it matches; the original NoFUSS server sent [], which " \
	        "NoFUSS clients reject; remove the rule, or give the target a version and an " \
	        "image\n"
#define EMPTY_RANGE(n, low, high) \
	WARN(n) "origin: no version is both " low " and " high ", so the rule never matches; " \
	        "check its bounds\n"
/* Answers of the original servers' sample files, and of file 8. */
#define BODY_011 "{\"version\":\"0.1.1\",\"firmware\":\"/firmware/test-0.1.1.bin\",\"spiffs\":\"\"}"
#define BODY_010 "{\"version\":\"0.1.0\",\"firmware\":\"/firmware/test-0.1.0.bin\",\"spiffs\":\"\"}"
#define BODY_A11 "{\"version\":\"1.1\",\"firmware\":\"/a\",\"spiffs\":\"\"}"
#define BUILD_NOT_ANY "any build passes, and path-form checks too)" AS_ORIGINAL \
	"remove it, or give the build to exclude\n"

struct legacy_check {
	const char *device, *version;
	const char *mac;    /* NULL: a path-form check, which has no MAC and no build */
	const char *build;  /* NULL: no build header */
	int rule;           /* the rule that answers, from 1; 0 for none */
	const char *answer; /* the exact body */
	const char *update; /* the check log's update field (the target's version), or NULL */
};

struct legacy_file {
	const char *json;     /* single-quoted */
	const char *warnings; /* exactly what loading prints; "" when it must not warn */
	struct legacy_check checks[9]; /* ended by one with no device */
};

static const struct legacy_file legacy[] = {
	/* 1: the sample the original (header-form) server shipped in data/, unchanged.
	 * Its first rule never matched there (max was exclusive); max is inclusive here. */
	{"[\n"
	 "    {\n"
	 "        'origin': {\n"
	 "            'mac': '5C:CF:7F:8C:1E:6F',\n"
	 "            'device': 'TEST',\n"
	 "            'min': '0.1.0',\n"
	 "            'max': '0.1.0'\n"
	 "        },\n"
	 "        'target': {\n"
	 "            'version': '0.1.1',\n"
	 "            'firmware': '/firmware/test-0.1.1.bin',\n"
	 "            'spiffs': ''\n"
	 "        }\n"
	 "    },\n"
	 "    {\n"
	 "        'origin': {\n"
	 "            'mac': [\n"
	 "                '5C:CF:7F:8C:1E:6F', '5C:CF:7F:8C:1E:6E'\n"
	 "            ],\n"
	 "            'device': 'TEST',\n"
	 "            'min': '*',\n"
	 "            'max': '0.0.9'\n"
	 "        },\n"
	 "        'target': {\n"
	 "            'version': '0.1.0',\n"
	 "            'firmware': '/firmware/test-0.1.0.bin',\n"
	 "            'spiffs': ''\n"
	 "        }\n"
	 "    }\n"
	 "]\n",
	 "",
	 {{"TEST", "0.1.0", "5C:CF:7F:8C:1E:6F", "", 1, BODY_011, "0.1.1"},
	  {"TEST", "0.0.9", "5C:CF:7F:8C:1E:6E", "1559606400", 2, BODY_010, "0.1.0"},
	  {"TEST", "0.0.9", "5C:CF:7F:8C:1E:6F", NULL, 2, BODY_010, "0.1.0"},
	  {"TEST", "0.0.9", MAC, "", 0, "{}", NULL},
	  {"TEST", "0.1.1", "5C:CF:7F:8C:1E:6F", "", 0, "{}", NULL},
	  {"TEST", "0.0.9", NULL, NULL, 0, "{}", NULL}}},
	/* 2: the sample of the first, path-form server, unchanged. */
	{"[\n"
	 "    {\n"
	 "        'origin': {\n"
	 "            'device': 'TEST',\n"
	 "            'min': '*',\n"
	 "            'max': '0.1.0'\n"
	 "        },\n"
	 "        'target': {\n"
	 "            'version': '0.1.1',\n"
	 "            'firmware': '/firmware/test-0.1.1.bin',\n"
	 "            'spiffs': ''\n"
	 "        }\n"
	 "    }\n"
	 "]\n",
	 "",
	 {{"TEST", "0.1.0", NULL, NULL, 1, BODY_011, "0.1.1"},
	  {"TEST", "0.0.1", NULL, NULL, 1, BODY_011, "0.1.1"},
	  {"TEST", "0.1.0", MAC, "", 1, BODY_011, "0.1.1"},
	  {"TEST", "0.1.1", NULL, NULL, 0, "{}", NULL},
	  {"OTHER", "0.1.0", NULL, NULL, 0, "{}", NULL}}},
	/* 3: "" as a version: PHP's version_compare() puts "" below every version,
	 * so min, gt and ge always hold and max, lt, le and eq never do. */
	{"[{'origin':{'device':'MIN','min':''},'target':{'version':'1','firmware':'/1'}},"
	 " {'origin':{'device':'GT','gt':''},'target':{'version':'2','firmware':'/2'}},"
	 " {'origin':{'device':'GE','ge':''},'target':{'version':'3','firmware':'/3'}},"
	 " {'origin':{'device':'MAX','max':''},'target':{'version':'4','firmware':'/4'}},"
	 " {'origin':{'device':'LT','lt':''},'target':{'version':'5','firmware':'/5'}},"
	 " {'origin':{'device':'LE','le':''},'target':{'version':'6','firmware':'/6'}},"
	 " {'origin':{'device':'EQ','eq':''},'target':{'version':'7','firmware':'/7'}}]",
	 EMPTY_ABOVE(1, "min") EMPTY_ABOVE(2, "gt") EMPTY_ABOVE(3, "ge") EMPTY_BELOW(4, "max")
	 EMPTY_BELOW(5, "lt") EMPTY_BELOW(6, "le") EMPTY_BELOW(7, "eq"),
	 {{"MIN", "0", NULL, NULL, 1, BODY_FW("1"), "1"},
	  {"GT", "0.0.1", MAC, "1", 2, BODY_FW("2"), "2"},
	  {"GE", "99", NULL, NULL, 3, BODY_FW("3"), "3"},
	  {"MAX", "0", NULL, NULL, 0, "{}", NULL},
	  {"MAX", "0", MAC, "1", 0, "{}", NULL},
	  {"LT", "0", NULL, NULL, 0, "{}", NULL},
	  {"LE", "0", MAC, "", 0, "{}", NULL},
	  {"EQ", "1", NULL, NULL, 0, "{}", NULL}}},
	/* 4: a target without version is answered as it is (was refused). */
	{"[{'origin':{'device':'A'},'target':{'firmware':'/a.bin'}}]",
	 WARN(1) "target has no version: answered as it is, as in the original NoFUSS server, "
	         "with an empty update: in the check log; add the version it offers\n",
	 {{"A", "1", NULL, NULL, 1, "{\"firmware\":\"/a.bin\",\"spiffs\":\"\"}", ""},
	  {"A", "1", MAC, "", 1, "{\"firmware\":\"/a.bin\",\"spiffs\":\"\"}", ""}}},
	/* 5: so is one whose version is "" (was refused). */
	{"[{'origin':{'device':'A'},'target':{'version':''}}]",
	 WARN(1) "target.version is \"\": answered as it is, as in the original NoFUSS server, "
	         "with an empty update: in the check log; give the version it offers\n" NO_IMAGE(1),
	 {{"A", "1", NULL, NULL, 1, "{\"version\":\"\",\"spiffs\":\"\"}", ""}}},
	/* 6, 7: "mac": [] (and {}) never matches (was refused). */
	{"[{'origin':{'device':'A','mac':[]},'target':{'version':'1'}}]",
	 WARN(1) "origin.mac is []: the rule never matches" AS_ORIGINAL
	         "list MACs, write \"*\" for any MAC, or remove the rule\n" NO_IMAGE(1),
	 {{"A", "1", MAC, "1", 0, "{}", NULL},
	  {"A", "1", NULL, NULL, 0, "{}", NULL}}},
	{"[{'origin':{'device':'A','mac':{}},'target':{'version':'1'}}]",
	 WARN(1) "origin.mac is {}: the rule never matches" AS_ORIGINAL
	         "list MACs, write \"*\" for any MAC, or remove the rule\n" NO_IMAGE(1),
	 {{"A", "1", MAC, "1", 0, "{}", NULL}}},
	/* 8: "build_not": "*" is skipped like "*" anywhere (it was the literal build "*"). */
	{"[{'origin':{'device':'A','build_not':'*','max':'1.0'},"
	 "  'target':{'version':'1.1','firmware':'/a'}}]",
	 WARN(1) "origin.build_not is \"*\": any build passes, and path-form checks too" AS_ORIGINAL
	         "remove it, or give the build to exclude\n",
	 {{"A", "1.0", MAC, "1", 1, BODY_A11, "1.1"},
	  {"A", "1.0", MAC, "", 1, BODY_A11, "1.1"},
	  {"A", "1.0", MAC, NULL, 1, BODY_A11, "1.1"},
	  {"A", "1.0", MAC, "*", 1, BODY_A11, "1.1"},
	  {"A", "1.0", NULL, NULL, 1, BODY_A11, "1.1"},
	  {"A", "1.1", NULL, NULL, 0, "{}", NULL}}},
	/* 9, 10: unknown origin keys are ignored (were refused). */
	{"[{'origin':{'device':'A','maximum':'1'},'target':{'version':'1'}}]",
	 UNKNOWN_KEY(1, "maximum") NO_IMAGE(1),
	 {{"A", "5", NULL, NULL, 1, BODY1, "1"},
	  {"A", "5", MAC, "1", 1, BODY1, "1"}}},
	{"[{'origin':{'device':'A','Device':'A'},'target':{'version':'1'}}]",
	 UNKNOWN_KEY(1, "Device") NO_IMAGE(1),
	 {{"A", "5", NULL, NULL, 1, BODY1, "1"},
	  {"B", "5", NULL, NULL, 0, "{}", NULL}}},
	/* 11-13: version operators that are a number, "" and null (were refused). */
	{"[{'origin':{'device':'A','min':1},'target':{'version':'1'}}]",
	 WARN(1) "origin.min is a number: read as \"1\" (compared as that version)" AS_ORIGINAL
	         "write the version in quotes\n" NO_IMAGE(1),
	 {{"A", "1", NULL, NULL, 1, BODY1, "1"},
	  {"A", "1.0", NULL, NULL, 1, BODY1, "1"},
	  {"A", "0.9", NULL, NULL, 0, "{}", NULL}}},
	{"[{'origin':{'device':'A','max':''},'target':{'version':'1'}}]",
	 EMPTY_BELOW(1, "max") NO_IMAGE(1),
	 {{"A", "1", NULL, NULL, 0, "{}", NULL},
	  {"A", "0", MAC, "1", 0, "{}", NULL}}},
	{"[{'origin':{'device':'A','eq':null},'target':{'version':'1'}}]",
	 WARN(1) "origin.eq is null: ignored (any version passes)" AS_ORIGINAL "remove it\n"
	 NO_IMAGE(1),
	 {{"A", "7", NULL, NULL, 1, BODY1, "1"}}},
	/* 14: build_not a number: its text, compared exactly (was refused). */
	{"[{'origin':{'device':'A','build_not':1},'target':{'version':'1'}}]",
	 WARN(1) "origin.build_not is a number: read as \"1\" (that build is excluded)" AS_ORIGINAL
	         "write the build in quotes\n" NO_IMAGE(1),
	 {{"A", "1", MAC, "1", 0, "{}", NULL},
	  {"A", "1", MAC, "2", 1, BODY1, "1"},
	  {"A", "1", MAC, "", 0, "{}", NULL},
	  {"A", "1", NULL, NULL, 0, "{}", NULL}}},
	/* 15-18: mac a number, null, a list with entries that are not strings (were refused). */
	{"[{'origin':{'device':'A','mac':5},'target':{'version':'1'}}]",
	 WARN(1) "origin.mac is a number: read as \"5\", which no device's MAC equals (nofussd "
	         "compares strings exactly), so the rule never matches; write the MAC in quotes\n"
	 NO_IMAGE(1),
	 {{"A", "1", MAC, "1", 0, "{}", NULL},
	  {"A", "1", "5", "1", 0, "{}", NULL}}},
	{"[{'origin':{'device':'A','mac':null},'target':{'version':'1'}}]",
	 WARN(1) "origin.mac is null: ignored (any MAC passes)" AS_ORIGINAL "remove it\n"
	 NO_IMAGE(1),
	 {{"A", "1", MAC, "1", 1, BODY1, "1"},
	  {"A", "1", NULL, NULL, 1, BODY1, "1"}}},
	{"[{'origin':{'device':'A','mac':['5C:CF:7F:8B:6B:26',7]},'target':{'version':'1'}}]",
	 MAC_LEFT_OUT(1, 1) NO_IMAGE(1),
	 {{"A", "1", MAC, "1", 1, BODY1, "1"},
	  {"A", "1", "5C:CF:7F:8B:6B:27", "1", 0, "{}", NULL},
	  {"A", "1", NULL, NULL, 0, "{}", NULL}}},
	{"[{'origin':{'device':'A','mac':[['5C:CF:7F:8B:6B:26']]},'target':{'version':'1'}}]",
	 MAC_LEFT_OUT(1, 0) NO_IMAGE(1),
	 {{"A", "1", MAC, "1", 0, "{}", NULL}}},
	/* 19, 20: an empty target answers {} and ends the search (was refused). */
	{"[{'origin':{'device':'A'},'target':{}}]",
	 EMPTY_TARGET(1),
	 {{"A", "1", NULL, NULL, 1, "{}", NULL},
	  {"A", "1", MAC, "1", 1, "{}", NULL}}},
	{"[{'origin':{'device':'A','max':'1.0'},'target':{}},"
	 " {'origin':{'device':'*'},'target':{'version':'2','firmware':'/2'}}]",
	 EMPTY_TARGET(1),
	 {{"A", "1.0", NULL, NULL, 1, "{}", NULL},
	  {"A", "1.1", NULL, NULL, 2, BODY_FW("2"), "2"},
	  {"B", "1.0", NULL, NULL, 2, BODY_FW("2"), "2"}}},
	/* 21-25: target values that are not strings are sent as they are (were refused). */
	{"[{'origin':{'device':'A'},'target':{'version':1}}]",
	 NOT_A_STRING(1, "version", "write the version in quotes") NO_IMAGE(1),
	 {{"A", "1", NULL, NULL, 1, "{\"version\":1,\"spiffs\":\"\"}", "1"}}},
	{"[{'origin':{'device':'A'},'target':{'version':'1','firmware':5}}]",
	 NOT_A_STRING(1, "firmware", "write the path in quotes") NO_IMAGE(1),
	 {{"A", "1", NULL, NULL, 1, "{\"version\":\"1\",\"firmware\":5,\"spiffs\":\"\"}", "1"}}},
	{"[{'origin':{'device':'A'},'target':{'version':'1','firmware':null}}]",
	 NOT_A_STRING(1, "firmware", "write the path in quotes") NO_IMAGE(1),
	 {{"A", "1", NULL, NULL, 1, "{\"version\":\"1\",\"firmware\":null,\"spiffs\":\"\"}", "1"}}},
	{"[{'origin':{'device':'A'},'target':{'version':'1','firmware':'/a','spiffs':null}}]",
	 NOT_A_STRING(1, "spiffs", "write the path in quotes, or \"\" for none"),
	 {{"A", "1", NULL, NULL, 1, "{\"version\":\"1\",\"firmware\":\"/a\",\"spiffs\":null}",
	   "1"}}},
	{"[{'origin':{'device':'A'},'target':{'version':'1','firmware':'/a','spiffs':false}}]",
	 NOT_A_STRING(1, "spiffs", "write the path in quotes, or \"\" for none"),
	 {{"A", "1", NULL, NULL, 1, "{\"version\":\"1\",\"firmware\":\"/a\",\"spiffs\":false}",
	   "1"}}},
	/* 26: the warning names the rule it is about (this was a refusal of rule 3). */
	{"[{'origin':{'device':'A'},'target':{'version':'1','firmware':'/a'}},"
	 " {'origin':{'device':'B'},'target':{'version':'1','firmware':'/a'}},"
	 " {'origin':{'device':'C'},'target':{'version':'1','firmware':{}}}]",
	 NOT_A_STRING(3, "firmware", "write the path in quotes") NO_IMAGE(3),
	 {{"C", "1", NULL, NULL, 3, "{\"version\":\"1\",\"firmware\":{},\"spiffs\":\"\"}", "1"},
	  {"A", "1", NULL, NULL, 1, "{\"version\":\"1\",\"firmware\":\"/a\",\"spiffs\":\"\"}",
	   "1"}}},
	/* 27: more target values, and the check log's text for them (PHP's). */
	{"[{'origin':{'device':'A'},'target':{'version':1.5,'firmware':5,'spiffs':null}},"
	 " {'origin':{'device':'B'},'target':{'version':true,'firmware':'/b'}},"
	 " {'origin':{'device':'C'},'target':{'version':2.0,'firmware':'/c','size':1024}}]",
	 NOT_A_STRING(1, "version", "write the version in quotes")
	 NOT_A_STRING(1, "firmware", "write the path in quotes")
	 NOT_A_STRING(1, "spiffs", "write the path in quotes, or \"\" for none") NO_IMAGE(1)
	 NOT_A_STRING(2, "version", "write the version in quotes")
	 NOT_A_STRING(3, "version", "write the version in quotes"),
	 {{"A", "1", NULL, NULL, 1, "{\"version\":1.5,\"firmware\":5,\"spiffs\":null}", "1.5"},
	  {"B", "1", NULL, NULL, 2, "{\"version\":true,\"firmware\":\"/b\",\"spiffs\":\"\"}", "1"},
	  {"C", "1", MAC, "", 3,
	   "{\"version\":2.0,\"firmware\":\"/c\",\"size\":1024,\"spiffs\":\"\"}", "2"}}},
	/* 28: null everywhere is an absent key (PHP's isset()). */
	{"[{'origin':{'device':'A','min':null,'max':null,'mac':null,'build_not':null},"
	 "  'target':{'version':'1','firmware':'/1'}}]",
	 WARN(1) "origin.min is null: ignored (any version passes)" AS_ORIGINAL "remove it\n"
	 WARN(1) "origin.max is null: ignored (any version passes)" AS_ORIGINAL "remove it\n"
	 WARN(1) "origin.build_not is null: ignored (" BUILD_NOT_ANY
	 WARN(1) "origin.mac is null: ignored (any MAC passes)" AS_ORIGINAL "remove it\n",
	 {{"A", "9", NULL, NULL, 1, BODY_FW("1"), "1"},
	  {"A", "0", MAC, "", 1, BODY_FW("1"), "1"}}},
	/* 29: true is "*" (PHP's loose true != "*" is false). */
	{"[{'origin':{'device':'A','eq':true,'mac':true,'build_not':true},"
	 "  'target':{'version':'1','firmware':'/1'}}]",
	 WARN(1) "origin.eq is true: read as \"*\" (any version passes)" AS_ORIGINAL
	         "write \"*\" or remove it\n"
	 WARN(1) "origin.build_not is true: read as \"*\" (" BUILD_NOT_ANY
	 WARN(1) "origin.mac is true: read as \"*\" (any MAC passes)" AS_ORIGINAL
	         "write \"*\" or remove it\n",
	 {{"A", "3", NULL, NULL, 1, BODY_FW("1"), "1"},
	  {"A", "3", MAC, "", 1, BODY_FW("1"), "1"}}},
	/* 30: numbers read as PHP 7 read them: 1.0 as "1", 0.50 as "0.5", 0 as "*". */
	{"[{'origin':{'device':'A','min':1.0,'max':10},'target':{'version':'1','firmware':'/1'}},"
	 " {'origin':{'device':'B','lt':0,'le':0.50},'target':{'version':'2','firmware':'/2'}},"
	 " {'origin':{'device':'C','build_not':1559606400,'mac':0},"
	 "  'target':{'version':'3','firmware':'/3'}}]",
	 WARN(1) "origin.min is a number: read as \"1\" (compared as that version)" AS_ORIGINAL
	         "write the version in quotes\n"
	 WARN(1) "origin.max is a number: read as \"10\" (compared as that version)" AS_ORIGINAL
	         "write the version in quotes\n"
	 WARN(2) "origin.lt is the number 0: read as \"*\" (any version passes)" AS_ORIGINAL
	         "write \"*\", or \"0\" in quotes\n"
	 WARN(2) "origin.le is a number: read as \"0.5\" (compared as that version)" AS_ORIGINAL
	         "write the version in quotes\n"
	 WARN(3) "origin.build_not is a number: read as \"1559606400\" (that build is excluded)"
	         AS_ORIGINAL "write the build in quotes\n"
	 WARN(3) "origin.mac is the number 0: read as \"*\" (any MAC passes)" AS_ORIGINAL
	         "write \"*\" or remove it\n",
	 {{"A", "1", NULL, NULL, 1, BODY_FW("1"), "1"},
	  {"A", "0.9", NULL, NULL, 0, "{}", NULL},
	  {"A", "10", NULL, NULL, 1, BODY_FW("1"), "1"},
	  {"A", "10.0", NULL, NULL, 0, "{}", NULL},
	  {"B", "0.5", NULL, NULL, 2, BODY_FW("2"), "2"},
	  {"B", "0.6", NULL, NULL, 0, "{}", NULL},
	  {"C", "1", MAC, "1559606400", 0, "{}", NULL},
	  {"C", "1", MAC, "1559606401", 3, BODY_FW("3"), "3"}}},
	/* 31: PHP's text for numbers in exponent form: "1.0E+25", "1.5E-7". */
	{"[{'origin':{'device':'A','gt':1e25},'target':{'version':'1','firmware':'/1'}},"
	 " {'origin':{'device':'B','eq':1.5e-7},'target':{'version':'2','firmware':'/2'}}]",
	 WARN(1) "origin.gt is a number: read as \"1.0E+25\" (compared as that version)" AS_ORIGINAL
	         "write the version in quotes\n"
	 WARN(2) "origin.eq is a number: read as \"1.5E-7\" (compared as that version)" AS_ORIGINAL
	         "write the version in quotes\n",
	 {{"A", "2", NULL, NULL, 1, BODY_FW("1"), "1"},
	  {"A", "0.9", NULL, NULL, 0, "{}", NULL},
	  {"B", "1.5E-7", NULL, NULL, 2, BODY_FW("2"), "2"},
	  {"B", "1.5e-7", NULL, NULL, 2, BODY_FW("2"), "2"},
	  {"B", "1.5", NULL, NULL, 0, "{}", NULL}}},
	/* 32: false is "": min holds, max never; build_not needs a build; mac never. */
	{"[{'origin':{'device':'A','min':false},'target':{'version':'1','firmware':'/1'}},"
	 " {'origin':{'device':'B','max':false},'target':{'version':'2','firmware':'/2'}},"
	 " {'origin':{'device':'C','build_not':false},'target':{'version':'3','firmware':'/3'}},"
	 " {'origin':{'device':'D','mac':false},'target':{'version':'4','firmware':'/4'}}]",
	 WARN(1) "origin.min is false: read as \"\" (any version passes)" AS_ORIGINAL "remove it\n"
	 WARN(2) "origin.max is false: read as \"\" (the rule never matches)" AS_ORIGINAL
	         "give a version, or remove the rule\n"
	 WARN(3) "origin.build_not is false: read as \"\" (any non-empty build passes)" AS_ORIGINAL
	         "write the build to exclude in quotes\n"
	 WARN(4) "origin.mac is false: read as \"\" (the rule never matches)" AS_ORIGINAL
	         "list MACs in quotes, or remove the rule\n",
	 {{"A", "1", NULL, NULL, 1, BODY_FW("1"), "1"},
	  {"B", "1", NULL, NULL, 0, "{}", NULL},
	  {"C", "1", MAC, "0", 3, BODY_FW("3"), "3"},
	  {"C", "1", MAC, "", 0, "{}", NULL},
	  {"D", "1", MAC, "1", 0, "{}", NULL}}},
	/* 33: an object's values are its MACs (PHP's in_array()); entries that are not
	 * strings never equal a MAC here; "*" in a list still means any MAC. */
	{"[{'origin':{'device':'A','mac':{'x':'5C:CF:7F:8B:6B:26','y':'5C:CF:7F:8B:6B:27'}},"
	 "  'target':{'version':'1','firmware':'/1'}},"
	 " {'origin':{'device':'B','mac':['5C:CF:7F:8B:6B:26',7,null,['x'],true]},"
	 "  'target':{'version':'2','firmware':'/2'}},"
	 " {'origin':{'device':'C','mac':['*',7]},'target':{'version':'3','firmware':'/3'}}]",
	 WARN(1) "origin.mac is an object: its values are the MACs" AS_ORIGINAL
	         "write them as a list\n"
	 MAC_LEFT_OUT(2, 1) MAC_LEFT_OUT(2, 2) MAC_LEFT_OUT(2, 3) MAC_LEFT_OUT(2, 4)
	 WARN(3) "origin.mac[0] is \"*\": any MAC passes, where the original NoFUSS server "
	         "matched no device with \"*\" in a list; write \"mac\": \"*\" for any MAC, or "
	         "remove \"*\"\n"
	 MAC_LEFT_OUT(3, 1),
	 {{"A", "1", MAC, "", 1, BODY_FW("1"), "1"},
	  {"A", "1", "5C:CF:7F:8B:6B:27", "", 1, BODY_FW("1"), "1"},
	  {"A", "1", "5C:CF:7F:8B:6B:28", "", 0, "{}", NULL},
	  {"B", "1", MAC, "", 2, BODY_FW("2"), "2"},
	  {"B", "1", "AA:BB:CC:DD:EE:FF", "", 0, "{}", NULL},
	  {"C", "1", "AA:BB:CC:DD:EE:FF", "", 3, BODY_FW("3"), "3"},
	  {"C", "1", NULL, NULL, 3, BODY_FW("3"), "3"}}},
	/* 34: build_not a list equals no build: any non-empty build passes. */
	{"[{'origin':{'device':'A','build_not':['1']},'target':{'version':'1','firmware':'/1'}}]",
	 WARN(1) "origin.build_not is a list: any non-empty build passes" AS_ORIGINAL
	         "write the build to exclude in quotes\n",
	 {{"A", "1", MAC, "1", 1, BODY_FW("1"), "1"},
	  {"A", "1", MAC, "", 0, "{}", NULL},
	  {"A", "1", NULL, NULL, 0, "{}", NULL}}},
	/* 35: "" for build_not and mac already meant what the original made of them. */
	{"[{'origin':{'device':'A','build_not':''},'target':{'version':'1','firmware':'/1'}},"
	 " {'origin':{'device':'B','mac':''},'target':{'version':'2','firmware':'/2'}}]",
	 WARN(2) "origin.mac \"\" is not upper-case XX:XX:XX:XX:XX:XX and will never match a "
	         "device\n",
	 {{"A", "1", MAC, "x", 1, BODY_FW("1"), "1"},
	  {"A", "1", MAC, "", 0, "{}", NULL},
	  {"B", "1", MAC, "x", 0, "{}", NULL}}},
	/* 36: a file as an import tool and years of hand edits leave it. */
	{"[{'origin':{'device':'ESPURNA_SONOFF_BASIC','mac':'*','min':'','max':'1.13.5',"
	 "             'build_not':'*','comment':'all basics'},"
	 "  'target':{'version':'1.13.6','firmware':'/firmware/espurna-1.13.6.bin',"
	 "            'device':'ESPURNA_SONOFF_BASIC','size':491520}},"
	 " {'origin':{'device':'ESPURNA_H801','mac':[]},"
	 "  'target':{'firmware':'/firmware/h801.bin'}},"
	 " {'origin':{'device':'ESPURNA_H801','lt':'2.0'},"
	 "  'target':{'version':'2.0','firmware':'/firmware/h801-2.0.bin','spiffs':''}}]",
	 UNKNOWN_KEY(1, "comment") EMPTY_ABOVE(1, "min")
	 WARN(1) "origin.build_not is \"*\": any build passes, and path-form checks too" AS_ORIGINAL
	         "remove it, or give the build to exclude\n"
	 WARN(2) "origin.mac is []: the rule never matches" AS_ORIGINAL
	         "list MACs, write \"*\" for any MAC, or remove the rule\n"
	 WARN(2) "target has no version: answered as it is, as in the original NoFUSS server, "
	         "with an empty update: in the check log; add the version it offers\n",
	 {{"ESPURNA_SONOFF_BASIC", "1.13.5", MAC, "1559606400", 1,
	   "{\"version\":\"1.13.6\",\"firmware\":\"/firmware/espurna-1.13.6.bin\","
	   "\"device\":\"ESPURNA_SONOFF_BASIC\",\"size\":491520,\"spiffs\":\"\"}", "1.13.6"},
	  {"ESPURNA_SONOFF_BASIC", "1.0", NULL, NULL, 1,
	   "{\"version\":\"1.13.6\",\"firmware\":\"/firmware/espurna-1.13.6.bin\","
	   "\"device\":\"ESPURNA_SONOFF_BASIC\",\"size\":491520,\"spiffs\":\"\"}", "1.13.6"},
	  {"ESPURNA_SONOFF_BASIC", "1.13.6", MAC, "", 0, "{}", NULL},
	  {"ESPURNA_H801", "1.0", MAC, "", 3,
	   "{\"version\":\"2.0\",\"firmware\":\"/firmware/h801-2.0.bin\",\"spiffs\":\"\"}", "2.0"},
	  {"ESPURNA_H801", "2.0", NULL, NULL, 0, "{}", NULL}}},
	/* Bounds no version passes: served as written (the rule never matches),
	 * with a warning, as a typo most likely; a single version (min = max) and
	 * an open interval between two versions are ranges. */
	{"[{'origin':{'device':'A','min':'2.0','max':'1.0'},'target':{'version':'3','firmware':'/3'}},"
	 " {'origin':{'device':'B','gt':'1.0','lt':'1.0'},'target':{'version':'3','firmware':'/3'}},"
	 " {'origin':{'device':'C','min':'1.0','max':'1.0'},'target':{'version':'3','firmware':'/3'}},"
	 " {'origin':{'device':'D','eq':'3.0','le':'2.0'},'target':{'version':'3','firmware':'/3'}},"
	 " {'origin':{'device':'E','gt':'1.0','lt':'2.0'},'target':{'version':'3','firmware':'/3'}},"
	 " {'origin':{'device':'F','ge':'1.10','max':'1.9'},'target':{'version':'3','firmware':'/3'}}]",
	 EMPTY_RANGE(1, "min \"2.0\"", "max \"1.0\"") EMPTY_RANGE(2, "gt \"1.0\"", "lt \"1.0\"")
	 EMPTY_RANGE(4, "eq \"3.0\"", "le \"2.0\"") EMPTY_RANGE(6, "ge \"1.10\"", "max \"1.9\""),
	 {{"A", "1.5", NULL, NULL, 0, "{}", NULL},
	  {"B", "1.0", NULL, NULL, 0, "{}", NULL},
	  {"C", "1.0", NULL, NULL, 3, BODY_FW("3"), "3"},
	  {"D", "3.0", NULL, NULL, 0, "{}", NULL},
	  {"E", "1.5", NULL, NULL, 5, BODY_FW("3"), "3"},
	  {"F", "1.9", NULL, NULL, 0, "{}", NULL}}},
};

/* One check of a legacy file: the rule, the body and the check log's field. */
static void check_legacy(const struct nf_rules *rs, size_t file, const struct legacy_check *c)
{
	long k = match(rs, c->device, c->version, c->mac, c->build);
	const char *update = k < 0 ? NULL : nf_rules_target(rs, (size_t)k)->version;

	if (k + 1 != c->rule || strcmp(answer(rs, k), c->answer) != 0 ||
	    (update == NULL) != (c->update == NULL) ||
	    (update != NULL && strcmp(update, c->update) != 0))
		fail_msg("legacy file %zu, %s %s %s %s: rule %ld, answer %s, update %s", file + 1,
		         c->device, c->version, c->mac ? c->mac : "(path form)",
		         c->build ? c->build : "(no build)", k + 1, answer(rs, k),
		         update ? update : "(none)");
}

static void test_legacy_files(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof legacy / sizeof legacy[0]; i++) {
		char *log;
		struct nf_rules *rs = parse_logged(legacy[i].json, &log);

		if (strcmp(log, legacy[i].warnings) != 0)
			fail_msg("legacy file %zu logged:\n%sexpected:\n%s", i + 1, log,
			         legacy[i].warnings);
		for (const struct legacy_check *c = legacy[i].checks; c->device != NULL; c++)
			check_legacy(rs, i, c);
		nf_rules_free(rs);
		free(log);
	}
}

/* Index ---------------------------------------------------------------------- */

#define INDEX_DEVICES 10000

/* 10,000 device rules plus "*" rules at the start, middle and end: every
 * device must find its own rule or the right "*" rule. */
static void test_index_many_devices(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	char err[512] = "", dev[32];
	struct nf_rules *rs;
	long wild_first = 0, wild_mid = INDEX_DEVICES / 2 + 1, wild_end = INDEX_DEVICES + 2;

	assert_non_null(f);
	fputs("[{\"origin\":{\"device\":\"*\",\"eq\":\"9.9.9\"},"
	      "\"target\":{\"version\":\"wild-first\",\"firmware\":\"/w0\"}}", f);
	for (int i = 0; i < INDEX_DEVICES; i++) {
		if (i == INDEX_DEVICES / 2)
			fputs(",{\"origin\":{\"device\":\"*\",\"max\":\"0.5\"},"
			      "\"target\":{\"version\":\"wild-mid\",\"firmware\":\"/w1\"}}", f);
		fprintf(f, ",{\"origin\":{\"device\":\"DEV%05d\",\"min\":\"1.0\"},"
		           "\"target\":{\"version\":\"v%d\",\"firmware\":\"/f%d.bin\"}}", i, i, i);
	}
	fputs(",{\"origin\":{\"device\":\"*\"},"
	      "\"target\":{\"version\":\"wild-end\",\"firmware\":\"/w2\"}}]", f);
	assert_int_equal(fclose(f), 0);

	rs = nf_rules_parse(text, len, "big.json", err, sizeof err);
	free(text);
	if (rs == NULL)
		fail_msg("%s", err);
	assert_int_equal(nf_rules_count(rs), INDEX_DEVICES + 3);
	assert_string_equal(nf_rules_target(rs, (size_t)wild_mid)->version, "wild-mid");
	assert_string_equal(nf_rules_target(rs, (size_t)wild_end)->version, "wild-end");

	for (int i = 0; i < INDEX_DEVICES; i++) {
		long own = i < INDEX_DEVICES / 2 ? i + 1 : i + 2;
		char want[32];

		snprintf(dev, sizeof dev, "DEV%05d", i);
		snprintf(want, sizeof want, "v%d", i);
		assert_int_equal(match_path(rs, dev, "1.0"), own);
		assert_string_equal(nf_rules_target(rs, (size_t)own)->version, want);
		assert_int_equal(match_path(rs, dev, "9.9.9"), wild_first);
		assert_int_equal(match_path(rs, dev, "0.1"), wild_mid);
		assert_int_equal(match_path(rs, dev, "0.7"), wild_end);
	}
	/* Unknown devices, including near-misses, only see the "*" rules. */
	assert_int_equal(match_path(rs, "DEV10000", "1.0"), wild_end);
	assert_int_equal(match_path(rs, "DEV0000", "1.0"), wild_end);
	assert_int_equal(match_path(rs, "dev00000", "1.0"), wild_end);
	assert_int_equal(match_path(rs, "DEV000000", "0.1"), wild_mid);
	assert_int_equal(match_path(rs, "", "1.0"), wild_end);
	nf_rules_free(rs);
}

/* Files ------------------------------------------------------------------------ */

static void test_load_file(void **state)
{
	const char *dir = *state;
	char path[256], pub[256], img[300], err[512], want[512];
	struct nf_rules *rs;

	snprintf(path, sizeof path, "%s/versions.json", dir);
	snprintf(pub, sizeof pub, "%s/public", dir);
	assert_int_equal(mkdir(pub, 0755), 0);
	snprintf(img, sizeof img, "%s/a.bin", pub);
	nf_test_write_file(img, "x");
	nf_test_write_file(path, "[\n"
	    "{\"origin\":{\"device\":\"A\",\"max\":\"1.0\"},"
	    "\"target\":{\"version\":\"1.1\",\"firmware\":\"/a.bin\"}}\n"
	    "]\n");

	rs = nf_rules_load(path, err, sizeof err);
	if (rs == NULL)
		fail_msg("%s", err);
	assert_int_equal(nf_rules_count(rs), 1);
	assert_string_equal(answer(rs, match_path(rs, "A", "1.0")),
	                    "{\"version\":\"1.1\",\"firmware\":\"/a.bin\",\"spiffs\":\"\"}");
	nf_rules_free(rs);

	/* A missing image does not refuse the rules (snapshot.c warns about it). */
	nf_log_set_level(NF_LOG_ERROR);
	assert_int_equal(unlink(img), 0);
	rs = nf_rules_load(path, err, sizeof err);
	assert_non_null(rs);
	nf_rules_free(rs);
	nf_log_set_level(NF_LOG_INFO);

	/* Errors name the file given. */
	nf_test_write_file(path, "[\n{\"origin\":{\"device\":\"A\"}}\n]\n");
	rs = nf_rules_load(path, err, sizeof err);
	assert_null(rs);
	snprintf(want, sizeof want, "%s: rule 1: target: missing", path);
	assert_string_equal(err, want);

	nf_test_write_file(path, "[\n{\"origin\":{\"device\":\"A\"},\n\"target\":{\"version\":}}\n]\n");
	rs = nf_rules_load(path, err, sizeof err);
	assert_null(rs);
	snprintf(want, sizeof want, "%s:3:", path);
	assert_memory_equal(err, want, strlen(want));

	/* Missing file, directory. */
	snprintf(path, sizeof path, "%s/missing.json", dir);
	rs = nf_rules_load(path, err, sizeof err);
	assert_null(rs);
	snprintf(want, sizeof want, "%s: %s", path, strerror(ENOENT));
	assert_string_equal(err, want);

	rs = nf_rules_load(pub, err, sizeof err);
	assert_null(rs);
	snprintf(want, sizeof want, "%s: not a regular file", pub);
	assert_string_equal(err, want);

}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_match_wins_in_file_order),
		cmocka_unit_test(test_identical_rules_first_wins),
		cmocka_unit_test(test_no_rules),
		cmocka_unit_test(test_device_exact_and_case_sensitive),
		cmocka_unit_test(test_device_wildcard),
		cmocka_unit_test(test_min_max_inclusive),
		cmocka_unit_test(test_min_max_star_and_missing),
		cmocka_unit_test(test_version_operators),
		cmocka_unit_test(test_mac_forms),
		cmocka_unit_test(test_path_form_query),
		cmocka_unit_test(test_build_not),
		cmocka_unit_test(test_strings_compare_exactly),
		cmocka_unit_test(test_answer_format),
		cmocka_unit_test(test_answer_escaping),
		cmocka_unit_test(test_answer_size_limits),
		cmocka_unit_test(test_json_syntax_error_names_position),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_validation_errors),
		cmocka_unit_test(test_field_length_limits),
		cmocka_unit_test(test_count_limits),
		cmocka_unit_test(test_mac_array_validated_past_star),
		cmocka_unit_test(test_warnings_do_not_refuse),
		cmocka_unit_test(test_nested_target_value_warns),
		cmocka_unit_test(test_legacy_files),
		cmocka_unit_test(test_index_many_devices),
		/* test_load_file's folder, removed after it whether it passed or not. */
		cmocka_unit_test_prestate_setup_teardown(test_load_file, nf_test_tmpdir_setup,
		                                         nf_test_tmpdir_teardown, (void *)"rules"),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
