// A small Markdown → HTML renderer for the Markdown our reports emit (results.md,
// docs/analysis.md), used for report.html and the analysis page's HTML version. Not a general
// CommonMark implementation: it knows ATX headings, paragraphs, pipe tables with an alignment
// row, bullet and numbered lists (one paragraph per item, lazy continuation lines), fenced code
// blocks, and inline `code`, **bold**, *italic*, [links](url), ![images](src) and backslash
// escapes. Underscores are never emphasis (experiment names are snake_case), and raw HTML in
// the Markdown is not passed through: every piece of text is escaped, so a model name or an
// error message cannot inject markup. Output is a pure function of the input.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace encserve::experiment {

// Escapes & < > " ' for HTML text and attribute values.
std::string HtmlEscape(const std::string& text);

struct MarkdownHtmlOptions {
  // Called for every image ![alt](src) with the raw src and alt: markup to put in its place
  // (trusted, inserted as is: e.g. an inline SVG chart), or nullopt for the default. By default
  // a relative src becomes <img>, and any other (http:, data:, …) a plain link: the page never
  // loads anything by itself.
  std::function<std::optional<std::string>(const std::string& src, const std::string& alt)> image;
};

// The HTML body for `markdown` (no <html>/<body> wrapper). Headings get ids from their text
// ("Backend comparison" → id="backend-comparison"; repeats get "-2", "-3", …). Link targets
// other than relative, http(s) and mailto (javascript:, data:, …) become "#".
std::string MarkdownToHtml(const std::string& markdown, const MarkdownHtmlOptions& options = {});

// A complete, self-contained page: doctype, UTF-8 charset, <title> (escaped), an embedded
// stylesheet for the report tables and charts, and `body_html`. No external resources.
std::string HtmlPage(const std::string& title, const std::string& body_html);

}  // namespace encserve::experiment
