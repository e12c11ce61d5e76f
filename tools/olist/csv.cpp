#include "tools/olist/csv.hpp"

#include <fstream>
#include <limits>
#include <sstream>

namespace ringmart::olist {

std::optional<size_t> CsvTable::column(std::string_view name) const {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return i;
  }
  return std::nullopt;
}

namespace {

std::string where(const std::string& name, size_t line) {
  return name + ":" + std::to_string(line) + ": ";
}

bool blank(const std::vector<std::string>& fields) {
  return fields.size() == 1 && fields[0].empty();
}

}  // namespace

std::expected<CsvTable, std::string> parse_csv(std::string_view text, std::string name) {
  CsvTable table;
  table.file = std::move(name);
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);

  size_t pos = 0;
  size_t line = 1;
  bool have_header = false;
  while (pos < text.size()) {
    CsvRow row;
    row.line = line;
    std::string field;
    bool end_of_record = false;
    while (!end_of_record) {
      if (pos < text.size() && text[pos] == '"') {
        // Quoted field.
        ++pos;
        const size_t start_line = line;
        for (;;) {
          if (pos >= text.size()) {
            return std::unexpected(where(table.file, start_line) + "unterminated quoted field");
          }
          const char c = text[pos++];
          if (c == '"') {
            if (pos < text.size() && text[pos] == '"') {
              field += '"';
              ++pos;
            } else {
              break;
            }
          } else {
            if (c == '\n') ++line;
            field += c;
          }
        }
        // After a closing quote: separator, line end or end of input.
        if (pos < text.size() && text[pos] != ',' && text[pos] != '\n' && text[pos] != '\r') {
          return std::unexpected(where(table.file, line) + "unexpected character after quote");
        }
      } else {
        while (pos < text.size() && text[pos] != ',' && text[pos] != '\n' && text[pos] != '\r') {
          if (text[pos] == '"') {
            return std::unexpected(where(table.file, line) + "quote inside unquoted field");
          }
          field += text[pos++];
        }
      }
      row.fields.push_back(std::move(field));
      field.clear();
      if (pos >= text.size()) {
        end_of_record = true;
      } else if (text[pos] == ',') {
        ++pos;
      } else {
        if (text[pos] == '\r') ++pos;
        if (pos < text.size() && text[pos] == '\n') ++pos;
        ++line;
        end_of_record = true;
      }
    }
    if (blank(row.fields)) continue;
    if (!have_header) {
      table.header = std::move(row.fields);
      have_header = true;
      continue;
    }
    if (row.fields.size() != table.header.size()) {
      return std::unexpected(where(table.file, row.line) + "expected " +
                             std::to_string(table.header.size()) + " fields, found " +
                             std::to_string(row.fields.size()));
    }
    table.rows.push_back(std::move(row));
  }
  if (!have_header) return std::unexpected(table.file + ": empty file (no header)");
  return table;
}

std::expected<CsvTable, std::string> read_csv(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected(path.string() + ": cannot open file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return std::unexpected(path.string() + ": read error");
  return parse_csv(buffer.str(), path.string());
}

std::optional<int64_t> parse_int(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    if (value > (std::numeric_limits<int64_t>::max() - (c - '0')) / 10) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::optional<int64_t> parse_cents(std::string_view text) {
  const size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (dot != std::string_view::npos && frac.empty()) return std::nullopt;  // "12."
  if (whole.empty() && frac.empty()) return std::nullopt;
  if (frac.size() > 2) return std::nullopt;
  int64_t units = 0;
  if (!whole.empty()) {
    const auto w = parse_int(whole);
    if (!w || *w > std::numeric_limits<int64_t>::max() / 100 - 99) return std::nullopt;
    units = *w;
  }
  int64_t cents = 0;
  if (!frac.empty()) {
    const auto f = parse_int(frac);
    if (!f) return std::nullopt;
    cents = frac.size() == 1 ? *f * 10 : *f;
  }
  return units * 100 + cents;
}

}  // namespace ringmart::olist
