/*
 * rules.c - versions.json: validated, compiled and indexed for matching.
 *
 * The file is an array of {"origin": {...}, "target": {...}} rules; the
 * first rule whose origin matches a check wins (docs/PEERS.md section 3).
 * Loading validates everything once and precomputes each answer, so a check
 * does no JSON work and no allocation: it looks the device up in a hash
 * index, walks that device's rules and the "*" rules together in file order,
 * and returns the first match's ready-made body.
 *
 * A bad file is refused with a message naming the file, line and column
 * (from jansson) or the rule number and field, so that a reload can keep
 * serving the previous rules. What the original PHP server answered loads,
 * with a warning for each loose pattern (see "Legacy values" below).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nofussd.h"

/* Version operators of an origin, in the order they are checked. */
enum { OP_MIN, OP_MAX, OP_GT, OP_GE, OP_LT, OP_LE, OP_EQ, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"min", "max", "gt", "ge", "lt", "le", "eq"};

struct rule {
	const char *device;     /* NULL for "*" */
	size_t device_len;
	const char *op[OP_COUNT]; /* NULL = any */
	const char **macs;      /* NULL = any MAC */
	size_t nmacs;
	const char *build_not;  /* NULL = not set */
	bool skipped;           /* refused by the snapshot build (nf_rules_skip) */
	long next;              /* next rule in the same index chain, or -1 */
};

struct nf_rules {
	json_t *root;           /* owns every string the rules point to */
	struct rule *rules;
	struct nf_target *targets; /* one per rule, same index */
	size_t count;
	long *buckets;          /* heads of chains of rules by device hash */
	size_t nbuckets;        /* a power of two */
	long wildcard;          /* head of the chain of "*" rules */
};

/* Formats "NAME: rule N: message" into err; always returns -1. */
static int rule_error(char *err, size_t errlen, const char *name, size_t rule,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int rule_error(char *err, size_t errlen, const char *name, size_t rule,
                      const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: rule %zu: %s", name, rule, msg);
	return -1;
}

/* Legacy values -------------------------------------------------------------
 *
 * The original NoFUSS server (PHP 7, json_decode() into arrays) answered files
 * that are looser than the ones documented here. Such a file loads here too:
 * each loose pattern is a warning saying what the rule does and what to write
 * instead, and the rule answers as the original did, apart from the documented
 * deviations (max inclusive, "device": "*" for any device, strings compared
 * exactly). CONFIGURATION.md section 3, "Legacy files", lists them. */

/* How the original read an origin value that is not a string: isset() takes
 * null for an absent key; its loose != "*" takes true and the number 0 for
 * "*"; past that the value is used as a string: false as "", a number as
 * PHP's text for it. */
enum legacy_kind {
	LEGACY_NONE,   /* a string, or no key: nothing was converted */
	LEGACY_NULL,   /* null: the key was removed */
	LEGACY_TRUE,   /* true: now "*" */
	LEGACY_ZERO,   /* the number 0: now "*" */
	LEGACY_FALSE,  /* false: now "" */
	LEGACY_NUMBER, /* another number: now PHP's text for it */
	LEGACY_LIST,   /* an array or an object: left for the caller */
};

struct legacy {
	enum legacy_kind kind;
	const char *what; /* "null", "a number"...: what it was, for the warning */
	char text[64];    /* what the value reads as now (a string: the string) */
};

/* Ends the effect in each warning about a pattern the original answered so. */
#define AS_ORIGINAL ", as in the original NoFUSS server; "

/* PHP's text for a JSON number, as (string)$n gives it with the default
 * precision of 14: 7 is "7", 1.0 is "1", 1.10 is "1.1", 1e25 is "1.0E+25". */
static void php_number_text(const json_t *v, char *buf, size_t cap)
{
	char tmp[48], *e;
	const char *exp;

	if (json_is_integer(v)) {
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return;
	}
	snprintf(tmp, sizeof tmp, "%.14G", json_real_value(v));
	e = strchr(tmp, 'E');
	if (e == NULL) {
		snprintf(buf, cap, "%s", tmp);
		return;
	}
	/* C writes 1E+25 and 1.5E-07 where PHP writes 1.0E+25 and 1.5E-7. */
	*e = '\0';
	for (exp = e + 2; exp[0] == '0' && exp[1] != '\0'; exp++)
		;
	snprintf(buf, cap, "%s%sE%c%s", tmp, strchr(tmp, '.') != NULL ? "" : ".0", e[1], exp);
}

/* Reads origin.key as the original did when it is not a string, and writes
 * the result back into origin as a string (or removes the key, for null), so
 * that the caller only ever sees strings. Returns 0, or -1 when out of memory. */
static int legacy_read(json_t *origin, const char *key, struct legacy *lv)
{
	json_t *v = json_object_get(origin, key);

	lv->kind = LEGACY_NONE;
	lv->what = "";
	lv->text[0] = '\0';
	if (v == NULL)
		return 0;
	if (json_is_string(v)) {
		snprintf(lv->text, sizeof lv->text, "%s", json_string_value(v));
		return 0;
	}
	if (json_is_array(v) || json_is_object(v)) {
		lv->kind = LEGACY_LIST;
		lv->what = json_is_array(v) ? "a list" : "an object";
		return 0;
	}
	if (json_is_null(v)) {
		lv->kind = LEGACY_NULL;
		lv->what = "null";
		return json_object_del(origin, key);
	}
	if (json_is_number(v) && json_number_value(v) != 0.0) {
		lv->kind = LEGACY_NUMBER;
		lv->what = "a number";
		php_number_text(v, lv->text, sizeof lv->text);
	} else if (json_is_false(v)) {
		lv->kind = LEGACY_FALSE;
		lv->what = "false";
	} else {
		lv->kind = json_is_true(v) ? LEGACY_TRUE : LEGACY_ZERO;
		lv->what = json_is_true(v) ? "true" : "the number 0";
		strcpy(lv->text, "*");
	}
	return json_object_set_new(origin, key, json_string(lv->text));
}

/* Warns about a legacy value of origin.key: what it was, how it reads now
 * and what the rule does with it (effect), and what to write (advice). */
static void legacy_warn(const char *name, size_t r, const char *key, const struct legacy *lv,
                        const char *effect, const char *advice)
{
	char what[80], how[160];

	if (lv->kind == LEGACY_NONE)
		snprintf(what, sizeof what, "\"%s\"", lv->text);
	else
		snprintf(what, sizeof what, "%s", lv->what);
	if (lv->kind == LEGACY_NONE || lv->kind == LEGACY_LIST)
		snprintf(how, sizeof how, "%s", effect);
	else if (lv->kind == LEGACY_NULL)
		snprintf(how, sizeof how, "ignored (%s)", effect);
	else
		snprintf(how, sizeof how, "read as \"%s\" (%s)", lv->text, effect);
	nf_log(NF_LOG_WARN, "%s: rule %zu: origin.%s is %s: %s" AS_ORIGINAL "%s", name, r, key,
	       what, how, advice);
}

/* Version operator op of the origin into *out: NULL for any version, else
 * the version, "" included (every version is above "", as in PHP). */
static int get_version_field(json_t *origin, int op, const char **out, char *err,
                             size_t errlen, const char *name, size_t r)
{
	const char *key = op_names[op];
	bool above = op == OP_MIN || op == OP_GT || op == OP_GE; /* "" always holds */
	struct legacy lv;
	json_t *v;

	*out = NULL;
	if (legacy_read(origin, key, &lv) != 0)
		return rule_error(err, errlen, name, r, "out of memory");
	v = json_object_get(origin, key);
	if (v != NULL && !json_is_string(v)) /* PHP's version_compare() failed on these */
		return rule_error(err, errlen, name, r, "origin.%s: must be a string", key);
	if (v != NULL && json_string_length(v) > NF_VERSION_MAX)
		return rule_error(err, errlen, name, r, "origin.%s: longer than %d bytes", key,
		                  NF_VERSION_MAX);
	if (v != NULL && strcmp(json_string_value(v), "*") != 0)
		*out = json_string_value(v);

	if (lv.kind == LEGACY_NONE && (*out == NULL || (*out)[0] != '\0'))
		return 0; /* no key, "*" or a version */
	if (*out == NULL)
		legacy_warn(name, r, key, &lv, "any version passes",
		            lv.kind == LEGACY_NULL   ? "remove it"
		            : lv.kind == LEGACY_ZERO ? "write \"*\", or \"0\" in quotes"
		                                     : "write \"*\" or remove it");
	else if ((*out)[0] == '\0' && above)
		legacy_warn(name, r, key, &lv, "any version passes", "remove it");
	else if ((*out)[0] == '\0')
		legacy_warn(name, r, key, &lv, "the rule never matches",
		            "give a version, or remove the rule");
	else
		legacy_warn(name, r, key, &lv, "compared as that version",
		            "write the version in quotes");
	return 0;
}

/* Devices send MACs as upper-case hex pairs with colons (docs/PEERS.md section 2). */
static bool mac_looks_valid(const char *s)
{
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		char c = s[i];
		if (i % 3 == 2 ? c != ':' : !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

/* A rule whose MAC list is empty: it never matches (macs set, nmacs 0). */
static int mac_never(struct rule *rule, char *err, size_t errlen, const char *name, size_t r)
{
	rule->macs = calloc(1, sizeof *rule->macs);
	rule->nmacs = 0;
	return rule->macs == NULL ? rule_error(err, errlen, name, r, "out of memory") : 0;
}

/* The n MACs of mac (a string, or the values of an array or an object) into
 * rule->macs. Values that are not strings never equal a device's MAC and are
 * left out; "*" anywhere means any MAC. */
static int compile_mac_list(json_t *mac, size_t n, struct rule *rule, char *err,
                            size_t errlen, const char *name, size_t r)
{
	void *it = json_is_object(mac) ? json_object_iter(mac) : NULL;
	bool any = false;

	rule->macs = calloc(n, sizeof *rule->macs);
	if (rule->macs == NULL)
		return rule_error(err, errlen, name, r, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *m = json_is_string(mac) ? mac
		            : it != NULL      ? json_object_iter_value(it)
		                              : json_array_get(mac, i);
		const char *s;

		it = it != NULL ? json_object_iter_next(mac, it) : NULL;
		if (!json_is_string(m)) {
			nf_log(NF_LOG_WARN,
			       "%s: rule %zu: origin.mac[%zu] is not a string: left out, as "
			       "no device's MAC equals it (nofussd compares strings exactly); "
			       "write the MAC in quotes",
			       name, r, i);
			continue;
		}
		s = json_string_value(m);
		if (strcmp(s, "*") == 0) {
			any = true;
			nf_log(NF_LOG_WARN,
			       "%s: rule %zu: origin.mac[%zu] is \"*\": any MAC passes, where "
			       "the original NoFUSS server matched no device with \"*\" in a "
			       "list; write \"mac\": \"*\" for any MAC, or remove \"*\"",
			       name, r, i);
		} else if (!mac_looks_valid(s)) {
			nf_log(NF_LOG_WARN,
			       "%s: rule %zu: origin.mac \"%s\" is not upper-case XX:XX:XX:XX:XX:XX "
			       "and will never match a device",
			       name, r, s);
		}
		rule->macs[rule->nmacs++] = s;
	}
	if (any) {
		free(rule->macs);
		rule->macs = NULL;
		rule->nmacs = 0;
	}
	return 0;
}

static int compile_macs(json_t *origin, struct rule *rule, char *err, size_t errlen,
                        const char *name, size_t r)
{
	struct legacy lv;
	json_t *mac;
	size_t n = 1;

	if (legacy_read(origin, "mac", &lv) != 0)
		return rule_error(err, errlen, name, r, "out of memory");
	if (lv.kind == LEGACY_NULL || lv.kind == LEGACY_TRUE || lv.kind == LEGACY_ZERO) {
		legacy_warn(name, r, "mac", &lv, "any MAC passes",
		            lv.kind == LEGACY_NULL ? "remove it" : "write \"*\" or remove it");
		return 0;
	}
	if (lv.kind == LEGACY_FALSE)
		legacy_warn(name, r, "mac", &lv, "the rule never matches",
		            "list MACs in quotes, or remove the rule");
	if (lv.kind == LEGACY_NUMBER) /* PHP 7 found "5C:CF:..." == 5 */
		nf_log(NF_LOG_WARN,
		       "%s: rule %zu: origin.mac is a number: read as \"%s\", which no device's "
		       "MAC equals (nofussd compares strings exactly), so the rule never matches; "
		       "write the MAC in quotes",
		       name, r, lv.text);
	if (lv.kind == LEGACY_FALSE || lv.kind == LEGACY_NUMBER)
		return mac_never(rule, err, errlen, name, r);
	mac = json_object_get(origin, "mac");
	if (mac == NULL || (json_is_string(mac) && strcmp(json_string_value(mac), "*") == 0))
		return 0;
	if (!json_is_string(mac)) {
		n = json_is_array(mac) ? json_array_size(mac) : json_object_size(mac);
		if (n == 0) {
			nf_log(NF_LOG_WARN,
			       "%s: rule %zu: origin.mac is %s: the rule never matches" AS_ORIGINAL
			       "list MACs, write \"*\" for any MAC, or remove the rule",
			       name, r, json_is_array(mac) ? "[]" : "{}");
			return mac_never(rule, err, errlen, name, r);
		}
		if (n > NF_MAX_MACS)
			return rule_error(err, errlen, name, r, "origin.mac: more than %d entries",
			                  NF_MAX_MACS);
		if (json_is_object(mac))
			nf_log(NF_LOG_WARN,
			       "%s: rule %zu: origin.mac is an object: its values are the "
			       "MACs" AS_ORIGINAL "write them as a list",
			       name, r);
	}
	return compile_mac_list(mac, n, rule, err, errlen, name, r);
}

/* origin.build_not: the build a check must not report, or NULL. */
static int compile_build_not(json_t *origin, struct rule *rule, char *err, size_t errlen,
                             const char *name, size_t r)
{
	struct legacy lv;
	json_t *v;

	/* A list equals no build: only a non-empty build is needed, as with "". */
	if (legacy_read(origin, "build_not", &lv) != 0 ||
	    (lv.kind == LEGACY_LIST &&
	     json_object_set_new(origin, "build_not", json_string("")) != 0))
		return rule_error(err, errlen, name, r, "out of memory");
	v = json_object_get(origin, "build_not");
	rule->build_not = v != NULL ? json_string_value(v) : NULL;
	if (rule->build_not != NULL && strcmp(rule->build_not, "*") == 0)
		rule->build_not = NULL;

	if (lv.kind == LEGACY_NONE && (v == NULL || rule->build_not != NULL))
		return 0; /* no key, or a build */
	if (rule->build_not == NULL)
		legacy_warn(name, r, "build_not", &lv,
		            "any build passes, and path-form checks too",
		            "remove it, or give the build to exclude");
	else if (lv.kind == LEGACY_NUMBER)
		legacy_warn(name, r, "build_not", &lv, "that build is excluded",
		            "write the build in quotes");
	else
		legacy_warn(name, r, "build_not", &lv, "any non-empty build passes",
		            "write the build to exclude in quotes");
	return 0;
}

/* Warns when no version can pass the rule's bounds (min above max, gt equal
 * to lt, eq outside them...): served as written, as the original did, but
 * the rule never matches, which is most likely a typo. A lower bound above
 * an upper one, or equal to it where either is strict, leaves no version. */
static void warn_empty_range(const struct rule *rule, const char *name, size_t r)
{
	static const int lows[] = {OP_MIN, OP_GE, OP_GT, OP_EQ};
	static const int highs[] = {OP_MAX, OP_LE, OP_LT, OP_EQ};

	for (size_t i = 0; i < sizeof lows / sizeof lows[0]; i++) {
		const char *low = rule->op[lows[i]];
		for (size_t k = 0; low != NULL && low[0] != '\0' && k < sizeof highs / sizeof highs[0];
		     k++) {
			const char *high = rule->op[highs[k]];
			int c;
			if (high == NULL || high[0] == '\0' || lows[i] == highs[k])
				continue;
			c = nf_vercmp(low, high);
			if (c > 0 || (c == 0 && (lows[i] == OP_GT || highs[k] == OP_LT))) {
				nf_log(NF_LOG_WARN,
				       "%s: rule %zu: origin: no version is both %s \"%s\" and %s "
				       "\"%s\", so the rule never matches; check its bounds",
				       name, r, op_names[lows[i]], low, op_names[highs[k]], high);
				return;
			}
		}
	}
}

static int compile_origin(json_t *origin, struct rule *rule, char *err, size_t errlen,
                          const char *name, size_t r)
{
	const char *key;
	json_t *value, *device;

	if (origin == NULL)
		return rule_error(err, errlen, name, r, "origin: missing");
	if (!json_is_object(origin))
		return rule_error(err, errlen, name, r, "origin: must be an object");

	/* The original ignored unknown keys, so they are ignored here too; the
	 * warning matters, as a misspelt condition widens the rule. */
	json_object_foreach(origin, key, value) {
		bool known = strcmp(key, "device") == 0 || strcmp(key, "mac") == 0 ||
		             strcmp(key, "build_not") == 0;
		for (int i = 0; i < OP_COUNT && !known; i++)
			known = strcmp(key, op_names[i]) == 0;
		if (!known)
			nf_log(NF_LOG_WARN,
			       "%s: rule %zu: origin.%s: unknown key ignored, as in the original "
			       "NoFUSS server, so it restricts nothing; check its spelling (keys: "
			       "device, mac, min, max, gt, ge, lt, le, eq, build_not)",
			       name, r, key);
	}

	device = json_object_get(origin, "device");
	if (device == NULL)
		return rule_error(err, errlen, name, r, "origin.device: missing");
	if (!json_is_string(device))
		return rule_error(err, errlen, name, r, "origin.device: must be a string");
	if (json_string_length(device) == 0)
		return rule_error(err, errlen, name, r, "origin.device: must not be empty");
	if (json_string_length(device) > NF_MAX_FIELD)
		return rule_error(err, errlen, name, r, "origin.device: longer than %d bytes",
		                  NF_MAX_FIELD);
	if (strcmp(json_string_value(device), "*") != 0) {
		rule->device = json_string_value(device);
		rule->device_len = json_string_length(device);
	}

	for (int i = 0; i < OP_COUNT; i++)
		if (get_version_field(origin, i, &rule->op[i], err, errlen, name, r) != 0)
			return -1;
	warn_empty_range(rule, name, r);
	if (compile_build_not(origin, rule, err, errlen, name, r) != 0)
		return -1;
	return compile_macs(origin, rule, err, errlen, name, r);
}

/* PHP's text for a scalar in a string ("UPDATE: " . $v): a number as
 * php_number_text() gives it, true "1", null and false "" (and "" for the
 * rest: PHP printed "Array" there). */
static void php_scalar_text(const json_t *v, char *buf, size_t cap)
{
	if (json_is_number(v))
		php_number_text(v, buf, cap);
	else
		snprintf(buf, cap, "%s", json_is_true(v) ? "1" : "");
}

/* Sets paths to the target's version, firmware and spiffs where they are
 * strings, and warns about what the original answered as it was but a file
 * should not say. */
static void target_fields(json_t *target, const char *paths[3], const char *name, size_t r)
{
	static const char *const keys[] = {"version", "firmware", "spiffs"};
	static const char *const advice[] = {"write the version in quotes",
	                                     "write the path in quotes",
	                                     "write the path in quotes, or \"\" for none"};

	for (int i = 0; i < 3; i++) {
		json_t *v = json_object_get(target, keys[i]);
		if (v != NULL && json_is_string(v))
			paths[i] = json_string_value(v);
		else if (v != NULL)
			nf_log(NF_LOG_WARN,
			       "%s: rule %zu: target.%s is not a string: sent as it "
			       "is" AS_ORIGINAL "%s",
			       name, r, keys[i], advice[i]);
	}
	if (json_object_get(target, "version") == NULL)
		nf_log(NF_LOG_WARN,
		       "%s: rule %zu: target has no version: answered as it is, as in the "
		       "original NoFUSS server, with an empty update: in the check log; add the "
		       "version it offers",
		       name, r);
	else if (paths[0] != NULL && paths[0][0] == '\0')
		nf_log(NF_LOG_WARN,
		       "%s: rule %zu: target.version is \"\": answered as it is, as in the "
		       "original NoFUSS server, with an empty update: in the check log; give the "
		       "version it offers",
		       name, r);
	if ((paths[1] == NULL || paths[1][0] == '\0') && (paths[2] == NULL || paths[2][0] == '\0'))
		nf_log(NF_LOG_WARN, "%s: rule %zu: target offers neither firmware nor spiffs", name, r);
}

/* Values the device core's answer parser refuses (core/answer.c: a flat
 * object; version, firmware and spiffs strings, other keys a string, a
 * number, true, false or null): the whole answer is then PARSE_ERROR on
 * every libnofuss device, while the original client (ArduinoJson) reads it.
 * Served as written, with a warning that says who refuses it (non-string
 * version, firmware and spiffs are warned about by target_fields). */
static void warn_flat_answer(json_t *target, const char *name, size_t r)
{
	const char *key;
	json_t *v;

	json_object_foreach(target, key, v) {
		bool known = strcmp(key, "version") == 0 || strcmp(key, "firmware") == 0 ||
		             strcmp(key, "spiffs") == 0;
		if (!known && (json_is_object(v) || json_is_array(v)))
			nf_log(NF_LOG_WARN,
			       "%s: rule %zu: target.%s is %s: libnofuss devices (the nofuss ESP8266 "
			       "library, nofuss device and fleet) refuse the whole answer as "
			       "PARSE_ERROR; the original NoFUSS client reads it; write %s",
			       name, r, key,
			       json_is_object(v) ? "an object" : "a list",
			       "a string, a number, true, false or null");
	}
}

/* out->version, the target's version for the check log: as written, "" when
 * there is none (the original logged nothing then), PHP's text for a number.
 * That text replaces the number in the target, whose body is made already.
 * Returns 0, or -1 when out of memory. */
static int target_log_version(json_t *target, struct nf_target *out)
{
	json_t *v = json_object_get(target, "version");
	char text[64];

	if (v == NULL) {
		out->version = "";
		return 0;
	}
	if (!json_is_string(v)) {
		php_scalar_text(v, text, sizeof text);
		if (json_object_set_new(target, "version", json_string(text)) != 0)
			return -1;
		v = json_object_get(target, "version");
	}
	out->version = json_string_value(v);
	return 0;
}

static int compile_target(json_t *target, struct nf_target *out, char *err, size_t errlen,
                          const char *name, size_t r)
{
	const char *paths[3] = {NULL, NULL, NULL};
	bool empty;
	char *body;

	if (target == NULL)
		return rule_error(err, errlen, name, r, "target: missing");
	if (!json_is_object(target))
		return rule_error(err, errlen, name, r, "target: must be an object");
	empty = json_object_size(target) == 0;
	if (empty) /* PHP encodes an empty array as [], which no client reads */
		nf_log(NF_LOG_WARN,
		       "%s: rule %zu: target is {}: the rule answers {} (no update), and the rules "
		       "after it are not tried for the checks it matches; the original NoFUSS "
		       "server sent [], which NoFUSS clients reject; remove the rule, or give the "
		       "target a version and an image",
		       name, r);
	else
		target_fields(target, paths, name, r);
	if (!empty)
		warn_flat_answer(target, name, r);

	/* Clients expect "spiffs" in every answer, "" when there is none
	 * (docs/PEERS.md section 1); it goes after the target's own keys. */
	if (!empty && json_object_get(target, "spiffs") == NULL &&
	    json_object_set_new(target, "spiffs", json_string("")) != 0)
		return rule_error(err, errlen, name, r, "out of memory");

	/* Compact, keys in file order, "/" not escaped: the body clients expect. */
	body = json_dumps(target, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (body == NULL)
		return rule_error(err, errlen, name, r, "target: cannot be encoded");
	out->body = body;
	out->body_len = strlen(body);
	out->version = NULL; /* an empty target offers nothing: "none" */
	if (!empty && target_log_version(target, out) != 0)
		return rule_error(err, errlen, name, r, "out of memory");
	if (out->body_len > NF_MAX_ANSWER)
		return rule_error(err, errlen, name, r, "target: answer is %zu bytes, limit %d",
		                  out->body_len, NF_MAX_ANSWER);
	if (out->body_len > NF_ANSWER_WARN)
		nf_log(NF_LOG_WARN,
		       "%s: rule %zu: answer is %zu bytes; NoFUSS clients parse it into 500 bytes",
		       name, r, out->body_len);
	return 0;
}

static int build_index(struct nf_rules *rs)
{
	long *tail;
	long wild_tail = -1;

	rs->nbuckets = 16;
	while (rs->nbuckets < rs->count * 2)
		rs->nbuckets *= 2;
	rs->buckets = malloc(rs->nbuckets * sizeof *rs->buckets);
	tail = malloc(rs->nbuckets * sizeof *tail);
	if (rs->buckets == NULL || tail == NULL) {
		free(tail);
		return -1;
	}
	for (size_t b = 0; b < rs->nbuckets; b++)
		rs->buckets[b] = tail[b] = -1;
	rs->wildcard = -1;

	/* Append in file order so every chain is sorted by rule number. */
	for (size_t i = 0; i < rs->count; i++) {
		struct rule *rule = &rs->rules[i];
		long *head, *last;
		if (rule->device == NULL) {
			head = &rs->wildcard;
			last = &wild_tail;
		} else {
			size_t b = nf_hash(rule->device, rule->device_len) & (rs->nbuckets - 1);
			head = &rs->buckets[b];
			last = &tail[b];
		}
		rule->next = -1;
		if (*last < 0)
			*head = (long)i;
		else
			rs->rules[*last].next = (long)i;
		*last = (long)i;
	}
	free(tail);
	return 0;
}

struct nf_rules *nf_rules_parse(const char *text, size_t len, const char *name, char *err,
                                size_t errlen)
{
	struct nf_rules *rs = NULL;
	json_error_t jerr;
	json_t *root;
	size_t i;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL && json_error_code(&jerr) == json_error_duplicate_key) {
		/* PHP's json_decode, which the original server used, keeps the last
		 * of a key given twice: so does nofussd, saying where (the first). */
		nf_log(NF_LOG_WARN,
		       "%s:%d:%d: %s: the last value is used, as in the original NoFUSS server; "
		       "remove the others",
		       name, jerr.line, jerr.column, jerr.text);
		root = json_loadb(text, len, 0, &jerr);
	}
	if (root == NULL) {
		snprintf(err, errlen, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_array(root)) {
		snprintf(err, errlen, "%s: must be an array of rules", name);
		goto fail;
	}
	if (json_array_size(root) > NF_MAX_RULES) {
		snprintf(err, errlen, "%s: more than %d rules", name, NF_MAX_RULES);
		goto fail;
	}

	rs = calloc(1, sizeof *rs);
	if (rs == NULL)
		goto oom;
	rs->root = root;
	rs->count = json_array_size(root);
	rs->rules = calloc(rs->count + 1, sizeof *rs->rules);
	rs->targets = calloc(rs->count + 1, sizeof *rs->targets);
	if (rs->rules == NULL || rs->targets == NULL)
		goto oom;

	for (i = 0; i < rs->count; i++) {
		json_t *item = json_array_get(root, i);
		const char *key;
		json_t *value;
		size_t r = i + 1; /* rules are numbered from 1 in messages */

		if (!json_is_object(item)) {
			rule_error(err, errlen, name, r, "must be an object with origin and target");
			goto fail;
		}
		json_object_foreach(item, key, value) {
			if (strcmp(key, "origin") != 0 && strcmp(key, "target") != 0)
				nf_log(NF_LOG_WARN, "%s: rule %zu: %s: unknown key ignored", name, r, key);
		}
		if (compile_origin(json_object_get(item, "origin"), &rs->rules[i], err, errlen, name,
		                   r) != 0 ||
		    compile_target(json_object_get(item, "target"), &rs->targets[i], err, errlen,
		                   name, r) != 0)
			goto fail;
	}
	if (build_index(rs) != 0)
		goto oom;
	return rs;

oom:
	snprintf(err, errlen, "%s: out of memory", name);
fail:
	if (rs != NULL)
		nf_rules_free(rs);
	else
		json_decref(root);
	return NULL;
}

struct nf_rules *nf_rules_load(const char *path, char *err, size_t errlen)
{
	struct nf_rules *rs = NULL;
	char *text = NULL;
	struct stat st;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto done;
	}
	if (st.st_size > (off_t)NF_MAX_RULES_FILE) {
		snprintf(err, errlen, "%s: larger than %u bytes", path, NF_MAX_RULES_FILE);
		goto done;
	}
	text = malloc((size_t)st.st_size + 1);
	if (text == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto done;
	}
	/* Read what is there now; a writer may still be growing the file, in
	 * which case the parse fails and the next change triggers a new load. */
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	rs = nf_rules_parse(text, got, path, err, errlen);
done:
	free(text);
	close(fd);
	return rs;
}

void nf_rules_free(struct nf_rules *rs)
{
	if (rs == NULL)
		return;
	for (size_t i = 0; i < rs->count; i++) {
		free(rs->rules[i].macs);
		free((char *)rs->targets[i].body);
	}
	free(rs->rules);
	free(rs->targets);
	free(rs->buckets);
	json_decref(rs->root);
	free(rs);
}

size_t nf_rules_count(const struct nf_rules *rs)
{
	return rs->count;
}

const struct nf_target *nf_rules_target(const struct nf_rules *rs, size_t i)
{
	return i < rs->count ? &rs->targets[i] : NULL;
}

const char *nf_rules_image(const struct nf_rules *rs, size_t i, const char *key)
{
	json_t *target = i < rs->count ? json_object_get(json_array_get(rs->root, i), "target") : NULL;
	const char *path = json_string_value(json_object_get(target, key));

	return path != NULL && path[0] != '\0' ? path : NULL;
}

const char *nf_rules_device(const struct nf_rules *rs, size_t i, size_t *len)
{
	*len = i < rs->count ? rs->rules[i].device_len : 0;
	return i < rs->count ? rs->rules[i].device : NULL;
}

const char *const *nf_rules_macs(const struct nf_rules *rs, size_t i, size_t *n)
{
	*n = i < rs->count ? rs->rules[i].nmacs : 0;
	return i < rs->count ? rs->rules[i].macs : NULL;
}

void nf_rules_skip(struct nf_rules *rs, size_t i)
{
	if (i < rs->count)
		rs->rules[i].skipped = true;
}

bool nf_rules_skipped(const struct nf_rules *rs, size_t i)
{
	return i < rs->count && rs->rules[i].skipped;
}

static bool ops_match(const struct rule *rule, const char *version)
{
	for (int i = 0; i < OP_COUNT; i++) {
		int c;
		bool ok;
		if (rule->op[i] == NULL)
			continue;
		c = nf_vercmp(version, rule->op[i]);
		switch (i) {
		case OP_MIN: ok = c >= 0; break; /* min and max are inclusive */
		case OP_MAX: ok = c <= 0; break;
		case OP_GT:  ok = c > 0; break;
		case OP_GE:  ok = c >= 0; break;
		case OP_LT:  ok = c < 0; break;
		case OP_LE:  ok = c <= 0; break;
		default:     ok = c == 0; break;
		}
		if (!ok)
			return false;
	}
	return true;
}

static bool rule_matches(const struct rule *rule, const struct nf_query *q)
{
	if (rule->skipped)
		return false;
	if (rule->macs != NULL) {
		bool found = false;
		if (q->mac == NULL) /* path-form checks carry no MAC */
			return false;
		for (size_t i = 0; i < rule->nmacs && !found; i++)
			found = strcmp(rule->macs[i], q->mac) == 0;
		if (!found)
			return false;
	}
	if (rule->build_not != NULL &&
	    (q->build == NULL || q->build[0] == '\0' || strcmp(q->build, rule->build_not) == 0))
		return false;
	return ops_match(rule, q->version);
}

long nf_rules_match(const struct nf_rules *rs, const struct nf_query *q)
{
	size_t b = nf_hash(q->device, q->device_len) & (rs->nbuckets - 1);
	long i = rs->buckets[b], w = rs->wildcard;

	/* Merge this device's chain with the "*" chain, both in file order. */
	while (i >= 0 || w >= 0) {
		long k;
		if (w < 0 || (i >= 0 && i < w)) {
			k = i;
			i = rs->rules[i].next;
			if (rs->rules[k].device_len != q->device_len ||
			    memcmp(rs->rules[k].device, q->device, q->device_len) != 0)
				continue;
		} else {
			k = w;
			w = rs->rules[w].next;
		}
		if (rule_matches(&rs->rules[k], q))
			return k;
	}
	return -1;
}
