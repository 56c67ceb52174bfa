/* kyufuctl identity commands (docs/kyufuctl.md "Signing in", docs/identity.md).
 *
 *   login     sign in; the token goes to a 0600 file (--token-file, the
 *             config's token_file, else $XDG_CONFIG_HOME/kyufu/token or
 *             ~/.config/kyufu/token).  On a terminal it asks what it lacks
 *             and leads a first sign-in through its setup: the temporary
 *             password changed (typed twice), TOTP enrolled (the secret
 *             shown once, also as a QR code), confirmed with a code, and
 *             the real sign-in with the next code.  Scripts pass
 *             --staff-id, --password-file, --totp (and --new-password-file);
 *             a setup the script cannot finish leaves the setup-only session
 *             in the file and says which command comes next.
 *   logout    Auth.SignOut, then the file is deleted.
 *   whoami    Auth.WhoAmI.
 *   passwd    Auth.ChangePassword; every session closes: the file is deleted.
 *   totp enroll | confirm
 *   staff reset-password | unlock | reset-totp | suspend | reinstate |
 *             disable ID    (an ID administrator's)
 *
 * Secrets (passwords, the token, the TOTP secret outside its one showing)
 * never reach stdout, stderr or the JSON document, and are cleansed from
 * memory after use.  Every refusal maps to the exit codes of ctl.h. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ctl.h"
#include "kyufu.h"

#define PW_LEN (KYUFU_CTL_PASSWORD_BYTES_MAX + 1)

enum { OPT_STAFF_ID = 0x400, OPT_PASSWORD_FILE, OPT_TOTP, OPT_NEW_PASSWORD_FILE,
       OPT_OLD_PASSWORD_FILE, OPT_CODE, OPT_HELP_A };

struct auth_args
{
    const char *staff_id;
    const char *password_file;
    const char *old_password_file;
    const char *new_password_file;
    const char *totp;
    const char *code;
    const char *positional; /* staff commands: the account */
};

/* Everything a command needs to ask and answer. */
struct ask
{
    struct ctl__run *r;
    int tty; /* /dev/tty, or -1: not interactive */
};

bool ctl__auth_single(const char *noun)
{
    return strcmp(noun, "login") == 0 || strcmp(noun, "logout") == 0 ||
           strcmp(noun, "whoami") == 0 || strcmp(noun, "passwd") == 0;
}

/* ------------------------------------------------------------ helpers */

static bool totp_ok(const char *code)
{
    if (strlen(code) != KYUFU_CTL_TOTP_DIGITS) {
        return false;
    }
    for (const char *p = code; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
    }
    return true;
}

static bool staff_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > KYUFU_CLIENT_ACTOR_BYTES_MAX) {
        return false;
    }
    for (const char *p = id; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '_' || *p == '-')) {
            return false;
        }
    }
    return true;
}

/* Interactive when stdin is a terminal and /dev/tty opens (never in a
 * pipe, a cron job or a test). */
static void ask_open(struct ask *a, struct ctl__run *r)
{
    a->r = r;
    a->tty = isatty(STDIN_FILENO) ? ctl__tty_open() : -1;
}

static void ask_close(struct ask *a)
{
    if (a->tty >= 0) {
        close(a->tty);
        a->tty = -1;
    }
}

/* A password: from the file if given, else asked (echo off). */
static int get_password(struct ask *a, const char *file, const char *prompt, const char *opt,
                        char *buf)
{
    char why[512];
    if (file != NULL) {
        if (ctl__read_secret_file(file, buf, PW_LEN, why, sizeof why) != 0) {
            return ctl__fail(a->r, KYUFU_CTL_EXIT_USAGE, "%s: %s", opt, why);
        }
        return 0;
    }
    if (a->tty < 0) {
        return ctl__fail(a->r, KYUFU_CTL_EXIT_USAGE,
                         "no terminal to ask the password on: use %s FILE", opt);
    }
    if (ctl__tty_ask(a->tty, prompt, true, buf, PW_LEN) != 0 || buf[0] == '\0') {
        return ctl__fail(a->r, KYUFU_CTL_EXIT_USAGE, "no password given");
    }
    return 0;
}

/* A new password typed twice (up to KYUFU_CTL_ASK_TRIES times), or read
 * from the file. */
static int get_new_password(struct ask *a, const char *file, char *buf)
{
    if (file != NULL || a->tty < 0) {
        return get_password(a, file, "", "--new-password-file", buf);
    }
    char again[PW_LEN];
    for (unsigned i = 0; i < KYUFU_CTL_ASK_TRIES; i++) {
        if (ctl__tty_ask(a->tty,
                         "New password (at least 12 characters, not guessable): ", true, buf,
                         PW_LEN) != 0 ||
            ctl__tty_ask(a->tty, "The same again: ", true, again, sizeof again) != 0) {
            break;
        }
        bool same = buf[0] != '\0' && strcmp(buf, again) == 0;
        OPENSSL_cleanse(again, sizeof again);
        if (same) {
            return 0;
        }
        ctl__tty_say(a->tty, "The two did not match (or were empty); again.\n");
    }
    OPENSSL_cleanse(buf, PW_LEN);
    OPENSSL_cleanse(again, sizeof again);
    return ctl__fail(a->r, KYUFU_CTL_EXIT_USAGE, "no new password given");
}

/* A TOTP code: the option's, else asked (visible: it is single-use). */
static int get_code(struct ask *a, const char *given, const char *prompt, bool may_be_empty,
                    char *buf, size_t len)
{
    if (given != NULL) {
        if (!(may_be_empty && given[0] == '\0') && !totp_ok(given)) {
            return ctl__fail(a->r, KYUFU_CTL_EXIT_USAGE, "a TOTP code is %u digits",
                             KYUFU_CTL_TOTP_DIGITS);
        }
        snprintf(buf, len, "%s", given);
        return 0;
    }
    if (a->tty < 0) {
        if (may_be_empty) {
            buf[0] = '\0';
            return 0;
        }
        return ctl__fail(a->r, KYUFU_CTL_EXIT_USAGE,
                         "no terminal to ask the TOTP code on: use --code");
    }
    for (unsigned i = 0; i < KYUFU_CTL_ASK_TRIES; i++) {
        if (ctl__tty_ask(a->tty, prompt, false, buf, len) != 0) {
            break;
        }
        if ((may_be_empty && buf[0] == '\0') || totp_ok(buf)) {
            return 0;
        }
        ctl__tty_say(a->tty, "A code is %u digits; again.\n", KYUFU_CTL_TOTP_DIGITS);
    }
    return ctl__fail(a->r, KYUFU_CTL_EXIT_USAGE, "no TOTP code given");
}

static uint32_t auth_deadline(const struct ctl__run *r)
{
    return r->deadline_ms != 0 ? r->deadline_ms : KYUFU_CTL_AUTH_DEADLINE_MS;
}

/* One call; an exit code (errors printed), *resp set on success. */
static int call(struct ctl__run *r, const char *method, const ProtobufCMessage *req,
                ProtobufCMessage **resp)
{
    struct kyufu_client *c;
    int rv = ctl__client(r, &c);
    if (rv != 0) {
        return rv;
    }
    /* One attempt may take the whole deadline: a node hashing a password
     * (ResetPassword) must not be asked again meanwhile (a repeat of the
     * key answers without the temporary password). */
    struct kyufu_client_call_opts opts = { .deadline_ms = auth_deadline(r), .endpoint = -1,
                                           .attempt_ms = auth_deadline(r) };
    struct kyufu_client_result res;
    int crv = kyufu_client_call(c, method, req, NULL, &opts, &res);
    rv = ctl__call_exit(r, crv, &res);
    if (rv != 0) {
        kyufu_client_response_free(res.response);
        return rv;
    }
    *resp = res.response;
    return 0;
}

static void roles_text(const Kyufu__V1__Role *roles, size_t n, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && k < len; i++) {
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(&kyufu__v1__role__descriptor, (int)roles[i]);
        const char *name = v != NULL ? v->name + strlen("ROLE_") : "?";
        k += (size_t)snprintf(buf + k, len - k, "%s", i > 0 ? "," : "");
        for (const char *p = name; *p != '\0' && k + 1 < len; p++) {
            buf[k++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        }
        buf[k < len ? k : len - 1] = '\0';
    }
    if (buf[0] == '\0') {
        snprintf(buf, len, "none");
    }
}

/* Keep the session's token in the token file (0600). */
static int save_token(struct ctl__run *r, const char *token)
{
    char err[4096 + 200];
    int rv = kyufu_client_token_write(r->token_path, token, err, sizeof err);
    if (rv == KYUFU_CLIENT_EINVALID) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "the node answered a malformed session token");
    }
    return rv == 0 ? 0 : ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s", err);
}

static void forget_token(struct ctl__run *r)
{
    char err[4096 + 200];
    if (r->token_path[0] != '\0' && kyufu_client_token_remove(r->token_path, err, sizeof err) != 0) {
        fprintf(r->err, "kyufuctl: %s\n", err);
    }
}

/* Auth.SignIn with the client's own helper; an exit code, *out the answer
 * (its token saved to the file, then cleansed from the message). */
static int sign_in(struct ctl__run *r, const char *staff_id, const char *password,
                   const char *code, Kyufu__V1__SignInResponse **out)
{
    struct kyufu_client *c;
    int rv = ctl__client(r, &c);
    if (rv != 0) {
        return rv;
    }
    struct kyufu_client_call_opts opts = { .deadline_ms = auth_deadline(r), .endpoint = -1 };
    struct kyufu_client_result res;
    int crv = kyufu_client_sign_in(c, staff_id, password, code, &opts, &res);
    if (crv == 0 && res.grpc_status == KYUFU_GRPC_UNAUTHENTICATED) {
        /* The node says why in general terms (wrong password or code,
         * locked, suspended); it never says which account exists. */
        return ctl__fail(r, KYUFU_CTL_EXIT_REJECTED, "sign-in refused: %s", res.message);
    }
    rv = ctl__call_exit(r, crv, &res);
    if (rv != 0) {
        kyufu_client_response_free(res.response);
        return rv;
    }
    Kyufu__V1__SignInResponse *s = (void *)res.response;
    rv = save_token(r, s->token);
    OPENSSL_cleanse(s->token, strlen(s->token));
    if (rv != 0) {
        kyufu_client_response_free(res.response);
        return rv;
    }
    *out = s;
    return 0;
}

static int print_signed_in(struct ctl__run *r, const Kyufu__V1__SignInResponse *s,
                           const char *next)
{
    char roles[256], t1[64], t2[64];
    roles_text(s->roles, s->n_roles, roles, sizeof roles);
    if (r->json) {
        json_t *doc = json_pack("{s:s,s:s,s:b,s:b,s:b,s:I,s:I,s:I,s:s,s:s}", "staff_id",
                                s->staff_id, "roles", roles, "setup_only", s->setup_only,
                                "must_change_password", s->must_change_password,
                                "totp_enrollment_required", s->totp_enrollment_required,
                                "idle_expires_ms", (json_int_t)s->idle_expires_ms,
                                "expires_ms", (json_int_t)s->expires_ms,
                                "password_expires_ms", (json_int_t)s->password_expires_ms,
                                "token_file", r->token_path, "next", next != NULL ? next : "");
        return ctl__emit_json(r, doc);
    }
    if (!s->setup_only) {
        fprintf(r->out, "signed in as %s (%s) until %s at the latest", s->staff_id, roles,
                kyufu_ctl_time(s->expires_ms, t1, sizeof t1));
        fprintf(r->out, "; idle sessions end at %s unless used\n",
                kyufu_ctl_time(s->idle_expires_ms, t2, sizeof t2));
        if (s->password_expires_ms > 0) {
            fprintf(r->out, "password valid until %s\n",
                    kyufu_ctl_time(s->password_expires_ms, t1, sizeof t1));
        }
    } else {
        fprintf(r->out, "signed in as %s for account setup only%s%s\n", s->staff_id,
                s->must_change_password ? ": the password must be changed" : "",
                s->totp_enrollment_required
                    ? (s->must_change_password ? ", a second factor enrolled"
                                               : ": a second factor must be enrolled")
                    : "");
        if (next != NULL) {
            fprintf(r->out, "next: %s\n", next);
        }
    }
    fprintf(r->out, "session token kept in %s (mode 0600)\n", r->token_path);
    return 0;
}

/* Auth.ChangePassword; an exit code.  The node closes every session of
 * the account, the caller's too: the token file is deleted. */
static int change_password(struct ctl__run *r, const char *old_pw, const char *new_pw)
{
    Kyufu__V1__ChangePasswordRequest req = KYUFU__V1__CHANGE_PASSWORD_REQUEST__INIT;
    req.old_password = (char *)old_pw;
    req.new_password = (char *)new_pw;
    ProtobufCMessage *resp = NULL;
    int rv = call(r, "ChangePassword", &req.base, &resp);
    if (rv == 0) {
        forget_token(r);
    }
    kyufu_client_response_free(resp);
    return rv;
}

/* Show the secret once: base32, the URI, the QR code. */
static void show_secret(struct ctl__run *r, const Kyufu__V1__EnrollTotpResponse *e)
{
    if (r->json) {
        /* Scripts (scripts/run) read the secret here; still once. */
        ctl__emit_json(r, json_pack("{s:s,s:s}", "secret_base32", e->secret_base32,
                                    "otpauth_uri", e->otpauth_uri));
        return;
    }
    fprintf(r->out,
            "Add this account to your authenticator app: scan the code below, or type the\n"
            "secret.  It is shown this once; nobody can show it again (an ID administrator\n"
            "can only reset it: kyufuctl staff reset-totp).\n\n");
    if (ctl__qr_render(e->otpauth_uri, r->out) != 0) {
        fprintf(r->out, "(the QR code could not be drawn)\n");
    }
    fprintf(r->out, "\nsecret: %s\n\n", e->secret_base32);
    fflush(r->out);
}

/* EnrollTotp, shown; then, on a terminal, a code asked and confirmed.
 * *confirmed tells whether ConfirmTotp succeeded. */
static int enroll(struct ask *a, const char *code_opt, bool *confirmed)
{
    struct ctl__run *r = a->r;
    *confirmed = false;
    Kyufu__V1__EnrollTotpRequest req = KYUFU__V1__ENROLL_TOTP_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    int rv = call(r, "EnrollTotp", &req.base, &resp);
    if (rv != 0) {
        return rv;
    }
    Kyufu__V1__EnrollTotpResponse *e = (void *)resp;
    show_secret(r, e);
    OPENSSL_cleanse(e->secret_base32, strlen(e->secret_base32));
    OPENSSL_cleanse(e->otpauth_uri, strlen(e->otpauth_uri));
    kyufu_client_response_free(resp);
    if (code_opt == NULL && a->tty < 0) {
        return 0; /* a script confirms with `totp confirm --code` */
    }
    for (unsigned i = 0; i < KYUFU_CTL_ASK_TRIES; i++) {
        char code[16];
        rv = get_code(a, code_opt, "Code shown by the app: ", false, code, sizeof code);
        if (rv != 0) {
            return rv;
        }
        Kyufu__V1__ConfirmTotpRequest creq = KYUFU__V1__CONFIRM_TOTP_REQUEST__INIT;
        creq.totp_code = code;
        resp = NULL;
        rv = call(r, "ConfirmTotp", &creq.base, &resp);
        kyufu_client_response_free(resp);
        if (rv == 0) {
            *confirmed = true;
            return 0;
        }
        if (code_opt != NULL || a->tty < 0 || rv != KYUFU_CTL_EXIT_REJECTED) {
            return rv;
        }
        ctl__tty_say(a->tty, "Not accepted; check the phone's clock and try the current code.\n");
    }
    return KYUFU_CTL_EXIT_REJECTED;
}

/* ------------------------------------------------------------ commands */

static int cmd_login(struct ctl__run *r, const struct auth_args *o)
{
    r->no_token = true; /* a sign-in proves itself; the file is written */
    struct kyufu_client *c;
    int rv = ctl__client(r, &c);
    if (rv != 0) {
        return rv;
    }
    if (r->token_path[0] == '\0') {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "nowhere to keep the token: set HOME or XDG_CONFIG_HOME, or use "
                         "--token-file FILE");
    }
    struct ask a;
    ask_open(&a, r);
    char staff[KYUFU_CLIENT_ACTOR_BYTES_MAX + 2] = "";
    char pw[PW_LEN] = "", new_pw[PW_LEN] = "", code[16] = "";
    Kyufu__V1__SignInResponse *s = NULL;
    const char *next = NULL;
    if (o->staff_id != NULL) {
        snprintf(staff, sizeof staff, "%s", o->staff_id);
    } else if (a.tty < 0) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "no terminal to ask on: use --staff-id ID");
        goto out;
    } else if (ctl__tty_ask(a.tty, "Staff ID: ", false, staff, sizeof staff) != 0) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "no staff id given");
        goto out;
    }
    if (!staff_id_ok(staff)) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                       "a staff id is 1..%u of a-z 0-9 . _ -", KYUFU_CLIENT_ACTOR_BYTES_MAX);
        goto out;
    }
    rv = get_password(&a, o->password_file, "Password: ", "--password-file", pw);
    if (rv == 0) {
        rv = get_code(&a, o->totp,
                      "TOTP code (empty if you have no second factor yet): ", true, code,
                      sizeof code);
    }
    if (rv == 0) {
        rv = sign_in(r, staff, pw, code, &s);
    }
    if (rv != 0 || !s->setup_only) {
        goto out;
    }

    /* A setup-only session: lead the person through what it needs. */
    if (s->must_change_password) {
        if (o->new_password_file == NULL && a.tty < 0) {
            next = "change the temporary password: kyufuctl passwd --old-password-file FILE "
                   "--new-password-file FILE";
            goto out;
        }
        if (a.tty >= 0) {
            ctl__tty_say(a.tty, "Your password is temporary or has expired: choose a new one.\n");
        }
        for (unsigned i = 0;; i++) {
            rv = get_new_password(&a, o->new_password_file, new_pw);
            if (rv != 0) {
                goto out;
            }
            rv = change_password(r, pw, new_pw);
            if (rv == 0 || a.tty < 0 || o->new_password_file != NULL ||
                rv != KYUFU_CTL_EXIT_REJECTED || i + 1 == KYUFU_CTL_ASK_TRIES) {
                break;
            }
            ctl__tty_say(a.tty, "Try another one.\n");
        }
        if (rv != 0) {
            goto out;
        }
        memcpy(pw, new_pw, sizeof pw);
        bool needs_code = !s->totp_enrollment_required;
        kyufu_client_response_free(&s->base);
        s = NULL;
        if (needs_code && a.tty < 0) {
            /* An expired password with a second factor: the code given
             * was used up by this sign-in; a script signs in anew. */
            next = "sign in with the new password: kyufuctl login --totp CODE";
            if (r->json) {
                rv = ctl__emit_json(r, json_pack("{s:b,s:s}", "password_changed", 1, "next",
                                                 next));
            } else {
                fprintf(r->out, "password changed; every session was closed\nnext: %s\n", next);
            }
            goto out;
        }
        if (needs_code) {
            rv = get_code(&a, NULL, "Password changed.  The NEXT code from your app: ", false,
                          code, sizeof code);
        } else {
            code[0] = '\0';
        }
        if (rv == 0) {
            rv = sign_in(r, staff, pw, code, &s);
        }
        if (rv != 0 || !s->setup_only) {
            goto out;
        }
    }
    if (s->totp_enrollment_required) {
        if (a.tty < 0) {
            next = "enroll the second factor: kyufuctl totp enroll, then kyufuctl totp "
                   "confirm --code CODE, then kyufuctl login";
            goto out;
        }
        bool confirmed = false;
        rv = enroll(&a, NULL, &confirmed);
        if (rv != 0) {
            goto out;
        }
        kyufu_client_response_free(&s->base);
        s = NULL;
        rv = get_code(&a, NULL,
                      "Confirmed.  Now sign in: wait for the NEXT code and type it: ", false,
                      code, sizeof code);
        if (rv == 0) {
            rv = sign_in(r, staff, pw, code, &s);
        }
    }
out:
    if (rv == 0 && s != NULL) {
        rv = print_signed_in(r, s, next);
    }
    kyufu_client_response_free(s != NULL ? &s->base : NULL);
    OPENSSL_cleanse(pw, sizeof pw);
    OPENSSL_cleanse(new_pw, sizeof new_pw);
    ask_close(&a);
    return rv;
}

static int cmd_logout(struct ctl__run *r)
{
    struct kyufu_client *c;
    int rv = ctl__client(r, &c);
    if (rv != 0) {
        return rv;
    }
    if (!kyufu_client_has_token(c)) {
        fprintf(r->out, "not signed in (no token in %s)\n",
                r->token_path[0] != '\0' ? r->token_path : "any file");
        return 0;
    }
    Kyufu__V1__SignOutRequest req = KYUFU__V1__SIGN_OUT_REQUEST__INIT;
    struct kyufu_client_call_opts opts = { .deadline_ms = auth_deadline(r), .endpoint = -1 };
    struct kyufu_client_result res;
    int crv = kyufu_client_call(c, "SignOut", &req.base, NULL, &opts, &res);
    kyufu_client_response_free(res.response);
    bool ended = crv == 0 && (res.grpc_status == KYUFU_GRPC_OK ||
                              res.grpc_status == KYUFU_GRPC_UNAUTHENTICATED);
    if (!ended) {
        /* The session is still open on the cluster: keep the file so a
         * later logout can close it. */
        return ctl__call_exit(r, crv, &res);
    }
    if (r->token_from_env) {
        fprintf(r->out, "signed out (the session of KYUFU_TOKEN is closed)\n");
        return 0;
    }
    forget_token(r);
    fprintf(r->out, "signed out%s; %s deleted\n",
            res.grpc_status == KYUFU_GRPC_OK ? "" : " (the session had already ended)",
            r->token_path);
    return 0;
}

static int cmd_whoami(struct ctl__run *r)
{
    Kyufu__V1__WhoAmIRequest req = KYUFU__V1__WHO_AM_IREQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    int rv = call(r, "WhoAmI", &req.base, &resp);
    if (rv != 0) {
        return rv;
    }
    if (r->json) {
        rv = ctl__emit_json(r, kyufu_ctl_to_json(resp));
    } else {
        kyufu_ctl_print_record(r->out, resp, 0);
        fprintf(r->out, "token from: %s\n", r->token_from_env ? "KYUFU_TOKEN" : r->token_path);
    }
    kyufu_client_response_free(resp);
    return rv;
}

static int cmd_passwd(struct ctl__run *r, const struct auth_args *o)
{
    struct kyufu_client *c;
    int rv = ctl__client(r, &c);
    if (rv != 0) {
        return rv;
    }
    struct ask a;
    ask_open(&a, r);
    char old_pw[PW_LEN] = "", new_pw[PW_LEN] = "";
    rv = get_password(&a, o->old_password_file, "Current password: ", "--old-password-file",
                      old_pw);
    if (rv == 0) {
        rv = get_new_password(&a, o->new_password_file, new_pw);
    }
    if (rv == 0) {
        rv = change_password(r, old_pw, new_pw);
    }
    if (rv == 0) {
        fprintf(r->out, "password changed; every session of yours was closed: sign in again "
                        "(kyufuctl login)\n");
    }
    OPENSSL_cleanse(old_pw, sizeof old_pw);
    OPENSSL_cleanse(new_pw, sizeof new_pw);
    ask_close(&a);
    return rv;
}

static int cmd_totp(struct ctl__run *r, const char *verb, const struct auth_args *o)
{
    struct ask a;
    ask_open(&a, r);
    int rv;
    if (strcmp(verb, "enroll") == 0) {
        bool confirmed = false;
        if (r->json && o->code == NULL) {
            ask_close(&a); /* one JSON document: the secret; confirm apart */
        }
        rv = enroll(&a, o->code, &confirmed);
        if (rv == 0 && confirmed && !r->json) {
            fprintf(r->out, "second factor confirmed: sign in with it (kyufuctl login)\n");
        } else if (rv == 0 && !confirmed && !r->json) {
            fprintf(r->out, "next: kyufuctl totp confirm --code CODE (the code the app "
                            "shows now)\n");
        }
    } else {
        char code[16];
        rv = get_code(&a, o->code, "Code shown by the app: ", false, code, sizeof code);
        if (rv == 0) {
            Kyufu__V1__ConfirmTotpRequest req = KYUFU__V1__CONFIRM_TOTP_REQUEST__INIT;
            req.totp_code = code;
            ProtobufCMessage *resp = NULL;
            rv = call(r, "ConfirmTotp", &req.base, &resp);
            kyufu_client_response_free(resp);
        }
        if (rv == 0) {
            if (r->json) {
                rv = ctl__emit_json(r, json_pack("{s:b}", "confirmed", 1));
            } else {
                fprintf(r->out, "second factor confirmed: sign in with it (kyufuctl login)\n");
            }
        }
    }
    ask_close(&a);
    return rv;
}

static void print_result(struct ctl__run *r, const Kyufu__V1__CommandResult *res)
{
    if (res == NULL) {
        fprintf(r->out, "ok\n");
        return;
    }
    if (res->code != 0) {
        fprintf(r->out, "rejected %s: %s (audit seq %llu)\n",
                kyufu_grpc_status_name((int)res->code), res->message,
                (unsigned long long)res->audit_seq);
        return;
    }
    fprintf(r->out, "ok: %s (raft index %llu, audit seq %llu)\n", res->object,
            (unsigned long long)res->raft_index, (unsigned long long)res->audit_seq);
}

/* The ID administrator's account commands. */
static int cmd_staff(struct ctl__run *r, const char *verb, const char *id)
{
    ProtobufCMessage *resp = NULL;
    int rv;
    const Kyufu__V1__CommandResult *result = NULL;
    if (strcmp(verb, "reset-password") == 0) {
        Kyufu__V1__ResetPasswordRequest req = KYUFU__V1__RESET_PASSWORD_REQUEST__INIT;
        req.staff_id = (char *)id;
        rv = call(r, "ResetPassword", &req.base, &resp);
        if (rv == 0) {
            Kyufu__V1__ResetPasswordResponse *p = (void *)resp;
            result = p->result;
            if (r->json) {
                rv = ctl__emit_json(r, kyufu_ctl_to_json(resp));
            } else {
                print_result(r, result);
                if (p->temporary_password[0] != '\0') {
                    fprintf(r->out,
                            "temporary password for %s (shown once; hand it to the person, "
                            "who must change it at first sign-in):\n  %s\n",
                            id, p->temporary_password);
                }
            }
            OPENSSL_cleanse(p->temporary_password, strlen(p->temporary_password));
        }
    } else if (strcmp(verb, "unlock") == 0 || strcmp(verb, "reset-totp") == 0) {
        bool unlock = verb[0] == 'u';
        Kyufu__V1__UnlockStaffRequest ureq = KYUFU__V1__UNLOCK_STAFF_REQUEST__INIT;
        Kyufu__V1__UnlockStaff ucmd = KYUFU__V1__UNLOCK_STAFF__INIT;
        Kyufu__V1__ResetTotpRequest treq = KYUFU__V1__RESET_TOTP_REQUEST__INIT;
        Kyufu__V1__ResetTotp tcmd = KYUFU__V1__RESET_TOTP__INIT;
        ucmd.staff_id = tcmd.staff_id = (char *)id;
        ureq.command = &ucmd;
        treq.command = &tcmd;
        rv = unlock ? call(r, "UnlockStaff", &ureq.base, &resp)
                    : call(r, "ResetTotp", &treq.base, &resp);
        if (rv == 0) {
            result = ((Kyufu__V1__WriteResponse *)(void *)resp)->result;
        }
    } else {
        Kyufu__V1__SetStaffStatusRequest req = KYUFU__V1__SET_STAFF_STATUS_REQUEST__INIT;
        Kyufu__V1__SetStaffStatus cmd = KYUFU__V1__SET_STAFF_STATUS__INIT;
        cmd.staff_id = (char *)id;
        cmd.status = strcmp(verb, "suspend") == 0   ? KYUFU__V1__STAFF_STATUS__STAFF_SUSPENDED
                     : strcmp(verb, "disable") == 0 ? KYUFU__V1__STAFF_STATUS__STAFF_DISABLED
                                                    : KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE;
        req.command = &cmd;
        rv = call(r, "SetStaffStatus", &req.base, &resp);
        if (rv == 0) {
            result = ((Kyufu__V1__WriteResponse *)(void *)resp)->result;
        }
    }
    if (rv == 0 && resp->descriptor != &kyufu__v1__reset_password_response__descriptor) {
        if (r->json) {
            rv = ctl__emit_json(r, kyufu_ctl_to_json(resp));
        } else {
            print_result(r, result);
        }
    }
    /* A ledger rejection inside an OK answer is a rejection. */
    if (rv == 0 && result != NULL && result->code != 0) {
        rv = KYUFU_CTL_EXIT_REJECTED;
    }
    kyufu_client_response_free(resp);
    return rv;
}

/* ------------------------------------------------------------ dispatch */

struct auth_cmd
{
    const char *noun;
    const char *verb;
    const char *usage;
    const char *role;
    const char *help;
};

static const struct auth_cmd cmds[] = {
    { "login", "", "[--staff-id ID] [--password-file FILE] [--totp CODE] "
                   "[--new-password-file FILE]",
      "any account (Auth.SignIn)",
      "Sign in and keep the session token in the token file (0600).  On a terminal it\n"
      "asks for what the options do not give (the password without echo) and leads a\n"
      "first sign-in through its setup: new password (typed twice), TOTP enrollment\n"
      "(secret and QR code shown once), a code to confirm, then the real sign-in.\n"
      "--password-file FILE   the password: the file's first line ('-': stdin)\n"
      "--totp CODE            the 6-digit code (empty or absent: no second factor yet)\n"
      "--new-password-file F  a temporary or expired password is changed to this one\n" },
    { "logout", "", "", "any signed-in account (Auth.SignOut)",
      "Close the session on the cluster and delete the token file.\n" },
    { "whoami", "", "", "any signed-in account (Auth.WhoAmI)",
      "The session's account, roles, terminal and expiry times.\n" },
    { "passwd", "", "[--old-password-file FILE --new-password-file FILE]",
      "any signed-in account (Auth.ChangePassword)",
      "Change your password (asked without echo, the new one twice).  Every session of\n"
      "yours closes, this one too: sign in again.\n" },
    { "totp", "enroll", "[--code CODE]", "any signed-in account (Auth.EnrollTotp)",
      "A new TOTP secret for your authenticator app, shown once as text and as a QR\n"
      "code; on a terminal it then asks a code to confirm it (else: totp confirm).\n"
      "--json prints {secret_base32, otpauth_uri} for scripts.\n" },
    { "totp", "confirm", "--code CODE", "any signed-in account (Auth.ConfirmTotp)",
      "Confirm the enrolled secret with a code it produced.\n" },
    { "staff", "reset-password", "ID", "id_admin (Auth.ResetPassword)",
      "A new temporary password for ID, shown once; the account's sessions close.\n" },
    { "staff", "unlock", "ID", "id_admin (Auth.UnlockStaff)",
      "Clear ID's lockout after too many failed sign-ins.\n" },
    { "staff", "reset-totp", "ID", "id_admin (Auth.ResetTotp)",
      "Clear ID's TOTP secret (a lost phone): the next sign-in enrolls a new one.\n" },
    { "staff", "suspend", "ID", "id_admin (Ledger.SetStaffStatus)",
      "Suspend ID: its sessions close, it cannot sign in until reinstated.\n" },
    { "staff", "reinstate", "ID", "id_admin (Ledger.SetStaffStatus)",
      "Make a suspended account active again.\n" },
    { "staff", "disable", "ID", "id_admin (Ledger.SetStaffStatus)",
      "Disable ID for good (its sessions close; purged after the retention period).\n" },
};
#define N_CMDS (sizeof cmds / sizeof cmds[0])

void ctl__auth_usage(FILE *out)
{
    for (size_t i = 0; i < N_CMDS; i++) {
        fprintf(out, "  %s%s%s %s\n", cmds[i].noun, cmds[i].verb[0] != '\0' ? " " : "",
                cmds[i].verb, cmds[i].usage);
    }
}

int ctl__auth(struct ctl__run *r, const char *noun, const char *verb, int argc, char **argv)
{
    const struct auth_cmd *cmd = NULL;
    for (size_t i = 0; i < N_CMDS; i++) {
        if (strcmp(cmds[i].noun, noun) == 0 && strcmp(cmds[i].verb, verb) == 0) {
            cmd = &cmds[i];
        }
    }
    if (cmd == NULL) {
        return -1;
    }
    struct option opts[CTL__COMMON_OPTS_N + 8];
    memcpy(opts, ctl__common_opts, sizeof ctl__common_opts);
    unsigned n = CTL__COMMON_OPTS_N;
    bool is_login = strcmp(noun, "login") == 0;
    bool is_passwd = strcmp(noun, "passwd") == 0;
    bool is_totp = strcmp(noun, "totp") == 0;
    if (is_login) {
        opts[n++] = (struct option){ "staff-id", required_argument, NULL, OPT_STAFF_ID };
        opts[n++] = (struct option){ "password-file", required_argument, NULL, OPT_PASSWORD_FILE };
        opts[n++] = (struct option){ "totp", required_argument, NULL, OPT_TOTP };
    }
    if (is_login || is_passwd) {
        opts[n++] = (struct option){ "new-password-file", required_argument, NULL,
                                     OPT_NEW_PASSWORD_FILE };
    }
    if (is_passwd) {
        opts[n++] = (struct option){ "old-password-file", required_argument, NULL,
                                     OPT_OLD_PASSWORD_FILE };
    }
    if (is_totp) {
        opts[n++] = (struct option){ "code", required_argument, NULL, OPT_CODE };
    }
    if (strcmp(noun, "staff") == 0) {
        opts[n++] = (struct option){ "staff-id", required_argument, NULL, OPT_STAFF_ID };
    }
    opts[n++] = (struct option){ "help", no_argument, NULL, OPT_HELP_A };
    opts[n] = (struct option){ 0 };
    assert(n < sizeof opts / sizeof opts[0]);

    struct auth_args o = { 0 };
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case OPT_HELP_A:
            fprintf(r->out, "usage: kyufuctl [common options] %s%s%s %s\n\n%s\nrole needed: %s\n",
                    noun, verb[0] != '\0' ? " " : "", verb, cmd->usage, cmd->help, cmd->role);
            return 0;
        case OPT_STAFF_ID:
            o.staff_id = optarg;
            break;
        case OPT_PASSWORD_FILE:
            o.password_file = optarg;
            break;
        case OPT_NEW_PASSWORD_FILE:
            o.new_password_file = optarg;
            break;
        case OPT_OLD_PASSWORD_FILE:
            o.old_password_file = optarg;
            break;
        case OPT_TOTP:
            o.totp = optarg;
            break;
        case OPT_CODE:
            o.code = optarg;
            break;
        case '?':
        case ':':
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "%s%s%s: unknown option or missing value in '%s'", noun,
                             verb[0] != '\0' ? " " : "", verb, argv[optind - 1]);
        default: {
            int rv = ctl__common_opt(r, c, optarg);
            if (rv != 0) {
                return rv;
            }
        }
        }
    }
    bool is_staff = strcmp(noun, "staff") == 0;
    if (is_staff && optind < argc && o.staff_id == NULL) {
        o.positional = argv[optind++];
    }
    if (optind < argc) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s%s%s: unexpected argument '%s'", noun,
                         verb[0] != '\0' ? " " : "", verb, argv[optind]);
    }
    if (o.totp != NULL && o.totp[0] != '\0' && !totp_ok(o.totp)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--totp: a code of %u digits",
                         KYUFU_CTL_TOTP_DIGITS);
    }
    if (o.code != NULL && !totp_ok(o.code)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--code: a code of %u digits",
                         KYUFU_CTL_TOTP_DIGITS);
    }
    if (o.staff_id != NULL && !staff_id_ok(o.staff_id)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--staff-id: 1..%u of a-z 0-9 . _ -",
                         KYUFU_CLIENT_ACTOR_BYTES_MAX);
    }
    if (is_passwd && (o.old_password_file == NULL) != (o.new_password_file == NULL)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "passwd: --old-password-file and --new-password-file go together");
    }
    if (is_staff) {
        const char *id = o.staff_id != NULL ? o.staff_id : o.positional;
        if (id == NULL || !staff_id_ok(id)) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "staff %s: the account (ID or --staff-id ID: 1..%u of a-z 0-9 . "
                             "_ -)", verb, KYUFU_CLIENT_ACTOR_BYTES_MAX);
        }
        return cmd_staff(r, verb, id);
    }
    if (is_login) {
        return cmd_login(r, &o);
    }
    if (strcmp(noun, "logout") == 0) {
        return cmd_logout(r);
    }
    if (strcmp(noun, "whoami") == 0) {
        return cmd_whoami(r);
    }
    if (is_passwd) {
        return cmd_passwd(r, &o);
    }
    return cmd_totp(r, verb, &o);
}
