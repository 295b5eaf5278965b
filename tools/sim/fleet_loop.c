/*
 * fleet_loop.c - the fleet's event loop (see fleet.c for the whole): one
 * thread, epoll under libcurl's multi interface (curl_multi_socket_action).
 * Devices whose time has come boot or queue for a transfer slot; a device
 * in a slot is moved through its check by the core's step API, one GET (a
 * transfer of the port) after another; the run stops when every device is
 * done, at --timeout or on a signal, and then cuts what is in flight.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <curl/curl.h>

#include "args.h"
#include "common.h"
#include "nofuss/posix.h"
#include "sim.h"

#define FLEET_STEPS_MAX   8     /* core steps per transfer end; a check has 3 GETs */
#define FLEET_EVENTS_MAX  256   /* epoll events taken per wait */
#define FLEET_WAIT_MAX_MS 1000L /* longest sleep of the loop */

static volatile sig_atomic_t stop_signal;

static void on_signal(int signo)
{
	stop_signal = signo;
}

/* Moves the device in slot s on: its next GET, or the end of its check. */
static void advance(struct nf_fleet *f, struct nf_fleet_slot *s)
{
	struct nf_fleet_device *d = s->d;

	for (int step = 0; step < FLEET_STEPS_MAX; step++) {
		switch (nf_client_next(&d->client)) {
		case NF_ACTION_HTTP_GET:
			/* A failed start has ended the response: ask again. */
			if (nf_posix_transfer_start(&s->t, s->easy, &d->port,
			                            nf_client_request(&d->client), &d->client) != 0)
				continue;
			curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
			if (curl_multi_add_handle(f->multi, s->easy) != CURLM_OK) {
				nf_posix_transfer_end(&s->t, s->easy, CURLE_FAILED_INIT);
				continue;
			}
			return;
		case NF_ACTION_REBOOT: nf_fleet_check_done(f, s, true); return;
		default: nf_fleet_check_done(f, s, false); return;
		}
	}
	nf_fleet_check_done(f, s, false); /* a core that never ends its check: cannot happen */
}

/* A stock client's check is over (stock.c): its result into the fleet's. */
static void stock_done(struct nf_fleet *f, struct nf_fleet_slot *s, enum nf_sim_stock res,
                       const char *err)
{
	if (res == NF_SIM_STOCK_FAILED)
		nf_fleet_say(s->d, "%s: update failed: %s", nf_sim_client_name(f->o.client), err);
	else if (res == NF_SIM_STOCK_CURRENT)
		nf_fleet_say(s->d, "%s: no update", nf_sim_client_name(f->o.client));
	nf_fleet_check_end(f, s, res == NF_SIM_STOCK_UPDATED,
	                   res == NF_SIM_STOCK_FAILED ? (int)NF_ERR_TRANSPORT : (int)NF_OK);
}

/* Hands the stock request set up on s's handle to libcurl. */
static void stock_add(struct nf_fleet *f, struct nf_fleet_slot *s)
{
	curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
	if (curl_multi_add_handle(f->multi, s->easy) != CURLM_OK) {
		nf_sim_stock_free(&s->stock);
		stock_done(f, s, NF_SIM_STOCK_FAILED, "cannot start the transfer");
	}
}

/* Starts a stock client's check (--client) in slot s. */
static void stock_start(struct nf_fleet *f, struct nf_fleet_slot *s)
{
	struct nf_fleet_device *d = s->d;
	char err[NF_POSIX_ERR_MAX];

	if (nf_sim_stock_begin(&s->stock, s->easy, &d->port, f->o.client, f->o.url_version,
	                       f->o.server, d->client.device, d->client.version, err,
	                       sizeof err) != 0)
		stock_done(f, s, NF_SIM_STOCK_FAILED, err);
	else
		stock_add(f, s);
}

/* A stock client's transfer is over: its next request, or its end. */
static void stock_reaped(struct nf_fleet *f, struct nf_fleet_slot *s, int result)
{
	char err[NF_POSIX_ERR_MAX];
	enum nf_sim_stock res;

	f->bytes += s->stock.b.len;
	res = nf_sim_stock_end(&s->stock, s->easy, result, err, sizeof err);
	if (res == NF_SIM_STOCK_AGAIN)
		stock_add(f, s);
	else
		stock_done(f, s, res, err);
}

/* Starts the checks of queued devices while slots are free. */
static void start_checks(struct nf_fleet *f)
{
	while (f->nfree > 0 && f->q_len > 0) {
		struct nf_fleet_device *d = nf_fleet_dequeue(f);
		struct nf_fleet_slot *s = &f->slots[f->free_slots[--f->nfree]];

		s->d = d;
		f->active++;
		d->phase = FLEET_PH_ACTIVE;
		if (f->o.client >= NF_SIM_CLIENT_ESP8266) {
			stock_start(f, s);
			continue;
		}
		nf_client_begin(&d->client);
		advance(f, s);
	}
}

/* Boots and queues the devices whose time has come. */
static void fire_timers(struct nf_fleet *f)
{
	/* A boot may schedule the device again at once (a crash with no
	 * --reboot-delay); the guard bounds the pass anyway. */
	for (size_t guard = 0; f->heap_len > 0 && guard < 4 * f->o.count + 16; guard++) {
		struct nf_fleet_device *d = &f->dev[f->heap[0]];
		if (d->due_ms > f->now)
			break;
		nf_fleet_heap_pop(f);
		if (d->phase == FLEET_PH_BOOT)
			nf_fleet_boot(f, d, f->now);
		else
			nf_fleet_enqueue(f, d);
	}
}

/* --duration is over: no new check. Reboots due are done now, so that the
 * summary shows what each device runs; checks in flight finish. */
static void begin_stop(struct nf_fleet *f)
{
	f->stopping = true;
	for (size_t guard = 0; f->heap_len > 0 && guard < 4 * f->o.count + 16; guard++) {
		struct nf_fleet_device *d = &f->dev[nf_fleet_heap_pop(f)];
		if (d->phase == FLEET_PH_BOOT)
			nf_fleet_boot(f, d, f->now);
		else
			d->phase = FLEET_PH_DONE;
	}
	while (f->q_len > 0)
		nf_fleet_dequeue(f)->phase = FLEET_PH_DONE;
}

/* The end (--timeout, a signal): cuts every transfer in flight. */
static void cut_all(struct nf_fleet *f)
{
	for (size_t i = 0; i < f->o.concurrency; i++) {
		struct nf_fleet_slot *s = &f->slots[i];
		if (s->d == NULL)
			continue;
		curl_multi_remove_handle(f->multi, s->easy);
		if (f->o.client >= NF_SIM_CLIENT_ESP8266)
			nf_sim_stock_free(&s->stock);
		else
			nf_posix_transfer_end(&s->t, s->easy, CURLE_OPERATION_TIMEDOUT);
		s->d->cut = true;
		s->d->phase = FLEET_PH_DONE;
		nf_posix_release(&s->d->port);
		s->d = NULL;
		f->active--;
		f->cut++;
	}
}

/* ---- libcurl's multi interface on epoll ---- */

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct nf_fleet *f = userp;
	struct epoll_event ev;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (socketp != NULL) {
			epoll_ctl(f->ep, EPOLL_CTL_DEL, fd, NULL); /* may be closed already */
			curl_multi_assign(f->multi, fd, NULL);
		}
		return 0;
	}
	memset(&ev, 0, sizeof ev);
	ev.events =
	    ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
	ev.data.fd = fd;
	if (socketp != NULL) {
		if (epoll_ctl(f->ep, EPOLL_CTL_MOD, fd, &ev) == 0)
			return 0;
	}
	if (epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) != 0 &&
	    (errno != EEXIST || epoll_ctl(f->ep, EPOLL_CTL_MOD, fd, &ev) != 0))
		return -1;                  /* libcurl fails this transfer */
	curl_multi_assign(f->multi, fd, f); /* any non-NULL: "registered" */
	return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct nf_fleet *f = userp;

	(void)multi;
	f->curl_due = timeout_ms < 0 ? -1 : (int64_t)nf_clock_ms() + timeout_ms;
	return 0;
}

int nf_fleet_loop_open(struct nf_fleet *f)
{
	const struct nf_fleet_options *o = &f->o;

	f->ep = epoll_create1(EPOLL_CLOEXEC);
	if (f->ep < 0) {
		nf_tool_error("epoll: %s", strerror(errno));
		return FLEET_EXIT_SETUP;
	}
	f->multi = curl_multi_init();
	if (f->multi == NULL ||
	    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
	    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f) != CURLM_OK) {
		nf_tool_error("cannot set up a libcurl multi handle");
		return FLEET_EXIT_SETUP;
	}
	for (size_t i = 0; i < o->concurrency; i++) {
		f->slots[i].easy = curl_easy_init();
		if (f->slots[i].easy == NULL) {
			nf_tool_error("cannot make %lu libcurl handles", o->concurrency);
			return FLEET_EXIT_SETUP;
		}
		f->free_slots[f->nfree++] = (uint32_t)(o->concurrency - 1 - i);
	}
	f->curl_due = -1;
	return 0;
}

void nf_fleet_loop_close(struct nf_fleet *f)
{
	if (f->slots != NULL) {
		for (size_t i = 0; i < f->o.concurrency; i++) {
			if (f->slots[i].d != NULL && f->multi != NULL)
				curl_multi_remove_handle(f->multi, f->slots[i].easy);
			if (f->slots[i].easy != NULL)
				curl_easy_cleanup(f->slots[i].easy);
		}
	}
	if (f->multi != NULL)
		curl_multi_cleanup(f->multi);
	if (f->ep >= 0)
		close(f->ep);
}

/* Ends the transfers libcurl has finished and moves their devices on. */
static void reap(struct nf_fleet *f)
{
	CURLMsg *msg;
	int left;

	/* Each finished transfer is reported once: bounded. */
	while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
		CURL *easy = msg->easy_handle;
		CURLcode res = msg->data.result;
		char *priv = NULL;
		struct nf_fleet_slot *s;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		s = (struct nf_fleet_slot *)(void *)priv;
		curl_multi_remove_handle(f->multi, easy); /* msg is gone from here on */
		if (s == NULL || s->d == NULL)
			continue;
		f->transfers++;
		if (f->o.client >= NF_SIM_CLIENT_ESP8266) {
			stock_reaped(f, s, (int)res);
			continue;
		}
		f->bytes += s->t.body;
		nf_posix_transfer_end(&s->t, easy, (int)res);
		advance(f, s);
	}
}

static long min_wait(long wait, int64_t due, int64_t now)
{
	if (due < 0)
		return wait;
	if (due <= now)
		return 0;
	return due - now < wait ? (long)(due - now) : wait;
}

/* Runs until every device is done, --timeout or a signal. Returns 0, or -1
 * when the event loop itself fails (printed). */
int nf_fleet_run(struct nf_fleet *f)
{
	struct epoll_event events[FLEET_EVENTS_MAX];
	struct sigaction sa;
	int running = 0;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Bounded in time: every pass checks the deadline, and each wait
	 * ends by FLEET_WAIT_MAX_MS at most. */
	for (;;) {
		long wait = FLEET_WAIT_MAX_MS;
		int n;

		f->now = (int64_t)nf_clock_ms();
		if (stop_signal != 0) {
			f->interrupted = true;
			break;
		}
		if (f->now >= f->deadline) {
			f->timed_out = true;
			break;
		}
		if (!f->stopping && f->stop_at >= 0 && f->now >= f->stop_at)
			begin_stop(f);
		fire_timers(f);
		start_checks(f);
		if (f->active == 0 && f->q_len == 0 && f->heap_len == 0)
			break; /* every device is done */
		nf_fleet_progress(f, false);

		wait = min_wait(wait, f->curl_due, f->now);
		wait = min_wait(wait, f->heap_len > 0 ? f->dev[f->heap[0]].due_ms : -1, f->now);
		wait = min_wait(wait, f->next_progress, f->now);
		wait = min_wait(wait, f->deadline, f->now);
		wait = min_wait(wait, f->stopping ? -1 : f->stop_at, f->now);
		n = epoll_wait(f->ep, events, FLEET_EVENTS_MAX, (int)wait);
		if (n < 0 && errno != EINTR) {
			nf_tool_error("epoll_wait: %s", strerror(errno));
			return -1;
		}
		for (int i = 0; i < n; i++) {
			uint32_t ev = events[i].events;
			int flags = ((ev & EPOLLIN) ? CURL_CSELECT_IN : 0) |
			            ((ev & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
			            ((ev & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
			curl_multi_socket_action(f->multi, events[i].data.fd, flags, &running);
		}
		f->now = (int64_t)nf_clock_ms();
		if (f->curl_due >= 0 && f->now >= f->curl_due) {
			f->curl_due = -1;
			curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		}
		reap(f);
	}
	cut_all(f);
	return 0;
}
