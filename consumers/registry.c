/* registry.c — the Schema Registry client: two REST calls over one libcurl handle, three small caches.
 *
 * Requests are synchronous on one easy handle (libcurl keeps the connection
 * alive between them), with CURLOPT_TIMEOUT_MS and CURLOPT_CONNECTTIMEOUT_MS from
 * schema_registry.timeout_ms, CURLOPT_NOSIGNAL (no SIGALRM games in a process that
 * handles SIGTERM), only http and https allowed, no redirects followed, and a
 * bound on the answer's size. The answer is read as JSON when it is JSON; an HTTP
 * status other than 200 becomes a dashi_err by the table in registry.h, with the
 * registry's error_code and message in the text.
 *
 * Caches are arrays searched linearly: a deployment has tens of schemas, and the
 * codec keeps its own table of parsed schemas by id in front of this one, so a
 * lookup here happens once per id and process. Negative entries (an id answered
 * 404) expire after schema_registry.unknown_id_ttl_ms on the monotonic clock; they
 * are bounded (the oldest is reused) so garbage ids cannot grow memory.
 */
#include "consumers/registry.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "consumers/codec.h"

#define MAX_BODY (8u << 20)     /* an answer larger than this is refused */
#define MAX_SECRET 1024         /* password bytes */
#define MAX_UNKNOWN 256         /* remembered 404 ids */

typedef struct id_entry {
    int32_t id;
    char *schema;
} id_entry;

typedef struct subject_entry {
    char *subject, *schema;
    int32_t id;
} subject_entry;

typedef struct unknown_entry {
    int32_t id;
    int64_t until_ms; /* monotonic */
} unknown_entry;

typedef struct body_buf {
    char *p;
    size_t n, cap;
    bool too_big;
} body_buf;

struct dashi_registry {
    char *url;         /* base URL without trailing '/' */
    char *shown_url;   /* the same with user:password@ masked */
    char *user, *password;
    char *ca_file;
    long timeout_ms;
    int64_t unknown_ttl_ms;
    bool auto_register;
    char *subjects[DASHI_EV__COUNT];
    CURL *curl;
    struct curl_slist *headers;
    char curl_err[CURL_ERROR_SIZE];
    id_entry *ids;
    size_t n_ids, cap_ids;
    subject_entry *subs;
    size_t n_subs, cap_subs;
    unknown_entry unknown[MAX_UNKNOWN];
    size_t n_unknown;
    uint64_t requests;
};

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------------------- */
/* construction                                                                       */
/* ---------------------------------------------------------------------------------- */

/* A URL with its user:pw@ part replaced by "***@"; other URLs unchanged. */
static char *mask_userinfo(const char *url) {
    const char *host = strstr(url, "://"), *at, *slash;
    char *out;
    if (!host)
        return dashi_strdup(url);
    host += 3;
    at = strchr(host, '@');
    slash = strchr(host, '/');
    if (!at || (slash && slash < at))
        return dashi_strdup(url);
    if (!(out = malloc(strlen(url) + 4)))
        return NULL;
    snprintf(out, strlen(url) + 4, "%.*s***%s", (int)(host - url), url, at);
    return out;
}

/* The secret behind ref: env:NAME, or file:/path (no group/other permissions). */
static dashi_err read_password(const char *ref, char **out, char *errstr, size_t errstr_size) {
    char buf[MAX_SECRET + 2];
    size_t len = 0;
    int fd = -1;
    dashi_err err = DASHI_OK;
    struct stat st;

    *out = NULL;
    if (strncmp(ref, "env:", 4) == 0) {
        const char *v = getenv(ref + 4);
        if (!v || !*v) {
            err = dashi_errf(DASHI_ERR_NOT_FOUND, errstr, errstr_size,
                             "schema_registry.password %s: variable not set or empty", ref);
            goto out;
        }
        len = strlen(v);
        if (len > MAX_SECRET) {
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "schema_registry.password %s: longer than %d bytes",
                             ref, MAX_SECRET);
            goto out;
        }
        memcpy(buf, v, len);
    } else if (strncmp(ref, "file:", 5) == 0) {
        ssize_t k;
        if ((fd = open(ref + 5, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
            err = dashi_errf(DASHI_ERR_NOT_FOUND, errstr, errstr_size, "schema_registry.password %s: %s", ref,
                             strerror(errno));
            goto out;
        }
        if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                             "schema_registry.password %s: must be a regular file readable by its owner only (chmod 600)",
                             ref);
            goto out;
        }
        while (len <= MAX_SECRET && (k = read(fd, buf + len, MAX_SECRET + 1 - len)) > 0)
            len += (size_t)k;
        if (len > MAX_SECRET) {
            err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "schema_registry.password %s: longer than %d bytes",
                             ref, MAX_SECRET);
            goto out;
        }
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
    } else {
        /* the text itself is never taken: a password in the configuration file would be one leak away */
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                         "schema_registry.password: expected env:NAME or file:/path, not the password itself");
        goto out;
    }
    if (len == 0 || memchr(buf, '\0', len)) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "schema_registry.password %s: empty or binary", ref);
        goto out;
    }
    if (!(*out = strndup(buf, len)))
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
out:
    if (fd >= 0)
        close(fd);
    explicit_bzero(buf, sizeof(buf));
    return err;
}

/* Event types sharing the topic of t (t included). */
static int types_on_topic(const dashi_config *cfg, dashi_event_type t) {
    int n = 0;
    const char *topic = dashi_config_topic(cfg, t);
    for (int u = 0; u < DASHI_EV__COUNT; u++)
        n += strcmp(dashi_config_topic(cfg, (dashi_event_type)u), topic) == 0;
    return n;
}

static dashi_err make_subjects(dashi_registry *r, const dashi_config *cfg, char *errstr, size_t errstr_size) {
    const char *strategy = cfg->schema_registry_subject_strategy ? cfg->schema_registry_subject_strategy : "auto";
    for (int t = 0; t < DASHI_EV__COUNT; t++) {
        const char *topic = dashi_config_topic(cfg, (dashi_event_type)t), *name = dashi_event_type_name((dashi_event_type)t);
        char buf[512];
        int n;
        bool shared = types_on_topic(cfg, (dashi_event_type)t) > 1;
        if (strcmp(strategy, "record") == 0)
            n = snprintf(buf, sizeof(buf), "%s.%s", DASHI_AVRO_NAMESPACE, name);
        else if (strcmp(strategy, "topic_record") == 0 || (strcmp(strategy, "auto") == 0 && shared))
            n = snprintf(buf, sizeof(buf), "%s-%s.%s", topic, DASHI_AVRO_NAMESPACE, name);
        else if (strcmp(strategy, "topic") == 0 || strcmp(strategy, "auto") == 0)
            n = snprintf(buf, sizeof(buf), "%s-value", topic);
        else
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                              "schema_registry.subject_strategy: expected auto, topic, topic_record or record, got '%s'",
                              strategy);
        if (n < 0 || (size_t)n >= sizeof(buf))
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "topic name of %s too long for a subject", name);
        r->subjects[t] = dashi_strdup(buf);
    }
    return DASHI_OK;
}

void dashi_registry_destroy(dashi_registry *reg) {
    if (!reg)
        return;
    if (reg->curl)
        curl_easy_cleanup(reg->curl);
    curl_slist_free_all(reg->headers);
    if (reg->curl)
        curl_global_cleanup();
    for (size_t i = 0; i < reg->n_ids; i++)
        free(reg->ids[i].schema);
    free(reg->ids);
    for (size_t i = 0; i < reg->n_subs; i++) {
        free(reg->subs[i].subject);
        free(reg->subs[i].schema);
    }
    free(reg->subs);
    for (int t = 0; t < DASHI_EV__COUNT; t++)
        free(reg->subjects[t]);
    if (reg->password) {
        explicit_bzero(reg->password, strlen(reg->password));
        free(reg->password);
    }
    free(reg->user);
    free(reg->ca_file);
    free(reg->url);
    free(reg->shown_url);
    free(reg);
}

dashi_registry *dashi_registry_new(const dashi_config *cfg, char *errstr, size_t errstr_size) {
    dashi_registry *r = NULL;
    const char *url = cfg ? cfg->schema_registry_url : NULL;
    size_t n;

    if (!url || !*url) {
        dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "schema_registry.url is empty");
        return NULL;
    }
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "schema_registry.url: expected http://... or https://...");
        return NULL;
    }
    if (!(r = calloc(1, sizeof(*r)))) {
        dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    r->url = dashi_strdup(url);
    for (n = strlen(r->url); n > 0 && r->url[n - 1] == '/'; n--)
        r->url[n - 1] = '\0';
    if (!(r->shown_url = mask_userinfo(r->url))) {
        dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto fail;
    }
    r->timeout_ms = (long)cfg->schema_registry_timeout_ms;
    r->unknown_ttl_ms = cfg->schema_registry_unknown_id_ttl_ms;
    r->auto_register = cfg->schema_registry_auto_register;
    if (cfg->schema_registry_ca_file && *cfg->schema_registry_ca_file)
        r->ca_file = dashi_strdup(cfg->schema_registry_ca_file);
    if (cfg->schema_registry_user && *cfg->schema_registry_user) {
        r->user = dashi_strdup(cfg->schema_registry_user);
        if (!cfg->schema_registry_password || !*cfg->schema_registry_password) {
            dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                       "schema_registry.user is set: schema_registry.password must say where the password is (env:NAME or file:/path)");
            goto fail;
        }
        if (read_password(cfg->schema_registry_password, &r->password, errstr, errstr_size) != DASHI_OK)
            goto fail;
    } else if (cfg->schema_registry_password && *cfg->schema_registry_password) {
        dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "schema_registry.password is set without schema_registry.user");
        goto fail;
    }
    if (make_subjects(r, cfg, errstr, errstr_size) != DASHI_OK)
        goto fail;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        dashi_errf(DASHI_ERR_INTERNAL, errstr, errstr_size, "libcurl: global init failed");
        goto fail;
    }
    if (!(r->curl = curl_easy_init())) {
        curl_global_cleanup();
        dashi_errf(DASHI_ERR_INTERNAL, errstr, errstr_size, "libcurl: cannot create a handle");
        goto fail;
    }
    r->headers = curl_slist_append(NULL, "Accept: application/vnd.schemaregistry.v1+json, application/json");
    if (r->headers)
        r->headers = curl_slist_append(r->headers, "Content-Type: application/vnd.schemaregistry.v1+json");
    if (!r->headers) {
        dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto fail;
    }
    return r;
fail:
    dashi_registry_destroy(r);
    return NULL;
}

const char *dashi_registry_subject(const dashi_registry *reg, dashi_event_type t) {
    if (!reg || (unsigned)t >= DASHI_EV__COUNT)
        return NULL;
    return reg->subjects[t];
}

const char *dashi_registry_url(const dashi_registry *reg) {
    return reg ? reg->shown_url : "";
}

uint64_t dashi_registry_requests(const dashi_registry *reg) {
    return reg ? reg->requests : 0;
}

/* ---------------------------------------------------------------------------------- */
/* HTTP                                                                               */
/* ---------------------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque) {
    body_buf *b = opaque;
    size_t n = size * nmemb;
    if (b->n + n > MAX_BODY) {
        b->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

/* "error_code 40403: Schema 7 not found" from a registry error body, or the start of the body. */
static void registry_reason(const json_t *doc, const body_buf *b, char *out, size_t size) {
    const json_t *code = json_object_get(doc, "error_code"), *msg = json_object_get(doc, "message");
    if (json_is_string(msg) && json_is_integer(code))
        snprintf(out, size, ": error_code %lld: %.300s", (long long)json_integer_value(code), json_string_value(msg));
    else if (json_is_string(msg))
        snprintf(out, size, ": %.300s", json_string_value(msg));
    else if (b->n)
        snprintf(out, size, ": %.120s", b->p);
    else
        out[0] = '\0';
}

/* One request: method "GET" or "POST" (body: JSON text) to base URL + path. On a
 * transport failure a retriable error; else *status and the parsed body in *doc
 * (NULL when the body is not JSON; caller decrefs). */
static dashi_err http(dashi_registry *r, const char *method, const char *path, const char *body, long *status,
                      json_t **doc, char *reason, size_t reason_size, char *errstr, size_t errstr_size) {
    char *url = NULL;
    body_buf b = {0};
    CURLcode rc;
    dashi_err err = DASHI_OK;
    size_t n = strlen(r->url) + strlen(path) + 1;

    *doc = NULL;
    *status = 0;
    reason[0] = '\0';
    if (!(url = malloc(n))) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    snprintf(url, n, "%s%s", r->url, path);
    curl_easy_reset(r->curl);
    r->curl_err[0] = '\0';
    curl_easy_setopt(r->curl, CURLOPT_URL, url);
    curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->curl, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(r->curl, CURLOPT_USERAGENT, "dashi");
    if (r->ca_file)
        curl_easy_setopt(r->curl, CURLOPT_CAINFO, r->ca_file);
    if (r->user) {
        curl_easy_setopt(r->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(r->curl, CURLOPT_USERNAME, r->user);
        curl_easy_setopt(r->curl, CURLOPT_PASSWORD, r->password);
    }
    if (body) {
        curl_easy_setopt(r->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    r->requests++;
    rc = curl_easy_perform(r->curl);
    if (rc != CURLE_OK) {
        err = dashi_errf(b.too_big ? DASHI_ERR_BACKEND : DASHI_ERR_TRANSPORT, errstr, errstr_size,
                         "schema registry %s %s%s: %s", method, r->shown_url, path,
                         b.too_big ? "answer larger than 8 MiB" : r->curl_err[0] ? r->curl_err : curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, status);
    if (b.n)
        *doc = json_loadb(b.p, b.n, 0, NULL);
    registry_reason(*doc, &b, reason, reason_size);
out:
    free(b.p);
    free(url);
    return err;
}

/* The dashi_err of an HTTP status other than 200 (see registry.h). */
static dashi_err status_error(const dashi_registry *r, const char *method, const char *path, long status,
                              const char *reason, char *errstr, size_t errstr_size) {
    dashi_err err;
    if (status == 404)
        err = DASHI_ERR_NOT_FOUND;
    else if (status >= 500 || status == 408 || status == 429 || status == 401 || status == 403)
        err = DASHI_ERR_TRANSPORT;
    else
        err = DASHI_ERR_BACKEND;
    return dashi_errf(err, errstr, errstr_size, "schema registry %s %s%s: HTTP %ld%s", method, r->shown_url, path,
                      status, reason);
}

/* ---------------------------------------------------------------------------------- */
/* caches                                                                             */
/* ---------------------------------------------------------------------------------- */

static const char *cached_schema(const dashi_registry *r, int32_t id) {
    for (size_t i = 0; i < r->n_ids; i++)
        if (r->ids[i].id == id)
            return r->ids[i].schema;
    return NULL;
}

/* Cache schema (copied) under id; returns the cached text or NULL on out of memory. */
static const char *cache_schema(dashi_registry *r, int32_t id, const char *schema) {
    const char *have = cached_schema(r, id);
    if (have)
        return have;
    if (r->n_ids == r->cap_ids) {
        size_t cap = r->cap_ids ? r->cap_ids * 2 : 16;
        id_entry *v = realloc(r->ids, cap * sizeof(*v));
        if (!v)
            return NULL;
        r->ids = v;
        r->cap_ids = cap;
    }
    if (!(r->ids[r->n_ids].schema = strdup(schema)))
        return NULL;
    r->ids[r->n_ids].id = id;
    return r->ids[r->n_ids++].schema;
}

static bool known_unknown(dashi_registry *r, int32_t id) {
    int64_t now = mono_ms();
    for (size_t i = 0; i < r->n_unknown; i++)
        if (r->unknown[i].id == id && r->unknown[i].until_ms > now)
            return true;
    return false;
}

static void remember_unknown(dashi_registry *r, int32_t id) {
    size_t slot = 0;
    int64_t now = mono_ms();
    if (r->unknown_ttl_ms <= 0)
        return;
    if (r->n_unknown < MAX_UNKNOWN) {
        slot = r->n_unknown++;
    } else {
        for (size_t i = 1; i < MAX_UNKNOWN; i++) /* reuse the entry that expires first */
            if (r->unknown[i].until_ms < r->unknown[slot].until_ms)
                slot = i;
    }
    r->unknown[slot].id = id;
    r->unknown[slot].until_ms = now + r->unknown_ttl_ms;
}

/* ---------------------------------------------------------------------------------- */
/* the two calls                                                                      */
/* ---------------------------------------------------------------------------------- */

dashi_err dashi_registry_schema_by_id(dashi_registry *reg, int32_t id, const char **schema, char *errstr,
                                      size_t errstr_size) {
    char path[64], reason[400];
    long status = 0;
    json_t *doc = NULL;
    const json_t *s, *type;
    dashi_err err = DASHI_OK;

    if (!reg || !schema) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "schema_by_id: bad arguments");
        goto out;
    }
    *schema = NULL;
    if ((*schema = cached_schema(reg, id)))
        goto out;
    if (known_unknown(reg, id)) {
        err = dashi_errf(DASHI_ERR_NOT_FOUND, errstr, errstr_size,
                         "schema registry %s does not know schema id %d (asked less than %lld ms ago)", reg->shown_url,
                         (int)id, (long long)reg->unknown_ttl_ms);
        goto out;
    }
    snprintf(path, sizeof(path), "/schemas/ids/%d", (int)id);
    if ((err = http(reg, "GET", path, NULL, &status, &doc, reason, sizeof(reason), errstr, errstr_size)))
        goto out;
    if (status != 200) {
        err = status_error(reg, "GET", path, status, reason, errstr, errstr_size);
        if (err == DASHI_ERR_NOT_FOUND)
            remember_unknown(reg, id);
        goto out;
    }
    s = json_object_get(doc, "schema");
    type = json_object_get(doc, "schemaType");
    if (!json_is_string(s)) {
        err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "schema registry GET %s%s: HTTP 200 without a \"schema\"",
                         reg->shown_url, path);
        goto out;
    }
    if (type && (!json_is_string(type) || strcmp(json_string_value(type), "AVRO") != 0)) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "schema id %d is a %s schema: dashi reads Avro",
                         (int)id, json_is_string(type) ? json_string_value(type) : "non-Avro");
        goto out;
    }
    if (!(*schema = cache_schema(reg, id, json_string_value(s))))
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
out:
    json_decref(doc);
    return err;
}

static subject_entry *cached_subject(const dashi_registry *r, const char *subject, const char *schema) {
    for (size_t i = 0; i < r->n_subs; i++)
        if (strcmp(r->subs[i].subject, subject) == 0 && strcmp(r->subs[i].schema, schema) == 0)
            return &r->subs[i];
    return NULL;
}

dashi_err dashi_registry_id_for(dashi_registry *reg, const char *subject, const char *schema, int32_t *id,
                                char *errstr, size_t errstr_size) {
    char *esc = NULL, *path = NULL, *body = NULL, reason[400];
    json_t *req = NULL, *doc = NULL;
    const json_t *jid;
    const subject_entry *hit;
    long status = 0;
    size_t n;
    dashi_err err = DASHI_OK;

    if (!reg || !subject || !schema || !id) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "id_for: bad arguments");
        goto out;
    }
    if ((hit = cached_subject(reg, subject, schema))) {
        *id = hit->id;
        goto out;
    }
    if (!(esc = curl_easy_escape(reg->curl, subject, 0)) || !(req = json_pack("{s:s}", "schema", schema)) ||
        !(body = json_dumps(req, JSON_COMPACT))) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    n = strlen(esc) + 32;
    if (!(path = malloc(n))) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    snprintf(path, n, reg->auto_register ? "/subjects/%s/versions" : "/subjects/%s", esc);
    if ((err = http(reg, "POST", path, body, &status, &doc, reason, sizeof(reason), errstr, errstr_size)))
        goto out;
    if (status != 200) {
        err = status_error(reg, "POST", path, status, reason, errstr, errstr_size);
        goto out;
    }
    jid = json_object_get(doc, "id");
    if (!json_is_integer(jid) || json_integer_value(jid) < 0 || json_integer_value(jid) > INT32_MAX) {
        err = dashi_errf(DASHI_ERR_BACKEND, errstr, errstr_size, "schema registry POST %s%s: HTTP 200 without an id",
                         reg->shown_url, path);
        goto out;
    }
    *id = (int32_t)json_integer_value(jid);
    if (reg->n_subs == reg->cap_subs) {
        size_t cap = reg->cap_subs ? reg->cap_subs * 2 : 16;
        subject_entry *v = realloc(reg->subs, cap * sizeof(*v));
        if (!v) {
            err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
            goto out;
        }
        reg->subs = v;
        reg->cap_subs = cap;
    }
    reg->subs[reg->n_subs].subject = dashi_strdup(subject);
    reg->subs[reg->n_subs].schema = dashi_strdup(schema);
    reg->subs[reg->n_subs].id = *id;
    reg->n_subs++;
    if (!cache_schema(reg, *id, schema))
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
out:
    if (esc)
        curl_free(esc);
    free(path);
    free(body);
    json_decref(req);
    json_decref(doc);
    return err;
}
