// Shared between markdown_html.cc (blocks) and markdown_html_inline.cc (inline text).
#pragma once

#include <string>

#include "experiment/markdown_html.h"

namespace encserve::experiment::markdown_internal {

// One paragraph's, cell's or heading's text (lines joined by '\n') as HTML.
std::string RenderInline(const std::string& text, const MarkdownHtmlOptions& options);
// `url` when it is relative or http(s) / mailto, else "#".
std::string SafeHref(const std::string& url);

}  // namespace encserve::experiment::markdown_internal
