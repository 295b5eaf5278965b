/*
 * client.c - the inventory commands' side of the admin API: the token (a
 * file or NOFUSS_TOKEN), one GET with libcurl, the answer's JSON, and the
 * API's error messages turned into exit statuses. Strings from devices are
 * printed with control characters replaced, so a device's name cannot
 * drive the terminal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "inventory.h"

int nf_inv_token(struct nf_inv_conn *c)
{
	const char *env = getenv("NOFUSS_TOKEN");
	uint8_t *data;
	size_t len;

	c->token[0] = '\0';
	if (c->token_file == NULL) {
		if (env == NULL || env[0] == '\0') {
			nf_tool_error("no token: give --token-file FILE or set NOFUSS_TOKEN");
			return NF_INV_EXIT_AUTH;
		}
		snprintf(c->token, sizeof c->token, "%s", env);
		return 0;
	}
	if (nf_read_file(c->token_file, 65536, &data, &len) != 0)
		return NF_INV_EXIT_AUTH;
	data[len] = '\0';
	for (char *line = (char *)data; line != NULL && *line != '\0';) {
		char *next = strchr(line, '\n');
		line += strspn(line, " \t\r");
		size_t n = strcspn(line, " \t\r\n");
		if (n > 0 && line[0] != '#') {
			if (n < sizeof c->token)
				memcpy(c->token, line, n), c->token[n] = '\0';
			break;
		}
		line = next != NULL ? next + 1 : NULL;
	}
	memset(data, 0, len);
	free(data);
	if (c->token[0] == '\0') {
		nf_tool_error("%s: no token in it", c->token_file);
		return NF_INV_EXIT_AUTH;
	}
	return 0;
}

struct answer {
	char *data;
	size_t len;
	bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct answer *a = user;
	size_t n = size * nmemb;
	char *grown;

	if (a->len + n > NF_INV_MAX_ANSWER) {
		a->too_big = true;
		return 0;
	}
	grown = realloc(a->data, a->len + n + 1);
	if (grown == NULL)
		return 0;
	a->data = grown;
	memcpy(a->data + a->len, ptr, n);
	a->len += n;
	a->data[a->len] = '\0';
	return n;
}

int nf_inv_get(const struct nf_inv_conn *c, const char *path, json_t **out)
{
	return nf_inv_request(c, "GET", path, NULL, out);
}

static size_t on_read(char *ptr, size_t size, size_t nmemb, void *user)
{
	return fread(ptr, size, nmemb, user);
}

FILE *nf_inv_open_upload(const char *file, struct stat *st)
{
	FILE *f = fopen(file, "rb");

	if (f == NULL || fstat(fileno(f), st) != 0 || !S_ISREG(st->st_mode)) {
		nf_tool_error("%s: %s", file, f == NULL ? strerror(errno) : "not a regular file");
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	return f;
}

int nf_inv_request(const struct nf_inv_conn *c, const char *method, const char *path,
                   const char *upload, json_t **out)
{
	return nf_inv_send(c, method, path, upload, NULL, out);
}

int nf_inv_send(const struct nf_inv_conn *c, const char *method, const char *path,
                const char *upload, json_t *body, json_t **out)
{
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	char url[NF_INV_MAX_URL], auth[320], errbuf[CURL_ERROR_SIZE] = "";
	struct answer a = {NULL, 0, false};
	struct curl_slist *headers = NULL;
	CURL *curl = curl_easy_init();
	json_error_t jerr;
	long status = 0;
	CURLcode rc;
	json_t *msg;
	FILE *file = NULL;
	int exit_status = NF_INV_EXIT_CONNECT;

	*out = NULL;
	if (curl == NULL) {
		nf_tool_error("cannot initialise libcurl");
		free(text);
		return NF_INV_EXIT_CONNECT;
	}
	if (upload != NULL) {
		struct stat st;
		file = nf_inv_open_upload(upload, &st);
		if (file == NULL) {
			curl_easy_cleanup(curl);
			free(text);
			return NF_INV_EXIT_ERROR;
		}
		/* Streamed from the file with its length: never held in memory. */
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(curl, CURLOPT_READDATA, file);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st.st_size);
		curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)NF_INV_UPLOAD_TIMEOUT_S);
	} else if (text != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
		if (strcmp(method, "POST") == 0) /* a bodiless POST: Content-Length 0 */
			curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	}
	snprintf(url, sizeof url, "%s%s", c->server, path);
	/* Only one '/' between the server and the path. */
	if (strlen(c->server) > 0 && c->server[strlen(c->server) - 1] == '/')
		snprintf(url, sizeof url, "%.*s%s", (int)strlen(c->server) - 1, c->server, path);
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
	headers = curl_slist_append(headers, auth);
	headers = curl_slist_append(headers, "Accept: application/json");
	if (upload != NULL)
		headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
	else if (text != NULL)
		headers = curl_slist_append(headers, "Content-Type: application/json");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	if (file == NULL)
		curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)NF_INV_TIMEOUT_S);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	/* nofussd's admin certificate is often self-signed or from a private
	 * CA: trust that file instead of the system's store. */
	if (c->cacert != NULL)
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->cacert);
	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	if (file != NULL)
		fclose(file);
	memset(auth, 0, sizeof auth);
	if (rc != CURLE_OK) {
		/* The likely fix for a certificate that does not verify. */
		const char *hint = rc != CURLE_PEER_FAILED_VERIFICATION ? ""
		                   : c->cacert != NULL
		                       ? " (is --cacert the admin listener's certificate or its CA?)"
		                       : " (a self-signed certificate? give it with --cacert FILE)";
		nf_tool_error("%s: %s%s", url,
		              a.too_big   ? "the answer is too large"
		              : errbuf[0] ? errbuf
		                          : curl_easy_strerror(rc),
		              hint);
		goto done;
	}
	*out = a.data != NULL ? json_loads(a.data, 0, &jerr) : NULL;
	if (*out == NULL || !json_is_object(*out)) {
		nf_tool_error("%s: HTTP %ld, and not the admin API's JSON (is --server the admin "
		              "listener?)",
		              url, status);
		goto done;
	}
	if (status == 200 || status == 201) {
		exit_status = 0;
		goto done;
	}
	msg = json_object_get(*out, "error");
	nf_tool_error("%s: %s (HTTP %ld)", path,
	              json_is_string(msg) ? json_string_value(msg) : "error", status);
	exit_status = status == 401 || status == 403 ? NF_INV_EXIT_AUTH
	              : status == 404                ? NF_INV_EXIT_NOT_FOUND
	                                             : NF_INV_EXIT_ERROR;
done:
	if (exit_status != 0) {
		json_decref(*out);
		*out = NULL;
	}
	free(a.data);
	free(text);
	return exit_status;
}

int nf_inv_escape(const char *text, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		             (*p >= '0' && *p <= '9') || strchr("-._~:@", *p) != NULL;
		if (n + 4 > cap)
			return -1;
		if (plain) {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	if (n >= cap)
		return -1;
	out[n] = '\0';
	return 0;
}

int nf_inv_add_param(char *url, size_t cap, const char *name, const char *value)
{
	char enc[NF_INV_MAX_URL];
	size_t len = strlen(url);

	if (nf_inv_escape(value, enc, sizeof enc) != 0)
		return -1;
	int n = snprintf(url + len, cap - len, "%c%s=%s", strchr(url, '?') ? '&' : '?', name, enc);
	return n < 0 || (size_t)n >= cap - len ? -1 : 0;
}

void nf_inv_print(FILE *out, const char *s, int width)
{
	int n = 0;

	for (; *s != '\0' && (width == 0 || n < width); s++) {
		unsigned char c = (unsigned char)*s;
		fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
		/* A UTF-8 continuation byte takes no column of its own. */
		if ((c & 0xc0) != 0x80)
			n++;
	}
	for (; n < width; n++)
		fputc(' ', out);
}

const char *nf_inv_text(json_t *obj, const char *key, char *buf, size_t cap)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
	else if (json_is_true(v) || json_is_false(v))
		snprintf(buf, cap, "%s", json_is_true(v) ? "yes" : "no");
	else
		snprintf(buf, cap, "%s", "");
	return buf;
}
