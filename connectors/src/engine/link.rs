//! RFC 8288 `Link` headers: finding the `rel="next"` target that GitHub and Shopify page with.

/// The URL of the `next` link, if any. Tolerates spacing, unquoted and multi-valued `rel`.
pub fn next_link(header: &str) -> Option<String> {
    let mut rest = header;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        let after = &rest[end + 1..];
        // Parameters run to the next link, which starts after a comma followed by `<`.
        let params_end = after
            .find(",")
            .and_then(|c| after[c..].find('<').map(|l| c + l))
            .unwrap_or(after.len());
        // …without that separating comma, or the last parameter's value would end in `",`.
        let params = after[..params_end].trim_end().trim_end_matches(',');
        for param in params.split(';') {
            let param = param.trim();
            if let Some((key, value)) = param.split_once('=') {
                if key.trim().eq_ignore_ascii_case("rel") {
                    let value = value.trim().trim_matches('"');
                    if value
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
                    {
                        return Some(target.to_owned());
                    }
                }
            }
        }
        rest = &after[params_end..];
    }
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn github_and_shopify_forms() {
        let github = r#"<https://api.github.com/repositories/1300192/issues?page=2>; rel="prev", <https://api.github.com/repositories/1300192/issues?page=4>; rel="next", <https://api.github.com/repositories/1300192/issues?page=515>; rel="last""#;
        assert_eq!(
            next_link(github).as_deref(),
            Some("https://api.github.com/repositories/1300192/issues?page=4")
        );
        let shopify = r#"<https://shop.myshopify.com/admin/api/2024-10/customers.json?limit=50&page_info=abc>; rel="previous", <https://shop.myshopify.com/admin/api/2024-10/customers.json?limit=50&page_info=def>; rel="next""#;
        assert!(next_link(shopify).unwrap().ends_with("page_info=def"));
        assert_eq!(
            next_link(r#"<https://x.test/a>; rel=next"#).as_deref(),
            Some("https://x.test/a")
        );
        assert_eq!(
            next_link(r#"<https://x.test/a>; rel="next last""#).as_deref(),
            Some("https://x.test/a")
        );
        assert_eq!(next_link(r#"<https://x.test/a>; rel="prev""#), None);
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("<<<>>>;;,,"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = next_link(&s);
        }
    }
}
