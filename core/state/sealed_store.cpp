#include "core/state/sealed_store.h"

#include <atomic>

#include "core/json/parse.h"
#include "core/log/log.h"

namespace ferry::state {
namespace {

class SealedStore final : public Store {
 public:
  SealedStore(std::unique_ptr<Store> inner, crypto::Sealer sealer)
      : inner_(std::move(inner)), sealer_(std::make_shared<const crypto::Sealer>(std::move(sealer))) {}

  bool try_now(const Op& op, Result& out) override {
    if (op.op == FERRY_STATE_SET) {
      Op sealed = op;
      sealed.value = sealer_->seal(op.value, op.key);
      return inner_->try_now(sealed, out);
    }
    if (!inner_->try_now(op, out)) return false;
    open(*sealer_, op, out);
    return true;
  }

  void submit(Op op, Callback done) override {
    if (op.op == FERRY_STATE_SET) op.value = sealer_->seal(op.value, op.key);
    if (op.op != FERRY_STATE_GET && op.op != FERRY_STATE_SCAN)
      return inner_->submit(std::move(op), std::move(done));
    Op seen = op;  // the key and strip, to open what comes back
    inner_->submit(std::move(op),
                   [sealer = sealer_, seen = std::move(seen), done = std::move(done)](Result&& r) {
                     open(*sealer, seen, r);
                     done(std::move(r));
                   });
  }

  std::string_view backend() const override { return inner_->backend(); }
  bool available() const override { return inner_->available(); }
  void stop() override { inner_->stop(); }

 private:
  static void open(const crypto::Sealer& sealer, const Op& op, Result& r) {
    if (r.status != FERRY_OK) return;
    if (op.op == FERRY_STATE_GET) {
      if (!crypto::Sealer::is_sealed(r.data)) return;  // written before encryption, or a counter
      std::string why;
      if (auto plain = sealer.open(r.data, op.key, &why)) {
        r.data = std::move(*plain);
      } else {
        warn(op.key, why);
        r.status = FERRY_ERR_NOT_FOUND;
        r.data.clear();
      }
    } else if (op.op == FERRY_STATE_SCAN) {
      json::Value items;
      if (!json::parse(r.data, items, json::ParseLimits::defaults()) || !items.is_array()) return;
      std::string prefix = op.key.substr(0, std::min(op.strip, op.key.size()));
      json::Value kept = json::Value::array();
      for (auto& item : items) {
        auto* key =
            item.is_object() && item.contains("key") && item["key"].is_string() ? &item["key"] : nullptr;
        auto* value = key && item.contains("value") && item["value"].is_string() ? &item["value"] : nullptr;
        if (!value || !crypto::Sealer::is_sealed(value->get_ref<const std::string&>())) {
          kept.push_back(std::move(item));
          continue;
        }
        std::string full = prefix + key->get<std::string>(), why;
        if (auto plain = sealer.open(value->get_ref<const std::string&>(), full, &why)) {
          *value = std::move(*plain);
          kept.push_back(std::move(item));
        } else {
          warn(full, why);
        }
      }
      r.data = json::dump(kept);
      r.value = static_cast<double>(kept.size());
    }
  }

  static void warn(const std::string& key, const std::string& why) {
    static std::atomic<uint64_t> warned{0};
    if (warned.fetch_add(1) < 10)
      log::get().warn("state: the value of '{}' is {}; it reads as absent", json::printable(key, 120), why);
  }

  std::unique_ptr<Store> inner_;
  std::shared_ptr<const crypto::Sealer> sealer_;
};

}  // namespace

std::unique_ptr<Store> make_sealed_store(std::unique_ptr<Store> inner, crypto::Sealer sealer) {
  return std::make_unique<SealedStore>(std::move(inner), std::move(sealer));
}

}  // namespace ferry::state
