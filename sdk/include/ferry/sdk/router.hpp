// ferry/sdk/router.hpp - Routing strategies: the candidates and the order a router writes.
// Part of the C++ wrapper; include <ferry/plugin.hpp>, which includes every part in order.
#ifndef FERRY_SDK_ROUTER_HPP
#define FERRY_SDK_ROUTER_HPP

#ifndef FERRY_PLUGIN_HPP
#error "include <ferry/plugin.hpp>"
#endif

namespace ferry::sdk {

// Candidates handed to a router and the order it writes.
class Route {
 public:
  Route(std::span<const ferry_candidate* const> candidates, size_t* order)
      : candidates_(candidates), order_(order) {}
  size_t size() const { return candidates_.size(); }
  const ferry_candidate& operator[](size_t i) const { return *candidates_[i]; }
  std::string_view name(size_t i) const { return sv(candidates_[i]->name); }
  // The provider's `attributes` table (tier, price, capabilities, ...).
  Json attributes(size_t i) const { return Json(candidates_[i]->attributes); }
  // Appends candidate i to the fallback chain (ignored if already there).
  void push(size_t i) {
    if (i >= candidates_.size()) return;
    for (size_t k = 0; k < len_; ++k)
      if (order_[k] == i) return;
    order_[len_++] = i;
  }
  size_t length() const { return len_; }

 private:
  std::span<const ferry_candidate* const> candidates_;
  size_t* order_;
  size_t len_ = 0;
};

class Router : public detail::Identity {
 public:
  virtual ~Router() = default;
  virtual Status route(Context& ctx, const Json& request, Route& route) = 0;
};

}  // namespace ferry::sdk

#endif  // FERRY_SDK_ROUTER_HPP
