// complexity: scores the request and sends it to the provider whose score
// range it falls in: short chit-chat to a small model, long code-heavy or
// mathematical conversations to a large one. Features, each weighted:
//   length    prompt characters / 1000
//   code      1 if the prompt has code (fences, common keywords)
//   math      count of math signs (=, ^, \frac, digits next to operators), capped at 5
//   turns     number of messages / 2
//   keywords  how many of the configured keywords appear
// The first route whose max_score the score does not exceed goes first; the
// others follow in route order as the fallback chain.
#include <algorithm>
#include <cctype>
#include <limits>
#include <string>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Status;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class Complexity final : public ferry::sdk::Router {
 public:
  explicit Complexity(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"routes", "weights", "keywords"});
    weights_.length = c.number("/weights/length", 1.0, 0, 1e6);
    weights_.code = c.number("/weights/code", 3.0, 0, 1e6);
    weights_.math = c.number("/weights/math", 1.0, 0, 1e6);
    weights_.turns = c.number("/weights/turns", 0.5, 0, 1e6);
    weights_.keywords = c.number("/weights/keywords", 2.0, 0, 1e6);
    for (const auto& k : c.keys("/weights"))
      if (k != "length" && k != "code" && k != "math" && k != "turns" && k != "keywords")
        c.error("/weights/" + k, "unknown feature (length, code, math, turns, keywords)");
    for (const auto& k : c.string_list("/keywords")) keywords_.push_back(lower(k));
    if (keywords_.empty())
      keywords_ = {"step by step", "prove",    "analyze",      "analyse",
                   "derive",       "optimize", "architecture", "debug"};

    auto providers = c.pipeline_providers();
    size_t n = c.json().size("/routes");
    if (c.json().type("/routes") != FERRY_JSON_ARRAY || n == 0)
      c.error("/routes", "is required: [{ max_score = 2, provider = \"small\" }, { provider = \"large\" }]");
    for (size_t i = 0; i < n; ++i) {
      std::string ptr = "/routes/" + std::to_string(i);
      Route r;
      r.provider = c.required_string(ptr + "/provider");
      r.max_score = c.number(ptr + "/max_score", std::numeric_limits<double>::infinity(), -1e9, 1e9);
      if (!providers.empty() && std::find(providers.begin(), providers.end(), r.provider) == providers.end())
        c.error(ptr + "/provider", "'" + r.provider + "' is not a provider of this pipeline");
      if (!routes_.empty() && r.max_score < routes_.back().max_score)
        c.error(ptr + "/max_score", "routes must be in increasing max_score order");
      routes_.push_back(std::move(r));
    }
  }

  Status route(ferry::sdk::Context& ctx, const ferry::sdk::Json& request, ferry::sdk::Route& route) override {
    double score = score_of(request);
    ctx.set_response_header("x-ferry-complexity",
                            std::to_string(static_cast<int>(score * 10) / 10.0).substr(0, 6));
    size_t first = routes_.size();
    for (size_t r = 0; r < routes_.size(); ++r)
      if (score <= routes_[r].max_score) {
        first = r;
        break;
      }
    auto push_provider = [&](const std::string& name) {
      for (size_t i = 0; i < route.size(); ++i)
        if (route.name(i) == name) route.push(i);
    };
    if (first < routes_.size()) push_provider(routes_[first].provider);
    for (const auto& r : routes_) push_provider(r.provider);
    return Status::kContinue;
  }

 private:
  double score_of(const ferry::sdk::Json& request) const {
    std::string text = ferry::sdk::request_text(request);
    std::string low = lower(text);
    double length = static_cast<double>(text.size()) / 1000.0;
    bool code = low.find("```") != std::string::npos || low.find("def ") != std::string::npos ||
                low.find("function ") != std::string::npos || low.find("#include") != std::string::npos ||
                low.find("select ") != std::string::npos || low.find("class ") != std::string::npos;
    int math = 0;
    for (size_t i = 0; i < text.size() && math < 5; ++i) {
      char c = text[i];
      bool op = c == '=' || c == '^' || c == '+' || c == '*' || c == '/';
      bool digit_next = (i > 0 && std::isdigit(static_cast<unsigned char>(text[i - 1]))) ||
                        (i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1])));
      if ((op && digit_next) || text.compare(i, 5, "\\frac") == 0 || text.compare(i, 4, "\\sum") == 0) ++math;
    }
    double turns = static_cast<double>(request.size("/messages")) / 2.0;
    int hits = 0;
    for (const auto& k : keywords_)
      if (low.find(k) != std::string::npos) ++hits;
    return weights_.length * length + weights_.code * (code ? 1 : 0) + weights_.math * math +
           weights_.turns * turns + weights_.keywords * hits;
  }

  struct Weights {
    double length, code, math, turns, keywords;
  } weights_{};
  struct Route {
    std::string provider;
    double max_score;
  };
  std::vector<Route> routes_;
  std::vector<std::string> keywords_;
};

}  // namespace

FERRY_ROUTER_PLUGIN(Complexity, "complexity", "1.0.0")
