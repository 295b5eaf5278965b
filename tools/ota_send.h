/*
 * ota_send.h - the host side of an ArduinoOTA push, compatible with
 * espota.py (docs/PEERS.md section 7): TCP listener first, one UDP
 * invitation, the MD5 challenge when a password is given, the device's
 * connection back, the image in NF_OTA_CHUNK-byte writes paced by the
 * device's acks, and the final OK / ERROR. The building block of
 * `nofuss ota-send` and, next, `nofuss push`.
 */
#ifndef NOFUSS_TOOLS_OTA_SEND_H
#define NOFUSS_TOOLS_OTA_SEND_H

#include <stddef.h>
#include <stdint.h>

#include "ota_proto.h"

/* The outcome of one push; also `nofuss ota-send`'s exit status. */
enum nf_ota_send_result {
	NF_OTA_SEND_OK = 0,
	NF_OTA_SEND_LOCAL = 1,        /* a local failure: socket, address, file */
	NF_OTA_SEND_NO_ANSWER = 3,    /* no answer to the invitation (or the AUTH answer) */
	NF_OTA_SEND_AUTH_FAILED = 4,  /* the device refused the password, or wants one */
	NF_OTA_SEND_DEVICE_ERROR = 5, /* the device answered "ERR: ..." (e.g. no space) */
	NF_OTA_SEND_NO_CONNECT = 6,   /* the device did not connect back in time */
	NF_OTA_SEND_CUT = 7,          /* the transfer was cut (closed, reset, no ack) */
	NF_OTA_SEND_FINAL_ERROR = 8,  /* the device answered "ERROR[n]: ..." at the end */
	NF_OTA_SEND_PROTOCOL = 9,     /* the device's answers are not the protocol */
};

struct nf_ota_send_opts {
	const char *ip;        /* the device, IPv4 dotted quad */
	uint16_t port;         /* its UDP port (NF_OTA_PORT_ESP8266) */
	const char *password;  /* NULL or "": none */
	int command;           /* NF_OTA_CMD_FIRMWARE or NF_OTA_CMD_FS */
	const char *filename;  /* for the cnonce, as espota: the path as given */
	long answer_timeout_ms;  /* 0: NF_OTA_ANSWER_TIMEOUT_MS */
	long connect_timeout_ms; /* 0: NF_OTA_CONNECT_TIMEOUT_MS */
	long final_timeout_ms;   /* 0: NF_OTA_FINAL_TIMEOUT_MS */
	/* Called after each ack (may be NULL). */
	void (*progress)(void *ctx, uint64_t acked, uint64_t total);
	void *ctx;
};

/* Pushes len bytes (1..NF_OTA_SIZE_MAX) to the device. Returns an enum
 * nf_ota_send_result with a one-line explanation in msg (cap bytes),
 * which for DEVICE_ERROR and FINAL_ERROR quotes the device's text. */
int nf_ota_send(const struct nf_ota_send_opts *o, const uint8_t *data, size_t len, char *msg,
                size_t cap);
/* A short name of a result ("auth failed"). */
const char *nf_ota_send_strresult(int result);

#endif
