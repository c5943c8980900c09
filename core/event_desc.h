/* event_desc.h — the descriptor tables behind event.c, for code that walks events generically.
 *
 * Every event struct of event.h (and every nested record: Identity, Item, Referral,
 * Installment) is described by one dashi_record_desc: its fields in EVENTS.md
 * order, each with its JSON/Avro name, kind, offset (and the offset of its count
 * for arrays), flags and enum kind or nested descriptor. event.c walks these for
 * JSON, validation, copy and free; consumers/codec.c walks the same tables for the
 * Avro schemas and the Avro <-> struct conversion, so the JSON form, the wire and
 * the .avsc files cannot drift apart. This header is internal to the event and
 * codec modules; everything else uses event.h.
 */
#ifndef DASHI_EVENT_DESC_H
#define DASHI_EVENT_DESC_H

#include <stddef.h>

#include "core/event.h"

typedef enum dashi_field_kind {
    DASHI_FK_STRING,       /* char *; NULL when absent */
    DASHI_FK_TIME,         /* dashi_time; DASHI_TIME_NONE when absent */
    DASHI_FK_INT,          /* int64_t; DASHI_INT_NONE when absent */
    DASHI_FK_BOOL,         /* bool */
    DASHI_FK_ENUM,         /* int of enum_kind; DASHI_ENUM_NONE when absent */
    DASHI_FK_STRUCT_PTR,   /* sub-record *; NULL when absent */
    DASHI_FK_STRUCT_ARRAY, /* sub-record *, size_t count at count_offset */
    DASHI_FK_STRING_ARRAY, /* char **, size_t count */
    DASHI_FK_ENUM_ARRAY,   /* int *, size_t count */
    DASHI_FK_STRING_MAP    /* dashi_kv *, size_t count (JSON object, Avro map<string>) */
} dashi_field_kind;

/* Field flags. */
#define DASHI_FF_OPTIONAL 0x01u /* may be absent or null; Avro ["null", T] default null */
#define DASHI_FF_NONNEG   0x02u /* integer >= 0 */
#define DASHI_FF_POSITIVE 0x04u /* integer > 0 */
#define DASHI_FF_NONEMPTY 0x08u /* string (or every string of an array) must not be "" */
#define DASHI_FF_DEFAULT  0x10u /* bool that may be absent: false (Avro default false) */
#define DASHI_FF_AMOUNT   0x20u /* integer amount in fen: at most DASHI_MAX_AMOUNT */

typedef struct dashi_record_desc dashi_record_desc;

typedef struct dashi_field_desc {
    const char *name;              /* JSON and Avro field name (borrowed, static) */
    dashi_field_kind kind;
    unsigned flags;                /* DASHI_FF_* */
    size_t offset;                 /* offsetof the value in the record */
    size_t count_offset;           /* offsetof the size_t count (arrays and maps only) */
    dashi_enum_kind enum_kind;     /* ENUM and ENUM_ARRAY only */
    const dashi_record_desc *sub;  /* STRUCT_PTR and STRUCT_ARRAY only (borrowed, static) */
    size_t max;                    /* strings: most bytes (of each element / map value); arrays and
                                    * maps: most elements; 0 = the kind's default (dashi_field_max) */
} dashi_field_desc;

/* Cross-field check of one record (e.g. the paid identity of an Item); path is the
 * record's own path ("items[0]", "" at the top). */
typedef dashi_err (*dashi_record_check_fn)(const void *rec, const char *path, char *errstr,
                                           size_t errstr_size);

struct dashi_record_desc {
    const char *name;              /* Avro record name: "AccountRegistered", "Identity" */
    const char *doc;               /* one line for the .avsc doc */
    size_t size;                   /* sizeof the C struct */
    const dashi_field_desc *fields;
    size_t n_fields;
    dashi_record_check_fn check;   /* NULL when none */
};

/* Descriptor of an event type's struct (borrowed, static); NULL when t is out of range. */
const dashi_record_desc *dashi_event_desc(dashi_event_type t);

/* Avro name of an enum kind ("AccountType", "Tier"), its number of symbols. */
const char *dashi_enum_avro_name(dashi_enum_kind k);
int dashi_enum_count(dashi_enum_kind k);

/* Set a record to its empty state: zero, and optional scalars to their NONE value. */
void dashi_record_init(const dashi_record_desc *d, void *rec);
/* Free everything a record owns and re-init it; rec NULL is a no-op. */
void dashi_record_clear(const dashi_record_desc *d, void *rec);

/* The limit of field f: most bytes of a string (or of each string of an array or
 * map value), or most elements of an array or map (the DASHI_MAX_* of event.h). */
size_t dashi_field_max(const dashi_field_desc *f);
/* Most bytes of a key of a STRING_MAP field. */
#define DASHI_MAX_MAP_KEY_LEN DASHI_MAX_ID_LEN

/* Path of a field in a record: "" + "uid" -> "uid", "items[0]" + "paid_amount" ->
 * "items[0].paid_amount". Truncated to out_size. Returns out. */
char *dashi_path_join(char *out, size_t out_size, const char *prefix, const char *name);

/* Semantic validation of a built event: required values present, strings that must
 * not be empty, string lengths and array sizes within their limits (dashi_field_max),
 * enum values in range, amounts >= 0 / > 0 and <= DASHI_MAX_AMOUNT, an order's total
 * <= DASHI_MAX_AMOUNT, the Item paid identity,
 * instants within years 0001..9999 (CST), TierAssigned.month "YYYY-MM". Shared by the
 * JSON reader and the Avro decoder. DASHI_ERR_INVALID with the field path in errstr. */
dashi_err dashi_event_validate(const dashi_event *ev, char *errstr, size_t errstr_size);

/* Bounds of an instant that validates (inclusive). */
dashi_time dashi_event_time_min(void);
dashi_time dashi_event_time_max(void);

/* Strict UTF-8 check of s[0..len) (no overlongs, no surrogates). Non-zero when valid. */
int dashi_utf8_valid(const char *s, size_t len);

#endif
