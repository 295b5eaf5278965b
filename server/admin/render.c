/*
 * render.c - the admin API's JSON: devices, their history, the fleet
 * summary and the decision, as jansson values (docs/ADMIN.md section 3).
 *
 * Device type, version, build and the rest come from devices: they are any
 * bytes, so every string is made valid UTF-8 here (an invalid byte becomes
 * U+FFFD) before jansson sees it; a web page shows them as text. Times are
 * given twice: an RFC 3339 UTC string and an integer of ms since 1970.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "admin.h"

json_t *nf_render_string(const char *text, size_t len)
{
	char out[4 * NF_ADMIN_MAX_URL];
	const unsigned char *s = (const unsigned char *)text;
	size_t n = 0;

	len = strnlen(text, len);
	for (size_t i = 0; i < len && n + 4 < sizeof out;) {
		size_t k = nf_admin_utf8_next(s + i, len - i);
		if (k == 0) {
			memcpy(out + n, "\xef\xbf\xbd", 3);
			n += 3;
			i++;
		} else {
			memcpy(out + n, s + i, k);
			n += k;
			i += k;
		}
	}
	return json_stringn(out, n);
}

/* The string in a char array (cut at its NUL), and obj[key] = it. */
#define PUT_STRING(arr) nf_render_string(arr, sizeof(arr))
#define PUT_TEXT(obj, key, arr) json_object_set_new(obj, key, nf_render_string(arr, sizeof(arr)))

int nf_render_time(json_t *obj, const char *key, int64_t ms)
{
	char name[64], text[32];

	snprintf(name, sizeof name, "%s_ms", key);
	if (ms <= 0)
		return json_object_set_new(obj, key, json_null()) |
		       json_object_set_new(obj, name, json_null());
	nf_admin_format_time(ms, text);
	return json_object_set_new(obj, key, json_string(text)) |
	       json_object_set_new(obj, name, json_integer(ms));
}

static json_t *rule_value(int32_t rule)
{
	return rule >= 0 ? json_integer(rule) : json_null();
}

/* Where an offer came from: {"from": "versions.json", "rule": N},
 * {"from": "rollout", "rollout": ID, "phase": P} (P 1-based) or
 * {"from": "pin", "release": ID}; null for none. */
static json_t *source_value(int32_t rule)
{
	int64_t id;
	unsigned phase;

	if (rule >= 0)
		return json_pack("{s:s, s:i}", "from", "versions.json", "rule", (int)rule);
	if (!nf_rollout_of_rule(rule, &id, &phase))
		return json_null();
	if (phase == NF_RULE_PIN_PHASE)
		return json_pack("{s:s, s:I}", "from", "pin", "release", (json_int_t)id);
	return json_pack("{s:s, s:I, s:i}", "from", "rollout", "rollout", (json_int_t)id, "phase",
	                 (int)phase + 1);
}

/* "rule 3 of versions.json (counted from 0)", "rollout 7 (phase 2)" or
 * "the pin to release 4". */
static void source_text(int32_t rule, char *out, size_t cap)
{
	int64_t id;
	unsigned phase;

	if (!nf_rollout_of_rule(rule, &id, &phase))
		snprintf(out, cap, "rule %" PRId32 " of versions.json (counted from 0)", rule);
	else if (phase == NF_RULE_PIN_PHASE)
		snprintf(out, cap, "the pin to release %lld", (long long)id);
	else
		snprintf(out, cap, "rollout %lld (phase %u)", (long long)id, phase + 1);
}

static json_t *tags_value(const char *tags, size_t cap)
{
	json_t *list = json_array();
	const char *p = tags, *end = tags + strnlen(tags, cap);

	while (list != NULL && p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t n = (size_t)((comma != NULL ? comma : end) - p);
		if (n > 0)
			json_array_append_new(list, nf_render_string(p, n));
		p += n + 1;
	}
	return list;
}

static json_t *offer_value(const struct nf_device *d)
{
	json_t *offer, *images;

	if (d->target[0] == '\0')
		return json_null();
	offer = json_object();
	images = json_array();
	if (offer == NULL || images == NULL) {
		json_decref(offer);
		json_decref(images);
		return NULL;
	}
	PUT_TEXT(offer, "target", d->target);
	json_object_set_new(offer, "rule", rule_value(d->rule));
	json_object_set_new(offer, "source", source_value(d->rule));
	nf_render_time(offer, "offered", d->offered_ms);
	PUT_TEXT(offer, "from_version", d->from_version);
	for (int i = 0; i < NF_STORE_IMAGES; i++) {
		const struct nf_store_image *im = &d->images[i];
		json_t *o = json_object();
		if (im->path[0] == '\0' || o == NULL) {
			json_decref(o);
			continue;
		}
		json_object_set_new(o, "kind", json_string(i == 0 ? "firmware" : "filesystem"));
		PUT_TEXT(o, "path", im->path);
		json_object_set_new(
		    o, "md5", im->md5[0] ? nf_render_string(im->md5, sizeof im->md5) : json_null());
		json_object_set_new(o, "size", json_integer((json_int_t)im->size));
		json_object_set_new(o, "bytes_served", json_integer((json_int_t)d->image_bytes[i]));
		json_array_append_new(images, o);
	}
	json_object_set_new(offer, "images", images);
	return offer;
}

/* {"release": ID, "version": V} (V null when the release is gone), or null. */
static json_t *pin_value(const struct nf_device *d)
{
	json_t *pin;

	if (d->pin_release <= 0)
		return json_null();
	pin = json_object();
	if (pin == NULL)
		return NULL;
	json_object_set_new(pin, "release", json_integer((json_int_t)d->pin_release));
	json_object_set_new(pin, "version", d->pin_version[0] ? PUT_STRING(d->pin_version)
	                                                      : json_null());
	return pin;
}

json_t *nf_render_device(const struct nf_device *d)
{
	json_t *o = json_object(), *hw = json_object(), *answer = json_object();

	if (o == NULL || hw == NULL || answer == NULL) {
		json_decref(o);
		json_decref(hw);
		json_decref(answer);
		return NULL;
	}
	PUT_TEXT(o, "key", d->key);
	json_object_set_new(o, "mac",
	                    d->mac[0] ? nf_render_string(d->mac, sizeof d->mac) : json_null());
	PUT_TEXT(o, "ip", d->ip);
	PUT_TEXT(o, "type", d->device);
	PUT_TEXT(o, "version", d->version);
	PUT_TEXT(o, "build", d->build);
	json_object_set_new(o, "client", json_string(nf_client_kind_name(d->client)));
	json_object_set_new(hw, "chip_id", json_integer((json_int_t)d->hw.chip_id));
	json_object_set_new(hw, "chip_size", json_integer(d->hw.chip_size));
	json_object_set_new(hw, "free_space", json_integer(d->hw.free_space));
	json_object_set_new(hw, "sketch_size", json_integer(d->hw.sketch_size));
	PUT_TEXT(hw, "sketch_md5", d->hw.sketch_md5);
	PUT_TEXT(hw, "sdk", d->hw.sdk);
	json_object_set_new(o, "hardware", hw);
	nf_render_time(o, "first_seen", d->first_seen_ms);
	nf_render_time(o, "last_seen", d->last_seen_ms);
	nf_render_time(o, "last_check", d->last_check_ms);
	json_object_set_new(o, "checks", json_integer((json_int_t)d->checks));
	json_object_set_new(o, "state", json_string(nf_update_state_name(d->state)));
	nf_render_time(o, "state_since", d->state_ms);
	json_object_set_new(answer, "kind", json_string(nf_answer_kind_name(d->answer)));
	PUT_TEXT(answer, "target", d->answer_target);
	json_object_set_new(answer, "rule", rule_value(d->answer_rule));
	PUT_TEXT(answer, "reason", d->answer_reason);
	json_object_set_new(o, "answer", answer);
	json_object_set_new(o, "offer", offer_value(d));
	json_object_set_new(o, "tags", tags_value(d->tags, sizeof d->tags));
	json_object_set_new(o, "pin", pin_value(d));
	json_object_set_new(o, "excluded", json_boolean(d->excluded));
	return o;
}

json_t *nf_render_history(const struct nf_history *h, size_t count)
{
	json_t *list = json_array();

	for (size_t i = 0; list != NULL && i < count; i++) {
		json_t *o = json_object();
		if (o == NULL)
			break;
		nf_render_time(o, "at", h[i].at_ms);
		json_object_set_new(o, "kind", json_string(nf_history_kind_name(h[i].kind)));
		json_object_set_new(o, "state", json_string(nf_update_state_name(h[i].state)));
		PUT_TEXT(o, "target", h[i].target);
		json_object_set_new(o, "rule", rule_value(h[i].rule));
		PUT_TEXT(o, "version", h[i].version);
		PUT_TEXT(o, "image", h[i].image);
		json_object_set_new(o, "bytes", json_integer((json_int_t)h[i].bytes));
		json_object_set_new(o, "total", json_integer((json_int_t)h[i].total));
		PUT_TEXT(o, "detail", h[i].detail);
		json_array_append_new(list, o);
	}
	return list;
}

json_t *nf_render_summary(const struct nf_fleet_summary *s, int64_t now_ms)
{
	json_t *o = json_object(), *states = json_object(), *rows = json_array();

	if (o == NULL || states == NULL || rows == NULL) {
		json_decref(o);
		json_decref(states);
		json_decref(rows);
		return NULL;
	}
	nf_render_time(o, "generated", now_ms);
	json_object_set_new(o, "devices", json_integer((json_int_t)s->devices));
	json_object_set_new(o, "seen_24h", json_integer((json_int_t)s->seen_24h));
	json_object_set_new(o, "held_back", json_integer((json_int_t)s->held));
	for (int st = 0; st < NF_UPDATE_COUNT; st++)
		json_object_set_new(states, nf_update_state_name(st),
		                    json_integer((json_int_t)s->by_state[st]));
	json_object_set_new(o, "by_state", states);
	for (size_t i = 0; i < s->count; i++) {
		json_t *r = json_object();
		if (r == NULL)
			break;
		PUT_TEXT(r, "type", s->rows[i].device);
		PUT_TEXT(r, "version", s->rows[i].version);
		json_object_set_new(r, "devices", json_integer((json_int_t)s->rows[i].count));
		json_array_append_new(rows, r);
	}
	json_object_set_new(o, "by_type_version", rows);
	json_object_set_new(o, "truncated", json_boolean(s->truncated));
	return o;
}

/* What an offer's state means, for the sentence below. */
static const char *state_meaning(int state)
{
	switch (state) {
	case NF_UPDATE_OFFERED:
		return "nothing downloaded yet";
	case NF_UPDATE_DOWNLOADING:
		return "part of it served so far";
	case NF_UPDATE_DOWNLOADED:
		return "every byte served, waiting for a check on the new version";
	case NF_UPDATE_CONFIRMED:
		return "a later check reported that version";
	case NF_UPDATE_REVERTED:
		return "a check after the download still reported the old version";
	case NF_UPDATE_FAILED:
		return "its download was cut or refused";
	case NF_UPDATE_SILENT:
		return "downloaded, and no check since for longer than the silent time";
	default:
		return "withdrawn before it was downloaded";
	}
}

/* The sentence that says why the last check got what it got. */
static void explain(const struct nf_device *d, char *out, size_t cap)
{
	char when[32], source[96];

	nf_admin_format_time(d->last_check_ms, when);
	source_text(d->answer_rule, source, sizeof source);
	switch (d->answer) {
	case NF_ANSWER_OFFERED:
		snprintf(out, cap,
		         "At its last check (%s) %s offered version %.63s; the offer is now %s: %s.",
		         when, source, d->answer_target, nf_update_state_name(d->state),
		         state_meaning(d->state));
		break;
	case NF_ANSWER_HELD:
		snprintf(out, cap,
		         "At its last check (%s) %s matched and would offer version %.63s, but the "
		         "offer was held back: %.95s.",
		         when, source, d->answer_target, d->answer_reason);
		break;
	case NF_ANSWER_DEFERRED:
		snprintf(out, cap,
		         "At its last check (%s) %s would offer version %.63s, but the offer was "
		         "deferred: %.95s.",
		         when, source, d->answer_target, d->answer_reason);
		break;
	default:
		snprintf(
		    out, cap,
		    "At its last check (%s) it got no update: no rule of versions.json offers "
		    "anything to device type \"%.63s\" at version \"%.63s\"%s, or the rule that "
		    "matches names the version it already runs; nor did a pin or a rollout.",
		    when, d->device, d->version, d->mac[0] ? " and its MAC" : "");
		break;
	}
}

json_t *nf_render_decision(const struct nf_device *d, int64_t now_ms)
{
	json_t *o = json_object();
	char sentence[512];

	if (o == NULL)
		return NULL;
	PUT_TEXT(o, "key", d->key);
	PUT_TEXT(o, "type", d->device);
	PUT_TEXT(o, "version", d->version);
	json_object_set_new(o, "client", json_string(nf_client_kind_name(d->client)));
	nf_render_time(o, "last_check", d->last_check_ms);
	json_object_set_new(o, "answer", json_string(nf_answer_kind_name(d->answer)));
	json_object_set_new(o, "answer_rule", rule_value(d->answer_rule));
	json_object_set_new(o, "answer_source", d->answer != NF_ANSWER_NONE
	                                            ? source_value(d->answer_rule)
	                                            : json_null());
	PUT_TEXT(o, "answer_target", d->answer_target);
	PUT_TEXT(o, "answer_reason", d->answer_reason);
	json_object_set_new(o, "state", json_string(nf_update_state_name(d->state)));
	nf_render_time(o, "state_since", d->state_ms);
	PUT_TEXT(o, "target", d->target);
	json_object_set_new(o, "offer_rule", d->target[0] ? rule_value(d->rule) : json_null());
	json_object_set_new(o, "offer_source", d->target[0] ? source_value(d->rule) : json_null());
	explain(d, sentence, sizeof sentence);
	json_object_set_new(o, "explanation", nf_render_string(sentence, sizeof sentence));
	nf_render_time(o, "generated", now_ms);
	return o;
}
