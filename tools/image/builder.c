/*
 * builder.c - the image builder the simulators provision their flash with
 * (see image.h): a whole, valid image of the POSIX port's format with a
 * fixed ESP8266 header, so that a fresh device boots it like any other.
 */
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "image.h"
#include "nofuss/posix.h"

uint8_t *nf_tool_make_image(enum nf_image kind, const char *version, const char *device,
                            uint32_t size)
{
	struct nf_posix_image info = {.kind = kind,
	                              .size = size,
	                              .flash_mode = 2,
	                              .flash_size_freq = 0x20 /* 1 MB, 40 MHz */};
	char err[NF_POSIX_ERR_MAX];
	uint8_t *buf;

	if (strlen(version) >= sizeof info.version || strlen(device) >= sizeof info.device) {
		nf_tool_error("version and device take at most %u characters",
		              NF_POSIX_IMAGE_FIELD - 1);
		return NULL;
	}
	strcpy(info.version, version);
	strcpy(info.device, device);
	buf = malloc(size);
	if (buf == NULL) {
		nf_tool_error("out of memory");
		return NULL;
	}
	if (nf_posix_image_build(&info, buf, size, err, sizeof err) != 0) {
		nf_tool_error("%s", err);
		free(buf);
		return NULL;
	}
	return buf;
}
