/*
 * mkimage.c - `nofuss mkimage`: writes a firmware or filesystem image that
 * the simulated device (`nofuss device`) accepts, boots and reads its version
 * from. The format lives in the POSIX port (ports/posix/image.c) because the
 * simulator's bootloader checks it; this file only turns options into an
 * nf_posix_image and writes the result atomically.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nofuss.h"
#include "nofuss/posix.h"

#define MKIMAGE_SIZE_DEFAULT  (256u * 1024u)
#define MKIMAGE_FLASH_DEFAULT (1024u * 1024u)
#define MKIMAGE_EXIT_WRITE    1

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
	        "  -h, --help             show this help and exit\n\n"
	        "Exit status: 0 written; 1 cannot write the file; 2 bad usage.\n");
}

enum { OPT_VERSION = 256, OPT_FS, OPT_CRASH, OPT_FLASH_SIZE, OPT_FLASH_MODE };

static int parse_mode(const char *text, uint8_t *mode)
{
	static const char *const modes[] = {"qio", "qout", "dio", "dout"};

	for (uint8_t i = 0; i < 4; i++) {
		if (strcmp(text, modes[i]) == 0) {
			*mode = i;
			return 0;
		}
	}
	nf_tool_error("--flash-mode: '%s' is not qio, qout, dio or dout", text);
	return -1;
}

int nf_cmd_mkimage(int argc, char *argv[], char *prog_argv[])
{
	static const struct option opts[] = {
	    {"version", required_argument, NULL, OPT_VERSION},
	    {"device", required_argument, NULL, 'd'},
	    {"output", required_argument, NULL, 'o'},
	    {"size", required_argument, NULL, 's'},
	    {"fs", no_argument, NULL, OPT_FS},
	    {"crash", no_argument, NULL, OPT_CRASH},
	    {"flash-size", required_argument, NULL, OPT_FLASH_SIZE},
	    {"flash-mode", required_argument, NULL, OPT_FLASH_MODE},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct nf_posix_image info = {
	    .kind = NF_IMAGE_FIRMWARE, .size = MKIMAGE_SIZE_DEFAULT, .flash_mode = 2};
	const char *version = NULL, *device = "", *output = NULL;
	uint32_t flash = MKIMAGE_FLASH_DEFAULT;
	char err[NF_POSIX_ERR_MAX];
	uint8_t *buf = NULL;
	int c, code, rc = NF_EXIT_USAGE;

	(void)prog_argv;
	optind = 0;
	while ((c = getopt_long(argc, argv, "d:o:s:h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_VERSION: version = optarg; break;
		case 'd': device = optarg; break;
		case 'o': output = optarg; break;
		case 's':
			if (nf_parse_size("--size", optarg, NF_POSIX_IMAGE_MIN,
			                  NF_POSIX_FLASH_SIZE_MAX, &info.size) != 0)
				goto done;
			break;
		case OPT_FS: info.kind = NF_IMAGE_FILESYSTEM; break;
		case OPT_CRASH: info.flags |= NF_POSIX_IMAGE_CRASH; break;
		case OPT_FLASH_SIZE:
			if (nf_parse_size("--flash-size", optarg, 1, NF_POSIX_FLASH_SIZE_MAX,
			                  &flash) != 0)
				goto done;
			break;
		case OPT_FLASH_MODE:
			if (parse_mode(optarg, &info.flash_mode) != 0)
				goto done;
			break;
		case 'h':
			usage(stdout);
			rc = NF_EXIT_OK;
			goto done;
		default: usage(stderr); goto done;
		}
	}
	if (optind < argc) {
		nf_tool_error("unexpected argument '%s'", argv[optind]);
		goto done;
	}
	if (version == NULL || output == NULL) {
		nf_tool_error("--version and -o are required (see --help)");
		goto done;
	}
	if (info.kind == NF_IMAGE_FILESYSTEM && (info.flags & NF_POSIX_IMAGE_CRASH)) {
		nf_tool_error("--crash applies to firmware, not to --fs");
		goto done;
	}
	code = nf_posix_image_flash_code(flash);
	if (code < 0) {
		nf_tool_error("--flash-size: an ESP8266 has 256K, 512K, 1M, 2M, 4M, 8M or 16M");
		goto done;
	}
	info.flash_size_freq = (uint8_t)(code << 4); /* 40 MHz */
	if (strlen(version) >= sizeof info.version || strlen(device) >= sizeof info.device) {
		nf_tool_error("--version and --device take at most %u characters",
		              NF_POSIX_IMAGE_FIELD - 1);
		goto done;
	}
	strcpy(info.version, version);
	strcpy(info.device, device);
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
	rc = nf_write_file(output, buf, info.size) == 0 ? NF_EXIT_OK : MKIMAGE_EXIT_WRITE;
done:
	free(buf);
	return rc;
}
