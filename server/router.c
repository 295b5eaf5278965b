/*
 * router.c - decide what a request path asks for.
 *
 * Input is the raw request path: nofussd gives libmicrohttpd an identity
 * unescape callback so that this file sees "%2F" and "%00" and can refuse
 * them, instead of receiving an already-decoded "/" it could not tell apart.
 *
 * Old clients build URLs with "%s/%s/%s", so "//" and "///" are normal
 * (docs/PEERS.md section 1): repeated slashes collapse before routing. Dot
 * segments and hidden names are refused outright, so no route can climb out
 * of the public folder; files.c checks symlinks on top of that.
 *
 * Two first segments are reserved for the clients that are not NoFUSS
 * (docs/PROTOCOL.md section 5): "update" (/update, /update/DEVICE) for the
 * stock ESP8266/ESP32 updaters and Tasmota, "esphome"
 * (/esphome/NAME/manifest.json) for ESPHome. The router only marks them;
 * http.c decides, because a public folder of the same name wins (nothing
 * served before a reserved name existed changes) and a NoFUSS path-form
 * check of a device named "update" (no updater headers) stays a check.
 */
#include <string.h>
#include <strings.h>

#include "common.h"
#include "nofussd.h"

/* Percent-decodes url into out (cap bytes with the NUL) and collapses
 * repeated slashes. Fails on bad escapes, encoded '/' or NUL, and length. */
static int decode_path(const char *url, char *out, size_t cap)
{
	size_t n = 0;

	for (const char *p = url; *p != '\0'; p++) {
		char c = *p;
		if (c == '%') {
			int hi = nf_hex_digit(p[1]), lo = hi < 0 ? -1 : nf_hex_digit(p[2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi * 16 + lo);
			if (c == '\0' || c == '/' || c == '\\')
				return -1;
			p += 2;
		} else if (c == '/' && n > 0 && out[n - 1] == '/') {
			continue;
		}
		if (n + 1 >= cap)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	return 0;
}

/* Strips the base prefix (whole segments) from path. Returns the rest, which
 * is "" or starts with '/', or NULL when path is not under base. */
static const char *strip_base(const char *base, const char *path)
{
	size_t blen = strlen(base);

	if (strncmp(path, base, blen) != 0)
		return NULL;
	if (path[blen] != '\0' && path[blen] != '/')
		return NULL;
	return path + blen;
}

static bool seg_is(const char *seg, size_t len, const char *word)
{
	return seg != NULL && len == strlen(word) && memcmp(seg, word, len) == 0;
}

/* /update, /update/DEVICE and /esphome/NAME/manifest.json. */
static void mark_reserved(struct nf_route *out, const char *const *seg, const size_t *seglen,
                          size_t nseg)
{
	if (nseg >= 1 && nseg <= 2 && seg_is(seg[0], seglen[0], NF_STOCK_SEGMENT) &&
	    (nseg == 1 || seglen[1] <= NF_MAX_FIELD)) {
		out->reserved = NF_RESERVED_UPDATE;
		out->name = nseg == 2 ? seg[1] : NULL;
		out->name_len = nseg == 2 ? seglen[1] : 0;
	} else if (nseg == 3 && seg_is(seg[0], seglen[0], NF_ESPHOME_SEGMENT) &&
	           seg_is(seg[2], seglen[2], NF_ESPHOME_MANIFEST) && seglen[1] <= NF_MAX_FIELD) {
		out->reserved = NF_RESERVED_ESPHOME;
		out->name = seg[1];
		out->name_len = seglen[1];
	}
}

void nf_route_warn_shadowed(struct nf_files *files, const char *public_dir)
{
	static const char *const names[] = {NF_STOCK_SEGMENT, NF_ESPHOME_SEGMENT};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (nf_files_is_folder(files, names[i], strlen(names[i])))
			nf_log(
			    NF_LOG_WARN,
			    "%s/%s: this folder takes the place of nofussd's /%s URLs: they serve "
			    "its files, not the rules' answers to %s (docs/PROTOCOL.md section 5); "
			    "rename the folder to use them",
			    public_dir, names[i], names[i],
			    i == 0 ? "stock updaters and Tasmota" : "ESPHome");
}

void nf_route(const char *base, const char *url, struct nf_route *out)
{
	char decoded[NF_MAX_URL + 1];
	const char *rest, *seg[3] = {NULL, NULL, NULL};
	size_t seglen[3] = {0, 0, 0}, nseg = 0, n = 0;

	out->path[0] = '\0';
	out->reserved = NF_RESERVED_NONE;
	out->name = NULL;
	out->name_len = 0;
	out->device = out->version = NULL;
	out->device_len = out->version_len = 0;
	out->version_buf[0] = '\0';

	/* Absolute form ("GET http://host/path", RFC 9112 section 3.2.2):
	 * only the path counts. */
	if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0) {
		const char *path = strchr(strstr(url, "//") + 2, '/');
		url = path != NULL ? path : "/";
	}
	if (url[0] != '/' || decode_path(url, decoded, sizeof decoded) != 0) {
		out->kind = NF_ROUTE_BAD;
		return;
	}
	rest = strip_base(base, decoded);
	if (rest == NULL) {
		out->kind = NF_ROUTE_NOT_FOUND;
		return;
	}

	/* Copy the segments below base into out->path, joined by '/'. */
	while (*rest != '\0') {
		const char *s;
		size_t len;

		if (*rest == '/') {
			rest++;
			continue;
		}
		s = rest;
		while (*rest != '\0' && *rest != '/')
			rest++;
		len = (size_t)(rest - s);
		if (s[0] == '.') { /* ".", "..", and hidden files are never served */
			out->kind = NF_ROUTE_BAD;
			return;
		}
		if (nseg < 3) {
			seg[nseg] = out->path + n + (n > 0);
			seglen[nseg] = len;
		}
		nseg++;
		if (n > 0)
			out->path[n++] = '/';
		memcpy(out->path + n, s, len);
		n += len;
		out->path[n] = '\0';
	}

	mark_reserved(out, seg, seglen, nseg);
	if (nseg == 0) {
		out->kind = NF_ROUTE_CHECK_HEADERS;
	} else if (nseg == 2 && seglen[0] <= NF_MAX_FIELD && seglen[1] <= NF_MAX_FIELD) {
		out->kind = NF_ROUTE_FILE_OR_CHECK;
		out->device = seg[0];
		out->device_len = seglen[0];
		memcpy(out->version_buf, seg[1], seglen[1]);
		out->version_buf[seglen[1]] = '\0';
		out->version = out->version_buf;
		out->version_len = seglen[1];
	} else {
		out->kind = NF_ROUTE_FILE;
	}
}
