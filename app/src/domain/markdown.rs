//! Markdown written by vendors (listing descriptions, release notes), turned into HTML that is safe
//! to show to every visitor of the catalog.
//!
//! Vendor text is untrusted: whatever reaches a customer's browser must not run script, load
//! third-party content or submit forms. Two layers make sure of that:
//!
//! 1. the Markdown is parsed with pulldown-cmark, and any raw HTML in it is turned into plain text
//!    (so `<b>` shows as typed instead of being interpreted), images become their alt text and
//!    headings move one level down (the page's `<h1>` is the listing name);
//! 2. the generated HTML goes through an ammonia sanitizer with an explicit allow-list of tags,
//!    attributes and URL schemes, so that even a bug in the first layer cannot let markup through.

use ammonia::{Builder, UrlRelative};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

/// The `rel` of every link: no access to our window, no referrer, and no search-engine credit
/// for links that vendors write.
const LINK_REL: &str = "noopener noreferrer nofollow";

/// The only tags that survive. No `img`: an image would make every visitor's browser fetch a URL
/// of the vendor's choosing (tracking pixels, third-party content). No `h1`: headings are demoted.
#[rustfmt::skip]
const ALLOWED_TAGS: [&str; 24] = [
    "p", "br", "hr", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
];

/// Tags removed together with their content, rather than unwrapped into text.
#[rustfmt::skip]
const DROPPED_TAGS: [&str; 15] = [
    "script", "style", "template", "iframe", "noscript", "object", "embed", "svg", "math",
    "textarea", "select", "title", "xmp", "noembed", "noframes",
];

/// The sanitizer, built once. Nothing relies on ammonia's defaults: every list is spelled out.
static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut builder = Builder::empty();
    builder
        .tags(HashSet::from(ALLOWED_TAGS))
        .clean_content_tags(HashSet::from(DROPPED_TAGS))
        .tag_attributes(HashMap::from([
            ("a", HashSet::from(["href", "title"])),
            ("ol", HashSet::from(["start"])),
        ]))
        .tag_attribute_values(HashMap::new())
        .generic_attributes(HashSet::new())
        .allowed_classes(HashMap::new())
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        // A relative link would point into Patchbay itself (`/admin/...`), written by a vendor.
        .url_relative(UrlRelative::Deny)
        .link_rel(Some(LINK_REL))
        .strip_comments(true);
    builder
});

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH
}

/// Renders vendor Markdown (CommonMark with tables and strikethrough) to sanitized HTML.
///
/// The result contains only text formatting, lists, tables, code and `http`/`https`/`mailto`
/// links (with `rel="noopener noreferrer nofollow"`); raw HTML in the input is shown as text and
/// images as their alt text.
pub fn render(markdown: &str) -> String {
    let events = Parser::new_ext(markdown, options()).filter_map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Some(Event::Start(Tag::Heading {
            level: demote(level),
            id,
            classes,
            attrs,
        })),
        Event::End(TagEnd::Heading(level)) => Some(Event::End(TagEnd::Heading(demote(level)))),
        other => Some(other),
    });
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    sanitize(&html)
}

/// The second layer: whatever HTML comes in, only the allow-listed markup comes out.
fn sanitize(html: &str) -> String {
    SANITIZER.clean(html).to_string()
}

fn demote(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H2,
        HeadingLevel::H2 => HeadingLevel::H3,
        HeadingLevel::H3 => HeadingLevel::H4,
        HeadingLevel::H4 => HeadingLevel::H5,
        HeadingLevel::H5 | HeadingLevel::H6 => HeadingLevel::H6,
    }
}

/// The text of `markdown` without markup, whitespace collapsed, for summaries and previews.
///
/// Raw HTML is left out. The result has at most `max_chars` characters; when the text is longer
/// it is cut on a character boundary and ends with "…" (counted in `max_chars`). The result is
/// plain text, not HTML: escape it where it is shown (Leptos views do).
pub fn plain_text(markdown: &str, max_chars: usize) -> String {
    let mut text = String::with_capacity(markdown.len());
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak | Event::Rule | Event::End(_) => text.push(' '),
            _ => {}
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let text = words.join(" ");
    if text.chars().count() <= max_chars {
        return text;
    }
    if max_chars == 0 {
        return String::new();
    }
    let mut cut: String = text.chars().take(max_chars - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known XSS vectors, in Markdown and in raw HTML.
    const PAYLOADS: &[&str] = &[
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<svg onload=alert(1)>",
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](javascript&colon;alert(1))",
        "[x](<java script:alert(1)>)",
        "[x][r]\n\n[r]: javascript:alert(1)",
        "<a href=\"javascript:alert(1)\">x</a>",
        "<a href=\"&#x6A;avascript:alert(1)\">x</a>",
        "<a href=\"java\tscript:alert(1)\">x</a>",
        "<iframe src=\"https://evil.example\"></iframe>",
        "<details open ontoggle=alert(1)>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "<style>@import 'https://evil.example/x.css'</style>",
        "![x](javascript:alert(1))",
        "![x](https://evil.example/pixel.gif)",
        "<base href=//evil.example>",
        "<form action=https://evil.example><button>Go</button></form>",
        "<input autofocus onfocus=alert(1)>",
        "<object data=\"https://evil.example/x.swf\"></object>",
        "<embed src=\"https://evil.example/x.swf\">",
        "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
        "<a href=\"vbscript:msgbox(1)\">x</a>",
        "<javascript:alert(1)>",
        "[a](http://x \"onmouseover=alert(1)\")",
        "[a](http://x \"\\\" onmouseover=\\\"alert(1)\")",
        "<p style=\"background:url(javascript:alert(1))\">x</p>",
        "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
        "<xss onpointerover=alert(1)>hover</xss>",
        "<a href=\"https://ok.example\" target=\"_blank\" onclick=\"alert(1)\">x</a>",
        "<svg><a xlink:href=\"javascript:alert(1)\"><text>x</text></a></svg>",
        "<video><source onerror=alert(1)></video>",
        "<template><script>alert(1)</script></template>",
        "`<script>alert(1)</script>`",
        "<div><!--<img src=x onerror=alert(1)>--></div>",
        "# <script>alert(1)</script>",
        "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
    ];

    /// Asserts that `html` holds nothing a browser would execute or load: a crude tag parser
    /// (enough for ammonia's well-formed output) checks every tag and attribute.
    fn assert_inert(payload: &str, html: &str) {
        let lower = html.to_ascii_lowercase();
        for tag in [
            "script", "iframe", "svg", "math", "style", "object", "embed", "form", "base", "meta",
            "img", "input", "details", "video", "source", "link",
        ] {
            assert!(
                !lower.contains(&format!("<{tag}")),
                "<{tag} in {html:?} from {payload:?}"
            );
        }
        let mut rest = lower.as_str();
        while let Some(start) = rest.find('<') {
            let end = tag_end(&rest[start..]) + start;
            let tag = rest[start + 1..end]
                .trim_start_matches('/')
                .trim_end_matches('/');
            for (i, (name, value)) in parse_tag(tag).into_iter().enumerate() {
                if i == 0 {
                    assert!(ALLOWED_TAGS.contains(&name), "tag {name} in {html:?}");
                    continue;
                }
                assert!(
                    !name.starts_with("on"),
                    "{name} in {html:?} from {payload:?}"
                );
                assert!(
                    ["href", "title", "rel", "start"].contains(&name),
                    "attribute {name} in {html:?} from {payload:?}"
                );
                if name == "href" {
                    let url: String = value.chars().filter(|c| !c.is_whitespace()).collect();
                    assert!(
                        ["http://", "https://", "mailto:"]
                            .iter()
                            .any(|s| url.starts_with(s)),
                        "href {value:?} in {html:?} from {payload:?}"
                    );
                }
            }
            rest = &rest[end + 1..];
        }
    }

    /// The index of the `>` closing the tag that `html` starts with, skipping quoted values
    /// (ammonia escapes `&` and `"` in attribute values, not `>`).
    fn tag_end(html: &str) -> usize {
        let mut quote = None;
        for (i, c) in html.char_indices() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), _) if c == q => quote = None,
                (None, '>') => return i,
                _ => {}
            }
        }
        panic!("unclosed tag in {html:?}");
    }

    /// Splits `name a="1" b=2 c` into `[(name, ""), (a, 1), (b, 2), (c, "")]`.
    fn parse_tag(tag: &str) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        let mut rest = tag.trim();
        while !rest.is_empty() {
            let name_end = rest
                .find(|c: char| c.is_whitespace() || c == '=')
                .unwrap_or(rest.len());
            let name = &rest[..name_end];
            rest = rest[name_end..].trim_start();
            let mut value = "";
            if let Some(after) = rest.strip_prefix('=') {
                let after = after.trim_start();
                let (v, r) = match after.chars().next() {
                    Some(q @ ('"' | '\'')) => {
                        let close = after[1..].find(q).expect("unclosed attribute") + 1;
                        (&after[1..close], &after[close + 1..])
                    }
                    _ => after.split_at(after.find(char::is_whitespace).unwrap_or(after.len())),
                };
                value = v;
                rest = r.trim_start();
            }
            out.push((name, value));
        }
        out
    }

    #[test]
    fn known_xss_payloads_render_inert() {
        assert!(PAYLOADS.len() >= 20);
        for payload in PAYLOADS {
            assert_inert(payload, &render(payload));
        }
    }

    #[test]
    fn sanitizer_alone_neutralizes_raw_html_payloads() {
        // The second layer on its own, as if the Markdown step had let raw HTML through.
        for payload in PAYLOADS {
            assert_inert(payload, &sanitize(payload));
        }
    }

    #[test]
    fn sanitizer_drops_script_and_style_content_and_event_handlers() {
        assert_eq!(
            sanitize("<p>a<script>alert(1)</script><style>p{}</style>b</p>"),
            "<p>ab</p>"
        );
        assert_eq!(sanitize("<p onclick=\"alert(1)\">x</p>"), "<p>x</p>");
        assert_eq!(
            sanitize("<a href=\"javascript:alert(1)\">x</a>"),
            format!("<a rel=\"{LINK_REL}\">x</a>")
        );
        assert_eq!(
            sanitize("<a href=\"https://ok.example\" target=\"_blank\" rel=\"opener\">x</a>"),
            format!("<a href=\"https://ok.example\" rel=\"{LINK_REL}\">x</a>")
        );
    }

    #[test]
    fn the_inert_check_itself_catches_executable_markup() {
        for bad in [
            "<img src=x>",
            "<p onclick=\"alert(1)\">a</p>",
            "<a href=\"javascript:alert(1)\">a</a>",
            "<a href=' data:text/html,x'>a</a>",
            "<a href=\"/admin\">a</a>",
            "<p style=\"color: red\">a</p>",
            "<a title=\"a>b\" onmouseover=alert(1)>a</a>",
            "<blink>a</blink>",
        ] {
            let caught = std::panic::catch_unwind(|| assert_inert("", bad));
            assert!(caught.is_err(), "{bad} passed the check");
        }
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        assert_eq!(
            render("a <b>bold</b> move"),
            "<p>a &lt;b&gt;bold&lt;/b&gt; move</p>\n"
        );
    }

    #[test]
    fn headings_are_demoted_below_the_page_title() {
        assert_eq!(render("# Title"), "<h2>Title</h2>\n");
        assert_eq!(render("### Sub"), "<h4>Sub</h4>\n");
        assert_eq!(render("###### Deep"), "<h6>Deep</h6>\n");
    }

    #[test]
    fn lists_tables_code_and_emphasis_survive() {
        let html = render("- one\n- two\n\n1. first\n\n**b** *i* ~~old~~ `x`");
        for part in [
            "<ul>",
            "<li>one</li>",
            "<ol>",
            "<li>first</li>",
            "<strong>b</strong>",
        ] {
            assert!(html.contains(part), "{part} missing from {html}");
        }
        for part in ["<em>i</em>", "<del>old</del>", "<code>x</code>"] {
            assert!(html.contains(part), "{part} missing from {html}");
        }
        assert!(render("3. three").contains("<ol start=\"3\">"));

        let table = render("| a | b |\n|:--|--:|\n| 1 | 2 |");
        for part in ["<table>", "<thead>", "<th>a</th>", "<tbody>", "<td>2</td>"] {
            assert!(table.contains(part), "{part} missing from {table}");
        }
        let code = render("```rust\nfn main() { 1 < 2 }\n```");
        assert_eq!(code, "<pre><code>fn main() { 1 &lt; 2 }\n</code></pre>\n");
        assert!(render("> quoted").contains("<blockquote>"));
    }

    #[test]
    fn http_links_survive_with_rel_and_without_target() {
        assert_eq!(
            render("[docs](https://example.com/docs \"The docs\")"),
            format!(
                "<p><a href=\"https://example.com/docs\" title=\"The docs\" rel=\"{LINK_REL}\">docs</a></p>\n"
            )
        );
        let autolink = render("<https://example.com>");
        assert!(autolink.contains(&format!("href=\"https://example.com\" rel=\"{LINK_REL}\"")));
        assert!(render("<help@example.com>").contains("href=\"mailto:help@example.com\""));
    }

    #[test]
    fn relative_links_and_images_lose_their_urls() {
        assert_eq!(
            render("[admin](/admin)"),
            format!("<p><a rel=\"{LINK_REL}\">admin</a></p>\n")
        );
        assert_eq!(
            render("![Our logo](https://example.com/l.png)"),
            "<p>Our logo</p>\n"
        );
    }

    #[test]
    fn plain_text_strips_markup() {
        let md = "# Sync\n\nKeeps **CRM** and `billing`\nin step.\n\n- fast\n- <b>safe</b>";
        assert_eq!(
            plain_text(md, 100),
            "Sync Keeps CRM and billing in step. fast safe"
        );
    }

    #[test]
    fn plain_text_cuts_on_a_char_boundary_with_an_ellipsis() {
        assert_eq!(plain_text("héllo wörld", 11), "héllo wörld");
        assert_eq!(plain_text("héllo wörld", 8), "héllo w…");
        assert_eq!(plain_text("héllo wörld", 7), "héllo…");
        assert_eq!(plain_text("日本語のテキスト", 4), "日本語…");
        assert_eq!(plain_text("abc", 0), "");
        assert_eq!(plain_text("abcd", 1), "…");
    }
}
