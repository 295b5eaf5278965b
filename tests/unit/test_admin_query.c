/*
 * test_admin_query.c - unit tests for the admin listener's parsers of
 * outside input: the devices list's query string and its times
 * (server/admin/filter.c), and the token file and Authorization header
 * (server/admin/auth.c), on real files in a mkdtemp() folder.
 *
 * Every refusal is checked for the parameter it names and for the values it
 * says are accepted, since that message is what an operator reads.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "admin.h"
#include "testutil.h"

#define NOW 1796212800000LL /* 2026-12-02T12:00:00Z */

static void parse_ok(const char *q, struct nf_admin_query *out)
{
	char err[512] = "", param[16];

	if (nf_admin_query_parse(q, strlen(q), NOW, out, param, err, sizeof err) != 0)
		fail_msg("\"%s\": %s", q, err);
}

/* q is refused, naming param, with every word of words in the message. */
static void parse_fails(const char *q, const char *param, const char *const *words)
{
	struct nf_admin_query out;
	char err[512] = "", got[16];

	if (nf_admin_query_parse(q, strlen(q), NOW, &out, got, err, sizeof err) == 0)
		fail_msg("\"%s\" was accepted", q);
	assert_string_equal(got, param);
	for (; *words != NULL; words++)
		if (strstr(err, *words) == NULL)
			fail_msg("\"%s\": \"%s\" is not in \"%s\"", q, *words, err);
}
#define FAILS(q, param, ...) parse_fails(q, param, (const char *const[]){__VA_ARGS__, NULL})

static void test_defaults(void **state)
{
	struct nf_admin_query q;

	(void)state;
	parse_ok("", &q);
	assert_int_equal(q.filter.state, -1);
	assert_int_equal(q.filter.sort, NF_SORT_LAST_SEEN);
	assert_true(q.filter.descending);
	assert_int_equal(q.filter.limit, NF_ADMIN_DEFAULT_PAGE);
	assert_int_equal(q.filter.offset, 0);
	assert_null(q.filter.device);
	assert_null(q.filter.mac_prefix);
	assert_int_equal(q.filter.pin, 0);
	assert_int_equal(q.filter.excluded, 0);
	assert_int_equal(q.filter.now_ms, NOW);
	/* Empty values and empty pairs mean "any". */
	parse_ok("type=&state=&&limit=", &q);
	assert_null(q.filter.device);
	assert_int_equal(q.filter.state, -1);
	assert_int_equal(q.filter.limit, NF_ADMIN_DEFAULT_PAGE);
}

static void test_every_parameter(void **state)
{
	struct nf_admin_query q;

	(void)state;
	parse_ok("type=My+Dev%2Fx&version=1.2.0&state=reverted&seen_after=2026-12-01T12:00:00Z"
	         "&seen_before=1796212800000&mac=5c-cf-7f&ip=192.168.1.&tag=kitchen_1"
	         "&sort=first_seen&order=asc&offset=2000&limit=1000",
	         &q);
	assert_string_equal(q.filter.device, "My Dev/x");
	assert_string_equal(q.filter.version, "1.2.0");
	assert_int_equal(q.filter.state, NF_UPDATE_REVERTED);
	assert_int_equal(q.filter.seen_after_ms, NOW - 86400000LL);
	assert_int_equal(q.filter.seen_before_ms, NOW);
	assert_string_equal(q.filter.mac_prefix, "5C:CF:7F");
	assert_string_equal(q.filter.ip_prefix, "192.168.1.");
	assert_string_equal(q.filter.tag, "kitchen_1");
	assert_int_equal(q.filter.sort, NF_SORT_FIRST_SEEN);
	assert_false(q.filter.descending);
	assert_int_equal(q.filter.offset, 2000);
	assert_int_equal(q.filter.limit, 1000);
	/* MAC prefixes are normalised as the store keeps them. */
	parse_ok("mac=5ccf7f0", &q);
	assert_string_equal(q.filter.mac_prefix, "5C:CF:7F:0");
	parse_ok("mac=AA%3Abb%3Acc%3Add%3Aee%3AFF", &q);
	assert_string_equal(q.filter.mac_prefix, "AA:BB:CC:DD:EE:FF");
	/* Rollout controls: a release id or any; true or false. */
	parse_ok("pin=42&excluded=true", &q);
	assert_int_equal(q.filter.pin, 42);
	assert_int_equal(q.filter.excluded, 1);
	parse_ok("pin=any&excluded=false", &q);
	assert_int_equal(q.filter.pin, -1);
	assert_int_equal(q.filter.excluded, -1);
	parse_ok("pin=&excluded=", &q);
	assert_int_equal(q.filter.pin, 0);
	assert_int_equal(q.filter.excluded, 0);
	parse_ok("sort=type&order=desc&state=silent", &q);
	assert_int_equal(q.filter.sort, NF_SORT_DEVICE);
	assert_int_equal(q.filter.state, NF_UPDATE_SILENT);
}

static void test_times(void **state)
{
	int64_t t;

	(void)state;
	assert_int_equal(nf_admin_parse_time("2026-12-02T12:00:00Z", NOW, &t), 0);
	assert_int_equal(t, NOW);
	assert_int_equal(nf_admin_parse_time("2026-12-02T13:00:00.250+01:00", NOW, &t), 0);
	assert_int_equal(t, NOW + 250);
	assert_int_equal(nf_admin_parse_time("2026-12-02t12:00:00.1z", NOW, &t), 0);
	assert_int_equal(t, NOW + 100);
	assert_int_equal(nf_admin_parse_time("2024-02-29T00:00:00Z", NOW, &t), 0);
	assert_int_equal(nf_admin_parse_time("90s", NOW, &t), 0);
	assert_int_equal(t, NOW - 90000);
	assert_int_equal(nf_admin_parse_time("7d", NOW, &t), 0);
	assert_int_equal(t, NOW - 7 * 86400000LL);
	assert_int_equal(nf_admin_parse_time("15m", NOW, &t), 0);
	assert_int_equal(t, NOW - 900000);
	assert_int_equal(nf_admin_parse_time("1796212800000", NOW, &t), 0);
	assert_int_equal(t, NOW);
	const char *bad[] = {"",
	                     "2026-02-29T00:00:00Z",
	                     "2026-13-01T00:00:00Z",
	                     "2026-12-02T12:00:00",
	                     "2026-12-02T24:00:00Z",
	                     "2026-12-02 12:00Z",
	                     "12x",
	                     "-5",
	                     "10w",
	                     "2026-12-02T12:00:00.Z",
	                     "99999999999999999999",
	                     "2026-12-02T12:00:00+1:00"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (nf_admin_parse_time(bad[i], NOW, &t) == 0)
			fail_msg("\"%s\" was read as %lld", bad[i], (long long)t);
	char text[32];
	nf_admin_format_time(NOW + 7, text);
	assert_string_equal(text, "2026-12-02T12:00:00.007Z");
	assert_int_equal(nf_admin_parse_time(text, 0, &t), 0);
	assert_int_equal(t, NOW + 7);
}

static void test_refusals(void **state)
{
	(void)state;
	FAILS("colour=red", "", "unknown parameter \"colour\"", "type, version, state");
	FAILS("limit=10&limit=20", "limit", "limit: given twice");
	FAILS("state=bogus", "state", "state: \"bogus\"", "confirmed, reverted, failed, silent");
	FAILS("limit=0", "limit", "limit: \"0\"", "from 1 to 1000");
	FAILS("limit=1001", "limit", "from 1 to 1000");
	FAILS("offset=-1", "offset", "offset: \"-1\"", "from 0 to");
	FAILS("offset=999999999999999999999", "offset", "offset:");
	FAILS("sort=colour", "sort", "sort: \"colour\"", "last_seen, first_seen, key, type");
	FAILS("order=up", "order", "order: \"up\" is not asc or desc");
	FAILS("mac=zz", "mac", "mac: \"zz\" is not the start of a MAC");
	FAILS("mac=aabbccddeeff00", "mac", "mac:");
	FAILS("mac=a:b", "mac", "mac:");
	FAILS("ip=10.0.0.1/8", "ip", "ip: \"10.0.0.1/8\"");
	FAILS("tag=a+b", "tag", "tag: \"a b\" is not a tag");
	FAILS("type=%zz", "type", "type: a bad %-escape");
	FAILS("type=a%00b", "type", "type: a bad %-escape");
	FAILS("type=a%0Ab", "type", "no control characters");
	FAILS("seen_after=yesterday", "seen_after", "seen_after: \"yesterday\"", "RFC 3339");
	FAILS("seen_after=1h&seen_before=2h", "seen_after", "earlier than seen_before");
	FAILS("version=0123456789012345678901234567890123456789012345678901234567890123", "version",
	      "at most 63 characters");
	FAILS("%ff=1", "", "unknown parameter \"%ff\"");
	FAILS("pin=0", "pin", "pin: \"0\" is not a release id");
	FAILS("pin=-1", "pin", "pin: \"-1\"");
	FAILS("pin=99999999999999999999", "pin", "pin:");
	FAILS("pin=all", "pin", "or any");
	FAILS("excluded=1", "excluded", "excluded: \"1\" is not true or false");
	FAILS("colour=red", "", "tag, pin, excluded, sort");
}

/* ---- tokens ---- */

static void test_token_lines(void **state)
{
	static const char text[] = "# tokens for nofussd\n"
	                           "\n"
	                           "0123456789abcdef0123\n"
	                           "  readerreaderreader   read  grafana\r\n"
	                           "adminadminadminadmin admin ops@site\n";
	struct nf_admin_token *list;
	size_t count;
	char err[256];

	(void)state;
	assert_int_equal(nf_admin_tokens_parse(text, strlen(text), &list, &count, err, sizeof err),
	                 0);
	assert_int_equal(count, 3);
	assert_int_equal(list[0].role, NF_ROLE_ADMIN);
	assert_string_equal(list[0].name, "line-3");
	assert_int_equal(list[1].role, NF_ROLE_READ);
	assert_string_equal(list[1].name, "grafana");
	assert_string_equal(list[2].name, "ops@site");
	free(list);

	static const struct {
		const char *text, *msg;
	} bad[] = {
	    {"short\n", "1: a token must have 16 to 256 characters (this one has 5)"},
	    {"# only a comment\n", "no token (one a line: TOKEN [admin|read [NAME]])"},
	    {"0123456789abcdef0123 root\n", "1: role \"root\" is not admin or read"},
	    {"\n0123456789abcdef0123 read x y\n",
	     "2: more than three fields (TOKEN [ROLE [NAME]])"},
	    {"0123456789abcdef0123 read bad/name\n", "1: a name is made of A-Z a-z 0-9 _ . @ -"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(nf_admin_tokens_parse(bad[i].text, strlen(bad[i].text), &list,
		                                       &count, err, sizeof err),
		                 -1);
		assert_string_equal(err, bad[i].msg);
	}
}

static void test_token_file(void **state)
{
	const char *dir = *state;
	struct nf_admin_tokens t;
	char path[512], err[1024], name[NF_ADMIN_MAX_TOKEN_NAME];

	snprintf(path, sizeof path, "%s/tokens", dir);
	assert_int_equal(nf_admin_tokens_load(&t, path, err, sizeof err), -1);
	assert_non_null(strstr(err, "No such file"));
	nf_test_write_file(path, "adminadminadminadmin admin ops\nreaderreaderreader read graf\n");
	chmod(path, 0644);
	assert_int_equal(nf_admin_tokens_load(&t, path, err, sizeof err), -1);
	assert_non_null(strstr(err, "readable or writable by others (mode 0644)"));
	chmod(path, 0660);
	assert_int_equal(nf_admin_tokens_load(&t, path, err, sizeof err), -1);
	assert_non_null(strstr(err, "writable by its group (mode 0660); chmod g-w it"));
	chmod(path, 0640);
	assert_int_equal(nf_admin_tokens_load(&t, path, err, sizeof err), 0);
	unsigned char hash[32], nobody[32] = {0};
	assert_int_equal(nf_admin_tokens_check(&t, "Bearer adminadminadminadmin", name, hash),
	                 NF_ROLE_ADMIN);
	assert_string_equal(name, "ops");
	/* A session keeps the hash and asks by it (nf_admin_session_role). */
	name[0] = '\0';
	assert_int_equal(nf_admin_tokens_role_of(&t, hash, name), NF_ROLE_ADMIN);
	assert_string_equal(name, "ops");
	assert_int_equal(nf_admin_tokens_role_of(&t, nobody, name), NF_ROLE_NONE);
	assert_int_equal(nf_admin_tokens_check(&t, "bearer  readerreaderreader ", name, NULL),
	                 NF_ROLE_READ);
	assert_string_equal(name, "graf");
	assert_int_equal(nf_admin_tokens_check(&t, "Bearer adminadminadminadmiN", name, NULL),
	                 NF_ROLE_NONE);
	assert_int_equal(nf_admin_tokens_check(&t, "Bearer adminadminadminadmin x", name, NULL),
	                 NF_ROLE_NONE);
	assert_int_equal(nf_admin_tokens_check(&t, "Basic YWRtaW46YWRtaW4=", name, NULL), NF_ROLE_NONE);
	assert_int_equal(nf_admin_tokens_check(&t, "Bearer ", name, NULL), NF_ROLE_NONE);
	assert_int_equal(nf_admin_tokens_check(&t, NULL, name, NULL), NF_ROLE_NONE);
	/* Only hashes are kept: no stored byte spells the token. */
	for (size_t i = 0; i < t.count; i++)
		assert_null(memmem(&t.list[i], sizeof t.list[i], "adminadmin", 10));
	nf_admin_tokens_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_every_parameter),
	    cmocka_unit_test(test_times),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_token_lines),
	    cmocka_unit_test_prestate_setup_teardown(test_token_file, nf_test_tmpdir_setup,
	                                             nf_test_tmpdir_teardown, (void *)"admin"),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
