/*
 * plan.c - the rollouts as the check path sees them (issue 10 items 2, 4,
 * 5, 7): an immutable plan, built by the rollout watcher (rollwatch.c) from
 * the store, published to the loop through a mailbox like any snapshot,
 * and read by the check handlers without a lock, an allocation or a wait.
 *
 * A plan is a snapshot (snapshot.c) whose rules are made here, one per
 * entry: entry i's release (its version, firmware and filesystem image) is
 * rule i's target. So a rollout's offer is built exactly as a versions.json
 * rule's is: the NoFUSS answer, the images' size, MD5 and header for the
 * stock updaters and ESPHome, the signature check with pubkey. What the
 * rules cannot say, who is offered what, is the entries' and the
 * controls' (pins, exclusions, tags), decided here:
 *
 *   1. a device pinned to a release is offered that release, before any
 *      versions.json rule (an operator's word on one device is the most
 *      specific there is);
 *   2. then versions.json answers (check.c, stock.c, esphome.c): a
 *      matching static rule comes first, so a hand-edited file keeps
 *      doing what it did;
 *   3. then, for a device that is not excluded, the newest rollout of its
 *      type that is offering (running, or completed: late devices still
 *      get it), whose window is open, whose filters it passes
 *      (rollout_select.c) and whose current phase has reached its bucket.
 *
 * A device's phase is the first whose percentage its bucket falls below:
 * the phase that first picked it, whenever it checks in. Its offer records
 * the rollout and that phase in the rule code (store.h), which is what the
 * gates count.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nofussd.h"

struct plan_control {
	struct nf_control c;
	long pin;            /* the pinned release's entry, -1 none (or not in the plan) */
};

struct nf_plan {
	struct nf_plan_entry *e;
	size_t n;
	struct plan_control *controls;
	size_t ncontrols;
	long *slots;         /* open addressing: index into controls, -1 empty */
	size_t nslots;       /* a power of two, at least twice ncontrols */
	bool pins;           /* some device is pinned */
	struct nf_plan_rate *rates; /* one per entry: the loop's alone */
};

void nf_plan_free(struct nf_plan *p)
{
	if (p == NULL)
		return;
	free(p->e);
	free(p->controls);
	free(p->slots);
	free(p->rates);
	free(p);
}

size_t nf_plan_count(const struct nf_snapshot *plan)
{
	return plan != NULL && plan->plan != NULL ? plan->plan->n : 0;
}

const struct nf_plan_entry *nf_plan_entry(const struct nf_snapshot *plan, size_t i)
{
	return i < nf_plan_count(plan) ? &plan->plan->e[i] : NULL;
}

static const struct plan_control *find_control(const struct nf_plan *p, const char *key)
{
	if (p->nslots == 0)
		return NULL;
	for (size_t i = nf_hash(key, strlen(key)) & (p->nslots - 1);; i = (i + 1) & (p->nslots - 1)) {
		long k = p->slots[i];
		if (k < 0)
			return NULL;
		if (strcmp(p->controls[k].c.key, key) == 0)
			return &p->controls[k];
	}
}

/* Controls: the later of two rows for one key wins (store.h). */
static int index_controls(struct nf_plan *p)
{
	size_t n = 8;

	while (n < 2 * p->ncontrols)
		n *= 2;
	p->slots = malloc(n * sizeof *p->slots);
	if (p->slots == NULL)
		return -1;
	p->nslots = n;
	for (size_t i = 0; i < n; i++)
		p->slots[i] = -1;
	for (size_t k = 0; k < p->ncontrols; k++) {
		struct plan_control *pc = &p->controls[k];
		size_t i = nf_hash(pc->c.key, strlen(pc->c.key)) & (n - 1);
		while (p->slots[i] >= 0 && strcmp(p->controls[p->slots[i]].c.key, pc->c.key) != 0)
			i = (i + 1) & (n - 1);
		p->slots[i] = (long)k;
		pc->pin = -1;
		for (size_t e = 0; pc->c.pin_release != 0 && e < p->n; e++)
			if (p->e[e].rollout_id == 0 && p->e[e].release_id == pc->c.pin_release)
				pc->pin = (long)e;
		p->pins = p->pins || pc->pin >= 0;
	}
	return 0;
}

/* The rules text: one rule per entry, its release as the target. */
static char *rules_text(const struct nf_plan_input *in, size_t *len)
{
	json_t *rules = json_array();
	char *text = NULL;

	for (size_t i = 0; rules != NULL && i < in->n; i++) {
		const struct nf_release *rel = &in->entries[i].release;
		json_t *target = json_pack("{s:s, s:s}", "version", rel->version, "firmware",
		                           rel->fw.path);
		if (target != NULL && rel->fs.path[0] != '\0')
			json_object_set_new(target, "spiffs", json_string(rel->fs.path));
		if (target == NULL ||
		    json_array_append_new(rules, json_pack("{s:{s:s}, s:o}", "origin", "device",
		                                           rel->device, "target", target)) != 0) {
			json_decref(rules);
			return NULL;
		}
	}
	if (rules != NULL)
		text = json_dumps(rules, JSON_COMPACT);
	json_decref(rules);
	*len = text != NULL ? strlen(text) : 0;
	return text;
}

struct nf_snapshot *nf_plan_build(const struct nf_plan_input *in,
                                  const struct nf_snapshot_params *base,
                                  const struct nf_snapshot *prev, char *err, size_t errlen)
{
	struct nf_snapshot_params p = *base;
	struct nf_snapshot *s = NULL;
	struct nf_plan *plan = calloc(1, sizeof *plan);
	char *text = NULL;

	p.rules_path = "rollouts";
	p.credentials = NULL; /* who may download is versions.json's snapshot's to say */
	if (plan == NULL || (text = rules_text(in, &p.rules_len)) == NULL)
		goto oom;
	p.rules_text = text;
	s = nf_snapshot_build(&p, prev, err, errlen);
	free(text);
	text = NULL;
	if (s == NULL) {
		nf_plan_free(plan);
		return NULL;
	}
	plan->n = in->n;
	plan->e = calloc(in->n + 1, sizeof *plan->e);
	plan->rates = calloc(in->n + 1, sizeof *plan->rates);
	plan->ncontrols = in->ncontrols;
	plan->controls = calloc(in->ncontrols + 1, sizeof *plan->controls);
	if (plan->e == NULL || plan->rates == NULL || plan->controls == NULL)
		goto oom;
	for (size_t i = 0; i < in->n; i++) {
		plan->e[i] = in->entries[i];
		/* A release whose image the public key refuses is offered by
		 * nobody (the build said why). */
		if (nf_rules_skipped(s->rules, i))
			plan->e[i].offering = false;
	}
	for (size_t k = 0; k < in->ncontrols; k++)
		plan->controls[k].c = in->controls[k];
	if (index_controls(plan) != 0)
		goto oom;
	s->plan = plan;
	return s;
oom:
	free(text);
	nf_plan_free(plan);
	nf_snapshot_release(s);
	snprintf(err, errlen, "rollouts: out of memory");
	return NULL;
}

void nf_plan_key(const char *mac, const char *device, size_t device_len, const char *ip,
                 char key[NF_STORE_MAX_KEY])
{
	char norm[NF_STORE_MAC_LEN];

	if (mac != NULL && nf_store_mac_normalize(mac, norm) == 0) {
		memcpy(key, norm, sizeof norm);
		return;
	}
	/* As the store keys a device without a MAC (names.c). */
	snprintf(key, NF_STORE_MAX_KEY, "%.*s@%s", (int)(device_len < NF_STORE_MAX_TEXT - 1
	                                                     ? device_len
	                                                     : NF_STORE_MAX_TEXT - 1),
	         device, ip);
}

/* Whether ask's device type is the entry's. */
static bool same_type(const struct nf_plan_entry *e, const struct nf_plan_ask *ask)
{
	return strlen(e->release.device) == ask->device_len &&
	       memcmp(e->release.device, ask->device, ask->device_len) == 0;
}

long nf_plan_pin(const struct nf_snapshot *plan, const struct nf_plan_ask *ask,
                 struct nf_plan_pick *out)
{
	const struct nf_plan *p = plan != NULL ? plan->plan : NULL;
	const struct plan_control *pc;
	const struct nf_plan_entry *e;

	out->rule = -1;
	out->current = false;
	if (p == NULL || !p->pins || (pc = find_control(p, ask->key)) == NULL || pc->pin < 0)
		return -1;
	e = &p->e[pc->pin];
	if (!e->offering || !same_type(e, ask))
		return -1;
	out->rule = pc->pin;
	out->code = nf_rollout_rule(e->release_id, NF_RULE_PIN_PHASE);
	out->rollout = 0;
	/* Pinned and already on it: nothing to offer, and nothing else either. */
	out->current = strcmp(ask->version, e->release.version) == 0;
	return out->current ? -1 : out->rule;
}

bool nf_plan_pinned(const struct nf_snapshot *plan, const struct nf_plan_ask *ask)
{
	struct nf_plan_pick pick;

	return nf_plan_pin(plan, ask, &pick) >= 0 || (pick.rule >= 0 && pick.current);
}

/* The first phase whose percentage the device's bucket is below. */
static int phase_of(const struct nf_rollout *ro, unsigned bucket)
{
	for (unsigned i = 0; i < ro->nphases; i++)
		if (bucket < ro->phases[i] * (NF_ROLLOUT_BUCKETS / 100))
			return (int)i;
	return -1;
}

/* The offer rate: new offers in the current minute, the loop's own count. */
static bool rate_allows(struct nf_plan_rate *r, unsigned rate, int64_t now_ms)
{
	int64_t minute = now_ms / 60000;

	if (rate == 0)
		return true;
	if (r->minute != minute) {
		r->minute = minute;
		r->used = 0;
	}
	if (r->used >= rate)
		return false;
	r->used++;
	return true;
}

long nf_plan_rollout(const struct nf_snapshot *plan, const struct nf_plan_ask *ask,
                     int64_t now_ms, struct nf_plan_pick *out)
{
	const struct nf_plan *p = plan != NULL ? plan->plan : NULL;
	const struct plan_control *pc;
	char device[NF_STORE_MAX_TEXT];

	out->rule = -1;
	out->rollout = 0;
	out->deferred = false;
	if (p == NULL || p->n == 0)
		return -1;
	pc = p->ncontrols > 0 ? find_control(p, ask->key) : NULL;
	if (pc != NULL && pc->c.excluded)
		return -1;
	nf_store_copy(device, sizeof device, ask->device, ask->device_len);
	struct nf_rollout_device d = {device, ask->version,
	                              strchr(ask->key, '@') == NULL ? ask->key : NULL,
	                              pc != NULL ? pc->c.tags : NULL};
	for (size_t i = 0; i < p->n; i++) {
		const struct nf_plan_entry *e = &p->e[i];
		int phase;

		if (e->rollout_id == 0 || !e->offering || !same_type(e, ask))
			continue;
		if (nf_rollout_eligible(&e->rollout, e->release.version, &d) != NF_FIT_YES)
			continue;
		/* No version range given: a rollout only ever upgrades. */
		if (e->rollout.min_version[0] == '\0' && e->rollout.max_version[0] == '\0' &&
		    nf_vercmp(ask->version, e->release.version) > 0)
			continue;
		phase = phase_of(&e->rollout, nf_rollout_bucket(e->rollout_id, ask->key));
		if (phase < 0 || (unsigned)phase > e->rollout.phase)
			continue;
		out->rule = (long)i;
		out->rollout = e->rollout_id;
		out->code = nf_rollout_rule(e->rollout_id, (unsigned)phase);
		if (!rate_allows(&p->rates[i], e->rollout.rate, now_ms)) {
			out->deferred = true;
			return -1;
		}
		return out->rule;
	}
	return -1;
}

size_t nf_plan_shadowing(const struct nf_snapshot *rules, const struct nf_rollout *r, long *out,
                         size_t max)
{
	size_t found = 0, n = rules != NULL ? nf_rules_count(rules->rules) : 0;

	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *device = nf_rules_device(rules->rules, i, &len);
		if (nf_rules_skipped(rules->rules, i) ||
		    (device != NULL && (len != strlen(r->device) || memcmp(device, r->device, len) != 0)))
			continue;
		if (found < max)
			out[found] = (long)i;
		found++;
	}
	return found;
}

/* One step of an explanation, said through fn. */
static void say(nf_plan_step_fn fn, void *user, const struct nf_plan_entry *e, const char *what,
                bool chosen, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void say(nf_plan_step_fn fn, void *user, const struct nf_plan_entry *e, const char *what,
                bool chosen, const char *fmt, ...)
{
	struct nf_plan_step s = {e != NULL ? e->rollout_id : 0, e != NULL ? e->release_id : 0, what,
	                         chosen, ""};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s.detail, sizeof s.detail, fmt, ap);
	va_end(ap);
	fn(user, &s);
}

void nf_plan_explain(const struct nf_snapshot *rules, const struct nf_snapshot *plan,
                     const struct nf_plan_ask *ask, const char *mac, nf_plan_step_fn fn,
                     void *user)
{
	const struct nf_plan *p = plan != NULL ? plan->plan : NULL;
	const struct plan_control *pc = p != NULL ? find_control(p, ask->key) : NULL;
	struct nf_query q = {ask->device, ask->device_len, ask->version, strlen(ask->version), mac,
	                     NULL};
	struct nf_plan_pick pick;
	long rule;
	bool decided = false;

	if (nf_plan_pin(plan, ask, &pick) >= 0 || pick.current) {
		const struct nf_plan_entry *e = &p->e[pick.rule];
		say(fn, user, e, "pin", true, "pinned to release %lld (%s %s)%s",
		    (long long)e->release_id, e->release.device, e->release.version,
		    pick.current ? ": runs it already, nothing to offer" : ": offered");
		decided = true;
	} else if (pc != NULL && pc->c.pin_release != 0) {
		say(fn, user, NULL, "pin", false,
		    "pinned to release %lld, which is gone or of another device type: ignored",
		    (long long)pc->c.pin_release);
	}
	rule = rules != NULL ? nf_rules_match(rules->rules, &q) : -1;
	if (rule >= 0)
		say(fn, user, NULL, "versions.json", !decided, "rule %ld matches: it answers%s", rule,
		    decided ? ", after the pin" : " before any rollout");
	else
		say(fn, user, NULL, "versions.json", false, "no rule matches");
	decided = decided || rule >= 0;
	if (pc != NULL && pc->c.excluded) {
		say(fn, user, NULL, "excluded", false, "excluded from every rollout");
		return;
	}
	if (pc != NULL && pc->c.tags[0] != '\0')
		say(fn, user, NULL, "tags", false, "tags: %s", pc->c.tags);
	char device[NF_STORE_MAX_TEXT];
	nf_store_copy(device, sizeof device, ask->device, ask->device_len);
	struct nf_rollout_device d = {device, ask->version,
	                              strchr(ask->key, '@') == NULL ? ask->key : NULL,
	                              pc != NULL ? pc->c.tags : NULL};
	for (size_t i = 0; i < nf_plan_count(plan); i++) {
		const struct nf_plan_entry *e = &p->e[i];
		if (e->rollout_id == 0 || !same_type(e, ask))
			continue;
		const struct nf_rollout *ro = &e->rollout;
		enum nf_rollout_fit fit = nf_rollout_eligible(ro, e->release.version, &d);
		unsigned b = nf_rollout_bucket(e->rollout_id, ask->key);
		int phase = phase_of(ro, b);
		if (fit != NF_FIT_YES) {
			say(fn, user, e, "rollout", false, "not eligible: %s", nf_rollout_fit_name(fit));
		} else if (ro->min_version[0] == '\0' && ro->max_version[0] == '\0' &&
		           nf_vercmp(ask->version, e->release.version) > 0) {
			say(fn, user, e, "rollout", false,
			    "runs a newer version than %s, and the rollout gives no version range",
			    e->release.version);
		} else if (phase < 0 || (unsigned)phase > ro->phase) {
			say(fn, user, e, "rollout", false,
			    "bucket %u of 10000: not in phase %u (%u%%) yet%s", b, ro->phase + 1,
			    ro->phases[ro->phase < ro->nphases ? ro->phase : ro->nphases - 1],
			    phase >= 0 ? "" : " (nor in any phase)");
		} else if (!e->offering) {
			say(fn, user, e, "rollout", false, "bucket %u, phase %d: outside its window", b,
			    phase + 1);
		} else {
			say(fn, user, e, "rollout", !decided, "bucket %u of 10000: phase %d (%u%%)%s", b,
			    phase + 1, ro->phases[phase],
			    decided ? ", but answered before" : ": offered");
			decided = true;
		}
	}
}
