/*
 * test_answer.c - unit tests for nf_answer_parse() (core/answer.c), the
 * device core's parser of the check's answer: a flat JSON object whose
 * strings are decoded in place.
 *
 * Every input is copied into a heap buffer of exactly its length, with no
 * NUL after it, so that under ASan (the NOFUSS_SANITIZE build) and valgrind
 * any read past len is caught; where it matters a few guard bytes after len
 * check that nothing is written there either.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"

#define GUARD 16

/* A heap copy of text[0..len) and nothing more; freed by the caller. */
static char *exact_copy(const char *text, size_t len)
{
	char *buf = malloc(len > 0 ? len : 1);

	assert_non_null(buf);
	memcpy(buf, text, len);
	return buf;
}

static int parse_exact(const char *text, size_t len, struct nf_answer *out)
{
	char *buf = exact_copy(text, len);
	int rc = nf_answer_parse(buf, len, out);

	/* Whatever the outcome, returned fields point into the buffer. */
	for (int i = 0; rc == 0 && i < NF_ANSWER_FIELDS; i++)
		if (out->field[i] != NULL)
			assert_true(out->field[i] >= buf && out->field[i] < buf + len);
	free(buf);
	return rc;
}

static int parse_str(const char *text)
{
	struct nf_answer a;

	return parse_exact(text, strlen(text), &a);
}

/* Parses text in a buffer followed by guard bytes, which must stay as they
 * were; keeps the buffer in *bufp for the caller to inspect and free. */
static int parse_guarded(const char *text, size_t len, struct nf_answer *out, char **bufp)
{
	char *buf = malloc(len + GUARD);
	int rc;

	assert_non_null(buf);
	memcpy(buf, text, len);
	memset(buf + len, 0x5A, GUARD);
	rc = nf_answer_parse(buf, len, out);
	for (size_t i = 0; i < GUARD; i++)
		assert_int_equal((unsigned char)buf[len + i], 0x5A);
	*bufp = buf;
	return rc;
}

static void test_keys_table(void **state)
{
	(void)state;
	assert_string_equal(nf_answer_keys[NF_ANSWER_VERSION], "version");
	assert_string_equal(nf_answer_keys[NF_ANSWER_FIRMWARE], "firmware");
	assert_string_equal(nf_answer_keys[NF_ANSWER_SPIFFS], "spiffs");
}

static void test_typical_answer(void **state)
{
	static const char text[] =
	    "{\"version\":\"0.1.1\",\"firmware\":\"/firmware/test-0.1.1.bin\","
	    "\"spiffs\":\"\"}";
	struct nf_answer a;
	char *buf;

	(void)state;
	assert_int_equal(parse_guarded(text, sizeof text - 1, &a, &buf), 0);
	assert_int_equal(a.keys, 3);
	/* In place: each value starts right after its opening quote. */
	assert_ptr_equal(a.field[NF_ANSWER_VERSION], buf + 12);
	assert_string_equal(a.field[NF_ANSWER_VERSION], "0.1.1");
	assert_string_equal(a.field[NF_ANSWER_FIRMWARE], "/firmware/test-0.1.1.bin");
	assert_string_equal(a.field[NF_ANSWER_SPIFFS], "");
	assert_ptr_equal(a.field[NF_ANSWER_SPIFFS], buf + sizeof text - 1 - 2);
	free(buf);
}

static void test_empty_object(void **state)
{
	static const char *const texts[] = {"{}", " {}", "{ }", "\t{\r\n}\n",
	                                    " \n\r\t{ \n\r\t} \n\r\t"};
	struct nf_answer a;

	(void)state;
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		memset(&a, 0x7F, sizeof a); /* the parser clears what it is given */
		assert_int_equal(parse_exact(texts[i], strlen(texts[i]), &a), 0);
		assert_int_equal(a.keys, 0);
		for (int k = 0; k < NF_ANSWER_FIELDS; k++)
			assert_null(a.field[k]);
	}
}

static void test_absent_fields_null(void **state)
{
	static const char text[] = "{\"firmware\":\"f.bin\"}";
	struct nf_answer a;
	char *buf;

	(void)state;
	memset(&a, 0x7F, sizeof a);
	assert_int_equal(parse_guarded(text, sizeof text - 1, &a, &buf), 0);
	assert_int_equal(a.keys, 1);
	assert_null(a.field[NF_ANSWER_VERSION]);
	assert_string_equal(a.field[NF_ANSWER_FIRMWARE], "f.bin");
	assert_null(a.field[NF_ANSWER_SPIFFS]);
	free(buf);
}

static void test_escapes_decoded_in_place(void **state)
{
	static const struct {
		const char *raw, *decoded;
	} cases[] = {
	    {"\\\"", "\""},
	    {"\\\\", "\\"},
	    {"\\/", "/"},
	    {"http:\\/\\/h\\/f.bin", "http://h/f.bin"},
	    {"\\b\\f\\n\\r\\t", "\b\f\n\r\t"},
	    {"\\u0041", "A"},
	    {"\\u0001", "\x01"}, /* escaped control characters are fine */
	    {"\\u007f", "\x7f"},
	    {"\\u0080", "\xc2\x80"},
	    {"\\u00e9", "\xc3\xa9"},
	    {"\\u00E9", "\xc3\xa9"},
	    {"\\u07ff", "\xdf\xbf"},
	    {"\\u0800", "\xe0\xa0\x80"},
	    {"\\u20ac", "\xe2\x82\xac"},
	    {"\\uD7FF", "\xed\x9f\xbf"},
	    {"\\uE000", "\xee\x80\x80"},
	    {"\\uffff", "\xef\xbf\xbf"},
	    {"a\\u00e9b\\\"c\\\\d", "a\xc3\xa9"
	                            "b\"c\\d"},
	    {"\xc3\xa9\xe2\x82\xac", "\xc3\xa9\xe2\x82\xac"}, /* raw UTF-8 passes through */
	    {"\x7f", "\x7f"},
	    {"", ""},
	};
	char text[128];
	struct nf_answer a;
	char *buf;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int n = snprintf(text, sizeof text, "{\"version\":\"%s\",\"spiffs\":\"%s\"}",
		                 cases[i].raw, cases[i].raw);
		assert_true(n > 0 && (size_t)n < sizeof text);
		assert_int_equal(parse_guarded(text, (size_t)n, &a, &buf), 0);
		assert_string_equal(a.field[NF_ANSWER_VERSION], cases[i].decoded);
		assert_string_equal(a.field[NF_ANSWER_SPIFFS], cases[i].decoded);
		assert_ptr_equal(a.field[NF_ANSWER_VERSION], buf + 12);
		/* Decoding never grows: the decoded string ends within the raw one. */
		assert_true(strlen(a.field[NF_ANSWER_VERSION]) <= strlen(cases[i].raw));
		free(buf);
	}
}

static void test_escaped_keys(void **state)
{
	static const char text[] = "{\"vers\\u0069on\":\"1\",\"fi\\u0072mware\":\"f\","
	                           "\"\\u0073piffs\":\"s\"}";
	struct nf_answer a;
	char *buf;

	(void)state;
	assert_int_equal(parse_guarded(text, sizeof text - 1, &a, &buf), 0);
	assert_int_equal(a.keys, 3);
	assert_string_equal(a.field[NF_ANSWER_VERSION], "1");
	assert_string_equal(a.field[NF_ANSWER_FIRMWARE], "f");
	assert_string_equal(a.field[NF_ANSWER_SPIFFS], "s");
	free(buf);
}

static void test_unknown_keys_skipped(void **state)
{
	static const char text[] =
	    "{\"size\":123456,\"signed\":true,\"beta\":false,\"notes\":null,\"ratio\":-1.5e+3,"
	    "\"big\":1E9,\"zero\":0,\"name\":\"x\",\"\":\"empty key\",\"version\":\"2\"}";
	struct nf_answer a;
	char *buf;

	(void)state;
	assert_int_equal(parse_guarded(text, sizeof text - 1, &a, &buf), 0);
	assert_int_equal(a.keys, 10);
	assert_string_equal(a.field[NF_ANSWER_VERSION], "2");
	assert_null(a.field[NF_ANSWER_FIRMWARE]);
	free(buf);
}

static void test_duplicate_key_last_wins(void **state)
{
	static const char text[] = "{\"version\":\"1\",\"version\":\"2\"}";
	struct nf_answer a;
	char *buf;

	(void)state;
	assert_int_equal(parse_guarded(text, sizeof text - 1, &a, &buf), 0);
	assert_int_equal(a.keys, 2);
	assert_string_equal(a.field[NF_ANSWER_VERSION], "2");
	free(buf);
}

static void test_stops_at_len(void **state)
{
	static const char text[] = "{\"version\":\"1\"} trailing garbage \"}";
	const size_t obj = strlen("{\"version\":\"1\"}");
	struct nf_answer a;
	char *buf;

	(void)state;
	/* Only the object is given: the rest, beyond len, is never looked at
	 * (ASan would see a read past the exact-size copy). */
	assert_int_equal(parse_exact(text, obj, &a), 0);
	assert_int_equal(parse_guarded(text, obj, &a, &buf), 0);
	assert_string_equal(a.field[NF_ANSWER_VERSION], "1");
	assert_int_equal((unsigned char)buf[obj], 0x5A);
	free(buf);
	/* Given in full, the garbage is refused. */
	assert_int_equal(parse_exact(text, sizeof text - 1, &a), -1);
	/* A NUL inside len is not an end either. */
	assert_int_equal(parse_exact("{}\0", 3, &a), -1);
	assert_int_equal(parse_exact("{\"a\0\":\"b\"}", 10, &a), -1);
	/* len 0 never reads the buffer. */
	assert_int_equal(parse_exact("{}", 0, &a), -1);
}

/* Every proper prefix of an answer (none ends in whitespace) is incomplete,
 * and the parser must see that without reading past the prefix. */
static void test_every_prefix_rejected(void **state)
{
	static const char *const texts[] = {
	    "{}",
	    "{\"version\":\"0.1.1\",\"firmware\":\"/f.bin\",\"spiffs\":\"\"}",
	    "{ \"a\" : 12.5e-3 , \"b\" : true, \"c\":null, \"d\":\"\\u00e9\\\"\\\\\" }",
	    "{\"v\\u0065rsion\":\"\\u20ac\\/x\"}",
	};
	struct nf_answer a;

	(void)state;
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		size_t len = strlen(texts[i]);
		assert_int_equal(parse_exact(texts[i], len, &a), 0);
		for (size_t k = 0; k < len; k++) {
			char *buf;
			if (parse_exact(texts[i], k, &a) != -1)
				fail_msg("prefix %zu of \"%s\" accepted", k, texts[i]);
			assert_int_equal(parse_guarded(texts[i], k, &a, &buf), -1);
			free(buf);
		}
	}
}

static void test_rejections(void **state)
{
	/* A table, several rows to a line. */
	/* clang-format off */
	static const char *const texts[] = {
	    /* not an object */
	    "", " ", "\n\t", "[]", "[{}]", "\"{}\"", "null", "true", "1", "hello", "}", "{", "{{}}",
	    /* structure */
	    "{}}", "{}{}", "{} x", "{},", "{\"a\"}", "{\"a\":}", "{\"a\" \"b\"}", "{\"a\"::\"b\"}",
	    "{\"a\":\"b\",}", "{,}", "{,\"a\":\"b\"}", "{\"a\":\"b\",,\"c\":\"d\"}",
	    "{\"a\":\"b\" \"c\":\"d\"}", "{\"a\":\"b\";\"c\":\"d\"}", "{\"a\":\"b\"", "{\"a\":\"b",
	    "{\"a\":\"b\"]", "{a:\"b\"}", "{'a':'b'}", "{\"a\":'b'}", "{1:\"b\"}", "{\"a\":\"b\"}\v",
	    "\f{}", "{\v}", "\xef\xbb\xbf{}", /* a BOM */
	    /* nesting */
	    "{\"a\":{}}", "{\"a\":{\"b\":\"c\"}}", "{\"a\":[]}", "{\"a\":[1,2]}", "{\"a\":[\"x\"]}",
	    "{\"version\":{\"v\":\"1\"}}",
	    /* values that are not scalars */
	    "{\"a\":}", "{\"a\":\"b\"\"c\"}", "{\"a\":@}", "{\"a\":#}", "{\"a\":\"b\":\"c\"}",
	    /* the keys nofuss uses must be strings */
	    "{\"version\":1}", "{\"version\":null}", "{\"firmware\":true}", "{\"spiffs\":false}",
	    "{\"spiffs\":0}", "{\"firmware\":-1}",
	    /* strings */
	    "{\"a\":\"b\nc\"}", "{\"a\":\"\t\"}", "{\"a\":\"\x01\"}", "{\"a\":\"\x1f\"}",
	    "{\"a\nb\":\"c\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\a\"}", "{\"a\":\"\\'\"}",
	    "{\"a\":\"\\U0041\"}", "{\"a\":\"\\u\"}", "{\"a\":\"\\u0\"}", "{\"a\":\"\\u00\"}",
	    "{\"a\":\"\\u004\"}", "{\"a\":\"\\u004g\"}", "{\"a\":\"\\u-041\"}", "{\"a\":\"\\u 041\"}",
	    "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udfff\"}",
	    "{\"a\":\"\\ud83d\\ude00\"}", "{\"a\":\"\\\"}", "{\"a\":\"\\", "{\"a\":\"\\u12",
	    /* an escape letter's decoded byte is not a letter; digits next to the hex ranges */
	    "{\"a\":\"\\\t\"}", "{\"a\":\"\\\b\"}", "{\"a\":\"\\\n\"}",
	    "{\"a\":\"\\u00@0\"}", "{\"a\":\"\\u00`0\"}", "{\"a\":\"\\u00G0\"}",
	    "{\"a\":\"\\u00g0\"}", "{\"a\":\"\\u00:0\"}", "{\"a\":\"\\u00/0\"}",
	};
	/* clang-format on */

	(void)state;
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
		if (parse_str(texts[i]) != -1)
			fail_msg("accepted: \"%s\"", texts[i]);
}

/* Rejected or not, nothing is written past len. */
static void test_no_write_past_len(void **state)
{
	static const char *const texts[] = {
	    "{\"a\":\"\\u00e9",
	    "{\"a\":\"\\\\\\\\\\\\",
	    "{\"version\":\"1\"",
	    "{\"a\":\"b\"}",
	    "{\"a\":\"\\u20ac\\u20ac\\u20ac\"}",
	};
	struct nf_answer a;

	(void)state;
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		char *buf;
		parse_guarded(texts[i], strlen(texts[i]), &a, &buf);
		free(buf);
	}
}

static void test_long_inputs(void **state)
{
	const size_t n = 100000;
	char *text = malloc(n);
	struct nf_answer a;

	(void)state;
	assert_non_null(text);
	/* The parser itself has no size limit (the client bounds the answer). */
	memset(text, ' ', n);
	text[n / 2] = '{';
	text[n / 2 + 1] = '}';
	assert_int_equal(parse_exact(text, n, &a), 0);

	/* A very long string value. */
	memset(text, 'x', n);
	memcpy(text, "{\"version\":\"", 12);
	memcpy(text + n - 2, "\"}", 2);
	assert_int_equal(parse_exact(text, n, &a), 0);

	/* ...unterminated. */
	text[n - 2] = 'x';
	assert_int_equal(parse_exact(text, n, &a), -1);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keys_table),
	    cmocka_unit_test(test_typical_answer),
	    cmocka_unit_test(test_empty_object),
	    cmocka_unit_test(test_absent_fields_null),
	    cmocka_unit_test(test_escapes_decoded_in_place),
	    cmocka_unit_test(test_escaped_keys),
	    cmocka_unit_test(test_unknown_keys_skipped),
	    cmocka_unit_test(test_duplicate_key_last_wins),
	    cmocka_unit_test(test_stops_at_len),
	    cmocka_unit_test(test_every_prefix_rejected),
	    cmocka_unit_test(test_rejections),
	    cmocka_unit_test(test_no_write_past_len),
	    cmocka_unit_test(test_long_inputs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
