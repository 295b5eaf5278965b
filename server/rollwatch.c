/*
 * rollwatch.c - the rollout watcher: the thread that judges every rollout's
 * health gates and publishes the plan the check path offers from (issue 10
 * items 3, 4, 5, 7; docs/ROLLOUTS.md section 3).
 *
 * Every NF_ROLLWATCH_MS it reads the rollouts from the store, counts each
 * running or paused one's offers (one grouped query on a partial index)
 * and judges its gates (nf_rollout_judge): past the error threshold it
 * halts the rollout, and once the success threshold and the soak are met it
 * starts the next phase (or, with approval, waits for an operator). Each
 * move is the store's conditional update, so when several nodes judge one
 * rollout at once exactly one moves it. Then it makes the plan's input (the
 * rollouts that offer, their releases, each window opened or closed by the
 * server's local time now, the pinned releases, and the devices' pins,
 * exclusions and tags when their generation moved) and, when that differs
 * from what the loop has, builds a plan (plan.c) and posts it to the
 * plan's mailbox. The loop serves it between two requests.
 *
 * So a halt stops offers on this node within about NF_ROLLWATCH_MS plus a
 * store batch after the error that crossed the gate is recorded, and on
 * every other node within its own next tick, since each polls the shared
 * rollouts table: the 1 s and 2 s of issue 10, with room. The check path
 * never waits for any of this.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "nofussd.h"

struct nf_rollwatch {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	struct nf_store *store;
	struct nf_mailbox *mb;
	struct nf_snapshot_params params;
	char public_dir[NF_MAX_PATH];
	/* The watcher's own, between ticks. */
	struct nf_control *controls;
	size_t ncontrols;
	int64_t controls_gen;
	bool controls_read;
	uint64_t published;     /* the input's fingerprint the loop has; 0 none */
	uint64_t refused;       /* the input's fingerprint the plan failed on (said once) */
	bool failing;           /* the store's last answer was an error (said once) */
};

static void store_failed(struct nf_rollwatch *w, const char *what, const char *err)
{
	if (!w->failing)
		nf_log(NF_LOG_ERROR, "rollouts: %s: %s (offers go on from the last plan)", what,
		       err);
	w->failing = true;
}

static int local_minute(void)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	return tm.tm_hour * 60 + tm.tm_min;
}

/* Judges r's gates and moves it when they say so; r is updated. */
static void judge(struct nf_rollwatch *w, struct nf_rollout *r, int64_t now)
{
	struct nf_rollout_counts c;
	struct nf_gate_verdict v;
	struct nf_rollout moved = {0};
	char err[NF_ERR_LEN];
	int rc = 0;

	if (nf_store_rollout_counts(w->store, r, now, &c, err, sizeof err) != 0) {
		store_failed(w, "counting a rollout's offers", err);
		return;
	}
	nf_rollout_judge(r, &c, now, &v);
	if (v.action == NF_GATE_HALT) {
		rc = nf_store_rollout_move(w->store, r->id,
		                           1u << NF_ROLLOUT_RUNNING | 1u << NF_ROLLOUT_PAUSED |
		                               1u << NF_ROLLOUT_COMPLETED,
		                           NF_ROLLOUT_HALTED, false, v.why, now, &moved, err,
		                           sizeof err);
		if (rc == 1)
			nf_log(NF_LOG_WARN, "rollout %lld halted: %s", (long long)r->id, v.why);
	} else if (v.action == NF_GATE_ADVANCE) {
		bool last = r->phase + 1 >= r->nphases;
		rc = nf_store_rollout_move(w->store, r->id, 1u << NF_ROLLOUT_RUNNING,
		                           last ? NF_ROLLOUT_COMPLETED : NF_ROLLOUT_RUNNING, !last,
		                           v.why, now, &moved, err, sizeof err);
		if (rc == 1)
			nf_log(NF_LOG_INFO, "rollout %lld %s: %s", (long long)r->id,
			       last ? "completed" : "advanced", v.why);
	}
	if (rc < 0)
		store_failed(w, "moving a rollout", err);
	else if (rc == 1 || (rc == 0 && moved.id != 0))
		*r = moved; /* moved, or another node moved it first: as it is now */
}

static void on_control(void *user, const struct nf_control *c)
{
	struct nf_rollwatch *w = user;
	void *grown;

	if (w->ncontrols % 256 == 0) {
		grown = realloc(w->controls, (w->ncontrols + 256) * sizeof *w->controls);
		if (grown == NULL)
			return; /* kept short: a later generation reads them again */
		w->controls = grown;
	}
	w->controls[w->ncontrols++] = *c;
}

/* Reads the pins, exclusions and tags again when another generation of
 * them is in the store. Returns 0 or -1. */
static int read_controls(struct nf_rollwatch *w)
{
	char err[NF_ERR_LEN];
	int64_t gen;

	if (nf_store_controls_generation(w->store, &gen, err, sizeof err) != 0) {
		store_failed(w, "reading device pins and tags", err);
		return -1;
	}
	if (w->controls_read && gen == w->controls_gen)
		return 0;
	w->ncontrols = 0;
	if (nf_store_controls(w->store, on_control, w, &gen, err, sizeof err) != 0) {
		store_failed(w, "reading device pins and tags", err);
		return -1;
	}
	w->controls_gen = gen;
	w->controls_read = true;
	return 0;
}

static uint64_t mix(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* What the plan depends on, as one number. */
static uint64_t fingerprint(const struct nf_plan_entry *e, size_t n, int64_t controls_gen)
{
	uint64_t h = mix(14695981039346656037ull, &controls_gen, sizeof controls_gen);

	for (size_t i = 0; i < n; i++) {
		/* A release may get its filesystem image after its rollout began. */
		int64_t f[8] = {e[i].rollout_id, e[i].release_id, e[i].rollout.state,
		                e[i].rollout.phase, e[i].offering, e[i].rollout.rate,
		                (int64_t)e[i].release.fw.size, (int64_t)e[i].release.fs.size};
		h = mix(h, f, sizeof f);
		/* Its images by content, not only by size. */
		h = mix(h, e[i].release.fw.sha256, strlen(e[i].release.fw.sha256));
		h = mix(h, e[i].release.fs.sha256, strlen(e[i].release.fs.sha256));
	}
	return h | 1; /* never 0: that is "nothing published" */
}

/* Adds release id's entry (a pin's) unless it is there. */
static void add_pinned(struct nf_rollwatch *w, struct nf_plan_entry *e, size_t *n, size_t cap,
                       int64_t id)
{
	char err[NF_ERR_LEN];

	for (size_t i = 0; i < *n; i++)
		if (e[i].rollout_id == 0 && e[i].release_id == id)
			return;
	if (*n >= cap)
		return;
	memset(&e[*n], 0, sizeof e[*n]);
	if (nf_store_release_get(w->store, id, &e[*n].release, err, sizeof err) != 1)
		return; /* deleted since: the pin offers nothing */
	e[*n].release_id = id;
	e[*n].offering = true;
	(*n)++;
}

static void publish(struct nf_rollwatch *w, struct nf_plan_entry *e, size_t n)
{
	struct nf_plan_input in = {e, n, w->controls, w->ncontrols};
	uint64_t fp = fingerprint(e, n, w->controls_gen);
	struct nf_snapshot *prev, *plan;
	char err[NF_ERR_LEN], note[NF_ERR_LEN];
	size_t offering = 0;

	if (fp == w->published)
		return;
	prev = nf_mailbox_latest(w->mb);
	plan = nf_plan_build(&in, &w->params, prev, err, sizeof err);
	nf_snapshot_release(prev);
	if (plan == NULL) {
		/* Tried again every tick (an image put back by hand mends it),
		 * said once per input. */
		if (fp != w->refused)
			nf_log(NF_LOG_ERROR, "rollouts: %s (offers go on from the last plan)", err);
		w->refused = fp;
		return;
	}
	if (w->refused != 0)
		nf_log(NF_LOG_INFO, "rollouts: the plan builds again");
	w->refused = 0;
	size_t pinned = 0;
	for (size_t i = 0; i < n; i++) {
		offering += e[i].rollout_id != 0 && nf_plan_entry(plan, i)->offering;
		pinned += e[i].rollout_id == 0;
	}
	snprintf(note, sizeof note,
	         "rollouts: %zu offering, %zu pinned releases, %zu devices with pins, exclusions "
	         "or tags",
	         offering, pinned, w->ncontrols);
	nf_mailbox_post(w->mb, plan, note);
	w->published = fp;
}

static void tick(struct nf_rollwatch *w)
{
	struct nf_rollout *list = NULL;
	size_t count = 0, n = 0, cap;
	struct nf_plan_entry *e;
	char err[NF_ERR_LEN];
	int64_t now = nf_clock_wall_ms();
	int minute = local_minute();
	bool ok = true;

	if (nf_store_rollout_live(w->store, &list, &count, err, sizeof err) != 0) {
		store_failed(w, "reading the rollouts", err);
		return;
	}
	if (read_controls(w) != 0)
		ok = false;
	cap = count + w->ncontrols + 1;
	e = calloc(cap, sizeof *e);
	if (e == NULL) {
		free(list);
		return;
	}
	for (size_t i = 0; i < count; i++) {
		struct nf_rollout *r = &list[i];
		/* A completed rollout in the list still offers (to late
		 * devices): its error gate still halts it. */
		if (r->state == NF_ROLLOUT_RUNNING || r->state == NF_ROLLOUT_PAUSED ||
		    r->state == NF_ROLLOUT_COMPLETED)
			judge(w, r, now);
		if (r->state != NF_ROLLOUT_RUNNING && r->state != NF_ROLLOUT_COMPLETED)
			continue;
		/* Of a device type's completed rollouts only the newest still
		 * offers (to late devices); list is newest first. */
		bool newer = false;
		for (size_t k = 0; k < n; k++)
			newer = newer || (e[k].rollout.state == NF_ROLLOUT_COMPLETED &&
			                  strcmp(e[k].rollout.device, r->device) == 0);
		if (r->state == NF_ROLLOUT_COMPLETED && newer)
			continue;
		memset(&e[n], 0, sizeof e[n]);
		int rc = nf_store_release_get(w->store, r->release_id, &e[n].release, err, sizeof err);
		if (rc < 0) {
			ok = false;
			store_failed(w, "reading a rollout's release", err);
		}
		if (rc != 1)
			continue;
		e[n].rollout_id = r->id;
		e[n].release_id = r->release_id;
		e[n].rollout = *r;
		e[n].offering = nf_rollout_window_open(r, minute);
		n++;
	}
	for (size_t k = 0; k < w->ncontrols; k++)
		if (w->controls[k].pin_release != 0)
			add_pinned(w, e, &n, cap, w->controls[k].pin_release);
	if (ok) {
		if (w->failing)
			nf_log(NF_LOG_INFO, "rollouts: the store answers again");
		w->failing = false;
		publish(w, e, n);
	}
	free(e);
	free(list);
}

static void *run(void *arg)
{
	struct nf_rollwatch *w = arg;
	struct timespec until;

	nf_worker_nice();
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		pthread_mutex_unlock(&w->lock);
		tick(w);
		pthread_mutex_lock(&w->lock);
		until = nf_clock_deadline(NF_ROLLWATCH_MS);
		while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct nf_rollwatch *nf_rollwatch_start(struct nf_store *store, struct nf_mailbox *mb,
                                        const struct nf_snapshot_params *base, char *err,
                                        size_t errlen)
{
	struct nf_rollwatch *w = calloc(1, sizeof *w);
	pthread_condattr_t attr;

	if (w == NULL) {
		snprintf(err, errlen, "rollout watcher: out of memory");
		return NULL;
	}
	w->store = store;
	w->mb = mb;
	snprintf(w->public_dir, sizeof w->public_dir, "%s", base->public_dir);
	w->params = *base;
	w->params.public_dir = w->public_dir;
	w->params.rules_path = "rollouts";
	w->params.credentials = NULL;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&w->thread, NULL, run, w) != 0) {
		snprintf(err, errlen, "rollout watcher: cannot start its thread");
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return NULL;
	}
	return w;
}

void nf_rollwatch_stop(struct nf_rollwatch *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w->controls);
	free(w);
}
