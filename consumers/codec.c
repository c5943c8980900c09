/* codec.c — Avro schemas generated from the event descriptors, and the Confluent-framed Avro codec.
 *
 * Three walkers over the descriptor tables of core/event_desc.h: one writes the
 * Avro schema of a record (optional fields become ["null", T] with default null,
 * instants long/timestamp-millis, enums named Avro enums, nested records named once
 * per schema and referenced by full name after), one fills an avro-c generic value
 * from a struct (encode), one reads a struct from an avro-c value by field name
 * (decode). Decoding never hands avro-c bytes it has not checked: check_value walks
 * the writer schema over the body first, so a claimed string length or block count
 * larger than the buffer, a bad enum index or union branch, a truncated body or
 * trailing bytes are rejected here with a byte offset, before avro-c would try to
 * allocate or read them (avro-c 1.11.1 mallocs a claimed string length unchecked).
 * A body written with the current schema is read straight into the type's generic
 * value; other writer schemas go through avro_resolved_writer_new. avro-c 1.11.1
 * cannot resolve a reader field that the writer lacks ("NIY: Default values"), and
 * its resolver copies enum indexes without matching symbols; for such writer schemas
 * (and any whose enums differ from ours) the body is read with the writer's own
 * class and mapped by field and symbol name, which gives the same result as Avro
 * resolution. Two avro-c lookups read garbage on a miss (avro_schema_enum_get,
 * avro_schema_record_field_get): they are only called with checked indexes here.
 *
 * Memory: schemas, classes (ifaces) and values are avro-c reference-counted objects,
 * each released with its own destructor (avro_schema_decref, avro_value_iface_decref,
 * avro_value_decref); a resolved value is released before the value it writes into.
 */
#include "consumers/codec.h"

#include <avro.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers/registry.h"
#include "core/event_desc.h"

#define PATH_LEN 256
#define MAX_SCHEMA_DEPTH 32
#define MAX_ELEMENTS (1u << 16) /* array/map elements per message, a bound on zero-width items */
/* One array or map: the largest limit of any field (event.h); validation then applies
 * each field's own limit. Checked on the claimed counts, before avro-c allocates. */
#define MAX_ARRAY_ELEMENTS DASHI_MAX_ARRAY_LEN

/* ---------------------------------------------------------------------------------- */
/* schema generation                                                                  */
/* ---------------------------------------------------------------------------------- */

static json_t *record_schema(const dashi_record_desc *d, json_t *defined, int top);

static json_t *full_name(const char *name) {
    char buf[128];
    if (snprintf(buf, sizeof(buf), "%s.%s", DASHI_AVRO_NAMESPACE, name) >= (int)sizeof(buf))
        return NULL;
    return json_string(buf);
}

/* First use of a named type in a schema defines it; later uses name it. */
static int named_seen(json_t *defined, const char *name) {
    if (json_object_get(defined, name))
        return 1;
    json_object_set_new(defined, name, json_true());
    return 0;
}

static json_t *enum_schema(dashi_enum_kind k, json_t *defined) {
    const char *name = dashi_enum_avro_name(k);
    json_t *syms;
    if (named_seen(defined, name))
        return full_name(name);
    if (!(syms = json_array()))
        return NULL;
    for (int i = 0; i < dashi_enum_count(k); i++)
        json_array_append_new(syms, json_string(dashi_enum_name(k, i)));
    return json_pack("{s:s, s:s, s:o}", "type", "enum", "name", name, "symbols", syms);
}

static json_t *value_schema(const dashi_field_desc *f, json_t *defined) {
    switch (f->kind) {
    case DASHI_FK_STRING:
        return json_string("string");
    case DASHI_FK_TIME:
        return json_pack("{s:s, s:s}", "type", "long", "logicalType", "timestamp-millis");
    case DASHI_FK_INT:
        return json_string("long");
    case DASHI_FK_BOOL:
        return json_string("boolean");
    case DASHI_FK_ENUM:
        return enum_schema(f->enum_kind, defined);
    case DASHI_FK_STRUCT_PTR:
        return record_schema(f->sub, defined, 0);
    case DASHI_FK_STRUCT_ARRAY:
        return json_pack("{s:s, s:o*}", "type", "array", "items", record_schema(f->sub, defined, 0));
    case DASHI_FK_STRING_ARRAY:
        return json_pack("{s:s, s:s}", "type", "array", "items", "string");
    case DASHI_FK_ENUM_ARRAY:
        return json_pack("{s:s, s:o*}", "type", "array", "items", enum_schema(f->enum_kind, defined));
    case DASHI_FK_STRING_MAP:
        return json_pack("{s:s, s:s}", "type", "map", "values", "string");
    }
    return NULL;
}

static json_t *field_schema(const dashi_field_desc *f, json_t *defined) {
    json_t *t = value_schema(f, defined);
    if (!t)
        return NULL;
    if (f->flags & DASHI_FF_OPTIONAL)
        return json_pack("{s:s, s:[s,o], s:n}", "name", f->name, "type", "null", t, "default");
    if (f->flags & DASHI_FF_DEFAULT)
        return json_pack("{s:s, s:o, s:b}", "name", f->name, "type", t, "default", 0);
    return json_pack("{s:s, s:o}", "name", f->name, "type", t);
}

static json_t *record_schema(const dashi_record_desc *d, json_t *defined, int top) {
    json_t *rec = NULL, *fields = NULL;

    if (named_seen(defined, d->name))
        return full_name(d->name);
    if (!(fields = json_array()))
        goto out;
    for (size_t i = 0; i < d->n_fields; i++) {
        json_t *f = field_schema(&d->fields[i], defined);
        if (!f || json_array_append_new(fields, f))
            goto out;
    }
    if (top)
        rec = json_pack("{s:s, s:s, s:s, s:s, s:O}", "type", "record", "name", d->name, "namespace",
                        DASHI_AVRO_NAMESPACE, "doc", d->doc, "fields", fields);
    else
        rec = json_pack("{s:s, s:s, s:s, s:O}", "type", "record", "name", d->name, "doc", d->doc,
                        "fields", fields);
out:
    json_decref(fields);
    return rec;
}

json_t *dashi_event_avro_schema(dashi_event_type t) {
    const dashi_record_desc *d = dashi_event_desc(t);
    json_t *defined = NULL, *schema = NULL;

    if (!d || !(defined = json_object()))
        goto out;
    schema = record_schema(d, defined, 1);
out:
    json_decref(defined);
    return schema;
}

char *dashi_event_avro_schema_text(dashi_event_type t) {
    json_t *schema = dashi_event_avro_schema(t);
    char *body = NULL, *text = NULL;
    size_t n;

    if (!schema || !(body = json_dumps(schema, JSON_INDENT(2) | JSON_PRESERVE_ORDER)))
        goto out;
    n = strlen(body);
    if (!(text = malloc(n + 2)))
        goto out;
    memcpy(text, body, n);
    text[n] = '\n';
    text[n + 1] = '\0';
out:
    free(body);
    json_decref(schema);
    return text;
}

/* ---------------------------------------------------------------------------------- */
/* codec object                                                                       */
/* ---------------------------------------------------------------------------------- */

typedef struct codec_type {
    avro_schema_t schema;        /* current (reader) schema */
    avro_value_iface_t *iface;   /* its generic class */
    avro_value_t value;          /* scratch: encode source, decode destination */
    bool has_value;
    int32_t encode_id;
    bool has_encode_id;
} codec_type;

typedef struct codec_entry {
    int32_t id;
    dashi_event_type type;
    uint64_t seq;                       /* registration order: the latest equal schema encodes */
    bool current;                       /* writer schema equals the type's current schema */
    avro_schema_t writer;
    avro_value_iface_t *resolved_iface; /* writer -> reader; NULL when avro-c cannot resolve */
    avro_value_t resolved;              /* writes into the type's scratch value */
    bool has_resolved;
    avro_value_iface_t *writer_iface;   /* fallback: the writer's own generic class */
    avro_value_t writer_value;
    bool has_writer_value;
    bool fetched;                       /* fetched by id from the registry: decodes, never encodes */
} codec_entry;

struct dashi_codec {
    codec_type types[DASHI_EV__COUNT];
    codec_entry *entries;
    size_t n_entries, cap_entries;
    uint64_t next_seq;
    dashi_registry *reg;                /* owned; NULL: ids from the configuration only */
};

static void entry_release(codec_entry *e) {
    if (e->has_resolved)
        avro_value_decref(&e->resolved);
    if (e->resolved_iface)
        avro_value_iface_decref(e->resolved_iface);
    if (e->has_writer_value)
        avro_value_decref(&e->writer_value);
    if (e->writer_iface)
        avro_value_iface_decref(e->writer_iface);
    if (e->writer)
        avro_schema_decref(e->writer);
    memset(e, 0, sizeof(*e));
}

void dashi_codec_destroy(dashi_codec *codec) {
    if (!codec)
        return;
    for (size_t i = 0; i < codec->n_entries; i++)
        entry_release(&codec->entries[i]);
    free(codec->entries);
    dashi_registry_destroy(codec->reg);
    for (int t = 0; t < DASHI_EV__COUNT; t++) {
        codec_type *ct = &codec->types[t];
        if (ct->has_value)
            avro_value_decref(&ct->value);
        if (ct->iface)
            avro_value_iface_decref(ct->iface);
        if (ct->schema)
            avro_schema_decref(ct->schema);
    }
    free(codec);
}

static void recompute_encode_ids(dashi_codec *codec) {
    for (int t = 0; t < DASHI_EV__COUNT; t++) {
        const codec_entry *best = NULL;
        for (size_t i = 0; i < codec->n_entries; i++) {
            const codec_entry *e = &codec->entries[i];
            if ((int)e->type == t && e->current && !e->fetched && (!best || e->seq > best->seq))
                best = e;
        }
        codec->types[t].has_encode_id = best != NULL;
        codec->types[t].encode_id = best ? best->id : -1;
    }
}

static dashi_err register_entry(dashi_codec *codec, int32_t id, dashi_event_type t, const char *writer_schema_json,
                                bool fetched, char *errstr, size_t errstr_size);

/* The reader schema and scratch value of every type; with fixed_ids, type t's
 * current schema under id t + 1. */
static dashi_codec *codec_create(bool fixed_ids, char *errstr, size_t errstr_size) {
    dashi_codec *codec = calloc(1, sizeof(*codec));
    char *text = NULL;
    dashi_err err = DASHI_OK;

    if (!codec) {
        dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    for (int t = 0; t < DASHI_EV__COUNT && !err; t++) {
        codec_type *ct = &codec->types[t];
        free(text);
        if (!(text = dashi_event_avro_schema_text((dashi_event_type)t))) {
            err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
            break;
        }
        if (avro_schema_from_json_length(text, strlen(text), &ct->schema)) {
            ct->schema = NULL;
            err = dashi_errf(DASHI_ERR_INTERNAL, errstr, errstr_size,
                             "generated schema of %s rejected by avro-c: %s",
                             dashi_event_type_name((dashi_event_type)t), avro_strerror());
            break;
        }
        if (!(ct->iface = avro_generic_class_from_schema(ct->schema)) ||
            avro_generic_value_new(ct->iface, &ct->value)) {
            err = dashi_errf(DASHI_ERR_INTERNAL, errstr, errstr_size, "avro class of %s: %s",
                             dashi_event_type_name((dashi_event_type)t), avro_strerror());
            break;
        }
        ct->has_value = true;
        if (fixed_ids)
            err = register_entry(codec, t + 1, (dashi_event_type)t, text, false, errstr, errstr_size);
    }
    free(text);
    if (err) {
        dashi_codec_destroy(codec);
        return NULL;
    }
    return codec;
}

/* Non-zero when every enum reachable in s that carries one of our enum names has
 * exactly our symbols in our order (so avro-c's index copy is right). */
static int writer_enums_positional(avro_schema_t s, int depth) {
    if (depth > MAX_SCHEMA_DEPTH)
        return 0;
    switch (avro_typeof(s)) {
    case AVRO_ENUM:
        for (int k = 0; k < DASHI_ENUM__COUNT; k++) {
            if (strcmp(avro_schema_name(s), dashi_enum_avro_name((dashi_enum_kind)k)) != 0)
                continue;
            if (avro_schema_enum_number_of_symbols(s) != dashi_enum_count((dashi_enum_kind)k))
                return 0;
            for (int i = 0; i < dashi_enum_count((dashi_enum_kind)k); i++)
                if (strcmp(avro_schema_enum_get(s, i), dashi_enum_name((dashi_enum_kind)k, i)) != 0)
                    return 0;
        }
        return 1;
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++)
            if (!writer_enums_positional(avro_schema_record_field_get_by_index(s, (int)i), depth + 1))
                return 0;
        return 1;
    case AVRO_UNION:
        for (size_t i = 0; i < avro_schema_union_size(s); i++)
            if (!writer_enums_positional(avro_schema_union_branch(s, (int)i), depth + 1))
                return 0;
        return 1;
    case AVRO_ARRAY:
        return writer_enums_positional(avro_schema_array_items(s), depth + 1);
    case AVRO_MAP:
        return writer_enums_positional(avro_schema_map_values(s), depth + 1);
    default:
        return 1; /* primitives; links name a type checked where it was defined */
    }
}

/* Non-zero when a writer field of schema s can be read into field f (a union fits
 * when one of its branches does). Nested records are checked when decoded. */
static int writer_type_fits(const dashi_field_desc *f, avro_schema_t s, int depth) {
    if (depth > MAX_SCHEMA_DEPTH)
        return 0;
    switch (avro_typeof(s)) {
    case AVRO_LINK:
        return writer_type_fits(f, avro_schema_link_target(s), depth + 1);
    case AVRO_UNION:
        for (size_t i = 0; i < avro_schema_union_size(s); i++) {
            avro_schema_t b = avro_schema_union_branch(s, (int)i);
            if (avro_typeof(b) != AVRO_NULL && writer_type_fits(f, b, depth + 1))
                return 1;
        }
        return 0;
    case AVRO_STRING:
        return f->kind == DASHI_FK_STRING || f->kind == DASHI_FK_ENUM;
    case AVRO_INT32:
    case AVRO_INT64:
        return f->kind == DASHI_FK_INT || f->kind == DASHI_FK_TIME;
    case AVRO_BOOLEAN:
        return f->kind == DASHI_FK_BOOL;
    case AVRO_ENUM:
        return f->kind == DASHI_FK_ENUM;
    case AVRO_RECORD:
        return f->kind == DASHI_FK_STRUCT_PTR;
    case AVRO_ARRAY:
        return f->kind == DASHI_FK_STRUCT_ARRAY || f->kind == DASHI_FK_STRING_ARRAY ||
               f->kind == DASHI_FK_ENUM_ARRAY;
    case AVRO_MAP:
        return f->kind == DASHI_FK_STRING_MAP;
    default:
        return 0;
    }
}

static codec_entry *find_entry(const dashi_codec *codec, int32_t id) {
    for (size_t i = 0; i < codec->n_entries; i++)
        if (codec->entries[i].id == id)
            return &codec->entries[i];
    return NULL;
}

dashi_codec *dashi_codec_new(char *errstr, size_t errstr_size) {
    return codec_create(true, errstr, errstr_size);
}

/* Give type t an encode id from the registry: its current schema registered (or
 * looked up) under its subject. */
static dashi_err prepare_type(dashi_codec *codec, dashi_event_type t, char *errstr, size_t errstr_size) {
    char *text = dashi_event_avro_schema_text(t);
    int32_t id = -1;
    dashi_err err;
    if (!text)
        return dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
    if (!(err = dashi_registry_id_for(codec->reg, dashi_registry_subject(codec->reg, t), text, &id, errstr,
                                      errstr_size)))
        err = register_entry(codec, id, t, text, false, errstr, errstr_size);
    free(text);
    return err;
}

dashi_codec *dashi_codec_new_for_config(const dashi_config *cfg, uint32_t prepare, char *errstr, size_t errstr_size) {
    dashi_codec *codec = NULL;
    char why[768];

    if (!cfg || !cfg->schema_registry_url || !*cfg->schema_registry_url)
        return dashi_codec_new(errstr, errstr_size);
    if (!(codec = codec_create(false, errstr, errstr_size)))
        return NULL;
    if (!(codec->reg = dashi_registry_new(cfg, errstr, errstr_size)))
        goto fail;
    for (int t = 0; t < DASHI_EV__COUNT; t++) {
        if (!(prepare & (1u << t)))
            continue;
        if (prepare_type(codec, (dashi_event_type)t, why, sizeof(why)) != DASHI_OK) {
            dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "schema id of %s (subject %s): %s",
                       dashi_event_type_name((dashi_event_type)t), dashi_registry_subject(codec->reg, (dashi_event_type)t),
                       why);
            goto fail;
        }
    }
    return codec;
fail:
    dashi_codec_destroy(codec);
    return NULL;
}

/* The event type whose record name (namespace aside) the writer schema carries. */
static dashi_err writer_event_type(int32_t id, const char *schema_json, dashi_event_type *t, char *errstr,
                                   size_t errstr_size) {
    avro_schema_t s = NULL;
    const char *name, *dot;
    dashi_err err = DASHI_OK;
    if (avro_schema_from_json_length(schema_json, strlen(schema_json), &s)) {
        s = NULL;
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "schema id %d: not an Avro schema: %s", (int)id,
                         avro_strerror());
        goto out;
    }
    if (!is_avro_record(s)) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "schema id %d: a %s schema, not a dashi event record",
                         (int)id, avro_schema_type_name(s));
        goto out;
    }
    name = avro_schema_name(s);
    if (name && (dot = strrchr(name, '.')))
        name = dot + 1;
    for (int k = 0; k < DASHI_EV__COUNT; k++)
        if (name && strcmp(name, dashi_event_type_name((dashi_event_type)k)) == 0) {
            *t = (dashi_event_type)k;
            goto out;
        }
    err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "schema id %d: record %.100s is not a dashi event", (int)id,
                     name ? name : "?");
out:
    if (s)
        avro_schema_decref(s);
    return err;
}

/* Fetch an id decode has not seen from the registry and register it. */
static dashi_err fetch_id(dashi_codec *codec, int32_t id, char *errstr, size_t errstr_size) {
    const char *schema = NULL;
    dashi_event_type t = DASHI_EV__COUNT;
    char why[768];
    dashi_err err = dashi_registry_schema_by_id(codec->reg, id, &schema, why, sizeof(why));
    if (err == DASHI_ERR_NOT_FOUND)
        return dashi_errf(err, errstr, errstr_size, "unknown schema id %d: %s", (int)id, why);
    if (err)
        return dashi_errf(err, errstr, errstr_size, "%s", why);
    if ((err = writer_event_type(id, schema, &t, errstr, errstr_size)))
        return err;
    return register_entry(codec, id, t, schema, true, errstr, errstr_size);
}

dashi_err dashi_codec_register(dashi_codec *codec, int32_t id, dashi_event_type t,
                               const char *writer_schema_json, char *errstr, size_t errstr_size) {
    return register_entry(codec, id, t, writer_schema_json, false, errstr, errstr_size);
}

static dashi_err register_entry(dashi_codec *codec, int32_t id, dashi_event_type t, const char *writer_schema_json,
                                bool fetched, char *errstr, size_t errstr_size) {
    codec_entry e, *slot;
    const dashi_record_desc *d = dashi_event_desc(t);
    dashi_err err = DASHI_OK;

    memset(&e, 0, sizeof(e));
    if (!codec || !d || !writer_schema_json) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "register: bad arguments");
        goto out;
    }
    if (avro_schema_from_json_length(writer_schema_json, strlen(writer_schema_json), &e.writer)) {
        e.writer = NULL;
        err = dashi_errf(DASHI_ERR_PARSE, errstr, errstr_size, "schema id %d: not an Avro schema: %s",
                         (int)id, avro_strerror());
        goto out;
    }
    if (!is_avro_record(e.writer)) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                         "schema id %d: a %s schema cannot carry %s (need a record)", (int)id,
                         avro_schema_type_name(e.writer), d->name);
        goto out;
    }
    e.id = id;
    e.type = t;
    e.current = avro_schema_equal(e.writer, codec->types[t].schema) != 0;
    /* the current schema is read straight into the type's value; avro-c copies enum
     * indexes as they are: resolve only when every enum of the writer has our symbols
     * in our order, else map fields and symbols by name (fallback) */
    if (e.current) {
        /* nothing to build */
    } else if (writer_enums_positional(e.writer, 0) &&
               (e.resolved_iface = avro_resolved_writer_new(e.writer, codec->types[t].schema)) != NULL) {
        if (avro_resolved_writer_new_value(e.resolved_iface, &e.resolved)) {
            err = dashi_errf(DASHI_ERR_INTERNAL, errstr, errstr_size, "schema id %d: %s", (int)id,
                             avro_strerror());
            goto out;
        }
        e.has_resolved = true;
        avro_resolved_writer_set_dest(&e.resolved, &codec->types[t].value);
    } else {
        /* read with the writer's class, map by name: every required field must be there */
        for (size_t i = 0; i < d->n_fields; i++) {
            const dashi_field_desc *f = &d->fields[i];
            if (f->flags & (DASHI_FF_OPTIONAL | DASHI_FF_DEFAULT))
                continue;
            if (avro_schema_record_field_get_index(e.writer, f->name) < 0) {
                err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                                 "schema id %d: cannot be read as %s: required field '%s' missing",
                                 (int)id, d->name, f->name);
                goto out;
            }
        }
        for (size_t i = 0; i < d->n_fields; i++) {
            const dashi_field_desc *f = &d->fields[i];
            /* (avro_schema_record_field_get returns garbage for a name it lacks) */
            int at = avro_schema_record_field_get_index(e.writer, f->name);
            avro_schema_t fs = at < 0 ? NULL : avro_schema_record_field_get_by_index(e.writer, at);
            if (fs && !writer_type_fits(f, fs, 0)) {
                err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                                 "schema id %d: cannot be read as %s: field '%s' is a %s", (int)id,
                                 d->name, f->name, avro_schema_type_name(fs));
                goto out;
            }
        }
        if (!(e.writer_iface = avro_generic_class_from_schema(e.writer)) ||
            avro_generic_value_new(e.writer_iface, &e.writer_value)) {
            err = dashi_errf(DASHI_ERR_INTERNAL, errstr, errstr_size, "schema id %d: %s", (int)id,
                             avro_strerror());
            goto out;
        }
        e.has_writer_value = true;
    }
    if ((slot = find_entry(codec, id)) != NULL) {
        entry_release(slot);
    } else {
        if (codec->n_entries == codec->cap_entries) {
            size_t cap = codec->cap_entries ? codec->cap_entries * 2 : 32;
            codec_entry *grown = realloc(codec->entries, cap * sizeof(*grown));
            if (!grown) {
                err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
                goto out;
            }
            codec->entries = grown;
            codec->cap_entries = cap;
        }
        slot = &codec->entries[codec->n_entries++];
    }
    e.seq = ++codec->next_seq;
    e.fetched = fetched;
    *slot = e;
    memset(&e, 0, sizeof(e)); /* now owned by the codec */
    recompute_encode_ids(codec);
out:
    entry_release(&e);
    return err;
}

int32_t dashi_codec_schema_id(const dashi_codec *codec, dashi_event_type t) {
    if (!codec || (unsigned)t >= DASHI_EV__COUNT || !codec->types[t].has_encode_id)
        return -1;
    return codec->types[t].encode_id;
}

/* ---------------------------------------------------------------------------------- */
/* struct -> avro value                                                               */
/* ---------------------------------------------------------------------------------- */

#define AV(call)                   \
    do {                           \
        if ((call) != 0)           \
            return DASHI_ERR_INTERNAL; \
    } while (0)

static dashi_err record_to_avro(const dashi_record_desc *d, const void *rec, avro_value_t *rv);

static int field_absent(const dashi_field_desc *f, const void *p) {
    switch (f->kind) {
    case DASHI_FK_STRING:
    case DASHI_FK_STRUCT_PTR:
        return *(void *const *)p == NULL;
    case DASHI_FK_TIME:
        return *(const dashi_time *)p == DASHI_TIME_NONE;
    case DASHI_FK_INT:
        return *(const int64_t *)p == DASHI_INT_NONE;
    case DASHI_FK_ENUM:
        return *(const int *)p == DASHI_ENUM_NONE;
    default:
        return 0;
    }
}

static dashi_err field_to_avro(const dashi_field_desc *f, const void *rec, avro_value_t *fv) {
    const void *p = (const char *)rec + f->offset;
    const size_t n = f->kind >= DASHI_FK_STRUCT_ARRAY
                         ? *(const size_t *)((const char *)rec + f->count_offset)
                         : 0;
    avro_value_t v = *fv, elem;

    if (f->flags & DASHI_FF_OPTIONAL) {
        if (field_absent(f, p)) {
            AV(avro_value_set_branch(fv, 0, &v));
            AV(avro_value_set_null(&v));
            return DASHI_OK;
        }
        AV(avro_value_set_branch(fv, 1, &v));
    }
    switch (f->kind) {
    case DASHI_FK_STRING:
        AV(avro_value_set_string(&v, *(char *const *)p));
        break;
    case DASHI_FK_TIME:
    case DASHI_FK_INT:
        AV(avro_value_set_long(&v, *(const int64_t *)p));
        break;
    case DASHI_FK_BOOL:
        AV(avro_value_set_boolean(&v, *(const bool *)p));
        break;
    case DASHI_FK_ENUM:
        AV(avro_value_set_enum(&v, *(const int *)p)); /* symbols are in dashi enum order */
        break;
    case DASHI_FK_STRUCT_PTR:
        return record_to_avro(f->sub, *(void *const *)p, &v);
    case DASHI_FK_STRUCT_ARRAY: {
        const char *arr = *(char *const *)p;
        for (size_t k = 0; k < n; k++) {
            dashi_err err;
            AV(avro_value_append(&v, &elem, NULL));
            if ((err = record_to_avro(f->sub, arr + k * f->sub->size, &elem)))
                return err;
        }
        break;
    }
    case DASHI_FK_STRING_ARRAY: {
        char *const *arr = *(char **const *)p;
        for (size_t k = 0; k < n; k++) {
            AV(avro_value_append(&v, &elem, NULL));
            AV(avro_value_set_string(&elem, arr[k]));
        }
        break;
    }
    case DASHI_FK_ENUM_ARRAY: {
        const int *arr = *(int *const *)p;
        for (size_t k = 0; k < n; k++) {
            AV(avro_value_append(&v, &elem, NULL));
            AV(avro_value_set_enum(&elem, arr[k]));
        }
        break;
    }
    case DASHI_FK_STRING_MAP: {
        const dashi_kv *arr = *(dashi_kv *const *)p;
        for (size_t k = 0; k < n; k++) {
            AV(avro_value_add(&v, arr[k].key, &elem, NULL, NULL));
            AV(avro_value_set_string(&elem, arr[k].value));
        }
        break;
    }
    }
    return DASHI_OK;
}

static dashi_err record_to_avro(const dashi_record_desc *d, const void *rec, avro_value_t *rv) {
    for (size_t i = 0; i < d->n_fields; i++) {
        avro_value_t fv;
        dashi_err err;
        AV(avro_value_get_by_name(rv, d->fields[i].name, &fv, NULL));
        if ((err = field_to_avro(&d->fields[i], rec, &fv)))
            return err;
    }
    return DASHI_OK;
}

dashi_err dashi_codec_encode(dashi_codec *codec, const dashi_event *ev, void **buf, size_t *len,
                             char *errstr, size_t errstr_size) {
    avro_writer_t writer = NULL;
    unsigned char *out = NULL;
    size_t size = 0;
    codec_type *ct;
    dashi_err err = DASHI_OK;

    if (buf)
        *buf = NULL;
    if (len)
        *len = 0;
    if (!codec || !ev || !buf || !len) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "encode: bad arguments");
        goto out;
    }
    if ((err = dashi_event_validate(ev, errstr, errstr_size)))
        goto out;
    ct = &codec->types[ev->type];
    if (!ct->has_encode_id && codec->reg && (err = prepare_type(codec, ev->type, errstr, errstr_size)))
        goto out;
    if (!ct->has_encode_id) {
        err = dashi_errf(DASHI_ERR_NOT_FOUND, errstr, errstr_size,
                         "no schema id registered for the current %s schema",
                         dashi_event_type_name(ev->type));
        goto out;
    }
    if (avro_value_reset(&ct->value) ||
        (err = record_to_avro(dashi_event_desc(ev->type), &ev->u, &ct->value)) ||
        avro_value_sizeof(&ct->value, &size)) {
        err = dashi_errf(DASHI_ERR_INTERNAL, errstr, errstr_size, "encode %s: %s",
                         dashi_event_type_name(ev->type), avro_strerror());
        goto out;
    }
    if (!(out = malloc(DASHI_WIRE_HEADER_LEN + size))) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    out[0] = 0;
    out[1] = (unsigned char)((uint32_t)ct->encode_id >> 24);
    out[2] = (unsigned char)((uint32_t)ct->encode_id >> 16);
    out[3] = (unsigned char)((uint32_t)ct->encode_id >> 8);
    out[4] = (unsigned char)((uint32_t)ct->encode_id);
    if (!(writer = avro_writer_memory((const char *)out + DASHI_WIRE_HEADER_LEN, (int64_t)size)) ||
        avro_value_write(writer, &ct->value)) {
        err = dashi_errf(DASHI_ERR_INTERNAL, errstr, errstr_size, "encode %s: %s",
                         dashi_event_type_name(ev->type), avro_strerror());
        goto out;
    }
    *buf = out;
    *len = DASHI_WIRE_HEADER_LEN + size;
    out = NULL;
out:
    if (writer)
        avro_writer_free(writer);
    free(out);
    return err;
}

/* ---------------------------------------------------------------------------------- */
/* body check: the bytes against the writer schema, before avro-c reads them          */
/* ---------------------------------------------------------------------------------- */

typedef struct body_cursor {
    const unsigned char *p;
    size_t len, pos;
    size_t elements;   /* array/map elements seen, bounded by MAX_ELEMENTS */
    const char *why;   /* static reason of the first failure */
} body_cursor;

static int fail(body_cursor *c, const char *why) {
    if (!c->why)
        c->why = why;
    return -1;
}

/* Zig-zag varint of at most 10 bytes. */
static int read_varint(body_cursor *c, int64_t *out) {
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        unsigned char b;
        if (c->pos >= c->len)
            return fail(c, "truncated");
        b = c->p[c->pos++];
        if (i == 9 && (b & 0x7E))
            return fail(c, "varint overflows 64 bits");
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *out = (int64_t)((v >> 1) ^ (0 - (v & 1)));
            return 0;
        }
    }
    return fail(c, "varint longer than 10 bytes");
}

static int skip_bytes(body_cursor *c, size_t n) {
    if (c->len - c->pos < n)
        return fail(c, "truncated");
    c->pos += n;
    return 0;
}

static int check_value(body_cursor *c, avro_schema_t s, int depth);

/* A string or bytes value: a length, then that many bytes. */
static int check_length_prefixed(body_cursor *c) {
    int64_t v;
    if (read_varint(c, &v))
        return -1;
    if (v < 0)
        return fail(c, "negative length");
    if ((uint64_t)v > c->len - c->pos)
        return fail(c, "length beyond the end of the body");
    c->pos += (size_t)v;
    return 0;
}

static int check_blocks(body_cursor *c, avro_schema_t items, int is_map, int depth) {
    int64_t count, size;
    uint64_t total = 0;
    for (;;) {
        if (read_varint(c, &count))
            return -1;
        if (count == 0)
            return 0;
        if (count < 0) {
            if (count == INT64_MIN)
                return fail(c, "bad block count");
            count = -count;
            if (read_varint(c, &size))
                return -1;
            if (size < 0 || (uint64_t)size > c->len - c->pos)
                return fail(c, "bad block size");
        }
        if ((uint64_t)count > MAX_ELEMENTS - c->elements)
            return fail(c, "too many array or map elements");
        if ((uint64_t)count > MAX_ARRAY_ELEMENTS - total)
            return fail(c, "array or map longer than the limit");
        total += (uint64_t)count;
        c->elements += (size_t)count;
        for (int64_t k = 0; k < count; k++) {
            if (is_map && check_length_prefixed(c))
                return -1;
            if (check_value(c, items, depth + 1))
                return -1;
        }
    }
}

static int check_value(body_cursor *c, avro_schema_t s, int depth) {
    int64_t v;
    if (depth > MAX_SCHEMA_DEPTH)
        return fail(c, "schema nested too deep");
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return 0;
    case AVRO_BOOLEAN:
        if (c->pos >= c->len)
            return fail(c, "truncated");
        if (c->p[c->pos] > 1)
            return fail(c, "boolean byte not 0 or 1");
        c->pos++;
        return 0;
    case AVRO_INT32:
        if (read_varint(c, &v))
            return -1;
        if (v < INT32_MIN || v > INT32_MAX)
            return fail(c, "int out of range");
        return 0;
    case AVRO_INT64:
        return read_varint(c, &v);
    case AVRO_FLOAT:
        return skip_bytes(c, 4);
    case AVRO_DOUBLE:
        return skip_bytes(c, 8);
    case AVRO_STRING:
    case AVRO_BYTES:
        return check_length_prefixed(c);
    case AVRO_FIXED:
        return skip_bytes(c, (size_t)avro_schema_fixed_size(s));
    case AVRO_ENUM:
        if (read_varint(c, &v))
            return -1;
        if (v < 0 || v >= avro_schema_enum_number_of_symbols(s))
            return fail(c, "enum index out of range");
        return 0;
    case AVRO_UNION:
        if (read_varint(c, &v))
            return -1;
        if (v < 0 || (uint64_t)v >= avro_schema_union_size(s))
            return fail(c, "union branch out of range");
        return check_value(c, avro_schema_union_branch(s, (int)v), depth + 1);
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++)
            if (check_value(c, avro_schema_record_field_get_by_index(s, (int)i), depth + 1))
                return -1;
        return 0;
    case AVRO_ARRAY:
        return check_blocks(c, avro_schema_array_items(s), 0, depth);
    case AVRO_MAP:
        return check_blocks(c, avro_schema_map_values(s), 1, depth);
    case AVRO_LINK:
        return check_value(c, avro_schema_link_target(s), depth + 1);
    default:
        return fail(c, "unsupported schema type");
    }
}

/* ---------------------------------------------------------------------------------- */
/* avro value -> struct                                                               */
/* ---------------------------------------------------------------------------------- */

static const char *avro_type_label(avro_type_t t) {
    switch (t) {
    case AVRO_STRING: return "string";
    case AVRO_BYTES: return "bytes";
    case AVRO_INT32: return "int";
    case AVRO_INT64: return "long";
    case AVRO_FLOAT: return "float";
    case AVRO_DOUBLE: return "double";
    case AVRO_BOOLEAN: return "boolean";
    case AVRO_NULL: return "null";
    case AVRO_RECORD: return "record";
    case AVRO_ENUM: return "enum";
    case AVRO_FIXED: return "fixed";
    case AVRO_MAP: return "map";
    case AVRO_ARRAY: return "array";
    case AVRO_UNION: return "union";
    default: return "?";
    }
}

static dashi_err wrong_avro_type(const char *path, const char *expected, avro_value_t *v,
                                 char *errstr, size_t errstr_size) {
    return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: wrong type: expected %s, got Avro %s",
                      path, expected, avro_type_label(avro_value_get_type(v)));
}

/* An avro-c accessor failed on a value the body check let through. */
static dashi_err avro_fail(const char *path, char *errstr, size_t errstr_size) {
    return dashi_errf(DASHI_ERR_PARSE, errstr, errstr_size, "%s: avro-c: %s", path, avro_strerror());
}

/* The value behind v: the current branch of a union; *present 0 for null. Non-zero
 * when the union has no branch set. */
static int unwrap(avro_value_t *v, avro_value_t *out, int *present) {
    *out = *v;
    *present = 0;
    if (avro_value_get_type(v) == AVRO_UNION && avro_value_get_current_branch(v, out))
        return -1;
    *present = avro_value_get_type(out) != AVRO_NULL;
    return 0;
}

static dashi_err avro_to_string(avro_value_t *v, char **out, const char *path, char *errstr,
                                size_t errstr_size) {
    const char *s = NULL;
    size_t size = 0;
    if (avro_value_get_type(v) != AVRO_STRING)
        return wrong_avro_type(path, "string", v, errstr, errstr_size);
    if (avro_value_get_string(v, &s, &size) || !s)
        return dashi_errf(DASHI_ERR_PARSE, errstr, errstr_size, "%s: unreadable string", path);
    if (size > 0)
        size--; /* avro-c counts the NUL */
    if (memchr(s, '\0', size))
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: string contains NUL", path);
    if (!dashi_utf8_valid(s, size))
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: string is not UTF-8", path);
    if (!(*out = strndup(s, size)))
        return DASHI_ERR_NOMEM;
    return DASHI_OK;
}

static dashi_err avro_to_long(avro_value_t *v, int64_t *out, const char *path, char *errstr,
                              size_t errstr_size) {
    int32_t i32;
    switch (avro_value_get_type(v)) {
    case AVRO_INT64:
        if (avro_value_get_long(v, out))
            return avro_fail(path, errstr, errstr_size);
        break;
    case AVRO_INT32:
        if (avro_value_get_int(v, &i32))
            return avro_fail(path, errstr, errstr_size);
        *out = i32;
        break;
    default:
        return wrong_avro_type(path, "long", v, errstr, errstr_size);
    }
    if (*out == INT64_MIN) /* the NONE marker: never a value */
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: integer %lld out of range",
                          path, (long long)*out);
    return DASHI_OK;
}

static dashi_err avro_to_enum(avro_value_t *v, dashi_enum_kind k, int *out, const char *path,
                              char *errstr, size_t errstr_size) {
    const char *sym = NULL;
    int idx;
    if (avro_value_get_type(v) == AVRO_ENUM) {
        avro_schema_t es = avro_value_get_schema(v);
        if (avro_value_get_enum(v, &idx))
            return avro_fail(path, errstr, errstr_size);
        /* avro_schema_enum_get reads garbage for an index it does not have */
        if (!es || idx < 0 || idx >= avro_schema_enum_number_of_symbols(es))
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                              "%s: enum index %d out of range", path, idx);
        sym = avro_schema_enum_get(es, idx);
    } else if (avro_value_get_type(v) == AVRO_STRING) {
        size_t size;
        if (avro_value_get_string(v, &sym, &size))
            return avro_fail(path, errstr, errstr_size);
    } else {
        return wrong_avro_type(path, "enum", v, errstr, errstr_size);
    }
    if ((*out = dashi_enum_from_name(k, sym)) < 0)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: unknown enum symbol '%.60s'",
                          path, sym ? sym : "?");
    return DASHI_OK;
}

static dashi_err record_from_avro(const dashi_record_desc *d, avro_value_t *rv, void *rec,
                                  const char *path, char *errstr, size_t errstr_size);

static char *index_path(char *out, size_t size, const char *prefix, size_t k) {
    if (snprintf(out, size, "%s[%zu]", prefix, k) < 0 && size)
        out[0] = '\0';
    return out;
}

/* Element k of array v, unwrapped; a null element is an error. */
static dashi_err array_elem(avro_value_t *v, size_t k, avro_value_t *elem, const char *path,
                            char *errstr, size_t errstr_size) {
    avro_value_t raw;
    int present;
    if (avro_value_get_by_index(v, k, &raw, NULL) || unwrap(&raw, elem, &present))
        return avro_fail(path, errstr, errstr_size);
    if (!present)
        return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: null element", path);
    return DASHI_OK;
}

static dashi_err field_from_avro(const dashi_field_desc *f, avro_value_t *v, void *rec,
                                 const char *fpath, char *errstr, size_t errstr_size) {
    void *p = (char *)rec + f->offset;
    size_t *count = f->kind >= DASHI_FK_STRUCT_ARRAY ? (size_t *)((char *)rec + f->count_offset) : NULL;
    char sub[PATH_LEN];
    avro_value_t elem;
    size_t n = 0;
    dashi_err err = DASHI_OK;

    if (count) {
        avro_type_t want = f->kind == DASHI_FK_STRING_MAP ? AVRO_MAP : AVRO_ARRAY;
        if (avro_value_get_type(v) != want)
            return wrong_avro_type(fpath, want == AVRO_MAP ? "map" : "array", v, errstr, errstr_size);
        if (avro_value_get_size(v, &n))
            return avro_fail(fpath, errstr, errstr_size);
    }
    switch (f->kind) {
    case DASHI_FK_STRING:
        return avro_to_string(v, (char **)p, fpath, errstr, errstr_size);
    case DASHI_FK_TIME:
    case DASHI_FK_INT:
        return avro_to_long(v, (int64_t *)p, fpath, errstr, errstr_size);
    case DASHI_FK_BOOL: {
        int b;
        if (avro_value_get_type(v) != AVRO_BOOLEAN)
            return wrong_avro_type(fpath, "boolean", v, errstr, errstr_size);
        if (avro_value_get_boolean(v, &b))
            return avro_fail(fpath, errstr, errstr_size);
        *(bool *)p = b != 0;
        return DASHI_OK;
    }
    case DASHI_FK_ENUM:
        return avro_to_enum(v, f->enum_kind, (int *)p, fpath, errstr, errstr_size);
    case DASHI_FK_STRUCT_PTR: {
        void *s;
        if (avro_value_get_type(v) != AVRO_RECORD)
            return wrong_avro_type(fpath, "record", v, errstr, errstr_size);
        if (!(s = malloc(f->sub->size)))
            return DASHI_ERR_NOMEM;
        dashi_record_init(f->sub, s);
        *(void **)p = s;
        return record_from_avro(f->sub, v, s, fpath, errstr, errstr_size);
    }
    case DASHI_FK_STRUCT_ARRAY: {
        char *arr;
        if (n == 0)
            return DASHI_OK;
        if (!(arr = calloc(n, f->sub->size)))
            return DASHI_ERR_NOMEM;
        *(void **)p = arr;
        for (size_t k = 0; k < n && !err; k++) {
            void *erec = arr + k * f->sub->size;
            dashi_record_init(f->sub, erec);
            *count = k + 1;
            index_path(sub, sizeof(sub), fpath, k);
            if ((err = array_elem(v, k, &elem, sub, errstr, errstr_size)))
                break;
            if (avro_value_get_type(&elem) != AVRO_RECORD)
                err = wrong_avro_type(sub, "record", &elem, errstr, errstr_size);
            else
                err = record_from_avro(f->sub, &elem, erec, sub, errstr, errstr_size);
        }
        return err;
    }
    case DASHI_FK_STRING_ARRAY: {
        char **arr;
        if (n == 0)
            return DASHI_OK;
        if (!(arr = calloc(n, sizeof(*arr))))
            return DASHI_ERR_NOMEM;
        *(char ***)p = arr;
        for (size_t k = 0; k < n && !err; k++) {
            index_path(sub, sizeof(sub), fpath, k);
            if (!(err = array_elem(v, k, &elem, sub, errstr, errstr_size)) &&
                !(err = avro_to_string(&elem, &arr[k], sub, errstr, errstr_size)))
                *count = k + 1;
        }
        return err;
    }
    case DASHI_FK_ENUM_ARRAY: {
        int *arr;
        if (n == 0)
            return DASHI_OK;
        if (!(arr = calloc(n, sizeof(*arr))))
            return DASHI_ERR_NOMEM;
        *(int **)p = arr;
        *count = n;
        for (size_t k = 0; k < n && !err; k++) {
            index_path(sub, sizeof(sub), fpath, k);
            if (!(err = array_elem(v, k, &elem, sub, errstr, errstr_size)))
                err = avro_to_enum(&elem, f->enum_kind, &arr[k], sub, errstr, errstr_size);
        }
        return err;
    }
    case DASHI_FK_STRING_MAP: {
        dashi_kv *arr;
        if (n == 0)
            return DASHI_OK;
        if (!(arr = calloc(n, sizeof(*arr))))
            return DASHI_ERR_NOMEM;
        *(dashi_kv **)p = arr;
        for (size_t k = 0; k < n && !err; k++) {
            avro_value_t raw;
            const char *key = NULL;
            int present;
            if (avro_value_get_by_index(v, k, &raw, &key) || !key || unwrap(&raw, &elem, &present)) {
                err = avro_fail(fpath, errstr, errstr_size);
                break;
            }
            dashi_path_join(sub, sizeof(sub), fpath, key);
            if (!dashi_utf8_valid(key, strlen(key))) {
                err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: key is not UTF-8", fpath);
                break;
            }
            if (!present) {
                err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: null value", sub);
                break;
            }
            if (!(arr[k].key = strdup(key))) {
                err = DASHI_ERR_NOMEM;
                break;
            }
            *count = k + 1;
            err = avro_to_string(&elem, &arr[k].value, sub, errstr, errstr_size);
        }
        return err;
    }
    }
    return err;
}

static dashi_err record_from_avro(const dashi_record_desc *d, avro_value_t *rv, void *rec,
                                  const char *path, char *errstr, size_t errstr_size) {
    char fpath[PATH_LEN];
    dashi_err err = DASHI_OK;

    for (size_t i = 0; i < d->n_fields && !err; i++) {
        const dashi_field_desc *f = &d->fields[i];
        avro_value_t raw, v;
        int present = 0;
        dashi_path_join(fpath, sizeof(fpath), path, f->name);
        /* a field the writer lacks (decoding without resolution) is absent */
        if (avro_value_get_by_name(rv, f->name, &raw, NULL) == 0 && unwrap(&raw, &v, &present)) {
            err = avro_fail(fpath, errstr, errstr_size);
            break;
        }
        if (!present) {
            if (!(f->flags & (DASHI_FF_OPTIONAL | DASHI_FF_DEFAULT)))
                err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "%s: missing required field",
                                 fpath);
            continue;
        }
        err = field_from_avro(f, &v, rec, fpath, errstr, errstr_size);
    }
    return err;
}

dashi_err dashi_codec_decode(dashi_codec *codec, const void *buf, size_t len, dashi_event *out,
                             char *errstr, size_t errstr_size) {
    const unsigned char *p = buf;
    avro_reader_t reader = NULL;
    body_cursor c;
    codec_entry *e;
    avro_value_t *src;
    int32_t id;
    dashi_err err = DASHI_OK;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!codec || !out || (!buf && len)) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size, "decode: bad arguments");
        goto out;
    }
    if (len > DASHI_MAX_EVENT_BYTES) {
        err = dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                         "record of %zu bytes, more than the limit of %d", len, DASHI_MAX_EVENT_BYTES);
        goto out;
    }
    if (len < DASHI_WIRE_HEADER_LEN) {
        err = dashi_errf(DASHI_ERR_PARSE, errstr, errstr_size,
                         "truncated frame: %zu bytes, the header alone is 5", len);
        goto out;
    }
    if (p[0] != 0) {
        err = dashi_errf(DASHI_ERR_PARSE, errstr, errstr_size, "bad magic byte 0x%02x (expected 0x00)",
                         p[0]);
        goto out;
    }
    id = (int32_t)(((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 8) | p[4]);
    if (!(e = find_entry(codec, id)) && codec->reg) {
        if ((err = fetch_id(codec, id, errstr, errstr_size)))
            goto out;
        e = find_entry(codec, id);
    }
    if (!e) {
        err = dashi_errf(DASHI_ERR_NOT_FOUND, errstr, errstr_size, "unknown schema id %d", (int)id);
        goto out;
    }
    memset(&c, 0, sizeof(c));
    c.p = p + DASHI_WIRE_HEADER_LEN;
    c.len = len - DASHI_WIRE_HEADER_LEN;
    if (check_value(&c, e->writer, 0) == 0 && c.pos != c.len)
        fail(&c, "trailing bytes after the record");
    if (c.why) {
        err = dashi_errf(DASHI_ERR_PARSE, errstr, errstr_size,
                         "Avro body of %s (schema id %d): %s at byte %zu of %zu",
                         dashi_event_type_name(e->type), (int)id, c.why, c.pos, c.len);
        goto out;
    }
    if (!(reader = avro_reader_memory((const char *)c.p, (int64_t)c.len))) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    if (e->current) {
        src = &codec->types[e->type].value;
        if (avro_value_read(reader, src))
            err = DASHI_ERR_PARSE;
    } else if (e->has_resolved) {
        src = &codec->types[e->type].value;
        if (avro_value_read(reader, &e->resolved))
            err = DASHI_ERR_PARSE;
    } else {
        src = &e->writer_value;
        if (avro_value_read(reader, &e->writer_value))
            err = DASHI_ERR_PARSE;
    }
    if (err) {
        dashi_errf(err, errstr, errstr_size, "Avro body of %s (schema id %d): %s",
                   dashi_event_type_name(e->type), (int)id, avro_strerror());
        goto out;
    }
    dashi_event_init(out, e->type);
    if ((err = record_from_avro(dashi_event_desc(e->type), src, &out->u, "", errstr, errstr_size)))
        goto out;
    err = dashi_event_validate(out, errstr, errstr_size);
out:
    if (reader)
        avro_reader_free(reader);
    if (err) {
        if (err == DASHI_ERR_NOMEM)
            dashi_errf(err, errstr, errstr_size, "out of memory");
        if (out)
            dashi_event_clear(out);
    }
    return err;
}
