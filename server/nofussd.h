/*
 * nofussd.h - the update server's one internal header.
 *
 * nofussd answers NoFUSS checks from the rules in versions.json and serves the
 * images they name (docs/PEERS.md sections 1-5). It is a handful of flat files,
 * each with one job; this header is their table of contents, grouped by file.
 * Every limit on outside input is a named NF_MAX_* constant here.
 *
 * Threading: requests are answered on one thread (loop.c drives
 * libmicrohttpd's epoll mode from its own event loop), so nothing on the
 * request path takes a lock. Everything a request reads is one immutable
 * snapshot (snapshot.c), built on a builder thread (builder.c) and handed to
 * the loop through a mailbox (mailbox.c); the MD5 of an image the snapshot
 * does not know is computed on a hasher thread (hasher.c) while its download
 * waits, suspended.
 */
#ifndef NOFUSSD_H
#define NOFUSSD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "store.h"
#include "vercmp.h"

/* Limits on outside input ------------------------------------------------ */
#define NF_MAX_URL        1024  /* longest request path we route, decoded */
#define NF_MAX_PATH       1024  /* a file or folder named in the settings */
#define NF_MAX_FIELD      NF_VERSION_MAX /* device, version, MAC, build */
#define NF_MAX_RULES_FILE (16u * 1024 * 1024) /* versions.json size */
#define NF_MAX_RULES      100000 /* rules in one versions.json */
#define NF_MAX_MACS       4096   /* entries in one rule's "mac" array */
#define NF_MAX_ANSWER     4096   /* one target's compact JSON answer */
#define NF_MAX_LOG_LINE   2304   /* one check-log line, escaped (checkline.c) */
#define NF_MAX_MD5_CACHE  4096   /* late MD5s (images the snapshot did not know) remembered */
#define NF_MAX_HASH_JOBS  64     /* distinct images being hashed for waiting downloads */
#define NF_MAX_IMAGE_WARNINGS 10 /* missing-image warnings printed one by one per build */
#define NF_MIN_STORE_QUEUE  1024    /* store-queue: events (848 bytes each) */
#define NF_MAX_STORE_QUEUE  1048576 /* 1 Mi events: about 850 MB */
#define NF_MIN_STORE_SILENT 60      /* store-silent: seconds */
#define NF_MAX_STORE_SILENT (366u * 86400)
#define NF_MAX_DOWNLOADS    1000000 /* max-downloads: image transfers at once (0: no limit) */
#define NF_MIN_RETRY_AFTER  1       /* retry-after: seconds a 503 past max-downloads asks */
#define NF_MAX_RETRY_AFTER  3600
/* Not a limit: answers longer than this are served, with a warning at load
 * time, because NoFUSS clients parse the answer into a 500-byte buffer. */
#define NF_ANSWER_WARN    400

/* Tuning: not limits on input, but numbers worth a name --------------------- */
#define NF_LISTEN_BACKLOG    4096 /* listen(2) backlog: bursts of reconnecting devices */
#define NF_LOOP_EVENTS       8    /* epoll events taken per wait (few fds: MHD, signals, ...) */
#define NF_LOOP_MAX_SLEEP_MS 1000 /* longest epoll wait, whatever MHD says */
#define NF_LOG_FLUSH_MS      1000 /* the check log is written at least this often */
#define NF_GRACE_POLL_MS     100  /* how often the end of the shutdown grace is checked */
#define NF_HASH_CHUNK        (64 * 1024) /* bytes read per step while hashing an image */
#define NF_WORKER_NICE       10   /* builder and hasher threads yield the CPU to the loop */
#define NF_ERR_LEN           (NF_MAX_PATH + 1024) /* one error message: a path and words */
#define NF_MD5_HEX           33   /* 32 lower-case hex digits and a NUL */
/* Pool bytes kept for the answer's head (headlimits.c): the largest nofussd
 * builds, a 206 with every header (~380 bytes), plus one 128-byte step of
 * libmicrohttpd's read buffer, which may hold the start of a pipelined request. */
#define NF_REPLY_ROOM        512
#define NF_SWEEP_MAX         256  /* connections conns.c closes per loop turn, at most */
#define NF_SHED_HEADROOM_DIV 64   /* shed when open connections are within max/64 of the limit */
#define NF_SLOW_REPORT_MS    60000 /* at most one log line a minute about slow heads closed */
#define NF_FULL_REPORT_MS    60000 /* at most one a minute saying max-downloads was reached */

/* FNV-1a, for the small hash tables of rules.c and files.c. */
static inline uint64_t nf_hash(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* log.c: the daemon's own messages, to stderr ---------------------------- */
enum nf_log_level { NF_LOG_SILENT = -1, NF_LOG_ERROR, NF_LOG_WARN, NF_LOG_INFO, NF_LOG_DEBUG };
/* Messages above this level are dropped; tests and fuzzers set it low. */
void nf_log_set_level(enum nf_log_level level);
void nf_log(enum nf_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* config.c: settings from defaults, an INI file and the command line ----- */
struct nf_config {
	char listen[64];          /* address to bind: "" or "*" = all */
	unsigned port;
	char base[256];           /* URL prefix, normalised: "" or "/nofuss" */
	char data_dir[NF_MAX_PATH];
	char rules_path[NF_MAX_PATH]; /* default <data_dir>/versions.json */
	char public_dir[NF_MAX_PATH]; /* default <data_dir>/public */
	char check_log[NF_MAX_PATH];  /* "-" = stdout, "" = off */
	unsigned max_connections;
	unsigned per_ip_limit;    /* 0 = no limit */
	unsigned memory_limit;    /* bytes of request memory per connection */
	unsigned idle_timeout;    /* seconds */
	unsigned header_timeout;  /* seconds to complete a request head (conns.c) */
	unsigned grace_seconds;   /* for in-flight downloads on shutdown */
	unsigned sndbuf;          /* SO_SNDBUF for client sockets, 0 = kernel's */
	bool watch;               /* reload when versions.json changes */
	/* The fleet store (docs/STORE.md): a URL, default
	 * sqlite://<data_dir>/store/fleet.db; "" after nf_config_finish = off. */
	char store[NF_STORE_MAX_URL];
	bool store_set;           /* store was given (else the default follows data_dir) */
	unsigned store_queue;     /* events queued for the writer at most */
	unsigned store_history;   /* history entries kept per device */
	unsigned store_silent;    /* seconds after a download without a check: silent */
	/* The admin listener (docs/ADMIN.md). */
	char admin_listen[64];    /* numeric address, default 127.0.0.1 */
	unsigned admin_port;      /* default 8081; 0 picks a free one */
	char admin_token_file[NF_MAX_PATH]; /* "" = no admin listener */
	bool admin_metrics_auth;  /* /metrics needs a token (default yes) */
	char admin_web_dir[NF_MAX_PATH]; /* the web page's files; "" = the default (docs/WEB.md) */
	unsigned admin_session_lifetime; /* seconds a web session lasts (default 28800) */
	char pubkey[NF_MAX_PATH]; /* "" or rules may only name images this key verifies */
	char tls_cert[NF_MAX_PATH];   /* "" = plain HTTP, else the PEM chain (tls.h) */
	char tls_key[NF_MAX_PATH];    /* its key (PEM); both or neither */
	char tls_priorities[512];     /* "" = NF_TLS_PRIORITIES_DEFAULT; NF_MAX_TLS_PRIORITIES;
	                               * the admin listener's too */
	char admin_tls_cert[NF_MAX_PATH]; /* "" = the admin listener on plain HTTP */
	char admin_tls_key[NF_MAX_PATH];  /* its key (PEM); both or neither */
	char credentials[NF_MAX_PATH]; /* "" = anyone; else images need a credential (creds.c) */
	bool auth_checks;             /* with credentials: checks need one too */
	unsigned max_downloads;       /* image transfers at once, 0 = no limit (downloads.c) */
	unsigned retry_after;         /* seconds, the Retry-After of a 503 past it */
};
void nf_config_defaults(struct nf_config *cfg);
/* Reads an INI file into cfg. Returns 0, or -1 with a message naming the
 * file and line in err. Unknown keys are errors. */
int nf_config_load(struct nf_config *cfg, const char *path, char *err, size_t errlen);
/* Sets one key ("port", "data-dir", ...) from text. Returns 0 or -1 with
 * err filled. Shared by the INI reader and the command line. */
int nf_config_set(struct nf_config *cfg, const char *key, const char *value,
                  char *err, size_t errlen);
/* Fills the paths derived from data_dir that were not set explicitly and
 * normalises base. Call once after all sources were applied. */
int nf_config_finish(struct nf_config *cfg, char *err, size_t errlen);

/* rules.c: versions.json, validated, compiled and indexed ---------------- */
struct nf_rules; /* immutable once loaded */
struct nf_target {
	const char *version;  /* target version, for the check log */
	const char *body;     /* compact JSON answer, NUL-terminated */
	size_t body_len;
};
struct nf_query {
	const char *device;   size_t device_len;
	const char *version;  size_t version_len;  /* NUL-terminated */
	const char *mac;      /* NULL when the request has none (path form) */
	const char *build;    /* NULL when the request has none (path form) */
};
/* Loads and validates a rules file. Returns the rules (free with
 * nf_rules_free) or NULL with a message in err naming the file and the line
 * and column, or the rule number and field. Whether the images the rules
 * name exist is snapshot.c's question, not this one's. Any thread. */
struct nf_rules *nf_rules_load(const char *path, char *err, size_t errlen);
/* Same, from a buffer; name is used in messages. */
struct nf_rules *nf_rules_parse(const char *text, size_t len, const char *name,
                                char *err, size_t errlen);
void nf_rules_free(struct nf_rules *rules);
/* The number of rules; rule i answers with target i (0 <= i < count). */
size_t nf_rules_count(const struct nf_rules *rules);
const struct nf_target *nf_rules_target(const struct nf_rules *rules, size_t i);
/* The image target i names under key ("firmware" or "spiffs"), as written
 * in the file, or NULL when it names none (absent or ""). Points into rules. */
const char *nf_rules_image(const struct nf_rules *rules, size_t i, const char *key);
/* Makes rule i match nothing, as if it were not in the file: the snapshot
 * build calls it for a rule naming an image whose signature fails, before
 * the rules are published (they are read-only from then on). */
void nf_rules_skip(struct nf_rules *rules, size_t i);
/* Whether rule i was skipped so. */
bool nf_rules_skipped(const struct nf_rules *rules, size_t i);
/* The first rule matching q, as an index into the targets, or -1 when none
 * matches (the answer is then "{}"). Does not allocate. */
long nf_rules_match(const struct nf_rules *rules, const struct nf_query *q);

/* The device type rule i's origin names (NULL, with *len 0, for "*"), and
 * the MACs it lists (NULL, with *n 0, for any MAC). Point into rules. */
const char *nf_rules_device(const struct nf_rules *rules, size_t i, size_t *len);
const char *const *nf_rules_macs(const struct nf_rules *rules, size_t i, size_t *n);

/* esp_header.c: what an image's first bytes say (docs/PEERS.md section 5.2) */
#define NF_ESP_HEADER_LEN 24 /* bytes read from the start of each image */
enum nf_image_format { NF_IMAGE_UNKNOWN, NF_IMAGE_ESP, NF_IMAGE_GZIP };
enum nf_chip_family { NF_CHIP_UNKNOWN, NF_CHIP_ESP8266, NF_CHIP_ESP32 };
struct nf_esp_header {
	enum nf_image_format format;
	enum nf_chip_family family;  /* from the ESP32 extended header, or ESP8266's load address */
	uint8_t flash_mode;          /* byte 2 (QIO, QOUT, DIO, DOUT) */
	uint8_t flash_size_code;     /* byte 3's high nibble, as the chip family codes it */
	uint16_t chip_id;            /* ESP32 family: the extended header's chip id */
};
/* Reads the first len bytes of an image. Returns 0 with out filled (format
 * ESP or GZIP; family UNKNOWN when the bytes do not tell), or -1 when the
 * image is neither (out->format UNKNOWN). Never reads past len. */
int nf_esp_header_parse(const unsigned char *buf, size_t len, struct nf_esp_header *out);
/* The flash size in bytes that code means on family, or 0 when unknown. */
uint64_t nf_esp_flash_bytes(enum nf_chip_family family, unsigned code);
/* ESPHome's chipFamily for the image ("ESP8266", "ESP32-C3", ...), or NULL. */
const char *nf_esp_chip_family(const struct nf_esp_header *h);

/* record.c (the rest is in http.h) ---------------------------------------- */
/* The key the store knows an image by: the path below the public folder
 * with one leading '/' ("/firmware/x.bin"; URLs kept as written), through
 * nf_store_image_key. The check's offer, the download and the
 * snapshot's image index (stockindex.c) use the same. */
void nf_record_image_key(const char *path, char out[NF_STORE_MAX_IMAGE]);

/* stockindex.c: each rule's images as the snapshot saw them; MD5 and MAC maps */
enum nf_image_key { NF_KEY_FIRMWARE, NF_KEY_SPIFFS, NF_KEY_MINIMAL, NF_KEY_COUNT };
extern const char *const nf_image_keys[NF_KEY_COUNT]; /* the target keys that name them */
struct nf_image_info {
	const char *path;             /* as the rule names it (into the rules); NULL: none */
	bool present;                 /* a non-empty file under the public folder at build time */
	uint64_t size;
	char md5[NF_MD5_HEX];         /* "" when not hashed (--check, or reading failed) */
	struct nf_esp_header hdr;
	char key[NF_STORE_MAX_IMAGE]; /* the path as the fleet store keys it (record.c) */
};
struct nf_stock_index;
/* An index for rules rules, every slot empty; NULL when out of memory. */
struct nf_stock_index *nf_stock_index_new(size_t rules);
void nf_stock_index_free(struct nf_stock_index *x);
/* Records that rule's image k is path (borrowed: it lives in the rules)
 * and returns the entry for that path: *fresh is true when the path is
 * new, and the builder then fills the entry. The pointer is good until the
 * next call. NULL when out of memory or out of range. */
struct nf_image_info *nf_stock_image_add(struct nf_stock_index *x, size_t rule,
                                         enum nf_image_key k, const char *path, bool *fresh);
/* Builds the MD5 and MAC maps once every slot is filled. Returns 0 or -1
 * (out of memory). */
int nf_stock_index_finish(struct nf_stock_index *x, const struct nf_rules *rules);
/* Rule's image k, or NULL when rule is -1 or names none. Any thread. */
const struct nf_image_info *nf_stock_image(const struct nf_stock_index *x, long rule,
                                           enum nf_image_key k);
/* The first rule whose firmware or minimal image has this MD5 (either
 * case), or -1. */
long nf_stock_rule_by_md5(const struct nf_stock_index *x, const char *md5);
/* The first rule whose origin lists this MAC (exactly), or -1. */
long nf_stock_rule_by_mac(const struct nf_stock_index *x, const char *mac);
/* Whether img can be offered to a device reporting free_space and
 * chip_size bytes (0: not reported, not tested). false with reason filled
 * ("image 612 KiB, 480 KiB free"). Filesystem images always fit: the
 * updaters report the sketch space even in filesystem mode. */
bool nf_stock_fits(const struct nf_image_info *img, enum nf_chip_family family,
                   uint64_t free_space, uint64_t chip_size, bool filesystem, char *reason,
                   size_t cap);

/* stockparse.c: a stock client's request, parsed (docs/PROTOCOL.md section 5) */
#define NF_MAX_NUMBER_LEN 20 /* digits of a header number (UINT64_MAX has 20) */
/* A header value that is a decimal number, at most NF_MAX_NUMBER_LEN digits
 * and nothing else; 0 for anything else (NULL included). */
uint64_t nf_stock_parse_u64(const char *v);
/* Tasmota's version "14.3.0(release-tasmota)", "14.3.0.1(8a3b2c1-safeboot)"
 * or "14.3.0(tasmota)": true with the part before '(' in version and the
 * image name in image (each cut to NF_MAX_FIELD); false for any other. */
bool nf_stock_parse_tasmota(const char *v, char version[NF_MAX_FIELD + 1],
                            char image[NF_MAX_FIELD + 1]);
/* The device type in an /update/NAME segment of len bytes: up to the first
 * '.', less a final "-minimal" (then *minimal is true). Returns its length. */
size_t nf_stock_device_len(const char *name, size_t len, bool *minimal);

/* router.c: what a request path asks for -------------------------------- */
enum nf_route_kind {
	NF_ROUTE_CHECK_HEADERS, /* <base>/ : header-form check */
	NF_ROUTE_FILE_OR_CHECK, /* <base>/A/B : an image if A is a folder of images, else a path-form check */
	NF_ROUTE_FILE,          /* <base>/a/b/c... : an image */
	NF_ROUTE_NOT_FOUND,     /* outside <base> */
	NF_ROUTE_BAD,           /* bad encoding, encoded '/', NUL, dot segment, too long */
};
/* The first path segments reserved for clients that are not NoFUSS. */
#define NF_STOCK_SEGMENT    "update"        /* /update, /update/DEVICE: stock updaters, Tasmota */
#define NF_ESPHOME_SEGMENT  "esphome"       /* /esphome/NAME/manifest.json */
#define NF_ESPHOME_MANIFEST "manifest.json"
#define NF_STOCK_MINIMAL    "minimal"       /* Tasmota's -minimal image and target key */
enum nf_reserved { NF_RESERVED_NONE, NF_RESERVED_UPDATE, NF_RESERVED_ESPHOME };
struct nf_route {
	enum nf_route_kind kind;     /* what the path is when the reserved meaning does not apply */
	enum nf_reserved reserved;   /* the path has a reserved shape (http.c decides) */
	const char *name;  size_t name_len; /* into path: DEVICE or NAME; NULL for a bare /update */
	char path[NF_MAX_URL + 1]; /* decoded path below <base>, no leading '/' */
	const char *device;  size_t device_len;   /* into path, for FILE_OR_CHECK */
	const char *version; size_t version_len;
	char version_buf[NF_MAX_FIELD + 1];       /* version, NUL-terminated */
};
/* Routes the raw (still percent-encoded) request path. base is "" or a
 * normalised prefix such as "/nofuss". Never fails: bad input is a route. */
void nf_route(const char *base, const char *url, struct nf_route *out);
struct nf_files;
/* Warns, once per build, about a public folder named like a reserved
 * segment: the folder wins, and the reserved URLs serve its files. */
void nf_route_warn_shadowed(struct nf_files *files, const char *public_dir);

/* range.c: one HTTP byte range ------------------------------------------ */
enum nf_range_result { NF_RANGE_NONE, NF_RANGE_OK, NF_RANGE_UNSATISFIABLE };
/* Parses a Range header value against a file of size bytes. NONE means
 * "ignore it and send the whole file" (absent, malformed, several ranges). */
enum nf_range_result nf_range_parse(const char *value, uint64_t size,
                                    uint64_t *first, uint64_t *last);

/* confine.c: opens beneath the public folder, never outside it --------- */
#define NF_MAX_OPEN_RETRIES 8   /* opens raced by renames before giving up */
#define NF_MAX_WALK_DEPTH   64  /* folders deep below the public folder */
#define NF_MAX_SYMLINKS     40  /* symlinks followed in one path, as the kernel */
struct nf_confine {
	int rootfd;           /* the public folder, open */
	char root[PATH_MAX];  /* its real path, for absolute symlinks */
	size_t rootlen;
	bool use_openat2;     /* cleared when the kernel lacks it */
};
/* Opens relpath (relative, not decoded further) beneath c's folder with
 * flags (O_CLOEXEC added), refusing anything that is not there at the
 * moment it is opened: ".." above the folder, symlinks that lead out,
 * folders moved out during the walk. Returns the descriptor (the caller
 * closes it) or -1 with errno set (ENOENT for a refusal). */
int nf_confine_open(struct nf_confine *c, const char *relpath, int flags);

/* files.c: images under the public folder, their identity and MD5 ------- */
struct nf_files;
/* What tells whether an MD5 computed earlier still holds: any write, rename
 * over, touch or chmod changes one of these. */
struct nf_file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
};
struct nf_file {
	int fd;               /* open, owned by the caller */
	uint64_t size;
	time_t mtime;
	struct nf_file_id id;
	char last_modified[40];
};
/* Opens the public folder. Returns NULL with err filled when it is unusable. */
struct nf_files *nf_files_open(const char *public_dir, char *err, size_t errlen);
void nf_files_close(struct nf_files *files);
/* Opens relpath under the public folder, refusing anything that resolves
 * outside it (symlinks included) and anything but a regular file. Returns 0
 * with out filled, or -1 with errno set (ENOENT for all refusals). Does not
 * read the file. */
int nf_files_get(struct nf_files *files, const char *relpath, struct nf_file *out);
/* True when the first len bytes of name are a folder directly inside the
 * public folder (a symlink to one counts). */
bool nf_files_is_folder(struct nf_files *files, const char *name, size_t len);
/* The lower-case hex MD5 of everything fd holds (read with pread, so the
 * offset is untouched). When cancel is not NULL and becomes true, gives up
 * between two reads. Returns 0, or -1 with errno set (ECANCELED when
 * cancelled). Any thread. */
int nf_files_md5(int fd, char out[NF_MD5_HEX], const atomic_bool *cancel);
/* The same, also handing every chunk read to feed (when not NULL), so that
 * one read of the file serves a second digest (signed.c). feed returns 0,
 * or -1 to give up (then -1 with errno EIO). */
typedef int (*nf_files_feed)(void *arg, const void *data, size_t len);
int nf_files_md5_feed(int fd, char out[NF_MD5_HEX], const atomic_bool *cancel,
                      nf_files_feed feed, void *arg);
void nf_file_id_of(const struct stat *st, struct nf_file_id *id);
bool nf_file_id_equal(const struct nf_file_id *a, const struct nf_file_id *b);

/* digests.c: MD5s keyed by file identity ----------------------------------- */
struct nf_digests;
/* An empty table; NULL when out of memory. */
struct nf_digests *nf_digests_new(void);
void nf_digests_free(struct nf_digests *d);
/* The MD5 remembered for this very file (same device and inode, and same
 * size, mtime and ctime), or NULL. Does not allocate. */
const char *nf_digests_get(const struct nf_digests *d, const struct nf_file_id *id);
/* Remembers md5 for id, replacing what the same device and inode had.
 * Returns 0, or -1 when out of memory (the table is unchanged). */
int nf_digests_put(struct nf_digests *d, const struct nf_file_id *id, const char *md5);
/* The owner's number for the entry of this very file (0 when put), to be
 * changed through the pointer; NULL when there is no such entry. Valid until
 * the next nf_digests_put or nf_digests_clear. */
size_t nf_digests_count(const struct nf_digests *d);
void nf_digests_clear(struct nf_digests *d);
/* Signature results ride along with the MD5s (the snapshot's table only):
 * NF_DIGEST_UNCHECKED, or the enum nf_sign_err of verifying the file with
 * the snapshot's public key. */
#define NF_DIGEST_UNCHECKED (-1)
/* nf_digests_put with the signature result and, for a refusal, why
 * (copied); md5 may be "" (not computed: nf_digests_get then answers
 * NULL). Returns 0, or -1 when out of memory (the table is unchanged). */
int nf_digests_put_checked(struct nf_digests *d, const struct nf_file_id *id, const char *md5,
                           int signature, const char *why);
/* The signature result remembered for this very file, with *why (when not
 * NULL) pointing at the reason of a refusal (into d) or "", or
 * NF_DIGEST_UNCHECKED when there is no entry for it. Does not allocate. */
int nf_digests_signature(const struct nf_digests *d, const struct nf_file_id *id,
                         const char **why);

/* signed.c: images checked against the configured public key ------------ */
struct nf_sign_key;
/* Reads the image open on fd once, from offset 0 to its end (pread: the
 * offset is untouched), computing its MD5 into md5 and, when key is not
 * NULL, verifying it as a signed image in the ESP8266 core's format
 * (common.h). Returns NF_SIGN_OK (always, when key is NULL) or the enum
 * nf_sign_err of the refusal with a one-line reason in why[whylen]
 * (unsigned, truncated, another key, tampered ...); NF_SIGN_ERR_IO when
 * the file cannot be read (md5 not filled). Any thread; reads the whole
 * file, so never on the loop. The check an uploaded release must pass. */
int nf_signed_check(const struct nf_sign_key *key, int fd, char md5[NF_MD5_HEX], char *why,
                    size_t whylen);

/* creds.c: device credentials (credentials = FILE) ----------------------- */
#define NF_MAX_CREDENTIALS 1000000            /* lines in a credentials file */
#define NF_MAX_CREDS_FILE  (128 * 1024 * 1024) /* its size */
#define NF_MAX_CRED_NAME   64                 /* a credential's name */
#define NF_MAX_AUTH        512                /* an Authorization header's value */
#define NF_AUTH_LOG_PER_SEC 10                /* 401s logged one by one per second */
struct nf_creds; /* immutable once loaded */
enum nf_auth { NF_AUTH_OK, NF_AUTH_MISSING, NF_AUTH_MALFORMED, NF_AUTH_UNKNOWN, NF_AUTH_WRONG };
/* Reads a credentials file ("NAME:SALT:HASH" lines, '#' comments). Returns
 * the table (nf_creds_free) or NULL with err naming the file and line. Any
 * thread; reads a file: never on the loop. */
struct nf_creds *nf_creds_load(const char *path, char *err, size_t errlen);
/* The same from text; name is used in messages. */
struct nf_creds *nf_creds_parse(const char *text, size_t len, const char *name, char *err,
                                size_t errlen);
void nf_creds_free(struct nf_creds *cs);
size_t nf_creds_count(const struct nf_creds *cs);
/* Judges an Authorization header value (NULL: none): "Basic
 * base64(NAME:SECRET)" or "Bearer NAME:SECRET". who gets the name claimed
 * ("" when none could be read). One SHA-256, no allocation, no lock: for
 * the loop. */
enum nf_auth nf_creds_check(const struct nf_creds *cs, const char *authorization, char *who,
                            size_t wholen);
/* A few words for a verdict ("wrong secret"). Static. */
const char *nf_auth_text(enum nf_auth a);
/* The file line for name and secret, with a fresh random salt, into out.
 * 0, or -1 with err filled (a bad name, an empty or too long secret). */
int nf_creds_hash_line(const char *name, const char *secret, char *out, size_t cap, char *err,
                       size_t errlen);

/* checkline.c: the text of one check-log line, docs/PEERS.md section 4 ---- */
/* One value from outside (a device key in the admin listener's log lines)
 * escaped as the check log's values are, into out[cap]: printable ASCII,
 * never a line break. Returns its length. */
size_t nf_log_value(char *out, size_t cap, const char *s);
/* "[YYYY/MM/DD HH:MM:SS]" in server local time, as the original wrote it. */
void nf_checkline_stamp(char *out, size_t cap, time_t now);
/* One line with its '\n' into out, values escaped as %XX (every byte that
 * is not printable ASCII, space and '%' included) and cut at NF_MAX_FIELD
 * bytes; returns its length (truncated to cap-1; 0, writing nothing, when
 * cap < 2). A line of NF_MAX_LOG_LINE bytes always holds every field. */
size_t nf_checkline_path(char *out, size_t cap, const char *stamp, const char *ip,
                         const struct nf_query *q, const char *update);
size_t nf_checkline_header(char *out, size_t cap, const char *stamp, const char *ip,
                           const struct nf_query *q, const char *update);
/* The same with the stamp made from now. */
size_t nf_checklog_format_path(char *buf, size_t cap, time_t now, const char *ip,
                               const struct nf_query *q, const char *update);
size_t nf_checklog_format_header(char *buf, size_t cap, time_t now, const char *ip,
                                 const struct nf_query *q, const char *update);

/* checklog.c: the check log, written by a thread of its own -------------- */
#define NF_CHECKLOG_BUFFER   (64 * 1024) /* bytes handed to the writer at once */
#define NF_CHECKLOG_BUFFERS  16          /* buffers queued before lines drop */
#define NF_CHECKLOG_RETRY_MS 200         /* pause before writing again after an error */
#define NF_CHECKLOG_CLOSE_MS 3000        /* what the log may still take at exit */
struct nf_checklog;
/* path: a file (appended to), "-" for stdout, or "" for no log. Starts the
 * writer thread. Returns NULL with err filled when the file cannot be
 * opened. */
struct nf_checklog *nf_checklog_open(const char *path, char *err, size_t errlen);
/* Hands what is buffered to the writer, waits up to NF_CHECKLOG_CLOSE_MS for
 * it to be written (a stalled sink loses it, said once), stops the writer. */
void nf_checklog_close(struct nf_checklog *log);
/* Buffer one line; update is the offered version or NULL for "none". Never
 * blocks and never makes a system call: when every buffer waits for a
 * stalled sink, the line is dropped and counted. Loop thread only. */
void nf_checklog_path(struct nf_checklog *log, time_t now, const char *ip,
                      const struct nf_query *q, const char *update);
void nf_checklog_header(struct nf_checklog *log, time_t now, const char *ip,
                        const struct nf_query *q, const char *update);
/* Hands the lines buffered so far to the writer when it is idle (the loop
 * calls it every second); never blocks. */
void nf_checklog_flush(struct nf_checklog *log);
/* Hands over everything and waits until it is written, up to timeout_ms.
 * Returns 0, or -1 on timeout. For shutdown and tests, not the loop. */
int nf_checklog_wait(struct nf_checklog *log, unsigned timeout_ms);
/* Lines dropped since the log was opened (the sink was stalled or full). */
unsigned long nf_checklog_dropped(const struct nf_checklog *log);
/* Reopens the file (after logrotate moved it): lines buffered before go to
 * the old file. Returns 0 or -1 (the old file stays in use). */
int nf_checklog_reopen(struct nf_checklog *log);

/* snapshot.c: everything a request reads, immutable once built ----------- */
struct MHD_Response;
/* Built whole by nf_snapshot_build, on any thread, then never changed: the
 * loop answers every request from the one it serves, and swaps in a new one
 * between two requests. Shared by reference counting: whoever holds a
 * pointer holds a reference (nf_snapshot_retain / nf_snapshot_release). */
struct nf_snapshot {
	uint64_t generation;           /* unique, increasing in the order builds began */
	time_t built;                  /* wall-clock time the build finished */
	uint64_t build_ms;             /* how long the build took */
	struct nf_rules *rules;
	struct MHD_Response **answers; /* one persistent answer per target of rules */
	struct MHD_Response *empty;    /* "{}" */
	struct nf_files *files;        /* the public folder, as opened by this build */
	struct nf_digests *digests;    /* MD5 of each image the rules name that was there */
	struct nf_stock_index *stock;  /* per-rule image facts, MD5 and MAC indexes (stockindex.c) */
	struct MHD_Response *not_modified; /* 304, empty: a stock updater's "no update" */
	size_t hashed, reused;         /* of those: computed by this build, taken from prev */
	size_t bad_images;             /* rules naming a missing, empty or hidden image */
	const struct nf_sign_key *pubkey; /* images were verified with it (borrowed), or NULL */
	size_t verified, verify_reused; /* signature checks: done by this build, taken from prev */
	size_t refused;                /* rules skipped: an image fails its signature check */
	struct nf_creds *creds;        /* NULL, or who may download (and check): creds.c */
	struct nf_plan *plan;          /* a rollout plan's snapshot (plan.c): its entries; NULL
	                                * for versions.json's */
	atomic_uint refs;              /* changes after the build, with retired_next */
	struct nf_snapshot *retired_next; /* the builder's list of snapshots to free */
};
/* The image rule i names under key 0 (firmware) or 1 (filesystem), as
 * the build saw it (stockindex.c), or NULL when it names none. */
const struct nf_image_info *nf_snapshot_image(const struct nf_snapshot *s, size_t rule, int key);
struct nf_snapshot_params {
	const char *rules_path;
	const char *public_dir;
	bool hash;                     /* false: check that images exist, skip MD5s (--check) */
	const struct nf_sign_key *pubkey; /* NULL, or rules may only name images it verifies;
	                                   * must outlive every snapshot built with it */
	const char *credentials;       /* NULL or "": no device credentials; else their file */
	const char *rules_text;        /* not NULL: the rules are this text (rules_path names it
	                                * in messages), not the file */
	size_t rules_len;
};
/* Reads and validates the rules, opens the public folder, builds the
 * answers, looks at every image the rules name and records its MD5: taken
 * from prev (may be NULL) when the file is unchanged since prev was built,
 * computed otherwise. Missing or empty images are warnings, the first
 * NF_MAX_IMAGE_WARNINGS one by one and the rest in one line. Returns the
 * snapshot with one reference, or NULL with err filled (the rules file's
 * error, or the public folder's); nothing is half built. Any thread; slow
 * (it parses up to 16 MiB and may read every image): never on the loop. */
struct nf_snapshot *nf_snapshot_build(const struct nf_snapshot_params *p,
                                      const struct nf_snapshot *prev, char *err, size_t errlen);
/* The line logged when s is served after a reload: its rules, images
 * hashed and reused and, with a public key, signatures verified and reused
 * and rules skipped. */
void nf_snapshot_describe(const struct nf_snapshot *s, const char *rules_path, char *out,
                          size_t cap);
/* Takes one more reference; returns s. Any thread. */
struct nf_snapshot *nf_snapshot_retain(struct nf_snapshot *s);
/* Drops a reference (NULL is ignored); the last one frees the snapshot.
 * Answers already queued survive it (libmicrohttpd counts its own
 * references). Any thread. */
void nf_snapshot_release(struct nf_snapshot *s);

/* rollout_select.c: which devices a rollout offers to (docs/ROLLOUTS.md) -- */
#define NF_ROLLOUT_BUCKETS 10000 /* a device's bucket: 0..9999, 100 per percent */
/* The bucket of the device whose identity is key (its MAC as the store
 * keeps it, or "device@ip") in rollout rollout_id: stable across nodes,
 * restarts and versions of nofussd; uniform; independent between rollouts.
 * Pure. */
unsigned nf_rollout_bucket(int64_t rollout_id, const char *key);
/* True when that device is among the first percent% (0..100) of the
 * rollout: bucket < percent x 100, so raising percent only adds devices. */
bool nf_rollout_selected(int64_t rollout_id, const char *key, unsigned percent);
/* What a check tells of a device, for eligibility. */
struct nf_rollout_device {
	const char *device, *version; /* as the check reports them */
	const char *mac;              /* "AA:BB:..", or NULL (path-form) */
	const char *tags;             /* "a,b", or NULL when unknown */
};
enum nf_rollout_fit {
	NF_FIT_YES = 0, NF_FIT_OTHER_TYPE, NF_FIT_CURRENT, NF_FIT_BELOW_MIN, NF_FIT_ABOVE_MAX,
	NF_FIT_NOT_LISTED, NF_FIT_NO_TAG, NF_FIT_COUNT
};
/* Whether d may be offered ro's release (of version release_version), or
 * the first reason it may not, in the order of enum nf_rollout_fit. Pure. */
enum nf_rollout_fit nf_rollout_eligible(const struct nf_rollout *ro, const char *release_version,
                                        const struct nf_rollout_device *d);
/* A few words for fit ("below min_version"), for explain. */
const char *nf_rollout_fit_name(enum nf_rollout_fit fit);

/* plan.c: the rollouts as the check path sees them (docs/ROLLOUTS.md) ----- */
/* One release the plan offers: a rollout's, or (rollout_id 0) one that
 * devices are pinned to. Entry i is the plan snapshot's rule i. */
struct nf_plan_entry {
	int64_t rollout_id;            /* 0: a pinned release */
	int64_t release_id;
	struct nf_rollout rollout;     /* filters, phases, current phase (rollout_id > 0) */
	struct nf_release release;     /* device type, version, images */
	bool offering;                 /* running or completed, inside its window */
};
/* What the watcher hands nf_plan_build: entries newest rollout first,
 * then the pinned releases; the devices with pins, exclusions or tags. */
struct nf_plan_input {
	const struct nf_plan_entry *entries;
	size_t n;
	const struct nf_control *controls;
	size_t ncontrols;
};
/* The offer rate's count for one entry: the loop's alone. */
struct nf_plan_rate {
	int64_t minute;
	unsigned used;
};
/* A check, as the plan needs it. */
struct nf_plan_ask {
	const char *key;               /* nf_plan_key */
	const char *device; size_t device_len;
	const char *version;           /* NUL-terminated; "" unknown */
};
/* What the plan chose. */
struct nf_plan_pick {
	long rule;                     /* the plan snapshot's rule, -1 none */
	int32_t code;                  /* the rule code the offer records (store.h) */
	int64_t rollout;               /* 0: a pin */
	bool current;                  /* pinned, and already on the release */
	bool deferred;                 /* selected, but past the rollout's offer rate */
};
/* Builds the plan's snapshot (a reference, with ->plan set) from in, with
 * base's public folder and key, reusing prev's MD5s. NULL with err filled.
 * Reads the images: never on the loop. */
struct nf_snapshot *nf_plan_build(const struct nf_plan_input *in,
                                  const struct nf_snapshot_params *base,
                                  const struct nf_snapshot *prev, char *err, size_t errlen);
void nf_plan_free(struct nf_plan *p);
size_t nf_plan_count(const struct nf_snapshot *plan);
const struct nf_plan_entry *nf_plan_entry(const struct nf_snapshot *plan, size_t i);
/* A device's key as the store keys it: the normalised MAC, else
 * "device@ip". */
void nf_plan_key(const char *mac, const char *device, size_t device_len, const char *ip,
                 char key[NF_STORE_MAX_KEY]);
/* The plan rule the device's pin offers, or -1 (no pin, or pick->current:
 * it already runs the pinned release). plan may be NULL. Loop thread. */
long nf_plan_pin(const struct nf_snapshot *plan, const struct nf_plan_ask *ask,
                 struct nf_plan_pick *pick);
/* True when the device is pinned (to anything): nothing else is offered. */
bool nf_plan_pinned(const struct nf_snapshot *plan, const struct nf_plan_ask *ask);
/* The plan rule a rollout offers the device, or -1 (pick->deferred: the
 * rollout's offer rate is spent this minute). Loop thread: the offer rate
 * counts here. */
long nf_plan_rollout(const struct nf_snapshot *plan, const struct nf_plan_ask *ask,
                     int64_t now_ms, struct nf_plan_pick *pick);

/* The versions.json rules that answer first for devices rollout r would
 * offer to (of its device type, or "*"): their numbers, up to max, into
 * out; returns how many there are. rules may be NULL. Any thread. */
size_t nf_plan_shadowing(const struct nf_snapshot *rules, const struct nf_rollout *r, long *out,
                         size_t max);
/* Why a device gets what it gets, step by step, for explain: each step
 * said through fn (chosen: the step that answers). rules and plan may be
 * NULL; mac NULL for a device without one. Any thread. */
struct nf_plan_step {
	int64_t rollout, release;      /* the step's rollout or pinned release; 0 none */
	const char *what;              /* "pin", "versions.json", "excluded", "tags", "rollout" */
	bool chosen;
	char detail[160];
};
typedef void (*nf_plan_step_fn)(void *user, const struct nf_plan_step *s);
void nf_plan_explain(const struct nf_snapshot *rules, const struct nf_snapshot *plan,
                     const struct nf_plan_ask *ask, const char *mac, nf_plan_step_fn fn,
                     void *user);

/* rollwatch.c: the thread that judges rollouts and publishes the plan ------ */
#define NF_ROLLWATCH_MS 250 /* how often the gates are judged and the plan checked */
struct nf_rollwatch;
struct nf_mailbox;
/* Starts the watcher on store (which must outlive it), posting plans to mb
 * (built with base's public folder and key). NULL with err filled. */
struct nf_rollwatch *nf_rollwatch_start(struct nf_store *store, struct nf_mailbox *mb,
                                        const struct nf_snapshot_params *base, char *err,
                                        size_t errlen);
/* Stops the thread (a tick under way ends first) and frees w; NULL is a no-op. */
void nf_rollwatch_stop(struct nf_rollwatch *w);

/* mailbox.c: where finished snapshots wait for the loop ------------------- */
/* The seam between the threads that make snapshots (the builder, the
 * rollout watcher: one mailbox each) and the loop that serves them.
 * Any thread posts; the loop alone takes, when the mailbox's eventfd is
 * readable. One slot: a newer snapshot replaces one not yet taken (the
 * older is released: it was never served), and a newer failure replaces an
 * older failure. */
struct nf_mailbox;
struct nf_mail {
	struct nf_snapshot *snap;      /* NULL, or a snapshot to serve (the taker's reference) */
	char note[NF_ERR_LEN];         /* with snap: what to log when it is served */
	char failure[NF_ERR_LEN];      /* "" or why a later or earlier build failed */
	bool failure_last;             /* the failure was posted after snap */
};
/* A mailbox whose latest snapshot is current (retained; may be NULL: none
 * yet). Returns NULL with err filled. */
struct nf_mailbox *nf_mailbox_new(struct nf_snapshot *current, char *err, size_t errlen);
/* Releases what is still in it. No thread may post any more. */
void nf_mailbox_free(struct nf_mailbox *mb);
/* Readable when there is mail. */
int nf_mailbox_fd(const struct nf_mailbox *mb);
/* Posts a finished snapshot (snap, whose reference the mailbox takes, with
 * note: the line to log when it is served) or a failure (snap NULL, note:
 * why). Never blocks on the loop. Any thread. */
void nf_mailbox_post(struct nf_mailbox *mb, struct nf_snapshot *snap, const char *note);
/* The newest snapshot posted (or the first one): what the next build takes
 * unchanged images' MD5s from. Retained: the caller releases it. Any
 * thread. */
struct nf_snapshot *nf_mailbox_latest(struct nf_mailbox *mb);
/* Takes the mail, if any: returns true with out filled. Loop thread. */
bool nf_mailbox_take(struct nf_mailbox *mb, struct nf_mail *out);

/* builder.c: the thread that rebuilds the snapshot ------------------------ */
struct nf_builder;
/* Starts the thread; it builds with p (copied) whenever asked and posts the
 * result, success or failure, to mb. Returns NULL with err filled. */
struct nf_builder *nf_builder_start(const struct nf_snapshot_params *p, struct nf_mailbox *mb,
                                    char *err, size_t errlen);
/* Asks for a build. Requests coalesce: at most one waits, and one made
 * during a build runs one more build after it. Never blocks. Loop thread. */
void nf_builder_request(struct nf_builder *b);
/* Releases s (NULL is ignored) on the builder thread: freeing a 100,000-rule
 * snapshot takes long enough to stall every request if the loop did it.
 * Takes the caller's reference. Never blocks on a build. */
void nf_builder_retire(struct nf_builder *b, struct nf_snapshot *s);
/* Lowers the calling thread's priority (NF_WORKER_NICE), so that on a busy
 * or single CPU the loop's requests come before background work. */
void nf_worker_nice(void);
/* Waits for a build under way to finish (its result is posted), then stops
 * the thread and frees b. */
void nf_builder_stop(struct nf_builder *b);

/* hasher.c: the thread that computes MD5s for waiting downloads ----------- */
struct nf_hasher;
/* One image to hash. The submitter owns it and its fd throughout; the
 * hasher only reads fd and fills md5 and error. Embed it first in a larger
 * struct to carry more. */
struct nf_hash_job {
	struct nf_hash_job *next;      /* the hasher's queues; the submitter's once done */
	int fd;
	char md5[NF_MD5_HEX];
	int error;                     /* 0, or errno of the failure (ECANCELED: stopped) */
};
/* Starts the thread. Returns NULL with err filled. */
struct nf_hasher *nf_hasher_start(char *err, size_t errlen);
/* Readable when finished jobs wait to be collected. */
int nf_hasher_fd(const struct nf_hasher *h);
/* Queues job. Returns 0, or -1 when NF_MAX_HASH_JOBS jobs are queued,
 * running or finished and not yet collected. Never blocks. */
int nf_hasher_submit(struct nf_hasher *h, struct nf_hash_job *job);
/* The finished jobs, in a list through next (NULL when none). */
struct nf_hash_job *nf_hasher_collect(struct nf_hasher *h);
/* Cancels the job running, stops the thread and frees h. Returns every job
 * not collected yet, finished or not (those not finished: ECANCELED). */
struct nf_hash_job *nf_hasher_stop(struct nf_hasher *h);

/* http.c: the libmicrohttpd glue (with check.c and image.c) ---------------- */
struct nf_server;
/* Starts listening (nothing runs until nf_server_run is called from the
 * loop), serving snap, whose reference it takes. Returns NULL with err
 * filled (snap released). */
struct nf_server *nf_server_start(const struct nf_config *cfg, struct nf_snapshot *snap,
                                  struct nf_checklog *log, char *err, size_t errlen);
/* Counts a reload for /metrics: a snapshot served (ok) or a build that
 * failed. Loop thread. */
void nf_server_count_reload(struct nf_server *srv, bool ok);
/* Records every check and download in store (NULL: none) from now on; the
 * store must outlive the server (close it after nf_server_stop). */
void nf_server_set_store(struct nf_server *srv, struct nf_store *store);
/* Serves snap (taking its reference) from the next request on. Returns
 * the snapshot served until now, with its reference: the caller releases
 * it (best off the loop, nf_builder_retire). Loop thread, between requests. */
struct nf_snapshot *nf_server_publish(struct nf_server *srv, struct nf_snapshot *snap);
/* Offers from plan (a rollout plan's snapshot, plan.c; its reference is
 * taken) from the next request on. Returns the plan served until now (NULL
 * at first), whose reference the caller releases. Loop thread. */
struct nf_snapshot *nf_server_publish_plan(struct nf_server *srv, struct nf_snapshot *plan);
/* The store set with nf_server_set_store, or NULL. */
struct nf_store *nf_server_store(const struct nf_server *srv);
/* The snapshot being served; borrowed (retain it to keep it). */
struct nf_snapshot *nf_server_snapshot(const struct nf_server *srv);
int nf_server_epoll_fd(const struct nf_server *srv);
/* Readable when MD5s that downloads wait for are ready: then call
 * nf_server_resume. */
int nf_server_hasher_fd(const struct nf_server *srv);
/* Resumes the downloads whose MD5 is ready. Loop thread. */
void nf_server_resume(struct nf_server *srv);
unsigned nf_server_port(const struct nf_server *srv);
/* The loop's counters (counters.h), for the admin listener's /metrics:
 * atomics, readable from any thread while srv lives. */
struct nf_counters;
const struct nf_counters *nf_server_counters(const struct nf_server *srv);
/* Runs whatever libmicrohttpd has ready; returns the longest time in ms the
 * loop may sleep before calling again. */
int nf_server_run(struct nf_server *srv);
/* Stops accepting connections; in-flight requests go on. */
void nf_server_quiesce(struct nf_server *srv);
unsigned nf_server_active_requests(const struct nf_server *srv);
/* With TLS (tls-cert, admin-tls-cert), reads the certificates and keys
 * again off the loop (tls.h): new handshakes get them once they check out.
 * Never blocks. Loop thread (SIGHUP). */
void nf_server_reload_tls(struct nf_server *srv);
/* The admin listener's TLS (admin-tls-cert; NULL: none), reloaded with the
 * device listener's by nf_server_reload_tls. Borrowed: the caller closes
 * it, after setting NULL here or once the loop has stopped. */
struct nf_tls;
void nf_server_set_admin_tls(struct nf_server *srv, struct nf_tls *tls);
void nf_server_stop(struct nf_server *srv);

/* conns.c: the request-head deadline, and shedding at the connection limit - */
/* Which connections still wait for a request head, oldest first: those past
 * their deadline, and near the limit the oldest of them, are handed to the
 * close function given (http.c shuts their socket down; libmicrohttpd then
 * closes them and nf_conns_closed follows). Never a connection whose head
 * is complete: a download is never cut. One thread at a time (guard.c: a lock). */
struct nf_conns;
struct nf_conn;
struct nf_conns_stats {
	unsigned long expired;         /* closed at the head deadline */
	unsigned long shed;            /* closed near the limit to make room */
	unsigned open;
};
/* Tracks up to max connections (slots allocated once, touched on use).
 * NULL when out of memory or max is 0. */
struct nf_conns *nf_conns_new(unsigned max, unsigned header_s, unsigned idle_s,
                              void (*close)(void *owner));
void nf_conns_free(struct nf_conns *c);
/* A connection opened: its head is due header_s from now. Returns its
 * entry, or NULL when max are open already (it is then not tracked). */
struct nf_conn *nf_conns_opened(struct nf_conns *c, void *owner, uint64_t now_ms);
/* The connection is gone (NULL is ignored): its entry is free again. */
void nf_conns_closed(struct nf_conns *c, struct nf_conn *n);
/* Its request head is complete: no deadline until it is answered. */
void nf_conns_head_done(struct nf_conns *c, struct nf_conn *n);
/* Answered and kept alive: its next head is due idle_s + header_s from now
 * (an idle connection meets the idle timeout first). */
void nf_conns_answered(struct nf_conns *c, struct nf_conn *n, uint64_t now_ms);
/* Closes the connections past their deadline and, near the limit, the
 * oldest still waiting for a head; at most NF_SWEEP_MAX per call. Returns
 * the milliseconds until the next deadline (0: call again at once). */
int nf_conns_sweep(struct nf_conns *c, uint64_t now_ms);
struct nf_conns_stats nf_conns_stats(const struct nf_conns *c);

/* loop.c: the event loop, signals and rule reloads ------------------------ */
/* The mailboxes the loop takes from: new versions.json snapshots (made
 * with the first snapshot served) and rollout plans (NULL without a
 * store). The caller makes them, and frees them after the loop returns. */
struct nf_loop_mail {
	struct nf_mailbox *rules, *plans;
};
/* Blocks SIGTERM, SIGINT, SIGHUP and SIGUSR1 so that they wait for the
 * loop's signalfd; call before starting anything. */
void nf_loop_block_signals(void);
/* Says "listening" once ready, runs until SIGTERM or SIGINT, then drains
 * in-flight requests for at most cfg->grace_seconds. Rebuilds the snapshot
 * on SIGHUP and when the rules file changes, on the builder thread, and
 * serves what the mailbox brings. Returns 0, or 1 when the loop could not
 * be set up. */
int nf_loop_run(const struct nf_config *cfg, struct nf_server *srv,
                struct nf_checklog *log, const struct nf_loop_mail *mail);

#endif
