/*
 * fuzz_api_body.c - libFuzzer harness for the admin API's JSON body checker
 * (server/admin/body.c): any bytes as the body of a write, against a table
 * with every field type. An accepted body always holds only the table's
 * fields, each of its type and within its bounds; a refused one always
 * names a field and says why. An accepted "window" then goes through the
 * rollout window's parser (nf_rollout_window_parse), as POST
 * /api/v1/rollouts does: accepted, it is two distinct minutes of the day
 * that write back as the text read; refused, it says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct nf_body_field fields[] = {
    {"release", NF_BODY_INT, true, 1, 1000000, 0, 0, 0, 0},
    {"phases", NF_BODY_INTS, false, 1, 100, 0, 0, 1, 10},
    {"tags", NF_BODY_STRINGS, false, 0, 0, 1, 31, 0, 16},
    {"threshold", NF_BODY_NUMBER, false, 0, 100, 0, 0, 0, 0},
    {"approval", NF_BODY_BOOL, false, 0, 0, 0, 0, 0, 0},
    {"window", NF_BODY_STRING, false, 0, 0, 0, NF_ROLLOUT_WINDOW_LEN - 1, 0, 0},
    {"rate", NF_BODY_INT, false, 0, NF_ROLLOUT_MAX_RATE, 0, 0, 0, 0},
    {NULL, 0, false, 0, 0, 0, 0, 0, 0},
};

static const struct nf_body_field *find(const char *key)
{
	for (const struct nf_body_field *f = fields; f->name != NULL; f++)
		if (strcmp(f->name, key) == 0)
			return f;
	return NULL;
}

static void check_value(const struct nf_body_field *f, json_t *v)
{
	switch (f->type) {
	case NF_BODY_INT:
	case NF_BODY_INTS:
		if (!json_is_integer(v) || json_integer_value(v) < f->min ||
		    json_integer_value(v) > f->max)
			abort();
		break;
	case NF_BODY_NUMBER:
		if (!json_is_number(v) || json_number_value(v) < f->min ||
		    json_number_value(v) > f->max)
			abort();
		break;
	case NF_BODY_BOOL:
		if (!json_is_boolean(v))
			abort();
		break;
	case NF_BODY_STRING:
	case NF_BODY_STRINGS:
		if (!json_is_string(v) || json_string_length(v) > f->max_len ||
		    json_string_length(v) < f->min_len ||
		    strlen(json_string_value(v)) != json_string_length(v))
			abort();
		break;
	}
}

static void check_window(const char *text)
{
	char err[256] = "", back[NF_ROLLOUT_WINDOW_LEN];
	int start, end;

	if (nf_rollout_window_parse(text, &start, &end, err, sizeof err) != 0) {
		if (err[0] == '\0' || start != -1 || end != -1)
			abort();
		return;
	}
	nf_rollout_window_format(start, end, back);
	if (text == NULL || text[0] == '\0') {
		if (start != -1 || end != -1 || back[0] != '\0')
			abort();
		return;
	}
	if (start < 0 || start >= 1440 || end < 0 || end >= 1440 || start == end ||
	    strcmp(back, text) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char field[NF_ADMIN_MAX_FIELD], err[1024] = "";
	json_t *out, *v, *e;
	const char *key;
	size_t i;

	if (nf_admin_body_parse((const char *)data, size, fields, &out, field, err, sizeof err) !=
	    0) {
		if (out != NULL || err[0] == '\0' || field[0] == '\0')
			abort();
		return 0;
	}
	if (!json_is_object(out) || json_object_get(out, "release") == NULL)
		abort();
	json_object_foreach(out, key, v)
	{
		const struct nf_body_field *f = find(key);
		if (f == NULL)
			abort();
		if (f->type == NF_BODY_INTS || f->type == NF_BODY_STRINGS) {
			if (!json_is_array(v) || json_array_size(v) < f->min_count ||
			    json_array_size(v) > f->max_count)
				abort();
			json_array_foreach(v, i, e) check_value(f, e);
		} else {
			check_value(f, v);
		}
	}
	check_window(json_string_value(json_object_get(out, "window")));
	json_decref(out);
	return 0;
}
