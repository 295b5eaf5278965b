/*
 * announce.c - a simulated device's MQTT announcements (see sim.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <mosquitto.h>

#include "common.h"
#include "sim.h"
#include "topics.h"

#define KEEPALIVE_S      30
#define BACKOFF_FIRST_MS 1000L
#define BACKOFF_MAX_MS   30000L

static void logf_(struct nf_announce *a, const char *what, const char *detail)
{
	if (a->cfg.log != NULL) {
		fprintf(a->cfg.log, "[mqtt] %s%s%s\n", what, detail != NULL ? ": " : "",
		        detail != NULL ? detail : "");
		fflush(a->cfg.log);
	}
}

static const char *mqtt_error(int rc)
{
	return rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
}

static int publish(struct nf_announce *a, const char *leaf, const char *value, bool retain)
{
	char topic[NF_ANNOUNCE_TOPIC_MAX + NF_TOPIC_LEAF_MAX];
	int rc;

	snprintf(topic, sizeof topic, "%s/%s", a->base, leaf);
	rc = mosquitto_publish(a->mosq, NULL, topic, (int)strlen(value), value, NF_TOPIC_QOS,
	                       retain);
	if (rc != MOSQ_ERR_SUCCESS)
		logf_(a, topic, mqtt_error(rc));
	return rc;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct nf_announce *a = obj;
	char text[2 * NF_ANNOUNCE_TOPIC_MAX + 16];

	(void)mosq;
	if (rc != 0) {
		logf_(a, "connection refused", mosquitto_connack_string(rc));
		return;
	}
	a->connecting = false;
	a->connected = true;
	a->backoff_ms = BACKOFF_FIRST_MS;
	snprintf(text, sizeof text, "%s:%u as %s", a->host, (unsigned)a->cfg.port, a->base);
	logf_(a, "connected", text);
	publish(a, NF_TOPIC_IP, a->ip, true);
	publish(a, NF_TOPIC_VERSION, a->version, true);
	publish(a, NF_TOPIC_FSVERSION, a->fsversion, true);
	publish(a, NF_TOPIC_HEARTBEAT, NF_TOPIC_ALIVE, false);
	publish(a, NF_TOPIC_STATUS, NF_TOPIC_ONLINE, true);
	a->next_heartbeat_ms = nf_clock_ms() + (uint64_t)a->cfg.heartbeat_ms;
}

static int copy(char *dst, size_t cap, const char *src, const char *what, char *err, size_t errcap)
{
	if (src == NULL)
		src = "";
	if (strlen(src) >= cap) {
		snprintf(err, errcap, "MQTT %s too long (%zu bytes at most)", what, cap - 1);
		return -1;
	}
	strcpy(dst, src);
	return 0;
}

/* A failed attempt or a lost connection: try again later. */
static void schedule_retry(struct nf_announce *a, const char *why)
{
	char text[200];

	snprintf(text, sizeof text, "%s; retrying in %ld ms", why, a->backoff_ms);
	logf_(a, "broker unavailable", text);
	a->connecting = a->connected = false;
	a->next_attempt_ms = nf_clock_ms() + (uint64_t)a->backoff_ms;
	a->backoff_ms = a->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : a->backoff_ms * 2;
}

static void attempt(struct nf_announce *a, bool first)
{
	int rc = first ? mosquitto_connect_async(a->mosq, a->host, a->cfg.port, KEEPALIVE_S)
	               : mosquitto_reconnect_async(a->mosq);

	if (rc != MOSQ_ERR_SUCCESS) {
		schedule_retry(a, mqtt_error(rc));
		return;
	}
	a->connecting = true;
	a->next_attempt_ms =
	    nf_clock_ms() + (uint64_t)a->backoff_ms; /* no CONNACK by then: retry */
}

int nf_announce_start(struct nf_announce *a, const struct nf_announce_config *cfg, char *err,
                      size_t errcap)
{
	char topic[NF_ANNOUNCE_TOPIC_MAX + NF_TOPIC_LEAF_MAX];
	int rc;

	memset(a, 0, sizeof *a);
	a->cfg = *cfg;
	if (copy(a->host, sizeof a->host, cfg->host, "host", err, errcap) != 0 ||
	    copy(a->base, sizeof a->base, cfg->base, "base topic", err, errcap) != 0 ||
	    copy(a->ip, sizeof a->ip, cfg->ip, "ip", err, errcap) != 0 ||
	    copy(a->version, sizeof a->version, cfg->version, "version", err, errcap) != 0 ||
	    copy(a->fsversion, sizeof a->fsversion, cfg->fsversion, "fsversion", err, errcap) != 0)
		return -1;
	if (a->host[0] == '\0' || a->base[0] == '\0') {
		snprintf(err, errcap, "MQTT host and base topic must not be empty");
		return -1;
	}
	if (a->cfg.heartbeat_ms <= 0)
		a->cfg.heartbeat_ms = NF_ANNOUNCE_HEARTBEAT_MS;
	mosquitto_lib_init();
	a->mosq = mosquitto_new(NULL, true, a);
	if (a->mosq == NULL) {
		snprintf(err, errcap, "mosquitto_new: %s", strerror(errno));
		mosquitto_lib_cleanup();
		return -1;
	}
	mosquitto_connect_callback_set(a->mosq, on_connect);
	if (cfg->user != NULL || cfg->password != NULL) {
		rc = mosquitto_username_pw_set(a->mosq, cfg->user != NULL ? cfg->user : "",
		                               cfg->password);
		if (rc != MOSQ_ERR_SUCCESS) {
			snprintf(err, errcap, "MQTT user/password: %s", mosquitto_strerror(rc));
			return -1;
		}
	}
	snprintf(topic, sizeof topic, "%s/" NF_TOPIC_STATUS, a->base);
	rc = mosquitto_will_set(a->mosq, topic, (int)strlen(NF_TOPIC_OFFLINE), NF_TOPIC_OFFLINE,
	                        NF_TOPIC_QOS, true);
	if (rc != MOSQ_ERR_SUCCESS) {
		snprintf(err, errcap, "MQTT last will: %s", mosquitto_strerror(rc));
		return -1;
	}
	a->backoff_ms = BACKOFF_FIRST_MS;
	attempt(a, true);
	return 0;
}

void nf_announce_poll(struct nf_announce *a)
{
	uint64_t now;
	int rc;

	if (a->mosq == NULL)
		return;
	if (a->connecting || a->connected) {
		rc = mosquitto_loop(a->mosq, 0, 1);
		if (rc != MOSQ_ERR_SUCCESS) {
			schedule_retry(a, mqtt_error(rc));
			return;
		}
	}
	now = nf_clock_ms();
	if (a->connected && now >= a->next_heartbeat_ms) {
		publish(a, NF_TOPIC_HEARTBEAT, NF_TOPIC_ALIVE, false);
		a->next_heartbeat_ms = now + (uint64_t)a->cfg.heartbeat_ms;
	}
	if (!a->connected && now >= a->next_attempt_ms) {
		if (a->connecting)
			schedule_retry(a, "no answer");
		else
			attempt(a, false);
	}
}

void nf_announce_stop(struct nf_announce *a)
{
	if (a->mosq == NULL)
		return;
	mosquitto_destroy(a->mosq);
	mosquitto_lib_cleanup();
	a->mosq = NULL;
	a->connecting = a->connected = false;
}
