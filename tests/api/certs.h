/* Throwaway PKI for TLS tests, made with OpenSSL's C API: EC P-256 keys,
 * fixed validity 2020..2099 (no clock read here). */
#ifndef KYUFU_TESTS_API_CERTS_H
#define KYUFU_TESTS_API_CERTS_H

#include <stddef.h>

/* Writes into dir: ca.pem, ca.key, server.pem, server.key (SAN IP 127.0.0.1
 * and DNS localhost), client.pem, client.key (CN kyufu-client, serial 3),
 * client2.pem, client2.key (CN kyufu-client-2, serial 4), other-ca.pem,
 * other-ca.key, other-client.pem, other-client.key (a client from an
 * unrelated CA).  Keys 0600.  Returns 0 or -1. */
int t_certs_make(const char *dir);

/* Writes dir/file: a PEM CRL signed by `issuer` ("ca" or "other-ca", read
 * from dir) revoking the n serials, lastUpdate 2020-01-01, nextUpdate
 * next_update ("YYYYMMDDHHMMSSZ"; one in the past makes it expired).
 * Returns 0 or -1. */
int t_certs_crl(const char *dir, const char *file, const char *issuer, const long *serials,
                size_t n, const char *next_update);

/* Writes into dir: node-ca.pem and node-ca.key (a CA of its own: t_certs_crl
 * with issuer "node-ca") and node1..nodeN .pem/.key: Raft node certificates
 * (serial 10 + I, SAN IP 127.0.0.1 and URI urn:kyufu:node:I, EKU serverAuth
 * + clientAuth).  Returns 0 or -1. */
int t_certs_make_nodes(const char *dir, unsigned n);

/* Two node certificates in a new folder `dir` (made 0700): their CA and
 * node1/node2 certificates and keys (t_certs_make_nodes), paths filled in
 * (cert[1], cert[2]; [0] unused).  t_node_pki_remove deletes the six
 * files and the folder (it must then be empty).  0 or -1. */
struct t_node_pki
{
    char dir[96];
    char ca[128];
    char cert[3][128];
    char key[3][128];
};
int t_node_pki_make(struct t_node_pki *p, const char *dir);
int t_node_pki_remove(const struct t_node_pki *p);

#endif
