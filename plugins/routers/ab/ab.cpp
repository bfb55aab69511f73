// ab: a sticky split for experiments. A request field or header (by default
// the x-ferry-user header, then the request's "user") is hashed into one of
// 10,000 buckets, and the variants own bucket ranges in proportion to their
// share: the same user always lands on the same variant, on every ferryd
// instance. Requests without a key are split at random. The other variants
// follow as the fallback chain.
#include <string>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Status;

class Ab final : public ferry::sdk::Router {
 public:
  explicit Ab(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"variants", "key", "salt"});
    if (c.json().type("/variants") != FERRY_JSON_OBJECT) {
      c.error("/variants",
              "is required: a table of provider name to share, e.g. { control = 50, candidate = 50 }");
      return;
    }
    double total = 0;
    for (const auto& [name, share] : c.provider_numbers("/variants", 0, 1e9)) {
      variants_.push_back({name, share});
      total += share;
    }
    if (total <= 0) c.error("/variants", "at least one share must be above 0");
    // Cumulative bucket bounds out of 10,000.
    double acc = 0;
    for (auto& v : variants_) {
      acc += v.share;
      v.bound = total > 0 ? static_cast<uint64_t>(acc / total * kBuckets + 0.5) : 0;
    }
    for (const auto& k : c.string_list("/key")) {
      if (!k.starts_with("header:") && !k.starts_with("body:/"))
        c.error("/key", "each key is \"header:NAME\" or \"body:/json/pointer\", not \"" + k + "\"");
      keys_.push_back(k);
    }
    if (keys_.empty()) keys_ = {"header:x-ferry-user", "body:/user"};
    salt_ = c.string("/salt", "");
  }

  Status route(ferry::sdk::Context& ctx, const ferry::sdk::Json& request, ferry::sdk::Route& route) override {
    uint64_t bucket = ferry::sdk::random_below(kBuckets);
    for (const auto& k : keys_) {
      std::optional<std::string_view> value = k.starts_with("header:")
                                                  ? ctx.header(std::string_view(k).substr(7))
                                                  : request.string(std::string_view(k).substr(5));
      if (value && !value->empty()) {
        bucket = ferry::sdk::stable_hash(salt_ + std::string(*value)) % kBuckets;
        break;
      }
    }
    const std::string* chosen = nullptr;
    for (const auto& v : variants_)
      if (bucket < v.bound) {
        chosen = &v.name;
        break;
      }
    if (chosen)
      for (size_t i = 0; i < route.size(); ++i)
        if (route.name(i) == *chosen) route.push(i);
    for (size_t i = 0; i < route.size(); ++i) route.push(i);
    return Status::kContinue;
  }

 private:
  static constexpr uint64_t kBuckets = 10'000;
  struct Variant {
    std::string name;
    double share;
    uint64_t bound = 0;
  };
  std::vector<Variant> variants_;
  std::vector<std::string> keys_;
  std::string salt_;
};

}  // namespace

FERRY_ROUTER_PLUGIN(Ab, "ab", "1.0.0")
