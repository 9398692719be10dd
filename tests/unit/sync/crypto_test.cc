// Message-level encryption's building blocks (sync/crypto/): the key file,
// AES-256-GCM against a published vector, tamper detection, the es-enc
// descriptor and nonce uniqueness across restarts.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <set>
#include <string>

#include "sync/crypto/key_ring.h"
#include "sync/crypto/nonce_source.h"
#include "sync/crypto/sealed.h"
#include "tests/support/test_env.h"

namespace edgespool::crypto {
namespace {

std::string Unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string Hex(std::string_view bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

constexpr char kKeyA[] = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
constexpr char kKeyB[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

std::shared_ptr<const KeyRing> Ring(const std::string& text) {
  auto r = KeyRing::Parse(text, "keys");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::make_shared<const KeyRing>(std::move(*r));
}

TEST(KeyRingTest, FirstKeyIsCurrentCommentsAndBlanksIgnored) {
  auto ring = Ring(std::string("# rotated 2026-12\n\nk2\t") + kKeyB + "\n  k1  " + kKeyA + "  \n");
  EXPECT_EQ(ring->current().id, "k2");
  ASSERT_NE(ring->Find("k1"), nullptr);
  EXPECT_EQ(ring->Find("k1")->bytes[0], 0xfe);
  EXPECT_EQ(ring->Find("k3"), nullptr);
  EXPECT_EQ(ring->Ids(), "k2, k1");
}

TEST(KeyRingTest, BadFilesAreClearErrors) {
  struct Case {
    std::string text, fragment;
  } cases[] = {
      {"", "no key"},
      {"# only a comment\n", "no key"},
      {"k1 abcd\n", "keys:1: bad key k1: expected 64 hex digits"},
      {std::string("k1 ") + kKeyA + " extra\n", "nothing after it"},
      {std::string("k/1 ") + kKeyA + "\n", "bad key id"},
      {std::string("k1 ") + std::string(63, 'a') + "g\n", "not hex"},
      {std::string("k1 ") + kKeyA + "\nk1 " + kKeyB + "\n", "keys:2: key id k1 appears twice"},
  };
  for (const auto& c : cases) {
    auto r = KeyRing::Parse(c.text, "keys");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.fragment), std::string::npos) << r.status().ToString();
  }
}

TEST(KeyRingTest, LoadRefusesAFileOthersCanRead) {
  testing::TempDir dir;
  std::string path = dir.File("keys");
  testing::WriteFile(path, std::string("k1 ") + kKeyA + "\n");
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto r = KeyRing::Load(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("mode 0644"), std::string::npos) << r.status().ToString();
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  EXPECT_TRUE(KeyRing::Load(path).ok());
  EXPECT_EQ(KeyRing::Load(dir.File("missing")).status().code(), Code::kNotFound);
}

// The GCM specification's test case 16 (AES-256, 60-byte plaintext, 20
// bytes of associated data), as NIST's CAVP and mbedTLS's self-test use it.
TEST(CipherTest, KnownAnswer) {
  auto ring = Ring(std::string("k ") + kKeyA + "\n");
  Cipher cipher(ring);
  Nonce nonce;
  std::string iv = Unhex("cafebabefacedbaddecaf888");
  std::copy(iv.begin(), iv.end(), nonce.begin());
  std::string aad = Unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  std::string plain = Unhex(
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449"
      "a6b525b16aedf5aa0de657ba637b39");
  std::string p = plain;
  ASSERT_TRUE(cipher.Seal(ring->current(), nonce, aad, &p).ok());
  EXPECT_EQ(Hex(p),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b"
            "1056828838c5f61e6393ba7a0abcc9f662"
            "76fc6ece0f4e1768cddf8853bb2d551b");
  Sealed s{"k", nonce};
  ASSERT_TRUE(cipher.Open(s, aad, &p).ok());
  EXPECT_EQ(p, plain);
}

TEST(CipherTest, TamperingIsDetected) {
  auto ring = Ring(std::string("k2 ") + kKeyB + "\nk1 " + kKeyA + "\n");
  Cipher cipher(ring);
  Sealed s{"k2", {}};
  s.nonce[11] = 7;
  std::string aad = AssociatedData("gw1", "sensors/t", "id-1", 1700000000000);
  std::string sealed = "temperature 21.5";
  ASSERT_TRUE(cipher.Seal(ring->current(), s.nonce, aad, &sealed).ok());
  EXPECT_EQ(sealed.size(), 16u + kTagBytes);

  // Every single-bit flip of the ciphertext or tag fails.
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string t = sealed;
    t[i] ^= 0x01;
    EXPECT_EQ(cipher.Open(s, aad, &t).code(), Code::kCorruption) << i;
  }
  // So does another node, topic, id or time in the associated data...
  for (const std::string& other : {AssociatedData("gw2", "sensors/t", "id-1", 1700000000000),
                                   AssociatedData("gw1", "sensors/u", "id-1", 1700000000000),
                                   AssociatedData("gw1", "sensors/t", "id-2", 1700000000000),
                                   AssociatedData("gw1", "sensors/t", "id-1", 1700000000001)}) {
    std::string t = sealed;
    EXPECT_EQ(cipher.Open(s, other, &t).code(), Code::kCorruption);
  }
  // ...another nonce, the other key under its id, a truncated payload.
  Sealed wrong_nonce = s;
  wrong_nonce.nonce[0] = 1;
  std::string t = sealed;
  EXPECT_EQ(cipher.Open(wrong_nonce, aad, &t).code(), Code::kCorruption);
  Sealed wrong_key = s;
  wrong_key.key_id = "k1";
  t = sealed;
  EXPECT_EQ(cipher.Open(wrong_key, aad, &t).code(), Code::kCorruption);
  t = sealed.substr(0, 10);
  EXPECT_EQ(cipher.Open(s, aad, &t).code(), Code::kCorruption);
  // An unknown key id says which ids it knows.
  Sealed unknown = s;
  unknown.key_id = "k9";
  t = sealed;
  Status st = cipher.Open(unknown, aad, &t);
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.message().find("unknown key id \"k9\" (the key file has k2, k1)"),
            std::string::npos);
  // And the untouched one opens.
  t = sealed;
  ASSERT_TRUE(cipher.Open(s, aad, &t).ok());
  EXPECT_EQ(t, "temperature 21.5");
}

TEST(CipherTest, EmptyPayloadAndResetKeepOldKeys) {
  auto old_ring = Ring(std::string("k1 ") + kKeyA + "\n");
  Cipher cipher(old_ring);
  Sealed s{"k1", {}};
  std::string p;
  ASSERT_TRUE(cipher.Seal(old_ring->current(), s.nonce, "a", &p).ok());
  EXPECT_EQ(p.size(), kTagBytes);
  // Rotation: k2 becomes current, k1 still opens what it sealed.
  cipher.Reset(Ring(std::string("k2 ") + kKeyB + "\nk1 " + kKeyA + "\n"));
  EXPECT_EQ(cipher.keys().current().id, "k2");
  ASSERT_TRUE(cipher.Open(s, "a", &p).ok());
  EXPECT_EQ(p, "");
}

TEST(SealedTest, DescriptorRoundTripsAndRejectsGarbage) {
  Sealed s{"key-2026.12_a", {}};
  for (size_t i = 0; i < kNonceBytes; ++i) s.nonce[i] = static_cast<uint8_t>(i * 17);
  std::string text = FormatSealed(s);
  EXPECT_EQ(text, "aes-256-gcm:key-2026.12_a:00112233445566778899aabb");
  auto back = ParseSealed(text);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->key_id, s.key_id);
  EXPECT_EQ(back->nonce, s.nonce);
  for (const char* bad :
       {"", "aes-128-gcm:k:00112233445566778899aabb", "aes-256-gcm:k:00112233445566778899aa",
        "aes-256-gcm::00112233445566778899aabb", "aes-256-gcm:k/1:00112233445566778899aabb",
        "aes-256-gcm:k:0011223344556677889xaabb", "aes-256-gcm:k"}) {
    EXPECT_FALSE(ParseSealed(bad).ok()) << bad;
  }
}

TEST(NonceSourceTest, UniqueWithinARunAndAcrossRestarts) {
  testing::TempDir dir;
  std::string state = dir.File("journal.db.nonce");
  std::set<Nonce> seen;
  uint32_t last_epoch = 0;
  for (int run = 0; run < 5; ++run) {
    auto src = NonceSource::Open(state);
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    EXPECT_GT((*src)->epoch(), last_epoch);  // persisted before the first nonce
    last_epoch = (*src)->epoch();
    for (int i = 0; i < 1000; ++i) {
      Nonce n;
      ASSERT_TRUE((*src)->Next(&n).ok());
      EXPECT_TRUE(seen.insert(n).second) << "nonce reused in run " << run;
    }
  }
  EXPECT_EQ(seen.size(), 5000u);
  EXPECT_EQ(testing::ReadFile(state), "edgespool-nonce-epoch 5\n");
}

TEST(NonceSourceTest, CounterWrapTakesANewEpoch) {
  testing::TempDir dir;
  auto src = NonceSource::Open(dir.File("n"));
  ASSERT_TRUE(src.ok());
  (*src)->SkipForTest(UINT32_MAX);
  Nonce last, next;
  ASSERT_TRUE((*src)->Next(&last).ok());
  EXPECT_EQ((*src)->epoch(), 1u);
  ASSERT_TRUE((*src)->Next(&next).ok());
  EXPECT_EQ((*src)->epoch(), 2u);
  EXPECT_NE(last, next);
  EXPECT_EQ(testing::ReadFile(dir.File("n")), "edgespool-nonce-epoch 2\n");
  // The counter restarted at 0 under the new epoch.
  EXPECT_EQ(next[8] | next[9] | next[10] | next[11], 0);
  EXPECT_EQ(next[3], 2);
}

TEST(NonceSourceTest, ACorruptStateFileIsRefused) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("n"), "7\n");
  auto src = NonceSource::Open(dir.File("n"));
  ASSERT_FALSE(src.ok());
  EXPECT_EQ(src.status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace edgespool::crypto
