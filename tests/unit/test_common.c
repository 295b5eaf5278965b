/*
 * test_common.c - the host helpers of common/: hex encoding and decoding of
 * digests, and the monotonic clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common.h"

static void hex_encodes_lower_case(void **state)
{
	const unsigned char md5[16] = {0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04,
	                               0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42, 0x7e};
	char out[33];

	(void)state;
	memset(out, 'x', sizeof out);
	nf_hex_encode(md5, sizeof md5, out);
	assert_string_equal(out, "d41d8cd98f00b204e9800998ecf8427e");
	nf_hex_encode(md5, 0, out);
	assert_string_equal(out, "");
}

static void hex_decodes_either_case(void **state)
{
	unsigned char b[4];

	(void)state;
	assert_int_equal(nf_hex_decode("00fFa5C3", b, 4), 0);
	assert_int_equal(b[0], 0x00);
	assert_int_equal(b[1], 0xff);
	assert_int_equal(b[2], 0xa5);
	assert_int_equal(b[3], 0xc3);
}

static void hex_refuses_bad_digits_and_short_input(void **state)
{
	unsigned char b[4];

	(void)state;
	assert_int_equal(nf_hex_decode("00ffa5c", b, 4), -1);  /* one digit short */
	assert_int_equal(nf_hex_decode("00ffa5", b, 4), -1);   /* one byte short */
	assert_int_equal(nf_hex_decode("00fga5c3", b, 4), -1); /* 'g' */
	assert_int_equal(nf_hex_decode(" 0ffa5c3", b, 4), -1);
	assert_int_equal(nf_hex_decode("", b, 0), 0);
}

static void hex_round_trips_every_byte(void **state)
{
	unsigned char in[256], back[256];
	char hex[513];

	(void)state;
	for (int i = 0; i < 256; i++)
		in[i] = (unsigned char)i;
	nf_hex_encode(in, sizeof in, hex);
	assert_int_equal(strlen(hex), 512);
	assert_int_equal(nf_hex_decode(hex, back, sizeof back), 0);
	assert_memory_equal(in, back, sizeof in);
}

static void clock_is_monotonic_milliseconds(void **state)
{
	struct timespec pause = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
	uint64_t a, b;

	(void)state;
	a = nf_clock_ms();
	nanosleep(&pause, NULL);
	b = nf_clock_ms();
	assert_true(b >= a + 20);
	assert_true(b < a + 20000); /* milliseconds, not microseconds */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(hex_encodes_lower_case),
	    cmocka_unit_test(hex_decodes_either_case),
	    cmocka_unit_test(hex_refuses_bad_digits_and_short_input),
	    cmocka_unit_test(hex_round_trips_every_byte),
	    cmocka_unit_test(clock_is_monotonic_milliseconds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
