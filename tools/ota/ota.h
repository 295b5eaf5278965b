/*
 * ota.h - ArduinoOTA, the espota push protocol (docs/PEERS.md section 7),
 * library nofuss_ota: both ends of a push and the `nofuss ota-send` and
 * `nofuss ota-recv` subcommands. The table of contents, grouped by file:
 *
 *   proto.c       the protocol's messages as pure functions (no sockets, no
 *                 clocks): the invitation, the AUTH challenge and answer;
 *                 byte for byte as espota.py and the ESP8266's ArduinoOTA
 *                 library send them, everything read from the network
 *                 validated here first
 *   acks.c        the device's ack stream, read by the host: an estimate
 *                 for progress and the exact account of the bytes acked
 *   send.c        the host's side, as espota.py: `nofuss ota-send`, and
 *                 what `nofuss push` uploads with
 *   recv.c        the device's side, for the simulator: `nofuss ota-recv`,
 *                 and `nofuss device --ota`'s listener
 *   flash_sink.c  a push written through the device port's flash calls
 *   ota.c         the two subcommands
 *
 * Links libcrypto (MD5, random nonces) and nofuss_args; `ota-recv --flash`
 * boots a simulator's flash directory, so the POSIX port too.
 *
 * The wire formats below are fixed by deployed devices and by espota.py: do
 * not change them.
 */
#ifndef NOFUSS_TOOLS_OTA_H
#define NOFUSS_TOOLS_OTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "args.h" /* struct nf_exit */

/* ---- proto.c: the messages ---- */

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
#define NF_OTA_ACK_DIGITS   10u                   /* digits of one ack (uint32) */

/* Timeouts, espota's. */
#define NF_OTA_ANSWER_TIMEOUT_MS  10000L /* each UDP answer */
#define NF_OTA_CONNECT_TIMEOUT_MS 10000L /* the device's connection back */
#define NF_OTA_ACK_TIMEOUT_MS     10000L /* an ack after a chunk */
#define NF_OTA_FINAL_TIMEOUT_MS   60000L /* the final OK / ERROR */

/* The whole push's deadline, ours (espota has none): the waits above that
 * happen once (two answers, the connection back, the final answer), plus
 * one second per NF_OTA_DEADLINE_RATE bytes of image, a rate far below any
 * ESP8266's: 1 MiB gets 346 s, 16 MiB 70 min. */
#define NF_OTA_DEADLINE_BASE_MS                                                                    \
	(2 * NF_OTA_ANSWER_TIMEOUT_MS + NF_OTA_CONNECT_TIMEOUT_MS + NF_OTA_FINAL_TIMEOUT_MS)
#define NF_OTA_DEADLINE_RATE 4096u /* bytes per second */

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
	int command;                  /* NF_OTA_CMD_FIRMWARE or NF_OTA_CMD_FS */
	uint16_t port;                /* the host's TCP port, 1..65535 */
	uint32_t size;                /* the image, 1..NF_OTA_SIZE_MAX */
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
int nf_ota_challenge_parse(const char *buf, size_t len, char nonce[NF_OTA_MD5_HEX + 1], char *err,
                           size_t errcap);
/* Writes the host's answer "200 <cnonce> <response>\n". Returns its length
 * or -1. */
int nf_ota_auth_format(const char *cnonce, const char *response, char *buf, size_t cap);
/* Parses "200 <32 hex> <32 hex>" with an optional "\n". Returns 0, or -1
 * with err. */
int nf_ota_auth_parse(const char *buf, size_t len, char cnonce[NF_OTA_MD5_HEX + 1],
                      char response[NF_OTA_MD5_HEX + 1], char *err, size_t errcap);

/* ---- acks.c: the device's TCP answer stream, read by the host ----
 *
 * After each read the device prints how many bytes it took, in bare
 * decimal with no separator, so acks run together ("14601460..."); then a
 * final answer that starts with a letter: "OK", or "ERROR[n]: text\n".
 * The boundaries between acks are not on the wire. An ack is at least 1,
 * has no leading zero, is at most max_ack, and never acks a byte before the
 * host sent it. Two readings of the digits run side by side:
 *
 * - `acked`, an estimate for progress: a number is taken as complete as
 *   soon as one more digit could not extend it, or a letter follows; until
 *   then it is pending (not counted). A device whose reads split unluckily
 *   ("12" then "1448") can make it low, never higher than what was sent.
 * - the exact account: every way of cutting the digits so far into acks
 *   that obey the rules above and leave the device at most
 *   NF_OTA_ACK_WINDOW bytes behind what was sent. It answers whether EVERY
 *   byte sent is acknowledged in some reading (nf_ota_acks_all), and how
 *   far behind the device is at least (nf_ota_acks_behind). As soon as a
 *   reading acks every byte sent it is taken as the truth (a device acks
 *   each read of what it was sent), and the account starts afresh from
 *   there. When no reading is left, the digits cannot be acks of the
 *   bytes sent: BAD.
 *
 * The outcome is decided by the final answer's first letter, as espota
 * does; a sender that wants every byte acknowledged (send.c) also asks
 * nf_ota_acks_all. Feed the bytes as they arrive, in pieces of any size. */

#define NF_OTA_ACK_WINDOW 8192u /* how far behind the bytes sent the exact account follows */
#define NF_OTA_ACK_WIDTH  4u    /* digits of the largest ack (NF_OTA_ACK_MAX) */
#define NF_OTA_ACK_WORDS  (NF_OTA_ACK_WINDOW / 64u + 1u) /* a set of lags 0..NF_OTA_ACK_WINDOW */

enum nf_ota_acks_state {
	NF_OTA_ACKS_RUNNING = 0, /* acks so far; no final answer yet */
	NF_OTA_ACKS_OK,          /* the final answer starts with 'O' */
	NF_OTA_ACKS_ERROR,       /* the final answer starts with 'E': text holds it */
	NF_OTA_ACKS_BAD,         /* not the protocol: text holds why */
};

struct nf_ota_acks {
	enum nf_ota_acks_state state;
	uint64_t sent;    /* bytes the host said it sent */
	uint64_t acked;   /* bytes acked by complete acks (the estimate) */
	uint32_t max_ack; /* largest single ack */
	uint64_t pending; /* digits of an ack not yet known complete */
	unsigned pending_digits;
	uint64_t digits;    /* ack digits so far */
	uint64_t uncounted; /* digits the estimate could not place */
	bool final_done;    /* the final answer ended with "\n" */
	size_t text_len;
	char text[NF_OTA_TEXT_MAX]; /* the final answer without "\n", or the error */
	/* The exact account: bit d of reading[k] is set when some reading
	 * leaves complete acks totalling sent - d and the last k digits of the
	 * stream pending (k = 0: no digit yet). */
	uint64_t reading[NF_OTA_ACK_WIDTH + 1][NF_OTA_ACK_WORDS];
	uint32_t last; /* the stream's last NF_OTA_ACK_WIDTH digits, as a number */
};

/* Starts a stream; max_ack is the device's largest read (at most
 * NF_OTA_ACK_MAX, which larger values are cut to; 0 means NF_OTA_CHUNK). */
void nf_ota_acks_init(struct nf_ota_acks *a, uint32_t max_ack);
/* The host sent n more bytes. Readings that leave the device more than
 * NF_OTA_ACK_WINDOW bytes behind are dropped; when none is left the stream
 * is BAD. */
void nf_ota_acks_sent(struct nf_ota_acks *a, uint32_t n);
/* Feeds len bytes from the device. Returns the state after them. Bytes
 * after a final answer's "\n" are ignored. More digits than bytes sent, a
 * stream starting with '0', digits no reading can cut into acks of the
 * bytes sent, a first letter other than 'O' or 'E', a control byte or a
 * final answer longer than NF_OTA_TEXT_MAX - 1 make it NF_OTA_ACKS_BAD,
 * which stays. */
enum nf_ota_acks_state nf_ota_acks_feed(struct nf_ota_acks *a, const uint8_t *data, size_t len);
/* The device closed the stream: a pending ack is completed. Returns the
 * state. */
enum nf_ota_acks_state nf_ota_acks_end(struct nf_ota_acks *a);
/* Whether some reading of the digits so far acknowledges every byte sent
 * (a pending ack taken as complete). */
bool nf_ota_acks_all(const struct nf_ota_acks *a);
/* The fewest bytes sent that no reading has acknowledged yet (a pending
 * ack taken as complete): how far behind the device is at least. */
uint64_t nf_ota_acks_behind(const struct nf_ota_acks *a);

/* ---- send.c: the host side of a push, compatible with espota.py: TCP
 * listener first, one UDP invitation, the MD5 challenge when a password is
 * given, the device's connection back, the image in NF_OTA_CHUNK-byte
 * writes paced by the device's acks, and the final OK / ERROR. ---- */

/* The outcome of one push; also `nofuss ota-send`'s exit status. */
enum nf_ota_send_result {
	NF_OTA_SEND_OK = 0,
	NF_OTA_SEND_LOCAL = 1,        /* a local failure: socket, address, file */
	NF_OTA_SEND_NO_ANSWER = 3,    /* no answer to the invitation (or the AUTH answer) */
	NF_OTA_SEND_AUTH_FAILED = 4,  /* the device refused the password, or wants one */
	NF_OTA_SEND_DEVICE_ERROR = 5, /* the device answered "ERR: ..." (e.g. no space) */
	NF_OTA_SEND_NO_CONNECT = 6,   /* the device did not connect back in time */
	NF_OTA_SEND_CUT = 7,          /* the transfer was cut (closed, reset, no ack, deadline) */
	NF_OTA_SEND_FINAL_ERROR = 8,  /* the device answered "ERROR[n]: ..." at the end */
	NF_OTA_SEND_PROTOCOL = 9,     /* not the protocol (e.g. "OK" before every byte was acked) */
};

struct nf_ota_send_opts {
	const char *ip;          /* the device, IPv4 dotted quad */
	uint16_t port;           /* its UDP port (NF_OTA_PORT_ESP8266) */
	const char *password;    /* NULL or "": none */
	int command;             /* NF_OTA_CMD_FIRMWARE or NF_OTA_CMD_FS */
	const char *filename;    /* for the cnonce, as espota: the path as given */
	long answer_timeout_ms;  /* 0: NF_OTA_ANSWER_TIMEOUT_MS */
	long connect_timeout_ms; /* 0: NF_OTA_CONNECT_TIMEOUT_MS */
	long final_timeout_ms;   /* 0: NF_OTA_FINAL_TIMEOUT_MS */
	long deadline_ms;        /* the whole push; 0: nf_ota_send_deadline_ms(len) */
	/* Called after each ack (may be NULL). */
	void (*progress)(void *ctx, uint64_t acked, uint64_t total);
	void *ctx;
};

/* Pushes len bytes (1..NF_OTA_SIZE_MAX) to the device. Success (OK) needs
 * the device's final "OK" after every byte was sent and acknowledged (some
 * reading of its acks, nf_ota_acks_all); an "OK" before is PROTOCOL. Each
 * wait is cut short by the push's deadline, which ends it with the result
 * of the step it was in (CUT during the transfer) and says so in msg.
 * Returns an enum nf_ota_send_result with a one-line explanation in msg
 * (cap bytes), which for DEVICE_ERROR and FINAL_ERROR quotes the device's
 * text. */
int nf_ota_send(const struct nf_ota_send_opts *o, const uint8_t *data, size_t len, char *msg,
                size_t cap);
/* The default deadline of a push of len bytes, in milliseconds:
 * NF_OTA_DEADLINE_BASE_MS plus one second per NF_OTA_DEADLINE_RATE bytes
 * (rounded up). */
long nf_ota_send_deadline_ms(size_t len);
/* A short name of a result ("auth failed"). */
const char *nf_ota_send_strresult(int result);
/* Writes all len bytes to the connected socket fd (no SIGPIPE, retrying
 * when interrupted). Returns 0, or -1 with errno. Both ends use it. */
int nf_ota_send_all(int fd, const void *data, size_t len);

/* ---- recv.c: the device side of a push, for the simulator: listens on a
 * UDP address like an ESP8266 running ArduinoOTA, answers one invitation
 * (with the MD5 challenge when a password is set), connects back to the
 * host, streams the image into a sink the caller provides, acks each read
 * with its byte count, checks the size and MD5 of the whole image and
 * answers OK or ERROR[n]. Blocking while a transfer runs (so is a real
 * ESP8266's ArduinoOTA.handle()). One receiver per thread. ---- */

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
	const char *password; /* NULL or "": no authentication */
	long pause_ms;        /* before "OK" and before closing (NF_OTA_PAUSE_MS_DEFAULT) */
	long timeout_ms;      /* each UDP answer, the connection back, each read */
	uint32_t cut_after;   /* testing: drop the connection after this many bytes; 0 off */
	FILE *log;            /* one line per event; NULL: silent */
};

enum nf_ota_recv_result {
	NF_OTA_RECV_IDLE = 0,         /* nothing (or an ignored datagram) within the timeout */
	NF_OTA_RECV_DONE = 1,         /* an image was received, verified and committed */
	NF_OTA_RECV_FAILED = -1,      /* an update was tried and failed: err says why */
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

/* ---- flash_sink.c: where a push writes on a simulated device: the device
 * port contract's flash calls (nf_port_flash_*, nofuss/port.h), so the
 * image takes the same checks and commit path as an update the device core
 * downloads (on the POSIX port's flash directory: firmware to the spare
 * slot, on trial; filesystem to fs.bin). Shared by `nofuss ota-recv
 * --flash` and `nofuss device --ota`. Also the Updater's own checks that
 * every sink makes (the size limit and a firmware's magic first byte), for
 * the other sinks to reuse. ---- */

/* The Updater's checks: set max_size (0: no limit but the protocol's),
 * the rest is state. */
struct nf_ota_sink_checks {
	uint32_t max_size;
	bool firmware; /* the update in progress is a firmware */
	bool first;    /* no byte written yet */
};

/* At begin: the size limit; remembers the kind. 0 or an enum
 * nf_ota_update_error with err filled. */
int nf_ota_sink_check_begin(struct nf_ota_sink_checks *c, int command, uint32_t size, char *err,
                            size_t errcap);
/* At each write: a firmware's first byte must be 0xE9. */
int nf_ota_sink_check_write(struct nf_ota_sink_checks *c, const uint8_t *data, size_t len,
                            char *err, size_t errcap);

struct nf_ota_flash_sink {
	struct nf_ota_sink_checks checks;
	void *port; /* the device port's handle (a struct nf_posix): booted */
};

/* Fills sink with callbacks writing into port's flash through s (which
 * must outlive the receiver). max_size 0: only the flash's own limits. */
void nf_ota_flash_sink_init(struct nf_ota_flash_sink *s, void *port, uint32_t max_size,
                            struct nf_ota_sink *sink);

/* ---- ota.c: the subcommands ---- */

/* `nofuss ota-send`: one push to a device, as espota.py; its exit
 * statuses (enum nf_ota_send_result). */
int nf_cmd_ota_send(int argc, char *argv[], char *prog_argv[]);
extern const struct nf_exit nf_ota_send_exits[];
/* `nofuss ota-recv`: plays the device for one push, then exits; its exit
 * statuses. */
int nf_cmd_ota_recv(int argc, char *argv[], char *prog_argv[]);
extern const struct nf_exit nf_ota_recv_exits[];

#endif /* NOFUSS_TOOLS_OTA_H */
