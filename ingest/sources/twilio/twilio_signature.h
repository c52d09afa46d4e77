/* twilio_signature.h - X-Twilio-Signature computation and constant-time verification (pure). */
#ifndef CP_TWILIO_SIGNATURE_H
#define CP_TWILIO_SIGNATURE_H

#include <stddef.h>

enum cp_twilio_sig_alg {
    CP_TWILIO_SIG_SHA1 = 0, /* the default: HMAC-SHA1 keyed with the account's auth token */
    CP_TWILIO_SIG_SHA256,   /* "X-Twilio-Webhooks-Signature-Settings: ...algorithm=HMAC_SHA256" */
};

/* base64 of the longest MAC (SHA-256) */
#define CP_TWILIO_SIG_MAX 44

/*
 * The signature Twilio computes for a form POST: base64(HMAC(key, url + the
 * POST parameters sorted by name (then value, byte order), each appended as
 * name followed by value, decoded)).  `url` must be the full URL exactly as
 * Twilio called it (scheme, host, port if any, path, query).  An empty body
 * signs the URL alone (GET).  Writes a NUL-terminated string into out.
 * Returns its length, or CP_ERR_PARSE (body not form-encoded), CP_ERR_INVAL,
 * CP_ERR_NOMEM, CP_ERR_INTERNAL.
 */
int cp_twilio_signature(const char *key, enum cp_twilio_sig_alg alg, const char *url,
                        const char *body, size_t body_len, char out[CP_TWILIO_SIG_MAX + 1]);

/*
 * Verifies the X-Twilio-Signature header in constant time.  Like Twilio's own
 * validators, a URL that names the scheme's default port (":443", ":80") is
 * also tried without it, and one without a port with it, since proxies
 * differ on whether the port appears.  Returns 0, CP_ERR_AUTH (mismatch or
 * no header) or an error of cp_twilio_signature().
 */
int cp_twilio_signature_check(const char *key, enum cp_twilio_sig_alg alg, const char *url,
                              const char *body, size_t body_len, const char *header);

#endif
