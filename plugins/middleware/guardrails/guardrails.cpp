// guardrails: rules over what goes in (request messages) and what comes out
// (answers, streamed ones included). Each rule is a regex, a keyword list or a
// built-in PII detector (email, phone, payment card with a Luhn check,
// API-key-like secrets), and each acts by blocking, redacting or flagging.
//
// Every rule is an RE2 program. std::regex backtracks and recurses once per
// character, so a 32 KB run of e-mail characters in a prompt or in an answer
// overflowed the stack of a worker thread and took ferryd down. RE2 runs an
// automaton: no recursion on the text, and each search is linear in it.
//
// Streamed output is checked across chunk boundaries: each choice's text is
// held back by `stream_window` characters, so a card number split over four
// chunks is still seen whole before any of it reaches the client.
#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Context;
using ferry::sdk::Json;
using ferry::sdk::Status;

enum class Action { kBlock, kRedact, kFlag };

struct Rule {
  std::string name;
  std::unique_ptr<const RE2> re;  // compiled once; RE2 is safe to share across threads
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

// The built-in detectors, in RE2 syntax. Each is greedy with no alternative
// that keeps searching past a shorter match, so finding all matches reads each
// character a small, fixed number of times.
constexpr std::pair<const char*, const char*> kPii[] = {
    {"email", R"([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"},
    {"phone", R"((?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]?\d{4}\b)"},
    {"card", R"(\b\d(?:[ -]?\d){12,18}\b)"},
    {"api_key",
     R"(\b(?:sk-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abpr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})\b)"},
};

// Rules used to be ECMAScript (std::regex). The constructs of that dialect
// that RE2 refuses, or would read differently, get a message that says so;
// empty when the pattern has none of them.
std::string ecmascript_only(std::string_view p) {
  const std::string why =
      ", which RE2 does not support (rules are RE2 syntax: no lookaround, no backreferences)";
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\') {
      if (++i == p.size()) break;  // RE2 reports the trailing backslash
      char n = p[i];
      // RE2 would read \12 as an octal escape where ECMAScript meant group 12.
      if (!in_class && n >= '1' && n <= '9')
        return "uses a backreference (\\" + std::string(1, n) + ")" + why;
      if (n == 'k' && i + 1 < p.size() && p[i + 1] == '<')
        return "uses a named backreference (\\k<...>)" + why;
      if (n == 'u') return "uses a \\u escape, which RE2 does not support; write a code point as \\x{hhhh}";
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      continue;
    }
    if (c == '[') {
      in_class = true;
      if (i + 1 < p.size() && p[i + 1] == '^') ++i;
      if (i + 1 < p.size() && p[i + 1] == ']') ++i;  // a leading ] is literal in RE2
      continue;
    }
    if (c != '(') continue;
    std::string_view rest = p.substr(i + 1);
    if (rest.starts_with("?=")) return "uses a lookahead (?=...)" + why;
    if (rest.starts_with("?!")) return "uses a negative lookahead (?!...)" + why;
    if (rest.starts_with("?<=")) return "uses a lookbehind (?<=...)" + why;
    if (rest.starts_with("?<!")) return "uses a negative lookbehind (?<!...)" + why;
    if (rest.starts_with("?<"))
      return "uses a named group (?<name>...), which RE2 does not support; write (?P<name>...)";
  }
  return {};
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
  // The hooks the host calls are the ones Stream overrides.
  using filter_type = Stream;
  explicit Guardrails(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"pii", "rules", "apply_to", "redaction", "stream_window"});
    auto apply = c.string("/apply_to", "both");
    if (apply != "input" && apply != "output" && apply != "both")
      c.error("/apply_to", "must be \"input\", \"output\" or \"both\", not \"" + apply + "\"");
    input_ = apply != "output";
    output_ = apply != "input";
    redaction_ = c.string("/redaction", "[REDACTED:{name}]");
    window_ = static_cast<size_t>(c.integer("/stream_window", 128, 8, 65536));

    for (const auto& name : c.keys("/pii")) {
      const char* pattern = nullptr;
      for (auto [n, p] : kPii)
        if (name == n) pattern = p;
      if (!pattern) {
        c.error("/pii/" + name, "unknown detector '" + name + "' (email, phone, card, api_key)");
        continue;
      }
      auto re = compile(pattern, false);
      if (!re->ok()) {  // a bug of ours, not of the config
        c.error("/pii/" + name, "built-in detector does not compile: " + re->error());
        continue;
      }
      rules_.push_back({name, std::move(re), action(c, "/pii/" + name), name == "card"});
    }
    for (size_t i = 0, n = c.json().size("/rules"); i < n; ++i) {
      std::string at = "/rules/" + std::to_string(i);
      for (const auto& k : c.keys(at))
        if (k != "name" && k != "regex" && k != "keywords" && k != "action" && k != "ignore_case")
          c.error(at + "/" + k,
                  "unknown key '" + k + "' (expected name, regex, keywords, action, ignore_case)");
      std::string name = c.string(at + "/name", "rule" + std::to_string(i + 1));
      bool icase = c.boolean(at + "/ignore_case", true);
      std::string pattern, source;
      if (auto re = c.json().string(at + "/regex")) {
        pattern = *re;
        source = at + "/regex";
        if (auto why = ecmascript_only(pattern); !why.empty()) {
          c.error(source, why);
          continue;
        }
      } else if (c.json().size(at + "/keywords")) {
        // Whole words, any of them.
        for (size_t k = 0, m = c.json().size(at + "/keywords"); k < m; ++k) {
          auto word = c.json().string(at + "/keywords/" + std::to_string(k)).value_or("");
          pattern += (pattern.empty() ? "" : "|") + RE2::QuoteMeta(word);
        }
        pattern = "\\b(?:" + pattern + ")\\b";
        source = at + "/keywords";
      } else {
        c.error(at, "needs regex = \"...\" or keywords = [...]");
        continue;
      }
      auto re = compile(pattern, icase);
      if (!re->ok()) {
        c.error(source, "is not a valid regular expression (RE2 syntax): " + re->error());
        continue;
      }
      rules_.push_back({name, std::move(re), action(c, at + "/action")});
    }
    // Not when a rule was refused: its own error says what is wrong.
    if (rules_.empty() && !c.failed())
      c.error("", "no rules: set pii = { email = \"redact\", ... } or rules = [...]");
  }

  std::unique_ptr<ferry::sdk::Filter> new_filter(Context&) override {
    return std::make_unique<Stream>(*this);
  }

  bool input() const { return input_; }
  bool output() const { return output_; }
  size_t window() const { return window_; }
  // The most a stream holds back for one match that runs across the release
  // point: it bounds the text scanned per chunk to hold_limit() + the chunk.
  size_t hold_limit() const { return 4 * window_; }

  // Every rule's matches in text, earliest first, overlapping ones dropped.
  std::vector<Match> scan(std::string_view text) const {
    std::vector<Match> out;
    for (const auto& rule : rules_) {
      size_t pos = 0;
      re2::StringPiece m;
      while (pos <= text.size() && rule.re->Match(text, pos, text.size(), RE2::UNANCHORED, &m, 1)) {
        size_t begin = static_cast<size_t>(m.data() - text.data()), end = begin + m.size();
        if (end == begin) {  // an empty match: move on by one character
          pos = end + 1;
          while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
          continue;
        }
        pos = end;
        if (rule.luhn && !luhn_ok(std::string_view(text.data() + begin, end - begin))) continue;
        out.push_back({begin, end, &rule});
      }
    }
    std::sort(out.begin(), out.end(), [](const Match& a, const Match& b) { return a.begin < b.begin; });
    std::vector<Match> kept;
    for (const auto& m : out)
      if (kept.empty() || m.begin >= kept.back().end) kept.push_back(m);
    return kept;
  }

  // text with its first `upto` characters checked: redactions applied there,
  // flags and blocks noted. Matches come from scan(text): sorted, disjoint,
  // inside text (no bounds-checked, throwing substr on the request path).
  std::string apply(std::string_view text, const std::vector<Match>& matches, size_t upto,
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
          out.append(text.data() + at, m.begin - at);
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
    out.append(text.data() + at, upto - at);
    return out;
  }
  std::string apply_all(std::string_view text, Findings& f) const {
    return apply(text, scan(text), text.size(), f);
  }

 private:
  static std::unique_ptr<const RE2> compile(const std::string& pattern, bool icase) {
    RE2::Options o;
    o.set_log_errors(false);    // the error goes to the config report instead
    o.set_never_capture(true);  // only the whole match is used
    o.set_case_sensitive(!icase);
    return std::make_unique<const RE2>(pattern, o);
  }

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
    std::string original(*text);  // the view ends when the document changes
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
    size_t upto = 0;  // how much of the held text may go out now
    if (last)
      upto = held.size();
    else if (held.size() > owner_.window())
      upto = held.size() - owner_.window();
    if (!cut_ && upto > 0) {
      auto matches = owner_.scan(held);
      for (const auto& m : matches) {
        if (m.begin >= upto) break;
        if (m.end <= upto) continue;
        // Never release part of a match: hold it back whole. One that would
        // keep more than hold_limit() characters back (a key that never ends)
        // is acted on as it stands, so that a stream's memory and the text
        // scanned per chunk stay bounded.
        upto = held.size() - m.begin <= owner_.hold_limit() ? m.begin : m.end;
        break;
      }
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
