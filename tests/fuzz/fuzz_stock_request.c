/*
 * fuzz_stock_request.c - libFuzzer harness for stockparse.c: any header
 * value as a number and as a Tasmota version, any URL segment as a device.
 * A number is 0 unless the value is digits only and their value; the
 * Tasmota parts are NUL-terminated within their bounds and come from the
 * value; the device length never grows, stops before any '.', and
 * "-minimal" is only taken off when it was there.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nofussd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = malloc(size + 1), version[NF_MAX_FIELD + 1], image[NF_MAX_FIELD + 1];
	uint64_t n;
	size_t len;
	bool minimal;

	if (v == NULL)
		return 0;
	memcpy(v, data, size);
	v[size] = '\0';

	n = nf_stock_parse_u64(v);
	if (n != 0 && (strspn(v, "0123456789") != strlen(v) || strtoull(v, NULL, 10) != n))
		abort();

	memset(version, 0x5a, sizeof version);
	memset(image, 0x5a, sizeof image);
	if (nf_stock_parse_tasmota(v, version, image)) {
		if (memchr(version, '\0', sizeof version) == NULL ||
		    memchr(image, '\0', sizeof image) == NULL || strstr(v, version) != v ||
		    strchr(v, '(') == NULL || strstr(v, image) == NULL)
			abort();
	}

	/* The segment as the router hands it: bytes, not a C string. */
	len = nf_stock_device_len((const char *)data, size, &minimal);
	if (len > size || memchr(data, '.', len) != NULL)
		abort();
	if (minimal && (len + 8 > size || memcmp(data + len, "-minimal", 8) != 0))
		abort();
	free(v);
	return 0;
}
