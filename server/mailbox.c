/*
 * mailbox.c - the one place where new snapshots reach the loop.
 *
 * This is the seam between the threads that make snapshots and the thread
 * that serves them. Two mailboxes are made (main.c): the builder posts
 * versions.json's snapshots to one (builder.c, on SIGHUP or when the file
 * changes), the rollout watcher its plans to the other (rollwatch.c). A
 * poster builds a snapshot, calls nf_mailbox_post, and the loop serves it
 * between two requests. A poster that wants to reuse MD5s, and the admin
 * listener (shadowing, explain), ask nf_mailbox_latest for the newest.
 *
 * Mail is one slot under a mutex plus an eventfd that the loop's epoll
 * watches. Posting never waits for the loop: a snapshot posted before the
 * loop took the previous one replaces it (the older one was never served,
 * and the newer one was built later), and a failure replaces an older
 * failure. The loop logs what it takes: the note of the snapshot it serves,
 * or why a build failed while the snapshot served stays whole.
 *
 * The other direction, the loop handing check events to the store's
 * writer, is the store's own bounded queue (store.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "nofussd.h"

struct nf_mailbox {
	pthread_mutex_t lock;
	int efd;                     /* eventfd: readable while mail waits */
	struct nf_mail mail;         /* the slot */
	bool full;
	struct nf_snapshot *latest;  /* newest posted, or the first */
};

struct nf_mailbox *nf_mailbox_new(struct nf_snapshot *current, char *err, size_t errlen)
{
	struct nf_mailbox *mb = calloc(1, sizeof *mb);

	if (mb == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (mb->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		free(mb);
		return NULL;
	}
	pthread_mutex_init(&mb->lock, NULL);
	mb->latest = current != NULL ? nf_snapshot_retain(current) : NULL;
	return mb;
}

void nf_mailbox_free(struct nf_mailbox *mb)
{
	if (mb == NULL)
		return;
	nf_snapshot_release(mb->mail.snap);
	nf_snapshot_release(mb->latest);
	pthread_mutex_destroy(&mb->lock);
	close(mb->efd);
	free(mb);
}

int nf_mailbox_fd(const struct nf_mailbox *mb)
{
	return mb->efd;
}

void nf_mailbox_post(struct nf_mailbox *mb, struct nf_snapshot *snap, const char *note)
{
	struct nf_snapshot *unserved = NULL, *older = NULL;
	uint64_t one = 1;

	pthread_mutex_lock(&mb->lock);
	if (snap != NULL) {
		unserved = mb->mail.snap;
		older = mb->latest;
		mb->mail.snap = snap;
		mb->latest = nf_snapshot_retain(snap);
		snprintf(mb->mail.note, sizeof mb->mail.note, "%s", note);
		mb->mail.failure_last = false;
	} else {
		snprintf(mb->mail.failure, sizeof mb->mail.failure, "%s", note);
		mb->mail.failure_last = true;
	}
	mb->full = true;
	pthread_mutex_unlock(&mb->lock);
	/* Freeing a snapshot can take a while: not under the lock. */
	nf_snapshot_release(unserved);
	nf_snapshot_release(older);
	if (write(mb->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		nf_log(NF_LOG_ERROR, "mailbox: %s", strerror(errno));
}

struct nf_snapshot *nf_mailbox_latest(struct nf_mailbox *mb)
{
	struct nf_snapshot *s;

	pthread_mutex_lock(&mb->lock);
	s = mb->latest != NULL ? nf_snapshot_retain(mb->latest) : NULL;
	pthread_mutex_unlock(&mb->lock);
	return s;
}

bool nf_mailbox_take(struct nf_mailbox *mb, struct nf_mail *out)
{
	uint64_t count;
	bool full;

	if (read(mb->efd, &count, sizeof count) < 0 && errno != EAGAIN)
		nf_log(NF_LOG_ERROR, "mailbox: %s", strerror(errno));
	pthread_mutex_lock(&mb->lock);
	full = mb->full;
	if (full) {
		*out = mb->mail;
		memset(&mb->mail, 0, sizeof mb->mail);
		mb->full = false;
	}
	pthread_mutex_unlock(&mb->lock);
	return full;
}
