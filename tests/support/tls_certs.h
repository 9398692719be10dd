// TLS test fixtures: a throwaway PKI made with the openssl CLI in a directory
// the test owns (normally a TempDir). EC P-256 keys, so generating the whole
// set takes tens of milliseconds rather than seconds.
//
//   ca            "edgespool test CA"            signs everything below
//   server        CN=localhost, SAN DNS:localhost, IP:127.0.0.1
//   other         CN=other.example, SAN DNS:other.example (signed by ca)
//   expired       CN=localhost, valid 2020-01-01 .. 2021-01-01 (signed by ca,
//                 backdated with `openssl ca -startdate/-enddate`)
//   client        CN=edgespool-client, extendedKeyUsage clientAuth (signed by ca)
//   other_ca      "unrelated test CA": self-signed, signs nothing we use
#pragma once

#include <string>

namespace edgespool::testing {

struct TlsCerts {
  std::string dir;
  std::string ca_cert, ca_key;
  std::string server_cert, server_key;
  std::string other_cert, other_key;
  std::string expired_cert, expired_key;
  std::string client_cert, client_key;
  std::string other_ca_cert, other_ca_key;

  // Writes the set into dir (which must exist). On failure returns false and
  // puts openssl's output into *error.
  static bool Generate(const std::string& dir, TlsCerts* out, std::string* error);
};

}  // namespace edgespool::testing
