// cpp-httplib is compile-heavy: it stays in this file.
#include "tests/support/http.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include "core/sse/sse_parser.h"

namespace ferry::test {
namespace {

httplib::Client client(const std::string& address) {
  httplib::Client c("http://" + address);
  c.set_connection_timeout(5);
  c.set_read_timeout(60);
  c.set_write_timeout(10);
  return c;
}

httplib::Headers to_headers(const HeaderList& list) {
  httplib::Headers h;
  for (const auto& [k, v] : list) h.emplace(k, v);
  return h;
}

std::multimap<std::string, std::string> lower(const httplib::Headers& h) {
  std::multimap<std::string, std::string> out;
  for (const auto& [k, v] : h) {
    std::string key = k;
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.emplace(key, v);
  }
  return out;
}

HttpResponse convert(const httplib::Result& r) {
  HttpResponse out;
  if (!r) {
    out.error = httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  out.headers = lower(r->headers);
  return out;
}

std::string find_header(const std::multimap<std::string, std::string>& headers, std::string name) {
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

}  // namespace

std::string HttpResponse::header(const std::string& name) const { return find_header(headers, name); }

json::Value HttpResponse::json() const {
  auto v = json::Value::parse(body, nullptr, false);
  if (v.is_discarded()) ADD_FAILURE() << "response body is not JSON: " << body;
  return v;
}

HttpResponse http_get(const std::string& address, const std::string& path, const HeaderList& headers) {
  auto c = client(address);
  return convert(c.Get(path, to_headers(headers)));
}

HttpResponse http_post(const std::string& address, const std::string& path, const std::string& body,
                       const HeaderList& headers) {
  auto c = client(address);
  return convert(c.Post(path, to_headers(headers), body, "application/json"));
}

std::string SseResponse::header(const std::string& name) const { return find_header(headers, name); }

std::vector<json::Value> SseResponse::chunks() const {
  std::vector<json::Value> out;
  for (const auto& e : events) {
    if (e == "[DONE]") continue;
    auto v = json::Value::parse(e, nullptr, false);
    if (v.is_discarded()) ADD_FAILURE() << "SSE event is not JSON: " << e;
    out.push_back(std::move(v));
  }
  return out;
}

std::string SseResponse::content() const {
  std::string out;
  for (const auto& c : chunks()) {
    if (!c.contains("choices") || !c["choices"].is_array()) continue;
    for (const auto& ch : c["choices"]) {
      if (ch.contains("delta") && ch["delta"].contains("content") && ch["delta"]["content"].is_string())
        out += ch["delta"]["content"].get<std::string>();
    }
  }
  return out;
}

SseResponse http_post_sse(const std::string& address, const std::string& path, const std::string& body,
                          const HeaderList& headers, const std::function<bool(std::string_view)>& on_data) {
  auto c = client(address);
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = to_headers(headers);
  req.set_header("Content-Type", "application/json");
  req.body = body;
  SseResponse out;
  sse::Parser parser;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    std::string_view piece(data, len);
    out.raw.append(piece);
    parser.feed(piece, [&](const sse::Event& e) { out.events.push_back(e.data); });
    return on_data ? on_data(piece) : true;
  };
  auto r = c.send(req);
  if (!r) {
    out.error = httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.headers = lower(r->headers);
  // Error answers are not streamed: their body is not given to the receiver.
  if (out.raw.empty()) out.raw = r->body;
  return out;
}

}  // namespace ferry::test
