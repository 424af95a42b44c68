//! The error every server function returns: a stable code and a message fit for a person.
//!
//! Internal failures are logged on the server with their detail and reach the client only as
//! `Internal`, so no database or library text leaks into a response.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// The error of a server function, serialized to the browser (or into the redirect URL when a
/// form was posted without JavaScript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum AppError {
    /// Not signed in.
    #[error("Please log in to continue.")]
    Unauthorized,
    /// Signed in, but this action needs a role the user does not have.
    #[error("{message}")]
    Forbidden { message: String },
    #[error("{message}")]
    NotFound { message: String },
    /// Bad input; `field` names the form field the message belongs beside.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// The input collides with something that exists, such as an email already registered.
    #[error("{message}")]
    Conflict { field: String, message: String },
    /// Too many attempts; try again later.
    #[error("{message}")]
    RateLimited { message: String },
    /// Something failed on our side; the detail is in the server log under the request id.
    #[error("Something went wrong on our side. Please try again.")]
    Internal,
    /// The request could not be made or read (network down, malformed form).
    #[error("{message}")]
    Request { message: String },
}

impl AppError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AppError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        AppError::Conflict {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden {
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        AppError::NotFound {
            message: message.into(),
        }
    }

    pub fn rate_limited(message: impl Into<String>) -> Self {
        AppError::RateLimited {
            message: message.into(),
        }
    }

    pub fn request(message: impl Into<String>) -> Self {
        AppError::Request {
            message: message.into(),
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden { .. } => "forbidden",
            AppError::NotFound { .. } => "not_found",
            AppError::Invalid { .. } => "invalid",
            AppError::Conflict { .. } => "conflict",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Internal => "internal",
            AppError::Request { .. } => "request",
        }
    }

    /// The form field this error belongs to, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Invalid { field, .. } | AppError::Conflict { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => AppError::request(
                "The form was incomplete or malformed. Please check it and send it again.",
            ),
            ServerFnErrorErr::Request(_) => {
                AppError::request("Could not reach Patchbay. Check your connection and try again.")
            }
            other => {
                #[cfg(feature = "ssr")]
                tracing::error!(error = %other, "server function failed");
                #[cfg(not(feature = "ssr"))]
                let _ = other;
                AppError::Internal
            }
        }
    }
}

#[cfg(feature = "ssr")]
impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        tracing::error!(error = %err, "database error");
        AppError::Internal
    }
}

#[cfg(feature = "ssr")]
impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        tracing::error!(error = format!("{err:#}"), "internal error");
        AppError::Internal
    }
}

/// Maps a unique-constraint violation on `constraint` to a user-facing error, and passes every
/// other database error through as internal.
#[cfg(feature = "ssr")]
pub fn on_constraint(
    constraint: &'static str,
    to_error: impl FnOnce() -> AppError,
) -> impl FnOnce(sqlx::Error) -> AppError {
    move |err| match &err {
        sqlx::Error::Database(db) if db.constraint() == Some(constraint) => to_error(),
        _ => AppError::from(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_through_the_wire_format() {
        let all = [
            AppError::Unauthorized,
            AppError::forbidden("no"),
            AppError::not_found("gone"),
            AppError::invalid("email", "bad"),
            AppError::conflict("email", "taken"),
            AppError::rate_limited("slow down"),
            AppError::Internal,
            AppError::request("malformed"),
        ];
        for err in all {
            let bytes = err.ser();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(json["code"], err.code(), "{json}");
            assert_eq!(AppError::de(bytes), err);
        }
    }
}
