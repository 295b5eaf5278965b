/*
 * nofuss.h - the `nofuss` program's internal header: its subcommands and
 * the helpers they share, grouped by file. One file per subcommand; to add
 * one, write tools/<name>.c with an nf_cmd_<name>() below, add it to the
 * table in main.c and to CMakeLists.txt.
 *
 * Exit status shared by every subcommand: 0 ok, 2 bad usage; each
 * subcommand documents its others in its --help and in docs/man/nofuss.1.
 */
#ifndef NOFUSS_TOOLS_H
#define NOFUSS_TOOLS_H

#include <stddef.h>
#include <stdint.h>

#include "nofuss/port.h" /* enum nf_image */

#define NF_EXIT_OK    0
#define NF_EXIT_USAGE 2

#define NF_TOOL_FILE_MAX (16u * 1024u * 1024u) /* largest file a tool reads whole */

/* A subcommand: argv[0] is its name; prog_argv is the whole command line
 * as main() got it (for a program that re-executes itself). Returns the
 * process exit status. */
typedef int (*nf_command_fn)(int argc, char *argv[], char *prog_argv[]);

/* device.c: `nofuss device`, a simulated ESP8266. */
int nf_cmd_device(int argc, char *argv[], char *prog_argv[]);
/* mkimage.c: `nofuss mkimage`, images the simulator accepts. */
int nf_cmd_mkimage(int argc, char *argv[], char *prog_argv[]);
/* info.c: `nofuss info`, what an image says about itself. */
int nf_cmd_info(int argc, char *argv[], char *prog_argv[]);
/* fleet.c: `nofuss fleet`, many simulated devices in one process. */
int nf_cmd_fleet(int argc, char *argv[], char *prog_argv[]);
/* push.c: `nofuss push`, OTA upload of PlatformIO environments. */
int nf_cmd_push(int argc, char *argv[], char *prog_argv[]);
/* ota.c: `nofuss ota-send` and `nofuss ota-recv`, one ArduinoOTA push. */
int nf_cmd_ota_send(int argc, char *argv[], char *prog_argv[]);
int nf_cmd_ota_recv(int argc, char *argv[], char *prog_argv[]);

/* args.c: parsing and file helpers. Each parser returns 0, or -1 after
 * printing "nofuss <cmd>: <what>: <why>" on stderr. */

/* Sets the program name used in messages ("nofuss device"). */
void nf_tool_set_name(const char *name);
/* Prints "<name>: <message>\n" on stderr. */
void nf_tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A byte size: decimal digits with an optional K or M suffix (binary:
 * 1K = 1024), within [min, max]. */
int nf_parse_size(const char *what, const char *text, uint32_t min, uint32_t max, uint32_t *out);
/* A decimal count within [min, max]. */
int nf_parse_count(const char *what, const char *text, unsigned long min, unsigned long max,
                   unsigned long *out);
/* Seconds, decimals allowed ("0.5"), within [min, max]; out in milliseconds. */
int nf_parse_seconds(const char *what, const char *text, double min, double max, long *out_ms);
/* Reads the whole file path (at most max bytes) into a buffer the caller
 * frees with free(). Returns 0, or -1 after printing why. */
int nf_read_file(const char *path, size_t max, uint8_t **data, size_t *len);
/* Writes data to path atomically (path.tmp, fsync, rename). Returns 0, or
 * -1 after printing why. */
int nf_write_file(const char *path, const uint8_t *data, size_t len);
/* Builds a simulator image (nofuss mkimage's format: a 1 MB, 40 MHz, DIO
 * header) carrying version and device into a buffer of size bytes the
 * caller frees. Returns NULL after printing why. */
uint8_t *nf_tool_make_image(enum nf_image kind, const char *version, const char *device,
                            uint32_t size);

#endif
