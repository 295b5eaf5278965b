/*
 * controls.c - what an operator sets on one device for rollouts (issue 10
 * item 4, docs/ROLLOUTS.md section 4): a pin to one release (POST and
 * DELETE /api/v1/devices/{key}/pin) and an exclusion from every rollout
 * (POST and DELETE /api/v1/devices/{key}/exclude). Each write is one
 * statement in the store (server/store/controls.c), which raises the
 * controls' generation so the rollout watcher reads them again; each is
 * audited by the listener and answered with the device as it is now, so a
 * page shows the result without asking again.
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

static const struct nf_body_field pin_fields[] = {
    {"release", NF_BODY_INT, true, 1, INT64_MAX / 2, 0, 0, 0, 0},
    {NULL, 0, false, 0, 0, 0, 0, 0, 0},
};

/* Sets the pin (release > 0) or clears it (0), or the exclusion; answers. */
static int set(struct nf_admin_request *r, bool pin, int64_t value, const char *what)
{
	struct nf_store *store = nf_admin_store(r);
	char err[NF_ERR_LEN], key[3 * NF_MAX_FIELD + 1];
	int rc;

	if (store == NULL)
		return MHD_YES;
	rc = pin ? nf_store_device_pin(store, r->args[0], value, err, sizeof err)
	         : nf_store_device_exclude(store, r->args[0], value != 0, err, sizeof err);
	if (rc < 0)
		return nf_admin_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
		                      "the fleet store cannot be written: %s", err);
	if (rc == 0)
		return nf_admin_error(r, MHD_HTTP_NOT_FOUND, "key",
		                      "no device %.80s in the inventory", r->args[0]);
	nf_log_value(key, sizeof key, r->args[0]); /* a device's own text: escaped */
	nf_log(NF_LOG_INFO, "admin: token %s: device %s %s", r->token_name, key, what);
	return nf_api_answer_device(r, false);
}

int nf_api_device_pin(struct nf_admin_request *r)
{
	struct nf_store *store = nf_admin_store(r);
	struct nf_device *dev;
	struct nf_release *rel;
	struct nf_history *hist = NULL;
	char field[NF_ADMIN_MAX_FIELD], err[NF_ERR_LEN], what[NF_STORE_MAX_TARGET];
	size_t count = 0;
	int64_t id;
	json_t *body;
	int rc;

	if (store == NULL || nf_api_device_key(r) != 0 || nf_admin_no_params(r) != 0)
		return MHD_YES;
	snprintf(r->target, sizeof r->target, "device %.80s: pin", r->args[0]);
	if (nf_admin_body_parse(r->body, r->body_len, pin_fields, &body, field, err,
	                        sizeof err) != 0)
		return nf_admin_error(r, MHD_HTTP_BAD_REQUEST, field, "%s", err);
	id = json_integer_value(json_object_get(body, "release"));
	json_decref(body);
	snprintf(r->target, sizeof r->target, "device %.80s: pin to release %lld", r->args[0],
	         (long long)id);
	dev = malloc(sizeof *dev);
	rel = malloc(sizeof *rel);
	if (dev == NULL || rel == NULL) {
		free(dev);
		free(rel);
		return MHD_NO;
	}
	if (nf_api_read_device(r, nf_clock_wall_ms(), dev, &hist, &count) != 1) {
		rc = MHD_YES;
		goto done;
	}
	rc = nf_store_release_get(store, id, rel, err, sizeof err);
	if (rc <= 0) {
		rc = rc < 0 ? nf_admin_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
		                             "the fleet store failed: %s", err)
		            : nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "release", "no release %lld",
		                             (long long)id);
		goto done;
	}
	/* A device of unknown type (never reported one) cannot be matched. */
	if (strcmp(rel->device, dev->device) != 0) {
		rc = nf_admin_error(r, MHD_HTTP_BAD_REQUEST, "release",
		                    "release %lld is for device type %s; device %.80s is of type "
		                    "\"%.63s\"",
		                    (long long)id, rel->device, r->args[0], dev->device);
		goto done;
	}
	snprintf(what, sizeof what, "pinned to release %lld (%s %s)", (long long)id, rel->device,
	         rel->version);
	rc = set(r, true, id, what);
done:
	free(hist);
	free(dev);
	free(rel);
	return rc;
}

int nf_api_device_unpin(struct nf_admin_request *r)
{
	if (nf_api_device_key(r) != 0 || nf_admin_no_params(r) != 0)
		return MHD_YES;
	snprintf(r->target, sizeof r->target, "device %.80s: unpin", r->args[0]);
	return set(r, true, 0, "unpinned");
}

static int exclude(struct nf_admin_request *r, bool excluded)
{
	if (nf_api_device_key(r) != 0 || nf_admin_no_params(r) != 0)
		return MHD_YES;
	snprintf(r->target, sizeof r->target, "device %.80s: %s", r->args[0],
	         excluded ? "exclude from rollouts" : "include in rollouts");
	return set(r, false, excluded, excluded ? "excluded from rollouts" : "included in rollouts");
}

int nf_api_device_exclude(struct nf_admin_request *r)
{
	return exclude(r, true);
}

int nf_api_device_include(struct nf_admin_request *r)
{
	return exclude(r, false);
}
