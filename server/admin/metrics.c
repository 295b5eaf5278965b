/*
 * metrics.c - /metrics in the Prometheus text exposition format 0.0.4,
 * written by hand (Debian packages no C client, and the format is small).
 *
 * The rules kept here: each family has one # HELP and one # TYPE line before
 * its samples, names match [a-zA-Z_:][a-zA-Z0-9_:]*, counters end in _total,
 * label values escape \\, \" and \n and are valid UTF-8, no series appears
 * twice, and lines end with \n. No label names a device: the only labels
 * from devices are their type and version, at most
 * NF_ADMIN_MAX_METRIC_SERIES series of them, the rest summed into
 * type="other",version="other". A pure function of its input.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"

void nf_admin_buf_printf(struct nf_admin_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(b->data != NULL ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			break;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap < 4096 ? 4096 : b->cap;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *data = realloc(b->data, cap);
		if (data == NULL)
			break;
		b->data = data;
		b->cap = cap;
	}
	b->failed = true;
}

void nf_admin_buf_free(struct nf_admin_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

size_t nf_admin_utf8_next(const unsigned char *s, size_t len)
{
	unsigned c = s[0];
	size_t n;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and code points above U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void nf_metrics_label(struct nf_admin_buf *b, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0;

	while (i < len && s[i] != '\0') {
		size_t n = nf_admin_utf8_next(s + i, len - i);
		if (n == 0) {
			nf_admin_buf_printf(b, "\xef\xbf\xbd");
			i++;
		} else if (s[i] == '\\' || s[i] == '"') {
			nf_admin_buf_printf(b, "\\%c", s[i++]);
		} else if (s[i] == '\n') {
			nf_admin_buf_printf(b, "\\n");
			i++;
		} else {
			nf_admin_buf_printf(b, "%.*s", (int)n, (const char *)s + i);
			i += n;
		}
	}
}

static void family(struct nf_admin_buf *b, const char *name, const char *type, const char *help)
{
	nf_admin_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(struct nf_admin_buf *b, const char *name, const char *type, const char *help,
                uint64_t v)
{
	family(b, name, type, help);
	nf_admin_buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* A family of one unlabelled sample. */
struct metric {
	const char *name, *type, *help;
	uint64_t value;
};

static void write_rows(struct nf_admin_buf *b, const struct metric *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		one(b, rows[i].name, rows[i].type, rows[i].help, rows[i].value);
}

static void write_loop(struct nf_admin_buf *b, const struct nf_counters *c)
{
	uint64_t offers = 0, held = 0, deferred = 0;

	family(b, "nofuss_checks_total", "counter",
	       "Checks answered, by client kind and answer (none, offered, held, deferred).");
	for (int k = 0; k < NF_CLIENT_COUNT; k++) {
		for (int a = 0; a < NF_ANSWER_KINDS; a++) {
			uint64_t v = nf_counter(&c->checks[k][a]);
			nf_admin_buf_printf(
			    b, "nofuss_checks_total{client=\"%s\",answer=\"%s\"} %" PRIu64 "\n",
			    nf_client_kind_name(k), nf_answer_kind_name(a), v);
			offers += a == NF_ANSWER_OFFERED ? v : 0;
			held += a == NF_ANSWER_HELD ? v : 0;
			deferred += a == NF_ANSWER_DEFERRED ? v : 0;
		}
	}
	const struct metric rows[] = {
	    {"nofuss_offers_total", "counter", "Checks answered with an update.", offers},
	    {"nofuss_held_back_total", "counter",
	     "Checks a rule matched whose image could not be offered (does not fit).", held},
	    {"nofuss_downloads_started_total", "counter", "Image downloads begun (200 or 206).",
	     nf_counter(&c->downloads_started)},
	    {"nofuss_downloads_completed_total", "counter",
	     "Image downloads whose last byte was sent.", nf_counter(&c->downloads_completed)},
	    {"nofuss_downloads_failed_total", "counter",
	     "Image downloads ended before their last byte.", nf_counter(&c->downloads_failed)},
	    {"nofuss_download_bytes_total", "counter", "Image bytes sent.",
	     nf_counter(&c->download_bytes)},
	    {"nofuss_checks_deferred_total", "counter",
	     "Checks whose offer was put off: max-downloads transfers in flight.", deferred},
	    {"nofuss_downloads_active", "gauge", "Image transfers in flight (200 or 206 bodies).",
	     nf_counter(&c->downloads_active)},
	    {"nofuss_downloads_peak", "gauge", "The most image transfers in flight at once since start.",
	     nf_counter(&c->downloads_peak)},
	    {"nofuss_downloads_refused_total", "counter",
	     "Image requests answered 503 because max-downloads transfers were in flight.",
	     nf_counter(&c->downloads_refused)},
	    {"nofuss_reloads_total", "counter", "Rules snapshots served after the first.",
	     nf_counter(&c->reloads)},
	    {"nofuss_reload_failures_total", "counter", "Rules reloads that failed.",
	     nf_counter(&c->reload_failures)},
	};
	write_rows(b, rows, sizeof rows / sizeof rows[0]);
}

static void write_store(struct nf_admin_buf *b, const struct nf_store_stats *s)
{
	const struct metric rows[] = {
	    {"nofuss_store_events_posted_total", "counter",
	     "Events accepted into the store's queue.", s->posted},
	    {"nofuss_store_events_written_total", "counter", "Events written to the store.",
	     s->written},
	    {"nofuss_store_events_dropped_total", "counter",
	     "Events lost: the queue was full, or unwritten at close.", s->dropped},
	    {"nofuss_store_transactions_total", "counter", "Store transactions committed.",
	     s->batches},
	    {"nofuss_store_transaction_failures_total", "counter",
	     "Store transactions failed (each retried).", s->failures},
	    {"nofuss_store_downloads_unmatched_total", "counter",
	     "Downloads no device could be found for.", s->unmatched},
	    {"nofuss_store_queue_depth", "gauge", "Events queued for the store now.", s->depth},
	    {"nofuss_store_queue_capacity", "gauge", "Events the store's queue holds.",
	     s->capacity},
	    {"nofuss_store_failing", "gauge", "1 while the store's writer retries a failure.",
	     s->failing ? 1 : 0},
	};
	write_rows(b, rows, sizeof rows / sizeof rows[0]);
}

/* One nofuss_devices series: its labels, rendered, in a buffer of them. */
struct series {
	size_t at, len;
	uint64_t count;
};

/* The index of the series whose rendered labels are labels[at..at+len) among
 * the n before, or n. Two rows can render alike (invalid UTF-8 becomes
 * U+FFFD): they are one series. */
static size_t same_series(const struct nf_admin_buf *labels, const struct series *shown, size_t n,
                          size_t at, size_t len)
{
	for (size_t k = 0; k < n; k++)
		if (shown[k].len == len && memcmp(labels->data + shown[k].at, labels->data + at, len) == 0)
			return k;
	return n;
}

static void write_fleet(struct nf_admin_buf *b, const struct nf_fleet_summary *s)
{
	static const char other_labels[] = "type=\"other\",version=\"other\"";
	struct series shown[NF_ADMIN_MAX_METRIC_SERIES];
	struct nf_admin_buf labels = {0};
	uint64_t other = 0, listed = 0;
	bool any_other = false;
	size_t n = 0;

	family(b, "nofuss_devices", "gauge",
	       "Devices by device type and version (the largest series; the rest as other).");
	for (size_t i = 0; i < s->count; i++) {
		const struct nf_summary_row *r = &s->rows[i];
		size_t at = labels.len, k;

		listed += r->count;
		if (n == NF_ADMIN_MAX_METRIC_SERIES) {
			other += r->count;
			any_other = true;
			continue;
		}
		nf_admin_buf_printf(&labels, "type=\"");
		nf_metrics_label(&labels, r->device, sizeof r->device);
		nf_admin_buf_printf(&labels, "\",version=\"");
		nf_metrics_label(&labels, r->version, sizeof r->version);
		nf_admin_buf_printf(&labels, "\"");
		if (labels.failed)
			break;
		/* A real "other"/"other" row joins the sum, so no series repeats. */
		if (labels.len - at == sizeof other_labels - 1 &&
		    memcmp(labels.data + at, other_labels, sizeof other_labels - 1) == 0) {
			other += r->count;
			any_other = true;
			labels.len = at;
			continue;
		}
		k = same_series(&labels, shown, n, at, labels.len - at);
		if (k < n) {
			shown[k].count += r->count;
			labels.len = at;
			continue;
		}
		shown[n++] = (struct series){at, labels.len - at, r->count};
	}
	for (size_t k = 0; k < n && !labels.failed; k++)
		nf_admin_buf_printf(b, "nofuss_devices{%.*s} %" PRIu64 "\n", (int)shown[k].len,
		                    labels.data + shown[k].at, shown[k].count);
	if (labels.failed)
		b->failed = true;
	nf_admin_buf_free(&labels);
	if (s->truncated && s->devices > listed) {
		other += s->devices - listed;
		any_other = true;
	}
	if (any_other)
		nf_admin_buf_printf(
		    b, "nofuss_devices{%s} %" PRIu64 "\n", other_labels, other);
	family(b, "nofuss_devices_by_state", "gauge",
	       "Devices by the update state of their offer.");
	for (int st = 0; st < NF_UPDATE_COUNT; st++)
		nf_admin_buf_printf(b, "nofuss_devices_by_state{state=\"%s\"} %" PRIu64 "\n",
		                    nf_update_state_name(st), s->by_state[st]);
	one(b, "nofuss_devices_known", "gauge", "Devices in the inventory.", s->devices);
	one(b, "nofuss_devices_seen_24h", "gauge", "Devices seen in the last 24 hours.",
	    s->seen_24h);
}

int nf_metrics_write(struct nf_admin_buf *b, const struct nf_metrics_input *in)
{
	family(b, "nofuss_build_info", "gauge", "The nofussd version, as a label; always 1.");
	nf_admin_buf_printf(b, "nofuss_build_info{version=\"%s\"} 1\n", NOFUSS_VERSION);
	write_loop(b, in->counters);
	if (in->store != NULL) {
		/* Counted by the store's writer as the transitions commit: on
		 * several nodes, each counts what it wrote. */
		one(b, "nofuss_confirmations_total", "counter",
		    "Offers confirmed: a later check reported the target.", in->store->confirmed);
		one(b, "nofuss_reverts_total", "counter",
		    "Offers reverted: a check after a complete download reported another version.",
		    in->store->reverted);
	}
	one(b, "nofuss_store_up", "gauge",
	    "1 when the store is on and its last summary query worked.",
	    in->store != NULL && in->summary != NULL);
	if (in->store != NULL)
		write_store(b, in->store);
	if (in->summary != NULL)
		write_fleet(b, in->summary);
	return b->failed ? -1 : 0;
}
