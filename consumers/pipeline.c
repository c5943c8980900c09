/* pipeline.c — the live processor: consume, merge by event time per partition, apply, produce, resume.
 *
 * Tasks. Input topics are co-partitioned by uid and consumed in one group with the
 * range assignor, so partition p of every input topic belongs to one member: that
 * is task p, fenced by its own epoch. A member keeps a queue per assigned topic
 * partition and applies the earliest head of all of them by (occurred_at,
 * event_id); when a queue is empty (and that partition is not at its end) it waits
 * up to merge.wait_ms for it, as Kafka Streams does, so a customer's registration
 * is applied before the order that follows it on another topic — and one member
 * applies events in exactly replay's order.
 *
 * Effectively once. Records are applied in engine batches (docs/BATCHES.md: a
 * few Redis round trips per batch), but every step (an event or a timer) still
 * commits to Redis in its own atomic write set: the rules' state changes, the event's de-duplication marker,
 * the partition's progress "off:<topic>:<p>" = offset, a check that the task's
 * fencing epoch "ep:<p>" is still ours (taken on assignment: a member that lost
 * the partition can no longer write), and the step's outputs in an outbox
 * "ob:..." (encoded records with topic and key). Outputs are produced only after
 * the commit, by the idempotent producer; a delivery report deletes the outbox
 * entry. On assignment a member resumes at the stored progress + 1 and re-sends
 * what is left in the outbox of its partitions (same ids, same bytes). So a crash
 * anywhere loses nothing and applies nothing twice; an output may be delivered
 * twice after a crash, with the same id and content (consumers drop duplicates by
 * id).
 *
 * Kafka transactions (transactions=true). The producer gets a transactional.id
 * (see transactional_id()), init_transactions at start; each loop turn that
 * produces or consumes opens one transaction: the outputs (and dead letters,
 * and outbox re-sends) of the turn's steps, then send_offsets_to_transaction
 * with the offsets applied and the consumer's group metadata, then commit. An
 * outbox entry is deleted only after its transaction committed; an abortable
 * error aborts and the entries are sent again in the next transaction (same
 * ids, same bytes); a fatal one (fenced) stops the member with the broker's
 * message. Redis stays the authoritative progress: Kafka's committed offsets
 * are informational (resume reads Redis).
 * Which guarantee holds with which broker:
 *   - any broker, transactions=false: each event changes state once (Redis
 *     markers, epochs); every output is delivered at least once, a repeat
 *     after a crash or rebalance carries the same id and bytes (idempotent
 *     producer: no repeats from producer retries).
 *   - real Kafka (>= 2.5, KIP-447), transactions=true: the same, and
 *     read_committed consumers see each output once — except the outputs of a
 *     step whose Redis commit succeeded but whose transaction was aborted or
 *     never committed before a crash: those are in the outbox and come again
 *     in a later transaction, once (aborted records are invisible).
 *   - librdkafka's mock cluster: its transactions only acknowledge (no
 *     markers, no fencing, transactional offsets not stored), so the tests
 *     show only that transactions=true runs and gives the same outputs as
 *     replay (test_pipeline transactions_run_equals_replay), not isolation.
 *
 * Several members share one Redis: the partition's epoch fences its events, the
 * timer check (engine) makes a timer fire once, and the engine's guard makes a
 * step check that the records it writes (an ambassador's, an identity's) still
 * hold what it read, running it again otherwise — so no member's update of a
 * shared record is lost; each event applies once. With merge.group (the
 * default) the members also apply in replay's order: each publishes in Redis
 * the earliest event it may still apply per partition, and waits for the others
 * (see "the group merge" below; tests/test_rebalance.c asserts equality with
 * replay). Its price: where events of different members' partitions interleave
 * in time, the members take turns, a few Redis round trips per turn.
 *
 * Stopping (SIGTERM/SIGINT) applies what the merge allows and leaves the rest
 * queued unapplied: the next owner reads it again from the stored progress.
 *
 * Bad input (undecodable, failing validation, refused by the rules) goes to the
 * dead-letter topic with its original bytes and headers naming source topic,
 * partition, offset and reason — through the outbox too, with the progress, so it
 * is neither lost nor reprocessed.
 *
 * Redis away. Every call to Redis that fails with a retriable error (connection
 * refused, lost, timed out: DASHI_ERR_TRANSPORT) is retried with exponential
 * backoff (100 ms doubling to 5 s, logged) for at most redis.wait_ms, at
 * start-up and mid-run (a step, a dead letter, an epoch, progress); the store
 * reconnects and reloads its scripts by itself. A step is atomic, so a retry
 * either applies it or finds its marker (its reply was lost: DUPLICATE); since
 * such a step's outputs may sit unsent in the outbox, the outbox of the member's
 * partitions and timers is sent again once Redis answers. With Redis persisting
 * every write (appendonly yes, appendfsync always) a restart loses nothing; past
 * redis.wait_ms the member stops with an error without applying later records,
 * so progress never passes a record that was not applied.
 *
 * Time. Stream time is the latest event time applied; timers fire as it passes
 * them. When input is idle for idle.advance_ms (every assigned partition read to
 * its end and applied), stream time follows the wall clock
 * (capped by --clock-until for reproducible runs), so reviews end and months turn
 * without new events. Timers live in Redis and survive restarts.
 */
#include "consumers/pipeline.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "consumers/codec.h"
#include "consumers/kafka.h"
#include "consumers/log.h"
#include "consumers/telemetry.h"
#include "core/engine.h"
#include "core/hashing.h"
#include "core/rules.h"
#include "core/state.h"

#define MAX_PARTS 256
#define MAX_TOPICS 8

typedef struct in_rec {
    dashi_event ev;      /* decoded event (owned) */
    void *raw;           /* original bytes (owned), for the dead-letter topic */
    size_t raw_len;
    char *key;           /* original record key (owned), may be NULL */
    int64_t offset;
    int64_t arrived_ms;
    int ti;              /* its topic (index into topics) and partition */
    int32_t part;
} in_rec;

typedef struct queue {
    in_rec *v;
    size_t head, n, cap; /* live records are v[head .. head+n) */
} queue;

typedef struct task {
    bool assigned;
    char epoch[32];
    queue q[MAX_TOPICS];
    bool eof[MAX_TOPICS];
    int64_t eof_since[MAX_TOPICS]; /* monotonic ms when the partition was last seen at its end */
    int64_t eof_wall[MAX_TOPICS];  /* the same instant in wall-clock ms, for other members */
    bool paused[MAX_TOPICS];       /* fetching stopped: the queue holds its share (flow control) */
} task;

/* What another member published about a partition it owns (the group merge). */
typedef struct remote {
    bool known;          /* a summary of the partition's current epoch was read */
    char state;          /* 'B' busy or unowned, 'Q' records queued, 'I' idle at its end */
    int64_t written;     /* wall ms when it was published */
    int64_t eof_wall;    /* wall ms its latest empty topic reached its end; 0: none */
    dashi_time low_t;    /* 'Q': earliest queued record's (occurred_at, event_id) */
    char low_id[DASHI_MAX_ID_LEN + 1];
} remote;

typedef struct pipeline {
    const dashi_pipeline_opts *opts;
    const dashi_config *cfg;
    dashi_rules *rules;
    dashi_keyring *keys;
    dashi_state *st;
    dashi_engine *eng;
    dashi_codec *codec;
    rd_kafka_t *consumer, *producer;
    const char *topics[MAX_TOPICS];
    size_t n_topics;
    task tasks[MAX_PARTS];
    /* the batch being applied (drain) */
    in_rec **batch;           /* borrowed: records still at the heads of their queues, in merge order */
    const dashi_event **batch_ev;
    dashi_batch_result *batch_res;
    size_t cap_batch;
    dashi_writeset acks;
    dashi_time stream_time, advanced_to;
    int64_t last_input_ms;
    int64_t assigned_at_ms;  /* 0 until the first assignment: idle exit waits for it */
    bool applied_since_advance;
    dashi_pipeline_stats *stats;
    bool resend_due;          /* a step failed on Redis and was retried: its outputs may be committed but unsent */
    /* transactions=true: one Kafka transaction per loop turn (outputs + consumed offsets) */
    char txn_id[300];
    bool txn_open;
    uint64_t txn_seq;         /* number of the open (or last) transaction; tags each produced record */
    dashi_writeset txn_acks;  /* outbox deletes of records delivered in the open transaction */
    rd_kafka_topic_partition_list_t *txn_offsets; /* next offsets of what the open transaction consumed */
    /* the group merge (merge.group): partitions owned by other members */
    int n_parts;              /* partitions of the input topics (most of any topic), from metadata */
    remote rem[MAX_PARTS];    /* read once per loop turn */
    char said[MAX_PARTS][DASHI_MAX_ID_LEN + 96]; /* summary last published per owned partition */
    int64_t said_at;          /* wall ms of the last publication */
    bool remote_wait;         /* the last drain waits for another member */
    int64_t stall_since;      /* monotonic ms the merge began to wait with nothing applied; 0: not waiting */
    bool stall_gave_up;       /* waited merge.max_stall_ms: applying without the lagging partition */
    dashi_err fatal;
    char fatal_msg[512];
} pipeline;

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static dashi_time wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (dashi_time)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_fatal(pipeline *p, dashi_err err, const char *msg) {
    if (p->fatal != DASHI_OK)
        return;
    p->fatal = err;
    snprintf(p->fatal_msg, sizeof(p->fatal_msg), "%s", msg);
}

/* ---- waiting for Redis ---- */

/* Retries of one operation while Redis is unreachable (a retriable error). */
typedef struct backoff {
    int attempt;
    int64_t waited_ms;
} backoff;

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000

/* Sleep before the next try: 100 ms, doubling, capped at 5 s; logged at the
 * first failure and then at every doubling and every capped minute. False when
 * redis.wait_ms is spent or a stop was asked for: the caller gives up. */
static bool redis_backoff(pipeline *p, backoff *b, const char *what, const char *why) {
    int64_t delay = (int64_t)BACKOFF_FIRST_MS << (b->attempt < 8 ? b->attempt : 8);
    if (delay > BACKOFF_MAX_MS)
        delay = BACKOFF_MAX_MS;
    if (dashi_kafka_stop || (p->cfg->redis_wait_ms > 0 && b->waited_ms >= p->cfg->redis_wait_ms))
        return false;
    if (delay < BACKOFF_MAX_MS || b->attempt % 12 == 0 || b->waited_ms < BACKOFF_MAX_MS * 2)
        dashi_log(DASHI_LOG_WARN, "redis", "Redis unreachable (%s): %s; retry %d in %" PRId64 " ms (waited %" PRId64 " ms of %s)",
                  what, why, b->attempt + 1, delay, b->waited_ms, p->cfg->redis_wait_ms > 0 ? "redis.wait_ms" : "no limit");
    for (int64_t slept = 0; slept < delay && !dashi_kafka_stop; slept += 50) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    b->waited_ms += delay;
    b->attempt++;
    return true;
}

/* ---- queues ---- */

static void rec_clear(in_rec *r) {
    dashi_event_clear(&r->ev);
    free(r->raw);
    free(r->key);
    memset(r, 0, sizeof(*r));
}

static int queue_push(queue *q, in_rec *r) {
    if (q->head + q->n == q->cap) {
        if (q->head > 0) { /* compact */
            memmove(q->v, q->v + q->head, q->n * sizeof(*q->v));
            q->head = 0;
        }
        if (q->n == q->cap) {
            size_t cap = q->cap ? q->cap * 2 : 64;
            in_rec *v = realloc(q->v, cap * sizeof(*v));
            if (!v)
                return -1;
            q->v = v;
            q->cap = cap;
        }
    }
    q->v[q->head + q->n++] = *r;
    return 0;
}

static void queue_drop_all(queue *q) {
    for (size_t i = 0; i < q->n; i++)
        rec_clear(&q->v[q->head + i]);
    q->head = q->n = 0;
}

/* ---- outbox ---- */

static char *b64(const void *data, size_t len) {
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

static void *unb64(const char *s, size_t *len) {
    size_t n = strlen(s);
    unsigned char *out = malloc(n / 4 * 3 + 3);
    if (!out)
        return NULL;
    int k = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (k < 0) {
        free(out);
        return NULL;
    }
    while (n > 0 && s[n - 1] == '=') { /* EVP_DecodeBlock counts padding as data */
        k--;
        n--;
    }
    *len = (size_t)k;
    return out;
}

/* The outbox record: {"t": topic, "k": key, "id": id, "type": type, "v": base64 value, "h": {headers}}. */
static char *outbox_value(const char *topic, const char *key, const char *id, const char *type, const void *val,
                          size_t len, json_t *headers /* takes, may be NULL */) {
    char *v64 = b64(val, len);
    json_t *j = json_pack("{s:s,s:s?,s:s?,s:s?,s:s}", "t", topic, "k", key, "id", id, "type", type, "v", v64 ? v64 : "");
    if (j && headers)
        json_object_set(j, "h", headers);
    json_decref(headers);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    free(v64);
    return text;
}

/* The record an event step applies: the hook and step_done get the event pointer
 * drain passed in, which is the ev of a queued record. */
static const in_rec *step_record(const dashi_ctx *ctx) {
    return ctx->event ? (const in_rec *)(const void *)((const char *)ctx->event - offsetof(in_rec, ev)) : NULL;
}

/* The outbox key prefix of a step's outputs: by partition and offset for an
 * event, by due and id for a timer. */
static void outbox_prefix(const pipeline *p, const dashi_ctx *ctx, char *out, size_t size) {
    const in_rec *r = step_record(ctx);
    if (r)
        snprintf(out, size, "ob:%03d:%020" PRId64 ":%s:", (int)r->part, r->offset, p->topics[r->ti]);
    else
        snprintf(out, size, "ob:t:%020" PRId64 ":%.200s:", (int64_t)ctx->now, ctx->cause);
}

/* One output encoded for Kafka (val: malloc'ed, the caller's). */
static dashi_err encode_output(pipeline *p, const dashi_ctx *ctx, const dashi_event *ev, void **val, size_t *len) {
    char why[256];
    if (dashi_codec_encode(p->codec, ev, val, len, why, sizeof(why)) == DASHI_OK)
        return DASHI_OK;
    /* our own output does not match the contract: a bug, never the input's fault */
    dashi_log(DASHI_LOG_ERROR, "pipeline", "cannot encode %s output of %s: %s", dashi_event_type_name(ev->type), ctx->cause, why);
    return DASHI_ERR_INTERNAL;
}

/* Every step's write set also carries, for an event, its partition's progress and
 * a check of the partition's fencing epoch, and for every step its outputs in the
 * outbox. A step's set may be built more than once (a batch runs again from a
 * step) or never committed: this only adds ops; producing is step_done's. */
static dashi_err step_hook(void *opaque, const dashi_ctx *ctx, dashi_writeset *ws) {
    pipeline *p = opaque;
    char prefix[512], okey[640], num[32];
    dashi_err err = DASHI_OK;
    const in_rec *r = step_record(ctx);
    if (r) {
        char off_key[300], ep_key[32];
        snprintf(off_key, sizeof(off_key), "off:%s:%d", p->topics[r->ti], (int)r->part);
        snprintf(num, sizeof(num), "%" PRId64, r->offset);
        snprintf(ep_key, sizeof(ep_key), "ep:%d", (int)r->part);
        if ((err = dashi_writeset_add(ws, DASHI_WS_PUT, off_key, strlen(off_key), num, strlen(num), 0)) ||
            (err = dashi_writeset_add(ws, DASHI_WS_CHECK_EQ, ep_key, strlen(ep_key), p->tasks[r->part].epoch,
                                      strlen(p->tasks[r->part].epoch), 0)))
            return err;
    }
    outbox_prefix(p, ctx, prefix, sizeof(prefix));
    for (size_t i = 0; i < ctx->n_outputs && err == DASHI_OK; i++) {
        const dashi_event *ev = &ctx->outputs[i];
        void *val = NULL;
        size_t len = 0;
        if ((err = encode_output(p, ctx, ev, &val, &len)) != DASHI_OK)
            break;
        snprintf(okey, sizeof(okey), "%s%04zu", prefix, i);
        char *text = outbox_value(dashi_config_topic(p->cfg, ev->type), dashi_event_key(ev), dashi_event_id(ev),
                                  dashi_event_type_name(ev->type), val, len, NULL);
        free(val);
        if (!text)
            return DASHI_ERR_NOMEM;
        err = dashi_writeset_add(ws, DASHI_WS_PUT, okey, strlen(okey), text, strlen(text), 0);
        free(text);
    }
    return err;
}

static rd_kafka_headers_t *make_headers(const char *id, const char *type, const json_t *extra) {
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    if (id)
        rd_kafka_header_add(h, "id", -1, id, -1);
    if (type)
        rd_kafka_header_add(h, "type", -1, type, -1);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)extra, k, v) {
        if (json_is_string(v))
            rd_kafka_header_add(h, k, -1, json_string_value(v), -1);
    }
    return h;
}

/* ---- Kafka transactions (transactions=true) ---- */

#define TXN_TIMEOUT_MS 30000
#define TXN_RETRIES 5

/* A produced record's delivery-report opaque: its outbox key and its transaction. */
typedef struct dr_tag {
    uint64_t txn;
    char okey[];
} dr_tag;

static void txn_reset(pipeline *p) {
    p->txn_open = false;
    dashi_writeset_clear(&p->txn_acks);
    if (p->txn_offsets)
        rd_kafka_topic_partition_list_destroy(p->txn_offsets);
    p->txn_offsets = NULL;
}

/* An error of a transactional call. Abortable: abort; the outbox entries of the
 * transaction stay and are sent again in the next one. Anything else (fatal:
 * fenced by a newer producer with our transactional.id; or not retriable) stops
 * the member with the broker's message: progress is in Redis, nothing is lost. */
static void txn_fail(pipeline *p, rd_kafka_error_t *error, const char *what) {
    char msg[512];
    if (rd_kafka_error_txn_requires_abort(error)) {
        dashi_log(DASHI_LOG_WARN, "kafka", "Kafka transaction %" PRIu64 " %s failed: %s; aborted, its outputs go again in the next one",
                  p->txn_seq, what, rd_kafka_error_string(error));
        rd_kafka_error_t *aerr = rd_kafka_abort_transaction(p->producer, TXN_TIMEOUT_MS);
        if (aerr) {
            snprintf(msg, sizeof(msg), "Kafka transaction abort failed: %s (transactional.id %s)",
                     rd_kafka_error_string(aerr), p->txn_id);
            set_fatal(p, DASHI_ERR_TRANSPORT, msg);
            rd_kafka_error_destroy(aerr);
        }
        p->resend_due = true;
    } else {
        snprintf(msg, sizeof(msg), "Kafka transaction %s: %s%s (transactional.id %s)", what,
                 rd_kafka_error_is_fatal(error) ? "fatal error: " : "", rd_kafka_error_string(error), p->txn_id);
        set_fatal(p, DASHI_ERR_TRANSPORT, msg);
    }
    rd_kafka_error_destroy(error);
    txn_reset(p);
}

/* Open a transaction when transactions=true and none is open. */
static void txn_begin(pipeline *p) {
    if (!p->cfg->transactions || p->txn_open || p->fatal != DASHI_OK)
        return;
    rd_kafka_error_t *error = rd_kafka_begin_transaction(p->producer);
    p->txn_seq++;
    if (error) {
        txn_fail(p, error, "begin");
        return;
    }
    p->txn_open = true;
}

/* The open transaction consumed topic ti, partition part up to offset. */
static void txn_consumed(pipeline *p, int ti, int32_t part, int64_t offset) {
    if (!p->txn_open)
        return;
    if (!p->txn_offsets)
        p->txn_offsets = rd_kafka_topic_partition_list_new(16);
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(p->txn_offsets, p->topics[ti], part);
    if (!tp)
        tp = rd_kafka_topic_partition_list_add(p->txn_offsets, p->topics[ti], part);
    tp->offset = offset + 1;
}

/* Send the consumed offsets to the transaction and commit it (retried while the
 * broker says retriable); then the outbox entries it delivered can go. */
static void txn_commit(pipeline *p) {
    if (!p->txn_open)
        return;
    rd_kafka_error_t *error = NULL;
    if (p->txn_offsets && p->txn_offsets->cnt) {
        rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(p->consumer);
        for (int i = 0; i < TXN_RETRIES; i++) {
            error = rd_kafka_send_offsets_to_transaction(p->producer, p->txn_offsets, md, TXN_TIMEOUT_MS);
            if (!error || !rd_kafka_error_is_retriable(error) || i == TXN_RETRIES - 1)
                break;
            rd_kafka_error_destroy(error);
        }
        rd_kafka_consumer_group_metadata_destroy(md);
        if (error) {
            txn_fail(p, error, "send_offsets");
            return;
        }
    }
    for (int i = 0; i < TXN_RETRIES; i++) {
        error = rd_kafka_commit_transaction(p->producer, TXN_TIMEOUT_MS); /* flushes: serves delivery reports */
        if (!error || !rd_kafka_error_is_retriable(error) || i == TXN_RETRIES - 1)
            break;
        rd_kafka_error_destroy(error);
    }
    if (error) {
        txn_fail(p, error, "commit");
        return;
    }
    for (size_t i = 0; i < p->txn_acks.n; i++)
        dashi_writeset_add(&p->acks, DASHI_WS_DEL, p->txn_acks.ops[i].key, p->txn_acks.ops[i].key_len, NULL, 0, 0);
    p->stats->outputs_acked += p->txn_acks.n;
    txn_reset(p);
}

static void produce_entry(pipeline *p, const char *okey, const char *topic, const char *key, const char *id,
                          const char *type, const void *val, size_t len, const json_t *headers) {
    char errstr[512];
    txn_begin(p);
    if (p->cfg->transactions && !p->txn_open)
        return; /* the transaction could not begin (fatal): it stays in the outbox */
    size_t klen = strlen(okey);
    dr_tag *tag = malloc(sizeof(*tag) + klen + 1);
    if (!tag) {
        set_fatal(p, DASHI_ERR_NOMEM, "out of memory producing");
        return;
    }
    tag->txn = p->txn_seq;
    memcpy(tag->okey, okey, klen + 1);
    if (dashi_kafka_produce(p->producer, topic, RD_KAFKA_PARTITION_UA, key, val, len, make_headers(id, type, headers),
                            tag, errstr, sizeof(errstr)) != DASHI_OK) {
        free(tag);
        set_fatal(p, DASHI_ERR_TRANSPORT, errstr);
        return;
    }
    p->stats->outputs_produced++;
}

/* A step's set is in Redis: produce its outputs (the outbox keys its hook wrote). */
static void step_done(void *opaque, const dashi_ctx *ctx) {
    pipeline *p = opaque;
    char prefix[512], okey[640];
    outbox_prefix(p, ctx, prefix, sizeof(prefix));
    for (size_t i = 0; i < ctx->n_outputs && p->fatal == DASHI_OK; i++) {
        const dashi_event *ev = &ctx->outputs[i];
        void *val = NULL;
        size_t len = 0;
        if (encode_output(p, ctx, ev, &val, &len) != DASHI_OK) {
            set_fatal(p, DASHI_ERR_INTERNAL, "cannot encode an output that was committed");
            break;
        }
        snprintf(okey, sizeof(okey), "%s%04zu", prefix, i);
        const char *topic = dashi_config_topic(p->cfg, ev->type);
        produce_entry(p, okey, topic, dashi_event_key(ev), dashi_event_id(ev), dashi_event_type_name(ev->type), val, len,
                      NULL);
        dashi_telemetry_event_out(p->opts->tel, topic, ev);
        free(val);
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    pipeline *p = opaque;
    dr_tag *tag = m->_private;
    if (!tag)
        return;
    if (m->err) {
        /* the outbox keeps it: it is sent again on the next assignment/restart */
        dashi_log(DASHI_LOG_WARN, "kafka", "delivery of %s failed: %s (kept in the outbox)", tag->okey, rd_kafka_err2str(m->err));
    } else if (p->cfg->transactions) {
        /* delivered, but visible only if its transaction commits: the entry goes after the commit */
        if (p->txn_open && tag->txn == p->txn_seq)
            dashi_writeset_add(&p->txn_acks, DASHI_WS_DEL, tag->okey, strlen(tag->okey), NULL, 0, 0);
    } else {
        dashi_writeset_add(&p->acks, DASHI_WS_DEL, tag->okey, strlen(tag->okey), NULL, 0, 0);
        p->stats->outputs_acked++;
    }
    free(tag);
}

static void flush_acks(pipeline *p) {
    if (p->acks.n == 0)
        return;
    const dashi_writeset *sets[1] = {&p->acks};
    dashi_err result = DASHI_OK;
    char errstr[256];
    if (p->st->ops->apply(p->st, 1, sets, &result, errstr, sizeof(errstr)) != DASHI_OK)
        dashi_log(DASHI_LOG_WARN, "redis", "cannot clear acknowledged outbox entries (will retry): %s", errstr);
    else
        dashi_writeset_clear(&p->acks);
}

/* Re-send what the outbox holds under prefix (after a crash or a rebalance). */
typedef struct resend_ctx {
    pipeline *p;
    size_t n;
} resend_ctx;

static int resend_one(void *opaque, const char *key, size_t key_len, const char *val, size_t val_len) {
    resend_ctx *rc = opaque;
    json_t *j = json_loadb(val, val_len, 0, NULL);
    char okey[640];
    size_t len = 0;
    snprintf(okey, sizeof(okey), "%.*s", (int)key_len, key);
    void *bytes = j ? unb64(json_string_value(json_object_get(j, "v")) ? json_string_value(json_object_get(j, "v")) : "", &len) : NULL;
    if (bytes && json_string_value(json_object_get(j, "t"))) {
        produce_entry(rc->p, okey, json_string_value(json_object_get(j, "t")), json_string_value(json_object_get(j, "k")),
                      json_string_value(json_object_get(j, "id")), json_string_value(json_object_get(j, "type")), bytes,
                      len, json_object_get(j, "h"));
        rc->n++;
    } else {
        dashi_log(DASHI_LOG_WARN, "pipeline", "outbox entry %s is unreadable; left in place", okey);
    }
    free(bytes);
    json_decref(j);
    return 0;
}

static bool resend_outbox(pipeline *p, const char *prefix) {
    resend_ctx rc = {p, 0};
    char errstr[256];
    bool ok = p->st->ops->scan(p->st, prefix, strlen(prefix), resend_one, &rc, errstr, sizeof(errstr)) == DASHI_OK;
    if (!ok)
        dashi_log(DASHI_LOG_WARN, "redis", "cannot read the outbox %s: %s", prefix, errstr);
    p->stats->resent += rc.n;
    if (rc.n && p->opts->verbose)
        dashi_log(DASHI_LOG_INFO, "pipeline", "re-sent %zu outbox record(s) under %s", rc.n, prefix);
    return ok;
}

/* After Redis came back: a step whose reply was lost may have committed outputs
 * that were never produced. Send the outbox of every assigned partition and of
 * the timers again (an entry still in flight goes twice, same id and bytes). */
static void resend_after_outage(pipeline *p) {
    bool ok = true;
    for (int part = 0; part < MAX_PARTS && ok; part++)
        if (p->tasks[part].assigned) {
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "ob:%03d:", part);
            ok = resend_outbox(p, prefix);
        }
    if (ok && resend_outbox(p, "ob:t:")) {
        p->resend_due = false;
        dashi_log(DASHI_LOG_INFO, "redis", "Redis is back: outbox re-sent");
    }
}

/* ---- dead letters ---- */

static void dead_letter(pipeline *p, int ti, int32_t part, int64_t offset, const char *key, const void *raw,
                        size_t raw_len, const char *reason, const char *code) {
    char okey[640], num[32], off_key[300], ep_key[32], errstr[256];
    dashi_writeset ws;
    dashi_err result = DASHI_OK;
    json_t *h = json_pack("{s:s,s:s,s:s,s:s}", "source.topic", p->topics[ti], "source.partition", "", "source.offset",
                          "", "reason", reason);
    snprintf(num, sizeof(num), "%d", (int)part);
    json_object_set_new(h, "source.partition", json_string(num));
    snprintf(num, sizeof(num), "%" PRId64, offset);
    json_object_set_new(h, "source.offset", json_string(num));
    snprintf(okey, sizeof(okey), "ob:%03d:%020" PRId64 ":%s:dlq", (int)part, offset, p->topics[ti]);
    snprintf(off_key, sizeof(off_key), "off:%s:%d", p->topics[ti], (int)part);
    snprintf(ep_key, sizeof(ep_key), "ep:%d", (int)part);
    char *text = outbox_value(p->cfg->topic_dead_letter, key, NULL, "DeadLetter", raw, raw_len, json_incref(h));
    dashi_writeset_init(&ws);
    if (!text || dashi_writeset_add(&ws, DASHI_WS_CHECK_EQ, ep_key, strlen(ep_key), p->tasks[part].epoch,
                                    strlen(p->tasks[part].epoch), 0) ||
        dashi_writeset_add(&ws, DASHI_WS_PUT, off_key, strlen(off_key), num, strlen(num), 0) ||
        dashi_writeset_add(&ws, DASHI_WS_PUT, okey, strlen(okey), text, strlen(text), 0)) {
        set_fatal(p, DASHI_ERR_NOMEM, "out of memory writing a dead letter");
        goto out;
    }
    const dashi_writeset *sets[1] = {&ws};
    dashi_err aerr;
    backoff b = {0};
    while (dashi_err_retriable(aerr = p->st->ops->apply(p->st, 1, sets, &result, errstr, sizeof(errstr))) &&
           redis_backoff(p, &b, "writing a dead letter", errstr))
        ; /* idempotent: the same progress and outbox entry again */
    if (aerr != DASHI_OK) {
        set_fatal(p, aerr, errstr);
        goto out;
    }
    if (result != DASHI_OK) {
        dashi_log(DASHI_LOG_WARN, "pipeline", "partition %d was taken over (fenced); dead letter left to the new owner", (int)part);
        goto out;
    }
    produce_entry(p, okey, p->cfg->topic_dead_letter, key, NULL, "DeadLetter", raw, raw_len, h);
    txn_consumed(p, ti, part, offset);
    p->stats->dead_letters++;
    dashi_telemetry_dead_letter(p->opts->tel, code);
    dashi_log(DASHI_LOG_WARN, "pipeline", "dead letter: %s[%d]@%" PRId64 ": %s", p->topics[ti], (int)part, offset, reason);
out:
    json_decref(h);
    free(text);
    dashi_writeset_clear(&ws);
}

/* ---- assignment ---- */

static int topic_index(const pipeline *p, const char *name) {
    for (size_t i = 0; i < p->n_topics; i++)
        if (strcmp(p->topics[i], name) == 0)
            return (int)i;
    return -1;
}

static int rec_cmp(const in_rec *a, const in_rec *b) {
    dashi_time ta = dashi_event_time(&a->ev), tb = dashi_event_time(&b->ev);
    if (ta != tb)
        return ta < tb ? -1 : 1;
    return strcmp(dashi_event_id(&a->ev), dashi_event_id(&b->ev));
}

/* ---- the group merge: ordering across members ---- */

/* Members of one group each merge only their own partitions; events of
 * different partitions meet in shared records (an ambassador's counters, the
 * identity graph, a campaign) and in the global timers, so for replay's order
 * across members each member tells the others, through Redis, what it may still
 * apply. Per owned partition p it publishes "wm:<p>" =
 *     epoch|written|state|eof|low_t|low_id
 * state B: some topic's queue is empty while the partition is not at its end (or
 * it is no longer owned: records may come that are earlier than anything known);
 * Q: records are queued, the earliest of all queued being (low_t, low_id); I: none
 * queued, every topic at its end. eof is the (wall) instant its latest empty
 * topic reached its end, written the instant of publication. A member applies
 * its earliest record c only when every partition it does not own has a summary
 * of that partition's current epoch ("ep:<p>") that is not B, whose earliest
 * queued record (if Q) is later than c, and — when some topic of it is empty at
 * its end, which may still bring a late record — that was written at least
 * merge.wait_ms after c arrived and after that topic's end: the lateness bound of
 * one member's merge, carried over. The earliest queued record is a lower bound
 * of what its owner applies next (queues are FIFO; an empty queue is B or waited
 * for by the lateness rule), so two members never apply overlapping ranges of
 * event times, and the group applies in replay's (occurred_at, event_id) order;
 * timers fire in that order too, since a step fires the timers due before its
 * event and stream time follows the clock only when every partition is idle.
 * Each member publishes every loop turn its summaries change and every
 * GM_BEAT_MS at least; polls are capped at GM_BEAT_MS so a waiting member sees
 * fresh summaries. A member that vanishes (kill -9) leaves summaries that stop
 * changing: the others wait for the new owner, at most merge.max_stall_ms. */

#define GM_BEAT_MS 50

/* Is there another member's partition to wait for? */
static bool group_active(const pipeline *p) {
    if (!p->cfg->merge_group)
        return false;
    for (int part = 0; part < p->n_parts; part++)
        if (!p->tasks[part].assigned)
            return true;
    return false;
}

/* The partitions of the input topics, from the brokers' metadata (co-partitioned
 * topics: the most of any). Falls back to the assignment when metadata fails. */
static void group_partitions(pipeline *p, const rd_kafka_topic_partition_list_t *parts) {
    const struct rd_kafka_metadata *md = NULL;
    int n = 0;
    rd_kafka_resp_err_t err = rd_kafka_metadata(p->consumer, 1, NULL, &md, 5000);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < md->topic_cnt; i++)
            if (topic_index(p, md->topics[i].topic) >= 0 && md->topics[i].partition_cnt > n)
                n = md->topics[i].partition_cnt;
        rd_kafka_metadata_destroy(md);
    } else {
        dashi_log(DASHI_LOG_WARN, "pipeline", "merge.group: no metadata (%s); ordering across members uses the "
                  "assignment only", rd_kafka_err2str(err));
    }
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].partition >= n)
            n = parts->elems[i].partition + 1;
    p->n_parts = n < MAX_PARTS ? n : MAX_PARTS;
}

/* The summary of owned partition part, without epoch and time. */
static void group_summary(const pipeline *p, int part, char *out, size_t size) {
    const task *t = &p->tasks[part];
    const in_rec *low = NULL;
    int64_t eof = 0;
    bool busy = false;
    for (size_t ti = 0; ti < p->n_topics; ti++) {
        const queue *q = &t->q[ti];
        if (q->n == 0) {
            if (!t->eof[ti])
                busy = true;
            else if (t->eof_wall[ti] > eof)
                eof = t->eof_wall[ti];
        }
        for (size_t i = 0; i < q->n; i++)
            if (!low || rec_cmp(&q->v[q->head + i], low) < 0)
                low = &q->v[q->head + i];
    }
    snprintf(out, size, "%c|%" PRId64 "|%" PRId64 "|%s", busy ? 'B' : low ? 'Q' : 'I', eof,
             low && !busy ? (int64_t)dashi_event_time(&low->ev) : 0, low && !busy ? dashi_event_id(&low->ev) : "");
}

/* Write summaries: of every owned partition (busy: of the partitions in
 * revoked, as B). One write set per partition, each fenced by the partition's
 * epoch; a failure is left for the next turn (the others wait meanwhile). */
static void group_publish(pipeline *p, const rd_kafka_topic_partition_list_t *revoked) {
    if (!p->cfg->merge_group || p->n_parts == 0)
        return;
    int64_t now = wall_ms();
    char text[MAX_PARTS][sizeof(p->said[0])];
    bool pick[MAX_PARTS] = {false}, changed = false;
    size_t n = 0;
    if (revoked) {
        for (int i = 0; i < revoked->cnt; i++) {
            int32_t part = revoked->elems[i].partition;
            if (part >= 0 && part < MAX_PARTS && p->tasks[part].epoch[0] && !pick[part]) {
                pick[part] = true;
                snprintf(text[part], sizeof(text[part]), "B|0|0|");
                n++;
            }
        }
    } else {
        int owned = 0;
        for (int part = 0; part < p->n_parts; part++)
            owned += p->tasks[part].assigned;
        if (owned == p->n_parts && p->said_at != 0)
            return;
        for (int part = 0; part < p->n_parts; part++) {
            if (!p->tasks[part].assigned)
                continue;
            group_summary(p, part, text[part], sizeof(text[part]));
            if (strcmp(text[part], p->said[part]) != 0)
                changed = true;
        }
        /* once after an assignment (said_at 0), then on change or every GM_BEAT_MS; not
         * while alone with every partition: nobody reads them (a joining member is
         * assigned after our revoke, which publishes, and our next assignment again) */
        if (owned == 0 || (p->said_at != 0 && !changed && now - p->said_at < GM_BEAT_MS))
            return;
        for (int part = 0; part < p->n_parts; part++)
            if (p->tasks[part].assigned) {
                pick[part] = true;
                n++;
            }
    }
    dashi_writeset *ws = calloc(n ? n : 1, sizeof(*ws));
    const dashi_writeset **sets = calloc(n ? n : 1, sizeof(*sets));
    dashi_err *results = calloc(n ? n : 1, sizeof(*results));
    size_t k = 0;
    if (!ws || !sets || !results)
        goto out;
    for (int part = 0; part < MAX_PARTS && k < n; part++) {
        if (!pick[part])
            continue;
        char ekey[32], wkey[32], val[sizeof(p->said[0]) + 64];
        snprintf(ekey, sizeof(ekey), "ep:%d", part);
        snprintf(wkey, sizeof(wkey), "wm:%d", part);
        int len = snprintf(val, sizeof(val), "%s|%" PRId64 "|%s", p->tasks[part].epoch, now, text[part]);
        dashi_writeset_init(&ws[k]);
        dashi_writeset_add(&ws[k], DASHI_WS_CHECK_EQ, ekey, strlen(ekey), p->tasks[part].epoch,
                           strlen(p->tasks[part].epoch), 0);
        dashi_writeset_add(&ws[k], DASHI_WS_PUT, wkey, strlen(wkey), val, (size_t)len, 0);
        sets[k] = &ws[k];
        k++;
    }
    char errstr[256];
    if (p->st->ops->apply(p->st, k, sets, results, errstr, sizeof(errstr)) == DASHI_OK) {
        p->said_at = now;
        for (int part = 0; part < MAX_PARTS; part++)
            if (pick[part])
                memcpy(p->said[part], revoked ? "" : text[part], revoked ? 1 : sizeof(p->said[part]));
    }
out:
    for (size_t i = 0; i < k; i++)
        dashi_writeset_clear(&ws[i]);
    free(ws);
    free(sets);
    free(results);
}

/* Read the summaries of the partitions this member does not own, in one round
 * trip; on failure every one counts as unknown (wait). */
static void group_read(pipeline *p) {
    dashi_bytes keys[2 * MAX_PARTS], vals[2 * MAX_PARTS];
    char names[2 * MAX_PARTS][16];
    int which[MAX_PARTS];
    size_t n = 0;
    for (int part = 0; part < p->n_parts; part++) {
        p->rem[part].known = false;
        if (p->tasks[part].assigned)
            continue;
        snprintf(names[2 * n], sizeof(names[0]), "wm:%d", part);
        snprintf(names[2 * n + 1], sizeof(names[0]), "ep:%d", part);
        keys[2 * n] = (dashi_bytes){names[2 * n], strlen(names[2 * n])};
        keys[2 * n + 1] = (dashi_bytes){names[2 * n + 1], strlen(names[2 * n + 1])};
        which[n++] = part;
    }
    memset(vals, 0, sizeof(vals));
    char errstr[256];
    if (n == 0 || p->st->ops->mget(p->st, 2 * n, keys, vals, errstr, sizeof(errstr)) != DASHI_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        remote *r = &p->rem[which[i]];
        const char *w = vals[2 * i].data, *ep = vals[2 * i + 1].data;
        char epoch[32];
        long long written = 0, eof = 0, low_t = 0;
        char state = 0;
        int used = 0;
        if (w && ep && sscanf(w, "%31[^|]|%lld|%c|%lld|%lld|%n", epoch, &written, &state, &eof, &low_t, &used) == 5 &&
            used > 0 && strcmp(epoch, ep) == 0 && strlen(w + used) <= DASHI_MAX_ID_LEN) {
            r->known = true;
            r->state = state;
            r->written = written;
            r->eof_wall = eof;
            r->low_t = low_t;
            snprintf(r->low_id, sizeof(r->low_id), "%s", w + used);
        }
        free(vals[2 * i].data);
        free(vals[2 * i + 1].data);
    }
}

/* May candidate c (arrived at local monotonic ms) be applied as far as the other
 * members' partitions go? */
static bool group_allows(const pipeline *p, const in_rec *c, int64_t now_mono) {
    int64_t arrived = wall_ms() - (now_mono - c->arrived_ms);
    dashi_time ct = dashi_event_time(&c->ev);
    for (int part = 0; part < p->n_parts; part++) {
        const remote *r = &p->rem[part];
        if (p->tasks[part].assigned)
            continue;
        if (!r->known || r->state == 'B')
            return false;
        if (r->state == 'Q' && (r->low_t < ct || (r->low_t == ct && strcmp(r->low_id, dashi_event_id(&c->ev)) < 0)))
            return false;
        if ((r->eof_wall > 0 || r->state == 'I') && r->written < (arrived > r->eof_wall ? arrived : r->eof_wall) + p->cfg->merge_wait_ms)
            return false;
    }
    return true;
}

/* Is every other member's partition idle (nothing queued, at its end), as of a
 * fresh summary? Stream time may follow the clock only then. */
static bool group_idle(const pipeline *p) {
    int64_t now = wall_ms();
    for (int part = 0; part < p->n_parts; part++) {
        const remote *r = &p->rem[part];
        if (!p->tasks[part].assigned && (!r->known || r->state != 'I' || r->written < now - 4 * GM_BEAT_MS))
            return false;
    }
    return true;
}

/* ---- flow control ---- */

/* A member's queues are bounded: when they hold queue.max_events records in all
 * (a lagging topic makes the others wait, a member waiting for another keeps
 * fetching, or simply a backlog), every topic-partition holding at least its
 * share (queue.max_events / assigned topic-partitions) stops fetching
 * (rd_kafka_pause_partitions); all resume when the queues are down to half, and a
 * paused one whose own queue is down to half its share resumes at once (the merge
 * may need its next records). Pausing drops librdkafka's prefetched records of
 * the partition and resuming fetches again from the last record polled, so
 * nothing is skipped. A paused partition is not "at its end": its records after
 * the queue are unknown, so the merge waits for them once its queue is empty.
 * Revocation resumes everything (a pause outlives a reassignment in librdkafka). */
static void flow_control(pipeline *p, bool resume_all) {
    rd_kafka_topic_partition_list_t *pause = NULL, *resume = NULL;
    size_t n_tp = 0;
    int64_t total = 0;
    for (int part = 0; part < MAX_PARTS; part++)
        if (p->tasks[part].assigned) {
            n_tp += p->n_topics;
            for (size_t ti = 0; ti < p->n_topics; ti++)
                total += (int64_t)p->tasks[part].q[ti].n;
        }
    bool full = total >= p->cfg->queue_max_events, low = total <= p->cfg->queue_max_events / 2;
    int64_t share = n_tp ? p->cfg->queue_max_events / (int64_t)n_tp : p->cfg->queue_max_events;
    if (share < 2)
        share = 2;
    for (int part = 0; part < MAX_PARTS; part++) {
        task *t = &p->tasks[part];
        for (size_t ti = 0; ti < p->n_topics; ti++) {
            if (!t->paused[ti] && t->assigned && !resume_all && full && (int64_t)t->q[ti].n >= share) {
                if (!pause)
                    pause = rd_kafka_topic_partition_list_new(8);
                rd_kafka_topic_partition_list_add(pause, p->topics[ti], part);
                t->paused[ti] = true;
                t->eof[ti] = false;
                p->stats->pauses++;
            } else if (t->paused[ti] && (resume_all || low || !t->assigned || (int64_t)t->q[ti].n <= share / 2)) {
                if (!resume)
                    resume = rd_kafka_topic_partition_list_new(8);
                rd_kafka_topic_partition_list_add(resume, p->topics[ti], part);
                t->paused[ti] = false;
            }
        }
    }
    rd_kafka_resp_err_t err;
    if (pause && (err = rd_kafka_pause_partitions(p->consumer, pause)) != RD_KAFKA_RESP_ERR_NO_ERROR)
        dashi_log(DASHI_LOG_WARN, "kafka", "pausing %d topic-partition(s): %s", pause->cnt, rd_kafka_err2str(err));
    if (resume && (err = rd_kafka_resume_partitions(p->consumer, resume)) != RD_KAFKA_RESP_ERR_NO_ERROR)
        dashi_log(DASHI_LOG_WARN, "kafka", "resuming %d topic-partition(s): %s", resume->cnt, rd_kafka_err2str(err));
    if (pause)
        rd_kafka_topic_partition_list_destroy(pause);
    if (resume)
        rd_kafka_topic_partition_list_destroy(resume);
}

/* Take the fencing epoch of partition part: ep := ep + 1, compare-and-set. */
static dashi_err take_epoch(pipeline *p, int32_t part, char *errstr, size_t errstr_size) {
    char key[32];
    snprintf(key, sizeof(key), "ep:%d", (int)part);
    for (int attempt = 0; attempt < 50; attempt++) {
        dashi_bytes k = {key, strlen(key)}, v = {NULL, 0};
        dashi_err err;
        backoff b = {0};
        while (dashi_err_retriable(err = p->st->ops->mget(p->st, 1, &k, &v, errstr, errstr_size)) &&
               redis_backoff(p, &b, "taking a partition's epoch", errstr))
            ;
        if (err != DASHI_OK)
            return err;
        long long cur = v.data ? strtoll(v.data, NULL, 10) : 0;
        char next[32];
        snprintf(next, sizeof(next), "%lld", cur + 1);
        dashi_writeset ws;
        dashi_writeset_init(&ws);
        if (v.data)
            dashi_writeset_add(&ws, DASHI_WS_CHECK_EQ, key, strlen(key), v.data, v.len, 0);
        else
            dashi_writeset_add(&ws, DASHI_WS_CHECK_ABSENT, key, strlen(key), NULL, 0, 0);
        dashi_writeset_add(&ws, DASHI_WS_PUT, key, strlen(key), next, strlen(next), 0);
        free(v.data);
        const dashi_writeset *sets[1] = {&ws};
        dashi_err result = DASHI_OK;
        while (dashi_err_retriable(err = p->st->ops->apply(p->st, 1, sets, &result, errstr, errstr_size)) &&
               redis_backoff(p, &b, "taking a partition's epoch", errstr))
            ; /* applied with its reply lost: the compare-and-set fails and the loop takes the next epoch */
        dashi_writeset_clear(&ws);
        if (err != DASHI_OK)
            return err;
        if (result == DASHI_OK) {
            snprintf(p->tasks[part].epoch, sizeof(p->tasks[part].epoch), "%s", next);
            return DASHI_OK;
        }
    }
    return dashi_errf(DASHI_ERR_CONFLICT, errstr, errstr_size, "cannot take epoch of partition %d", (int)part);
}

static void on_assign(pipeline *p, rd_kafka_topic_partition_list_t *parts) {
    char errstr[512];
    bool taken[MAX_PARTS] = {false};
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int ti = topic_index(p, tp->topic);
        if (ti < 0 || tp->partition < 0 || tp->partition >= MAX_PARTS)
            continue;
        if (!taken[tp->partition]) {
            dashi_err eerr = take_epoch(p, tp->partition, errstr, sizeof(errstr));
            if (eerr != DASHI_OK) {
                set_fatal(p, eerr, errstr);
                return;
            }
            taken[tp->partition] = true;
            p->tasks[tp->partition].assigned = true;
        }
        char key[300];
        snprintf(key, sizeof(key), "off:%s:%d", tp->topic, (int)tp->partition);
        dashi_bytes k = {key, strlen(key)}, v = {NULL, 0};
        dashi_err err;
        backoff b = {0};
        while (dashi_err_retriable(err = p->st->ops->mget(p->st, 1, &k, &v, errstr, sizeof(errstr))) &&
               redis_backoff(p, &b, "reading progress", errstr))
            ;
        if (err != DASHI_OK) {
            set_fatal(p, err, errstr);
            return;
        }
        tp->offset = v.data ? strtoll(v.data, NULL, 10) + 1 : RD_KAFKA_OFFSET_BEGINNING;
        free(v.data);
        p->tasks[tp->partition].eof[ti] = false;
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(p->consumer, parts);
    p->assigned_at_ms = p->last_input_ms = mono_ms();
    group_partitions(p, parts);
    p->said_at = 0;
    group_publish(p, NULL);
    if (err)
        set_fatal(p, DASHI_ERR_TRANSPORT, rd_kafka_err2str(err));
    for (int part = 0; part < MAX_PARTS; part++)
        if (taken[part]) {
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "ob:%03d:", part);
            resend_outbox(p, prefix);
        }
    resend_outbox(p, "ob:t:");
    if (p->opts->verbose)
        dashi_log(DASHI_LOG_INFO, "pipeline", "assigned %d topic-partition(s)", parts->cnt);
}

static void on_revoke(pipeline *p, rd_kafka_topic_partition_list_t *parts) {
    txn_commit(p); /* its offsets belong to this generation of the group */
    flow_control(p, true);
    group_publish(p, parts); /* unowned: the others wait for the next owner */
    for (int i = 0; i < parts->cnt; i++) {
        int32_t part = parts->elems[i].partition;
        int ti = topic_index(p, parts->elems[i].topic);
        if (ti < 0 || part < 0 || part >= MAX_PARTS)
            continue;
        queue_drop_all(&p->tasks[part].q[ti]); /* not applied: the next owner reads them again */
        p->tasks[part].assigned = false;
    }
    rd_kafka_assign(p->consumer, NULL);
    if (p->opts->verbose)
        dashi_log(DASHI_LOG_INFO, "pipeline", "revoked %d topic-partition(s)", parts->cnt);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque) {
    (void)rk;
    pipeline *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        on_assign(p, parts);
    else
        on_revoke(p, parts);
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    (void)rk;
    return dashi_telemetry_kafka_stats(((pipeline *)opaque)->opts->tel, json, len);
}

/* ---- consuming and applying ---- */

/* Decode, waiting while the schema registry is away (a retriable error is never the
 * record's fault, so it is never dead-lettered); gives up only when stopping. */
static dashi_err decode_record(pipeline *p, const rd_kafka_message_t *m, dashi_event *ev, char *why, size_t size) {
    dashi_err err;
    for (int attempt = 0;; attempt++) {
        why[0] = '\0'; /* take_message reads a message as a failure */
        err = dashi_codec_decode(p->codec, m->payload, m->len, ev, why, size);
        if (!dashi_err_retriable(err) || dashi_kafka_stop)
            return err;
        if (attempt % 10 == 0)
            dashi_log(DASHI_LOG_WARN, "registry", "cannot decode %s[%d]@%" PRId64 " yet, retrying: %s",
                      rd_kafka_topic_name(m->rkt), (int)m->partition, m->offset, why);
        struct timespec ts = {attempt < 10 ? 0 : 1, attempt < 10 ? 200 * 1000000L : 0};
        nanosleep(&ts, NULL);
    }
}

static void take_message(pipeline *p, rd_kafka_message_t *m) {
    int ti = topic_index(p, rd_kafka_topic_name(m->rkt));
    int32_t part = m->partition;
    if (ti < 0 || part < 0 || part >= MAX_PARTS || !p->tasks[part].assigned)
        return;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (!p->tasks[part].eof[ti]) {
            p->tasks[part].eof_since[ti] = mono_ms();
            p->tasks[part].eof_wall[ti] = wall_ms();
        }
        p->tasks[part].eof[ti] = true;
        return;
    }
    p->tasks[part].eof[ti] = false;
    p->stats->consumed++;
    p->last_input_ms = mono_ms();
    char *key = m->key ? strndup(m->key, m->key_len) : NULL;
    char why[512] = "";
    dashi_err derr = DASHI_OK;
    in_rec r;
    memset(&r, 0, sizeof(r));
    if ((int64_t)m->len > p->cfg->max_message_bytes) {
        snprintf(why, sizeof(why), "record of %zu bytes exceeds max_message_bytes", m->len);
    } else if ((derr = decode_record(p, m, &r.ev, why, sizeof(why))) == DASHI_OK) {
        /* bad input too: an output, a type on another type's topic, and an instant so far
         * ahead that it would advance stream time and fire every timer (docs/SECURITY.md) */
        if (!dashi_event_type_is_input(r.ev.type))
            snprintf(why, sizeof(why), "%s is not an input event", dashi_event_type_name(r.ev.type));
        else if (strcmp(dashi_config_topic(p->cfg, r.ev.type), p->topics[ti]) != 0)
            snprintf(why, sizeof(why), "%s does not belong on topic %s", dashi_event_type_name(r.ev.type), p->topics[ti]);
        else if (dashi_event_time(&r.ev) > wall_ms() + p->cfg->input_max_future_ms)
            snprintf(why, sizeof(why), "occurred_at too far in the future (more than input.max_future_ms ahead)");
        if (why[0])
            dashi_event_clear(&r.ev);
    }
    if (why[0] && dashi_err_retriable(derr)) { /* stopped while waiting: applying later records would skip it */
        set_fatal(p, derr, why);
        free(key);
        return;
    }
    dashi_telemetry_event_in(p->opts->tel, p->topics[ti], why[0] ? NULL : dashi_event_type_name(r.ev.type));
    if (why[0]) {
        dead_letter(p, ti, part, m->offset, key, m->payload, m->len, why, dashi_telemetry_intake_reason(why));
        free(key);
        return;
    }
    r.raw = malloc(m->len ? m->len : 1);
    if (r.raw)
        memcpy(r.raw, m->payload, m->len);
    r.raw_len = m->len;
    r.key = key;
    r.offset = m->offset;
    r.arrived_ms = mono_ms();
    r.ti = ti;
    r.part = part;
    if (queue_push(&p->tasks[part].q[ti], &r) < 0) {
        rec_clear(&r);
        set_fatal(p, DASHI_ERR_NOMEM, "out of memory queueing input");
    }
}

/* What a record's outcome in a batch means for the pipeline. */
static void record_done(pipeline *p, const in_rec *r, const dashi_batch_result *res) {
    if (res->err == DASHI_OK || res->err == DASHI_ERR_DUPLICATE)
        txn_consumed(p, r->ti, r->part, r->offset);
    if (res->err == DASHI_OK) {
        p->stats->applied++;
        dashi_telemetry_step(p->opts->tel, r->arrived_ms);
        p->applied_since_advance = true;
        dashi_time t = dashi_event_time(&r->ev);
        if (t > p->stream_time)
            p->stream_time = t;
    } else if (res->err == DASHI_ERR_DUPLICATE) {
        p->stats->duplicates++;
    } else if (res->err == DASHI_ERR_INVALID) {
        dead_letter(p, r->ti, r->part, r->offset, r->key, r->raw, r->raw_len, res->why, "rejected");
    }
}

/* The head of r's queue, which is r, leaves it. */
static void queue_pop(pipeline *p, const in_rec *r) {
    queue *q = &p->tasks[r->part].q[r->ti];
    rec_clear(&q->v[q->head]);
    q->head++;
    q->n--;
}

/* Apply p->batch[0..n) — records at the heads of their queues, in merge order —
 * as engine batches (core/engine.h: each event its own atomic step, a few Redis
 * round trips a batch; outputs are produced by step_done once committed). A
 * batch that stops on Redis being away is called again from where it stopped,
 * with backoff; a record refused by the rules is dead-lettered before any later
 * record commits (stop_after_invalid). Each record with a final outcome leaves its
 * queue; what is left (fenced, fatal) stays queued unapplied. Returns how many left. */
static size_t apply_batch(pipeline *p, size_t n) {
    size_t done = 0;
    backoff b = {0};
    txn_begin(p);
    while (done < n && p->fatal == DASHI_OK) {
        char why[512] = "";
        size_t n_done = 0;
        dashi_batch_opts o = {.step_done = step_done, .step_done_opaque = p, .until = DASHI_TIME_NONE,
                              .stop_after_invalid = true};
        dashi_err err = dashi_engine_process_batch(p->eng, p->batch_ev + done, n - done, &o, p->batch_res + done,
                                                   &n_done, why, sizeof(why));
        for (size_t i = done; i < done + n_done; i++) {
            record_done(p, p->batch[i], &p->batch_res[i]);
            queue_pop(p, p->batch[i]);
        }
        done += n_done;
        if (err == DASHI_OK)
            continue;
        if (dashi_err_retriable(err)) {
            /* a step may have committed with its reply lost: the retry then finds its
             * marker (DUPLICATE), and its outbox is sent again once Redis is back */
            p->resend_due = true;
            if (redis_backoff(p, &b, "applying events", why)) {
                dashi_telemetry_alive(p->opts->tel);
                continue;
            }
            /* nothing of this record is committed (or it is, with its marker): stop applying, so no
             * later record commits progress past it; the next run or owner starts from Redis */
            char msg[sizeof(p->fatal_msg)];
            snprintf(msg, sizeof(msg), "%s Redis unreachable for %" PRId64 " ms: %.300s",
                     dashi_kafka_stop ? "stopped while" : "gave up:", b.waited_ms, why);
            set_fatal(p, err, msg);
        } else if (err == DASHI_ERR_CONFLICT) {
            int32_t part = p->batch[done]->part;
            dashi_log(DASHI_LOG_WARN, "pipeline", "partition %d fenced by another member: %s", (int)part, why);
            p->tasks[part].assigned = false;
        } else {
            set_fatal(p, err, why);
        }
        break;
    }
    return done;
}

/* Apply what can be applied now, earliest first across every assigned partition
 * and topic: with one member this is exactly replay's (occurred_at, event_id)
 * order. An empty queue may still bring an earlier event:
 *  - its partition is not at its end: records are known to exist and are being
 *    fetched, so wait for them (a backlog is merged exactly);
 *  - it is at its end: an earlier event may still arrive up to merge.wait_ms (the
 *    lateness bound) after the candidate did, so wait until merge.wait_ms after the
 *    later of the candidate's arrival and the partition reaching its end. Counting
 *    from the candidate's arrival matters for a partition that has been quiet for
 *    long: its late record must still be waited for.
 * A wait that lasts merge.max_stall_ms with nothing applied (a partition whose
 * fetches fail, a member gone without leaving) gives up: the earliest record
 * there is is applied, and order across the partition waited for is lost. The
 * stall counts from when the merge began to wait, not from the records' arrival:
 * a long backlog's records wait long without any stall.
 * Returns the number applied. */
static size_t drain(pipeline *p, int64_t now) {
    static size_t cur[MAX_PARTS][MAX_TOPICS]; /* records of each queue taken into the batch */
    size_t total = 0;
    p->remote_wait = false;
    while (p->fatal == DASHI_OK && dashi_kafka_stop < 2) {
        size_t n = 0;
        bool wait = false;
        memset(cur, 0, sizeof(cur));
        /* the next batch: what one-at-a-time would apply next, as long as nothing must wait */
        while (n < p->cap_batch && !wait) {
            int best_part = -1, best_ti = -1;
            in_rec *best = NULL;
            int64_t wait_until = 0;  /* apply nothing before this (monotonic ms) */
            int64_t eof_latest = -1; /* latest end reached by an empty partition; -1: none */
            for (int part = 0; part < MAX_PARTS; part++) {
                task *t = &p->tasks[part];
                if (!t->assigned)
                    continue;
                for (size_t ti = 0; ti < p->n_topics; ti++) {
                    queue *q = &t->q[ti];
                    if (cur[part][ti] == q->n) { /* nothing (more) queued there */
                        if (!t->eof[ti])
                            wait_until = INT64_MAX;
                        else if (t->eof_since[ti] > eof_latest)
                            eof_latest = t->eof_since[ti];
                        continue;
                    }
                    in_rec *head = &q->v[q->head + cur[part][ti]];
                    if (!best || rec_cmp(head, best) < 0) {
                        best = head;
                        best_part = part;
                        best_ti = (int)ti;
                    }
                }
            }
            if (!best) {
                if (n == 0) {
                    p->stall_since = 0;
                    p->stall_gave_up = false;
                }
                break;
            }
            if (eof_latest >= 0) {
                int64_t until = (best->arrived_ms > eof_latest ? best->arrived_ms : eof_latest) + p->cfg->merge_wait_ms;
                if (until > wait_until)
                    wait_until = until;
            }
            if (wait_until != INT64_MAX && group_active(p) && !group_allows(p, best, now)) {
                wait_until = INT64_MAX; /* another member's partition may bring an earlier event */
                p->remote_wait = true;
            }
            if (now < wait_until) {
                if (p->stall_since == 0)
                    p->stall_since = now;
                if (now - p->stall_since < p->cfg->merge_max_stall_ms) {
                    wait = true; /* a lagging partition may still bring an earlier event */
                    break;
                }
                if (!p->stall_gave_up)
                    dashi_log(DASHI_LOG_WARN, "pipeline", "merge: waited %" PRId64 " ms for a lagging partition "
                              "(merge.max_stall_ms): applying without it", now - p->stall_since);
                p->stall_gave_up = true; /* until nothing must wait */
            } else {
                p->stall_since = 0;
                p->stall_gave_up = false;
            }
            p->batch[n] = best;
            p->batch_ev[n] = &best->ev;
            n++;
            cur[best_part][best_ti]++;
        }
        if (n == 0)
            break;
        size_t done = apply_batch(p, n);
        total += done;
        if (done < n)
            break; /* fenced or fatal: what is left stays queued */
        now = mono_ms();
    }
    return total;
}

/* Caught up: every assigned topic partition has been read to its end. */
static bool all_at_end(const pipeline *p) {
    bool any = false;
    for (int part = 0; part < MAX_PARTS; part++) {
        if (!p->tasks[part].assigned)
            continue;
        any = true;
        for (size_t ti = 0; ti < p->n_topics; ti++)
            if (!p->tasks[part].eof[ti])
                return false;
    }
    return any;
}

static bool queues_empty(const pipeline *p) {
    for (int part = 0; part < MAX_PARTS; part++)
        for (size_t ti = 0; ti < p->n_topics; ti++)
            if (p->tasks[part].q[ti].n)
                return false;
    return true;
}

static void idle_advance(pipeline *p) {
    dashi_time target = wall_ms();
    if (p->opts->clock_until != DASHI_TIME_NONE && target > p->opts->clock_until)
        target = p->opts->clock_until;
    if (target <= p->advanced_to && !p->applied_since_advance)
        return; /* an event applied since may have scheduled timers up to advanced_to */
    p->applied_since_advance = false;
    char why[512] = "";
    size_t n_done = 0;
    dashi_batch_opts o = {.step_done = step_done, .step_done_opaque = p, .until = target};
    dashi_err err = dashi_engine_process_batch(p->eng, p->batch_ev, 0, &o, p->batch_res, &n_done, why, sizeof(why));
    if (err == DASHI_OK)
        p->advanced_to = target;
    else if (!dashi_err_retriable(err))
        set_fatal(p, err, why);
    else
        p->resend_due = true; /* retried on the next idle turn; a timer step may have committed unsent */
}

static void close_all(pipeline *p) {
    for (int part = 0; part < MAX_PARTS; part++)
        for (size_t ti = 0; ti < MAX_TOPICS; ti++) {
            queue_drop_all(&p->tasks[part].q[ti]);
            free(p->tasks[part].q[ti].v);
        }
    free(p->batch);
    free(p->batch_ev);
    free(p->batch_res);
    dashi_writeset_clear(&p->acks);
    txn_reset(p);
    dashi_engine_destroy(p->eng);
    dashi_codec_destroy(p->codec);
    dashi_state_destroy(p->st);
    dashi_keyring_destroy(p->keys);
    dashi_rules_destroy(p->rules);
}

/* The producer's transactional.id when transactions=true: kafka.transactional.id
 * when the configuration names one, else "<group.id>-<hostname>". One id per
 * member: stable across restarts of one host (a StatefulSet pod name), so a
 * restarted member fences its own predecessor and aborts the transaction it left
 * open; the group metadata sent with the offsets (KIP-447) fences a member that
 * lost its partitions in a rebalance. Members sharing a host must set distinct
 * kafka.transactional.id values. A kafka.transactional.id with transactions=false
 * is refused: the producer would refuse every record outside a transaction. */
static dashi_err transactional_id(pipeline *p, char *errstr, size_t errstr_size) {
    const char *given = NULL;
    for (size_t i = 0; i < p->cfg->n_kafka; i++)
        if (strcmp(p->cfg->kafka[i].key, "transactional.id") == 0)
            given = p->cfg->kafka[i].value;
    p->txn_id[0] = '\0';
    if (!p->cfg->transactions) {
        if (given)
            return dashi_errf(DASHI_ERR_INVALID, errstr, errstr_size,
                              "kafka.transactional.id is set but transactions=false: set transactions=true or drop it");
        return DASHI_OK;
    }
    if (given) {
        snprintf(p->txn_id, sizeof(p->txn_id), "%s", given);
    } else {
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
            snprintf(host, sizeof(host), "localhost");
        snprintf(p->txn_id, sizeof(p->txn_id), "%.100s-%.180s", p->cfg->group_id, host);
    }
    return DASHI_OK;
}

dashi_err dashi_pipeline_run(const dashi_pipeline_opts *opts, dashi_pipeline_stats *stats, char *errstr,
                             size_t errstr_size) {
    pipeline *p = calloc(1, sizeof(*p));
    dashi_err err = DASHI_OK;
    rd_kafka_topic_partition_list_t *sub = NULL;
    int64_t t0 = mono_ms();
    if (!p)
        return dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
    p->opts = opts;
    p->cfg = opts->cfg;
    p->stats = stats;
    p->stream_time = p->advanced_to = DASHI_TIME_NONE;
    dashi_writeset_init(&p->acks);
    dashi_writeset_init(&p->txn_acks);
    const char *topics[DASHI_EV__COUNT];
    p->n_topics = dashi_config_input_topics(p->cfg, topics);
    for (size_t i = 0; i < p->n_topics && i < MAX_TOPICS; i++)
        p->topics[i] = topics[i];

    if (!(p->rules = dashi_rules_load(p->cfg->rules_file, errstr, errstr_size)) ||
        !(p->keys = dashi_keyring_load(p->cfg->hmac_key, errstr, errstr_size)) ||
        !(p->codec = dashi_codec_new_for_config(p->cfg, DASHI_CODEC_OUTPUT_TYPES, errstr, errstr_size))) {
        err = DASHI_ERR_INVALID;
        goto out;
    }
    for (backoff b = {0};;) { /* Redis may come up after us: wait with backoff, up to redis.wait_ms */
        if ((p->st = dashi_state_redis_new(p->cfg->redis_url, p->cfg->redis_prefix, errstr, errstr_size)))
            break;
        char why[512];
        snprintf(why, sizeof(why), "%s", errstr);
        if (!redis_backoff(p, &b, "start-up", why)) {
            err = dashi_errf(DASHI_ERR_TRANSPORT, errstr, errstr_size, "%s; %s after %" PRId64 " ms (redis.wait_ms)",
                             why, dashi_kafka_stop ? "stopped" : "gave up", b.waited_ms);
            goto out;
        }
    }
    if (!(p->eng = dashi_engine_new(p->rules, p->keys, p->st, errstr, errstr_size))) {
        err = DASHI_ERR_NOMEM;
        goto out;
    }
    dashi_engine_set_step_hook(p->eng, step_hook, p);
    p->cap_batch = (size_t)p->cfg->batch_max_events;
    p->batch = calloc(p->cap_batch, sizeof(*p->batch));
    p->batch_ev = calloc(p->cap_batch, sizeof(*p->batch_ev));
    p->batch_res = calloc(p->cap_batch, sizeof(*p->batch_res));
    if (!p->batch || !p->batch_ev || !p->batch_res) {
        err = dashi_errf(DASHI_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    dashi_engine_set_guard(p->eng, true); /* other members write the shared records too */
    dashi_state_redis_set_observer(p->st, dashi_telemetry_redis_rtt, p->opts->tel);
    if (transactional_id(p, errstr, errstr_size) != DASHI_OK) {
        err = DASHI_ERR_INVALID;
        goto out;
    }
    dashi_kafka_hooks ph = {.dr_msg_cb = on_delivery, .opaque = p, .transactional_id = p->txn_id[0] ? p->txn_id : NULL};
    dashi_kafka_hooks ch = {.rebalance_cb = on_rebalance, .stats_cb = on_stats, .opaque = p};
    if (!(p->producer = dashi_kafka_new(p->cfg, DASHI_KAFKA_PRODUCER, opts->bootstrap, NULL, &ph, errstr, errstr_size)) ||
        !(p->consumer = dashi_kafka_new(p->cfg, DASHI_KAFKA_CONSUMER, opts->bootstrap, NULL, &ch, errstr, errstr_size))) {
        err = DASHI_ERR_INVALID;
        goto out;
    }
    if (p->cfg->transactions) {
        rd_kafka_error_t *terr = rd_kafka_init_transactions(p->producer, TXN_TIMEOUT_MS);
        if (terr) {
            err = dashi_errf(DASHI_ERR_TRANSPORT, errstr, errstr_size,
                             "transactions=true: init_transactions for transactional.id %s failed: %s%s", p->txn_id,
                             rd_kafka_error_is_fatal(terr) ? "fatal error: " : "", rd_kafka_error_string(terr));
            rd_kafka_error_destroy(terr);
            goto out;
        }
        dashi_log(DASHI_LOG_INFO, "kafka", "transactions: transactional.id %s", p->txn_id);
    }
    sub = rd_kafka_topic_partition_list_new((int)p->n_topics);
    for (size_t i = 0; i < p->n_topics; i++)
        rd_kafka_topic_partition_list_add(sub, p->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(p->consumer, sub);
    if (kerr) {
        err = dashi_errf(DASHI_ERR_TRANSPORT, errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(kerr));
        goto out;
    }
    p->last_input_ms = mono_ms();
    int64_t last_work = mono_ms();
    while (!dashi_kafka_stop && p->fatal == DASHI_OK) {
        /* take what librdkafka has fetched (up to a batch) before applying, so the
         * merge sees every topic's records and waits only for real lag */
        int64_t polled = 0;
        int64_t poll_ms = p->cfg->poll_ms;
        if (group_active(p) && poll_ms > (p->remote_wait ? 1 : GM_BEAT_MS))
            poll_ms = p->remote_wait ? 1 : GM_BEAT_MS; /* see fresh summaries; keep ours fresh */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, (int)poll_ms);
        while (m) {
            if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                dashi_log(DASHI_LOG_WARN, "kafka", "consumer: %s", rd_kafka_message_errstr(m));
            else
                take_message(p, m);
            rd_kafka_message_destroy(m);
            m = ++polled < p->cfg->batch_max_events ? rd_kafka_consumer_poll(p->consumer, 0) : NULL;
        }
        int64_t now = mono_ms();
        flow_control(p, false);
        group_publish(p, NULL);
        if (group_active(p))
            group_read(p);
        size_t applied = drain(p, now);
        flow_control(p, false);
        if (p->remote_wait)
            group_publish(p, NULL); /* our earliest has moved: the member we wait for may be waiting for it */
        if (p->resend_due && p->fatal == DASHI_OK)
            resend_after_outage(p);
        rd_kafka_poll(p->producer, 0);
        txn_commit(p);
        flush_acks(p);
        dashi_telemetry_tick(p->opts->tel, p->st, p->rules, p->stream_time,
                             (int64_t)(p->stats->outputs_produced - p->stats->outputs_acked) + (int64_t)p->acks.n);
        if (polled || applied || p->assigned_at_ms == 0)
            last_work = now;
        if (p->assigned_at_ms > last_work)
            last_work = p->assigned_at_ms;
        /* idle = everything assigned read to its end and applied, for idle.advance_ms */
        if (p->cfg->idle_advance_ms > 0 && queues_empty(p) && all_at_end(p) &&
            now - p->last_input_ms >= p->cfg->idle_advance_ms && (!group_active(p) || group_idle(p)))
            idle_advance(p);
        if (opts->exit_idle_ms > 0 && now - last_work >= opts->exit_idle_ms && queues_empty(p) &&
            rd_kafka_outq_len(p->producer) == 0 && p->acks.n == 0 && p->advanced_to != DASHI_TIME_NONE)
            break;
        if (opts->exit_idle_ms > 0 && now - last_work >= opts->exit_idle_ms && p->cfg->idle_advance_ms == 0 &&
            queues_empty(p) && rd_kafka_outq_len(p->producer) == 0 && p->acks.n == 0)
            break;
    }
    if (p->fatal != DASHI_OK) {
        err = dashi_errf(p->fatal, errstr, errstr_size, "%s", p->fatal_msg);
    } else if (dashi_kafka_stop < 2) {
        /* graceful: what was polled but not applied is left for the next owner (progress is in Redis) */
        txn_commit(p);
        rd_kafka_flush(p->producer, (int)p->cfg->shutdown_deadline_ms);
        flush_acks(p);
    }
out:
    if (sub)
        rd_kafka_topic_partition_list_destroy(sub);
    if (p->consumer) {
        if (dashi_kafka_stop < 2)
            rd_kafka_consumer_close(p->consumer);
        rd_kafka_destroy(p->consumer);
    }
    if (p->producer) {
        if (dashi_kafka_stop >= 2)
            rd_kafka_purge(p->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->producer, 0);
        rd_kafka_destroy(p->producer);
    }
    stats->timers = 0;
    stats->seconds = (double)(mono_ms() - t0) / 1000.0;
    close_all(p);
    free(p);
    return err;
}
