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

#endif
