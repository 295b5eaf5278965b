/*
 * loop.c - the one event loop: libmicrohttpd's epoll fd, signals (through
 * signalfd, so handlers never run in the middle of a request), inotify on
 * versions.json's folder, the mailbox where new snapshots arrive, and the
 * hasher's "MD5s ready" eventfd.
 *
 * A reload never runs here: SIGHUP or a change of the rules file asks the
 * builder thread for a new snapshot, and the loop goes on answering. When
 * the snapshot arrives in the mailbox the loop serves it from the next
 * request on; no request ever sees half a reload. A build that fails is
 * reported and the snapshot being served goes on (the PHP original broke
 * every request instead).
 */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common.h"
#include "nofussd.h"

#define NF_INOTIFY_BUFFER 4096 /* bytes of inotify events read at once */

struct loop {
	const struct nf_config *cfg;
	struct nf_server *srv;
	struct nf_checklog *log;
	struct nf_mailbox *mailbox;
	struct nf_builder *builder;
	struct nf_mailbox *plans;      /* rollout plans from the watcher; NULL without a store */
	struct nf_rollwatch *watcher;
	int epfd, sigfd, inofd;
	char rules_dir[NF_MAX_PATH], rules_name[NF_MAX_PATH];
	bool stopping, reload;
	uint64_t deadline_ms; /* end of the shutdown grace period */
};

static void signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
}

void nf_loop_block_signals(void)
{
	sigset_t set;

	signal_set(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

static int watch_add(int epfd, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Watches the folder, not the file: editors and deploy tools replace the
 * file by renaming a new one over it, which a watch on the file misses. */
static int watch_rules(struct loop *l)
{
	char a[NF_MAX_PATH], b[NF_MAX_PATH];

	snprintf(a, sizeof a, "%s", l->cfg->rules_path);
	snprintf(b, sizeof b, "%s", l->cfg->rules_path);
	snprintf(l->rules_dir, sizeof l->rules_dir, "%s", dirname(a));
	snprintf(l->rules_name, sizeof l->rules_name, "%s", basename(b));
	l->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (l->inofd < 0 ||
	    inotify_add_watch(l->inofd, l->rules_dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
		nf_log(NF_LOG_WARN, "cannot watch %s (%s): reload with SIGHUP", l->rules_dir,
		       strerror(errno));
		return -1;
	}
	return watch_add(l->epfd, l->inofd);
}

static void drain_inotify(struct loop *l)
{
	char buf[NF_INOTIFY_BUFFER] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(l->inofd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)(void *)p;
			if (ev->len > 0 && strcmp(ev->name, l->rules_name) == 0)
				l->reload = true;
			p += sizeof *ev + ev->len;
		}
	}
}

static void log_failure(struct loop *l, const char *why)
{
	nf_log(NF_LOG_ERROR, "reload failed, still serving the previous %zu rules: %s",
	       nf_rules_count(nf_server_snapshot(l->srv)->rules), why);
}

/* Serves what the mailbox brought, in the order it was posted. */
static void take_mail(struct loop *l)
{
	struct nf_mail mail;

	if (!nf_mailbox_take(l->mailbox, &mail))
		return;
	/* For /metrics: builds that failed (several failures between two takes
	 * count once: the mailbox keeps the newest), snapshots served. */
	if (mail.failure[0] != '\0')
		nf_server_count_reload(l->srv, false);
	if (mail.snap != NULL && !l->stopping)
		nf_server_count_reload(l->srv, true);
	if (mail.failure[0] != '\0' && !mail.failure_last)
		log_failure(l, mail.failure);
	if (mail.snap != NULL && l->stopping) {
		nf_snapshot_release(mail.snap); /* too late to serve it */
	} else if (mail.snap != NULL) {
		nf_builder_retire(l->builder, nf_server_publish(l->srv, mail.snap));
		nf_log(NF_LOG_INFO, "%s", mail.note);
	}
	if (mail.failure[0] != '\0' && mail.failure_last)
		log_failure(l, mail.failure);
}

/* Serves the rollout plan the watcher posted. */
static void take_plan(struct loop *l)
{
	struct nf_mail mail;

	if (!nf_mailbox_take(l->plans, &mail))
		return;
	if (mail.snap != NULL && l->stopping) {
		nf_snapshot_release(mail.snap);
	} else if (mail.snap != NULL) {
		nf_builder_retire(l->builder, nf_server_publish_plan(l->srv, mail.snap));
		nf_log(NF_LOG_INFO, "%s", mail.note);
	}
}

/* The rollout watcher and its mailbox, when there is a store. */
static int start_watcher(struct loop *l, const struct nf_snapshot_params *params)
{
	char err[NF_ERR_LEN];
	struct nf_store *store = nf_server_store(l->srv);

	if (store == NULL || l->plans == NULL)
		return 0;
	if (watch_add(l->epfd, nf_mailbox_fd(l->plans)) != 0)
		snprintf(err, sizeof err, "%s", strerror(errno));
	else
		l->watcher = nf_rollwatch_start(store, l->plans, params, err, sizeof err);
	if (l->watcher == NULL) {
		nf_log(NF_LOG_ERROR, "event loop: %s", err);
		return -1;
	}
	return 0;
}

static void begin_shutdown(struct loop *l, int signo)
{
	if (l->stopping) { /* a second signal: stop now */
		nf_log(NF_LOG_INFO, "%s again: stopping now", strsignal(signo));
		l->deadline_ms = 0;
		return;
	}
	l->stopping = true;
	l->deadline_ms = nf_clock_ms() + (uint64_t)l->cfg->grace_seconds * 1000;
	nf_server_quiesce(l->srv);
	nf_log(NF_LOG_INFO, "%s: no new connections; %u requests in flight get up to %us",
	       strsignal(signo), nf_server_active_requests(l->srv), l->cfg->grace_seconds);
}

static void drain_signals(struct loop *l)
{
	struct signalfd_siginfo si;

	while (read(l->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		switch (si.ssi_signo) {
		case SIGHUP:
			l->reload = true;
			nf_server_reload_tls(l->srv); /* read on tls.c's thread */
			break;
		case SIGUSR1:
			nf_checklog_reopen(l->log);
			break;
		default:
			begin_shutdown(l, (int)si.ssi_signo);
			break;
		}
	}
}

/* The fds, the mailbox and the builder. Returns 0 or -1 (logged). */
static int setup(struct loop *l)
{
	char err[NF_ERR_LEN];
	/* Reloads verify with the key the first snapshot was built with. */
	struct nf_snapshot_params params = {l->cfg->rules_path, l->cfg->public_dir, true,
	                                    nf_server_snapshot(l->srv)->pubkey, l->cfg->credentials, NULL, 0};
	sigset_t set;

	nf_loop_block_signals();
	signal_set(&set);
	l->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->sigfd < 0 || l->epfd < 0 || watch_add(l->epfd, l->sigfd) != 0 ||
	    watch_add(l->epfd, nf_server_epoll_fd(l->srv)) != 0 ||
	    watch_add(l->epfd, nf_server_hasher_fd(l->srv)) != 0) {
		nf_log(NF_LOG_ERROR, "event loop: %s", strerror(errno));
		return -1;
	}
	if (watch_add(l->epfd, nf_mailbox_fd(l->mailbox)) != 0)
		snprintf(err, sizeof err, "%s", strerror(errno));
	else
		l->builder = nf_builder_start(&params, l->mailbox, err, sizeof err);
	if (l->builder == NULL) {
		nf_log(NF_LOG_ERROR, "event loop: %s", err);
		return -1;
	}
	if (start_watcher(l, &params) != 0)
		return -1;
	if (l->cfg->watch)
		watch_rules(l);
	return 0;
}

static void teardown(struct loop *l)
{
	nf_rollwatch_stop(l->watcher); /* before the builder: its plans are retired there */
	nf_builder_stop(l->builder); /* lets a build under way finish */
	if (l->inofd >= 0)
		close(l->inofd);
	if (l->sigfd >= 0)
		close(l->sigfd);
	if (l->epfd >= 0)
		close(l->epfd);
}

/* Handles what epoll reported. Returns -1 when epoll itself failed. */
static int wait_and_dispatch(struct loop *l, int timeout)
{
	struct epoll_event evs[NF_LOOP_EVENTS];
	int n = epoll_wait(l->epfd, evs, NF_LOOP_EVENTS, timeout);

	if (n < 0 && errno != EINTR) {
		nf_log(NF_LOG_ERROR, "epoll_wait: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd;
		if (fd == l->sigfd)
			drain_signals(l);
		else if (fd == l->inofd)
			drain_inotify(l);
		else if (fd == nf_server_hasher_fd(l->srv))
			nf_server_resume(l->srv);
		else if (l->mailbox != NULL && fd == nf_mailbox_fd(l->mailbox))
			take_mail(l);
		else if (l->plans != NULL && fd == nf_mailbox_fd(l->plans))
			take_plan(l);
	}
	if (l->reload && !l->stopping)
		nf_builder_request(l->builder);
	l->reload = false;
	return 0;
}

static void say_listening(const struct loop *l)
{
	const struct nf_config *cfg = l->cfg;
	bool v6 = strchr(cfg->listen, ':') != NULL;

	/* Tests and scripts take this line to mean "ready". */
	nf_log(NF_LOG_INFO, "nofussd %s listening on %s%s%s:%u%s/, %zu rules from %s, images from %s",
	       NOFUSS_VERSION, v6 ? "[" : "", cfg->listen[0] ? cfg->listen : "*", v6 ? "]" : "",
	       nf_server_port(l->srv), cfg->base, nf_rules_count(nf_server_snapshot(l->srv)->rules),
	       cfg->rules_path, cfg->public_dir);
}

int nf_loop_run(const struct nf_config *cfg, struct nf_server *srv, struct nf_checklog *log,
                const struct nf_loop_mail *mail)
{
	struct loop l = {.cfg = cfg, .srv = srv, .log = log, .epfd = -1, .sigfd = -1, .inofd = -1,
	                 .mailbox = mail->rules, .plans = mail->plans};
	uint64_t last_flush = nf_clock_ms();
	int status = 1, timeout;

	if (setup(&l) != 0)
		goto done;
	say_listening(&l); /* only now, with signals and the watch in place */
	timeout = nf_server_run(srv);
	for (;;) {
		if (wait_and_dispatch(&l, timeout) != 0)
			goto done;
		timeout = nf_server_run(srv);
		if (nf_clock_ms() - last_flush >= NF_LOG_FLUSH_MS) {
			nf_checklog_flush(log);
			last_flush = nf_clock_ms();
		}
		if (l.stopping &&
		    (nf_server_active_requests(srv) == 0 || nf_clock_ms() >= l.deadline_ms))
			break;
		if (l.stopping && timeout > NF_GRACE_POLL_MS)
			timeout = NF_GRACE_POLL_MS; /* poll the grace period */
	}
	if (nf_server_active_requests(srv) > 0)
		nf_log(NF_LOG_WARN, "grace period over: closing %u requests in flight",
		       nf_server_active_requests(srv));
	status = 0;
done:
	nf_checklog_flush(log);
	teardown(&l);
	return status;
}
