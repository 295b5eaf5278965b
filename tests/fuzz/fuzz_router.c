/*
 * fuzz_router.c - libFuzzer harness for router.c: any request path, under
 * a root and a prefixed base. Checks the promises routes make: a file path
 * never climbs out (no "." segment start), device and version point into
 * the path and the version is NUL-terminated; a reserved path is still an
 * image or a check, and its name lies inside the path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nofussd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *base, const char *url)
{
	struct nf_route r;

	nf_route(base, url, &r);
	if (r.kind == NF_ROUTE_FILE || r.kind == NF_ROUTE_FILE_OR_CHECK) {
		const char *p = r.path;
		if (p[0] == '/' || p[0] == '\0')
			abort();
		for (; *p != '\0'; p++)
			if (*p == '.' && (p == r.path || p[-1] == '/'))
				abort(); /* a dot segment or hidden name escaped */
	}
	if (r.kind == NF_ROUTE_FILE_OR_CHECK) {
		if (r.device < r.path || r.device + r.device_len > r.path + strlen(r.path))
			abort();
		if (strlen(r.version) != r.version_len || r.version_len > NF_MAX_FIELD)
			abort();
	}
	/* A reserved path (/update..., /esphome/NAME/manifest.json) is routed
	 * as an image or check too, and its name lies inside the path. */
	if (r.reserved != NF_RESERVED_NONE) {
		if (r.kind != NF_ROUTE_FILE && r.kind != NF_ROUTE_FILE_OR_CHECK)
			abort();
		if (r.name != NULL && (r.name < r.path || r.name_len > NF_MAX_FIELD ||
		                       r.name + r.name_len > r.path + strlen(r.path)))
			abort();
		if (r.reserved == NF_RESERVED_ESPHOME && r.name == NULL)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *url = malloc(size + 1);

	if (url == NULL)
		return 0;
	memcpy(url, data, size);
	url[size] = '\0';
	check("", url);
	check("/nofuss", url);
	free(url);
	return 0;
}
