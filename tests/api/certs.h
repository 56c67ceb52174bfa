/* Throwaway PKI for TLS tests, made with OpenSSL's C API: EC P-256 keys,
 * fixed validity 2020..2099 (no clock read here). */
#ifndef KYUFU_TESTS_API_CERTS_H
#define KYUFU_TESTS_API_CERTS_H

/* Writes into dir: ca.pem, server.pem, server.key (SAN IP 127.0.0.1 and DNS
 * localhost), client.pem, client.key (CN kyufu-client), other-ca.pem,
 * other-client.pem, other-client.key (a client from an unrelated CA).
 * Returns 0 or -1. */
int t_certs_make(const char *dir);

/* Writes into dir: node-ca.pem (a CA of its own) and node1..nodeN .pem/.key:
 * Raft node certificates (SAN IP 127.0.0.1 and URI urn:kyufu:node:I, EKU
 * serverAuth + clientAuth).  Returns 0 or -1. */
int t_certs_make_nodes(const char *dir, unsigned n);

#endif
