/*
 * rollouts.c - /api/v1/rollouts (issue 10 item 2, docs/ROLLOUTS.md section
 * 2): start a rollout of a release from a JSON body checked field by field
 * (body.c, then what types cannot say: increasing phases, versions, tags,
 * MACs, a window, a release that exists), list and show them, and move
 * them: pause, resume, advance, abort, halt. Each move is one conditional
 * update in the store, so a move that no longer applies (a rollout already
 * aborted) is answered 409 with the state it is in. Every answer carries
 * the rollout's counts, whole and per phase, and its gates judged now
 * (docs/ROLLOUTS.md section 4): one grouped query per rollout, never one
 * per device.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "admin.h"
#include "common.h"
#include "nofussd.h"

static const struct nf_body_field start_fields[] = {
    {"release", NF_BODY_INT, true, 1, INT64_MAX / 2, 0, 0, 0, 0},
    {"phases", NF_BODY_INTS, false, 1, 100, 0, 0, 1, NF_ROLLOUT_MAX_PHASES},
    {"min_version", NF_BODY_STRING, false, 0, 0, 1, NF_STORE_MAX_TEXT - 1, 0, 0},
    {"max_version", NF_BODY_STRING, false, 0, 0, 1, NF_STORE_MAX_TEXT - 1, 0, 0},
    {"tags", NF_BODY_STRINGS, false, 0, 0, 1, NF_STORE_MAX_TAG - 1, 0, NF_ROLLOUT_MAX_TAGS},
    {"macs", NF_BODY_STRINGS, false, 0, 0, 12, 17, 0, NF_ROLLOUT_MAX_MACS},
    {"success_threshold", NF_BODY_NUMBER, false, 0, 100, 0, 0, 0, 0},
    {"error_threshold", NF_BODY_NUMBER, false, 0, 100, 0, 0, 0, 0},
    {"soak", NF_BODY_INT, false, 0, NF_ROLLOUT_MAX_SECONDS, 0, 0, 0, 0},
    {"silent_after", NF_BODY_INT, false, 60, NF_ROLLOUT_MAX_SECONDS, 0, 0, 0, 0},
    {"approval", NF_BODY_BOOL, false, 0, 0, 0, 0, 0, 0},
    {"window", NF_BODY_STRING, false, 0, 0, 0, NF_ROLLOUT_WINDOW_LEN - 1, 0, 0},
    {"rate", NF_BODY_INT, false, 0, NF_ROLLOUT_MAX_RATE, 0, 0, 0, 0},
    {NULL, 0, false, 0, 0, 0, 0, 0, 0},
};

/* "HH:MM" at s into minutes of the day, or -1. */
static int clock_minutes(const char *s)
{
	for (int i = 0; i < 5; i++)
		if (i == 2 ? s[i] != ':' : s[i] < '0' || s[i] > '9')
			return -1;
	int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
	return h < 24 && m < 60 ? h * 60 + m : -1;
}

int nf_rollout_window_parse(const char *text, int *start, int *end, char *err, size_t errlen)
{
	*start = *end = -1;
	if (text == NULL || text[0] == '\0')
		return 0;
	if (strlen(text) != NF_ROLLOUT_WINDOW_LEN - 1 || text[5] != '-' ||
	    (*start = clock_minutes(text)) < 0 || (*end = clock_minutes(text + 6)) < 0) {
		*start = *end = -1;
		snprintf(err, errlen,
		         "window \"%.40s\" is not HH:MM-HH:MM (24-hour, the server's local time, "
		         "e.g. 01:00-05:00 or 22:00-05:00 across midnight; \"\" for always)",
		         text);
		return -1;
	}
	if (*start == *end) {
		snprintf(err, errlen,
		         "window \"%s\" is empty: it starts where it ends (\"\" for always)", text);
		*start = *end = -1;
		return -1;
	}
	return 0;
}

void nf_rollout_window_format(int start, int end, char out[NF_ROLLOUT_WINDOW_LEN])
{
	if (start < 0 || end < 0 || start >= 1440 || end >= 1440)
		out[0] = '\0';
	else
		snprintf(out, NF_ROLLOUT_WINDOW_LEN, "%02d:%02d-%02d:%02d", start / 60, start % 60,
		         end / 60, end % 60);
}

static int store_failed(struct nf_admin_request *r, const char *err)
{
	return nf_admin_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "the fleet store failed: %s",
	                      err);
}

/* Joins the strings of array a into out ("a,b"), each checked by valid
 * (and, for MACs, normalised). Returns 0, or -1 after answering 400 naming
 * the element. */
static int join(struct nf_admin_request *r, json_t *a, const char *name, bool macs, char *out,
                size_t cap)
{
	size_t i;
	json_t *e;

	out[0] = '\0';
	json_array_foreach(a, i, e)
	{
		const char *s = json_string_value(e);
		char mac[NF_STORE_MAC_LEN];
		if (macs ? nf_store_mac_normalize(s, mac) != 0 : !nf_admin_tag_valid(s)) {
			char field[NF_ADMIN_MAX_FIELD];
			snprintf(field, sizeof field, "%s[%zu]", name, i);
			return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, field,
			                      macs ? "%s: \"%s\" is not a MAC (AA:BB:CC:DD:EE:FF)"
			                           : "%s: \"%s\" is not a tag ([A-Za-z0-9_.-])",
			                      field, s),
			       -1;
		}
		snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", macs ? mac : s);
	}
	return 0;
}

static unsigned basis_points(json_t *body, const char *name, double dflt)
{
	json_t *v = json_object_get(body, name);
	return (unsigned)((v != NULL ? json_number_value(v) : dflt) * 100.0 + 0.5);
}

static int64_t seconds_ms(json_t *body, const char *name, long long dflt)
{
	json_t *v = json_object_get(body, name);
	return (int64_t)(v != NULL ? json_integer_value(v) : dflt) * 1000;
}

/* The JSON of ro with its counts and gates as of now: one counts query
 * (the devices_rollout index), whatever the fleet's size. When the counts
 * cannot be read, the rollout is shown without them ("counts": null and
 * "counts_error"), never with figures that are not true. */
/* "shadowed_by": the versions.json rules (their numbers, 0-based) that
 * answer first for some devices of ro's type (docs/ROLLOUTS.md section 3),
 * from the newest rules snapshot; [] when none. */
static void add_shadows(struct nf_admin_request *r, const struct nf_rollout *ro, json_t *o)
{
	struct nf_snapshot *rules = nf_admin_latest(r, false);
	long found[NF_ADMIN_MAX_SHADOWS];
	size_t n = nf_plan_shadowing(rules, ro, found, NF_ADMIN_MAX_SHADOWS);
	json_t *a = json_array();

	nf_snapshot_release(rules);
	for (size_t i = 0; a != NULL && i < n && i < NF_ADMIN_MAX_SHADOWS; i++)
		json_array_append_new(a, json_integer(found[i]));
	json_object_set_new(o, "shadowed_by", a != NULL ? a : json_null());
	if (n > NF_ADMIN_MAX_SHADOWS)
		json_object_set_new(o, "shadowed_by_more", json_integer((json_int_t)n));
}

static json_t *rollout_json(struct nf_admin_request *r, const struct nf_rollout *ro, int64_t now)
{
	struct nf_rollout_counts c;
	char err[NF_ERR_LEN];
	json_t *o;

	if (nf_store_rollout_counts(nf_admin_peek_store(r), ro, now, &c, err, sizeof err) == 0) {
		o = nf_render_rollout(ro, &c, now);
	} else {
		nf_log(NF_LOG_WARN, "admin: the counts of rollout %lld cannot be read: %s",
		       (long long)ro->id, err);
		o = nf_render_rollout(ro, NULL, now);
		if (o != NULL) {
			json_object_set_new(o, "counts", json_null());
			json_object_set_new(o, "phase_counts", json_null());
			json_object_set_new(o, "counts_error", json_string(err));
		}
	}
	if (o != NULL)
		add_shadows(r, ro, o);
	return o;
}

/* The body into ro, checked beyond its types. 0, or -1 answered. */
static int read_start(struct nf_admin_request *r, json_t *body, struct nf_rollout *ro)
{
	static const unsigned dflt[] = NF_ROLLOUT_DEFAULT_PHASES;
	json_t *phases = json_object_get(body, "phases");
	const char *vmin = json_string_value(json_object_get(body, "min_version"));
	const char *vmax = json_string_value(json_object_get(body, "max_version"));
	char err[NF_ERR_LEN];

	ro->release_id = json_integer_value(json_object_get(body, "release"));
	if (phases == NULL) {
		ro->nphases = sizeof dflt / sizeof dflt[0];
		memcpy(ro->phases, dflt, sizeof dflt);
	}
	for (size_t i = 0; phases != NULL && i < json_array_size(phases); i++) {
		ro->phases[i] = (unsigned)json_integer_value(json_array_get(phases, i));
		ro->nphases = (unsigned)i + 1;
		if (i > 0 && ro->phases[i] <= ro->phases[i - 1]) {
			char field[NF_ADMIN_MAX_FIELD];
			snprintf(field, sizeof field, "phases[%zu]", i);
			return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, field,
			                      "phases must increase: %s is %u, after %u", field,
			                      ro->phases[i], ro->phases[i - 1]),
			       -1;
		}
	}
	if (vmin != NULL && !nf_release_version_valid(vmin))
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "min_version",
		                      "min_version \"%s\" is not a version", vmin),
		       -1;
	if (vmax != NULL && !nf_release_version_valid(vmax))
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "max_version",
		                      "max_version \"%s\" is not a version", vmax),
		       -1;
	if (vmin != NULL && vmax != NULL && nf_vercmp(vmin, vmax) > 0)
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "max_version",
		                      "max_version %s is below min_version %s (version_compare): no "
		                      "device would be in range",
		                      vmax, vmin),
		       -1;
	snprintf(ro->min_version, sizeof ro->min_version, "%s", vmin != NULL ? vmin : "");
	snprintf(ro->max_version, sizeof ro->max_version, "%s", vmax != NULL ? vmax : "");
	if (join(r, json_object_get(body, "tags"), "tags", false, ro->tags, sizeof ro->tags) != 0 ||
	    join(r, json_object_get(body, "macs"), "macs", true, ro->macs, sizeof ro->macs) != 0)
		return -1;
	ro->success_bp = basis_points(body, "success_threshold", NF_ROLLOUT_DEFAULT_SUCCESS);
	ro->error_bp = basis_points(body, "error_threshold", NF_ROLLOUT_DEFAULT_ERROR);
	ro->soak_ms = seconds_ms(body, "soak", NF_ROLLOUT_DEFAULT_SOAK_S);
	ro->silent_ms = seconds_ms(body, "silent_after", NF_ROLLOUT_DEFAULT_SILENT_S);
	ro->approval = json_is_true(json_object_get(body, "approval"));
	ro->rate = (unsigned)json_integer_value(json_object_get(body, "rate"));
	if (nf_rollout_window_parse(json_string_value(json_object_get(body, "window")),
	                            &ro->window_start, &ro->window_end, err, sizeof err) != 0)
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "window", "%s", err), -1;
	return 0;
}

int nf_api_rollout_start(struct nf_admin_request *r)
{
	struct nf_store *store = nf_admin_store(r);
	struct nf_rollout *ro;
	struct nf_release *rel;
	char field[NF_ADMIN_MAX_FIELD], err[NF_ERR_LEN];
	int64_t other = 0;
	json_t *body;
	int rc;

	if (store == NULL || nf_admin_no_params(r) != 0)
		return MHD_YES;
	if (nf_admin_body_parse(r->body, r->body_len, start_fields, &body, field, err,
	                        sizeof err) != 0)
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, field, "%s", err);
	ro = calloc(1, sizeof *ro);
	rel = malloc(sizeof *rel);
	if (ro == NULL || rel == NULL) {
		free(ro);
		free(rel);
		json_decref(body);
		return MHD_NO;
	}
	rc = read_start(r, body, ro);
	json_decref(body);
	if (rc != 0)
		goto done;
	snprintf(r->target, sizeof r->target, "rollout of release %lld", (long long)ro->release_id);
	rc = nf_store_release_get(store, ro->release_id, rel, err, sizeof err);
	if (rc <= 0) {
		rc = rc < 0 ? store_failed(r, err)
		            : nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "release", "no release %lld",
		                             (long long)ro->release_id);
		goto done;
	}
	snprintf(ro->device, sizeof ro->device, "%s", rel->device);
	snprintf(ro->created_by, sizeof ro->created_by, "%s", r->token_name);
	ro->created_ms = nf_clock_wall_ms();
	rc = nf_store_rollout_add(store, ro, &other, err, sizeof err);
	if (rc == 1) {
		snprintf(r->target, sizeof r->target, "rollout %lld (release %lld)", (long long)ro->id,
		         (long long)ro->release_id);
		rc = nf_admin_json(r, MHD_HTTP_CREATED, rollout_json(r, ro, nf_clock_wall_ms()));
	} else if (rc == 0) {
		rc = nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "release", "no release %lld (deleted?)",
		                    (long long)ro->release_id);
	} else if (rc == -2) {
		rc = nf_admin_error(r, MHD_HTTP_CONFLICT, "release",
		                    "release %lld has a rollout that is not over: %lld",
		                    (long long)ro->release_id, (long long)other);
	} else {
		rc = store_failed(r, err);
	}
done:
	free(ro);
	free(rel);
	return rc == -1 ? MHD_YES : rc;
}

int nf_api_rollouts(struct nf_admin_request *r)
{
	struct nf_store *store = nf_admin_store(r);
	struct nf_rollout *list;
	char err[NF_ERR_LEN];
	size_t count;
	int64_t now = nf_clock_wall_ms();
	json_t *o, *a;

	if (store == NULL || nf_admin_no_params(r) != 0)
		return MHD_YES;
	if (nf_store_rollout_list(store, &list, &count, err, sizeof err) != 0)
		return store_failed(r, err);
	o = json_object();
	a = json_array();
	for (size_t i = 0; a != NULL && i < count; i++)
		json_array_append_new(a, rollout_json(r, &list[i], now));
	free(list);
	if (o == NULL) {
		json_decref(a);
		return nf_admin_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "out of memory");
	}
	json_object_set_new(o, "count", json_integer((json_int_t)count));
	json_object_set_new(o, "rollouts", a);
	return nf_admin_json(r, MHD_HTTP_OK, o);
}

json_t *nf_api_rollouts_not_over(struct nf_admin_request *r, int64_t now, char *err,
                                 size_t errlen)
{
	struct nf_rollout *list;
	size_t count;
	json_t *a;

	if (nf_store_rollout_list(nf_admin_peek_store(r), &list, &count, err, errlen) != 0)
		return NULL;
	a = json_array();
	for (size_t i = 0; a != NULL && i < count; i++)
		if (list[i].state == NF_ROLLOUT_RUNNING || list[i].state == NF_ROLLOUT_PAUSED ||
		    list[i].state == NF_ROLLOUT_HALTED)
			json_array_append_new(a, rollout_json(r, &list[i], now));
	free(list);
	if (a == NULL)
		snprintf(err, errlen, "out of memory");
	return a;
}

int nf_api_rollout(struct nf_admin_request *r)
{
	struct nf_store *store = nf_admin_store(r);
	struct nf_rollout ro;
	char err[NF_ERR_LEN];
	int64_t id;
	int rc;

	if (store == NULL || nf_admin_path_id(r, "rollout", &id) != 0)
		return MHD_YES;
	rc = nf_store_rollout_get(store, id, &ro, err, sizeof err);
	if (rc < 0)
		return store_failed(r, err);
	if (rc == 0)
		return nf_admin_error(r, MHD_HTTP_NOT_FOUND, "id", "no rollout %lld", (long long)id);
	return nf_admin_json(r, MHD_HTTP_OK, rollout_json(r, &ro, nf_clock_wall_ms()));
}

#define S(x) (1u << NF_ROLLOUT_##x)

int nf_api_rollout_action(struct nf_admin_request *r)
{
	static const struct {
		const char *name;
		unsigned from;
		int to;
	} actions[] = {
	    {"pause", S(RUNNING), NF_ROLLOUT_PAUSED},
	    {"resume", S(PAUSED) | S(HALTED), NF_ROLLOUT_RUNNING},
	    {"advance", S(RUNNING) | S(PAUSED), NF_ROLLOUT_RUNNING},
	    /* A completed rollout still offers to late devices (the newest
	     * of its type that is over): it can be halted or aborted too; the
	     * store refuses an older one, which offers nothing. */
	    {"abort", S(RUNNING) | S(PAUSED) | S(HALTED) | S(COMPLETED), NF_ROLLOUT_ABORTED},
	    {"halt", S(RUNNING) | S(PAUSED) | S(COMPLETED), NF_ROLLOUT_HALTED},
	};
	struct nf_store *store = nf_admin_store(r);
	struct nf_rollout ro, now;
	char err[NF_ERR_LEN], reason[NF_STORE_MAX_OUTCOME];
	size_t i;
	int64_t id;
	int rc, to;
	bool advance;

	if (store == NULL || nf_admin_path_id(r, "rollout", &id) != 0)
		return MHD_YES;
	for (i = 0; i < sizeof actions / sizeof actions[0]; i++)
		if (strcmp(actions[i].name, r->args[1]) == 0)
			break;
	if (i == sizeof actions / sizeof actions[0])
		return nf_admin_error(r, MHD_HTTP_NOT_FOUND, "action",
		                      "no action \"%.40s\": pause, resume, advance, abort or halt",
		                      r->args[1]);
	snprintf(r->target, sizeof r->target, "rollout %lld: %s", (long long)id, actions[i].name);
	rc = nf_store_rollout_get(store, id, &ro, err, sizeof err);
	if (rc <= 0)
		return rc < 0 ? store_failed(r, err)
		              : nf_admin_error(r, MHD_HTTP_NOT_FOUND, "id", "no rollout %lld",
		                               (long long)id);
	to = actions[i].to;
	advance = strcmp(actions[i].name, "advance") == 0;
	if (advance && ro.phase + 1 >= ro.nphases) {
		to = NF_ROLLOUT_COMPLETED; /* past its last phase */
		advance = false;
	}
	snprintf(reason, sizeof reason, "%s by token %s", actions[i].name, r->token_name);
	rc = nf_store_rollout_move(store, id, actions[i].from, to, advance, reason, nf_clock_wall_ms(), &now,
	                           err, sizeof err);
	if (rc < 0)
		return store_failed(r, err);
	if (rc == 0 && now.id != 0 && now.state == NF_ROLLOUT_COMPLETED &&
	    (actions[i].from & S(COMPLETED)) != 0) /* the store moves only the offering one */
		return nf_admin_error(r, MHD_HTTP_CONFLICT, "state",
		                      "rollout %lld is completed and offers nothing any more (a "
		                      "newer rollout of %s is over): there is nothing to %s",
		                      (long long)id, now.device, actions[i].name);
	if (rc == 0)
		return nf_admin_error(r, MHD_HTTP_CONFLICT, "state",
		                      "rollout %lld is %s: it cannot be told to %s", (long long)id,
		                      nf_rollout_state_name(now.id != 0 ? now.state : ro.state),
		                      actions[i].name);
	nf_log(NF_LOG_INFO, "admin: token %s: rollout %lld %s, now %s at phase %u", r->token_name,
	       (long long)id, actions[i].name, nf_rollout_state_name(now.state), now.phase);
	return nf_admin_json(r, MHD_HTTP_OK, rollout_json(r, &now, nf_clock_wall_ms()));
}

int nf_api_rollout_halt_all(struct nf_admin_request *r)
{
	struct nf_store *store = nf_admin_store(r);
	char err[NF_ERR_LEN], reason[NF_STORE_MAX_OUTCOME];
	json_t *o;
	int n;

	if (store == NULL || nf_admin_no_params(r) != 0)
		return MHD_YES;
	snprintf(r->target, sizeof r->target,
	         "every running or paused rollout, and every completed one still offering");
	snprintf(reason, sizeof reason, "halt-all by token %s", r->token_name);
	n = nf_store_rollout_halt_all(store, reason, nf_clock_wall_ms(), err, sizeof err);
	if (n < 0)
		return store_failed(r, err);
	nf_log(NF_LOG_WARN, "admin: token %s halted every rollout (%d)", r->token_name, n);
	o = json_object();
	if (o != NULL)
		json_object_set_new(o, "halted", json_integer(n));
	return nf_admin_json(r, MHD_HTTP_OK, o);
}

static json_t *split(const char *list)
{
	json_t *a = json_array();

	while (a != NULL && *list != '\0') {
		size_t n = strcspn(list, ",");
		json_array_append_new(a, json_stringn(list, n));
		list += n + (list[n] == ',');
	}
	return a;
}

/* {"offered": N, "pending": N, ...} of one row of counts. */
static json_t *counts_value(uint64_t offered, const uint64_t kinds[NF_RC_COUNT])
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "offered", json_integer((json_int_t)offered));
	for (int k = 0; k < NF_RC_COUNT; k++)
		json_object_set_new(o, nf_rollout_count_name(k), json_integer((json_int_t)kinds[k]));
	return o;
}

/* Each phase with its counts: "passed" before the current one (and every
 * phase of a completed rollout), "current", then "next". */
static json_t *phase_counts_value(const struct nf_rollout *ro, const struct nf_rollout_counts *c)
{
	json_t *a = json_array();

	for (unsigned i = 0; a != NULL && i < ro->nphases; i++) {
		json_t *p = counts_value(c->offered[i], c->phase[i]);
		bool done = i < ro->phase || ro->state == NF_ROLLOUT_COMPLETED;
		if (p == NULL)
			break;
		json_object_set_new(p, "phase", json_integer(i));
		json_object_set_new(p, "percent", json_integer(ro->phases[i]));
		json_object_set_new(p, "status", json_string(done              ? "passed"
		                                             : i == ro->phase ? "current"
		                                                              : "next"));
		nf_render_time(p, "started", !done && i == ro->phase ? ro->phase_ms : 0);
		json_array_append_new(a, p);
	}
	return a;
}

json_t *nf_render_rollout(const struct nf_rollout *ro, const struct nf_rollout_counts *c,
                          int64_t now_ms)
{
	json_t *o = json_object(), *phases = json_array(), *gates = json_object(),
	       *filters = json_object();
	char window[NF_ROLLOUT_WINDOW_LEN];
	struct nf_gate_verdict v;
	bool active = ro->state == NF_ROLLOUT_RUNNING || ro->state == NF_ROLLOUT_PAUSED;

	if (o == NULL || phases == NULL || gates == NULL || filters == NULL) {
		json_decref(o);
		json_decref(phases);
		json_decref(gates);
		json_decref(filters);
		return NULL;
	}
	for (unsigned i = 0; i < ro->nphases; i++)
		json_array_append_new(phases, json_integer(ro->phases[i]));
	json_object_set_new(o, "id", json_integer((json_int_t)ro->id));
	json_object_set_new(o, "release", json_integer((json_int_t)ro->release_id));
	json_object_set_new(o, "device", nf_render_string(ro->device, sizeof ro->device));
	json_object_set_new(o, "state", json_string(nf_rollout_state_name(ro->state)));
	nf_render_time(o, "state_since", ro->state_ms);
	json_object_set_new(o, "reason", nf_render_string(ro->reason, sizeof ro->reason));
	json_object_set_new(o, "phases", phases);
	json_object_set_new(o, "phase", json_integer(ro->phase));
	json_object_set_new(o, "percent", ro->phase < ro->nphases
	                                      ? json_integer(ro->phases[ro->phase])
	                                      : json_integer(100));
	nf_render_time(o, "phase_started", ro->phase_ms);
	json_object_set_new(filters, "min_version",
	                    ro->min_version[0] ? json_string(ro->min_version) : json_null());
	json_object_set_new(filters, "max_version",
	                    ro->max_version[0] ? json_string(ro->max_version) : json_null());
	json_object_set_new(filters, "tags", split(ro->tags));
	json_object_set_new(filters, "macs", split(ro->macs));
	json_object_set_new(o, "filters", filters);
	nf_rollout_window_format(ro->window_start, ro->window_end, window);
	json_object_set_new(o, "window", window[0] ? json_string(window) : json_null());
	json_object_set_new(o, "rate", json_integer(ro->rate));
	json_object_set_new(gates, "success_threshold", json_real(ro->success_bp / 100.0));
	json_object_set_new(gates, "error_threshold", json_real(ro->error_bp / 100.0));
	json_object_set_new(gates, "soak", json_integer(ro->soak_ms / 1000));
	json_object_set_new(gates, "silent_after", json_integer(ro->silent_ms / 1000));
	if (c != NULL) {
		nf_rollout_judge(ro, c, now_ms, &v);
		json_object_set_new(gates, "success_now", json_real(v.success_bp / 100.0));
		json_object_set_new(gates, "error_now", json_real(v.error_bp / 100.0));
		/* Whole seconds, rounded up: 0 only once soaked. */
		json_object_set_new(gates, "soak_left", json_integer((v.soak_left_ms + 999) / 1000));
		json_object_set_new(gates, "verdict", active ? json_string(nf_gate_action_name(
		                                                   v.action))
		                                             : json_null());
		json_object_set_new(gates, "why", active && v.why[0] ? json_string(v.why)
		                                                     : json_null());
		json_object_set_new(o, "counts", counts_value(c->offered_total, c->total));
		json_object_set_new(o, "phase_counts", phase_counts_value(ro, c));
	}
	json_object_set_new(o, "gates", gates);
	json_object_set_new(o, "approval", json_boolean(ro->approval));
	nf_render_time(o, "created", ro->created_ms);
	json_object_set_new(o, "created_by", nf_render_string(ro->created_by, sizeof ro->created_by));
	return o;
}
