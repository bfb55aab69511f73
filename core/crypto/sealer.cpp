#include "core/crypto/sealer.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <memory>

namespace ferry::crypto {
namespace {

constexpr size_t kNonce = 12;
constexpr size_t kTag = 16;

std::string hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) (out += kDigits[p[i] >> 4]) += kDigits[p[i] & 15];
  return out;
}

std::optional<std::string> decode_key(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.size() == 64 && text.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos) {
    std::string out(32, '\0');
    for (size_t i = 0; i < 32; ++i)
      out[i] = static_cast<char>(std::stoi(std::string(text.substr(2 * i, 2)), nullptr, 16));
    return out;
  }
  std::string out(text.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding's zero bytes too.
  size_t pad = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  out.resize(static_cast<size_t>(n) - pad);
  if (out.size() != 32) return std::nullopt;
  return out;
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> unbase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t pad = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

}  // namespace

std::optional<Sealer> Sealer::from_keys(const std::vector<std::string>& keys, std::string& error) {
  Sealer s;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto bytes = decode_key(keys[i]);
    if (!bytes) {
      error = "encryption key " + std::to_string(i + 1) + " is not 32 bytes as 64 hex digits or base64";
      return std::nullopt;
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(bytes->data()), bytes->size(), digest);
    s.keys_.push_back({hex(digest, 4), std::move(*bytes)});
  }
  if (s.keys_.empty()) {
    error = "no encryption key";
    return std::nullopt;
  }
  return s;
}

std::optional<Sealer> Sealer::from_env(const std::string& key_env, const std::vector<std::string>& old_envs,
                                       std::string& error) {
  std::vector<std::string> keys;
  std::vector<std::string> envs{key_env};
  envs.insert(envs.end(), old_envs.begin(), old_envs.end());
  for (const auto& env : envs) {
    const char* v = std::getenv(env.c_str());
    if (!v || !*v) {
      error = "environment variable " + env + " is not set (it should hold a 32-byte encryption key)";
      return std::nullopt;
    }
    keys.emplace_back(v);
  }
  auto s = from_keys(keys, error);
  if (!s) error = "encryption keys (" + key_env + " ...): " + error;
  return s;
}

std::string Sealer::seal(std::string_view plain, std::string_view aad) const {
  const Key& k = keys_.front();
  std::string blob(kNonce + plain.size() + kTag, '\0');
  auto* out = reinterpret_cast<unsigned char*>(blob.data());
  if (RAND_bytes(out, kNonce) != 1) return {};
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, reinterpret_cast<const unsigned char*>(k.bytes.data()),
                         out) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out + kNonce, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out + kNonce + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, out + kNonce + plain.size()) != 1)
    return {};
  return "fe1:" + k.id + ":" + base64(blob);
}

std::optional<std::string> Sealer::open(std::string_view sealed, std::string_view aad,
                                        std::string* error) const {
  auto fail = [&](const char* why) -> std::optional<std::string> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (!is_sealed(sealed) || sealed.size() < 14 || sealed[12] != ':') return fail("not a sealed value");
  std::string_view id = sealed.substr(4, 8);
  const Key* key = nullptr;
  for (const auto& k : keys_)
    if (k.id == id) key = &k;
  if (!key) return fail("sealed with a key that is not configured (key id unknown)");
  auto blob = unbase64(sealed.substr(13));
  if (!blob || blob->size() < kNonce + kTag) return fail("a sealed value that is damaged");
  size_t n = blob->size() - kNonce - kTag;
  const auto* in = reinterpret_cast<const unsigned char*>(blob->data());
  std::string plain(n, '\0');
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr,
                         reinterpret_cast<const unsigned char*>(key->bytes.data()), in) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len, in + kNonce,
                        static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag,
                          const_cast<unsigned char*>(in + kNonce + n)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len, &len) != 1)
    return fail("a sealed value that does not open: tampered with, or moved from where it was sealed");
  return plain;
}

}  // namespace ferry::crypto
