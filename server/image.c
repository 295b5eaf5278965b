/*
 * image.c - images: x-MD5, conditional requests, ranges, and downloads
 * that wait for an MD5.
 *
 * Every image answer carries x-MD5, which the ESP updater verifies, and an
 * ETag that is the quoted MD5 (docs/PEERS.md section 5). The MD5 comes from
 * the served snapshot when the file is the one the snapshot was built with
 * (same identity), else from a small table of late MD5s (NF_MAX_MD5_CACHE,
 * keyed by identity, loop thread only). When neither knows the file, the
 * loop does not read it: the download is suspended (MHD_suspend_connection),
 * the hasher thread computes the MD5 from the very file descriptor that will
 * be sent, and the download is resumed with it (nf_images_resume, called by
 * the loop when the hasher's eventfd is readable). Downloads of one file
 * share one job.
 *
 * A download holds its own file descriptor from the moment it is opened:
 * neither a waiting nor a running download touches the snapshot's public
 * folder again, so a snapshot swapped out under it can be freed.
 *
 * Images are never redirected, carry Content-Length, and are sent with
 * sendfile (libmicrohttpd reads the descriptor it is given).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "http.h"

#define NF_CONTENT_RANGE_LEN 96 /* "bytes A-B/SIZE" with three 20-digit numbers */

/* A download's own state, the request's req_cls: while it waits for its
 * MD5 (suspended), and from its answer to its end (for the store). */
struct wait {
	struct wait *next;             /* the job's other waiters */
	struct MHD_Connection *conn;
	struct nf_file file;           /* fd owned here until a response takes it (-1) */
	char md5[NF_MD5_HEX];
	int error;                     /* once resumed: 0 or the hasher's errno */
	bool tracked;                  /* dl began: its end is recorded */
	struct nf_download dl;         /* dl.image set when it starts waiting */
};

/* Where a download's state lives: the waiting request's (resumed), or a
 * new one set as the request's req_cls. */
struct track {
	const char *relpath;
	void **req_cls;                /* NULL when w is set */
	struct wait *w;
};

/* One file being hashed for the downloads waiting on it. */
struct job {
	struct nf_hash_job hj;         /* first: the hasher hands this back */
	struct nf_file_id id;
	struct wait *waiters;          /* hj.fd is the first waiter's descriptor, */
	bool owns_fd;                  /* or the job's own (nf_image_md5: no waiter) */
	struct job *next;              /* images->pending */
};

struct nf_images {
	struct nf_hasher *hasher;
	struct nf_digests *late;       /* MD5s of files the snapshot did not know */
	struct job *pending;           /* submitted, not yet back */
};

/* One image answer in the making. */
struct image {
	struct nf_file *f;
	const char *md5;
	char etag[NF_MD5_HEX + 2];     /* "\"" md5 "\"" */
};

struct nf_images *nf_images_new(char *err, size_t errlen)
{
	struct nf_images *im = calloc(1, sizeof *im);

	if (im == NULL || (im->late = nf_digests_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(im);
		return NULL;
	}
	im->hasher = nf_hasher_start(err, errlen);
	if (im->hasher == NULL) {
		nf_images_free(im);
		return NULL;
	}
	return im;
}

int nf_images_fd(const struct nf_images *im)
{
	return nf_hasher_fd(im->hasher);
}

/* If-Modified-Since: the file has not changed since the date given. */
static bool not_modified_since(struct MHD_Connection *conn, const struct nf_file *f)
{
	const char *v = nf_http_header(conn, MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
	struct tm tm;
	const char *end;

	if (v == NULL)
		return false;
	memset(&tm, 0, sizeof tm);
	end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return end != NULL && *end == '\0' && f->mtime <= timegm(&tm);
}

/* An ESP8266 or ESP32 updater fetching a sketch it already runs. */
static bool runs_this_sketch(struct MHD_Connection *conn, const char *md5)
{
	const char *mode = nf_http_header(conn, "x-ESP8266-mode");
	const char *running = nf_http_header(conn, "x-ESP8266-sketch-md5");

	if (mode == NULL) {
		mode = nf_http_header(conn, "x-ESP32-mode");
		running = nf_http_header(conn, "x-ESP32-sketch-md5");
	}
	return mode != NULL && running != NULL && strcmp(mode, "sketch") == 0 &&
	       strcasecmp(running, md5) == 0;
}

bool nf_image_is_download(struct MHD_Connection *conn)
{
	return nf_http_header(conn, "x-ESP8266-mode") != NULL ||
	       nf_http_header(conn, "x-ESP32-mode") != NULL;
}

/* True when an If-None-Match list names etag (or is "*"). */
static bool etag_listed(const char *list, const char *etag)
{
	size_t elen = strlen(etag);

	if (strcmp(list, "*") == 0)
		return true;
	for (const char *p = list; (p = strstr(p, etag)) != NULL; p += elen) {
		bool start = p == list || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/';
		bool end = p[elen] == '\0' || p[elen] == ',' || p[elen] == ' ';
		if (start && end)
			return true;
	}
	return false;
}

/* Queues the file (or len bytes of it from first); the response takes the
 * descriptor, which is closed in every case. */
static enum MHD_Result queue_file(struct MHD_Connection *conn, const struct image *img,
                                  unsigned status, uint64_t first, uint64_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char range[NF_CONTENT_RANGE_LEN];

	if (len == 0) {
		close(img->f->fd);
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	} else {
		/* Takes the fd and sends it with sendfile. */
		r = MHD_create_response_from_fd_at_offset64(len, img->f->fd, first);
		if (r == NULL)
			close(img->f->fd);
	}
	img->f->fd = -1;
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	MHD_add_response_header(r, "x-MD5", img->md5); /* the ESP updater verifies it */
	MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, img->etag);
	MHD_add_response_header(r, MHD_HTTP_HEADER_LAST_MODIFIED, img->f->last_modified);
	MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	if (status == MHD_HTTP_PARTIAL_CONTENT) {
		snprintf(range, sizeof range, "bytes %llu-%llu/%llu", (unsigned long long)first,
		         (unsigned long long)(first + len - 1), (unsigned long long)img->f->size);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, range);
	}
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result queue_unsatisfiable(struct MHD_Connection *conn, struct nf_file *f)
{
	static const char body[] = "Range Not Satisfiable\n";
	struct MHD_Response *r = nf_http_response(body, sizeof body - 1, NF_TYPE_TEXT, false);
	enum MHD_Result ret = MHD_NO;
	char cr[NF_CONTENT_RANGE_LEN];

	close(f->fd);
	f->fd = -1;
	if (r != NULL) {
		snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)f->size);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
		ret = MHD_queue_response(conn, MHD_HTTP_RANGE_NOT_SATISFIABLE, r);
		MHD_destroy_response(r);
	}
	return ret;
}

/* Queues a body (200 or 206) and, once queued, records the download's
 * start and counts it in flight; its end comes with the request's
 * (nf_image_completed). Past max-downloads it is 503 instead: a resume (a
 * 206) is a transfer too, and a HEAD is told what its GET would get. A HEAD
 * sends no body: nothing to record or count. */
static enum MHD_Result send_image(struct nf_server *srv, struct MHD_Connection *conn,
                                  const struct image *img, unsigned status, uint64_t first,
                                  uint64_t len, const struct track *t)
{
	uint64_t size = img->f->size;
	struct wait *w = t->w;

	if (len > 0 && nf_downloads_full(srv)) {
		close(img->f->fd);
		img->f->fd = -1;
		return nf_downloads_refuse(srv, conn);
	}
	enum MHD_Result ret = queue_file(conn, img, status, first, len);

	if (ret != MHD_YES || len == 0 || srv->head)
		return ret;
	if (w == NULL) {
		w = calloc(1, sizeof *w);
		if (w == NULL)
			return ret; /* served, not recorded */
		w->file.fd = -1;
		nf_record_image_key(t->relpath, w->dl.image);
		*t->req_cls = w;
	}
	w->tracked = true;
	nf_downloads_begin(srv);
	nf_record_download_start(srv, conn, &w->dl, img->md5, size, first, len);
	return ret;
}

/* The answer for an open file whose MD5 is known: 304, 206, 416 or 200. */
static enum MHD_Result answer(struct nf_server *srv, struct MHD_Connection *conn,
                              struct nf_file *f, const char *md5, const struct track *t)
{
	struct image img = {.f = f, .md5 = md5};
	const char *inm, *range, *if_range;
	uint64_t first = 0, last = 0;

	snprintf(img.etag, sizeof img.etag, "\"%s\"", md5);
	/* Stock firmware pointed straight at an image sends the MD5 of the
	 * sketch it runs; that very image is "no update" (304), not a reflash
	 * on every check (docs/PEERS.md section 5). */
	if (runs_this_sketch(conn, md5))
		return queue_file(conn, &img, MHD_HTTP_NOT_MODIFIED, 0, 0);
	inm = nf_http_header(conn, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if ((inm != NULL && etag_listed(inm, img.etag)) ||
	    (inm == NULL && not_modified_since(conn, f)))
		return queue_file(conn, &img, MHD_HTTP_NOT_MODIFIED, 0, 0);

	range = nf_http_header(conn, MHD_HTTP_HEADER_RANGE);
	if_range = nf_http_header(conn, MHD_HTTP_HEADER_IF_RANGE);
	/* If-Range: the range applies only to the version the client has. */
	if (range != NULL && if_range != NULL && strcmp(if_range, img.etag) != 0 &&
	    strcmp(if_range, f->last_modified) != 0)
		range = NULL;
	switch (nf_range_parse(range, f->size, &first, &last)) {
	case NF_RANGE_OK:
		return send_image(srv, conn, &img, MHD_HTTP_PARTIAL_CONTENT, first, last - first + 1,
		                  t);
	case NF_RANGE_UNSATISFIABLE:
		return queue_unsatisfiable(conn, f);
	default:
		return send_image(srv, conn, &img, MHD_HTTP_OK, 0, f->size, t);
	}
}

static struct job *pending_job(struct nf_images *im, const struct nf_file_id *id)
{
	for (struct job *j = im->pending; j != NULL; j = j->next)
		if (nf_file_id_equal(&j->id, id))
			return j;
	return NULL;
}

/* Joins w to the job hashing its file, submitting one when there is none.
 * Returns 0, or -1 when the hasher is full or memory is short. */
static int join_job(struct nf_images *im, struct wait *w)
{
	struct job *job = pending_job(im, &w->file.id);

	if (job == NULL) {
		job = calloc(1, sizeof *job);
		if (job == NULL)
			return -1;
		job->hj.fd = w->file.fd;
		job->id = w->file.id;
		if (nf_hasher_submit(im->hasher, &job->hj) != 0) {
			free(job);
			return -1;
		}
		job->next = im->pending;
		im->pending = job;
	}
	w->next = job->waiters;
	job->waiters = w;
	return 0;
}

/* No MD5 for f yet: suspend the download until the hasher has one. Owns
 * f's descriptor from here on. */
static enum MHD_Result wait_for_md5(struct nf_server *srv, struct MHD_Connection *conn,
                                    struct nf_file *f, const char *relpath, void **req_cls)
{
	struct wait *w = calloc(1, sizeof *w);

	if (w != NULL) {
		w->file = *f;
		w->conn = conn;
		nf_record_image_key(relpath, w->dl.image);
	}
	if (w == NULL || join_job(srv->images, w) != 0) {
		close(f->fd);
		free(w);
		nf_log(NF_LOG_WARN, "too many images being hashed: 503 for now");
		return MHD_queue_response(conn, MHD_HTTP_SERVICE_UNAVAILABLE, srv->unavailable);
	}
	*req_cls = w;
	MHD_suspend_connection(conn);
	return MHD_YES;
}

enum MHD_Result nf_image_serve(struct nf_server *srv, struct MHD_Connection *conn,
                               const char *relpath, void **req_cls)
{
	const struct nf_snapshot *snap = srv->snap;
	struct nf_file f;
	const char *md5;

	if (nf_files_get(snap->files, relpath, &f) != 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EACCES ||
		    errno == ENAMETOOLONG)
			return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, srv->not_found);
		nf_log(NF_LOG_ERROR, "%s: %s", relpath, strerror(errno));
		return MHD_queue_response(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, srv->server_error);
	}
	md5 = nf_digests_get(snap->digests, &f.id);
	if (md5 == NULL)
		md5 = nf_digests_get(srv->images->late, &f.id);
	if (md5 != NULL)
		return answer(srv, conn, &f, md5, &(struct track){relpath, req_cls, NULL});
	return wait_for_md5(srv, conn, &f, relpath, req_cls);
}

int nf_image_md5(struct nf_server *srv, const char *relpath, char md5[NF_MD5_HEX])
{
	const struct nf_snapshot *snap = srv->snap;
	struct nf_images *im = srv->images;
	struct nf_file f;
	const char *known;
	struct job *job;

	if (nf_files_get(snap->files, relpath, &f) != 0)
		return -1;
	known = nf_digests_get(snap->digests, &f.id);
	if (known == NULL)
		known = nf_digests_get(im->late, &f.id);
	if (known != NULL || pending_job(im, &f.id) != NULL) {
		close(f.fd);
		if (known == NULL)
			return 1;
		memcpy(md5, known, NF_MD5_HEX);
		return 0;
	}
	/* Hashed with no download waiting; the next call finds it in the late
	 * table. A full hasher just means the next call tries again. */
	job = calloc(1, sizeof *job);
	if (job != NULL) {
		job->hj.fd = f.fd;
		job->id = f.id;
		job->owns_fd = true;
	}
	if (job == NULL || nf_hasher_submit(im->hasher, &job->hj) != 0) {
		close(f.fd);
		free(job);
		return 1;
	}
	job->next = im->pending;
	im->pending = job;
	return 1;
}

enum MHD_Result nf_image_resumed(struct nf_server *srv, struct MHD_Connection *conn,
                                 void *req_cls)
{
	struct wait *w = req_cls;

	if (w->file.fd < 0) /* answered already: cannot happen, but never answer twice */
		return MHD_NO;
	if (w->error == 0)
		return answer(srv, conn, &w->file, w->md5, &(struct track){NULL, NULL, w});
	close(w->file.fd);
	w->file.fd = -1;
	if (w->error == ECANCELED)
		return MHD_NO; /* shutting down: close the connection */
	nf_log(NF_LOG_ERROR, "reading an image to hash it: %s", strerror(w->error));
	return MHD_queue_response(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, srv->server_error);
}

void nf_image_completed(struct nf_server *srv, struct MHD_Connection *conn, void *req_cls,
                        enum MHD_RequestTerminationCode toe)
{
	struct wait *w = req_cls;

	if (w->tracked) {
		nf_downloads_end(srv);
		nf_record_download_end(srv, conn, &w->dl, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	}

	if (w->file.fd >= 0)
		close(w->file.fd);
	free(w);
}

/* Remembers a late MD5; a full table starts over rather than evicting (it
 * only fills when files change faster than the rules are reloaded). */
static void remember(struct nf_images *im, const struct job *job)
{
	if (nf_digests_count(im->late) >= NF_MAX_MD5_CACHE)
		nf_digests_clear(im->late);
	nf_digests_put(im->late, &job->id, job->hj.md5); /* out of memory: just not remembered */
}

/* Hands a finished job's outcome to its waiters, resumes them, frees it. */
static void finish(struct nf_images *im, struct job *job)
{
	if (job->owns_fd)
		close(job->hj.fd);
	struct job **p = &im->pending;

	while (*p != NULL && *p != job)
		p = &(*p)->next;
	if (*p != NULL)
		*p = job->next;
	if (job->hj.error == 0)
		remember(im, job);
	for (struct wait *w = job->waiters, *next; w != NULL; w = next) {
		next = w->next;
		w->error = job->hj.error;
		memcpy(w->md5, job->hj.md5, sizeof w->md5);
		MHD_resume_connection(w->conn);
	}
	free(job);
}

static void finish_all(struct nf_images *im, struct nf_hash_job *list)
{
	while (list != NULL) {
		struct nf_hash_job *next = list->next;
		finish(im, (struct job *)(void *)list);
		list = next;
	}
}

void nf_images_resume(struct nf_images *im)
{
	finish_all(im, nf_hasher_collect(im->hasher));
}

void nf_images_stop(struct nf_images *im)
{
	if (im == NULL || im->hasher == NULL)
		return;
	finish_all(im, nf_hasher_stop(im->hasher));
	im->hasher = NULL;
}

void nf_images_free(struct nf_images *im)
{
	if (im == NULL)
		return;
	nf_images_stop(im);
	nf_digests_free(im->late);
	free(im);
}
