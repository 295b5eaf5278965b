/*
 * push_mqtt.h - how `nofuss push` finds a device: the device announces its
 * IP address as a RETAINED message on its topic (PROTOCOLS.md section 8), so
 * subscribing gets it back at once from the broker. Unlike mosquitto_sub,
 * which the original script used and which waits forever when nothing is
 * retained, this gives up after a timeout. Also the IP validation.
 */
#ifndef NOFUSS_TOOLS_PUSH_MQTT_H
#define NOFUSS_TOOLS_PUSH_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
 * NF_PUSH_MAX_PAYLOAD - 1 bytes; *truncated tells when it was longer; a
 * NUL inside it ends it) goes to value. Non-retained messages published
 * meanwhile are ignored. Returns NF_PUSH_MQTT_OK, NF_PUSH_MQTT_NONE, or
 * NF_PUSH_MQTT_FAILED with why in err. Call mosquitto_lib_init() first.
 * Only the broker's name lookup is not bounded by the timeout. */
int nf_push_mqtt_retained(const struct nf_push_broker *b, const char *topic,
                          char value[NF_PUSH_MAX_PAYLOAD], bool *truncated, char *err,
                          size_t err_len);

/* True when ip is an IPv4 dotted quad (four decimal octets 0-255, no
 * leading zeros, nothing else: "010.1.1.1", "256.0.0.1", "1.2.3" and
 * " 1.2.3.4" are not) or an IPv6 address inet_pton(AF_INET6) accepts. */
bool nf_push_valid_ip(const char *ip);

/* ---- Watching a device come back after a push (PROTOCOLS.md section 8) ----
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

#endif
