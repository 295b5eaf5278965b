/*
 * fuzz_api_body.c - libFuzzer harness for the admin API's JSON body checker
 * (server/admin/body.c): any bytes as the body of a write, against a table
 * with every field type. An accepted body always holds only the table's
 * fields, each of its type and within its bounds; a refused one always
 * names a field and says why.
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
    {"window", NF_BODY_STRING, false, 0, 0, 1, 11, 0, 0},
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
	json_decref(out);
	return 0;
}
