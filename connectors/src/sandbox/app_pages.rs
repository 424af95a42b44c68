//! The sandbox's own app pages, as a person using Sandbox Shop or Sandbox CRM would see them:
//! `/app` (the four record lists), `/app/{stream}` (the most recently changed records) and
//! `/app/{stream}/{id}` (edit or delete one). A change made here is a change "in the app": a new
//! version of the record, and webhooks to every subscription, exactly like an API write. This is
//! how a demo shows a change arriving in Patchbay through a webhook.
//!
//! Plain HTML forms, no scripts, no cookies. The sandbox has no login (it is a local demo tool);
//! posts that a browser marks as cross-site are refused, so another site cannot edit the demo
//! data through a visitor's browser.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION, X_FRAME_OPTIONS};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value};

use super::consent_page::escape;
use super::records::{self, FieldType, Mode, StreamKind};
use super::{read, write, AppState};

/// Records listed per page.
const LIST: usize = 25;

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2433;margin:0}\
header{background:#1d2433;color:#fff;padding:.8rem 1.5rem}header a{color:#fff;margin-right:1rem}\
main{max-width:60rem;margin:2rem auto;background:#fff;border-radius:12px;padding:1.5rem 2rem;box-shadow:0 2px 12px #0002}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #e3e6ec;font-size:.9rem}\
label{display:block;margin-top:.8rem;font-weight:600}input{width:100%;padding:.5rem;border:1px solid #c4c9d4;border-radius:6px;font-size:1rem;box-sizing:border-box}\
button{margin-top:1rem;padding:.6rem 1.2rem;border-radius:8px;font-size:1rem;cursor:pointer;background:#2f6fed;color:#fff;border:0}\
.danger{background:#fff;color:#b3261e;border:1px solid #b3261e}.note{background:#e7f6ec;padding:.6rem 1rem;border-radius:8px}\
.error{background:#fdecea;padding:.6rem 1rem;border-radius:8px}.muted{color:#5b6475;font-size:.9rem}";

fn respond(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{} — Sandbox</title>\
<style>{STYLE}</style></head><body><header><strong>Sandbox</strong> \
<a href=\"/app/customers\">Shop customers</a><a href=\"/app/orders\">Shop orders</a>\
<a href=\"/app/contacts\">CRM contacts</a><a href=\"/app/companies\">CRM companies</a></header>\
<main>{body}</main></body></html>",
        escape(title)
    );
    (
        status,
        [
            (X_FRAME_OPTIONS, "DENY"),
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
            (CACHE_CONTROL, "no-store"),
        ],
        Html(html),
    )
        .into_response()
}

fn not_found() -> Response {
    respond(
        StatusCode::NOT_FOUND,
        "Not found",
        "<h1>Not found</h1><p>There is no such record list or record.</p><p><a href=\"/app\">All lists</a></p>",
    )
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_owned())]).into_response()
}

fn title_of(kind: StreamKind) -> &'static str {
    match kind {
        StreamKind::Customers => "Shop customers",
        StreamKind::Orders => "Shop orders",
        StreamKind::Contacts => "CRM contacts",
        StreamKind::Companies => "CRM companies",
    }
}

/// `GET /app`
pub(crate) async fn home() -> Response {
    let items: String = StreamKind::ALL
        .iter()
        .map(|k| {
            format!(
                "<li><a href=\"/app/{}\">{}</a></li>",
                k.name(),
                title_of(*k)
            )
        })
        .collect();
    respond(
        StatusCode::OK,
        "Sandbox",
        &format!(
            "<h1>Sandbox Shop and Sandbox CRM</h1><p>Demo data of the bundled sandbox apps. \
Edit a record here and every app subscribed to its webhooks hears of it.</p><ul>{items}</ul>"
        ),
    )
}

/// `GET /app/{stream}`: the most recently changed records.
pub(crate) async fn list(State(inner): State<AppState>, Path(stream): Path<String>) -> Response {
    let Some(kind) = StreamKind::parse(&stream) else {
        return not_found();
    };
    let (records, total) = {
        let store = read(&inner.store);
        (store.recent(kind, LIST), store.count(kind))
    };
    let columns: Vec<&str> = std::iter::once("id")
        .chain(kind.fields().iter().map(|f| f.name))
        .chain(std::iter::once("updated_at"))
        .collect();
    let head: String = columns
        .iter()
        .map(|c| format!("<th>{}</th>", escape(c)))
        .collect();
    let rows: String = records
        .iter()
        .map(|r| {
            let id = r["id"].as_str().unwrap_or_default();
            let cells: String = columns
                .iter()
                .map(|c| match (*c, &r[*c]) {
                    ("id", _) if kind.writable_over_api() => format!(
                        "<td><a href=\"/app/{}/{}\">{}</a></td>",
                        kind.name(),
                        escape(id),
                        escape(id)
                    ),
                    (_, Value::String(s)) => format!("<td>{}</td>", escape(s)),
                    (_, Value::Null) => "<td></td>".to_owned(),
                    (_, other) => format!("<td>{}</td>", escape(&other.to_string())),
                })
                .collect();
            format!("<tr>{cells}</tr>")
        })
        .collect();
    let hint = if kind.writable_over_api() {
        "Open a record to edit it."
    } else {
        "Orders come from checkout and cannot be edited."
    };
    respond(
        StatusCode::OK,
        title_of(kind),
        &format!(
            "<h1>{}</h1><p class=\"muted\">{total} records; the {} most recently changed are shown. {hint}</p>\
<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>",
            title_of(kind),
            records.len()
        ),
    )
}

/// `GET /app/{stream}/{id}`: the edit form.
pub(crate) async fn edit(
    State(inner): State<AppState>,
    Path((stream, id)): Path<(String, String)>,
) -> Response {
    let Some(kind) = StreamKind::parse(&stream).filter(|k| k.writable_over_api()) else {
        return not_found();
    };
    let Some(record) = read(&inner.store).get(kind, &id) else {
        return not_found();
    };
    form_page(kind, &id, &record, None, StatusCode::OK)
}

fn form_page(
    kind: StreamKind,
    id: &str,
    record: &Value,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let inputs: String = kind
        .fields()
        .iter()
        .map(|f| {
            let value = match &record[f.name] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            format!(
                "<label for=\"{n}\">{n}</label><input id=\"{n}\" name=\"{n}\" value=\"{v}\">",
                n = escape(f.name),
                v = escape(&value)
            )
        })
        .collect();
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let action = format!("/app/{}/{}", kind.name(), escape(id));
    respond(
        status,
        &format!("{} {id}", kind.singular()),
        &format!(
            "<p><a href=\"/app/{stream}\">← {title}</a></p><h1>{singular} {id}</h1>{error}\
<form method=\"post\" action=\"{action}\">{inputs}<button type=\"submit\">Save</button></form>\
<form method=\"post\" action=\"{action}/delete\"><button class=\"danger\" type=\"submit\">Delete this {singular}</button></form>\
<p class=\"muted\">Last changed {updated}.</p>",
            stream = kind.name(),
            title = title_of(kind),
            singular = kind.singular(),
            id = escape(id),
            updated = escape(record["updated_at"].as_str().unwrap_or_default()),
        ),
    )
}

/// Whether a browser marked the post as coming from another site.
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| !matches!(v.as_bytes(), b"same-origin" | b"none"))
}

fn refused() -> Response {
    respond(
        StatusCode::FORBIDDEN,
        "Refused",
        "<h1>Refused</h1><p>This change came from another site, so the sandbox did not make it.</p>",
    )
}

/// `POST /app/{stream}/{id}`: saves the form as a new version and fires webhooks.
pub(crate) async fn save(
    State(inner): State<AppState>,
    Path((stream, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if cross_site(&headers) {
        return refused();
    }
    let Some(kind) = StreamKind::parse(&stream).filter(|k| k.writable_over_api()) else {
        return not_found();
    };
    let mut fields = Map::new();
    for (name, value) in url::form_urlencoded::parse(&body) {
        let Some(field) = kind.fields().iter().find(|f| f.name == name) else {
            continue;
        };
        let value = value.trim().to_owned();
        let json = match field.ty {
            FieldType::OptionalText | FieldType::Reference(_) if value.is_empty() => Value::Null,
            FieldType::Count => value
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or(Value::String(value)),
            _ => Value::String(value),
        };
        fields.insert(field.name.to_owned(), json);
    }
    let given = Value::Object(fields.clone());
    let checked = records::validate(kind, &given, Mode::Update);
    let result = checked.and_then(|fields| {
        write(&inner.store)
            .update(kind, &id, fields, records::now_ms())
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(record) => {
            inner.webhooks.emit(kind, "updated", record);
            see_other(&format!("/app/{}", kind.name()))
        }
        Err(message) => match read(&inner.store).get(kind, &id) {
            Some(_) => {
                let mut shown = given;
                shown["updated_at"] = Value::String(String::new());
                form_page(
                    kind,
                    &id,
                    &shown,
                    Some(&message),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
            }
            None => not_found(),
        },
    }
}

/// `POST /app/{stream}/{id}/delete`
pub(crate) async fn delete(
    State(inner): State<AppState>,
    Path((stream, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if cross_site(&headers) {
        return refused();
    }
    let Some(kind) = StreamKind::parse(&stream).filter(|k| k.writable_over_api()) else {
        return not_found();
    };
    let removed = write(&inner.store).delete(kind, &id);
    match removed {
        Some(record) => {
            inner.webhooks.emit(kind, "deleted", record);
            see_other(&format!("/app/{}", kind.name()))
        }
        None => not_found(),
    }
}
