/* Sealed stored values (storage/seal.c, docs/storage.md "Sealed values"):
 * round trip, tamper detection in every sealed db, byte-identical replicas,
 * salts, legacy plaintext stores, stores without a key, nonce uniqueness
 * across timelines and re-registration, and the storage-level canary: no
 * byte of data.mdb or of a snapshot stream holds a canary in any encoding.
 *
 * Commands go through the public API (cmd.h); the raw LMDB reads and the
 * byte flips look inside through internal.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "internal.h"
#include "sink.h"

/* ------------------------------------------------------------ raw access */

struct rec
{
    unsigned db;
    uint8_t *k;
    size_t klen;
    uint8_t *v;
    size_t vlen;
};

struct recs
{
    struct rec *items;
    size_t n, cap;
};

static void recs_free(struct recs *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].k);
        free(r->items[i].v);
    }
    free(r->items);
    memset(r, 0, sizeof *r);
}

static uint8_t *dup(const void *p, size_t n)
{
    uint8_t *b = malloc(n > 0 ? n : 1);
    CHECK(b != NULL);
    memcpy(b, p, n);
    return b;
}

/* Every (key, value) of db, copied. */
static void raw_all(struct fx *f, unsigned db, struct recs *out)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    CHECK(mdb_txn_begin(f->s->env, NULL, MDB_RDONLY, &txn) == 0);
    CHECK(mdb_cursor_open(txn, f->s->dbi[db], &cur) == 0);
    for (int mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (out->n == out->cap) {
            out->cap = out->cap * 2 + 16;
            out->items = realloc(out->items, out->cap * sizeof *out->items);
            CHECK(out->items != NULL);
        }
        out->items[out->n++] = (struct rec){db, dup(k.mv_data, k.mv_size),
                                            k.mv_size,
                                            dup(v.mv_data, v.mv_size),
                                            v.mv_size};
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
}

static void raw_put(struct fx *f, unsigned db, const void *k, size_t klen,
                    const void *v, size_t vlen)
{
    MDB_txn *txn;
    MDB_val kk = {klen, (void *)k}, vv = {vlen, (void *)v};
    CHECK(mdb_txn_begin(f->s->env, NULL, 0, &txn) == 0);
    CHECK(mdb_put(txn, f->s->dbi[db], &kk, &vv, 0) == 0);
    CHECK(mdb_txn_commit(txn) == 0);
}

/* The sealed part of a stored value (sessions: after time and owner). */
static size_t sealed_at(unsigned db, const uint8_t *v, size_t len)
{
    if (db != KYUFU_DB_SESSIONS) {
        return 0;
    }
    CHECK(len >= 8);
    size_t at = 8;
    if ((v[0] & 0x80) != 0) {
        at += 1 + v[8] + 32;
    }
    CHECK(at < len);
    return at;
}

/* Open the value of r as the store does: 0 or CORRUPT. */
static int open_rec(struct fx *f, unsigned db, const uint8_t *k, size_t klen,
                    const uint8_t *v, size_t vlen)
{
    const uint8_t *plain;
    size_t plen;
    uint8_t *owned;
    size_t at = sealed_at(db, v, vlen);
    int rv = kyufu_storage__unseal(f->s, db, k, klen, v + at, vlen - at,
                                   &plain, &plen, &owned);
    free(owned);
    return rv;
}

static const unsigned sealed_dbs[] = {
    KYUFU_DB_HOUSEHOLDS, KYUFU_DB_APPLICATIONS, KYUFU_DB_STAFF,
    KYUFU_DB_SESSIONS,   KYUFU_DB_AUDIT,        KYUFU_DB_CREDENTIAL,
    KYUFU_DB_AUTH_SESSION,
};
#define N_SEALED (sizeof sealed_dbs / sizeof sealed_dbs[0])

static void raw_sealed(struct fx *f, struct recs *out)
{
    for (size_t i = 0; i < N_SEALED; i++) {
        raw_all(f, sealed_dbs[i], out);
    }
}

/* ------------------------------------------------------------ canaries */

#define CANARY_HEAD "Kanaria Head Qx7"
#define CANARY_MEMBER "Kanaria Member Zv4"
#define CANARY_ADDRESS "Kanaria-cho 9-8-7 Addr"
#define CANARY_ACCOUNT "8675309"
#define CANARY_KANA "カナリア キュウ"
#define CANARY_STAFF "Kanaria Staffname"
static const char *const canaries[] = {CANARY_HEAD, CANARY_MEMBER,
                                       CANARY_ADDRESS, CANARY_ACCOUNT,
                                       CANARY_KANA};
#define N_CANARIES (sizeof canaries / sizeof canaries[0])

static Kyufu__V1__Command *c_canary_household(struct fx *f, const char *no)
{
    Kyufu__V1__Command *c = c_register_household(f, "clerk", no);
    Kyufu__V1__Household *h = c->register_household->household;
    c_str(&h->head_name, CANARY_HEAD);
    c_str(&h->member_names[0], CANARY_MEMBER);
    c_str(&h->address, CANARY_ADDRESS);
    c_str(&h->bank->account_no, CANARY_ACCOUNT);
    c_str(&h->bank->holder_kana, CANARY_KANA);
    return c;
}

static bool has(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
    if (m == 0 || m > n) {
        return false;
    }
    return memmem(hay, n, needle, m) != NULL;
}

/* Where canary s shows in buf, in any encoding the code uses: UTF-8,
 * UTF-16LE (of the ASCII canaries), hex (both cases), base64 (each of the
 * three alignments: the stable middle of the encoding), each also with its
 * bytes reversed.  NULL when nowhere. */
static const char *find_canary(const uint8_t *buf, size_t n, const char *s)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t m = strlen(s);
    uint8_t enc[1024];
    for (int rev = 0; rev < 2; rev++) {
        uint8_t src[256];
        CHECK(m < sizeof src);
        for (size_t i = 0; i < m; i++) {
            src[i] = rev ? (uint8_t)s[m - 1 - i] : (uint8_t)s[i];
        }
        if (has(buf, n, src, m)) {
            return rev ? "utf-8 reversed" : "utf-8";
        }
        bool ascii = true;
        for (size_t i = 0; i < m; i++) {
            ascii = ascii && src[i] < 0x80;
            enc[2 * i] = src[i];
            enc[2 * i + 1] = 0;
        }
        if (ascii && has(buf, n, enc, 2 * m)) {
            return "utf-16le";
        }
        for (int upper = 0; upper < 2; upper++) {
            const char *d = upper ? "0123456789ABCDEF" : "0123456789abcdef";
            for (size_t i = 0; i < m; i++) {
                enc[2 * i] = (uint8_t)d[src[i] >> 4];
                enc[2 * i + 1] = (uint8_t)d[src[i] & 15];
            }
            if (has(buf, n, enc, 2 * m)) {
                return "hex";
            }
        }
        for (size_t pad = 0; pad < 3; pad++) {
            uint8_t in[260] = {0};
            memcpy(in + pad, src, m);
            size_t len = pad + m, o = 0;
            for (size_t i = 0; i + 3 <= len; i += 3) {
                uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
                             in[i + 2];
                for (int j = 3; j >= 0; j--) {
                    enc[o++] = (uint8_t)b64[(w >> (6 * j)) & 63];
                }
            }
            /* Skip the characters the padding bytes touch. */
            size_t skip = pad == 0 ? 0 : 4;
            if (o > skip + 4 && has(buf, n, enc + skip, o - skip)) {
                return "base64";
            }
        }
    }
    return NULL;
}

/* How many canaries show in buf (and the first, for the message). */
static size_t count_canaries(const uint8_t *buf, size_t n, const char **what)
{
    size_t found = 0;
    for (size_t i = 0; i < N_CANARIES; i++) {
        const char *enc = find_canary(buf, n, canaries[i]);
        if (enc != NULL) {
            if (found++ == 0 && what != NULL) {
                *what = canaries[i];
            }
            fprintf(stderr, "canary %s found as %s\n", canaries[i], enc);
        }
    }
    const char *staff = find_canary(buf, n, CANARY_STAFF);
    if (staff != NULL) {
        fprintf(stderr, "canary %s found as %s\n", CANARY_STAFF, staff);
        found++;
    }
    return found;
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    CHECK(fp != NULL);
    CHECK(fseek(fp, 0, SEEK_END) == 0);
    long len = ftell(fp);
    CHECK(len >= 0);
    rewind(fp);
    uint8_t *buf = malloc((size_t)len + 1);
    CHECK(buf != NULL);
    CHECK(fread(buf, 1, (size_t)len, fp) == (size_t)len);
    fclose(fp);
    *n = (size_t)len;
    return buf;
}

/* A world with canaries in households (through register and update), in
 * results and audit records, and in a staff display name. */
static void canary_world(struct fx *f)
{
    fx_world(f);
    fx_do(f, c_canary_household(f, "H-C1"));
    fx_do(f, c_canary_household(f, "H-C2"));
    Kyufu__V1__Command *c = c_update_household(f, "clerk", "H-1", 1);
    Kyufu__V1__Household *h = c->update_household_fields->household;
    c_str(&h->head_name, CANARY_HEAD);
    c_str(&h->address, CANARY_ADDRESS);
    fx_do(f, c);
    c = c_create_staff(f, "admin", "kanaria", R_CLERK);
    c_str(&c->create_staff->display_name, CANARY_STAFF);
    fx_free(fx_apply_ok(f, c));
}

/* ------------------------------------------------------------ cases */

static void seal_round_trip(void)
{
    struct fx f;
    fx_open_keyed(&f, true);
    CHECK_EQ(kyufu_storage_keys_active(f.s), 1);
    canary_world(&f);
    Kyufu__V1__Household *h = NULL;
    CHECK(kyufu_storage_get_household(f.s, "H-C1", &h) == 0);
    CHECK_STR(h->head_name, CANARY_HEAD);
    CHECK_STR(h->member_names[0], CANARY_MEMBER);
    CHECK_STR(h->address, CANARY_ADDRESS);
    CHECK_STR(h->bank->account_no, CANARY_ACCOUNT);
    CHECK_STR(h->bank->holder_kana, CANARY_KANA);
    kyufu__v1__household__free_unpacked(h, NULL);
    /* Every value of every sealed db is sealed, version 1, and opens. */
    struct recs r = {0};
    raw_sealed(&f, &r);
    size_t per_db[KYUFU_DB_COUNT] = {0};
    for (size_t i = 0; i < r.n; i++) {
        size_t at = sealed_at(r.items[i].db, r.items[i].v, r.items[i].vlen);
        const uint8_t *v = r.items[i].v + at;
        CHECK(r.items[i].vlen - at >= 18 + 16);
        CHECK_EQ(v[0], 0x00);
        CHECK_EQ(v[1], 0x01);
        CHECK_EQ(kyufu_storage__get_u32(v + 2), 1);
        CHECK_EQ(open_rec(&f, r.items[i].db, r.items[i].k, r.items[i].klen,
                          r.items[i].v, r.items[i].vlen),
                 0);
        per_db[r.items[i].db]++;
    }
    for (size_t i = 0; i < N_SEALED; i++) {
        if (sealed_dbs[i] != KYUFU_DB_AUTH_SESSION &&
            sealed_dbs[i] != KYUFU_DB_APPLICATIONS) {
            CHECK(per_db[sealed_dbs[i]] > 0); /* the world wrote some */
        }
    }
    recs_free(&r);
    /* Lists, the audit chain and the whole-state check read them back. */
    struct kyufu_storage_page page;
    CHECK(kyufu_storage_list_households(f.s, NULL, 100, &page) == 0);
    CHECK_EQ(page.n, 6);
    kyufu_storage_page_free(&page);
    uint64_t n = 0;
    char err[256] = "";
    CHECK(kyufu_storage_audit_verify(f.s, &n, err, sizeof err) == 0);
    CHECK(n > 10);
    fx_invariants(&f);
    /* And so does the store after a restart. */
    fx_reopen(&f);
    CHECK(kyufu_storage_get_household(f.s, "H-C2", &h) == 0);
    CHECK_STR(h->head_name, CANARY_HEAD);
    kyufu__v1__household__free_unpacked(h, NULL);
    /* A duplicate gets its first result, opened from the session. */
    f.seq--;
    f.now_ms -= 1000;
    Kyufu__V1__Command *again = c_create_staff(&f, "admin", "kanaria", R_CLERK);
    c_str(&again->create_staff->display_name, CANARY_STAFF);
    Kyufu__V1__CommandResult *res = fx_apply(&f, again);
    CHECK_CODE(res, KYUFU__V1__CODE__OK);
    CHECK(res->record_case == KYUFU__V1__COMMAND_RESULT__RECORD_STAFF);
    CHECK_STR(res->staff->display_name, CANARY_STAFF);
    fx_free(res);
    kyufu__v1__command__free_unpacked(again, NULL);
    fx_close(&f);
}

/* Every flip of one byte of any sealed value (format, version, nonce,
 * ciphertext, tag), and a value moved under another key, fails
 * authentication: CORRUPT, nothing of it used. */
static void seal_tamper_every_value(void)
{
    struct fx f;
    fx_open_keyed(&f, true);
    canary_world(&f);
    struct recs r = {0};
    raw_sealed(&f, &r);
    CHECK(r.n > 20);
    for (size_t i = 0; i < r.n; i++) {
        struct rec *x = &r.items[i];
        size_t at = sealed_at(x->db, x->v, x->vlen);
        size_t len = x->vlen - at;
        size_t pos[] = {at + 1, at + 2, at + 5, at + 6, at + 17, at + 18,
                        at + len / 2, x->vlen - 16, x->vlen - 1};
        for (size_t j = 0; j < sizeof pos / sizeof pos[0]; j++) {
            uint8_t *copy = dup(x->v, x->vlen);
            copy[pos[j]] ^= 0x01;
            if (open_rec(&f, x->db, x->k, x->klen, copy, x->vlen) !=
                KYUFU_STORAGE_ECORRUPT) {
                t_fail(__FILE__, __LINE__, "db %s value %zu: flip at %zu "
                       "not detected", kyufu_storage__db_names[x->db], i,
                       pos[j]);
            }
            free(copy);
        }
        /* Truncated. */
        CHECK_EQ(open_rec(&f, x->db, x->k, x->klen, x->v, at + 20),
                 KYUFU_STORAGE_ECORRUPT);
        /* Under another key of its db (AAD = db ‖ key). */
        if (i + 1 < r.n && r.items[i + 1].db == x->db) {
            CHECK_EQ(open_rec(&f, x->db, r.items[i + 1].k, r.items[i + 1].klen,
                              x->v, x->vlen),
                     KYUFU_STORAGE_ECORRUPT);
        }
    }
    recs_free(&r);
    fx_close(&f);
}

/* A tampered household is never served and never applied: reads are
 * CORRUPT, an entry that reads it fails whole (applied index and digest
 * unchanged); a tampered audit record fails the chain check; a tampered
 * session result fails the duplicate's apply. */
static void seal_tamper_not_applied(void)
{
    struct fx f;
    fx_open_keyed(&f, true);
    canary_world(&f);
    struct recs hh = {0};
    raw_all(&f, KYUFU_DB_HOUSEHOLDS, &hh);
    struct rec *x = NULL;
    for (size_t i = 0; i < hh.n; i++) {
        if (hh.items[i].klen == 4 && memcmp(hh.items[i].k, "H-C1", 4) == 0) {
            x = &hh.items[i];
        }
    }
    CHECK(x != NULL);
    x->v[x->vlen / 2] ^= 0x80;
    raw_put(&f, KYUFU_DB_HOUSEHOLDS, x->k, x->klen, x->v, x->vlen);
    Kyufu__V1__Household *h = NULL;
    CHECK_EQ(kyufu_storage_get_household(f.s, "H-C1", &h),
             KYUFU_STORAGE_ECORRUPT);
    CHECK(h == NULL);
    struct kyufu_storage_page page;
    CHECK_EQ(kyufu_storage_list_households(f.s, NULL, 100, &page),
             KYUFU_STORAGE_ECORRUPT);
    uint8_t before[32], after[32];
    fx_digest(&f, before);
    uint64_t index0 = 0, term0 = 0;
    kyufu_storage_applied(f.s, &index0, &term0);
    Kyufu__V1__CommandBatch batch = KYUFU__V1__COMMAND_BATCH__INIT;
    Kyufu__V1__Command *c = c_update_household(&f, "clerk", "H-C1", 1);
    batch.n_commands = 1;
    batch.commands = &c;
    char err[256] = "";
    CHECK_EQ(kyufu_storage_apply(f.s, f.index + 1, f.term, &batch, NULL, err,
                                 sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    kyufu__v1__command__free_unpacked(c, NULL);
    uint64_t index1 = 0, term1 = 0;
    kyufu_storage_applied(f.s, &index1, &term1);
    CHECK_EQ(index1, index0);
    fx_digest(&f, after);
    CHECK(memcmp(before, after, 32) == 0);
    recs_free(&hh);

    /* An audit record. */
    struct recs au = {0};
    raw_all(&f, KYUFU_DB_AUDIT, &au);
    CHECK(au.n > 3);
    struct rec *a = &au.items[2];
    a->v[a->vlen - 1] ^= 0x01;
    raw_put(&f, KYUFU_DB_AUDIT, a->k, a->klen, a->v, a->vlen);
    uint64_t n = 0;
    CHECK_EQ(kyufu_storage_audit_verify(f.s, &n, err, sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    CHECK_EQ(kyufu_storage_list_audit(f.s, NULL, 100, &page),
             KYUFU_STORAGE_ECORRUPT);
    recs_free(&au);

    /* A session result: the duplicate's apply fails, nothing applied. */
    struct recs se = {0};
    raw_all(&f, KYUFU_DB_SESSIONS, &se);
    CHECK(se.n > 0);
    struct rec *last = NULL; /* the entry of the last sequence */
    for (size_t i = 0; i < se.n; i++) {
        struct rec *e = &se.items[i];
        if (e->klen > 8 &&
            kyufu_storage__get_u64(e->k + e->klen - 8) == f.seq - 1) {
            last = e;
        }
    }
    if (last == NULL) {
        last = &se.items[se.n - 1];
    }
    last->v[last->vlen - 3] ^= 0x10;
    raw_put(&f, KYUFU_DB_SESSIONS, last->k, last->klen, last->v, last->vlen);
    uint64_t seq = kyufu_storage__get_u64(last->k + last->klen - 8);
    Kyufu__V1__Command *dupc = c_register_household(&f, "clerk", "H-9");
    dupc->header->key->sequence = seq;
    batch.commands = &dupc;
    CHECK_EQ(kyufu_storage_apply(f.s, f.index + 1, f.term, &batch, NULL, err,
                                 sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    kyufu__v1__command__free_unpacked(dupc, NULL);
    kyufu_storage_applied(f.s, &index1, &term1);
    CHECK_EQ(index1, index0);
    recs_free(&se);
    fx_close(&f);
}

/* Two replicas applying the same entries write the same bytes. */
static void seal_replicas_identical(void)
{
    struct fx a, b;
    fx_open_keyed(&a, true);
    fx_open_keyed(&b, true);
    canary_world(&a);
    canary_world(&b);
    uint8_t da[32], db[32];
    fx_digest(&a, da);
    fx_digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);
    struct recs ra = {0}, rb = {0};
    raw_sealed(&a, &ra);
    raw_sealed(&b, &rb);
    CHECK_EQ(ra.n, rb.n);
    for (size_t i = 0; i < ra.n; i++) {
        CHECK_EQ(ra.items[i].vlen, rb.items[i].vlen);
        CHECK(memcmp(ra.items[i].v, rb.items[i].v, ra.items[i].vlen) == 0);
    }
    recs_free(&ra);
    recs_free(&rb);
    /* A replica restored from a snapshot holds the same bytes and reads
     * them with its own copy of the key. */
    struct fx c;
    fx_open_keyed(&c, true);
    fx_restore_from(&c, &a);
    uint8_t dc[32];
    fx_digest(&c, dc);
    CHECK(memcmp(da, dc, 32) == 0);
    Kyufu__V1__Household *h = NULL;
    CHECK(kyufu_storage_get_household(c.s, "H-C1", &h) == 0);
    CHECK_STR(h->address, CANARY_ADDRESS);
    kyufu__v1__household__free_unpacked(h, NULL);
    fx_close(&a);
    fx_close(&b);
    fx_close(&c);
}

static bool household_value(struct fx *f, const char *no, struct rec *out)
{
    struct recs r = {0};
    raw_all(f, KYUFU_DB_HOUSEHOLDS, &r);
    bool found = false;
    for (size_t i = 0; i < r.n; i++) {
        if (r.items[i].klen == strlen(no) &&
            memcmp(r.items[i].k, no, r.items[i].klen) == 0) {
            *out = r.items[i];
            r.items[i].k = NULL;
            r.items[i].v = NULL;
            found = true;
        }
    }
    recs_free(&r);
    return found;
}

/* The same record in entries with different salts: different nonces and
 * ciphertext, the same plaintext. */
static void seal_salt_changes_ciphertext(void)
{
    struct fx a, b;
    fx_open_keyed(&a, true);
    fx_open_keyed(&b, true);
    b.salt_seed = 2;
    canary_world(&a);
    canary_world(&b);
    struct rec va, vb;
    CHECK(household_value(&a, "H-C1", &va));
    CHECK(household_value(&b, "H-C1", &vb));
    CHECK_EQ(va.vlen, vb.vlen);
    CHECK(memcmp(va.v + 6, vb.v + 6, 12) != 0);           /* nonce */
    CHECK(memcmp(va.v + 18, vb.v + 18, va.vlen - 18) != 0); /* ciphertext */
    free(va.k), free(va.v), free(vb.k), free(vb.v);
    Kyufu__V1__Household *ha = NULL, *hb = NULL;
    CHECK(kyufu_storage_get_household(a.s, "H-C1", &ha) == 0);
    CHECK(kyufu_storage_get_household(b.s, "H-C1", &hb) == 0);
    size_t n = kyufu__v1__household__get_packed_size(ha);
    CHECK_EQ(n, kyufu__v1__household__get_packed_size(hb));
    uint8_t *pa = malloc(n), *pb = malloc(n);
    kyufu__v1__household__pack(ha, pa);
    kyufu__v1__household__pack(hb, pb);
    CHECK(memcmp(pa, pb, n) == 0);
    free(pa), free(pb);
    kyufu__v1__household__free_unpacked(ha, NULL);
    kyufu__v1__household__free_unpacked(hb, NULL);
    /* An entry without salt (proposed before encryption at rest) is
     * sealed with 16 zero bytes: still sealed, still readable. */
    a.salt_empty = true;
    fx_do(&a, c_canary_household(&a, "H-C3"));
    CHECK(household_value(&a, "H-C3", &va));
    CHECK_EQ(va.v[0], 0x00);
    free(va.k), free(va.v);
    fx_close(&a);
    fx_close(&b);
}

/* A store written without a key reads on with one; new writes are sealed;
 * the mixed audit chain verifies. */
static void seal_legacy_store_reads(void)
{
    struct fx f;
    fx_open_keyed(&f, false);
    canary_world(&f);
    uint8_t d0[32];
    fx_digest(&f, d0);
    f.cmk = true;
    fx_reopen(&f);
    CHECK_EQ(kyufu_storage_keys_active(f.s), 1);
    uint8_t d1[32];
    fx_digest(&f, d1);
    CHECK(memcmp(d0, d1, 32) == 0); /* getting a key rewrites nothing */
    Kyufu__V1__Household *h = NULL;
    CHECK(kyufu_storage_get_household(f.s, "H-C1", &h) == 0);
    CHECK_STR(h->head_name, CANARY_HEAD);
    kyufu__v1__household__free_unpacked(h, NULL);
    struct rec v;
    CHECK(household_value(&f, "H-2", &v));
    CHECK(v.v[0] != 0x00); /* legacy */
    free(v.k), free(v.v);
    fx_do(&f, c_update_household(&f, "clerk", "H-2", 1));
    CHECK(household_value(&f, "H-2", &v));
    CHECK_EQ(v.v[0], 0x00); /* rewritten sealed */
    free(v.k), free(v.v);
    uint64_t n = 0;
    char err[256] = "";
    CHECK(kyufu_storage_audit_verify(f.s, &n, err, sizeof err) == 0);
    fx_invariants(&f);
    struct kyufu_storage_page page;
    CHECK(kyufu_storage_list_households(f.s, NULL, 100, &page) == 0);
    CHECK_EQ(page.n, 6);
    kyufu_storage_page_free(&page);
    fx_close(&f);
}

/* Without a key nothing is sealed (as before encryption at rest), and a
 * store holding sealed values cannot be read without its key. */
static void seal_no_key_plain(void)
{
    struct fx f;
    fx_open_keyed(&f, false);
    CHECK_EQ(kyufu_storage_keys_active(f.s), 0);
    canary_world(&f);
    struct recs r = {0};
    raw_sealed(&f, &r);
    for (size_t i = 0; i < r.n; i++) {
        size_t at = sealed_at(r.items[i].db, r.items[i].v, r.items[i].vlen);
        CHECK(r.items[i].v[at] != 0x00);
    }
    recs_free(&r);
    fx_close(&f);

    fx_open_keyed(&f, true);
    canary_world(&f);
    f.cmk = false;
    fx_reopen(&f);
    Kyufu__V1__Household *h = NULL;
    CHECK_EQ(kyufu_storage_get_household(f.s, "H-C1", &h),
             KYUFU_STORAGE_ECORRUPT);
    fx_close(&f);
}

/* Pairs of sealed values with the same nonce must be the same bytes (the
 * same seal copied by a snapshot), never two seals. */
static void check_nonces(struct recs *r)
{
    for (size_t i = 0; i < r->n; i++) {
        struct rec *x = &r->items[i];
        const uint8_t *nx = x->v + sealed_at(x->db, x->v, x->vlen) + 6;
        for (size_t j = i + 1; j < r->n; j++) {
            struct rec *y = &r->items[j];
            const uint8_t *ny = y->v + sealed_at(y->db, y->v, y->vlen) + 6;
            if (memcmp(nx, ny, 12) == 0) {
                CHECK(x->vlen == y->vlen &&
                      memcmp(x->v, y->v, x->vlen) == 0);
            }
        }
    }
}

/* Two timelines at one index (different salts), and a household
 * registered again after the state that held it was replaced (a restore
 * to before it, then the same registration at a later index): no nonce
 * repeats.  Every entry a timeline proposes has its own salt (the leader
 * draws one per entry), so c, whose entries differ from a's at the same
 * indexes, has its own salt seed. */
static void seal_nonces_distinct(void)
{
    struct fx a, b, c;
    fx_open_keyed(&a, true);
    fx_world(&a);
    fx_open_keyed(&b, true);
    fx_restore_from(&b, &a);
    b.seq = a.seq;
    b.now_ms = a.now_ms;
    b.salt_seed = 2; /* another leader's timeline from the same index */
    fx_do(&a, c_canary_household(&a, "H-C1"));
    fx_do(&b, c_canary_household(&b, "H-C1"));
    CHECK_EQ(a.index, b.index);
    struct rec va, vb;
    CHECK(household_value(&a, "H-C1", &va));
    CHECK(household_value(&b, "H-C1", &vb));
    CHECK(memcmp(va.v + 6, vb.v + 6, 12) != 0);
    free(vb.k), free(vb.v);

    /* Re-registration: c restored to before H-C1, one more entry, then the
     * same registration (same salt seed as a) one index later. */
    fx_open_keyed(&c, true);
    struct fx snap;
    fx_open_keyed(&snap, true);
    fx_world(&snap);
    fx_restore_from(&c, &snap);
    c.seq = snap.seq;
    c.now_ms = snap.now_ms;
    c.salt_seed = 3;
    fx_do(&c, c_register_household(&c, "clerk", "H-8"));
    fx_do(&c, c_canary_household(&c, "H-C1"));
    CHECK_EQ(c.index, a.index + 1);
    struct rec vc;
    CHECK(household_value(&c, "H-C1", &vc));
    CHECK(memcmp(va.v + 6, vc.v + 6, 12) != 0);
    free(va.k), free(va.v), free(vc.k), free(vc.v);

    struct recs all = {0};
    raw_sealed(&a, &all);
    raw_sealed(&b, &all);
    raw_sealed(&c, &all);
    check_nonces(&all);
    recs_free(&all);
    fx_close(&a);
    fx_close(&b);
    fx_close(&c);
    fx_close(&snap);
}

/* The storage-level canary: no canary in any byte of data.mdb or of a
 * snapshot stream of a sealed store; the same scan finds them in a store
 * without a key (so the scan itself works, and this fails on a build that
 * stores plaintext). */
static void canary_scan(bool cmk, size_t *in_file, size_t *in_snapshot)
{
    struct fx f;
    fx_open_keyed(&f, cmk);
    canary_world(&f);
    struct t_sink k = {0};
    struct kyufu_storage_snapshot *snap;
    CHECK(kyufu_storage_snapshot_begin(f.s, &snap) == 0);
    CHECK(kyufu_storage_snapshot_write(snap, NULL, t_sink_emit, &k) == 0);
    kyufu_storage_snapshot_end(snap);
    fx_close(&f); /* flushed to data.mdb */
    char path[256];
    snprintf(path, sizeof path, "%s/data.mdb", f.dir);
    size_t n;
    uint8_t *buf = read_file(path, &n);
    const char *what = NULL;
    *in_file = count_canaries(buf, n, &what);
    *in_snapshot = count_canaries(k.buf, k.len, &what);
    free(buf);
    free(k.buf);
}

static void seal_canary_lmdb_and_snapshot(void)
{
    size_t file = 0, snapshot = 0;
    canary_scan(false, &file, &snapshot);
    CHECK(file >= N_CANARIES); /* the control: plaintext is found */
    CHECK(snapshot >= N_CANARIES);
    canary_scan(true, &file, &snapshot);
    CHECK_EQ(file, 0);
    CHECK_EQ(snapshot, 0);
}

/* The keyring's keyed contexts (keyring.c): every stored value opens with
 * keys derived afresh through the public derivation and the one-shot AEAD
 * (so the cached contexts seal exactly what the derivation says), and keys
 * a thread still holds stay usable while the cache replaces their version
 * (references, not the cache's slots; ASan sees a use after free). */
static void seal_keys_cache(void)
{
    struct fx f;
    fx_open_keyed(&f, true);
    canary_world(&f);
    struct kyufu_crypto_subkeys sub;
    CHECK(kyufu_storage_keys_subkeys(f.s, 1, &sub) == 0);
    struct recs r = {0};
    raw_sealed(&f, &r);
    CHECK(r.n > 10);
    for (size_t i = 0; i < r.n; i++) {
        size_t at = sealed_at(r.items[i].db, r.items[i].v, r.items[i].vlen);
        const uint8_t *v = r.items[i].v + at;
        size_t n = r.items[i].vlen - at;
        uint8_t aad[4 + 512];
        CHECK(r.items[i].klen <= 512 && n >= 18 + 16);
        kyufu_storage__put_u32(aad, r.items[i].db);
        memcpy(aad + 4, r.items[i].k, r.items[i].klen);
        uint8_t *plain = malloc(n);
        CHECK(plain != NULL);
        CHECK_EQ(kyufu_storage_crypto_open(sub.enc, v + 6, aad,
                                           4 + r.items[i].klen, v + 18,
                                           n - 18, plain),
                 0);
        free(plain);
    }
    recs_free(&r);

    /* Hold version 1's keys, then push it out of the cache. */
    struct kyufu_storage__keys held, other;
    CHECK(kyufu_storage__keys_get(f.s, 1, &held) == 0);
    for (uint32_t v = 2; v < 2 + KYUFU_KEYS_CACHED_MAX; v++) {
        CHECK(kyufu_storage__keys_get(f.s, v, &other) == 0);
        kyufu_storage__keys_put(&other);
    }
    uint8_t nonce[12], want[12], ct[5 + 16], back[5];
    static const uint8_t salt[16] = {7};
    CHECK(kyufu_storage_crypto_key_record_nonce(held.nonce, salt, 9, 1,
                                                (const uint8_t *)"k", 1, 0,
                                                nonce) == 0);
    CHECK(kyufu_storage_crypto_record_nonce(sub.nonce, salt, 9, 1,
                                            (const uint8_t *)"k", 1, 0,
                                            want) == 0);
    CHECK(memcmp(nonce, want, 12) == 0);
    CHECK(kyufu_storage_crypto_key_seal(held.enc, nonce, NULL, 0,
                                        (const uint8_t *)"hello", 5, ct) == 0);
    kyufu_storage__keys_put(&held);
    CHECK(held.enc == NULL && held.nonce == NULL);
    /* Version 1 again, derived anew: it opens what the held keys sealed. */
    CHECK(kyufu_storage__keys_get(f.s, 1, &other) == 0);
    CHECK(kyufu_storage_crypto_key_open(other.enc, nonce, NULL, 0, ct,
                                        sizeof ct, back) == 0);
    CHECK(memcmp(back, "hello", 5) == 0);
    kyufu_storage__keys_put(&other);
    kyufu_storage_crypto_wipe(&sub, sizeof sub);
    /* And the store reads on as before. */
    Kyufu__V1__Household *h = NULL;
    CHECK(kyufu_storage_get_household(f.s, "H-C1", &h) == 0);
    CHECK_STR(h->head_name, CANARY_HEAD);
    kyufu__v1__household__free_unpacked(h, NULL);
    fx_close(&f);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(seal_round_trip),
        T_CASE(seal_tamper_every_value),
        T_CASE(seal_tamper_not_applied),
        T_CASE(seal_replicas_identical),
        T_CASE(seal_salt_changes_ciphertext),
        T_CASE(seal_legacy_store_reads),
        T_CASE(seal_no_key_plain),
        T_CASE(seal_nonces_distinct),
        T_CASE(seal_canary_lmdb_and_snapshot),
        T_CASE(seal_keys_cache),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
