/* Password policy: see password.h. */
#include "password.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>
#include <pwquality.h>

#include "pwhash.h"

/* cracklib (under libpwquality) keeps static state: one check at a time. */
static pthread_mutex_t pwq_lock = PTHREAD_MUTEX_INITIALIZER;

/* Printable ASCII or UTF-8 bytes >= 0x80; no control characters. */
static bool printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) {
            return false;
        }
    }
    return true;
}

/* The display name's words as libpwquality's forbidden words: words of 3
 * or more letters, lower case, blank-separated, into out. */
static void bad_words(const char *display_name, char *out, size_t out_len)
{
    size_t o = 0, start = 0, i;
    size_t n = display_name != NULL ? strlen(display_name) : 0;
    out[0] = '\0';
    for (i = 0; i <= n; i++) {
        unsigned char ch = i < n ? (unsigned char)display_name[i] : ' ';
        bool sep = ch == ' ' || ch == '\t' || ch == '-' || ch == '.' ||
                   ch == ',' || ch == '_';
        if (!sep) {
            continue;
        }
        size_t w = i - start;
        if (w >= 3 && o + w + 2 < out_len) {
            if (o > 0) {
                out[o++] = ' ';
            }
            for (size_t k = 0; k < w; k++) {
                char c = display_name[start + k];
                out[o++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
            }
            out[o] = '\0';
        }
        start = i + 1;
    }
}

/* libpwquality's check of `pw` with the staff id as user name and
 * `words` (blank-separated, may be empty) forbidden: its score (>= 0
 * passes), a negative PWQ_ERROR_* with its message in why, or
 * PWQ_SCORE_SETUP when the checker cannot be set up (message in why). */
#define PWQ_SCORE_SETUP INT_MIN
static int pwq_check(const char *pw,
                     const char *staff_id,
                     const char *words,
                     char *why,
                     size_t why_len)
{
    pwquality_settings_t *pwq = pwquality_default_settings();
    if (pwq == NULL) {
        snprintf(why, why_len, "out of memory");
        return PWQ_SCORE_SETUP;
    }
    int score = PWQ_SCORE_SETUP;
    /* Our own minimum is checked before; libpwquality's is its lowest. */
    if (pwquality_set_int_value(pwq, PWQ_SETTING_MIN_LENGTH, 6) != 0 ||
        pwquality_set_int_value(pwq, PWQ_SETTING_USER_CHECK, 1) != 0 ||
        pwquality_set_int_value(pwq, PWQ_SETTING_DICT_CHECK, 1) != 0 ||
        pwquality_set_int_value(pwq, PWQ_SETTING_USER_SUBSTR, 4) != 0 ||
        (words[0] != '\0' &&
         pwquality_set_str_value(pwq, PWQ_SETTING_BAD_WORDS, words) != 0)) {
        snprintf(why, why_len, "the password checker cannot be set up");
        goto out;
    }
    void *aux = NULL;
    pthread_mutex_lock(&pwq_lock);
    score = pwquality_check(pwq, pw, NULL, staff_id, &aux);
    pthread_mutex_unlock(&pwq_lock);
    if (score < 0) {
        char buf[PWQ_MAX_ERROR_MESSAGE_LEN];
        snprintf(why, why_len, "%s",
                 pwquality_strerror(buf, sizeof buf, score, aux));
    }
out:
    pwquality_free_settings(pwq);
    return score;
}

int kyufu_node__password_policy(const char *password,
                                size_t len,
                                unsigned min_length,
                                const char *staff_id,
                                const char *display_name,
                                char *why,
                                size_t why_len)
{
    assert(password != NULL && why != NULL && why_len > 0);
    if (len < min_length) {
        snprintf(why, why_len,
                 "the new password is too short: at least %u characters",
                 min_length);
        return -1;
    }
    if (len > KYUFU_PASSWORD_BYTES_MAX) {
        snprintf(why, why_len,
                 "the new password is too long: at most %u bytes",
                 KYUFU_PASSWORD_BYTES_MAX);
        return -1;
    }
    if (!printable(password, len) || memchr(password, '\0', len) != NULL) {
        snprintf(why, why_len,
                 "the new password contains a control character");
        return -1;
    }
    char pw[KYUFU_PASSWORD_BYTES_MAX + 1];
    memcpy(pw, password, len);
    pw[len] = '\0';
    char words[256];
    bad_words(display_name, words, sizeof words);

    int score = pwq_check(pw, staff_id, words, why, why_len);
    OPENSSL_cleanse(pw, sizeof pw);
    if (score == PWQ_SCORE_SETUP) {
        return -1;
    }
    if (score < 0) {
        /* why holds libpwquality's message: it names the rule, never the
         * password. */
        char m[PWQ_MAX_ERROR_MESSAGE_LEN];
        snprintf(m, sizeof m, "%s", why);
        snprintf(why, why_len, "the new password is refused: %s", m);
        return -1;
    }
    return 0;
}

int kyufu_node__password_checker_ready(char *why, size_t why_len)
{
    /* A password no rule refuses: only a checker that cannot run (its
     * dictionary missing or unreadable) fails it. */
    static const char probe[] = "kyufu-Probe-7qWz-4Xv9-mTr2";
    int score = pwq_check(probe, "staff", "", why, why_len);
    if (score == PWQ_SCORE_SETUP) {
        return -1;
    }
    if (score < 0) {
        char m[PWQ_MAX_ERROR_MESSAGE_LEN];
        snprintf(m, sizeof m, "%s", why);
        snprintf(why, why_len,
                 "the password checker does not work (%s): is Debian's "
                 "cracklib-runtime installed (its dictionary in "
                 "/var/cache/cracklib)?", m);
        return -1;
    }
    return 0;
}

bool kyufu_node__password_matches(const char *password,
                                  size_t len,
                                  const Kyufu__V1__PasswordHash *h)
{
    if (h == NULL) {
        return false;
    }
    return kyufu_pwhash_check(password, len, h->iterations, h->salt.data,
                              h->salt.len, h->hash.data, h->hash.len);
}

bool kyufu_node__password_reused(const char *password,
                                 size_t len,
                                 const Kyufu__V1__PasswordHash *current,
                                 Kyufu__V1__PasswordHash *const *previous,
                                 size_t n_previous,
                                 unsigned history)
{
    bool reused = kyufu_node__password_matches(password, len, current);
    for (size_t i = 0; i < n_previous && i < history && !reused; i++) {
        reused = kyufu_node__password_matches(password, len, previous[i]);
    }
    return reused;
}

