/* codec.h — events <-> Avro binary in the Confluent wire format, and the Avro schemas of EVENTS.md.
 *
 * The Avro schemas are generated from the descriptor tables of core/event.c (the
 * files in schemas/ are their pretty-printed output, checked by a test and by
 * `dashi schemas --check`). A dashi_codec holds the current ("reader") schema of
 * every event type and a table schema id -> (event type, writer schema): ids come
 * from a Schema Registry or the configuration; by default the current schema of
 * type t is registered under id t + 1. Encoding writes magic byte 0, the 4-byte
 * big-endian id and the Avro body. Decoding checks the frame, looks the id up,
 * checks the body against the writer schema before avro-c touches it (lengths,
 * counts, enum indexes, union branches, no trailing bytes: garbage never crashes or
 * over-reads, and never makes avro-c allocate a claimed length), resolves the
 * writer schema to the reader schema (avro_resolved_writer_new; when avro-c cannot
 * resolve, e.g. a reader field with a default the writer lacks, fields are matched
 * by name), converts to a dashi_event and runs the same semantic validation as the
 * JSON reader, so a bad Avro record is rejected like bad JSON.
 *
 * A codec keeps scratch Avro values: use one codec per thread.
 */
#ifndef DASHI_CODEC_H
#define DASHI_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "consumers/config.h"
#include "core/error.h"
#include "core/event.h"

#define DASHI_AVRO_NAMESPACE "dashi.v1"
#define DASHI_WIRE_HEADER_LEN 5 /* magic byte 0 + 4-byte big-endian schema id */

typedef struct dashi_codec dashi_codec;

/* The Avro schema of event type t as JSON (new reference, caller decrefs); NULL when
 * t is out of range or on out of memory. */
json_t *dashi_event_avro_schema(dashi_event_type t);

/* The same as the text of schemas/<Type>.avsc: indented by 2, ending in a newline
 * (malloc'ed, caller frees); NULL on error. */
char *dashi_event_avro_schema_text(dashi_event_type t);

/* New codec with the current schema of every type registered under id type + 1.
 * NULL on failure, with the reason in errstr. */
dashi_codec *dashi_codec_new(char *errstr, size_t errstr_size);

/* A codec for cfg (borrowed during the call): when cfg->schema_registry_url is
 * empty, the same as dashi_codec_new. Otherwise a codec without fixed ids that owns
 * a registry client made from cfg (dashi_registry_new); the ids of the types in
 * the mask prepare (bit 1u << t for type t) are registered or looked up now, so a
 * registry that is away or refuses dashi's schemas stops start-up instead of the
 * first output. NULL with the reason in errstr. */
dashi_codec *dashi_codec_new_for_config(const dashi_config *cfg, uint32_t prepare, char *errstr, size_t errstr_size);

/* The mask of every output event type, for dashi_codec_new_for_config. */
#define DASHI_CODEC_OUTPUT_TYPES \
    ((uint32_t)(((1u << DASHI_EV__COUNT) - 1u) & ~((1u << DASHI_EV__FIRST_OUTPUT) - 1u)))

/* Free codec (and its registry client); NULL is a no-op. */
void dashi_codec_destroy(dashi_codec *codec);

/* Map schema id to event type t written with writer_schema_json (borrowed, parsed
 * and kept here). An id already registered is replaced. When the writer schema equals
 * the current schema of t, id becomes the id dashi_codec_encode uses for t (the most
 * recently registered such id wins). DASHI_ERR_PARSE when the schema is not Avro,
 * DASHI_ERR_INVALID when it is not a record or cannot be read as t (a required field
 * missing, or a field of another type). */
dashi_err dashi_codec_register(dashi_codec *codec, int32_t id, dashi_event_type t,
                               const char *writer_schema_json, char *errstr, size_t errstr_size);

/* The schema id used to encode type t; -1 when none is registered (with a registry:
 * before the type's first encode or prepare). */
int32_t dashi_codec_schema_id(const dashi_codec *codec, dashi_event_type t);

/* Validate ev and encode it into *buf (malloc'ed, caller frees), *len bytes, in the
 * Confluent wire format. DASHI_ERR_INVALID when ev does not validate,
 * DASHI_ERR_NOT_FOUND when no id is registered for its type. */
dashi_err dashi_codec_encode(dashi_codec *codec, const dashi_event *ev, void **buf, size_t *len,
                             char *errstr, size_t errstr_size);

/* Decode len bytes of buf (borrowed) into out, which is overwritten without being
 * cleared first (pass an empty or cleared event) and is left cleared on failure.
 * DASHI_ERR_PARSE on a bad frame or body (wrong magic byte, truncated, garbage),
 * DASHI_ERR_NOT_FOUND for an unknown schema id, DASHI_ERR_INVALID when the record
 * decodes but breaks EVENTS.md (as the JSON reader would say). With a registry, an
 * id not seen before is fetched: a failure of the registry itself (unreachable,
 * 5xx: dashi_err_retriable) is returned as is and says nothing about the record
 * (retry it later); an id the registry does not know is DASHI_ERR_NOT_FOUND, a
 * schema that is no dashi event DASHI_ERR_INVALID (the record is bad). */
dashi_err dashi_codec_decode(dashi_codec *codec, const void *buf, size_t len, dashi_event *out,
                             char *errstr, size_t errstr_size);

#endif
