/*
 * store_bench.c - how fast the fleet store's writer records events, and what
 * its queue costs in memory; run by bench/store.sh, which builds it against
 * build/server/store/libnofuss_store.a.
 *
 *   store_bench URL [DEVICES]
 *   store_bench --queue URL
 *
 * BENCH_BATCH=N sets the writer's batch_max (default NF_STORE_DEFAULT_BATCH),
 * to compare batch sizes in one run; on PostgreSQL, libpq's PGOPTIONS (for
 * example "-c synchronous_commit=off" or "-c log_min_duration_statement=0")
 * reaches the writer's session the same way.
 *
 * Phases, each with DEVICES distinct devices (default 100,000), posted as
 * fast as nf_store_post takes them into a queue big enough for all of them,
 * then nf_store_sync: the figure is events written per second, from the
 * first post to the last commit.
 *   first   one check each from devices never seen (inserts)
 *   again   one more check each, nothing offered (updates)
 *   update  a check offered 2.0, its download done, a check reporting 2.0
 *           (three events each: offered, downloaded, confirmed)
 * --queue: the queue at its default capacity, the process's RSS after
 * opening a store and after filling its queue (the writer is given a batch
 * interval longer than the fill and the fill stays under a batch, so
 * nothing is written meanwhile: every slot is touched and still held).
 * Every loop is bounded; the only sockets are the database's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "store.h"

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kib;
}

static void event(struct nf_event *e, int kind, unsigned i, int64_t t, const char *version,
                  int answer)
{
	memset(e, 0, sizeof *e);
	e->kind = (uint8_t)kind;
	e->time_ms = t;
	e->client = NF_CLIENT_NOFUSS_HEADER;
	e->rule = -1;
	snprintf(e->mac, sizeof e->mac, "5C:CF:7F:%02X:%02X:%02X", (i >> 16) & 0xff,
	         (i >> 8) & 0xff, i & 0xff);
	snprintf(e->ip, sizeof e->ip, "10.%u.%u.%u", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
	snprintf(e->device, sizeof e->device, "BENCH-%u", i % 8);
	snprintf(e->version, sizeof e->version, "%s", version);
	snprintf(e->build, sizeof e->build, "b%u", i % 3);
	e->answer = (uint8_t)answer;
	if (answer == NF_ANSWER_OFFERED || kind != NF_EVENT_CHECK) {
		e->rule = 0;
		snprintf(e->target, sizeof e->target, "2.0");
		snprintf(e->images[0].path, sizeof e->images[0].path, "/firmware/bench-2.0.bin");
		e->images[0].size = 480000;
		e->bytes = kind == NF_EVENT_DOWNLOAD_DONE ? 480000 : 0;
	}
}

/* Posts per device the events of a phase and prints events/s. */
static void phase(struct nf_store *s, const char *name, unsigned devices, int which,
                    int64_t t0)
{
	struct nf_event e;
	uint64_t start = nf_clock_ms(), posted = 0;
	struct nf_store_stats st;

	for (unsigned i = 0; i < devices; i++) {
		if (which == 0 || which == 1) {
			event(&e, NF_EVENT_CHECK, i, t0 + i, "1.0", NF_ANSWER_NONE);
			posted += nf_store_post(s, &e) == 0;
			continue;
		}
		event(&e, NF_EVENT_CHECK, i, t0 + i, "1.0", NF_ANSWER_OFFERED);
		posted += nf_store_post(s, &e) == 0;
		event(&e, NF_EVENT_DOWNLOAD_DONE, i, t0 + i + 1, "", 0);
		posted += nf_store_post(s, &e) == 0;
		event(&e, NF_EVENT_CHECK, i, t0 + i + 2, "2.0", NF_ANSWER_NONE);
		posted += nf_store_post(s, &e) == 0;
	}
	if (nf_store_sync(s, 600000) != 0)
		fprintf(stderr, "store_bench: %s: not written within 600 s\n", name);
	double secs = (double)(nf_clock_ms() - start) / 1000.0;
	nf_store_stats(s, &st);
	printf("  %-7s %8" PRIu64 " events in %6.2f s: %9.0f events/s (dropped %" PRIu64 ")\n",
	       name, posted, secs, (double)posted / secs, st.dropped);
}

static int queue_rss(const char *url)
{
	struct nf_store_options o = {.batch_ms = 60000, .batch_max = NF_STORE_DEFAULT_QUEUE};
	char err[512];
	struct nf_event e;
	long before = rss_kib();
	struct nf_store *s = nf_store_open(url, &o, err, sizeof err);

	if (s == NULL) {
		fprintf(stderr, "store_bench: %s\n", err);
		return 1;
	}
	long opened = rss_kib();
	/* One event short of a batch: the writer sleeps through the fill. */
	for (unsigned i = 0; i + 1 < NF_STORE_DEFAULT_QUEUE; i++) {
		event(&e, NF_EVENT_CHECK, i, 1, "1.0", NF_ANSWER_NONE);
		nf_store_post(s, &e);
	}
	long full = rss_kib();
	printf("  queue   default capacity %d events x %zu bytes = %.1f MiB; RSS %ld KiB "
	       "before open, %ld KiB open, %ld KiB with the queue full (+%.1f MiB)\n",
	       NF_STORE_DEFAULT_QUEUE, sizeof(struct nf_event),
	       NF_STORE_DEFAULT_QUEUE * sizeof(struct nf_event) / 1048576.0, before, opened, full,
	       (full - opened) / 1024.0);
	nf_store_close(s);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned devices = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 100000;
	struct nf_store_options o = {.queue_capacity = 3 * (size_t)devices + 16};
	const char *batch = getenv("BENCH_BATCH"); /* 0 or unset: the default */
	char err[512];
	struct nf_store *s;
	int64_t t0 = (int64_t)time(NULL) * 1000;

	if (argc == 3 && strcmp(argv[1], "--queue") == 0)
		return queue_rss(argv[2]);
	if (argc < 2 || devices == 0) {
		fprintf(stderr, "usage: store_bench URL [DEVICES] | store_bench --queue URL\n");
		return 2;
	}
	if (batch != NULL)
		o.batch_max = (size_t)strtoul(batch, NULL, 10);
	if ((s = nf_store_open(argv[1], &o, err, sizeof err)) == NULL) {
		fprintf(stderr, "store_bench: %s\n", err);
		return 1;
	}
	printf("store_bench: %u distinct devices, batch %zu events\n", devices,
	       o.batch_max != 0 ? o.batch_max : (size_t)NF_STORE_DEFAULT_BATCH);
	phase(s, "first", devices, 0, t0);
	phase(s, "again", devices, 1, t0 + 1000000);
	phase(s, "update", devices, 2, t0 + 2000000);
	nf_store_close(s);
	return 0;
}
