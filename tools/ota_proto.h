/*
 * ota_proto.h - the ArduinoOTA / espota push protocol (PROTOCOLS.md section
 * 7) as pure functions: no sockets, no clocks. The invitation datagram, the
 * AUTH challenge and its answer, and the device's stream of acks and final
 * answer, each formatted and parsed here, byte for byte as espota.py and the
 * ESP8266's ArduinoOTA library send them. ota_send.c (the host) and
 * ota_recv.c (the simulated device) put these on the wire; everything read
 * from the network is validated here first.
 *
 * The wire formats below are fixed by deployed devices and by espota.py: do
 * not change them.
 */
#ifndef NOFUSS_TOOLS_OTA_PROTO_H
#define NOFUSS_TOOLS_OTA_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ports and commands: on the wire, do not change. */
#define NF_OTA_PORT_ESP8266 8266u
#define NF_OTA_PORT_ESP32   3232u
#define NF_OTA_CMD_FIRMWARE 0
#define NF_OTA_CMD_FS       100
#define NF_OTA_CMD_AUTH     200
#define NF_OTA_CHUNK        1460u /* the host's TCP writes; our device's reads */
#define NF_OTA_ACK_MAX      4096u /* largest single ack: an ESP Updater's buffer (a flash sector) */

/* Limits. */
#define NF_OTA_MD5_HEX      32u  /* an MD5, nonce or cnonce in hex, without the NUL */
#define NF_OTA_DATAGRAM_MAX 256u /* the longest datagram either side accepts */
#define NF_OTA_TEXT_MAX     128u /* the device's final answer or ERR text, with the NUL */
#define NF_OTA_ERR_MAX      192u /* an error message of ours, with the NUL */
#define NF_OTA_SIZE_MAX     (16u * 1024u * 1024u) /* largest image: the largest ESP flash */
#define NF_OTA_ACK_DIGITS   10u  /* digits of one ack (uint32) */

/* Timeouts, espota's. */
#define NF_OTA_ANSWER_TIMEOUT_MS  10000L /* each UDP answer */
#define NF_OTA_CONNECT_TIMEOUT_MS 10000L /* the device's connection back */
#define NF_OTA_ACK_TIMEOUT_MS     10000L /* an ack after a chunk */
#define NF_OTA_FINAL_TIMEOUT_MS   60000L /* the final OK / ERROR */

/* The device's answers on UDP: do not change. */
#define NF_OTA_ANSWER_OK       "OK"
#define NF_OTA_ANSWER_AUTH     "AUTH "
#define NF_OTA_ANSWER_ERR      "ERR: "
#define NF_OTA_ANSWER_AUTH_BAD "Authentication Failed"

/* The Updater's error numbers the device prints as "ERROR[n]: text"
 * (ESP8266 core, Updater.h). */
enum nf_ota_update_error {
	NF_OTA_UPDATE_OK = 0,
	NF_OTA_UPDATE_WRITE = 1,
	NF_OTA_UPDATE_ERASE = 2,
	NF_OTA_UPDATE_READ = 3,
	NF_OTA_UPDATE_SPACE = 4,
	NF_OTA_UPDATE_SIZE = 5,
	NF_OTA_UPDATE_STREAM = 6,
	NF_OTA_UPDATE_MD5 = 7,
	NF_OTA_UPDATE_MAGIC = 10,
};

/* The Updater's text for an error number ("Not Enough Space", ...). */
const char *nf_ota_update_strerror(int code);
/* Writes "ERROR[n]: text\n" into buf (cap bytes); returns its length, or -1
 * when it does not fit. */
int nf_ota_format_error(int code, char *buf, size_t cap);

/* The invitation: "<command> <host_tcp_port> <size> <md5hex>\n". */
struct nf_ota_invite {
	int command;   /* NF_OTA_CMD_FIRMWARE or NF_OTA_CMD_FS */
	uint16_t port; /* the host's TCP port, 1..65535 */
	uint32_t size; /* the image, 1..NF_OTA_SIZE_MAX */
	char md5[NF_OTA_MD5_HEX + 1]; /* lower-case hex */
};

/* Writes the invitation into buf (cap bytes, NUL-terminated). Returns its
 * length, or -1 when a field is out of range or it does not fit. */
int nf_ota_invite_format(const struct nf_ota_invite *inv, char *buf, size_t cap);
/* Parses a datagram of len bytes (no NUL needed) as an invitation: decimal
 * fields separated by one space, the MD5 exactly 32 hex characters (stored
 * lower-case), an optional final "\n". Returns 0, or -1 with the reason in
 * err (a device ignores such a datagram). */
int nf_ota_invite_parse(const char *buf, size_t len, struct nf_ota_invite *inv, char *err,
                        size_t errcap);

/* The lower-case hex MD5 of len bytes (OpenSSL EVP). Returns 0 or -1. */
int nf_ota_md5_hex(const void *data, size_t len, char out[NF_OTA_MD5_HEX + 1]);
/* The answer to a challenge: md5hex(md5hex(password) ":" nonce ":" cnonce).
 * Returns 0 or -1. */
int nf_ota_auth_response(const char *password, const char *nonce, const char *cnonce,
                         char out[NF_OTA_MD5_HEX + 1]);
/* espota's cnonce: md5hex(filename + decimal size + filemd5 + device_ip). */
int nf_ota_cnonce(const char *filename, uint32_t size, const char *filemd5, const char *device_ip,
                  char out[NF_OTA_MD5_HEX + 1]);
/* Parses the device's challenge "AUTH <32 hex>" (a trailing "\n" is
 * tolerated). Returns 0 with the nonce, or -1 with err. */
int nf_ota_challenge_parse(const char *buf, size_t len, char nonce[NF_OTA_MD5_HEX + 1],
                           char *err, size_t errcap);
/* Writes the host's answer "200 <cnonce> <response>\n". Returns its length
 * or -1. */
int nf_ota_auth_format(const char *cnonce, const char *response, char *buf, size_t cap);
/* Parses "200 <32 hex> <32 hex>" with an optional "\n". Returns 0, or -1
 * with err. */
int nf_ota_auth_parse(const char *buf, size_t len, char cnonce[NF_OTA_MD5_HEX + 1],
                      char response[NF_OTA_MD5_HEX + 1], char *err, size_t errcap);

/* ---- the device's TCP answer stream, read by the host ----
 *
 * After each read the device prints how many bytes it took, in bare
 * decimal with no separator, so acks run together ("14601460..."); then a
 * final answer that starts with a letter: "OK", or "ERROR[n]: text\n".
 * The boundaries between acks are not on the wire, so the byte count acked
 * is an estimate, for progress only: an ack is at least 1, has no leading
 * zero, and is at most min(max_ack, bytes sent and not yet acked); a number
 * is taken as complete as soon as one more digit could not extend it, or a
 * letter follows; until then it is pending (not counted). A device whose
 * reads split unluckily ("12" then "1448") can make the estimate low, never
 * higher than what was sent. The outcome is decided by the final answer's
 * first letter alone, as espota does. Feed the bytes as they arrive, in
 * pieces of any size. */

enum nf_ota_acks_state {
	NF_OTA_ACKS_RUNNING = 0, /* acks so far; no final answer yet */
	NF_OTA_ACKS_OK,          /* the final answer starts with 'O' */
	NF_OTA_ACKS_ERROR,       /* the final answer starts with 'E': text holds it */
	NF_OTA_ACKS_BAD,         /* not the protocol: text holds why */
};

struct nf_ota_acks {
	enum nf_ota_acks_state state;
	uint64_t sent;    /* bytes the host said it sent */
	uint64_t acked;   /* bytes acked by complete acks */
	uint32_t max_ack; /* largest single ack */
	uint64_t pending; /* digits of an ack not yet known complete */
	unsigned pending_digits;
	uint64_t digits;    /* ack digits so far */
	uint64_t uncounted; /* digits the estimate could not place */
	bool final_done;  /* the final answer ended with "\n" */
	size_t text_len;
	char text[NF_OTA_TEXT_MAX]; /* the final answer without "\n", or the error */
};

/* Starts a stream; max_ack is the device's largest read (NF_OTA_ACK_MAX;
 * 0 means NF_OTA_CHUNK). */
void nf_ota_acks_init(struct nf_ota_acks *a, uint32_t max_ack);
/* The host sent n more bytes. */
void nf_ota_acks_sent(struct nf_ota_acks *a, uint32_t n);
/* Feeds len bytes from the device. Returns the state after them. Bytes
 * after a final answer's "\n" are ignored. More digits than bytes sent, a
 * stream starting with '0', a first letter other than 'O' or 'E', a control
 * byte or a final answer longer than NF_OTA_TEXT_MAX - 1 make it
 * NF_OTA_ACKS_BAD, which stays. */
enum nf_ota_acks_state nf_ota_acks_feed(struct nf_ota_acks *a, const uint8_t *data, size_t len);
/* The device closed the stream: a pending ack is completed. Returns the
 * state. */
enum nf_ota_acks_state nf_ota_acks_end(struct nf_ota_acks *a);

#endif
