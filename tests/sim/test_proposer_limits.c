/* raft-glue's proposer limits at their edges (raft-glue/proposer.h,
 * glue_limits.h), on a three-server libraft fixture cluster with kyufu's
 * FSM:
 *
 *  - command_bytes_max: a command of exactly the limit is accepted, one
 *    byte longer fails with TOOBIG (its callback never fires);
 *  - queue_commands_max: with one entry in flight, exactly the limit of
 *    commands queue up, the next fails with BUSY;
 *  - entry_bytes_max: two queued commands whose items need exactly the
 *    limit (with the batch's 18-byte salt item) go out as one entry; with
 *    the limit one byte lower, as two.
 *
 * Deterministic (virtual time); one temporary directory under /tmp. */
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rm_tree.h"
#include "fsm.h"
#include "proposer.h"
#include "storage.h"

#define N 3
/* CommandBatch.salt: tag, length, 16 bytes (every entry carries one). */
#define SALT_ITEM (2u + KYUFU_CRYPTO_SALT_BYTES)

static char dir[64];
static struct raft_fixture f;
static struct kyufu_storage *s[N];
static struct raft_fsm fsm[N];
static struct kyufu_fsm st[N];
static struct kyufu_proposer prop;
static unsigned n_ok, n_failed;

static void on_applied(void *arg, uint64_t index, uint64_t term,
                       struct kyufu_storage_results *results)
{
    (void)arg;
    kyufu_proposer__applied(&prop, index, term, results);
}

static void on_done(struct kyufu_glue_propose *req, int status,
                    Kyufu__V1__CommandResult *result)
{
    (void)req;
    if (status == 0) {
        n_ok++;
        if (result->code != KYUFU__V1__CODE__OK) {
            fprintf(stderr, "result %d: %s\n", result->code, result->message);
            exit(1);
        }
        kyufu__v1__command_result__free_unpacked(result, NULL);
    } else {
        n_failed++;
    }
}

/* A CreateStaff by admin of `id` (the bootstrap when id is "admin"). */
struct cmd
{
    Kyufu__V1__IdempotencyKey key;
    Kyufu__V1__CommandHeader h;
    Kyufu__V1__CreateStaff cs;
    Kyufu__V1__Command c;
};

static void build(struct cmd *m, const char *id, uint64_t seq)
{
    kyufu__v1__idempotency_key__init(&m->key);
    kyufu__v1__command_header__init(&m->h);
    kyufu__v1__create_staff__init(&m->cs);
    kyufu__v1__command__init(&m->c);
    m->key.client_id = "test-proposer";
    m->key.sequence = seq;
    m->h.actor = "admin";
    m->h.terminal = "t";
    m->h.time_ms = 1775001600000 + (int64_t)seq;
    m->h.key = &m->key;
    m->cs.staff_id = (char *)id;
    m->cs.display_name = "d";
    m->cs.roles_mask = strcmp(id, "admin") == 0
                      ? 1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN
                      : 1u << KYUFU__V1__ROLE__ROLE_CLERK;
    m->c.header = &m->h;
    m->c.body_case = KYUFU__V1__COMMAND__BODY_CREATE_STAFF;
    m->c.create_staff = &m->cs;
}

static void settle(void)
{
    raft_index last = raft_last_index(raft_fixture_get(&f, 0));
    CHECK(raft_fixture_step_until_applied(&f, N, last, 10000));
    raft_fixture_step_until_elapsed(&f, 200);
}

int main(void)
{
    struct raft_configuration conf;
    char err[256] = "";
    snprintf(dir, sizeof dir, "/tmp/kyufu-proposer-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    CHECK(raft_fixture_init(&f) == 0);
    for (unsigned i = 0; i < N; i++) {
        struct kyufu_storage_options o;
        char path[128];
        struct kyufu_fsm_hooks hooks = {NULL, i == 0 ? on_applied : NULL,
                                        NULL};
        snprintf(path, sizeof path, "%s/s%u", dir, i);
        memset(&o, 0, sizeof o);
        o.path = path;
        o.map_size_bytes = (size_t)32 << 20;
        o.no_sync = true;
        CHECK(kyufu_storage_open(&o, &s[i], err, sizeof err) == 0);
        kyufu_fsm_init(&fsm[i], &st[i], s[i], KYUFU_FSM_SNAPSHOT_INLINE,
                       &hooks);
        CHECK(raft_fixture_grow(&f, &fsm[i]) == 0);
        struct raft *r = raft_fixture_get(&f, i);
        r->tracer = NULL;
        st[i].raft = r;
    }
    CHECK(raft_fixture_configuration(&f, N, &conf) == 0);
    CHECK(raft_fixture_bootstrap(&f, &conf) == 0);
    raft_configuration_close(&conf);
    CHECK(raft_fixture_start(&f) == 0);
    raft_fixture_elect(&f, 0);

    /* Commands "s1".."s9" all encode to the same size; "s10" is one byte
     * longer. */
    struct cmd m[12];
    struct kyufu_glue_propose req[12];
    memset(req, 0, sizeof req);
    build(&m[0], "admin", 1);
    char ids[12][8];
    for (unsigned k = 1; k < 12; k++) {
        snprintf(ids[k], sizeof ids[k], "s%u", k);
        build(&m[k], ids[k], k + 1);
    }
    size_t len = kyufu__v1__command__get_packed_size(&m[1].c);
    CHECK(len < 120); /* one-byte varint length: item = len + 2 */
    CHECK(kyufu__v1__command__get_packed_size(&m[10].c) == len + 1);
    size_t item = len + 2;

    struct kyufu_proposer_limits lim;
    kyufu_proposer__default_limits(&lim);
    lim.entries_inflight_max = 1;
    lim.commands_per_entry_max = 16;
    lim.command_bytes_max = len;
    lim.entry_bytes_max = 2 * item + SALT_ITEM - 1; /* two do not fit */
    lim.queue_commands_max = 2;
    kyufu_proposer__init(&prop, raft_fixture_get(&f, 0), &lim);

    /* The bootstrap is longer than len: alone it is TOOBIG.  Admit it
     * with a proposer whose limit is its size, exactly. */
    size_t boot = kyufu__v1__command__get_packed_size(&m[0].c);
    CHECK(boot > len);
    CHECK(kyufu_proposer__submit(&prop, &req[0], &m[0].c, on_done) ==
          KYUFU_GLUE_ETOOBIG);
    lim.command_bytes_max = boot;
    lim.entry_bytes_max = boot + 16 + SALT_ITEM > 2 * item + SALT_ITEM - 1
                              ? boot + 16 + SALT_ITEM
                              : 2 * item + SALT_ITEM - 1;
    kyufu_proposer__init(&prop, raft_fixture_get(&f, 0), &lim);
    CHECK(kyufu_proposer__submit(&prop, &req[0], &m[0].c, on_done) == 0);
    settle();
    CHECK(n_ok == 1 && n_failed == 0);

    /* command_bytes_max: exactly len accepted, len + 1 refused. */
    lim.command_bytes_max = len;
    lim.entry_bytes_max = 2 * item + SALT_ITEM - 1;
    CHECK(lim.command_bytes_max + 16 + SALT_ITEM <= lim.entry_bytes_max);
    kyufu_proposer__init(&prop, raft_fixture_get(&f, 0), &lim);
    CHECK(kyufu_proposer__submit(&prop, &req[10], &m[10].c, on_done) ==
          KYUFU_GLUE_ETOOBIG);
    CHECK(kyufu_proposer__submit(&prop, &req[1], &m[1].c, on_done) == 0);
    /* queue_commands_max = 2 while s1's entry is in flight. */
    CHECK(kyufu_proposer__submit(&prop, &req[2], &m[2].c, on_done) == 0);
    CHECK(kyufu_proposer__submit(&prop, &req[3], &m[3].c, on_done) == 0);
    CHECK(kyufu_proposer__submit(&prop, &req[4], &m[4].c, on_done) ==
          KYUFU_GLUE_EBUSY);
    uint64_t e0 = prop.n_entries;
    settle();
    CHECK(n_ok == 4 && n_failed == 0);
    /* entry_bytes_max = 2 items - 1: s2 and s3 went out one by one. */
    CHECK(prop.n_entries - e0 == 2);

    /* entry_bytes_max = exactly 2 items: the two queued share an entry. */
    lim.entry_bytes_max = 2 * item + SALT_ITEM;
    kyufu_proposer__init(&prop, raft_fixture_get(&f, 0), &lim);
    uint64_t e1 = prop.n_entries;
    CHECK(kyufu_proposer__submit(&prop, &req[5], &m[5].c, on_done) == 0);
    CHECK(kyufu_proposer__submit(&prop, &req[6], &m[6].c, on_done) == 0);
    CHECK(kyufu_proposer__submit(&prop, &req[7], &m[7].c, on_done) == 0);
    settle();
    CHECK(n_ok == 7 && n_failed == 0);
    CHECK(prop.n_entries - e1 == 2); /* s5 alone, then s6 with s7 */
    for (unsigned i = 0; i < N; i++) {
        Kyufu__V1__StaffAccount *a = NULL;
        CHECK(kyufu_storage_get_staff(s[i], "s7", &a) == 0);
        kyufu__v1__staff_account__free_unpacked(a, NULL);
        CHECK(kyufu_storage_get_staff(s[i], "s4", &a) ==
              KYUFU_STORAGE_ENOTFOUND);
    }

    raft_fixture_close(&f);
    for (unsigned i = 0; i < N; i++) {
        kyufu_storage_close(s[i]);
    }
    test_rm_tree(dir);
    printf("proposer-limits: ok\n");
    return 0;
}
