/*
 * fuzz_range.c - libFuzzer harness for range.c: any Range header value
 * against a few file sizes; an accepted range always lies inside the file.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nofussd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t sizes[] = {0, 1, 1000, UINT64_MAX};
	char *value = malloc(size + 1);

	if (value == NULL)
		return 0;
	memcpy(value, data, size);
	value[size] = '\0';
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		uint64_t first = 0, last = 0;
		if (nf_range_parse(value, sizes[i], &first, &last) == NF_RANGE_OK &&
		    (first > last || last >= sizes[i]))
			abort();
	}
	free(value);
	return 0;
}
