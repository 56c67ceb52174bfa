/* kyufuctl's command line and the client config parser: bad input is a
 * usage error (exit 2) with a message that names what is wrong (the option;
 * the config key and line); --json output is one valid JSON document, on
 * success and on failure; records convert to JSON faithfully. */
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ctl_run.h"
#include "ctl.h"
#include "kyufu.h"
#include "kyufu_version.h"

static char out_buf[65536], err_buf[65536];

/* Run kyufuctl in-process with the given arguments (NULL-terminated). */
/* kyufuctl in-process (ctl_run.h), the arguments NULL-terminated. */
#define run(...) \
    ctl_run(out_buf, sizeof out_buf, err_buf, sizeof err_buf, NULL, __VA_ARGS__)

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

static json_t *parse_out(void)
{
    json_error_t je;
    json_t *doc = json_loads(out_buf, 0, &je);
    if (doc == NULL) {
        fprintf(stderr, "stdout is not JSON (%s): %s\n", je.text, out_buf);
        exit(1);
    }
    return doc;
}

static void test_config_errors(void)
{
    static const struct
    {
        const char *text;
        const char *want; /* substring of the error */
    } cases[] = {
        { "[client]\nendpoints = 127.0.0.1:8001\nbogus = 1\n", "config:3: unknown key 'bogus'" },
        { "[client]\ndeadline_ms = soon\n", "config:2: key 'deadline_ms'" },
        { "[client]\ndeadline_ms = 0\n", "config:2: key 'deadline_ms'" },
        { "[client]\nendpoints = 127.0.0.1\n", "config:2: key 'endpoints': '127.0.0.1'" },
        { "[client]\nendpoints = a:1, b:99999\n", "config:2: key 'endpoints': 'b:99999'" },
        { "[client]\nca = a\n\nca = b\n", "config:4: key 'ca' given twice" },
        { "[server]\nca = a\n", "config:2: unknown section [server]" },
        { "endpoints = a:1\n", "config:1: unknown section []" },
        { "[client]\nthis line has no equals sign\n", "config:2:" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kyufu_client_config cfg;
        kyufu_client_config_init(&cfg);
        char err[256] = "";
        CHECK_EQ_INT(kyufu_client_config_parse(&cfg, cases[i].text, err, sizeof err),
                     KYUFU_CLIENT_ECONFIG);
        if (strstr(err, cases[i].want) == NULL) {
            fprintf(stderr, "case %zu: got '%s', want '%s'\n", i, err, cases[i].want);
            exit(1);
        }
        kyufu_client_config_free(&cfg);
    }
    /* A good file, every key. */
    struct kyufu_client_config cfg;
    kyufu_client_config_init(&cfg);
    char err[256] = "";
    CHECK(kyufu_client_config_parse(&cfg,
                                    "[client]\n"
                                    "endpoints = 127.0.0.1:8001, [::1]:8002,h.example:8003\n"
                                    "ca = /etc/kyufu/ca.pem\ncert = /c.pem\nkey = /c.key\n"
                                    "actor = clerk1\nterminal = T-1\n"
                                    "session_file = /var/lib/kyufu/session\nclient_id = batch-7\n"
                                    "deadline_ms = 9000\nattempt_ms = 3000\n"
                                    "backoff_ms_initial = 10\nbackoff_ms_max = 500\n",
                                    err, sizeof err) == 0);
    CHECK_EQ_INT(cfg.n_endpoints, 3);
    CHECK(strcmp(cfg.endpoints[1], "[::1]:8002") == 0);
    CHECK(strcmp(cfg.actor, "clerk1") == 0 && cfg.deadline_ms == 9000 &&
          cfg.attempt_ms == 3000 && cfg.backoff_ms_max == 500);
    CHECK(kyufu_client_config_validate(&cfg, err, sizeof err) == 0);
    kyufu_client_config_free(&cfg);
    /* Relations: no CA, cert without key. */
    kyufu_client_config_init(&cfg);
    CHECK(kyufu_client_config_parse(&cfg, "[client]\nendpoints = a:1\n", err, sizeof err) == 0);
    CHECK_EQ_INT(kyufu_client_config_validate(&cfg, err, sizeof err), KYUFU_CLIENT_ECONFIG);
    CHECK(strstr(err, "'ca'") != NULL);
    kyufu_client_config_free(&cfg);
    kyufu_client_config_init(&cfg);
    CHECK(kyufu_client_config_parse(&cfg, "[client]\nendpoints = a:1\nca=x\ncert=y\n", err,
                                    sizeof err) == 0);
    CHECK_EQ_INT(kyufu_client_config_validate(&cfg, err, sizeof err), KYUFU_CLIENT_ECONFIG);
    kyufu_client_config_free(&cfg);
}

static void test_cli(const char *dir)
{
    char conf[512], bad[512], cdir[512];
    snprintf(cdir, sizeof cdir, "%s/cluster", dir);
    snprintf(conf, sizeof conf, "%s/cluster/kyufuctl.conf", dir);
    snprintf(bad, sizeof bad, "%s/bad.conf", dir);

    CHECK_EQ_INT(run(NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "missing command") != NULL);
    CHECK_EQ_INT(run("--help", NULL), 0);
    CHECK(strstr(out_buf, "application submit") != NULL);
    CHECK(strstr(out_buf, "--version") != NULL);
    /* The release and the command set (docs/operations.md "Upgrades"). */
    CHECK_EQ_INT(run("--version", NULL), 0);
    {
        char want[64];
        snprintf(want, sizeof want, "kyufuctl %s\ncommand set %u\n",
                 KYUFU_VERSION, (unsigned)KYUFU_COMMAND_SET_VERSION);
        CHECK(strcmp(out_buf, want) == 0);
    }
    CHECK_EQ_INT(run("--version=1", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK_EQ_INT(run("--bogus", "program", "list", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--bogus") != NULL);
    CHECK_EQ_INT(run("frob", "nicate", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "unknown command 'frob nicate'") != NULL);

    /* cluster init through the CLI, with --json. */
    CHECK_EQ_INT(run("--json", "cluster", "init", "--dir", cdir, "--hosts",
                     "127.0.0.1,127.0.0.1,127.0.0.1", NULL), 0);
    json_t *doc = parse_out();
    CHECK(json_integer_value(json_object_get(doc, "nodes")) == 3);
    json_decref(doc);
    CHECK_EQ_INT(run("--json", "cluster", "init", "--dir", cdir, NULL), KYUFU_CTL_EXIT_USAGE);
    doc = parse_out();
    CHECK(json_integer_value(json_object_get(json_object_get(doc, "error"), "exit_code")) == 2);
    CHECK(strstr(json_string_value(json_object_get(json_object_get(doc, "error"), "message")),
                 "not empty") != NULL);
    json_decref(doc);
    /* --hosts: one node per host (no --nodes needed), each item a host. */
    char hdir[600];
    snprintf(hdir, sizeof hdir, "%s-hosts", cdir);
    CHECK_EQ_INT(run("cluster", "init", "--dir", hdir, "--hosts", "kyufu-a.example,,kyufu-c.example",
                     NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "empty host") != NULL);
    CHECK_EQ_INT(run("cluster", "init", "--dir", hdir, "--hosts", "a.example,b.example", "--host",
                     "c.example", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "not both") != NULL);
    CHECK_EQ_INT(run("cluster", "init", "--dir", hdir, "--host", "a.example", "--state-dir",
                     "/var/lib/kyufu", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--hosts only") != NULL);
    CHECK(access(hdir, F_OK) != 0);
    CHECK_EQ_INT(run("--json", "cluster", "init", "--dir", hdir, "--hosts", "a.example,b.example",
                     "--etc-dir", "/opt/kyufu/etc", NULL), 0);
    doc = parse_out();
    CHECK(json_integer_value(json_object_get(doc, "nodes")) == 2);
    json_decref(doc);
    char hconf[700];
    snprintf(hconf, sizeof hconf, "%s/node2/kyufud.conf", hdir);
    FILE *hf = fopen(hconf, "r");
    CHECK(hf != NULL);
    char htext[2048];
    size_t hn = fread(htext, 1, sizeof htext - 1, hf);
    htext[hn] = '\0';
    fclose(hf);
    CHECK(strstr(htext, "\nraft_address = b.example:7001\napi_address = b.example:8001\n") != NULL);
    CHECK(strstr(htext, "\ncert = /opt/kyufu/etc/node.pem\n") != NULL);
    CHECK(strstr(htext, "\ndata_dir = /var/lib/kyufu\n") != NULL);
    CHECK_EQ_INT(run("cluster", "init", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--dir is required") != NULL);
    CHECK_EQ_INT(run("cluster", "init", "--dir", cdir, "--nodes", "many", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--nodes") != NULL);
    CHECK_EQ_INT(run("cluster", "init", "--dir", cdir, "--raft-port-base", "70000", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK_EQ_INT(run("cluster", "init", "--dir", cdir, "--metrics-port-base", "9x", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--metrics-port-base") != NULL);
    CHECK_EQ_INT(run("cluster", "init", "--dir", cdir, "--metrics-port-base", "70000", NULL),
                 KYUFU_CTL_EXIT_USAGE);

    /* Options derived from the request: required ones, types, enums, roles. */
    CHECK_EQ_INT(run("--config", conf, "--as", "c1", "program", "create", "--code", "P1", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--name is required") != NULL);
    CHECK_EQ_INT(run("--config", conf, "--as", "c1", "program", "create", "--code", "P1",
                     "--name", "n", "--fiscal-year", "twenty", "--unit-amount", "1",
                     "--budget", "1", "--window-start-ms", "1", "--window-end-ms", "2", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--fiscal-year") != NULL);
    CHECK_EQ_INT(run("--config", conf, "--as", "c1", "application", "submit", "--program-code",
                     "P1", "--household-no", "H1", "--channel", "fax", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--channel: 'fax'") != NULL && strstr(err_buf, "counter") != NULL);
    CHECK_EQ_INT(run("--config", conf, "--as", "a", "staff", "create", "--staff-id", "x",
                     "--display-name", "X", "--roles", "clerk,king", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--roles") != NULL);
    CHECK_EQ_INT(run("--config", conf, "--as", "a", "staff", "create", "--staff-id", "x",
                     "--display-name", "X", "--roles-mask", "4", NULL),
                 KYUFU_CTL_EXIT_USAGE); /* the stored form is no option */
    CHECK_EQ_INT(run("--config", conf, "--as", "c1", "household", "update", "--household-no",
                     "H1", "--address", "x", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--update-mask is required") != NULL);
    CHECK_EQ_INT(run("--config", conf, "--as", "c1", "household", "update", "--household-no",
                     "H1", "--update-mask", "address", "--address", "x", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--expected-version is required") != NULL);
    CHECK_EQ_INT(run("--config", conf, "application", "approve", "--id", "-1", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--id") != NULL);
    CHECK_EQ_INT(run("--config", conf, "application", "approve", "--id", "1", "--id", "2", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "given twice") != NULL);
    CHECK_EQ_INT(run("--config", conf, "application", "approve", "--id", "1", "extra", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "unexpected argument 'extra'") != NULL);
    CHECK_EQ_INT(run("--config", conf, "program", "create", "--code", "P1", "--name", "n",
                     "--fiscal-year", "2026", "--unit-amount", "1", "--budget", "1",
                     "--window-start-ms", "2026-02-30", "--window-end-ms", "2026-03-31", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--window-start-ms") != NULL);
    /* The ledger refuses a program without its application window: the
     * command line says so before any call. */
    CHECK_EQ_INT(run("--config", conf, "--as", "c1", "program", "create", "--code", "P1",
                     "--name", "n", "--fiscal-year", "2026", "--unit-amount", "1",
                     "--budget", "1", "--window-start-ms", "2026-04-01", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--window-end-ms is required") != NULL);
    CHECK_EQ_INT(run("--config", conf, "--stale", "application", "approve", "--id", "1",
                     "--as", "ap1", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--stale applies to reads only") != NULL);
    /* --idempotency-key: CLIENT_ID:SEQUENCE, writes only. */
    static const char *const bad_keys[] = {"abc", ":5", "abc:", "abc:0", "abc:-1", "abc:1x",
                                           "a b:1", "abc:01",
                                           "0123456789012345678901234567890123456789"
                                           "012345678901234567890123456:1"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        CHECK_EQ_INT(run("--config", conf, "--as", "ap1", "--idempotency-key", bad_keys[i],
                         "application", "approve", "--id", "1", NULL),
                     KYUFU_CTL_EXIT_USAGE);
        CHECK(strstr(err_buf, "--idempotency-key: CLIENT_ID:SEQUENCE") != NULL);
    }
    CHECK_EQ_INT(run("--config", conf, "--idempotency-key", "run:1", "application", "get",
                     "--id", "1", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--idempotency-key applies to writes only") != NULL);
    /* write settle: the key is the write's, so it is required. */
    CHECK_EQ_INT(run("--config", conf, "--as", "ap1", "write", "settle", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--idempotency-key CLIENT_ID:SEQUENCE (the write's key) is "
                          "required") != NULL);
    CHECK_EQ_INT(run("--help", NULL), 0);
    CHECK(strstr(out_buf, "write settle") != NULL);
    /* A write whose outcome stays unknown (nothing listens on port 1) names
     * its key and the settle command, with the key it was sent with. */
    char down[600];
    snprintf(down, sizeof down, "%s/down.conf", dir);
    char text[1200];
    snprintf(text, sizeof text,
             "[client]\nendpoints = 127.0.0.1:1\nca = %s/ca.pem\n"
             "backoff_ms_initial = 10\nbackoff_ms_max = 10\n", cdir);
    write_text(down, text);
    CHECK_EQ_INT(run("--config", down, "--as", "ap1", "--deadline-ms", "200", "application",
                     "approve", "--id", "1", NULL),
                 KYUFU_CTL_EXIT_UNAVAILABLE);
    CHECK(strstr(err_buf, "kyufuctl write settle --idempotency-key c-") != NULL);
    CHECK_EQ_INT(run("--config", down, "--as", "ap1", "--deadline-ms", "200",
                     "--idempotency-key", "fe-9:41", "application", "approve", "--id", "1",
                     NULL),
                 KYUFU_CTL_EXIT_UNAVAILABLE);
    CHECK(strstr(err_buf, "kyufuctl write settle --idempotency-key fe-9:41") != NULL);
    /* ... and the exact command that repeats it safely: the same line with
     * that key (given once), arguments shell-quoted. */
    char want[1600];
    snprintf(want, sizeof want,
             "  kyufuctl --idempotency-key fe-9:41 --config %s --as ap1 --deadline-ms 200 "
             "application approve --id 1\n", down);
    CHECK(strstr(err_buf, want) != NULL);
    CHECK(strstr(err_buf, "its idempotency key is fe-9:41") != NULL);
    CHECK_EQ_INT(run("--json", "--config", down, "--as", "ap1", "--deadline-ms", "200",
                     "--idempotency-key", "fe-9:42", "application", "reject", "--id", "1",
                     "--reason", "it's late", NULL),
                 KYUFU_CTL_EXIT_UNAVAILABLE);
    {
        json_t *d = parse_out();
        json_t *e = json_object_get(d, "error");
        CHECK(strcmp(json_string_value(json_object_get(e, "idempotency_key")), "fe-9:42") == 0);
        snprintf(want, sizeof want,
                 "kyufuctl --idempotency-key fe-9:42 --json --config %s --as ap1 "
                 "--deadline-ms 200 application reject --id 1 --reason 'it'\\''s late'",
                 down);
        CHECK(strcmp(json_string_value(json_object_get(e, "repeat_command")), want) == 0);
        json_decref(d);
    }
    /* A read that fails the same way has no key to print. */
    CHECK_EQ_INT(run("--json", "--config", down, "--deadline-ms", "200", "application", "get",
                     "--id", "1", NULL),
                 KYUFU_CTL_EXIT_UNAVAILABLE);
    {
        json_t *d = parse_out();
        CHECK(json_object_get(json_object_get(d, "error"), "repeat_command") == NULL);
        json_decref(d);
    }

    /* Paging options: bad values are usage errors; only lists take them. */
    CHECK_EQ_INT(run("--config", down, "program", "list", "--limit", "0", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--limit: an integer in [1, 100000]") != NULL);
    CHECK_EQ_INT(run("--config", down, "program", "list", "--limit", "100001", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK_EQ_INT(run("--config", down, "program", "list", "--limit", "-3", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK_EQ_INT(run("--config", down, "program", "list", "--page-token", "", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK_EQ_INT(run("--config", down, "program", "get", "--code", "P", "--limit", "5", NULL),
                 KYUFU_CTL_EXIT_USAGE);

    /* Time zones: a bad --tz or config time_zone is a usage error. */
    CHECK_EQ_INT(run("--tz", "Mars/Olympus", "--config", down, "program", "list", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--tz: time zone 'Mars/Olympus': unknown") != NULL);
    CHECK_EQ_INT(run("--tz", "../../etc/passwd", "--config", down, "program", "list", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK_EQ_INT(run("--tz", "/etc/localtime", "--config", down, "program", "list", NULL),
                 KYUFU_CTL_EXIT_USAGE);
    char tzconf[600];
    snprintf(tzconf, sizeof tzconf, "%s/tz.conf", dir);
    snprintf(text, sizeof text,
             "[client]\nendpoints = 127.0.0.1:1\nca = %s/ca.pem\ntime_zone = Asia/Tokio\n",
             cdir);
    write_text(tzconf, text);
    CHECK_EQ_INT(run("--config", tzconf, "program", "list", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "key 'time_zone': time zone 'Asia/Tokio': unknown") != NULL);

    /* Per-command help: values of enums and the role needed. */
    CHECK_EQ_INT(run("help", "application", "submit", NULL), 0);
    CHECK(strstr(out_buf, "role needed: clerk") != NULL);
    CHECK(strstr(out_buf, "--channel") != NULL && strstr(out_buf, "counter, online, mail") != NULL);
    CHECK_EQ_INT(run("application", "list", "--help", NULL), 0);
    CHECK(strstr(out_buf, "received, approved, rejected, paid, cancelled, returned") != NULL);
    CHECK(strstr(out_buf, "--limit N") != NULL && strstr(out_buf, "--page-token T") != NULL);
    CHECK_EQ_INT(run("help", "staff", "create", NULL), 0);
    CHECK(strstr(out_buf, "role needed: id_admin") != NULL);
    CHECK(strstr(out_buf, "id_admin, clerk, approver, auditor, operator") != NULL);
    CHECK_EQ_INT(run("help", "cluster", "status", NULL), 0);
    CHECK(strstr(out_buf, "cluster status") != NULL && strstr(out_buf, "role needed: ") != NULL);
    CHECK_EQ_INT(run("help", "no", "such", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK_EQ_INT(run("help", "program", "create", NULL), 0);
    CHECK(strstr(out_buf, "role needed: approver") != NULL);
    CHECK(strstr(out_buf, "YYYY-MM-DD") != NULL);

    /* Config problems: exit 2 naming the key and line; missing config. */
    write_text(bad, "[client]\nendpoints = 127.0.0.1:8001\nca = x\ndeadline = 5\n");
    CHECK_EQ_INT(run("--config", bad, "program", "list", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, ":4: unknown key 'deadline'") != NULL);
    CHECK_EQ_INT(run("--json", "--config", bad, "program", "list", NULL), KYUFU_CTL_EXIT_USAGE);
    json_decref(parse_out());
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope.conf", dir);
    CHECK_EQ_INT(run("--config", missing, "program", "list", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "nope.conf") != NULL);
    unsetenv("KYUFUCTL_CONFIG");
    CHECK_EQ_INT(run("program", "list", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "--config") != NULL);
    CHECK_EQ_INT(run("--deadline-ms", "0", "program", "list", NULL), KYUFU_CTL_EXIT_USAGE);
}

static void test_json(void)
{
    Kyufu__V1__AuditRecord a = KYUFU__V1__AUDIT_RECORD__INIT;
    uint8_t h[32];
    for (int i = 0; i < 32; i++) {
        h[i] = (uint8_t)(i * 7);
    }
    a.seq = UINT64_MAX; /* above INT64_MAX: a string */
    a.time_ms = -5;
    a.actor = "clerk1";
    a.outcome = KYUFU__V1__CODE__FAILED_PRECONDITION;
    a.hash.data = h;
    a.hash.len = 32;
    json_t *j = kyufu_ctl_to_json(&a.base);
    char *s = json_dumps(j, 0);
    json_decref(j);
    json_t *back = json_loads(s, 0, NULL);
    free(s);
    CHECK(back != NULL);
    CHECK(strcmp(json_string_value(json_object_get(back, "seq")), "18446744073709551615") == 0);
    CHECK(json_integer_value(json_object_get(back, "time_ms")) == -5);
    CHECK(strcmp(json_string_value(json_object_get(back, "outcome")), "FAILED_PRECONDITION") == 0);
    CHECK(strncmp(json_string_value(json_object_get(back, "hash")), "00070e15", 8) == 0);
    CHECK(strlen(json_string_value(json_object_get(back, "hash"))) == 64);
    CHECK(strcmp(json_string_value(json_object_get(back, "prev_hash")), "") == 0);
    json_decref(back);

    Kyufu__V1__StaffAccount st = KYUFU__V1__STAFF_ACCOUNT__INIT;
    st.staff_id = "ap1";
    Kyufu__V1__Role st_roles[] = { KYUFU__V1__ROLE__ROLE_CLERK, KYUFU__V1__ROLE__ROLE_APPROVER };
    st.roles = st_roles;
    st.n_roles = 2;
    j = kyufu_ctl_to_json(&st.base);
    json_t *roles = json_object_get(j, "roles");
    CHECK(json_array_size(roles) == 2);
    CHECK(strcmp(json_string_value(json_array_get(roles, 0)), "clerk") == 0);
    CHECK(strcmp(json_string_value(json_array_get(roles, 1)), "approver") == 0);
    CHECK(json_object_get(j, "roles_mask") == NULL); /* the stored form */
    json_decref(j);

    Kyufu__V1__PaymentBatch b = KYUFU__V1__PAYMENT_BATCH__INIT;
    uint64_t ids[] = { 3, 5, 8 };
    b.application_ids = ids;
    b.n_application_ids = 3;
    j = kyufu_ctl_to_json(&b.base);
    CHECK(json_array_size(json_object_get(j, "application_ids")) == 3);
    CHECK(json_integer_value(json_array_get(json_object_get(j, "application_ids"), 2)) == 8);
    json_decref(j);

    /* Table: header and one row per record. */
    char buf[4096];
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    const ProtobufCMessage *recs[] = { &st.base };
    static const char *const cols[] = { "staff_id", "roles", "status", NULL };
    kyufu_ctl_print_table(f, recs, 1, cols);
    fclose(f);
    /* Human text names no proto enum value (--json does). */
    CHECK(strstr(buf, "staff_id") != NULL && strstr(buf, "clerk,approver") != NULL &&
          strstr(buf, "STAFF_STATUS") == NULL);
}

int main(void)
{
    char dir[] = "/tmp/kyufu-ctl-cli-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    /* cluster init's CA key passphrase, as scripts give it. */
    CHECK(setenv("KYUFU_CA_PASSPHRASE", "test CA passphrase", 1) == 0);
    test_config_errors();
    test_cli(dir);
    test_json();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    printf("ok\n");
    return 0;
}
