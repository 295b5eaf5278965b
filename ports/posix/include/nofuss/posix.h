/*
 * nofuss/posix.h - the POSIX port of the device core: a Linux process
 * plays an ESP8266. It implements the porting contract (nofuss/port.h) with
 * libcurl for HTTP, OpenSSL's libcrypto for MD5 and a directory of files for
 * the flash, and it adds what a real device has around the core: a
 * bootloader with two firmware slots and a trial boot, and an image format
 * that carries the firmware's version.
 *
 * This header is the port's table of contents, grouped by file:
 *   port.c      the port handle, console log, reboot request, and the
 *               nf_port_flash_* calls, which go to the handle's flash backend
 *   http.c      nf_port_http_get (libcurl easy, HTTP/1.0 like the ESP updater)
 *               and the same request as a transfer any libcurl loop can run
 *   md5.c       nf_port_md5_* (OpenSSL EVP)
 *   flash.c     the flash directory: its backend, provisioning, bootloader
 *   memflash.c  the memory flash: a backend without files, for fleets
 *   bootloader.c  what both flash backends share: the bootloader's policy
 *   image.c     the simulated ESP8266 image format
 *   verify.c    nf_port_flash_verify: signed images, with a public key
 *   powercut.c  the fault injector: a "power cut" before the Nth flash operation
 *
 * One struct nf_posix per simulated device; nothing is global, so one
 * process may run many devices (the fleet simulator runs thousands). Not
 * thread-safe: one thread per handle. docs/SIMULATOR.md describes the flash
 * directory, the memory flash and the image format.
 */
#ifndef NOFUSS_POSIX_H
#define NOFUSS_POSIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h> /* off_t */

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
#define NF_POSIX_HTTP_ERROR_MAX             256u /* libcurl's error text (CURL_ERROR_SIZE) */

struct nf_posix;

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

/* Which slot boots: the bootloader's choice (bootloader.c). */
struct nf_posix_slots {
	int active;        /* the confirmed slot, 0 (a) or 1 (b) */
	int trial;         /* the slot to try at the next boot, or -1 */
	unsigned attempts; /* boots of the trial slot so far (0 or 1) */
};

/* The bootloader's state, the file DIR/state. */
struct nf_posix_state {
	struct nf_posix_slots slots;
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
	char *dir; /* the directory's path: malloc'ed by open, freed by close */
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
	uint8_t *sector;     /* NF_POSIX_SECTOR_SIZE bytes: malloc'ed by open, freed by close */
};

/* Opens (creating it when missing) the flash directory dir. Returns 0 when
 * it is provisioned (holds a state file), 1 when it is empty and needs
 * nf_posix_flash_provision(), -1 with err on failure (path too long, not a
 * directory, out of memory, unreadable or corrupt state). f is reset first
 * (its fault injector `cut` is kept); close it with nf_posix_flash_close()
 * whatever this returns. A handle's `flash` is what nf_port_flash_* write
 * to while the handle uses the directory backend (nf_posix_init's default). */
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
/* Abandons a write in progress, closes the directory and frees what open
 * allocated. Safe to call on a closed or never-opened (zeroed, then
 * nf_posix_flash_open failed) f, and twice. */
void nf_posix_flash_close(struct nf_posix_flash *f);
/* "a" or "b". */
const char *nf_posix_slot_name(int slot);

/* ---- bootloader.c: what the flash directory and the memory flash share,
 * so that both boot, revert and fall back by the same rules. ---- */

/* A flash backend as the bootloader sees it. */
struct nf_posix_bootloader {
	void *ctx;
	/* Whether slot holds a bootable firmware: 0 with *fw describing it,
	 * or -1 with the reason in why (cap bytes). */
	int (*verify)(void *ctx, int slot, struct nf_posix_image *fw, char *why, size_t cap);
	/* Keeps next as the choice (durably, for the directory) before the
	 * boot goes on. 0, or -1 with err on I/O error. */
	int (*save)(void *ctx, const struct nf_posix_slots *next, char *err, size_t errcap);
};

/* The bootloader's policy: boots the trial slot once (recording the
 * attempt first, so a crash counts), reverts to the confirmed slot when the
 * trial slot had its boot or does not verify, falls back to the other slot
 * when the confirmed one does not verify. *s is the current choice and
 * follows every change saved. Returns 0 with b->slot, b->how, b->why and
 * b->firmware set, or -1 with err: errno ENOEXEC when no slot holds a
 * bootable firmware (bricked), else a save failed. */
int nf_posix_bootloader_run(const struct nf_posix_bootloader *bl, struct nf_posix_slots *s,
                            struct nf_posix_boot *b, char *err, size_t errcap);
/* The running slot confirmed itself: its choice in *next. Returns whether
 * that differs from *s (there is something to save). */
bool nf_posix_slots_confirm(const struct nf_posix_slots *s, int running,
                            struct nf_posix_slots *next);
/* A new firmware was committed to slot: boot it next, once, on trial. */
void nf_posix_slots_try(const struct nf_posix_slots *s, int slot, struct nf_posix_slots *next);
/* Whether each size of g is within [NF_POSIX_IMAGE_MIN, NF_POSIX_FLASH_SIZE_MAX]. */
bool nf_posix_geometry_ok(const struct nf_posix_geometry *g);
/* The ESP updater's check of a firmware's first 4 bytes: one whose header
 * (magic 0xE9; gzip images are not inspected) asks for more flash than
 * chip_size is refused. Returns 0, or -1 after logging why on p's console. */
int nf_posix_check_chip(struct nf_posix *p, const uint8_t head[4], uint32_t chip_size);

/* ---- flash backends: where a handle's nf_port_flash_* calls go (port.c
 * dispatches on p->flash_ops). Each function has the contract of the
 * nf_port_flash_* call of the same name (nofuss/port.h). ---- */

/* What the ESP updater's request headers say about the flash and the
 * running sketch (docs/PEERS.md section 5), whichever backend keeps them. */
struct nf_posix_flash_info {
	uint32_t slot_size;   /* x-ESP8266-free-space: room for a new sketch */
	uint32_t chip_size;   /* x-ESP8266-chip-size, X-ESP8266-CHIPSIZE */
	uint32_t sketch_size; /* x-ESP8266-sketch-size: the running image, 0 before boot */
	char sketch_md5[33];  /* x-ESP8266-sketch-md5: its MD5 in lower-case hex, "" before boot */
};

struct nf_posix_flash_ops {
	const char *name; /* "directory", "memory" */
	int (*begin)(struct nf_posix *p, enum nf_image image, uint32_t size);
	int (*write)(struct nf_posix *p, const uint8_t *data, size_t len);
	int (*finish)(struct nf_posix *p);
	void (*abort)(struct nf_posix *p);
	void (*info)(const struct nf_posix *p, struct nf_posix_flash_info *out);
	/* The bootloader and the confirmation (nf_posix_boot, nf_posix_confirm). */
	int (*boot)(struct nf_posix *p, struct nf_posix_boot *b, char *err, size_t errcap);
	int (*confirm)(struct nf_posix *p, char *err, size_t errcap);
	/* Abandons a write in progress and releases what the backend holds for
	 * p (nf_posix_destroy calls it). */
	void (*close)(struct nf_posix *p);
};

/* The flash directory (p->flash); nf_posix_init selects it. */
extern const struct nf_posix_flash_ops nf_posix_flash_dir_ops;

/* ---- memflash.c: the memory flash, for the fleet simulator (`nofuss
 * fleet`): thousands of devices in one process, no files. It keeps what
 * the directory keeps, minus the bytes: for each firmware slot and the
 * filesystem the version, flags, size and MD5 read from the image as it
 * streams in (its 128-byte head and two running MD5s are all that is held,
 * and only while it is written), and whether it verified as a whole image
 * exactly as the directory's bootloader verifies a file (headers, recorded
 * size, payload MD5, kind). Finish commits only an image that verified,
 * as the directory's finish does, by switching: a filesystem at once, a
 * firmware as the trial slot of the next boot; the bootloader
 * below then boots, reverts and falls back exactly as the directory's
 * does. Nothing survives the process. ---- */

/* Why a memory slot does not hold a bootable (mountable) image. */
enum nf_posix_mem_status {
	NF_POSIX_MEM_VALID = 0,
	NF_POSIX_MEM_EMPTY,  /* never written */
	NF_POSIX_MEM_HEADER, /* not a simulator image (nf_posix_image_parse refused it) */
	NF_POSIX_MEM_SIZE,   /* its length differs from the size its metadata records */
	NF_POSIX_MEM_MD5,    /* payload MD5 mismatch */
	NF_POSIX_MEM_KIND,   /* a filesystem in a firmware slot, or the reverse */
};

/* One image in memory: what the bootloader and the updater's headers need. */
struct nf_posix_memimage {
	char version[NF_POSIX_IMAGE_FIELD]; /* "" unless the header parsed */
	uint32_t size;                      /* bytes written */
	uint32_t flags;                     /* NF_POSIX_IMAGE_* */
	uint8_t md5[16];                    /* of the whole image, as written */
	uint8_t kind;                       /* enum nf_image, from the header */
	uint8_t status;                     /* enum nf_posix_mem_status */
};

struct nf_posix_memwrite; /* an image being written (memflash.c) */

struct nf_posix_memflash {
	struct nf_posix_geometry geometry;
	struct nf_posix_memimage slot[NF_POSIX_SLOTS];
	struct nf_posix_memimage fs;
	int8_t active;    /* the confirmed slot, 0 (a) or 1 (b) */
	int8_t trial;     /* the slot to try at the next boot, or -1 */
	int8_t running;   /* the booted slot, -1 before boot */
	uint8_t attempts; /* boots of the trial slot so far (0 or 1) */
	struct nf_posix_memwrite *w; /* NULL unless an image is being written */
};

/* Fills m (any content) with the firmware image fw in slot a and the
 * filesystem image fs (may be NULL: none) and the geometry g; nothing is
 * booted. Each image must verify whole and fit g. Returns 0, or -1 with the
 * reason in err. An m with no write in progress (m->w == NULL, as after
 * this) holds no pointer and may be copied by value: provision once, copy
 * to every device. */
int nf_posix_memflash_provision(struct nf_posix_memflash *m, const struct nf_posix_geometry *g,
                                const uint8_t *fw, size_t fwlen, const uint8_t *fs,
                                size_t fslen, char *err, size_t errcap);
/* The bootloader, as nf_posix_flash_boot: abandons a write in progress,
 * boots the trial slot once, else the confirmed one, else the other one
 * (fallback), and describes what it booted in *b (the images' device field
 * is not kept: it is ""). Returns 0, or -1 with err and errno ENOEXEC when
 * no slot holds a valid firmware (bricked). */
int nf_posix_memflash_boot(struct nf_posix_memflash *m, struct nf_posix_boot *b, char *err,
                           size_t errcap);
/* The running firmware works: its slot becomes the confirmed one and any
 * trial ends. Returns 0, or -1 when nothing is booted. */
int nf_posix_memflash_confirm(struct nf_posix_memflash *m);
/* Abandons a write in progress (frees it). m stays usable. */
void nf_posix_memflash_close(struct nf_posix_memflash *m);
/* The text of an enum nf_posix_mem_status ("payload MD5 mismatch", ...). */
const char *nf_posix_mem_strstatus(int status);

/* ---- port.c: the handle given to nf_client_init() as `port`. ---- */

struct nf_posix {
	/* Settings: defaults from nf_posix_init(); change them before a check. */
	FILE *console;                /* the serial console (stdout); NULL: silent */
	const char *log_prefix;       /* before each nf_port_log line; static string */
	long connect_timeout_ms;      /* TCP connect */
	long timeout_ms;              /* one whole request */
	const char *credential;       /* "NAME:SECRET" sent as HTTP Basic (as an ESP updater
	                               * given setAuthorization), or NULL; not copied */
	uint32_t source_ip;           /* IPv4 address (host order) to connect from, for
	                               * many devices on loopback; 0: the system's choice */
	char sta_mac[18], ap_mac[18]; /* upper-case hex with colons */
	uint32_t chip_id;             /* the ESP8266's: the MAC's last three bytes */
	const char *sdk_version;      /* static string */
	struct nf_posix_flash flash;  /* the flash directory, when the backend is it */
	const struct nf_posix_flash_ops *flash_ops; /* the flash backend (the directory) */
	void *flash_ctx;              /* the backend's own state: a memflash, or NULL */

	struct nf_sign_key *sign_key; /* verify.c: only images it signed; NULL: any */
	bool sign_key_shared;         /* sign_key is borrowed (nf_posix_share_pubkey) */

	/* Run-time state. */
	struct nf_sign_verifier *sign_check; /* the image being written, with a key */
	bool sign_accepted;                  /* nf_port_flash_verify accepted it */
	void *curl; /* CURL *, made on first use */
	void *md5;  /* EVP_MD_CTX *, made on first use */
	bool in_transfer;
	bool cancel;           /* flash aborted mid-transfer: stop downloading */
	bool reboot_requested; /* nf_port_reboot() was called */
};

/* Resets p to defaults: console stdout, prefix "[nofuss] ", default timeouts
 * and MAC, the flash directory backend, closed. Holds no resources until
 * used. */
void nf_posix_init(struct nf_posix *p);
/* Makes m (provisioned, owned by the caller, alive as long as p uses it)
 * p's flash: nf_port_flash_* then go to the memory flash. */
void nf_posix_use_memflash(struct nf_posix *p, struct nf_posix_memflash *m);
/* Runs the bootloader of p's flash, whichever backend it is: as
 * nf_posix_flash_boot for the directory, nf_posix_memflash_boot for a
 * memory flash. Returns 0 with *b, or -1 with err (errno ENOEXEC: bricked). */
int nf_posix_boot(struct nf_posix *p, struct nf_posix_boot *b, char *err, size_t errcap);
/* The running firmware confirms its slot on p's flash, whichever backend
 * it is. Returns 0, or -1 with err (nothing booted, I/O error). */
int nf_posix_confirm(struct nf_posix *p, char *err, size_t errcap);
/* Sets the station MAC ("5C:CF:7F:8B:6B:26", any case) and derives the AP
 * MAC and chip id from it as the ESP8266 does. Returns 0, or -1 when mac is
 * not six hex pairs separated by colons. */
int nf_posix_set_mac(struct nf_posix *p, const char *mac);
/* Frees what p holds (curl handle, MD5 context) and closes its flash (the
 * directory; a memory flash abandons its write in progress). p may be
 * reused after nf_posix_init(). */
void nf_posix_destroy(struct nf_posix *p);
/* Frees the curl handle and MD5 context p keeps between requests (they are
 * made again on use); the flash stays as it is. Between two checks of a
 * device that should cost nothing while it sleeps. */
void nf_posix_release(struct nf_posix *p);
/* Prints "<prefix><line>" on p's console and flushes it (the body of
 * nf_port_log, for the caller's own lines; prefix NULL uses p->log_prefix). */
void nf_posix_log(struct nf_posix *p, const char *prefix, const char *line);
/* The same with a printf format; a line longer than NF_POSIX_LOG_MAX is cut. */
void nf_posix_logf(struct nf_posix *p, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The port's functions report their errors with nf_errf (common/errf.c). */

/* ---- verify.c: signed images (docs/SIGNING.md), the port's answer to
 * nf_port_flash_verify. With a public key the device accepts only images
 * signed by it, as a sketch built with ARDUINO_SIGNING does; without one,
 * any image (a trailer is ignored). port.c feeds the check: ---- */

struct nf_sign_key;      /* common.h */
struct nf_sign_verifier; /* common.h */

/* Makes the key in the PEM file path (public, or a private key file) p's:
 * from then on p accepts only images signed by it with at least 2048 bits.
 * p owns the key (nf_posix_destroy frees it). Returns 0, or -1 with the
 * reason in err (no such file, not an RSA key, too small...). */
int nf_posix_load_pubkey(struct nf_posix *p, const char *path, char *err, size_t errcap);
/* port.c's flash calls: begin starts a check of the new image (with a
 * key), write hashes the bytes that reached the flash, end forgets the
 * check (abort, finish), close also frees the key (destroy). */
/* The same with a key already loaded, shared by many ports (a fleet): p
 * borrows key, which must outlive p's last image; NULL accepts any image. */
void nf_posix_share_pubkey(struct nf_posix *p, struct nf_sign_key *key);
void nf_posix_sign_begin(struct nf_posix *p);
void nf_posix_sign_write(struct nf_posix *p, const uint8_t *data, size_t len);
void nf_posix_sign_end(struct nf_posix *p);
void nf_posix_sign_close(struct nf_posix *p);
/* Whether the image being written may be committed: no key, or it was
 * accepted by nf_port_flash_verify, or it is now (a writer that did not
 * ask, such as the ArduinoOTA receiver; a refusal is logged). */
bool nf_posix_sign_committable(struct nf_posix *p);
/* Whether the image file fd of size bytes, whose metadata records
 * `recorded` bytes, is that image followed by a signature trailer
 * (signature, then its length as le32, at most NF_SIGN_MAX_SIG): what the
 * image checks accept after an image, as firmware without a key ignores it. */
bool nf_posix_signed_tail(int fd, uint32_t recorded, off_t size);
/* The same from the last 4 bytes of a size-byte image held elsewhere (the
 * memory flash keeps them as the image streams in). */
bool nf_posix_signed_tail_bytes(const unsigned char last4[4], uint32_t recorded, uint64_t size);

/* ---- http.c: one GET of the core's with libcurl. nf_port_http_get runs it
 * blocking on the handle's easy handle; an event loop (the fleet simulator,
 * curl's multi interface) runs many through these two calls, so both send
 * the same bytes and feed the core the same way. ---- */

/* One request in flight: what libcurl's callbacks need. Caller-owned; it
 * must stay where it is from start to end (curl points at it). */
struct nf_posix_transfer {
	struct nf_posix *p;
	struct nf_client *c;
	char url[NF_CLIENT_URL_MAX]; /* for messages */
	void *headers; /* struct curl_slist *, freed by nf_posix_transfer_end */
	bool image;
	int status;
	long length; /* Content-Length, -1 when absent or unreadable */
	bool has_md5;
	char md5[NF_POSIX_MD5_HEADER_MAX + 1];
	bool has_etag; /* an ETag that fits the core's (a longer one is not kept) */
	char etag[NF_CLIENT_ETAG_MAX];
	bool begun;   /* nf_client_response_begin called */
	size_t body;  /* body bytes handed to the core */
	bool too_big; /* a check's body went over the limit: cut on purpose */
	char errbuf[NF_POSIX_HTTP_ERROR_MAX];
};

/* Appends the ESP8266 updater's description of device p to list (a
 * struct curl_slist **): x-ESP8266-Chip-ID, -STA-MAC, -AP-MAC,
 * -free-space, -sketch-size, -sketch-md5, -chip-size, -sdk-version, in the
 * core's order (docs/PEERS.md section 9.1). Returns 0, or -1 when out of
 * memory. Shared by the NoFUSS downloads and the stock clients. */
int nf_posix_updater_headers(struct nf_posix *p, void *list);

/* Binds curl's (a CURL *) connections to p->source_ip, when set, so that
 * each simulated device connects from an address of its own. Returns 0, or
 * -1 when libcurl refuses the option. */
int nf_posix_curl_source(void *curl, const struct nf_posix *p);

/* Sets up curl (a CURL * easy handle, reset here) to perform req, the
 * core's request for c on the device p, and to feed the response into c
 * as it arrives. Returns 0: perform curl (curl_easy_perform, or add it to
 * a multi handle), then call nf_posix_transfer_end. Returns -1 when the
 * request cannot be made (logged on p's console): the response has then
 * been ended as failed in the core, and nf_posix_transfer_end must not be
 * called. The strings of req are copied. */
int nf_posix_transfer_start(struct nf_posix_transfer *t, void *curl, struct nf_posix *p,
                            const struct nf_request *req, struct nf_client *c);
/* After curl finished with result (its CURLcode): ends the response in the
 * core (nf_client_response_end, which may prepare the core's next request)
 * and frees the request headers. curl may be reused. Returns whether the
 * transfer went well. */
bool nf_posix_transfer_end(struct nf_posix_transfer *t, void *curl, int result);

#ifdef __cplusplus
}
#endif
#endif
