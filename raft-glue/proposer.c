/* Group commit: see proposer.h for the contract.
 *
 * An entry's payload is a protobuf CommandBatch built by concatenating, for
 * each queued command, the field-1 tag, its length varint and its encoding
 * (exactly what protobuf-c would pack for `repeated Command commands = 1`),
 * so commands are encoded once, at submit, and never re-packed, followed by
 * field 2, the 16-byte salt drawn here for every batch (encryption at rest:
 * apply derives the entry's record nonces from it; docs/encryption.md
 * "Nonces").  When the store has a cluster master key the batch is built in
 * a scratch buffer and sealed straight into the frame (seal.h: one copy of
 * the commands, as for a plaintext frame, plus the encryption itself);
 * without one it is built in the frame.
 *
 * Failure modes: raft_apply refusing (not leader, transfer in progress, no
 * space) fails the requests of that entry; raft_apply failing in any other
 * way makes the proposer fatal (IO, fatal_hook) since raft's in-memory and
 * disk logs may then disagree; raft failing an entry after accepting it
 * fails them unless the FSM already applied the entry here. */
#include "proposer.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "frame.h"
#include "pb_varint.h"
#include "glue_limits.h"

/* CommandBatch field 2 (salt): tag 0x12, length 16, the salt. */
#define SALT_ITEM_BYTES (2u + KYUFU_CRYPTO_SALT_BYTES)

struct glue_pentry
{
    struct raft_apply apply; /* apply.data == this */
    struct kyufu_proposer *p;
    struct glue_pentry *next;
    struct glue_pentry *prev;
    uint64_t index;
    uint64_t term;
    unsigned n;
    struct kyufu_glue_propose **reqs;
    bool applied; /* results below came from the local FSM */
    struct kyufu_storage_results results;
};

void kyufu_proposer__default_limits(struct kyufu_proposer_limits *l)
{
    l->entries_inflight_max = KYUFU_GROUP_COMMIT_ENTRIES_INFLIGHT_DEFAULT;
    l->commands_per_entry_max = KYUFU_GROUP_COMMIT_COMMANDS_MAX_DEFAULT;
    l->entry_bytes_max = KYUFU_ENTRY_BYTES_MAX;
    l->command_bytes_max = KYUFU_COMMAND_BYTES_MAX;
    l->queue_commands_max = KYUFU_PROPOSE_QUEUE_COMMANDS_MAX;
}

void kyufu_proposer__init(struct kyufu_proposer *p,
                          struct raft *raft,
                          const struct kyufu_proposer_limits *limits)
{
    assert(limits->entries_inflight_max >= 1);
    assert(limits->commands_per_entry_max >= 1);
    /* One command's item (tag, varint ≤ 10, bytes) and the salt fit. */
    assert(limits->command_bytes_max + 16 + SALT_ITEM_BYTES <=
           limits->entry_bytes_max);
    memset(p, 0, sizeof *p);
    p->raft = raft;
    p->limits = *limits;
}

/* ------------------------------------------------------------------ queue */

static void queue_push(struct kyufu_proposer *p, struct kyufu_glue_propose *r)
{
    r->queue[0] = NULL;
    if (p->tail == NULL) {
        p->head = r;
    } else {
        p->tail->queue[0] = r;
    }
    p->tail = r;
    p->n_queued++;
}

static struct kyufu_glue_propose *queue_pop(struct kyufu_proposer *p)
{
    struct kyufu_glue_propose *r = p->head;
    if (r == NULL) {
        return NULL;
    }
    p->head = r->queue[0];
    if (p->head == NULL) {
        p->tail = NULL;
    }
    r->queue[0] = NULL;
    assert(p->n_queued > 0);
    p->n_queued--;
    return r;
}

/* Bytes a command adds to a CommandBatch. */
static size_t batch_item_size(const struct kyufu_glue_propose *r)
{
    return 1 + kyufu_pb_varint_size(r->encoded_len) + r->encoded_len;
}

/* `result` is borrowed (the entry's results own it): a packed callback
 * reads it during the call; any other gets it unpacked, its own. */
static void complete(struct kyufu_glue_propose *r,
                     int status,
                     const struct kyufu_storage_result *result)
{
    kyufu_glue_propose_cb cb = r->cb;
    kyufu_glue_propose_packed_cb packed_cb = r->packed_cb;
    Kyufu__V1__CommandResult *msg = NULL;
    assert((status == 0) == (result != NULL));
    assert((cb == NULL) != (packed_cb == NULL));
    free(r->encoded);
    r->encoded = NULL;
    r->encoded_len = 0;
    r->cb = NULL;
    r->packed_cb = NULL;
    if (packed_cb != NULL) {
        packed_cb(r, status, result);
        return;
    }
    if (status == 0) {
        msg = kyufu_storage_result_unpack(result);
        if (msg == NULL) {
            /* Applied, but its answer is lost: retrying the key learns it. */
            status = KYUFU_GLUE_ENOMEM;
        }
    }
    cb(r, status, msg);
}

static void fail_queue(struct kyufu_proposer *p, int status)
{
    struct kyufu_glue_propose *r;
    while ((r = queue_pop(p)) != NULL) {
        complete(r, status, NULL);
    }
}

/* ------------------------------------------------------------- in flight */

static void inflight_add(struct kyufu_proposer *p, struct glue_pentry *e)
{
    e->prev = NULL;
    e->next = p->inflight;
    if (p->inflight != NULL) {
        p->inflight->prev = e;
    }
    p->inflight = e;
    p->n_inflight++;
}

static void inflight_del(struct kyufu_proposer *p, struct glue_pentry *e)
{
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        p->inflight = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    }
    assert(p->n_inflight > 0);
    p->n_inflight--;
}

static void pentry_free(struct glue_pentry *e)
{
    if (e->applied) {
        kyufu_storage_results_free(&e->results);
    }
    free(e->reqs);
    free(e);
}

/* Write the batch of the first n queued requests and its salt into out
 * (payload_len bytes).  Returns 0, or RAFT_NOMEM when the random source
 * fails (nothing proposed). */
static int batch_write(struct kyufu_proposer *p, struct glue_pentry *e,
                       unsigned n, uint8_t *out, size_t payload_len)
{
    struct kyufu_glue_propose *r = p->head;
    size_t off = 0;
    for (unsigned i = 0; i < n; i++, r = r->queue[0]) {
        e->reqs[i] = r;
        out[off++] = 0x0a; /* field 1, length-delimited */
        off += kyufu_pb_varint_put(out + off, r->encoded_len);
        memcpy(out + off, r->encoded, r->encoded_len);
        off += r->encoded_len;
    }
    out[off++] = 0x12; /* field 2, length-delimited */
    out[off++] = KYUFU_CRYPTO_SALT_BYTES;
    if (RAND_bytes(out + off, KYUFU_CRYPTO_SALT_BYTES) != 1) {
        return RAFT_NOMEM;
    }
    off += KYUFU_CRYPTO_SALT_BYTES;
    assert(off == payload_len);
    return 0;
}

/* Fill buf with the framed entry of the first n queued requests: version 2
 * (sealed) when the store has a key, else version 1.  Returns 0 or
 * RAFT_NOMEM (allocation, key derivation, random source or cipher failed:
 * nothing proposed, buf empty). */
static int entry_build(struct kyufu_proposer *p, struct glue_pentry *e,
                       unsigned n, size_t payload_len, raft_term term,
                       struct raft_buffer *buf)
{
    uint8_t *plain = NULL;
    int rv;
    if (p->storage == NULL || !kyufu_storage_keys_present(p->storage)) {
        buf->len = glue__frame_size(payload_len);
        buf->base = raft_malloc(buf->len);
        if (buf->base == NULL) {
            return RAFT_NOMEM;
        }
        rv = batch_write(p, e, n, (uint8_t *)buf->base +
                                      GLUE_FRAME_HEADER_BYTES,
                         payload_len);
        if (rv != 0) {
            goto err_after_frame;
        }
        glue__frame_finish(buf->base, term, payload_len);
        return 0;
    }

    if (glue__stream_key_load(p->storage,
                              kyufu_storage_keys_active(p->storage),
                              &p->key) != 0) {
        return RAFT_NOMEM;
    }
    plain = malloc(payload_len);
    if (plain == NULL) {
        return RAFT_NOMEM;
    }
    buf->len = glue__frame2_size(payload_len);
    buf->base = raft_malloc(buf->len);
    if (buf->base == NULL) {
        rv = RAFT_NOMEM;
        goto err_after_plain;
    }
    rv = batch_write(p, e, n, plain, payload_len);
    if (rv != 0) {
        goto err_after_frame;
    }
    if (glue__entry_seal(&p->key, buf->base, term, plain, payload_len) !=
        0) {
        rv = RAFT_NOMEM;
        goto err_after_frame;
    }
    free(plain);
    p->n_sealed++;
    return 0;

err_after_frame:
    raft_free(buf->base);
    buf->base = NULL;
    buf->len = 0;
err_after_plain:
    free(plain);
    assert(rv != 0);
    return rv;
}

static int raft_to_glue(struct kyufu_proposer *p, int rv)
{
    if (p->closing) {
        return KYUFU_GLUE_ESHUTDOWN;
    }
    switch (rv) {
        case RAFT_NOTLEADER:
        case RAFT_LEADERSHIPLOST:
            return KYUFU_GLUE_ELEADERSHIPLOST;
        case RAFT_NOMEM:
            return KYUFU_GLUE_ENOMEM;
        case RAFT_SHUTDOWN:
        case RAFT_CANCELED:
            return KYUFU_GLUE_ESHUTDOWN;
        case RAFT_TOOBIG:
            return KYUFU_GLUE_ETOOBIG;
        default:
            return KYUFU_GLUE_EIO;
    }
}

static void flush(struct kyufu_proposer *p);

/* raft_apply failed past its up-front checks: fatal (see flush_one). */
static void apply_failed(struct kyufu_proposer *p, int rv)
{
    char msg[160];
    assert(rv != 0 && rv != RAFT_NOTLEADER && rv != RAFT_NOSPACE);
    if (p->fatal_status != 0) {
        return;
    }
    p->fatal_status = KYUFU_GLUE_EIO;
    snprintf(msg, sizeof msg,
             "raft_apply failed: %s (%d): raft's in-memory log may differ "
             "from its disk log",
             raft_strerror(rv), rv);
    if (p->fatal_hook != NULL) {
        p->fatal_hook(p->fatal_arg, KYUFU_GLUE_EIO, msg);
    }
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct glue_pentry *e = req->data;
    struct kyufu_proposer *p = e->p;

    assert(result == NULL); /* The FSM never returns results via raft. */
    (void)result;
    inflight_del(p, e);

    if (e->applied && e->results.n == e->n) {
        /* Applied here, so committed, whatever raft says about the request
         * (it reports LEADERSHIPLOST when leadership changed in between). */
        for (unsigned i = 0; i < e->n; i++) {
            assert(e->results.items[i].bytes != NULL);
            complete(e->reqs[i], 0, &e->results.items[i]);
        }
    } else {
        int rv;
        if (e->applied) {
            /* Storage decoded fewer commands than we packed: a bug on one
             * side of the CommandBatch encoding. */
            rv = KYUFU_GLUE_ESTORAGE;
        } else if (status == 0) {
            /* Committed but not applied here: the FSM is stopped. */
            rv = p->fatal_status != 0 ? p->fatal_status : KYUFU_GLUE_ESTORAGE;
        } else {
            rv = raft_to_glue(p, status);
        }
        for (unsigned i = 0; i < e->n; i++) {
            complete(e->reqs[i], rv, NULL);
        }
    }
    pentry_free(e);
    flush(p);
}

/* Take up to the limits from the queue into one entry and raft_apply it.
 * Returns 0, or a raft error after which the taken requests are back at the
 * head of the queue in order. */
static int flush_one(struct kyufu_proposer *p)
{
    struct glue_pentry *e;
    struct kyufu_glue_propose *r;
    struct raft_buffer buf;
    size_t payload_len = SALT_ITEM_BYTES;
    unsigned n = 0;
    raft_term term;
    int rv;

    for (r = p->head; r != NULL && n < p->limits.commands_per_entry_max;
         r = r->queue[0]) {
        size_t item = batch_item_size(r);
        if (n > 0 && payload_len + item > p->limits.entry_bytes_max) {
            break;
        }
        payload_len += item;
        n++;
    }
    assert(n > 0);

    e = calloc(1, sizeof *e);
    if (e == NULL) {
        return RAFT_NOMEM;
    }
    e->reqs = calloc(n, sizeof *e->reqs);
    if (e->reqs == NULL) {
        free(e);
        return RAFT_NOMEM;
    }
    /* The leader's current term is the term raft gives the entry. */
    term = raft_current_term(p->raft);
    rv = entry_build(p, e, n, payload_len, term, &buf);
    if (rv != 0) {
        free(e->reqs);
        free(e);
        return rv;
    }

    e->p = p;
    e->n = n;
    e->term = term;
    e->apply.data = e;
    rv = raft_apply(p->raft, &e->apply, &buf, 1, apply_cb);
    if (rv != 0) {
        /* NOTLEADER (during a transfer or after losing leadership) and
         * NOSPACE are client.c's up-front checks: nothing changed and raft
         * did not take the buffer.  Any other error came after the raft
         * core appended the entry to its in-memory log (legacy.c
         * legacyHandleUpdateEntries: the disk append, a send, or an apply
         * failed), after raft freed the buffer and without queueing our
         * request: raft's memory and disk may now disagree, so the node
         * must stop (fatal), and we must not free the buffer. */
        if (rv == RAFT_NOTLEADER || rv == RAFT_NOSPACE) {
            raft_free(buf.base);
        } else {
            apply_failed(p, rv);
        }
        free(e->reqs);
        free(e);
        return rv;
    }
    /* Accepted: the requests leave the queue. */
    for (unsigned i = 0; i < n; i++) {
        struct kyufu_glue_propose *q = queue_pop(p);
        assert(q == e->reqs[i]);
        (void)q;
    }
    e->index = e->apply.index;
    assert(e->index > 0);
    inflight_add(p, e);
    p->n_entries++;
    p->n_commands += n;
    return 0;
}

static void flush(struct kyufu_proposer *p)
{
    if (p->flushing) {
        return; /* The outer flush loop picks up what was queued. */
    }
    p->flushing = true;
    while (p->head != NULL &&
           p->n_inflight < p->limits.entries_inflight_max) {
        int rv;
        if (p->closing || p->fatal_status != 0) {
            fail_queue(p, p->closing ? KYUFU_GLUE_ESHUTDOWN : p->fatal_status);
            break;
        }
        rv = flush_one(p);
        if (rv != 0) {
            /* These were accepted while we led: leadership is gone, or
             * raft_apply failed and the proposer is now fatal. */
            fail_queue(p, p->fatal_status != 0 ? p->fatal_status
                                               : raft_to_glue(p, rv));
            break;
        }
    }
    p->flushing = false;
}

/* ------------------------------------------------------------- interface */

/* One of cb, packed_cb. */
static int submit(struct kyufu_proposer *p,
                  struct kyufu_glue_propose *req,
                  const Kyufu__V1__Command *cmd,
                  kyufu_glue_propose_cb cb,
                  kyufu_glue_propose_packed_cb packed_cb)
{
    size_t len;
    int rv;

    if (req == NULL || cmd == NULL || (cb == NULL) == (packed_cb == NULL)) {
        return KYUFU_GLUE_EINVALID;
    }
    if (p->closing) {
        return KYUFU_GLUE_ESHUTDOWN;
    }
    if (p->fatal_status != 0) {
        return p->fatal_status;
    }
    if (raft_state(p->raft) != RAFT_LEADER ||
        raft_transferee(p->raft) != 0) {
        return KYUFU_GLUE_ENOTLEADER;
    }
    if (p->n_queued >= p->limits.queue_commands_max) {
        return KYUFU_GLUE_EBUSY;
    }
    len = kyufu__v1__command__get_packed_size(cmd);
    if (len > p->limits.command_bytes_max) {
        return KYUFU_GLUE_ETOOBIG;
    }
    req->encoded = malloc(len > 0 ? len : 1);
    if (req->encoded == NULL) {
        return KYUFU_GLUE_ENOMEM;
    }
    req->encoded_len = kyufu__v1__command__pack(cmd, req->encoded);
    assert(req->encoded_len == len);
    req->cb = cb;
    req->packed_cb = packed_cb;
    queue_push(p, req);

    if (p->flushing || p->n_inflight >= p->limits.entries_inflight_max) {
        return 0; /* Goes out with the next flush. */
    }
    /* The queue holds only this request here (every earlier one went out
     * when a slot was last free), so a failure concerns it alone and is
     * returned, never called back. */
    assert(p->head == req && p->n_queued == 1);
    p->flushing = true;
    rv = flush_one(p);
    p->flushing = false;
    if (rv != 0) {
        struct kyufu_glue_propose *q = queue_pop(p);
        assert(q == req);
        (void)q;
        free(req->encoded);
        req->encoded = NULL;
        req->cb = NULL;
        req->packed_cb = NULL;
        if (p->fatal_status != 0) {
            return p->fatal_status;
        }
        return rv == RAFT_NOTLEADER ? KYUFU_GLUE_ENOTLEADER
                                    : raft_to_glue(p, rv);
    }
    return 0;
}

int kyufu_proposer__submit(struct kyufu_proposer *p,
                           struct kyufu_glue_propose *req,
                           const Kyufu__V1__Command *cmd,
                           kyufu_glue_propose_cb cb)
{
    return submit(p, req, cmd, cb, NULL);
}

int kyufu_proposer__submit_packed(struct kyufu_proposer *p,
                                  struct kyufu_glue_propose *req,
                                  const Kyufu__V1__Command *cmd,
                                  kyufu_glue_propose_packed_cb cb)
{
    return submit(p, req, cmd, NULL, cb);
}

void kyufu_proposer__applied(void *arg,
                             uint64_t index,
                             uint64_t term,
                             struct kyufu_storage_results *results)
{
    struct kyufu_proposer *p = arg;
    struct glue_pentry *e;
    for (e = p->inflight; e != NULL; e = e->next) {
        if (e->index == index) {
            break;
        }
    }
    /* Same index and term means the same entry (Log Matching); another term
     * means a new leader overwrote ours, whose requests fail through raft. */
    if (e == NULL || e->term != term || e->applied) {
        kyufu_storage_results_free(results);
        return;
    }
    e->results = *results;
    results->n = 0;
    results->items = NULL;
    e->applied = true;
}

void kyufu_proposer__close(struct kyufu_proposer *p, int status)
{
    p->closing = true;
    glue__stream_key_wipe(&p->key);
    if (!p->flushing) {
        fail_queue(p, status);
    }
}

void kyufu_proposer__fatal(struct kyufu_proposer *p, int status)
{
    assert(status != 0);
    if (p->fatal_status == 0) {
        p->fatal_status = status;
    }
    if (!p->flushing) {
        fail_queue(p, status);
    }
}
