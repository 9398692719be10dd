#include "tests/support/tls_certs.h"

#include <cstdlib>

#include "tests/support/test_env.h"

namespace edgespool::testing {

namespace {

// `openssl ca` rather than `openssl x509 -req`: only `ca` takes an explicit
// -startdate/-enddate (OpenSSL 3.0 has no x509 -not_before), which is how the
// expired certificate gets a validity window entirely in the past.
constexpr const char* kCaConfig = R"([ ca ]
default_ca = testca
[ testca ]
dir = .
database = index.txt
new_certs_dir = newcerts
serial = serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ server_localhost ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[ server_other ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
extendedKeyUsage = serverAuth
subjectAltName = DNS:other.example
[ client ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
extendedKeyUsage = clientAuth
)";

constexpr const char* kScript = R"(set -e
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
mkdir -p newcerts
: > index.txt
echo 1000 > serial
key ca.key
openssl req -config ca.cnf -x509 -new -key ca.key -subj "/CN=edgespool test CA" -days 3650 \
  -extensions v3_ca -out ca.pem
key other_ca.key
openssl req -config ca.cnf -x509 -new -key other_ca.key -subj "/CN=unrelated test CA" \
  -days 3650 -extensions v3_ca -out other_ca.pem
leaf() {  # name CN extensions [extra openssl ca args]
  name=$1; cn=$2; ext=$3; shift 3
  key "$name.key"
  openssl req -config ca.cnf -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
  openssl ca -config ca.cnf -batch -notext -cert ca.pem -keyfile ca.key -in "$name.csr" \
    -out "$name.pem" -extensions "$ext" "$@"
}
leaf server localhost server_localhost -days 365
leaf other other.example server_other -days 365
leaf expired localhost server_localhost -startdate 20200101000000Z -enddate 20210101000000Z
leaf client edgespool-client client -days 365
)";

}  // namespace

bool TlsCerts::Generate(const std::string& dir, TlsCerts* out, std::string* error) {
  WriteFile(dir + "/ca.cnf", kCaConfig);
  WriteFile(dir + "/gen.sh", kScript);
  std::string log = dir + "/gen.log";
  std::string cmd = "cd '" + dir + "' && sh gen.sh > '" + log + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    if (error) *error = "openssl failed: " + ReadFile(log);
    return false;
  }
  out->dir = dir;
  auto f = [&dir](const char* name) { return dir + "/" + name; };
  out->ca_cert = f("ca.pem");
  out->ca_key = f("ca.key");
  out->server_cert = f("server.pem");
  out->server_key = f("server.key");
  out->other_cert = f("other.pem");
  out->other_key = f("other.key");
  out->expired_cert = f("expired.pem");
  out->expired_key = f("expired.key");
  out->client_cert = f("client.pem");
  out->client_key = f("client.key");
  out->other_ca_cert = f("other_ca.pem");
  out->other_ca_key = f("other_ca.key");
  return true;
}

}  // namespace edgespool::testing
