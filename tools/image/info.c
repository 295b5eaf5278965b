/*
 * info.c - `nofuss info`: what an image says about itself (kind, version,
 * device, flags, size) and whether it is whole, read with the same function
 * the simulator's bootloader uses (nf_posix_image_verify_file). Handy to
 * check what mkimage wrote, or what sits in a simulator's flash slot.
 */
#include <fcntl.h>
#include <getopt.h> /* optind */
#include <stdio.h>

#include "args.h"
#include "common.h"
#include "image.h"
#include "nofuss/posix.h"

#define INFO_EXIT_INVALID 1

const struct nf_exit nf_info_exits[] = {
    {NF_EXIT_OK, "every file is a whole image"},
    {INFO_EXIT_INVALID, "a file is not a whole image"},
    {0, NULL},
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: nofuss info FILE...\n"
	             "Print what each simulator image carries, one line per file:\n"
	             "  FILE: firmware|filesystem version=V device=D size=N md5=HEX [crash]\n"
	             "or FILE: invalid: REASON.\n\n"
	             "  -h, --help  show this help and exit\n");
	nf_exit_help(out, nf_info_exits);
}

int nf_cmd_info(int argc, char *argv[], char *prog_argv[])
{
	static const struct nf_opt opts[] = {NF_OPT_END};
	int rc = nf_opts_parse(opts, NULL, usage, argc, argv);

	(void)prog_argv;
	if (rc != 0)
		return rc > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;
	if (optind >= argc) {
		nf_tool_error("no file given (see --help)");
		return NF_EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++) {
		struct nf_posix_image info;
		char err[NF_POSIX_ERR_MAX];
		uint8_t md5[16];
		char hex[2 * sizeof md5 + 1];

		if (nf_posix_image_verify_file(AT_FDCWD, argv[i], NF_POSIX_FLASH_SIZE_MAX, &info,
		                               md5, err, sizeof err) != 0) {
			printf("%s: invalid: %s\n", argv[i], err);
			rc = INFO_EXIT_INVALID;
			continue;
		}
		nf_hex_encode(md5, sizeof md5, hex);
		printf("%s: %s version=%s device=%s size=%u md5=%s%s\n", argv[i],
		       info.kind == NF_IMAGE_FIRMWARE ? "firmware" : "filesystem", info.version,
		       info.device[0] != '\0' ? info.device : "-", info.size, hex,
		       (info.flags & NF_POSIX_IMAGE_CRASH) ? " crash" : "");
	}
	return rc;
}
