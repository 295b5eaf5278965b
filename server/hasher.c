/*
 * hasher.c - the thread that computes MD5s for downloads waiting on them.
 *
 * Every image answer carries x-MD5, which the device's updater checks. The
 * snapshot knows the MD5 of each image its rules name; a download of any
 * other file, or of one changed since the snapshot was built, needs the file
 * read in full first (seconds for a large image). image.c suspends such a
 * download, submits a job here, and resumes it when the job comes back.
 *
 * Jobs are bounded (NF_MAX_HASH_JOBS, counting those queued, running and
 * finished but not collected), so a client asking for many changing files
 * cannot make the queue grow without end; a full queue is image.c's to
 * refuse. Finished jobs are announced through an eventfd the loop watches.
 * The hasher allocates nothing: jobs belong to the submitter.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "nofussd.h"

struct nf_hasher {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct nf_hash_job *queue, *queue_tail; /* waiting, in order */
	struct nf_hash_job *running;
	struct nf_hash_job *done;               /* finished, not collected */
	size_t jobs;                            /* queued + running + done */
	atomic_bool stopping;
	int efd;
};

static void *run(void *arg)
{
	struct nf_hasher *h = arg;
	uint64_t one = 1;

	nf_worker_nice();
	pthread_mutex_lock(&h->lock);
	for (;;) {
		struct nf_hash_job *job;
		while (h->queue == NULL && !atomic_load(&h->stopping))
			pthread_cond_wait(&h->wake, &h->lock);
		if (atomic_load(&h->stopping))
			break;
		job = h->queue;
		h->queue = job->next;
		if (h->queue == NULL)
			h->queue_tail = NULL;
		h->running = job;
		pthread_mutex_unlock(&h->lock);

		job->error = nf_files_md5(job->fd, job->md5, &h->stopping) == 0 ? 0 : errno;

		pthread_mutex_lock(&h->lock);
		h->running = NULL;
		job->next = h->done;
		h->done = job;
		if (write(h->efd, &one, sizeof one) < 0 && errno != EAGAIN)
			nf_log(NF_LOG_ERROR, "hasher: %s", strerror(errno));
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

struct nf_hasher *nf_hasher_start(char *err, size_t errlen)
{
	struct nf_hasher *h = calloc(1, sizeof *h);
	int rc;

	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&h->stopping, false);
	h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		free(h);
		return NULL;
	}
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->wake, NULL);
	rc = pthread_create(&h->thread, NULL, run, h);
	if (rc != 0) {
		snprintf(err, errlen, "hasher thread: %s", strerror(rc));
		pthread_cond_destroy(&h->wake);
		pthread_mutex_destroy(&h->lock);
		close(h->efd);
		free(h);
		return NULL;
	}
	return h;
}

int nf_hasher_fd(const struct nf_hasher *h)
{
	return h->efd;
}

int nf_hasher_submit(struct nf_hasher *h, struct nf_hash_job *job)
{
	int rc = -1;

	pthread_mutex_lock(&h->lock);
	if (h->jobs < NF_MAX_HASH_JOBS) {
		job->next = NULL;
		job->error = 0;
		job->md5[0] = '\0';
		if (h->queue_tail != NULL)
			h->queue_tail->next = job;
		else
			h->queue = job;
		h->queue_tail = job;
		h->jobs++;
		pthread_cond_signal(&h->wake);
		rc = 0;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

/* Takes the finished list; the caller holds the lock. */
static struct nf_hash_job *take_done(struct nf_hasher *h)
{
	struct nf_hash_job *list = h->done;

	for (struct nf_hash_job *j = list; j != NULL; j = j->next)
		h->jobs--;
	h->done = NULL;
	return list;
}

struct nf_hash_job *nf_hasher_collect(struct nf_hasher *h)
{
	struct nf_hash_job *list;
	uint64_t count;

	if (read(h->efd, &count, sizeof count) < 0 && errno != EAGAIN)
		nf_log(NF_LOG_ERROR, "hasher: %s", strerror(errno));
	pthread_mutex_lock(&h->lock);
	list = take_done(h);
	pthread_mutex_unlock(&h->lock);
	return list;
}

struct nf_hash_job *nf_hasher_stop(struct nf_hasher *h)
{
	struct nf_hash_job *list, *queued;

	if (h == NULL)
		return NULL;
	pthread_mutex_lock(&h->lock);
	atomic_store(&h->stopping, true);
	pthread_cond_signal(&h->wake);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->thread, NULL);
	list = take_done(h);
	queued = h->queue;
	while (queued != NULL) { /* never started */
		struct nf_hash_job *j = queued;
		queued = j->next;
		j->error = ECANCELED;
		j->next = list;
		list = j;
	}
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	close(h->efd);
	free(h);
	return list;
}
