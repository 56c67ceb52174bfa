/* libkyufu's session token, on a scripted transport and in a temporary
 * folder.  What users rely on: once signed in (or given a token), every
 * call, every retry of it, carries `authorization: Bearer <token>`; a
 * SignIn never carries one; a per-call token wins over the client's; a
 * malformed token is refused and changes nothing; the token never shows in
 * an error message; token files are written 0600 and a file that group or
 * others may read is refused (as ssh refuses such a key), as are a
 * symlink, a missing file (NO_TOKEN) and a file without a token. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fake_transport.h"
#include "test_file.h"
#include "kyufu.h"

#define TOKEN_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define TOKEN_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static void config(struct kyufu_client_config *cfg)
{
    kyufu_client_config_init(cfg);
    for (unsigned i = 0; i < 2; i++) {
        cfg->endpoints[i] = strdup(i == 0 ? "10.0.0.1:8001" : "10.0.0.2:8002");
    }
    cfg->n_endpoints = 2;
    cfg->ca_file = strdup("/nonexistent/ca.pem"); /* never read by the fake */
    cfg->deadline_ms = 600000;
    cfg->backoff_ms_initial = 0;
    cfg->backoff_ms_max = 0;
}

static struct kyufu_client *open_client(struct fake *f, struct kyufu_client_config *cfg,
                                        int want_rv, char *err, size_t errlen)
{
    struct kyufu_client *c = NULL;
    err[0] = '\0';
    int rv = client__create_with(cfg, NULL, fake_factory, f, &c, err, errlen);
    if (rv != want_rv) {
        fprintf(stderr, "create: %d %s\n", rv, err);
    }
    CHECK_EQ_INT(rv, want_rv);
    return c;
}

/* A client on `f` (the test config) holding the token TOKEN_A. */
static struct kyufu_client *open_signed_in(struct fake *f)
{
    struct kyufu_client_config cfg;
    config(&cfg);
    cfg.token = strdup(TOKEN_A);
    char err[256];
    struct kyufu_client *c = open_client(f, &cfg, 0, err, sizeof err);
    kyufu_client_config_free(&cfg);
    return c;
}

static int get_program(struct kyufu_client *c, const struct kyufu_client_call_opts *opts,
                       struct kyufu_client_result *res)
{
    Kyufu__V1__GetProgramRequest req = KYUFU__V1__GET_PROGRAM_REQUEST__INIT;
    req.code = "P1";
    return kyufu_client_call(c, "GetProgram", &req.base, NULL, opts, res);
}

/* No token: nothing sent.  set_token: sent on every attempt, retries
 * included.  A malformed token is refused and the old one kept. */
static void test_metadata(void)
{
    struct fake f = { 0 };
    struct kyufu_client_config cfg;
    config(&cfg);
    char err[256];
    struct kyufu_client *c = open_client(&f, &cfg, 0, err, sizeof err);
    kyufu_client_config_free(&cfg);
    CHECK(!kyufu_client_has_token(c));

    Kyufu__V1__Program prog = KYUFU__V1__PROGRAM__INIT;
    struct kyufu_client_result res;
    fake_push(&f, (struct fake_reply){ .status = 0, .response = &prog.base });
    CHECK_EQ_INT(get_program(c, NULL, &res), 0);
    kyufu_client_response_free(res.response);
    CHECK_EQ_INT(f.n_log, 1);
    CHECK(strcmp(f.log[0].authorization, "") == 0);

    CHECK_EQ_INT(kyufu_client_set_token(c, TOKEN_A), 0);
    CHECK(kyufu_client_has_token(c));
    /* A retry (UNAVAILABLE naming the other node) carries it again. */
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAVAILABLE,
                                       .leader = "10.0.0.2:8002" });
    fake_push(&f, (struct fake_reply){ .status = 0, .response = &prog.base });
    CHECK_EQ_INT(get_program(c, NULL, &res), 0);
    kyufu_client_response_free(res.response);
    CHECK_EQ_INT(f.n_log, 3);
    CHECK(strcmp(f.log[1].authorization, "Bearer " TOKEN_A) == 0);
    CHECK(strcmp(f.log[2].authorization, "Bearer " TOKEN_A) == 0);

    /* Malformed tokens: refused, the old one stays. */
    const char *bad[] = { "", "abc", TOKEN_A "0", "g0112233445566778899aabbccddeeff00112233445566778899aabbccddeef",
                          "00112233445566778899aabbccddeeff00112233445566778899aabbccddee\r\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(kyufu_client_set_token(c, bad[i]), KYUFU_CLIENT_EINVALID);
    }
    /* A per-call token wins over the client's; a bad one is EINVALID and
     * sends nothing. */
    struct kyufu_client_call_opts opts = { .endpoint = -1, .token = TOKEN_B };
    fake_push(&f, (struct fake_reply){ .status = 0, .response = &prog.base });
    CHECK_EQ_INT(get_program(c, &opts, &res), 0);
    kyufu_client_response_free(res.response);
    CHECK(strcmp(f.log[3].authorization, "Bearer " TOKEN_B) == 0);
    opts.token = "nope";
    CHECK_EQ_INT(get_program(c, &opts, &res), KYUFU_CLIENT_EINVALID);
    CHECK_EQ_INT(f.n_log, 4);
    /* The client's token was kept through all of it. */
    fake_push(&f, (struct fake_reply){ .status = 0, .response = &prog.base });
    CHECK_EQ_INT(get_program(c, NULL, &res), 0);
    kyufu_client_response_free(res.response);
    CHECK(strcmp(f.log[4].authorization, "Bearer " TOKEN_A) == 0);

    /* Forgotten: nothing sent. */
    CHECK_EQ_INT(kyufu_client_set_token(c, NULL), 0);
    fake_push(&f, (struct fake_reply){ .status = 0, .response = &prog.base });
    CHECK_EQ_INT(get_program(c, NULL, &res), 0);
    kyufu_client_response_free(res.response);
    CHECK(strcmp(f.log[5].authorization, "") == 0);
    kyufu_client_destroy(c);
    fake_reset_log(&f);
}

/* A follower that has not applied a fresh session answers UNAUTHENTICATED
 * naming the leader: the call goes there once, with the same token and
 * bytes; a second refusal is final; no hint, or no token: final at once. */
static void test_unauthenticated_follower(void)
{
    struct fake f = { 0 };
    struct kyufu_client *c = open_signed_in(&f);
    Kyufu__V1__Program prog = KYUFU__V1__PROGRAM__INIT;
    struct kyufu_client_result res;
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAUTHENTICATED,
                                       .leader = "10.0.0.2:8002", .message = "no such session" });
    fake_push(&f, (struct fake_reply){ .status = 0, .response = &prog.base });
    CHECK_EQ_INT(get_program(c, NULL, &res), 0);
    CHECK_EQ_INT(res.grpc_status, 0);
    kyufu_client_response_free(res.response);
    CHECK_EQ_INT(f.n_log, 2);
    CHECK_EQ_INT(f.log[0].endpoint, 0);
    CHECK_EQ_INT(f.log[1].endpoint, 1);
    CHECK(strcmp(f.log[1].authorization, "Bearer " TOKEN_A) == 0);
    CHECK(f.log[0].len == f.log[1].len && memcmp(f.log[0].body, f.log[1].body, f.log[0].len) == 0);
    /* The leader refuses too (node 1 now names node 0): final. */
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAUTHENTICATED,
                                       .leader = "10.0.0.1:8001", .message = "expired" });
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAUTHENTICATED,
                                       .leader = "10.0.0.2:8002", .message = "expired" });
    CHECK_EQ_INT(get_program(c, NULL, &res), 0);
    CHECK_EQ_INT(res.grpc_status, KYUFU_GRPC_UNAUTHENTICATED);
    CHECK_EQ_INT(f.n_log, 4);
    /* Refused by the leader itself (no other hint): final at once. */
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAUTHENTICATED,
                                       .message = "expired" });
    CHECK_EQ_INT(get_program(c, NULL, &res), 0);
    CHECK_EQ_INT(res.grpc_status, KYUFU_GRPC_UNAUTHENTICATED);
    CHECK_EQ_INT(f.n_log, 5);
    /* Without a token there is nothing a leader would know better. */
    CHECK_EQ_INT(kyufu_client_set_token(c, NULL), 0);
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAUTHENTICATED,
                                       .leader = "10.0.0.1:8001", .message = "sign in" });
    CHECK_EQ_INT(get_program(c, NULL, &res), 0);
    CHECK_EQ_INT(res.grpc_status, KYUFU_GRPC_UNAUTHENTICATED);
    CHECK_EQ_INT(f.n_log, 6);
    kyufu_client_destroy(c);
    fake_reset_log(&f);
}

/* An Auth call (not idempotent: a password change) whose attempt timed
 * out or lost its connection is never sent again; a node's own
 * UNAVAILABLE naming the leader (nothing done) still redirects. */
static void test_auth_not_resent(void)
{
    struct fake f = { 0 };
    struct kyufu_client *c = open_signed_in(&f);
    Kyufu__V1__ChangePasswordRequest req = KYUFU__V1__CHANGE_PASSWORD_REQUEST__INIT;
    req.old_password = "a";
    req.new_password = "b";
    struct kyufu_client_result res;
    const int errs[] = { KYUFU_CLIENT_EDEADLINE, KYUFU_CLIENT_EUNAVAILABLE };
    for (unsigned i = 0; i < 2; i++) {
        fake_reset_log(&f);
        f.n_log = 0;
        fake_push(&f, (struct fake_reply){ .err = errs[i] });
        Kyufu__V1__ChangePasswordResponse ok = KYUFU__V1__CHANGE_PASSWORD_RESPONSE__INIT;
        fake_push(&f, (struct fake_reply){ .status = 0, .response = &ok.base });
        CHECK_EQ_INT(kyufu_client_call(c, "ChangePassword", &req.base, NULL, NULL, &res), errs[i]);
        CHECK_EQ_INT(f.n_log, 1);
        /* The attempt had the whole deadline, not attempt_ms. */
        CHECK(f.log[0].timeout_ms > KYUFU_CLIENT_ATTEMPT_MS_DEFAULT);
        f.next_reply = f.n_script; /* drop the unused reply */
    }
    fake_reset_log(&f);
    f.n_log = 0;
    Kyufu__V1__ChangePasswordResponse ok = KYUFU__V1__CHANGE_PASSWORD_RESPONSE__INIT;
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAVAILABLE, .leader = "10.0.0.2:8002" });
    fake_push(&f, (struct fake_reply){ .status = 0, .response = &ok.base });
    CHECK_EQ_INT(kyufu_client_call(c, "ChangePassword", &req.base, NULL, NULL, &res), 0);
    CHECK_EQ_INT(res.grpc_status, 0);
    kyufu_client_response_free(res.response);
    CHECK_EQ_INT(f.n_log, 2);
    CHECK_EQ_INT(f.log[1].endpoint, 1);
    kyufu_client_destroy(c);
    fake_reset_log(&f);
}

/* kyufu_client_sign_in: sent without the old token, the new token used
 * from then on; a refusal leaves the old token; a malformed token in the
 * answer is EPROTOCOL and sets nothing; the password is in the request. */
static void test_sign_in(void)
{
    struct fake f = { 0 };
    struct kyufu_client *c = open_signed_in(&f);
    CHECK(kyufu_client_has_token(c));

    Kyufu__V1__SignInResponse ok = KYUFU__V1__SIGN_IN_RESPONSE__INIT;
    ok.token = TOKEN_B;
    ok.staff_id = "clerk1";
    struct kyufu_client_result res;
    fake_push(&f, (struct fake_reply){ .status = KYUFU_GRPC_UNAUTHENTICATED,
                                       .message = "wrong password or code" });
    CHECK_EQ_INT(kyufu_client_sign_in(c, "clerk1", "pw-1", "123456", NULL, &res), 0);
    CHECK_EQ_INT(res.grpc_status, KYUFU_GRPC_UNAUTHENTICATED);
    CHECK(res.response == NULL);
    CHECK(strcmp(f.log[0].path, "/kyufu.v1.Auth/SignIn") == 0);
    CHECK(strcmp(f.log[0].authorization, "") == 0);
    Kyufu__V1__SignInRequest *sent =
        kyufu__v1__sign_in_request__unpack(NULL, f.log[0].len, f.log[0].body);
    CHECK(sent != NULL && strcmp(sent->staff_id, "clerk1") == 0 &&
          strcmp(sent->password, "pw-1") == 0 && strcmp(sent->totp_code, "123456") == 0);
    kyufu__v1__sign_in_request__free_unpacked(sent, NULL);

    fake_push(&f, (struct fake_reply){ .status = 0, .response = &ok.base });
    CHECK_EQ_INT(kyufu_client_sign_in(c, "clerk1", "pw-2", NULL, NULL, &res), 0);
    CHECK_EQ_INT(res.grpc_status, 0);
    CHECK(strcmp(((Kyufu__V1__SignInResponse *)(void *)res.response)->token, TOKEN_B) == 0);
    kyufu_client_response_free(res.response);
    CHECK(strcmp(f.log[1].authorization, "") == 0);

    /* The next call carries the new token. */
    Kyufu__V1__WhoAmIRequest who = KYUFU__V1__WHO_AM_IREQUEST__INIT;
    Kyufu__V1__WhoAmIResponse me = KYUFU__V1__WHO_AM_IRESPONSE__INIT;
    fake_push(&f, (struct fake_reply){ .status = 0, .response = &me.base });
    CHECK_EQ_INT(kyufu_client_call(c, "WhoAmI", &who.base, NULL, NULL, &res), 0);
    kyufu_client_response_free(res.response);
    CHECK(strcmp(f.log[2].path, "/kyufu.v1.Auth/WhoAmI") == 0);
    CHECK(strcmp(f.log[2].authorization, "Bearer " TOKEN_B) == 0);

    /* A server answering a malformed token: EPROTOCOL, token unchanged. */
    ok.token = "not-a-token";
    fake_push(&f, (struct fake_reply){ .status = 0, .response = &ok.base });
    CHECK_EQ_INT(kyufu_client_sign_in(c, "clerk1", "pw-2", "000000", NULL, &res),
                 KYUFU_CLIENT_EPROTOCOL);
    CHECK(res.response == NULL);
    fake_push(&f, (struct fake_reply){ .status = 0, .response = &me.base });
    CHECK_EQ_INT(kyufu_client_call(c, "WhoAmI", &who.base, NULL, NULL, &res), 0);
    kyufu_client_response_free(res.response);
    CHECK(strcmp(f.log[4].authorization, "Bearer " TOKEN_B) == 0);

    CHECK_EQ_INT(kyufu_client_sign_in(c, "", "pw", NULL, NULL, &res), KYUFU_CLIENT_EINVALID);
    CHECK_EQ_INT(kyufu_client_sign_in(c, "x", NULL, NULL, NULL, &res), KYUFU_CLIENT_EINVALID);
    kyufu_client_destroy(c);
    fake_reset_log(&f);
}

/* The method table knows the Auth service, keyed where it has a header. */
static void test_methods(void)
{
    const struct kyufu_client_method *m = kyufu_client_method_find("SignIn");
    CHECK(m != NULL && m->kind == KYUFU_CLIENT_AUTH);
    CHECK(strcmp(m->path, "/kyufu.v1.Auth/SignIn") == 0);
    m = kyufu_client_method_find("/kyufu.v1.Auth/ResetPassword");
    CHECK(m != NULL && m->kind == KYUFU_CLIENT_WRITE);
    m = kyufu_client_method_find("UnlockStaff");
    CHECK(m != NULL && m->kind == KYUFU_CLIENT_WRITE);
    m = kyufu_client_method_find("ChangePassword");
    CHECK(m != NULL && m->kind == KYUFU_CLIENT_AUTH);
}

static void test_files(const char *dir)
{
    char path[512], err[512], tok[KYUFU_CLIENT_TOKEN_BYTES + 1];
    /* Written into a folder that does not exist yet: created 0700, file 0600
     * whatever the umask. */
    snprintf(path, sizeof path, "%s/conf/kyufu/token", dir);
    mode_t old = umask(0);
    CHECK_EQ_INT(kyufu_client_token_write(path, TOKEN_A, err, sizeof err), 0);
    umask(old);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
    char parent[512];
    snprintf(parent, sizeof parent, "%s/conf/kyufu", dir);
    CHECK(stat(parent, &st) == 0 && (st.st_mode & 07777) == 0700);
    CHECK_EQ_INT(kyufu_client_token_read(path, tok, err, sizeof err), 0);
    CHECK(strcmp(tok, TOKEN_A) == 0);
    /* Overwritten atomically by the next login. */
    CHECK_EQ_INT(kyufu_client_token_write(path, TOKEN_B, err, sizeof err), 0);
    CHECK_EQ_INT(kyufu_client_token_read(path, tok, err, sizeof err), 0);
    CHECK(strcmp(tok, TOKEN_B) == 0);
    CHECK_EQ_INT(kyufu_client_token_write(path, "short", err, sizeof err),
                 KYUFU_CLIENT_EINVALID);

    /* Readable by group or others: refused, the message says why and how,
     * and never holds the token. */
    const mode_t loose[] = { 0644, 0640, 0604, 0620, 0602, 0660 };
    for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++) {
        CHECK(chmod(path, loose[i]) == 0);
        memset(tok, 'x', sizeof tok);
        CHECK_EQ_INT(kyufu_client_token_read(path, tok, err, sizeof err),
                     KYUFU_CLIENT_EINSECURE);
        CHECK(tok[0] == '\0');
        CHECK(strstr(err, "chmod 600") != NULL);
        CHECK(strstr(err, TOKEN_B) == NULL);
    }
    CHECK(chmod(path, 0400) == 0);
    CHECK_EQ_INT(kyufu_client_token_read(path, tok, err, sizeof err), 0);
    CHECK(chmod(path, 0600) == 0);

    /* A symlink to a good file: refused (its mode was not checked). */
    char link[512];
    snprintf(link, sizeof link, "%s/link", dir);
    unlink(link);
    CHECK(symlink(path, link) == 0);
    CHECK_EQ_INT(kyufu_client_token_read(link, tok, err, sizeof err), KYUFU_CLIENT_EINSECURE);
    /* A folder. */
    CHECK_EQ_INT(kyufu_client_token_read(parent, tok, err, sizeof err),
                 KYUFU_CLIENT_EINSECURE);
    /* Missing: NO_TOKEN. */
    snprintf(link, sizeof link, "%s/none", dir);
    CHECK_EQ_INT(kyufu_client_token_read(link, tok, err, sizeof err), KYUFU_CLIENT_ENO_TOKEN);
    /* Hostile contents: each refused as not a token, never echoed. */
    const char *junk[] = { "", "\n", TOKEN_A "\n\n", TOKEN_A TOKEN_A, " " TOKEN_A,
                           "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
                           "0011223344556677\n" };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        test_write_file(link, junk[i], 0600);
        CHECK_EQ_INT(kyufu_client_token_read(link, tok, err, sizeof err),
                     KYUFU_CLIENT_ECONFIG);
        CHECK(strstr(err, "0011223344") == NULL);
    }
    test_write_file(link, TOKEN_A "\r\n", 0600);
    CHECK_EQ_INT(kyufu_client_token_read(link, tok, err, sizeof err), 0);
    test_write_file(link, TOKEN_A, 0600);
    CHECK_EQ_INT(kyufu_client_token_read(link, tok, err, sizeof err), 0);

    /* Remove: gone, and removing again is fine. */
    CHECK_EQ_INT(kyufu_client_token_remove(path, err, sizeof err), 0);
    CHECK(access(path, F_OK) != 0 && errno == ENOENT);
    CHECK_EQ_INT(kyufu_client_token_remove(path, err, sizeof err), 0);

    /* A client config naming a loose token file fails to create, clearly. */
    test_write_file(path, TOKEN_A "\n", 0644);
    struct kyufu_client_config cfg;
    config(&cfg);
    cfg.token_file = strdup(path);
    struct fake f = { 0 };
    struct kyufu_client *c = open_client(&f, &cfg, KYUFU_CLIENT_EINSECURE, err, sizeof err);
    CHECK(c == NULL && strstr(err, "0644") != NULL);
    CHECK(chmod(path, 0600) == 0);
    c = open_client(&f, &cfg, 0, err, sizeof err);
    kyufu_client_config_free(&cfg);
    CHECK(kyufu_client_has_token(c));
    kyufu_client_destroy(c);

    /* token in the INI file: refused (not a key); token_file is one. */
    config(&cfg);
    CHECK_EQ_INT(kyufu_client_config_parse(&cfg, "[client]\ntoken = " TOKEN_A "\n", err,
                                           sizeof err),
                 KYUFU_CLIENT_ECONFIG);
    CHECK(strstr(err, TOKEN_A) == NULL);
    kyufu_client_config_free(&cfg);
    config(&cfg);
    CHECK_EQ_INT(kyufu_client_config_parse(&cfg, "[client]\ntoken_file = /x/token\n", err,
                                           sizeof err),
                 0);
    CHECK(strcmp(cfg.token_file, "/x/token") == 0);
    /* A malformed cfg.token (a program's KYUFU_TOKEN): config error. */
    cfg.token = strdup("12");
    CHECK_EQ_INT(kyufu_client_config_validate(&cfg, err, sizeof err), KYUFU_CLIENT_ECONFIG);
    CHECK(strstr(err, "hex") != NULL);
    kyufu_client_config_free(&cfg);
}

static void test_default_path(void)
{
    char buf[512];
    setenv("XDG_CONFIG_HOME", "/home/u/.cfg", 1);
    CHECK_EQ_INT(kyufu_client_token_default_path(buf, sizeof buf), 0);
    CHECK(strcmp(buf, "/home/u/.cfg/kyufu/token") == 0);
    setenv("XDG_CONFIG_HOME", "relative", 1); /* invalid per XDG: ignored */
    setenv("HOME", "/home/u", 1);
    CHECK_EQ_INT(kyufu_client_token_default_path(buf, sizeof buf), 0);
    CHECK(strcmp(buf, "/home/u/.config/kyufu/token") == 0);
    unsetenv("XDG_CONFIG_HOME");
    CHECK_EQ_INT(kyufu_client_token_default_path(buf, 8), KYUFU_CLIENT_ENOMEM);
    unsetenv("HOME");
    CHECK_EQ_INT(kyufu_client_token_default_path(buf, sizeof buf), KYUFU_CLIENT_EINVALID);
}

int main(void)
{
    char dir[] = "/tmp/kyufu-token-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    test_metadata();
    test_sign_in();
    test_unauthenticated_follower();
    test_auth_not_resent();
    test_methods();
    test_files(dir);
    test_default_path();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    printf("ok\n");
    return 0;
}
