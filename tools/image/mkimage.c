/*
 * mkimage.c - `nofuss mkimage`: writes a firmware or filesystem image that
 * the simulated device (`nofuss device`) accepts, boots and reads its version
 * from. The format lives in the POSIX port (ports/posix/image.c) because the
 * simulator's bootloader checks it; this file only turns options into an
 * nf_posix_image and writes the result atomically.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "image.h"
#include "nofuss/posix.h"

#define MKIMAGE_SIZE_DEFAULT  (256u * 1024u)
#define MKIMAGE_FLASH_DEFAULT (1024u * 1024u)
#define MKIMAGE_EXIT_WRITE    1

const struct nf_exit nf_mkimage_exits[] = {
    {NF_EXIT_OK, "the image was written"},
    {MKIMAGE_EXIT_WRITE, "the file cannot be written"},
    {0, NULL},
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: nofuss mkimage --version VERSION -o FILE [OPTION]...\n"
	        "Write an image for the simulated ESP8266 (nofuss device): a firmware with a\n"
	        "valid-looking ESP8266 header, or with --fs a filesystem image; either carries\n"
	        "its version (see docs/SIMULATOR.md).\n\n"
	        "      --version VERSION  version the image carries (required; at most 31\n"
	        "                         printable characters, no spaces or '/')\n"
	        "  -d, --device NAME      device the firmware is built for (optional)\n"
	        "  -o, --output FILE      file to write (required; replaced atomically)\n"
	        "  -s, --size SIZE        image size in bytes, K or M allowed (default 256K;\n"
	        "                         128 bytes to 16M)\n"
	        "      --fs               a filesystem image instead of a firmware\n"
	        "      --crash            a firmware that crashes at boot: the simulator's\n"
	        "                         bootloader then falls back to the previous slot\n"
	        "      --flash-size SIZE  flash size written in the header's byte 3: 256K,\n"
	        "                         512K, 1M (default), 2M, 4M, 8M or 16M\n"
	        "      --flash-mode MODE  qio, qout, dio (default) or dout\n"
	        "  -h, --help             show this help and exit\n");
	nf_exit_help(out, nf_mkimage_exits);
}

struct options {
	const char *version, *device, *output;
	uint32_t size, flash;
	bool fs, crash;
	uint8_t mode;
};

static int set_mode(void *opts, const char *text)
{
	static const char *const modes[] = {"qio", "qout", "dio", "dout"};
	struct options *o = opts;

	for (uint8_t i = 0; i < 4; i++) {
		if (strcmp(text, modes[i]) == 0) {
			o->mode = i;
			return 0;
		}
	}
	nf_tool_error("--flash-mode: '%s' is not qio, qout, dio or dout", text);
	return -1;
}

static const struct nf_opt opts[] = {
    NF_OPT_STRING("version", 0, struct options, version),
    NF_OPT_STRING("device", 'd', struct options, device),
    NF_OPT_STRING("output", 'o', struct options, output),
    NF_OPT_SIZE("size", 's', struct options, size, NF_POSIX_IMAGE_MIN, NF_POSIX_FLASH_SIZE_MAX),
    NF_OPT_FLAG("fs", 0, struct options, fs),
    NF_OPT_FLAG("crash", 0, struct options, crash),
    NF_OPT_SIZE("flash-size", 0, struct options, flash, 1, NF_POSIX_FLASH_SIZE_MAX),
    NF_OPT_CALL("flash-mode", 0, NF_OPT_CALL, set_mode),
    NF_OPT_END,
};

int nf_cmd_mkimage(int argc, char *argv[], char *prog_argv[])
{
	struct options o = {.device = "",
	                    .size = MKIMAGE_SIZE_DEFAULT,
	                    .flash = MKIMAGE_FLASH_DEFAULT,
	                    .mode = 2 /* dio */};
	struct nf_posix_image info = {.kind = NF_IMAGE_FIRMWARE};
	char err[NF_POSIX_ERR_MAX];
	uint8_t *buf = NULL;
	int code, rc;

	(void)prog_argv;
	rc = nf_opts_parse(opts, &o, usage, argc, argv);
	if (rc != 0)
		return rc > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;
	rc = NF_EXIT_USAGE;
	info.size = o.size;
	info.flash_mode = o.mode;
	if (o.fs)
		info.kind = NF_IMAGE_FILESYSTEM;
	if (o.crash)
		info.flags |= NF_POSIX_IMAGE_CRASH;
	if (nf_opts_no_operands(argc, argv) != 0)
		goto done;
	if (o.version == NULL || o.output == NULL) {
		nf_tool_error("--version and -o are required (see --help)");
		goto done;
	}
	if (info.kind == NF_IMAGE_FILESYSTEM && (info.flags & NF_POSIX_IMAGE_CRASH)) {
		nf_tool_error("--crash applies to firmware, not to --fs");
		goto done;
	}
	code = nf_posix_image_flash_code(o.flash);
	if (code < 0) {
		nf_tool_error("--flash-size: an ESP8266 has 256K, 512K, 1M, 2M, 4M, 8M or 16M");
		goto done;
	}
	info.flash_size_freq = (uint8_t)(code << 4); /* 40 MHz */
	if (strlen(o.version) >= sizeof info.version || strlen(o.device) >= sizeof info.device) {
		nf_tool_error("--version and --device take at most %u characters",
		              NF_POSIX_IMAGE_FIELD - 1);
		goto done;
	}
	strcpy(info.version, o.version);
	strcpy(info.device, o.device);
	buf = malloc(info.size);
	if (buf == NULL) {
		nf_tool_error("out of memory");
		rc = MKIMAGE_EXIT_WRITE;
		goto done;
	}
	if (nf_posix_image_build(&info, buf, info.size, err, sizeof err) != 0) {
		nf_tool_error("%s", err);
		goto done;
	}
	rc = nf_write_file(o.output, buf, info.size) == 0 ? NF_EXIT_OK : MKIMAGE_EXIT_WRITE;
done:
	free(buf);
	return rc;
}
