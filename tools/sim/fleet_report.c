/*
 * fleet_report.c - what the fleet says (see fleet.c for the whole): the
 * progress line (one line redrawn on a terminal, a line every --progress
 * otherwise), and the summary at the end, as text or as JSON (jansson):
 * devices by state and error, checks, bytes, boots, and the versions they
 * run.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "args.h"
#include "common.h"
#include "sim.h"

#define FLEET_VERSIONS_MAX   32u  /* distinct versions in the summary; then "other" */
#define FLEET_TTY_REFRESH_MS 250L /* the status line on a terminal */

static const char *error_text(int err)
{
	switch (err) {
	case FLEET_ERR_REVERTED: return "new firmware did not confirm its trial boot (reverted)";
	case FLEET_ERR_BRICKED: return "no bootable firmware (bricked)";
	case FLEET_ERR_BOOT_LOOP: return "boot loop: no check after repeated boots";
	default: return nf_strerror((enum nf_error)err);
	}
}

void nf_fleet_clear_status(struct nf_fleet *f)
{
	if (f->status_shown) {
		fputs("\r\033[K", f->out);
		fflush(f->out);
		f->status_shown = false;
	}
}

struct versions {
	size_t n;
	char name[FLEET_VERSIONS_MAX][NF_POSIX_IMAGE_FIELD];
	unsigned long count[FLEET_VERSIONS_MAX];
	unsigned long other;
};

struct tally {
	unsigned long uptodate, failed, unfinished, updated, updating;
	unsigned long unsettled; /* --until-updated: devices that did not settle */
	unsigned long failed_by[FLEET_ERRORS];
	struct versions fw, fs;
};

static void count_version(struct versions *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++) {
		if (strcmp(v->name[i], name) == 0) {
			v->count[i]++;
			return;
		}
	}
	if (v->n == FLEET_VERSIONS_MAX) {
		v->other++;
		return;
	}
	snprintf(v->name[v->n], sizeof v->name[v->n], "%s", name);
	v->count[v->n++] = 1;
}

/* Counts the devices by state; versions too when full. */
static void tally(const struct nf_fleet *f, struct tally *t, bool full)
{
	memset(t, 0, sizeof *t);
	for (size_t i = 0; i < f->o.count; i++) {
		const struct nf_fleet_device *d = &f->dev[i];
		if (d->cut)
			t->unfinished++; /* its last check did not end */
		else if (d->result == FLEET_RES_UPTODATE)
			t->uptodate++;
		else if (d->result == FLEET_RES_FAILED) {
			t->failed++;
			t->failed_by[d->error < FLEET_ERRORS ? d->error : 0]++;
		} else
			t->unfinished++;
		if (d->updated)
			t->updated++;
		if (d->cut || !nf_fleet_settled(f, d))
			t->unsettled++;
		if ((d->phase == FLEET_PH_ACTIVE && d->downloading) || d->rebooting)
			t->updating++;
		if (full) {
			/* What the device reports: the version of the firmware it
			 * booted last, and the filesystem it would mount. */
			count_version(&t->fw, d->client.version);
			count_version(&t->fs, d->flash.fs.status == NF_POSIX_MEM_VALID
			                          ? d->flash.fs.version
			                          : "invalid");
		}
	}
}

void nf_fleet_progress(struct nf_fleet *f, bool force)
{
	struct tally t;

	if (f->next_progress < 0 || (!force && f->now < f->next_progress))
		return;
	f->next_progress = f->now + (f->tty ? FLEET_TTY_REFRESH_MS : f->o.progress_ms);
	tally(f, &t, false);
	fprintf(f->out,
	        "%s[fleet] %.1fs  checks %lu | up to date %lu | updating %lu | updated %lu | "
	        "failed %lu | in flight %zu | queued %zu%s",
	        f->tty ? "\r" : "", (double)(f->now - f->t0) / 1000.0, f->checks, t.uptodate,
	        t.updating, t.updated, t.failed, f->active, f->q_len, f->tty ? "\033[K" : "\n");
	fflush(f->out);
	f->status_shown = f->tty;
}

static void print_versions(const char *what, const struct versions *v)
{
	printf("  %-12s", what);
	for (size_t i = 0; i < v->n; i++)
		printf("%s%s: %lu", i > 0 ? ", " : "", v->name[i], v->count[i]);
	if (v->other > 0)
		printf(", other: %lu", v->other);
	printf("\n");
}

static void print_text(const struct nf_fleet *f, const struct tally *t, double secs)
{
	printf("nofuss fleet: %lu devices against %s: %.2f s%s\n", f->o.count, f->o.server, secs,
	       f->timed_out     ? " (stopped by --timeout)"
	       : f->interrupted ? " (stopped by a signal)"
	                        : "");
	printf("  %-12s%lu\n", "updated", t->updated);
	printf("  %-12s%lu\n", "up to date", t->uptodate);
	printf("  %-12s%lu\n", "failed", t->failed);
	for (int e = 0; e < FLEET_ERRORS; e++)
		if (t->failed_by[e] > 0)
			printf("  %12s%lu  %s\n", "", t->failed_by[e], error_text(e));
	printf("  %-12s%lu%s\n", "unfinished", t->unfinished,
	       f->cut > 0 ? "  (some checks cut at the end)" : "");
	printf("  %-12s%lu  %.1f checks/s, %lu failed\n", "checks", f->checks,
	       secs > 0 ? (double)f->checks / secs : 0.0, f->checks_failed);
	printf("  %-12s%llu bytes in %lu transfers\n", "downloaded", f->bytes, f->transfers);
	printf("  %-12s%lu  %lu reverted or fell back, %lu crashed\n", "boots", f->boots,
	       f->reverts, f->crashes);
	print_versions("firmware", &t->fw);
	print_versions("filesystem", &t->fs);
}

/* Sets key in obj to a new value; false when out of memory. */
static bool put(json_t *obj, const char *key, json_t *value)
{
	return value != NULL && json_object_set_new(obj, key, value) == 0;
}

static json_t *versions_json(const struct versions *v)
{
	json_t *o = json_object();
	bool ok = o != NULL;

	for (size_t i = 0; ok && i < v->n; i++)
		ok = put(o, v->name[i], json_integer((json_int_t)v->count[i]));
	if (ok && v->other > 0)
		ok = put(o, "other", json_integer((json_int_t)v->other));
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *errors_json(const unsigned long *by)
{
	json_t *o = json_object();
	bool ok = o != NULL;

	for (int e = 0; ok && e < FLEET_ERRORS; e++)
		if (by[e] > 0)
			ok = put(o, error_text(e), json_integer((json_int_t)by[e]));
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int print_json(const struct nf_fleet *f, const struct tally *t, double secs)
{
	json_t *o = json_object();
	bool ok = o != NULL;
	int rc = -1;

#define PUT_INT(k, v) (ok = ok && put(o, k, json_integer((json_int_t)(v))))
	ok = ok && put(o, "server", json_string(f->o.server));
	PUT_INT("devices", f->o.count);
	PUT_INT("bytes_per_device", sizeof(struct nf_fleet_device)); /* while it sleeps */
	ok = ok && put(o, "seconds", json_real(secs));
	ok = ok && put(o, "timed_out", json_boolean(f->timed_out));
	ok = ok && put(o, "interrupted", json_boolean(f->interrupted));
	PUT_INT("updated", t->updated);
	PUT_INT("up_to_date", t->uptodate);
	PUT_INT("failed", t->failed);
	ok = ok && put(o, "failed_by_error", errors_json(t->failed_by));
	PUT_INT("unfinished", t->unfinished);
	PUT_INT("checks", f->checks);
	PUT_INT("checks_failed", f->checks_failed);
	ok = ok && put(o, "check_errors", errors_json(f->check_errors));
	ok = ok && put(o, "checks_per_s", json_real(secs > 0 ? (double)f->checks / secs : 0.0));
	PUT_INT("transfers", f->transfers);
	PUT_INT("transfers_cut", f->cut);
	PUT_INT("bytes_downloaded", f->bytes);
	PUT_INT("updates_installed", f->installs);
	PUT_INT("boots", f->boots);
	PUT_INT("reverted", f->reverts);
	PUT_INT("crashes", f->crashes);
	ok = ok && put(o, "firmware_versions", versions_json(&t->fw));
	ok = ok && put(o, "filesystem_versions", versions_json(&t->fs));
#undef PUT_INT
	if (!ok) {
		nf_tool_error("out of memory making the JSON summary");
		goto done;
	}
	if (json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) != 0) {
		nf_tool_error("cannot write the JSON summary");
		goto done;
	}
	printf("\n");
	rc = 0;
done:
	json_decref(o);
	return rc;
}

int nf_fleet_report(struct nf_fleet *f)
{
	struct tally t;
	double secs;

	f->end = (int64_t)nf_clock_ms();
	f->now = f->end;
	if (f->next_progress >= 0 && !f->tty)
		nf_fleet_progress(f, true); /* the last word of a log */
	nf_fleet_clear_status(f);
	secs = (double)(f->end - f->t0) / 1000.0;
	tally(f, &t, true);
	if (f->o.json) {
		if (print_json(f, &t, secs) != 0)
			return FLEET_EXIT_SETUP;
	} else {
		print_text(f, &t, secs);
	}
	fflush(stdout);
	return t.failed > 0 || (f->o.until_updated && t.unsettled > 0) ? FLEET_EXIT_FAILED
	                                                               : NF_EXIT_OK;
}
