// AES-256-GCM sealing for what Ferry keeps at rest.
#include <gtest/gtest.h>

#include "core/crypto/sealer.h"

namespace ferry::crypto {
namespace {

const std::string kHexKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kBase64Key = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=";  // 32 bytes

TEST(Sealer, OpensWhatItSealedAndNothingElse) {
  std::string error;
  auto s = Sealer::from_keys({kHexKey}, error);
  ASSERT_TRUE(s) << error;
  std::string sealed = s->seal("the prompt", "cache:c:1");
  EXPECT_TRUE(sealed.starts_with("fe1:" + s->key_id() + ":")) << sealed;
  EXPECT_EQ(sealed.find("the prompt"), std::string::npos);
  EXPECT_EQ(s->open(sealed, "cache:c:1"), "the prompt");
  EXPECT_NE(s->seal("the prompt", "cache:c:1"), sealed) << "a fresh nonce each time";
  // Bound to where it lives: under another key it does not open.
  EXPECT_FALSE(s->open(sealed, "cache:c:2", &error));
  EXPECT_NE(error.find("tampered with, or moved"), std::string::npos) << error;
  // One flipped byte of ciphertext is caught by the tag.
  std::string tampered = sealed;
  tampered[tampered.size() - 6] = tampered[tampered.size() - 6] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(s->open(tampered, "cache:c:1"));
}

TEST(Sealer, RotatesByKeyIdAndRefusesMalformedKeys) {
  std::string error;
  auto old_only = Sealer::from_keys({kHexKey}, error);
  auto rotated = Sealer::from_keys({kBase64Key, kHexKey}, error);
  auto new_only = Sealer::from_keys({kBase64Key}, error);
  ASSERT_TRUE(old_only && rotated && new_only) << error;
  std::string before = old_only->seal("v", "k");
  EXPECT_EQ(rotated->open(before, "k"), "v") << "the old key still opens what it sealed";
  EXPECT_NE(rotated->key_id(), old_only->key_id());
  EXPECT_TRUE(rotated->seal("v", "k").starts_with("fe1:" + new_only->key_id()));
  EXPECT_FALSE(new_only->open(before, "k", &error));
  EXPECT_NE(error.find("key id unknown"), std::string::npos) << error;
  EXPECT_FALSE(Sealer::from_keys({"short"}, error));
  EXPECT_FALSE(Sealer::from_keys({std::string(64, 'z')}, error));
}

}  // namespace
}  // namespace ferry::crypto
