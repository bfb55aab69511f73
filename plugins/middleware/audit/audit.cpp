// audit: an append-only JSON-lines record of every request, optionally with
// the request and response bodies (secrets redacted), rotated by size.
//
// It never blocks the request path: on_complete only queues the line, and a
// writer thread of the plugin's own does the file work. When the writer falls
// behind by more than max_queue lines, new lines are dropped and counted
// (ferry_audit_dropped_total) rather than slowing requests down.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <ferry/plugin.hpp>
#include <ferry/secrets.hpp>

namespace {

using ferry::sdk::Context;
using ferry::sdk::Json;
using ferry::sdk::JsonWriter;
using ferry::sdk::LogLevel;
using ferry::sdk::Status;

class Writer {
 public:
  Writer(std::string path, uint64_t max_bytes, int keep, size_t max_queue)
      : path_(std::move(path)), max_bytes_(max_bytes), keep_(keep), max_queue_(max_queue) {
    file_ = std::fopen(path_.c_str(), "a");
    // What is already there counts toward rotation (after a restart).
    if (file_ && std::fseek(file_, 0, SEEK_END) == 0)
      size_ = static_cast<uint64_t>(std::max(0L, std::ftell(file_)));
    thread_ = std::thread([this] { run(); });
  }
  ~Writer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
    if (file_) std::fclose(file_);
  }
  bool ok() const { return file_ != nullptr; }

  void push(std::string line) {
    {
      std::lock_guard lock(mu_);
      if (queue_.size() >= max_queue_) {
        ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_audit_dropped_total", 1);
        return;
      }
      queue_.push_back(std::move(line));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      std::deque<std::string> batch;
      batch.swap(queue_);
      lock.unlock();
      for (const auto& line : batch) write(line);
      if (file_) std::fflush(file_);
      lock.lock();
    }
  }
  void write(const std::string& line) {
    if (!file_) return;
    if (size_ > 0 && size_ + line.size() + 1 > max_bytes_) rotate();
    if (!file_) return;
    std::fwrite(line.data(), 1, line.size(), file_);
    std::fputc('\n', file_);
    size_ += line.size() + 1;
  }
  // audit.jsonl -> audit.jsonl.1 -> ... -> audit.jsonl.<keep> (dropped).
  void rotate() {
    std::fclose(file_);
    std::error_code ec;
    std::filesystem::remove(path_ + "." + std::to_string(keep_), ec);
    for (int i = keep_ - 1; i >= 1; --i)
      std::filesystem::rename(path_ + "." + std::to_string(i), path_ + "." + std::to_string(i + 1), ec);
    if (keep_ > 0)
      std::filesystem::rename(path_, path_ + ".1", ec);
    else
      std::filesystem::remove(path_, ec);
    file_ = std::fopen(path_.c_str(), "a");
    size_ = 0;
  }

  const std::string path_;
  const uint64_t max_bytes_;
  const int keep_;
  const size_t max_queue_;
  std::FILE* file_ = nullptr;  // writer thread only, after construction
  uint64_t size_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

class Audit;

// Seals a log line's bodies with AES-256-GCM: "fe1:<key id>:<base64 of nonce
// | ciphertext | tag>", bound to the line's request id. The format is the
// host's (core/crypto/sealer.h), so `ferry audit decrypt` opens it; a plugin
// only sees the SDK, hence these few lines of OpenSSL of its own.
class BodySealer {
 public:
  // `key`: 32 bytes as 64 hex digits or base64; empty error means ready.
  BodySealer(std::string_view key, std::string& error) {
    std::string text(key);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (text.size() == 64 && text.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos) {
      for (size_t i = 0; i < 32; ++i)
        key_.push_back(static_cast<char>(std::stoi(text.substr(2 * i, 2), nullptr, 16)));
    } else {
      std::string out(text.size(), '\0');
      int n =
          EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
      size_t pad = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
      if (n >= 0) key_ = out.substr(0, static_cast<size_t>(n) - pad);
    }
    if (key_.size() != 32) {
      error = "is not 32 bytes as 64 hex digits or base64";
      return;
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(key_.data()), key_.size(), digest);
    static constexpr char kHex[] = "0123456789abcdef";
    for (int i = 0; i < 4; ++i) (id_ += kHex[digest[i] >> 4]) += kHex[digest[i] & 15];
  }

  // Empty when OpenSSL fails (the line then goes without the body).
  std::string seal(std::string_view plain, std::string_view aad) const {
    std::string blob(12 + plain.size() + 16, '\0');
    auto* out = reinterpret_cast<unsigned char*>(blob.data());
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int len = 0;
    bool ok = ctx && RAND_bytes(out, 12) == 1 &&
              EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
              EVP_EncryptInit_ex(ctx, nullptr, nullptr, reinterpret_cast<const unsigned char*>(key_.data()),
                                 out) == 1 &&
              EVP_EncryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                                static_cast<int>(aad.size())) == 1 &&
              EVP_EncryptUpdate(ctx, out + 12, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                                static_cast<int>(plain.size())) == 1 &&
              EVP_EncryptFinal_ex(ctx, out + 12 + len, &len) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + plain.size()) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) return {};
    std::string b64(4 * ((blob.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), out, static_cast<int>(blob.size()));
    b64.resize(static_cast<size_t>(n));
    return "fe1:" + id_ + ":" + b64;
  }

 private:
  std::string key_;
  std::string id_;
};

class Record final : public ferry::sdk::Filter {
 public:
  explicit Record(Audit& owner) : owner_(owner) {}
  Status on_request(Context& ctx, Json& req) override;
  Status on_response(Context& ctx, Json& resp) override;
  Status on_chunk(Context& ctx, Json& chunk) override;
  void on_complete(Context& ctx, const ferry_request_summary& s) override;

 private:
  Audit& owner_;
  std::string request_;   // redacted JSON, when bodies are kept
  std::string response_;  // redacted JSON (or, for streams, the text streamed)
  std::string streamed_;
};

class Audit final : public ferry::sdk::Middleware {
 public:
  // The hooks the host calls are the ones Record overrides.
  using filter_type = Record;
  explicit Audit(ferry::sdk::Config& c) {
    c.reject_unknown_keys(
        {"path", "bodies", "max_bytes", "keep", "max_queue", "redact_keys", "encryption_key_env"});
    std::string path = c.required_string("/path");
    bodies_ = c.json().boolean("/bodies").value_or(false);
    auto max_bytes = static_cast<uint64_t>(c.integer("/max_bytes", 100 << 20, 4096, int64_t{1} << 40));
    int keep = static_cast<int>(c.integer("/keep", 5, 0, 1000));
    auto max_queue = static_cast<size_t>(c.integer("/max_queue", 100'000, 1, 10'000'000));
    redact_keys_ = {"api_key", "apikey", "authorization", "password", "secret", "token", "access_token"};
    if (c.json().has("/redact_keys")) {
      redact_keys_.clear();
      for (size_t i = 0, n = c.json().size("/redact_keys"); i < n; ++i)
        redact_keys_.emplace_back(c.json().string("/redact_keys/" + std::to_string(i)).value_or(""));
    }
    if (auto env = c.string("/encryption_key_env"); !env.empty()) {
      auto key = ferry::sdk::secret(env);
      std::string error = key ? "" : "is not set";
      if (key) sealer_ = std::make_unique<BodySealer>(*key, error);
      if (!error.empty())
        c.error("/encryption_key_env",
                "environment variable " + env + " " + error + " (it should hold a 32-byte key)");
    }
    if (c.failed()) return;
    writer_ = std::make_unique<Writer>(path, max_bytes, keep, max_queue);
    if (!writer_->ok()) c.error("/path", "cannot open " + path + " for appending");
  }

  std::unique_ptr<ferry::sdk::Filter> new_filter(Context&) override {
    return std::make_unique<Record>(*this);
  }
  bool bodies() const { return bodies_; }
  Writer& writer() { return *writer_; }
  const BodySealer* sealer() const { return sealer_.get(); }

  // The document as JSON with the values of secret-looking members replaced,
  // and API-key-like strings anywhere masked.
  std::string redacted(const Json& doc) const {
    std::string out;
    walk(doc, "", out);
    // A linear scan, never a regex: a model's answer may hold any run of
    // key characters (std::regex recursed through one until the stack ran out).
    return ferry::sdk::mask_key_shaped(out);
  }

 private:
  void walk(const Json& doc, const std::string& at, std::string& out) const {
    switch (doc.type(at)) {
      case FERRY_JSON_OBJECT: {
        out += '{';
        for (size_t i = 0, n = doc.size(at); i < n; ++i) {
          std::string key(doc.key_at(at, i).value_or(""));
          if (i) out += ',';
          ferry::sdk::append_json_string(out, key);
          out += ':';
          std::string lower;
          for (char ch : key) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          bool secret = false;
          for (const auto& k : redact_keys_) secret = secret || lower == k;
          std::string child = at + "/";
          for (char ch : key) child += ch == '~' ? "~0" : ch == '/' ? "~1" : std::string(1, ch);
          if (secret)
            out += "\"[REDACTED]\"";
          else
            walk(doc, child, out);
        }
        out += '}';
        break;
      }
      case FERRY_JSON_ARRAY:
        out += '[';
        for (size_t i = 0, n = doc.size(at); i < n; ++i) {
          if (i) out += ',';
          walk(doc, at + "/" + std::to_string(i), out);
        }
        out += ']';
        break;
      default: out += doc.raw(at).value_or("null");
    }
  }

  bool bodies_ = false;
  std::vector<std::string> redact_keys_;
  std::unique_ptr<BodySealer> sealer_;  // bodies sealed at rest when set
  std::unique_ptr<Writer> writer_;
};

Status Record::on_request(Context&, Json& req) {
  if (owner_.bodies()) request_ = owner_.redacted(req);
  return Status::kContinue;
}
Status Record::on_response(Context&, Json& resp) {
  if (owner_.bodies()) response_ = owner_.redacted(resp);
  return Status::kContinue;
}
Status Record::on_chunk(Context&, Json& chunk) {
  if (owner_.bodies())
    if (auto text = chunk.string("/choices/0/delta/content")) streamed_.append(*text);
  return Status::kContinue;
}

void Record::on_complete(Context& ctx, const ferry_request_summary& s) {
  using ferry::sdk::sv;
  JsonWriter w;
  w.begin_object();
  w.key("time").value(static_cast<int64_t>(ferry::sdk::host().clock_ns(FERRY_CLOCK_REALTIME) / 1'000'000));
  w.key("request_id")
      .value(sv(s.request_id))
      .key("pipeline")
      .value(sv(s.pipeline))
      .key("model")
      .value(sv(s.model));
  w.key("provider").value(sv(s.provider)).key("providers_tried").value(sv(s.providers_tried));
  w.key("status").value(static_cast<int64_t>(s.status)).key("stream").value(s.stream != 0);
  w.key("latency_ms").value(static_cast<double>(s.latency_us) / 1000.0);
  w.key("ttfb_ms").value(static_cast<double>(s.ttfb_us) / 1000.0);
  w.key("prompt_tokens").value(s.prompt_tokens).key("completion_tokens").value(s.completion_tokens);
  if (s.error.len) w.key("error").value(ferry::sdk::mask_key_shaped(sv(s.error)));
  for (const char* tag : {"key", "user", "team"})
    if (auto v = ctx.tag(tag)) w.key(tag).value(*v);
  if (owner_.bodies()) {
    // Sealed, a body is a string that only `ferry audit decrypt` opens.
    const BodySealer* seal = owner_.sealer();
    auto body = [&](const char* key, const std::string& json_text, bool raw) {
      if (seal)
        w.key(key).value(seal->seal(json_text, sv(s.request_id)));
      else if (raw)
        w.key(key).raw(json_text);
      else
        w.key(key).value(json_text);
    };
    if (!request_.empty()) body("request", request_, true);
    if (!response_.empty())
      body("response", response_, true);
    else if (s.stream)
      body("response_text", streamed_, false);
  }
  w.end_object();
  owner_.writer().push(w.take());
}

}  // namespace

FERRY_MIDDLEWARE_PLUGIN(Audit, "audit", "1.0.0")
