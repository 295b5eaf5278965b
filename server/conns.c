/*
 * conns.c - the request-head deadline and the shedding of connections at
 * the connection limit: what stops a slowloris from holding every slot.
 *
 * libmicrohttpd's idle timeout restarts on every byte, so a client that
 * drips one byte of request head every few seconds holds its connection for
 * ever, and 16,400 of them hold every slot (issue 8). Here every connection
 * that is waiting for a request head sits in one of two lists, each in the
 * order of its deadline (every entry of a list gets the same offset, so the
 * order of arrival is the order of deadlines):
 *   - first: opened, no request head complete yet; deadline = opened +
 *     header-timeout;
 *   - next:  kept alive after an answer, waiting for the next head;
 *     deadline = answered + idle-timeout + header-timeout (an idle one is
 *     closed by the idle timeout long before: only one dripping a head
 *     reaches this deadline).
 * A connection whose head is complete (being answered, downloading, waiting
 * for an MD5) is in neither list, so nothing here ever cuts a download.
 * The sweep closes the connections past their deadline, and, when the open
 * connections come within `headroom` of the limit, the oldest waiting ones
 * (first list, then next), so that the kernel's queue of new connections,
 * where real checks wait, moves on. Closing means asking the owner
 * (http.c: shutdown(2) of the socket); libmicrohttpd then notices and closes
 * the connection through its normal path, which calls nf_conns_closed.
 *
 * One thread at a time (the device loop; the admin listener's guard.c
 * calls it under a lock); every call is O(1) except the sweep, which does at most
 * NF_SWEEP_MAX closings per call. Entries come from one array of max
 * entries, taken on demand, so nothing is allocated per connection.
 */
#include <stdlib.h>

#include "nofussd.h"

enum conn_state { CONN_FREE, CONN_FIRST, CONN_NEXT, CONN_BUSY, CONN_SHUT };

struct nf_conn {
	struct nf_conn *prev, *next;   /* in a list, or next in the free list */
	void *owner;                   /* the libmicrohttpd connection */
	uint64_t deadline_ms;
	enum conn_state state;
};

struct conn_list {
	struct nf_conn *head, *tail;
};

struct nf_conns {
	struct nf_conn *slots, *free;
	unsigned max, used;            /* slots; slots ever taken (the rest untouched) */
	unsigned open, shut;           /* open connections; of those, asked to close */
	unsigned headroom;
	bool full;                     /* max were open since the last sweep */
	uint64_t header_ms, idle_ms;
	struct conn_list first, next;
	void (*close)(void *owner);
	struct nf_conns_stats stats;
};

struct nf_conns *nf_conns_new(unsigned max, unsigned header_s, unsigned idle_s,
                              void (*close)(void *owner))
{
	struct nf_conns *c = calloc(1, sizeof *c);

	if (c == NULL || max == 0)
		goto fail;
	/* calloc: pages of slots never taken are never touched */
	c->slots = calloc(max, sizeof *c->slots);
	if (c->slots == NULL)
		goto fail;
	c->max = max;
	c->headroom = max / NF_SHED_HEADROOM_DIV > 0 ? max / NF_SHED_HEADROOM_DIV : 1;
	c->header_ms = (uint64_t)header_s * 1000;
	c->idle_ms = (uint64_t)idle_s * 1000;
	c->close = close;
	return c;
fail:
	free(c);
	return NULL;
}

void nf_conns_free(struct nf_conns *c)
{
	if (c == NULL)
		return;
	free(c->slots);
	free(c);
}

static void list_push(struct conn_list *l, struct nf_conn *n)
{
	n->next = NULL;
	n->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = n;
	else
		l->head = n;
	l->tail = n;
}

static void list_unlink(struct conn_list *l, struct nf_conn *n)
{
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		l->head = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	else
		l->tail = n->prev;
	n->prev = n->next = NULL;
}

/* Takes n out of the list it is in, if any. */
static void unlist(struct nf_conns *c, struct nf_conn *n)
{
	if (n->state == CONN_FIRST)
		list_unlink(&c->first, n);
	else if (n->state == CONN_NEXT)
		list_unlink(&c->next, n);
}

struct nf_conn *nf_conns_opened(struct nf_conns *c, void *owner, uint64_t now_ms)
{
	struct nf_conn *n;

	if (c->free != NULL) {
		n = c->free;
		c->free = n->next;
	} else if (c->used < c->max) {
		n = &c->slots[c->used++];
	} else {
		return NULL; /* more than max: libmicrohttpd's limit keeps this from happening */
	}
	n->owner = owner;
	n->deadline_ms = now_ms + c->header_ms;
	n->state = CONN_FIRST;
	list_push(&c->first, n);
	if (++c->open == c->max)
		c->full = true;
	return n;
}

void nf_conns_closed(struct nf_conns *c, struct nf_conn *n)
{
	if (n == NULL)
		return;
	unlist(c, n);
	if (n->state == CONN_SHUT)
		c->shut--;
	c->open--;
	n->state = CONN_FREE;
	n->owner = NULL;
	n->prev = NULL;
	n->next = c->free;
	c->free = n;
}

void nf_conns_head_done(struct nf_conns *c, struct nf_conn *n)
{
	if (n == NULL || n->state == CONN_SHUT)
		return;
	unlist(c, n);
	n->state = CONN_BUSY;
}

void nf_conns_answered(struct nf_conns *c, struct nf_conn *n, uint64_t now_ms)
{
	if (n == NULL || n->state != CONN_BUSY)
		return;
	n->deadline_ms = now_ms + c->idle_ms + c->header_ms;
	n->state = CONN_NEXT;
	list_push(&c->next, n);
}

static void shut(struct nf_conns *c, struct nf_conn *n)
{
	unlist(c, n);
	n->state = CONN_SHUT;
	c->shut++;
	c->close(n->owner);
}

int nf_conns_sweep(struct nf_conns *c, uint64_t now_ms)
{
	unsigned done = 0;
	struct nf_conn *n;
	uint64_t wake = UINT64_MAX;

	while (done < NF_SWEEP_MAX && (n = c->first.head) != NULL && n->deadline_ms <= now_ms) {
		shut(c, n);
		c->stats.expired++;
		done++;
	}
	while (done < NF_SWEEP_MAX && (n = c->next.head) != NULL && n->deadline_ms <= now_ms) {
		shut(c, n);
		c->stats.expired++;
		done++;
	}
	/* Near the limit: the oldest connections still without a request head
	 * make room for the ones waiting in the kernel's queue. */
	while (done < NF_SWEEP_MAX && c->open - c->shut + c->headroom > c->max) {
		n = c->first.head != NULL ? c->first.head : c->next.head;
		if (n == NULL)
			break;
		shut(c, n);
		c->stats.shed++;
		done++;
	}
	if (done == NF_SWEEP_MAX)
		return 0; /* more to do: come back at once */
	/* At its limit libmicrohttpd stops watching the listening socket, and
	 * watches it again only at the start of its next run: after closings
	 * that run must come at once, not when some socket happens to stir
	 * (up to a second later), or new connections wait in the queue. */
	if (c->full && c->open < c->max) {
		c->full = false;
		return 0;
	}
	if (c->first.head != NULL)
		wake = c->first.head->deadline_ms;
	if (c->next.head != NULL && c->next.head->deadline_ms < wake)
		wake = c->next.head->deadline_ms;
	if (wake == UINT64_MAX || wake - now_ms > (uint64_t)INT_MAX)
		return INT_MAX;
	return (int)(wake - now_ms);
}

struct nf_conns_stats nf_conns_stats(const struct nf_conns *c)
{
	struct nf_conns_stats s = c->stats;

	s.open = c->open;
	return s;
}
