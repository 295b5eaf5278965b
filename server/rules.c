/*
 * rules.c - versions.json: validated, compiled and indexed for matching.
 *
 * The file is an array of {"origin": {...}, "target": {...}} rules; the
 * first rule whose origin matches a check wins (PROTOCOLS.md section 3).
 * Loading validates everything once and precomputes each answer, so a check
 * does no JSON work and no allocation: it looks the device up in a hash
 * index, walks that device's rules and the "*" rules together in file order,
 * and returns the first match's ready-made body.
 *
 * A bad file is refused with a message naming the file, line and column
 * (from jansson) or the rule number and field, so that a reload can keep
 * serving the previous rules.
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

/* A version-like string: present, a string, not empty, not too long. */
static int get_version_field(json_t *obj, const char *key, const char **out, char *err,
                             size_t errlen, const char *name, size_t r, const char *where)
{
	json_t *v = json_object_get(obj, key);
	size_t len;

	*out = NULL;
	if (v == NULL)
		return 0;
	if (!json_is_string(v))
		return rule_error(err, errlen, name, r, "%s.%s: must be a string", where, key);
	len = json_string_length(v);
	if (len == 0)
		return rule_error(err, errlen, name, r, "%s.%s: must not be empty", where, key);
	if (len > NF_VERSION_MAX)
		return rule_error(err, errlen, name, r, "%s.%s: longer than %d bytes", where, key,
		                  NF_VERSION_MAX);
	*out = json_string_value(v);
	return 0;
}

/* Devices send MACs as upper-case hex pairs with colons (PROTOCOLS.md 2). */
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

static int compile_macs(json_t *mac, struct rule *rule, char *err, size_t errlen,
                        const char *name, size_t r)
{
	size_t n, i;
	bool any = false;

	if (mac == NULL)
		return 0;
	if (json_is_string(mac)) {
		if (strcmp(json_string_value(mac), "*") == 0)
			return 0;
		n = 1;
	} else if (json_is_array(mac)) {
		n = json_array_size(mac);
		if (n == 0)
			return rule_error(err, errlen, name, r, "origin.mac: empty array never matches");
		if (n > NF_MAX_MACS)
			return rule_error(err, errlen, name, r, "origin.mac: more than %d entries",
			                  NF_MAX_MACS);
	} else {
		return rule_error(err, errlen, name, r,
		                  "origin.mac: must be a string or an array of strings");
	}

	rule->macs = calloc(n, sizeof *rule->macs);
	if (rule->macs == NULL)
		return rule_error(err, errlen, name, r, "out of memory");
	for (i = 0; i < n; i++) {
		json_t *m = json_is_string(mac) ? mac : json_array_get(mac, i);
		const char *s;
		if (!json_is_string(m))
			return rule_error(err, errlen, name, r, "origin.mac[%zu]: must be a string", i);
		s = json_string_value(m);
		if (strcmp(s, "*") == 0)
			any = true;
		else if (!mac_looks_valid(s))
			nf_log(NF_LOG_WARN,
			       "%s: rule %zu: origin.mac \"%s\" is not upper-case XX:XX:XX:XX:XX:XX "
			       "and will never match a device",
			       name, r, s);
		rule->macs[i] = s;
	}
	rule->nmacs = n;
	if (any) { /* "*" anywhere in the list means any MAC */
		free(rule->macs);
		rule->macs = NULL;
		rule->nmacs = 0;
	}
	return 0;
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

	/* An unknown key is an error, not a warning: a misspelt condition would
	 * otherwise silently widen the rule to devices it was meant to exclude. */
	json_object_foreach(origin, key, value) {
		bool known = strcmp(key, "device") == 0 || strcmp(key, "mac") == 0 ||
		             strcmp(key, "build_not") == 0;
		for (int i = 0; i < OP_COUNT && !known; i++)
			known = strcmp(key, op_names[i]) == 0;
		if (!known)
			return rule_error(err, errlen, name, r, "origin.%s: unknown key", key);
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

	for (int i = 0; i < OP_COUNT; i++) {
		if (get_version_field(origin, op_names[i], &rule->op[i], err, errlen, name, r,
		                      "origin") != 0)
			return -1;
		if (rule->op[i] != NULL && strcmp(rule->op[i], "*") == 0)
			rule->op[i] = NULL;
	}
	value = json_object_get(origin, "build_not");
	if (value != NULL) {
		if (!json_is_string(value))
			return rule_error(err, errlen, name, r, "origin.build_not: must be a string");
		rule->build_not = json_string_value(value);
	}
	return compile_macs(json_object_get(origin, "mac"), rule, err, errlen, name, r);
}

static int compile_target(json_t *target, struct nf_target *out, char *err, size_t errlen,
                          const char *name, size_t r)
{
	static const char *const keys[] = {"version", "firmware", "spiffs"};
	const char *paths[3] = {NULL, NULL, NULL};
	char *body;

	if (target == NULL)
		return rule_error(err, errlen, name, r, "target: missing");
	if (!json_is_object(target))
		return rule_error(err, errlen, name, r, "target: must be an object");
	for (int i = 0; i < 3; i++) {
		json_t *v = json_object_get(target, keys[i]);
		if (v == NULL)
			continue;
		if (!json_is_string(v))
			return rule_error(err, errlen, name, r, "target.%s: must be a string", keys[i]);
		paths[i] = json_string_value(v);
	}
	if (paths[0] == NULL)
		return rule_error(err, errlen, name, r, "target.version: missing");
	if (paths[0][0] == '\0')
		return rule_error(err, errlen, name, r, "target.version: must not be empty");
	if ((paths[1] == NULL || paths[1][0] == '\0') && (paths[2] == NULL || paths[2][0] == '\0'))
		nf_log(NF_LOG_WARN, "%s: rule %zu: target offers neither firmware nor spiffs", name, r);

	/* Clients expect "spiffs" in every answer, "" when there is none
	 * (PROTOCOLS.md section 1); it goes after the target's own keys. */
	if (paths[2] == NULL && json_object_set_new(target, "spiffs", json_string("")) != 0)
		return rule_error(err, errlen, name, r, "out of memory");

	/* Compact, keys in file order, "/" not escaped: the body clients expect. */
	body = json_dumps(target, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (body == NULL)
		return rule_error(err, errlen, name, r, "target: cannot be encoded");
	out->body = body;
	out->body_len = strlen(body);
	out->version = json_string_value(json_object_get(target, "version"));
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
