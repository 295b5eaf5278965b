/*
 * files.c - the images under the public folder: confined opens, file
 * identities and MD5s.
 *
 * A file's identity (device, inode, size, mtime, ctime) says whether an MD5
 * computed earlier still holds: any change to the file changes it. This file
 * only computes digests (nf_files_md5); who remembers them, and on which
 * thread they are computed, is snapshot.c's and image.c's business.
 *
 * Every open is confined to the public folder (confine.c): a symlink that
 * stays inside the folder works; one that leads out is "not found".
 *
 * Threads: a struct nf_files is used by one thread at a time (the builder
 * while it makes a snapshot, then the loop once the snapshot is published),
 * so the use_openat2 flag needs no lock. nf_files_md5 works on any thread.
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

#include "common.h"
#include "nofussd.h"

struct nf_files {
	struct nf_confine dir; /* the public folder */
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

void nf_files_close(struct nf_files *files)
{
	if (files == NULL)
		return;
	close(files->dir.rootfd);
	free(files);
}

/* Opens relpath beneath the public folder, never outside it (confine.c). */
static int open_beneath(struct nf_files *files, const char *relpath, int flags)
{
	/* O_NONBLOCK: a FIFO must not block the daemon's only thread; regular
	 * files ignore it. */
	return nf_confine_open(&files->dir, relpath,
	                       flags | ((flags & O_PATH) ? 0 : O_NOCTTY | O_NONBLOCK));
}

int nf_files_md5(int fd, char out[NF_MD5_HEX], const atomic_bool *cancel)
{
	return nf_files_md5_feed(fd, out, cancel, NULL, NULL);
}

int nf_files_md5_feed(int fd, char out[NF_MD5_HEX], const atomic_bool *cancel,
                      nf_files_feed feed, void *arg)
{
	unsigned char buf[NF_HASH_CHUNK], digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	off_t off = 0;
	int rc = -1, saved;

	errno = EIO; /* what a failing EVP call leaves */
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1)
		goto done;
	for (;;) {
		ssize_t n;
		if (cancel != NULL && atomic_load(cancel)) {
			errno = ECANCELED;
			goto done;
		}
		n = pread(fd, buf, sizeof buf, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto done;
		if (n == 0)
			break;
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			goto done;
		if (feed != NULL && feed(arg, buf, (size_t)n) != 0) {
			errno = EIO;
			goto done;
		}
		off += n;
	}
	if (EVP_DigestFinal_ex(ctx, digest, &dlen) != 1 || dlen != 16)
		goto done;
	nf_hex_encode(digest, dlen, out);
	rc = 0;
done:
	saved = errno;
	EVP_MD_CTX_free(ctx);
	errno = saved;
	return rc;
}

void nf_file_id_of(const struct stat *st, struct nf_file_id *id)
{
	memset(id, 0, sizeof *id);
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtim = st->st_mtim;
	id->ctim = st->st_ctim;
}

bool nf_file_id_equal(const struct nf_file_id *a, const struct nf_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec &&
	       a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
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
	out->fd = fd;
	out->size = (uint64_t)st.st_size;
	out->mtime = st.st_mtim.tv_sec;
	nf_file_id_of(&st, &out->id);
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
