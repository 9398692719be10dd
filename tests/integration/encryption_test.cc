// Message-level encryption end to end (docs/encryption.md): producers ->
// the agent (a real process) -> a real mosquitto -> consumers.
//
// 1. Batch mode with a key rotation in the middle: a broker-side subscriber
//    (mosquitto_sub) sees only sealed records, the journal on disk holds no
//    plaintext, and the central consumer library opens every record; rows
//    stored under the old key while the broker was down still upload after
//    the rotation and open with the old key. `edgespool decode --keys` with
//    only the new key reports the old key's records (exit 65, "unknown key
//    id"), printing them all the same.
// 2. Message mode (MQTT 5): the es-enc user property travels, the payload is
//    ciphertext on the broker, and `edgespool consume --keys` prints the
//    plaintext; without --keys it prints them marked, none dropped.
// 3. A missing, world-readable or malformed key file stops the agent at
//    start with exit 78 and says why.
#include <cJSON.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <map>
#include <set>
#include <sstream>
#include <string>

#include "central/uplink_parse.h"
#include "platform/files.h"
#include "sync/batch/batch_frame.h"
#include "sync/crypto/sealed.h"
#include "tests/support/e2e_fixture.h"
#include "tests/support/test_env.h"

namespace edgespool::testing {
namespace {

constexpr char kK1[] = "k1 1111111111111111111111111111111111111111111111111111111111111111\n";
constexpr char kK2[] = "k2 2222222222222222222222222222222222222222222222222222222222222222\n";

std::string Bin() {
  const char* b = std::getenv("EDGESPOOL_BIN");
  return b ? b : "edgespool";
}

std::string WriteKeys(const TempDir& dir, const std::string& name, const std::string& text) {
  std::string path = dir.File(name);
  WriteFile(path, text);
  EXPECT_EQ(::chmod(path.c_str(), 0600), 0);
  return path;
}

std::string Secret(int i) { return "SECRET-reading-" + std::to_string(i) + "-21.5C"; }

// Publishes [from, to) on topic, acked as stored.
void PublishRange(client::Producer& p, const std::string& topic, int from, int to) {
  std::vector<std::future<client::PublishResult>> f;
  for (int i = from; i < to; ++i) {
    client::PublishOptions o;
    o.id = "m" + std::to_string(i);
    o.ts_ms = 1732300000000 + i;
    f.push_back(p.Publish(topic, Secret(i), o));
  }
  for (auto& x : f) {
    auto r = x.get();
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  }
}

// Every byte of the journal's files (database and WAL).
std::string JournalBytes(const std::string& journal) {
  std::string all = ReadFile(journal);
  if (platform::FileExists(journal + "-wal")) all += ReadFile(journal + "-wal");
  return all;
}

TEST_F(AgentE2ETest, BatchModeBrokerSeesCiphertextRotationKeepsOldRowsDecryptable) {
  std::string keys = WriteKeys(dir_, "keys", kK1);
  StartBroker();
  StartSubscriber("edgespool/+/batch");
  std::multimap<std::string, std::string> settings = {
      {"sync", "mode = \"batch\""},
      {"sync", "batch_messages = 50"},
      {"encryption", "key_file = \"" + keys + "\""},
      {"route", "match = \"sec/#\"\nencrypt = \"aes-256-gcm\""},
  };
  StartAgent(settings);
  auto p = Connect();
  ASSERT_TRUE(p);
  PublishRange(*p, "sec/a", 0, 100);  // k1, uploaded at once

  // The broker goes away; 100 more are stored under k1 and wait.
  ASSERT_TRUE(WaitUntil([&] { return p->QueryById("m99").get().state == "sent"; }, 10000));
  broker_->Stop();
  PublishRange(*p, "sec/a", 100, 200);
  // At rest: no plaintext in the journal's files.
  EXPECT_EQ(JournalBytes(agent_->journal()).find("SECRET-reading"), std::string::npos);

  // Rotation: k2 first (current), k1 kept; applied by a reload.
  WriteKeys(dir_, "keys", std::string(kK2) + kK1);
  std::string out = dir_.File("reload.out");
  ASSERT_EQ(std::system((Bin() + " reload -c " + agent_->config_path() + " --socket " +
                         agent_->socket() + " > " + out + " 2>&1")
                            .c_str()),
            0)
      << ReadFile(out);
  EXPECT_NE(ReadFile(out).find("encryption keys (current k2)"), std::string::npos) << ReadFile(out);
  PublishRange(*p, "sec/a", 200, 300);    // k2
  PublishRange(*p, "plain/a", 300, 310);  // no encryption on this route
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  ASSERT_TRUE(WaitUntil([&] { return p->QueryById("m309").get().state == "sent"; }, 20000))
      << agent_->log();
  ASSERT_TRUE(WaitUntil([&] { return p->QueryById("m199").get().state == "sent"; }, 20000));
  ASSERT_TRUE(WaitUntil([&] { return p->QueryById("m299").get().state == "sent"; }, 20000));

  // What the broker delivered: sealed records, opened by the consumer
  // library (central/) with both keys.
  auto ring = crypto::KeyRing::Parse(std::string(kK2) + kK1, "keys");
  ASSERT_TRUE(ring.ok());
  crypto::Cipher cipher(std::make_shared<const crypto::KeyRing>(std::move(*ring)));
  std::map<std::string, std::string> opened;  // id -> plaintext
  std::map<std::string, std::string> key_of;  // id -> key id
  std::string capture;
  ASSERT_TRUE(WaitUntil(
      [&] {
        opened.clear();
        capture.clear();
        for (const auto& m : sub_->Read()) {
          capture += m.payload;
          EXPECT_EQ(m.payload.find("SECRET-reading"), std::string::npos)
              << "plaintext on the broker";
          std::vector<central::Message> msgs;
          Status st = central::MessagesFromFrame(m.payload, &msgs);
          EXPECT_TRUE(st.ok()) << st.ToString();
          for (auto& msg : msgs) {
            bool sealed = msg.sealed.has_value();
            EXPECT_EQ(sealed, msg.topic == "sec/a") << msg.id;
            if (sealed) key_of[msg.id] = msg.sealed->key_id;
            EXPECT_TRUE(central::OpenSealed(&cipher, &msg)) << msg.id << ": " << msg.decrypt_error;
            opened[msg.id] = msg.payload;
          }
        }
        return opened.size() >= 310;
      },
      15000))
      << opened.size();
  for (int i = 0; i < 310; ++i) {
    std::string id = "m" + std::to_string(i);
    ASSERT_EQ(opened[id], Secret(i)) << id;  // none lost, each opens
    if (i < 300) {
      EXPECT_EQ(key_of[id], i < 200 ? "k1" : "k2") << id;
    }
  }

  // decode with only the new key: the old key's records are reported (not
  // dropped), the rest open; exit 65.
  WriteFile(dir_.File("frames.bin"), capture);
  std::string only_k2 = WriteKeys(dir_, "k2only", kK2);
  std::string dout = dir_.File("decode.out"), derr = dir_.File("decode.err");
  int rc = std::system((Bin() + " decode --keys " + only_k2 + " " + dir_.File("frames.bin") +
                        " > " + dout + " 2> " + derr)
                           .c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 65) << ReadFile(derr);
  EXPECT_NE(ReadFile(derr).find("unknown key id \"k1\" (the key file has k2)"), std::string::npos)
      << ReadFile(derr);
  std::string decoded = ReadFile(dout);
  EXPECT_NE(decoded.find("\"payload\":\"" + Secret(250) + "\""), std::string::npos);
  EXPECT_NE(decoded.find("\"key_id\":\"k1\""), std::string::npos);
  EXPECT_NE(decoded.find("\"error\":\"unknown key id"), std::string::npos);
  EXPECT_EQ(decoded.find(Secret(150)), std::string::npos);
  EXPECT_GE(std::count(decoded.begin(), decoded.end(), '\n'), 310);  // every record printed
}

// consume's JSON lines: id -> (payload, error).
std::map<std::string, std::pair<std::string, std::string>> ConsumeLines(const std::string& path) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  std::istringstream in(ReadFile(path));
  std::string l;
  while (std::getline(in, l)) {
    if (l.empty() || l[0] != '{') continue;
    cJSON* j = cJSON_Parse(l.c_str());
    if (!j) continue;
    auto str = [&](const char* k) {
      cJSON* v = cJSON_GetObjectItem(j, k);
      return cJSON_IsString(v) ? std::string(v->valuestring) : std::string();
    };
    out[str("id")] = {str("payload").empty() ? str("payload_hex") : str("payload"), str("error")};
    cJSON_Delete(j);
  }
  return out;
}

TEST_F(AgentE2ETest, MessageModeCarriesEsEncAndConsumeDecrypts) {
  std::string keys = WriteKeys(dir_, "keys", std::string(kK2) + kK1);
  StartBroker();
  StartAgent({{"encryption", "key_file = \"" + keys + "\""},
              {"route", "match = \"sec/#\"\nencrypt = \"aes-256-gcm\""}});
  // The broker's view (MQTT 5: user properties and the payload in hex).
  Process sub;
  ASSERT_TRUE(sub.Start({"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(broker_->port()),
                         "-V", "mqttv5", "-q", "1", "-t", "sec/#", "-F", "%t|%P|%x"},
                        dir_.File("sub.out")));
  Process with_keys, without_keys;
  ASSERT_TRUE(with_keys.Start({Bin(), "consume", "--broker", broker_->url(), "--topic", "sec/#",
                               "--keys", keys, "--max-wait", "2s", "--stats"},
                              dir_.File("consume.out")));
  ASSERT_TRUE(without_keys.Start(
      {Bin(), "consume", "--broker", broker_->url(), "--topic", "sec/#", "--max-wait", "2s"},
      dir_.File("nokeys.out")));
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // subscribed (clean sessions)
  auto p = Connect();
  ASSERT_TRUE(p);
  PublishRange(*p, "sec/b", 0, 50);
  ASSERT_TRUE(WaitUntil([&] { return ConsumeLines(dir_.File("consume.out")).size() >= 50; }, 15000))
      << ReadFile(dir_.File("consume.out"));
  ASSERT_TRUE(WaitUntil([&] { return ConsumeLines(dir_.File("nokeys.out")).size() >= 50; }, 15000))
      << ReadFile(dir_.File("nokeys.out"));
  auto lines = ConsumeLines(dir_.File("consume.out"));
  auto sealed = ConsumeLines(dir_.File("nokeys.out"));
  for (int i = 0; i < 50; ++i) {
    std::string id = "m" + std::to_string(i);
    EXPECT_EQ(lines[id].first, Secret(i)) << id;
    EXPECT_EQ(lines[id].second, "") << id;
    EXPECT_EQ(sealed[id].first.find("SECRET"), std::string::npos) << id;
    EXPECT_NE(sealed[id].second.find("no key file given"), std::string::npos) << id;
  }
  std::string broker_view = ReadFile(dir_.File("sub.out"));
  EXPECT_NE(broker_view.find("es-enc:aes-256-gcm:k2:"), std::string::npos) << broker_view;
  // Hex of "SECRET" would be 534543524554.
  EXPECT_EQ(broker_view.find("534543524554"), std::string::npos) << "plaintext on the broker";
  with_keys.Signal(SIGTERM);
  without_keys.Signal(SIGTERM);
  EXPECT_EQ(WEXITSTATUS(with_keys.Wait(5000)), 0);
  without_keys.Wait(5000);
}

TEST(EncryptionStartTest, ABadKeyFileIsAConfigErrorAtStart) {
  TempDir dir;
  std::string good = dir.File("good");
  WriteFile(good, kK1);
  ::chmod(good.c_str(), 0600);
  std::string open_to_all = dir.File("open");
  WriteFile(open_to_all, kK1);
  ::chmod(open_to_all.c_str(), 0644);
  std::string short_key = dir.File("short");
  WriteFile(short_key, "k1 abcd\n");
  ::chmod(short_key.c_str(), 0600);
  struct Case {
    std::string key_line, expect;
  } cases[] = {
      {"", "a route has encrypt = \"aes-256-gcm\": the key file is required"},
      {"key_file = \"" + dir.File("missing") + "\"", "No such file"},
      {"key_file = \"" + open_to_all + "\"", "mode 0644 lets group or others read the keys"},
      {"key_file = \"" + short_key + "\"", "expected 64 hex digits"},
  };
  for (const auto& c : cases) {
    std::string config = dir.File("agent.toml");
    WriteFile(config, "[node]\nid = \"n\"\n[store]\npath = \"" + dir.File("j.db") +
                          "\"\n[producer]\nsocket = \"" + dir.File("s.sock") +
                          "\"\n[encryption]\n" + c.key_line +
                          "\n[[route]]\nmatch = \"#\"\nencrypt = \"aes-256-gcm\"\n");
    for (const char* cmd : {" run -c ", " config check "}) {
      std::string out = dir.File("out");
      int rc = std::system((Bin() + cmd + config + " > " + out + " 2>&1").c_str());
      EXPECT_EQ(WEXITSTATUS(rc), 78) << cmd << c.key_line << "\n" << ReadFile(out);
      EXPECT_NE(ReadFile(out).find(c.expect), std::string::npos) << cmd << ReadFile(out);
      EXPECT_NE(ReadFile(out).find("encryption.key_file"), std::string::npos) << ReadFile(out);
    }
  }
  // And a good one passes the check.
  std::string config = dir.File("agent.toml");
  WriteFile(config, "[node]\nid = \"n\"\n[encryption]\nkey_file = \"" + good +
                        "\"\n[[route]]\nmatch = \"#\"\nencrypt = \"aes-256-gcm\"\n");
  EXPECT_EQ(std::system((Bin() + " config check " + config + " > /dev/null 2>&1").c_str()), 0);
}

}  // namespace
}  // namespace edgespool::testing
