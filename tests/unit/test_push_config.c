/*
 * test_push_config.c - unit tests for `nofuss push`'s platformio.ini reader
 * (tools/push/config.c), its IP address check nf_push_usable_ip() and its
 * broker address parser (tools/push/mqtt.c).
 *
 * The expected readings follow PlatformIO's own parser (Python configparser
 * with inline comment prefixes ';' and '#'): a comment starts at ';' or '#'
 * at the start of a line or after whitespace, so "a#b" keeps its '#';
 * indented lines continue the previous value. Each test parses a small
 * in-memory file with nf_push_config_parse_string(); one reads a real file.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push.h"
#include "testutil.h"

/* Parses text as "platformio.ini" in project folder dir; fails the test
 * unless the parse result is want_rc. The caller frees the result. */
static struct nf_push_config *parse_in(const char *text, const char *dir, int want_rc)
{
	struct nf_push_config *cfg = calloc(1, sizeof *cfg);
	int rc;

	assert_non_null(cfg);
	rc = nf_push_config_parse_string(text, strlen(text), "platformio.ini", dir, cfg);
	if (rc != want_rc)
		fail_msg("parse returned %d, expected %d (error: %s)", rc, want_rc, cfg->error);
	return cfg;
}

static struct nf_push_config *parse(const char *text)
{
	return parse_in(text, "", 0);
}

static const struct nf_push_env *env(const struct nf_push_config *cfg, const char *name)
{
	const struct nf_push_env *e = nf_push_config_find(cfg, name);

	if (e == NULL)
		fail_msg("no [env:%s]", name);
	return e;
}

static void test_sections(void **state)
{
	struct nf_push_config *cfg = parse("[platformio]\n"
	                                   "default_envs = a\n"
	                                   "\n"
	                                   "[env:a]\n"
	                                   "board = x\n"
	                                   "[common]\n"
	                                   "topic = /not/an/env\n"
	                                   "[env:b-long.name_2]\n"
	                                   "topic = /b\n"
	                                   "[env:empty]\n");
	(void)state;
	assert_int_equal(cfg->count, 3);
	assert_string_equal(cfg->env[0].name, "a");
	assert_int_equal(cfg->env[0].line, 4);
	assert_string_equal(cfg->env[0].topic, "");
	assert_string_equal(env(cfg, "b-long.name_2")->topic, "/b");
	assert_string_equal(env(cfg, "empty")->topic, "");
	assert_string_equal(env(cfg, "empty")->problem, "");
	free(cfg);
}

static void test_long_environment_name(void **state)
{
	/* inih cuts section names at 49 bytes: ours must not */
	const char *name = "a-very-long-environment-name-0123456789-0123456789-xyz";
	char text[512];
	struct nf_push_config *cfg;

	(void)state;
	snprintf(text, sizeof text, "[env:%s]\ntopic = /long\n[env:%.40s]\ntopic = /short\n", name,
	         name);
	cfg = parse(text);
	assert_int_equal(cfg->count, 2);
	assert_string_equal(env(cfg, name)->topic, "/long");
	free(cfg);
}

static void test_unknown_environment(void **state)
{
	struct nf_push_config *cfg = parse("[env:a]\ntopic = /a\n");

	(void)state;
	assert_null(nf_push_config_find(cfg, "b"));
	assert_null(nf_push_config_find(cfg, "A"));
	assert_null(nf_push_config_find(cfg, ""));
	free(cfg);
}

static void test_topic_and_custom_topic(void **state)
{
	struct nf_push_config *cfg = parse("[env:plain]\n"
	                                   "topic = /home/cellar/washer/ip\n"
	                                   "[env:custom]\n"
	                                   "custom_topic = /home/dryer/ip\n"
	                                   "[env:upper]\n"
	                                   "TOPIC: /upper\n"
	                                   "[env:both]\n"
	                                   "topic = /one\n"
	                                   "custom_topic = /two\n"
	                                   "[env:wild]\n"
	                                   "topic = /home/+/ip\n"
	                                   "[env:missing]\n"
	                                   "board = esp01_1m\n"
	                                   "[env:interp]\n"
	                                   "topic = ${common.prefix}/ip\n");
	(void)state;
	assert_string_equal(env(cfg, "plain")->topic, "/home/cellar/washer/ip");
	assert_string_equal(env(cfg, "custom")->topic, "/home/dryer/ip");
	assert_string_equal(env(cfg, "upper")->topic, "/upper");
	assert_string_equal(env(cfg, "plain")->problem, "");
	assert_non_null(
	    strstr(env(cfg, "both")->problem, "platformio.ini:9: the topic is given twice"));
	assert_non_null(strstr(env(cfg, "wild")->problem, "wildcard"));
	assert_string_equal(env(cfg, "missing")->topic, "");
	assert_string_equal(env(cfg, "missing")->problem, "");
	assert_non_null(strstr(env(cfg, "interp")->problem, "platformio.ini:15: topic uses ${...} "
	                                                    "interpolation"));
	free(cfg);
}

static void test_upload_flags(void **state)
{
	struct nf_push_config *cfg =
	    parse("[env:eq]\n"
	          "upload_flags = --auth=fibonacci --port 8266\n"
	          "[env:sep]\n"
	          "upload_flags = --progress --auth secret --port=3232 -d\n"
	          "[env:short]\n"
	          "upload_flags = -a pw -p 1234 --host_port 40000\n"
	          "[env:quoted]\n"
	          "upload_flags = \"--auth=two words\" --port '99'\n"
	          "[env:noauth]\n"
	          "upload_flags = --auth= --debug\n"
	          "[env:none]\n"
	          "board = d1\n"
	          "[env:badport]\n"
	          "upload_flags = --port 65536\n"
	          "[env:zeroport]\n"
	          "upload_flags = --port=0\n"
	          "[env:wordport]\n"
	          "upload_flags = --port http\n"
	          "[env:dangling]\n"
	          "upload_flags = --auth=x --port\n"
	          "[env:unquoted]\n"
	          "upload_flags = --auth='oops\n");
	const struct nf_push_env *e;

	(void)state;
	e = env(cfg, "eq");
	assert_true(e->has_auth);
	assert_string_equal(e->auth, "fibonacci");
	assert_int_equal(e->port, 8266);
	assert_true(e->port_given);
	e = env(cfg, "sep");
	assert_string_equal(e->auth, "secret");
	assert_int_equal(e->port, 3232);
	e = env(cfg, "short");
	assert_string_equal(e->auth, "pw");
	assert_int_equal(e->port, 1234);
	assert_string_equal(e->problem, "");
	e = env(cfg, "quoted");
	assert_string_equal(e->auth, "two words");
	assert_int_equal(e->port, 99);
	e = env(cfg, "noauth");
	assert_false(e->has_auth);
	assert_string_equal(e->problem, "");
	e = env(cfg, "none");
	assert_false(e->has_auth);
	assert_false(e->port_given);
	assert_int_equal(e->port, NF_PUSH_PORT_ESP8266);
	assert_non_null(strstr(env(cfg, "badport")->problem,
	                       "platformio.ini:14: upload_flags: --port "
	                       "'65536' is not a port"));
	assert_non_null(strstr(env(cfg, "zeroport")->problem, "'0' is not a port"));
	assert_non_null(strstr(env(cfg, "wordport")->problem, "'http' is not a port"));
	assert_non_null(
	    strstr(env(cfg, "dangling")->problem, ":20: upload_flags: --port needs a value"));
	assert_non_null(strstr(env(cfg, "unquoted")->problem, "unterminated ' quote"));
	free(cfg);
}

static void test_multiline_upload_flags(void **state)
{
	struct nf_push_config *cfg = parse("[env:m]\n"
	                                   "upload_flags =\n"
	                                   "    --auth=fibonacci\n"
	                                   "\n"
	                                   "    ; a comment inside the value\n"
	                                   "    --port\n"
	                                   "    8267\n"
	                                   "    --progress\n"
	                                   "topic = /m\n"
	                                   "[env:n]\n"
	                                   "upload_flags = --port\n"
	                                   "\t3232 --auth\n"
	                                   "\tpw\n");
	const struct nf_push_env *e;

	(void)state;
	e = env(cfg, "m");
	assert_string_equal(e->problem, "");
	assert_string_equal(e->auth, "fibonacci");
	assert_int_equal(e->port, 8267);
	assert_string_equal(e->topic, "/m");
	e = env(cfg, "n");
	assert_string_equal(e->problem, "");
	assert_int_equal(e->port, 3232);
	assert_string_equal(e->auth, "pw");
	free(cfg);
}

static void test_comments(void **state)
{
	struct nf_push_config *cfg = parse("; full-line comment\n"
	                                   "# the other kind\n"
	                                   "[env:a] ; after a header\n"
	                                   "topic = /a/b ; comment\n"
	                                   "upload_flags = --auth=x#y --port 1 # comment\n"
	                                   "  # an indented comment is no continuation\n"
	                                   "[env:b]   # after a header\n"
	                                   "topic = /b;c\t# tab before the comment\n"
	                                   "upload_flags = --auth=p;q\n"
	                                   "#topic = /commented/out\n"
	                                   "[env:c]\n"
	                                   ";topic = /c\n"
	                                   "topic=/c#d\n");
	(void)state;
	assert_int_equal(cfg->count, 3);
	assert_string_equal(env(cfg, "a")->topic, "/a/b");
	assert_string_equal(env(cfg, "a")->auth, "x#y");
	assert_int_equal(env(cfg, "a")->port, 1);
	assert_string_equal(env(cfg, "a")->problem, "");
	assert_string_equal(env(cfg, "b")->topic, "/b;c");
	assert_string_equal(env(cfg, "b")->auth, "p;q");
	assert_string_equal(env(cfg, "b")->problem, "");
	/* '#' kept inside the value: then it is an MQTT wildcard */
	assert_string_equal(env(cfg, "c")->topic, "/c#d");
	assert_non_null(strstr(env(cfg, "c")->problem, "wildcard"));
	free(cfg);
}

static void test_env_defaults_and_platform(void **state)
{
	struct nf_push_config *cfg = parse("[env]\n"
	                                   "upload_flags = --auth=shared\n"
	                                   "board_build.filesystem = LittleFS\n"
	                                   "[env:inherit]\n"
	                                   "topic = /i\n"
	                                   "[env:own]\n"
	                                   "platform = espressif32@6.4.0\n"
	                                   "upload_flags = --progress\n"
	                                   "board_build.filesystem = spiffs\n"
	                                   "topic = /o\n");
	const struct nf_push_env *e;

	(void)state;
	e = env(cfg, "inherit");
	assert_true(e->has_auth);
	assert_string_equal(e->auth, "shared");
	assert_int_equal(e->port, NF_PUSH_PORT_ESP8266);
	assert_string_equal(e->filesystem, "littlefs");
	e = env(cfg, "own");
	assert_false(e->has_auth);
	assert_int_equal(e->port, NF_PUSH_PORT_ESP32);
	assert_string_equal(e->filesystem, "spiffs");
	free(cfg);
}

static void test_image_paths(void **state)
{
	struct nf_push_config *cfg = parse("[env:washer]\n");
	const struct nf_push_env *e = env(cfg, "washer");

	(void)state;
	assert_string_equal(e->firmware, ".pio/build/washer/firmware.bin");
	assert_string_equal(e->littlefs, ".pio/build/washer/littlefs.bin");
	assert_string_equal(e->spiffs, ".pio/build/washer/spiffs.bin");
	free(cfg);

	cfg = parse_in("[env:washer]\n", "/srv/project", 0);
	assert_string_equal(cfg->env[0].firmware, "/srv/project/.pio/build/washer/firmware.bin");
	free(cfg);

	cfg = parse_in("[platformio]\nbuild_dir = out\n[env:w]\n", "proj/", 0);
	assert_string_equal(cfg->env[0].firmware, "proj/out/w/firmware.bin");
	free(cfg);

	cfg = parse_in("[platformio]\nbuild_dir = /abs/build\n[env:w]\n", "proj", 0);
	assert_string_equal(cfg->env[0].littlefs, "/abs/build/w/littlefs.bin");
	free(cfg);
}

static void test_file_errors(void **state)
{
	struct nf_push_config *cfg;

	(void)state;
	cfg = parse_in("[env:a]\ntopic = /a\nthis line has no equals sign\n", "", -1);
	assert_string_equal(cfg->error, "platformio.ini:3: syntax error (expected '[section]', "
	                                "'key = value' or a comment)");
	assert_int_equal(cfg->count, 0);
	free(cfg);

	cfg = parse_in("[env:a]\n\n[env:b]\n[env:a]\n", "", -1);
	assert_string_equal(cfg->error,
	                    "platformio.ini:4: [env:a] appears twice (first on line 1)");
	free(cfg);

	cfg = parse_in("[env:]\n", "", -1);
	assert_non_null(strstr(cfg->error, "platformio.ini:1: [env:] has no environment name"));
	free(cfg);

	cfg = parse_in("[env:a\n", "", -1);
	assert_non_null(strstr(cfg->error, "platformio.ini:1: syntax error"));
	free(cfg);
}

static void test_long_lines(void **state)
{
	char text[2048], flags[600];
	struct nf_push_config *cfg;

	(void)state;
	memset(flags, 'D', sizeof flags - 1);
	flags[sizeof flags - 1] = '\0';
	/* a long line PlatformIO users write all the time: not ours, no harm */
	snprintf(text, sizeof text,
	         "[env:a]\nbuild_flags = -%s\ntopic = /a\n[env:b]\n"
	         "upload_flags = --auth=%s\n",
	         flags, flags);
	cfg = parse(text);
	assert_string_equal(env(cfg, "a")->topic, "/a");
	assert_string_equal(env(cfg, "a")->problem, "");
	assert_non_null(strstr(env(cfg, "b")->problem, "platformio.ini:5: line longer"));
	free(cfg);
}

static void test_crlf_and_bom(void **state)
{
	struct nf_push_config *cfg = parse("\xEF\xBB\xBF[env:a]\r\n"
	                                   "topic = /a ; c\r\n"
	                                   "upload_flags = --port 5\r\n");

	(void)state;
	assert_string_equal(env(cfg, "a")->topic, "/a");
	assert_int_equal(env(cfg, "a")->port, 5);
	assert_string_equal(env(cfg, "a")->problem, "");
	free(cfg);
}

static void test_read_file(void **state)
{
	const char *dir = *state;
	char path[1024];
	struct nf_push_config *cfg = calloc(1, sizeof *cfg);

	assert_non_null(cfg);
	snprintf(path, sizeof path, "%s/platformio.ini", dir);
	nf_test_write_file(path, "[env:w]\ntopic = /w\n");
	assert_int_equal(nf_push_config_read(path, cfg), 0);
	assert_string_equal(cfg->env[0].topic, "/w");
	snprintf(path, sizeof path, "%s/.pio/build/w/firmware.bin", dir);
	assert_string_equal(cfg->env[0].firmware, path);

	snprintf(path, sizeof path, "%s/bad.ini", dir);
	nf_test_write_file(path, "[env:w]\nnonsense\n");
	assert_int_equal(nf_push_config_read(path, cfg), -1);
	assert_non_null(strstr(cfg->error, "bad.ini:2: syntax error"));

	snprintf(path, sizeof path, "%s/missing.ini", dir);
	assert_int_equal(nf_push_config_read(path, cfg), -1);
	assert_non_null(strstr(cfg->error, "missing.ini: No such file or directory"));

	assert_int_equal(nf_push_config_read(dir, cfg), -1);
	assert_non_null(strstr(cfg->error, "not a regular file"));
	free(cfg);
}

/* Usable: one host's IPv4 address. Not: 0.0.0.0/8 (no host), multicast,
 * reserved and broadcast, anything but a strict dotted quad, and IPv6 (the
 * push is IPv4 only). */
static void test_usable_ip(void **state)
{
	/* clang-format off */
	static const struct {
		const char *ip;
		bool usable;
	} cases[] = {
	    {"192.168.1.5", true},
	    {"127.0.0.1", true},
	    {"10.0.0.1", true},
	    {"1.2.3.4", true},
	    {"100.200.250.99", true},
	    {"223.255.255.255", true},
	    {"0.0.0.0", false},
	    {"0.1.2.3", false},
	    {"224.0.0.1", false},
	    {"239.255.255.250", false},
	    {"240.0.0.1", false},
	    {"255.255.255.255", false},
	    {"010.1.1.1", false},
	    {"1.02.3.4", false},
	    {"1.2.3.00", false},
	    {"256.0.0.1", false},
	    {"1.2.3.300", false},
	    {"1.2.3.1000", false},
	    {"1.2.3", false},
	    {"1.2.3.4.5", false},
	    {"1.2.3.", false},
	    {".1.2.3", false},
	    {"1..2.3", false},
	    {"", false},
	    {" 1.2.3.4", false},
	    {"1.2.3.4 ", false},
	    {"1.2. 3.4", false},
	    {"1.2.3.4\n", false},
	    {"+1.2.3.4", false},
	    {"-1.2.3.4", false},
	    {"0x1.2.3.4", false},
	    {"a.b.c.d", false},
	    {"1.2.3.4/24", false},
	    {"::1", false},
	    {"fe80::1", false},
	    {"::ffff:192.168.1.5", false},
	    {"[::1]", false},
	};
	/* clang-format on */
	const char *why = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (nf_push_usable_ip(cases[i].ip, strlen(cases[i].ip), &why) != cases[i].usable)
			fail_msg("nf_push_usable_ip(\"%s\") should be %s", cases[i].ip,
			         cases[i].usable ? "true" : "false");
		if (cases[i].usable != (why == NULL))
			fail_msg("nf_push_usable_ip(\"%s\"): why is %s", cases[i].ip,
			         why != NULL ? why : "NULL");
	}
	/* A NUL inside: the bytes after it are not ignored. */
	assert_false(nf_push_usable_ip("127.0.0.1\0evil", 14, &why));
	assert_string_equal(why, "not an IPv4 dotted quad");
	assert_false(nf_push_usable_ip("::1", 3, &why));
	assert_non_null(strstr(why, "IPv4 only"));
	assert_false(nf_push_usable_ip("224.0.0.1", 9, &why));
	assert_non_null(strstr(why, "multicast"));
	assert_false(nf_push_usable_ip(NULL, 0, NULL));
}

static void test_broker_parse(void **state)
{
	struct nf_push_broker b;

	(void)state;
	assert_int_equal(nf_push_broker_parse("mqtt.local", 1883, &b), 0);
	assert_string_equal(b.host, "mqtt.local");
	assert_int_equal(b.port, 1883);
	assert_int_equal(nf_push_broker_parse("127.0.0.1:1884", 1883, &b), 0);
	assert_string_equal(b.host, "127.0.0.1");
	assert_int_equal(b.port, 1884);
	assert_int_equal(nf_push_broker_parse("[::1]:8883", 1883, &b), 0);
	assert_string_equal(b.host, "::1");
	assert_int_equal(b.port, 8883);
	assert_int_equal(nf_push_broker_parse("::1", 1883, &b), 0);
	assert_string_equal(b.host, "::1");
	assert_int_equal(b.port, 1883);
	assert_int_equal(nf_push_broker_parse("[::1]", 8883, &b), 0);
	assert_int_equal(b.port, 8883);
	assert_int_equal(nf_push_broker_parse("", 1883, &b), -1);
	assert_int_equal(nf_push_broker_parse(":1883", 1883, &b), -1);
	assert_int_equal(nf_push_broker_parse("h:", 1883, &b), -1);
	assert_int_equal(nf_push_broker_parse("h:0", 1883, &b), -1);
	assert_int_equal(nf_push_broker_parse("h:65536", 1883, &b), -1);
	assert_int_equal(nf_push_broker_parse("h:12x", 1883, &b), -1);
	assert_int_equal(nf_push_broker_parse("h:-1", 1883, &b), -1);
	assert_int_equal(nf_push_broker_parse("[::1", 1883, &b), -1);
	assert_int_equal(nf_push_broker_parse("[::1]x", 1883, &b), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sections),
	    cmocka_unit_test(test_long_environment_name),
	    cmocka_unit_test(test_unknown_environment),
	    cmocka_unit_test(test_topic_and_custom_topic),
	    cmocka_unit_test(test_upload_flags),
	    cmocka_unit_test(test_multiline_upload_flags),
	    cmocka_unit_test(test_comments),
	    cmocka_unit_test(test_env_defaults_and_platform),
	    cmocka_unit_test(test_image_paths),
	    cmocka_unit_test(test_file_errors),
	    cmocka_unit_test(test_long_lines),
	    cmocka_unit_test(test_crlf_and_bom),
	    cmocka_unit_test_prestate_setup_teardown(test_read_file, nf_test_tmpdir_setup,
	                                             nf_test_tmpdir_teardown, (void *)"push"),
	    cmocka_unit_test(test_usable_ip),
	    cmocka_unit_test(test_broker_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
