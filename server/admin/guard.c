/*
 * guard.c - the admin listener's guard against slow request heads: conns.c's
 * head deadline and shedding, as the device listener has them, for a
 * listener whose connections each run on a thread of their own.
 *
 * libmicrohttpd's idle timeout restarts on every byte, so a client that
 * drips one byte of request head every few seconds holds an admin
 * connection (and its thread) for ever, and NF_ADMIN_MAX_CONNECTIONS of them
 * lock every operator out. Here every connection waits for its head at most
 * NF_ADMIN_HEAD_TIMEOUT seconds (a kept-alive one: the idle timeout plus
 * that, after its last answer), and near the limit the oldest still waiting
 * are closed to make room. A connection whose head is complete (an upload,
 * a long answer) is never cut here.
 *
 * conns.c is single-threaded: every call goes through one lock, taken by
 * libmicrohttpd's threads (opened, head complete, answered, closed) and by
 * the sweeping thread. Closing is shutdown(2) of the socket under that
 * lock; libmicrohttpd then closes the connection its usual way, and its
 * CLOSED notice (which needs the lock) comes before it closes the socket,
 * so a socket shut down here is never one that was closed and reused.
 *
 * The sweep never asks libmicrohttpd about a connection: the socket is
 * read once, when the connection opens, and kept as the entry's owner.
 * From libmicrohttpd 1.0 on, MHD_get_connection_info answers every
 * question through one field per connection, so asking from this thread
 * while the connection's own thread asks would race.
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "admin.h"
#include "common.h"
#include "nofussd.h"

/* conns.c's close: the owner is the socket plus one (never NULL). */
static void shut_socket(void *owner)
{
	shutdown((int)((intptr_t)owner - 1), SHUT_RDWR);
}

static void *sweep(void *arg)
{
	struct nf_admin_guard *g = arg;
	struct timespec until;

	nf_worker_nice();
	pthread_mutex_lock(&g->lock);
	while (!g->stop) {
		uint64_t now = nf_clock_ms();
		int due = nf_conns_sweep(g->conns, now);
		struct nf_conns_stats s = nf_conns_stats(g->conns);
		unsigned long expired = s.expired - g->reported.expired,
		              shed = s.shed - g->reported.shed;

		if ((expired > 0 || shed > 0) && now - g->reported_ms >= NF_SLOW_REPORT_MS) {
			g->reported = s;
			g->reported_ms = now;
			/* Not under the lock: every connection's thread needs it. */
			pthread_mutex_unlock(&g->lock);
			nf_log(NF_LOG_WARN,
			       "admin: slow request heads: %lu connections closed at the %us head "
			       "deadline and %lu at the connection limit (%u open)",
			       expired, NF_ADMIN_HEAD_TIMEOUT, shed, s.open);
			pthread_mutex_lock(&g->lock);
		}
		if (due > NF_ADMIN_GUARD_SWEEP_MS)
			due = NF_ADMIN_GUARD_SWEEP_MS;
		until = nf_clock_deadline((unsigned)due);
		while (!g->stop && pthread_cond_timedwait(&g->wake, &g->lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

int nf_admin_guard_start(struct nf_admin_guard *g, char *err, size_t errlen)
{
	pthread_condattr_t attr;

	g->conns = nf_conns_new(NF_ADMIN_MAX_CONNECTIONS, NF_ADMIN_HEAD_TIMEOUT,
	                        NF_ADMIN_IDLE_TIMEOUT, shut_socket);
	if (g->conns == NULL) {
		nf_errf(err, errlen, "admin listener: out of memory");
		return -1;
	}
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &attr);
	pthread_condattr_destroy(&attr);
	g->stop = false;
	g->reported_ms = 0; /* the first closing is said at once */
	if (pthread_create(&g->thread, NULL, sweep, g) != 0) {
		pthread_cond_destroy(&g->wake);
		pthread_mutex_destroy(&g->lock);
		nf_conns_free(g->conns);
		g->conns = NULL;
		nf_errf(err, errlen, "admin listener: cannot start a thread");
		return -1;
	}
	return 0;
}

void nf_admin_guard_stop(struct nf_admin_guard *g)
{
	if (g->conns == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	g->stop = true;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	nf_conns_free(g->conns);
	g->conns = NULL;
}

struct nf_conn *nf_admin_guard_opened(struct nf_admin_guard *g, int fd)
{
	struct nf_conn *entry;

	pthread_mutex_lock(&g->lock);
	entry = nf_conns_opened(g->conns, (void *)((intptr_t)fd + 1), nf_clock_ms());
	pthread_mutex_unlock(&g->lock);
	return entry;
}

void nf_admin_guard_closed(struct nf_admin_guard *g, struct nf_conn *entry)
{
	pthread_mutex_lock(&g->lock);
	nf_conns_closed(g->conns, entry);
	pthread_mutex_unlock(&g->lock);
}

void nf_admin_guard_head_done(struct nf_admin_guard *g, struct nf_conn *entry)
{
	pthread_mutex_lock(&g->lock);
	nf_conns_head_done(g->conns, entry);
	pthread_mutex_unlock(&g->lock);
}

void nf_admin_guard_answered(struct nf_admin_guard *g, struct nf_conn *entry)
{
	pthread_mutex_lock(&g->lock);
	nf_conns_answered(g->conns, entry, nf_clock_ms());
	pthread_mutex_unlock(&g->lock);
}
