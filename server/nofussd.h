/*
 * nofussd.h - the update server's one internal header.
 *
 * nofussd answers NoFUSS checks from the rules in versions.json and serves the
 * images they name (docs/PEERS.md sections 1-5). It is a handful of flat files,
 * each with one job; this header is their table of contents, grouped by file.
 * Every limit on outside input is a named NF_MAX_* constant here.
 *
 * Threading: the whole daemon runs in one thread (loop.c drives
 * libmicrohttpd's epoll mode from its own event loop), so nothing on the
 * request path takes a lock.
 */
#ifndef NOFUSSD_H
#define NOFUSSD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "vercmp.h"

/* Limits on outside input ------------------------------------------------ */
#define NF_MAX_URL        1024  /* longest request path we route, decoded */
#define NF_MAX_FIELD      NF_VERSION_MAX /* device, version, MAC, build */
#define NF_MAX_RULES_FILE (16u * 1024 * 1024) /* versions.json size */
#define NF_MAX_RULES      100000 /* rules in one versions.json */
#define NF_MAX_MACS       4096   /* entries in one rule's "mac" array */
#define NF_MAX_ANSWER     4096   /* one target's compact JSON answer */
#define NF_ANSWER_WARN    400    /* clients parse into 500 bytes: warn past this */
#define NF_MAX_LOG_LINE   2304   /* one check-log line, escaped (checkline.c) */
#define NF_MD5_CACHE_MAX  4096   /* image files whose MD5 we remember */

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
	char data_dir[1024];
	char rules_path[1024];    /* default <data_dir>/versions.json */
	char public_dir[1024];    /* default <data_dir>/public */
	char check_log[1024];     /* "-" = stdout, "" = off */
	unsigned max_connections;
	unsigned per_ip_limit;    /* 0 = no limit */
	unsigned memory_limit;    /* bytes of request memory per connection */
	unsigned idle_timeout;    /* seconds */
	unsigned grace_seconds;   /* for in-flight downloads on shutdown */
	unsigned sndbuf;          /* SO_SNDBUF for client sockets, 0 = kernel's */
	bool watch;               /* reload when versions.json changes */
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
 * and column, or the rule number and field. When public_dir is not NULL,
 * each image a rule names that is missing there is logged as a warning. */
struct nf_rules *nf_rules_load(const char *path, const char *public_dir,
                               char *err, size_t errlen);
/* Same, from a buffer; name is used in messages. */
struct nf_rules *nf_rules_parse(const char *text, size_t len, const char *name,
                                const char *public_dir, char *err, size_t errlen);
void nf_rules_free(struct nf_rules *rules);
/* The number of rules; rule i answers with target i (0 <= i < count). */
size_t nf_rules_count(const struct nf_rules *rules);
const struct nf_target *nf_rules_target(const struct nf_rules *rules, size_t i);
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

/* files.c: images under the public folder, with their MD5 ----------------- */
struct nf_files;
struct nf_file {
	int fd;               /* open, owned by the caller */
	uint64_t size;
	time_t mtime;
	char md5[33];         /* lower-case hex */
	char etag[37];        /* "\"" md5 "\"" */
	char last_modified[40];
};
/* Opens the public folder. Returns NULL with err filled when it is unusable. */
struct nf_files *nf_files_open(const char *public_dir, char *err, size_t errlen);
void nf_files_close(struct nf_files *files);
/* Opens relpath under the public folder, refusing anything that resolves
 * outside it (symlinks included) and anything but a regular file. Returns 0
 * with out filled, or -1 with errno set (ENOENT for all refusals). */
int nf_files_get(struct nf_files *files, const char *relpath, struct nf_file *out);
/* True when the first len bytes of name are a folder directly inside the
 * public folder (a symlink to one counts). */
bool nf_files_is_folder(struct nf_files *files, const char *name, size_t len);

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

/* http.c: the libmicrohttpd glue ------------------------------------------ */
struct nf_server;
/* Starts listening (nothing runs until nf_server_run is called from the
 * loop). Takes ownership of rules. Returns NULL with err filled. */
struct nf_server *nf_server_start(const struct nf_config *cfg, struct nf_rules *rules,
                                  struct nf_checklog *log, char *err, size_t errlen);
/* Replaces the rules; the old ones are freed. In-flight answers keep their
 * own copies. */
void nf_server_set_rules(struct nf_server *srv, struct nf_rules *rules);
const struct nf_rules *nf_server_rules(const struct nf_server *srv);
/* Opens the public folder again, so that a folder swapped in (a rename or a
 * re-pointed symlink) is served. Returns 0, or -1 keeping the old one. */
int nf_server_reopen_files(struct nf_server *srv);
int nf_server_epoll_fd(const struct nf_server *srv);
unsigned nf_server_port(const struct nf_server *srv);
/* Runs whatever libmicrohttpd has ready; returns the longest time in ms the
 * loop may sleep before calling again. */
int nf_server_run(struct nf_server *srv);
/* Stops accepting connections; in-flight requests go on. */
void nf_server_quiesce(struct nf_server *srv);
unsigned nf_server_active_requests(const struct nf_server *srv);
void nf_server_stop(struct nf_server *srv);

/* loop.c: the event loop, signals and rule reloads ------------------------ */
/* Blocks SIGTERM, SIGINT, SIGHUP and SIGUSR1 so that they wait for the
 * loop's signalfd; call before starting anything. */
void nf_loop_block_signals(void);
/* Says "listening" once ready, runs until SIGTERM or SIGINT, then drains in-flight requests for at most
 * cfg->grace_seconds. Returns the process exit status. */
int nf_loop_run(const struct nf_config *cfg, struct nf_server *srv,
                struct nf_checklog *log);

#endif
