/*
 * mqtt.c - the retained-topic read and the IP check for `nofuss push`.
 *
 * One short-lived libmosquitto client: connect (clean session, random id),
 * subscribe to the topic at QoS 0, and take the first message the broker
 * marks as retained; the broker sends retained values right after the
 * subscription, so a device that ever announced itself answers at once.
 * Everything is bounded by the caller's timeout, driven by mosquitto_loop()
 * in short steps against a monotonic deadline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>

#include "common.h"
#include "push.h"
#include "topics.h"

#define LOOP_STEP_MS 100 /* longest single mosquitto_loop() wait */
#define KEEPALIVE_S  30

enum state { ST_CONNECTING, ST_SUBSCRIBED, ST_GOT, ST_FAILED };

struct session {
	const char *topic;
	enum state state;
	char *value;
	size_t *len;
	bool *truncated;
	char *err;
	size_t err_len;
};

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct session *s = obj;
	int src;

	if (rc != 0) {
		snprintf(s->err, s->err_len, "the broker refused the connection: %s",
		         mosquitto_connack_string(rc));
		s->state = ST_FAILED;
		return;
	}
	src = mosquitto_subscribe(mosq, NULL, s->topic, NF_TOPIC_QOS);
	if (src != MOSQ_ERR_SUCCESS) {
		snprintf(s->err, s->err_len, "cannot subscribe to '%s': %s", s->topic,
		         mosquitto_strerror(src));
		s->state = ST_FAILED;
	}
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int count, const int *granted)
{
	struct session *s = obj;

	(void)mosq;
	(void)mid;
	if (count < 1 || granted[0] > 2) {
		snprintf(s->err, s->err_len, "the broker refused the subscription to '%s'",
		         s->topic);
		s->state = ST_FAILED;
		return;
	}
	if (s->state == ST_CONNECTING)
		s->state = ST_SUBSCRIBED;
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m)
{
	struct session *s = obj;
	size_t n;

	(void)mosq;
	if (!m->retain || s->state == ST_GOT || s->state == ST_FAILED)
		return;
	n = m->payloadlen > 0 ? (size_t)m->payloadlen : 0;
	*s->truncated = n >= NF_PUSH_MAX_PAYLOAD;
	if (n >= NF_PUSH_MAX_PAYLOAD)
		n = NF_PUSH_MAX_PAYLOAD - 1;
	if (n > 0)
		memcpy(s->value, m->payload, n);
	s->value[n] = '\0';
	*s->len = n;
	s->state = ST_GOT;
}

int nf_push_broker_parse(const char *text, int default_port, struct nf_push_broker *b)
{
	const char *host = text, *colon, *port_text = NULL;
	size_t n;
	char *end;
	long port;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			return -1;
		host = text + 1;
		n = (size_t)(close - host);
		if (close[1] == ':')
			port_text = close + 2;
	} else {
		colon = strchr(text, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			colon = NULL; /* a bare IPv6 address: no port */
		n = colon != NULL ? (size_t)(colon - text) : strlen(text);
		if (colon != NULL)
			port_text = colon + 1;
	}
	if (n == 0 || n >= sizeof b->host)
		return -1;
	memcpy(b->host, host, n);
	b->host[n] = '\0';
	b->port = default_port;
	if (port_text != NULL) {
		errno = 0;
		port = strtol(port_text, &end, 10);
		if (port_text[0] < '0' || port_text[0] > '9' || *end != '\0' || errno != 0 ||
		    port < 1 || port > 65535)
			return -1;
		b->port = (int)port;
	}
	return 0;
}

static const char *mqtt_error(int mrc)
{
	return mrc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(mrc);
}

/* A clean-session client of b with obj and the three callbacks, its
 * connection begun (asynchronously: the TCP connect then runs in the
 * caller's loop; only the name lookup blocks). Returns it, or NULL with
 * why in err. */
static struct mosquitto *
client_connect(const struct nf_push_broker *b, void *obj,
               void (*on_conn)(struct mosquitto *, void *, int),
               void (*on_sub)(struct mosquitto *, void *, int, int, const int *),
               void (*on_msg)(struct mosquitto *, void *, const struct mosquitto_message *),
               char *err, size_t err_len)
{
	struct mosquitto *mosq = mosquitto_new(NULL, true, obj);
	int mrc;

	if (mosq == NULL) {
		snprintf(err, err_len, "cannot create an MQTT client: %s", strerror(errno));
		return NULL;
	}
	mosquitto_connect_callback_set(mosq, on_conn);
	mosquitto_subscribe_callback_set(mosq, on_sub);
	mosquitto_message_callback_set(mosq, on_msg);
	if (b->user != NULL || b->password != NULL) {
		mrc = mosquitto_username_pw_set(mosq, b->user != NULL ? b->user : "", b->password);
		if (mrc != MOSQ_ERR_SUCCESS) {
			snprintf(err, err_len, "MQTT user/password: %s", mosquitto_strerror(mrc));
			goto fail;
		}
	}
	if (b->cafile != NULL) {
		mrc = mosquitto_tls_set(mosq, b->cafile, NULL, NULL, NULL, NULL);
		if (mrc != MOSQ_ERR_SUCCESS) {
			snprintf(err, err_len, "TLS with CA file '%s': %s", b->cafile,
			         mosquitto_strerror(mrc));
			goto fail;
		}
	}
	mrc = mosquitto_connect_async(mosq, b->host, b->port, KEEPALIVE_S);
	if (mrc != MOSQ_ERR_SUCCESS) {
		snprintf(err, err_len, "cannot connect to the MQTT broker %s:%d: %s", b->host,
		         b->port, mqtt_error(mrc));
		goto fail;
	}
	return mosq;
fail:
	mosquitto_destroy(mosq);
	return NULL;
}

int nf_push_mqtt_retained(const struct nf_push_broker *b, const char *topic,
                          char value[NF_PUSH_MAX_PAYLOAD], size_t *len, bool *truncated, char *err,
                          size_t err_len)
{
	struct session s = {topic, ST_CONNECTING, value, len, truncated, err, err_len};
	struct mosquitto *mosq = NULL;
	uint64_t deadline = nf_clock_ms() + (uint64_t)b->timeout_ms, now;
	int rc = NF_PUSH_MQTT_FAILED, mrc;

	value[0] = '\0';
	*len = 0;
	*truncated = false;
	err[0] = '\0';
	mosq = client_connect(b, &s, on_connect, on_subscribe, on_message, err, err_len);
	if (mosq == NULL)
		return NF_PUSH_MQTT_FAILED;
	while (s.state != ST_GOT && s.state != ST_FAILED) {
		now = nf_clock_ms();
		if (now >= deadline)
			break;
		mrc = mosquitto_loop(
		    mosq, deadline - now < LOOP_STEP_MS ? (int)(deadline - now) : LOOP_STEP_MS, 1);
		if (mrc != MOSQ_ERR_SUCCESS && s.state != ST_GOT && s.state != ST_FAILED) {
			snprintf(err, err_len, "%s MQTT broker %s:%d: %s",
			         s.state == ST_CONNECTING ? "cannot connect to the" : "lost the",
			         b->host, b->port, mqtt_error(mrc));
			s.state = ST_FAILED;
		}
	}
	if (s.state == ST_GOT)
		rc = NF_PUSH_MQTT_OK;
	else if (s.state == ST_FAILED)
		rc = NF_PUSH_MQTT_FAILED;
	else if (s.state == ST_CONNECTING) {
		snprintf(err, err_len, "MQTT broker %s:%d: no answer within the timeout", b->host,
		         b->port);
		rc = NF_PUSH_MQTT_FAILED;
	} else
		rc = NF_PUSH_MQTT_NONE;
	mosquitto_disconnect(mosq);
	mosquitto_destroy(mosq);
	return rc;
}

/* One IPv4 octet: 1 to 3 digits, no leading zero, at most 255. Returns the
 * text after it, or NULL. */
static const char *octet(const char *p)
{
	unsigned v = 0;
	int n = 0;

	while (p[n] >= '0' && p[n] <= '9' && n < 4) {
		v = v * 10 + (unsigned)(p[n] - '0');
		n++;
	}
	if (n == 0 || n > 3 || v > 255 || (n > 1 && p[0] == '0'))
		return NULL;
	return p + n;
}

/* The dotted quad at ip (len bytes) in a[4]; false when it is not one. */
static bool dotted_quad(const char *ip, size_t len, unsigned a[4])
{
	const char *p = ip;

	if (len == 0 || memchr(ip, '\0', len) != NULL || ip[len] != '\0')
		return false;
	for (int i = 0; i < 4; i++) {
		const char *q = octet(p);

		if (q == NULL)
			return false;
		a[i] = (unsigned)strtoul(p, NULL, 10);
		p = q;
		if (i < 3) {
			if (*p != '.')
				return false;
			p++;
		}
	}
	return *p == '\0';
}

bool nf_push_usable_ip(const char *ip, size_t len, const char **why)
{
	const char *no = NULL;
	unsigned a[4];

	if (ip == NULL)
		no = "not an IPv4 dotted quad";
	else if (memchr(ip, ':', len) != NULL)
		no = "an IPv6 address, and ArduinoOTA pushes go over IPv4 only";
	else if (!dotted_quad(ip, len, a))
		no = "not an IPv4 dotted quad";
	else if (a[0] == 0)
		no = "not a host's address (0.0.0.0/8)";
	else if (a[0] >= 224 && a[0] < 240)
		no = "a multicast address (224.0.0.0/4)";
	else if (a[0] >= 240)
		no = "a broadcast or reserved address (240.0.0.0/4)";
	if (why != NULL)
		*why = no;
	return no == NULL;
}

/* ---- the watch ---- */

#define WATCH_TOPICS    4
#define WATCH_REPLAY_MS 250 /* after the SUBACK, for the retained replay */
#define WATCH_POLL_MS   20

enum { T_VERSION, T_FSVERSION, T_HEARTBEAT, T_STATUS };

struct nf_push_watch {
	struct mosquitto *mosq;
	pthread_mutex_t lock;
	bool looping;
	enum state state; /* ST_CONNECTING, ST_SUBSCRIBED or ST_FAILED */
	char topic[WATCH_TOPICS][NF_PUSH_MAX_HOST + NF_TOPIC_LEAF_MAX];
	struct nf_push_seen seen;
	char err[NF_PUSH_MAX_ERRMSG];
};

static void watch_on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct nf_push_watch *w = obj;
	char *subs[WATCH_TOPICS];
	int src;

	if (rc != 0) {
		pthread_mutex_lock(&w->lock);
		snprintf(w->err, sizeof w->err, "the broker refused the connection: %s",
		         mosquitto_connack_string(rc));
		w->state = ST_FAILED;
		pthread_mutex_unlock(&w->lock);
		return;
	}
	for (int i = 0; i < WATCH_TOPICS; i++)
		subs[i] = w->topic[i];
	src = mosquitto_subscribe_multiple(mosq, NULL, WATCH_TOPICS, subs, NF_TOPIC_QOS, 0, NULL);
	if (src != MOSQ_ERR_SUCCESS) {
		pthread_mutex_lock(&w->lock);
		snprintf(w->err, sizeof w->err, "cannot subscribe to '%s': %s", w->topic[0],
		         mosquitto_strerror(src));
		w->state = ST_FAILED;
		pthread_mutex_unlock(&w->lock);
	}
}

static void watch_on_subscribe(struct mosquitto *mosq, void *obj, int mid, int count,
                               const int *granted)
{
	struct nf_push_watch *w = obj;
	bool ok = count == WATCH_TOPICS;

	(void)mosq;
	(void)mid;
	for (int i = 0; i < count; i++)
		ok = ok && granted[i] <= 2;
	pthread_mutex_lock(&w->lock);
	if (!ok) {
		snprintf(w->err, sizeof w->err, "the broker refused the subscription to '%s'",
		         w->topic[0]);
		w->state = ST_FAILED;
	} else if (w->state == ST_CONNECTING)
		w->state = ST_SUBSCRIBED;
	pthread_mutex_unlock(&w->lock);
}

/* The payload as text: at most NF_PUSH_MAX_PAYLOAD - 1 bytes, cut at a NUL,
 * trailing white space dropped (a device printing "0.1.1\n" means 0.1.1). */
static void payload_text(const struct mosquitto_message *m, char out[NF_PUSH_MAX_PAYLOAD])
{
	size_t n = m->payloadlen > 0 ? (size_t)m->payloadlen : 0;

	if (n >= NF_PUSH_MAX_PAYLOAD)
		n = NF_PUSH_MAX_PAYLOAD - 1;
	if (n > 0)
		memcpy(out, m->payload, n);
	out[n] = '\0';
	n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' ||
	                 out[n - 1] == '\t'))
		out[--n] = '\0';
}

static void watch_on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m)
{
	struct nf_push_watch *w = obj;
	char text[NF_PUSH_MAX_PAYLOAD];
	uint64_t t = nf_clock_ms();
	int which = -1;

	(void)mosq;
	for (int i = 0; i < WATCH_TOPICS && which < 0; i++)
		if (m->topic != NULL && strcmp(m->topic, w->topic[i]) == 0)
			which = i;
	if (which < 0)
		return;
	payload_text(m, text);
	pthread_mutex_lock(&w->lock);
	if (m->retain) {
		/* the replay at subscribe time is the state before; a replay
		 * after nf_push_watch_open() (our reconnection) is no news */
		if (w->state != ST_GOT) {
			if (which == T_VERSION)
				memcpy(w->seen.old_version, text, sizeof text);
			else if (which == T_FSVERSION)
				memcpy(w->seen.old_fsversion, text, sizeof text);
		}
	} else if (which == T_VERSION) {
		memcpy(w->seen.version, text, sizeof text);
		w->seen.version_ms = t;
	} else if (which == T_FSVERSION) {
		memcpy(w->seen.fsversion, text, sizeof text);
		w->seen.fsversion_ms = t;
	} else if (which == T_HEARTBEAT || strcmp(text, NF_TOPIC_ONLINE) == 0) {
		w->seen.alive_ms = t;
	}
	pthread_mutex_unlock(&w->lock);
}

/* Waits, until deadline, for the broker's acknowledgement of w's
 * subscriptions and then WATCH_REPLAY_MS for the retained replay. Returns
 * 0, or -1 with why in err. */
static int watch_wait(struct nf_push_watch *w, const struct nf_push_broker *b, uint64_t deadline,
                      char *err, size_t err_len)
{
	uint64_t subscribed_at = 0;
	enum state st;

	for (;;) {
		struct timespec step = {0, WATCH_POLL_MS * 1000000L};
		uint64_t t = nf_clock_ms();

		pthread_mutex_lock(&w->lock);
		st = w->state;
		pthread_mutex_unlock(&w->lock);
		if (st == ST_FAILED) {
			snprintf(err, err_len, "%s", w->err);
			return -1;
		}
		if (st == ST_SUBSCRIBED && subscribed_at == 0)
			subscribed_at = t;
		if (subscribed_at != 0 && t - subscribed_at >= WATCH_REPLAY_MS)
			return 0;
		if (t >= deadline && subscribed_at == 0) {
			snprintf(err, err_len,
			         "MQTT broker %s:%d: no subscription within the timeout", b->host,
			         b->port);
			return -1;
		}
		nanosleep(&step, NULL);
	}
}

struct nf_push_watch *nf_push_watch_open(const struct nf_push_broker *b, const char *base,
                                         char *err, size_t err_len)
{
	static const char *const suffix[WATCH_TOPICS] = {
	    "/" NF_TOPIC_VERSION, "/" NF_TOPIC_FSVERSION, "/" NF_TOPIC_HEARTBEAT,
	    "/" NF_TOPIC_STATUS};
	struct nf_push_watch *w;
	uint64_t deadline = nf_clock_ms() + (uint64_t)b->timeout_ms;
	int mrc;

	err[0] = '\0';
	if (strlen(base) >= NF_PUSH_MAX_HOST) {
		snprintf(err, err_len, "topic base '%s' too long", base);
		return NULL;
	}
	w = calloc(1, sizeof *w);
	if (w == NULL) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&w->lock, NULL);
	w->state = ST_CONNECTING;
	for (int i = 0; i < WATCH_TOPICS; i++)
		snprintf(w->topic[i], sizeof w->topic[i], "%s%s", base, suffix[i]);
	w->mosq = client_connect(b, w, watch_on_connect, watch_on_subscribe, watch_on_message, err,
	                         err_len);
	if (w->mosq == NULL)
		goto fail;
	mrc = mosquitto_loop_start(w->mosq);
	if (mrc != MOSQ_ERR_SUCCESS) {
		snprintf(err, err_len, "cannot start the MQTT thread: %s", mosquitto_strerror(mrc));
		goto fail;
	}
	w->looping = true;
	if (watch_wait(w, b, deadline, err, err_len) != 0)
		goto fail;
	pthread_mutex_lock(&w->lock);
	w->state = ST_GOT; /* retained replays from now on are reconnections */
	pthread_mutex_unlock(&w->lock);
	return w;
fail:
	nf_push_watch_close(w);
	return NULL;
}

void nf_push_watch_get(struct nf_push_watch *w, struct nf_push_seen *seen)
{
	pthread_mutex_lock(&w->lock);
	*seen = w->seen;
	pthread_mutex_unlock(&w->lock);
}

void nf_push_watch_close(struct nf_push_watch *w)
{
	if (w == NULL)
		return;
	if (w->mosq != NULL) {
		mosquitto_disconnect(w->mosq);
		if (w->looping)
			mosquitto_loop_stop(w->mosq, true);
		mosquitto_destroy(w->mosq);
	}
	pthread_mutex_destroy(&w->lock);
	free(w);
}
