/* kyufuctl's sign-in commands on a scripted server (fake_transport.c), in a
 * temporary XDG_CONFIG_HOME.  What people and scripts rely on:
 *   - login writes the token, and only the token, to a 0600 file; the
 *     password comes from --password-file, never from stdout; the token is
 *     never printed; SignIn goes without any token;
 *   - a first sign-in with --new-password-file changes the temporary
 *     password with the setup session's token, signs in again and says
 *     what comes next (TOTP enrollment);
 *   - later commands send the file's token; KYUFU_TOKEN wins over the file;
 *     --token-file picks another file; a file group or others may read is
 *     refused before any call; a malformed KYUFU_TOKEN likewise;
 *   - UNAUTHENTICATED says "not signed in or session expired: kyufuctl
 *     login";
 *   - logout closes the session and deletes the file, and keeps the file
 *     when the cluster could not be told;
 *   - staff create / reset-password print the one-time temporary password;
 *     suspend/reinstate/disable/unlock/reset-totp send the right command;
 *   - hostile arguments are usage errors that send nothing;
 *   - the QR code drawn for a known URI is exactly libqrencode's matrix,
 *     in half blocks, with a light quiet zone of 4 modules, and stable;
 *   - a password prompt on a terminal (a pty here) does not echo. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <qrencode.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "check.h"
#include "ctl_run.h"
#include "ctl.h"
#include "ctl_fake.h"
#include "fake_transport.h"
#include "test_file.h"
#include "kyufu/v1/service.pb-c.h"
#include "pwhash.h"

#define TOKEN_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define TOKEN_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
/* sha256 of the drawing of test_qr's URI (libqrencode 4.1.1, level M). */
#define QR_GOLDEN_SHA256 "30cb6137cad7e07c26ddb722a9037f1ff61d364587f4090ff4b3168c77fe9a04"
#define TOKEN_C "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char out_buf[65536], err_buf[65536];
static char conf[256], dir[64], token_path[256];

/* kyufuctl in-process (ctl_run.h), the arguments NULL-terminated. */
#define run(...) \
    ctl_run(out_buf, sizeof out_buf, err_buf, sizeof err_buf, conf, __VA_ARGS__)

static void read_text(const char *path, char *buf, size_t len)
{
    FILE *fp = fopen(path, "r");
    CHECK(fp != NULL);
    size_t n = fread(buf, 1, len - 1, fp);
    buf[n] = '\0';
    fclose(fp);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    CHECK(stat(path, &st) == 0);
    return st.st_mode & 07777;
}

static bool no_secret_printed(const char *secret)
{
    return strstr(out_buf, secret) == NULL && strstr(err_buf, secret) == NULL;
}

static void test_login(struct fake *f)
{
    char pwfile[300], newfile[300], text[256];
    snprintf(pwfile, sizeof pwfile, "%s/pw", dir);
    snprintf(newfile, sizeof newfile, "%s/new", dir);
    test_write_file(pwfile, "Temp-Password-1\n", 0600);
    test_write_file(newfile, "correct horse battery staple 9\n", 0600);

    /* A full sign-in. */
    ctl_fake_reset(f);
    Kyufu__V1__Role roles[] = { KYUFU__V1__ROLE__ROLE_CLERK };
    Kyufu__V1__SignInResponse s = KYUFU__V1__SIGN_IN_RESPONSE__INIT;
    s.token = TOKEN_A;
    s.staff_id = "clerk1";
    s.roles = roles;
    s.n_roles = 1;
    s.expires_ms = 1800000000000;
    s.idle_expires_ms = 1790000000000;
    fake_push(f, (struct fake_reply){ .status = 0, .response = &s.base });
    CHECK_EQ_INT(run("login", "--staff-id", "clerk1", "--password-file", pwfile, "--totp",
                     "123456", NULL),
                 0);
    CHECK_EQ_INT(f->n_log, 1);
    CHECK(strcmp(f->log[0].path, "/kyufu.v1.Auth/SignIn") == 0);
    CHECK(strcmp(f->log[0].authorization, "") == 0);
    Kyufu__V1__SignInRequest *q =
        kyufu__v1__sign_in_request__unpack(NULL, f->log[0].len, f->log[0].body);
    CHECK(q != NULL && strcmp(q->staff_id, "clerk1") == 0 &&
          strcmp(q->password, "Temp-Password-1") == 0 && strcmp(q->totp_code, "123456") == 0);
    kyufu__v1__sign_in_request__free_unpacked(q, NULL);
    CHECK(mode_of(token_path) == 0600);
    read_text(token_path, text, sizeof text);
    CHECK(strcmp(text, TOKEN_A "\n") == 0);
    CHECK(strstr(out_buf, "signed in as clerk1 (clerk)") != NULL);
    CHECK(no_secret_printed(TOKEN_A) && no_secret_printed("Temp-Password-1"));

    /* --json: the session, never the token. */
    ctl_fake_reset(f);
    fake_push(f, (struct fake_reply){ .status = 0, .response = &s.base });
    CHECK_EQ_INT(run("--json", "login", "--staff-id", "clerk1", "--password-file", pwfile,
                     "--totp", "123456", NULL),
                 0);
    json_t *doc = json_loads(out_buf, 0, NULL);
    CHECK(doc != NULL);
    CHECK(strcmp(json_string_value(json_object_get(doc, "staff_id")), "clerk1") == 0);
    CHECK(strcmp(json_string_value(json_object_get(doc, "token_file")), token_path) == 0);
    CHECK(json_object_get(doc, "token") == NULL);
    json_decref(doc);
    CHECK(no_secret_printed(TOKEN_A));

    /* Refused: no file written over the old one, the reason shown. */
    ctl_fake_reset(f);
    unlink(token_path);
    fake_push(f, (struct fake_reply){ .status = KYUFU_GRPC_UNAUTHENTICATED,
                                      .message = "wrong password or code" });
    CHECK_EQ_INT(run("login", "--staff-id", "clerk1", "--password-file", pwfile, "--totp",
                     "123456", NULL),
                 KYUFU_CTL_EXIT_REJECTED);
    CHECK(strstr(err_buf, "sign-in refused: wrong password or code") != NULL);
    CHECK(access(token_path, F_OK) != 0);

    /* First sign-in: temporary password -> changed with the setup
     * session's token -> signed in again -> TOTP enrollment named next. */
    ctl_fake_reset(f);
    Kyufu__V1__SignInResponse setup1 = KYUFU__V1__SIGN_IN_RESPONSE__INIT;
    setup1.token = TOKEN_B;
    setup1.staff_id = "clerk2";
    setup1.setup_only = 1;
    setup1.must_change_password = 1;
    setup1.totp_enrollment_required = 1;
    Kyufu__V1__ChangePasswordResponse changed = KYUFU__V1__CHANGE_PASSWORD_RESPONSE__INIT;
    Kyufu__V1__SignInResponse setup2 = KYUFU__V1__SIGN_IN_RESPONSE__INIT;
    setup2.token = TOKEN_C;
    setup2.staff_id = "clerk2";
    setup2.setup_only = 1;
    setup2.totp_enrollment_required = 1;
    fake_push(f, (struct fake_reply){ .status = 0, .response = &setup1.base });
    fake_push(f, (struct fake_reply){ .status = 0, .response = &changed.base });
    fake_push(f, (struct fake_reply){ .status = 0, .response = &setup2.base });
    CHECK_EQ_INT(run("login", "--staff-id", "clerk2", "--password-file", pwfile,
                     "--new-password-file", newfile, NULL),
                 0);
    CHECK_EQ_INT(f->n_log, 3);
    CHECK(strcmp(f->log[1].path, "/kyufu.v1.Auth/ChangePassword") == 0);
    CHECK(strcmp(f->log[1].authorization, "Bearer " TOKEN_B) == 0);
    Kyufu__V1__ChangePasswordRequest *cq =
        kyufu__v1__change_password_request__unpack(NULL, f->log[1].len, f->log[1].body);
    CHECK(cq != NULL && strcmp(cq->old_password, "Temp-Password-1") == 0 &&
          strcmp(cq->new_password, "correct horse battery staple 9") == 0);
    kyufu__v1__change_password_request__free_unpacked(cq, NULL);
    CHECK(strcmp(f->log[2].path, "/kyufu.v1.Auth/SignIn") == 0);
    CHECK(strcmp(f->log[2].authorization, "") == 0);
    q = kyufu__v1__sign_in_request__unpack(NULL, f->log[2].len, f->log[2].body);
    CHECK(q != NULL && strcmp(q->password, "correct horse battery staple 9") == 0 &&
          strcmp(q->totp_code, "") == 0);
    kyufu__v1__sign_in_request__free_unpacked(q, NULL);
    read_text(token_path, text, sizeof text);
    CHECK(strcmp(text, TOKEN_C "\n") == 0);
    CHECK(strstr(out_buf, "kyufuctl totp enroll") != NULL);
    CHECK(no_secret_printed(TOKEN_B) && no_secret_printed(TOKEN_C) &&
          no_secret_printed("correct horse"));

    /* A policy refusal of the new password: said, and the setup session's
     * token is still in the file for `kyufuctl passwd`. */
    ctl_fake_reset(f);
    fake_push(f, (struct fake_reply){ .status = 0, .response = &setup1.base });
    fake_push(f, (struct fake_reply){ .status = KYUFU_GRPC_INVALID_ARGUMENT,
                                      .message = "password: it is based on a dictionary word" });
    CHECK_EQ_INT(run("login", "--staff-id", "clerk2", "--password-file", pwfile,
                     "--new-password-file", newfile, NULL),
                 KYUFU_CTL_EXIT_REJECTED);
    CHECK(strstr(err_buf, "dictionary word") != NULL);
    read_text(token_path, text, sizeof text);
    CHECK(strcmp(text, TOKEN_B "\n") == 0);

    /* Without --new-password-file and no terminal: the setup session is
     * kept and the next command named. */
    ctl_fake_reset(f);
    fake_push(f, (struct fake_reply){ .status = 0, .response = &setup1.base });
    CHECK_EQ_INT(run("login", "--staff-id", "clerk2", "--password-file", pwfile, NULL), 0);
    CHECK(strstr(out_buf, "kyufuctl passwd") != NULL);
    CHECK_EQ_INT(f->n_log, 1);
}

static void test_token_sources(struct fake *f)
{
    Kyufu__V1__WhoAmIResponse me = KYUFU__V1__WHO_AM_IRESPONSE__INIT;
    me.staff_id = "clerk1";
    test_write_file(token_path, TOKEN_A "\n", 0600);

    /* The file's token. */
    ctl_fake_reset(f);
    fake_push(f, (struct fake_reply){ .status = 0, .response = &me.base });
    CHECK_EQ_INT(run("whoami", NULL), 0);
    CHECK(strcmp(f->log[0].path, "/kyufu.v1.Auth/WhoAmI") == 0);
    CHECK(strcmp(f->log[0].authorization, "Bearer " TOKEN_A) == 0);
    CHECK(strstr(out_buf, "clerk1") != NULL && no_secret_printed(TOKEN_A));

    /* KYUFU_TOKEN wins over the file. */
    ctl_fake_reset(f);
    setenv("KYUFU_TOKEN", TOKEN_B, 1);
    fake_push(f, (struct fake_reply){ .status = 0, .response = &me.base });
    CHECK_EQ_INT(run("whoami", NULL), 0);
    CHECK(strcmp(f->log[0].authorization, "Bearer " TOKEN_B) == 0);
    CHECK(strstr(out_buf, "KYUFU_TOKEN") != NULL && no_secret_printed(TOKEN_B));
    /* ... and a malformed one is refused before any call. */
    ctl_fake_reset(f);
    setenv("KYUFU_TOKEN", "Bearer " TOKEN_B, 1);
    CHECK_EQ_INT(run("program", "list", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "KYUFU_TOKEN is not a session token") != NULL);
    CHECK_EQ_INT(f->n_log, 0);
    unsetenv("KYUFU_TOKEN");

    /* --token-file: another file. */
    char other[300];
    snprintf(other, sizeof other, "%s/other-token", dir);
    test_write_file(other, TOKEN_C "\n", 0600);
    ctl_fake_reset(f);
    fake_push(f, (struct fake_reply){ .status = 0, .response = &me.base });
    CHECK_EQ_INT(run("--token-file", other, "whoami", NULL), 0);
    CHECK(strcmp(f->log[0].authorization, "Bearer " TOKEN_C) == 0);

    /* A token file others may read: refused before any call. */
    CHECK(chmod(token_path, 0644) == 0);
    ctl_fake_reset(f);
    CHECK_EQ_INT(run("program", "list", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "mode 0644") != NULL && strstr(err_buf, "chmod 600") != NULL);
    CHECK(no_secret_printed(TOKEN_A));
    CHECK_EQ_INT(f->n_log, 0);
    CHECK(chmod(token_path, 0600) == 0);

    /* UNAUTHENTICATED: how to sign in. */
    ctl_fake_reset(f);
    fake_push(f, (struct fake_reply){ .status = KYUFU_GRPC_UNAUTHENTICATED,
                                      .message = "session expired" });
    CHECK_EQ_INT(run("program", "list", NULL), KYUFU_CTL_EXIT_REJECTED);
    CHECK(strstr(err_buf, "not signed in or session expired: kyufuctl login") != NULL);

    /* No file at all: the call goes without a token (the node refuses). */
    unlink(token_path);
    ctl_fake_reset(f);
    fake_push(f, (struct fake_reply){ .status = KYUFU_GRPC_UNAUTHENTICATED,
                                      .message = "no session" });
    CHECK_EQ_INT(run("whoami", NULL), KYUFU_CTL_EXIT_REJECTED);
    CHECK(strcmp(f->log[0].authorization, "") == 0);
    CHECK(strstr(err_buf, "kyufuctl login") != NULL);
}

static void test_logout(struct fake *f)
{
    Kyufu__V1__SignOutResponse bye = KYUFU__V1__SIGN_OUT_RESPONSE__INIT;
    test_write_file(token_path, TOKEN_A "\n", 0600);
    /* The cluster cannot be told: the file stays for a later logout. */
    ctl_fake_reset(f);
    CHECK_EQ_INT(run("--deadline-ms", "50", "logout", NULL), KYUFU_CTL_EXIT_UNAVAILABLE);
    CHECK(access(token_path, F_OK) == 0);
    ctl_fake_reset(f);
    fake_push(f, (struct fake_reply){ .status = 0, .response = &bye.base });
    CHECK_EQ_INT(run("logout", NULL), 0);
    CHECK(strcmp(f->log[0].path, "/kyufu.v1.Auth/SignOut") == 0);
    CHECK(strcmp(f->log[0].authorization, "Bearer " TOKEN_A) == 0);
    CHECK(access(token_path, F_OK) != 0 && errno == ENOENT);
    /* Again: not signed in, nothing sent. */
    ctl_fake_reset(f);
    CHECK_EQ_INT(run("logout", NULL), 0);
    CHECK(strstr(out_buf, "not signed in") != NULL);
    CHECK_EQ_INT(f->n_log, 0);
}

static void test_admin(struct fake *f)
{
    test_write_file(token_path, TOKEN_A "\n", 0600);
    Kyufu__V1__CommandResult ok = KYUFU__V1__COMMAND_RESULT__INIT;
    ok.object = "staff/clerk9";
    Kyufu__V1__WriteResponse w = KYUFU__V1__WRITE_RESPONSE__INIT;
    w.result = &ok;
    w.temporary_password = "Tmp-9f3k-22ab-Qx";

    ctl_fake_reset(f);
    fake_push(f, (struct fake_reply){ .status = 0, .response = &w.base });
    CHECK_EQ_INT(run("staff", "create", "--staff-id", "clerk9", "--display-name", "Nine",
                     "--roles", "clerk", NULL),
                 0);
    CHECK(strstr(out_buf, "temporary password") != NULL &&
          strstr(out_buf, "Tmp-9f3k-22ab-Qx") != NULL);
    /* No --as: the header names no actor (the session decides). */
    Kyufu__V1__CreateStaffRequest *cs =
        kyufu__v1__create_staff_request__unpack(NULL, f->log[0].len, f->log[0].body);
    CHECK(cs != NULL && cs->header != NULL && strcmp(cs->header->actor, "") == 0);
    kyufu__v1__create_staff_request__free_unpacked(cs, NULL);

    Kyufu__V1__ResetPasswordResponse rp = KYUFU__V1__RESET_PASSWORD_RESPONSE__INIT;
    rp.result = &ok;
    rp.temporary_password = "Tmp-aaaa-bbbb-Cc";
    ctl_fake_reset(f);
    fake_push(f, (struct fake_reply){ .status = 0, .response = &rp.base });
    CHECK_EQ_INT(run("staff", "reset-password", "clerk9", NULL), 0);
    CHECK(strcmp(f->log[0].path, "/kyufu.v1.Auth/ResetPassword") == 0);
    Kyufu__V1__ResetPasswordRequest *rq =
        kyufu__v1__reset_password_request__unpack(NULL, f->log[0].len, f->log[0].body);
    CHECK(rq != NULL && strcmp(rq->staff_id, "clerk9") == 0 && rq->header != NULL &&
          rq->header->key != NULL && rq->header->key->sequence > 0);
    kyufu__v1__reset_password_request__free_unpacked(rq, NULL);
    CHECK(strstr(out_buf, "Tmp-aaaa-bbbb-Cc") != NULL);

    static const struct
    {
        const char *verb;
        const char *path;
        int status;
    } cases[] = {
        { "suspend", "/kyufu.v1.Ledger/SetStaffStatus", KYUFU__V1__STAFF_STATUS__STAFF_SUSPENDED },
        { "reinstate", "/kyufu.v1.Ledger/SetStaffStatus", KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE },
        { "disable", "/kyufu.v1.Ledger/SetStaffStatus", KYUFU__V1__STAFF_STATUS__STAFF_DISABLED },
        { "unlock", "/kyufu.v1.Auth/UnlockStaff", -1 },
        { "reset-totp", "/kyufu.v1.Auth/ResetTotp", -1 },
    };
    Kyufu__V1__WriteResponse plain = KYUFU__V1__WRITE_RESPONSE__INIT;
    plain.result = &ok;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ctl_fake_reset(f);
        fake_push(f, (struct fake_reply){ .status = 0, .response = &plain.base });
        CHECK_EQ_INT(run("staff", cases[i].verb, "--staff-id", "clerk9", NULL), 0);
        CHECK(strcmp(f->log[0].path, cases[i].path) == 0);
        CHECK(strcmp(f->log[0].authorization, "Bearer " TOKEN_A) == 0);
        if (cases[i].status >= 0) {
            Kyufu__V1__SetStaffStatusRequest *sq =
                kyufu__v1__set_staff_status_request__unpack(NULL, f->log[0].len, f->log[0].body);
            CHECK(sq != NULL && sq->command != NULL &&
                  strcmp(sq->command->staff_id, "clerk9") == 0 &&
                  (int)sq->command->status == cases[i].status);
            kyufu__v1__set_staff_status_request__free_unpacked(sq, NULL);
        }
    }
    /* A rejection inside the answer is exit 1. */
    Kyufu__V1__CommandResult no = KYUFU__V1__COMMAND_RESULT__INIT;
    no.code = (Kyufu__V1__Code)KYUFU_GRPC_FAILED_PRECONDITION;
    no.message = "not locked";
    plain.result = &no;
    ctl_fake_reset(f);
    fake_push(f, (struct fake_reply){ .status = 0, .response = &plain.base });
    CHECK_EQ_INT(run("staff", "unlock", "clerk9", NULL), KYUFU_CTL_EXIT_REJECTED);
    CHECK(strstr(out_buf, "not locked") != NULL);
}

static void test_totp(struct fake *f)
{
    test_write_file(token_path, TOKEN_A "\n", 0600);
    Kyufu__V1__EnrollTotpResponse e = KYUFU__V1__ENROLL_TOTP_RESPONSE__INIT;
    e.secret_base32 = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    e.otpauth_uri = "otpauth://totp/kyufu:clerk1?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
                    "&issuer=kyufu";
    ctl_fake_reset(f);
    fake_push(f, (struct fake_reply){ .status = 0, .response = &e.base });
    CHECK_EQ_INT(run("--json", "totp", "enroll", NULL), 0);
    json_t *doc = json_loads(out_buf, 0, NULL);
    CHECK(doc != NULL);
    CHECK(strcmp(json_string_value(json_object_get(doc, "secret_base32")), e.secret_base32) == 0);
    json_decref(doc);
    /* Text: the secret and a QR code (half blocks). */
    ctl_fake_reset(f);
    fake_push(f, (struct fake_reply){ .status = 0, .response = &e.base });
    CHECK_EQ_INT(run("totp", "enroll", NULL), 0);
    CHECK(strstr(out_buf, "secret: JBSWY3DP") != NULL);
    CHECK(strstr(out_buf, "\u2580") != NULL && strstr(out_buf, "totp confirm") != NULL);

    Kyufu__V1__ConfirmTotpResponse cr = KYUFU__V1__CONFIRM_TOTP_RESPONSE__INIT;
    ctl_fake_reset(f);
    fake_push(f, (struct fake_reply){ .status = 0, .response = &cr.base });
    CHECK_EQ_INT(run("totp", "confirm", "--code", "654321", NULL), 0);
    Kyufu__V1__ConfirmTotpRequest *cq =
        kyufu__v1__confirm_totp_request__unpack(NULL, f->log[0].len, f->log[0].body);
    CHECK(cq != NULL && strcmp(cq->totp_code, "654321") == 0);
    kyufu__v1__confirm_totp_request__free_unpacked(cq, NULL);
}

static void test_hostile(struct fake *f)
{
    char pwfile[300], empty[300];
    snprintf(pwfile, sizeof pwfile, "%s/pw", dir);
    snprintf(empty, sizeof empty, "%s/empty", dir);
    test_write_file(empty, "", 0600);
    static const char *const cases[][10] = {
        { "login", "--staff-id", "c1", "--password-file", "PW", "--totp", "12345", NULL },
        { "login", "--staff-id", "c1", "--password-file", "PW", "--totp", "12345a", NULL },
        { "login", "--staff-id", "Bad ID", "--password-file", "PW", NULL },
        { "login", "--staff-id", "c1", "--password-file", "/nonexistent/pw", NULL },
        { "login", "--staff-id", "c1", "--password-file", "EMPTY", NULL },
        { "login", "--password-file", "PW", NULL }, /* no terminal to ask on */
        { "login", "--staff-id", "c1", NULL },      /* no terminal for the password */
        { "login", "extra", NULL },
        { "staff", "unlock", NULL },
        { "staff", "reset-totp", "UPPER", NULL },
        { "staff", "suspend", "a", "b", NULL },
        { "totp", "confirm", NULL },
        { "totp", "confirm", "--code", "1234567", NULL },
        { "passwd", "--old-password-file", "PW", NULL },
        { "whoami", "--bogus", NULL },
    };
    test_write_file(token_path, TOKEN_A "\n", 0600);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *a[10];
        for (size_t k = 0; k < 10; k++) {
            a[k] = cases[i][k] == NULL               ? NULL
                   : strcmp(cases[i][k], "PW") == 0    ? pwfile
                   : strcmp(cases[i][k], "EMPTY") == 0 ? empty
                                                       : cases[i][k];
        }
        ctl_fake_reset(f);
        int rv = run(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
        if (rv != KYUFU_CTL_EXIT_USAGE) {
            fprintf(stderr, "case %zu (%s %s): exit %d: %s\n", i, a[0], a[1], rv, err_buf);
        }
        CHECK_EQ_INT(rv, KYUFU_CTL_EXIT_USAGE);
        CHECK_EQ_INT(f->n_log, 0);
        CHECK(no_secret_printed("Temp-Password-1"));
    }
    /* help for a one-word command. */
    CHECK_EQ_INT(run("help", "login", NULL), 0);
    CHECK(strstr(out_buf, "--password-file") != NULL);
}

/* ------------------------------------------------------------ QR */

/* Decode our half-block drawing back into modules (true: dark). */
static int qr_decode(const char *text, bool *m, int max)
{
    int x = 0, y = 0, width = -1;
    for (const char *p = text; *p != '\0';) {
        if (*p == '\n') {
            CHECK(width < 0 || x == width);
            width = x;
            x = 0;
            y += 2;
            p++;
            continue;
        }
        bool top_dark, bottom_dark;
        if (strncmp(p, "\u2588", 3) == 0) {
            top_dark = bottom_dark = false;
            p += 3;
        } else if (strncmp(p, "\u2580", 3) == 0) {
            top_dark = false, bottom_dark = true;
            p += 3;
        } else if (strncmp(p, "\u2584", 3) == 0) {
            top_dark = true, bottom_dark = false;
            p += 3;
        } else {
            CHECK(*p == ' ');
            top_dark = bottom_dark = true;
            p++;
        }
        CHECK(x < max && y + 1 < max);
        m[y * max + x] = top_dark;
        m[(y + 1) * max + x] = bottom_dark;
        x++;
    }
    return width;
}

static void test_qr(void)
{
    const char *uri = "otpauth://totp/kyufu:clerk1?secret=JBSWY3DPEHPK3PXP&issuer=kyufu";
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    CHECK(fp != NULL);
    CHECK_EQ_INT(ctl__qr_render(uri, fp), 0);
    fclose(fp);
    enum { MAX = 200 };
    static bool m[MAX * MAX];
    memset(m, 0, sizeof m);
    int total = qr_decode(buf, m, MAX);
    QRcode *qr = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    CHECK(qr != NULL);
    const int q = (int)KYUFU_CTL_QR_QUIET_MODULES;
    CHECK_EQ_INT(q, 4);
    CHECK_EQ_INT(total, qr->width + 2 * q);
    for (int y = 0; y < total + (total & 1); y++) {
        for (int x = 0; x < total; x++) {
            bool in = x >= q && x < q + qr->width && y >= q && y < q + qr->width;
            bool want = in && (qr->data[(y - q) * qr->width + (x - q)] & 1);
            CHECK(m[y * MAX + x] == want); /* the quiet zone: all light */
        }
    }
    /* The finder pattern's corner is dark: the drawing is not inverted. */
    CHECK(m[q * MAX + q] && m[q * MAX + q + qr->width - 1]);
    /* Stable: the same bytes every time (a change of libqrencode's mask
     * choice or of the drawing shows here). */
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)buf, len, h);
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    }
    if (strcmp(hex, QR_GOLDEN_SHA256) != 0) {
        fprintf(stderr, "QR drawing sha256 %s\n%s", hex, buf);
    }
    CHECK(strcmp(hex, QR_GOLDEN_SHA256) == 0);
    QRcode_free(qr);
    free(buf);
    CHECK_EQ_INT(ctl__qr_render("", stdout), -1);
}

/* ------------------------------------------------------------ pty */

struct asker
{
    int fd;
    char buf[64];
    int rv;
};

static void *ask_thread(void *arg)
{
    struct asker *a = arg;
    a->rv = ctl__tty_ask(a->fd, "Password: ", true, a->buf, sizeof a->buf);
    return NULL;
}

/* Read from the pty master until `want` was seen (or 5 s of silence). */
static void read_until(int master, char *acc, size_t len, const char *want)
{
    size_t n = strlen(acc);
    while (strstr(acc, want) == NULL) {
        struct pollfd p = { .fd = master, .events = POLLIN };
        CHECK(poll(&p, 1, 5000) == 1);
        ssize_t r = read(master, acc + n, len - n - 1);
        CHECK(r > 0);
        n += (size_t)r;
        acc[n] = '\0';
    }
}

static void test_prompt_no_echo(void)
{
    int master, slave;
    CHECK(openpty(&master, &slave, NULL, NULL, NULL) == 0);
    struct termios before;
    CHECK(tcgetattr(slave, &before) == 0);
    CHECK(before.c_lflag & ECHO);
    struct asker a = { .fd = slave };
    pthread_t t;
    CHECK(pthread_create(&t, NULL, ask_thread, &a) == 0);
    char acc[512] = "";
    /* The prompt is written once echo is off: then type. */
    read_until(master, acc, sizeof acc, "Password: ");
    const char *typed = "s3cret-Typed\n";
    CHECK(write(master, typed, strlen(typed)) == (ssize_t)strlen(typed));
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_EQ_INT(a.rv, 0);
    CHECK(strcmp(a.buf, "s3cret-Typed") == 0);
    /* What the terminal showed: the prompt and the newline (ECHONL), never
     * the password. */
    read_until(master, acc, sizeof acc, "\n");
    CHECK(strstr(acc, "s3cret") == NULL);
    /* Echo is back on afterwards. */
    struct termios after;
    CHECK(tcgetattr(slave, &after) == 0);
    CHECK(after.c_lflag & ECHO);
    /* A secret is never read from something that is not a terminal. */
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    CHECK(write(pipefd[1], "x\n", 2) == 2);
    char b[16];
    CHECK_EQ_INT(ctl__tty_ask(pipefd[0], "P: ", true, b, sizeof b), -1);
    close(pipefd[0]);
    close(pipefd[1]);
    close(master);
    close(slave);
}

/* cluster init: each node gets the same bootstrap-admin file (0600) whose
 * hash is the printed temporary password's; the password is printed once
 * and is 20 characters of the unambiguous alphabet. */
int main(void)
{
    /* Never a terminal on stdin: no question may be asked here. */
    CHECK(freopen("/dev/null", "r", stdin) != NULL);
    snprintf(dir, sizeof dir, "/tmp/kyufu-ctl-auth-XXXXXX");
    ctl_fake_conf(dir, conf, sizeof conf);
    setenv("XDG_CONFIG_HOME", dir, 1);
    unsetenv("KYUFU_TOKEN");
    snprintf(token_path, sizeof token_path, "%s/kyufu/token", dir);
    static struct fake f;
    test_login(&f);
    test_token_sources(&f);
    test_logout(&f);
    test_admin(&f);
    test_totp(&f);
    test_hostile(&f);
    ctl_fake_reset(&f);
    test_qr();
    test_prompt_no_echo();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    printf("ok\n");
    return 0;
}
