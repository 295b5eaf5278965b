/*
 * push.h - `nofuss push`, library nofuss_push: deploying PlatformIO builds
 * over the air to devices found through MQTT (docs/PEERS.md sections 7 and
 * 8). The table of contents, grouped by file:
 *
 *   config.c  platformio.ini: each environment's topic, OTA password and
 *             port, and built images (inih)
 *   mqtt.c    the device's retained IP address, the broker address, the IP
 *             check, and the watch that proves a device came back
 *             (libmosquitto)
 *   push.c    the subcommand: options, resolving every environment first
 *   run.c     the pushes, up to --jobs at a time, their progress and proof,
 *             and the summary
 *
 * Links inih, libmosquitto, nofuss_ota (the upload) and the POSIX port
 * (the version an image carries). The topics it reads are the device's
 * announcements (topics.h).
 */
#ifndef NOFUSS_TOOLS_PUSH_H
#define NOFUSS_TOOLS_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ota.h" /* NF_OTA_*_MAX */

/* ---- config.c: what `nofuss push` needs from a PlatformIO project file
 * (platformio.ini): one struct per [env:NAME] section with the device's MQTT
 * topic (`topic` or `custom_topic`), the ArduinoOTA password and port taken
 * from `upload_flags` (--auth=PASS, --port N), and where PlatformIO leaves
 * the built images (.pio/build/NAME/firmware.bin, littlefs.bin, spiffs.bin).
 *
 * The reader follows PlatformIO's own (Python configparser) rules where they
 * matter: full-line comments start with ';' or '#', inline comments start
 * with ';' or '#' preceded by whitespace (so "a#b" keeps its '#'), keys are
 * case-insensitive, indented lines continue the previous value, and the
 * plain [env] section gives every environment its defaults. It does no I/O
 * besides reading the file, and prints nothing: errors land in
 * nf_push_config.error as "FILE:LINE: message". ---- */

#define NF_PUSH_MAX_FILE    (1024u * 1024u) /* largest platformio.ini read */
#define NF_PUSH_MAX_ENVS    256u            /* [env:...] sections in one file */
#define NF_PUSH_MAX_NAME    128u            /* environment name, NUL included */
#define NF_PUSH_MAX_TOPIC   256u            /* MQTT topic, NUL included */
#define NF_PUSH_MAX_AUTH    128u            /* OTA password, NUL included */
#define NF_PUSH_MAX_PATH    1024u           /* image path, NUL included */
#define NF_PUSH_MAX_PROBLEM 320u            /* one message, NUL included */

#define NF_PUSH_PORT_ESP8266 8266u /* ArduinoOTA's default port on an ESP8266 */
#define NF_PUSH_PORT_ESP32   3232u /* ... and on an ESP32 */

/* One [env:NAME] section, [env] defaults applied. */
struct nf_push_env {
	char name[NF_PUSH_MAX_NAME];
	char topic[NF_PUSH_MAX_TOPIC]; /* "" when the section has none */
	char auth[NF_PUSH_MAX_AUTH];   /* valid when has_auth */
	bool has_auth;
	unsigned port;                   /* --port, else the platform's default */
	bool port_given;                 /* port came from upload_flags */
	char firmware[NF_PUSH_MAX_PATH]; /* BUILD/NAME/firmware.bin */
	char littlefs[NF_PUSH_MAX_PATH]; /* BUILD/NAME/littlefs.bin */
	char spiffs[NF_PUSH_MAX_PATH];   /* BUILD/NAME/spiffs.bin */
	/* board_build.filesystem: "littlefs", "spiffs" or "" (not set) */
	char filesystem[16];
	/* Set when this section is unusable (bad upload_flags, topic given
	 * twice, ...): "FILE:LINE: message". Other sections stay usable. */
	char problem[NF_PUSH_MAX_PROBLEM];
	unsigned line; /* the line of its [env:NAME] header */
};

struct nf_push_config {
	size_t count;
	struct nf_push_env env[NF_PUSH_MAX_ENVS];
	char error[NF_PUSH_MAX_PROBLEM]; /* why parsing failed */
};

/* Parses len bytes of platformio.ini text. origin names the text in
 * messages (the file's path); project_dir is the folder the default build
 * paths are relative to ("" for the current one). Returns 0, or -1 with
 * cfg->error set (a syntax error, too many sections, an unreadable [env:]
 * header). cfg is large: allocate it, don't put it on the stack. */
int nf_push_config_parse_string(const char *text, size_t len, const char *origin,
                                const char *project_dir, struct nf_push_config *cfg);

/* Reads and parses the file path (at most NF_PUSH_MAX_FILE bytes); the
 * build paths are relative to the file's folder. Returns 0, or -1 with
 * cfg->error set. */
int nf_push_config_read(const char *path, struct nf_push_config *cfg);

/* The environment called name, or NULL. */
const struct nf_push_env *nf_push_config_find(const struct nf_push_config *cfg, const char *name);

/* ---- mqtt.c: how `nofuss push` finds a device: the device announces its
 * IP address as a RETAINED message on its topic (docs/PEERS.md section 8),
 * so subscribing gets it back at once from the broker. Unlike
 * mosquitto_sub, which the original script used and which waits forever
 * when nothing is retained, this gives up after a timeout. Also the IP
 * validation. ---- */

#define NF_PUSH_MAX_HOST    256u /* broker host name, NUL included */
#define NF_PUSH_MAX_PAYLOAD 64u  /* retained value kept, NUL included */
#define NF_PUSH_MAX_ERRMSG  320u /* one message, NUL included */
#define NF_PUSH_MQTT_PORT   1883 /* the broker's default port */
#define NF_PUSH_MQTTS_PORT  8883 /* ... with TLS (--cafile) */

struct nf_push_broker {
	char host[NF_PUSH_MAX_HOST];
	int port;
	const char *user;     /* NULL: anonymous */
	const char *password; /* NULL: none */
	const char *cafile;   /* NULL: plain TCP; else TLS checked against it */
	long timeout_ms;      /* the whole read: connect, subscribe, wait */
};

/* Results of nf_push_mqtt_retained(). */
#define NF_PUSH_MQTT_OK     0  /* a retained value arrived */
#define NF_PUSH_MQTT_NONE   1  /* nothing retained within the timeout */
#define NF_PUSH_MQTT_FAILED -1 /* no connection, refused, TLS, ... */

/* Parses "host", "host:port" or "[v6addr]:port" into b->host and b->port
 * (default_port when none). Returns 0, or -1 for a malformed address. */
int nf_push_broker_parse(const char *text, int default_port, struct nf_push_broker *b);

/* Reads the retained value of topic: the payload (at most
 * NF_PUSH_MAX_PAYLOAD - 1 bytes; *truncated tells when it was longer) goes
 * to value, NUL-terminated, its length to *len (a NUL inside it stays, and
 * len counts past it). Non-retained messages published meanwhile are
 * ignored. Returns NF_PUSH_MQTT_OK, NF_PUSH_MQTT_NONE, or
 * NF_PUSH_MQTT_FAILED with why in err. Call mosquitto_lib_init() first.
 * Only the broker's name lookup is not bounded by the timeout. */
int nf_push_mqtt_retained(const struct nf_push_broker *b, const char *topic,
                          char value[NF_PUSH_MAX_PAYLOAD], size_t *len, bool *truncated, char *err,
                          size_t err_len);

/* True when the len bytes at ip (ip[len] must be the NUL after them) are
 * an address a push can go to: an IPv4 dotted quad (four decimal octets
 * 0-255, no leading zeros, nothing else: "010.1.1.1", "256.0.0.1", "1.2.3",
 * " 1.2.3.4" and a NUL inside are not) of one host, so not in 0.0.0.0/8,
 * not multicast (224.0.0.0/4), not reserved or broadcast (240.0.0.0/4,
 * 255.255.255.255 among them). IPv6 addresses are refused too: ArduinoOTA
 * and espota speak IPv4 only. Otherwise false, and *why (when why is not
 * NULL) says what the value is, to follow "is" in a message. */
bool nf_push_usable_ip(const char *ip, size_t len, const char **why);

/* ---- Watching a device come back after a push (docs/PEERS.md section 8) ----
 *
 * A watch subscribes to <base>/version, <base>/fsversion, <base>/heartbeat
 * and <base>/status on its own client, driven by libmosquitto's own thread,
 * so that every message gets the time it arrived. The values the broker
 * replays at subscribe time (retain flag set on delivery) are the device's
 * state BEFORE the push; messages published while subscribed arrive with
 * the retain flag clear, even when the device published them retained:
 * those are fresh announcements. */
struct nf_push_watch;

/* What a watch saw. Times are nf_clock_ms() milliseconds; 0: never. */
struct nf_push_seen {
	char old_version[NF_PUSH_MAX_PAYLOAD];   /* retained replay, "" when none */
	char old_fsversion[NF_PUSH_MAX_PAYLOAD]; /* retained replay, "" when none */
	char version[NF_PUSH_MAX_PAYLOAD];       /* the last fresh one */
	uint64_t version_ms;
	char fsversion[NF_PUSH_MAX_PAYLOAD]; /* the last fresh one */
	uint64_t fsversion_ms;
	uint64_t alive_ms; /* the last fresh heartbeat, or status "1" */
};

/* Connects, subscribes, and waits (within b->timeout_ms) for the broker's
 * acknowledgement plus a short moment for the retained replay. base is the
 * device's topic without its last segment. Returns a watch, or NULL with
 * why in err. Call mosquitto_lib_init() first. */
struct nf_push_watch *nf_push_watch_open(const struct nf_push_broker *b, const char *base,
                                         char *err, size_t err_len);
/* A copy of what was seen so far (thread-safe). */
void nf_push_watch_get(struct nf_push_watch *w, struct nf_push_seen *seen);
/* Disconnects and frees w (NULL is fine). */
void nf_push_watch_close(struct nf_push_watch *w);

/* ---- push.c, run.c: the subcommand's parts ---- */

#define NF_PUSH_MAX_JOBS 64 /* pushes at a time (--jobs) */
#define NF_PUSH_MAX_RESULT                                                                         \
	(NF_OTA_ERR_MAX + NF_OTA_TEXT_MAX + NF_PUSH_MAX_TOPIC + NF_PUSH_MAX_ERRMSG + 128u)

/* `nofuss push`'s exit status (nf_push_exits; bad usage is NF_EXIT_USAGE,
 * 2, as for every subcommand). */
#define PUSH_EXIT_ENV    1
#define PUSH_EXIT_NO_IP  3
#define PUSH_EXIT_UPLOAD 4
#define PUSH_EXIT_IMAGE  5
#define PUSH_EXIT_PROOF  6

/* What `nofuss push`'s command line says (push.c). */
struct nf_push_options {
	const char *config, *file, *fs_path, *cafile, *expect, *broker_text;
	bool fs, all, dry_run;
	long timeout_ms, wait_ms;
	unsigned long jobs;
	struct nf_push_broker broker;
};

/* One resolved environment: everything the upload needs. */
struct nf_push_job {
	const struct nf_push_env *env;
	char ip[NF_PUSH_MAX_PAYLOAD];
	const char *image; /* points into env or at an option */
	long long size;
	bool fs; /* filesystem image (espota -s, command 100) */
	/* the push */
	uint8_t *data;
	size_t len;
	char expected[NF_PUSH_MAX_PAYLOAD]; /* "" when unknown: must change */
	char old[NF_PUSH_MAX_PAYLOAD], now[NF_PUSH_MAX_PAYLOAD];
	int rc;
	long elapsed_ms;
	char result[NF_PUSH_MAX_RESULT];
	int last_pct; /* progress shown last */
	size_t index;
};

/* Pushes every job (resolved, their images found), o->jobs at a time:
 * reads the images, uploads, waits for each device's proof, prints the
 * summary. Returns 0, or the first failed job's status. */
int nf_push_run(const struct nf_push_options *o, struct nf_push_job *jobs, size_t njobs);

/* `nofuss push ENV...`: upload, then prove the device came back (push.c);
 * its exit statuses. */
int nf_cmd_push(int argc, char *argv[], char *prog_argv[]);
extern const struct nf_exit nf_push_exits[];

#endif /* NOFUSS_TOOLS_PUSH_H */
