/*
 * send.c - the host side of an ArduinoOTA push (see ota.h), in the
 * order espota.py does it: a TCP listener on an ephemeral port of the
 * address that reaches the device, the invitation from the UDP socket the
 * answer is read on, the challenge when the device sends one, the device's
 * connection back, then NF_OTA_CHUNK-byte writes each followed by a wait
 * for its ack, and the final answer decided by its first letter.
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

/* One UDP answer as a NUL-terminated text without a final "\n". Returns
 * its length, 0 on timeout, -1 on error (errno). */
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
	return n == 0 ? -1 : n;
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

int nf_ota_send(const struct nf_ota_send_opts *o, const uint8_t *data, size_t len, char *msg,
                size_t cap)
{
	long answer_ms = o->answer_timeout_ms > 0 ? o->answer_timeout_ms : NF_OTA_ANSWER_TIMEOUT_MS;
	long connect_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : NF_OTA_CONNECT_TIMEOUT_MS;
	long final_ms = o->final_timeout_ms > 0 ? o->final_timeout_ms : NF_OTA_FINAL_TIMEOUT_MS;
	struct sockaddr_in dev, local;
	socklen_t slen = sizeof local;
	struct nf_ota_invite inv;
	struct nf_ota_acks acks;
	char line[NF_OTA_DATAGRAM_MAX + 1], nonce[NF_OTA_MD5_HEX + 1], cnonce[NF_OTA_MD5_HEX + 1];
	char response[NF_OTA_MD5_HEX + 1], why[NF_OTA_ERR_MAX];
	int udp = -1, lsn = -1, tcp = -1, rc, n;
	ssize_t got;
	size_t off = 0;
	uint64_t reported = 0;

	memset(&dev, 0, sizeof dev);
	dev.sin_family = AF_INET;
	dev.sin_port = htons(o->port);
	if (inet_pton(AF_INET, o->ip, &dev.sin_addr) != 1) {
		rc = result(NF_OTA_SEND_LOCAL, msg, cap, "%s: not an IPv4 address", o->ip);
		goto done;
	}
	if (len == 0 || len > NF_OTA_SIZE_MAX) {
		rc = result(NF_OTA_SEND_LOCAL, msg, cap, "image of %zu bytes: must be 1..%u", len,
		            NF_OTA_SIZE_MAX);
		goto done;
	}
	inv.command = o->command;
	inv.size = (uint32_t)len;
	if (nf_ota_md5_hex(data, len, inv.md5) != 0) {
		rc = result(NF_OTA_SEND_LOCAL, msg, cap, "cannot compute the image's MD5");
		goto done;
	}
	/* The UDP socket, connected: its source address is the one that
	 * reaches the device, and the TCP listener binds to it. */
	udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (udp < 0 || connect(udp, (struct sockaddr *)&dev, sizeof dev) != 0 ||
	    getsockname(udp, (struct sockaddr *)&local, &slen) != 0) {
		rc = result(NF_OTA_SEND_LOCAL, msg, cap, "UDP to %s:%u: %s", o->ip,
		            (unsigned)o->port, strerror(errno));
		goto done;
	}
	if ((ntohl(dev.sin_addr.s_addr) >> 24) == 127)
		local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	local.sin_port = 0;
	slen = sizeof local;
	lsn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lsn < 0 || bind(lsn, (struct sockaddr *)&local, sizeof local) != 0 ||
	    listen(lsn, 1) != 0 || getsockname(lsn, (struct sockaddr *)&local, &slen) != 0) {
		rc = result(NF_OTA_SEND_LOCAL, msg, cap, "TCP listener: %s", strerror(errno));
		goto done;
	}
	inv.port = ntohs(local.sin_port);
	n = nf_ota_invite_format(&inv, line, sizeof line);
	if (n < 0 || send(udp, line, (size_t)n, 0) != n) {
		rc = result(NF_OTA_SEND_LOCAL, msg, cap, "cannot send the invitation: %s",
		            strerror(errno));
		goto done;
	}
	got = udp_answer(udp, line, sizeof line, answer_ms);
	if (got <= 0) {
		rc = result(NF_OTA_SEND_NO_ANSWER, msg, cap, "no answer from %s:%u to the invitation%s%s",
		            o->ip, (unsigned)o->port, got < 0 ? ": " : "", got < 0 ? strerror(errno) : "");
		goto done;
	}
	if (strncmp(line, NF_OTA_ANSWER_AUTH, sizeof NF_OTA_ANSWER_AUTH - 1) == 0) {
		if (o->password == NULL || o->password[0] == '\0') {
			rc = result(NF_OTA_SEND_AUTH_FAILED, msg, cap,
			            "the device wants a password (--auth)");
			goto done;
		}
		if (nf_ota_challenge_parse(line, (size_t)got, nonce, why, sizeof why) != 0) {
			rc = result(NF_OTA_SEND_PROTOCOL, msg, cap, "%s", why);
			goto done;
		}
		if (nf_ota_cnonce(o->filename != NULL ? o->filename : "", inv.size, inv.md5, o->ip,
		                  cnonce) != 0 ||
		    nf_ota_auth_response(o->password, nonce, cnonce, response) != 0 ||
		    (n = nf_ota_auth_format(cnonce, response, line, sizeof line)) < 0) {
			rc = result(NF_OTA_SEND_LOCAL, msg, cap, "cannot compute the AUTH answer");
			goto done;
		}
		if (send(udp, line, (size_t)n, 0) != n) {
			rc = result(NF_OTA_SEND_LOCAL, msg, cap, "cannot send the AUTH answer: %s",
			            strerror(errno));
			goto done;
		}
		got = udp_answer(udp, line, sizeof line, answer_ms);
		if (got <= 0) {
			rc = result(NF_OTA_SEND_NO_ANSWER, msg, cap, "no answer to the AUTH answer");
			goto done;
		}
		if (strcmp(line, NF_OTA_ANSWER_AUTH_BAD) == 0) {
			rc = result(NF_OTA_SEND_AUTH_FAILED, msg, cap, "wrong password: %s", line);
			goto done;
		}
	}
	if (strncmp(line, NF_OTA_ANSWER_ERR, sizeof NF_OTA_ANSWER_ERR - 1) == 0) {
		rc = result(NF_OTA_SEND_DEVICE_ERROR, msg, cap, "device: %.*s", NF_OTA_TEXT_MAX,
		            line + sizeof NF_OTA_ANSWER_ERR - 1);
		goto done;
	}
	if (strcmp(line, NF_OTA_ANSWER_OK) != 0) {
		rc = result(NF_OTA_SEND_PROTOCOL, msg, cap, "unexpected answer from the device: %.*s",
		            NF_OTA_TEXT_MAX, line);
		goto done;
	}
	if (wait_readable(lsn, connect_ms) <= 0 || (tcp = accept(lsn, NULL, NULL)) < 0) {
		rc = result(NF_OTA_SEND_NO_CONNECT, msg, cap,
		            "the device did not connect back within %ld ms", connect_ms);
		goto done;
	}
	nf_ota_acks_init(&acks, NF_OTA_ACK_MAX);
	while (off < len) {
		size_t chunk = len - off < NF_OTA_CHUNK ? len - off : NF_OTA_CHUNK;

		if (nf_ota_send_all(tcp, data + off, chunk) != 0) {
			rc = result(NF_OTA_SEND_CUT, msg, cap, "transfer cut after %zu of %zu bytes: %s",
			            off, len, strerror(errno));
			goto done;
		}
		off += chunk;
		nf_ota_acks_sent(&acks, (uint32_t)chunk);
		/* As espota: after each chunk, wait for the device to answer
		 * something (its acks need not line up with our chunks). */
		if (acks.state == NF_OTA_ACKS_RUNNING && acks.acked < off) {
			int r = read_acks(tcp, &acks, NF_OTA_ACK_TIMEOUT_MS);
			if (r <= 0 && acks.state == NF_OTA_ACKS_RUNNING) {
				rc = result(NF_OTA_SEND_CUT, msg, cap,
				            "transfer cut: about %llu of %zu bytes acked (%s)",
				            (unsigned long long)acks.acked, len,
				            r == 0 ? "closed by the device" : "no ack");
				goto done;
			}
		}
		if (o->progress != NULL && acks.acked != reported) {
			reported = acks.acked;
			o->progress(o->ctx, acks.acked, len);
		}
		if (acks.state != NF_OTA_ACKS_RUNNING)
			break;
	}
	/* The final answer: by its first letter. Read on to its end (a "\n",
	 * "OK"'s second letter, or the close) to quote it whole. */
	{
		uint64_t deadline = nf_clock_ms() + (uint64_t)final_ms;
		while (!acks.final_done && acks.state != NF_OTA_ACKS_BAD &&
		       !(acks.state == NF_OTA_ACKS_OK && acks.text_len >= 2)) {
			uint64_t now = nf_clock_ms();
			int r = now < deadline ? read_acks(tcp, &acks, (long)(deadline - now)) : -1;
			if (r <= 0)
				break;
		}
	}
	switch (acks.state) {
	case NF_OTA_ACKS_OK:
		if (o->progress != NULL && reported != len)
			o->progress(o->ctx, len, len); /* OK: the device took it all */
		rc = result(NF_OTA_SEND_OK, msg, cap, "%zu bytes sent, device answered OK", len);
		break;
	case NF_OTA_ACKS_ERROR:
		rc = result(NF_OTA_SEND_FINAL_ERROR, msg, cap, "device: %s", acks.text);
		break;
	case NF_OTA_ACKS_BAD:
		rc = result(NF_OTA_SEND_PROTOCOL, msg, cap, "device stream: %s", acks.text);
		break;
	default:
		rc = result(NF_OTA_SEND_CUT, msg, cap, "no final answer from the device (%llu of %zu bytes acked)",
		            (unsigned long long)acks.acked, len);
		break;
	}
done:
	if (tcp >= 0)
		close(tcp);
	if (lsn >= 0)
		close(lsn);
	if (udp >= 0)
		close(udp);
	return rc;
}
