/*
 * upload.c - one image uploaded to the admin API, streamed to disk (issue 10
 * item 1): written to a hidden temporary file in public/releases/ (nofussd
 * never serves hidden names), hashed (MD5 and SHA-256, OpenSSL EVP) as it
 * comes, on the admin connection's own thread, bounded in size, its first
 * bytes checked as soon as they arrive so that a wrong file is refused
 * before it is all sent. At the end the file is fsynced and linked to
 * releases/<sha256>.bin, a name its content decides: link(2) never replaces
 * a file, so a stored image is never overwritten (the same content uploaded
 * again finds its file there and uses it). Anything that does not reach
 * nf_upload_finish (a cut connection, a refusal) leaves nothing: the
 * temporary file is unlinked by nf_upload_abort.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "admin.h"
#include "common.h"
#include "nofussd.h"

#define ESP_FLASH_MODES 4 /* QIO, QOUT, DIO, DOUT */

static const char *const flash_mode_names[ESP_FLASH_MODES] = {"QIO", "QOUT", "DIO", "DOUT"};

const char *nf_upload_flash_mode_name(int mode)
{
	return mode >= 0 && mode < ESP_FLASH_MODES ? flash_mode_names[mode] : NULL;
}

static int refuse(struct nf_upload *u, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(struct nf_upload *u, unsigned status, const char *fmt, ...)
{
	va_list ap;

	if (u->status != 0)
		return -1;
	u->status = status;
	va_start(ap, fmt);
	vsnprintf(u->err, sizeof u->err, fmt, ap);
	va_end(ap);
	return -1;
}

int nf_upload_begin(struct nf_upload *u, const char *public_dir, const char *field,
                    uint64_t max, bool firmware)
{
	char name[sizeof u->field];

	snprintf(name, sizeof name, "%s", field); /* field may be u->field */
	memset(u, 0, sizeof *u);
	u->fd = -1;
	u->max = max;
	u->firmware = firmware;
	u->image.flash_mode = -1;
	memcpy(u->field, name, sizeof name);
	if ((size_t)snprintf(u->dir, sizeof u->dir, "%s/%s", public_dir, NF_RELEASES_DIR) >=
	    sizeof u->dir)
		return refuse(u, 500, "the public folder's path is too long");
	if (mkdir(u->dir, 0755) != 0 && errno != EEXIST)
		return refuse(u, 500, "cannot make %s: %s", u->dir, strerror(errno));
	snprintf(u->tmp, sizeof u->tmp, "%s/.upload-XXXXXX", u->dir);
	u->fd = mkstemp(u->tmp);
	if (u->fd < 0) {
		u->tmp[0] = '\0';
		return refuse(u, 500, "cannot make a file in %s: %s", u->dir, strerror(errno));
	}
	fchmod(u->fd, 0644);
	u->md5 = EVP_MD_CTX_new();
	u->sha = EVP_MD_CTX_new();
	if (u->md5 == NULL || u->sha == NULL || EVP_DigestInit_ex(u->md5, EVP_md5(), NULL) != 1 ||
	    EVP_DigestInit_ex(u->sha, EVP_sha256(), NULL) != 1)
		return refuse(u, 500, "cannot start the digests");
	return 0;
}

/* The header checks on the first NF_ESP_HEADER_LEN bytes (or all of a
 * shorter image, at the end). */
static int check_header(struct nf_upload *u)
{
	const unsigned char *b = u->head;
	struct nf_esp_header h;

	if (u->head_len < 4)
		return refuse(u, 400, "%s is %zu bytes: too short for an image header", u->field,
		              u->head_len);
	if (nf_esp_header_parse(b, u->head_len, &h) != 0)
		return refuse(u, 400,
		              "%s is not a firmware image: it starts with 0x%02X 0x%02X, expected "
		              "0xE9 (an ESP8266/ESP32 application image) or 0x1F 0x8B (gzip)",
		              u->field, u->head_len > 0 ? b[0] : 0, u->head_len > 1 ? b[1] : 0);
	u->image.format = (int)h.format;
	u->image.flash_mode = -1;
	if (h.format == NF_IMAGE_GZIP)
		return 0; /* the header is inside: flash size and mode unknown */
	if (h.flash_mode >= ESP_FLASH_MODES)
		return refuse(u, 400,
		              "%s: flash mode byte is %u, not one of 0-3 (QIO, QOUT, DIO, DOUT): "
		              "not an application image",
		              u->field, h.flash_mode);
	uint64_t flash = nf_esp_flash_bytes(h.family, h.flash_size_code);
	if (h.family == NF_CHIP_UNKNOWN) {
		flash = nf_esp_flash_bytes(NF_CHIP_ESP8266, h.flash_size_code);
		if (flash == 0)
			flash = nf_esp_flash_bytes(NF_CHIP_ESP32, h.flash_size_code);
	}
	if (flash == 0)
		return refuse(u, 400, "%s: flash size code 0x%X is not one the %s knows", u->field,
		              h.flash_size_code,
		              h.family == NF_CHIP_ESP32 ? "ESP32" : "ESP8266 or ESP32");
	u->image.flash_mode = h.flash_mode;
	u->image.flash_size = flash;
	const char *chip = h.family != NF_CHIP_UNKNOWN ? nf_esp_chip_family(&h) : NULL;
	snprintf(u->image.chip, sizeof u->image.chip, "%s", chip != NULL ? chip : "");
	return 0;
}

/* Writes what is pending. 0, or -1 refused. */
static int flush(struct nf_upload *u)
{
	for (size_t off = 0; off < u->pending_len;) {
		ssize_t w = write(u->fd, u->pending + off, u->pending_len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return refuse(u, 500, "writing %s: %s", u->tmp,
			              w < 0 ? strerror(errno) : "no space");
		off += (size_t)w;
	}
	u->pending_len = 0;
	return 0;
}

int nf_upload_feed(struct nf_upload *u, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (u->status != 0)
		return -1;
	if (len > u->max - u->image.size)
		return refuse(u, 413, "%s is larger than %llu bytes, the most an image may have",
		              u->field, (unsigned long long)u->max);
	if (u->head_len < sizeof u->head) {
		size_t n = len < sizeof u->head - u->head_len ? len : sizeof u->head - u->head_len;
		memcpy(u->head + u->head_len, p, n);
		u->head_len += n;
		if (u->firmware && u->head_len == sizeof u->head && check_header(u) != 0)
			return -1;
	}
	for (size_t off = 0; off < len;) {
		size_t n = len - off < sizeof u->pending - u->pending_len
		               ? len - off
		               : sizeof u->pending - u->pending_len;
		memcpy(u->pending + u->pending_len, p + off, n);
		u->pending_len += n;
		off += n;
		if (u->pending_len == sizeof u->pending && flush(u) != 0)
			return -1;
	}
	if (EVP_DigestUpdate(u->md5, p, len) != 1 || EVP_DigestUpdate(u->sha, p, len) != 1)
		return refuse(u, 500, "digest failed");
	u->image.size += len;
	return 0;
}

/* dir's own entry made durable (the link). */
static void sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int nf_upload_seal(struct nf_upload *u)
{
	unsigned char md5[EVP_MAX_MD_SIZE], sha[EVP_MAX_MD_SIZE];
	unsigned md5_len = 0, sha_len = 0;

	if (u->status != 0)
		return -1;
	if (u->image.size == 0)
		return refuse(u, 400, "%s is empty: the request has no body (send the image as "
		                      "the body, e.g. curl --data-binary @fw.bin)",
		              u->field);
	if (u->firmware && u->head_len < sizeof u->head && check_header(u) != 0)
		return -1;
	if (EVP_DigestFinal_ex(u->md5, md5, &md5_len) != 1 ||
	    EVP_DigestFinal_ex(u->sha, sha, &sha_len) != 1 || md5_len != 16 || sha_len != 32)
		return refuse(u, 500, "digest failed");
	nf_hex_encode(md5, 16, u->image.md5);
	nf_hex_encode(sha, 32, u->image.sha256);
	if (flush(u) != 0)
		return -1;
	if (fsync(u->fd) != 0)
		return refuse(u, 500, "fsync %s: %s", u->tmp, strerror(errno));
	return 0;
}

int nf_upload_store(struct nf_upload *u)
{
	char final[sizeof u->dir + 80];

	if (u->status != 0)
		return -1;
	snprintf(final, sizeof final, "%s/%s.bin", u->dir, u->image.sha256);
	if (link(u->tmp, final) != 0 && errno != EEXIST)
		return refuse(u, 500, "cannot store %s: %s", final, strerror(errno));
	/* EEXIST: the same bytes are stored already (their name is their
	 * SHA-256); that file is used as it is. */
	sync_dir(u->dir);
	snprintf(u->image.path, sizeof u->image.path, "/%s/%s.bin", NF_RELEASES_DIR,
	         u->image.sha256);
	return 0;
}

int nf_upload_fd(const struct nf_upload *u)
{
	return u->fd;
}

void nf_upload_abort(struct nf_upload *u)
{
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
	if (u->tmp[0] != '\0')
		unlink(u->tmp);
	u->tmp[0] = '\0';
	EVP_MD_CTX_free(u->md5);
	EVP_MD_CTX_free(u->sha);
	u->md5 = u->sha = NULL;
}

size_t nf_upload_sweep(const char *public_dir)
{
	char dir[NF_MAX_PATH], path[NF_MAX_PATH + 64];
	time_t now = time(NULL);
	size_t removed = 0;
	struct dirent *e;
	struct stat st;
	DIR *d;

	if ((size_t)snprintf(dir, sizeof dir, "%s/%s", public_dir, NF_RELEASES_DIR) >= sizeof dir ||
	    (d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, ".upload-", 8) != 0 ||
		    (size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path ||
		    lstat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
		    now - st.st_mtime < NF_UPLOAD_STALE_S)
			continue;
		if (unlink(path) == 0)
			removed++;
	}
	closedir(d);
	if (removed > 0)
		nf_log(NF_LOG_INFO, "%s: removed %zu unfinished uploads an earlier run left", dir,
		       removed);
	return removed;
}
