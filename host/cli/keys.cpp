// ferry keys: manage the auth plugin's virtual API keys through the admin API
// of a running ferryd (so that every instance sharing its state sees them).
#include "host/cli/keys.h"

#include <openssl/sha.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace ferry::cli {
namespace {

using nlohmann::json;

constexpr const char* kKeysUsage =
    "usage: ferry keys list   [--admin HOST:PORT] [--plugin NAME]\n"
    "       ferry keys create --owner NAME [--team TEAM] [--models a,b*] [--pipelines p,q]\n"
    "                         [--expires-in-days N | --expires 2027-01-31] [--admin HOST:PORT] [--plugin "
    "NAME]\n"
    "       ferry keys rotate ID [--grace-hours H]   a new secret; the old one works for H hours (24)\n"
    "       ferry keys revoke ID [--admin HOST:PORT] [--plugin NAME]\n"
    "       ferry keys hash KEY      print the SHA-256 to list a key in the TOML (keys = [{ sha256 = ... "
    "}])\n"
    "  --admin defaults to 127.0.0.1:9090, --plugin to auth (the [middleware.NAME] block);\n"
    "  FERRY_ADMIN_TOKEN is sent as the admin bearer token when set.\n";

json list_of(const std::string& csv) {
  json out = json::array();
  size_t start = 0;
  while (start <= csv.size() && !csv.empty()) {
    auto comma = csv.find(',', start);
    std::string item = csv.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string date(int64_t unix_s) {
  if (unix_s == 0) return "never";
  time_t t = static_cast<time_t>(unix_s);
  tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string join(const json& a) {
  std::string out;
  for (const auto& v : a) {
    if (!out.empty()) out += ',';
    out += v.get<std::string>();  // not ("," + ...): g++ 12 warns falsely (-Wrestrict) on that
  }
  return out.empty() ? "*" : out;
}

}  // namespace

int keys(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << kKeysUsage;
    return 2;
  }
  std::string command = args[0];
  std::string admin = "127.0.0.1:9090", plugin = "auth";
  std::vector<std::string> positional;
  json body = json::object();
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= args.size()) return std::nullopt;
      return args[++i];
    };
    std::optional<std::string> v;
    if (!a.starts_with("--")) {
      positional.push_back(a);
      continue;
    }
    if (!(v = value())) {
      std::cerr << "ferry keys: " << a << " needs a value\n" << kKeysUsage;
      return 2;
    }
    if (a == "--admin")
      admin = *v;
    else if (a == "--plugin")
      plugin = *v;
    else if (a == "--owner" || a == "--team" || a == "--expires")
      body[a.substr(2)] = *v;
    else if (a == "--models" || a == "--pipelines")
      body[a.substr(2)] = list_of(*v);
    else if (a == "--expires-in-days")
      body["expires_in_days"] = std::atof(v->c_str());
    else if (a == "--grace-hours")
      body["grace_s"] = std::atof(v->c_str()) * 3600;
    else {
      std::cerr << "ferry keys: unknown option " << a << "\n" << kKeysUsage;
      return 2;
    }
  }

  if (command == "hash") {
    if (positional.size() != 1) {
      std::cerr << kKeysUsage;
      return 2;
    }
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(positional[0].data()), positional[0].size(), d);
    for (unsigned char c : d) std::printf("%02x", c);
    std::printf("\n");
    return 0;
  }

  auto colon = admin.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "ferry keys: --admin must be HOST:PORT, not '" << admin << "'\n";
    return 2;
  }
  httplib::Client client(admin.substr(0, colon), std::atoi(admin.c_str() + colon + 1));
  client.set_connection_timeout(5);
  client.set_read_timeout(15);
  httplib::Headers headers;
  if (const char* token = std::getenv("FERRY_ADMIN_TOKEN"))
    headers.emplace("Authorization", std::string("Bearer ") + token);
  std::string base = "/admin/plugins/" + plugin + "/keys";

  bool known = (command == "list" && positional.empty()) || (command == "create" && positional.empty()) ||
               ((command == "revoke" || command == "rotate") && positional.size() == 1);
  if (!known) {
    std::cerr << kKeysUsage;
    return 2;
  }
  httplib::Result res = command == "list"     ? client.Get(base, headers)
                        : command == "create" ? client.Post(base, headers, body.dump(), "application/json")
                        : command == "rotate" ? client.Post(base + "/" + positional[0] + "/rotate", headers,
                                                            body.dump(), "application/json")
                                              : client.Delete(base + "/" + positional[0], headers);
  if (!res) {
    std::cerr << "ferry keys: cannot reach the admin API at " << admin << " ("
              << httplib::to_string(res.error()) << "); is ferryd running with [admin] enabled?\n";
    return 1;
  }
  json answer = json::parse(res->body, nullptr, false);
  if (res->status >= 300) {
    std::string message = answer.is_object() && answer.contains("error")
                              ? answer["error"].value("message", res->body)
                              : res->body;
    std::cerr << "ferry keys: " << res->status << ": " << message << "\n";
    return 1;
  }
  if (command == "list") {
    std::printf("%-12s  %-16s  %-12s  %-20s  %-20s  %s\n", "ID", "OWNER", "TEAM", "MODELS", "EXPIRES",
                "STATE");
    for (const auto& k : answer.value("keys", json::array())) {
      std::string state = k.value("revoked", false) ? "revoked" : "active";
      if (k.value("source", "") == "config") state += " (config)";
      std::printf("%-12s  %-16s  %-12s  %-20s  %-20s  %s\n", k.value("id", "").c_str(),
                  k.value("owner", "").c_str(), k.value("team", "").c_str(),
                  join(k.value("models", json::array())).c_str(),
                  date(k.value("expires", int64_t{0})).c_str(), state.c_str());
    }
  } else if (command == "create") {
    std::cout << answer.value("key", "") << "\n";
    std::cerr << "key " << answer.value("id", "") << " for " << answer.value("owner", "")
              << " created; the key above is shown once and cannot be recovered.\n";
  } else if (command == "rotate") {
    std::cout << answer.value("key", "") << "\n";
    std::cerr << "key " << answer.value("id", "")
              << " has a new secret, shown above once; the previous one works until "
              << date(answer.value("previous_expires", int64_t{0})) << ".\n";
  } else {
    std::cout << "revoked " << answer.value("id", positional[0]) << "\n";
  }
  return 0;
}

}  // namespace ferry::cli
