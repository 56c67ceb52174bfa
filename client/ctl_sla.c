/* kyufuctl sla: the SLO file, the monthly report, the monitoring check and
 * incidents (docs/sla.md).
 *
 *   sla show [--slo FILE]                 the SLO file, validated
 *   sla report [--month YYYY-MM] [--slo FILE] [--html FILE] [--input FILE]
 *                                          Cluster.GetAvailability and
 *                                          ListIncidents -> the report
 *                                          document (--json), a summary, and
 *                                          the HTML page; --input renders a
 *                                          saved document instead (no call)
 *   sla check [--node-timeout-ms N]       every node's active SLA alerts
 *                                          as one Nagios/Icinga plugin line
 *   sla incident list [--open]
 *   sla incident close ID --cause TEXT --fix TEXT
 *
 * The SLO file is --slo, else the client config's slo_file.
 *
 * sla check speaks the monitoring plugin protocol, not kyufuctl's exit
 * codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, and one line
 * "SLA STATE - text | perfdata" on stdout (with --json, one document with
 * the same state instead).  UNKNOWN: bad usage, no configuration, no node
 * answered, or no node evaluates an SLO. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ctl.h"
#include "kyufu.h"
#include "slo.h"

enum { OPT_SLO = 0x500, OPT_MONTH, OPT_HTML, OPT_INPUT, OPT_NODE_TIMEOUT, OPT_OPEN,
       OPT_CAUSE, OPT_FIX, OPT_HELP };

/* Nagios plugin states. */
enum { CHECK_OK = 0, CHECK_WARNING = 1, CHECK_CRITICAL = 2, CHECK_UNKNOWN = 3 };

/* A saved report larger than this is not one (a month of detail is tens of
 * kilobytes). */
#define SLA_INPUT_BYTES_MAX (64u << 20)
/* Pages of ListIncidents read for one report. */
#define SLA_INCIDENT_PAGES_MAX 1000u

void ctl__sla_usage(FILE *out)
{
    fprintf(out,
            "  sla show [--slo FILE]\n"
            "  sla report [--month YYYY-MM] [--slo FILE] [--html FILE] [--input FILE]\n"
            "  sla check [--node-timeout-ms N]   (exit 0 OK, 1 WARNING, 2 CRITICAL, "
            "3 UNKNOWN)\n"
            "  sla incident list [--open]\n"
            "  sla incident close ID --cause TEXT --fix TEXT\n");
}

struct sla_opts
{
    const char *slo;
    const char *month;
    const char *html;
    const char *input;
    uint32_t node_timeout_ms;
    bool open;
    const char *cause;
    const char *fix;
};

static int sla_opt(struct ctl__run *r, int c, const char *arg, struct sla_opts *o)
{
    switch (c) {
    case OPT_SLO:
        o->slo = arg;
        return 0;
    case OPT_MONTH:
        o->month = arg;
        return 0;
    case OPT_HTML:
        o->html = arg;
        return 0;
    case OPT_INPUT:
        o->input = arg;
        return 0;
    case OPT_OPEN:
        o->open = true;
        return 0;
    case OPT_CAUSE:
        o->cause = arg;
        return 0;
    case OPT_FIX:
        o->fix = arg;
        return 0;
    case OPT_NODE_TIMEOUT: {
        char *end;
        errno = 0;
        unsigned long v = strtoul(arg, &end, 10);
        if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno != 0 || v == 0 ||
            v > KYUFU_CLIENT_DEADLINE_MS_MAX) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "--node-timeout-ms: an integer in [1, %u]",
                             KYUFU_CLIENT_DEADLINE_MS_MAX);
        }
        o->node_timeout_ms = (uint32_t)v;
        return 0;
    }
    default:
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "unknown option");
    }
}

/* Parse the command's options (common ones too); `positional` receives up
 * to one positional argument when not NULL.  -1: --help printed. */
static int getopts(struct ctl__run *r, int argc, char **argv, const char *verb,
                   struct sla_opts *o, const char **positional)
{
    static const struct option extra[] = {
        {"slo", required_argument, NULL, OPT_SLO},
        {"month", required_argument, NULL, OPT_MONTH},
        {"html", required_argument, NULL, OPT_HTML},
        {"input", required_argument, NULL, OPT_INPUT},
        {"node-timeout-ms", required_argument, NULL, OPT_NODE_TIMEOUT},
        {"open", no_argument, NULL, OPT_OPEN},
        {"cause", required_argument, NULL, OPT_CAUSE},
        {"fix", required_argument, NULL, OPT_FIX},
        {"help", no_argument, NULL, OPT_HELP},
    };
    enum { N_EXTRA = sizeof extra / sizeof extra[0] };
    struct option opts[CTL__COMMON_OPTS_N + N_EXTRA + 1];
    ctl__opts_join(opts, extra, N_EXTRA);
    optind = 0;
    opterr = 0;
    int c;
    for (;;) {
        c = getopt_long(argc, argv, "+", opts, NULL);
        if (c == -1) {
            /* One positional argument (an incident id) may come before or
             * after the options. */
            if (positional != NULL && *positional == NULL && optind < argc) {
                *positional = argv[optind++];
                continue;
            }
            break;
        }
        if (c == OPT_HELP) {
            ctl__sla_usage(r->out);
            return -1;
        }
        if (c == '?' || c == ':') {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "sla %s: unknown option or missing value in '%s'", verb,
                             argv[optind - 1]);
        }
        int rv = c >= 0x500 ? sla_opt(r, c, optarg, o) : ctl__common_opt(r, c, optarg);
        if (rv != 0) {
            return rv;
        }
    }
    if (optind < argc) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "sla %s: unexpected argument '%s'", verb,
                         argv[optind]);
    }
    return 0;
}

/* The SLO: --slo, else the client config's slo_file.  0 or an exit code. */
static int load_slo(struct ctl__run *r, const char *given, struct kyufu_slo *slo)
{
    char path[4096] = "";
    if (given != NULL) {
        snprintf(path, sizeof path, "%s", given);
    } else {
        const char *cfg_path = r->config_path != NULL ? r->config_path
                                                      : getenv("KYUFUCTL_CONFIG");
        if (cfg_path == NULL) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "no SLO file: use --slo FILE, or slo_file in the client "
                             "configuration (--config FILE or KYUFUCTL_CONFIG)");
        }
        struct kyufu_client_config cfg;
        kyufu_client_config_init(&cfg);
        char err[512];
        int rv = kyufu_client_config_load(&cfg, cfg_path, err, sizeof err);
        if (rv == 0 && cfg.slo_file == NULL) {
            snprintf(err, sizeof err, "%s has no slo_file (or use --slo FILE)", cfg_path);
            rv = -1;
        }
        if (rv == 0) {
            snprintf(path, sizeof path, "%s", cfg.slo_file);
        }
        kyufu_client_config_free(&cfg);
        if (rv != 0) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s", err);
        }
    }
    int rv = kyufu_slo_load(path, slo);
    if (rv != 0) {
        kyufu_slo_print_problems(slo, r->err);
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: %s", path, kyufu_slo_strerror(rv));
    }
    return 0;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ show */

static int cmd_show(struct ctl__run *r, int argc, char **argv)
{
    struct sla_opts o = {0};
    int rv = getopts(r, argc, argv, "show", &o, NULL);
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    struct kyufu_slo *slo = malloc(sizeof *slo);
    if (slo == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    rv = load_slo(r, o.slo, slo);
    if (rv != 0) {
        free(slo);
        return rv;
    }
    json_t *windows = json_array();
    for (size_t i = 0; i < slo->n_windows; i++) {
        char w[64];
        kyufu_slo_window_text(&slo->windows[i], w, sizeof w);
        json_array_append_new(windows, json_string(w));
    }
    if (r->json) {
        json_t *doc = json_pack(
            "{s:s,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:I}", "file", slo->path,
            "availability_target_percent", (double)slo->target_ppm / 10000.0,
            "burn_rate_max", (json_int_t)slo->burn_rate_max, "rto_target_ms",
            (json_int_t)slo->rto_target_ms, "rpo_acknowledged_writes_ms", (json_int_t)0,
            "rpo_site_loss_ms", (json_int_t)slo->rpo_site_ms, "backup_interval_hours",
            (json_int_t)slo->backup_interval_hours, "backup_retention_days",
            (json_int_t)slo->backup_retention_days, "maintenance_windows", windows,
            "follower_lag_entries", (json_int_t)slo->follower_lag_entries,
            "follower_contact_ms", (json_int_t)slo->follower_contact_ms);
        free(slo);
        return ctl__emit_json(r, doc);
    }
    fprintf(r->out,
            "SLO file                %s\n"
            "availability target     %.4f%% per calendar month (UTC)\n"
            "error budget alert      burning > %ux the even rate over an hour\n"
            "RTO target              %llu ms\n"
            "RPO acknowledged writes 0 ms (never lost)\n"
            "RPO loss of the site    %llu ms\n"
            "backups                 every %u h, kept %u days\n"
            "follower lag bound      %llu entries\n"
            "node contact bound      %u ms\n"
            "maintenance windows     %zu\n",
            slo->path, (double)slo->target_ppm / 10000.0, slo->burn_rate_max,
            (unsigned long long)slo->rto_target_ms, (unsigned long long)slo->rpo_site_ms,
            slo->backup_interval_hours, slo->backup_retention_days,
            (unsigned long long)slo->follower_lag_entries, slo->follower_contact_ms,
            slo->n_windows);
    size_t i;
    json_t *w;
    json_array_foreach(windows, i, w) {
        fprintf(r->out, "  %s\n", json_string_value(w));
    }
    json_decref(windows);
    free(slo);
    return 0;
}

/* ------------------------------------------------------------ report */

static int write_html(struct ctl__run *r, json_t *doc, const char *path)
{
    /* Written to a temporary name and renamed: a reader never sees half a
     * page. */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "--html %s: %s", path, strerror(errno));
    }
    ctl__sla_report_html(doc, f);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "--html %s: %s", path, strerror(e));
    }
    return 0;
}

static int read_input(struct ctl__run *r, const char *path, json_t **out)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--input %s: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)SLA_INPUT_BYTES_MAX) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "--input %s: not a regular file of at most %u bytes", path,
                         SLA_INPUT_BYTES_MAX);
    }
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--input %s:%d: not JSON: %s", path,
                         je.line, je.text);
    }
    char why[256];
    if (ctl__sla_report_check(doc, why, sizeof why) != 0) {
        json_decref(doc);
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--input %s: %s", path, why);
    }
    *out = doc;
    return 0;
}

/* Every incident (all pages). */
static int list_incidents(struct ctl__run *r, struct kyufu_client *c, bool open_only,
                          Kyufu__V1__Incident ***items, size_t *n,
                          ProtobufCMessage ***pages, size_t *n_pages)
{
    char token[256] = "";
    *items = NULL;
    *n = 0;
    *pages = NULL;
    *n_pages = 0;
    for (unsigned p = 0; p < SLA_INCIDENT_PAGES_MAX; p++) {
        Kyufu__V1__ListIncidentsRequest req = KYUFU__V1__LIST_INCIDENTS_REQUEST__INIT;
        Kyufu__V1__ReadOptions ro = KYUFU__V1__READ_OPTIONS__INIT;
        ro.stale = r->stale;
        req.read = &ro;
        req.page_token = token;
        req.open_only = open_only;
        struct kyufu_client_call_opts opts = {.deadline_ms = r->deadline_ms,
                                              .endpoint = -1};
        struct kyufu_client_result res;
        int crv = kyufu_client_call(c, "ListIncidents", &req.base,
                                    &kyufu__v1__list_incidents_response__descriptor,
                                    &opts, &res);
        int rv = ctl__call_exit(r, crv, &res);
        if (rv != 0) {
            return rv;
        }
        Kyufu__V1__ListIncidentsResponse *resp =
            (Kyufu__V1__ListIncidentsResponse *)res.response;
        ProtobufCMessage **np = realloc(*pages, (*n_pages + 1) * sizeof *np);
        Kyufu__V1__Incident **ni =
            np == NULL ? NULL : realloc(*items, (*n + resp->n_incidents + 1) * sizeof *ni);
        if (np != NULL) {
            *pages = np;
        }
        if (ni == NULL) {
            kyufu_client_response_free(res.response);
            return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
        }
        *items = ni;
        (*pages)[(*n_pages)++] = res.response;
        for (size_t i = 0; i < resp->n_incidents; i++) {
            (*items)[(*n)++] = resp->incidents[i];
        }
        if (resp->next_page_token == NULL || resp->next_page_token[0] == '\0') {
            return 0;
        }
        snprintf(token, sizeof token, "%s", resp->next_page_token);
    }
    return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "more than %u pages of incidents",
                     SLA_INCIDENT_PAGES_MAX);
}

static void free_pages(ProtobufCMessage **pages, size_t n, Kyufu__V1__Incident **items)
{
    for (size_t i = 0; i < n; i++) {
        kyufu_client_response_free(pages[i]);
    }
    free(pages);
    free(items);
}

static int emit_report(struct ctl__run *r, json_t *doc, const struct sla_opts *o)
{
    if (o->html != NULL) {
        int rv = write_html(r, doc, o->html);
        if (rv != 0) {
            json_decref(doc);
            return rv;
        }
    }
    if (r->json) {
        return ctl__emit_json(r, doc);
    }
    ctl__sla_report_text(doc, r->out);
    if (o->html != NULL) {
        fprintf(r->out, "wrote %s\n", o->html);
    }
    json_decref(doc);
    return 0;
}

static int cmd_report(struct ctl__run *r, int argc, char **argv)
{
    struct sla_opts o = {0};
    int rv = getopts(r, argc, argv, "report", &o, NULL);
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    if (o.input != NULL) {
        if (o.month != NULL || o.slo != NULL) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "sla report: --input renders a saved report as it is "
                             "(no --month, no --slo)");
        }
        json_t *doc = NULL;
        rv = read_input(r, o.input, &doc);
        return rv != 0 ? rv : emit_report(r, doc, &o);
    }
    char month[16];
    int64_t from, to;
    if (o.month != NULL) {
        if (kyufu_slo_month_range(o.month, &from, &to) != 0) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "--month: '%s' is not YYYY-MM (2000..2999)", o.month);
        }
        snprintf(month, sizeof month, "%s", o.month);
    } else {
        time_t t = (time_t)(wall_ms() / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(month, sizeof month, "%04d-%02d", (tm.tm_year + 1900) % 10000,
                 (tm.tm_mon + 1) % 100);
        kyufu_slo_month_range(month, &from, &to);
    }
    struct kyufu_slo *slo = malloc(sizeof *slo);
    if (slo == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    rv = load_slo(r, o.slo, slo);
    struct kyufu_client *c = NULL;
    if (rv == 0) {
        rv = ctl__client(r, &c);
    }
    if (rv != 0) {
        free(slo);
        return rv;
    }
    Kyufu__V1__GetAvailabilityRequest req = KYUFU__V1__GET_AVAILABILITY_REQUEST__INIT;
    req.from_ms = from;
    req.to_ms = to;
    struct kyufu_client_call_opts opts = {.deadline_ms = r->deadline_ms, .endpoint = -1};
    struct kyufu_client_result res;
    int crv = kyufu_client_call(c, "GetAvailability", &req.base,
                                &kyufu__v1__availability_report__descriptor, &opts, &res);
    Kyufu__V1__AvailabilityReport none = KYUFU__V1__AVAILABILITY_REPORT__INIT;
    const Kyufu__V1__AvailabilityReport *rep = NULL;
    if (crv == 0 && res.grpc_status == KYUFU_GRPC_UNIMPLEMENTED) {
        /* A cluster without the availability ledger: the report still
         * shows the SLO, the incidents and says it has no figures
         * (availability null), never invented ones. */
        fprintf(r->err, "kyufuctl: the cluster serves no availability ledger "
                        "(GetAvailability: UNIMPLEMENTED): no availability figures\n");
        none.from_ms = from;
        none.to_ms = to;
        rep = &none;
    } else {
        rv = ctl__call_exit(r, crv, &res);
        if (rv != 0) {
            free(slo);
            return rv;
        }
        rep = (const Kyufu__V1__AvailabilityReport *)res.response;
    }
    Kyufu__V1__Incident **items;
    ProtobufCMessage **pages;
    size_t n_items, n_pages;
    rv = list_incidents(r, c, false, &items, &n_items, &pages, &n_pages);
    if (rv != 0) {
        if (rep != &none) {
            kyufu_client_response_free(res.response);
        }
        free(slo);
        return rv;
    }
    json_t *doc = ctl__sla_report_build(month, rep, items, n_items, slo, wall_ms());
    free_pages(pages, n_pages, items);
    if (rep != &none) {
        kyufu_client_response_free(res.response);
    }
    free(slo);
    if (doc == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory (report)");
    }
    return emit_report(r, doc, &o);
}

/* ------------------------------------------------------------ check */

static int check_line(struct ctl__run *r, int state, const char *text, json_t *alerts,
                      const char *perf)
{
    static const char *const names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};
    if (r->json) {
        json_t *doc = json_pack("{s:s,s:i,s:s,s:o}", "state", names[state], "exit_code",
                                state, "text", text,
                                "alerts", alerts != NULL ? alerts : json_array());
        json_dumpf(doc, r->out, JSON_INDENT(2));
        fputc('\n', r->out);
        json_decref(doc);
    } else {
        if (alerts != NULL) {
            json_decref(alerts);
        }
        fprintf(r->out, "SLA %s - %s%s%s\n", names[state], text, perf[0] ? " | " : "",
                perf);
    }
    return state;
}

/* Whether the RTO target held for the newest failover of this month, as
 * the availability ledger of the node asked records it and the client's
 * SLO file states the target (docs/sla.md "kyufuctl sla check"): appended
 * to text ("; last failover ...") and perf (" last_rto_ms=X;;T").  The
 * exit state stays the nodes' alerts' (an RTO over target is their
 * critical `rto` alert for 15 minutes); nothing is appended when the
 * ledger cannot be read or holds no failover this month. */
static void check_last_failover(struct ctl__run *r, struct kyufu_client *c,
                                uint32_t timeout, char *text, size_t *tl,
                                size_t text_len, char *perf, size_t perf_len)
{
    int64_t now = wall_ms(), from, to;
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    char month[16];
    gmtime_r(&t, &tm);
    snprintf(month, sizeof month, "%04u-%02u", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u);
    if (kyufu_slo_month_range(month, &from, &to) != 0) {
        return;
    }
    Kyufu__V1__GetAvailabilityRequest req = KYUFU__V1__GET_AVAILABILITY_REQUEST__INIT;
    req.from_ms = from;
    req.to_ms = to;
    struct kyufu_client_call_opts opts = {.deadline_ms = timeout, .endpoint = -1};
    struct kyufu_client_result res;
    int crv = kyufu_client_call(c, "GetAvailability", &req.base,
                                &kyufu__v1__availability_report__descriptor, &opts, &res);
    if (crv != 0) {
        return;
    }
    const Kyufu__V1__AvailabilityReport *rep =
        (const Kyufu__V1__AvailabilityReport *)res.response;
    const Kyufu__V1__Failover *last = NULL;
    for (size_t i = 0; rep != NULL && res.grpc_status == KYUFU_GRPC_OK && i < rep->n_failovers;
         i++) {
        if (last == NULL || rep->failovers[i]->term > last->term) {
            last = rep->failovers[i];
        }
    }
    if (last != NULL) {
        /* The target from the client's SLO file, quietly: without one the
         * RTO is reported without a verdict. */
        struct kyufu_slo *slo = malloc(sizeof *slo);
        FILE *saved_err = r->err;
        bool saved_json = r->json;
        FILE *null = fopen("/dev/null", "w");
        bool have_target = false;
        if (slo != NULL && null != NULL) {
            r->err = null;
            r->json = false;
            have_target = load_slo(r, NULL, slo) == 0;
            r->err = saved_err;
            r->json = saved_json;
        }
        char verdict[96] = "";
        if (have_target) {
            snprintf(verdict, sizeof verdict, ", %s the target of %llu ms",
                     last->rto_ms <= slo->rto_target_ms ? "within" : "OVER",
                     (unsigned long long)slo->rto_target_ms);
        }
        int w = snprintf(text + *tl, text_len - *tl,
                         "%slast failover (term %llu, %s, %lld s ago): RTO %llu ms%s",
                         *tl ? "; " : "", (unsigned long long)last->term,
                         ctl__sla_cause_name(last->cause),
                         (long long)((now - last->first_commit_new_ms) / 1000),
                         (unsigned long long)last->rto_ms, verdict);
        *tl = w < 0 ? *tl : *tl + (size_t)w >= text_len ? text_len - 1 : *tl + (size_t)w;
        size_t pl = strlen(perf);
        if (have_target) {
            snprintf(perf + pl, perf_len - pl, " last_rto_ms=%llu;;%llu",
                     (unsigned long long)last->rto_ms,
                     (unsigned long long)slo->rto_target_ms);
        } else {
            snprintf(perf + pl, perf_len - pl, " last_rto_ms=%llu",
                     (unsigned long long)last->rto_ms);
        }
        if (null != NULL) {
            fclose(null);
        }
        free(slo);
    }
    kyufu_client_response_free(res.response);
}

static int cmd_check(struct ctl__run *r, int argc, char **argv)
{
    struct sla_opts o = {0};
    /* Usage errors are UNKNOWN here (3), as the plugin protocol wants. */
    int rv = getopts(r, argc, argv, "check", &o, NULL);
    if (rv != 0) {
        return rv < 0 ? 0 : check_line(r, CHECK_UNKNOWN, "bad usage", NULL, "");
    }
    struct kyufu_client *c;
    /* The reason goes to stderr only: stdout holds the one plugin line (or
     * the one --json document). */
    bool json = r->json;
    r->json = false;
    rv = ctl__client(r, &c);
    r->json = json;
    if (rv != 0) {
        return check_line(r, CHECK_UNKNOWN, "no usable client configuration", NULL, "");
    }
    unsigned n_ep = kyufu_client_endpoint_count(c);
    uint32_t timeout = o.node_timeout_ms != 0 ? o.node_timeout_ms : 1000;
    Kyufu__V1__StatusRequest req = KYUFU__V1__STATUS_REQUEST__INIT;
    int crvs[KYUFU_CLIENT_ENDPOINTS_MAX];
    struct kyufu_client_result results[KYUFU_CLIENT_ENDPOINTS_MAX];
    rv = kyufu_client_call_each(c, "Status", &req.base, &kyufu__v1__node_status__descriptor,
                                timeout, crvs, results);
    if (rv != 0) {
        return check_line(r, CHECK_UNKNOWN, kyufu_client_strerror(rv), NULL, "");
    }
    int state = CHECK_OK;
    unsigned answered = 0, evaluated = 0, n_alerts = 0;
    json_t *alerts = json_array();
    char text[1024] = "";
    size_t tl = 0;
    char silent[256] = ""; /* the endpoints that did not answer */
    size_t sl = 0;
    for (unsigned i = 0; i < n_ep; i++) {
        if (crvs[i] != 0 || results[i].grpc_status != KYUFU_GRPC_OK) {
            if (sl + 2 < sizeof silent) {
                int w = snprintf(silent + sl, sizeof silent - sl, "%s%s", sl ? ", " : "",
                                 kyufu_client_endpoint(c, i));
                sl = w < 0 ? sl : sl + (size_t)w >= sizeof silent ? sizeof silent - 1 : sl + (size_t)w;
            }
            if (crvs[i] == 0) {
                continue;
            }
            if (results[i].response != NULL) {
                kyufu_client_response_free(results[i].response);
            }
            continue;
        }
        const Kyufu__V1__NodeStatus *st = (const Kyufu__V1__NodeStatus *)results[i].response;
        answered++;
        evaluated += st->sla_evaluated;
        for (size_t k = 0; k < st->n_sla_alerts; k++) {
            const Kyufu__V1__SlaAlert *a = st->sla_alerts[k];
            int sev = strcmp(a->severity, "critical") == 0  ? CHECK_CRITICAL
                      : strcmp(a->severity, "warning") == 0 ? CHECK_WARNING
                                                            : CHECK_UNKNOWN;
            state = sev > state && sev != CHECK_UNKNOWN ? sev : state;
            n_alerts++;
            json_t *ja = kyufu_ctl_to_json(&a->base);
            if (ja != NULL) {
                json_object_set_new(ja, "node_id", json_integer((json_int_t)st->id));
                json_array_append_new(alerts, ja);
            }
            if (tl + 2 < sizeof text) {
                int w = snprintf(text + tl, sizeof text - tl, "%snode %llu: %s", tl ? "; " : "",
                                 (unsigned long long)st->id, a->summary);
                tl = w < 0 ? tl : tl + (size_t)w >= sizeof text ? sizeof text - 1 : tl + (size_t)w;
            }
        }
        kyufu_client_response_free(results[i].response);
    }
    char perf[192];
    snprintf(perf, sizeof perf, "alerts=%u nodes_answered=%u;;;0;%u", n_alerts, answered,
             n_ep);
    if (answered == 0) {
        return check_line(r, CHECK_UNKNOWN, "no node answered", alerts, perf);
    }
    if (evaluated == 0) {
        return check_line(r, CHECK_UNKNOWN,
                          "no node evaluates an SLO ([sla] slo_file not set)", alerts,
                          perf);
    }
    if (answered < n_ep) {
        /* Which nodes are silent comes first (it is why the state is at
         * least WARNING), then the last failover, as docs/sla.md shows. */
        int w = snprintf(text + tl, sizeof text - tl, "%s%u of %u nodes did not answer (%s)",
                         tl ? "; " : "", n_ep - answered, n_ep, silent);
        tl = w < 0 ? tl : tl + (size_t)w >= sizeof text ? sizeof text - 1 : tl + (size_t)w;
        check_last_failover(r, c, timeout, text, &tl, sizeof text, perf, sizeof perf);
        state = state < CHECK_WARNING ? CHECK_WARNING : state;
    } else {
        if (n_alerts == 0) {
            tl = (size_t)snprintf(text, sizeof text, "%u nodes answered, no alert", answered);
        }
        check_last_failover(r, c, timeout, text, &tl, sizeof text, perf, sizeof perf);
    }
    return check_line(r, state, text, alerts, perf);
}

/* ------------------------------------------------------------ incidents */

static void incident_row(FILE *out, const Kyufu__V1__Incident *x)
{
    fprintf(out, "%-5llu %-6s %-20s %-10s %-8s %s\n", (unsigned long long)x->id,
            x->state == KYUFU__V1__INCIDENT_STATE__INCIDENT_OPEN ? "open" : "closed",
            x->alert, x->subject, x->severity, x->summary);
    if (x->state == KYUFU__V1__INCIDENT_STATE__INCIDENT_CLOSED) {
        fprintf(out, "      cause: %s\n      fix:   %s\n      closed by %s\n", x->cause,
                x->fix, x->closed_by);
    }
}

static int cmd_incident(struct ctl__run *r, int argc, char **argv)
{
    if (argc < 2) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "sla incident: list or close");
    }
    const char *what = argv[1];
    struct sla_opts o = {0};
    const char *id_arg = NULL;
    bool close = strcmp(what, "close") == 0;
    if (!close && strcmp(what, "list") != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "sla incident: unknown '%s' (list or close)", what);
    }
    int rv = getopts(r, argc - 1, argv + 1, close ? "incident close" : "incident list", &o,
                     close ? &id_arg : NULL);
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    struct kyufu_client *c;
    if (!close) {
        rv = ctl__client(r, &c);
        if (rv != 0) {
            return rv;
        }
        Kyufu__V1__Incident **items;
        ProtobufCMessage **pages;
        size_t n, n_pages;
        rv = list_incidents(r, c, o.open, &items, &n, &pages, &n_pages);
        if (rv != 0) {
            return rv;
        }
        if (r->json) {
            json_t *arr = json_array();
            for (size_t i = 0; i < n; i++) {
                json_array_append_new(arr, kyufu_ctl_to_json(&items[i]->base));
            }
            free_pages(pages, n_pages, items);
            return ctl__emit_json(r, json_pack("{s:o}", "incidents", arr));
        }
        fprintf(r->out, "%-5s %-6s %-20s %-10s %-8s %s\n", "ID", "STATE", "ALERT",
                "SUBJECT", "SEVERITY", "SUMMARY");
        for (size_t i = 0; i < n; i++) {
            incident_row(r->out, items[i]);
        }
        free_pages(pages, n_pages, items);
        return 0;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long id = id_arg != NULL ? strtoull(id_arg, &end, 10) : 0;
    if (id_arg == NULL || id_arg[0] < '1' || id_arg[0] > '9' || *end != '\0' ||
        errno != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "sla incident close: ID must be a positive integer");
    }
    if (o.cause == NULL || o.cause[0] == '\0' || strlen(o.cause) > 400 || o.fix == NULL ||
        o.fix[0] == '\0' || strlen(o.fix) > 400) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "sla incident close: --cause and --fix are required, 1..400 "
                         "bytes each");
    }
    rv = ctl__client(r, &c);
    if (rv != 0) {
        return rv;
    }
    Kyufu__V1__RequestHeader hdr = KYUFU__V1__REQUEST_HEADER__INIT;
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    if (r->key_seq != 0) {
        key.client_id = r->key_id;
        key.sequence = r->key_seq;
        hdr.key = &key;
        hdr.actor = (char *)(r->actor != NULL ? r->actor : "");
    } else {
        rv = kyufu_client_header_init(c, &hdr, &key, r->actor);
        if (rv != 0) {
            return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s", kyufu_client_strerror(rv));
        }
    }
    Kyufu__V1__CloseIncident body = KYUFU__V1__CLOSE_INCIDENT__INIT;
    body.id = id;
    body.cause = (char *)o.cause;
    body.fix = (char *)o.fix;
    Kyufu__V1__CloseIncidentRequest req = KYUFU__V1__CLOSE_INCIDENT_REQUEST__INIT;
    req.header = &hdr;
    req.command = &body;
    struct kyufu_client_call_opts opts = {.deadline_ms = r->deadline_ms, .endpoint = -1};
    struct kyufu_client_result res;
    int crv = kyufu_client_call(c, "CloseIncident", &req.base,
                                &kyufu__v1__write_response__descriptor, &opts, &res);
    rv = ctl__call_exit(r, crv, &res);
    if (rv != 0) {
        return rv;
    }
    const Kyufu__V1__WriteResponse *wr = (const Kyufu__V1__WriteResponse *)res.response;
    if (r->json) {
        json_t *doc = kyufu_ctl_to_json(&wr->base);
        kyufu_client_response_free(res.response);
        return ctl__emit_json(r, doc);
    }
    if (wr->result != NULL && wr->result->incident != NULL) {
        incident_row(r->out, wr->result->incident);
    }
    kyufu_client_response_free(res.response);
    return 0;
}

int ctl__sla(struct ctl__run *r, const char *verb, int argc, char **argv)
{
    if (strcmp(verb, "show") == 0) {
        return cmd_show(r, argc, argv);
    }
    if (strcmp(verb, "report") == 0) {
        return cmd_report(r, argc, argv);
    }
    if (strcmp(verb, "check") == 0) {
        return cmd_check(r, argc, argv);
    }
    if (strcmp(verb, "incident") == 0) {
        return cmd_incident(r, argc, argv);
    }
    return -1;
}
