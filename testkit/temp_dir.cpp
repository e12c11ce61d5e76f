#include "testkit/temp_dir.hpp"

#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>

namespace ringmart::testkit {

TempDir::TempDir(std::string_view prefix, const std::filesystem::path& parent) {
  std::string templ = (parent / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + templ);
  }
  path_ = std::filesystem::absolute(templ).string();
}

TempDir::~TempDir() {
  if (std::getenv(kKeepTestDirsVariable) != nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::operator/(std::string_view name) const {
  return path_ + "/" + std::string(name);
}

}  // namespace ringmart::testkit
