// The Markdown → HTML renderer behind report.html and the analysis page's HTML
// (src/experiment/markdown_html.h): every construct the reports emit, escaping of any text
// (model names, error messages), safe link targets, images and unclosed constructs.
#include <gtest/gtest.h>

#include <string>

#include "experiment/markdown_html.h"

namespace encserve::experiment {
namespace {

std::string Html(const std::string& md, const MarkdownHtmlOptions& options = {}) {
  return MarkdownToHtml(md, options);
}
size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST(MarkdownHtml, EscapesEveryPieceOfText) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  const std::string html = Html(
      "# Experiment: <script>alert(\"x\")</script>\n\n"
      "status failed: <img src=x onerror=alert(1)> & more\n");
  EXPECT_EQ(html.find("<script"), std::string::npos) << html;
  EXPECT_EQ(html.find("<img"), std::string::npos) << html;
  EXPECT_NE(html.find("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</h1>"), std::string::npos)
      << html;
  EXPECT_NE(html.find("<p>status failed: &lt;img src=x onerror=alert(1)&gt; &amp; more</p>"),
            std::string::npos)
      << html;
}

TEST(MarkdownHtml, HeadingsAndParagraphs) {
  const std::string html = Html(
      "# Experiment analysis\n\nline one\nline two\n\n## Backend comparison\n### a_b\n"
      "## Backend comparison\n####### not a heading\n#nospace\n");
  EXPECT_NE(html.find("<h1 id=\"experiment-analysis\">Experiment analysis</h1>\n"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("<p>line one\nline two</p>\n"), std::string::npos) << html;
  EXPECT_NE(html.find("<h2 id=\"backend-comparison\">Backend comparison</h2>"), std::string::npos);
  EXPECT_NE(html.find("<h3 id=\"a-b\">a_b</h3>"), std::string::npos) << html;
  EXPECT_NE(html.find("<h2 id=\"backend-comparison-2\">"), std::string::npos) << html;
  EXPECT_NE(html.find("<p>####### not a heading\n#nospace</p>"), std::string::npos) << html;
}

TEST(MarkdownHtml, PipeTablesWithAlignment) {
  const std::string html = Html(
      "Before.\n\n"
      "| Batch | Errors | Name | Mid |\n"
      "|---:|---|:---|:-:|\n"
      "| 1 | ✗ 5 (RESOURCE_EXHAUSTED 5) | `a<b` | x |\n"
      "| 32 | 0 | a \\| b |\n"
      "| 8 | 0 | c | d | extra |\n"
      "\nAfter.\n");
  EXPECT_NE(html.find("<div class=\"table\"><table>\n<thead>\n<tr><th style=\"text-align:right\">"
                      "Batch</th><th>Errors</th><th style=\"text-align:left\">Name</th>"
                      "<th style=\"text-align:center\">Mid</th></tr>\n</thead>\n<tbody>\n"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("<tr><td style=\"text-align:right\">1</td><td>✗ 5 (RESOURCE_EXHAUSTED 5)"
                      "</td><td style=\"text-align:left\"><code>a&lt;b</code></td>"
                      "<td style=\"text-align:center\">x</td></tr>"),
            std::string::npos)
      << html;
  // An escaped pipe stays in its cell; short rows are padded, long ones cut.
  EXPECT_NE(html.find("<td style=\"text-align:left\">a | b</td><td style=\"text-align:center\">"
                      "</td></tr>"),
            std::string::npos)
      << html;
  EXPECT_EQ(html.find("extra"), std::string::npos);
  EXPECT_EQ(Count(html, "<tr>"), 4u);
  EXPECT_NE(html.find("</tbody>\n</table></div>\n<p>After.</p>"), std::string::npos) << html;
  EXPECT_EQ(html.find("---"), std::string::npos);
  // A header row without an alignment row under it is a paragraph.
  EXPECT_EQ(Html("| a | b |\n| c | d |\n").find("<table>"), std::string::npos);
  // Header only: no tbody.
  const std::string head_only = Html("| a |\n|---|\n");
  EXPECT_NE(head_only.find("</thead>\n</table></div>"), std::string::npos) << head_only;
}

TEST(MarkdownHtml, BulletAndNumberedLists) {
  const std::string html = Html(
      "- **Status:** ok\n- **Commit:** `abc`\n  continued\n* star item\n\n"
      "1. first\n2. second\n\n3) third\n\nText\n- interrupts\n");
  EXPECT_NE(html.find("<ul>\n<li><strong>Status:</strong> ok</li>\n"
                      "<li><strong>Commit:</strong> <code>abc</code>\ncontinued</li>\n"
                      "<li>star item</li>\n</ul>\n"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("<ol>\n<li>first</li>\n<li>second</li>\n</ol>\n"), std::string::npos) << html;
  EXPECT_NE(html.find("<ol start=\"3\">\n<li>third</li>\n</ol>"), std::string::npos) << html;
  EXPECT_NE(html.find("<p>Text</p>\n<ul>\n<li>interrupts</li>\n</ul>"), std::string::npos) << html;
  EXPECT_EQ(Count(html, "<li>"), Count(html, "</li>"));
}

TEST(MarkdownHtml, InlineCodeBoldItalicAndEscapes) {
  EXPECT_EQ(Html("`<b>&` and ``a ` b`` and `unclosed\n"),
            "<p><code>&lt;b&gt;&amp;</code> and <code>a ` b</code> and `unclosed</p>\n");
  EXPECT_EQ(Html("**bold** *it* **unclosed and a * b and 2*3\n"),
            "<p><strong>bold</strong> <em>it</em> **unclosed and a * b and 2*3</p>\n");
  EXPECT_EQ(Html("**Repeat spread at the peak point** (b=8 c=4)\n"),
            "<p><strong>Repeat spread at the peak point</strong> (b=8 c=4)</p>\n");
  // Underscores are never emphasis: experiment names are snake_case.
  EXPECT_EQ(Html("minilm_int8 and _x_ and __y__\n"), "<p>minilm_int8 and _x_ and __y__</p>\n");
  EXPECT_EQ(Html("a \\*b\\* \\| \\<c\\>\n"), "<p>a *b* | &lt;c&gt;</p>\n");
  EXPECT_EQ(Html("**`code` in bold**\n"), "<p><strong><code>code</code> in bold</strong></p>\n");
}

TEST(MarkdownHtml, LinksAndTheirTargets) {
  EXPECT_EQ(
      Html(
          "See [experiments.md](experiments.md) and [**x**](https://example.org/a?b=1&c=\"2\").\n"),
      "<p>See <a href=\"experiments.md\">experiments.md</a> and <a "
      "href=\"https://example.org/a?b=1&amp;c=&quot;2&quot;\"><strong>x</strong></a>.</p>\n");
  for (const char* bad : {"javascript:alert(1)", "JavaScript:alert(1)", "java\tscript:alert(1)",
                          "data:text/html,<script>x</script>", "vbscript:x"}) {
    const std::string html = Html(std::string("[click](") + bad + ")\n");
    EXPECT_NE(html.find("<a href=\"#\">click</a>"), std::string::npos) << bad << ": " << html;
  }
  EXPECT_NE(Html("[mail](mailto:a@b.c)\n").find("href=\"mailto:a@b.c\""), std::string::npos);
  // Not links: no target, or an unclosed target.
  EXPECT_EQ(Html("[a] b [c](d\n"), "<p>[a] b [c](d</p>\n");
}

TEST(MarkdownHtml, ImagesInlineOrRelativeNeverRemote) {
  MarkdownHtmlOptions options;
  options.image = [](const std::string& src, const std::string& alt) -> std::optional<std::string> {
    if (src != "charts/x/throughput.svg") return std::nullopt;
    return "<svg data-alt=\"" + HtmlEscape(alt) + "\"></svg>";
  };
  const std::string html = Html(
      "![x <throughput>](charts/x/throughput.svg)\n![rel \"a\"](other.png)\n"
      "![remote](https://example.org/t.png)\n![net](//example.org/t.png)\n![js](javascript:x)\n",
      options);
  EXPECT_NE(html.find("<p><svg data-alt=\"x &lt;throughput&gt;\"></svg>\n"), std::string::npos)
      << html;
  EXPECT_NE(html.find("<img src=\"other.png\" alt=\"rel &quot;a&quot;\">"), std::string::npos)
      << html;
  // Anything not relative is a link, never loaded by the page.
  EXPECT_NE(html.find("<a href=\"https://example.org/t.png\">remote</a>"), std::string::npos)
      << html;
  EXPECT_NE(html.find("<a href=\"//example.org/t.png\">net</a>"), std::string::npos) << html;
  EXPECT_NE(html.find("<a href=\"#\">js</a>"), std::string::npos) << html;
  EXPECT_EQ(Count(html, "<img"), 1u);
  // Spaces in a target (experiment folders with spaces) still make an image.
  EXPECT_NE(Html("![a](my run/x.svg)\n").find("<img src=\"my run/x.svg\""), std::string::npos);
}

TEST(MarkdownHtml, FencedCodeIsVerbatimAndEscaped) {
  const std::string html = Html(
      "```json\n{\"name\": \"<b>**not bold**</b>\"}\n\n# not a heading\n```\nafter\n"
      "````\n```\ninner\n````\n~~~\nunclosed <x>\n");
  EXPECT_NE(html.find("<pre><code class=\"language-json\">{&quot;name&quot;: "
                      "&quot;&lt;b&gt;**not bold**&lt;/b&gt;&quot;}\n\n# not a heading\n"
                      "</code></pre>\n<p>after</p>\n"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("<pre><code>```\ninner\n</code></pre>"), std::string::npos) << html;
  EXPECT_NE(html.find("<pre><code>unclosed &lt;x&gt;\n</code></pre>\n"), std::string::npos) << html;
  EXPECT_EQ(html.find("<h1"), std::string::npos);
}

TEST(MarkdownHtml, EmptyInputAndCrLf) {
  EXPECT_EQ(Html(""), "");
  EXPECT_EQ(Html("\n\n  \n"), "");
  EXPECT_EQ(Html("# T\r\n\r\na\r\n"), "<h1 id=\"t\">T</h1>\n<p>a</p>\n");
}

TEST(MarkdownHtml, PageIsSelfContained) {
  const std::string page = HtmlPage("Experiment: <x> & y", "<p>body</p>\n");
  EXPECT_EQ(page.rfind("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">", 0),
            0u);
  EXPECT_NE(page.find("<title>Experiment: &lt;x&gt; &amp; y</title>"), std::string::npos);
  EXPECT_NE(page.find("<style>"), std::string::npos);
  EXPECT_NE(page.find("<body>\n<p>body</p>\n</body>\n</html>\n"), std::string::npos);
  for (const char* external : {"http:", "https:", "//", "@import", "url(", "<link", "<script"}) {
    EXPECT_EQ(page.find(external), std::string::npos) << external;
  }
}

}  // namespace
}  // namespace encserve::experiment
