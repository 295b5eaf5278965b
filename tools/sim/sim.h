/*
 * sim.h - the device simulators, library nofuss_sim: `nofuss device`, one
 * simulated ESP8266 on a flash directory, and `nofuss fleet`, thousands on
 * memory flashes in one process; both run the real device core on the
 * POSIX port. The table of contents, grouped by file:
 *
 *   announce.c  a device's MQTT announcements (espurna-style)
 *   device.c    `nofuss device`
 *   fleet.c     `nofuss fleet`
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

/* ---- announce.c: `nofuss device --mqtt`: what an espurna-style firmware
 * publishes about itself on an MQTT broker, so that `nofuss push` (and any
 * dashboard) can find it. On every connect (so on every boot), retained,
 * QoS 0: BASE/ip, BASE/version, BASE/fsversion and BASE/status = 1 (with
 * a last will BASE/status = 0, retained); BASE/heartbeat = 1 then and
 * every heartbeat interval.
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

/* ---- device.c, fleet.c: the subcommands ---- */

/* `nofuss device`: a simulated ESP8266. */
int nf_cmd_device(int argc, char *argv[], char *prog_argv[]);
/* `nofuss fleet`: many simulated devices in one process. */
int nf_cmd_fleet(int argc, char *argv[], char *prog_argv[]);

#endif /* NOFUSS_TOOLS_SIM_H */
