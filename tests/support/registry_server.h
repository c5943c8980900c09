/* registry_server.h — a stand-in Confluent Schema Registry for tests: the few endpoints dashi calls, in memory.
 *
 * Confluent's Schema Registry is a Java service that Debian does not package, so
 * the tests run this instead: libmicrohttpd on 127.0.0.1 (an ephemeral port)
 * serving GET /schemas/ids/{id}, POST /subjects/{subject}/versions (register) and
 * POST /subjects/{subject} (look up) with the registry's JSON bodies and error
 * codes (40401 subject not found, 40403 schema not found, 409 incompatible). As in
 * the real registry, ids are global and one schema content (compared as parsed
 * JSON) has one id wherever it is registered; ids start at 1001 so they can never
 * be mistaken for dashi's fixed ids 1..16. Its compatibility check is crude but in
 * the real registry's spirit: a subject whose latest version is a record of
 * another full name refuses a new one (HTTP 409).
 *
 * Knobs for failure tests: answer every request with one status, require basic
 * auth, delay every answer, fail the next n GETs. Every request is counted and
 * logged as "METHOD PATH" with the status it got.
 * The server runs in its own threads (one per connection); all calls are
 * thread-safe. Compiled into every test program.
 */
#ifndef DASHI_TEST_REGISTRY_SERVER_H
#define DASHI_TEST_REGISTRY_SERVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct dashi_test_registry dashi_test_registry;

/* Start on 127.0.0.1 with an ephemeral port; NULL with the reason in err. */
dashi_test_registry *dashi_test_registry_start(char *err, size_t err_size);
/* Stop and free; NULL-safe. */
void dashi_test_registry_stop(dashi_test_registry *r);
/* "http://127.0.0.1:PORT" (borrowed). */
const char *dashi_test_registry_url(const dashi_test_registry *r);

/* Register schema (Avro JSON text) under subject as POST .../versions would
 * (compatibility check included); its id, or -1 when refused. */
int32_t dashi_test_registry_add(dashi_test_registry *r, const char *subject, const char *schema);
/* Store schema under id with a schemaType (e.g. "PROTOBUF"; NULL: none, i.e. Avro),
 * in no subject. */
void dashi_test_registry_put(dashi_test_registry *r, int32_t id, const char *schema, const char *schema_type);
/* The id of subject's latest version, or -1. */
int32_t dashi_test_registry_subject_id(dashi_test_registry *r, const char *subject);
/* Number of subjects. */
size_t dashi_test_registry_subjects(dashi_test_registry *r);

/* Answer every request with this HTTP status and an error body (0: serve normally). */
void dashi_test_registry_fail_with(dashi_test_registry *r, int status);
/* Answer the next n GET requests with status (then serve normally again). */
void dashi_test_registry_fail_gets(dashi_test_registry *r, int n, int status);
/* Require "Authorization: Basic base64(user:password)" (NULL user: no auth). */
void dashi_test_registry_require_auth(dashi_test_registry *r, const char *user, const char *password);
/* Sleep this long before every answer. */
void dashi_test_registry_delay_ms(dashi_test_registry *r, int ms);

/* Requests received so far, and how many of them start with prefix ("GET /schemas/ids/"). */
unsigned dashi_test_registry_requests(dashi_test_registry *r);
unsigned dashi_test_registry_count(dashi_test_registry *r, const char *prefix);
/* How many of those were answered with status. */
unsigned dashi_test_registry_count_status(dashi_test_registry *r, const char *prefix, int status);
/* The Authorization header of the last request ("" when none); malloc'ed. */
char *dashi_test_registry_last_auth(dashi_test_registry *r);

#endif
