/*
 * safehome isolation: what Mosquitto 2.0's acl_file cannot enforce (plugin API v5).
 *
 * Mosquitto 2.0.11's acl_file never checks a SUBSCRIBE (security_default.c answers
 * "success" with a FIXME), so a gateway could join the hub's shared group
 * ($share/hub/...) and take its share of every home's events, or subscribe to '#'.
 * Nothing ties a client id to a username either, so a gateway could connect with
 * another gateway's (or the hub's) client id and take its session over.
 * The dynamic-security plugin could do both but does not expand %u in 2.0.11: one
 * role per gateway, and at 100,000 gateways each change stalled the broker ~16 s.
 *
 * This plugin, for every user that is not a hub user:
 *   - CONNECT: the client id must equal the username (a gateway's id is its gateway id);
 *     ids with the reserved hub prefix are refused;
 *   - SUBSCRIBE: only ROOT<username>/<downlink channel>, literally (no wildcard, no
 *     $share/, no $SYS/);
 *   - PUBLISH with retain: only on ROOT<username>/<retain channel> (status), or empty
 *     (which stores nothing: it deletes the retained message of its own topic).
 * Everything else is left to the acl_file (MOSQ_ERR_PLUGIN_DEFER), which grants each
 * gateway its own topics through %u patterns.
 *
 * Options (written by `safehome broker config`):
 *   plugin_opt_hub_users        comma-separated usernames with the hub's rights
 *   plugin_opt_reserved_prefix  client id prefix of the hub's connections
 *   plugin_opt_root             topic prefix of a gateway's topics, up to its id
 *   plugin_opt_downlink         comma-separated channels a gateway may subscribe to
 *   plugin_opt_retain           comma-separated channels a gateway may publish retained
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "safehome_plugin.h"

static int instances = 0;
static struct list hub_users, downlink, retain_ok;
static char *root = NULL, *reserved_prefix = NULL;

/* The channel of ROOT<username>/<channel>, or NULL for any other topic. */
static const char *own_channel(const char *topic, const char *username)
{
	size_t rlen = strlen(root), ulen = strlen(username);
	if(strncmp(topic, root, rlen)) return NULL;
	topic += rlen;
	if(strncmp(topic, username, ulen) || topic[ulen] != '/') return NULL;
	return topic + ulen + 1;
}

static bool is_hub(const char *username)
{
	return username && list_has(&hub_users, username);
}

static bool id_bound(const char *id, const char *username)
{
	return id && username && !strcmp(id, username) && strncmp(id, reserved_prefix, strlen(reserved_prefix));
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *id = mosquitto_client_id(ed->client);
	(void)event;
	(void)userdata;

	if(!ed->username || is_hub(ed->username)) return MOSQ_ERR_PLUGIN_DEFER;
	if(!id_bound(id, ed->username)){
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				"safehome isolation: refused client id \"%s\" for user \"%s\" (a gateway connects with its own id)",
				id ? id : "", ed->username);
		return MOSQ_ERR_AUTH;
	}
	return MOSQ_ERR_PLUGIN_DEFER; /* the password file checks the password */
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *username = mosquitto_client_username(ed->client);
	const char *id = mosquitto_client_id(ed->client);
	const char *channel;
	(void)event;
	(void)userdata;

	if(is_hub(username)) return MOSQ_ERR_PLUGIN_DEFER;
	/* Certificate identities skip the password check: a client whose id is not its
	 * username may do nothing at all. */
	if(!id_bound(id, username)) return MOSQ_ERR_ACL_DENIED;

	channel = own_channel(ed->topic, username);
	if(ed->access == MOSQ_ACL_SUBSCRIBE){
		if(channel && list_has(&downlink, channel)) return MOSQ_ERR_PLUGIN_DEFER;
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "safehome isolation: refused SUBSCRIBE to \"%s\" by \"%s\"",
				ed->topic, username);
		return MOSQ_ERR_ACL_DENIED;
	}
	if(ed->access == MOSQ_ACL_WRITE && ed->retain && ed->payloadlen > 0 && !(channel && list_has(&retain_ok, channel))){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "safehome isolation: refused retained PUBLISH to \"%s\" by \"%s\"",
				ed->topic, username);
		return MOSQ_ERR_ACL_DENIED;
	}
	return MOSQ_ERR_PLUGIN_DEFER;
}

/* With per_listener_settings the plugin is loaded once per listener: the options are the
 * same, each instance keeps its own identifier in user_data to unregister its callbacks. */
int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data, struct mosquitto_opt *opts, int opt_count)
{
	int rc = MOSQ_ERR_SUCCESS;

	*user_data = identifier;
	for(int i = 0; i < opt_count && rc == MOSQ_ERR_SUCCESS; i++){
		if(!strcmp(opts[i].key, "hub_users")){
			rc = list_parse(&hub_users, opts[i].value);
		}else if(!strcmp(opts[i].key, "downlink")){
			rc = list_parse(&downlink, opts[i].value);
		}else if(!strcmp(opts[i].key, "retain")){
			rc = list_parse(&retain_ok, opts[i].value);
		}else if(!strcmp(opts[i].key, "root")){
			free(root);
			rc = (root = strdup(opts[i].value)) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_NOMEM;
		}else if(!strcmp(opts[i].key, "reserved_prefix")){
			free(reserved_prefix);
			rc = (reserved_prefix = strdup(opts[i].value)) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_NOMEM;
		}
	}
	if(rc == MOSQ_ERR_SUCCESS && (!root || !reserved_prefix || !hub_users.count || !downlink.count)){
		mosquitto_log_printf(MOSQ_LOG_ERR,
				"safehome isolation: plugin_opt_root, plugin_opt_reserved_prefix, plugin_opt_hub_users and plugin_opt_downlink are required");
		rc = MOSQ_ERR_INVAL;
	}
	if(rc == MOSQ_ERR_SUCCESS) rc = mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	if(rc == MOSQ_ERR_SUCCESS) rc = mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
	if(rc == MOSQ_ERR_SUCCESS) instances++;
	return rc;
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	(void)opts;
	(void)opt_count;
	mosquitto_callback_unregister(user_data, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(user_data, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	if(instances > 0 && --instances > 0) return MOSQ_ERR_SUCCESS; /* the last one frees the options */
	list_free(&hub_users);
	list_free(&downlink);
	list_free(&retain_ok);
	free(root);
	free(reserved_prefix);
	root = reserved_prefix = NULL;
	return MOSQ_ERR_SUCCESS;
}
