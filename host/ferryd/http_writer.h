#pragma once

#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "core/util/headers.h"

namespace ferry::host {

// An HTTP answer on the client's connection, in the bytes of whatever dialect
// the frontend speaks. The listener implements it over Beast; nothing else
// here knows about sockets.
class HttpWriter {
 public:
  virtual ~HttpWriter() = default;
  // A whole answer. False once the client is gone.
  virtual boost::asio::awaitable<bool> send(int status, std::string_view content_type, std::string_view body,
                                            const util::Headers& headers) = 0;
  // A 200 whose body follows in pieces (Server-Sent Events).
  virtual void begin_stream(std::string_view content_type, const util::Headers& headers) = 0;
  // Body bytes, already framed by the dialect; written at flush().
  virtual void queue(std::string_view bytes) = 0;
  virtual void end_stream() = 0;
  virtual boost::asio::awaitable<bool> flush() = 0;
};

}  // namespace ferry::host
