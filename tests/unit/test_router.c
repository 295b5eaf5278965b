/*
 * test_router.c - unit tests for nf_route() (router.c).
 *
 * Covers both bases ("" and "/nofuss"); the header-form check path with
 * its repeated-slash variants; the path form "<base>/DEVICE/VERSION" as old
 * clients build it with "%s/%s/%s" (docs/PEERS.md section 1: "//" and "///"
 * collapse); image paths; paths outside the base; every refusal (dot
 * segments and hidden names, encoded '/', '\' and NUL, bad escapes, over-long
 * paths, a path not starting with '/'); percent-decoding; and the device and
 * version fields handed to the matcher, including the NF_MAX_FIELD limit.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nofussd.h"

static const char *kind_name(enum nf_route_kind kind)
{
	switch (kind) {
	case NF_ROUTE_CHECK_HEADERS: return "CHECK_HEADERS";
	case NF_ROUTE_FILE_OR_CHECK: return "FILE_OR_CHECK";
	case NF_ROUTE_FILE:          return "FILE";
	case NF_ROUTE_NOT_FOUND:     return "NOT_FOUND";
	case NF_ROUTE_BAD:           return "BAD";
	}
	return "?";
}

/* Routes url under base into *r, poisoned first: no stale field may survive. */
static void route_fresh(const char *base, const char *url, struct nf_route *r)
{
	memset(r, 0x5a, sizeof *r);
	nf_route(base, url, r);
}

/* Routes url under base and checks the kind and the decoded path. */
static void expect_route(const char *base, const char *url, enum nf_route_kind kind,
                         const char *path)
{
	struct nf_route r;

	route_fresh(base, url, &r);
	if (r.kind != kind)
		fail_msg("nf_route(\"%s\", \"%s\"): %s, expected %s", base, url, kind_name(r.kind),
		         kind_name(kind));
	if (path != NULL)
		assert_string_equal(r.path, path);
	if (kind != NF_ROUTE_FILE_OR_CHECK) {
		assert_null(r.device);
		assert_null(r.version);
		assert_int_equal(r.device_len, 0);
		assert_int_equal(r.version_len, 0);
	}
}

/* Routes a path-form check and checks the device and version. */
static void expect_path_check(const char *base, const char *url, const char *device,
                         const char *version)
{
	struct nf_route r;

	route_fresh(base, url, &r);
	if (r.kind != NF_ROUTE_FILE_OR_CHECK)
		fail_msg("nf_route(\"%s\", \"%s\"): %s, expected FILE_OR_CHECK", base, url,
		         kind_name(r.kind));
	assert_int_equal(r.device_len, strlen(device));
	assert_memory_equal(r.device, device, r.device_len);
	assert_int_equal(r.version_len, strlen(version));
	assert_string_equal(r.version, version);
	assert_ptr_equal(r.version, r.version_buf);
	/* device points into path, which holds "DEVICE/VERSION" */
	assert_true(r.device >= r.path && r.device < r.path + sizeof r.path);
	char joined[2 * NF_MAX_FIELD + 2];
	snprintf(joined, sizeof joined, "%s/%s", device, version);
	assert_string_equal(r.path, joined);
}

static void test_header_form(void **state)
{
	(void)state;
	expect_route("", "/", NF_ROUTE_CHECK_HEADERS, "");
	expect_route("", "//", NF_ROUTE_CHECK_HEADERS, "");
	expect_route("", "///", NF_ROUTE_CHECK_HEADERS, "");
	expect_route("/nofuss", "/nofuss", NF_ROUTE_CHECK_HEADERS, "");
	expect_route("/nofuss", "/nofuss/", NF_ROUTE_CHECK_HEADERS, "");
	expect_route("/nofuss", "/nofuss//", NF_ROUTE_CHECK_HEADERS, "");
	expect_route("/nofuss", "//nofuss/", NF_ROUTE_CHECK_HEADERS, "");
	expect_route("/a/b", "/a//b//", NF_ROUTE_CHECK_HEADERS, "");
}

static void test_path_form(void **state)
{
	(void)state;
	expect_path_check("/nofuss", "/nofuss/SONOFF/0.1.0", "SONOFF", "0.1.0");
	expect_path_check("/nofuss", "/nofuss//SONOFF/0.1.0", "SONOFF", "0.1.0");
	expect_path_check("/nofuss", "/nofuss///SONOFF///0.1.0", "SONOFF", "0.1.0");
	expect_path_check("/nofuss", "/nofuss/SONOFF/0.1.0/", "SONOFF", "0.1.0");
	expect_path_check("", "/SONOFF/0.1.0", "SONOFF", "0.1.0");
	expect_path_check("", "//SONOFF/0.1.0", "SONOFF", "0.1.0");
	expect_path_check("", "///SONOFF//0.1.0", "SONOFF", "0.1.0");
	expect_path_check("", "/ESPURNA_H801/1.13.5-dev+abc", "ESPURNA_H801", "1.13.5-dev+abc");
	expect_path_check("", "/a/b", "a", "b");
	/* Dots inside a name are fine; only a leading dot is refused. */
	expect_path_check("", "/my.device/1.0..2", "my.device", "1.0..2");
}

static void test_files(void **state)
{
	(void)state;
	/* Two segments look like DEVICE/VERSION: an image if it exists. */
	expect_route("/nofuss", "/nofuss//firmware/a.bin", NF_ROUTE_FILE_OR_CHECK, "firmware/a.bin");
	expect_route("", "///firmware/test.bin", NF_ROUTE_FILE_OR_CHECK, "firmware/test.bin");
	/* One segment, three or more: only an image. */
	expect_route("", "/test.bin", NF_ROUTE_FILE, "test.bin");
	expect_route("/nofuss", "/nofuss/a.bin", NF_ROUTE_FILE, "a.bin");
	expect_route("", "/firmware/sonoff/test-0.1.1.bin", NF_ROUTE_FILE,
	             "firmware/sonoff/test-0.1.1.bin");
	expect_route("/nofuss", "/nofuss//firmware//sonoff///x.bin/", NF_ROUTE_FILE,
	             "firmware/sonoff/x.bin");
	expect_route("", "/a/b/c/d/e", NF_ROUTE_FILE, "a/b/c/d/e");
}

static void test_outside_base(void **state)
{
	(void)state;
	expect_route("/nofuss", "/other/x", NF_ROUTE_NOT_FOUND, NULL);
	expect_route("/nofuss", "/nofussx/a/b", NF_ROUTE_NOT_FOUND, NULL);
	expect_route("/nofuss", "/nofussx", NF_ROUTE_NOT_FOUND, NULL);
	expect_route("/nofuss", "/", NF_ROUTE_NOT_FOUND, NULL);
	expect_route("/nofuss", "/nofu", NF_ROUTE_NOT_FOUND, NULL);
	expect_route("/nofuss", "/NOFUSS/a/b", NF_ROUTE_NOT_FOUND, NULL);
	expect_route("/nofuss", "/x/nofuss/a/b", NF_ROUTE_NOT_FOUND, NULL);
	/* The base is compared after decoding. */
	expect_route("/nofuss", "/%6eofuss/A/1", NF_ROUTE_FILE_OR_CHECK, "A/1");
}

/* Absolute form (RFC 9112 section 3.2.2): the scheme and host are dropped. */
static void test_absolute_form(void **state)
{
	(void)state;
	expect_route("", "http://host/a/b", NF_ROUTE_FILE_OR_CHECK, "a/b");
	expect_route("", "HTTP://host:8080//fw/x.bin/y", NF_ROUTE_FILE, "fw/x.bin/y");
	expect_route("/nofuss", "https://host/nofuss/D/1.0", NF_ROUTE_FILE_OR_CHECK, "D/1.0");
	expect_route("", "http://host", NF_ROUTE_CHECK_HEADERS, "");
	expect_route("/nofuss", "http://host/other/a", NF_ROUTE_NOT_FOUND, NULL);
	expect_route("", "http://host/%2e%2e/x", NF_ROUTE_BAD, NULL);
}

static void test_refusals(void **state)
{
	(void)state;
	/* refused by decoding, whatever the base */
	static const char *const undecodable[] = {
		"/a%2fb", "/a%2Fb", "/a/b%2F", "/%2F", "/%2f%2e%2e%2fetc",
		"/a%00b", "/%00", "/a%5cb", "/a%5C..%5Cb",
		"/%zz", "/a%4", "/a%", "/a%g0", "/a%0g", "/a%%41", "/%-1",
		"", "nofuss/a/b", "a", "*", " /a",
	};
	/* refused segment by segment, below the base */
	static const char *const segments[] = {
		"/..", "/../x", "/a/../b", "/a/..", "/.", "/./a", "/a/./b",
		"/%2e%2e", "/%2E%2e/x", "/a/%2e%2E/b", "/%2e", "/%2e%2e%2e",
		"/.hidden", "/a/.git/config", "/%2ehtaccess", "/...",
	};
	char url[256];

	for (size_t i = 0; i < sizeof undecodable / sizeof undecodable[0]; i++) {
		expect_route("", undecodable[i], NF_ROUTE_BAD, NULL);
		expect_route("/nofuss", undecodable[i], NF_ROUTE_BAD, NULL);
		if (undecodable[i][0] == '/') {
			snprintf(url, sizeof url, "/nofuss%s", undecodable[i]);
			expect_route("/nofuss", url, NF_ROUTE_BAD, NULL);
		}
	}
	for (size_t i = 0; i < sizeof segments / sizeof segments[0]; i++) {
		expect_route("", segments[i], NF_ROUTE_BAD, NULL);
		snprintf(url, sizeof url, "/nofuss%s", segments[i]);
		expect_route("/nofuss", url, NF_ROUTE_BAD, NULL);
		/* outside the base it is simply not ours */
		expect_route("/nofuss", segments[i], NF_ROUTE_NOT_FOUND, NULL);
	}
	expect_route("/nofuss", "/nofuss/%2e%2e/etc/passwd", NF_ROUTE_BAD, NULL);
	expect_route("/nofuss", "/nofuss%2fa/b", NF_ROUTE_BAD, NULL);
}

/* NF_MAX_URL bounds the decoded path. */
static void test_length_limit(void **state)
{
	(void)state;
	char *url = malloc(3 * NF_MAX_URL + 8);
	struct nf_route r;

	assert_non_null(url);
	/* exactly NF_MAX_URL decoded bytes: routed */
	url[0] = '/';
	memset(url + 1, 'a', NF_MAX_URL - 1);
	url[NF_MAX_URL] = '\0';
	nf_route("", url, &r);
	assert_int_equal(r.kind, NF_ROUTE_FILE);
	assert_int_equal(strlen(r.path), NF_MAX_URL - 1);

	/* one more: refused */
	url[NF_MAX_URL] = 'a';
	url[NF_MAX_URL + 1] = '\0';
	nf_route("", url, &r);
	assert_int_equal(r.kind, NF_ROUTE_BAD);
	nf_route("/nofuss", url, &r);
	assert_int_equal(r.kind, NF_ROUTE_BAD);

	/* the limit counts decoded bytes: "%41" is one */
	url[0] = '/';
	for (int i = 0; i < NF_MAX_URL - 1; i++)
		memcpy(url + 1 + 3 * i, "%41", 3);
	url[1 + 3 * (NF_MAX_URL - 1)] = '\0';
	nf_route("", url, &r);
	assert_int_equal(r.kind, NF_ROUTE_FILE);
	assert_int_equal(strlen(r.path), NF_MAX_URL - 1);
	assert_int_equal(r.path[0], 'A');

	/* repeated slashes collapse before the count */
	memset(url, '/', 2 * NF_MAX_URL);
	memcpy(url + 2 * NF_MAX_URL, "a/b", 4);
	nf_route("", url, &r);
	assert_int_equal(r.kind, NF_ROUTE_FILE_OR_CHECK);
	assert_string_equal(r.path, "a/b");
	free(url);
}

static void test_percent_decoding(void **state)
{
	(void)state;
	expect_route("", "/%41", NF_ROUTE_FILE, "A");
	expect_route("", "/%41%42%43/x%2Ebin/c", NF_ROUTE_FILE, "ABC/x.bin/c");
	expect_route("", "/a%20b", NF_ROUTE_FILE, "a b");
	expect_route("", "/a+b", NF_ROUTE_FILE, "a+b"); /* '+' is not a space in a path */
	expect_route("", "/caf%C3%A9", NF_ROUTE_FILE, "caf\xc3\xa9");
	expect_route("", "/%7e", NF_ROUTE_FILE, "~");
	expect_path_check("", "/%53ONOFF/0%2E1%2e0", "SONOFF", "0.1.0");
	expect_path_check("", "/ESP%5FX/1.0%2Bbuild", "ESP_X", "1.0+build");
	/* "%25" decodes to a '%' that is not decoded again */
	expect_route("", "/a%2541", NF_ROUTE_FILE, "a%41");
}

static void test_field_limits(void **state)
{
	(void)state;
	char url[3 * NF_MAX_FIELD + 16], field[NF_MAX_FIELD + 2];
	struct nf_route r;

	memset(field, 'v', NF_MAX_FIELD);
	field[NF_MAX_FIELD] = '\0';
	snprintf(url, sizeof url, "/DEV/%s", field);
	expect_path_check("", url, "DEV", field);
	snprintf(url, sizeof url, "/%s/1.0", field);
	expect_path_check("", url, field, "1.0");

	/* One byte longer than NF_MAX_FIELD: not a check, only an image. */
	strcat(field, "v");
	snprintf(url, sizeof url, "/DEV/%s", field);
	nf_route("", url, &r);
	assert_int_equal(r.kind, NF_ROUTE_FILE);
	assert_null(r.version);
	assert_int_equal(r.version_len, 0);
	snprintf(url, sizeof url, "/%s/1.0", field);
	nf_route("", url, &r);
	assert_int_equal(r.kind, NF_ROUTE_FILE);
	assert_null(r.device);

	/* The limit is on decoded bytes. */
	field[NF_MAX_FIELD] = '\0';
	snprintf(url, sizeof url, "/DEV/%%76%s", field + 1);
	expect_path_check("", url, "DEV", field);
}

/* A route does not keep anything from the one before. */
/* Routes url and checks the reserved mark and its name ("" for none). */
static void expect_reserved(const char *base, const char *url, enum nf_reserved reserved,
                            const char *name)
{
	struct nf_route r;

	route_fresh(base, url, &r);
	if (r.reserved != reserved)
		fail_msg("%s under \"%s\": reserved %d, not %d", url, base, (int)r.reserved,
		         (int)reserved);
	if (name == NULL) {
		assert_null(r.name);
		assert_int_equal(r.name_len, 0);
	} else {
		assert_non_null(r.name);
		assert_int_equal(r.name_len, strlen(name));
		assert_memory_equal(r.name, name, r.name_len);
	}
}

/* /update, /update/DEVICE, /esphome/NAME/manifest.json (docs/PROTOCOL.md
 * section 5.1): marked, with the kind they would have otherwise (http.c
 * falls back to it). */
static void test_reserved(void **state)
{
	(void)state;
	expect_reserved("", "/update", NF_RESERVED_UPDATE, NULL);
	expect_reserved("", "//update/", NF_RESERVED_UPDATE, NULL);
	expect_reserved("", "/update/SONOFF", NF_RESERVED_UPDATE, "SONOFF");
	expect_reserved("", "/update/SONOFF_BASIC-minimal.bin.gz", NF_RESERVED_UPDATE,
	                "SONOFF_BASIC-minimal.bin.gz");
	expect_reserved("/nofuss", "/nofuss/update/X", NF_RESERVED_UPDATE, "X");
	expect_reserved("/nofuss", "/update/X", NF_RESERVED_NONE, NULL);
	expect_reserved("", "/esphome/livingroom/manifest.json", NF_RESERVED_ESPHOME, "livingroom");
	expect_reserved("", "/esphome/livingroom%2Dx/manifest.json", NF_RESERVED_ESPHOME,
	                "livingroom-x");
	/* Not the shape: images or checks as before. */
	expect_reserved("", "/update/a/b", NF_RESERVED_NONE, NULL);
	expect_reserved("", "/Update/X", NF_RESERVED_NONE, NULL);
	expect_reserved("", "/updates/X", NF_RESERVED_NONE, NULL);
	expect_reserved("", "/esphome/livingroom", NF_RESERVED_NONE, NULL);
	expect_reserved("", "/esphome/livingroom/firmware.bin", NF_RESERVED_NONE, NULL);
	expect_reserved("", "/", NF_RESERVED_NONE, NULL);
	expect_route("", "/update/SONOFF", NF_ROUTE_FILE_OR_CHECK, "update/SONOFF");
	expect_route("", "/update", NF_ROUTE_FILE, "update");
	expect_route("", "/esphome/a/manifest.json", NF_ROUTE_FILE, "esphome/a/manifest.json");
}

static void test_route_reuse(void **state)
{
	(void)state;
	struct nf_route r;

	nf_route("", "/SONOFF/0.1.0", &r);
	assert_int_equal(r.kind, NF_ROUTE_FILE_OR_CHECK);
	nf_route("", "/", &r);
	assert_int_equal(r.kind, NF_ROUTE_CHECK_HEADERS);
	assert_string_equal(r.path, "");
	assert_null(r.device);
	assert_null(r.version);
	assert_string_equal(r.version_buf, "");
	nf_route("", "/SONOFF/0.1.0", &r);
	nf_route("", "/..", &r);
	assert_int_equal(r.kind, NF_ROUTE_BAD);
	assert_null(r.device);
	assert_string_equal(r.path, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_form),
		cmocka_unit_test(test_path_form),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_outside_base),
		cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_absolute_form),
		cmocka_unit_test(test_length_limit),
		cmocka_unit_test(test_percent_decoding),
		cmocka_unit_test(test_field_limits),
		cmocka_unit_test(test_route_reuse),
		cmocka_unit_test(test_reserved),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
