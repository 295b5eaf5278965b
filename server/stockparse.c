/*
 * stockparse.c - the pieces of a stock client's request that need parsing
 * (docs/PROTOCOL.md sections 5.1, 5.2 and 5.5): a header's decimal number,
 * Tasmota's version "VERSION(TAG-IMAGE)", and the device type in an
 * /update/DEVICE URL (Tasmota appends ".bin", ".gz" and "-minimal").
 *
 * Pure and allocation-free, bounded by the lengths given (outside input);
 * fuzzed by tests/fuzz/fuzz_stock_request.c.
 */
#include <string.h>

#include "nofussd.h"

uint64_t nf_stock_parse_u64(const char *v)
{
	uint64_t n = 0;
	size_t len = v != NULL ? strspn(v, "0123456789") : 0;

	if (len == 0 || len > NF_MAX_NUMBER_LEN || v[len] != '\0')
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (n > (UINT64_MAX - 9) / 10)
			return 0;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	return n;
}

/* len bytes of src into dst (NF_MAX_FIELD + 1 bytes), cut to NF_MAX_FIELD. */
static void copy_field(char *dst, const char *src, size_t len)
{
	if (len > NF_MAX_FIELD)
		len = NF_MAX_FIELD;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

bool nf_stock_parse_tasmota(const char *v, char version[NF_MAX_FIELD + 1],
                            char image[NF_MAX_FIELD + 1])
{
	const char *open = strchr(v, '('), *inside, *dash;
	size_t len = strlen(v);

	if (open == NULL || open == v || len < 3 || v[len - 1] != ')' ||
	    strchr(open + 1, '(') != NULL)
		return false;
	copy_field(version, v, (size_t)(open - v));
	/* TAG (a commit or "release") has no '-'; an image name may. */
	inside = open + 1;
	dash = memchr(inside, '-', (size_t)(v + len - 1 - inside));
	if (dash != NULL)
		inside = dash + 1;
	copy_field(image, inside, (size_t)(v + len - 1 - inside));
	return true;
}

size_t nf_stock_device_len(const char *name, size_t len, bool *minimal)
{
	static const char suffix[] = "-" NF_STOCK_MINIMAL;
	const size_t slen = sizeof suffix - 1;
	const char *dot = memchr(name, '.', len);

	if (dot != NULL)
		len = (size_t)(dot - name);
	*minimal = len > slen && memcmp(name + len - slen, suffix, slen) == 0;
	return *minimal ? len - slen : len;
}
