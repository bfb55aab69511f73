#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::crypto {

// AES-256-GCM for what Ferry keeps that can hold prompts or answers (shared
// state values: cached answers, stored responses, key records; audit log
// bodies). A sealed value is text:
//
//   fe1:<key id>:<base64 of 12-byte nonce | ciphertext | 16-byte tag>
//
// where the key id is the first 8 hex digits of the key's SHA-256, so a
// reader knows which key to open it with. The associated data binds a value
// to where it lives (its state key, its request id): moved elsewhere, it no
// longer opens. Rotation: seal with the first key, open with any of them.
class Sealer {
 public:
  // Each key: 32 bytes, as 64 hex digits or base64 (as an environment
  // variable holds it). The first seals; all open. Null with `error` set
  // when a key is malformed.
  static std::optional<Sealer> from_keys(const std::vector<std::string>& keys, std::string& error);
  // From environment variables: `key_env` seals, `old_envs` only open.
  static std::optional<Sealer> from_env(const std::string& key_env, const std::vector<std::string>& old_envs,
                                        std::string& error);

  std::string seal(std::string_view plain, std::string_view aad) const;
  // The plaintext, or nullopt with `error` set (unknown key id, a value that
  // was tampered with or moved).
  std::optional<std::string> open(std::string_view sealed, std::string_view aad,
                                  std::string* error = nullptr) const;
  static bool is_sealed(std::string_view value) { return value.starts_with("fe1:"); }
  const std::string& key_id() const { return keys_.front().id; }

 private:
  struct Key {
    std::string id;     // 8 hex digits
    std::string bytes;  // 32
  };
  std::vector<Key> keys_;
};

}  // namespace ferry::crypto
