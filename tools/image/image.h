/*
 * image.h - the simulator's image tools, library nofuss_image: `nofuss
 * mkimage` writes images, `nofuss info` reads them back, and the image
 * builder gives `nofuss device` and `nofuss fleet` the firmware and
 * filesystem they are provisioned with. The format itself belongs to the
 * POSIX port (ports/posix/image.c), whose bootloader checks it; these tools
 * only build and inspect it. Links the POSIX port and nofuss_args.
 */
#ifndef NOFUSS_TOOLS_IMAGE_H
#define NOFUSS_TOOLS_IMAGE_H

#include <stdint.h>

#include "args.h"        /* struct nf_exit */
#include "nofuss/port.h" /* enum nf_image */

/* builder.c: builds a simulator image (nofuss mkimage's format: a 1 MB,
 * 40 MHz, DIO header) carrying version and device into a buffer of size
 * bytes the caller frees with free(). Returns NULL after printing why
 * (nf_tool_error). */
uint8_t *nf_tool_make_image(enum nf_image kind, const char *version, const char *device,
                            uint32_t size);

/* mkimage.c: `nofuss mkimage`, images the simulator accepts; its exit
 * statuses. */
int nf_cmd_mkimage(int argc, char *argv[], char *prog_argv[]);
extern const struct nf_exit nf_mkimage_exits[];
/* info.c: `nofuss info`, what an image says about itself; its exit
 * statuses. */
int nf_cmd_info(int argc, char *argv[], char *prog_argv[]);
extern const struct nf_exit nf_info_exits[];

#endif /* NOFUSS_TOOLS_IMAGE_H */
