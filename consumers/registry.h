/* registry.h — a Confluent Schema Registry client (libcurl + jansson): writer schemas by id, ids of dashi's schemas.
 *
 * Two requests of the registry's REST API are used: GET /schemas/ids/{id} (the
 * reader side: the writer schema of an id met in the Confluent wire format) and
 * POST /subjects/{subject}/versions (the writer side: register a schema under a
 * subject and learn its id), or POST /subjects/{subject} when
 * schema_registry.auto_register is false (look the schema up, register nothing).
 * Answers are cached: an id's schema for good (the registry never changes what an
 * id means), a (subject, schema) pair's id for good, and an id the registry
 * answered 404 for during schema_registry.unknown_id_ttl_ms, so a stream of
 * records with a bogus id costs one request per TTL, not one per record.
 *
 * Errors say whether the same call may succeed later (dashi_err_retriable): the
 * registry unreachable, a timeout, TLS failures, HTTP 5xx, 408, 429, and 401/403
 * (credentials being rotated: the record is not at fault) are DASHI_ERR_TRANSPORT;
 * 404 is DASHI_ERR_NOT_FOUND; other 4xx (409 incompatible schema, 422 invalid
 * schema) are DASHI_ERR_BACKEND; a 200 whose body is not the expected JSON is
 * DASHI_ERR_BACKEND too. Every message names the method and the URL (with any
 * user:password@ in it masked) and the registry's own error_code and message.
 *
 * Basic auth: user from schema_registry.user, password from
 * schema_registry.password = env:NAME or file:/path (a file readable by group or
 * others is refused), never written in the configuration itself.
 *
 * One client is one libcurl easy handle (connections kept alive): use it from one
 * thread.
 */
#ifndef DASHI_REGISTRY_H
#define DASHI_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "consumers/config.h"
#include "core/error.h"
#include "core/event.h"

typedef struct dashi_registry dashi_registry;

/* A client for cfg->schema_registry_url and the other schema_registry.* settings
 * (cfg is borrowed during the call only: what is needed is copied, subjects
 * included). NULL with the reason in errstr when the URL is empty or not http(s),
 * the password reference cannot be read, or libcurl cannot start. Makes no request. */
dashi_registry *dashi_registry_new(const dashi_config *cfg, char *errstr, size_t errstr_size);

/* Free reg; NULL is a no-op. */
void dashi_registry_destroy(dashi_registry *reg);

/* The writer schema registered under id, as Avro JSON text in *schema (borrowed
 * from reg's cache, valid until destroy). Served from the cache when known; else
 * one GET /schemas/ids/{id}. DASHI_ERR_NOT_FOUND when the registry does not know id
 * (or answered so less than unknown_id_ttl_ms ago); DASHI_ERR_INVALID when the
 * schema is not Avro (schemaType PROTOBUF or JSON); the rest as in the header. */
dashi_err dashi_registry_schema_by_id(dashi_registry *reg, int32_t id, const char **schema, char *errstr,
                                      size_t errstr_size);

/* The id of schema (Avro JSON text, borrowed) under subject (borrowed): from the
 * cache, else registered (POST /subjects/{subject}/versions) or, without
 * auto_register, looked up (POST /subjects/{subject}: DASHI_ERR_NOT_FOUND when the
 * subject does not hold it). The schema is cached under the id too. */
dashi_err dashi_registry_id_for(dashi_registry *reg, const char *subject, const char *schema, int32_t *id,
                                char *errstr, size_t errstr_size);

/* The subject of event type t's schema by schema_registry.subject_strategy and the
 * topic names of the configuration the client was made from (borrowed from reg):
 * "commission-value", "account-dashi.v1.OrderPaid", "dashi.v1.TierAssigned". NULL
 * when t is out of range. */
const char *dashi_registry_subject(const dashi_registry *reg, dashi_event_type t);

/* The base URL with any user:password@ masked (borrowed), for messages. */
const char *dashi_registry_url(const dashi_registry *reg);

/* HTTP requests made so far (cache hits make none). */
uint64_t dashi_registry_requests(const dashi_registry *reg);

#endif
