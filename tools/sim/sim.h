/*
 * sim.h - the device simulators, library nofuss_sim: `nofuss device`, one
 * simulated ESP8266 on a flash directory, and `nofuss fleet`, thousands on
 * memory flashes in one process; both run the real device core on the
 * POSIX port. The table of contents, grouped by file:
 *
 *   firmware.c  the simulated firmware's start-up, shared by both
 *   announce.c  a device's MQTT announcements (espurna-style)
 *   device.c    `nofuss device`, with device_options.c
 *   fleet.c     `nofuss fleet`, with fleet_life.c, fleet_loop.c, fleet_report.c
 *
 * Links the POSIX port (libcurl, libcrypto), libmosquitto, jansson,
 * nofuss_ota (the device's ArduinoOTA listener) and nofuss_image (the
 * images a fresh flash is provisioned with).
 */
#ifndef NOFUSS_TOOLS_SIM_H
#define NOFUSS_TOOLS_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "args.h" /* struct nf_exit */
#include "nofuss/posix.h"

/* Sizes of the images a fresh simulated flash is provisioned with (at most
 * the slot's and the filesystem's). */
#define NF_SIM_FW_SIZE (256u * 1024u)
#define NF_SIM_FS_SIZE (64u * 1024u)

/* ---- firmware.c: a simulated device's power-on ---- */

/* A simulated firmware: its device, and the settings its NoFUSS client is
 * set up with at every boot. */
struct nf_sim_firmware {
	struct nf_posix *port;    /* the device; its flash provisioned */
	struct nf_client *client; /* its NoFUSS client */
	const char *server;       /* NULL: none (a device that never checks) */
	const char *build;        /* NULL: none */
	bool path_form;
	const char *name; /* the device name when the image carries none, or NULL */
	void (*on_message)(void *ctx, const struct nf_client *c, enum nf_message msg);
	/* Called once the bootloader has chosen, before the firmware runs (to
	 * show or count what it did); may be NULL. */
	void (*booted)(void *ctx, const struct nf_posix_boot *b);
	void *ctx; /* for on_message and booted */
};

/* How a power-on ended. */
enum nf_sim_start {
	NF_SIM_UP = 0,         /* the firmware runs: slot confirmed, client set up */
	NF_SIM_BRICKED,        /* no slot holds a bootable firmware (err says) */
	NF_SIM_FLASH_FAILED,   /* the bootloader could not read or write the flash */
	NF_SIM_CRASHED,        /* the image crashes at boot: it did, unconfirmed */
	NF_SIM_CONFIRM_FAILED, /* the slot could not be confirmed (err says) */
	NF_SIM_NO_NAME,        /* neither the image nor fw->name names the device */
	NF_SIM_TOO_LONG,       /* a setting, the name or the version does not fit the core */
};

/* Sets up fw->client as the firmware does in setup(): initialised, with
 * fw's message callback, path form, server, the port's MAC and build.
 * Returns 0, or -1 when the server or the build is too long for the core. */
int nf_sim_client_init(const struct nf_sim_firmware *fw);
/* One power-on: the port's bootloader (nf_posix_boot, *b describes what it
 * booted), fw->booted, then the firmware's start-up: a crash when the image
 * says so, else the slot confirmed and the client set up
 * (nf_sim_client_init) with the version the image carries and its device
 * name. Returns how it ended; err explains BRICKED, FLASH_FAILED and
 * CONFIRM_FAILED. */
enum nf_sim_start nf_sim_power_on(const struct nf_sim_firmware *fw, struct nf_posix_boot *b,
                                  char *err, size_t errcap);

/* ---- announce.c: `nofuss device --mqtt`: what an espurna-style firmware
 * publishes about itself on an MQTT broker, so that `nofuss push` (and any
 * dashboard) can find it: the topics of topics.h (BASE/ip, BASE/version,
 * BASE/fsversion, BASE/status with its last will, on every connect, so on
 * every boot; BASE/heartbeat then and every heartbeat interval).
 *
 * Never blocks: nf_announce_poll() runs libmosquitto's loop with a zero
 * timeout and is meant to be called often from the device's main loop. A
 * broker that is down or goes away is logged and retried with a backoff.
 * ---- */

#define NF_ANNOUNCE_PORT_DEFAULT 1883u
#define NF_ANNOUNCE_HEARTBEAT_MS 60000L
#define NF_ANNOUNCE_FIELD_MAX    64u  /* ip, version, fsversion, with the NUL */
#define NF_ANNOUNCE_TOPIC_MAX    256u /* BASE/fsversion, with the NUL */

struct mosquitto;

struct nf_announce_config {
	const char *host;     /* broker host name or address */
	uint16_t port;        /* NF_ANNOUNCE_PORT_DEFAULT */
	const char *base;     /* topic prefix, e.g. /home/cellar/washer */
	const char *user;     /* NULL: anonymous */
	const char *password; /* NULL: none */
	const char *ip, *version, *fsversion;
	long heartbeat_ms; /* > 0 */
	FILE *log;         /* one line per event; NULL: silent */
};

struct nf_announce {
	struct mosquitto *mosq; /* NULL when stopped */
	struct nf_announce_config cfg;
	char host[NF_ANNOUNCE_TOPIC_MAX], base[NF_ANNOUNCE_TOPIC_MAX];
	char ip[NF_ANNOUNCE_FIELD_MAX], version[NF_ANNOUNCE_FIELD_MAX];
	char fsversion[NF_ANNOUNCE_FIELD_MAX];
	bool connecting, connected;
	uint64_t next_attempt_ms, next_heartbeat_ms; /* nf_clock_ms() */
	long backoff_ms;
};

/* Copies cfg (its strings too) and starts connecting. Returns 0, or -1
 * with the reason in err (bad configuration, out of memory); a broker that
 * does not answer is not an error. Call nf_announce_stop() either way. */
int nf_announce_start(struct nf_announce *a, const struct nf_announce_config *cfg, char *err,
                      size_t errcap);
/* Does what is due without waiting: network traffic, (re)connecting,
 * the heartbeat. */
void nf_announce_poll(struct nf_announce *a);
/* Drops the connection without a clean disconnect (the broker then
 * publishes the last will, as when a real device resets) and frees
 * everything. Safe on a stopped a, and twice. */
void nf_announce_stop(struct nf_announce *a);

/* ---- device.c, device_options.c: `nofuss device`'s parts ---- */

/* Exit status (in nf_device_exits). */
#define DEVICE_EXIT_CHECK_FAILED 1
#define DEVICE_EXIT_FLASH        3
#define DEVICE_EXIT_BRICKED      4
#define DEVICE_EXIT_BOOT_LOOP    5

#define NF_DEVICE_COUNTER_MAX 4000000000ul /* counters carried across reboots */
#define NF_DEVICE_IP_MAX      16u          /* an IPv4 dotted quad, with the NUL */

/* ---- stock.c: the clients that are not NoFUSS (`--client`) ---- */
enum nf_sim_client {
	NF_SIM_CLIENT_NOFUSS = 0,  /* the NoFUSS core, header form */
	NF_SIM_CLIENT_NOFUSS_PATH, /* the NoFUSS core, path form */
	NF_SIM_CLIENT_ESP8266,     /* ESPhttpUpdate.update(client, SERVER/update/DEVICE, V) */
	NF_SIM_CLIENT_ESP32,       /* arduino-esp32 3.x httpUpdate, x-ESP32-BASE-MAC */
	NF_SIM_CLIENT_ESPHOME,     /* http_request update: SERVER/esphome/DEVICE/manifest.json */
	NF_SIM_CLIENT_TASMOTA,     /* Upgrade 1 with OtaUrl SERVER/update/DEVICE.bin.gz */
	NF_SIM_CLIENTS
};
/* The kind named ("nofuss", "nofuss-path", "esp8266-updater",
 * "esp32-updater", "esphome", "tasmota"): 0, or -1 for another name. */
int nf_sim_client_parse(const char *name, enum nf_sim_client *out);
/* --client VALUE: kind into *client (NOFUSS_PATH also sets *path_form).
 * Returns 0, or -1 after saying what is wrong. */
int nf_sim_client_option(const char *value, enum nf_sim_client *client, bool *path_form);
/* The name of kind, as --client takes it. */
const char *nf_sim_client_name(enum nf_sim_client kind);
enum nf_sim_stock {
	NF_SIM_STOCK_CURRENT, /* 304, or ESPHome's "no update" */
	NF_SIM_STOCK_UPDATED, /* the image is committed: the caller reboots */
	NF_SIM_STOCK_FAILED,  /* err says why */
	NF_SIM_STOCK_AGAIN,   /* another request is set up (ESPHome's image): perform it */
};
#define NF_SIM_MANIFEST_MAX (16u * 1024u) /* an ESPHome manifest's bytes */
#define NF_SIM_URL_MAX      1024
/* A response read whole, bounded by max (an image by the slot). */
struct nf_sim_body {
	unsigned char *data;
	size_t len, max;
	bool too_big;
	char md5[40]; /* x-MD5, "" when none */
};
/* One stock check in progress: the request set up on a curl easy handle,
 * and what is kept between ESPHome's two requests. */
struct nf_sim_stock_req {
	enum nf_sim_client kind;
	struct nf_posix *p;
	void *headers; /* struct curl_slist * */
	struct nf_sim_body b;
	char url[NF_SIM_URL_MAX];
	char version[NF_POSIX_IMAGE_FIELD];
	char md5[33]; /* ESPHome: the manifest's */
	int stage;    /* 0: the check (or manifest), 1: ESPHome's image */
	char errbuf[256]; /* CURL_ERROR_SIZE */
};
/* Sets curl (a CURL *, reset here) up for the first request of a check of
 * kind (not NOFUSS or NOFUSS_PATH) against server, as device running
 * version, with p's identity and flash; url_version: ESPHome's manifest URL
 * ends "?version=VERSION" (a firmware built with that source URL). 0:
 * perform curl, then call nf_sim_stock_end; -1 with err filled. */
int nf_sim_stock_begin(struct nf_sim_stock_req *r, void *curl, struct nf_posix *p,
                       enum nf_sim_client kind, bool url_version, const char *server,
                       const char *device, const char *version, char *err, size_t cap);
/* After curl finished with result (its CURLcode): what the client makes of
 * the response (an image is verified, written and committed). AGAIN: curl
 * is set up for the next request; anything else is final and r is freed. */
enum nf_sim_stock nf_sim_stock_end(struct nf_sim_stock_req *r, void *curl, int result, char *err,
                                   size_t cap);
/* Frees what r holds (a check cut before its end). */
void nf_sim_stock_free(struct nf_sim_stock_req *r);
/* One whole check with a handle of its own (`nofuss device`); blocks. */
enum nf_sim_stock nf_sim_stock_check(struct nf_posix *p, enum nf_sim_client kind,
                                     bool url_version, const char *server, const char *device,
                                     const char *version, char *err, size_t cap);

/* What `nofuss device`'s command line says. */
struct nf_device_options {
	const char *flash, *server, *device, *version, *fs_version, *image, *fs_image, *build;
	const char *mac, *pubkey, *credential;
	const char *ota_auth, *mqtt_user, *mqtt_password, *mqtt_base;
	char ota_ip[NF_DEVICE_IP_MAX]; /* "" without --ota */
	uint16_t ota_port;
	long ota_pause_ms, heartbeat_ms;
	char mqtt_host[NF_ANNOUNCE_TOPIC_MAX]; /* "" without --mqtt */
	uint16_t mqtt_port;
	bool path_form, until_current;
	bool url_version; /* --url-version: ESPHome's manifest URL tells the version */
	enum nf_sim_client client; /* --client; NOFUSS_PATH also sets path_form */
	long interval_ms, jitter_ms, timeout_ms, connect_ms;
	long max_checks; /* -1: no limit */
	unsigned long max_boots, power_cut_at;
	struct nf_posix_geometry geometry;
};

/* Reads the command line into o (defaults first, then NOFUSS_POWER_CUT_AT,
 * then the options) and checks the rules between options. Returns 0, 1
 * after --help, -1 on bad usage (said). */
int nf_device_options(struct nf_device_options *o, int argc, char *argv[]);

/* ---- fleet*.c: `nofuss fleet`'s parts, shared among them only:
 * fleet.c (the subcommand: options, setting up), fleet_life.c (a device's
 * boots and checks, the timer heap and queue), fleet_loop.c (epoll under
 * libcurl's multi interface), fleet_report.c (progress and summary). ---- */

#define FLEET_NAMES_MAX 64u /* device names in --device */

/* Exit status (in nf_fleet_exits). */
#define FLEET_EXIT_FAILED 1
#define FLEET_EXIT_SETUP  3

/* Why a device failed: an enum nf_error, or one of these (what the
 * bootloader says about an update). */
#define FLEET_ERR_REVERTED  32 /* the new firmware did not confirm its trial boot */
#define FLEET_ERR_BRICKED   33 /* no slot holds a bootable firmware */
#define FLEET_ERR_BOOT_LOOP 34 /* FLEET_BOOTS_MAX boots without a check */
#define FLEET_ERRORS        35

enum nf_fleet_phase {
	FLEET_PH_BOOT = 0, /* in the heap: boots at due_ms */
	FLEET_PH_SLEEP,    /* in the heap: checks at due_ms */
	FLEET_PH_QUEUED,   /* due: waits for a transfer slot */
	FLEET_PH_ACTIVE,   /* in a check, holding a slot */
	FLEET_PH_DONE,     /* stopped */
};

enum nf_fleet_result {
	FLEET_RES_NONE = 0, /* no check finished since power-on or the last update */
	FLEET_RES_UPTODATE, /* the last check went well and installed nothing */
	FLEET_RES_FAILED,   /* the last check (or update) failed; error says why */
};

/* --source-ips: 127.1.0.1, then one address a device, all on loopback
 * (127.0.0.0/8): 100,000 devices end at 127.2.134.161. */
#define FLEET_SOURCE_IP_BASE 0x7F010001u

struct nf_fleet_options {
	const char *server, *version, *fs_version, *build, *mac_base_text;
	const char *pubkey; /* every device accepts only images this key signed */
	char *names_text; /* a copy of --device; names point into it */
	const char *names[FLEET_NAMES_MAX];
	size_t nnames;
	unsigned long count, concurrency, give_up;
	unsigned long long mac_base;
	bool path_form, until_updated, json, quiet, verbose, duration_set;
	bool url_version; /* --url-version: ESPHome's manifest URL tells the version */
	bool source_ips;  /* --source-ips: device i connects from FLEET_SOURCE_IP_BASE + i */
	enum nf_sim_client client; /* --client; NOFUSS_PATH also sets path_form */
	long interval_ms, jitter_ms, ramp_ms, duration_ms, timeout_ms, reboot_ms;
	long progress_ms, request_ms, connect_ms;
	unsigned long seed;
	bool seeded;
};

struct nf_fleet_device {
	struct nf_client client;
	struct nf_posix port;
	struct nf_posix_memflash flash;
	struct nf_fleet *fleet;
	int64_t due_ms;      /* FLEET_PH_BOOT, FLEET_PH_SLEEP: when */
	uint8_t phase;       /* enum nf_fleet_phase */
	uint8_t result;      /* enum nf_fleet_result */
	uint8_t error;       /* FLEET_RES_FAILED: enum nf_error or FLEET_ERR_* */
	uint8_t streak;      /* failures in a row */
	uint8_t boot_streak; /* boots since the last check */
	bool downloading;    /* this check began an image download */
	bool rebooting;      /* an update is committed: the next boot tells */
	bool updated;        /* installed an update and runs it */
	bool cut;            /* its check was cut by the end of the run */
};

/* A transfer slot: one easy handle, reused by one device after another. */
struct nf_fleet_slot {
	void *easy;                /* CURL * */
	struct nf_fleet_device *d; /* NULL when free */
	struct nf_posix_transfer t;
	struct nf_sim_stock_req stock; /* --client: a stock client's check */
};

struct nf_fleet {
	struct nf_fleet_options o;
	struct nf_fleet_device *dev;
	uint32_t *heap; /* device indices, a min-heap on due_ms */
	size_t heap_len;
	uint32_t *queue; /* a ring of device indices */
	size_t q_head, q_len;
	struct nf_fleet_slot *slots;
	uint32_t *free_slots;
	size_t nfree, active;
	size_t ready; /* devices set up (nf_posix_init done) */
	void *multi;  /* CURLM * */
	int ep;
	int64_t curl_due; /* when libcurl wants its timeout action, -1 never */
	int64_t t0, now, deadline, stop_at, end;
	bool stopping, timed_out, interrupted;
	uint64_t rng;
	char *prefixes; /* --verbose: each device's console prefix */
	struct nf_sign_key *sign_key; /* --pubkey, loaded once, shared by every device */
	/* Counters. */
	unsigned long checks, checks_failed, transfers, boots, reverts, crashes, installs, cut;
	unsigned long long bytes;
	unsigned long check_errors[FLEET_ERRORS];
	/* Progress. */
	FILE *out;
	bool tty, status_shown;
	int64_t next_progress; /* -1: no progress output */
};

/* fleet_life.c */
/* A random 0..max (milliseconds), reproducible with --seed. */
long nf_fleet_rnd_ms(struct nf_fleet *f, long max);
/* --verbose: one line about device d on stderr. */
void nf_fleet_say(struct nf_fleet_device *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The device at the top of the timer heap, taken off it. */
uint32_t nf_fleet_heap_pop(struct nf_fleet *f);
/* Queues d for a transfer slot; nf_fleet_dequeue takes the first queued. */
void nf_fleet_enqueue(struct nf_fleet *f, struct nf_fleet_device *d);
struct nf_fleet_device *nf_fleet_dequeue(struct nf_fleet *f);
/* A power-on of d (the shared start-up), then its next check at check_at;
 * a device that does not come up is done, or boots again later. */
void nf_fleet_boot(struct nf_fleet *f, struct nf_fleet_device *d, int64_t check_at);
/* The check of the device in slot s is over (reboot: it installed an
 * update): frees the slot, records the result, schedules what is next. */
void nf_fleet_check_done(struct nf_fleet *f, struct nf_fleet_slot *s, bool reboot);
/* The same with the check's error given (a stock client's: NF_OK or
 * NF_ERR_TRANSPORT), not taken from the NoFUSS core. */
void nf_fleet_check_end(struct nf_fleet *f, struct nf_fleet_slot *s, bool reboot, int err);
/* Whether d has settled: nothing to install, or --give-up failures. */
bool nf_fleet_settled(const struct nf_fleet *f, const struct nf_fleet_device *d);

/* fleet_loop.c */
/* Makes the epoll set, the multi handle and an easy handle per slot (the
 * slot arrays allocated). 0, or FLEET_EXIT_SETUP after saying why. */
int nf_fleet_loop_open(struct nf_fleet *f);
/* Frees what nf_fleet_loop_open made, also after it failed halfway. */
void nf_fleet_loop_close(struct nf_fleet *f);
/* Runs until every device is done, --timeout or SIGINT/SIGTERM; cuts what
 * is in flight then. Returns 0, or -1 when the loop itself fails (said). */
int nf_fleet_run(struct nf_fleet *f);

/* fleet_report.c */
/* Erases the status line a terminal shows, if any. */
void nf_fleet_clear_status(struct nf_fleet *f);
/* The progress line, when it is due (or force). */
void nf_fleet_progress(struct nf_fleet *f, bool force);
/* The end of a run: the last progress line and the summary (text, or JSON
 * with --json). Returns the exit status. */
int nf_fleet_report(struct nf_fleet *f);

/* ---- device.c, fleet.c: the subcommands ---- */

/* `nofuss device`: a simulated ESP8266; its exit statuses
 * (device_options.c). */
int nf_cmd_device(int argc, char *argv[], char *prog_argv[]);
extern const struct nf_exit nf_device_exits[];
/* `nofuss fleet`: many simulated devices in one process; its exit
 * statuses. */
int nf_cmd_fleet(int argc, char *argv[], char *prog_argv[]);
extern const struct nf_exit nf_fleet_exits[];

#endif /* NOFUSS_TOOLS_SIM_H */
