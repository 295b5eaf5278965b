/*
 * fuzz_vercmp.c - libFuzzer harness for vercmp.c: two versions split at the
 * first NUL; the result is -1, 0 or 1 and comparing never reads out of
 * bounds (ASan), whatever the bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vercmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2);
	const char *a, *b;
	int c;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = '\0';
	a = buf;
	b = buf + strlen(buf) + 1;
	c = nf_vercmp(a, b);
	if (c < -1 || c > 1)
		abort();
	free(buf);
	return 0;
}
