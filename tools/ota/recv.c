/*
 * recv.c - the simulated device's ArduinoOTA receiver (see ota.h):
 * one UDP socket; per invitation, optional MD5 challenge, the sink's
 * begin, "OK", a TCP connection back to the host, the image in reads of at
 * most NF_OTA_CHUNK bytes each acked with its decimal byte count, the size
 * and MD5 checked, the sink's finish, then "OK" between two pauses as an
 * ESP8266 does before it reboots. Every failure after begin aborts the sink,
 * so nothing half-received is ever committed, and drops the connection at
 * once after the ERROR line, as ArduinoOTA does: a host still sending
 * (espota.py) then fails its next write instead of waiting for an answer
 * that will not come.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common.h"
#include "ota.h"

#define CLOSE_DRAIN_ROUNDS 64 /* after an error: reads of what already arrived, at most */

static void logf_(struct nf_ota_recv *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void logf_(struct nf_ota_recv *r, const char *fmt, ...)
{
	va_list ap;

	if (r->cfg.log == NULL)
		return;
	fputs("[ota] ", r->cfg.log);
	va_start(ap, fmt);
	vfprintf(r->cfg.log, fmt, ap);
	va_end(ap);
	fputc('\n', r->cfg.log);
	fflush(r->cfg.log);
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int nf_ota_recv_open(struct nf_ota_recv *r, const char *ip, uint16_t port,
                     const struct nf_ota_recv_config *cfg, const struct nf_ota_sink *sink,
                     char *err, size_t errcap)
{
	struct sockaddr_in sa;

	memset(r, 0, sizeof *r);
	r->udp = -1;
	r->cfg = *cfg;
	if (r->cfg.pause_ms < 0)
		r->cfg.pause_ms = NF_OTA_PAUSE_MS_DEFAULT;
	if (r->cfg.timeout_ms <= 0)
		r->cfg.timeout_ms = NF_OTA_ANSWER_TIMEOUT_MS;
	r->sink = *sink;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		snprintf(err, errcap, "%s: not an IPv4 address", ip);
		return -1;
	}
	r->udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (r->udp < 0 || bind(r->udp, (struct sockaddr *)&sa, sizeof sa) != 0) {
		snprintf(err, errcap, "UDP %s:%u: %s", ip, (unsigned)port, strerror(errno));
		return -1;
	}
	return 0;
}

uint16_t nf_ota_recv_port(const struct nf_ota_recv *r)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;

	if (r->udp < 0 || getsockname(r->udp, (struct sockaddr *)&sa, &len) != 0)
		return 0;
	return ntohs(sa.sin_port);
}

void nf_ota_recv_close(struct nf_ota_recv *r)
{
	if (r->udp >= 0)
		close(r->udp);
	r->udp = -1;
}

/* One datagram within timeout_ms (-1: forever). Returns its length, 0 on
 * timeout, -1 on error. */
static ssize_t recv_datagram(int fd, char *buf, size_t cap, struct sockaddr_in *from,
                             int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	socklen_t fromlen = sizeof *from;
	ssize_t n;
	int rc;

	do
		rc = poll(&pfd, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc <= 0)
		return rc;
	n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)from, &fromlen);
	return n < 0 ? -1 : (n == 0 ? -1 : n);
}

static void answer(struct nf_ota_recv *r, const struct sockaddr_in *to, const char *text)
{
	if (sendto(r->udp, text, strlen(text), 0, (const struct sockaddr *)to, sizeof *to) < 0)
		logf_(r, "cannot answer %s: %s", inet_ntoa(to->sin_addr), strerror(errno));
}

/* The MD5 challenge. Returns 0 when the host proved the password, -2 when
 * it answered wrong, -1 when it did not answer properly (r->err says). */
static int authenticate(struct nf_ota_recv *r, const struct sockaddr_in *host)
{
	unsigned char raw[NF_OTA_MD5_HEX / 2];
	char nonce[NF_OTA_MD5_HEX + 1], challenge[sizeof NF_OTA_ANSWER_AUTH + NF_OTA_MD5_HEX];
	char cnonce[NF_OTA_MD5_HEX + 1], got[NF_OTA_MD5_HEX + 1], want[NF_OTA_MD5_HEX + 1];
	char buf[NF_OTA_DATAGRAM_MAX + 1], why[NF_OTA_ERR_MAX];
	struct sockaddr_in from;
	ssize_t n;

	if (RAND_bytes(raw, sizeof raw) != 1) {
		snprintf(r->err, sizeof r->err, "no random bytes for the nonce");
		return -1;
	}
	nf_hex_encode(raw, sizeof raw, nonce);
	/* On the wire: "AUTH <nonce>", no newline. Do not change. */
	snprintf(challenge, sizeof challenge, "%s%s", NF_OTA_ANSWER_AUTH, nonce);
	answer(r, host, challenge);
	for (;;) {
		n = recv_datagram(r->udp, buf, sizeof buf, &from, (int)r->cfg.timeout_ms);
		if (n <= 0) {
			snprintf(r->err, sizeof r->err, "no answer to the challenge");
			return -1;
		}
		if (from.sin_addr.s_addr != host->sin_addr.s_addr)
			continue; /* another host: busy */
		break;
	}
	if (nf_ota_auth_parse(buf, (size_t)n, cnonce, got, why, sizeof why) != 0) {
		/* As ArduinoOTA: not an answer, so no answer; back to idle. */
		snprintf(r->err, sizeof r->err, "bad answer to the challenge: %.120s", why);
		return -1;
	}
	if (nf_ota_auth_response(r->cfg.password, nonce, cnonce, want) != 0) {
		snprintf(r->err, sizeof r->err, "cannot compute the expected answer");
		return -1;
	}
	if (CRYPTO_memcmp(got, want, NF_OTA_MD5_HEX) != 0) {
		answer(r, &from, NF_OTA_ANSWER_AUTH_BAD);
		snprintf(r->err, sizeof r->err, "authentication failed: wrong password");
		return -2;
	}
	return 0;
}

static int connect_back(struct nf_ota_recv *r, const struct sockaddr_in *host, uint16_t port)
{
	struct sockaddr_in sa = *host;
	struct pollfd pfd;
	int fd, flags, soerr = 0, rc;
	socklen_t len = sizeof soerr;

	sa.sin_port = htons(port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			rc = poll(&pfd, 1, (int)r->cfg.timeout_ms);
		while (rc < 0 && errno == EINTR);
		if (rc == 0)
			errno = ETIMEDOUT;
		if (rc <= 0)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
			errno = soerr != 0 ? soerr : errno;
			goto fail;
		}
	}
	fcntl(fd, F_SETFL, flags);
	return fd;
fail:
	snprintf(r->err, sizeof r->err, "cannot connect back to %s:%u: %s",
	         inet_ntoa(host->sin_addr), (unsigned)port, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Drops a connection after an error answer, at once, as ArduinoOTA does
 * (the host's next write fails). What already arrived is read first, without
 * waiting for more, so that the close is a FIN behind the answer rather than
 * a reset, unless the host's bytes keep coming. */
static void close_now(int fd)
{
	uint8_t sink[NF_OTA_CHUNK];
	unsigned rounds = 0;

	while (rounds++ < CLOSE_DRAIN_ROUNDS && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
		;
	close(fd);
}

static int send_text(int fd, const char *text)
{
	return nf_ota_send_all(fd, text, strlen(text));
}

/* Answers "ERROR[n]: text\n" on the stream and records the failure. */
static void stream_error(struct nf_ota_recv *r, int fd, int code, const char *why)
{
	char line[NF_OTA_TEXT_MAX];

	if (nf_ota_format_error(code, line, sizeof line) > 0)
		(void)send_text(fd, line);
	snprintf(r->err, sizeof r->err, "ERROR[%d]: %s%s%s", code, nf_ota_update_strerror(code),
	         why[0] != '\0' ? ": " : "", why);
}

/* Receives the image on fd into the begun sink. Returns 0 when finished. */
/* The next bytes of the image: at most cap, and no further than
 * --cut-after. Returns their count, or -1 when the host is silent (an
 * ERROR answered) or gone (r->err says). */
static ssize_t read_chunk(struct nf_ota_recv *r, int fd, uint8_t *buf, size_t cap)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	size_t want = r->invite.size - r->received;
	ssize_t n;
	int prc;

	if (want > cap)
		want = cap;
	if (r->cfg.cut_after > 0 && want > r->cfg.cut_after - r->received)
		want = r->cfg.cut_after - r->received;
	for (;;) {
		do
			prc = poll(&pfd, 1, (int)r->cfg.timeout_ms);
		while (prc < 0 && errno == EINTR);
		if (prc == 0) {
			stream_error(r, fd, NF_OTA_UPDATE_STREAM, "no data from the host");
			return -1;
		}
		n = prc < 0 ? -1 : recv(fd, buf, want, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(r->err, sizeof r->err, "transfer cut after %u of %u bytes%s%s",
			         (unsigned)r->received, (unsigned)r->invite.size, n < 0 ? ": " : "",
			         n < 0 ? strerror(errno) : "");
			return -1;
		}
		return n;
	}
}

/* The whole image arrived: its MD5 must be the one announced, then the
 * sink commits it. 0, or -1 after answering ERROR. */
static int commit(struct nf_ota_recv *r, int fd, EVP_MD_CTX *md5)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[NF_OTA_MD5_HEX + 1], why[NF_OTA_ERR_MAX] = "";
	int code;

	if (EVP_DigestFinal_ex(md5, md, &mdlen) != 1 || mdlen != 16) {
		stream_error(r, fd, NF_OTA_UPDATE_MD5, "cannot compute the MD5");
		return -1;
	}
	nf_hex_encode(md, 16, hex);
	if (strcmp(hex, r->invite.md5) != 0) {
		snprintf(why, sizeof why, "received %s, announced %s", hex, r->invite.md5);
		stream_error(r, fd, NF_OTA_UPDATE_MD5, why);
		return -1;
	}
	code = r->sink.finish(r->sink.ctx, why, sizeof why);
	if (code != 0) {
		stream_error(r, fd, code, why);
		return -1;
	}
	return 0;
}

/* Receives the image on fd into the begun sink, acking each read. Returns
 * 0 when it is committed. */
static int transfer(struct nf_ota_recv *r, int fd)
{
	uint8_t buf[NF_OTA_CHUNK];
	char ack[NF_OTA_ACK_DIGITS + 2], why[NF_OTA_ERR_MAX] = "";
	EVP_MD_CTX *md5 = EVP_MD_CTX_new();
	int rc = -1, code;

	if (md5 == NULL || EVP_DigestInit_ex(md5, EVP_md5(), NULL) != 1) {
		stream_error(r, fd, NF_OTA_UPDATE_WRITE, "no MD5 context");
		goto done;
	}
	while (r->received < r->invite.size) {
		ssize_t n = read_chunk(r, fd, buf, sizeof buf);

		if (n < 0)
			goto done;
		code = r->sink.write(r->sink.ctx, buf, (size_t)n, why, sizeof why);
		if (code != 0) {
			stream_error(r, fd, code, why);
			goto done;
		}
		EVP_DigestUpdate(md5, buf, (size_t)n);
		r->received += (uint32_t)n;
		/* The ack: the byte count in bare decimal. On the wire: do not change. */
		snprintf(ack, sizeof ack, "%u", (unsigned)n);
		if (send_text(fd, ack) != 0) {
			snprintf(r->err, sizeof r->err, "transfer cut after %u of %u bytes: %s",
			         (unsigned)r->received, (unsigned)r->invite.size, strerror(errno));
			goto done;
		}
		if (r->cfg.cut_after > 0 && r->received >= r->cfg.cut_after) {
			struct linger lg = {1, 0}; /* close with a reset, as a dying device would */
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
			snprintf(r->err, sizeof r->err, "cut on purpose after %u of %u bytes",
			         (unsigned)r->received, (unsigned)r->invite.size);
			goto done;
		}
	}
	rc = commit(r, fd, md5);
done:
	EVP_MD_CTX_free(md5);
	return rc;
}

int nf_ota_recv_poll(struct nf_ota_recv *r, int timeout_ms)
{
	char buf[NF_OTA_DATAGRAM_MAX + 1], why[NF_OTA_ERR_MAX] = "", line[NF_OTA_TEXT_MAX];
	struct sockaddr_in host;
	int fd = -1, rc, code;
	ssize_t n;

	if (r->udp < 0)
		return NF_OTA_RECV_IDLE;
	n = recv_datagram(r->udp, buf, sizeof buf, &host, timeout_ms);
	if (n <= 0)
		return NF_OTA_RECV_IDLE;
	r->received = 0;
	r->err[0] = '\0';
	if (nf_ota_invite_parse(buf, (size_t)n, &r->invite, why, sizeof why) != 0) {
		logf_(r, "ignored a datagram from %s: %s", inet_ntoa(host.sin_addr), why);
		return NF_OTA_RECV_IDLE;
	}
	logf_(r, "invitation from %s: %s of %u bytes, md5 %s, TCP port %u",
	      inet_ntoa(host.sin_addr),
	      r->invite.command == NF_OTA_CMD_FS ? "filesystem" : "firmware",
	      (unsigned)r->invite.size, r->invite.md5, (unsigned)r->invite.port);
	if (r->cfg.password != NULL && r->cfg.password[0] != '\0') {
		rc = authenticate(r, &host);
		if (rc != 0) {
			logf_(r, "%s", r->err);
			return rc == -2 ? NF_OTA_RECV_AUTH_FAILED : NF_OTA_RECV_FAILED;
		}
	}
	code = r->sink.begin(r->sink.ctx, r->invite.command, r->invite.size, r->invite.md5, why,
	                     sizeof why);
	if (code != 0) {
		/* "ERR: ERROR[n]: text\n". On the wire: do not change. */
		snprintf(line, sizeof line, "%s", NF_OTA_ANSWER_ERR);
		nf_ota_format_error(code, line + strlen(line), sizeof line - strlen(line));
		answer(r, &host, line);
		/* why is cut to fit beside the fixed text (r->err is bounded). */
		snprintf(r->err, sizeof r->err, "ERROR[%d]: %s%s%.120s", code,
		         nf_ota_update_strerror(code), why[0] != '\0' ? ": " : "", why);
		logf_(r, "refused: %s", r->err);
		return NF_OTA_RECV_FAILED;
	}
	answer(r, &host, NF_OTA_ANSWER_OK);
	fd = connect_back(r, &host, r->invite.port);
	if (fd < 0) {
		r->sink.abort(r->sink.ctx);
		logf_(r, "%s", r->err);
		return NF_OTA_RECV_FAILED;
	}
	rc = transfer(r, fd);
	if (rc != 0) {
		r->sink.abort(r->sink.ctx);
		logf_(r, "update failed: %s", r->err);
		if (r->cfg.cut_after > 0 && r->received >= r->cfg.cut_after)
			close(fd); /* the reset on purpose */
		else
			close_now(fd);
		return NF_OTA_RECV_FAILED;
	}
	logf_(r, "received %u bytes, md5 ok: committed", (unsigned)r->received);
	pause_ms(r->cfg.pause_ms);
	(void)send_text(fd, NF_OTA_ANSWER_OK);
	pause_ms(r->cfg.pause_ms);
	close(fd);
	return NF_OTA_RECV_DONE;
}
