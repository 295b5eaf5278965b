/*
 * test_metrics.c - unit tests for /metrics' writer (server/admin/metrics.c)
 * against the rules of the Prometheus text format 0.0.4, checked line by
 * line by a small parser here: # HELP and # TYPE once per family and before
 * its samples, metric and label names by their grammar, label values
 * quoted with only \\ \" \n escapes and valid UTF-8, values that parse as
 * numbers, no series twice, counters named _total, a final newline.
 *
 * Then what the text says: the counters' values, the device type x version
 * series capped with the rest (and a real "other" series) summed into one,
 * hostile label values escaped, and no store families when the store is off.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"

#define MAX_SERIES 1000

struct family {
	char name[128];
	char type[16];
	bool help, samples;
};

struct parsed {
	struct family fam[200];
	int nfam;
	char *series[MAX_SERIES];
	int nseries;
};

static bool name_ok(const char *s, size_t n, bool metric)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		             (metric && c == ':');
		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

static struct family *find_family(struct parsed *p, const char *name, size_t n)
{
	for (int i = 0; i < p->nfam; i++)
		if (strlen(p->fam[i].name) == n && memcmp(p->fam[i].name, name, n) == 0)
			return &p->fam[i];
	return NULL;
}

static struct family *new_family(struct parsed *p, const char *name, size_t n)
{
	struct family *f = &p->fam[p->nfam++];

	assert_true(p->nfam < 200);
	assert_true(n < sizeof f->name);
	memset(f, 0, sizeof *f);
	memcpy(f->name, name, n);
	return f;
}

/* The label set at s ("{...}"): checks it; returns the length consumed. */
static size_t check_labels(const char *s, const char *line)
{
	const char *p = s + 1;

	while (*p != '}') {
		size_t n = strcspn(p, "=");
		if (!name_ok(p, n, false))
			fail_msg("bad label name in: %s", line);
		p += n;
		if (p[0] != '=' || p[1] != '"')
			fail_msg("label value not quoted in: %s", line);
		p += 2;
		while (*p != '"') {
			if (*p == '\0' || *p == '\n')
				fail_msg("unterminated label value in: %s", line);
			if (*p == '\\') {
				if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
					fail_msg("bad escape in: %s", line);
				p += 2;
				continue;
			}
			size_t k = nf_admin_utf8_next((const unsigned char *)p, strlen(p));
			if (k == 0)
				fail_msg("invalid UTF-8 in: %s", line);
			p += k;
		}
		p++;
		if (*p == ',')
			p++;
		else if (*p != '}')
			fail_msg("bad label separator in: %s", line);
	}
	return (size_t)(p + 1 - s);
}

static void check_sample(struct parsed *p, const char *line)
{
	size_t n = strcspn(line, "{ ");
	struct family *f = find_family(p, line, n);
	const char *rest = line + n;
	char *end;

	if (!name_ok(line, n, true))
		fail_msg("bad metric name: %s", line);
	if (f == NULL || f->type[0] == '\0')
		fail_msg("sample before its # TYPE: %s", line);
	f->samples = true;
	if (*rest == '{')
		rest += check_labels(rest, line);
	if (*rest != ' ')
		fail_msg("no space before the value: %s", line);
	strtod(rest + 1, &end);
	if (end == rest + 1 || *end != '\0')
		fail_msg("bad value: %s", line);
	for (int i = 0; i < p->nseries; i++)
		if (strncmp(p->series[i], line, (size_t)(rest - line)) == 0 &&
		    p->series[i][rest - line] == ' ')
			fail_msg("series twice: %s", line);
	assert_true(p->nseries < MAX_SERIES);
	p->series[p->nseries++] = strdup(line);
}

/* Checks every line of text; fills p. */
static void check_format(const char *text, struct parsed *p)
{
	char *copy = strdup(text), *save = NULL;
	size_t len = strlen(text);

	memset(p, 0, sizeof *p);
	assert_true(len > 0 && text[len - 1] == '\n');
	for (char *line = strtok_r(copy, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
			const char *name = line + 7;
			size_t n = strcspn(name, " ");
			struct family *f = find_family(p, name, n);
			if (!name_ok(name, n, true) || name[n] != ' ' || name[n + 1] == '\0')
				fail_msg("bad comment line: %s", line);
			if (f == NULL)
				f = new_family(p, name, n);
			if (f->samples)
				fail_msg("HELP or TYPE after samples: %s", line);
			if (line[2] == 'H') {
				if (f->help)
					fail_msg("HELP twice: %s", line);
				f->help = true;
			} else {
				const char *type = name + n + 1;
				if (f->type[0] != '\0')
					fail_msg("TYPE twice: %s", line);
				if (strcmp(type, "counter") != 0 && strcmp(type, "gauge") != 0)
					fail_msg("unexpected type: %s", line);
				snprintf(f->type, sizeof f->type, "%s", type);
				if (strcmp(type, "counter") == 0 &&
				    strstr(f->name, "_total") == NULL)
					fail_msg("counter not named _total: %s", line);
			}
		} else if (line[0] == '#') {
			fail_msg("stray comment: %s", line);
		} else {
			check_sample(p, line);
		}
	}
	for (int i = 0; i < p->nfam; i++)
		if (!p->fam[i].help || p->fam[i].type[0] == '\0')
			fail_msg("family %s without HELP or TYPE", p->fam[i].name);
	free(copy);
}

static void free_parsed(struct parsed *p)
{
	for (int i = 0; i < p->nseries; i++)
		free(p->series[i]);
}

/* The value of the series written exactly as key ("name{labels}"), or -1. */
static double value_of(const struct parsed *p, const char *key)
{
	size_t n = strlen(key);

	for (int i = 0; i < p->nseries; i++)
		if (strncmp(p->series[i], key, n) == 0 && p->series[i][n] == ' ')
			return strtod(p->series[i] + n + 1, NULL);
	return -1;
}

static int count_of(const struct parsed *p, const char *prefix)
{
	int n = 0;

	for (int i = 0; i < p->nseries; i++)
		n += strncmp(p->series[i], prefix, strlen(prefix)) == 0;
	return n;
}

static void test_counters_only(void **state)
{
	struct nf_counters c;
	struct nf_metrics_input in = {.counters = &c};
	struct nf_admin_buf b = {0};
	struct parsed p;

	(void)state;
	memset(&c, 0, sizeof c);
	nf_count(&c.checks[NF_CLIENT_NOFUSS_HEADER][NF_ANSWER_OFFERED], 7);
	nf_count(&c.checks[NF_CLIENT_TASMOTA][NF_ANSWER_OFFERED], 3);
	nf_count(&c.checks[NF_CLIENT_ESP32_UPDATER][NF_ANSWER_HELD], 2);
	nf_count(&c.download_bytes, 123456789012ULL);
	nf_count(&c.reload_failures, 1);
	nf_count(&c.checks[NF_CLIENT_ESPHOME][NF_ANSWER_DEFERRED], 4);
	nf_count(&c.checks[NF_CLIENT_NOFUSS_PATH][NF_ANSWER_DEFERRED], 5);
	nf_count(&c.downloads_active, 19);
	nf_count(&c.downloads_peak, 20);
	nf_count(&c.downloads_refused, 6);
	assert_int_equal(nf_metrics_write(&b, &in), 0);
	check_format(b.data, &p);
	assert_true(value_of(&p, "nofuss_checks_total{client=\"esphome\",answer=\"deferred\"}") ==
	            4);
	assert_true(value_of(&p, "nofuss_checks_deferred_total") == 9);
	assert_true(value_of(&p, "nofuss_downloads_active") == 19);
	assert_true(value_of(&p, "nofuss_downloads_peak") == 20);
	assert_true(value_of(&p, "nofuss_downloads_refused_total") == 6);
	assert_true(value_of(&p, "nofuss_checks_total{client=\"nofuss\",answer=\"offered\"}") == 7);
	assert_true(value_of(&p, "nofuss_checks_total{client=\"esp32-updater\",answer=\"held\"}") ==
	            2);
	assert_true(value_of(&p, "nofuss_offers_total") == 10);
	assert_true(value_of(&p, "nofuss_held_back_total") == 2);
	assert_true(value_of(&p, "nofuss_download_bytes_total") == 123456789012.0);
	assert_true(value_of(&p, "nofuss_reload_failures_total") == 1);
	assert_true(value_of(&p, "nofuss_store_up") == 0);
	/* The store is off: none of its families, no devices. */
	assert_int_equal(count_of(&p, "nofuss_store_queue"), 0);
	assert_int_equal(count_of(&p, "nofuss_devices"), 0);
	assert_int_equal(count_of(&p, "nofuss_confirmations_total"), 0);
	free_parsed(&p);
	nf_admin_buf_free(&b);
}

static void test_store_and_fleet(void **state)
{
	struct nf_counters c;
	struct nf_store_stats st = {.posted = 10,
	                            .written = 8,
	                            .dropped = 2,
	                            .depth = 5,
	                            .capacity = 16384,
	                            .failing = true,
	                            .confirmed = 4,
	                            .reverted = 1};
	struct nf_fleet_summary s = {.devices = 0, .seen_24h = 40};
	struct nf_metrics_input in = {.counters = &c,
	                              .store = &st,
	                              .summary = &s};
	struct nf_admin_buf b = {0};
	struct parsed p;
	uint64_t expected_other = 0, sum = 0;

	(void)state;
	memset(&c, 0, sizeof c);
	s.count = 150;
	s.rows = calloc(s.count, sizeof *s.rows);
	for (size_t i = 0; i < s.count; i++) {
		snprintf(s.rows[i].device, sizeof s.rows[i].device, "TYPE%zu", i);
		snprintf(s.rows[i].version, sizeof s.rows[i].version, "1.%zu", i);
		s.rows[i].count = 1000 - i;
		s.devices += s.rows[i].count;
	}
	/* Hostile names: quote, backslash, newline, invalid UTF-8, and a real
	 * device called "other" at version "other". */
	snprintf(s.rows[0].device, sizeof s.rows[0].device, "a\"b\\c\nd");
	snprintf(s.rows[1].device, sizeof s.rows[1].device, "bad\xff\xc3(utf8)");
	snprintf(s.rows[2].device, sizeof s.rows[2].device, "other");
	snprintf(s.rows[2].version, sizeof s.rows[2].version, "other");
	/* Another type that differs from row 1 only in its invalid bytes: both
	 * render alike, and are one series (never the same series twice). */
	snprintf(s.rows[3].device, sizeof s.rows[3].device, "bad\xfe\xc3(utf8)");
	snprintf(s.rows[3].version, sizeof s.rows[3].version, "1.1");
	/* Rows 0 to 102 but rows 2 and 3 are shown (100 series); the rest sum. */
	expected_other = s.rows[2].count;
	for (size_t i = 102; i < s.count; i++)
		expected_other += s.rows[i].count;
	s.truncated = true; /* and devices beyond the rows the store returned */
	s.devices += 500;
	expected_other += 500;
	s.by_state[NF_UPDATE_CONFIRMED] = 77;
	assert_int_equal(nf_metrics_write(&b, &in), 0);
	check_format(b.data, &p);
	assert_int_equal(count_of(&p, "nofuss_devices{"), NF_ADMIN_MAX_METRIC_SERIES + 1);
	assert_true(value_of(&p, "nofuss_devices{type=\"other\",version=\"other\"}") ==
	            (double)expected_other);
	assert_true(value_of(&p, "nofuss_devices{type=\"a\\\"b\\\\c\\nd\",version=\"1.0\"}") ==
	            1000);
	assert_true(value_of(&p, "nofuss_devices{type=\"bad\xef\xbf\xbd\xef\xbf\xbd(utf8)\","
	                         "version=\"1.1\"}") == 999 + 997);
	for (int i = 0; i < p.nseries; i++)
		if (strncmp(p.series[i], "nofuss_devices{", 15) == 0)
			sum += (uint64_t)strtod(strrchr(p.series[i], ' ') + 1, NULL);
	assert_int_equal(sum, s.devices);
	assert_true(value_of(&p, "nofuss_devices_known") == (double)s.devices);
	assert_true(value_of(&p, "nofuss_devices_seen_24h") == 40);
	assert_true(value_of(&p, "nofuss_devices_by_state{state=\"confirmed\"}") == 77);
	assert_true(value_of(&p, "nofuss_store_events_dropped_total") == 2);
	assert_true(value_of(&p, "nofuss_store_queue_depth") == 5);
	assert_true(value_of(&p, "nofuss_store_failing") == 1);
	assert_true(value_of(&p, "nofuss_store_up") == 1);
	assert_true(value_of(&p, "nofuss_confirmations_total") == 4);
	assert_true(value_of(&p, "nofuss_reverts_total") == 1);
	/* Bounded: 150 type x version rows and every family fit in a few KiB. */
	assert_true(b.len < 20000);
	free_parsed(&p);
	nf_admin_buf_free(&b);
	free(s.rows);
}

static void test_checker_refuses(void **state)
{
	/* The checker's name grammar refuses what the format forbids. */
	(void)state;
	assert_false(name_ok("9abc", 4, true));
	assert_false(name_ok("a-b", 3, true));
	assert_true(name_ok("a:b_c9", 6, true));
	assert_false(name_ok("a:b", 3, false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counters_only),
	    cmocka_unit_test(test_store_and_fleet),
	    cmocka_unit_test(test_checker_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
