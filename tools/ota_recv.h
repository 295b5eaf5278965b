/*
 * ota_recv.h - the device side of an ArduinoOTA push (docs/PEERS.md section
 * 7), for the simulator: listens on a UDP address like an ESP8266 running
 * ArduinoOTA, answers one invitation (with the MD5 challenge when a
 * password is set), connects back to the host, streams the image into a
 * sink the caller provides, acks each read with its byte count, checks the
 * size and MD5 of the whole image and answers OK or ERROR[n].
 *
 * Self-contained: `nofuss ota-recv` drives it today; `nofuss device` can
 * poll it from its main loop. Blocking while a transfer runs (so is a real
 * ESP8266's ArduinoOTA.handle()). One receiver per thread.
 */
#ifndef NOFUSS_TOOLS_OTA_RECV_H
#define NOFUSS_TOOLS_OTA_RECV_H

#include <stdint.h>
#include <stdio.h>

#include "ota_proto.h"

#define NF_OTA_PAUSE_MS_DEFAULT 1000L /* before "OK" and before closing */

/* Where the image goes. Each returns 0, or an enum nf_ota_update_error
 * (> 0) with a message in err (errcap bytes); the receiver then answers
 * "ERROR[n]: text" and calls abort. begin is given the command
 * (NF_OTA_CMD_FIRMWARE or NF_OTA_CMD_FS), the size and the announced MD5 in
 * hex; finish is called only after the whole image arrived and its MD5
 * matched, and must commit it. abort forgets what was written (after a
 * failed begin it is not called). */
struct nf_ota_sink {
	void *ctx;
	int (*begin)(void *ctx, int command, uint32_t size, const char *md5, char *err,
	             size_t errcap);
	int (*write)(void *ctx, const uint8_t *data, size_t len, char *err, size_t errcap);
	int (*finish)(void *ctx, char *err, size_t errcap);
	void (*abort)(void *ctx);
};

struct nf_ota_recv_config {
	const char *password;  /* NULL or "": no authentication */
	long pause_ms;         /* before "OK" and before closing (NF_OTA_PAUSE_MS_DEFAULT) */
	long timeout_ms;       /* each UDP answer, the connection back, each read */
	uint32_t cut_after;    /* testing: drop the connection after this many bytes; 0 off */
	FILE *log;             /* one line per event; NULL: silent */
};

enum nf_ota_recv_result {
	NF_OTA_RECV_IDLE = 0,    /* nothing (or an ignored datagram) within the timeout */
	NF_OTA_RECV_DONE = 1,    /* an image was received, verified and committed */
	NF_OTA_RECV_FAILED = -1, /* an update was tried and failed: err says why */
	NF_OTA_RECV_AUTH_FAILED = -2, /* a host gave a wrong password */
};

struct nf_ota_recv {
	int udp; /* -1 when closed */
	struct nf_ota_recv_config cfg;
	struct nf_ota_sink sink;
	/* The last update, after DONE or FAILED. */
	struct nf_ota_invite invite;
	uint32_t received;
	char err[NF_OTA_ERR_MAX];
};

/* Binds UDP on ip:port (IPv4 dotted quad) for the receiver r. cfg and sink
 * are copied (the password string must outlive r). Returns 0, or -1 with
 * the reason in err; call nf_ota_recv_close() either way. */
int nf_ota_recv_open(struct nf_ota_recv *r, const char *ip, uint16_t port,
                     const struct nf_ota_recv_config *cfg, const struct nf_ota_sink *sink,
                     char *err, size_t errcap);
/* The port bound (useful after port 0). */
uint16_t nf_ota_recv_port(const struct nf_ota_recv *r);
/* Waits up to timeout_ms (-1: forever) for an invitation and, when one
 * comes, runs the whole update before returning. Returns an enum
 * nf_ota_recv_result; r->err explains FAILED and AUTH_FAILED. */
int nf_ota_recv_poll(struct nf_ota_recv *r, int timeout_ms);
/* Closes the socket. Safe on a closed or failed-to-open r, and twice. */
void nf_ota_recv_close(struct nf_ota_recv *r);

#endif
