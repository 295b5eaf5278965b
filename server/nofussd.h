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
	unsigned grace_seconds;   /* for in-flight downloads on shutdown */
	unsigned sndbuf;          /* SO_SNDBUF for client sockets, 0 = kernel's */
	bool watch;               /* reload when versions.json changes */
	char pubkey[NF_MAX_PATH]; /* "" or rules may only name images this key verifies */
	char tls_cert[NF_MAX_PATH];   /* "" = plain HTTP, else the PEM chain (tls.h) */
	char tls_key[NF_MAX_PATH];    /* its key (PEM); both or neither */
	char tls_priorities[512];     /* "" = NF_TLS_PRIORITIES_DEFAULT; NF_MAX_TLS_PRIORITIES */
	char credentials[NF_MAX_PATH]; /* "" = anyone; else images need a credential (creds.c) */
	bool auth_checks;             /* with credentials: checks need one too */
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
/* The first rule matching q, as an index into the targets, or -1 when none
 * matches (the answer is then "{}"). Does not allocate. */
long nf_rules_match(const struct nf_rules *rules, const struct nf_query *q);

/* router.c: what a request path asks for -------------------------------- */
enum nf_route_kind {
	NF_ROUTE_CHECK_HEADERS, /* <base>/ : header-form check */
	NF_ROUTE_FILE_OR_CHECK, /* <base>/A/B : an image if A is a folder of images, else a path-form check */
	NF_ROUTE_FILE,          /* <base>/a/b/c... : an image */
	NF_ROUTE_NOT_FOUND,     /* outside <base> */
	NF_ROUTE_BAD,           /* bad encoding, encoded '/', NUL, dot segment, too long */
};
struct nf_route {
	enum nf_route_kind kind;
	char path[NF_MAX_URL + 1]; /* decoded path below <base>, no leading '/' */
	const char *device;  size_t device_len;   /* into path, for FILE_OR_CHECK */
	const char *version; size_t version_len;
	char version_buf[NF_MAX_FIELD + 1];       /* version, NUL-terminated */
};
/* Routes the raw (still percent-encoded) request path. base is "" or a
 * normalised prefix such as "/nofuss". Never fails: bad input is a route. */
void nf_route(const char *base, const char *url, struct nf_route *out);

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
	size_t hashed, reused;         /* of those: computed by this build, taken from prev */
	size_t bad_images;             /* rules naming a missing, empty or hidden image */
	const struct nf_sign_key *pubkey; /* images were verified with it (borrowed), or NULL */
	size_t verified, verify_reused; /* signature checks: done by this build, taken from prev */
	size_t refused;                /* rules skipped: an image fails its signature check */
	struct nf_creds *creds;        /* NULL, or who may download (and check): creds.c */
	atomic_uint refs;              /* changes after the build, with retired_next */
	struct nf_snapshot *retired_next; /* the builder's list of snapshots to free */
};
struct nf_snapshot_params {
	const char *rules_path;
	const char *public_dir;
	bool hash;                     /* false: check that images exist, skip MD5s (--check) */
	const struct nf_sign_key *pubkey; /* NULL, or rules may only name images it verifies;
	                                   * must outlive every snapshot built with it */
	const char *credentials;       /* NULL or "": no device credentials; else their file */
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

/* mailbox.c: where finished snapshots wait for the loop ------------------- */
/* The seam between the threads that make snapshots (today the builder,
 * later a store publishing staged rollouts) and the loop that serves them.
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
/* A mailbox whose latest snapshot is current (retained). Returns NULL with
 * err filled. */
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
/* Serves snap (taking its reference) from the next request on. Returns
 * the snapshot served until now, with its reference: the caller releases
 * it (best off the loop, nf_builder_retire). Loop thread, between requests. */
struct nf_snapshot *nf_server_publish(struct nf_server *srv, struct nf_snapshot *snap);
/* The snapshot being served; borrowed (retain it to keep it). */
struct nf_snapshot *nf_server_snapshot(const struct nf_server *srv);
int nf_server_epoll_fd(const struct nf_server *srv);
/* Readable when MD5s that downloads wait for are ready: then call
 * nf_server_resume. */
int nf_server_hasher_fd(const struct nf_server *srv);
/* Resumes the downloads whose MD5 is ready. Loop thread. */
void nf_server_resume(struct nf_server *srv);
unsigned nf_server_port(const struct nf_server *srv);
/* Runs whatever libmicrohttpd has ready; returns the longest time in ms the
 * loop may sleep before calling again. */
int nf_server_run(struct nf_server *srv);
/* Stops accepting connections; in-flight requests go on. */
void nf_server_quiesce(struct nf_server *srv);
unsigned nf_server_active_requests(const struct nf_server *srv);
/* With TLS (tls-cert), reads the certificate and key again off the loop
 * (tls.h): new handshakes get them once they check out. Never blocks. */
void nf_server_reload_tls(struct nf_server *srv);
void nf_server_stop(struct nf_server *srv);

/* loop.c: the event loop, signals and rule reloads ------------------------ */
/* Blocks SIGTERM, SIGINT, SIGHUP and SIGUSR1 so that they wait for the
 * loop's signalfd; call before starting anything. */
void nf_loop_block_signals(void);
/* Says "listening" once ready, runs until SIGTERM or SIGINT, then drains
 * in-flight requests for at most cfg->grace_seconds. Rebuilds the snapshot
 * on SIGHUP and when the rules file changes, on the builder thread, and
 * serves what the mailbox brings. Returns 0, or 1 when the loop could not
 * be set up. */
int nf_loop_run(const struct nf_config *cfg, struct nf_server *srv,
                struct nf_checklog *log);

#endif
