/*
 * What the safehome Mosquitto plugins share: the plugin API version (5) and comma-separated
 * option lists (plugin_opt_* values). Included once by each plugin's single source file; its
 * digest is part of theirs (hub/broker/plugin.py), so a change here rebuilds them.
 */
#ifndef SAFEHOME_PLUGIN_H
#define SAFEHOME_PLUGIN_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_plugin.h>

#define MAX_ITEMS 16

struct list {
	char *items[MAX_ITEMS];
	int count;
};

static void list_free(struct list *l)
{
	for(int i = 0; i < l->count; i++){
		free(l->items[i]);
	}
	l->count = 0;
}

static int list_parse(struct list *l, const char *value)
{
	char *copy = strdup(value), *save = NULL, *tok;
	if(!copy) return MOSQ_ERR_NOMEM;
	list_free(l);
	for(tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)){
		if(l->count == MAX_ITEMS || !(l->items[l->count] = strdup(tok))){
			free(copy);
			return MOSQ_ERR_INVAL;
		}
		l->count++;
	}
	free(copy);
	return MOSQ_ERR_SUCCESS;
}

static bool list_has(const struct list *l, const char *s)
{
	for(int i = 0; i < l->count; i++){
		if(!strcmp(l->items[i], s)) return true;
	}
	return false;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

#endif
