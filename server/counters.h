/*
 * counters.h - what nofussd counts for /metrics (issue 9, item 6).
 *
 * The loop thread is the only writer (relaxed atomic adds: no lock, no
 * fence on the check path); the admin listener's thread reads them at any
 * time. Counters only ever grow, but for the two download gauges; the other gauges (devices by type and version, seen
 * in 24 h, the store's queue depth) come from the store, not from here.
 */
#ifndef NOFUSSD_COUNTERS_H
#define NOFUSSD_COUNTERS_H

#include <stdatomic.h>
#include <stdint.h>

#include "store.h"

#define NF_ANSWER_KINDS 4 /* enum nf_answer_kind: none, offered, held, deferred */

struct nf_counters {
	/* Checks by client kind (enum nf_client_kind) and answer (enum
	 * nf_answer_kind). Offers and held-back offers are its columns. */
	atomic_uint_fast64_t checks[NF_CLIENT_COUNT][NF_ANSWER_KINDS];
	atomic_uint_fast64_t downloads_started;   /* image answers begun (200 or 206) */
	atomic_uint_fast64_t downloads_completed; /* their last byte sent */
	atomic_uint_fast64_t downloads_failed;    /* ended before their last byte */
	atomic_uint_fast64_t download_bytes;      /* image bytes sent */
	atomic_uint_fast64_t reloads;             /* snapshots served after the first */
	atomic_uint_fast64_t reload_failures;     /* builds that failed */
	atomic_uint_fast64_t auth_refused;        /* 401: no, a malformed or a wrong credential */
	/* Load control (downloads.c). Two gauges, stored (not added) by the
	 * loop: the transfers in flight and their high-water mark since start. */
	atomic_uint_fast64_t downloads_active;
	atomic_uint_fast64_t downloads_peak;
	atomic_uint_fast64_t downloads_refused;   /* 503s past max-downloads */
};

/* Adds n to a counter; loop thread. */
static inline void nf_count(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Reads a counter; any thread. */
static inline uint64_t nf_counter(const atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

#endif
