/*
 * checkline.c - the text of one check-log line, in the original NoFUSS
 * format (docs/PEERS.md section 4), so existing log readers keep working:
 *
 *   [2016/07/30 00:17:29] from:192.168.1.5 device:TEST version:0.1.0 update:0.1.1
 *   [2019/06/04 10:00:00] IP: 192.168.1.5 MAC: 5C:CF:7F:8B:6B:26 DEVICE: X ...
 *
 * Every value comes from the device, so every value is escaped: a byte that
 * is not printable ASCII, a space, or '%' is written as %XX (upper-case
 * hex). A line is then printable ASCII with one '\n' at its end, and
 * splitting it on single spaces always gives the same fields in the same
 * places: no device can forge a line or a field, with a newline, a space,
 * U+2028 or NEL. Decoding %XX gives the value back byte for byte. Values
 * are cut at NF_MAX_FIELD bytes, so a line always fits NF_MAX_LOG_LINE.
 */
#include <stdio.h>
#include <string.h>

#include "nofussd.h"

/* The longest line: the stamp, the header form's labels, the address and
 * five values, each byte of which may take three. */
_Static_assert(NF_MAX_LOG_LINE >= 32 + sizeof " IP:  MAC:  DEVICE:  VERSION:  BUILD:  UPDATE: \n" +
                                      46 + 5 * 3 * NF_MAX_FIELD,
               "NF_MAX_LOG_LINE must hold the longest escaped line");

void nf_checkline_stamp(char *out, size_t cap, time_t now)
{
	struct tm tm;

	/* Server local time, as the original did. */
	if (localtime_r(&now, &tm) == NULL || strftime(out, cap, "[%Y/%m/%d %H:%M:%S]", &tm) == 0)
		snprintf(out, cap, "[%lld]", (long long)now);
}

static bool kept_as_is(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '%';
}

/* Appends up to NF_MAX_FIELD bytes of s, escaped, to out (n used, cap in
 * all); never writes past cap - 1 and never cuts an escape in two. */
static size_t append_value(char *out, size_t n, size_t cap, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";

	if (s == NULL)
		len = 0;
	if (len > NF_MAX_FIELD)
		len = NF_MAX_FIELD;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (kept_as_is(c)) {
			if (n + 1 > cap - 1)
				break;
			out[n++] = (char)c;
		} else {
			if (n + 3 > cap - 1)
				break;
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 0x0f];
		}
	}
	out[n] = '\0';
	return n;
}

size_t nf_log_value(char *out, size_t cap, const char *s)
{
	if (cap == 0)
		return 0;
	return append_value(out, 0, cap, s, s != NULL ? strlen(s) : 0);
}

static size_t append_text(char *out, size_t n, size_t cap, const char *s)
{
	size_t len = strlen(s);

	if (len > cap - 1 - n)
		len = cap - 1 - n;
	memcpy(out + n, s, len);
	n += len;
	out[n] = '\0';
	return n;
}

static size_t append_cstr(char *out, size_t n, size_t cap, const char *s)
{
	return append_value(out, n, cap, s, s ? strlen(s) : 0);
}

static size_t finish_line(char *out, size_t n, size_t cap)
{
	if (n + 1 >= cap)
		n = cap - 2;
	out[n++] = '\n';
	out[n] = '\0';
	return n;
}

size_t nf_checkline_path(char *out, size_t cap, const char *stamp, const char *ip,
                         const struct nf_query *q, const char *update)
{
	size_t n = 0;

	if (cap < 2) /* not even room for the newline */
		return 0;
	n = append_text(out, n, cap, stamp);
	n = append_text(out, n, cap, " from:");
	n = append_cstr(out, n, cap, ip);
	n = append_text(out, n, cap, " device:");
	n = append_value(out, n, cap, q->device, q->device_len);
	n = append_text(out, n, cap, " version:");
	n = append_value(out, n, cap, q->version, q->version_len);
	n = append_text(out, n, cap, " update:");
	n = append_cstr(out, n, cap, update ? update : "none");
	return finish_line(out, n, cap);
}

size_t nf_checkline_header(char *out, size_t cap, const char *stamp, const char *ip,
                           const struct nf_query *q, const char *update)
{
	size_t n = 0;

	if (cap < 2)
		return 0;
	n = append_text(out, n, cap, stamp);
	n = append_text(out, n, cap, " IP: ");
	n = append_cstr(out, n, cap, ip);
	n = append_text(out, n, cap, " MAC: ");
	n = append_cstr(out, n, cap, q->mac);
	n = append_text(out, n, cap, " DEVICE: ");
	n = append_value(out, n, cap, q->device, q->device_len);
	n = append_text(out, n, cap, " VERSION: ");
	n = append_value(out, n, cap, q->version, q->version_len);
	n = append_text(out, n, cap, " BUILD: ");
	n = append_cstr(out, n, cap, q->build);
	n = append_text(out, n, cap, " UPDATE: ");
	n = append_cstr(out, n, cap, update ? update : "none");
	return finish_line(out, n, cap);
}

size_t nf_checklog_format_path(char *buf, size_t cap, time_t now, const char *ip,
                               const struct nf_query *q, const char *update)
{
	char stamp[32];

	nf_checkline_stamp(stamp, sizeof stamp, now);
	return nf_checkline_path(buf, cap, stamp, ip, q, update);
}

size_t nf_checklog_format_header(char *buf, size_t cap, time_t now, const char *ip,
                                 const struct nf_query *q, const char *update)
{
	char stamp[32];

	nf_checkline_stamp(stamp, sizeof stamp, now);
	return nf_checkline_header(buf, cap, stamp, ip, q, update);
}
