//! `{name}` placeholders in spec strings (URLs, paths, query values), filled from a connection's
//! variables. Unknown names are errors, never silently empty.

use std::collections::BTreeMap;

/// Variables every spec may use, supplied by the platform rather than the user.
pub const PLATFORM_VARS: [&str; 2] = ["sandbox_url", "cursor"];

/// How a substituted value is escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As is: for values validated by their own rules (a shop name, an instance URL).
    None,
    /// Percent-encoded as one URL path segment.
    PathSegment,
}

/// The names a template uses, in order.
pub fn names(template: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in `{template}`"))?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad placeholder `{{{name}}}` in `{template}`"));
        }
        out.push(name);
        rest = &after[end + 1..];
    }
    if rest.contains('}') {
        return Err(format!("stray `}}` in `{template}`"));
    }
    Ok(out)
}

/// Fills a template. Every name must be in `vars`.
pub fn render(
    template: &str,
    vars: &BTreeMap<String, String>,
    escape: Escape,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in `{template}`"))?;
        let name = &after[..end];
        let value = vars
            .get(name)
            .ok_or_else(|| format!("no value for `{{{name}}}`"))?;
        match escape {
            Escape::None => out.push_str(value),
            Escape::PathSegment => out.extend(
                url::form_urlencoded::byte_serialize(value.as_bytes())
                    .map(|s| s.replace('+', "%20")),
            ),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_and_escapes() {
        let v = vars(&[("shop", "acme"), ("repo", "a b/c")]);
        assert_eq!(
            render("https://{shop}.myshopify.com", &v, Escape::None).unwrap(),
            "https://acme.myshopify.com"
        );
        assert_eq!(
            render("/repos/{repo}/issues", &v, Escape::PathSegment).unwrap(),
            "/repos/a%20b%2Fc/issues"
        );
        assert!(render("{missing}", &v, Escape::None).is_err());
        assert_eq!(names("{a}/{b_2}").unwrap(), ["a", "b_2"]);
        assert!(names("{a").is_err());
        assert!(names("a}").is_err());
        assert!(names("{a-b}").is_err());
    }
}
