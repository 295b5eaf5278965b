/*
 * fuzz_pio_ini.c - libFuzzer harness for `nofuss push`'s platformio.ini
 * reader (tools/push/config.c, inih behind a line reader of its own): any
 * bytes as a project file, parsed in memory. Checks that nothing crashes
 * and that what comes out is sane: a refusal names the file and a line and
 * leaves no environment; a success gives unique, non-empty names, ports in
 * range, a password only when there is one, build paths that end where
 * PlatformIO puts images, and per-environment problems that name the file.
 * The same bytes, up to 79 of them, also go through nf_push_usable_ip(),
 * which must take exactly what inet_pton(AF_INET) takes as a C string,
 * without a NUL inside, whose first octet is 1 to 223.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "push.h"

#define ORIGIN "fuzz.ini"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && strcmp(s + n - t, tail) == 0;
}

static void check_env(const struct nf_push_config *cfg, size_t i)
{
	const struct nf_push_env *e = &cfg->env[i];

	if (strnlen(e->name, sizeof e->name) == sizeof e->name || e->name[0] == '\0')
		abort();
	if (nf_push_config_find(cfg, e->name) != e)
		abort(); /* names are unique */
	if (strnlen(e->topic, sizeof e->topic) == sizeof e->topic ||
	    strnlen(e->auth, sizeof e->auth) == sizeof e->auth ||
	    strnlen(e->problem, sizeof e->problem) == sizeof e->problem)
		abort();
	if (e->has_auth && e->auth[0] == '\0')
		abort();
	if (e->port < 1 || e->port > 65535)
		abort();
	if (e->problem[0] != '\0') {
		if (strncmp(e->problem, ORIGIN ":", sizeof ORIGIN) != 0)
			abort();
		return;
	}
	if (e->line == 0 || !ends_with(e->firmware, "/firmware.bin") ||
	    !ends_with(e->littlefs, "/littlefs.bin") || !ends_with(e->spiffs, "/spiffs.bin"))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct nf_push_config cfg; /* large: not on the stack */
	char text[80];
	struct in_addr a4;
	size_t n;
	bool want;

	if (nf_push_config_parse_string((const char *)data, size, ORIGIN, "", &cfg) != 0) {
		if (cfg.count != 0 || strncmp(cfg.error, ORIGIN ":", sizeof ORIGIN) != 0)
			abort();
	} else {
		if (cfg.count > NF_PUSH_MAX_ENVS)
			abort();
		for (size_t i = 0; i < cfg.count; i++)
			check_env(&cfg, i);
	}

	n = size < sizeof text - 1 ? size : sizeof text - 1;
	memcpy(text, data, n);
	text[n] = '\0';
	want = memchr(text, '\0', n) == NULL && inet_pton(AF_INET, text, &a4) == 1 &&
	       (ntohl(a4.s_addr) >> 24) >= 1 && (ntohl(a4.s_addr) >> 24) <= 223;
	if (nf_push_usable_ip(text, n, NULL) != want)
		abort();
	return 0;
}
