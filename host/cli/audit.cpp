#include "host/cli/audit.h"

#include <fstream>
#include <iostream>

#include "core/crypto/sealer.h"
#include "core/json/parse.h"

namespace ferry::cli {

namespace {
constexpr const char* kAuditUsage =
    "usage: ferry audit decrypt FILE [--key-env VAR]...\n"
    "  prints the audit log FILE with the bodies the audit plugin sealed (encryption_key_env) opened;\n"
    "  the keys are read from the variables named (default FERRY_AUDIT_KEY), older keys after the newest.\n";
}  // namespace

int audit(const std::vector<std::string>& args) {
  if (args.size() < 2 || args[0] != "decrypt") {
    std::cerr << kAuditUsage;
    return 2;
  }
  std::string file = args[1];
  std::vector<std::string> envs;
  for (size_t i = 2; i < args.size(); ++i) {
    if (args[i] != "--key-env" || i + 1 >= args.size()) {
      std::cerr << kAuditUsage;
      return 2;
    }
    envs.push_back(args[++i]);
  }
  if (envs.empty()) envs.push_back("FERRY_AUDIT_KEY");
  std::string error;
  auto sealer = crypto::Sealer::from_env(envs[0], {envs.begin() + 1, envs.end()}, error);
  if (!sealer) {
    std::cerr << "ferry audit: " << error << "\n";
    return 2;
  }
  std::ifstream in(file);
  if (!in) {
    std::cerr << "ferry audit: cannot open " << file << "\n";
    return 2;
  }
  int status = 0;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    json::Value v;
    if (!json::parse(line, v, json::ParseLimits::defaults()) || !v.is_object()) {
      std::cout << line << "\n";
      continue;
    }
    const json::Value* id =
        v.contains("request_id") && v["request_id"].is_string() ? &v["request_id"] : nullptr;
    for (const char* field : {"request", "response", "response_text"}) {
      if (!v.contains(field) || !v[field].is_string() ||
          !crypto::Sealer::is_sealed(v[field].get<std::string>()))
        continue;
      auto plain = sealer->open(v[field].get<std::string>(), id ? id->get<std::string>() : "", &error);
      if (!plain) {
        std::cerr << "ferry audit: " << file << ":" << n << ": " << field << ": " << error << "\n";
        status = 1;
        continue;
      }
      json::Value body;
      if (std::string_view(field) != "response_text" &&
          json::parse(*plain, body, json::ParseLimits::defaults()))
        v[field] = std::move(body);
      else
        v[field] = std::move(*plain);
    }
    std::cout << json::dump(v) << "\n";
  }
  return status;
}

}  // namespace ferry::cli
