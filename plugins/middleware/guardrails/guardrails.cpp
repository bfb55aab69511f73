// guardrails: rules over what goes in (request messages) and what comes out
// (answers, streamed ones included). Each rule is a regex, a keyword list or a
// built-in PII detector (email, phone, payment card with a Luhn check,
// API-key-like secrets), and each acts by blocking, redacting or flagging.
//
// Streamed output is checked across chunk boundaries: each choice's text is
// held back by `stream_window` characters, so a card number split over four
// chunks is still seen whole before any of it reaches the client.
#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Context;
using ferry::sdk::Json;
using ferry::sdk::Status;

enum class Action { kBlock, kRedact, kFlag };

struct Rule {
  std::string name;
  std::regex re;
  Action action;
  bool luhn = false;  // a match counts only if its digits pass the Luhn check
};

bool luhn_ok(std::string_view s) {
  int sum = 0, n = 0;
  for (auto it = s.rbegin(); it != s.rend(); ++it) {
    if (!std::isdigit(static_cast<unsigned char>(*it))) continue;
    int d = *it - '0';
    if (n++ % 2 == 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return n >= 13 && n <= 19 && sum % 10 == 0;
}

struct Match {
  size_t begin, end;
  const Rule* rule;
};

// What the rules found in a text.
struct Findings {
  std::vector<std::string> flagged;
  std::string blocked;  // the first blocking rule, if any
  bool redacted = false;
  void flag(const std::string& name) {
    if (std::find(flagged.begin(), flagged.end(), name) == flagged.end()) flagged.push_back(name);
  }
};

class Guardrails;

class Stream final : public ferry::sdk::Filter {
 public:
  explicit Stream(Guardrails& owner) : owner_(owner) {}
  Status on_request(Context& ctx, Json& req) override;
  Status on_response(Context& ctx, Json& resp) override;
  Status on_chunk(Context& ctx, Json& chunk) override;
  void on_complete(Context& ctx, const ferry_request_summary& s) override;

 private:
  Guardrails& owner_;
  Findings output_;
  std::map<int64_t, std::string> held_;  // per choice: text not yet released
  bool cut_ = false;                     // an output block: nothing more is released
};

class Guardrails final : public ferry::sdk::Middleware {
 public:
  explicit Guardrails(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"pii", "rules", "apply_to", "redaction", "stream_window"});
    auto apply = c.string("/apply_to", "both");
    if (apply != "input" && apply != "output" && apply != "both")
      c.error("/apply_to", "must be \"input\", \"output\" or \"both\", not \"" + apply + "\"");
    input_ = apply != "output";
    output_ = apply != "input";
    redaction_ = c.string("/redaction", "[REDACTED:{name}]");
    window_ = static_cast<size_t>(c.integer("/stream_window", 128, 8, 65536));

    static const std::pair<const char*, const char*> kPii[] = {
        {"email", R"([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"},
        {"phone", R"((\+\d{1,3}[ .-]?)?(\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]?\d{4}\b)"},
        {"card", R"(\b\d(?:[ -]?\d){12,18}\b)"},
        {"api_key",
         R"(\b(sk-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abpr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})\b)"},
    };
    for (const auto& name : c.keys("/pii")) {
      const char* pattern = nullptr;
      for (auto [n, p] : kPii)
        if (name == n) pattern = p;
      if (!pattern) {
        c.error("/pii/" + name, "unknown detector '" + name + "' (email, phone, card, api_key)");
        continue;
      }
      rules_.push_back({name, std::regex(pattern), action(c, "/pii/" + name), name == "card"});
    }
    for (size_t i = 0, n = c.json().size("/rules"); i < n; ++i) {
      std::string at = "/rules/" + std::to_string(i);
      for (const auto& k : c.keys(at))
        if (k != "name" && k != "regex" && k != "keywords" && k != "action" && k != "ignore_case")
          c.error(at + "/" + k,
                  "unknown key '" + k + "' (expected name, regex, keywords, action, ignore_case)");
      std::string name = c.string(at + "/name", "rule" + std::to_string(i + 1));
      bool icase = c.json().boolean(at + "/ignore_case").value_or(true);
      std::string pattern;
      if (auto re = c.json().string(at + "/regex")) {
        pattern = *re;
      } else if (c.json().size(at + "/keywords")) {
        // Whole words, any of them.
        for (size_t k = 0, m = c.json().size(at + "/keywords"); k < m; ++k) {
          auto word = c.json().string(at + "/keywords/" + std::to_string(k)).value_or("");
          std::string escaped;
          for (char ch : word) {
            if (std::string_view("\\^$.|?*+()[]{}").find(ch) != std::string_view::npos) escaped += '\\';
            escaped += ch;
          }
          pattern += (pattern.empty() ? "" : "|") + escaped;
        }
        pattern = "\\b(" + pattern + ")\\b";
      } else {
        c.error(at, "needs regex = \"...\" or keywords = [...]");
        continue;
      }
      try {
        auto flags = std::regex::ECMAScript | std::regex::optimize;
        if (icase) flags |= std::regex::icase;
        rules_.push_back({name, std::regex(pattern, flags), action(c, at + "/action")});
      } catch (const std::regex_error& e) {
        c.error(at + "/regex", std::string("is not a valid regular expression: ") + e.what());
      }
    }
    if (rules_.empty()) c.error("", "no rules: set pii = { email = \"redact\", ... } or rules = [...]");
  }

  std::unique_ptr<ferry::sdk::Filter> new_filter(Context&) override {
    return std::make_unique<Stream>(*this);
  }

  bool input() const { return input_; }
  bool output() const { return output_; }
  size_t window() const { return window_; }

  // Every rule's matches in text, earliest first, overlapping ones dropped.
  std::vector<Match> scan(const std::string& text) const {
    std::vector<Match> out;
    for (const auto& rule : rules_)
      for (std::sregex_iterator it(text.begin(), text.end(), rule.re), end; it != end; ++it) {
        if (it->length(0) == 0) continue;
        if (rule.luhn && !luhn_ok(it->str(0))) continue;
        out.push_back({static_cast<size_t>(it->position(0)),
                       static_cast<size_t>(it->position(0) + it->length(0)), &rule});
      }
    std::sort(out.begin(), out.end(), [](const Match& a, const Match& b) { return a.begin < b.begin; });
    std::vector<Match> kept;
    for (const auto& m : out)
      if (kept.empty() || m.begin >= kept.back().end) kept.push_back(m);
    return kept;
  }

  // text with its first `upto` characters checked: redactions applied there,
  // flags and blocks noted.
  std::string apply(const std::string& text, const std::vector<Match>& matches, size_t upto,
                    Findings& f) const {
    std::string out;
    size_t at = 0;
    for (const auto& m : matches) {
      if (m.end > upto) break;
      switch (m.rule->action) {
        case Action::kBlock:
          if (f.blocked.empty()) f.blocked = m.rule->name;
          break;
        case Action::kFlag: f.flag(m.rule->name); break;
        case Action::kRedact: {
          out.append(text, at, m.begin - at);
          std::string r = redaction_;
          if (auto p = r.find("{name}"); p != std::string::npos) r.replace(p, 6, m.rule->name);
          out += r;
          at = m.end;
          f.redacted = true;
          f.flag(m.rule->name);
          break;
        }
      }
    }
    out.append(text, at, upto - at);
    return out;
  }
  std::string apply_all(const std::string& text, Findings& f) const {
    return apply(text, scan(text), text.size(), f);
  }

 private:
  static Action action(ferry::sdk::Config& c, const std::string& at) {
    auto a = c.string(at, "redact");
    if (a == "block") return Action::kBlock;
    if (a == "flag") return Action::kFlag;
    if (a != "redact") c.error(at, "must be \"block\", \"redact\" or \"flag\", not \"" + a + "\"");
    return Action::kRedact;
  }

  std::vector<Rule> rules_;
  bool input_ = true, output_ = true;
  std::string redaction_;
  size_t window_ = 128;
};

void report(Context& ctx, const Findings& f, const char* where) {
  if (f.flagged.empty()) return;
  std::string names;
  for (const auto& n : f.flagged) names += (names.empty() ? "" : ",") + n;
  ctx.set_response_header("x-ferry-guardrails", names);
  ctx.set_tag(std::string("guardrails_") + where, names);
  ferry::sdk::metric(FERRY_METRIC_COUNTER,
                     std::string("ferry_guardrails_findings_total{where=\"") + where + "\"}",
                     static_cast<double>(f.flagged.size()));
}

Status Stream::on_request(Context& ctx, Json& req) {
  if (!owner_.input()) return Status::kContinue;
  Findings f;
  auto check = [&](const std::string& pointer) {
    auto text = req.string(pointer);
    if (!text) return;
    std::string original(*text);
    std::string cleaned = owner_.apply_all(original, f);
    if (cleaned != original) req.set_string(pointer, cleaned);
  };
  for (size_t i = 0, n = req.size("/messages"); i < n; ++i) {
    std::string m = "/messages/" + std::to_string(i) + "/content";
    if (req.type(m) == FERRY_JSON_STRING) check(m);
    for (size_t p = 0, parts = req.size(m); p < parts && req.type(m) == FERRY_JSON_ARRAY; ++p)
      if (req.string(m + "/" + std::to_string(p) + "/type") == std::optional<std::string_view>("text"))
        check(m + "/" + std::to_string(p) + "/text");
  }
  // Embeddings (1.2): the input strings.
  if (req.type("/input") == FERRY_JSON_STRING) check("/input");
  for (size_t i = 0, n = req.type("/input") == FERRY_JSON_ARRAY ? req.size("/input") : 0; i < n; ++i)
    check("/input/" + std::to_string(i));
  if (!f.blocked.empty()) {
    ferry::sdk::metric(FERRY_METRIC_COUNTER, "ferry_guardrails_blocked_total{where=\"input\"}", 1);
    return ctx.respond_error(400, "invalid_request_error",
                             "the request was blocked by guardrail rule '" + f.blocked + "'",
                             "content_blocked");
  }
  report(ctx, f, "input");
  return Status::kContinue;
}

Status Stream::on_response(Context& ctx, Json& resp) {
  if (!owner_.output()) return Status::kContinue;
  for (size_t i = 0, n = resp.size("/choices"); i < n; ++i) {
    std::string at = "/choices/" + std::to_string(i);
    auto text = resp.string(at + "/message/content");
    if (!text) continue;
    std::string original(*text);
    Findings before = output_;
    std::string cleaned = owner_.apply_all(original, output_);
    if (!output_.blocked.empty() && before.blocked.empty()) {
      resp.set_string(at + "/message/content", "");
      resp.set_string(at + "/finish_reason", "content_filter");
    } else if (cleaned != original) {
      resp.set_string(at + "/message/content", cleaned);
    }
  }
  if (!output_.blocked.empty()) output_.flag(output_.blocked);
  report(ctx, output_, "output");
  return Status::kContinue;
}

// Releases each choice's text only `window` characters behind what arrived,
// and all of it with the finish reason, so that matches spanning chunks are
// caught before any part of them reaches the client.
Status Stream::on_chunk(Context&, Json& chunk) {
  if (!owner_.output()) return Status::kContinue;
  for (size_t i = 0, n = chunk.size("/choices"); i < n; ++i) {
    std::string at = "/choices/" + std::to_string(i);
    int64_t index = chunk.integer(at + "/index").value_or(0);
    std::string& held = held_[index];
    if (auto text = chunk.string(at + "/delta/content")) held.append(*text);
    bool last = chunk.type(at + "/finish_reason") == FERRY_JSON_STRING;
    std::string release;
    if (!cut_) {
      auto matches = owner_.scan(held);
      size_t upto = 0;  // how much of the held text may go out now
      if (last)
        upto = held.size();
      else if (held.size() > owner_.window())
        upto = held.size() - owner_.window();
      for (const auto& m : matches)
        if (m.begin < upto && m.end > upto) upto = m.begin;  // never release part of a match
      release = owner_.apply(held, matches, upto, output_);
      held.erase(0, upto);
      if (!output_.blocked.empty()) {
        cut_ = true;
        release.clear();
      }
    }
    if (cut_) {
      held.clear();
      if (last) chunk.set_string(at + "/finish_reason", "content_filter");
    }
    if (chunk.has(at + "/delta/content") || !release.empty())
      chunk.set_string(at + "/delta/content", release);
  }
  return Status::kContinue;
}

// A stream's response headers were out before its text was checked: its
// findings go to the access log (tag guardrails_output) and the metrics.
void Stream::on_complete(Context& ctx, const ferry_request_summary& s) {
  if (s.stream) report(ctx, output_, "output");
}

}  // namespace

FERRY_MIDDLEWARE_PLUGIN(Guardrails, "guardrails", "1.0.0")
