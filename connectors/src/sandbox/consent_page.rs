//! The HTML the user sees during authorization: the consent page ("`<app>` wants to access your
//! Sandbox account") and the error page shown when the sandbox cannot safely redirect back.
//! Plain HTML with inline styles: no scripts, no cookies, not frameable.

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, X_FRAME_OPTIONS};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::scopes::Scopes;

/// Escapes text for HTML element content and double-quoted attributes.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2433;margin:0}\
main{max-width:28rem;margin:4rem auto;background:#fff;border-radius:12px;padding:2rem;box-shadow:0 2px 12px #0002}\
h1{font-size:1.25rem;margin-top:0}ul{padding-left:1.2rem}li{margin:.4rem 0}.muted{color:#5b6475;font-size:.9rem}\
.buttons{display:flex;gap:.75rem;margin-top:1.5rem}button{flex:1;padding:.7rem;border-radius:8px;font-size:1rem;cursor:pointer}\
.approve{background:#2f6fed;color:#fff;border:0}.deny{background:#fff;border:1px solid #c4c9d4}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title>\
<style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    )
}

/// No `form-action` directive: browsers apply it to the redirect that follows the form post,
/// which must be free to go to the client's redirect URI.
fn respond(status: StatusCode, html: String) -> Response {
    (
        status,
        [
            (X_FRAME_OPTIONS, "DENY"),
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ),
            (CACHE_CONTROL, "no-store"),
        ],
        Html(html),
    )
        .into_response()
}

/// The consent page. `params` are the authorization request's parameters, echoed as hidden
/// fields so that Approve / Deny POST them back to `/oauth/authorize`.
pub(crate) fn consent(
    client_name: &str,
    redirect_host: &str,
    scopes: Scopes,
    params: &[(&str, &str)],
) -> Response {
    let name = escape(client_name);
    let items: String = scopes
        .iter()
        .map(|s| {
            format!(
                "<li>{} <span class=\"muted\">({})</span></li>",
                escape(s.description()),
                s.name()
            )
        })
        .collect();
    let hidden: String = params
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let body = format!(
        "<h1>{name} wants to access your Sandbox account</h1>\
<p>Signed in as <strong>owner@sandbox.test</strong> (Sandbox Demo Co).</p>\
<p>{name} will be able to:</p><ul>{items}</ul>\
<p class=\"muted\">You will be sent back to {host}.</p>\
<form method=\"post\" action=\"/oauth/authorize\">{hidden}\
<div class=\"buttons\"><button class=\"deny\" type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\
<button class=\"approve\" type=\"submit\" name=\"decision\" value=\"approve\">Approve</button></div></form>",
        host = escape(redirect_host),
    );
    respond(
        StatusCode::OK,
        page(&format!("Authorize {client_name} — Sandbox"), &body),
    )
}

/// A 400 page for requests the sandbox must not redirect (unknown client, bad redirect URI).
pub(crate) fn error_page(title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p>{}</p><p class=\"muted\">Nothing was shared. You can close this page.</p>",
        escape(title),
        escape(message)
    );
    respond(
        StatusCode::BAD_REQUEST,
        page(&format!("{title} — Sandbox"), &body),
    )
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
