/*
 * downloads.c - load control: how many image transfers are in flight, and
 * whether one more may start (issue 10 item 6; docs/ROLLOUTS.md section 5).
 *
 * A transfer is an image answer with a body (200 or 206, never a HEAD or a
 * 304), from the moment image.c queues it until libmicrohttpd reports the
 * request over (sent, cut or timed out). The count is a plain integer on
 * the loop thread, the only thread that answers requests, so it takes no
 * lock; /metrics reads a copy kept in atomics (counters.h).
 *
 * nf_downloads_full is the one decision the check paths (check.c, stock.c,
 * esphome.c) and the image path (image.c) share: past max-downloads, a
 * check that would be an offer is deferred and a transfer is refused with
 * 503 and Retry-After. It is one comparison, so the check path pays nothing
 * measurable for it (bench/loadctl.sh).
 */
#include <inttypes.h>
#include <stdio.h>

#include "common.h"
#include "http.h"

/* The limit was just reached: says so, at most once a minute, with what it
 * has cost so far, so that an operator sees a limit that binds. */
static void report_full(struct nf_server *srv)
{
	const struct nf_counters *c = &srv->counters;
	uint64_t now = nf_clock_ms(), deferred = 0;

	if (srv->full_reported_ms != 0 && now - srv->full_reported_ms < NF_FULL_REPORT_MS)
		return;
	srv->full_reported_ms = now;
	for (int k = 0; k < NF_CLIENT_COUNT; k++)
		deferred += nf_counter(&c->checks[k][NF_ANSWER_DEFERRED]);
	nf_log(NF_LOG_INFO,
	       "max-downloads %u reached: offers are deferred and image requests get 503 "
	       "(since start: %" PRIu64 " checks deferred, %" PRIu64 " image requests refused)",
	       srv->cfg->max_downloads, deferred, nf_counter(&c->downloads_refused));
}

bool nf_downloads_full(const struct nf_server *srv)
{
	unsigned max = srv->cfg->max_downloads;

	return max != 0 && srv->downloads >= max;
}

void nf_downloads_begin(struct nf_server *srv)
{
	struct nf_counters *c = &srv->counters;

	srv->downloads++;
	atomic_store_explicit(&c->downloads_active, srv->downloads, memory_order_relaxed);
	if (srv->downloads > nf_counter(&c->downloads_peak))
		atomic_store_explicit(&c->downloads_peak, srv->downloads, memory_order_relaxed);
	if (srv->downloads == srv->cfg->max_downloads)
		report_full(srv);
}

void nf_downloads_end(struct nf_server *srv)
{
	if (srv->downloads == 0) /* cannot happen: every end had its begin */
		return;
	srv->downloads--;
	atomic_store_explicit(&srv->counters.downloads_active, srv->downloads,
	                      memory_order_relaxed);
}

enum MHD_Result nf_downloads_refuse(struct nf_server *srv, struct MHD_Connection *conn)
{
	nf_count(&srv->counters.downloads_refused, 1);
	return MHD_queue_response(conn, MHD_HTTP_SERVICE_UNAVAILABLE, srv->busy);
}

void nf_downloads_reason(const struct nf_server *srv, char *out, size_t cap)
{
	snprintf(out, cap, "%u image transfers in flight (max-downloads %u)", srv->downloads,
	         srv->cfg->max_downloads);
}
