/*
 * store.h - the fleet store: nofussd's memory of every device that checks in
 * (issue 9, items 2 and 7), and the one header of the nofuss_store library,
 * grouped by file as its table of contents.
 *
 * The event loop describes what happened in a fixed-size struct nf_event (a
 * check and its answer, or a download's progress) and posts it with
 * nf_store_post(), which copies it into a bounded queue and never waits: when
 * the queue is full the event is dropped and counted. A writer thread takes
 * the queued events in batches and writes each batch in one transaction,
 * applying the proof-of-update state machine (update.c) to each device in the
 * same transaction, so that several nofussd nodes sharing one PostgreSQL
 * database keep one inventory. The admin API reads with nf_store_devices(),
 * nf_store_device() and nf_store_summary(), which copy their results out; the
 * caller frees them.
 *
 * Backends, chosen by the URL given to nf_store_open():
 *   sqlite:///abs/path/fleet.db   SQLite (WAL), the default; created and
 *                                 migrated on open (docs/STORE.md section 2)
 *   sqlite://relative/fleet.db    relative to the working directory
 *   postgresql://... postgres://  PostgreSQL, a libpq connection URI
 *
 * Threads: nf_store_post() and nf_store_stats() may be called from any one
 * thread at a time each (the event loop); the queries and nf_store_tag() from
 * any thread (they share one reading connection under a mutex, never the
 * writer's); nf_store_open(), nf_store_sync() and nf_store_close() from a
 * thread that may wait (never the event loop while it serves).
 */
#ifndef NOFUSS_STORE_H
#define NOFUSS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits (bytes, with the terminating NUL) ------------------------------- */
#define NF_STORE_MAX_TEXT   64  /* device type, version, build, target, SDK: cut at 63 */
#define NF_STORE_MAX_IMAGE  96  /* an image's path below public/ (nf_store_image_key) */
#define NF_STORE_MAX_REASON 96  /* why an offer was held back */
#define NF_STORE_MAX_TAG    32  /* one tag: [A-Za-z0-9_.-]{1,31} */
#define NF_STORE_MAX_KEY    (NF_STORE_MAX_TEXT + NF_STORE_IP_LEN) /* "device@ip" */
#define NF_STORE_MAX_URL    1024 /* a store URL */
#define NF_STORE_MAX_PAGE   1000 /* devices in one page of nf_store_devices */
#define NF_STORE_MAX_SUMMARY 10000 /* device type x version rows in a summary */
#define NF_STORE_MAX_HISTORY 1000 /* history_max at most */
#define NF_STORE_MAC_LEN    18  /* "AA:BB:CC:DD:EE:FF" */
#define NF_STORE_IP_LEN     46  /* INET6_ADDRSTRLEN */
#define NF_STORE_MD5_LEN    33  /* 32 lower-case hex digits */
#define NF_STORE_IMAGES     2   /* images[0] firmware, images[1] filesystem */

/* Defaults for struct nf_store_options' zero fields. */
#define NF_STORE_DEFAULT_QUEUE    16384  /* events (bench/store.sh: ~13 MiB) */
#define NF_STORE_DEFAULT_BATCH    1024   /* events per transaction at most */
#define NF_STORE_DEFAULT_BATCH_MS 200    /* a batch is started at least this often */
#define NF_STORE_DEFAULT_HISTORY  32     /* history entries kept per device */
#define NF_STORE_DEFAULT_AUDIT_REFUSED 10000 /* refused admin writes kept in the audit log */
#define NF_STORE_DEFAULT_SILENT_MS (24LL * 3600 * 1000) /* downloaded, then no check */
#define NF_STORE_DEFAULT_SKEW_MS  2000   /* clock difference tolerated between nodes */
#define NF_STORE_DEFAULT_RETRY_MS 5000   /* longest pause between retries */
#define NF_STORE_DEFAULT_CLOSE_MS 10000  /* close keeps retrying a failing database */

#define NF_STORE_SCHEMA_VERSION 6 /* the newest schema this code knows (schema.c) */

/* Events: what the loop posts -------------------------------------------- */
enum nf_event_kind {
	NF_EVENT_CHECK = 1,          /* a check, and the answer it got */
	NF_EVENT_DOWNLOAD_PROGRESS,  /* an image download started or went on */
	NF_EVENT_DOWNLOAD_DONE,      /* the image's last byte was sent */
	NF_EVENT_DOWNLOAD_FAILED,    /* a download cut or refused before its end */
};

enum nf_client_kind {
	NF_CLIENT_UNKNOWN = 0,
	NF_CLIENT_NOFUSS_PATH,      /* GET /<device>/<version>: no MAC */
	NF_CLIENT_NOFUSS_HEADER,    /* X-ESP8266-MAC/-DEVICE/-VERSION */
	NF_CLIENT_ESP8266_UPDATER,  /* ESPhttpUpdate: x-ESP8266-STA-MAC */
	NF_CLIENT_ESP32_UPDATER,    /* httpUpdate: x-ESP32-BASE-MAC or -STA-MAC */
	NF_CLIENT_ESPHOME,          /* http_request manifest: name in the URL */
	NF_CLIENT_TASMOTA,          /* ESP8266 updater with a Tasmota version */
	NF_CLIENT_COUNT
};

enum nf_answer_kind {
	NF_ANSWER_NONE = 0,  /* no update: current, or no rule */
	NF_ANSWER_OFFERED,   /* target and images offered by a rule */
	NF_ANSWER_HELD,      /* a rule matched but the image cannot be offered: reason */
	NF_ANSWER_DEFERRED,  /* an offer put off: max-downloads transfers in flight */
};

/* One image: its path (or key, nf_store_image_key), MD5 and size when known. */
struct nf_store_image {
	char path[NF_STORE_MAX_IMAGE]; /* "" for none */
	char md5[NF_STORE_MD5_LEN];    /* lower-case hex, "" when unknown */
	uint64_t size;                 /* bytes, 0 when unknown */
};

/* What a stock updater's headers tell (0 or "" when not sent). */
struct nf_event_hw {
	uint64_t chip_id;
	uint32_t chip_size, free_space, sketch_size;
	char sketch_md5[NF_STORE_MD5_LEN];
	char sdk[NF_STORE_MAX_TEXT];
};

/*
 * One thing that happened, copied whole into a queue slot: no pointers.
 * sizeof is 848 bytes on x86_64 (test_store checks it stays under 1 KiB).
 * Strings are NUL-terminated and cut to their array (nf_store_copy).
 *
 * Identity: mac when it is a MAC ("aa:bb:cc:dd:ee:ff" in either case, also
 * with '-' or no separators; all zeros counts as none); otherwise the device
 * is keyed by device type and IP, as "device@ip" (path-form checks carry no
 * MAC). A download never makes a device: with a MAC it belongs to that
 * MAC's device when its open offer names the image; otherwise (or without
 * a MAC) to the device at that IP, keyed without a MAC, whose open offer
 * names the image; otherwise to the MAC's device if it exists (kept for an
 * offer yet to come); otherwise it is unmatched (docs/STORE.md section 4).
 *
 * CHECK: device, version, build, hw as the request told them; answer with
 * target, rule and images (images[0] firmware, images[1] filesystem) when
 * OFFERED; target, rule and reason when HELD.
 * DOWNLOAD_*: mac or ip, images[0] (path, size = the image's total bytes,
 * md5 if known) and bytes = the offset reached in the image (the range's
 * start plus the bytes sent).
 */
struct nf_event {
	int64_t time_ms;  /* wall clock, ms since 1970 */
	uint8_t kind;     /* enum nf_event_kind */
	uint8_t client;   /* enum nf_client_kind */
	uint8_t answer;   /* enum nf_answer_kind (CHECK) */
	uint8_t reserved;
	int32_t rule;     /* the rule that answered, 0-based; -1 none */
	uint64_t bytes;   /* DOWNLOAD_*: offset reached in images[0] */
	char mac[NF_STORE_MAC_LEN];
	char ip[NF_STORE_IP_LEN];
	char device[NF_STORE_MAX_TEXT];
	char version[NF_STORE_MAX_TEXT];
	char build[NF_STORE_MAX_TEXT];
	char target[NF_STORE_MAX_TEXT];
	char reason[NF_STORE_MAX_REASON];
	struct nf_event_hw hw;
	struct nf_store_image images[NF_STORE_IMAGES];
};

/* Update states: the life of an offer (update.c, docs/STORE.md section 5). */
enum nf_update_state {
	NF_UPDATE_NONE = 0,    /* never offered, or the offer was withdrawn */
	NF_UPDATE_OFFERED,     /* offered, nothing downloaded yet */
	NF_UPDATE_DOWNLOADING, /* some bytes of an offered image served */
	NF_UPDATE_DOWNLOADED,  /* every byte of every offered image served */
	NF_UPDATE_CONFIRMED,   /* a later check reports the target (or its MD5) */
	NF_UPDATE_REVERTED,    /* a later check after the download: not the target */
	NF_UPDATE_FAILED,      /* a download cut or refused, not completed since */
	NF_UPDATE_SILENT,      /* downloaded, and no check for silent_ms: never stored */
	NF_UPDATE_COUNT
};

/* History entries: one per transition, and per new held-back reason. */
enum nf_history_kind {
	NF_HISTORY_OFFERED = 1,
	NF_HISTORY_DOWNLOADING,
	NF_HISTORY_DOWNLOADED,
	NF_HISTORY_CONFIRMED,
	NF_HISTORY_REVERTED,
	NF_HISTORY_FAILED,
	NF_HISTORY_WITHDRAWN,  /* an open offer no longer offered, not downloaded */
	NF_HISTORY_HELD,       /* held back: reason in detail */
	NF_HISTORY_COUNT
};

/* store.c: open, post, close ------------------------------------------------ */
enum nf_store_log_level { NF_STORE_LOG_ERROR, NF_STORE_LOG_WARN, NF_STORE_LOG_INFO };

/* Options; a zero field takes its NF_STORE_DEFAULT_*. */
struct nf_store_options {
	size_t queue_capacity;      /* events the queue holds */
	size_t batch_max;           /* events in one transaction at most */
	unsigned batch_ms;          /* queued events wait at most this long for a batch */
	unsigned history_max;       /* history entries kept per device (<= NF_STORE_MAX_HISTORY) */
	int64_t silent_ms;          /* downloaded and no check since: silent */
	unsigned skew_ms;           /* a download at most this older than its offer still counts */
	unsigned retry_max_ms;      /* backoff between failed transactions grows to this */
	unsigned close_timeout_ms;  /* nf_store_close retries a failing database this long */
	unsigned busy_timeout_ms;   /* SQLite: wait this long for a lock (default 1000) */
	int migrate_to;             /* stop migrating at this schema version (tests); 0 = newest */
	unsigned audit_keep_refused; /* refused writes kept in the audit log (0 = 10,000) */
	/* Messages (failures, recoveries); NULL = stderr. Called from the
	 * writer thread and from nf_store_open/close. */
	void (*log)(void *ctx, enum nf_store_log_level level, const char *msg);
	void *log_ctx;
};

struct nf_store;

/* Opens the store at url, creating and migrating the database (numbered
 * migrations, recorded in the table nf_schema), and starts the writer
 * thread. options may be NULL. Returns the store (nf_store_close frees it),
 * or NULL with a message in err (url without its password): a malformed URL,
 * a database that cannot be opened or reached, a failed migration, or a
 * schema newer than NF_STORE_SCHEMA_VERSION. For SQLite, the file's folder
 * is created (one level, mode 0750) when missing. */
struct nf_store *nf_store_open(const char *url, const struct nf_store_options *options,
                               char *err, size_t errlen);

/* Copies ev into the queue for the writer. Never waits on I/O: the only lock
 * is one held by posters for the copy. Returns 0, or -1 when the queue is
 * full (the event is dropped and counted in stats.dropped). Must not be
 * called during or after nf_store_close. */
int nf_store_post(struct nf_store *store, const struct nf_event *ev);

/* Waits until every event posted before the call is written (or dropped).
 * Returns 0, or -1 when timeout_ms passed first. Not for the event loop. */
int nf_store_sync(struct nf_store *store, unsigned timeout_ms);

/* Writes everything queued (retrying a failing database for
 * close_timeout_ms, then dropping what is left, counted and logged), stops
 * the writer and frees the store. NULL is a no-op. */
void nf_store_close(struct nf_store *store);

/* Counters, read without a lock (for /metrics). */
struct nf_store_stats {
	uint64_t posted;    /* events accepted into the queue */
	uint64_t dropped;   /* events lost: queue full, or unwritten at close */
	uint64_t written;   /* events written (committed) */
	uint64_t batches;   /* transactions committed */
	uint64_t failures;  /* transactions failed (each retried) */
	uint64_t unmatched; /* downloads no device could be found for */
	/* Transitions committed (history entries written, docs/STORE.md
	 * section 5): what /metrics counts as confirmations, reverts and
	 * held-back offers. A transition another node committed is its own. */
	uint64_t confirmed; /* offers closed as confirmed */
	uint64_t reverted;  /* offers closed as reverted */
	uint64_t held;      /* held-back answers with a new reason or target */
	size_t depth;       /* events queued now */
	size_t capacity;
	bool failing;       /* the last transaction failed: retrying */
};
void nf_store_stats(struct nf_store *store, struct nf_store_stats *out);
/* nf_store_close, filling *out (may be NULL) with the final counters
 * (depth 0) before the store is freed: what was written and dropped, for a
 * last message. */
void nf_store_close_stats(struct nf_store *store, struct nf_store_stats *out);

/* The schema version the open database has. */
int nf_store_schema(const struct nf_store *store);

/* "sqlite://<data_dir>/store/fleet.db" into out (docs/STORE.md section 3). Returns 0,
 * or -1 when it does not fit in outlen. */
int nf_store_default_url(const char *data_dir, char *out, size_t outlen);

/* Copies the first len bytes of src (up to a NUL) into dst, cut to fit cap
 * with the NUL: for filling struct nf_event's arrays. src may be NULL. */
void nf_store_copy(char *dst, size_t cap, const char *src, size_t len);

/* The key an event stores for an image path: the path itself when it fits
 * in NF_STORE_MAX_IMAGE, otherwise "md5:" and the MD5 of the path in hex.
 * out has NF_STORE_MAX_IMAGE bytes. */
void nf_store_image_key(const char *path, size_t len, char out[NF_STORE_MAX_IMAGE]);

/* query.c: what the admin API reads ------------------------------------------ */
enum nf_device_sort {
	NF_SORT_LAST_SEEN = 0, NF_SORT_FIRST_SEEN, NF_SORT_KEY, NF_SORT_DEVICE,
	NF_SORT_VERSION, NF_SORT_STATE, NF_SORT_IP, NF_SORT_COUNT
};

/* Filters: NULL or "" strings, -1 state and 0 times mean "any". */
struct nf_device_filter {
	const char *device;      /* device type, exactly */
	const char *version;     /* exactly */
	int state;               /* enum nf_update_state (SILENT computed); -1 any */
	int64_t seen_after_ms;   /* last seen >= this */
	int64_t seen_before_ms;  /* last seen < this */
	const char *mac_prefix;  /* "AA:BB" (any case) */
	const char *ip_prefix;   /* "192.168.1." */
	const char *tag;
	int64_t pin;             /* 0 any; > 0 pinned to that release; -1 pinned to any */
	int excluded;            /* 0 any; 1 excluded from rollouts; -1 not excluded */
	enum nf_device_sort sort;
	bool descending;
	size_t offset;           /* pagination: skip this many */
	size_t limit;            /* page size, 1..NF_STORE_MAX_PAGE; 0 = 100 */
	int64_t now_ms;          /* for SILENT; 0 = the wall clock */
};

/* One device, as stored (strings NUL-terminated). */
struct nf_device {
	char key[NF_STORE_MAX_KEY];     /* MAC, or "device@ip" */
	char mac[NF_STORE_MAC_LEN];     /* "" for path-form devices */
	char ip[NF_STORE_IP_LEN];
	char device[NF_STORE_MAX_TEXT], version[NF_STORE_MAX_TEXT], build[NF_STORE_MAX_TEXT];
	enum nf_client_kind client;
	struct nf_event_hw hw;
	int64_t first_seen_ms, last_seen_ms, last_check_ms;
	uint64_t checks;
	/* The last check's answer. */
	enum nf_answer_kind answer;
	char answer_target[NF_STORE_MAX_TEXT];
	int32_t answer_rule;
	char answer_reason[NF_STORE_MAX_REASON];
	/* The current (or last) offer. */
	enum nf_update_state state;     /* SILENT computed from now_ms */
	int64_t state_ms;               /* when it entered its state */
	char target[NF_STORE_MAX_TEXT];
	int32_t rule;
	int64_t offered_ms;
	char from_version[NF_STORE_MAX_TEXT]; /* what it ran when offered */
	struct nf_store_image images[NF_STORE_IMAGES];
	uint64_t image_bytes[NF_STORE_IMAGES]; /* served so far, per image */
	char tags[4 * NF_STORE_MAX_TAG];  /* "a,b,c", cut to fit */
	/* Rollout controls (controls.c): the release it is pinned to (0:
	 * none) and that release's version ("" when none, or deleted since),
	 * and whether rollouts leave it out. */
	int64_t pin_release;
	char pin_version[NF_STORE_MAX_TEXT];
	bool excluded;
};

struct nf_device_list {
	uint64_t total;          /* devices matching the filter, all pages */
	size_t count;            /* in this page */
	struct nf_device *devices;
};

/* One page of the devices matching filter. Returns 0 and fills *out (free
 * with nf_device_list_free), or -1 with a message in err: a bad filter
 * (limit, state, sort) or a database error. */
int nf_store_devices(struct nf_store *store, const struct nf_device_filter *filter,
                     struct nf_device_list *out, char *err, size_t errlen);
void nf_device_list_free(struct nf_device_list *list);

struct nf_history {
	int64_t at_ms;
	enum nf_history_kind kind;
	enum nf_update_state state;   /* the state after it */
	char target[NF_STORE_MAX_TEXT];
	int32_t rule;
	char version[NF_STORE_MAX_TEXT]; /* what the device reported */
	char image[NF_STORE_MAX_IMAGE];
	uint64_t bytes, total;
	char detail[NF_STORE_MAX_REASON];
};

/* The device with this key (a MAC in any accepted form, or "device@ip") and
 * its history, newest first (at most history_max entries). now_ms as in the
 * filter. Returns 1 and fills *dev, *history and *count (free *history with
 * free()), 0 when there is no such device, -1 with a message in err. */
int nf_store_device(struct nf_store *store, const char *key, int64_t now_ms,
                    struct nf_device *dev, struct nf_history **history, size_t *count,
                    char *err, size_t errlen);

struct nf_summary_row {
	char device[NF_STORE_MAX_TEXT], version[NF_STORE_MAX_TEXT];
	uint64_t count;
};

struct nf_fleet_summary {
	uint64_t devices;                      /* all devices */
	uint64_t seen_24h;                     /* last seen within 24 h of now */
	uint64_t held;                         /* last check's answer held back (NF_ANSWER_HELD) */
	uint64_t by_state[NF_UPDATE_COUNT];
	size_t count;                          /* rows, largest count first */
	bool truncated;                        /* more than NF_STORE_MAX_SUMMARY rows */
	struct nf_summary_row *rows;
};

/* Counts by device type x version and by update state. Returns 0 and fills
 * *out (free with nf_fleet_summary_free), or -1 with a message in err. */
int nf_store_summary(struct nf_store *store, int64_t now_ms, struct nf_fleet_summary *out,
                     char *err, size_t errlen);
void nf_fleet_summary_free(struct nf_fleet_summary *summary);

/* Adds (add true) or removes a tag on the device with this key, at once (not
 * through the queue). Returns 1 done, 0 no such device, -1 with a message in
 * err (a bad tag, a database error). */
int nf_store_tag(struct nf_store *store, const char *key, const char *tag, bool add,
                 char *err, size_t errlen);

/* release.c: releases and the audit log (issue 10 items 1, 8) -------------- */
#define NF_STORE_SHA256_LEN   65   /* 64 lower-case hex digits */
#define NF_STORE_MAX_NOTES    1024 /* a release's notes, with the NUL */
#define NF_STORE_MAX_CHIP     16   /* "ESP8266", "ESP32-C3", ... */
#define NF_STORE_MAX_ACTION   32   /* an audit entry's action ("release.add") */
#define NF_STORE_MAX_TARGET   160  /* what the action was on */
#define NF_STORE_MAX_OUTCOME  256  /* "ok", or the error the writer was told */
#define NF_STORE_MAX_RELEASES 10000 /* releases one list returns at most */
#define NF_STORE_MAX_AUDIT    1000 /* audit entries in one page */

/* One stored image of a release: where it is below public/ and what the
 * upload found in it. format: enum nf_image_format's values (1 ESP, 2
 * gzip); flash_mode -1 and flash_size 0 when the image does not tell
 * (gzip, filesystem images). */
struct nf_release_image {
	char path[NF_STORE_MAX_IMAGE]; /* "/releases/<sha256>.bin"; "" for none */
	uint64_t size;
	char md5[NF_STORE_MD5_LEN];
	char sha256[NF_STORE_SHA256_LEN];
	int format;
	int flash_mode;
	uint64_t flash_size;
	char chip[NF_STORE_MAX_CHIP];
};

struct nf_release {
	int64_t id;
	char device[NF_STORE_MAX_TEXT], version[NF_STORE_MAX_TEXT];
	int64_t created_ms;
	char created_by[NF_STORE_MAX_TEXT]; /* the token's name */
	char notes[NF_STORE_MAX_NOTES];
	struct nf_release_image fw, fs;     /* fs.path "" when none */
};

/* Adds rel (its id ignored) at once. Returns 1 with rel->id set, 0 when a
 * release of that device and version exists (nothing written), -1 with a
 * message in err. */
int nf_store_release_add(struct nf_store *store, struct nf_release *rel, char *err,
                         size_t errlen);
/* The release with this id (by_id) or this device and version into *out.
 * Returns 1 found, 0 none, -1 with a message in err. */
int nf_store_release_get(struct nf_store *store, int64_t id, struct nf_release *out, char *err,
                         size_t errlen);
int nf_store_release_find(struct nf_store *store, const char *device, const char *version,
                          struct nf_release *out, char *err, size_t errlen);
/* Releases, newest first, of one device type (NULL or "" for all), at most
 * NF_STORE_MAX_RELEASES. Returns 0 with *out (free()) and *count, or -1. */
int nf_store_release_list(struct nf_store *store, const char *device, struct nf_release **out,
                          size_t *count, char *err, size_t errlen);
/* Gives release id its filesystem image, only when it has none. Returns 1
 * set, 0 no such release or it has one already (*had_one tells which), -1. */
int nf_store_release_set_fs(struct nf_store *store, int64_t id, const struct nf_release_image *fs,
                            bool *had_one, char *err, size_t errlen);
/* Deletes release id. Returns 1 deleted, with the paths of its images that
 * no other release uses into unused[0..2) ("" when still used or none), 0
 * no such release, -2 a running, paused or halted rollout uses it (its id
 * in *rollout; nothing deleted), -3 devices are pinned to it (how many in
 * *pinned; nothing deleted), -1. */
int nf_store_release_delete(struct nf_store *store, int64_t id,
                            char unused[2][NF_STORE_MAX_IMAGE], int64_t *rollout, int64_t *pinned,
                            char *err, size_t errlen);
/* Replaces release id's notes. Returns 1 done, 0 no such release, -1. */
int nf_store_release_set_notes(struct nf_store *store, int64_t id, const char *notes, char *err,
                               size_t errlen);
/* How many releases use the image at path. -1 on error. */
int64_t nf_store_release_uses(struct nf_store *store, const char *path, char *err, size_t errlen);

/* One admin write as recorded: who (the token's name), what, on what, the
 * HTTP status it got, and "ok" or the error message. */
struct nf_audit {
	int64_t id, at_ms;
	char token[NF_STORE_MAX_TEXT];
	char action[NF_STORE_MAX_ACTION];
	char target[NF_STORE_MAX_TARGET];
	unsigned status;
	char outcome[NF_STORE_MAX_OUTCOME];
};
/* Appends a (its id ignored) at once; of the refused (status 400 or more),
 * only the newest audit_keep_refused are kept. 0, or -1 with a message in
 * err. */
int nf_store_audit_add(struct nf_store *store, const struct nf_audit *a, char *err,
                       size_t errlen);
/* Entries with id < before_id (0: the newest), newest first, at most limit
 * (1..NF_STORE_MAX_AUDIT). Returns 0 with *out (free()) and *count, or -1. */
int nf_store_audit_list(struct nf_store *store, int64_t before_id, size_t limit,
                        struct nf_audit **out, size_t *count, char *err, size_t errlen);

/* rollout.c: rollouts, their phases and state (issue 10 item 2) -------------- */
#define NF_ROLLOUT_MAX_PHASES 10   /* percentages in one rollout */
#define NF_ROLLOUT_MAX_LIST   512  /* tags or MACs, comma-separated, with the NUL */
#define NF_STORE_MAX_ROLLOUTS 1000 /* rollouts one list returns at most */

enum nf_rollout_state {
	NF_ROLLOUT_RUNNING = 0, /* offering to its current phase */
	NF_ROLLOUT_PAUSED,      /* an operator paused it: no new offers */
	NF_ROLLOUT_HALTED,      /* its error gate (or an operator) stopped it: no new offers */
	NF_ROLLOUT_COMPLETED,   /* its last phase passed its gates */
	NF_ROLLOUT_ABORTED,     /* an operator ended it */
	NF_ROLLOUT_STATES
};

struct nf_rollout {
	int64_t id, release_id;
	char device[NF_STORE_MAX_TEXT];  /* the release's device type */
	int state;                       /* enum nf_rollout_state */
	int64_t state_ms;
	char reason[NF_STORE_MAX_OUTCOME]; /* why it is in its state (halts, pauses) */
	unsigned phases[NF_ROLLOUT_MAX_PHASES]; /* percentages, increasing, last <= 100 */
	unsigned nphases;
	unsigned phase;                  /* the current one, 0-based */
	int64_t phase_ms;                /* when it started */
	char min_version[NF_STORE_MAX_TEXT], max_version[NF_STORE_MAX_TEXT]; /* "" for any */
	char tags[NF_ROLLOUT_MAX_LIST], macs[NF_ROLLOUT_MAX_LIST]; /* comma-separated; "" any */
	unsigned success_bp, error_bp;   /* thresholds, basis points (9500 = 95%) */
	int64_t soak_ms, silent_ms;
	bool approval;                   /* phases advance only when told */
	int64_t created_ms;
	char created_by[NF_STORE_MAX_TEXT];
	int window_start, window_end;    /* minutes of the server's local day; -1: always */
	unsigned rate;                   /* new offers a minute at most; 0: no bound */
};

/* Adds r (id ignored; state RUNNING at phase 0 from r->created_ms) at once,
 * only when release r->release_id exists and no running, paused or halted
 * rollout of it exists. Returns 1 with r->id set, 0 no such release, -2 the
 * release has an active rollout already (its id in *other), -1 with a
 * message in err. */
int nf_store_rollout_add(struct nf_store *store, struct nf_rollout *r, int64_t *other, char *err,
                         size_t errlen);
/* Rollout id into *out: 1 found, 0 none, -1 error. */
int nf_store_rollout_get(struct nf_store *store, int64_t id, struct nf_rollout *out, char *err,
                         size_t errlen);
/* Rollouts, newest first, at most NF_STORE_MAX_ROLLOUTS: 0 with *out (free())
 * and *count, or -1. */
int nf_store_rollout_list(struct nf_store *store, struct nf_rollout **out, size_t *count,
                          char *err, size_t errlen);
/* The rollouts that may still offer or move: running and paused ones, and
 * of each device type the completed one that still offers to late devices
 * (the newest of the type's halted, completed and aborted rollouts, when it
 * is completed), newest first (the rollout watcher reads these four times a
 * second; finished ones pile up). */
int nf_store_rollout_live(struct nf_store *store, struct nf_rollout **out, size_t *count,
                          char *err, size_t errlen);
/* Moves rollout id from one of the states in the mask from_mask (1 <<
 * state) to state, with reason, at now_ms; advance: the phase goes up by
 * one too (to completed past the last). A completed rollout moves only
 * while it still offers (nf_store_rollout_live). In one statement, so two nodes
 * never both move it. Returns 1 moved (the row as it is now in *out), 0 no
 * such rollout or not in a from state (*out holds it as it is, out->id 0
 * when none), -1. */
int nf_store_rollout_move(struct nf_store *store, int64_t id, unsigned from_mask, int state,
                          bool advance, const char *reason, int64_t now_ms,
                          struct nf_rollout *out, char *err, size_t errlen);
/* Halts every running or paused rollout, and every completed one still
 * offering (nf_store_rollout_live), with reason, at now_ms, in one
 * statement. Returns how many it halted, or -1. */
int nf_store_rollout_halt_all(struct nf_store *store, const char *reason, int64_t now_ms,
                              char *err, size_t errlen);
/* "running", "paused", "halted", "completed", "aborted"; "?" out of range. */
const char *nf_rollout_state_name(int state);
/* 1 when release id is used by a running, paused or halted rollout (its
 * id in *rollout), 0 not, -1. Inside a delete's transaction (release.c). */
struct nf_db;
int nf_rollout_uses_release(struct nf_db *db, int64_t release_id, int64_t *rollout);

/* The rule an offer made by a rollout records (struct nf_event's rule,
 * the devices' offer_rule, history's rule): versions.json's rules are 0 and
 * up and -1 is none, so a rollout's offer in phase p (0-based) is
 * -(2 + id x 16 + p), and a pinned device's offer of release id is the
 * same with phase NF_RULE_PIN_PHASE. Ids up to 134 million fit an int32. */
#define NF_RULE_ROLLOUT_BASE 2
#define NF_RULE_PHASES       16
#define NF_RULE_PIN_PHASE    15
int32_t nf_rollout_rule(int64_t id, unsigned phase);
/* The rollout (or pinned release) id and phase a rule code names; false
 * for a versions.json rule or none. */
bool nf_rollout_of_rule(int32_t rule, int64_t *id, unsigned *phase);

/* What became of a rollout's offers, each device counted once, in the
 * phase it was first offered in (its offer's rule code). */
enum nf_rollout_count {
	NF_RC_PENDING = 0, /* offered, downloading or downloaded, within silent_after */
	NF_RC_CONFIRMED,   /* reports the release's version (or its MD5) */
	NF_RC_REVERTED,    /* downloaded it, then reported the old version */
	NF_RC_FAILED,      /* its download was cut or refused, not completed since */
	NF_RC_SILENT,      /* offered over silent_after ago, and still not confirmed */
	NF_RC_WITHDRAWN,   /* no longer offered before it downloaded (paused, halted, window) */
	NF_RC_COUNT
};
struct nf_rollout_counts {
	uint64_t phase[NF_ROLLOUT_MAX_PHASES][NF_RC_COUNT];
	uint64_t offered[NF_ROLLOUT_MAX_PHASES]; /* the sum of each phase's row */
	uint64_t total[NF_RC_COUNT];
	uint64_t offered_total;
	/* Only while offered_total is 0 and the phase has soaked: the devices
	 * of the rollout's type not excluded (all), of those the ones not on
	 * its release's version (known), and how many of them checked in since
	 * its phase began, while its window was open (seen); window_closed: the
	 * window is closed now (the rest is then 0). */
	uint64_t known, seen, all;
	bool window_closed;
};
/* Whether minute (0..1439 of the server's local day) is inside r's window
 * (always, without one; windows may wrap midnight). */
bool nf_rollout_window_open(const struct nf_rollout *r, int minute);
/* "pending", "confirmed", ... */
const char *nf_rollout_count_name(int kind);
/* Counts rollout r's offers as of now_ms. 0, or -1 with err filled. */
int nf_store_rollout_counts(struct nf_store *store, const struct nf_rollout *r, int64_t now_ms,
                            struct nf_rollout_counts *out, char *err, size_t errlen);

/* The health gates of a rollout's current phase, judged on its counts so
 * far (every phase's offers together): halt when (reverted + failed +
 * silent) / offered is above error_bp, whether running, paused or
 * completed (a completed rollout still offers to late devices); advance a
 * running one once the phase has soaked soak_ms and confirmed / offered is
 * at least success_bp; with approval, wait for an operator instead. A
 * rollout that has offered nothing yet passes a phase only once enough
 * devices of its type checked in since the phase began to show that the
 * phase is empty, not that the fleet is away (docs/ROLLOUTS.md section 3). Pure:
 * the watcher and the API judge alike. */
enum nf_gate_action { NF_GATE_WAIT = 0, NF_GATE_HALT, NF_GATE_ADVANCE, NF_GATE_APPROVAL,
	              NF_GATE_ACTIONS };
struct nf_gate_verdict {
	int action;                  /* enum nf_gate_action */
	unsigned success_bp, error_bp; /* the figures now, basis points of offered */
	int64_t soak_left_ms;        /* 0: soaked */
	char why[NF_STORE_MAX_OUTCOME]; /* HALT, ADVANCE, APPROVAL: the reason, with the counts */
};
void nf_rollout_judge(const struct nf_rollout *r, const struct nf_rollout_counts *c,
                      int64_t now_ms, struct nf_gate_verdict *v);
/* "wait", "halt", "advance", "awaiting approval". */
const char *nf_gate_action_name(int action);

/* controls.c: pins and exclusions (issue 10 item 4) ------------------------- */
#define NF_CONTROL_TAGS 256 /* a device's tags as rollouts see them, "a,b", with the NUL */
/* Pins the device with this key to release release_id (0: unpins it).
 * Returns 1 done, 0 no such device, -1 with err filled. The release is
 * the caller's to check. */
int nf_store_device_pin(struct nf_store *store, const char *key, int64_t release_id, char *err,
                        size_t errlen);
/* Excludes the device from every rollout, or takes it back. 1, 0, -1 as above. */
int nf_store_device_exclude(struct nf_store *store, const char *key, bool excluded, char *err,
                            size_t errlen);
/* One device that carries a pin, an exclusion or tags. */
struct nf_control {
	char key[NF_STORE_MAX_KEY];
	int64_t pin_release;          /* 0: none */
	bool excluded;
	char tags[NF_CONTROL_TAGS];   /* "a,b" ("" none); cut at a whole tag */
};
typedef void (*nf_control_fn)(void *user, const struct nf_control *c);
/* Calls fn for every such device, in key order (a device may come twice if
 * the connection had to be made again: the later one wins), and gives the
 * generation read with them. 0, or -1 with err filled. */
int nf_store_controls(struct nf_store *store, nf_control_fn fn, void *user, int64_t *generation,
                      char *err, size_t errlen);
/* The generation alone: it goes up with every pin, exclusion and tag
 * change, on any node. 0, or -1. */
int nf_store_controls_generation(struct nf_store *store, int64_t *generation, char *err,
                                 size_t errlen);
/* Raises it, inside the caller's statements (query.c's tags). */
int nf_controls_bump(struct nf_db *db);

/* names.c: names on the wire of the admin API -------------------------------- */
/* "none", "offered", ... "silent"; "?" when out of range. */
const char *nf_update_state_name(int state);
/* The state named name, or -1. */
int nf_update_state_parse(const char *name);
/* "nofuss-path", "nofuss", "esp8266-updater", "esp32-updater", "esphome",
 * "tasmota", "unknown". */
const char *nf_client_kind_name(int client);
int nf_client_kind_parse(const char *name);
/* "offered", "downloading", ... "held". */
const char *nf_history_kind_name(int kind);
const char *nf_answer_kind_name(int answer); /* "none", "offered", "held", "deferred" */
/* Writes the normalised MAC "AA:BB:CC:DD:EE:FF" of text (either case, ':'
 * '-' or no separators) into out. Returns 0, or -1 when text is not a MAC
 * or is all zeros (never a device's identity). */
int nf_store_mac_normalize(const char *text, char out[NF_STORE_MAC_LEN]);

/* ========================================================================
 * Inside the library: between its own files, not for callers.
 * ======================================================================== */

/* update.c: the proof-of-update state machine, pure (no I/O) ------------- */
/* A device's offer as stored: the columns the state machine reads and writes. */
struct nf_offer_image {
	char path[NF_STORE_MAX_IMAGE];
	char md5[NF_STORE_MD5_LEN];
	uint64_t size, bytes;
	bool done;
};
struct nf_offer {
	int state;                       /* enum nf_update_state, never SILENT */
	int64_t state_ms;
	char target[NF_STORE_MAX_TEXT];
	int32_t rule;
	int64_t offered_ms;
	char from[NF_STORE_MAX_TEXT];
	struct nf_offer_image img[NF_STORE_IMAGES];
	struct nf_offer_image early;     /* a download seen before its offer */
	int64_t early_ms;
	int64_t hist_seq;                /* history entries written so far */
	int32_t reverts;                 /* offers of this target before this one that the
	                                  * device reverted, in a row (the gates count it) */
	/* Before this batch (returned by the upsert), then as applied: */
	int64_t checked_ms;              /* newest check applied */
	int answer;                      /* the last check's answer */
	char answer_target[NF_STORE_MAX_TEXT];
	char answer_reason[NF_STORE_MAX_REASON];
};
#define NF_UPDATE_MAX_HISTORY 4 /* history entries one event can make */

/* Applies ev to o at its time. Returns the number of history entries written
 * into out (at most NF_UPDATE_MAX_HISTORY), each with its kind, time and
 * state after. skew_ms: how much older than the offer a download may be. */
int nf_update_apply(struct nf_offer *o, const struct nf_event *ev, int64_t skew_ms,
                    struct nf_history *out);
/* True when o has an offer not yet closed (offered, downloading, downloaded,
 * failed). */
bool nf_update_open(const struct nf_offer *o);
/* The index of the image path names in o's offer, or -1. */
int nf_update_image(const struct nf_offer *o, const char *path);

/* db.c, db_sqlite.c, db_pg.c: one connection, either backend -------------- */
enum nf_db_backend { NF_DB_SQLITE, NF_DB_PG };
enum nf_db_type { NF_DB_NULL, NF_DB_INT, NF_DB_TEXT };
struct nf_db_val {
	enum nf_db_type type;
	int64_t i;
	const char *s;
};
#define NF_DB_INT_V(v)  ((struct nf_db_val){NF_DB_INT, (int64_t)(v), NULL})
#define NF_DB_TEXT_V(v) ((struct nf_db_val){NF_DB_TEXT, 0, (v)})
#define NF_DB_MAX_PARAMS 64
#define NF_DB_MAX_STMTS  16  /* prepared statements cached per connection */
struct nf_db;
/* One result row, handed to an nf_db_row_fn. */
struct nf_db_row {
	const struct nf_db *db;
	void *handle;  /* sqlite3_stmt or PGresult */
	int row;
};
/* Called once per result row; row and its strings live until it returns. */
typedef void (*nf_db_row_fn)(void *user, const struct nf_db_row *row);

/* Opens a connection for url (sqlite:// or postgresql://). busy_ms: SQLite's
 * lock wait. Returns it (nf_db_close frees it) or NULL with a message. */
struct nf_db *nf_db_open(const char *url, unsigned busy_ms, char *err, size_t errlen);
void nf_db_close(struct nf_db *db);
enum nf_db_backend nf_db_backend(const struct nf_db *db);
/* Runs sql (no parameters, possibly several statements) now. 0 or -1. */
int nf_db_exec(struct nf_db *db, const char *sql);
/* Runs sql with parameters $1..$n; fn (may be NULL) gets each row, at once
 * (SQLite) or by the next nf_db_sync (PostgreSQL pipelines them). id 0..
 * NF_DB_MAX_STMTS-1 prepares sql once per connection and reuses it (the same
 * id must always come with the same sql); -1 runs it once. Returns 0, or -1
 * (the error is kept for nf_db_error); an error also fails nf_db_sync. */
int nf_db_run(struct nf_db *db, int id, const char *sql, const struct nf_db_val *v, int n,
              nf_db_row_fn fn, void *user);
/* Runs one statement for each of nrows rows of ncols values (rows[r *
 * ncols + c]): sql_row with $1..$ncols once per row on SQLite; on
 * PostgreSQL sql_arrays once, with $c the array of column c's values (so
 * sql_arrays reads them with unnest($1::type[], ...)). fn and id as for
 * nf_db_run (the id names the one statement each backend uses). NULL
 * values are not supported. Returns 0 or -1. */
int nf_db_run_rows(struct nf_db *db, int id, const char *sql_row, const char *sql_arrays,
                   const struct nf_db_val *rows, size_t nrows, int ncols, nf_db_row_fn fn,
                   void *user);
/* Waits for the results of every nf_db_run so far. 0, or -1 when any failed. */
int nf_db_sync(struct nf_db *db);
/* The first error since the last nf_db_clear, "" if none. */
const char *nf_db_error(const struct nf_db *db);
void nf_db_clear(struct nf_db *db);
/* True when the connection is usable; otherwise nf_db_reconnect. */
bool nf_db_ok(const struct nf_db *db);
int nf_db_reconnect(struct nf_db *db);
/* Row access: column i as an integer (0 for NULL) or text ("" for NULL). */
int64_t nf_db_int(const struct nf_db_row *row, int i);
const char *nf_db_text(const struct nf_db_row *row, int i);
/* Copies column i's text into dst of cap bytes, cut to fit. */
void nf_db_copy(const struct nf_db_row *row, int i, char *dst, size_t cap);
/* url with the password of a postgresql:// URL replaced by "***", for
 * messages. */
void nf_db_redact(const char *url, char *out, size_t outlen);

/* The backends' halves of struct nf_db (db.c dispatches). */
struct nf_db_ops {
	void (*close)(struct nf_db *db);
	int (*exec)(struct nf_db *db, const char *sql);
	int (*run)(struct nf_db *db, int id, const char *sql, const struct nf_db_val *v, int n,
	           nf_db_row_fn fn, void *user);
	int (*run_rows)(struct nf_db *db, int id, const char *sql_row, const char *sql_arrays,
	                const struct nf_db_val *rows, size_t nrows, int ncols, nf_db_row_fn fn,
	                void *user);
	int (*sync)(struct nf_db *db);
	bool (*ok)(const struct nf_db *db);
	int (*reconnect)(struct nf_db *db);
	int64_t (*col_int)(const struct nf_db_row *row, int i);
	const char *(*col_text)(const struct nf_db_row *row, int i);
};
struct nf_db {
	const struct nf_db_ops *ops;
	enum nf_db_backend backend;
	char error[512];
};
/* Keeps msg as the connection's error if it has none yet. Returns -1. */
int nf_db_fail(struct nf_db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct nf_db *nf_db_sqlite_open(const char *path, unsigned busy_ms, char *err, size_t errlen);
struct nf_db *nf_db_pg_open(const char *conninfo, char *err, size_t errlen);

/* schema.c: numbered migrations ------------------------------------------- */
/* Brings db's schema to version target (0 = NF_STORE_SCHEMA_VERSION), one
 * transaction per migration, each recorded in nf_schema; several nodes
 * migrating at once take turns. Returns the version now in the database, or
 * -1 with a message (a failed migration, a newer schema). */
int nf_schema_migrate(struct nf_db *db, int target, char *err, size_t errlen);
/* Makes the stored history fit history_max entries per device (the newest
 * kept) when it was made for another size; needs schema 2. 0 or -1. */
int nf_schema_history(struct nf_db *db, unsigned history_max, char *err, size_t errlen);

/* offer.c: a device's offer columns, shared by the writer and the queries -- */
/* "state, state_ms, ... hist_seq": the stored columns of struct nf_offer, in
 * the order nf_offer_values and nf_offer_read use (NF_OFFER_NCOLS). */
#define NF_OFFER_COLUMNS                                                                   \
	"state, state_ms, offer_target, offer_rule, offer_ms, offer_from, "                \
	"img0_path, img0_md5, img0_size, img0_bytes, img0_done, "                          \
	"img1_path, img1_md5, img1_size, img1_bytes, img1_done, "                          \
	"early_path, early_md5, early_size, early_bytes, early_done, early_ms, hist_seq, "     \
	"offer_reverts"
#define NF_OFFER_NCOLS 24
/* The values of o's stored columns, in NF_OFFER_COLUMNS' order, into
 * v[0..NF_OFFER_NCOLS) (strings point into o). */
void nf_offer_values(const struct nf_offer *o, struct nf_db_val *v);
/* Reads NF_OFFER_COLUMNS from row's column i on into o (other fields kept). */
void nf_offer_read(const struct nf_db_row *row, int i, struct nf_offer *o);
/* True when a and b differ in a stored column. */
bool nf_offer_changed(const struct nf_offer *a, const struct nf_offer *b);

/* batch.c: one batch in one transaction ------------------------------------ */
struct nf_batch;
/* Scratch for batches of up to batch_max events (the writer's own). */
struct nf_batch *nf_batch_new(size_t batch_max);
void nf_batch_free(struct nf_batch *b);
/* Writes events[0..n) (pointers into the queue; their strings are
 * terminated in place) in one transaction on db.
 * Returns 0 committed, or -1 rolled back with the reason in db's error: the
 * caller retries the same events, unless nf_batch_cut says the outcome is
 * unknown. *unmatched counts downloads without a device. */
int nf_batch_write(struct nf_batch *b, struct nf_db *db, struct nf_event *const *events,
                   size_t n, unsigned history_max, int64_t skew_ms, uint64_t *unmatched);
/* True after nf_batch_write failed because PostgreSQL's connection was lost
 * once the transaction had its id: its COMMIT may have committed. The
 * caller must then nf_batch_resolve before writing anything else. */
bool nf_batch_cut(const struct nf_batch *b);
/* Asks the server (db reconnected) what became of the cut transaction
 * (txid_status). Returns 1 committed: the same events are written, the
 * batch counts as if nf_batch_write had returned 0 (nf_batch_count, and
 * *unmatched is added to); 0 aborted or never known: write them again; -1
 * not known yet (lost again, or still in progress), with db's error: ask
 * again later. 0 when nothing is cut. */
int nf_batch_resolve(struct nf_batch *b, struct nf_db *db, uint64_t *unmatched);
/* The history entries of the last batch written, by kind (enum
 * nf_history_kind), added to counts[0..NF_HISTORY_COUNT). Meaningful only
 * after nf_batch_write returned 0 or nf_batch_resolve 1. */
void nf_batch_count(const struct nf_batch *b, uint64_t counts[NF_HISTORY_COUNT]);

/* release.c: rows read into one struct (one != NULL: returned as is) or a
 * growing array *list of count rows of size bytes (16, then doubling; *cap
 * its room). Returns the slot for the next row, or NULL with *failed set
 * (out of memory; later rows are dropped). The caller counts the row. */
void *nf_rows_slot(void *one, void **list, size_t count, size_t *cap, size_t size, bool *failed);

/* store.c: the queries' connection ----------------------------------------- */
/* Runs op on the store's reading connection under its mutex, making the
 * connection again and running op a second time if it was lost. op returns
 * >= 0 for success (passed through) or -1 with the database's error, which
 * is copied into err. */
int nf_store_read(struct nf_store *store,
                  int (*op)(struct nf_db *db, const struct nf_store_options *opt, void *ctx),
                  void *ctx, char *err, size_t errlen);

/* names.c: keys. */
/* The device key of ev ("AA:..:FF" or "device@ip") into key. */
void nf_event_key(const struct nf_event *ev, char key[NF_STORE_MAX_KEY]);
/* A key typed by a person ("aa-bb-..", "device@ip") as stored. 0 or -1. */
int nf_key_normalize(const char *text, char key[NF_STORE_MAX_KEY]);

#endif /* NOFUSS_STORE_H */
