/*
 * ota.c - `nofuss ota-send` and `nofuss ota-recv`: one ArduinoOTA push
 * (docs/PEERS.md section 7) from the command line. ota-send pushes an image
 * to a device's IP:port as espota.py would (send.c); ota-recv plays
 * the device for one push (recv.c) and writes what it receives into a
 * file, or into a simulator's flash directory through the POSIX port's
 * flash calls, so the image takes the same checks and commit path as an
 * update the device core downloads. Both exist for testing and as the
 * building blocks of `nofuss push` and of `nofuss device`'s OTA listener.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "common.h"
#include "nofuss/posix.h"
#include "ota.h"

/* ota-recv's exit status. */
#define RECV_EXIT_FAILED  1 /* an update came and failed: nothing committed */
#define RECV_EXIT_SETUP   3 /* cannot listen, or the flash directory is unusable */
#define RECV_EXIT_AUTH    4 /* a host gave a wrong password */
#define RECV_EXIT_TIMEOUT 5 /* no invitation within --wait */

const struct nf_exit nf_ota_send_exits[] = {
    {NF_OTA_SEND_OK, "the device acknowledged every byte and answered OK"},
    {NF_OTA_SEND_LOCAL, "a local error (the file, a socket, the address)"},
    {NF_OTA_SEND_NO_ANSWER, "no answer to the invitation"},
    {NF_OTA_SEND_AUTH_FAILED, "authentication failed"},
    {NF_OTA_SEND_DEVICE_ERROR, "the device refused the image (ERR, e.g. not enough space)"},
    {NF_OTA_SEND_NO_CONNECT, "the device did not connect back"},
    {NF_OTA_SEND_CUT, "the transfer was cut (closed, reset, no ack, or the deadline passed)"},
    {NF_OTA_SEND_FINAL_ERROR, "the device answered ERROR at the end"},
    {NF_OTA_SEND_PROTOCOL,
     "the device's answers were not the protocol (an OK before every byte was acknowledged "
     "among them)"},
    {0, NULL},
};

const struct nf_exit nf_ota_recv_exits[] = {
    {NF_EXIT_OK, "an image was received and committed"},
    {RECV_EXIT_FAILED, "an update came and failed (nothing committed)"},
    {RECV_EXIT_SETUP, "cannot listen, or the flash directory is unusable"},
    {RECV_EXIT_AUTH, "a host gave a wrong password"},
    {RECV_EXIT_TIMEOUT, "no invitation within --wait"},
    {0, NULL},
};

/* ---- ota-send ---- */

static void send_usage(FILE *out)
{
	fprintf(out, "Usage: nofuss ota-send --ip IP [OPTION]... FILE\n"
	             "Push FILE to a device running ArduinoOTA, as espota.py does.\n\n"
	             "  -i, --ip IP          the device's IPv4 address\n"
	             "  -p, --port PORT      its OTA port (default 8266; ESP32: 3232)\n"
	             "  -a, --auth PASS      its OTA password\n"
	             "  -s, --fs             FILE is a filesystem image (command 100)\n"
	             "      --timeout SEC    wait for each UDP answer and the connection back\n"
	             "                       (default 10)\n"
	             "      --deadline SEC   give up the whole push after SEC (default: 90 s plus\n"
	             "                       1 s per 4 KiB of FILE; 1 MiB gets 346 s)\n"
	             "  -q, --quiet          no progress on stderr\n"
	             "  -h, --help           show this help and exit\n");
	nf_exit_help(out, nf_ota_send_exits);
}

struct progress {
	bool quiet;
	int last; /* percent printed last */
};

static void show_progress(void *ctx, uint64_t acked, uint64_t total)
{
	struct progress *pr = ctx;
	int pct = total > 0 ? (int)(acked * 100 / total) : 100;

	if (pr->quiet || pct / 10 == pr->last / 10)
		return;
	pr->last = pct;
	fprintf(stderr, "Uploading: %d%% (%llu of %llu bytes)\n", pct, (unsigned long long)acked,
	        (unsigned long long)total);
}

struct send_options {
	const char *ip, *password;
	unsigned long port;
	bool fs, quiet;
	long timeout_ms;  /* 0: the protocol's */
	long deadline_ms; /* 0: nf_ota_send_deadline_ms() */
};

static const struct nf_opt send_opts[] = {
    NF_OPT_STRING("ip", 'i', struct send_options, ip),
    NF_OPT_COUNT("port", 'p', struct send_options, port, 1, 65535),
    NF_OPT_STRING("auth", 'a', struct send_options, password),
    NF_OPT_FLAG("fs", 's', struct send_options, fs),
    NF_OPT_SECONDS("timeout", 0, struct send_options, timeout_ms, 0.05, 600),
    NF_OPT_SECONDS("deadline", 0, struct send_options, deadline_ms, 0.1, 86400),
    NF_OPT_FLAG("quiet", 'q', struct send_options, quiet),
    NF_OPT_END,
};

int nf_cmd_ota_send(int argc, char *argv[], char *prog_argv[])
{
	struct send_options so = {.port = NF_OTA_PORT_ESP8266};
	struct nf_ota_send_opts o;
	struct progress pr = {.last = -10};
	char msg[NF_OTA_ERR_MAX + NF_OTA_TEXT_MAX];
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	(void)prog_argv;
	rc = nf_opts_parse(send_opts, &so, send_usage, argc, argv);
	if (rc != 0)
		return rc > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;
	o = (struct nf_ota_send_opts){.ip = so.ip,
	                              .port = (uint16_t)so.port,
	                              .password = so.password,
	                              .command = so.fs ? NF_OTA_CMD_FS : NF_OTA_CMD_FIRMWARE,
	                              .answer_timeout_ms = so.timeout_ms,
	                              .connect_timeout_ms = so.timeout_ms,
	                              .deadline_ms = so.deadline_ms};
	pr.quiet = so.quiet;
	if (o.ip == NULL || optind != argc - 1) {
		nf_tool_error("give --ip and one FILE (see --help)");
		return NF_EXIT_USAGE;
	}
	o.filename = argv[optind];
	if (nf_read_file(o.filename, NF_OTA_SIZE_MAX, &data, &len) != 0)
		return NF_OTA_SEND_LOCAL;
	o.progress = show_progress;
	o.ctx = &pr;
	rc = nf_ota_send(&o, data, len, msg, sizeof msg);
	if (rc == NF_OTA_SEND_OK)
		printf("%s:%u: %s\n", o.ip, (unsigned)o.port, msg);
	else
		nf_tool_error("%s:%u: %s: %s", o.ip, (unsigned)o.port, nf_ota_send_strresult(rc),
		              msg);
	free(data);
	return rc;
}

/* ---- ota-recv: the sinks ---- */

/* -o FILE; --flash DIR is the shared flash sink (flash_sink.c). */
struct recv_sink {
	struct nf_ota_sink_checks checks;
	const char *out;
	uint8_t *buf;
	uint32_t size, len;
};

static int file_begin(void *ctx, int command, uint32_t size, const char *md5, char *err,
                      size_t errcap)
{
	struct recv_sink *s = ctx;
	int code = nf_ota_sink_check_begin(&s->checks, command, size, err, errcap);

	(void)md5;
	if (code != 0)
		return code;
	free(s->buf);
	s->buf = malloc(size);
	if (s->buf == NULL) {
		snprintf(err, errcap, "out of memory");
		return NF_OTA_UPDATE_SPACE;
	}
	s->size = size;
	s->len = 0;
	return 0;
}

static int file_write(void *ctx, const uint8_t *data, size_t len, char *err, size_t errcap)
{
	struct recv_sink *s = ctx;
	int code = nf_ota_sink_check_write(&s->checks, data, len, err, errcap);

	if (code != 0)
		return code;
	if (s->buf == NULL || len > s->size - s->len) {
		snprintf(err, errcap, "more bytes than announced");
		return NF_OTA_UPDATE_SIZE;
	}
	memcpy(s->buf + s->len, data, len);
	s->len += (uint32_t)len;
	return 0;
}

static int file_finish(void *ctx, char *err, size_t errcap)
{
	struct recv_sink *s = ctx;

	if (s->buf == NULL || s->len != s->size || nf_write_file(s->out, s->buf, s->len) != 0) {
		snprintf(err, errcap, "cannot write %s", s->out);
		return NF_OTA_UPDATE_WRITE;
	}
	return 0;
}

static void file_abort(void *ctx)
{
	struct recv_sink *s = ctx;

	free(s->buf);
	s->buf = NULL;
	s->len = s->size = 0;
}

/* ---- ota-recv ---- */

static void recv_usage(FILE *out)
{
	fprintf(out,
	        "Usage: nofuss ota-recv --listen IP[:PORT] (-o FILE | --flash DIR) [OPTION]...\n"
	        "Play an ESP8266 running ArduinoOTA for one push: answer one invitation,\n"
	        "receive the image, check its size and MD5, commit it, and exit. Prints\n"
	        "\"listening on IP:PORT\" first (PORT 0 picks a free one).\n\n"
	        "  -l, --listen IP[:PORT]  UDP address to listen on (default port 8266)\n"
	        "  -a, --auth PASS         require this OTA password\n"
	        "  -m, --max-size SIZE     refuse larger images (ERROR[4]: Not Enough Space)\n"
	        "  -o, --output FILE       write the image to FILE (atomically)\n"
	        "  -f, --flash DIR         boot the provisioned flash directory DIR and write\n"
	        "                          the image into it as the simulator's updater does\n"
	        "                          (firmware: the spare slot, on trial; --fs: fs.bin)\n"
	        "      --wait SEC          give up when no invitation comes within SEC\n"
	        "                          (default: wait forever)\n"
	        "      --pause SEC         pause before \"OK\" and before closing (default 1)\n"
	        "      --timeout SEC       each answer, the connection back, each read\n"
	        "                          (default 10)\n"
	        "      --cut-after N       testing: drop the connection after N bytes\n"
	        "  -h, --help              show this help and exit\n");
	nf_exit_help(out, nf_ota_recv_exits);
}

static int parse_listen(const char *text, char *ip, size_t ipcap, uint16_t *port)
{
	const char *colon = strchr(text, ':');
	size_t n = colon != NULL ? (size_t)(colon - text) : strlen(text);
	unsigned long p = NF_OTA_PORT_ESP8266;
	struct in_addr a;

	if (n == 0 || n >= ipcap) {
		nf_tool_error("--listen: %s: expected IP[:PORT]", text);
		return -1;
	}
	memcpy(ip, text, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1) {
		nf_tool_error("--listen: %s: not an IPv4 address", ip);
		return -1;
	}
	if (colon != NULL && nf_parse_count("--listen port", colon + 1, 0, 65535, &p) != 0)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

struct recv_options {
	const char *listen, *flash;
	struct nf_ota_recv_config cfg;
	struct recv_sink s;
	long wait_ms;      /* -1: forever */
	unsigned long cut; /* cfg.cut_after */
};

static const struct nf_opt recv_opts[] = {
    NF_OPT_STRING("listen", 'l', struct recv_options, listen),
    NF_OPT_STRING("auth", 'a', struct recv_options, cfg.password),
    NF_OPT_SIZE("max-size", 'm', struct recv_options, s.checks.max_size, 1, NF_OTA_SIZE_MAX),
    NF_OPT_STRING("output", 'o', struct recv_options, s.out),
    NF_OPT_STRING("flash", 'f', struct recv_options, flash),
    NF_OPT_SECONDS("wait", 0, struct recv_options, wait_ms, 0.01, 86400),
    NF_OPT_SECONDS("pause", 0, struct recv_options, cfg.pause_ms, 0, 60),
    NF_OPT_SECONDS("timeout", 0, struct recv_options, cfg.timeout_ms, 0.05, 600),
    NF_OPT_COUNT("cut-after", 0, struct recv_options, cut, 1, NF_OTA_SIZE_MAX),
    NF_OPT_END,
};

/* --flash DIR: boots the flash directory on port (already initialised)
 * and fills sink to write into it. 0, or -1 after saying why. */
static int open_flash(struct nf_posix *port, const char *flash, uint32_t max_size,
                      struct nf_ota_flash_sink *fs, struct nf_ota_sink *sink)
{
	struct nf_posix_boot boot;
	char err[NF_POSIX_ERR_MAX];
	int got;

	port->console = stdout;
	got = nf_posix_flash_open(&port->flash, flash, err, sizeof err);
	if (got != 0) {
		nf_tool_error("%s: %s", flash,
		              got == 1 ? "not provisioned (run nofuss device on it first)" : err);
		return -1;
	}
	if (nf_posix_flash_boot(&port->flash, &boot, err, sizeof err) != 0) {
		nf_tool_error("%s: cannot boot: %s", flash, err);
		return -1;
	}
	printf("[boot] slot=%s version=%s\n", nf_posix_slot_name(boot.slot), boot.firmware.version);
	nf_ota_flash_sink_init(fs, port, max_size, sink);
	return 0;
}

/* Waits for one push on r, wait_ms at most (-1: forever; ignored datagrams
 * do not end the wait), and says how it went. Returns the exit status. */
static int receive_one(struct nf_ota_recv *r, long wait_ms)
{
	uint64_t deadline = nf_clock_ms() + (uint64_t)(wait_ms > 0 ? wait_ms : 0), now;
	int got;

	do {
		now = nf_clock_ms();
		got = nf_ota_recv_poll(r, wait_ms < 0      ? -1
		                          : now < deadline ? (int)(deadline - now)
		                                           : 0);
	} while (got == NF_OTA_RECV_IDLE && (wait_ms < 0 || nf_clock_ms() < deadline));
	switch (got) {
	case NF_OTA_RECV_DONE:
		printf("received %u bytes: committed\n", (unsigned)r->received);
		return NF_EXIT_OK;
	case NF_OTA_RECV_IDLE:
		nf_tool_error("no invitation within %ld ms", wait_ms);
		return RECV_EXIT_TIMEOUT;
	case NF_OTA_RECV_AUTH_FAILED: nf_tool_error("%s", r->err); return RECV_EXIT_AUTH;
	default: nf_tool_error("update failed: %s", r->err); return RECV_EXIT_FAILED;
	}
}

int nf_cmd_ota_recv(int argc, char *argv[], char *prog_argv[])
{
	struct recv_options ro = {
	    .cfg = {.pause_ms = NF_OTA_PAUSE_MS_DEFAULT, .timeout_ms = NF_OTA_ANSWER_TIMEOUT_MS},
	    .wait_ms = -1};
	struct recv_sink *const s = &ro.s;
	struct nf_ota_sink sink = {s, file_begin, file_write, file_finish, file_abort};
	struct nf_ota_flash_sink flash_sink;
	struct nf_ota_recv r = {.udp = -1};
	struct nf_posix port;
	char ip[INET_ADDRSTRLEN], err[NF_POSIX_ERR_MAX];
	uint16_t udp_port = 0;
	int rc;

	(void)prog_argv;
	rc = nf_opts_parse(recv_opts, &ro, recv_usage, argc, argv);
	if (rc != 0)
		return rc > 0 ? NF_EXIT_OK : NF_EXIT_USAGE;
	if (ro.listen == NULL || optind != argc || (s->out == NULL) == (ro.flash == NULL)) {
		nf_tool_error("give --listen and one of -o FILE or --flash DIR (see --help)");
		return NF_EXIT_USAGE;
	}
	if (parse_listen(ro.listen, ip, sizeof ip, &udp_port) != 0)
		return NF_EXIT_USAGE;
	ro.cfg.cut_after = (uint32_t)ro.cut;
	ro.cfg.log = stdout;
	nf_posix_init(&port); /* holds nothing until --flash opens it */
	rc = RECV_EXIT_SETUP;
	if (ro.flash != NULL &&
	    open_flash(&port, ro.flash, s->checks.max_size, &flash_sink, &sink) != 0)
		goto done;
	if (nf_ota_recv_open(&r, ip, udp_port, &ro.cfg, &sink, err, sizeof err) != 0) {
		nf_tool_error("%s", err);
		goto done;
	}
	printf("listening on %s:%u\n", ip, (unsigned)nf_ota_recv_port(&r));
	fflush(stdout);
	rc = receive_one(&r, ro.wait_ms);
done:
	nf_ota_recv_close(&r);
	free(s->buf);
	nf_posix_destroy(&port);
	return rc;
}
