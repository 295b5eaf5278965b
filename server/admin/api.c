/*
 * api.c - the /api/v1 handlers: the devices list, one device with its
 * history, the decision, the fleet summary and tags (docs/ADMIN.md section
 * 3). Each runs on its connection's thread and may wait on the store; a
 * store that is off answers 503, one that fails answers 503 with its error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <microhttpd.h>

#include "admin.h"
#include "common.h"
#include "nofussd.h"

static int store_failed(struct nf_admin_request *r, const char *err)
{
	return nf_admin_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
	                      "the fleet store cannot be read: %s", err);
}

int nf_api_devices(struct nf_admin_request *r)
{
	struct nf_store *store = nf_admin_store(r);
	struct nf_admin_query *q;
	struct nf_device_list list;
	char err[NF_ERR_LEN], param[16];
	json_t *o, *devices;
	int rc;

	if (store == NULL)
		return MHD_YES;
	q = malloc(sizeof *q);
	if (q == NULL)
		return MHD_NO;
	if (nf_admin_query_parse(r->query, r->query_len, nf_clock_wall_ms(), q, param, err, sizeof err) !=
	    0) {
		rc = nf_admin_error(r, MHD_HTTP_BAD_REQUEST, param, "%s", err);
		free(q);
		return rc;
	}
	if (nf_store_devices(store, &q->filter, &list, err, sizeof err) != 0) {
		free(q);
		return store_failed(r, err);
	}
	o = json_object();
	devices = json_array();
	for (size_t i = 0; devices != NULL && i < list.count; i++)
		json_array_append_new(devices, nf_render_device(&list.devices[i]));
	if (o != NULL) {
		size_t next = q->filter.offset + list.count;
		json_object_set_new(o, "total", json_integer((json_int_t)list.total));
		json_object_set_new(o, "offset", json_integer((json_int_t)q->filter.offset));
		json_object_set_new(o, "limit", json_integer((json_int_t)q->filter.limit));
		json_object_set_new(o, "count", json_integer((json_int_t)list.count));
		json_object_set_new(o, "next_offset",
		                    next < list.total && list.count > 0
		                        ? json_integer((json_int_t)next)
		                        : json_null());
		json_object_set_new(o, "devices", devices);
	} else {
		json_decref(devices);
	}
	nf_device_list_free(&list);
	free(q);
	return nf_admin_json(r, MHD_HTTP_OK, o);
}

int nf_api_device_key(struct nf_admin_request *r)
{
	char mac[NF_STORE_MAC_LEN];
	const char *key = r->args[0];

	if (strlen(key) < NF_STORE_MAX_KEY &&
	    (nf_store_mac_normalize(key, mac) == 0 || (strchr(key, '@') != NULL && key[0] != '@')))
		return 0;
	nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "key",
	               "\"%.80s\" is not a device key: a MAC (AA:BB:CC:DD:EE:FF, with '-' or no "
	               "separators, any case) or DEVICE@IP for devices without a MAC",
	               key);
	return -1;
}

int nf_api_read_device(struct nf_admin_request *r, int64_t now, struct nf_device *dev,
                       struct nf_history **hist, size_t *count)
{
	struct nf_store *store = nf_admin_store(r);
	char err[NF_ERR_LEN];
	int rc;

	if (store == NULL || nf_api_device_key(r) != 0)
		return -1;
	rc = nf_store_device(store, r->args[0], now, dev, hist, count, err, sizeof err);
	if (rc < 0)
		store_failed(r, err);
	else if (rc == 0)
		nf_admin_error(r, MHD_HTTP_NOT_FOUND, "key", "no device %.80s in the inventory",
		               r->args[0]);
	return rc;
}

int nf_api_answer_device(struct nf_admin_request *r, bool history)
{
	struct nf_device *dev = malloc(sizeof *dev);
	struct nf_history *hist = NULL;
	size_t count = 0;
	json_t *o;

	if (dev == NULL)
		return MHD_NO;
	if (nf_api_read_device(r, nf_clock_wall_ms(), dev, &hist, &count) != 1) {
		free(dev);
		return MHD_YES;
	}
	o = nf_render_device(dev);
	if (o != NULL && history)
		json_object_set_new(o, "history", nf_render_history(hist, count));
	free(hist);
	free(dev);
	return nf_admin_json(r, MHD_HTTP_OK, o);
}

int nf_api_device(struct nf_admin_request *r)
{
	return nf_api_answer_device(r, true);
}

static void on_step(void *user, const struct nf_plan_step *st)
{
	/* The detail may quote a device's type or version: any bytes. */
	json_t *step = json_pack("{s:s, s:b, s:o}", "step", st->what, "chosen", st->chosen,
	                         "detail", nf_render_string(st->detail, strlen(st->detail)));

	if (step != NULL && st->rollout != 0)
		json_object_set_new(step, "rollout", json_integer((json_int_t)st->rollout));
	else if (step != NULL && st->release != 0)
		json_object_set_new(step, "release", json_integer((json_int_t)st->release));
	json_array_append_new(user, step);
}

/* "now": what the device would get if it checked again now, step by step
 * (a pin, versions.json, an exclusion, its tags, each rollout of its type),
 * from the rules and the plan being served (docs/ROLLOUTS.md section 3). */
static json_t *decision_now(struct nf_admin_request *r, const struct nf_device *dev)
{
	struct nf_snapshot *rules = nf_admin_latest(r, false), *plan = nf_admin_latest(r, true);
	struct nf_plan_ask ask = {dev->key, dev->device, strlen(dev->device), dev->version};
	json_t *steps = json_array();

	if (steps != NULL)
		nf_plan_explain(rules, plan, &ask, dev->mac[0] != '\0' ? dev->mac : NULL, on_step,
		                steps);
	nf_snapshot_release(plan);
	nf_snapshot_release(rules);
	return steps;
}

int nf_api_decision(struct nf_admin_request *r)
{
	struct nf_device *dev = malloc(sizeof *dev);
	struct nf_history *hist = NULL;
	size_t count = 0;
	int64_t now = nf_clock_wall_ms();
	json_t *o;

	if (dev == NULL)
		return MHD_NO;
	if (nf_api_read_device(r, now, dev, &hist, &count) != 1) {
		free(dev);
		return MHD_YES;
	}
	o = nf_render_decision(dev, now);
	if (o != NULL)
		json_object_set_new(o, "now", decision_now(r, dev));
	free(hist);
	free(dev);
	return nf_admin_json(r, MHD_HTTP_OK, o);
}

int nf_api_summary(struct nf_admin_request *r)
{
	struct nf_store *store = nf_admin_store(r);
	struct nf_fleet_summary s;
	char err[NF_ERR_LEN];
	int64_t now = nf_clock_wall_ms();
	json_t *o;

	if (store == NULL)
		return MHD_YES;
	if (r->query_len > 0)
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, NULL,
		                      "the summary takes no parameters");
	if (nf_store_summary(store, now, &s, err, sizeof err) != 0)
		return store_failed(r, err);
	o = nf_render_summary(&s, now);
	nf_fleet_summary_free(&s);
	return nf_admin_json(r, MHD_HTTP_OK, o);
}

#define NF_DAY_MS (24LL * 3600 * 1000)

/* Devices last seen before now - ago_ms: the total of a one-row page. */
static int not_seen(struct nf_store *store, int64_t now, int64_t ago_ms, uint64_t *out,
                    char *err, size_t errlen)
{
	struct nf_device_filter f = {.state = -1, .seen_before_ms = now - ago_ms, .limit = 1,
	                             .now_ms = now};
	struct nf_device_list list;

	if (nf_store_devices(store, &f, &list, err, errlen) != 0)
		return -1;
	*out = list.total;
	nf_device_list_free(&list);
	return 0;
}

int nf_api_overview(struct nf_admin_request *r)
{
	struct nf_store *store = nf_admin_store(r);
	struct nf_fleet_summary s;
	char err[NF_ERR_LEN];
	int64_t now = nf_clock_wall_ms();
	uint64_t day = 0, week = 0;
	json_t *o, *rollouts;

	if (store == NULL || nf_admin_no_params(r) != 0)
		return MHD_YES;
	if (nf_store_summary(store, now, &s, err, sizeof err) != 0)
		return store_failed(r, err);
	o = json_object();
	if (o != NULL)
		json_object_set_new(o, "summary", nf_render_summary(&s, now));
	nf_fleet_summary_free(&s);
	if (not_seen(store, now, NF_DAY_MS, &day, err, sizeof err) != 0 ||
	    not_seen(store, now, 7 * NF_DAY_MS, &week, err, sizeof err) != 0 ||
	    (rollouts = nf_api_rollouts_not_over(r, now, err, sizeof err)) == NULL) {
		json_decref(o);
		return store_failed(r, err);
	}
	if (o == NULL) {
		json_decref(rollouts);
		return nf_admin_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "out of memory");
	}
	json_object_set_new(o, "not_seen", json_pack("{s:I, s:I}", "day", (json_int_t)day, "week",
	                                             (json_int_t)week));
	json_object_set_new(o, "rollouts", rollouts);
	nf_render_time(o, "generated", now);
	return nf_admin_json(r, MHD_HTTP_OK, o);
}

static int tag(struct nf_admin_request *r, bool add)
{
	struct nf_store *store = nf_admin_store(r);
	char err[NF_ERR_LEN], key[3 * NF_MAX_FIELD + 1];
	json_t *o;
	int rc;

	if (store == NULL || nf_api_device_key(r) != 0)
		return MHD_YES;
	if (!nf_admin_tag_valid(r->args[1]))
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "tag",
		                      "\"%.80s\" is not a tag ([A-Za-z0-9_.-], 1 to %d characters)",
		                      r->args[1], NF_STORE_MAX_TAG - 1);
	rc = nf_store_tag(store, r->args[0], r->args[1], add, err, sizeof err);
	if (rc < 0)
		return nf_admin_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
		                      "the fleet store cannot be written: %s", err);
	if (rc == 0)
		return nf_admin_error(r, MHD_HTTP_NOT_FOUND, "key",
		                      "no device %.80s in the inventory", r->args[0]);
	nf_log_value(key, sizeof key, r->args[0]); /* a device's own text: escaped */
	nf_log(NF_LOG_INFO, "admin: token %s %s tag %s %s %s", r->token_name,
	       add ? "added" : "removed", r->args[1], add ? "to" : "from", key);
	o = json_object();
	if (o != NULL) {
		json_object_set_new(o, "key", nf_render_string(r->args[0], NF_ADMIN_MAX_URL));
		json_object_set_new(o, "tag", nf_render_string(r->args[1], NF_ADMIN_MAX_URL));
		json_object_set_new(o, add ? "added" : "removed", json_true());
	}
	return nf_admin_json(r, MHD_HTTP_OK, o);
}

int nf_api_tag_add(struct nf_admin_request *r)
{
	return tag(r, true);
}

int nf_api_tag_remove(struct nf_admin_request *r)
{
	return tag(r, false);
}
