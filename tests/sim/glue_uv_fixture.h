/* The fixture of test-glue-uv (test_glue_uv.c), kept apart from its tests:
 * glues on real raft_uv over the mutual-TLS transport on one libuv loop on
 * 127.0.0.1, their stores, and the helpers that start, drive and close
 * them.  Tests only; one process, one thread. */
#ifndef KYUFU_TESTS_SIM_GLUE_UV_FIXTURE_H
#define KYUFU_TESTS_SIM_GLUE_UV_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "glue.h"
#include "storage.h"

#define N 4

extern uv_loop_t loop;
extern char tmp[64];
extern char pki[96]; /* node-ca.pem, nodeI.pem / nodeI.key (certs.h) */

/* A free loopback port below the kernel's ephemeral range. */
unsigned free_port(void);
/* Run the loop until done(arg) or ms pass; whether done. */
bool run_until(bool (*done)(void *), void *arg, uint64_t ms);
extern struct kyufu_glue *g[N];
extern struct kyufu_storage *st[N];
extern char addr[N][32];
extern char dir[N][96];
extern unsigned cfg_snapshot_threshold;
extern unsigned cfg_snapshot_trailing;
extern unsigned cfg_group_commit_max;
/* Config knobs for open_node (0: the glue's default). */
extern const char *cfg_crl;    /* [tls] crl_file, NULL: none */
extern const uint8_t *cfg_cmk; /* cluster master key, NULL: none */
void state_cb(struct kyufu_glue *gl, void *arg);
void open_node(unsigned i, bool bootstrap, unsigned n_peers);
int leader(void);
bool has_leader(void *arg);
extern int prop_status;
extern Kyufu__V1__CommandResult *prop_result;
void prop_cb(struct kyufu_glue_propose *req, int status,
             Kyufu__V1__CommandResult *result);
bool prop_done(void *arg);
int submit_staff(int l, struct kyufu_glue_propose *req, const char *id,
                 uint64_t seq, kyufu_glue_propose_cb cb);
void propose_staff(int l, const char *id, uint64_t seq);
extern int op_status;
void transfer_cb(struct kyufu_glue_transfer *req, int status);
void change_cb(struct kyufu_glue_change *req, int status);
bool op_done(void *arg);
extern unsigned n_closed;
extern unsigned n_closed_fatal;
extern char closed_fatal_detail[256];
void closed_cb(void *arg, int fatal, const char *detail);
bool all_closed(void *arg);
void close_all_fatal(unsigned want_fatal);
void close_all(void);
int start_three(void);

#endif /* KYUFU_TESTS_SIM_GLUE_UV_FIXTURE_H */
