/*
 * test_admin_session.c - unit tests for the web page's sessions
 * (server/admin/session.c): the Cookie header parser, outside input, takes
 * exactly one well-formed nofuss_session value and refuses the rest; a
 * session is found by its id alone, carries its token's role and name,
 * checks its CSRF token, ends when asked or when its lifetime is over, and
 * the table stays bounded, one token's sessions within its share.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"

/* A stand-in for a token's SHA-256: 32 bytes told apart by the name. */
#define TOKEN_HASH(name) ((const unsigned char *)(name "................................"))

static int cookie(const char *header, char *out)
{
	return nf_admin_cookie_value(header, strlen(header), NF_ADMIN_COOKIE, out,
	                             NF_ADMIN_SESSION_ID_LEN + 1);
}

static void test_cookie_parse(void **state)
{
	char out[NF_ADMIN_SESSION_ID_LEN + 1];
	char long_value[200];

	(void)state;
	assert_int_equal(cookie("nofuss_session=abc", out), 3);
	assert_string_equal(out, "abc");
	assert_int_equal(cookie("a=1;  nofuss_session=def ; b=\"x y\"", out), 3);
	assert_string_equal(out, "def");
	assert_int_equal(cookie("xnofuss_session=abc; nofuss_session_old=z; nofuss_session=q", out),
	                 1);
	assert_string_equal(out, "q");
	/* Absent, empty, twice, bad bytes, too long: refused. */
	assert_int_equal(cookie("", out), -1);
	assert_int_equal(cookie("other=1", out), -1);
	assert_int_equal(cookie("nofuss_session=", out), -1);
	assert_int_equal(cookie("nofuss_session=a; nofuss_session=b", out), -1);
	assert_int_equal(cookie("nofuss_session=a b", out), -1);
	assert_int_equal(cookie("nofuss_session=a\"b", out), -1);
	assert_int_equal(cookie("nofuss_session=a,b", out), -1);
	assert_int_equal(cookie("nofuss_session=a\\b", out), -1);
	memset(long_value, 'a', sizeof long_value);
	snprintf(long_value, sizeof long_value, "nofuss_session=%0100d", 7);
	assert_int_equal(cookie(long_value, out), -1);
	/* A NUL inside the header's length is a bad byte, not an end. */
	assert_int_equal(nf_admin_cookie_value("nofuss_session=a\0b", 18, NF_ADMIN_COOKIE, out, 65),
	                 -1);
}

static void test_sessions(void **state)
{
	struct nf_admin_sessions s;
	char id[NF_ADMIN_SESSION_ID_LEN + 1], id2[NF_ADMIN_SESSION_ID_LEN + 1];
	char csrf[NF_ADMIN_SESSION_ID_LEN + 1], name[NF_ADMIN_MAX_TOKEN_NAME];
	bool ok;
	int64_t left = 0;

	(void)state;
	assert_int_equal(nf_admin_sessions_init(&s, 100), 0);
	assert_int_equal(nf_admin_session_create(&s, NF_ROLE_READ, "viewer", TOKEN_HASH("viewer"), id), 0);
	assert_int_equal(nf_admin_session_create(&s, NF_ROLE_ADMIN, "ops", TOKEN_HASH("ops"), id2), 0);
	assert_int_equal(strlen(id), NF_ADMIN_SESSION_ID_LEN);
	assert_string_not_equal(id, id2);
	nf_admin_session_csrf(&s, id, csrf);
	assert_int_equal(strlen(csrf), NF_ADMIN_SESSION_ID_LEN);

	unsigned char hash[32];
	assert_int_equal(nf_admin_session_check(&s, id, csrf, &ok, name, &left, hash), NF_ROLE_READ);
	assert_true(ok);
	assert_memory_equal(hash, TOKEN_HASH("viewer"), 32); /* the token it was made from */
	assert_string_equal(name, "viewer");
	assert_true(left > 99000 && left <= 100000);
	assert_int_equal(nf_admin_session_check(&s, id2, csrf, &ok, name, NULL, NULL), NF_ROLE_ADMIN);
	assert_false(ok); /* another session's CSRF token */
	assert_string_equal(name, "ops");
	assert_int_equal(nf_admin_session_check(&s, id, NULL, &ok, name, NULL, NULL), NF_ROLE_READ);
	assert_false(ok);

	/* An id one digit off, or cut, is nobody. */
	char wrong[NF_ADMIN_SESSION_ID_LEN + 1];
	memcpy(wrong, id, sizeof wrong);
	wrong[10] = wrong[10] == '0' ? '1' : '0';
	assert_int_equal(nf_admin_session_check(&s, wrong, csrf, &ok, name, NULL, NULL), NF_ROLE_NONE);
	wrong[10] = id[10];
	wrong[63] = '\0';
	assert_int_equal(nf_admin_session_check(&s, wrong, csrf, &ok, name, NULL, NULL), NF_ROLE_NONE);

	assert_true(nf_admin_session_end(&s, id));
	assert_false(nf_admin_session_end(&s, id));
	assert_int_equal(nf_admin_session_check(&s, id, csrf, &ok, name, NULL, NULL), NF_ROLE_NONE);
	assert_int_equal(nf_admin_session_check(&s, id2, NULL, &ok, name, NULL, NULL), NF_ROLE_ADMIN);
	nf_admin_sessions_free(&s);
}

static void test_expiry_and_bound(void **state)
{
	struct nf_admin_sessions s;
	char first[NF_ADMIN_SESSION_ID_LEN + 1], id[NF_ADMIN_SESSION_ID_LEN + 1];
	char name[NF_ADMIN_MAX_TOKEN_NAME];
	bool ok;

	(void)state;
	assert_int_equal(nf_admin_sessions_init(&s, 1), 0);
	assert_int_equal(nf_admin_session_create(&s, NF_ROLE_ADMIN, "ops", TOKEN_HASH("ops"), first), 0);
	assert_int_equal(nf_admin_session_check(&s, first, NULL, &ok, name, NULL, NULL), NF_ROLE_ADMIN);
	usleep(1100 * 1000);
	assert_int_equal(nf_admin_session_check(&s, first, NULL, &ok, name, NULL, NULL), NF_ROLE_NONE);
	nf_admin_sessions_free(&s);

	/* One token signing in again and again replaces its own sessions: the
	 * others' stay. */
	char own_first[NF_ADMIN_SESSION_ID_LEN + 1];
	assert_int_equal(nf_admin_sessions_init(&s, 1000), 0);
	assert_int_equal(nf_admin_session_create(&s, NF_ROLE_ADMIN, "first", TOKEN_HASH("first"), first), 0);
	usleep(2000);
	assert_int_equal(nf_admin_session_create(&s, NF_ROLE_READ, "later", TOKEN_HASH("later"), own_first), 0);
	usleep(2000);
	for (int i = 0; i < NF_ADMIN_MAX_SESSIONS; i++)
		assert_int_equal(nf_admin_session_create(&s, NF_ROLE_READ, "later", TOKEN_HASH("later"), id), 0);
	assert_int_equal(nf_admin_session_check(&s, first, NULL, &ok, name, NULL, NULL), NF_ROLE_ADMIN);
	assert_int_equal(nf_admin_session_check(&s, own_first, NULL, &ok, name, NULL, NULL), NF_ROLE_NONE);
	assert_int_equal(nf_admin_session_check(&s, id, NULL, &ok, name, NULL, NULL), NF_ROLE_READ);
	nf_admin_sessions_free(&s);

	/* Full, of many tokens' sessions: the oldest goes, the newest stay. */
	assert_int_equal(nf_admin_sessions_init(&s, 1000), 0);
	assert_int_equal(nf_admin_session_create(&s, NF_ROLE_ADMIN, "first", TOKEN_HASH("first"), first), 0);
	usleep(2000);
	for (int i = 0; i < NF_ADMIN_MAX_SESSIONS; i++) {
		unsigned char token[32];
		memset(token, 'a' + i / NF_ADMIN_MAX_SESSIONS_PER_TOKEN, sizeof token);
		assert_int_equal(nf_admin_session_create(&s, NF_ROLE_READ, "many", token, id), 0);
	}
	assert_int_equal(nf_admin_session_check(&s, first, NULL, &ok, name, NULL, NULL), NF_ROLE_NONE);
	assert_int_equal(nf_admin_session_check(&s, id, NULL, &ok, name, NULL, NULL), NF_ROLE_READ);
	nf_admin_sessions_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cookie_parse),
	    cmocka_unit_test(test_sessions),
	    cmocka_unit_test(test_expiry_and_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
