/*
 * test_rollout_gates.c - unit tests for a rollout's health gates
 * (nf_rollout_judge, server/store/rollout.c) at their boundaries: errors
 * exactly at the threshold do not halt and one more does; the success gate
 * passes at its threshold only once soaked, and waits for an operator when
 * the rollout asks for approval; a rollout that offered nothing passes a
 * soaked phase only once enough of its devices checked in to show the phase
 * empty, not the fleet away; a paused rollout never advances (but still
 * halts); a completed one still halts; one that is over is never judged;
 * the figures round down.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "store.h"

#define NOW 1800000000000LL /* ms since 1970 */
#define SOAK_MS 600000LL

/* A running rollout at phase 1 of {1, 10, 50, 100}, 95% / 5%, soaked. */
static struct nf_rollout rollout(void)
{
	struct nf_rollout r;

	memset(&r, 0, sizeof r);
	r.id = 7;
	snprintf(r.device, sizeof r.device, "LAMP");
	r.state = NF_ROLLOUT_RUNNING;
	r.nphases = 4;
	r.phases[0] = 1, r.phases[1] = 10, r.phases[2] = 50, r.phases[3] = 100;
	r.phase = 1;
	r.phase_ms = NOW - SOAK_MS;
	r.success_bp = 9500;
	r.error_bp = 500;
	r.soak_ms = SOAK_MS;
	r.silent_ms = 3600000;
	return r;
}

/* Counts of offered devices: confirmed, reverted, failed, silent and the
 * rest pending; split over phases 0 and 1 to check that every phase's
 * offers are judged together. */
static struct nf_rollout_counts counts(uint64_t offered, uint64_t confirmed, uint64_t reverted,
                                       uint64_t failed, uint64_t silent)
{
	struct nf_rollout_counts c;
	uint64_t kinds[NF_RC_COUNT] = {0};

	memset(&c, 0, sizeof c);
	kinds[NF_RC_CONFIRMED] = confirmed;
	kinds[NF_RC_REVERTED] = reverted;
	kinds[NF_RC_FAILED] = failed;
	kinds[NF_RC_SILENT] = silent;
	kinds[NF_RC_PENDING] = offered - confirmed - reverted - failed - silent;
	for (int k = 0; k < NF_RC_COUNT; k++) {
		uint64_t first = kinds[k] / 3;
		c.phase[0][k] = first;
		c.phase[1][k] = kinds[k] - first;
		c.offered[0] += first;
		c.offered[1] += kinds[k] - first;
		c.total[k] = kinds[k];
	}
	c.offered_total = offered;
	return c;
}

static int judge(const struct nf_rollout *r, const struct nf_rollout_counts *c,
                 struct nf_gate_verdict *v)
{
	nf_rollout_judge(r, c, NOW, v);
	return v->action;
}

static void test_error_threshold_is_strict(void **state)
{
	struct nf_rollout r = rollout();
	struct nf_gate_verdict v;
	struct nf_rollout_counts c;

	(void)state;
	r.phase_ms = NOW; /* not soaked: only the error gate can act */
	/* 5 of 100 is exactly 5%: not above it. */
	c = counts(100, 0, 2, 2, 1);
	assert_int_equal(judge(&r, &c, &v), NF_GATE_WAIT);
	assert_int_equal(v.error_bp, 500);
	assert_string_equal(v.why, "");
	/* One more error, of any kind: above, halt, with the counts said. */
	c = counts(100, 0, 2, 2, 2);
	assert_int_equal(judge(&r, &c, &v), NF_GATE_HALT);
	assert_int_equal(v.error_bp, 600);
	assert_non_null(strstr(v.why, "6 of 100 offered failed (2 reverted, 2 failed, 2 silent)"));
	assert_non_null(strstr(v.why, "6.00% > 5.00% in phase 2 (10%)"));
	/* The same share over more devices: 50 of 1000 holds, 51 halts. */
	c = counts(1000, 0, 50, 0, 0);
	assert_int_equal(judge(&r, &c, &v), NF_GATE_WAIT);
	c = counts(1000, 0, 51, 0, 0);
	assert_int_equal(judge(&r, &c, &v), NF_GATE_HALT);
	/* A threshold of 0 halts on the first error; of 100, never. */
	r.error_bp = 0;
	c = counts(1000, 0, 0, 0, 0);
	assert_int_equal(judge(&r, &c, &v), NF_GATE_WAIT);
	c = counts(1000, 0, 0, 1, 0);
	assert_int_equal(judge(&r, &c, &v), NF_GATE_HALT);
	r.error_bp = 10000;
	c = counts(10, 0, 5, 5, 0);
	assert_int_equal(judge(&r, &c, &v), NF_GATE_WAIT);
	assert_int_equal(v.error_bp, 10000);
}

static void test_success_gate_and_soak(void **state)
{
	struct nf_rollout r = rollout();
	struct nf_gate_verdict v;
	struct nf_rollout_counts c = counts(100, 95, 0, 0, 0);

	(void)state;
	/* 95 of 100 is the threshold: passes, once soaked. */
	assert_int_equal(judge(&r, &c, &v), NF_GATE_ADVANCE);
	assert_int_equal(v.success_bp, 9500);
	assert_int_equal(v.soak_left_ms, 0);
	assert_non_null(strstr(v.why, "95 of 100 offered confirmed (95.00% >= 95.00%)"));
	c = counts(100, 94, 0, 0, 0);
	assert_int_equal(judge(&r, &c, &v), NF_GATE_WAIT);
	/* One ms short of the soak: waits, and says how long is left. */
	c = counts(100, 100, 0, 0, 0);
	r.phase_ms = NOW - SOAK_MS + 1;
	assert_int_equal(judge(&r, &c, &v), NF_GATE_WAIT);
	assert_int_equal(v.soak_left_ms, 1);
	r.phase_ms = NOW - SOAK_MS;
	assert_int_equal(judge(&r, &c, &v), NF_GATE_ADVANCE);
	/* With approval the same verdict waits for an operator. */
	r.approval = true;
	assert_int_equal(judge(&r, &c, &v), NF_GATE_APPROVAL);
	assert_string_equal(nf_gate_action_name(v.action), "awaiting approval");
	c = counts(100, 94, 0, 0, 0);
	assert_int_equal(judge(&r, &c, &v), NF_GATE_WAIT);
	/* The figures round down: 2 of 3 is 66.66%. */
	c = counts(3, 2, 0, 0, 0);
	judge(&r, &c, &v);
	assert_int_equal(v.success_bp, 6666);
}

static void test_nothing_offered_passes_once_shown_empty(void **state)
{
	struct nf_rollout r = rollout(); /* phase 2 of 4: 10% */
	struct nf_gate_verdict v;
	struct nf_rollout_counts c = counts(0, 0, 0, 0, 0);

	(void)state;
	/* Nobody there (no device known, none seen): it waits, saying why. */
	assert_int_equal(judge(&r, &c, &v), NF_GATE_WAIT);
	assert_string_equal(v.why, "phase 2 (10%) has offered nothing: 0 of the 0 LAMP devices known "
	                           "checked in since it began, 1 needed to pass it empty");
	/* 1,000 devices known, 9 seen: at 10% one would be expected in 10. */
	c.known = 1000, c.seen = 9;
	assert_int_equal(judge(&r, &c, &v), NF_GATE_WAIT);
	c.seen = 10;
	assert_int_equal(judge(&r, &c, &v), NF_GATE_ADVANCE);
	assert_int_equal(v.success_bp, 0);
	assert_int_equal(v.error_bp, 0);
	/* A fleet too small for the phase: half of it seen is enough. */
	r.phase = 0; /* 1%: 100 would be needed */
	c.known = 30, c.seen = 14;
	assert_int_equal(judge(&r, &c, &v), NF_GATE_WAIT);
	c.seen = 15;
	assert_int_equal(judge(&r, &c, &v), NF_GATE_ADVANCE);
	/* Its window closed (the store then counts nothing): never. */
	c = counts(0, 0, 0, 0, 0);
	c.window_closed = true;
	assert_int_equal(judge(&r, &c, &v), NF_GATE_WAIT);
	assert_non_null(strstr(v.why, "has offered nothing, and its window is closed"));
	/* Every device of the type already on the release: nothing to offer. */
	c = counts(0, 0, 0, 0, 0);
	c.all = 40;
	assert_int_equal(judge(&r, &c, &v), NF_GATE_ADVANCE);
	/* Never before the soak. */
	c.all = 0, c.known = 30, c.seen = 15;
	r.phase_ms = NOW - 1000;
	assert_int_equal(judge(&r, &c, &v), NF_GATE_WAIT);
	assert_int_equal(v.soak_left_ms, SOAK_MS - 1000);
}

static void test_paused_and_over(void **state)
{
	struct nf_rollout r = rollout();
	struct nf_gate_verdict v;
	struct nf_rollout_counts good = counts(100, 100, 0, 0, 0), bad = counts(100, 0, 50, 0, 0);

	(void)state;
	/* Paused: soaked and all confirmed, and still it never advances. */
	r.state = NF_ROLLOUT_PAUSED;
	assert_int_equal(judge(&r, &good, &v), NF_GATE_WAIT);
	r.approval = true;
	assert_int_equal(judge(&r, &good, &v), NF_GATE_WAIT);
	/* But a paused rollout whose devices fail is halted. */
	assert_int_equal(judge(&r, &bad, &v), NF_GATE_HALT);
	/* Completed: it still offers to late devices, so its error gate still
	 * halts it; it never advances. */
	r.state = NF_ROLLOUT_COMPLETED;
	r.approval = false;
	assert_int_equal(judge(&r, &bad, &v), NF_GATE_HALT);
	assert_int_equal(judge(&r, &good, &v), NF_GATE_WAIT);
	/* Halted, aborted: never judged, figures still given. */
	for (int s = NF_ROLLOUT_HALTED; s < NF_ROLLOUT_STATES; s++) {
		if (s == NF_ROLLOUT_COMPLETED)
			continue;
		r.state = s;
		assert_int_equal(judge(&r, &bad, &v), NF_GATE_WAIT);
		assert_int_equal(v.error_bp, 5000);
		assert_int_equal(judge(&r, &good, &v), NF_GATE_WAIT);
		assert_int_equal(v.success_bp, 10000);
	}
	assert_string_equal(nf_gate_action_name(NF_GATE_ACTIONS), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_threshold_is_strict),
	    cmocka_unit_test(test_success_gate_and_soak),
	    cmocka_unit_test(test_nothing_offered_passes_once_shown_empty),
	    cmocka_unit_test(test_paused_and_over),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
