/*
 * send.c - the host side of an ArduinoOTA push (see ota.h), in the
 * order espota.py does it: a TCP listener on an ephemeral port of the
 * address that reaches the device, the invitation from the UDP socket the
 * answer is read on, the challenge when the device sends one, the device's
 * connection back, then NF_OTA_CHUNK-byte writes each followed by a wait
 * for its ack, and the final answer decided by its first letter. Stricter
 * than espota where espota trusts the device: "OK" counts only after every
 * byte was sent and acknowledged (the exact account of acks.c), the next
 * chunk goes only when the device acknowledged every byte before it, and
 * the whole push has a deadline scaled to the image's size.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "ota.h"

static int result(int code, char *msg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int result(int code, char *msg, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, cap, fmt, ap);
	va_end(ap);
	return code;
}

const char *nf_ota_send_strresult(int r)
{
	switch (r) {
	case NF_OTA_SEND_OK: return "ok";
	case NF_OTA_SEND_LOCAL: return "local error";
	case NF_OTA_SEND_NO_ANSWER: return "no answer";
	case NF_OTA_SEND_AUTH_FAILED: return "authentication failed";
	case NF_OTA_SEND_DEVICE_ERROR: return "device refused the image";
	case NF_OTA_SEND_NO_CONNECT: return "device did not connect back";
	case NF_OTA_SEND_CUT: return "transfer cut";
	case NF_OTA_SEND_FINAL_ERROR: return "device reported an error";
	case NF_OTA_SEND_PROTOCOL: return "protocol error";
	default: return "unknown";
	}
}

/* Waits until fd is readable within ms. Returns 1, 0 on timeout, -1. */
static int wait_readable(int fd, long ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	uint64_t deadline = nf_clock_ms() + (uint64_t)(ms > 0 ? ms : 0);
	int rc;

	for (;;) {
		uint64_t now = nf_clock_ms();
		rc = poll(&pfd, 1, now < deadline ? (int)(deadline - now) : 0);
		if (rc >= 0 || errno != EINTR)
			return rc;
	}
}

#define UDP_EMPTY (-2) /* udp_answer: an empty datagram (or a lone "\n") */

/* One UDP answer as a NUL-terminated text without a final "\n". Returns
 * its length, 0 on timeout, -1 on error (errno), or UDP_EMPTY. */
static ssize_t udp_answer(int fd, char *buf, size_t cap, long ms)
{
	ssize_t n;
	int rc = wait_readable(fd, ms);

	if (rc <= 0)
		return rc;
	n = recv(fd, buf, cap - 1, 0);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return n == 0 ? UDP_EMPTY : n;
}

/* Why there was no usable answer (udp_answer returned got <= 0). */
static const char *no_answer_why(ssize_t got)
{
	if (got == 0)
		return "none in time";
	if (got == UDP_EMPTY)
		return "an empty datagram";
	return strerror(errno);
}

int nf_ota_send_all(int fd, const void *data, size_t len)
{
	const uint8_t *bytes = data;
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, bytes + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/* Reads what the device sent into the ack parser, waiting up to ms.
 * Returns 1 when bytes came, 0 on end of stream, -1 on timeout or error. */
static int read_acks(int fd, struct nf_ota_acks *a, long ms)
{
	uint8_t buf[NF_OTA_TEXT_MAX];
	ssize_t n;

	if (wait_readable(fd, ms) <= 0)
		return -1;
	n = recv(fd, buf, sizeof buf, 0);
	if (n < 0)
		return -1;
	if (n == 0) {
		nf_ota_acks_end(a);
		return 0;
	}
	nf_ota_acks_feed(a, buf, (size_t)n);
	return 1;
}

/* One push in progress. Each step below returns NF_OTA_SEND_OK to go on,
 * or the push's result with msg set. */
struct push {
	const struct nf_ota_send_opts *o;
	const uint8_t *data;
	size_t len;
	char *msg;
	size_t cap;
	struct sockaddr_in dev;
	struct nf_ota_invite inv;
	int udp, lsn, tcp;
	char line[NF_OTA_DATAGRAM_MAX + 1]; /* the last datagram, either way */
	ssize_t got;                        /* the length of the device's last answer */
	struct nf_ota_acks acks;
	uint64_t reported; /* bytes acked as last reported to o->progress */
	uint64_t deadline; /* nf_clock_ms() when the whole push must be over */
};

long nf_ota_send_deadline_ms(size_t len)
{
	return NF_OTA_DEADLINE_BASE_MS +
	       (long)((len + NF_OTA_DEADLINE_RATE - 1) / NF_OTA_DEADLINE_RATE) * 1000L;
}

/* A step's wait: ms, or what is left before the deadline when that is less. */
static long step_ms(const struct push *p, long ms)
{
	uint64_t now = nf_clock_ms();

	if (now >= p->deadline)
		return 0;
	return p->deadline - now < (uint64_t)ms ? (long)(p->deadline - now) : ms;
}

/* The image's MD5, the UDP socket connected to the device (its source
 * address is the one that reaches the device) and the TCP listener bound
 * to that address. */
static int open_sockets(struct push *p)
{
	struct sockaddr_in local;
	socklen_t slen = sizeof local;

	p->dev.sin_family = AF_INET;
	p->dev.sin_port = htons(p->o->port);
	if (inet_pton(AF_INET, p->o->ip, &p->dev.sin_addr) != 1)
		return result(NF_OTA_SEND_LOCAL, p->msg, p->cap, "%s: not an IPv4 address",
		              p->o->ip);
	if (p->len == 0 || p->len > NF_OTA_SIZE_MAX)
		return result(NF_OTA_SEND_LOCAL, p->msg, p->cap,
		              "image of %zu bytes: must be 1..%u", p->len, NF_OTA_SIZE_MAX);
	p->inv.command = p->o->command;
	p->inv.size = (uint32_t)p->len;
	if (nf_ota_md5_hex(p->data, p->len, p->inv.md5) != 0)
		return result(NF_OTA_SEND_LOCAL, p->msg, p->cap, "cannot compute the image's MD5");
	p->udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (p->udp < 0 || connect(p->udp, (struct sockaddr *)&p->dev, sizeof p->dev) != 0 ||
	    getsockname(p->udp, (struct sockaddr *)&local, &slen) != 0)
		return result(NF_OTA_SEND_LOCAL, p->msg, p->cap, "UDP to %s:%u: %s", p->o->ip,
		              (unsigned)p->o->port, strerror(errno));
	if ((ntohl(p->dev.sin_addr.s_addr) >> 24) == 127)
		local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	local.sin_port = 0;
	slen = sizeof local;
	p->lsn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->lsn < 0 || bind(p->lsn, (struct sockaddr *)&local, sizeof local) != 0 ||
	    listen(p->lsn, 1) != 0 || getsockname(p->lsn, (struct sockaddr *)&local, &slen) != 0)
		return result(NF_OTA_SEND_LOCAL, p->msg, p->cap, "TCP listener: %s",
		              strerror(errno));
	p->inv.port = ntohs(local.sin_port);
	return NF_OTA_SEND_OK;
}

/* The invitation, and the device's first answer in p->line. */
static int invite(struct push *p, long answer_ms)
{
	int n = nf_ota_invite_format(&p->inv, p->line, sizeof p->line);

	if (n < 0 || send(p->udp, p->line, (size_t)n, 0) != n)
		return result(NF_OTA_SEND_LOCAL, p->msg, p->cap, "cannot send the invitation: %s",
		              strerror(errno));
	p->got = udp_answer(p->udp, p->line, sizeof p->line, step_ms(p, answer_ms));
	if (p->got <= 0)
		return result(NF_OTA_SEND_NO_ANSWER, p->msg, p->cap,
		              "no answer from %s:%u to the invitation: %s", p->o->ip,
		              (unsigned)p->o->port, no_answer_why(p->got));
	return NF_OTA_SEND_OK;
}

/* The device sent a challenge (in p->line): answers it, and leaves the
 * device's next answer in p->line. */
static int authenticate(struct push *p, long answer_ms)
{
	const struct nf_ota_send_opts *o = p->o;
	char nonce[NF_OTA_MD5_HEX + 1], cnonce[NF_OTA_MD5_HEX + 1];
	char response[NF_OTA_MD5_HEX + 1], why[NF_OTA_ERR_MAX];
	int n;

	if (o->password == NULL || o->password[0] == '\0')
		return result(NF_OTA_SEND_AUTH_FAILED, p->msg, p->cap,
		              "the device wants a password (--auth)");
	if (nf_ota_challenge_parse(p->line, (size_t)p->got, nonce, why, sizeof why) != 0)
		return result(NF_OTA_SEND_PROTOCOL, p->msg, p->cap, "%s", why);
	if (nf_ota_cnonce(o->filename != NULL ? o->filename : "", p->inv.size, p->inv.md5, o->ip,
	                  cnonce) != 0 ||
	    nf_ota_auth_response(o->password, nonce, cnonce, response) != 0 ||
	    (n = nf_ota_auth_format(cnonce, response, p->line, sizeof p->line)) < 0)
		return result(NF_OTA_SEND_LOCAL, p->msg, p->cap, "cannot compute the AUTH answer");
	if (send(p->udp, p->line, (size_t)n, 0) != n)
		return result(NF_OTA_SEND_LOCAL, p->msg, p->cap, "cannot send the AUTH answer: %s",
		              strerror(errno));
	p->got = udp_answer(p->udp, p->line, sizeof p->line, step_ms(p, answer_ms));
	if (p->got <= 0)
		return result(NF_OTA_SEND_NO_ANSWER, p->msg, p->cap,
		              "no answer to the AUTH answer: %s", no_answer_why(p->got));
	if (strcmp(p->line, NF_OTA_ANSWER_AUTH_BAD) == 0)
		return result(NF_OTA_SEND_AUTH_FAILED, p->msg, p->cap, "wrong password: %s",
		              p->line);
	return NF_OTA_SEND_OK;
}

/* The device's answer to the invitation (after the challenge, if any):
 * "OK", or "ERR: ..." when it refuses the image. */
static int accepted(struct push *p)
{
	if (strncmp(p->line, NF_OTA_ANSWER_ERR, sizeof NF_OTA_ANSWER_ERR - 1) == 0)
		return result(NF_OTA_SEND_DEVICE_ERROR, p->msg, p->cap, "device: %.*s",
		              NF_OTA_TEXT_MAX, p->line + sizeof NF_OTA_ANSWER_ERR - 1);
	if (strcmp(p->line, NF_OTA_ANSWER_OK) != 0)
		return result(NF_OTA_SEND_PROTOCOL, p->msg, p->cap,
		              "unexpected answer from the device: %.*s", NF_OTA_TEXT_MAX, p->line);
	return NF_OTA_SEND_OK;
}

/* After a chunk: wait until the device acknowledged every byte sent (some
 * reading of its acks adds up to them) or gave its final answer. espota
 * waits for any answer; a device reads and acks all it was sent, so this
 * costs nothing, and it keeps the ack account exact. */
static int await_acks(struct push *p)
{
	struct nf_ota_acks *acks = &p->acks;

	while (acks->state == NF_OTA_ACKS_RUNNING && !nf_ota_acks_all(acks)) {
		int r = read_acks(p->tcp, acks, step_ms(p, NF_OTA_ACK_TIMEOUT_MS));

		if (r <= 0 && acks->state == NF_OTA_ACKS_RUNNING)
			return result(NF_OTA_SEND_CUT, p->msg, p->cap,
			              "about %llu of %zu bytes acked (%s)",
			              (unsigned long long)acks->acked, p->len,
			              r == 0 ? "closed by the device" : "no ack");
	}
	return NF_OTA_SEND_OK;
}

/* The device's connection back, then the image in chunks, each followed
 * by a wait for the device's acks, until all is sent or the device gave
 * its final answer early. */
static int stream(struct push *p, long connect_ms)
{
	struct nf_ota_acks *acks = &p->acks;
	size_t off = 0;
	int rc;

	if (wait_readable(p->lsn, step_ms(p, connect_ms)) <= 0 ||
	    (p->tcp = accept(p->lsn, NULL, NULL)) < 0)
		return result(NF_OTA_SEND_NO_CONNECT, p->msg, p->cap,
		              "the device did not connect back within %ld ms", connect_ms);
	nf_ota_acks_init(acks, NF_OTA_ACK_MAX);
	while (off < p->len && acks->state == NF_OTA_ACKS_RUNNING) {
		size_t chunk = p->len - off < NF_OTA_CHUNK ? p->len - off : NF_OTA_CHUNK;

		if (nf_ota_send_all(p->tcp, p->data + off, chunk) != 0)
			return result(NF_OTA_SEND_CUT, p->msg, p->cap,
			              "after %zu of %zu bytes sent: %s", off, p->len,
			              strerror(errno));
		off += chunk;
		nf_ota_acks_sent(acks, (uint32_t)chunk);
		rc = await_acks(p);
		if (rc != NF_OTA_SEND_OK)
			return rc;
		if (p->o->progress != NULL && acks->acked != p->reported) {
			p->reported = acks->acked;
			p->o->progress(p->o->ctx, acks->acked, p->len);
		}
	}
	return NF_OTA_SEND_OK;
}

/* "OK": the push worked only if every byte was sent and acknowledged. */
static int final_ok(struct push *p)
{
	struct nf_ota_acks *acks = &p->acks;

	if (acks->sent != p->len)
		return result(NF_OTA_SEND_PROTOCOL, p->msg, p->cap,
		              "the device answered OK after only %llu of %zu bytes were sent",
		              (unsigned long long)acks->sent, p->len);
	if (!nf_ota_acks_all(acks))
		return result(NF_OTA_SEND_PROTOCOL, p->msg, p->cap,
		              "the device answered OK, but its acks account for at most %llu of "
		              "%zu bytes",
		              (unsigned long long)(p->len - nf_ota_acks_behind(acks)), p->len);
	if (p->o->progress != NULL && p->reported != p->len)
		p->o->progress(p->o->ctx, p->len, p->len); /* OK: the device took it all */
	return result(NF_OTA_SEND_OK, p->msg, p->cap, "%zu bytes sent, device answered OK", p->len);
}

/* The final answer: by its first letter. Reads on to its end (a "\n",
 * "OK"'s second letter, or the close) to quote it whole. */
static int final_answer(struct push *p, long final_ms)
{
	struct nf_ota_acks *acks = &p->acks;
	uint64_t deadline = nf_clock_ms() + (uint64_t)final_ms;

	while (!acks->final_done && acks->state != NF_OTA_ACKS_BAD &&
	       !(acks->state == NF_OTA_ACKS_OK && acks->text_len >= 2)) {
		uint64_t now = nf_clock_ms();
		int r = now < deadline ? read_acks(p->tcp, acks, step_ms(p, (long)(deadline - now)))
		                       : -1;
		if (r <= 0)
			break;
	}
	switch (acks->state) {
	case NF_OTA_ACKS_OK: return final_ok(p);
	case NF_OTA_ACKS_ERROR:
		return result(NF_OTA_SEND_FINAL_ERROR, p->msg, p->cap, "device: %s", acks->text);
	case NF_OTA_ACKS_BAD:
		return result(NF_OTA_SEND_PROTOCOL, p->msg, p->cap, "device stream: %s",
		              acks->text);
	default:
		return result(NF_OTA_SEND_CUT, p->msg, p->cap,
		              "no final answer from the device (%llu of %zu bytes acked)",
		              (unsigned long long)acks->acked, p->len);
	}
}

/* Says in msg that the deadline ended the push, when it did. */
static void note_deadline(const struct push *p, long deadline_ms)
{
	size_t n = strlen(p->msg);

	if (nf_clock_ms() >= p->deadline && n < p->cap)
		snprintf(p->msg + n, p->cap - n, " (the push's deadline of %.1f s passed)",
		         (double)deadline_ms / 1000.0);
}

int nf_ota_send(const struct nf_ota_send_opts *o, const uint8_t *data, size_t len, char *msg,
                size_t cap)
{
	long answer_ms = o->answer_timeout_ms > 0 ? o->answer_timeout_ms : NF_OTA_ANSWER_TIMEOUT_MS;
	long connect_ms =
	    o->connect_timeout_ms > 0 ? o->connect_timeout_ms : NF_OTA_CONNECT_TIMEOUT_MS;
	long final_ms = o->final_timeout_ms > 0 ? o->final_timeout_ms : NF_OTA_FINAL_TIMEOUT_MS;
	long deadline_ms = o->deadline_ms > 0 ? o->deadline_ms : nf_ota_send_deadline_ms(len);
	struct push p = {.o = o,
	                 .data = data,
	                 .len = len,
	                 .msg = msg,
	                 .cap = cap,
	                 .udp = -1,
	                 .lsn = -1,
	                 .tcp = -1,
	                 .deadline = nf_clock_ms() + (uint64_t)deadline_ms};
	int rc;

	rc = open_sockets(&p);
	if (rc == NF_OTA_SEND_OK)
		rc = invite(&p, answer_ms);
	if (rc == NF_OTA_SEND_OK &&
	    strncmp(p.line, NF_OTA_ANSWER_AUTH, sizeof NF_OTA_ANSWER_AUTH - 1) == 0)
		rc = authenticate(&p, answer_ms);
	if (rc == NF_OTA_SEND_OK)
		rc = accepted(&p);
	if (rc == NF_OTA_SEND_OK)
		rc = stream(&p, connect_ms);
	if (rc == NF_OTA_SEND_OK)
		rc = final_answer(&p, final_ms);
	if (rc != NF_OTA_SEND_OK && rc != NF_OTA_SEND_LOCAL)
		note_deadline(&p, deadline_ms);
	if (p.tcp >= 0)
		close(p.tcp);
	if (p.lsn >= 0)
		close(p.lsn);
	if (p.udp >= 0)
		close(p.udp);
	return rc;
}
