/* registry_server.c — the stand-in Schema Registry of the tests (libmicrohttpd, in-memory maps).
 *
 * Confluent's registry is not packaged in Debian; this serves the same three
 * endpoints dashi uses with the same JSON bodies and status codes (see
 * registry_server.h). State is two arrays under one mutex: schemas (id, text,
 * parsed JSON, schemaType) and subjects (name, the ids of its versions in order).
 * A POST body is gathered across the access handler's calls (libmicrohttpd hands
 * it over in pieces) and answered on the last call, when *upload_data_size is 0.
 */
#include "tests/support/registry_server.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIRST_ID 1001
#define MAX_REQUEST_BODY (1u << 20)

typedef struct schema_rec {
    int32_t id;
    char *text, *type;
    json_t *parsed;
} schema_rec;

typedef struct subject_rec {
    char *name;
    int32_t *ids;
    size_t n;
} subject_rec;

typedef struct upload {
    char *p;
    size_t n;
    int too_big;
} upload;

struct dashi_test_registry {
    struct MHD_Daemon *daemon;
    char url[64];
    pthread_mutex_t mu;
    schema_rec *schemas;
    size_t n_schemas;
    subject_rec *subjects;
    size_t n_subjects;
    int32_t next_id;
    int fail_status, delay_ms;
    int fail_gets, fail_gets_status;
    char *auth_expected; /* "Basic ..." or NULL */
    char *last_auth;
    char **log;
    int *log_status;
    size_t n_log;
};

/* ---- the maps (caller holds mu) ---- */

static schema_rec *schema_by_id(dashi_test_registry *r, int32_t id) {
    for (size_t i = 0; i < r->n_schemas; i++)
        if (r->schemas[i].id == id)
            return &r->schemas[i];
    return NULL;
}

static schema_rec *schema_by_content(dashi_test_registry *r, const json_t *parsed) {
    for (size_t i = 0; i < r->n_schemas; i++)
        if (r->schemas[i].parsed && json_equal(r->schemas[i].parsed, parsed))
            return &r->schemas[i];
    return NULL;
}

static schema_rec *schema_new(dashi_test_registry *r, int32_t id, const char *text, json_t *parsed, const char *type) {
    r->schemas = realloc(r->schemas, (r->n_schemas + 1) * sizeof(*r->schemas));
    schema_rec *s = &r->schemas[r->n_schemas++];
    s->id = id;
    s->text = strdup(text);
    s->type = type ? strdup(type) : NULL;
    s->parsed = parsed;
    return s;
}

static subject_rec *subject_get(dashi_test_registry *r, const char *name, int create) {
    for (size_t i = 0; i < r->n_subjects; i++)
        if (strcmp(r->subjects[i].name, name) == 0)
            return &r->subjects[i];
    if (!create)
        return NULL;
    r->subjects = realloc(r->subjects, (r->n_subjects + 1) * sizeof(*r->subjects));
    subject_rec *s = &r->subjects[r->n_subjects++];
    s->name = strdup(name);
    s->ids = NULL;
    s->n = 0;
    return s;
}

/* "namespace.name" of a record schema (JSON), into buf. */
static void full_name(const json_t *schema, char *buf, size_t size) {
    const char *name = json_string_value(json_object_get(schema, "name"));
    const char *ns = json_string_value(json_object_get(schema, "namespace"));
    if (!name)
        snprintf(buf, size, "?");
    else if (strchr(name, '.') || !ns)
        snprintf(buf, size, "%s", name);
    else
        snprintf(buf, size, "%s.%s", ns, name);
}

/* POST /subjects/S/versions: 200 with the id, or 409 / 422 (caller holds mu). */
static int do_register(dashi_test_registry *r, const char *subject, const char *text, int32_t *id, char *msg,
                       size_t msg_size) {
    json_t *parsed = json_loads(text, JSON_DECODE_ANY, NULL);
    subject_rec *sub;
    schema_rec *s;
    char a[256], b[256];
    if (!parsed) {
        snprintf(msg, msg_size, "Invalid schema");
        return 422;
    }
    sub = subject_get(r, subject, 0);
    if (sub && sub->n) {
        schema_rec *latest = schema_by_id(r, sub->ids[sub->n - 1]);
        full_name(latest->parsed, a, sizeof(a));
        full_name(parsed, b, sizeof(b));
        if (strcmp(a, b) != 0) {
            snprintf(msg, msg_size,
                     "Schema being registered is incompatible with an earlier schema for subject \"%.100s\" (%.100s vs %.100s)",
                     subject, b, a);
            json_decref(parsed);
            return 409;
        }
    }
    if ((s = schema_by_content(r, parsed)))
        json_decref(parsed);
    else
        s = schema_new(r, r->next_id++, text, parsed, NULL);
    sub = subject_get(r, subject, 1);
    for (size_t i = 0; i < sub->n; i++)
        if (sub->ids[i] == s->id) {
            *id = s->id;
            return 200;
        }
    sub->ids = realloc(sub->ids, (sub->n + 1) * sizeof(*sub->ids));
    sub->ids[sub->n++] = s->id;
    *id = s->id;
    return 200;
}

/* ---- HTTP ---- */

static enum MHD_Result answer(struct MHD_Connection *c, int status, json_t *body /* takes */) {
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(text ? strlen(text) : 0, text ? text : (char *)"", MHD_RESPMEM_MUST_COPY);
    free(text);
    MHD_add_response_header(resp, "Content-Type", "application/vnd.schemaregistry.v1+json");
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Basic realm=\"registry\"");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static json_t *error_body(int code, const char *msg) {
    return json_pack("{s:i, s:s}", "error_code", code, "message", msg);
}

/* The answer to one complete request (caller holds mu). */
static int route(dashi_test_registry *r, const char *method, const char *url, const char *body, json_t **out) {
    char msg[512];
    int32_t id = 0;
    long n;
    char *end;
    const char *rest;

    if (strcmp(method, "GET") == 0 && strncmp(url, "/schemas/ids/", 13) == 0) {
        n = strtol(url + 13, &end, 10);
        schema_rec *s = *end == '\0' && end != url + 13 ? schema_by_id(r, (int32_t)n) : NULL;
        if (!s) {
            snprintf(msg, sizeof(msg), "Schema %s not found", url + 13);
            *out = error_body(40403, msg);
            return 404;
        }
        *out = json_pack("{s:s}", "schema", s->text);
        if (s->type)
            json_object_set_new(*out, "schemaType", json_string(s->type));
        return 200;
    }
    if (strcmp(method, "POST") == 0 && strncmp(url, "/subjects/", 10) == 0) {
        char subject[512];
        json_t *req = json_loads(body ? body : "", 0, NULL);
        const char *text = json_string_value(json_object_get(req, "schema"));
        int versions;
        rest = url + 10;
        const char *slash = strchr(rest, '/');
        versions = slash && strcmp(slash, "/versions") == 0;
        if ((slash && !versions) || (size_t)(slash ? slash - rest : (long)strlen(rest)) >= sizeof(subject)) {
            json_decref(req);
            *out = error_body(404, "HTTP 404 Not Found");
            return 404;
        }
        snprintf(subject, sizeof(subject), "%.*s", (int)(slash ? slash - rest : (long)strlen(rest)), rest);
        if (!text) {
            json_decref(req);
            *out = error_body(42201, "Invalid schema: no \"schema\" member");
            return 422;
        }
        int status;
        if (versions) {
            status = do_register(r, subject, text, &id, msg, sizeof(msg));
            *out = status == 200 ? json_pack("{s:i}", "id", (int)id) : error_body(status == 409 ? 409 : 42201, msg);
        } else {
            subject_rec *sub = subject_get(r, subject, 0);
            json_t *parsed = json_loads(text, JSON_DECODE_ANY, NULL);
            schema_rec *s = parsed ? schema_by_content(r, parsed) : NULL;
            size_t v = 0;
            json_decref(parsed);
            for (size_t i = 0; sub && s && i < sub->n && !v; i++)
                if (sub->ids[i] == s->id)
                    v = i + 1;
            if (!sub) {
                *out = error_body(40401, "Subject not found.");
                status = 404;
            } else if (!v) {
                *out = error_body(40403, "Schema not found");
                status = 404;
            } else {
                *out = json_pack("{s:s, s:i, s:i, s:s}", "subject", subject, "id", (int)s->id, "version", (int)v,
                                 "schema", s->text);
                status = 200;
            }
        }
        json_decref(req);
        return status;
    }
    *out = error_body(404, "HTTP 404 Not Found");
    return 404;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    dashi_test_registry *r = cls;
    upload *u = *con_cls;
    json_t *body = NULL;
    int status;
    (void)version;

    if (!u) { /* first call: headers only */
        if (!(u = calloc(1, sizeof(*u))))
            return MHD_NO;
        *con_cls = u;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (u->n + *upload_data_size > MAX_REQUEST_BODY) {
            u->too_big = 1;
        } else {
            u->p = realloc(u->p, u->n + *upload_data_size + 1);
            memcpy(u->p + u->n, upload_data, *upload_data_size);
            u->n += *upload_data_size;
            u->p[u->n] = '\0';
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    pthread_mutex_lock(&r->mu);
    char line[600];
    snprintf(line, sizeof(line), "%s %s", method, url);
    r->log = realloc(r->log, (r->n_log + 1) * sizeof(*r->log));
    r->log_status = realloc(r->log_status, (r->n_log + 1) * sizeof(*r->log_status));
    r->log[r->n_log] = strdup(line);
    free(r->last_auth);
    r->last_auth = strdup(auth ? auth : "");
    int delay = r->delay_ms;
    if (r->fail_status) {
        status = r->fail_status;
        body = error_body(status == 500 ? 50001 : status, "injected failure");
    } else if (r->fail_gets > 0 && strcmp(method, "GET") == 0) {
        r->fail_gets--;
        status = r->fail_gets_status;
        body = error_body(status, "injected failure");
    } else if (r->auth_expected && (!auth || strcmp(auth, r->auth_expected) != 0)) {
        status = 401;
        body = error_body(401, "Unauthorized");
    } else if (u->too_big) {
        status = 413;
        body = error_body(413, "Request body too large");
    } else {
        status = route(r, method, url, u->p, &body);
    }
    r->log_status[r->n_log++] = status;
    pthread_mutex_unlock(&r->mu);
    if (delay > 0) {
        struct timespec ts = {delay / 1000, (long)(delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return answer(c, status, body);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    upload *u = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (u) {
        free(u->p);
        free(u);
        *con_cls = NULL;
    }
}

/* ---- life cycle and knobs ---- */

dashi_test_registry *dashi_test_registry_start(char *err, size_t err_size) {
    dashi_test_registry *r = calloc(1, sizeof(*r));
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;
    if (!r) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    r->next_id = FIRST_ID;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
                                 on_request, r, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, r, MHD_OPTION_END);
    if (!r->daemon || !(info = MHD_get_daemon_info(r->daemon, MHD_DAEMON_INFO_BIND_PORT)) || info->port == 0) {
        snprintf(err, err_size, "libmicrohttpd could not start on 127.0.0.1");
        dashi_test_registry_stop(r);
        return NULL;
    }
    snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%u", (unsigned)info->port);
    return r;
}

void dashi_test_registry_stop(dashi_test_registry *r) {
    if (!r)
        return;
    if (r->daemon)
        MHD_stop_daemon(r->daemon);
    for (size_t i = 0; i < r->n_schemas; i++) {
        free(r->schemas[i].text);
        free(r->schemas[i].type);
        json_decref(r->schemas[i].parsed);
    }
    free(r->schemas);
    for (size_t i = 0; i < r->n_subjects; i++) {
        free(r->subjects[i].name);
        free(r->subjects[i].ids);
    }
    free(r->subjects);
    for (size_t i = 0; i < r->n_log; i++)
        free(r->log[i]);
    free(r->log);
    free(r->log_status);
    free(r->auth_expected);
    free(r->last_auth);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

const char *dashi_test_registry_url(const dashi_test_registry *r) {
    return r->url;
}

int32_t dashi_test_registry_add(dashi_test_registry *r, const char *subject, const char *schema) {
    char msg[512];
    int32_t id = -1;
    pthread_mutex_lock(&r->mu);
    int status = do_register(r, subject, schema, &id, msg, sizeof(msg));
    pthread_mutex_unlock(&r->mu);
    return status == 200 ? id : -1;
}

void dashi_test_registry_put(dashi_test_registry *r, int32_t id, const char *schema, const char *schema_type) {
    pthread_mutex_lock(&r->mu);
    schema_new(r, id, schema, json_loads(schema, JSON_DECODE_ANY, NULL), schema_type);
    pthread_mutex_unlock(&r->mu);
}

int32_t dashi_test_registry_subject_id(dashi_test_registry *r, const char *subject) {
    pthread_mutex_lock(&r->mu);
    subject_rec *s = subject_get(r, subject, 0);
    int32_t id = s && s->n ? s->ids[s->n - 1] : -1;
    pthread_mutex_unlock(&r->mu);
    return id;
}

size_t dashi_test_registry_subjects(dashi_test_registry *r) {
    pthread_mutex_lock(&r->mu);
    size_t n = r->n_subjects;
    pthread_mutex_unlock(&r->mu);
    return n;
}

void dashi_test_registry_fail_with(dashi_test_registry *r, int status) {
    pthread_mutex_lock(&r->mu);
    r->fail_status = status;
    pthread_mutex_unlock(&r->mu);
}

void dashi_test_registry_require_auth(dashi_test_registry *r, const char *user, const char *password) {
    char plain[512], b64[700];
    pthread_mutex_lock(&r->mu);
    free(r->auth_expected);
    r->auth_expected = NULL;
    if (user) {
        int n = snprintf(plain, sizeof(plain), "%s:%s", user, password ? password : "");
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)plain, n);
        r->auth_expected = malloc(strlen(b64) + 7);
        sprintf(r->auth_expected, "Basic %s", b64);
    }
    pthread_mutex_unlock(&r->mu);
}

void dashi_test_registry_fail_gets(dashi_test_registry *r, int n, int status) {
    pthread_mutex_lock(&r->mu);
    r->fail_gets = n;
    r->fail_gets_status = status;
    pthread_mutex_unlock(&r->mu);
}

void dashi_test_registry_delay_ms(dashi_test_registry *r, int ms) {
    pthread_mutex_lock(&r->mu);
    r->delay_ms = ms;
    pthread_mutex_unlock(&r->mu);
}

unsigned dashi_test_registry_requests(dashi_test_registry *r) {
    pthread_mutex_lock(&r->mu);
    unsigned n = (unsigned)r->n_log;
    pthread_mutex_unlock(&r->mu);
    return n;
}

unsigned dashi_test_registry_count(dashi_test_registry *r, const char *prefix) {
    unsigned n = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_log; i++)
        n += strncmp(r->log[i], prefix, strlen(prefix)) == 0;
    pthread_mutex_unlock(&r->mu);
    return n;
}

unsigned dashi_test_registry_count_status(dashi_test_registry *r, const char *prefix, int status) {
    unsigned n = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_log; i++)
        n += strncmp(r->log[i], prefix, strlen(prefix)) == 0 && r->log_status[i] == status;
    pthread_mutex_unlock(&r->mu);
    return n;
}

char *dashi_test_registry_last_auth(dashi_test_registry *r) {
    pthread_mutex_lock(&r->mu);
    char *s = strdup(r->last_auth ? r->last_auth : "");
    pthread_mutex_unlock(&r->mu);
    return s;
}
