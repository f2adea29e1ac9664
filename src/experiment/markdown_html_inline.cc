// Inline Markdown of report text: `code`, **bold**, *italic*, [links](url), ![images](src) and
// backslash escapes; everything else is escaped text. Blocks are in markdown_html.cc.
#include <cctype>
#include <string_view>

#include "experiment/markdown_html.h"
#include "experiment/markdown_html_internal.h"
#include "experiment/svg_chart.h"

namespace encserve::experiment {

std::string HtmlEscape(const std::string& text) {
  return EscapeMarkup(text, "&#39;");  // (svg_chart.h)
}

namespace markdown_internal {
namespace {

constexpr size_t kNone = std::string_view::npos;

bool IsAsciiPunct(char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
         (c >= '{' && c <= '~');
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n';
}

// The URL without spaces and control characters (browsers drop tabs and newlines anywhere in a
// URL, and leading and trailing controls): what scheme checks look at.
std::string Compact(const std::string& url) {
  std::string out;
  for (char c : url) {
    if (static_cast<unsigned char>(c) > ' ') out += c;
  }
  return out;
}

// The URL's scheme as written ("" when it has none: a relative URL).
std::string Scheme(const std::string& raw) {
  const std::string url = Compact(raw);
  for (size_t i = 0; i < url.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(url[i]);
    if (c == ':') return i == 0 ? "" : url.substr(0, i);
    if (!(std::isalpha(c) || (i > 0 && (std::isdigit(c) || c == '+' || c == '-' || c == '.')))) {
      return "";
    }
  }
  return "";
}

// No scheme and not network-path ("//host/…"; browsers read '\\' as '/' there).
bool IsRelative(const std::string& url) {
  const std::string c = Compact(url);
  const bool network =
      c.size() >= 2 && (c[0] == '/' || c[0] == '\\') && (c[1] == '/' || c[1] == '\\');
  return Scheme(url).empty() && !network;
}

// Backslash escapes removed ("\|" → "|"): for alt text and URLs.
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && IsAsciiPunct(s[i + 1])) ++i;
    out += s[i];
  }
  return out;
}

// The index of the ']' closing the '[' at `open`, or kNone.
size_t CloseBracket(std::string_view s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '[') {
      ++depth;
    } else if (s[i] == ']' && --depth == 0) {
      return i;
    }
  }
  return kNone;
}

// The index of the ')' closing the '(' at `open` (nested pairs allowed), or kNone.
size_t CloseParen(std::string_view s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '(') {
      ++depth;
    } else if (s[i] == ')' && --depth == 0) {
      return i;
    } else if (s[i] == '\n') {
      return kNone;
    }
  }
  return kNone;
}

class Inline {
 public:
  explicit Inline(const MarkdownHtmlOptions& options) : options_(options) {}

  std::string Render(std::string_view s) const {
    std::string out;
    for (size_t i = 0; i < s.size();) {
      const char c = s[i];
      size_t used = 0;
      if (c == '\\' && i + 1 < s.size() && IsAsciiPunct(s[i + 1])) {
        out += HtmlEscape(std::string(1, s[i + 1]));
        used = 2;
      } else if (c == '`') {
        used = CodeSpan(s, i, out);
      } else if (c == '!' && i + 1 < s.size() && s[i + 1] == '[') {
        used = LinkOrImage(s, i + 1, /*image=*/true, out);
        if (used > 0) ++used;
      } else if (c == '[') {
        used = LinkOrImage(s, i, /*image=*/false, out);
      } else if (c == '*') {
        used = Emphasis(s, i, out);
      }
      if (used == 0) {
        out += HtmlEscape(std::string(1, c));
        used = 1;
      }
      i += used;
    }
    return out;
  }

 private:
  // A run of n backticks up to the next run of exactly n; without one the run is literal text.
  static size_t CodeSpan(std::string_view s, size_t i, std::string& out) {
    size_t n = 0;
    while (i + n < s.size() && s[i + n] == '`') ++n;
    for (size_t k = s.find('`', i + n); k != kNone;) {
      size_t m = 0;
      while (k + m < s.size() && s[k + m] == '`') ++m;
      if (m == n) {
        std::string code(s.substr(i + n, k - i - n));
        for (char& ch : code) ch = ch == '\n' ? ' ' : ch;
        if (code.size() >= 2 && code.front() == ' ' && code.back() == ' ' &&
            code.find_first_not_of(' ') != std::string::npos) {
          code = code.substr(1, code.size() - 2);
        }
        out += std::string("<code>") + HtmlEscape(code) + "</code>";
        return k + m - i;
      }
      k = s.find('`', k + m);
    }
    out += std::string(n, '`');
    return n;
  }

  // [text](url) or, with `image`, the bracketed part of ![alt](src); 0 when not one.
  size_t LinkOrImage(std::string_view s, size_t open, bool image, std::string& out) const {
    const size_t close = CloseBracket(s, open);
    if (close == kNone || close + 1 >= s.size() || s[close + 1] != '(') return 0;
    const size_t end = CloseParen(s, close + 1);
    if (end == kNone) return 0;
    std::string_view text = s.substr(open + 1, close - open - 1);
    std::string url = Unescape(s.substr(close + 2, end - close - 2));
    while (!url.empty() && IsSpace(url.back())) url.pop_back();
    url.erase(0, url.find_first_not_of(" \t"));
    if (image) {
      out += Image(url, Unescape(text));
    } else {
      out += std::string("<a href=\"") + HtmlEscape(SafeHref(url)) + "\">" + Render(text) + "</a>";
    }
    return end + 1 - open;
  }

  std::string Image(const std::string& src, const std::string& alt) const {
    if (options_.image) {
      if (std::optional<std::string> markup = options_.image(src, alt)) return *markup;
    }
    if (IsRelative(src)) {
      return std::string("<img src=\"") + HtmlEscape(src) + "\" alt=\"" + HtmlEscape(alt) + "\">";
    }
    return std::string("<a href=\"") + HtmlEscape(SafeHref(src)) + "\">" +
           HtmlEscape(alt.empty() ? src : alt) + "</a>";
  }

  // **strong** or *em*: the delimiter must touch text on its inner sides.
  size_t Emphasis(std::string_view s, size_t i, std::string& out) const {
    const size_t n = i + 1 < s.size() && s[i + 1] == '*' ? 2 : 1;
    const std::string_view delim = s.substr(i, n);
    if (i + n >= s.size() || IsSpace(s[i + n])) return 0;
    for (size_t k = s.find(delim, i + n + 1); k != kNone; k = s.find(delim, k + 1)) {
      if (IsSpace(s[k - 1]) || (n == 1 && k + 1 < s.size() && s[k + 1] == '*')) continue;
      const char* tag = n == 2 ? "strong" : "em";
      out += std::string("<") + tag + ">" + Render(s.substr(i + n, k - i - n)) + "</" + tag + ">";
      return k + n - i;
    }
    if (n == 2) {  // "**" without a partner: literal
      out += "**";
      return 2;
    }
    return 0;
  }

  const MarkdownHtmlOptions& options_;
};

}  // namespace

std::string SafeHref(const std::string& url) {
  const std::string scheme = Scheme(url);
  std::string lower;
  for (char c : scheme) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.empty() || lower == "http" || lower == "https" || lower == "mailto") return url;
  return "#";
}

std::string RenderInline(const std::string& text, const MarkdownHtmlOptions& options) {
  return Inline(options).Render(text);
}

}  // namespace markdown_internal
}  // namespace encserve::experiment
