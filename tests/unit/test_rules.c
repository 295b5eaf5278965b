/*
 * test_rules.c - unit tests for rules.c: versions.json parsing, validation
 * and matching (PROTOCOLS.md sections 1 and 3).
 *
 * Matching: first match wins in file order, with device-specific and "*"
 * rules interleaved; device compared exactly; min/max inclusive; the
 * header-form extras (mac, gt/ge/lt/le/eq, build_not); path-form queries
 * (no MAC, no build) never matching a rule that names a MAC or build_not;
 * strings compared byte for byte. Answers: the compact JSON body, keys in
 * file order, "spiffs":"" appended, unknown keys passed through, escaping.
 * Validation: every refusal with its exact message. An index test with
 * 10,000 device rules checks the hash index finds the right rule. Rules are
 * written with single quotes for readability; json() turns them into
 * double quotes before parsing.
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

/* A path-form check carries no MAC and no build (PROTOCOLS.md section 3):
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
	    /* the example of PROTOCOLS.md section 1, with spaces to compact away */
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

static void test_duplicate_keys(void **state)
{
	(void)state;
	expect_error("[{'origin':{'device':'A','device':'B'},'target':{'version':'1'}}]",
	             "test.json:1:33: duplicate object key near '\"device\"'");
	expect_error("[{'origin':{'device':'A'},'target':{'version':'1','version':'2'}}]",
	             "test.json:1:59: duplicate object key near '\"version\"'");
	expect_error("[{'origin':{'device':'A'},'origin':{'device':'B'},'target':{'version':'1'}}]",
	             "test.json:1:34: duplicate object key near '\"origin\"'");
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
	{"[{'origin':{'device':'A','maximum':'1'},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.maximum: unknown key"},
	{"[{'origin':{'device':'A','Device':'A'},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.Device: unknown key"},
	{"[{'origin':{'device':'A','min':1},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.min: must be a string"},
	{"[{'origin':{'device':'A','max':''},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.max: must not be empty"},
	{"[{'origin':{'device':'A','eq':null},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.eq: must be a string"},
	{"[{'origin':{'device':'A','build_not':1},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.build_not: must be a string"},
	/* mac */
	{"[{'origin':{'device':'A','mac':5},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.mac: must be a string or an array of strings"},
	{"[{'origin':{'device':'A','mac':{}},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.mac: must be a string or an array of strings"},
	{"[{'origin':{'device':'A','mac':null},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.mac: must be a string or an array of strings"},
	{"[{'origin':{'device':'A','mac':[]},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.mac: empty array never matches"},
	{"[{'origin':{'device':'A','mac':['5C:CF:7F:8B:6B:26',7]},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.mac[1]: must be a string"},
	{"[{'origin':{'device':'A','mac':[['5C:CF:7F:8B:6B:26']]},'target':{'version':'1'}}]",
	 "test.json: rule 1: origin.mac[0]: must be a string"},
	/* target */
	{"[{'origin':{'device':'A'}}]", "test.json: rule 1: target: missing"},
	{"[{'origin':{'device':'A'},'target':'1.0'}]", "test.json: rule 1: target: must be an object"},
	{"[{'origin':{'device':'A'},'target':{}}]", "test.json: rule 1: target.version: missing"},
	{"[{'origin':{'device':'A'},'target':{'firmware':'/a.bin'}}]",
	 "test.json: rule 1: target.version: missing"},
	{"[{'origin':{'device':'A'},'target':{'version':1}}]",
	 "test.json: rule 1: target.version: must be a string"},
	{"[{'origin':{'device':'A'},'target':{'version':''}}]",
	 "test.json: rule 1: target.version: must not be empty"},
	{"[{'origin':{'device':'A'},'target':{'version':'1','firmware':5}}]",
	 "test.json: rule 1: target.firmware: must be a string"},
	{"[{'origin':{'device':'A'},'target':{'version':'1','firmware':null}}]",
	 "test.json: rule 1: target.firmware: must be a string"},
	{"[{'origin':{'device':'A'},'target':{'version':'1','firmware':'/a','spiffs':null}}]",
	 "test.json: rule 1: target.spiffs: must be a string"},
	{"[{'origin':{'device':'A'},'target':{'version':'1','firmware':'/a','spiffs':false}}]",
	 "test.json: rule 1: target.spiffs: must be a string"},
	/* the rule number counts from 1 and points at the bad rule */
	{"[{'origin':{'device':'A'},'target':{'version':'1','firmware':'/a'}},"
	 " {'origin':{'device':'B'},'target':{'version':'1','firmware':'/a'}},"
	 " {'origin':{'device':'C'},'target':{'version':'1','firmware':{}}}]",
	 "test.json: rule 3: target.firmware: must be a string"},
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
	/* Regression (was a bug): compile_macs() returns as soon as it meets "*", so the entries
	 * after it are never checked: ["*", 7] is accepted while [7, "*"] and
	 * ["5C:CF:7F:8B:6B:26", 7] are refused. Expected: refused with
	 * "origin.mac[1]: must be a string". */
	nf_log_set_level(NF_LOG_ERROR);
	expect_error("[{'origin':{'device':'A','mac':['*',7]},'target':{'version':'1'}}]",
	             "test.json: rule 1: origin.mac[1]: must be a string");
	expect_error("[{'origin':{'device':'A','mac':[7,'*']},'target':{'version':'1'}}]",
	             "test.json: rule 1: origin.mac[0]: must be a string");
	nf_log_set_level(NF_LOG_INFO);
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
		cmocka_unit_test(test_index_many_devices),
		/* test_load_file's folder, removed after it whether it passed or not. */
		cmocka_unit_test_prestate_setup_teardown(test_load_file, nf_test_tmpdir_setup,
		                                         nf_test_tmpdir_teardown, (void *)"rules"),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
