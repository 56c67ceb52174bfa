/* The fixture of test-glue-uv: glue_uv_fixture.h. */
#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "certs.h"
#include "check.h"
#include "rm_tree.h"
#include "frame.h"
#include "glue.h"
#include "glue_limits.h"

#include "glue_uv_fixture.h"

uv_loop_t loop;
char tmp[64];
char pki[96]; /* node-ca.pem, nodeI.pem / nodeI.key (certs.h) */

/* A free loopback port below the kernel's ephemeral range (32768 and up
 * here): a node stopped and restarted by a test must find its port free
 * again, and a port in that range may meanwhile serve as the source port of
 * a peer's outgoing connection.  Scanned from a PID-derived offset so that
 * parallel tests rarely probe the same ports. */
unsigned free_port(void)
{
    enum { LOW = 20000, SPAN = 12000 };
    static unsigned next;
    struct sockaddr_in a;
    unsigned i;
    if (next == 0) {
        next = LOW + ((unsigned)getpid() * 37u) % SPAN;
    }
    for (i = 0; i < SPAN; i++) {
        unsigned p = next;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int ok;
        next = LOW + (next + 1 - LOW) % SPAN;
        CHECK(fd >= 0);
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)p);
        ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok) {
            return p;
        }
    }
    CHECK(!"no free loopback port below the ephemeral range");
    return 0;
}

/* Run the loop until *flag or the deadline timer fires. */
static bool timed_out;
static void deadline_cb(uv_timer_t *t)
{
    (void)t;
    timed_out = true;
}
bool run_until(bool (*done)(void *), void *arg, uint64_t ms)
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

struct kyufu_glue *g[N];
struct kyufu_storage *st[N];
char addr[N][32];
char dir[N][96];

/* Config knobs for open_node (0: the glue's default). */
unsigned cfg_snapshot_threshold;
unsigned cfg_snapshot_trailing;
unsigned cfg_group_commit_max;
const char *cfg_crl; /* [tls] crl_file, NULL: none */
const uint8_t *cfg_cmk; /* cluster master key, NULL: none */

void state_cb(struct kyufu_glue *gl, void *arg)
{
    (void)gl;
    (void)arg;
}

void open_node(unsigned i, bool bootstrap, unsigned n_peers)
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
    if (cfg_cmk != NULL) {
        kyufu_storage_keys_set(st[i], cfg_cmk);
    }
    snprintf(dir[i], sizeof dir[i], "%s/raft%u", tmp, i);
    mkdir(dir[i], 0700);
    memset(&c, 0, sizeof c);
    c.id = i + 1;
    c.address = addr[i];
    c.raft_dir = dir[i];
    char cert[96], key[96], ca[96];
    snprintf(cert, sizeof cert, "%.80s/node%u.pem", pki, i + 1);
    snprintf(key, sizeof key, "%.80s/node%u.key", pki, i + 1);
    snprintf(ca, sizeof ca, "%.80s/node-ca.pem", pki);
    c.tls_cert_file = cert;
    c.tls_key_file = key;
    c.tls_ca_file = ca;
    c.tls_crl_file = cfg_crl;
    c.election_timeout_ms = 300;
    c.heartbeat_timeout_ms = 30; /* the 300 ms election of these tests */
    c.snapshot_threshold_entries = cfg_snapshot_threshold;
    c.snapshot_trailing_entries = cfg_snapshot_trailing;
    c.group_commit_commands_max = cfg_group_commit_max;
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

int leader(void)
{
    for (unsigned i = 0; i < N; i++) {
        if (g[i] != NULL && kyufu_glue_is_leader(g[i])) {
            return (int)i;
        }
    }
    return -1;
}
bool has_leader(void *arg)
{
    (void)arg;
    return leader() >= 0;
}

int prop_status = 1;
Kyufu__V1__CommandResult *prop_result;
void prop_cb(struct kyufu_glue_propose *req, int status,
                    Kyufu__V1__CommandResult *result)
{
    (void)req;
    prop_status = status;
    prop_result = result;
}
bool prop_done(void *arg)
{
    (void)arg;
    return prop_status != 1;
}

/* Propose "create staff <id>" (by "admin") with key t/<seq>. */
int submit_staff(int l, struct kyufu_glue_propose *req, const char *id,
                        uint64_t seq, kyufu_glue_propose_cb cb)
{
    Kyufu__V1__Command c = KYUFU__V1__COMMAND__INIT;
    Kyufu__V1__CommandHeader h = KYUFU__V1__COMMAND_HEADER__INIT;
    Kyufu__V1__IdempotencyKey k = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    Kyufu__V1__CreateStaff cs = KYUFU__V1__CREATE_STAFF__INIT;
    k.client_id = "t";
    k.sequence = seq;
    h.actor = "admin";
    h.time_ms = 1767225600000;
    h.key = &k;
    c.header = &h;
    cs.staff_id = (char *)id;
    cs.display_name = (char *)id;
    cs.roles_mask = 1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN;
    c.body_case = KYUFU__V1__COMMAND__BODY_CREATE_STAFF;
    c.create_staff = &cs;
    return kyufu_glue_propose(g[l], req, &c, cb);
}

void propose_staff(int l, const char *id, uint64_t seq)
{
    static struct kyufu_glue_propose req;
    int rv;
    prop_status = 1;
    rv = submit_staff(l, &req, id, seq, prop_cb);
    if (rv != 0) {
        fprintf(stderr, "propose %s: %s\n", id, kyufu_glue_strerror(rv));
    }
    CHECK(rv == 0);
    CHECK(run_until(prop_done, NULL, 10000));
}

int op_status = 1;
void transfer_cb(struct kyufu_glue_transfer *req, int status)
{
    (void)req;
    op_status = status;
}
void change_cb(struct kyufu_glue_change *req, int status)
{
    (void)req;
    op_status = status;
}
bool op_done(void *arg)
{
    (void)arg;
    return op_status != 1;
}

unsigned n_closed;
/* Fatal errors the closes reported since close_all began, and the last
 * one's detail: a close after a healthy run reports none. */
unsigned n_closed_fatal;
char closed_fatal_detail[256];
void closed_cb(void *arg, int fatal, const char *detail)
{
    (void)arg;
    if (fatal != 0) {
        n_closed_fatal++;
        snprintf(closed_fatal_detail, sizeof closed_fatal_detail, "%s",
                 detail);
    } else {
        CHECK(detail[0] == '\0');
    }
    n_closed++;
}
bool all_closed(void *arg)
{
    return n_closed == *(unsigned *)arg;
}

/* Close every glue; want_fatal of them must report a fatal error. */
void close_all_fatal(unsigned want_fatal)
{
    unsigned want = 0;
    n_closed = 0;
    n_closed_fatal = 0;
    closed_fatal_detail[0] = '\0';
    for (unsigned i = 0; i < N; i++) {
        if (g[i] != NULL) {
            kyufu_glue_close(g[i], closed_cb, NULL);
            g[i] = NULL;
            want++;
        }
    }
    CHECK(run_until(all_closed, &want, 10000));
    if (n_closed_fatal != want_fatal) {
        fprintf(stderr, "closes reported %u fatal errors (want %u): %s\n",
                n_closed_fatal, want_fatal, closed_fatal_detail);
    }
    CHECK(n_closed_fatal == want_fatal);
    for (unsigned i = 0; i < N; i++) {
        if (st[i] != NULL) {
            kyufu_storage_close(st[i]);
            st[i] = NULL;
        }
    }
}

void close_all(void)
{
    close_all_fatal(0);
}

/* Fresh ports for every node slot, bootstrap and start nodes 0-2, wait for
 * a leader and create the admin staff account through it; returns the
 * leader. */
int start_three(void)
{
    char err[256];
    int l;
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
    return l;
}
