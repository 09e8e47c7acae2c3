/*
 * safehome rate limit: one gateway's flood never fills the hub's queue at the broker
 * (plugin API v5, Mosquitto 2.0).
 *
 * The broker keeps one FIFO queue per subscriber connection. A gateway publishing 20,000
 * QoS 1 events as fast as it can filled the hub's priority-lane queue faster than the hub
 * took messages off it, and another home's alarm waited behind the flood there, before the
 * hub's fair queue could put it first (stored-ack p99 23x the baseline). An honest gateway
 * never has more than its in-flight window (16) unacknowledged: it waits for the hub's
 * application ack. So a token bucket per user on the channels of the hub's priority lane
 * caps what one gateway can put in front of the others.
 *
 * A PUBLISH over the bucket is refused in MOSQ_EVT_MESSAGE: Mosquitto 2.0.11 answers a
 * QoS 1 PUBLISH with a PUBACK (MQTT 3.1.1: plain; MQTT 5: reason 0x87, not authorised),
 * keeps the connection, and delivers it to nobody. The gateway keeps it (the hub never
 * acked it) and resends it after its ack timeout: deferred, not lost. A Last Will is not a
 * PUBLISH packet and never passes here.
 *
 * The hub must still learn that the gateway floods (gateway_flooding): every
 * notice_every_s, for each user with refused messages, the plugin publishes
 *   {"gw": "<user>", "shed": <refused since the last notice>}
 * on plugin_opt_notice_topic (QoS 1), which the hub counts as received messages.
 *
 * Options (written by `safehome broker config`):
 *   plugin_opt_rate           messages per second per user, sustained (0: no limit)
 *   plugin_opt_burst          bucket size: messages a user may send at once
 *   plugin_opt_channels       comma-separated last topic levels that are limited
 *   plugin_opt_exempt_users   comma-separated usernames never limited (the hub)
 *   plugin_opt_notice_topic   where the refused counts go
 *   plugin_opt_notice_every_s at most one notice per user this often (default 1)
 * The bucket's key is the username (a gateway's is its id), or the client id without one.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "safehome_plugin.h"

#define TABLE_SIZE 65536 /* chains; entries are bounded by MAX_ENTRIES */
#define MAX_ENTRIES 1000000
#define KEY_MAX 128

struct bucket {
	char *key;
	double tokens, at;      /* tokens left at time `at` */
	unsigned long shed;     /* refused since the last notice */
	double noticed;         /* when the last notice went out */
	bool dirty;             /* on the dirty list */
	struct bucket *next;    /* hash chain */
	struct bucket *next_dirty;
};

static mosquitto_plugin_id_t *plugin_id = NULL;
static struct list channels, exempt;
static double rate = 0, burst = 0, notice_every = 1.0;
static char *notice_topic = NULL;
static struct bucket **table = NULL;
static struct bucket *dirty = NULL;
static long entries = 0;
static bool full_logged = false;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_number(const char *value, double *out)
{
	char *end = NULL;
	double v = strtod(value, &end);
	if(end == value || *end != '\0' || v < 0) return MOSQ_ERR_INVAL;
	*out = v;
	return MOSQ_ERR_SUCCESS;
}

static unsigned long hash(const char *s)
{
	unsigned long h = 2166136261UL; /* FNV-1a */
	for(; *s; s++){
		h = (h ^ (unsigned char)*s) * 16777619UL;
	}
	return h;
}

/* The bucket of `key`, created full; NULL when the table is full (then: not limited). */
static struct bucket *bucket_of(const char *key, double now)
{
	unsigned long slot = hash(key) % TABLE_SIZE;
	struct bucket *b;

	for(b = table[slot]; b; b = b->next){
		if(!strcmp(b->key, key)) return b;
	}
	if(entries >= MAX_ENTRIES){
		if(!full_logged){
			mosquitto_log_printf(MOSQ_LOG_WARNING, "safehome ratelimit: %d users tracked; new ones are not limited", MAX_ENTRIES);
			full_logged = true;
		}
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if(!b || !(b->key = strdup(key))){
		free(b);
		return NULL;
	}
	b->tokens = burst;
	b->at = now;
	b->noticed = now - notice_every;
	b->next = table[slot];
	table[slot] = b;
	entries++;
	return b;
}

/* JSON string body of `s` (gateway ids need no escaping; anything else is escaped). */
static void json_escape(char *out, size_t size, const char *s)
{
	size_t n = 0;
	for(; *s && n + 7 < size; s++){
		unsigned char c = (unsigned char)*s;
		if(c == '"' || c == '\\'){
			out[n++] = '\\';
			out[n++] = (char)c;
		}else if(c < 0x20){
			n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
		}else{
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
}

static void notice(struct bucket *b, double now)
{
	char key[KEY_MAX * 6 + 1], payload[KEY_MAX * 6 + 64];
	int len;

	json_escape(key, sizeof(key), b->key);
	len = snprintf(payload, sizeof(payload), "{\"gw\":\"%s\",\"shed\":%lu}", key, b->shed);
	if(len > 0 && (size_t)len < sizeof(payload)){
		mosquitto_broker_publish_copy(NULL, notice_topic, len, payload, 1, false, NULL);
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "safehome ratelimit: refused %lu messages of \"%s\" (over %g/s, burst %g)",
			b->shed, b->key, rate, burst);
	b->shed = 0;
	b->noticed = now;
}

/* Notices for every user with refused messages whose last notice is old enough. */
static void flush_notices(double now)
{
	struct bucket **link = &dirty, *b;

	while((b = *link)){
		if(now - b->noticed >= notice_every){
			notice(b, now);
			b->dirty = false;
			*link = b->next_dirty;
			b->next_dirty = NULL;
		}else{
			link = &b->next_dirty;
		}
	}
}

static int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	const char *key = mosquitto_client_username(ed->client);
	const char *channel;
	struct bucket *b;
	double now;
	(void)event;
	(void)userdata;

	if(rate <= 0) return MOSQ_ERR_SUCCESS;
	if(key && list_has(&exempt, key)) return MOSQ_ERR_SUCCESS;
	if(!key) key = mosquitto_client_id(ed->client);
	if(!key || strlen(key) > KEY_MAX) return MOSQ_ERR_SUCCESS;
	channel = strrchr(ed->topic, '/');
	if(!list_has(&channels, channel ? channel + 1 : ed->topic)) return MOSQ_ERR_SUCCESS;

	now = now_s();
	b = bucket_of(key, now);
	if(!b) return MOSQ_ERR_SUCCESS;
	b->tokens += (now - b->at) * rate;
	if(b->tokens > burst) b->tokens = burst;
	b->at = now;
	if(b->tokens >= 1.0){
		b->tokens -= 1.0;
		return MOSQ_ERR_SUCCESS;
	}
	b->shed++;
	if(!b->dirty){
		b->dirty = true;
		b->next_dirty = dirty;
		dirty = b;
	}
	if(now - b->noticed >= notice_every) flush_notices(now);
	return MOSQ_ERR_ACL_DENIED; /* PUBACK, not delivered; the gateway resends it */
}

static int on_tick(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)event_data;
	(void)userdata;
	if(dirty) flush_notices(now_s());
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data, struct mosquitto_opt *opts, int opt_count)
{
	int rc = MOSQ_ERR_SUCCESS;
	(void)user_data;

	if(plugin_id){
		/* per_listener_settings loads a plugin once per listener: one table serves all */
		mosquitto_log_printf(MOSQ_LOG_ERR, "safehome ratelimit: load it once (global plugin), not per listener");
		return MOSQ_ERR_INVAL;
	}
	for(int i = 0; i < opt_count && rc == MOSQ_ERR_SUCCESS; i++){
		if(!strcmp(opts[i].key, "rate")){
			rc = parse_number(opts[i].value, &rate);
		}else if(!strcmp(opts[i].key, "burst")){
			rc = parse_number(opts[i].value, &burst);
		}else if(!strcmp(opts[i].key, "notice_every_s")){
			rc = parse_number(opts[i].value, &notice_every);
		}else if(!strcmp(opts[i].key, "channels")){
			rc = list_parse(&channels, opts[i].value);
		}else if(!strcmp(opts[i].key, "exempt_users")){
			rc = list_parse(&exempt, opts[i].value);
		}else if(!strcmp(opts[i].key, "notice_topic")){
			free(notice_topic);
			rc = (notice_topic = strdup(opts[i].value)) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_NOMEM;
		}
	}
	if(rc == MOSQ_ERR_SUCCESS && (!notice_topic || !channels.count || (rate > 0 && burst < 1))){
		mosquitto_log_printf(MOSQ_LOG_ERR,
				"safehome ratelimit: plugin_opt_notice_topic and plugin_opt_channels are required, and plugin_opt_burst >= 1 with a rate");
		rc = MOSQ_ERR_INVAL;
	}
	if(rc == MOSQ_ERR_SUCCESS && !(table = calloc(TABLE_SIZE, sizeof(*table)))) rc = MOSQ_ERR_NOMEM;
	if(rc == MOSQ_ERR_SUCCESS) rc = mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, on_message, NULL, NULL);
	if(rc == MOSQ_ERR_SUCCESS) rc = mosquitto_callback_register(identifier, MOSQ_EVT_TICK, on_tick, NULL, NULL);
	if(rc == MOSQ_ERR_SUCCESS){
		plugin_id = identifier;
		mosquitto_log_printf(MOSQ_LOG_INFO, "safehome ratelimit: %g messages/s per user, burst %g", rate, burst);
	}
	return rc;
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	(void)user_data;
	(void)opts;
	(void)opt_count;
	if(!plugin_id) return MOSQ_ERR_SUCCESS;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_TICK, on_tick, NULL);
	for(long i = 0; table && i < TABLE_SIZE; i++){
		struct bucket *b = table[i], *next;
		for(; b; b = next){
			next = b->next;
			free(b->key);
			free(b);
		}
	}
	free(table);
	table = NULL;
	dirty = NULL;
	entries = 0;
	list_free(&channels);
	list_free(&exempt);
	free(notice_topic);
	notice_topic = NULL;
	plugin_id = NULL;
	return MOSQ_ERR_SUCCESS;
}
