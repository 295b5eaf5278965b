/*
 * files.c - the images under the public folder, and their MD5.
 *
 * Every open is confined to the public folder (confine.c): a symlink that
 * stays inside the folder works; one that leads out is "not found".
 *
 * The device's updater verifies the x-MD5 response header (docs/PEERS.md
 * section 5), so each file's MD5 is computed once and remembered together
 * with the file's identity (device, inode, size, mtime, ctime); any change
 * to the file makes it be computed again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nofussd.h"

#define NF_MD5_BUCKETS 1024

struct md5_entry {
	struct md5_entry *next;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
	char md5[33];
	char path[];           /* relpath, NUL-terminated */
};

struct nf_files {
	struct nf_confine dir; /* the public folder */
	size_t cached;
	struct md5_entry *buckets[NF_MD5_BUCKETS];
};

struct nf_files *nf_files_open(const char *public_dir, char *err, size_t errlen)
{
	struct nf_files *files = calloc(1, sizeof *files);

	if (files == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (realpath(public_dir, files->dir.root) == NULL) {
		snprintf(err, errlen, "public folder %s: %s", public_dir, strerror(errno));
		free(files);
		return NULL;
	}
	files->dir.rootlen = strlen(files->dir.root);
	files->dir.rootfd = open(files->dir.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (files->dir.rootfd < 0) {
		snprintf(err, errlen, "public folder %s: %s", public_dir, strerror(errno));
		free(files);
		return NULL;
	}
	files->dir.use_openat2 = true;
	return files;
}

static void clear_cache(struct nf_files *files)
{
	for (size_t b = 0; b < NF_MD5_BUCKETS; b++) {
		while (files->buckets[b] != NULL) {
			struct md5_entry *e = files->buckets[b];
			files->buckets[b] = e->next;
			free(e);
		}
	}
	files->cached = 0;
}

void nf_files_close(struct nf_files *files)
{
	if (files == NULL)
		return;
	clear_cache(files);
	close(files->dir.rootfd);
	free(files);
}

/* Opens relpath beneath the public folder, never outside it. */
static int open_beneath(struct nf_files *files, const char *relpath, int flags)
{
	/* O_NONBLOCK: a FIFO must not block the daemon's only thread; regular
	 * files ignore it. */
	return nf_confine_open(&files->dir, relpath,
	                       flags | ((flags & O_PATH) ? 0 : O_NOCTTY | O_NONBLOCK));
}

static int compute_md5(int fd, char out[33])
{
	unsigned char buf[64 * 1024], digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	off_t off = 0;
	int rc = -1;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1)
		goto done;
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof buf, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto done;
		if (n == 0)
			break;
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			goto done;
		off += n;
	}
	if (EVP_DigestFinal_ex(ctx, digest, &dlen) != 1 || dlen != 16)
		goto done;
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", digest[i]);
	rc = 0;
done:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static bool same_file(const struct md5_entry *e, const struct stat *st)
{
	return e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
	       e->mtim.tv_sec == st->st_mtim.tv_sec && e->mtim.tv_nsec == st->st_mtim.tv_nsec &&
	       e->ctim.tv_sec == st->st_ctim.tv_sec && e->ctim.tv_nsec == st->st_ctim.tv_nsec;
}

/* The MD5 of the open file fd, from the cache when the file is unchanged. */
static int file_md5(struct nf_files *files, const char *relpath, int fd, const struct stat *st,
                    char out[33])
{
	size_t len = strlen(relpath);
	size_t b = nf_hash(relpath, len) & (NF_MD5_BUCKETS - 1);
	struct md5_entry *e;

	for (e = files->buckets[b]; e != NULL; e = e->next)
		if (strcmp(e->path, relpath) == 0)
			break;
	if (e != NULL && same_file(e, st)) {
		memcpy(out, e->md5, 33);
		return 0;
	}
	if (compute_md5(fd, out) != 0)
		return -1;
	if (e == NULL) {
		/* The cache only ever holds what rules name, so a full cache means
		 * someone is walking the folder: start over rather than evict. */
		if (files->cached >= NF_MD5_CACHE_MAX)
			clear_cache(files);
		e = malloc(sizeof *e + len + 1);
		if (e == NULL)
			return 0; /* the answer is still right, just not remembered */
		memcpy(e->path, relpath, len + 1);
		e->next = files->buckets[b];
		files->buckets[b] = e;
		files->cached++;
	}
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->size = st->st_size;
	e->mtim = st->st_mtim;
	e->ctim = st->st_ctim;
	memcpy(e->md5, out, 33);
	return 0;
}

int nf_files_get(struct nf_files *files, const char *relpath, struct nf_file *out)
{
	struct stat st;
	struct tm tm;
	int fd = open_beneath(files, relpath, O_RDONLY);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = ENOENT;
		return -1;
	}
	if (file_md5(files, relpath, fd, &st, out->md5) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	out->fd = fd;
	out->size = (uint64_t)st.st_size;
	out->mtime = st.st_mtim.tv_sec;
	snprintf(out->etag, sizeof out->etag, "\"%s\"", out->md5);
	gmtime_r(&out->mtime, &tm);
	strftime(out->last_modified, sizeof out->last_modified, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return 0;
}

bool nf_files_is_folder(struct nf_files *files, const char *name, size_t len)
{
	char path[NF_MAX_FIELD + 1];
	int fd;

	if (len == 0 || len > NF_MAX_FIELD)
		return false;
	memcpy(path, name, len);
	path[len] = '\0';
	fd = open_beneath(files, path, O_PATH | O_DIRECTORY);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}
