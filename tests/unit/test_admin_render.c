/*
 * test_admin_render.c - unit tests for the admin API's JSON
 * (server/admin/render.c): strings from devices come out as valid UTF-8
 * text whatever bytes they were (markup stays characters, invalid bytes
 * become U+FFFD), times as RFC 3339 and ms (null when unknown), rules as
 * numbers or null, tags as a list, and the decision's sentence for each
 * answer kind.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin.h"

#define T0 1796212800000LL /* 2026-12-02T12:00:00Z */

static void sample(struct nf_device *d)
{
	memset(d, 0, sizeof *d);
	snprintf(d->key, sizeof d->key, "5C:CF:7F:00:00:01");
	snprintf(d->mac, sizeof d->mac, "5C:CF:7F:00:00:01");
	snprintf(d->ip, sizeof d->ip, "10.0.0.1");
	snprintf(d->device, sizeof d->device, "<img src=x onerror=alert(1)>");
	snprintf(d->version, sizeof d->version, "1.0\xff\xfe\"\\");
	d->client = NF_CLIENT_TASMOTA;
	d->first_seen_ms = T0;
	d->last_seen_ms = T0 + 1500;
	d->last_check_ms = T0 + 1500;
	d->answer = NF_ANSWER_HELD;
	d->answer_rule = 3;
	snprintf(d->answer_target, sizeof d->answer_target, "2.0.0");
	snprintf(d->answer_reason, sizeof d->answer_reason, "image 612 KiB, 480 KiB free");
	d->rule = -1;
	snprintf(d->tags, sizeof d->tags, "kitchen,floor-1");
}

static void test_device(void **state)
{
	struct nf_device d;
	json_t *o;

	(void)state;
	sample(&d);
	o = nf_render_device(&d);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "type")),
	                    "<img src=x onerror=alert(1)>");
	assert_string_equal(json_string_value(json_object_get(o, "version")),
	                    "1.0\xef\xbf\xbd\xef\xbf\xbd\"\\");
	assert_string_equal(json_string_value(json_object_get(o, "client")), "tasmota");
	assert_string_equal(json_string_value(json_object_get(o, "last_seen")),
	                    "2026-12-02T12:00:01.500Z");
	assert_int_equal(json_integer_value(json_object_get(o, "last_seen_ms")), T0 + 1500);
	assert_true(json_is_null(json_object_get(o, "state_since")));
	assert_true(json_is_null(json_object_get(o, "state_since_ms")));
	assert_true(json_is_null(json_object_get(o, "offer")));
	json_t *answer = json_object_get(o, "answer");
	assert_string_equal(json_string_value(json_object_get(answer, "kind")), "held");
	assert_int_equal(json_integer_value(json_object_get(answer, "rule")), 3);
	json_t *tags = json_object_get(o, "tags");
	assert_int_equal(json_array_size(tags), 2);
	assert_string_equal(json_string_value(json_array_get(tags, 1)), "floor-1");
	/* The whole answer is valid JSON that parses back. */
	char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_error_t err;
	json_t *back = json_loads(text, 0, &err);
	assert_non_null(back);
	assert_true(json_equal(o, back));
	json_decref(back);
	free(text);
	json_decref(o);
}

static void test_decision(void **state)
{
	struct nf_device d;
	json_t *o;
	const char *s;

	(void)state;
	sample(&d);
	o = nf_render_decision(&d, T0 + 5000);
	s = json_string_value(json_object_get(o, "explanation"));
	assert_non_null(strstr(s,
	                       "rule 3 of versions.json (counted from 0) matched and would offer "
	                       "version 2.0.0, but the offer was held back: image 612 KiB, "
	                       "480 KiB free."));
	assert_true(json_is_null(json_object_get(o, "offer_rule")));
	json_decref(o);

	d.answer = NF_ANSWER_OFFERED;
	d.state = NF_UPDATE_DOWNLOADING;
	d.rule = 3;
	snprintf(d.target, sizeof d.target, "2.0.0");
	o = nf_render_decision(&d, T0 + 5000);
	s = json_string_value(json_object_get(o, "explanation"));
	assert_non_null(strstr(s, "rule 3 of versions.json (counted from 0) offered version 2.0.0; "
	                          "the offer is now downloading: part of it served so far."));
	assert_int_equal(json_integer_value(json_object_get(o, "offer_rule")), 3);
	json_decref(o);

	d.answer = NF_ANSWER_NONE;
	d.answer_rule = -1;
	o = nf_render_decision(&d, T0 + 5000);
	s = json_string_value(json_object_get(o, "explanation"));
	assert_non_null(strstr(s, "got no update: no rule of versions.json offers anything to "
	                          "device type \"<img src=x onerror=alert(1)>\""));
	assert_non_null(strstr(s, "and its MAC"));
	assert_true(json_is_null(json_object_get(o, "answer_rule")));
	json_decref(o);
}

static void test_summary_and_history(void **state)
{
	struct nf_summary_row rows[2] = {{"SONOFF", "1.0", 7}, {"bad\xc3", "2.0", 1}};
	struct nf_fleet_summary s = {
	    .devices = 8, .seen_24h = 5, .held = 3, .count = 2, .rows = rows};
	struct nf_history h[1];
	json_t *o;

	(void)state;
	s.by_state[NF_UPDATE_REVERTED] = 2;
	o = nf_render_summary(&s, T0);
	assert_int_equal(json_integer_value(json_object_get(o, "devices")), 8);
	assert_int_equal(json_integer_value(json_object_get(o, "held_back")), 3);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(o, "by_state"), "reverted")), 2);
	assert_int_equal(json_object_size(json_object_get(o, "by_state")), NF_UPDATE_COUNT);
	json_t *r = json_array_get(json_object_get(o, "by_type_version"), 1);
	assert_string_equal(json_string_value(json_object_get(r, "type")), "bad\xef\xbf\xbd");
	json_decref(o);

	memset(h, 0, sizeof h);
	h[0].at_ms = T0;
	h[0].kind = NF_HISTORY_REVERTED;
	h[0].state = NF_UPDATE_REVERTED;
	h[0].rule = -1;
	o = nf_render_history(h, 1);
	r = json_array_get(o, 0);
	assert_string_equal(json_string_value(json_object_get(r, "kind")), "reverted");
	assert_string_equal(json_string_value(json_object_get(r, "at")),
	                    "2026-12-02T12:00:00.000Z");
	assert_true(json_is_null(json_object_get(r, "rule")));
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_device),
	    cmocka_unit_test(test_decision),
	    cmocka_unit_test(test_summary_and_history),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
