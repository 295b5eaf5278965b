/*
 * test_range.c - unit tests for nf_range_parse() (range.c).
 *
 * One byte range per request, RFC 9110 section 14: "first-last",
 * "first-" and the suffix "-n"; a last position past the end is clamped; a
 * first position past the end, a zero-length suffix and any range of an
 * empty file are unsatisfiable (416); anything else we do not take -
 * several ranges, garbage, last < first, numbers that overflow, no header -
 * is NONE, i.e. "send the whole file". The unit is case-insensitive and
 * spaces around the numbers are tolerated.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>

#include "nofussd.h"

#define SENTINEL 0xdeadbeefu

static void expect_ok(const char *value, uint64_t size, uint64_t first, uint64_t last)
{
	uint64_t a = SENTINEL, b = SENTINEL;

	if (nf_range_parse(value, size, &a, &b) != NF_RANGE_OK)
		fail_msg("\"%s\" on %llu bytes: not OK", value, (unsigned long long)size);
	assert_int_equal(a, first);
	assert_int_equal(b, last);
	assert_true(a <= b);
	assert_true(b < size);
}

/* For NONE and UNSATISFIABLE the outputs must not be touched. */
static void expect_result(const char *value, uint64_t size, enum nf_range_result want)
{
	uint64_t a = SENTINEL, b = SENTINEL;
	enum nf_range_result got = nf_range_parse(value, size, &a, &b);

	if (got != want)
		fail_msg("\"%s\" on %llu bytes: %d, expected %d", value ? value : "(null)",
		         (unsigned long long)size, (int)got, (int)want);
	assert_int_equal(a, SENTINEL);
	assert_int_equal(b, SENTINEL);
}

static void test_first_last(void **state)
{
	(void)state;
	expect_ok("bytes=0-99", 1000, 0, 99);
	expect_ok("bytes=0-0", 1000, 0, 0);
	expect_ok("bytes=999-999", 1000, 999, 999);
	expect_ok("bytes=500-999", 1000, 500, 999);
	expect_ok("bytes=10-10", 11, 10, 10);
	expect_ok("bytes=0-0", 1, 0, 0);
}

static void test_open_ended(void **state)
{
	(void)state;
	expect_ok("bytes=100-", 1000, 100, 999);
	expect_ok("bytes=0-", 1000, 0, 999);
	expect_ok("bytes=999-", 1000, 999, 999);
	expect_ok("bytes=0-", 1, 0, 0);
}

static void test_suffix(void **state)
{
	(void)state;
	expect_ok("bytes=-100", 1000, 900, 999);
	expect_ok("bytes=-1", 1000, 999, 999);
	expect_ok("bytes=-1000", 1000, 0, 999);
	/* a suffix longer than the file is the whole file */
	expect_ok("bytes=-1001", 1000, 0, 999);
	expect_ok("bytes=-99999999999", 1000, 0, 999);
	expect_ok("bytes=-5", 1, 0, 0);
}

static void test_clamped_last(void **state)
{
	(void)state;
	expect_ok("bytes=0-1000", 1000, 0, 999);
	expect_ok("bytes=500-5000", 1000, 500, 999);
	expect_ok("bytes=0-18446744073709551615", 1000, 0, 999); /* UINT64_MAX */
}

static void test_unsatisfiable(void **state)
{
	(void)state;
	expect_result("bytes=1000-", 1000, NF_RANGE_UNSATISFIABLE);
	expect_result("bytes=1000-2000", 1000, NF_RANGE_UNSATISFIABLE);
	expect_result("bytes=5000-6000", 1000, NF_RANGE_UNSATISFIABLE);
	expect_result("bytes=18446744073709551615-", 1000, NF_RANGE_UNSATISFIABLE);
	/* zero-length suffix */
	expect_result("bytes=-0", 1000, NF_RANGE_UNSATISFIABLE);
	expect_result("bytes=-000", 1000, NF_RANGE_UNSATISFIABLE);
}

/* An empty file has no byte to send. RFC 9110 14.1.1 calls a non-zero
 * suffix satisfiable even then, but an empty range cannot be expressed in
 * Content-Range; what matters is that no range over it comes back OK. */
static void test_empty_file(void **state)
{
	(void)state;
	expect_result("bytes=0-", 0, NF_RANGE_UNSATISFIABLE);
	expect_result("bytes=0-0", 0, NF_RANGE_UNSATISFIABLE);
	expect_result("bytes=0-99", 0, NF_RANGE_UNSATISFIABLE);
	expect_result("bytes=-0", 0, NF_RANGE_UNSATISFIABLE);
	uint64_t a = SENTINEL, b = SENTINEL;
	assert_int_not_equal(nf_range_parse("bytes=-5", 0, &a, &b), NF_RANGE_OK);
	assert_int_equal(a, SENTINEL);
	assert_int_equal(b, SENTINEL);
}

static void test_ignored(void **state)
{
	(void)state;
	static const char *const values[] = {
		/* several ranges */
		"bytes=0-99,200-299", "bytes=0-1, 5-6", "bytes=-1,0-", "bytes=,0-99",
		/* garbage */
		"", "bytes", "bytes=", "bytes=-", "bytes=abc", "bytes=a-b", "bytes=1-a", "bytes=0-99x",
		"bytes=0x10-20", "bytes=+1-2", "bytes=1--2", "bytes=--1", "bytes=-1-", "bytes=-1-2",
		"bytes=1.5-2", "bytes 0-99", "bytes:0-99", "byte=0-99", "bytess=0-99", "items=0-99",
		"=0-99", "0-99", "bytes=0 -99", "bytes = 0-99", "bytes=- 1", "bytes=0-9 9",
		/* last before first */
		"bytes=5-2", "bytes=1-0", "bytes=999-998",
		/* overflowing numbers */
		"bytes=18446744073709551616-", "bytes=0-18446744073709551616",
		"bytes=-18446744073709551616", "bytes=99999999999999999999999-",
		"bytes=0-99999999999999999999999",
	};

	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
		expect_result(values[i], 1000, NF_RANGE_NONE);
	expect_result(NULL, 1000, NF_RANGE_NONE);
	expect_result(NULL, 0, NF_RANGE_NONE);
}

static void test_case_and_spaces(void **state)
{
	(void)state;
	expect_ok("Bytes=0-99", 1000, 0, 99);
	expect_ok("BYTES=0-99", 1000, 0, 99);
	expect_ok("bYtEs=-10", 1000, 990, 999);
	expect_ok("bytes= 0-99", 1000, 0, 99);
	expect_ok("bytes=\t0-99", 1000, 0, 99);
	expect_ok("bytes=0-99 ", 1000, 0, 99);
	expect_ok("bytes=0- 99", 1000, 0, 99);
	expect_ok("bytes=100- ", 1000, 100, 999);
	expect_ok("bytes= -100 \t", 1000, 900, 999);
	expect_ok("bytes=0000-0099", 1000, 0, 99); /* leading zeros are digits */
}

/* Sizes past 4 GiB use the whole 64 bits. */
static void test_large_sizes(void **state)
{
	(void)state;
	uint64_t big = 10000000000ull;

	expect_ok("bytes=4294967296-", big, 4294967296ull, big - 1);
	expect_ok("bytes=-1", big, big - 1, big - 1);
	expect_ok("bytes=0-", UINT64_MAX, 0, UINT64_MAX - 1);
	expect_ok("bytes=18446744073709551614-", UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 1);
	expect_result("bytes=18446744073709551615-", UINT64_MAX, NF_RANGE_UNSATISFIABLE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_last),
		cmocka_unit_test(test_open_ended),
		cmocka_unit_test(test_suffix),
		cmocka_unit_test(test_clamped_last),
		cmocka_unit_test(test_unsatisfiable),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_ignored),
		cmocka_unit_test(test_case_and_spaces),
		cmocka_unit_test(test_large_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
