// ringmart::testkit::TempDir — a fresh directory for the files of one test or
// benchmark run (LMDB environments, sockets, config), removed at the end.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace ringmart::testkit {

/// Environment variable that keeps every TempDir for a post-mortem: when set
/// (to anything), destructors leave the directories in place.
inline constexpr const char* kKeepTestDirsVariable = "RINGMART_KEEP_TEST_DIRS";

/// The directory "<parent>/<prefix>-XXXXXX", made by mkdtemp(3) (mode 0700,
/// a name no other process holds), and removed with everything in it when the
/// TempDir is destroyed, unless kKeepTestDirsVariable is set.
///
/// `parent` must exist; by default it is TMPDIR, else /tmp
/// (std::filesystem::temp_directory_path). For LMDB or fsync figures pick a parent on the disk
/// being measured (/var/tmp rather than a tmpfs /tmp).
/// Errors: the constructor throws std::system_error (the errno of mkdtemp:
/// ENOENT for a missing parent, ENOSPC, EACCES). Removal errors are ignored.
/// Thread-safety: distinct objects are independent; one object is read-only
/// after construction.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "ringmart",
                   const std::filesystem::path& parent = std::filesystem::temp_directory_path());
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// The absolute path of the directory, without a trailing '/'.
  const std::string& path() const { return path_; }
  /// path() + "/" + name: a file or directory inside it (not created).
  std::string operator/(std::string_view name) const;

 private:
  std::string path_;
};

}  // namespace ringmart::testkit
