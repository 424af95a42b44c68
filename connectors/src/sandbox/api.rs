//! The sandbox's REST API: the account (`/api/me`), paged reads of the four streams, and
//! writes with validation, idempotency keys and webhooks. Authentication, rate limiting and
//! faults happen in middleware before these handlers run.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::error::ApiError;
use super::idempotency;
use super::records::{self, Mode, StreamKind};
use super::store::{Fill, PageRequest, WriteError};
use super::tokens::Caller;
use super::{read, write, AppState, Inner};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

/// `GET /api/me`: the account the token belongs to.
pub(crate) async fn me(Extension(_caller): Extension<Caller>) -> Json<Value> {
    Json(
        json!({"account_id": "acct_demo", "account_name": "Sandbox Demo Co", "email": "owner@sandbox.test"}),
    )
}

/// `GET /shop/{stream}`.
pub(crate) async fn list_shop(
    State(inner): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(stream): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    list(&inner, &caller, "shop", &stream, query.as_deref())
}

/// `GET /crm/{stream}`.
pub(crate) async fn list_crm(
    State(inner): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(stream): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    list(&inner, &caller, "crm", &stream, query.as_deref())
}

/// `POST /shop/{stream}`.
pub(crate) async fn create_shop(
    State(inner): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    save(&inner, &caller, ("shop", &stream, None), &headers, &body)
}

/// `POST /crm/{stream}`.
pub(crate) async fn create_crm(
    State(inner): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    save(&inner, &caller, ("crm", &stream, None), &headers, &body)
}

/// `PATCH /shop/{stream}/{id}`.
pub(crate) async fn update_shop(
    State(inner): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((stream, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    save(
        &inner,
        &caller,
        ("shop", &stream, Some(&id)),
        &headers,
        &body,
    )
}

/// `PATCH /crm/{stream}/{id}`.
pub(crate) async fn update_crm(
    State(inner): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((stream, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    save(
        &inner,
        &caller,
        ("crm", &stream, Some(&id)),
        &headers,
        &body,
    )
}

/// `DELETE /shop/{stream}/{id}`.
pub(crate) async fn delete_shop(
    State(inner): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((stream, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    remove(&inner, &caller, "shop", &stream, &id)
}

/// `DELETE /crm/{stream}/{id}`.
pub(crate) async fn delete_crm(
    State(inner): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((stream, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    remove(&inner, &caller, "crm", &stream, &id)
}

/// Deletes a record (write scope) and fires the `deleted` webhook: 204, or 404 for an unknown id.
fn remove(
    inner: &Inner,
    caller: &Caller,
    app: &str,
    stream: &str,
    id: &str,
) -> Result<StatusCode, ApiError> {
    let kind = stream_of(app, stream)?;
    caller.require(kind.write_scope())?;
    if !kind.writable_over_api() {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "read_only_stream",
            format!("{} are read-only in the API", kind.name()),
        ));
    }
    let record = write(&inner.store)
        .delete(kind, id)
        .ok_or_else(|| ApiError::not_found(format!("no {} with id `{id}`", kind.singular())))?;
    inner.webhooks.emit(kind, "deleted", record);
    Ok(StatusCode::NO_CONTENT)
}

fn stream_of(app: &str, stream: &str) -> Result<StreamKind, ApiError> {
    StreamKind::parse_in(app, stream)
        .ok_or_else(|| ApiError::not_found(format!("no stream `{stream}` under /{app}")))
}

/// Parsed `limit`, `cursor` and `updated_since`.
struct ListParams {
    limit: usize,
    cursor: Option<String>,
    updated_since_ms: Option<i64>,
}

fn list_params(query: Option<&str>) -> Result<ListParams, ApiError> {
    let mut params = ListParams {
        limit: DEFAULT_LIMIT,
        cursor: None,
        updated_since_ms: None,
    };
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "limit" => {
                let n: usize = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_limit",
                        format!("limit must be a number from 1 to {MAX_LIMIT}"),
                    )
                })?;
                params.limit = n.min(MAX_LIMIT);
            }
            "cursor" if !value.is_empty() => params.cursor = Some(value.into_owned()),
            "updated_since" if !value.is_empty() => {
                let ms = records::parse_rfc3339(&value).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_updated_since",
                        "updated_since must be an RFC 3339 timestamp such as 2024-01-31T12:00:00Z",
                    )
                })?;
                params.updated_since_ms = Some(ms);
            }
            _ => {}
        }
    }
    Ok(params)
}

fn list(
    inner: &Inner,
    caller: &Caller,
    app: &str,
    stream: &str,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let kind = stream_of(app, stream)?;
    caller.require(kind.read_scope())?;
    let params = list_params(query)?;
    let req = PageRequest {
        limit: params.limit,
        cursor: params.cursor.as_deref(),
        updated_since_ms: params.updated_since_ms,
    };
    let page = read(&inner.store).page(kind, &req).map_err(|()| {
        ApiError::bad_request(
            "invalid_cursor",
            "cursor is not one this stream handed out; start again without it",
        )
    })?;
    let body = format!(
        "{{\"data\":[{}],\"next_cursor\":{}}}",
        page.data,
        json!(page.next_cursor)
    );
    Ok((
        StatusCode::OK,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response())
}

/// `POST` (no id) or `PATCH` (id) on a stream; `target` is (app, stream, id).
fn save(
    inner: &Inner,
    caller: &Caller,
    target: (&str, &str, Option<&str>),
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let (app, stream, id) = target;
    let kind = stream_of(app, stream)?;
    caller.require(kind.write_scope())?;
    if !kind.writable_over_api() {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "read_only_stream",
            format!("{} are read-only in the API", kind.name()),
        ));
    }
    let key = idempotency::key(headers)?;
    let (method, path) = match id {
        Some(id) => (Method::PATCH, format!("/{app}/{stream}/{id}")),
        None => (Method::POST, format!("/{app}/{stream}")),
    };
    let op = || match write_record(inner, kind, id, body) {
        Ok((status, record)) => (status, record.to_string()),
        Err(e) => (e.status, e.body()),
    };
    Ok(idempotency::run(
        inner,
        &caller.client_id,
        key,
        (method.as_str(), &path, body),
        op,
    ))
}

/// Parses, validates and stores a write; fires the webhook.
fn write_record(
    inner: &Inner,
    kind: StreamKind,
    id: Option<&str>,
    body: &[u8],
) -> Result<(StatusCode, Value), ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    let mode = if id.is_some() {
        Mode::Update
    } else {
        Mode::Create
    };
    let fields = records::validate(kind, &value, mode).map_err(ApiError::unprocessable)?;
    let now = records::now_ms();
    let result = match id {
        Some(id) => write(&inner.store).update(kind, id, fields, now),
        None => write(&inner.store).create(kind, fields, now, Fill::Null),
    };
    let record = result.map_err(|e| match e {
        WriteError::NotFound => ApiError::not_found(format!(
            "no {} with id `{}`",
            kind.singular(),
            id.unwrap_or_default()
        )),
        WriteError::Invalid(msg) => ApiError::unprocessable(msg),
    })?;
    let (status, action) = if id.is_some() {
        (StatusCode::OK, "updated")
    } else {
        (StatusCode::CREATED, "created")
    };
    inner.webhooks.emit(kind, action, record.clone());
    Ok((status, record))
}
