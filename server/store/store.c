/*
 * store.c - the store's two sides: nf_store_post() on the event loop's side
 * of a bounded queue, and the writer thread on the other, which writes what
 * is queued in batches (batch.c), one transaction each.
 *
 * The queue is a ring of struct nf_event slots with two counters: tail,
 * advanced by posters, and head, advanced by the writer only after the
 * transaction holding those events committed. A poster takes a mutex that
 * only posters use, copies the event into the slot at tail and publishes
 * the new tail; it never waits for the writer, whose reads of the slots need
 * no lock. The writer processes the slots in place, so a failed transaction
 * loses nothing: the same events are still there for the retry. When the
 * ring is full the event is dropped and counted.
 *
 * The writer wakes when a batch's worth is queued (the poster that fills it
 * posts a semaphore, once per wait) or batch_ms after it went to sleep, so
 * an event waits at most batch_ms plus one transaction before it is
 * committed: that is what a kill -9 can lose (docs/STORE.md section 6). On failure it
 * backs off (100 ms doubling to retry_max_ms), makes the connection again
 * when it was lost, and says once that it failed and once that it writes
 * again. A transaction cut off in its COMMIT is looked up on the new
 * connection before its events are written again (write_some).
 * nf_store_close() writes what is queued, retrying for at most
 * close_timeout_ms.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "store.h"

#define RETRY_FIRST_MS 100
#define DEFAULT_BUSY_MS 1000

struct nf_store {
	struct nf_store_options opt;
	char shown[NF_STORE_MAX_URL]; /* the URL without its password */
	int schema;

	/* The queue. */
	struct nf_event *ring;
	size_t cap;
	pthread_mutex_t post_lock; /* posters only */
	_Atomic uint64_t head, tail;
	atomic_bool kicked;        /* the writer was woken since it last slept */
	sem_t wake;
	atomic_bool stop;

	/* The writer. */
	pthread_t writer;
	bool started;
	struct nf_db *wdb;
	struct nf_batch *batch;
	struct nf_event **slots;
	size_t cut; /* events of a transaction whose COMMIT's answer was lost, or 0 */
	pthread_mutex_t done_lock; /* nf_store_sync waits on done for head */
	pthread_cond_t done;

	/* The queries. */
	pthread_mutex_t read_lock;
	struct nf_db *rdb;

	_Atomic uint64_t posted, dropped, written, batches, failures, unmatched;
	_Atomic uint64_t confirmed, reverted, held; /* transitions committed */
	atomic_bool failing;
};

/* Messages --------------------------------------------------------------- */

static void say(const struct nf_store *s, enum nf_store_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(const struct nf_store *s, enum nf_store_log_level level, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (s->opt.log != NULL)
		s->opt.log(s->opt.log_ctx, level, msg);
	else
		fprintf(stderr, "nofuss store: %s\n", msg);
}

/* The writer --------------------------------------------------------------- */

/* Sleeps until woken or ms have passed. */
static void nap(struct nf_store *s, unsigned ms)
{
	struct timespec ts;
	uint64_t until = nf_clock_ms() + ms;

	ts.tv_sec = (time_t)(until / 1000);
	ts.tv_nsec = (long)(until % 1000) * 1000000L;
	while (sem_clockwait(&s->wake, CLOCK_MONOTONIC, &ts) != 0 && errno == EINTR)
		;
}

static void advance(struct nf_store *s, uint64_t head)
{
	pthread_mutex_lock(&s->done_lock);
	atomic_store_explicit(&s->head, head, memory_order_release);
	pthread_cond_broadcast(&s->done);
	pthread_mutex_unlock(&s->done_lock);
}

/* A transaction of n events from head committed: counts it, frees them. */
static void committed(struct nf_store *s, uint64_t head, size_t n, uint64_t unmatched)
{
	uint64_t kinds[NF_HISTORY_COUNT] = {0};

	atomic_fetch_add(&s->written, n);
	atomic_fetch_add(&s->batches, 1);
	atomic_fetch_add(&s->unmatched, unmatched);
	nf_batch_count(s->batch, kinds);
	atomic_fetch_add(&s->confirmed, kinds[NF_HISTORY_CONFIRMED]);
	atomic_fetch_add(&s->reverted, kinds[NF_HISTORY_REVERTED]);
	atomic_fetch_add(&s->held, kinds[NF_HISTORY_HELD]);
	if (atomic_exchange(&s->failing, false))
		say(s, NF_STORE_LOG_WARN, "store %s: writing again", s->shown);
	advance(s, head + n); /* last: nf_store_sync's waiters see all the above */
}

/* One transaction for up to batch_max queued events. 0 or -1. A transaction
 * whose COMMIT lost its answer is first looked up: if it committed, its
 * events (the first s->cut from head: head did not move) are done and
 * counted now, once; if not, they are written again with what came since. */
static int write_some(struct nf_store *s, uint64_t head, size_t n)
{
	uint64_t unmatched = 0;

	for (size_t i = 0; i < n; i++)
		s->slots[i] = &s->ring[(head + i) % s->cap];
	nf_db_clear(s->wdb);
	if (!nf_db_ok(s->wdb) && nf_db_reconnect(s->wdb) != 0)
		return -1;
	if (s->cut > 0) {
		int fate = nf_batch_resolve(s->batch, s->wdb, &unmatched);

		if (fate < 0)
			return -1;
		if (fate == 1) {
			say(s, NF_STORE_LOG_WARN, "store %s: a transaction cut off in its COMMIT "
			    "had committed; its %zu events are not written again", s->shown, s->cut);
			committed(s, head, s->cut, unmatched);
			s->cut = 0;
			return 0;
		}
		s->cut = 0;
	}
	if (nf_batch_write(s->batch, s->wdb, s->slots, n, s->opt.history_max, s->opt.skew_ms,
	                   &unmatched) != 0) {
		if (nf_batch_cut(s->batch))
			s->cut = n;
		return -1;
	}
	committed(s, head, n, unmatched);
	return 0;
}

/* After a failed transaction: says so once, and when closing past the
 * deadline drops what is left. Returns true when the writer must stop. */
static bool failed(struct nf_store *s, uint64_t deadline, unsigned *backoff)
{
	uint64_t head = atomic_load(&s->head), tail = atomic_load(&s->tail);

	atomic_fetch_add(&s->failures, 1);
	if (!atomic_exchange(&s->failing, true))
		say(s, NF_STORE_LOG_ERROR, "store %s: %s; retrying, events queue up meanwhile",
		    s->shown, nf_db_error(s->wdb));
	if (deadline != 0 && nf_clock_ms() >= deadline) {
		say(s, NF_STORE_LOG_ERROR, "store %s: closing; %llu queued events not written (%s)",
		    s->shown, (unsigned long long)(tail - head), nf_db_error(s->wdb));
		atomic_fetch_add(&s->dropped, tail - head);
		advance(s, tail);
		return true;
	}
	*backoff = *backoff == 0 ? RETRY_FIRST_MS : *backoff * 2;
	if (*backoff > s->opt.retry_max_ms)
		*backoff = s->opt.retry_max_ms;
	nap(s, *backoff);
	return false;
}

static void *writer_main(void *arg)
{
	struct nf_store *s = arg;
	uint64_t deadline = 0;
	unsigned backoff = 0;
	bool waited = false;

	for (;;) {
		uint64_t head = atomic_load_explicit(&s->head, memory_order_relaxed);
		uint64_t depth = atomic_load_explicit(&s->tail, memory_order_acquire) - head;
		bool stop = atomic_load(&s->stop);

		if (stop && deadline == 0)
			deadline = nf_clock_ms() + s->opt.close_timeout_ms;
		if (depth == 0 && stop)
			break;
		if (depth < s->opt.batch_max && !stop && !waited) {
			/* A poster filling a batch from now on wakes us. */
			atomic_store(&s->kicked, false);
			if (atomic_load(&s->tail) - head < s->opt.batch_max)
				nap(s, s->opt.batch_ms);
			waited = true;
			continue;
		}
		waited = false;
		if (depth == 0)
			continue;
		if (write_some(s, head, depth < s->opt.batch_max ? depth : s->opt.batch_max) == 0)
			backoff = 0;
		else if (failed(s, deadline, &backoff))
			break;
	}
	return NULL;
}

/* The loop's side ------------------------------------------------------------ */

int nf_store_post(struct nf_store *s, const struct nf_event *ev)
{
	uint64_t head, tail;

	pthread_mutex_lock(&s->post_lock);
	tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
	head = atomic_load_explicit(&s->head, memory_order_acquire);
	if (tail - head >= s->cap) {
		pthread_mutex_unlock(&s->post_lock);
		atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
		return -1;
	}
	s->ring[tail % s->cap] = *ev;
	atomic_store_explicit(&s->tail, tail + 1, memory_order_release);
	pthread_mutex_unlock(&s->post_lock);
	atomic_fetch_add_explicit(&s->posted, 1, memory_order_relaxed);
	if (tail + 1 - head >= s->opt.batch_max && !atomic_exchange(&s->kicked, true))
		sem_post(&s->wake);
	return 0;
}

void nf_store_stats(struct nf_store *s, struct nf_store_stats *out)
{
	uint64_t head = atomic_load(&s->head), tail = atomic_load(&s->tail);

	out->posted = atomic_load(&s->posted);
	out->dropped = atomic_load(&s->dropped);
	out->written = atomic_load(&s->written);
	out->batches = atomic_load(&s->batches);
	out->failures = atomic_load(&s->failures);
	out->unmatched = atomic_load(&s->unmatched);
	out->confirmed = atomic_load(&s->confirmed);
	out->reverted = atomic_load(&s->reverted);
	out->held = atomic_load(&s->held);
	out->depth = (size_t)(tail - head);
	out->capacity = s->cap;
	out->failing = atomic_load(&s->failing);
}

int nf_store_schema(const struct nf_store *s)
{
	return s->schema;
}

int nf_store_sync(struct nf_store *s, unsigned timeout_ms)
{
	uint64_t target = atomic_load(&s->tail);
	uint64_t until = nf_clock_ms() + timeout_ms;
	struct timespec ts = {(time_t)(until / 1000), (long)(until % 1000) * 1000000L};
	int rc = 0;

	atomic_store(&s->kicked, true);
	sem_post(&s->wake); /* write now rather than after batch_ms */
	pthread_mutex_lock(&s->done_lock);
	while (atomic_load(&s->head) < target && rc == 0)
		if (pthread_cond_timedwait(&s->done, &s->done_lock, &ts) == ETIMEDOUT)
			rc = -1;
	pthread_mutex_unlock(&s->done_lock);
	return atomic_load(&s->head) >= target ? 0 : rc;
}

/* The queries' connection ------------------------------------------------------ */

int nf_store_read(struct nf_store *s,
                  int (*op)(struct nf_db *db, const struct nf_store_options *opt, void *ctx),
                  void *ctx, char *err, size_t errlen)
{
	int rc = -1;

	pthread_mutex_lock(&s->read_lock);
	for (int attempt = 0; attempt < 2; attempt++) {
		nf_db_clear(s->rdb);
		if (!nf_db_ok(s->rdb) && nf_db_reconnect(s->rdb) != 0)
			break;
		rc = op(s->rdb, &s->opt, ctx);
		if (rc >= 0 || nf_db_ok(s->rdb))
			break;
	}
	if (rc < 0)
		snprintf(err, errlen, "store %s: %s", s->shown, nf_db_error(s->rdb));
	pthread_mutex_unlock(&s->read_lock);
	return rc;
}

/* Open and close ------------------------------------------------------------------ */

static void defaults(struct nf_store_options *o)
{
	if (o->queue_capacity == 0)
		o->queue_capacity = NF_STORE_DEFAULT_QUEUE;
	if (o->batch_max == 0)
		o->batch_max = NF_STORE_DEFAULT_BATCH;
	if (o->batch_max > o->queue_capacity)
		o->batch_max = o->queue_capacity;
	if (o->batch_ms == 0)
		o->batch_ms = NF_STORE_DEFAULT_BATCH_MS;
	if (o->history_max == 0)
		o->history_max = NF_STORE_DEFAULT_HISTORY;
	if (o->history_max > NF_STORE_MAX_HISTORY)
		o->history_max = NF_STORE_MAX_HISTORY;
	if (o->silent_ms <= 0)
		o->silent_ms = NF_STORE_DEFAULT_SILENT_MS;
	if (o->skew_ms == 0)
		o->skew_ms = NF_STORE_DEFAULT_SKEW_MS;
	if (o->retry_max_ms == 0)
		o->retry_max_ms = NF_STORE_DEFAULT_RETRY_MS;
	if (o->close_timeout_ms == 0)
		o->close_timeout_ms = NF_STORE_DEFAULT_CLOSE_MS;
	if (o->busy_timeout_ms == 0)
		o->busy_timeout_ms = DEFAULT_BUSY_MS;
	if (o->audit_keep_refused == 0)
		o->audit_keep_refused = NF_STORE_DEFAULT_AUDIT_REFUSED;
}

/* The databases: the writer's (migrated, its history fitted to
 * history_max) and the queries'. */
static int open_databases(struct nf_store *s, const char *url, char *err, size_t errlen)
{
	if ((s->wdb = nf_db_open(url, s->opt.busy_timeout_ms, err, errlen)) == NULL ||
	    (s->schema = nf_schema_migrate(s->wdb, s->opt.migrate_to, err, errlen)) < 0)
		return -1;
	if (s->schema >= 2 && nf_schema_history(s->wdb, s->opt.history_max, err, errlen) != 0)
		return -1;
	if ((s->rdb = nf_db_open(url, s->opt.busy_timeout_ms, err, errlen)) == NULL)
		return -1;
	return 0;
}

static int start(struct nf_store *s, char *err, size_t errlen)
{
	s->cap = s->opt.queue_capacity;
	s->ring = calloc(s->cap, sizeof *s->ring);
	s->slots = calloc(s->opt.batch_max, sizeof *s->slots);
	s->batch = nf_batch_new(s->opt.batch_max);
	if (s->ring == NULL || s->slots == NULL || s->batch == NULL) {
		snprintf(err, errlen, "store: out of memory for a queue of %zu events", s->cap);
		return -1;
	}
	if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
		snprintf(err, errlen, "store: cannot start the writer thread");
		return -1;
	}
	s->started = true;
	return 0;
}

static void destroy(struct nf_store *s)
{
	nf_db_close(s->wdb);
	nf_db_close(s->rdb);
	nf_batch_free(s->batch);
	free(s->slots);
	free(s->ring);
	pthread_cond_destroy(&s->done);
	pthread_mutex_destroy(&s->done_lock);
	pthread_mutex_destroy(&s->post_lock);
	pthread_mutex_destroy(&s->read_lock);
	sem_destroy(&s->wake);
	free(s);
}

struct nf_store *nf_store_open(const char *url, const struct nf_store_options *options,
                               char *err, size_t errlen)
{
	struct nf_store *s = calloc(1, sizeof *s);
	pthread_condattr_t attr;

	if (s == NULL) {
		snprintf(err, errlen, "store: out of memory");
		return NULL;
	}
	if (options != NULL)
		s->opt = *options;
	defaults(&s->opt);
	nf_db_redact(url, s->shown, sizeof s->shown);
	pthread_mutex_init(&s->post_lock, NULL);
	pthread_mutex_init(&s->done_lock, NULL);
	pthread_mutex_init(&s->read_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* nf_store_sync's deadline */
	pthread_cond_init(&s->done, &attr);
	pthread_condattr_destroy(&attr);
	sem_init(&s->wake, 0, 0);
	if (strlen(url) >= NF_STORE_MAX_URL) {
		snprintf(err, errlen, "store URL longer than %d bytes", NF_STORE_MAX_URL - 1);
		goto fail;
	}
	if (open_databases(s, url, err, errlen) != 0 || start(s, err, errlen) != 0)
		goto fail;
	return s;
fail:
	destroy(s);
	return NULL;
}

void nf_store_close_stats(struct nf_store *s, struct nf_store_stats *out)
{
	if (s == NULL)
		return;
	if (s->started) {
		atomic_store(&s->stop, true);
		sem_post(&s->wake);
		pthread_join(s->writer, NULL);
	}
	if (out != NULL)
		nf_store_stats(s, out);
	destroy(s);
}

void nf_store_close(struct nf_store *s)
{
	nf_store_close_stats(s, NULL);
}
