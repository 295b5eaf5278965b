/*
 * fuzz_esp_header.c - libFuzzer harness for esp_header.c: any first bytes
 * of an image. The parser never reads past len, an ESP image's size code is
 * a nibble, a family is claimed only with the bytes that tell it, and the
 * flash size of any code is 0 or a power of two.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nofussd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes: ASan catches any read past it. */
	unsigned char *buf = malloc(size > 0 ? size : 1);
	struct nf_esp_header h;
	int rc;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	rc = nf_esp_header_parse(buf, size, &h);
	if ((rc == 0) != (h.format != NF_IMAGE_UNKNOWN) || h.flash_size_code > 15)
		abort();
	if (h.family != NF_CHIP_UNKNOWN && (h.format != NF_IMAGE_ESP || size < NF_ESP_HEADER_LEN))
		abort();
	for (unsigned f = NF_CHIP_UNKNOWN; f <= NF_CHIP_ESP32; f++) {
		uint64_t b = nf_esp_flash_bytes((enum nf_chip_family)f, h.flash_size_code);
		if (b & (b - 1))
			abort();
	}
	if (nf_esp_chip_family(&h) != NULL && h.family == NF_CHIP_UNKNOWN)
		abort();
	free(buf);
	return 0;
}
