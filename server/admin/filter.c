/*
 * filter.c - the devices list's query string (GET /api/v1/devices?...) into
 * a struct nf_device_filter, and the times the API reads and writes.
 *
 * The query string is outside input: every parameter is checked here, and a
 * bad one is refused with a message that names it and the values it takes,
 * so that the store only ever sees a filter it accepts. Pure functions: no
 * I/O, no allocation (tests/fuzz/fuzz_api_query.c).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "common.h"

#define MAX_DURATION_MS (100LL * 365 * 24 * 3600 * 1000) /* an age: a century */
#define MAX_TIME_MS     (253402300799999LL)              /* 9999-12-31T23:59:59.999Z */

int nf_admin_unescape(const char *src, size_t len, bool plus, char *dst, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = src[i];

		if (c == '%') {
			int hi = i + 2 < len ? nf_hex_digit(src[i + 1]) : -1;
			int lo = hi >= 0 ? nf_hex_digit(src[i + 2]) : -1;
			if (lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && plus) {
			c = ' ';
		} else if (c == '\0') {
			return -1;
		}
		if (n + 1 >= cap)
			return -1;
		dst[n++] = c;
	}
	if (cap == 0)
		return -1;
	dst[n] = '\0';
	return (int)n;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* Reads exactly n digits at *p into *out. */
static bool digits(const char **p, int n, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return false;
		v = v * 10 + (unsigned)((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c && !(c == 'T' && (**p == 't' || **p == ' ')))
		return false;
	(*p)++;
	return true;
}

static int parse_rfc3339(const char *s, int64_t *out)
{
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, mo, d, h, mi, sec, oh = 0, om = 0, frac = 0;
	int sign = 0;
	const char *p = s;

	if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
	    !digits(&p, 2, &d) || !expect(&p, 'T') || !digits(&p, 2, &h) || !expect(&p, ':') ||
	    !digits(&p, 2, &mi) || !expect(&p, ':') || !digits(&p, 2, &sec))
		return -1;
	if (*p == '.') {
		int n = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, n++)
			if (n < 3)
				frac = frac * 10 + (unsigned)(*p - '0');
		if (n == 0 || n > 9)
			return -1;
		for (; n < 3; n++)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om) || oh > 23 ||
		    om > 59)
			return -1;
	} else {
		return -1;
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
	    sec > 60)
		return -1;
	if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	if (sec == 60) /* a leap second is read as the second before it */
		sec = 59;
	int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (int64_t)(oh * 3600 + om * 60);
	*out = t * 1000 + frac;
	return 0;
}

int nf_admin_parse_time(const char *text, int64_t now_ms, int64_t *out_ms)
{
	size_t len = strlen(text);
	int64_t v = 0;
	size_t i = 0;

	if (len > 0 && len <= 15) {
		for (; i < len && text[i] >= '0' && text[i] <= '9'; i++)
			v = v * 10 + (text[i] - '0');
		if (i == len) { /* ms since 1970 */
			if (v > MAX_TIME_MS)
				return -1;
			*out_ms = v;
			return 0;
		}
		if (i > 0 && i + 1 == len) { /* an age */
			static const struct {
				char unit;
				int64_t ms;
			} units[] = {{'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}};
			for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
				if (text[i] != units[u].unit)
					continue;
				if (v > MAX_DURATION_MS / units[u].ms)
					return -1;
				*out_ms = now_ms - v * units[u].ms;
				return 0;
			}
			return -1;
		}
	}
	return parse_rfc3339(text, out_ms);
}

void nf_admin_format_time(int64_t ms, char out[32])
{
	time_t secs = (time_t)(ms / 1000);
	int rest = (int)(ms % 1000);
	struct tm tm;

	if (rest < 0) {
		rest += 1000;
		secs--;
	}
	if (gmtime_r(&secs, &tm) == NULL) {
		snprintf(out, 32, "%s", "1970-01-01T00:00:00.000Z");
		return;
	}
	/* Formatted wide, then cut: the compiler cannot see the fields' ranges. */
	char text[96];
	snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	         (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	         tm.tm_sec, rest);
	snprintf(out, 32, "%.31s", text);
}

/* ---- the parameters ---- */

static const char *const sort_names[NF_SORT_COUNT] = {
    [NF_SORT_LAST_SEEN] = "last_seen",
    [NF_SORT_FIRST_SEEN] = "first_seen",
    [NF_SORT_KEY] = "key",
    [NF_SORT_DEVICE] = "type",
    [NF_SORT_VERSION] = "version",
    [NF_SORT_STATE] = "state",
    [NF_SORT_IP] = "ip",
};

#define SORTS  "last_seen, first_seen, key, type, version, state, ip"
#define STATES "none, offered, downloading, downloaded, confirmed, reverted, failed, silent"
#define TIMES                                                                                      \
	"an RFC 3339 UTC time (2026-12-02T12:00:00Z), ms since 1970, or an age (90s, 15m, 24h, "   \
	"7d)"

/* A decimal number up to max. */
static int parse_size(const char *v, size_t max, size_t *out)
{
	size_t n = 0;

	if (*v == '\0')
		return -1;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '9' || n > max / 10)
			return -1;
		n = n * 10 + (size_t)(*v - '0');
	}
	if (n > max)
		return -1;
	*out = n;
	return 0;
}

/* A MAC prefix: hex digits with ':' or '-' between pairs or none, made
 * "AA:BB:C" as stored. */
static int parse_mac_prefix(const char *v, char out[NF_STORE_MAC_LEN])
{
	size_t n = 0, hex = 0;

	for (; *v != '\0'; v++) {
		if (*v == ':' || *v == '-') {
			if (hex == 0 || hex % 2 != 0 || v[1] == ':' || v[1] == '-')
				return -1;
			continue;
		}
		if (nf_hex_digit(*v) < 0 || hex == 12)
			return -1;
		if (hex > 0 && hex % 2 == 0)
			out[n++] = ':';
		out[n++] = (char)(*v >= 'a' && *v <= 'f' ? *v - 'a' + 'A' : *v);
		hex++;
	}
	out[n] = '\0';
	return 0;
}

static bool all_in(const char *v, const char *set)
{
	return v[strspn(v, set)] == '\0';
}

bool nf_admin_tag_valid(const char *tag)
{
	size_t len = strlen(tag);

	return len > 0 && len < NF_STORE_MAX_TAG &&
	       all_in(tag, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
}

/* Text from a device: any byte but a control character. */
static bool printable(const char *v)
{
	for (; *v != '\0'; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return false;
	return true;
}

/* Sets one parameter from its decoded value v. 0, or -1 with err. */
static int set_param(struct nf_admin_query *q, const char *name, const char *v, int64_t now_ms,
                     char *err, size_t errlen)
{
	struct nf_device_filter *f = &q->filter;
	size_t len = strlen(v);

	if (strcmp(name, "type") == 0 || strcmp(name, "version") == 0) {
		char *dst = name[0] == 't' ? q->device : q->version;
		if (len >= NF_STORE_MAX_TEXT || !printable(v))
			return nf_errf(err, errlen,
			               "%s: at most %d characters, no control characters", name,
			               NF_STORE_MAX_TEXT - 1),
			       -1;
		memcpy(dst, v, len + 1);
		if (name[0] == 't')
			f->device = dst;
		else
			f->version = dst;
	} else if (strcmp(name, "state") == 0) {
		f->state = nf_update_state_parse(v);
		if (f->state < 0)
			return nf_errf(err, errlen, "state: \"%s\" is not one of " STATES, v), -1;
	} else if (strcmp(name, "seen_after") == 0 || strcmp(name, "seen_before") == 0) {
		int64_t *dst = name[5] == 'a' ? &f->seen_after_ms : &f->seen_before_ms;
		if (nf_admin_parse_time(v, now_ms, dst) != 0 || *dst <= 0)
			return nf_errf(err, errlen, "%s: \"%s\" is not " TIMES, name, v), -1;
	} else if (strcmp(name, "mac") == 0) {
		if (parse_mac_prefix(v, q->mac) != 0)
			return nf_errf(
			           err, errlen,
			           "mac: \"%s\" is not the start of a MAC (hex digits, in pairs "
			           "between ':' or '-', at most 12)",
			           v),
			       -1;
		f->mac_prefix = q->mac;
	} else if (strcmp(name, "ip") == 0) {
		if (len >= NF_STORE_IP_LEN || !all_in(v, "0123456789abcdefABCDEF.:"))
			return nf_errf(err, errlen,
			               "ip: \"%s\" is not the start of an IP address (digits, '.', "
			               "hex digits and ':', at most %d)",
			               v, NF_STORE_IP_LEN - 1),
			       -1;
		memcpy(q->ip, v, len + 1);
		f->ip_prefix = q->ip;
	} else if (strcmp(name, "tag") == 0) {
		if (!nf_admin_tag_valid(v))
			return nf_errf(err, errlen,
			               "tag: \"%s\" is not a tag ([A-Za-z0-9_.-], 1 to %d)", v,
			               NF_STORE_MAX_TAG - 1),
			       -1;
		memcpy(q->tag, v, len + 1);
		f->tag = q->tag;
	} else if (strcmp(name, "pin") == 0) {
		size_t id = 0;
		if (strcmp(v, "any") != 0 && (parse_size(v, INT64_MAX / 2, &id) != 0 || id == 0))
			return nf_errf(err, errlen,
			               "pin: \"%s\" is not a release id (a positive integer) or any",
			               v),
			       -1;
		f->pin = id > 0 ? (int64_t)id : -1;
	} else if (strcmp(name, "excluded") == 0) {
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
			return nf_errf(err, errlen, "excluded: \"%s\" is not true or false", v), -1;
		f->excluded = v[0] == 't' ? 1 : -1;
	} else if (strcmp(name, "sort") == 0) {
		int i = 0;
		while (i < NF_SORT_COUNT && strcmp(v, sort_names[i]) != 0)
			i++;
		if (i == NF_SORT_COUNT)
			return nf_errf(err, errlen, "sort: \"%s\" is not one of " SORTS, v), -1;
		f->sort = (enum nf_device_sort)i;
	} else if (strcmp(name, "order") == 0) {
		if (strcmp(v, "asc") != 0 && strcmp(v, "desc") != 0)
			return nf_errf(err, errlen, "order: \"%s\" is not asc or desc", v), -1;
		f->descending = v[0] == 'd';
	} else if (strcmp(name, "offset") == 0) {
		if (parse_size(v, NF_ADMIN_MAX_OFFSET, &f->offset) != 0)
			return nf_errf(err, errlen, "offset: \"%s\" is not a number from 0 to %d",
			               v, NF_ADMIN_MAX_OFFSET),
			       -1;
	} else if (strcmp(name, "limit") == 0) {
		if (parse_size(v, NF_STORE_MAX_PAGE, &f->limit) != 0 || f->limit == 0)
			return nf_errf(err, errlen, "limit: \"%s\" is not a number from 1 to %d", v,
			               NF_STORE_MAX_PAGE),
			       -1;
	}
	return 0;
}

static const char *const param_names[] = {
    "type", "version", "state",    "seen_after", "seen_before", "mac",   "ip",
    "tag",  "pin",     "excluded", "sort",       "order",       "offset", "limit"};
#define NPARAMS (sizeof param_names / sizeof param_names[0])
#define PARAMS                                                                                     \
	"type, version, state, seen_after, seen_before, mac, ip, tag, pin, excluded, sort, order, "  \
	"offset, limit"

int nf_admin_query_parse(const char *query, size_t len, int64_t now_ms, struct nf_admin_query *out,
                         char param[16], char *err, size_t errlen)
{
	const char *p = query, *end = query + len;
	bool seen[NPARAMS] = {false};
	/* A decoded value is never longer than its encoding; this bounds both. */
	char name[16], value[NF_ADMIN_MAX_URL];

	memset(out, 0, sizeof *out);
	out->filter.state = -1;
	out->filter.sort = NF_SORT_LAST_SEEN;
	out->filter.descending = true;
	out->filter.limit = NF_ADMIN_DEFAULT_PAGE;
	out->filter.now_ms = now_ms;
	param[0] = '\0';
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp != NULL ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		const char *vstart = eq != NULL ? eq + 1 : stop;
		size_t i;

		if (stop == p) { /* "a=1&&b=2": an empty pair is nothing */
			p = stop + 1;
			continue;
		}
		if (nf_admin_unescape(p, (size_t)((eq != NULL ? eq : stop) - p), true, name,
		                      sizeof name) < 0 ||
		    !all_in(name, "abcdefghijklmnopqrstuvwxyz_")) {
			int shown = (int)((eq != NULL ? eq : stop) - p);
			return nf_errf(err, errlen,
			               "unknown parameter \"%.*s\"; the parameters are " PARAMS,
			               shown > 32 ? 32 : shown, p),
			       -1;
		}
		for (i = 0; i < NPARAMS && strcmp(name, param_names[i]) != 0; i++)
			;
		if (i == NPARAMS)
			return nf_errf(err, errlen,
			               "unknown parameter \"%s\"; the parameters are " PARAMS,
			               name),
			       -1;
		snprintf(param, 16, "%s", name);
		if (seen[i])
			return nf_errf(err, errlen, "%s: given twice", name), -1;
		seen[i] = true;
		if (nf_admin_unescape(vstart, (size_t)(stop - vstart), true, value, sizeof value) <
		    0)
			return nf_errf(err, errlen,
			               "%s: a bad %%-escape, an encoded NUL, or too long", name),
			       -1;
		if (value[0] != '\0' && set_param(out, name, value, now_ms, err, errlen) != 0)
			return -1;
		p = amp != NULL ? amp + 1 : end;
	}
	param[0] = '\0';
	if (out->filter.seen_after_ms > 0 && out->filter.seen_before_ms > 0 &&
	    out->filter.seen_after_ms >= out->filter.seen_before_ms) {
		snprintf(param, 16, "seen_after");
		return nf_errf(err, errlen, "seen_after: must be earlier than seen_before"), -1;
	}
	return 0;
}
