/*
 * test_admin_body.c - unit tests for the admin API's JSON body checker
 * (server/admin/body.c): a body every field of which is right is given
 * back; every kind of wrong body is refused naming the field and what it
 * must be, since that message is what the person at the API reads.
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

/* A table with every type, as an endpoint writes one. */
static const struct nf_body_field fields[] = {
    {"release", NF_BODY_INT, true, 1, 1000000, 0, 0, 0, 0},
    {"phases", NF_BODY_INTS, false, 1, 100, 0, 0, 1, 10},
    {"tags", NF_BODY_STRINGS, false, 0, 0, 1, 31, 0, 16},
    {"threshold", NF_BODY_NUMBER, false, 0, 100, 0, 0, 0, 0},
    {"approval", NF_BODY_BOOL, false, 0, 0, 0, 0, 0, 0},
    {"window", NF_BODY_STRING, false, 0, 0, 1, 11, 0, 0},
    {NULL, 0, false, 0, 0, 0, 0, 0, 0},
};

static void refused(const char *text, const char *field, const char *words)
{
	char got[NF_ADMIN_MAX_FIELD], err[512] = "";
	json_t *out = (json_t *)1;

	if (nf_admin_body_parse(text, strlen(text), fields, &out, got, err, sizeof err) == 0)
		fail_msg("accepted: %s", text);
	assert_null(out);
	assert_string_equal(got, field);
	if (strstr(err, words) == NULL)
		fail_msg("%s: \"%s\" is not in \"%s\"", text, words, err);
}

static void test_accepted(void **state)
{
	const char *text = "{\"release\": 7, \"phases\": [1, 10, 50, 100], \"tags\": [\"attic\"],"
	                   " \"threshold\": 95.5, \"approval\": true, \"window\": \"01:00-05:00\"}";
	char field[NF_ADMIN_MAX_FIELD], err[512];
	json_t *out;

	(void)state;
	assert_int_equal(nf_admin_body_parse(text, strlen(text), fields, &out, field, err,
	                                     sizeof err),
	                 0);
	assert_int_equal(json_integer_value(json_object_get(out, "release")), 7);
	assert_int_equal(json_array_size(json_object_get(out, "phases")), 4);
	json_decref(out);
	/* Optional fields may be left out; the threshold may be an integer. */
	text = "{\"release\": 1, \"threshold\": 90}";
	assert_int_equal(nf_admin_body_parse(text, strlen(text), fields, &out, field, err,
	                                     sizeof err),
	                 0);
	json_decref(out);
}

static void test_refused(void **state)
{
	char big[NF_ADMIN_MAX_BODY + 2];

	(void)state;
	refused("", "body", "empty");
	refused("[1]", "body", "must be a JSON object, not an array");
	refused("{\"release\": 1,", "body", "not JSON");
	refused("{\"release\": 1, \"release\": 2}", "body", "duplicate");
	refused("{\"release\": 1, \"colour\": \"red\"}", "colour",
	        "unknown field \"colour\": the fields are release, phases, tags");
	refused("{}", "release", "release is missing (an integer)");
	refused("{\"release\": 7, \"\": true}", "\"\"", "unknown field \"\"");
	refused("{\"release\": \"7\"}", "release", "must be an integer, not a string");
	refused("{\"release\": 7.5}", "release", "not a number with a fraction");
	refused("{\"release\": 0}", "release", "from 1 to 1000000, not 0");
	refused("{\"release\": 1, \"phases\": 10}", "phases", "an array of integers, not an integer");
	refused("{\"release\": 1, \"phases\": []}", "phases", "1 to 10 elements, not 0");
	refused("{\"release\": 1, \"phases\": [1, 101]}", "phases[1]", "from 1 to 100, not 101");
	refused("{\"release\": 1, \"phases\": [1, null]}", "phases[1]", "not null");
	refused("{\"release\": 1, \"tags\": [\"\"]}", "tags[0]", "1 to 31 bytes");
	refused("{\"release\": 1, \"tags\": [\"a\\u0000b\"]}", "body", "not JSON"); /* jansson */
	refused("{\"release\": 1, \"threshold\": 100.5}", "threshold", "from 0 to 100, not 100.5");
	refused("{\"release\": 1, \"threshold\": \"high\"}", "threshold", "must be a number");
	refused("{\"release\": 1, \"approval\": 1}", "approval", "true or false, not an integer");
	refused("{\"release\": 1, \"window\": \"01:00 to 05:00\"}", "window", "1 to 11 bytes");
	memset(big, ' ', sizeof big);
	big[0] = '{';
	big[sizeof big - 2] = '}';
	big[sizeof big - 1] = '\0';
	refused(big, "body", "more than 65536");
}

/* A rollout's window (nf_rollout_window_parse): minutes of the day, a
 * window across midnight kept as written, every malformed or empty one
 * refused with a message, and written back as it was read. */
static void test_window(void **state)
{
	static const struct {
		const char *text;
		int start, end;
	} good[] = {
	    {"01:00-05:00", 60, 300}, {"22:00-05:00", 1320, 300}, {"00:00-23:59", 0, 1439},
	    {"23:59-00:00", 1439, 0}, {"", -1, -1},
	};
	static const char *const bad[] = {
	    "01:00-01:00", "00:00-00:00", "1:00-5:00",  "24:00-05:00", "01:60-05:00",
	    "01:00/05:00", "01:00-05:0x", "01:00-05:00 ", " 01:00-05:00", "0100-0500",
	    "01:00-", "-05:00", "aa:bb-cc:dd", "01:00-05:00-07:00",
	};
	char err[256], out[NF_ROLLOUT_WINDOW_LEN];
	int start, end;

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		assert_int_equal(nf_rollout_window_parse(good[i].text, &start, &end, err, sizeof err),
		                 0);
		assert_int_equal(start, good[i].start);
		assert_int_equal(end, good[i].end);
		nf_rollout_window_format(start, end, out);
		assert_string_equal(out, good[i].text);
	}
	assert_int_equal(nf_rollout_window_parse(NULL, &start, &end, err, sizeof err), 0);
	assert_int_equal(start, -1);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		if (nf_rollout_window_parse(bad[i], &start, &end, err, sizeof err) == 0)
			fail_msg("accepted window \"%s\"", bad[i]);
		assert_int_equal(start, -1);
		assert_int_equal(end, -1);
		assert_non_null(strstr(err, "window"));
	}
	assert_int_equal(nf_rollout_window_parse("05:30-05:30", &start, &end, err, sizeof err), -1);
	assert_non_null(strstr(err, "is empty"));
	nf_rollout_window_format(-1, 300, out);
	assert_string_equal(out, "");
	nf_rollout_window_format(60, 1440, out);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepted),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_window),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
