/* kyufuctl list paging on a scripted server (fake_transport.c): --limit
 * caps the records and each page asks only for what is still wanted;
 * --json says "truncated" and gives the next_page_token exactly when the
 * list stopped early; --page-token continues from a token; text output
 * says on stderr how to continue; a server that sends more than it was
 * asked for is refused rather than paged wrongly. */
#include <stdarg.h>
#include <string.h>

#include "check.h"
#include "ctl_run.h"
#include "ctl.h"
#include "ctl_fake.h"
#include "fake_transport.h"
#include "kyufu/v1/service.pb-c.h"

static char out_buf[65536], err_buf[65536];
static char conf[128];

/* kyufuctl in-process (ctl_run.h), the arguments NULL-terminated. */
#define run(...) \
    ctl_run(out_buf, sizeof out_buf, err_buf, sizeof err_buf, conf, __VA_ARGS__)

/* A page of `n` programs P<first>.. with next_page_token `next`. */
struct page
{
    Kyufu__V1__ListProgramsResponse resp;
    Kyufu__V1__Program rec[8];
    Kyufu__V1__Program *ptr[8];
    char codes[8][16];
};

static void page(struct page *p, unsigned first, unsigned n, const char *next)
{
    CHECK(n <= 8);
    kyufu__v1__list_programs_response__init(&p->resp);
    for (unsigned i = 0; i < n; i++) {
        kyufu__v1__program__init(&p->rec[i]);
        snprintf(p->codes[i], sizeof p->codes[i], "P%u", first + i);
        p->rec[i].code = p->codes[i];
        p->rec[i].name = (char *)"給付金";
        p->rec[i].budget = 1000000;
        p->rec[i].status = KYUFU__V1__PROGRAM_STATUS__PROGRAM_OPEN;
        p->ptr[i] = &p->rec[i];
    }
    p->resp.n_programs = n;
    p->resp.programs = p->ptr;
    p->resp.next_page_token = (char *)next;
}

/* The i-th request the server saw. */
static Kyufu__V1__ListRequest *request(struct fake *f, unsigned i)
{
    CHECK(i < f->n_log);
    Kyufu__V1__ListRequest *q = kyufu__v1__list_request__unpack(NULL, f->log[i].len,
                                                                f->log[i].body);
    CHECK(q != NULL);
    return q;
}

static void push(struct fake *f, struct page *p)
{
    fake_push(f, (struct fake_reply){ .status = 0, .response = &p->resp.base });
}

int main(void)
{
    char dir[] = "/tmp/kyufu-ctl-list-XXXXXX";
    ctl_fake_conf(dir, conf, sizeof conf);
    static struct fake f;
    struct page p1, p2, p3;

    /* The whole list fits: not truncated, no token. */
    ctl_fake_reset(&f);
    page(&p1, 1, 2, "");
    push(&f, &p1);
    CHECK_EQ_INT(run("--json", "program", "list", NULL), 0);
    json_t *doc = json_loads(out_buf, 0, NULL);
    CHECK(doc != NULL);
    CHECK_EQ_INT(json_array_size(json_object_get(doc, "programs")), 2);
    CHECK(json_is_false(json_object_get(doc, "truncated")));
    CHECK(strcmp(json_string_value(json_object_get(doc, "next_page_token")), "") == 0);
    json_decref(doc);
    Kyufu__V1__ListRequest *q = request(&f, 0);
    CHECK_EQ_INT(q->page_size, KYUFU_CTL_LIST_PAGE_RECORDS);
    CHECK(strcmp(q->page_token, "") == 0);
    kyufu__v1__list_request__free_unpacked(q, NULL);

    /* --limit 5 over pages of 3: asks 5, then the 2 still wanted; stops
     * with the server's token for what comes next. */
    ctl_fake_reset(&f);
    page(&p1, 1, 3, "after-3");
    page(&p2, 4, 2, "after-5");
    push(&f, &p1);
    push(&f, &p2);
    CHECK_EQ_INT(run("--json", "program", "list", "--limit", "5", NULL), 0);
    doc = json_loads(out_buf, 0, NULL);
    CHECK(doc != NULL);
    CHECK_EQ_INT(json_array_size(json_object_get(doc, "programs")), 5);
    CHECK(json_is_true(json_object_get(doc, "truncated")));
    CHECK(strcmp(json_string_value(json_object_get(doc, "next_page_token")), "after-5") == 0);
    /* JSON keeps machine values. */
    json_t *first = json_array_get(json_object_get(doc, "programs"), 0);
    CHECK(strcmp(json_string_value(json_object_get(first, "status")), "PROGRAM_OPEN") == 0);
    CHECK_EQ_INT(json_integer_value(json_object_get(first, "budget")), 1000000);
    json_decref(doc);
    CHECK_EQ_INT(f.n_log, 2);
    q = request(&f, 0);
    CHECK_EQ_INT(q->page_size, 5);
    kyufu__v1__list_request__free_unpacked(q, NULL);
    q = request(&f, 1);
    CHECK_EQ_INT(q->page_size, 2);
    CHECK(strcmp(q->page_token, "after-3") == 0);
    kyufu__v1__list_request__free_unpacked(q, NULL);

    /* --page-token continues there; text output: readable values, and how
     * to continue on stderr. */
    ctl_fake_reset(&f);
    page(&p3, 6, 1, "after-6");
    push(&f, &p3);
    CHECK_EQ_INT(run("program", "list", "--limit", "1", "--page-token", "after-5", NULL), 0);
    q = request(&f, 0);
    CHECK(strcmp(q->page_token, "after-5") == 0);
    CHECK_EQ_INT(q->page_size, 1);
    kyufu__v1__list_request__free_unpacked(q, NULL);
    CHECK(strstr(out_buf, "P6") != NULL && strstr(out_buf, "¥1,000,000") != NULL &&
          strstr(out_buf, "open") != NULL && strstr(out_buf, "PROGRAM_OPEN") == NULL);
    CHECK(strstr(err_buf, "stopped after 1 (--limit 1); continue with --page-token after-6") !=
          NULL);

    /* A server that sends more than asked: refused (the token would skip
     * records), exit 4. */
    ctl_fake_reset(&f);
    page(&p1, 1, 3, "after-3");
    push(&f, &p1);
    CHECK_EQ_INT(run("--json", "program", "list", "--limit", "2", NULL), KYUFU_CTL_EXIT_LOCAL);
    CHECK(strstr(err_buf, "sent 3 records for a page of 2") != NULL);

    ctl_fake_reset(&f);
    ctl__set_transport(NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    printf("ok\n");
    return 0;
}
