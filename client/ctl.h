/* kyufuctl internals shared by its source files and by tests/client: exit
 * codes, cluster init (certificates and config files), and output helpers.
 * Not part of libkyufu's public interface (that is kyufu.h). */
#ifndef KYUFU_CTL_H
#define KYUFU_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <getopt.h>
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "client_limits.h"
#include "transport.h"

/* kyufuctl's exit statuses (docs/kyufuctl.md "Exit codes"). */
#define KYUFU_CTL_EXITS(X)                                                   \
    X(OK, 0, "success")                                                      \
    X(REJECTED, 1, "the server answered with a non-OK gRPC status")          \
    X(USAGE, 2, "bad command line or configuration")                         \
    X(UNAVAILABLE, 3, "no node answered in time")                            \
    X(LOCAL, 4, "local failure: files, TLS, crypto, malformed response")     \
    X(CHECK, 5, "a check found a problem (audit chain, cluster health)")

enum kyufu_ctl_exit {
#define KYUFU_CTL__ENUM(name, value, text) KYUFU_CTL_EXIT_##name = value,
    KYUFU_CTL_EXITS(KYUFU_CTL__ENUM)
#undef KYUFU_CTL__ENUM
};

/* ------------------------------------------------------------ init */

/* Where a node's files go on its host unless --etc-dir / --state-dir say
 * otherwise: the unit's ConfigurationDirectory= and StateDirectory=
 * (node/systemd/kyufud.service). */
#define KYUFU_CTL_INIT_ETC_DIR "/etc/kyufu"
#define KYUFU_CTL_INIT_STATE_DIR "/var/lib/kyufu"

struct kyufu_ctl_init_opts
{
    const char *dir;                 /* created if missing */
    unsigned nodes;                  /* 1..KYUFU_CTL_INIT_NODES_MAX */
    const char *hosts[KYUFU_CTL_INIT_NODES_MAX]; /* 1 (shared) or `nodes` */
    unsigned n_hosts;                /* 0: 127.0.0.1 */
    /* Node i (1-based) gets base + the number of nodes before it on the
     * same host: base + i - 1 when all share one host, base on every host
     * when each has its own. */
    uint16_t raft_port_base;
    uint16_t api_port_base;
    /* metrics_listen = 127.0.0.1:(base + i - 1) in node i's config
     * (loopback: docs/metrics.md); 0: no metrics listener. */
    uint16_t metrics_port_base;
    bool force;                      /* overwrite config and certificates */
    /* false: a local cluster, every path in the configs under `dir` and an
     * empty DIR/nodeN/data.  true: folders to copy to real hosts, one per
     * node (`n_hosts` == `nodes`): DIR/nodeN holds kyufud.conf, ca.pem,
     * node.pem, node.key, and the config names them as they will be on the
     * host, under `etc_dir`, with `state_dir` as data_dir. */
    bool on_hosts;
    const char *etc_dir;             /* on_hosts; NULL: /etc/kyufu */
    const char *state_dir;           /* on_hosts; NULL: /var/lib/kyufu */
    /* The CA key's passphrase (ctl__ca_passphrase: this file, else
     * $KYUFU_CA_PASSPHRASE, else asked twice on the terminal). */
    const char *ca_passphrase_file;
    /* The first administrator's staff id: their operator certificate
     * DIR/ADMIN.pem, .key; NULL: KYUFU_CTL_INIT_ADMIN_DEFAULT. */
    const char *admin_id;
    /* PBKDF2 rounds for the CA key's encryption; 0 (the command line's
     * only value): KYUFU_CTL_CA_KEY_PBKDF2_ITERATIONS.  Tests that make
     * many clusters lower it (a decryption follows the file's count). */
    unsigned ca_key_iterations;
    /* Out (may be NULL): KYUFU_PWHASH_TEMPORARY_CHARS + 1 bytes that get
     * the first ID administrator's temporary password, whose hash init
     * writes into each node's folder as bootstrap-admin (0600;
     * client/ctl_bootstrap.h).  The caller shows it once and wipes it. */
    char *admin_password;
};
#define KYUFU_CTL_INIT_ADMIN_DEFAULT "admin"
/* admin_password holds KYUFU_PWHASH_TEMPORARY_CHARS + 1 bytes (pwhash.h). */


/* Create the CA, node and client certificates and keys, every node's
 * kyufud.conf and kyufuctl.conf under opts->dir (layout in
 * docs/kyufuctl.md).  Returns a KYUFU_CTL_EXIT_* value with errmsg filled
 * on failure: USAGE for bad options or a folder that is not empty (without
 * force) or holds node data (always), LOCAL for I/O and crypto failures.
 * `log` (may be NULL) gets one line per file written. */
int kyufu_ctl_init(const struct kyufu_ctl_init_opts *opts,
                   FILE *log,
                   char *errmsg,
                   size_t errmsg_len);


/* ------------------------------------------------------------ node new */

struct kyufu_ctl_member
{
    uint64_t id;
    const char *raft; /* host:port */
    const char *api;  /* host:port */
};

struct kyufu_ctl_node_new_opts
{
    const char *pki_dir; /* holds ca.pem and ca.key (cluster init's DIR/ca) */
    const char *ca_passphrase_file; /* as kyufu_ctl_init_opts's */
    const char *out;     /* created if missing; its data/ must be empty */
    uint64_t id;         /* 1..KYUFU_CTL_NODE_ID_MAX, not a member's */
    const char *raft;    /* host:port, IPv4 or DNS name */
    const char *api;
    const struct kyufu_ctl_member *members; /* the cluster now (for
                                               [cluster]); borrowed */
    size_t n_members;
};

/* Issue node `id`'s certificate (SAN: its hosts and urn:kyufu:node:ID) from
 * the CA in pki_dir and write OUT/{node.pem,node.key,ca.pem,kyufud.conf}
 * and an empty OUT/data, the config with [node] join = yes
 * (docs/operations.md "Replacing a node").  Returns a KYUFU_CTL_EXIT_*
 * value: USAGE for bad options, an id or address already a member's, a CA
 * that cannot be read or whose key does not match, data in OUT/data;
 * LOCAL for I/O and crypto failures. */
int kyufu_ctl_node_new(const struct kyufu_ctl_node_new_opts *opts,
                       FILE *log,
                       char *errmsg,
                       size_t errmsg_len);

/* ------------------------------------------------------------ output */

/* A protobuf message as a JSON object (proto field names; enums as their
 * value names; 64-bit integers as JSON integers (a uint64 above INT64_MAX
 * as a string); bytes as lower-case hex; unset sub-messages omitted).
 * Returns a new reference, or NULL on out of memory. */
json_t *kyufu_ctl_to_json(const ProtobufCMessage *msg);

/* n bytes as 2 * n lower-case hex digits and a NUL into out (ctl_output.c:
 * the one hex encoder of kyufuctl). */
void ctl__hex(const uint8_t *in, size_t n, char *out);

/* Print a record as "field: value" lines (nested messages indented). */
void kyufu_ctl_print_record(FILE *out, const ProtobufCMessage *msg, int indent);

/* Print records as a table with the given columns (field names of the
 * records' type; NULL-terminated). */
void kyufu_ctl_print_table(FILE *out,
                           const ProtobufCMessage *const *records,
                           size_t n,
                           const char *const *columns);

/* One field of a message as text into buf ("" when unset); enums by their
 * short name, roles as a list, bytes as hex.  Returns buf. */
const char *kyufu_ctl_field_text(const ProtobufCMessage *msg,
                                 const ProtobufCFieldDescriptor *f,
                                 char *buf,
                                 size_t len);

/* ------------------------------------------------------------ human formatting
 * (ctl_format.c).  Human output only: --json keeps proto names, epoch ms
 * and plain integers (docs/kyufuctl.md "JSON stability"). */

/* Display columns of UTF-8 text on a terminal: East Asian Wide and
 * Fullwidth characters count 2, combining marks 0, anything else 1 (a byte
 * that is not valid UTF-8 counts 1 and is shown as '?'). */
size_t kyufu_ctl_text_width(const char *s);

/* s fitted to exactly `width` columns into buf: padded with spaces, or cut
 * at a character boundary with an ellipsis (U+2026) in the last column
 * when it is wider (a wide character that would straddle the edge is left
 * out, the gap padded).  Control characters and invalid bytes become '?'.
 * Returns buf (cut short, still valid UTF-8, if len is too small). */
const char *kyufu_ctl_text_fit(const char *s, size_t width, char *buf, size_t len);

/* s in at most `width` columns, not padded: kyufu_ctl_text_fit to its own
 * width when narrower (control characters still shown as '?'). */
const char *kyufu_ctl_text_clip(const char *s, size_t width, char *buf, size_t len);

/* Drop an incomplete UTF-8 sequence at the end of s (left by a cut). */
void ctl__utf8_trim(char *s);

/* Yen with thousands separators: 1234567 -> "\u00a51,234,567", -5 -> "-\u00a55". */
const char *kyufu_ctl_yen(int64_t v, char *buf, size_t len);

/* Use time zone `zone` (a tzdata name such as "Asia/Tokyo" or "UTC") for
 * times from now on (sets TZ for the process).  Returns 0, or -1 with
 * errmsg for a malformed name or one with no zone file (glibc would fall
 * back to UTC without a word). */
int kyufu_ctl_tz_set(const char *zone, char *errmsg, size_t errmsg_len);
/* The zone in use ("" until a time was formatted or a zone set). */
const char *kyufu_ctl_tz(void);
/* Forget the chosen zone: the next time formatted uses the default. */
void kyufu_ctl_tz_reset(void);

/* ms since the epoch as ISO 8601 in the zone in use, with its offset:
 * "2026-12-05T09:30:00+09:00" (seconds; the default zone
 * KYUFU_CTL_TZ_DEFAULT if none was set). */
const char *kyufu_ctl_time(int64_t ms, char *buf, size_t len);

/* "YYYY-MM-DD" as 00:00 of that day in the zone in use, in ms since the
 * epoch; -1 for anything else (including 2026-02-30). */
int kyufu_ctl_date_ms(const char *s, int64_t *out);

/* A clerk's name for an enum value name ("APP_APPROVED" -> "approved",
 * any *_UNSPECIFIED -> "-"); NULL when the table has none. */
const char *kyufu_ctl_state_label(const char *enum_value_name);

/* How a field of a ledger message is shown to people. */
enum kyufu_ctl_kind {
    KYUFU_CTL_KIND_PLAIN,
    KYUFU_CTL_KIND_TIME,  /* int64 *_ms: kyufu_ctl_time */
    KYUFU_CTL_KIND_YEN,   /* int64 amounts: kyufu_ctl_yen */
    KYUFU_CTL_KIND_DATE,  /* int32 YYYYMMDD: YYYY-MM-DD */
    KYUFU_CTL_KIND_STATE, /* enums: kyufu_ctl_state_label */
};
enum kyufu_ctl_kind kyufu_ctl_field_kind(const ProtobufCMessageDescriptor *d,
                                         const ProtobufCFieldDescriptor *f);

/* kyufuctl's main, callable from tests (argv as for main).  Output goes to
 * out/err. */
int kyufu_ctl_main(int argc, char **argv, FILE *out, FILE *err);

/* ------------------------------------------------------------ internal */

struct kyufu_client;

/* State of one kyufuctl run, shared by its source files. */
struct ctl__run
{
    FILE *out;
    FILE *err;
    bool json;
    bool stale;
    const char *config_path;
    const char *actor;        /* --as: an assertion the node checks against
                                 the session (RequestHeader.actor); the
                                 config's `actor` (actor_buf) likewise */
    const char *token_file;   /* --token-file */
    /* The token file of this run once the client is open: --token-file,
     * else the config's token_file, else kyufu_client_token_default_path
     * ("" if none can be named). */
    char token_path[4096];
    bool token_from_env;      /* KYUFU_TOKEN was used, not the file */
    bool no_token;            /* login: send no token (the file is written,
                                 not read) */
    char actor_buf[KYUFU_CLIENT_ACTOR_BYTES_MAX + 1];
    uint32_t deadline_ms;     /* --deadline-ms, 0: the config's */
    /* --idempotency-key CLIENT_ID:SEQUENCE for a write (a script repeating
     * a write whose outcome is unknown); key_seq 0: none given. */
    char key_id[KYUFU_CLIENT_ID_BYTES_MAX + 1];
    uint64_t key_seq;
    bool tz_given;            /* --tz: the config's time_zone does not apply */
    int argc;                 /* the whole command line (to print a repeat) */
    char **argv;
    /* A write whose outcome is unknown: the command that repeats it with
     * its key (shell-quoted), added to the JSON error; "" otherwise. */
    char repeat[KYUFU_CTL_REPEAT_BYTES_MAX];
    struct kyufu_client *client; /* opened on demand by ctl__client */
};

/* Print "kyufuctl: ..." to err (and a JSON error document to out with
 * --json); returns code. */
int ctl__fail(struct ctl__run *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Print a JSON document (taking the reference) on out, indented, with a
 * newline; a NULL doc (out of memory building it) is reported as a local
 * failure.  Returns 0 or that exit code. */
int ctl__emit_json(struct ctl__run *r, json_t *doc);

/* Fill r->repeat with the command line of this run with the key of the
 * write (r->key_id:r->key_seq) as --idempotency-key, shell-quoted: running
 * it repeats the write safely (applied at most once).  Left "" when it does
 * not fit. */
void ctl__repeat_command(struct ctl__run *r);

/* Tests: kyufuctl's client gets its transport from this factory (NULL:
 * gRPC, the default), e.g. tests/client/fake_transport.c. */
void ctl__set_transport(client__transport_factory factory, void *arg);

/* Open the client from the config on first use; returns an exit code. */
int ctl__client(struct ctl__run *r, struct kyufu_client **out);
/* A new client from the same config on `loop` (asynchronous use; the
 * caller closes it), or a synchronous one kept in r (loop NULL). */
#include <uv.h>
int ctl__client_on(struct ctl__run *r, uv_loop_t *loop, struct kyufu_client **out);

/* Map a finished call (kyufu_client_call's return and result) to an exit
 * code, printing the error; 0 when the call succeeded with OK. */
struct kyufu_client_result;
int ctl__call_exit(struct ctl__run *r, int rv,
                   const struct kyufu_client_result *res);
/* An operator's write (Cluster methods with a RequestHeader): the header
 * with a new idempotency key (or --idempotency-key's), and the call of
 * `method` with req (a WriteResponse to the leader) and its answer: 0
 * when applied OK, else the exit code (REJECTED with the command's own
 * message; cmd names the command in it).  *index: the Raft index. */
struct kyufu_client;
struct Kyufu__V1__RequestHeader;
struct Kyufu__V1__IdempotencyKey;
int ctl__op_header(struct ctl__run *r, struct kyufu_client *c,
                   struct Kyufu__V1__RequestHeader *hdr,
                   struct Kyufu__V1__IdempotencyKey *key);
struct ProtobufCMessage;
int ctl__op_write(struct ctl__run *r, struct kyufu_client *c, const char *cmd,
                  const char *method, const struct ProtobufCMessage *req,
                  uint64_t *index);

/* Ledger commands (ctl_ledger.c): returns an exit code, or -1 when
 * noun/verb name no ledger command. */
int ctl__ledger(struct ctl__run *r, const char *noun, const char *verb,
                int argc, char **argv);
/* Usage lines of every ledger command. */
void ctl__ledger_usage(FILE *out);

/* The operation log (ctl_audit.c): audit export, audit archive, and audit
 * verify with --checkpoints/--store/--export; -1 for anything else (a plain
 * audit verify and audit list are ledger commands). */
int ctl__audit(struct ctl__run *r, const char *verb, int argc, char **argv);
void ctl__audit_usage(FILE *out);

/* Backups (ctl_backup.c; issue 12, docs/backup.md): backup create,
 * verify, list; same convention. */
int ctl__backup(struct ctl__run *r, const char *verb, int argc, char **argv);
void ctl__backup_usage(FILE *out);

/* Cluster commands (ctl_cluster.c), same convention. */
int ctl__cluster(struct ctl__run *r, const char *verb, int argc, char **argv);
void ctl__cluster_usage(FILE *out);
/* cluster recover (ctl_recover.c): runs kyufud --recover; an exit code. */
int ctl__cluster_recover(struct ctl__run *r, int argc, char **argv);
void ctl__recover_usage(FILE *out);
/* restore (ctl_restore.c): seeds a new local cluster's nodes. */
int ctl__restore(struct ctl__run *r, int argc, char **argv);
void ctl__restore_usage(FILE *out);

/* Membership helpers (ctl_cluster.c): the Status of the leader (else of a
 * member that knows one: its configuration is the replicated one), to free
 * with kyufu_client_response_free; an exit code.  And a members list (the
 * JSON of NodeStatus.members) as a table. */
struct Kyufu__V1__NodeStatus;
int ctl__leader_status(struct ctl__run *r, struct Kyufu__V1__NodeStatus **out);
void ctl__print_members(struct ctl__run *r, json_t *members);

/* Terminal and operator certificates (ctl_terminal.c), same convention;
 * noun "terminal" or "operator".  Local only. */
int ctl__terminal(struct ctl__run *r, const char *noun, const char *verb, int argc,
                  char **argv);
void ctl__terminal_usage(FILE *out);
/* The CA folder for a command: `given` (--ca-dir), else cluster init's
 * DIR/ca next to the client config's ca file (else that folder itself when
 * it holds ca.key).  0, or an exit code after ctl__fail. */
int ctl__ca_dir(struct ctl__run *r, const char *given, const char *cmd, char *out, size_t len);

/* Node commands (ctl_node.c), same convention: about one node, sent to it
 * alone. */
int ctl__node(struct ctl__run *r, const char *verb, int argc, char **argv);
void ctl__node_usage(FILE *out);

/* Encryption key commands (ctl_key.c): key init.  Local only. */
int ctl__key(struct ctl__run *r, const char *verb, int argc, char **argv);
void ctl__key_usage(FILE *out);
/* key rotate and key status (ctl_key_rotate.c): -1 for another verb. */
int ctl__key_rotate(struct ctl__run *r, const char *verb, int argc, char **argv);
void ctl__key_rotate_usage(FILE *out);

/* SLA commands (ctl_sla.c): sla show|report|check, sla incident
 * list|close; same convention. */
int ctl__sla(struct ctl__run *r, const char *verb, int argc, char **argv);
/* Decommissioning (ctl_decommission.c, docs/decommission.md). */
int ctl__decommission(struct ctl__run *r, const char *verb, int argc, char **argv);
void ctl__decommission_usage(FILE *out);
void ctl__sla_usage(FILE *out);

/* The SLA report document (ctl_sla_report.c, docs/sla.md "Report"). */
struct kyufu_slo;
struct Kyufu__V1__AvailabilityReport;
struct Kyufu__V1__Incident;
/* Build it from the cluster's answer, its incidents and the SLO; NULL on
 * out of memory.  `month` is "YYYY-MM". */
json_t *ctl__sla_report_build(const char *month,
                              const struct Kyufu__V1__AvailabilityReport *rep,
                              struct Kyufu__V1__Incident *const *incidents,
                              size_t n_incidents,
                              const struct kyufu_slo *slo,
                              int64_t generated_ms);
/* Check a document read back (--input) field by field: 0, or -1 with why. */
int ctl__sla_report_check(json_t *doc, char *why, size_t why_len);
/* Render a checked document as a text summary, or as the self-contained
 * HTML page. */
void ctl__sla_report_text(json_t *doc, FILE *out);
void ctl__sla_report_html(json_t *doc, FILE *out);
/* "crash", "planned", ... for a FailoverCause value. */
const char *ctl__sla_cause_name(int cause);
/* Drills (ctl_drill.c), same convention. */
int ctl__drill(struct ctl__run *r, const char *verb, int argc, char **argv);
void ctl__drill_usage(FILE *out);

/* Identity commands (ctl_auth.c): login, logout, whoami, passwd, totp
 * enroll|confirm, and the ID administrator's staff reset-password|unlock|
 * reset-totp|suspend|reinstate|disable; same convention (-1: not one). */
int ctl__auth(struct ctl__run *r, const char *noun, const char *verb, int argc, char **argv);
void ctl__auth_usage(FILE *out);
/* True for the one-word commands (login, logout, whoami, passwd). */
bool ctl__auth_single(const char *noun);

/* Terminal questions (ctl_prompt.c).  Ask on fd (a terminal: /dev/tty from
 * ctl__tty_open) and read one line into buf; secret: with echo off (the
 * prompt is written once echo is off; refused (-1) when fd is not a
 * terminal).  -1 on EOF, error, a NUL byte or a line longer than len - 1. */
int ctl__tty_open(void);
int ctl__tty_ask(int fd, const char *prompt, bool secret, char *buf, size_t len);
int ctl__tty_say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first line of a file ("-": stdin) without its newline: a password
 * for scripts.  -1 with why (never the content) if unreadable, empty,
 * holding a NUL byte or longer than len - 1. */
int ctl__read_secret_file(const char *path, char *buf, size_t len, char *why, size_t why_len);

/* Draw text as a QR code with UTF-8 half blocks and a quiet zone
 * (ctl_qr.c); -1 if it cannot be encoded. */
int ctl__qr_render(const char *text, FILE *out);

/* Common options every command accepts (after the command too). */
#define CTL__COMMON_OPTS_N 8
extern const struct option ctl__common_opts[CTL__COMMON_OPTS_N];
/* Apply a common option (getopt_long's return value >= 0x100); returns 0,
 * or an exit code. */
int ctl__common_opt(struct ctl__run *r, int opt, const char *arg);
/* Fill opts, which has room for CTL__COMMON_OPTS_N + n_extra + 1 entries,
 * with the common options, then the n_extra `extra`, then getopt_long's
 * terminating zero entry (ctl_main.c). */
void ctl__opts_join(struct option *opts, const struct option *extra, size_t n_extra);

#endif
