//! Following redirects by hand: reqwest's automatic redirects would connect to the next hop
//! without our checks, so the client turns them off and builds each next hop here, for the
//! exchange loop to check (SSRF guard, budget) like the first.

use http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, LOCATION,
    PROXY_AUTHORIZATION, TRANSFER_ENCODING,
};
use http::Method;

use super::{target, OutboundRequest, OutboundResponse};
use crate::error::ConnectorError;

/// The request for the next hop when `resp` is a redirect we follow, per RFC 9110 §15.4: 303
/// (and 301/302 after a POST, as browsers do) become a GET without body; 307/308 keep method and
/// body. Credentials are dropped when the origin changes (another host, port or scheme).
pub(crate) fn next_hop(
    req: &OutboundRequest,
    resp: &OutboundResponse,
) -> Result<Option<OutboundRequest>, ConnectorError> {
    if !matches!(resp.status, 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(location) = resp.headers.get(LOCATION) else {
        return Ok(None);
    };
    let invalid = || {
        ConnectorError::permanent(format!(
            "redirect from {} has an invalid Location",
            target(&req.url)
        ))
        .with_status(resp.status)
    };
    let location = location.to_str().map_err(|_| invalid())?;
    let url = req.url.join(location).map_err(|_| invalid())?;
    let mut next = OutboundRequest {
        method: req.method.clone(),
        url,
        headers: req.headers.clone(),
        body: req.body.clone(),
    };
    let becomes_get = (resp.status == 303 && req.method != Method::HEAD)
        || (matches!(resp.status, 301 | 302) && req.method == Method::POST);
    if becomes_get {
        next.method = Method::GET;
        next.body = None;
        for name in [
            CONTENT_TYPE,
            CONTENT_LENGTH,
            CONTENT_ENCODING,
            TRANSFER_ENCODING,
        ] {
            next.headers.remove(name);
        }
    }
    if next.url.origin() != req.url.origin() {
        // A body may hold secrets (a token, a client secret): it never follows to another origin.
        if next.body.is_some() {
            return Err(ConnectorError::permanent(format!(
                "refusing to resend a request body from {} to another origin",
                target(&req.url)
            ))
            .with_status(resp.status));
        }
        for name in [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE] {
            next.headers.remove(name);
        }
        // Custom credential headers (an `X-Shopify-Access-Token`, an API-key header) are marked
        // sensitive when set: drop every such header too.
        let sensitive: Vec<_> = next
            .headers
            .iter()
            .filter(|(_, v)| v.is_sensitive())
            .map(|(k, _)| k.clone())
            .collect();
        for name in sensitive {
            next.headers.remove(name);
        }
    }
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_credentials_and_bodies_never_follow_to_another_origin() {
        let mut token = HeaderValue::from_static("shpat_secret");
        token.set_sensitive(true);
        let mut req = OutboundRequest::get(Url::parse("https://a.test/x").unwrap());
        req.headers.insert("x-shopify-access-token", token);
        let next = next_hop(&req, &redirect(302, "https://b.test/y"))
            .unwrap()
            .unwrap();
        assert!(next.headers.get("x-shopify-access-token").is_none());
        let same = next_hop(&req, &redirect(302, "/z")).unwrap().unwrap();
        assert!(
            same.headers.get("x-shopify-access-token").is_some(),
            "same origin keeps it"
        );

        let post = OutboundRequest::post_form(
            Url::parse("https://a.test/revoke").unwrap(),
            &[("token", "t")],
        );
        assert!(next_hop(&post, &redirect(307, "https://b.test/revoke")).is_err());
        assert!(next_hop(&post, &redirect(307, "/revoke2"))
            .unwrap()
            .is_some());
    }
    use crate::error::ErrorClass;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue};
    use url::Url;

    fn redirect(status: u16, location: &str) -> OutboundResponse {
        let mut headers = HeaderMap::new();
        headers.insert(LOCATION, HeaderValue::from_str(location).unwrap());
        OutboundResponse {
            status,
            headers,
            body: Bytes::new(),
            url: Url::parse("https://a.test/x/y").unwrap(),
        }
    }

    fn post() -> OutboundRequest {
        OutboundRequest::post_json(
            Url::parse("https://a.test/x/y?q=1").unwrap(),
            &serde_json::json!({"k": 1}),
        )
        .bearer("tok")
    }

    #[test]
    fn redirects_change_method_as_the_rfc_says() {
        for (status, method, keeps_body) in [
            (301, Method::GET, false),
            (302, Method::GET, false),
            (303, Method::GET, false),
            (307, Method::POST, true),
            (308, Method::POST, true),
        ] {
            let next = next_hop(&post(), &redirect(status, "/z")).unwrap().unwrap();
            assert_eq!(next.method, method, "{status}");
            assert_eq!(next.body.is_some(), keeps_body, "{status}");
            assert_eq!(
                next.headers.contains_key(CONTENT_TYPE),
                keeps_body,
                "{status}"
            );
            assert_eq!(next.url.as_str(), "https://a.test/z");
            assert!(
                next.headers.contains_key(AUTHORIZATION),
                "same host keeps credentials"
            );
        }
        let put = OutboundRequest {
            method: Method::PUT,
            ..post()
        };
        assert_eq!(
            next_hop(&put, &redirect(302, "z")).unwrap().unwrap().method,
            Method::PUT
        );
        assert_eq!(
            next_hop(&put, &redirect(302, "z"))
                .unwrap()
                .unwrap()
                .url
                .as_str(),
            "https://a.test/x/z"
        );
    }

    #[test]
    fn credentials_are_dropped_when_the_origin_changes() {
        for location in [
            "https://b.test/z",
            "http://a.test/z",
            "https://a.test:8443/z",
        ] {
            // A 302 after a POST becomes a GET without body, so it may follow, without credentials.
            let next = next_hop(&post(), &redirect(302, location))
                .unwrap()
                .unwrap();
            assert!(!next.headers.contains_key(AUTHORIZATION), "{location}");
        }
    }

    #[test]
    fn non_redirects_and_missing_location_end_the_exchange() {
        assert!(next_hop(&post(), &redirect(200, "/z")).unwrap().is_none());
        assert!(next_hop(&post(), &redirect(304, "/z")).unwrap().is_none());
        let mut no_location = redirect(302, "/z");
        no_location.headers.clear();
        assert!(next_hop(&post(), &no_location).unwrap().is_none());
        let err = next_hop(&post(), &redirect(302, "http://[::1")).unwrap_err();
        assert_eq!(err.class, ErrorClass::Permanent);
    }
}
