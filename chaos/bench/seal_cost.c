/* kyufu-bench-seal: the proposal and apply path of raft-glue with and
 * without a cluster master key, for callgrind (docs/benchmarks-encryption.md "Sealed
 * Raft entries").  Three stores on libraft's fixture cluster (virtual time,
 * in-memory log), kyufu's FSM on each, the proposer on the leader; `n`
 * CreateStaff commands, one per entry (the worst case for the per-entry
 * cost).  Run it twice under
 *
 *   valgrind --tool=callgrind kyufu-bench-seal [--keys] N
 *
 * and compare the inclusive Ir of kyufu_proposer__submit and fsm_apply
 * divided by the entries printed.  Writes only under /tmp (removed). */
#include <ftw.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "proposer.h"
#include "storage.h"

#define N 3

static char dir[64];
static struct raft_fixture f;
static struct kyufu_storage *s[N];
static struct raft_fsm fsm[N];
static struct kyufu_fsm st[N];
static struct kyufu_proposer prop;
static unsigned n_ok;

static void die(const char *what)
{
    fprintf(stderr, "kyufu-bench-seal: %s\n", what);
    exit(1);
}

static int rm_entry(const char *p, const struct stat *sb, int fl,
                    struct FTW *w)
{
    (void)sb;
    (void)fl;
    (void)w;
    return remove(p);
}

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
    if (status != 0 || result->code != KYUFU__V1__CODE__OK) {
        die("a proposal failed");
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
    n_ok++;
}

static void propose(const char *id, uint64_t seq)
{
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    Kyufu__V1__CommandHeader h = KYUFU__V1__COMMAND_HEADER__INIT;
    Kyufu__V1__CreateStaff cs = KYUFU__V1__CREATE_STAFF__INIT;
    Kyufu__V1__Command c = KYUFU__V1__COMMAND__INIT;
    static struct kyufu_glue_propose req;
    unsigned want = n_ok + 1;
    key.client_id = "bench-seal";
    key.sequence = seq;
    h.actor = "admin";
    h.terminal = "t";
    h.time_ms = 1775001600000 + (int64_t)seq;
    h.key = &key;
    cs.staff_id = (char *)id;
    cs.display_name = (char *)id;
    cs.roles_mask = strcmp(id, "admin") == 0
                        ? 1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN
                        : 1u << KYUFU__V1__ROLE__ROLE_CLERK;
    c.header = &h;
    c.body_case = KYUFU__V1__COMMAND__BODY_CREATE_STAFF;
    c.create_staff = &cs;
    memset(&req, 0, sizeof req);
    if (kyufu_proposer__submit(&prop, &req, &c, on_done) != 0) {
        die("submit refused");
    }
    raft_index last = raft_last_index(raft_fixture_get(&f, 0));
    if (!raft_fixture_step_until_applied(&f, N, last, 10000)) {
        die("not applied");
    }
    while (n_ok < want) {
        raft_fixture_step(&f);
    }
}

int main(int argc, char **argv)
{
    static const uint8_t cmk[KYUFU_CRYPTO_KEY_BYTES] = {
        0x62, 0x65, 0x6e, 0x63, 0x68, 0x20, 0x73, 0x65, 0x61, 0x6c, 0x01,
        0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
        0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16};
    struct raft_configuration conf;
    struct kyufu_proposer_limits lim;
    char err[256] = "";
    bool keys = false;
    long n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--keys") == 0) {
            keys = true;
        } else {
            char *end;
            n = strtol(argv[i], &end, 10);
            if (*end != '\0' || n < 1 || n > 1000000) {
                die("usage: kyufu-bench-seal [--keys] N (1..1000000)");
            }
        }
    }
    if (n == 0) {
        die("usage: kyufu-bench-seal [--keys] N (1..1000000)");
    }
    snprintf(dir, sizeof dir, "/tmp/kyufu-bench-seal-XXXXXX");
    if (mkdtemp(dir) == NULL || raft_fixture_init(&f) != 0) {
        die("set-up failed");
    }
    for (unsigned i = 0; i < N; i++) {
        struct kyufu_storage_options o;
        char path[128];
        struct kyufu_fsm_hooks hooks = {NULL, i == 0 ? on_applied : NULL,
                                        NULL};
        snprintf(path, sizeof path, "%s/s%u", dir, i);
        memset(&o, 0, sizeof o);
        o.path = path;
        o.map_size_bytes = (size_t)256 << 20;
        o.no_sync = true;
        if (kyufu_storage_open(&o, &s[i], err, sizeof err) != 0) {
            die(err);
        }
        if (keys) {
            kyufu_storage_keys_set(s[i], cmk);
        }
        kyufu_fsm_init(&fsm[i], &st[i], s[i], KYUFU_FSM_SNAPSHOT_INLINE,
                       &hooks);
        if (raft_fixture_grow(&f, &fsm[i]) != 0) {
            die("grow failed");
        }
        st[i].raft = raft_fixture_get(&f, i);
        st[i].raft->tracer = NULL;
    }
    if (raft_fixture_configuration(&f, N, &conf) != 0 ||
        raft_fixture_bootstrap(&f, &conf) != 0) {
        die("bootstrap failed");
    }
    raft_configuration_close(&conf);
    if (raft_fixture_start(&f) != 0) {
        die("start failed");
    }
    raft_fixture_elect(&f, 0);
    kyufu_proposer__default_limits(&lim);
    lim.entries_inflight_max = 1;
    kyufu_proposer__init(&prop, raft_fixture_get(&f, 0), &lim);
    prop.storage = s[0];

    propose("admin", 1);
    for (long k = 1; k <= n; k++) {
        char id[32];
        snprintf(id, sizeof id, "clerk-%06ld", k);
        propose(id, (uint64_t)k + 1);
    }
    printf("entries %llu sealed %llu; applied per replica %llu (sealed "
           "%llu)\n",
           (unsigned long long)prop.n_entries,
           (unsigned long long)prop.n_sealed,
           (unsigned long long)st[1].n_applied,
           (unsigned long long)st[1].n_sealed);
    kyufu_proposer__close(&prop, KYUFU_GLUE_ESHUTDOWN);
    raft_fixture_close(&f);
    for (unsigned i = 0; i < N; i++) {
        kyufu_fsm_wipe_keys(&st[i]);
        kyufu_storage_close(s[i]);
    }
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
