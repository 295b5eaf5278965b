/*
 * fuzz_image.c - libFuzzer harness for the simulated ESP8266's image
 * parser (ports/posix/image.c): a hostile update server controls every
 * byte `nofuss device` reads back from an image it was sent. Any bytes are
 * parsed; an accepted header must describe a sane image (a printable,
 * non-empty version, a size in range, known flags) and survive a round trip
 * through nf_posix_image_build; the whole-file verifier runs on the same
 * bytes through a real file descriptor (memfd) and must agree with itself.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nofuss/posix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROUND_TRIP_MAX (256u * 1024) /* rebuild images up to this size */

static void check_fields(const struct nf_posix_image *info)
{
	size_t vlen = strnlen(info->version, sizeof info->version);
	size_t dlen = strnlen(info->device, sizeof info->device);

	if (vlen == 0 || vlen == sizeof info->version || dlen == sizeof info->device)
		abort();
	for (size_t i = 0; i < vlen; i++)
		if (info->version[i] < 0x21 || info->version[i] > 0x7e)
			abort();
	if (info->size < NF_POSIX_IMAGE_MIN || info->size > NF_POSIX_FLASH_SIZE_MAX ||
	    (info->flags & ~NF_POSIX_IMAGE_FLAGS) != 0)
		abort();
}

static void round_trip(const struct nf_posix_image *info)
{
	struct nf_posix_image again = *info, back;
	char err[256];
	uint8_t *buf;

	if (info->size > ROUND_TRIP_MAX)
		return;
	buf = malloc(info->size);
	if (buf == NULL)
		return;
	if (nf_posix_image_build(&again, buf, info->size, err, sizeof err) != 0 ||
	    nf_posix_image_parse(buf, info->size, &back, err, sizeof err) != 0 ||
	    back.kind != info->kind || strcmp(back.version, info->version) != 0 ||
	    strcmp(back.device, info->device) != 0 || back.size != info->size ||
	    back.flags != info->flags)
		abort();
	free(buf);
}

static void verify_through_fd(const uint8_t *data, size_t size, bool parsed)
{
	struct nf_posix_image info;
	uint8_t md5[16];
	char err[256], path[64];
	int fd = memfd_create("image", 0);

	if (fd < 0)
		return;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		err[0] = '\0';
		if (nf_posix_image_verify_file(AT_FDCWD, path, NF_POSIX_FLASH_SIZE_MAX, &info, md5, err,
		                               sizeof err) == 0) {
			if (!parsed || info.size != size) /* whole-file check implies the header's */
				abort();
			check_fields(&info);
		} else if (err[0] == '\0') {
			abort(); /* every refusal says why */
		}
	}
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nf_posix_image info;
	char err[256] = "";
	bool parsed = nf_posix_image_parse(data, size, &info, err, sizeof err) == 0;

	if (parsed) {
		check_fields(&info);
		round_trip(&info);
	} else if (err[0] == '\0') {
		abort();
	}
	verify_through_fd(data, size, parsed);
	return 0;
}
