// ringmart::olist — a small RFC 4180 CSV reader (enough for the Olist files):
// quoted and unquoted fields, "" inside quotes, CRLF or LF line ends, a UTF-8
// byte-order mark at the start, newlines inside quoted fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringmart::olist {

struct CsvRow {
  size_t line = 0;  ///< 1-based line number where the record starts
  std::vector<std::string> fields;
};

struct CsvTable {
  std::string file;                 ///< the file name, for messages
  std::vector<std::string> header;  ///< the first record
  std::vector<CsvRow> rows;         ///< the other records; blank lines are skipped

  /// Index of a header column, or nullopt.
  std::optional<size_t> column(std::string_view name) const;
};

/// Parses CSV text. `name` is used in error messages ("name:line: ...").
/// Errors: an unterminated quote, a character after a closing quote, a record
/// whose field count differs from the header's, an empty input.
std::expected<CsvTable, std::string> parse_csv(std::string_view text, std::string name);

/// Reads and parses a CSV file. Errors: the file is missing or unreadable
/// (message names the path), or any error of parse_csv.
std::expected<CsvTable, std::string> read_csv(const std::filesystem::path& path);

/// Parses a non-negative decimal amount with at most two decimals into cents,
/// exactly (no floating point): "58.90" -> 5890, "0.85" -> 85, "1234.5" ->
/// 123450, "12" -> 1200, ".5" -> 50. Returns nullopt for anything else (empty,
/// sign, more than two decimals, non-digits, overflow).
std::optional<int64_t> parse_cents(std::string_view text);

/// Parses a non-negative decimal integer; nullopt for anything else.
std::optional<int64_t> parse_int(std::string_view text);

}  // namespace ringmart::olist
