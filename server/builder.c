/*
 * builder.c - the thread that rebuilds the snapshot when the loop asks.
 *
 * The loop must never parse versions.json or hash an image itself: a
 * 100,000-rule file takes seconds, and every check would wait. So the loop
 * only says "rebuild" (nf_builder_request, on SIGHUP or when the rules file
 * changes) and goes on answering; this thread builds a new snapshot, reusing
 * the MD5s of unchanged images from the newest snapshot, and posts it, or
 * why it failed, to the mailbox.
 *
 * Requests coalesce: a flag, not a queue. Ten changes while a build runs
 * make one more build after it, which reads the file as it is by then.
 *
 * The thread also frees the snapshots the loop stops serving (freeing
 * 100,000 answers and a 16 MiB JSON tree is slow too), and runs at a lower
 * priority than the loop, so that on a busy CPU requests come first.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "nofussd.h"

struct nf_builder {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool pending;                /* a build was asked for since the last one began */
	bool stopping;
	struct nf_snapshot *retired; /* to release, through retired_next */
	struct nf_mailbox *mb;
	struct nf_snapshot_params params;
	char rules_path[NF_MAX_PATH]; /* params point here: b owns copies */
	char public_dir[NF_MAX_PATH];
};

/* One build, posted whatever its outcome. */
static void build_once(struct nf_builder *b)
{
	char err[NF_ERR_LEN], note[NF_ERR_LEN];
	struct nf_snapshot *prev = nf_mailbox_latest(b->mb);
	struct nf_snapshot *s = nf_snapshot_build(&b->params, prev, err, sizeof err);

	nf_snapshot_release(prev);
	if (s == NULL) {
		nf_mailbox_post(b->mb, NULL, err);
		return;
	}
	nf_snapshot_describe(s, b->rules_path, note, sizeof note);
	nf_mailbox_post(b->mb, s, note);
}

void nf_worker_nice(void)
{
	/* On Linux the nice value is per thread. */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), NF_WORKER_NICE) != 0)
		nf_log(NF_LOG_DEBUG, "nice: %s", strerror(errno));
}

static void release_all(struct nf_snapshot *list)
{
	while (list != NULL) {
		struct nf_snapshot *next = list->retired_next;
		nf_snapshot_release(list);
		list = next;
	}
}

static void *run(void *arg)
{
	struct nf_builder *b = arg;
	struct nf_snapshot *retired;
	bool build;

	nf_worker_nice();
	pthread_mutex_lock(&b->lock);
	for (;;) {
		while (!b->pending && !b->stopping && b->retired == NULL)
			pthread_cond_wait(&b->wake, &b->lock);
		retired = b->retired;
		b->retired = NULL;
		build = b->pending && !b->stopping;
		b->pending = false;
		if (retired == NULL && !build)
			break; /* stopping, nothing left to do */
		pthread_mutex_unlock(&b->lock);
		release_all(retired);
		if (build)
			build_once(b);
		pthread_mutex_lock(&b->lock);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

struct nf_builder *nf_builder_start(const struct nf_snapshot_params *p, struct nf_mailbox *mb,
                                    char *err, size_t errlen)
{
	struct nf_builder *b = calloc(1, sizeof *b);
	int rc;

	if (b == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->mb = mb;
	snprintf(b->rules_path, sizeof b->rules_path, "%s", p->rules_path);
	snprintf(b->public_dir, sizeof b->public_dir, "%s", p->public_dir);
	b->params = *p;
	b->params.rules_path = b->rules_path;
	b->params.public_dir = b->public_dir;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->wake, NULL);
	rc = pthread_create(&b->thread, NULL, run, b);
	if (rc != 0) {
		snprintf(err, errlen, "builder thread: %s", strerror(rc));
		pthread_cond_destroy(&b->wake);
		pthread_mutex_destroy(&b->lock);
		free(b);
		return NULL;
	}
	return b;
}

void nf_builder_request(struct nf_builder *b)
{
	pthread_mutex_lock(&b->lock);
	b->pending = true;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
}

void nf_builder_retire(struct nf_builder *b, struct nf_snapshot *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&b->lock);
	s->retired_next = b->retired;
	b->retired = s;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
}

void nf_builder_stop(struct nf_builder *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&b->lock);
	b->stopping = true;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);
	pthread_cond_destroy(&b->wake);
	pthread_mutex_destroy(&b->lock);
	free(b);
}
