/*
 * test_conns.c - unit tests for conns.c: request-head deadlines and the
 * shedding of connections near the connection limit.
 *
 * The close function records which owners conns.c asked to close; the
 * tests then report them closed as libmicrohttpd would. Times are given,
 * not read from a clock.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <limits.h>
#include <stdint.h>

#include "nofussd.h"

#define MAX 128
static int closed[MAX * 4];
static unsigned nclosed;

static void record_close(void *owner)
{
	assert_true(nclosed < sizeof closed / sizeof closed[0]);
	closed[nclosed++] = (int)(intptr_t)owner;
}

static int setup(void **state)
{
	(void)state;
	nclosed = 0;
	return 0;
}

#define OWNER(i) ((void *)(intptr_t)(i))

/* Heads due 10 s after opening; expired ones go oldest first, never one
 * whose head is complete. */
static void test_head_deadline(void **state)
{
	struct nf_conns *c = nf_conns_new(MAX, 10, 30, record_close);
	struct nf_conn *a, *b, *d;

	(void)state;
	a = nf_conns_opened(c, OWNER(1), 1000);
	b = nf_conns_opened(c, OWNER(2), 2000);
	d = nf_conns_opened(c, OWNER(3), 3000);
	nf_conns_head_done(c, b); /* b is being answered: never cut */
	assert_int_equal(nf_conns_sweep(c, 5000), 6000); /* a is due at 11000 */
	assert_int_equal(nclosed, 0);
	assert_int_equal(nf_conns_sweep(c, 12500), 500); /* d is due at 13000 */
	assert_int_equal(nclosed, 1);
	assert_int_equal(closed[0], 1);
	/* asked once only, even before libmicrohttpd closes it */
	nf_conns_sweep(c, 12600);
	assert_int_equal(nclosed, 1);
	nf_conns_closed(c, a);
	assert_int_equal(nf_conns_sweep(c, 100000), INT_MAX);
	assert_int_equal(nclosed, 2);
	assert_int_equal(closed[1], 3);
	nf_conns_closed(c, d);
	assert_int_equal(nf_conns_stats(c).expired, 2);
	assert_int_equal(nf_conns_stats(c).open, 1);
	nf_conns_closed(c, b);
	assert_int_equal(nf_conns_stats(c).open, 0);
	nf_conns_free(c);
}

/* Kept alive after an answer: the next head is due idle + header timeout
 * later, and completing it stops the clock again. */
static void test_keep_alive(void **state)
{
	struct nf_conns *c = nf_conns_new(MAX, 10, 30, record_close);
	struct nf_conn *a = nf_conns_opened(c, OWNER(1), 0);

	(void)state;
	nf_conns_head_done(c, a);
	nf_conns_answered(c, a, 5000);
	assert_int_equal(nf_conns_sweep(c, 44000), 1000); /* due at 45000 */
	nf_conns_head_done(c, a);
	assert_int_equal(nf_conns_sweep(c, 1000000), INT_MAX);
	assert_int_equal(nclosed, 0);
	nf_conns_answered(c, a, 1000000);
	nf_conns_sweep(c, 1040000);
	assert_int_equal(nclosed, 1);
	nf_conns_closed(c, a);
	nf_conns_free(c);
}

/* Near the limit the oldest waiting connections are shed (first those
 * that never completed a head, then kept-alive ones), down to max minus
 * the headroom; busy ones never. */
static void test_shedding(void **state)
{
	struct nf_conns *c = nf_conns_new(MAX, 10, 30, record_close);
	struct nf_conn *n[MAX];
	unsigned headroom = MAX / NF_SHED_HEADROOM_DIV;

	(void)state;
	for (int i = 0; i < MAX; i++) {
		n[i] = nf_conns_opened(c, OWNER(i), 1000 + (uint64_t)i);
		assert_non_null(n[i]);
	}
	assert_null(nf_conns_opened(c, OWNER(999), 2000)); /* over max: not tracked */
	nf_conns_head_done(c, n[0]);                       /* busy: never shed */
	nf_conns_head_done(c, n[1]);
	nf_conns_answered(c, n[1], 1500);                  /* kept alive: shed last */
	/* next due: n[2 + headroom], opened at 1002 + headroom */
	assert_int_equal(nf_conns_sweep(c, 2000), 10000 + 2 + headroom - 1000);
	assert_int_equal(nclosed, headroom);
	for (unsigned i = 0; i < headroom; i++)
		assert_int_equal(closed[i], 2 + (int)i);
	for (unsigned i = 0; i < headroom; i++)
		nf_conns_closed(c, n[2 + i]);
	/* below the limit again: libmicrohttpd must run at once to accept */
	assert_int_equal(nf_conns_sweep(c, 2001), 0);
	assert_int_equal(nclosed, headroom);
	assert_int_equal(nf_conns_stats(c).shed, headroom);
	nf_conns_free(c);
}

/* A mass expiry is done in steps of NF_SWEEP_MAX. */
static void test_sweep_bounded(void **state)
{
	unsigned max = 3 * NF_SWEEP_MAX;
	struct nf_conns *c = nf_conns_new(max, 1, 30, record_close);
	unsigned calls = 0;

	(void)state;
	nclosed = 0;
	for (unsigned i = 0; i < max / 2; i++)
		nf_conns_opened(c, OWNER(i), 0);
	while (nf_conns_sweep(c, 5000) == 0 && calls < 10) {
		calls++;
		assert_true(nclosed <= calls * NF_SWEEP_MAX);
	}
	assert_int_equal(nclosed, max / 2);
	nf_conns_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_head_deadline, setup),
	    cmocka_unit_test_setup(test_keep_alive, setup),
	    cmocka_unit_test_setup(test_shedding, setup),
	    cmocka_unit_test_setup(test_sweep_bounded, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
