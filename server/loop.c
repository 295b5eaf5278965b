/*
 * loop.c - the one event loop: libmicrohttpd's epoll fd, signals (through
 * signalfd, so handlers never run in the middle of a request) and inotify on
 * versions.json's folder.
 *
 * Reloads happen here, between requests, on the same thread that answers
 * them, so swapping the rules needs no lock and no request can ever see half
 * a reload. A file that fails to load is reported and the previous rules go
 * on serving (the PHP original broke every request instead).
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

#include "nofussd.h"

struct loop {
	const struct nf_config *cfg;
	struct nf_server *srv;
	struct nf_checklog *log;
	int epfd, sigfd, inofd;
	char rules_dir[1024], rules_name[256];
	bool stopping, reload;
	struct timespec deadline; /* end of the shutdown grace period */
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

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
	char a[1024], b[1024];

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
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
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

static void reload_rules(struct loop *l)
{
	char err[1024];

	nf_server_reopen_files(l->srv);
	struct nf_rules *rules = nf_rules_load(l->cfg->rules_path, l->cfg->public_dir, err, sizeof err);

	if (rules == NULL) {
		nf_log(NF_LOG_ERROR, "reload failed, still serving the previous %zu rules: %s",
		       nf_rules_count(nf_server_rules(l->srv)), err);
		return;
	}
	nf_log(NF_LOG_INFO, "reloaded %s: %zu rules", l->cfg->rules_path, nf_rules_count(rules));
	nf_server_set_rules(l->srv, rules);
}

static void begin_shutdown(struct loop *l, int signo)
{
	if (l->stopping) { /* a second signal: stop now */
		nf_log(NF_LOG_INFO, "%s again: stopping now", strsignal(signo));
		l->deadline.tv_sec = 0;
		return;
	}
	l->stopping = true;
	clock_gettime(CLOCK_MONOTONIC, &l->deadline);
	l->deadline.tv_sec += l->cfg->grace_seconds;
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

static bool grace_over(const struct loop *l)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec > l->deadline.tv_sec ||
	       (ts.tv_sec == l->deadline.tv_sec && ts.tv_nsec >= l->deadline.tv_nsec);
}

int nf_loop_run(const struct nf_config *cfg, struct nf_server *srv, struct nf_checklog *log)
{
	struct loop l = {.cfg = cfg, .srv = srv, .log = log, .inofd = -1};
	struct epoll_event evs[8];
	sigset_t set;
	double last_flush = now_mono();
	int status = 1, timeout;

	nf_loop_block_signals();
	signal_set(&set);
	l.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	l.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l.sigfd < 0 || l.epfd < 0 || watch_add(l.epfd, l.sigfd) != 0 ||
	    watch_add(l.epfd, nf_server_epoll_fd(srv)) != 0) {
		nf_log(NF_LOG_ERROR, "event loop: %s", strerror(errno));
		goto done;
	}
	if (cfg->watch)
		watch_rules(&l);
	/* Only now, with signals and the watch in place: tests and scripts
	 * take this line to mean "ready". */
	nf_log(NF_LOG_INFO, "nofussd %s listening on %s%s%s:%u%s/, %zu rules from %s, images from %s",
	       NOFUSS_VERSION, strchr(cfg->listen, ':') ? "[" : "", cfg->listen[0] ? cfg->listen : "*",
	       strchr(cfg->listen, ':') ? "]" : "", nf_server_port(srv), cfg->base,
	       nf_rules_count(nf_server_rules(srv)), cfg->rules_path, cfg->public_dir);

	timeout = nf_server_run(srv);
	for (;;) {
		int n = epoll_wait(l.epfd, evs, 8, timeout);
		if (n < 0 && errno != EINTR) {
			nf_log(NF_LOG_ERROR, "epoll_wait: %s", strerror(errno));
			goto done;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == l.sigfd)
				drain_signals(&l);
			else if (evs[i].data.fd == l.inofd)
				drain_inotify(&l);
		}
		if (l.reload && !l.stopping) {
			l.reload = false;
			reload_rules(&l);
		}
		timeout = nf_server_run(srv);
		if (now_mono() - last_flush >= 1.0) {
			nf_checklog_flush(log);
			last_flush = now_mono();
		}
		if (l.stopping && (nf_server_active_requests(srv) == 0 || grace_over(&l)))
			break;
		if (l.stopping && timeout > 100)
			timeout = 100; /* poll the grace period */
	}
	if (nf_server_active_requests(srv) > 0)
		nf_log(NF_LOG_WARN, "grace period over: closing %u requests in flight",
		       nf_server_active_requests(srv));
	status = 0;
done:
	nf_checklog_flush(log);
	if (l.inofd >= 0)
		close(l.inofd);
	if (l.sigfd >= 0)
		close(l.sigfd);
	if (l.epfd >= 0)
		close(l.epfd);
	return status;
}
