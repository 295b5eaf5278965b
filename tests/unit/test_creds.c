/*
 * test_creds.c - device credentials (server/creds.c): the file's lines and
 * their refusals, and the judging of Authorization headers, Basic and
 * Bearer, right, wrong, unknown, missing and malformed, against lines made
 * by nf_creds_hash_line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nofussd.h"

static struct nf_creds *two(void)
{
	char text[1024], a[256], b[256], err[NF_ERR_LEN];
	struct nf_creds *cs;

	assert_int_equal(nf_creds_hash_line("dev-1", "s3cret", a, sizeof a, err, sizeof err), 0);
	assert_int_equal(nf_creds_hash_line("fleet", "f:l:e:e:t", b, sizeof b, err, sizeof err), 0);
	snprintf(text, sizeof text, "# comment\n\n  %s  \r\n%s", a, b);
	cs = nf_creds_parse(text, strlen(text), "creds", err, sizeof err);
	assert_non_null(cs);
	assert_int_equal(nf_creds_count(cs), 2);
	return cs;
}

static void judges_headers(void **state)
{
	struct nf_creds *cs = two();
	char who[NF_MAX_CRED_NAME + 1];
	static const struct {
		const char *header;
		enum nf_auth want;
		const char *who;
	} cases[] = {
	    {"Basic ZGV2LTE6czNjcmV0", NF_AUTH_OK, "dev-1"},              /* dev-1:s3cret */
	    {"basic ZGV2LTE6czNjcmV0", NF_AUTH_OK, "dev-1"},              /* scheme in any case */
	    {"Basic ZmxlZXQ6ZjpsOmU6ZTp0", NF_AUTH_OK, "fleet"},          /* a ':' in the secret */
	    {"Bearer dev-1:s3cret", NF_AUTH_OK, "dev-1"},
	    {"Bearer dev-1:s3cre", NF_AUTH_WRONG, "dev-1"},
	    {"Basic ZGV2LTE6", NF_AUTH_WRONG, "dev-1"},                   /* dev-1: (empty secret) */
	    {"Bearer dev-2:s3cret", NF_AUTH_UNKNOWN, "dev-2"},
	    {NULL, NF_AUTH_MISSING, ""},
	    {"", NF_AUTH_MISSING, ""},
	    {"Basic", NF_AUTH_MALFORMED, ""},
	    {"Basic !!!!", NF_AUTH_MALFORMED, ""},
	    {"Basic czNjcmV0", NF_AUTH_MALFORMED, ""},                   /* no ':' */
	    {"Bearer :s3cret", NF_AUTH_MALFORMED, ""},                    /* no name */
	    {"Digest username=\"dev-1\"", NF_AUTH_MALFORMED, ""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum nf_auth got = nf_creds_check(cs, cases[i].header, who, sizeof who);
		if (got != cases[i].want || strcmp(who, cases[i].who) != 0)
			fail_msg("case %zu (%s): %s for \"%s\"", i, cases[i].header ? cases[i].header : "NULL",
			         nf_auth_text(got), who);
	}
	nf_creds_free(cs);
}

static void refuses_bad_files(void **state)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
	    {"dev\n", "creds:1: not NAME:SALT:HASH"},
	    {"# c\ndev:00:11\n", "creds:2: the salt must be 32 and the hash 64 hex digits"},
	    {"a b:000102030405060708090a0b0c0d0e0f:"
	     "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\n",
	     "creds:1: the name must be"},
	    {"a:000102030405060708090a0b0c0d0e0f:"
	     "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\n"
	     "a:000102030405060708090a0b0c0d0e0f:"
	     "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\n",
	     "creds: the name \"a\" is given twice"},
	    {"a:000102030405060708090a0b0c0d0e0g:"
	     "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\n",
	     "creds:1: the salt must be"},
	};
	char err[NF_ERR_LEN], line[256];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		err[0] = '\0';
		assert_null(nf_creds_parse(cases[i].text, strlen(cases[i].text), "creds", err, sizeof err));
		if (strncmp(err, cases[i].why, strlen(cases[i].why)) != 0)
			fail_msg("case %zu: \"%s\"", i, err);
	}
	assert_int_equal(nf_creds_hash_line("a:b", "x", line, sizeof line, err, sizeof err), -1);
	assert_int_equal(nf_creds_hash_line("ab", "", line, sizeof line, err, sizeof err), -1);
	/* An empty file is no credential at all: everyone is refused. */
	struct nf_creds *none = nf_creds_parse("", 0, "creds", err, sizeof err);
	assert_non_null(none);
	assert_int_equal(nf_creds_check(none, "Bearer a:b", line, sizeof line), NF_AUTH_UNKNOWN);
	nf_creds_free(none);
}

static void salts_differ(void **state)
{
	char a[256], b[256], err[NF_ERR_LEN];

	(void)state;
	assert_int_equal(nf_creds_hash_line("n", "same", a, sizeof a, err, sizeof err), 0);
	assert_int_equal(nf_creds_hash_line("n", "same", b, sizeof b, err, sizeof err), 0);
	assert_string_not_equal(a, b);
	assert_null(strstr(a, "same"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(judges_headers),
	    cmocka_unit_test(refuses_bad_files),
	    cmocka_unit_test(salts_differ),
	};
	nf_log_set_level(NF_LOG_SILENT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
