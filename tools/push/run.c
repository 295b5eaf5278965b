/*
 * run.c - `nofuss push`'s pushes (see push.c for the whole): every resolved
 * environment is pushed, up to --jobs at a time, one thread each: a watch
 * on the device's topics (mqtt.c) notes the version it announced BEFORE,
 * the image goes over ArduinoOTA (ota/send.c), and the push only counts
 * when the device comes back announcing the expected version afresh, with
 * a heartbeat or status after the upload too. One line of progress per
 * device, and a summary table at the end.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "common.h"
#include "nofuss/posix.h"
#include "ota.h"
#include "push.h"
#include "topics.h"

#define PROOF_POLL_MS 50
#define BAR_WIDTH     20

/* ---- progress: one line per device ---- */

enum display_mode {
	SHOW_PLAIN, /* not a terminal: a line every 25% and at each step */
	SHOW_LINE,  /* a terminal, one push at a time: one line updated in place */
	SHOW_BLOCK, /* a terminal, several at a time: a block of lines redrawn */
};

struct runner {
	const struct nf_push_options *o;
	struct nf_push_job *jobs;
	size_t njobs, next;
	pthread_mutex_t lock; /* next, and the terminal */
	enum display_mode mode;
};

/* Draws job's line, text being what to show after its name. Call with
 * r->lock held. */
static void show_locked(struct runner *r, const struct nf_push_job *job, const char *text,
                        bool last)
{
	const char *name = job->env->name;

	switch (r->mode) {
	case SHOW_PLAIN: fprintf(stderr, "%s: %s\n", name, text); break;
	case SHOW_LINE: fprintf(stderr, "\r%-16s %s\033[K%s", name, text, last ? "\n" : ""); break;
	case SHOW_BLOCK: {
		size_t up = r->njobs - job->index;

		fprintf(stderr, "\033[%zuA\r%-16s %s\033[K\033[%zuB\r", up, name, text, up);
		break;
	}
	}
	fflush(stderr);
}

static void show(struct runner *r, const struct nf_push_job *job, const char *text, bool last)
{
	pthread_mutex_lock(&r->lock);
	show_locked(r, job, text, last);
	pthread_mutex_unlock(&r->lock);
}

struct progress_ctx {
	struct runner *r;
	struct nf_push_job *job;
};

static void on_progress(void *ctx, uint64_t acked, uint64_t total)
{
	struct progress_ctx *pc = ctx;
	struct nf_push_job *job = pc->job;
	int pct = total > 0 ? (int)(acked * 100 / total) : 100;
	char text[128], bar[BAR_WIDTH + 1];
	int fill = pct * BAR_WIDTH / 100;

	if (pc->r->mode == SHOW_PLAIN ? pct / 25 == job->last_pct / 25 : pct == job->last_pct)
		return;
	job->last_pct = pct;
	if (pc->r->mode == SHOW_PLAIN) {
		snprintf(text, sizeof text, "uploading %d%% (%llu of %llu bytes)", pct,
		         (unsigned long long)acked, (unsigned long long)total);
	} else {
		memset(bar, '#', (size_t)fill);
		memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
		bar[BAR_WIDTH] = '\0';
		snprintf(text, sizeof text, "[%s] %3d%% uploading %llu bytes", bar, pct,
		         (unsigned long long)total);
	}
	show(pc->r, job, text, false);
}

/* ---- one push ---- */

/* The topic without its last segment ("" when it has none). */
static void topic_base(const char *topic, char base[NF_PUSH_MAX_TOPIC])
{
	const char *slash = strrchr(topic, '/');
	size_t n = slash != NULL ? (size_t)(slash - topic) : 0;

	memcpy(base, topic, n);
	base[n] = '\0';
}

/* Waits for the device to come back after an upload that ended at
 * upload_end. Returns 0 or PUSH_EXIT_PROOF with job->result set. */
static int prove(const struct nf_push_options *o, struct nf_push_watch *w, struct nf_push_job *job,
                 uint64_t upload_end)
{
	struct nf_push_seen seen;
	uint64_t deadline = upload_end + (uint64_t)o->wait_ms;
	const char *what = job->fs ? NF_TOPIC_FSVERSION : NF_TOPIC_VERSION;
	bool announced, alive;
	double wait_s = (double)o->wait_ms / 1000.0;

	for (;;) {
		struct timespec step = {0, PROOF_POLL_MS * 1000000L};
		uint64_t t = nf_clock_ms();
		uint64_t at;

		nf_push_watch_get(w, &seen);
		at = job->fs ? seen.fsversion_ms : seen.version_ms;
		announced = at != 0 && at >= upload_end;
		alive = seen.alive_ms != 0 && seen.alive_ms >= upload_end;
		if (announced)
			snprintf(job->now, sizeof job->now, "%s",
			         job->fs ? seen.fsversion : seen.version);
		if ((announced && alive) || t >= deadline)
			break;
		nanosleep(&step, NULL);
	}
	if (!announced && !alive) {
		snprintf(job->result, sizeof job->result,
		         "uploaded, but did not come back within %g s", wait_s);
		return PUSH_EXIT_PROOF;
	}
	if (!announced) {
		snprintf(job->result, sizeof job->result,
		         "uploaded, came back (heartbeat/status) but announced no %s within %g s",
		         what, wait_s);
		return PUSH_EXIT_PROOF;
	}
	if (job->expected[0] != '\0' && strcmp(job->now, job->expected) != 0) {
		snprintf(job->result, sizeof job->result, "came back with %s, expected %s",
		         job->now, job->expected);
		return PUSH_EXIT_PROOF;
	}
	if (job->expected[0] == '\0' && strcmp(job->now, job->old) == 0) {
		snprintf(job->result, sizeof job->result,
		         "came back with %s unchanged (the image carries no version to expect: "
		         "see --expect-version)",
		         job->now);
		return PUSH_EXIT_PROOF;
	}
	if (!alive) {
		snprintf(job->result, sizeof job->result,
		         "announced %s but no heartbeat/status within %g s", job->now, wait_s);
		return PUSH_EXIT_PROOF;
	}
	if (job->expected[0] == '\0')
		snprintf(job->result, sizeof job->result,
		         "ok (%s changed; the image carries no version)", what);
	else
		snprintf(job->result, sizeof job->result, "ok");
	return 0;
}

/* The upload step: ArduinoOTA to job->ip:port (docs/PEERS.md section 7),
 * then the proof. Sets job->rc, job->result and the rest. */
static void push_upload(struct runner *r, struct nf_push_job *job)
{
	const struct nf_push_options *o = r->o;
	const struct nf_push_env *e = job->env;
	char base[NF_PUSH_MAX_TOPIC], err[NF_PUSH_MAX_ERRMSG],
	    msg[NF_OTA_ERR_MAX + NF_OTA_TEXT_MAX];
	char text[NF_PUSH_MAX_RESULT + 64];
	struct progress_ctx pc = {r, job};
	struct nf_ota_send_opts so;
	struct nf_push_watch *w = NULL;
	struct nf_push_seen seen;
	uint64_t start = nf_clock_ms(), upload_end;
	int rc;

	job->last_pct = r->mode == SHOW_PLAIN ? 0 : -1; /* plain: from 25% */
	show(r, job, "watching the device's topics", false);
	topic_base(e->topic, base);
	if (base[0] == '\0') {
		snprintf(job->result, sizeof job->result,
		         "not uploaded: topic '%s' has no base to watch (expected BASE/ip)",
		         e->topic);
		job->rc = PUSH_EXIT_PROOF;
		goto done;
	}
	w = nf_push_watch_open(&o->broker, base, err, sizeof err);
	if (w == NULL) {
		snprintf(job->result, sizeof job->result, "not uploaded: cannot watch %s/: %s",
		         base, err);
		job->rc = PUSH_EXIT_PROOF;
		goto done;
	}
	nf_push_watch_get(w, &seen);
	snprintf(job->old, sizeof job->old, "%s", job->fs ? seen.old_fsversion : seen.old_version);

	memset(&so, 0, sizeof so);
	so.ip = job->ip;
	so.port = (uint16_t)e->port;
	so.password = e->has_auth ? e->auth : NULL;
	so.command = job->fs ? NF_OTA_CMD_FS : NF_OTA_CMD_FIRMWARE;
	so.filename = job->image;
	so.progress = on_progress;
	so.ctx = &pc;
	rc = nf_ota_send(&so, job->data, job->len, msg, sizeof msg);
	upload_end = nf_clock_ms();
	if (rc != NF_OTA_SEND_OK) {
		snprintf(job->result, sizeof job->result, "upload failed: %s: %s",
		         nf_ota_send_strresult(rc), msg);
		job->rc = PUSH_EXIT_UPLOAD;
		goto done;
	}
	snprintf(text, sizeof text, "uploaded; waiting up to %g s for the device to come back",
	         (double)o->wait_ms / 1000.0);
	show(r, job, text, false);
	job->rc = prove(o, w, job, upload_end);
done:
	nf_push_watch_close(w);
	job->elapsed_ms = (long)(nf_clock_ms() - start);
	snprintf(text, sizeof text, "%s%s", job->rc == 0 ? "" : "FAILED: ", job->result);
	show(r, job, text, true);
}

static void *worker(void *arg)
{
	struct runner *r = arg;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&r->lock);
		i = r->next++;
		pthread_mutex_unlock(&r->lock);
		if (i >= r->njobs)
			break;
		push_upload(r, &r->jobs[i]);
	}
	return NULL;
}

/* Reads every image and what version it carries, before anything is
 * uploaded. Returns 0 or PUSH_EXIT_IMAGE after saying why. */
static int load_images(const struct nf_push_options *o, struct nf_push_job *jobs, size_t njobs)
{
	for (size_t i = 0; i < njobs; i++) {
		struct nf_push_job *job = &jobs[i];
		struct nf_posix_image info;
		char err[NF_POSIX_ERR_MAX];

		if (nf_read_file(job->image, NF_OTA_SIZE_MAX, &job->data, &job->len) != 0) {
			nf_tool_error("%s: cannot read image %s", job->env->name, job->image);
			return PUSH_EXIT_IMAGE;
		}
		job->index = i;
		if (o->expect != NULL)
			snprintf(job->expected, sizeof job->expected, "%s", o->expect);
		else if (job->len >= NF_POSIX_IMAGE_MIN &&
		         nf_posix_image_parse(job->data, job->len, &info, err, sizeof err) == 0)
			snprintf(job->expected, sizeof job->expected, "%s", info.version);
	}
	return 0;
}

static const char *or_dash(const char *s)
{
	return s[0] != '\0' ? s : "-";
}

static void print_summary(const struct nf_push_job *jobs, size_t njobs)
{
	int wd = 6, wi = 2, wo = 3, wn = 3;

	for (size_t i = 0; i < njobs; i++) {
		int n;

		n = (int)strlen(jobs[i].env->name);
		wd = n > wd ? n : wd;
		n = (int)strlen(jobs[i].ip);
		wi = n > wi ? n : wi;
		n = (int)strlen(or_dash(jobs[i].old));
		wo = n > wo ? n : wo;
		n = (int)strlen(or_dash(jobs[i].now));
		wn = n > wn ? n : wn;
	}
	printf("%-*s  %-*s  %-*s  %-*s  %7s  %s\n", wd, "DEVICE", wi, "IP", wo, "OLD", wn, "NEW",
	       "TIME", "RESULT");
	for (size_t i = 0; i < njobs; i++) {
		const struct nf_push_job *j = &jobs[i];

		printf("%-*s  %-*s  %-*s  %-*s  %6.1fs  %s%s\n", wd, j->env->name, wi, j->ip, wo,
		       or_dash(j->old), wn, or_dash(j->now), (double)j->elapsed_ms / 1000.0,
		       j->rc == 0 ? "" : "FAILED: ", j->result);
	}
	fflush(stdout);
}

int nf_push_run(const struct nf_push_options *o, struct nf_push_job *jobs, size_t njobs)
{
	struct runner r = {.o = o, .jobs = jobs, .njobs = njobs};
	pthread_t threads[NF_PUSH_MAX_JOBS];
	size_t nthreads = o->jobs < njobs ? o->jobs : njobs, started = 0;
	int rc;

	rc = load_images(o, jobs, njobs);
	if (rc != 0)
		return rc;
	if (!isatty(STDERR_FILENO))
		r.mode = SHOW_PLAIN;
	else if (nthreads > 1)
		r.mode = SHOW_BLOCK;
	else
		r.mode = SHOW_LINE;
	if (r.mode == SHOW_BLOCK) {
		for (size_t i = 0; i < njobs; i++)
			fprintf(stderr, "%-16s waiting\n", jobs[i].env->name);
		fflush(stderr);
	}
	pthread_mutex_init(&r.lock, NULL);
	for (size_t i = 0; i < nthreads; i++) {
		if (pthread_create(&threads[i], NULL, worker, &r) != 0)
			break;
		started++;
	}
	if (started == 0)
		worker(&r); /* no thread at all: do it here */
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_destroy(&r.lock);
	print_summary(jobs, njobs);
	for (size_t i = 0; i < njobs; i++)
		if (jobs[i].rc != 0)
			return jobs[i].rc;
	return 0;
}
