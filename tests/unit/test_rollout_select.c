/*
 * test_rollout_select.c - unit tests for which devices a rollout offers
 * to (server/rollout_select.c): over 10,000 generated MACs, each phase
 * selects its share within a bound a uniform hash meets, raising the
 * percentage only adds devices, two rollouts pick unrelated devices, the
 * buckets are fixed values (a change of hash would move devices between
 * phases of running rollouts), and each eligibility rule says why.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "nofussd.h"

#define FLEET 10000

static void mac(unsigned i, char out[NF_STORE_MAC_LEN])
{
	snprintf(out, NF_STORE_MAC_LEN, "5C:CF:7F:%02X:%02X:%02X", (i >> 16) & 0xff, (i >> 8) & 0xff,
	         i & 0xff);
}

static void test_phases_only_add(void **state)
{
	static const unsigned phases[] = {1, 10, 50, 100};
	bool picked[FLEET] = {false};
	char key[NF_STORE_MAC_LEN];

	(void)state;
	for (size_t p = 0; p < sizeof phases / sizeof phases[0]; p++) {
		unsigned count = 0;
		for (unsigned i = 0; i < FLEET; i++) {
			mac(i, key);
			bool now = nf_rollout_selected(7, key, phases[p]);
			if (picked[i] && !now)
				fail_msg("%s left the rollout going to %u%%", key, phases[p]);
			picked[i] = now;
			count += now;
		}
		/* Binomial: 4 standard deviations around the expected share. */
		double want = FLEET * phases[p] / 100.0;
		double sd = 0;
		for (double v = want * (1 - phases[p] / 100.0); sd * sd < v; sd += 0.01)
			;
		if (count < want - 4 * sd - 0.5 || count > want + 4 * sd + 0.5)
			fail_msg("%u%%: %u of %u devices, expected %.0f +- %.0f", phases[p], count, FLEET,
			         want, 4 * sd);
	}
	for (unsigned i = 0; i < FLEET; i++)
		assert_true(picked[i]); /* 100%: everyone */
	mac(1, key);
	assert_false(nf_rollout_selected(7, key, 0));
}

static void test_rollouts_independent(void **state)
{
	char key[NF_STORE_MAC_LEN];
	unsigned both = 0, a = 0;

	(void)state;
	for (unsigned i = 0; i < FLEET; i++) {
		mac(i, key);
		bool in_a = nf_rollout_selected(1, key, 10), in_b = nf_rollout_selected(2, key, 10);
		a += in_a;
		both += in_a && in_b;
	}
	/* Independent: about 10% of rollout 1's 10% are in rollout 2's. */
	assert_in_range(a, 880, 1120);
	assert_in_range(both, 60, 140);
}

static void test_fixed_values(void **state)
{
	(void)state;
	/* These never change: running rollouts depend on them. */
	assert_int_equal(nf_rollout_bucket(1, "5C:CF:7F:00:00:01"),
	                 nf_rollout_bucket(1, "5C:CF:7F:00:00:01"));
	assert_int_not_equal(nf_rollout_bucket(1, "5C:CF:7F:00:00:01"),
	                     nf_rollout_bucket(2, "5C:CF:7F:00:00:01"));
	assert_int_equal(nf_rollout_bucket(1, "5C:CF:7F:00:00:01"), 6379);
	assert_int_equal(nf_rollout_bucket(42, "SONOFF@10.0.0.5"), 3409);
	assert_int_equal(nf_rollout_bucket(7, ""), 349);
	/* Ids of every length hash as their decimal text ("10:", ...). */
	assert_int_equal(nf_rollout_bucket(0, "A"), 2129);
	assert_int_equal(nf_rollout_bucket(10, "5C:CF:7F:00:00:01"), 771);
	assert_int_equal(nf_rollout_bucket(100, "A"), 393);
	assert_int_equal(nf_rollout_bucket(INT64_MAX, "5C:CF:7F:00:00:01"), 669);
}

static void test_eligibility(void **state)
{
	struct nf_rollout ro = {.id = 3, .device = "SONOFF", .min_version = "1.0",
	                        .max_version = "1.9"};
	struct nf_rollout_device d = {"SONOFF", "1.5.0", "5C:CF:7F:00:00:01", "attic,lab"};

	(void)state;
	assert_int_equal(nf_rollout_eligible(&ro, "2.0.0", &d), NF_FIT_YES);
	d.device = "LIGHT";
	assert_int_equal(nf_rollout_eligible(&ro, "2.0.0", &d), NF_FIT_OTHER_TYPE);
	d.device = "SONOFF";
	d.version = "2.0.0";
	assert_int_equal(nf_rollout_eligible(&ro, "2.0.0", &d), NF_FIT_CURRENT);
	d.version = "1.0-beta"; /* version_compare: 1.0-beta < 1.0 */
	assert_int_equal(nf_rollout_eligible(&ro, "2.0.0", &d), NF_FIT_BELOW_MIN);
	d.version = "1.9.1";
	assert_int_equal(nf_rollout_eligible(&ro, "2.0.0", &d), NF_FIT_ABOVE_MAX);
	d.version = "1.9";
	assert_int_equal(nf_rollout_eligible(&ro, "2.0.0", &d), NF_FIT_YES);
	snprintf(ro.macs, sizeof ro.macs, "5C:CF:7F:00:00:02,5C:CF:7F:00:00:01");
	assert_int_equal(nf_rollout_eligible(&ro, "2.0.0", &d), NF_FIT_YES);
	d.mac = "5C:CF:7F:00:00:03";
	assert_int_equal(nf_rollout_eligible(&ro, "2.0.0", &d), NF_FIT_NOT_LISTED);
	d.mac = NULL; /* path-form: no MAC, never on a MAC list */
	assert_int_equal(nf_rollout_eligible(&ro, "2.0.0", &d), NF_FIT_NOT_LISTED);
	ro.macs[0] = '\0';
	snprintf(ro.tags, sizeof ro.tags, "cellar,lab");
	assert_int_equal(nf_rollout_eligible(&ro, "2.0.0", &d), NF_FIT_YES);
	d.tags = "attic,la"; /* a prefix is not the tag */
	assert_int_equal(nf_rollout_eligible(&ro, "2.0.0", &d), NF_FIT_NO_TAG);
	d.tags = NULL;
	assert_int_equal(nf_rollout_eligible(&ro, "2.0.0", &d), NF_FIT_NO_TAG);
	assert_string_equal(nf_rollout_fit_name(NF_FIT_BELOW_MIN), "below min_version");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_phases_only_add),
	    cmocka_unit_test(test_rollouts_independent),
	    cmocka_unit_test(test_fixed_values),
	    cmocka_unit_test(test_eligibility),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
