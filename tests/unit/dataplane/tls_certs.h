/*
 * tls_certs.h - throwaway PKI for TLS unit tests, made with OpenSSL's C
 * API into a directory: two CAs (EC P-256, self-signed, CA:TRUE) and a
 * server certificate for one DNS name signed by the first CA.
 *
 *   <dir>/ca.crt     CA that signed srv.crt (trust this: verify passes)
 *   <dir>/ca2.crt    unrelated CA (trust only this: "unable to get
 *                    local issuer certificate")
 *   <dir>/srv.crt    leaf: CN and SAN DNS:<name>, CA:FALSE, serverAuth
 *   <dir>/srv.key    its private key (PEM, unencrypted)
 *
 * Returns 0, or -1 with OpenSSL's reason on stderr.
 */
#ifndef TLS_CERTS_H
#define TLS_CERTS_H

int tls_certs_make(const char *dir, const char *name);

#endif
