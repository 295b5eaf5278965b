/*
 * nofuss/posix.h - the POSIX port of the device core: a Linux process
 * plays an ESP8266. It implements the porting contract (nofuss/port.h) with
 * libcurl for HTTP, OpenSSL's libcrypto for MD5 and a directory of files for
 * the flash, and it adds what a real device has around the core: a
 * bootloader with two firmware slots and a trial boot, and an image format
 * that carries the firmware's version.
 *
 * This header is the port's table of contents, grouped by file:
 *   port.c      the port handle, console log, reboot request
 *   http.c      nf_port_http_get (libcurl easy, HTTP/1.0 like the ESP updater)
 *   md5.c       nf_port_md5_* (OpenSSL EVP)
 *   flash.c     the flash directory: nf_port_flash_*, provisioning, bootloader
 *   image.c     the simulated ESP8266 image format
 *   powercut.c  the fault injector: a "power cut" before the Nth flash operation
 *
 * One struct nf_posix per simulated device; nothing is global, so one
 * process may run several devices. Not thread-safe: one thread per handle.
 * docs/SIMULATOR.md describes the flash directory and the image format.
 */
#ifndef NOFUSS_POSIX_H
#define NOFUSS_POSIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nofuss/client.h"
#include "nofuss/port.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits. */
#define NF_POSIX_PATH_MAX                   512u /* the flash directory's path */
#define NF_POSIX_ERR_MAX                    256u /* an error text, with the NUL */
#define NF_POSIX_SECTOR_SIZE                4096u /* flash writes go by whole sectors, as on the ESP */
#define NF_POSIX_SLOT_SIZE_DEFAULT          (1024u * 1024u)
#define NF_POSIX_FS_SIZE_DEFAULT            (1024u * 1024u)
#define NF_POSIX_CHIP_SIZE_DEFAULT          (4u * 1024u * 1024u)
#define NF_POSIX_FLASH_SIZE_MAX             (16u * 1024u * 1024u) /* largest slot, fs or chip */
#define NF_POSIX_STATE_MAX                  512u /* bytes of the bootloader state file */
#define NF_POSIX_LOG_MAX                    512u /* one console line */
#define NF_POSIX_HEADER_MAX                 256u /* one request header line */
#define NF_POSIX_MD5_HEADER_MAX             64u /* longest x-MD5 value kept (longer is bad anyway) */
#define NF_POSIX_CHECK_BODY_MAX             (NF_CLIENT_ANSWER_MAX + 1u) /* then the check is cut */
#define NF_POSIX_TIMEOUT_MS_DEFAULT         30000L
#define NF_POSIX_CONNECT_TIMEOUT_MS_DEFAULT 5000L
#define NF_POSIX_POWER_CUT_EXIT             6 /* exit status of a simulated power cut */

/* ---- image.c: the simulated ESP8266's image format. On flash and in the
 * images `nofuss mkimage` writes: do not change. ---- */

#define NF_POSIX_IMAGE_MIN   128u /* headers and metadata; the payload follows */
#define NF_POSIX_IMAGE_FIELD 32u  /* version and device, with the NUL */
#define NF_POSIX_IMAGE_CRASH 0x1u /* flag: the firmware crashes at boot */
#define NF_POSIX_IMAGE_FLAGS 0x1u /* every flag defined so far */

/* What an image says about itself. */
struct nf_posix_image {
	enum nf_image kind;                 /* firmware or filesystem */
	char version[NF_POSIX_IMAGE_FIELD]; /* never empty */
	char device[NF_POSIX_IMAGE_FIELD];  /* may be empty */
	uint32_t flags;                     /* NF_POSIX_IMAGE_* */
	uint32_t size;                      /* the whole image, in bytes */
	uint8_t flash_mode;                 /* firmware header byte 2 (0 QIO .. 3 DOUT) */
	uint8_t flash_size_freq;            /* firmware header byte 3 */
	uint8_t payload_md5[16];            /* MD5 of bytes [NF_POSIX_IMAGE_MIN, size) */
};

/* Writes the image described by info (kind, version, device, flags, size,
 * flash_mode, flash_size_freq; payload_md5 is filled in) into buf, which
 * holds cap >= info->size bytes. Returns 0, or -1 with the reason in err
 * (errcap bytes) when a field is empty, too long or not printable, or the
 * size is out of [NF_POSIX_IMAGE_MIN, NF_POSIX_FLASH_SIZE_MAX]. */
int nf_posix_image_build(struct nf_posix_image *info, uint8_t *buf, size_t cap, char *err,
                         size_t errcap);
/* Reads an image's headers from its first len bytes (len >=
 * NF_POSIX_IMAGE_MIN): the shared way to read a version back out of an
 * image. Checks the headers, not the payload. Returns 0, or -1 with the
 * reason in err. */
int nf_posix_image_parse(const uint8_t *buf, size_t len, struct nf_posix_image *info, char *err,
                         size_t errcap);
/* Reads and fully verifies the image file name (relative to dirfd, or
 * AT_FDCWD): headers, file size equal to the recorded size and at most max,
 * ESP checksum, payload MD5. md5 (may be NULL) gets the MD5 of the whole
 * file. Returns 0, or -1 with errno set (ENOENT: no such file; EINVAL: not a
 * valid image) and the reason in err. */
int nf_posix_image_verify_file(int dirfd, const char *name, uint32_t max,
                               struct nf_posix_image *info, uint8_t md5[16], char *err,
                               size_t errcap);
/* The flash size an ESP8266 header's byte 3 asks for, in bytes; 0 for a
 * code the ESP8266 does not define. */
uint32_t nf_posix_image_flash_bytes(uint8_t size_freq);
/* The byte 3 code for a flash size in bytes, or -1 when it has none. */
int nf_posix_image_flash_code(uint32_t bytes);

/* ---- powercut.c: the fault injector (the MCUboot simulator's idea). ---- */

struct nf_posix_powercut {
	unsigned long at;    /* cut before operation number `at` (1-based); 0: never */
	unsigned long count; /* flash operations done so far */
};

/* Arms pc: cut before operation `at` (0: never), counting on from `done`
 * operations already made (a simulator that re-executes itself carries the
 * count over). */
void nf_posix_powercut_init(struct nf_posix_powercut *pc, unsigned long at, unsigned long done);
/* Counts one flash-affecting operation (what, e.g. "write slot-b.new") and,
 * when it is the one armed, prints a line to console and ends the process
 * at once with _exit(NF_POSIX_POWER_CUT_EXIT), as a power cut would. */
void nf_posix_powercut_tick(struct nf_posix_powercut *pc, FILE *console, const char *what,
                            const char *name);
/* Parses the value of NOFUSS_POWER_CUT_AT (a count >= 1); NULL or "" is 0
 * (off). Returns 0, or -1 when it is not a number. */
int nf_posix_powercut_parse(const char *text, unsigned long *at);

/* ---- flash.c: the flash directory (docs/SIMULATOR.md). The layout and the
 * state file are on flash: do not change. ---- */

#define NF_POSIX_SLOTS 2

struct nf_posix_geometry {
	uint32_t slot_size; /* each firmware slot */
	uint32_t fs_size;   /* the filesystem */
	uint32_t chip_size; /* what the firmware header's flash size must not exceed */
};

/* The bootloader's state, the file DIR/state. */
struct nf_posix_state {
	int active;        /* the confirmed slot, 0 (a) or 1 (b) */
	int trial;         /* the slot to try at the next boot, or -1 */
	unsigned attempts; /* boots of the trial slot so far (0 or 1) */
	struct nf_posix_geometry geometry;
};

enum nf_posix_boot_how {
	NF_POSIX_BOOT_NORMAL = 0, /* the confirmed slot */
	NF_POSIX_BOOT_TRIAL,      /* a new firmware's one trial boot */
	NF_POSIX_BOOT_REVERTED,   /* the trial failed: back to the confirmed slot */
	NF_POSIX_BOOT_FALLBACK,   /* the confirmed slot is broken: the other one */
};

/* What the bootloader booted. */
struct nf_posix_boot {
	int slot; /* 0 (a) or 1 (b) */
	enum nf_posix_boot_how how;
	char why[NF_POSIX_ERR_MAX]; /* for REVERTED and FALLBACK: the reason */
	struct nf_posix_image firmware;
	bool fs_valid;                   /* fs.bin is a whole filesystem image */
	struct nf_posix_image fs;        /* when fs_valid */
	char fs_error[NF_POSIX_ERR_MAX]; /* when not */
};

struct nf_posix_flash {
	int dirfd; /* -1 when closed */
	char dir[NF_POSIX_PATH_MAX];
	FILE *console; /* where the fault injector reports */
	struct nf_posix_powercut cut;
	struct nf_posix_state state;
	int running;           /* the booted slot, -1 before boot */
	uint32_t running_size; /* its image's size and MD5 (for the updater's headers) */
	char running_md5[33];
	/* One image being written. */
	int fd; /* -1 when none */
	enum nf_image image;
	int target; /* firmware: the slot written */
	uint32_t size, written;
	bool checked_header; /* firmware: byte 3 checked against the chip size */
	uint32_t fill;       /* bytes in sector */
	uint8_t sector[NF_POSIX_SECTOR_SIZE];
};

/* Opens (creating it when missing) the flash directory dir. Returns 0 when
 * it is provisioned (holds a state file), 1 when it is empty and needs
 * nf_posix_flash_provision(), -1 with err on failure (path too long, not a
 * directory, unreadable or corrupt state). f is reset first; close it with
 * nf_posix_flash_close() whatever this returns. */
int nf_posix_flash_open(struct nf_posix_flash *f, const char *dir, char *err, size_t errcap);
/* Provisions an opened, empty flash directory: the firmware image fw into
 * slot a, the filesystem image fs (may be NULL) into fs.bin, then the state
 * file, each written atomically. Returns 0, or -1 with err (an image does not
 * fit the geometry, I/O error). */
int nf_posix_flash_provision(struct nf_posix_flash *f, const struct nf_posix_geometry *g,
                             const uint8_t *fw, size_t fwlen, const uint8_t *fs, size_t fslen,
                             char *err, size_t errcap);
/* The bootloader: removes unfinished writes, chooses the slot to boot (the
 * trial slot once, else the confirmed one, else the other one when the
 * confirmed one is broken), records a trial attempt, and reads the booted
 * firmware and the filesystem. Returns 0 with *b filled, or -1 with err when
 * no slot holds a valid image (bricked: errno is ENOEXEC) or on I/O error. */
int nf_posix_flash_boot(struct nf_posix_flash *f, struct nf_posix_boot *b, char *err,
                        size_t errcap);
/* The running firmware works: make its slot the confirmed one and end any
 * trial. Returns 0, or -1 with err on I/O error. */
int nf_posix_flash_confirm(struct nf_posix_flash *f, char *err, size_t errcap);
/* Abandons a write in progress and closes the directory. Safe to call on a
 * closed or never-opened (zeroed, then nf_posix_flash_open failed) f. */
void nf_posix_flash_close(struct nf_posix_flash *f);
/* "a" or "b". */
const char *nf_posix_slot_name(int slot);

/* ---- port.c: the handle given to nf_client_init() as `port`. ---- */

struct nf_posix {
	/* Settings: defaults from nf_posix_init(); change them before a check. */
	FILE *console;                /* the serial console (stdout) */
	const char *log_prefix;       /* before each nf_port_log line; static string */
	long connect_timeout_ms;      /* TCP connect */
	long timeout_ms;              /* one whole request */
	char sta_mac[18], ap_mac[18]; /* upper-case hex with colons */
	uint32_t chip_id;             /* the ESP8266's: the MAC's last three bytes */
	const char *sdk_version;      /* static string */
	struct nf_posix_flash flash;

	/* Run-time state. */
	void *curl; /* CURL *, made on first use */
	void *md5;  /* EVP_MD_CTX *, made on first use */
	bool in_transfer;
	bool cancel;           /* flash aborted mid-transfer: stop downloading */
	bool reboot_requested; /* nf_port_reboot() was called */
};

/* Resets p to defaults: console stdout, prefix "[nofuss] ", default timeouts
 * and MAC, flash closed. Holds no resources until used. */
void nf_posix_init(struct nf_posix *p);
/* Sets the station MAC ("5C:CF:7F:8B:6B:26", any case) and derives the AP
 * MAC and chip id from it as the ESP8266 does. Returns 0, or -1 when mac is
 * not six hex pairs separated by colons. */
int nf_posix_set_mac(struct nf_posix *p, const char *mac);
/* Frees what p holds (curl handle, MD5 context) and closes its flash. p may
 * be reused after nf_posix_init(). */
void nf_posix_destroy(struct nf_posix *p);
/* Prints "<prefix><line>" on p's console and flushes it (the body of
 * nf_port_log, for the caller's own lines; prefix NULL uses p->log_prefix). */
void nf_posix_log(struct nf_posix *p, const char *prefix, const char *line);
/* The same with a printf format; a line longer than NF_POSIX_LOG_MAX is cut. */
void nf_posix_logf(struct nf_posix *p, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
