/* raft-glue on real raft_uv: three glues on one libuv loop on 127.0.0.1,
 * bootstrap, propose through the leader, transfer leadership, add and
 * remove a node, close cleanly (uv_loop_close returns 0).  Then the
 * lost-entries rule: a single node whose log lost its segments refuses to
 * start and its store is untouched (docs/raft.md, auto-recovery). */
#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <signal.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "glue.h"

#define CHECK(c)                                                          \
    do {                                                                  \
        if (!(c)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,        \
                    __LINE__, #c);                                        \
            exit(1);                                                      \
        }                                                                 \
    } while (0)

static uv_loop_t loop;
static char tmp[64];

static int rm_entry(const char *p, const struct stat *st, int f,
                    struct FTW *w)
{
    (void)st;
    (void)f;
    (void)w;
    return remove(p);
}

static unsigned free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Run the loop until *flag or the deadline timer fires. */
static bool timed_out;
static void deadline_cb(uv_timer_t *t)
{
    (void)t;
    timed_out = true;
}
static bool run_until(bool (*done)(void *), void *arg, uint64_t ms)
{
    uv_timer_t t;
    bool ok;
    timed_out = false;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, deadline_cb, ms, 0);
    while (!(ok = done(arg)) && !timed_out) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

#define N 4
static struct kyufu_glue *g[N];
static struct kyufu_storage *st[N];
static char addr[N][32];
static char dir[N][96];

static void state_cb(struct kyufu_glue *gl, void *arg)
{
    (void)gl;
    (void)arg;
}

static void open_node(unsigned i, bool bootstrap, unsigned n_peers)
{
    struct kyufu_storage_options o;
    struct kyufu_glue_config c;
    struct kyufu_glue_peer peers[N];
    char sdir[128];
    char err[256];
    memset(&o, 0, sizeof o);
    snprintf(sdir, sizeof sdir, "%s/store%u", tmp, i);
    o.path = sdir;
    o.map_size_bytes = (size_t)32 << 20;
    o.no_sync = true;
    CHECK(kyufu_storage_open(&o, &st[i], err, sizeof err) == 0);
    snprintf(dir[i], sizeof dir[i], "%s/raft%u", tmp, i);
    mkdir(dir[i], 0700);
    memset(&c, 0, sizeof c);
    c.id = i + 1;
    c.address = addr[i];
    c.raft_dir = dir[i];
    c.election_timeout_ms = 300;
    int rv = kyufu_glue_init(&loop, &c, st[i], &g[i], err, sizeof err);
    if (rv != 0) {
        fprintf(stderr, "init: %s\n", err);
    }
    CHECK(rv == 0);
    if (bootstrap) {
        for (unsigned k = 0; k < n_peers; k++) {
            peers[k].id = k + 1;
            peers[k].address = addr[k];
        }
        CHECK(kyufu_glue_bootstrap(g[i], peers, n_peers, err, sizeof err) ==
              0);
    }
}

static int leader(void)
{
    for (unsigned i = 0; i < N; i++) {
        if (g[i] != NULL && kyufu_glue_is_leader(g[i])) {
            return (int)i;
        }
    }
    return -1;
}
static bool has_leader(void *arg)
{
    (void)arg;
    return leader() >= 0;
}

static int prop_status = 1;
static Kyufu__V1__CommandResult *prop_result;
static void prop_cb(struct kyufu_glue_propose *req, int status,
                    Kyufu__V1__CommandResult *result)
{
    (void)req;
    prop_status = status;
    prop_result = result;
}
static bool prop_done(void *arg)
{
    (void)arg;
    return prop_status != 1;
}

static void propose_staff(int l, const char *id, uint64_t seq)
{
    Kyufu__V1__Command c = KYUFU__V1__COMMAND__INIT;
    Kyufu__V1__CommandHeader h = KYUFU__V1__COMMAND_HEADER__INIT;
    Kyufu__V1__IdempotencyKey k = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    Kyufu__V1__CreateStaff cs = KYUFU__V1__CREATE_STAFF__INIT;
    static struct kyufu_glue_propose req;
    k.client_id = "t";
    k.sequence = seq;
    h.actor = (char *)id;
    h.time_ms = 1767225600000;
    h.key = &k;
    c.header = &h;
    cs.staff_id = (char *)id;
    cs.display_name = (char *)id;
    cs.roles = 1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN;
    c.body_case = KYUFU__V1__COMMAND__BODY_CREATE_STAFF;
    c.create_staff = &cs;
    prop_status = 1;
    CHECK(kyufu_glue_propose(g[l], &req, &c, prop_cb) == 0);
    CHECK(run_until(prop_done, NULL, 10000));
}

static int op_status = 1;
static void transfer_cb(struct kyufu_glue_transfer *req, int status)
{
    (void)req;
    op_status = status;
}
static void change_cb(struct kyufu_glue_change *req, int status)
{
    (void)req;
    op_status = status;
}
static bool op_done(void *arg)
{
    (void)arg;
    return op_status != 1;
}

static unsigned n_closed;
static void closed_cb(void *arg)
{
    (void)arg;
    n_closed++;
}
static bool all_closed(void *arg)
{
    return n_closed == *(unsigned *)arg;
}

static void close_all(void)
{
    unsigned want = 0;
    n_closed = 0;
    for (unsigned i = 0; i < N; i++) {
        if (g[i] != NULL) {
            kyufu_glue_close(g[i], closed_cb, NULL);
            g[i] = NULL;
            want++;
        }
    }
    CHECK(run_until(all_closed, &want, 10000));
    for (unsigned i = 0; i < N; i++) {
        if (st[i] != NULL) {
            kyufu_storage_close(st[i]);
            st[i] = NULL;
        }
    }
}

static void test_cluster(void)
{
    struct kyufu_glue_transfer tr;
    struct kyufu_glue_change ch;
    struct kyufu_glue_peer peer;
    char err[256];
    int l, l2;

    for (unsigned i = 0; i < N; i++) {
        snprintf(addr[i], sizeof addr[i], "127.0.0.1:%u", free_port());
    }
    for (unsigned i = 0; i < 3; i++) {
        open_node(i, true, 3);
        CHECK(kyufu_glue_start(g[i], state_cb, NULL, err, sizeof err) == 0);
    }
    CHECK(run_until(has_leader, NULL, 10000));
    l = leader();
    propose_staff(l, "admin", 1);
    CHECK(prop_status == 0 && prop_result != NULL);
    CHECK(prop_result->code == KYUFU__V1__CODE__OK);
    kyufu__v1__command_result__free_unpacked(prop_result, NULL);

    /* Transfer: another node leads afterwards. */
    op_status = 1;
    CHECK(kyufu_glue_transfer(g[l], &tr, 0, transfer_cb) == 0);
    CHECK(run_until(op_done, NULL, 15000));
    CHECK(op_status == 0);
    CHECK(run_until(has_leader, NULL, 10000));
    l2 = leader();
    CHECK(l2 >= 0 && l2 != l);

    /* Add a fourth node as voter, then remove it. */
    open_node(3, false, 0);
    CHECK(kyufu_glue_start(g[3], state_cb, NULL, err, sizeof err) == 0);
    peer.id = 4;
    peer.address = addr[3];
    op_status = 1;
    CHECK(kyufu_glue_add(g[l2], &ch, &peer, change_cb) == 0);
    CHECK(run_until(op_done, NULL, 20000));
    CHECK(op_status == 0);
    op_status = 1;
    CHECK(run_until(has_leader, NULL, 10000));
    CHECK(kyufu_glue_remove(g[leader()], &ch, 4, change_cb) == 0);
    CHECK(run_until(op_done, NULL, 20000));
    CHECK(op_status == 0);

    close_all();
}

/* Single node: write, close, remove the log's segments, restart. */
static void test_lost_entries(void)
{
    char err[512];
    DIR *d;
    struct dirent *e;
    uint64_t before, after, term;
    int rv;

    memset(g, 0, sizeof g);
    snprintf(tmp + strlen(tmp), sizeof tmp - strlen(tmp), "/single");
    mkdir(tmp, 0700);
    snprintf(addr[0], sizeof addr[0], "127.0.0.1:%u", free_port());
    open_node(0, true, 1);
    CHECK(kyufu_glue_start(g[0], state_cb, NULL, err, sizeof err) == 0);
    CHECK(run_until(has_leader, NULL, 10000));
    propose_staff(0, "admin", 1);
    CHECK(prop_status == 0);
    kyufu__v1__command_result__free_unpacked(prop_result, NULL);
    kyufu_storage_applied(st[0], &before, &term);
    CHECK(before > 0);
    close_all();

    /* Lose every segment (open and closed); keep metadata. */
    d = opendir(dir[0]);
    CHECK(d != NULL);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "open-", 5) == 0 ||
            (e->d_name[0] >= '0' && e->d_name[0] <= '9')) {
            char p[400];
            snprintf(p, sizeof p, "%s/%s", dir[0], e->d_name);
            CHECK(unlink(p) == 0);
        }
    }
    closedir(d);

    open_node(0, false, 0);
    err[0] = '\0';
    rv = kyufu_glue_start(g[0], state_cb, NULL, err, sizeof err);
    fprintf(stderr, "restart after losing the log: %s (%s)\n",
            kyufu_glue_strerror(rv), err);
    CHECK(rv != 0);
    kyufu_storage_applied(st[0], &after, &term);
    CHECK(after == before); /* the store lost nothing */
    close_all();
}

/* Single node: write, close, flip a byte inside the first segment's entry
 * data, restart: with auto-recovery off, start fails loudly and the store
 * keeps everything. */
static void test_corrupt_segment(void)
{
    char err[512];
    DIR *d;
    struct dirent *e;
    uint64_t before, after, term;
    char victim[400] = "";
    int rv;

    memset(g, 0, sizeof g);
    snprintf(tmp + strlen(tmp), sizeof tmp - strlen(tmp), "c");
    mkdir(tmp, 0700);
    snprintf(addr[0], sizeof addr[0], "127.0.0.1:%u", free_port());
    open_node(0, true, 1);
    CHECK(kyufu_glue_start(g[0], state_cb, NULL, err, sizeof err) == 0);
    CHECK(run_until(has_leader, NULL, 10000));
    for (uint64_t k = 1; k <= 5; k++) {
        propose_staff(0, "admin", k);
        CHECK(prop_status == 0);
        kyufu__v1__command_result__free_unpacked(prop_result, NULL);
    }
    kyufu_storage_applied(st[0], &before, &term);
    close_all();

    d = opendir(dir[0]);
    CHECK(d != NULL);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "open-", 5) == 0 ||
            (e->d_name[0] >= '0' && e->d_name[0] <= '9')) {
            if (victim[0] == '\0' || strcmp(e->d_name, victim) < 0) {
                snprintf(victim, sizeof victim, "%s", e->d_name);
            }
        }
    }
    closedir(d);
    CHECK(victim[0] != '\0');
    {
        char p[512];
        FILE *f;
        int c;
        snprintf(p, sizeof p, "%s/%s", dir[0], victim);
        f = fopen(p, "r+b");
        CHECK(f != NULL);
        /* Past the format word and the first batch header: entry data. */
        CHECK(fseek(f, 8 + 8 + 8 + 16 + 4, SEEK_SET) == 0);
        c = fgetc(f);
        CHECK(c != EOF);
        CHECK(fseek(f, -1, SEEK_CUR) == 0);
        fputc(c ^ 0xff, f);
        fclose(f);
    }

    open_node(0, false, 0);
    err[0] = '\0';
    rv = kyufu_glue_start(g[0], state_cb, NULL, err, sizeof err);
    fprintf(stderr, "restart after corrupting %s: %s (%s)\n", victim,
            kyufu_glue_strerror(rv), err);
    CHECK(rv != 0);
    kyufu_storage_applied(st[0], &after, &term);
    CHECK(after == before);
    close_all();
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/kyufu-glue-uv-XXXXXX");
    CHECK(mkdtemp(tmp) != NULL);
    char root[64];
    snprintf(root, sizeof root, "%s", tmp);
    signal(SIGPIPE, SIG_IGN);
    CHECK(uv_loop_init(&loop) == 0);
    test_cluster();
    test_lost_entries();
    test_corrupt_segment();
    uv_run(&loop, UV_RUN_DEFAULT);
    int rv = uv_loop_close(&loop);
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    CHECK(rv == 0);
    printf("glue-uv: ok\n");
    return 0;
}
