/* Password policy: see password.h. */
#include "password.h"

#include <assert.h>
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

    int rv = -1;
    pwquality_settings_t *pwq = pwquality_default_settings();
    if (pwq == NULL) {
        snprintf(why, why_len, "out of memory");
        goto out;
    }
    /* Our own minimum is checked above; libpwquality's is its lowest. */
    if (pwquality_set_int_value(pwq, PWQ_SETTING_MIN_LENGTH, 6) != 0 ||
        pwquality_set_int_value(pwq, PWQ_SETTING_USER_CHECK, 1) != 0 ||
        pwquality_set_int_value(pwq, PWQ_SETTING_DICT_CHECK, 1) != 0 ||
        pwquality_set_int_value(pwq, PWQ_SETTING_USER_SUBSTR, 4) != 0 ||
        (words[0] != '\0' &&
         pwquality_set_str_value(pwq, PWQ_SETTING_BAD_WORDS, words) != 0)) {
        snprintf(why, why_len, "the password checker cannot be set up");
        goto out_free;
    }
    void *aux = NULL;
    pthread_mutex_lock(&pwq_lock);
    int score = pwquality_check(pwq, pw, NULL, staff_id, &aux);
    pthread_mutex_unlock(&pwq_lock);
    if (score < 0) {
        char buf[PWQ_MAX_ERROR_MESSAGE_LEN];
        /* libpwquality's messages name the rule, never the password. */
        const char *m = pwquality_strerror(buf, sizeof buf, score, aux);
        snprintf(why, why_len, "the new password is refused: %s", m);
        goto out_free;
    }
    rv = 0;
out_free:
    pwquality_free_settings(pwq);
out:
    OPENSSL_cleanse(pw, sizeof pw);
    return rv;
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

