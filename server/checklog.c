/*
 * checklog.c - one line per check, in the original NoFUSS format
 * (PROTOCOLS.md section 4), so existing log readers keep working:
 *
 *   [2016/07/30 00:17:29] from:192.168.1.5 device:TEST version:0.1.0 update:0.1.1
 *   [2019/06/04 10:00:00] IP: 192.168.1.5 MAC: 5C:CF:7F:8B:6B:26 DEVICE: X ...
 *
 * Lines are formatted into a buffer and written when it fills or when the
 * event loop calls nf_checklog_flush (at least once a second), so a check
 * costs no system call. The daemon is single-threaded: no locks. On SIGUSR1
 * the loop calls nf_checklog_reopen for logrotate.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nofussd.h"

#define NF_CHECKLOG_BUFFER (64 * 1024)
#define NF_STAMP_LEN 32 /* "[YYYY/MM/DD HH:MM:SS]" and room to spare */

struct nf_checklog {
	int fd;                /* -1 when the log is off */
	bool owns_fd;          /* false for stdout */
	char path[NF_MAX_PATH];
	time_t stamp_time;     /* the second stamp[] was made for */
	char stamp[NF_STAMP_LEN];        /* "[YYYY/MM/DD HH:MM:SS]" */
	bool write_failed;     /* to report a failing disk once, not per line */
	size_t used;
	char buf[NF_CHECKLOG_BUFFER];
};

/* Server local time, as the original did. */
static void make_stamp(char *out, size_t cap, time_t now)
{
	struct tm tm;

	if (localtime_r(&now, &tm) == NULL || strftime(out, cap, "[%Y/%m/%d %H:%M:%S]", &tm) == 0)
		snprintf(out, cap, "[%lld]", (long long)now);
}

/* Appends s to out, replacing control bytes so that no value can forge a
 * line of its own. Returns the new length, never past cap - 1. */
static size_t append(char *out, size_t n, size_t cap, const char *s, size_t len)
{
	if (len > cap - 1 - n)
		len = cap - 1 - n;
	/* No early exit in the loop, so the compiler can vectorise it. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		out[n + i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	n += len;
	out[n] = '\0';
	return n;
}

static size_t append_str(char *out, size_t n, size_t cap, const char *s)
{
	return append(out, n, cap, s ? s : "", s ? strlen(s) : 0);
}

static size_t finish_line(char *out, size_t n, size_t cap)
{
	if (n + 1 >= cap)
		n = cap - 2;
	out[n++] = '\n';
	out[n] = '\0';
	return n;
}

static size_t format_path(char *out, size_t cap, const char *stamp, const char *ip,
                          const struct nf_query *q, const char *update)
{
	size_t n = 0;

	n = append_str(out, n, cap, stamp);
	n = append_str(out, n, cap, " from:");
	n = append_str(out, n, cap, ip);
	n = append_str(out, n, cap, " device:");
	n = append(out, n, cap, q->device ? q->device : "", q->device ? q->device_len : 0);
	n = append_str(out, n, cap, " version:");
	n = append(out, n, cap, q->version ? q->version : "", q->version ? q->version_len : 0);
	n = append_str(out, n, cap, " update:");
	n = append_str(out, n, cap, update ? update : "none");
	return finish_line(out, n, cap);
}

static size_t format_header(char *out, size_t cap, const char *stamp, const char *ip,
                            const struct nf_query *q, const char *update)
{
	size_t n = 0;

	n = append_str(out, n, cap, stamp);
	n = append_str(out, n, cap, " IP: ");
	n = append_str(out, n, cap, ip);
	n = append_str(out, n, cap, " MAC: ");
	n = append_str(out, n, cap, q->mac);
	n = append_str(out, n, cap, " DEVICE: ");
	n = append(out, n, cap, q->device ? q->device : "", q->device ? q->device_len : 0);
	n = append_str(out, n, cap, " VERSION: ");
	n = append(out, n, cap, q->version ? q->version : "", q->version ? q->version_len : 0);
	n = append_str(out, n, cap, " BUILD: ");
	n = append_str(out, n, cap, q->build);
	n = append_str(out, n, cap, " UPDATE: ");
	n = append_str(out, n, cap, update ? update : "none");
	return finish_line(out, n, cap);
}

size_t nf_checklog_format_path(char *buf, size_t cap, time_t now, const char *ip,
                               const struct nf_query *q, const char *update)
{
	char stamp[NF_STAMP_LEN];

	if (cap < 2) /* not even room for the newline */
		return 0;
	make_stamp(stamp, sizeof stamp, now);
	return format_path(buf, cap, stamp, ip, q, update);
}

size_t nf_checklog_format_header(char *buf, size_t cap, time_t now, const char *ip,
                                 const struct nf_query *q, const char *update)
{
	char stamp[NF_STAMP_LEN];

	if (cap < 2) /* not even room for the newline */
		return 0;
	make_stamp(stamp, sizeof stamp, now);
	return format_header(buf, cap, stamp, ip, q, update);
}

static int open_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

struct nf_checklog *nf_checklog_open(const char *path, char *err, size_t errlen)
{
	struct nf_checklog *log = calloc(1, sizeof *log);

	if (log == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	log->fd = -1;
	log->stamp_time = (time_t)-1;
	snprintf(log->path, sizeof log->path, "%s", path);
	if (strcmp(path, "-") == 0) {
		log->fd = STDOUT_FILENO;
	} else if (path[0] != '\0') {
		log->fd = open_file(path);
		if (log->fd < 0) {
			snprintf(err, errlen, "check log %s: %s", path, strerror(errno));
			free(log);
			return NULL;
		}
		log->owns_fd = true;
	}
	return log;
}

void nf_checklog_flush(struct nf_checklog *log)
{
	size_t off = 0;

	if (log == NULL || log->fd < 0)
		return;
	while (off < log->used) {
		ssize_t n = write(log->fd, log->buf + off, log->used - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* The disk is full or gone: drop these lines rather than block
			 * or grow without bound; say so once. */
			if (!log->write_failed)
				nf_log(NF_LOG_ERROR, "check log %s: %s; lines dropped", log->path,
				       n < 0 ? strerror(errno) : "short write");
			log->write_failed = true;
			break;
		}
		off += (size_t)n;
	}
	if (off == log->used)
		log->write_failed = false;
	log->used = 0;
}

/* Makes room for one more line and refreshes the cached time stamp. */
static char *line_slot(struct nf_checklog *log, time_t now)
{
	if (log->used + NF_MAX_LOG_LINE > sizeof log->buf)
		nf_checklog_flush(log);
	if (now != log->stamp_time) {
		make_stamp(log->stamp, sizeof log->stamp, now);
		log->stamp_time = now;
	}
	return log->buf + log->used;
}

void nf_checklog_path(struct nf_checklog *log, time_t now, const char *ip,
                      const struct nf_query *q, const char *update)
{
	char *slot;

	if (log == NULL || log->fd < 0)
		return;
	slot = line_slot(log, now);
	log->used += format_path(slot, NF_MAX_LOG_LINE, log->stamp, ip, q, update);
}

void nf_checklog_header(struct nf_checklog *log, time_t now, const char *ip,
                        const struct nf_query *q, const char *update)
{
	char *slot;

	if (log == NULL || log->fd < 0)
		return;
	slot = line_slot(log, now);
	log->used += format_header(slot, NF_MAX_LOG_LINE, log->stamp, ip, q, update);
}

int nf_checklog_reopen(struct nf_checklog *log)
{
	int fd;

	if (log == NULL || !log->owns_fd)
		return 0;
	nf_checklog_flush(log);
	fd = open_file(log->path);
	if (fd < 0) {
		nf_log(NF_LOG_ERROR, "check log %s: cannot reopen: %s", log->path, strerror(errno));
		return -1;
	}
	close(log->fd);
	log->fd = fd;
	return 0;
}

void nf_checklog_close(struct nf_checklog *log)
{
	if (log == NULL)
		return;
	nf_checklog_flush(log);
	if (log->owns_fd)
		close(log->fd);
	free(log);
}
