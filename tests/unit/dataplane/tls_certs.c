/*
 * tls_certs.c - throwaway CA and server certificate for tests (contract:
 * tls_certs.h). Validity: one hour ago to one day ahead.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls_certs.h"

/* add_ext - one v3 extension from its config text */
static int add_ext(X509 *x, X509 *issuer, int nid, const char *val)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, nid, val);
	if (!e)
		return 0;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok;
}

/* cert_new - certificate for key k named cn, signed by ik (issuer cert
 * ic; NULL: self-signed) */
static X509 *cert_new(EVP_PKEY *k, const char *cn, long serial, X509 *ic,
		      EVP_PKEY *ik, int ca, const char *dns)
{
	X509 *x = X509_new();
	X509_NAME *nm;
	char san[300];

	if (!x)
		return NULL;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, ic ? X509_get_subject_name(ic) : nm);
	if (!add_ext(x, ic ? ic : x, NID_basic_constraints,
		     ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
	    !add_ext(x, ic ? ic : x, NID_key_usage, ca ?
		     "critical,keyCertSign,cRLSign" :
		     "critical,digitalSignature") ||
	    !add_ext(x, ic ? ic : x, NID_subject_key_identifier, "hash"))
		goto fail;
	if (ic && !add_ext(x, ic, NID_authority_key_identifier, "keyid:always"))
		goto fail;
	if (dns) {
		snprintf(san, sizeof(san), "DNS:%s", dns);
		if (!add_ext(x, ic, NID_subject_alt_name, san) ||
		    !add_ext(x, ic, NID_ext_key_usage, "serverAuth"))
			goto fail;
	}
	if (X509_sign(x, ik ? ik : k, EVP_sha256()) <= 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

static int write_pem(const char *dir, const char *file, X509 *x,
		     EVP_PKEY *k)
{
	char path[512];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "w");
	if (!f)
		return 0;
	ok = x ? PEM_write_X509(f, x)
	       : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	return fclose(f) == 0 && ok;
}

int tls_certs_make(const char *dir, const char *name)
{
	EVP_PKEY *ck = EVP_EC_gen("P-256"), *c2k = EVP_EC_gen("P-256");
	EVP_PKEY *sk = EVP_EC_gen("P-256");
	X509 *ca = NULL, *ca2 = NULL, *srv = NULL;
	int rc = -1;

	if (!ck || !c2k || !sk)
		goto out;
	ca = cert_new(ck, "sluice test CA", 1, NULL, NULL, 1, NULL);
	ca2 = cert_new(c2k, "sluice other CA", 2, NULL, NULL, 1, NULL);
	if (!ca || !ca2)
		goto out;
	srv = cert_new(sk, name, 3, ca, ck, 0, name);
	if (!srv)
		goto out;
	if (write_pem(dir, "ca.crt", ca, NULL) &&
	    write_pem(dir, "ca2.crt", ca2, NULL) &&
	    write_pem(dir, "srv.crt", srv, NULL) &&
	    write_pem(dir, "srv.key", NULL, sk))
		rc = 0;
out:
	if (rc < 0)
		ERR_print_errors_fp(stderr);
	X509_free(ca);
	X509_free(ca2);
	X509_free(srv);
	EVP_PKEY_free(ck);
	EVP_PKEY_free(c2k);
	EVP_PKEY_free(sk);
	return rc;
}
