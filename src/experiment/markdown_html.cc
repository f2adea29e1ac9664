// Block structure of report Markdown: headings, paragraphs, pipe tables, lists and fenced code.
// Inline text is rendered by markdown_html_inline.cc.
#include "experiment/markdown_html.h"

#include <cctype>
#include <map>
#include <sstream>
#include <vector>

#include "experiment/markdown_html_internal.h"

namespace encserve::experiment {
namespace {

using markdown_internal::RenderInline;

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

bool IsBlank(const std::string& line) {
  return Trim(line).empty();
}

// Up to three spaces of indentation, as Markdown allows before a block marker.
size_t Indent(const std::string& line) {
  size_t n = 0;
  while (n < line.size() && n < 4 && line[n] == ' ') ++n;
  return n;
}

// 1–6 for an ATX heading ("## Points"), else 0.
int HeadingLevel(const std::string& line) {
  const size_t at = Indent(line);
  if (at > 3) return 0;
  size_t n = 0;
  while (at + n < line.size() && line[at + n] == '#') ++n;
  if (n == 0 || n > 6) return 0;
  return at + n == line.size() || line[at + n] == ' ' ? static_cast<int>(n) : 0;
}

// An opening code fence: ``` or ~~~ (three or more), with an optional info string.
struct Fence {
  char c = 0;
  size_t n = 0;
  std::string info;
};
bool OpenFence(const std::string& line, Fence* f) {
  const size_t at = Indent(line);
  if (at > 3 || at >= line.size() || (line[at] != '`' && line[at] != '~')) return false;
  size_t n = 0;
  while (at + n < line.size() && line[at + n] == line[at]) ++n;
  if (n < 3) return false;
  const std::string info = Trim(line.substr(at + n));
  if (line[at] == '`' && info.find('`') != std::string::npos) return false;
  *f = {line[at], n, info.substr(0, info.find_first_of(" \t"))};
  return true;
}
bool ClosesFence(const std::string& line, const Fence& f) {
  const std::string t = Trim(line);
  return Indent(line) <= 3 && t.size() >= f.n && t.find_first_not_of(f.c) == std::string::npos;
}

// A list item marker ("- ", "* ", "+ ", "12. ", "3) "): its kind, number and text.
struct Item {
  bool ordered = false;
  long number = 0;
  std::string text;
};
bool ListItem(const std::string& line, Item* item) {
  const size_t at = Indent(line);
  if (at > 3 || at >= line.size()) return false;
  size_t end = at;
  if (line[at] == '-' || line[at] == '*' || line[at] == '+') {
    end = at + 1;
  } else {
    while (end < line.size() && end - at < 9 && std::isdigit(static_cast<unsigned char>(line[end])))
      ++end;
    if (end == at || end >= line.size() || (line[end] != '.' && line[end] != ')')) return false;
    ++end;
  }
  if (end < line.size() && line[end] != ' ' && line[end] != '\t') return false;
  if (end == line.size() && line[at] == '*') return false;  // a lone '*' is text
  item->ordered = std::isdigit(static_cast<unsigned char>(line[at])) != 0;
  item->number = item->ordered ? std::stol(line.substr(at, end - 1 - at)) : 0;
  item->text = Trim(line.substr(end));
  return true;
}

// A table row's cells: outer pipes dropped, split on pipes that are not backslash-escaped.
std::vector<std::string> SplitRow(const std::string& line) {
  std::string s = Trim(line);
  if (!s.empty() && s.front() == '|') s.erase(0, 1);
  if (!s.empty() && s.back() == '|' && (s.size() < 2 || s[s.size() - 2] != '\\')) s.pop_back();
  std::vector<std::string> cells(1);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      cells.back() += s.substr(i++, 2);
    } else if (s[i] == '|') {
      cells.emplace_back();
    } else {
      cells.back() += s[i];
    }
  }
  for (std::string& c : cells) c = Trim(c);
  return cells;
}

// The alignment row under a table header ("|---|---:|:-:|"): one style per column, or empty
// when `line` is not one.
std::vector<std::string> Alignments(const std::string& line) {
  if (line.find('-') == std::string::npos || line.find('|') == std::string::npos) return {};
  std::vector<std::string> out;
  for (const std::string& cell : SplitRow(line)) {
    if (cell.empty() || cell.find_first_not_of(":-") != std::string::npos ||
        cell.find('-') == std::string::npos ||
        cell.find(':', 1) < cell.size() - 1) {  // a ':' only at either end
      return {};
    }
    const bool left = cell.front() == ':', right = cell.back() == ':';
    out.push_back(left && right ? "center" : right ? "right" : left ? "left" : "");
  }
  return out;
}

class Renderer {
 public:
  Renderer(const std::string& markdown, const MarkdownHtmlOptions& options)
      : lines_(SplitLines(markdown)), options_(options) {}

  std::string Run() {
    while (i_ < lines_.size()) {
      if (IsBlank(lines_[i_])) {
        ++i_;
      } else if (!StartBlock()) {
        Paragraph();
      }
    }
    return out_;
  }

 private:
  bool IsTableStart(size_t i) const {
    return lines_[i].find('|') != std::string::npos && i + 1 < lines_.size() &&
           Alignments(lines_[i + 1]).size() == SplitRow(lines_[i]).size();
  }

  // Whether line i opens a block other than a paragraph (such a line also ends one).
  bool OpensBlock(size_t i) const {
    Fence f;
    Item item;
    return HeadingLevel(lines_[i]) > 0 || OpenFence(lines_[i], &f) || ListItem(lines_[i], &item) ||
           IsTableStart(i);
  }

  // Renders the block at i_ when it is not a paragraph; false for a paragraph.
  bool StartBlock() {
    Fence f;
    Item item;
    if (const int level = HeadingLevel(lines_[i_]); level > 0) {
      Heading(level);
    } else if (OpenFence(lines_[i_], &f)) {
      Code(f);
    } else if (ListItem(lines_[i_], &item)) {
      List(item);
    } else if (IsTableStart(i_)) {
      Table();
    } else {
      return false;
    }
    return true;
  }

  std::string Inline(const std::string& text) const { return RenderInline(text, options_); }

  // "Backend comparison" → "backend-comparison"; repeats get "-2", "-3", ….
  std::string Id(const std::string& text) {
    std::string id;
    for (unsigned char c : text) {
      if (std::isalnum(c) || c >= 0x80) {
        id += static_cast<char>(std::tolower(c));
      } else if (c == ' ' || c == '-' || c == '_') {
        id += '-';
      }
    }
    if (id.empty()) id = "section";
    const int seen = ++ids_[id];
    return seen == 1 ? id : id + "-" + std::to_string(seen);
  }

  void Heading(int level) {
    const std::string& line = lines_[i_++];
    const std::string text = Trim(line.substr(Indent(line) + level));
    const std::string h = std::string("h") + std::to_string(level);
    out_ += "<" + h + " id=\"" + HtmlEscape(Id(text)) + "\">" + Inline(text) + "</" + h + ">\n";
  }

  void Code(const Fence& f) {
    out_ += f.info.empty()
                ? "<pre><code>"
                : std::string("<pre><code class=\"language-") + HtmlEscape(f.info) + "\">";
    for (++i_; i_ < lines_.size() && !ClosesFence(lines_[i_], f); ++i_) {
      out_ += HtmlEscape(lines_[i_]) + "\n";
    }
    if (i_ < lines_.size()) ++i_;  // the closing fence; an unclosed block runs to the end
    out_ += "</code></pre>\n";
  }

  // Consecutive items of one kind; a non-blank line that opens no block continues the item.
  void List(const Item& first) {
    const char* tag = first.ordered ? "ol" : "ul";
    out_ += std::string("<") + tag;
    if (first.ordered && first.number != 1)
      out_ += std::string(" start=\"") + std::to_string(first.number) + "\"";
    out_ += ">\n";
    Item item;
    while (i_ < lines_.size() && ListItem(lines_[i_], &item) && item.ordered == first.ordered) {
      std::string text = item.text;
      for (++i_; i_ < lines_.size() && !IsBlank(lines_[i_]) && !OpensBlock(i_); ++i_) {
        text.append("\n").append(Trim(lines_[i_]));
      }
      out_ += std::string("<li>") + Inline(text) + "</li>\n";
    }
    out_ += std::string("</") + tag + ">\n";
  }

  std::string Cell(const char* tag, const std::string& align, const std::string& text) const {
    std::string s = std::string("<") + tag;
    if (!align.empty()) s += " style=\"text-align:" + align + "\"";
    return s + ">" + Inline(text) + "</" + tag + ">";
  }

  // Header, alignment row, then rows up to a blank line or a line that opens another block;
  // rows are padded or cut to the header's width.
  void Table() {
    const std::vector<std::string> head = SplitRow(lines_[i_]);
    const std::vector<std::string> align = Alignments(lines_[i_ + 1]);
    i_ += 2;
    out_ += "<div class=\"table\"><table>\n<thead>\n<tr>";
    for (size_t c = 0; c < head.size(); ++c) out_ += Cell("th", align[c], head[c]);
    out_ += "</tr>\n</thead>\n";
    bool body = false;
    for (; i_ < lines_.size() && !IsBlank(lines_[i_]) && !OpensBlock(i_); ++i_) {
      if (!body) out_ += "<tbody>\n";
      body = true;
      const std::vector<std::string> row = SplitRow(lines_[i_]);
      out_ += "<tr>";
      for (size_t c = 0; c < head.size(); ++c) {
        out_ += Cell("td", align[c], c < row.size() ? row[c] : "");
      }
      out_ += "</tr>\n";
    }
    out_ += body ? "</tbody>\n</table></div>\n" : "</table></div>\n";
  }

  void Paragraph() {
    std::string text = Trim(lines_[i_]);
    for (++i_; i_ < lines_.size() && !IsBlank(lines_[i_]) && !OpensBlock(i_); ++i_) {
      text.append("\n").append(Trim(lines_[i_]));
    }
    out_ += std::string("<p>") + Inline(text) + "</p>\n";
  }

  const std::vector<std::string> lines_;
  const MarkdownHtmlOptions& options_;
  size_t i_ = 0;
  std::string out_;
  std::map<std::string, int> ids_;
};

constexpr const char* kStyle = R"css(
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #1b1b1b; line-height: 1.45; }
h1, h2, h3 { line-height: 1.2; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.8em; }
.table { overflow-x: auto; }
table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; vertical-align: top; }
thead th { background: #f0f2f4; }
tbody tr:nth-child(even) { background: #fafafa; }
td { font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em;
       background: #f2f2f2; padding: .05em .3em; border-radius: 3px; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; border-radius: 4px; }
pre code { background: none; padding: 0; }
.chart { display: block; margin: 1em 0; }
.chart svg { max-width: 100%; height: auto; border: 1px solid #e4e4e4; }
img { max-width: 100%; }
)css";

}  // namespace

std::string MarkdownToHtml(const std::string& markdown, const MarkdownHtmlOptions& options) {
  return Renderer(markdown, options).Run();
}

std::string HtmlPage(const std::string& title, const std::string& body_html) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
         HtmlEscape(title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n" +
         body_html + "</body>\n</html>\n";
}

}  // namespace encserve::experiment
