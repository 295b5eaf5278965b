/*
 * body.c - the JSON bodies of the admin API's writes, outside input
 * (issue 10, "Bad input"): bounded in bytes (NF_ADMIN_MAX_BODY) and depth,
 * parsed by jansson with duplicate keys refused, then checked against the
 * endpoint's table of fields: an object, no field the table does not name,
 * each field of its type (integers never as 1.5 or "1"), within its range
 * (an integer's value, a string's length, an array's count, each element),
 * the required ones present. The first failure is reported with the
 * field's name (elements as "phases[2]") and what was expected, for a 400
 * that names it. Handlers then read the checked tree knowing every type.
 *
 * Pure: no I/O. Fuzzed by tests/fuzz/fuzz_api_body.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "admin.h"

static int fail(char *field, const char *name, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(char *field, const char *name, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	snprintf(field, NF_ADMIN_MAX_FIELD, "%s", name);
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *type_name(enum nf_body_type t)
{
	switch (t) {
	case NF_BODY_STRING: return "a string";
	case NF_BODY_INT: return "an integer";
	case NF_BODY_NUMBER: return "a number";
	case NF_BODY_BOOL: return "true or false";
	case NF_BODY_STRINGS: return "an array of strings";
	case NF_BODY_INTS: return "an array of integers";
	}
	return "?";
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "?";
}

/* One scalar v against f (name: how errors call it). */
static int check_scalar(const struct nf_body_field *f, enum nf_body_type t, const json_t *v,
                        const char *name, char *field, char *err, size_t errlen)
{
	switch (t) {
	case NF_BODY_STRING:
	case NF_BODY_STRINGS: {
		if (!json_is_string(v))
			return fail(field, name, err, errlen, "%s must be a string, not %s", name,
			            json_type_name(v));
		size_t len = json_string_length(v);
		if (len < f->min_len || len > f->max_len || strlen(json_string_value(v)) != len)
			return fail(field, name, err, errlen,
			            "%s must be %zu to %zu bytes of text without NUL, not %zu", name,
			            f->min_len, f->max_len, len);
		return 0;
	}
	case NF_BODY_INT:
	case NF_BODY_INTS:
		if (!json_is_integer(v))
			return fail(field, name, err, errlen, "%s must be an integer, not %s", name,
			            json_type_name(v));
		if (json_integer_value(v) < f->min || json_integer_value(v) > f->max)
			return fail(field, name, err, errlen, "%s must be from %lld to %lld, not %lld",
			            name, f->min, f->max, (long long)json_integer_value(v));
		return 0;
	case NF_BODY_NUMBER:
		if (!json_is_number(v))
			return fail(field, name, err, errlen, "%s must be a number, not %s", name,
			            json_type_name(v));
		if (json_number_value(v) < (double)f->min || json_number_value(v) > (double)f->max)
			return fail(field, name, err, errlen, "%s must be from %lld to %lld, not %g",
			            name, f->min, f->max, json_number_value(v));
		return 0;
	case NF_BODY_BOOL:
		if (!json_is_boolean(v))
			return fail(field, name, err, errlen, "%s must be true or false, not %s", name,
			            json_type_name(v));
		return 0;
	}
	return fail(field, name, err, errlen, "%s: internal: unknown type", name);
}

static int check_field(const struct nf_body_field *f, const json_t *v, char *field, char *err,
                       size_t errlen)
{
	char name[NF_ADMIN_MAX_FIELD];
	size_t i;
	json_t *e;

	if (f->type != NF_BODY_STRINGS && f->type != NF_BODY_INTS)
		return check_scalar(f, f->type, v, f->name, field, err, errlen);
	if (!json_is_array(v))
		return fail(field, f->name, err, errlen, "%s must be %s, not %s", f->name,
		            type_name(f->type), json_type_name(v));
	if (json_array_size(v) < f->min_count || json_array_size(v) > f->max_count)
		return fail(field, f->name, err, errlen, "%s must have %zu to %zu elements, not %zu",
		            f->name, f->min_count, f->max_count, json_array_size(v));
	json_array_foreach(v, i, e)
	{
		snprintf(name, sizeof name, "%.24s[%zu]", f->name, i);
		if (check_scalar(f, f->type, e, name, field, err, errlen) != 0)
			return -1;
	}
	return 0;
}

int nf_admin_body_parse(const char *text, size_t len, const struct nf_body_field *fields,
                        struct json_t **out, char field[NF_ADMIN_MAX_FIELD], char *err,
                        size_t errlen)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *key;

	*out = NULL;
	field[0] = '\0';
	if (len > NF_ADMIN_MAX_BODY)
		return fail(field, "body", err, errlen, "the body is %zu bytes, more than %d", len,
		            NF_ADMIN_MAX_BODY);
	if (len == 0)
		return fail(field, "body", err, errlen,
		            "the body is empty: send a JSON object (Content-Type: application/json)");
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return fail(field, "body", err, errlen, "the body is not JSON: %s at line %d column %d",
		            jerr.text, jerr.line, jerr.column);
	if (!json_is_object(root)) {
		fail(field, "body", err, errlen, "the body must be a JSON object, not %s",
		     json_type_name(root));
		json_decref(root);
		return -1;
	}
	json_object_foreach(root, key, v)
	{
		const struct nf_body_field *f = fields;
		while (f->name != NULL && strcmp(f->name, key) != 0)
			f++;
		if (f->name == NULL) {
			char known[256] = "";
			for (const struct nf_body_field *k = fields; k->name != NULL; k++)
				snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
				         k == fields ? "" : ", ", k->name);
			/* An empty name is named as written, "". */
			fail(field, key[0] != '\0' ? key : "\"\"", err, errlen,
			     "unknown field \"%.40s\": the fields are %s", key, known);
			json_decref(root);
			return -1;
		}
		if (check_field(f, v, field, err, errlen) != 0) {
			json_decref(root);
			return -1;
		}
	}
	for (const struct nf_body_field *f = fields; f->name != NULL; f++)
		if (f->required && json_object_get(root, f->name) == NULL) {
			fail(field, f->name, err, errlen, "%s is missing (%s)", f->name,
			     type_name(f->type));
			json_decref(root);
			return -1;
		}
	*out = root;
	return 0;
}
