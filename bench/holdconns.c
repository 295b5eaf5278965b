/*
 * holdconns.c - load client for bench/server.sh: holds thousands of HTTP
 * connections open against one server on 127.0.0.1, or probes it with a few
 * timed requests while they are held.
 *
 * Modes (-m):
 *   idle   open N connections; each sends the request in -r once, reads the
 *          whole answer (Content-Length), then stays open and idle.
 *   slow   open N connections with a small SO_RCVBUF (-b); each sends the
 *          request (a download) and then reads the answer at about -R bytes
 *          per second (paced recv every 100 ms), never faster.
 *   drip   a slowloris: open N connections; each sends the request file (an
 *          unfinished request head), then one more byte every -D seconds,
 *          never ending it. A connection the server closes is opened again
 *          (as an attacker would), so N stay open or queued.
 *   probe  send the request N times, one connection each, one after the
 *          other (-G ms apart); print how many were answered 200 (and,
 *          with -e, with exactly the expected body) and their latency
 *          (min, median, 99th percentile, max).
 *
 * idle/slow/drip print one line "held ..." once every connection is ready (or the
 * setup time -S is over), keep the connections for -H seconds, then print an
 * "end ..." line and exit. Every loop is bounded in count and in time: the
 * program never runs past setup + hold + 5 s. It connects only to 127.0.0.1.
 *
 * Build: gcc -O2 -o holdconns holdconns.c   (bench/server.sh does it)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum state { ST_NEW, ST_CONNECTING, ST_SENDING, ST_HEAD, ST_BODY, ST_READY, ST_GONE, ST_DRIP };

#define HEAD_MAX 4096
#define TICK_MS 100
#define MAX_CONNS 100000

struct conn {
	int fd;
	unsigned char st;
	unsigned char counted;  /* counted as ok or fail already */
	unsigned short hlen;
	unsigned sent;
	int status;
	long long clen, got;    /* body length announced / received */
	char *head;             /* while the answer head is read */
	double next_drip;       /* drip mode: when the next byte is due */
};

static const char *mode = "idle";
static int port, nconns = 1, maxinflight = 200, rcvbuf, rate = 10240;
static double hold_s = 10, setup_s = 60, probe_timeout = 5, drip_s = 10;
static int probe_gap_ms = 20;
static char *req, *expect;
static size_t reqlen, expectlen;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > 65536 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "holdconns: cannot read %s\n", path);
		exit(2);
	}
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "holdconns: cannot read %s\n", path);
		exit(2);
	}
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Parses a complete answer head; returns the offset of the body, or 0 when
 * the head is not complete yet, or -1 when it is malformed or too long. */
static int parse_head(struct conn *c)
{
	char *end, *p;

	c->head[c->hlen] = '\0';
	end = strstr(c->head, "\r\n\r\n");
	if (end == NULL)
		return c->hlen >= HEAD_MAX - 1 ? -1 : 0;
	if (strncmp(c->head, "HTTP/1.", 7) != 0 || c->hlen < 12)
		return -1;
	c->status = atoi(c->head + 9);
	c->clen = -1;
	for (p = c->head; p < end && (p = strstr(p, "\r\n")) != NULL && p < end; p += 2) {
		if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
			c->clen = atoll(p + 17);
	}
	return (int)(end + 4 - c->head);
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static struct sockaddr_in server_addr(void)
{
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1 only */
	return sa;
}

/* ---- probe mode ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* One request on its own connection; returns 1 when answered 200 with the
 * whole body (and the expected body, with -e), 0 otherwise. */
static int probe_once(double *latency_ms)
{
	struct sockaddr_in sa = server_addr();
	struct timeval tv = {(time_t)probe_timeout,
	                     (suseconds_t)((probe_timeout - (double)(time_t)probe_timeout) * 1e6)};
	struct conn c = {0};
	char buf[8192], head[HEAD_MAX + 1], *body = NULL;
	double t0 = now(), deadline = t0 + probe_timeout;
	int fd, off = 0, ok = 0;
	size_t sent = 0;

	*latency_ms = -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto out;
	while (sent < reqlen && now() < deadline) {
		ssize_t n = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL);
		if (n <= 0)
			goto out;
		sent += (size_t)n;
	}
	c.head = head;
	body = malloc(expectlen + 1);
	/* Bounded: each recv waits at most the timeout, and the deadline ends it. */
	for (int i = 0; i < 100000 && now() < deadline; i++) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n <= 0)
			break;
		for (ssize_t j = 0; j < n; j++) {
			if (off == 0) {
				if (c.hlen >= HEAD_MAX)
					goto out;
				c.head[c.hlen++] = buf[j];
				if (c.hlen >= 4 && memcmp(c.head + c.hlen - 4, "\r\n\r\n", 4) == 0) {
					off = parse_head(&c);
					if (off <= 0)
						goto out;
				}
			} else {
				if (body != NULL && c.got < (long long)expectlen)
					body[c.got] = buf[j];
				c.got++;
			}
		}
		if (off > 0 && c.clen >= 0 && c.got >= c.clen)
			break;
	}
	if (off > 0 && c.status == 200 && c.clen >= 0 && c.got == c.clen) {
		*latency_ms = (now() - t0) * 1e3;
		ok = expect == NULL ||
		     ((size_t)c.got == expectlen && body != NULL && memcmp(body, expect, expectlen) == 0);
		if (!ok)
			fprintf(stderr, "holdconns: probe answer differs from the expected body\n");
	}
out:
	free(body);
	close(fd);
	return ok;
}

static int run_probe(void)
{
	double lat[1000];
	int n = nconns > 1000 ? 1000 : nconns, answered = 0;

	for (int i = 0; i < n; i++) {
		double ms;
		if (probe_once(&ms))
			lat[answered++] = ms;
		usleep((useconds_t)probe_gap_ms * 1000);
	}
	if (answered == 0) {
		printf("probe answered=0/%d\n", n);
		return 0;
	}
	qsort(lat, (size_t)answered, sizeof lat[0], cmp_double);
	printf("probe answered=%d/%d lat_ms_min=%.2f lat_ms_med=%.2f lat_ms_p99=%.2f "
	       "lat_ms_max=%.2f\n",
	       answered, n, lat[0], lat[answered / 2], lat[(answered * 99 + 99) / 100 - 1],
	       lat[answered - 1]);
	return 0;
}

/* ---- idle and slow modes -------------------------------------------------- */

static struct conn *conns;
static int epfd, ok, failed, inflight, server_closed, completed, reopened;
static int slow, drip;
static long long body_bytes;

static void watch(struct conn *c, unsigned events, int op)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};
	epoll_ctl(epfd, op, c->fd, &ev);
}

static void finish(struct conn *c, int good)
{
	if (!c->counted) {
		c->counted = 1;
		inflight--;
		if (good)
			ok++;
		else
			failed++;
	}
	free(c->head);
	c->head = NULL;
}

static void drop(struct conn *c, int by_server)
{
	if (c->st == ST_GONE)
		return;
	if (c->counted && by_server)
		server_closed++;
	finish(c, 0);
	close(c->fd);
	c->fd = -1;
	c->st = ST_GONE;
}

static void send_request(struct conn *c)
{
	while (c->sent < reqlen) {
		ssize_t n = send(c->fd, req + c->sent, reqlen - c->sent, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (c->st != ST_SENDING)
				watch(c, EPOLLOUT, EPOLL_CTL_MOD);
			c->st = ST_SENDING;
			return;
		}
		if (n <= 0) {
			drop(c, 0);
			return;
		}
		c->sent += (unsigned)n;
	}
	if (drip) { /* the head never ends: wait for the server to close */
		c->st = ST_DRIP;
		c->next_drip = now() + drip_s;
		finish(c, 1);
		watch(c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
		return;
	}
	c->st = ST_HEAD;
	c->head = malloc(HEAD_MAX + 1);
	if (c->head == NULL) {
		drop(c, 0);
		return;
	}
	/* Slow downloads are read on the clock, not on readiness. */
	watch(c, slow ? 0 : EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
}

static void start_conn(struct conn *c)
{
	struct sockaddr_in sa = server_addr();

	inflight++;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		c->st = ST_GONE;
		finish(c, 0);
		return;
	}
	if (rcvbuf > 0)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	c->st = ST_CONNECTING;
	watch(c, EPOLLOUT, EPOLL_CTL_ADD);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) == 0)
		send_request(c);
	else if (errno != EINPROGRESS)
		drop(c, 0);
}

/* Feeds received bytes to the answer parser. */
static void consume(struct conn *c, const char *buf, size_t n)
{
	if (c->st == ST_HEAD) {
		size_t room = HEAD_MAX - c->hlen, take = n < room ? n : room;
		int off;
		memcpy(c->head + c->hlen, buf, take);
		c->hlen += (unsigned short)take;
		off = parse_head(c);
		if (off < 0 || (off > 0 && (c->status != 200 || c->clen < 0))) {
			drop(c, 0);
			return;
		}
		if (off == 0)
			return;
		c->got = (long long)c->hlen - off + (long long)(n - take);
		body_bytes += c->got;
		c->st = ST_BODY;
		free(c->head);
		c->head = NULL;
		if (slow) /* a slow download is ready once its answer has begun */
			finish(c, 1);
	} else {
		c->got += (long long)n;
		body_bytes += (long long)n;
	}
	if (c->st == ST_BODY && c->got >= c->clen) {
		if (slow) {
			completed++;
			drop(c, 0);
		} else {
			c->st = ST_READY;
			finish(c, 1);
		}
	}
}

static void on_event(struct conn *c, unsigned events)
{
	char buf[16384];

	switch (c->st) {
	case ST_CONNECTING: {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
			drop(c, 0);
			return;
		}
		send_request(c);
		return;
	}
	case ST_SENDING:
		send_request(c);
		return;
	case ST_HEAD:
	case ST_BODY:
		if (slow) { /* only errors and hang-ups come here */
			if (events & (EPOLLERR | EPOLLHUP))
				drop(c, 1);
			return;
		}
		for (int i = 0; i < 64; i++) {
			ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
			if (n > 0) {
				consume(c, buf, (size_t)n);
				if (c->st != ST_HEAD && c->st != ST_BODY)
					return;
				continue;
			}
			if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				drop(c, 1);
			return;
		}
		return;
	case ST_DRIP:
	case ST_READY: {
		ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			drop(c, 1);
		return;
	}
	default:
		return;
	}
}

/* One pacing tick of the slow mode: each download may read its share. */
static void paced_reads(void)
{
	char buf[65536];
	size_t budget = (size_t)rate * TICK_MS / 1000;

	if (budget > sizeof buf)
		budget = sizeof buf;
	if (budget == 0)
		budget = 1;
	for (int i = 0; i < nconns; i++) {
		struct conn *c = &conns[i];
		ssize_t n;
		if (c->st != ST_HEAD && c->st != ST_BODY)
			continue;
		n = recv(c->fd, buf, budget, MSG_DONTWAIT);
		if (n > 0)
			consume(c, buf, (size_t)n);
		else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			drop(c, 1);
	}
}

/* One tick of the drip mode: due connections send a byte, and once all
 * are held (reopen), those the server closed are opened again (a bounded
 * number in flight). */
static void drip_tick(double t, int reopen)
{
	for (int i = 0; i < nconns; i++) {
		struct conn *c = &conns[i];
		if (c->st == ST_DRIP && t >= c->next_drip) {
			if (send(c->fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
				drop(c, 1);
			else
				c->next_drip += drip_s;
		}
		if (reopen && c->st == ST_GONE && inflight < maxinflight) {
			memset(c, 0, sizeof *c);
			reopened++;
			start_conn(c);
		}
	}
}

static int count_open(void)
{
	int n = 0;
	for (int i = 0; i < nconns; i++)
		n += conns[i].st != ST_GONE && conns[i].st != ST_NEW;
	return n;
}

static int run_hold(void)
{
	struct epoll_event evs[512];
	double t0 = now(), setup_end = t0 + setup_s, hard_end = t0 + setup_s + hold_s + 5;
	double held_at = 0, next_tick = t0;
	int started = 0;

	slow = strcmp(mode, "slow") == 0;
	drip = strcmp(mode, "drip") == 0;
	conns = calloc((size_t)nconns, sizeof *conns);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (conns == NULL || epfd < 0) {
		perror("holdconns");
		return 1;
	}
	for (;;) {
		double t = now();
		int timeout, n;

		if (t >= hard_end)
			break;
		if (held_at > 0 && t >= held_at + hold_s)
			break;
		/* Start new connections, a bounded number in flight. */
		while (held_at == 0 && started < nconns && inflight < maxinflight && t < setup_end)
			start_conn(&conns[started++]);
		if (held_at == 0 && (ok + failed == nconns || t >= setup_end)) {
			for (int i = 0; i < nconns; i++) /* not ready in time: failed */
				if (!conns[i].counted) {
					if (conns[i].st == ST_NEW) {
						conns[i].st = ST_GONE;
						conns[i].fd = -1;
						conns[i].counted = 1;
						failed++;
					} else {
						drop(&conns[i], 0);
					}
				}
			held_at = now();
			printf("held n=%d ok=%d fail=%d setup_s=%.2f\n", nconns, ok, failed, held_at - t0);
			fflush(stdout);
		}
		timeout = TICK_MS;
		if (slow || drip) {
			timeout = (int)((next_tick - t) * 1e3);
			if (timeout < 0)
				timeout = 0;
		}
		n = epoll_wait(epfd, evs, 512, timeout);
		for (int i = 0; i < n; i++)
			on_event(evs[i].data.ptr, evs[i].events);
		if ((slow || drip) && now() >= next_tick) {
			if (drip)
				drip_tick(now(), held_at > 0);
			else if (slow)
				paced_reads();
			next_tick += TICK_MS / 1e3;
			if (next_tick < now())
				next_tick = now() + TICK_MS / 1e3;
		}
	}
	{
		double held = held_at > 0 ? now() - held_at : 0;
		int open = count_open();
		printf("end open=%d server_closed=%d reopened=%d completed=%d body_bytes=%lld "
		       "held_s=%.1f rate_Bps_per_conn=%.0f\n",
		       open, server_closed, reopened, completed, body_bytes, held,
		       (slow && ok > 0 && held_at > 0) ? (double)body_bytes / ok / (now() - t0) : 0.0);
		fflush(stdout);
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: holdconns -p PORT -r REQUEST_FILE [-m idle|slow|drip|probe] [-n N]\n"
	        "                 [-H HOLD_S] [-S SETUP_S] [-b RCVBUF] [-R BYTES_PER_S]\n"
	        "                 [-c MAX_IN_FLIGHT] [-e EXPECTED_BODY_FILE] [-T PROBE_TIMEOUT_S]\n"
	        "                 [-D DRIP_S] [-G PROBE_GAP_MS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *reqfile = NULL, *expfile = NULL;
	int opt;

	while ((opt = getopt(argc, argv, "p:r:m:n:H:S:b:R:c:e:T:D:G:")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'r': reqfile = optarg; break;
		case 'm': mode = optarg; break;
		case 'n': nconns = atoi(optarg); break;
		case 'H': hold_s = atof(optarg); break;
		case 'S': setup_s = atof(optarg); break;
		case 'b': rcvbuf = atoi(optarg); break;
		case 'R': rate = atoi(optarg); break;
		case 'c': maxinflight = atoi(optarg); break;
		case 'e': expfile = optarg; break;
		case 'T': probe_timeout = atof(optarg); break;
		case 'D': drip_s = atof(optarg); break;
		case 'G': probe_gap_ms = atoi(optarg); break;
		default: usage();
		}
	}
	if (port <= 0 || port > 65535 || reqfile == NULL || nconns < 1 || nconns > MAX_CONNS ||
	    maxinflight < 1 || hold_s < 0 || hold_s > 3600 || setup_s <= 0 || setup_s > 3600 ||
	    probe_timeout <= 0 || probe_timeout > 60 || rate < 1 || drip_s < 0.1 ||
	    drip_s > 3600 || probe_gap_ms < 0 || probe_gap_ms > 60000)
		usage();
	req = slurp(reqfile, &reqlen);
	if (expfile != NULL)
		expect = slurp(expfile, &expectlen);
	raise_nofile();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "probe") == 0)
		return run_probe();
	if (strcmp(mode, "idle") != 0 && strcmp(mode, "slow") != 0 && strcmp(mode, "drip") != 0)
		usage();
	return run_hold();
}
