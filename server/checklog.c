/*
 * checklog.c - the check log: one line per check (checkline.c makes the
 * text), written by a thread of its own so that the event loop never waits
 * on the log's sink.
 *
 * The loop formats each line into the buffer it is filling: a check costs no
 * system call and takes no lock. Full buffers (and, once a second, the one
 * being filled when the writer is idle) are handed to the writer thread
 * through a bounded ring of NF_CHECKLOG_BUFFERS buffers; only the hand-over
 * takes a mutex, and the writer never holds it while it writes. When the
 * sink stalls (a pipe nobody reads, a stalled journald, a full disk), the
 * ring fills and the loop drops new lines, counting them; the writer says so
 * once when it can write again, with the number dropped.
 *
 * A line the writer has started is always finished: on a short write or an
 * error (ENOSPC, EFBIG) it retries the rest of the same buffer from the same
 * byte, so a torn line is completed, never glued to the next one.
 *
 * SIGUSR1 (logrotate) reopens the file on the loop thread, so a failure is
 * known at once; the old descriptor travels with the last buffer meant for
 * it and is closed by the writer after that buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nofussd.h"

struct log_buffer {
	int fd;                /* where these lines go */
	bool close_after;      /* the last buffer for fd: the writer closes it */
	size_t used;
	char text[NF_CHECKLOG_BUFFER];
};

struct nf_checklog {
	int fd;                /* -1 when the log is off */
	bool owns_fd;          /* false for stdout */
	char path[NF_MAX_PATH];
	time_t stamp_time;     /* the second stamp[] was made for */
	char stamp[32];        /* "[YYYY/MM/DD HH:MM:SS]" */
	struct log_buffer *filling; /* the loop's; NULL while every buffer is queued */

	/* The ring, under lock: queued buffers from head, count of them. */
	pthread_mutex_t lock;
	pthread_cond_t wake;   /* the writer waits for work here */
	pthread_cond_t idle;   /* nf_checklog_wait waits for an empty ring here */
	struct log_buffer *queue[NF_CHECKLOG_BUFFERS];
	struct log_buffer *spare[NF_CHECKLOG_BUFFERS];
	size_t head, queued, spares;
	bool stop;
	pthread_t writer;
	bool writer_started;

	atomic_ulong dropped;  /* lines dropped since the writer last reported */
	atomic_ulong dropped_total;
	struct log_buffer buffers[NF_CHECKLOG_BUFFERS];
};

/* Writer thread -------------------------------------------------------- */

/* Sleeps a little between retries, a point where a stuck writer may be
 * cancelled at exit. */
static void retry_pause(void)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = NF_CHECKLOG_RETRY_MS * 1000000L};

	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	nanosleep(&ts, NULL);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
}

/* Writes the whole buffer, however long the sink takes. */
static void write_buffer(struct nf_checklog *log, const struct log_buffer *b)
{
	bool failed = false;
	size_t off = 0;

	while (off < b->used) {
		ssize_t n;

		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		n = write(b->fd, b->text + off, b->used - off);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (!failed)
			nf_log(NF_LOG_ERROR, "check log %s: %s; new lines are dropped until it can "
			       "write again", log->path, n < 0 ? strerror(errno) : "nothing written");
		failed = true;
		retry_pause();
	}
	unsigned long dropped = atomic_exchange(&log->dropped, 0);
	if (failed || dropped > 0)
		nf_log(NF_LOG_WARN, "check log %s: writing again; %lu lines were dropped", log->path,
		       dropped);
}

static void *writer_main(void *arg)
{
	struct nf_checklog *log = arg;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_mutex_lock(&log->lock);
	for (;;) {
		struct log_buffer *b;

		while (log->queued == 0 && !log->stop)
			pthread_cond_wait(&log->wake, &log->lock);
		if (log->queued == 0)
			break;
		b = log->queue[log->head];
		pthread_mutex_unlock(&log->lock);

		write_buffer(log, b);

		pthread_mutex_lock(&log->lock);
		/* Read under the lock: nf_checklog_reopen sets it on queued buffers. */
		if (b->close_after)
			close(b->fd);
		b->used = 0;
		b->close_after = false;
		log->head = (log->head + 1) % NF_CHECKLOG_BUFFERS;
		log->queued--;
		log->spare[log->spares++] = b;
		if (log->queued == 0)
			pthread_cond_broadcast(&log->idle);
	}
	pthread_mutex_unlock(&log->lock);
	return NULL;
}

/* Loop side ------------------------------------------------------------ */

/* Hands the buffer being filled to the writer and takes a spare one, if
 * there is one. With force false, only when the writer has nothing to do:
 * a busy writer lets the loop go on filling the same buffer. */
static void hand_over(struct nf_checklog *log, bool force)
{
	struct log_buffer *b = log->filling;

	pthread_mutex_lock(&log->lock);
	if (b != NULL && b->used > 0 && (force || log->queued == 0)) {
		log->queue[(log->head + log->queued) % NF_CHECKLOG_BUFFERS] = b;
		log->queued++;
		log->filling = NULL;
		pthread_cond_signal(&log->wake);
	}
	if (log->filling == NULL && log->spares > 0) {
		log->filling = log->spare[--log->spares];
		log->filling->fd = log->fd;
	}
	pthread_mutex_unlock(&log->lock);
}

/* A buffer with room for one more line, or NULL: the line is dropped. */
static struct log_buffer *room_for_line(struct nf_checklog *log, time_t now)
{
	if (log->filling == NULL || log->filling->used + NF_MAX_LOG_LINE > NF_CHECKLOG_BUFFER)
		hand_over(log, true);
	if (log->filling == NULL || log->filling->used + NF_MAX_LOG_LINE > NF_CHECKLOG_BUFFER) {
		atomic_fetch_add(&log->dropped, 1);
		atomic_fetch_add(&log->dropped_total, 1);
		return NULL;
	}
	if (now != log->stamp_time) {
		nf_checkline_stamp(log->stamp, sizeof log->stamp, now);
		log->stamp_time = now;
	}
	return log->filling;
}

void nf_checklog_path(struct nf_checklog *log, time_t now, const char *ip,
                      const struct nf_query *q, const char *update)
{
	struct log_buffer *b;

	if (log == NULL || log->fd < 0 || (b = room_for_line(log, now)) == NULL)
		return;
	b->used += nf_checkline_path(b->text + b->used, NF_MAX_LOG_LINE, log->stamp, ip, q, update);
}

void nf_checklog_header(struct nf_checklog *log, time_t now, const char *ip,
                        const struct nf_query *q, const char *update)
{
	struct log_buffer *b;

	if (log == NULL || log->fd < 0 || (b = room_for_line(log, now)) == NULL)
		return;
	b->used += nf_checkline_header(b->text + b->used, NF_MAX_LOG_LINE, log->stamp, ip, q,
	                               update);
}

void nf_checklog_flush(struct nf_checklog *log)
{
	if (log != NULL && log->fd >= 0)
		hand_over(log, false);
}

int nf_checklog_wait(struct nf_checklog *log, unsigned timeout_ms)
{
	struct timespec deadline;
	int rc = 0;

	if (log == NULL || log->fd < 0)
		return 0;
	hand_over(log, true);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&log->lock);
	while (log->queued > 0 && rc == 0)
		rc = pthread_cond_timedwait(&log->idle, &log->lock, &deadline) == 0 ? 0 : -1;
	pthread_mutex_unlock(&log->lock);
	return rc;
}

unsigned long nf_checklog_dropped(const struct nf_checklog *log)
{
	return log == NULL ? 0 : atomic_load(&((struct nf_checklog *)log)->dropped_total);
}

/* Open, reopen, close ---------------------------------------------------- */

static int open_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static int start_writer(struct nf_checklog *log, char *err, size_t errlen)
{
	int rc;

	for (size_t i = 0; i < NF_CHECKLOG_BUFFERS; i++)
		log->spare[log->spares++] = &log->buffers[i];
	pthread_mutex_init(&log->lock, NULL);
	pthread_cond_init(&log->wake, NULL);
	pthread_cond_init(&log->idle, NULL);
	rc = pthread_create(&log->writer, NULL, writer_main, log);
	if (rc != 0) {
		snprintf(err, errlen, "check log %s: cannot start its writer: %s", log->path,
		         strerror(rc));
		return -1;
	}
	log->writer_started = true;
	hand_over(log, false); /* the first buffer to fill */
	return 0;
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
	if (path[0] == '\0')
		return log; /* no log: every call is a no-op */
	if (strcmp(path, "-") == 0) {
		log->fd = STDOUT_FILENO;
	} else {
		log->fd = open_file(path);
		if (log->fd < 0) {
			snprintf(err, errlen, "check log %s: %s", path, strerror(errno));
			free(log);
			return NULL;
		}
		log->owns_fd = true;
	}
	if (start_writer(log, err, errlen) != 0) {
		if (log->owns_fd)
			close(log->fd);
		free(log);
		return NULL;
	}
	return log;
}

int nf_checklog_reopen(struct nf_checklog *log)
{
	int fd;

	if (log == NULL || !log->owns_fd)
		return 0;
	fd = open_file(log->path);
	if (fd < 0) {
		nf_log(NF_LOG_ERROR, "check log %s: cannot reopen: %s", log->path, strerror(errno));
		return -1;
	}
	/* Lines buffered so far belong to the old file: its descriptor goes
	 * with the last of them, and the writer closes it once they are out. */
	pthread_mutex_lock(&log->lock);
	if (log->filling != NULL && log->filling->used > 0) {
		log->filling->close_after = true;
		log->queue[(log->head + log->queued) % NF_CHECKLOG_BUFFERS] = log->filling;
		log->queued++;
		log->filling = log->spares > 0 ? log->spare[--log->spares] : NULL;
		pthread_cond_signal(&log->wake);
	} else if (log->queued > 0) {
		/* Still queued, so the writer has not looked at the flag yet. */
		log->queue[(log->head + log->queued - 1) % NF_CHECKLOG_BUFFERS]->close_after = true;
	} else {
		close(log->fd);
	}
	log->fd = fd;
	if (log->filling != NULL)
		log->filling->fd = fd;
	pthread_mutex_unlock(&log->lock);
	return 0;
}

void nf_checklog_close(struct nf_checklog *log)
{
	if (log == NULL)
		return;
	if (log->writer_started) {
		if (nf_checklog_wait(log, NF_CHECKLOG_CLOSE_MS) != 0) {
			pthread_mutex_lock(&log->lock);
			nf_log(NF_LOG_ERROR, "check log %s: the sink takes nothing; %zu buffers of "
			       "lines are not written", log->path, log->queued);
			pthread_mutex_unlock(&log->lock);
			pthread_cancel(log->writer); /* stuck in write(): nothing else is safe */
		}
		pthread_mutex_lock(&log->lock);
		log->stop = true;
		pthread_cond_signal(&log->wake);
		pthread_mutex_unlock(&log->lock);
		pthread_join(log->writer, NULL);
		pthread_mutex_destroy(&log->lock);
		pthread_cond_destroy(&log->wake);
		pthread_cond_destroy(&log->idle);
	}
	if (log->owns_fd)
		close(log->fd);
	free(log);
}
