/*
 * proto.c - the ArduinoOTA / espota protocol's messages (see ota.h):
 * formatting, strict parsing of everything that comes from the network,
 * and MD5 digests with OpenSSL EVP (the device's ack stream is acks.c's).
 * No sockets and no clocks: the unit tests and the fuzz harness drive all
 * of it directly.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "common.h"
#include "ota.h"


const char *nf_ota_update_strerror(int code)
{
	/* The ESP8266 Updater's texts, as devices print them. */
	switch (code) {
	case NF_OTA_UPDATE_OK: return "No Error";
	case NF_OTA_UPDATE_WRITE: return "Flash Write Failed";
	case NF_OTA_UPDATE_ERASE: return "Flash Erase Failed";
	case NF_OTA_UPDATE_READ: return "Flash Read Failed";
	case NF_OTA_UPDATE_SPACE: return "Not Enough Space";
	case NF_OTA_UPDATE_SIZE: return "Bad Size Given";
	case NF_OTA_UPDATE_STREAM: return "Stream Read Timeout";
	case NF_OTA_UPDATE_MD5: return "MD5 Failed";
	case NF_OTA_UPDATE_MAGIC: return "Magic byte is wrong, not 0xE9";
	default: return "UNKNOWN";
	}
}

int nf_ota_format_error(int code, char *buf, size_t cap)
{
	/* On the wire: do not change. */
	int n = snprintf(buf, cap, "ERROR[%d]: %s\n", code, nf_ota_update_strerror(code));

	return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* ---- datagrams ---- */

/* A datagram's text without its optional final "\n"; -1 when it holds a NUL
 * or another control character, or is too long. */
static int datagram_text(const char *buf, size_t len, size_t *textlen, char *err, size_t errcap)
{
	if (len > NF_OTA_DATAGRAM_MAX) {
		nf_errf(err, errcap, "datagram of %zu bytes: longer than %u", len,
		     NF_OTA_DATAGRAM_MAX);
		return -1;
	}
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] >= 0x7f) {
			nf_errf(err, errcap, "datagram has a control or non-ASCII byte at %zu", i);
			return -1;
		}
	}
	*textlen = len;
	return 0;
}

/* A decimal field of at most 10 digits, no sign, within [min, max], that
 * ends at a space or at end. Advances *p. */
static int parse_decimal(const char *buf, size_t len, size_t *p, uint32_t min, uint32_t max,
                         uint32_t *out)
{
	uint64_t v = 0;
	size_t start = *p;

	while (*p < len && buf[*p] >= '0' && buf[*p] <= '9') {
		v = v * 10 + (uint64_t)(buf[*p] - '0');
		if (v > max || *p - start >= NF_OTA_ACK_DIGITS)
			return -1;
		(*p)++;
	}
	if (*p == start || v < min || (*p < len && buf[*p] != ' '))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int expect_space(const char *buf, size_t len, size_t *p)
{
	if (*p >= len || buf[*p] != ' ')
		return -1;
	(*p)++;
	return 0;
}

/* A field of exactly 32 hex characters ending at a space or at end, stored
 * lower-case. */
static int parse_hex32(const char *buf, size_t len, size_t *p, char out[NF_OTA_MD5_HEX + 1])
{
	unsigned char raw[NF_OTA_MD5_HEX / 2];

	if (len - *p < NF_OTA_MD5_HEX || nf_hex_decode(buf + *p, raw, sizeof raw) != 0)
		return -1;
	if (len - *p > NF_OTA_MD5_HEX && buf[*p + NF_OTA_MD5_HEX] != ' ')
		return -1;
	nf_hex_encode(raw, sizeof raw, out);
	*p += NF_OTA_MD5_HEX;
	return 0;
}

int nf_ota_invite_format(const struct nf_ota_invite *inv, char *buf, size_t cap)
{
	unsigned char raw[NF_OTA_MD5_HEX / 2];
	int n;

	if ((inv->command != NF_OTA_CMD_FIRMWARE && inv->command != NF_OTA_CMD_FS) ||
	    inv->port == 0 || inv->size == 0 || inv->size > NF_OTA_SIZE_MAX ||
	    strlen(inv->md5) != NF_OTA_MD5_HEX || nf_hex_decode(inv->md5, raw, sizeof raw) != 0)
		return -1;
	/* On the wire: do not change. */
	n = snprintf(buf, cap, "%d %u %u %s\n", inv->command, (unsigned)inv->port,
	             (unsigned)inv->size, inv->md5);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

int nf_ota_invite_parse(const char *buf, size_t len, struct nf_ota_invite *inv, char *err,
                        size_t errcap)
{
	size_t p = 0, n;
	uint32_t command, port, size;

	if (datagram_text(buf, len, &n, err, errcap) != 0)
		return -1;
	if (parse_decimal(buf, n, &p, 0, NF_OTA_CMD_AUTH, &command) != 0 ||
	    (command != NF_OTA_CMD_FIRMWARE && command != NF_OTA_CMD_FS)) {
		nf_errf(err, errcap, "not an invitation: the command must be %d or %d",
		     NF_OTA_CMD_FIRMWARE, NF_OTA_CMD_FS);
		return -1;
	}
	if (expect_space(buf, n, &p) != 0 || parse_decimal(buf, n, &p, 1, 65535, &port) != 0) {
		nf_errf(err, errcap, "invitation: bad TCP port (1..65535)");
		return -1;
	}
	if (expect_space(buf, n, &p) != 0 ||
	    parse_decimal(buf, n, &p, 1, NF_OTA_SIZE_MAX, &size) != 0) {
		nf_errf(err, errcap, "invitation: bad size (1..%u)", NF_OTA_SIZE_MAX);
		return -1;
	}
	if (expect_space(buf, n, &p) != 0 || parse_hex32(buf, n, &p, inv->md5) != 0 || p != n) {
		nf_errf(err, errcap, "invitation: the MD5 must be exactly %u hex characters",
		     NF_OTA_MD5_HEX);
		return -1;
	}
	inv->command = (int)command;
	inv->port = (uint16_t)port;
	inv->size = size;
	return 0;
}

int nf_ota_challenge_parse(const char *buf, size_t len, char nonce[NF_OTA_MD5_HEX + 1], char *err,
                           size_t errcap)
{
	size_t n, p = sizeof NF_OTA_ANSWER_AUTH - 1;

	if (datagram_text(buf, len, &n, err, errcap) != 0)
		return -1;
	if (n < p || memcmp(buf, NF_OTA_ANSWER_AUTH, p) != 0 ||
	    parse_hex32(buf, n, &p, nonce) != 0 || p != n) {
		nf_errf(err, errcap, "not a challenge \"AUTH <32 hex>\"");
		return -1;
	}
	return 0;
}

int nf_ota_auth_format(const char *cnonce, const char *response, char *buf, size_t cap)
{
	int n;

	if (strlen(cnonce) != NF_OTA_MD5_HEX || strlen(response) != NF_OTA_MD5_HEX)
		return -1;
	/* On the wire: do not change. */
	n = snprintf(buf, cap, "%d %s %s\n", NF_OTA_CMD_AUTH, cnonce, response);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}

int nf_ota_auth_parse(const char *buf, size_t len, char cnonce[NF_OTA_MD5_HEX + 1],
                      char response[NF_OTA_MD5_HEX + 1], char *err, size_t errcap)
{
	size_t n, p = 0;
	uint32_t command;

	if (datagram_text(buf, len, &n, err, errcap) != 0)
		return -1;
	if (parse_decimal(buf, n, &p, 0, 999, &command) != 0 || command != NF_OTA_CMD_AUTH ||
	    expect_space(buf, n, &p) != 0 || parse_hex32(buf, n, &p, cnonce) != 0 ||
	    expect_space(buf, n, &p) != 0 || parse_hex32(buf, n, &p, response) != 0 || p != n) {
		nf_errf(err, errcap, "not an answer \"200 <32 hex> <32 hex>\"");
		return -1;
	}
	return 0;
}

/* ---- digests ---- */

int nf_ota_md5_hex(const void *data, size_t len, char out[NF_OTA_MD5_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rc = -1;

	if (EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16)
		goto done;
	nf_hex_encode(md, 16, out);
	rc = 0;
done:
	return rc;
}

int nf_ota_auth_response(const char *password, const char *nonce, const char *cnonce,
                         char out[NF_OTA_MD5_HEX + 1])
{
	char pass_md5[NF_OTA_MD5_HEX + 1];
	char text[3 * NF_OTA_MD5_HEX + 3];
	int n;

	if (nf_ota_md5_hex(password, strlen(password), pass_md5) != 0)
		return -1;
	n = snprintf(text, sizeof text, "%s:%s:%s", pass_md5, nonce, cnonce);
	if (n < 0 || (size_t)n >= sizeof text)
		return -1;
	return nf_ota_md5_hex(text, (size_t)n, out);
}

int nf_ota_cnonce(const char *filename, uint32_t size, const char *filemd5, const char *device_ip,
                  char out[NF_OTA_MD5_HEX + 1])
{
	char text[4096 + 128];
	int n =
	    snprintf(text, sizeof text, "%s%u%s%s", filename, (unsigned)size, filemd5, device_ip);

	if (n < 0 || (size_t)n >= sizeof text)
		return -1;
	return nf_ota_md5_hex(text, (size_t)n, out);
}
