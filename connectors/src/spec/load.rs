//! Loading and validating provider specs. A spec that loads is one the engine can run: every
//! check that can be made without calling the provider is made here, and each error names the
//! file, the field and the problem.

use super::template::{self, PLATFORM_VARS};
use super::{AuthSpec, Pagination, ProviderSpec, StreamSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A spec that failed to load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct SpecError {
    pub file: String,
    /// Dotted path of the field at fault (`streams[1].pagination.param`), or `(file)`.
    pub field: String,
    pub message: String,
}

/// The specs shipped with Patchbay.
const BUILTIN: [(&str, &str); 7] = [
    ("hubspot.toml", include_str!("../../providers/hubspot.toml")),
    ("shopify.toml", include_str!("../../providers/shopify.toml")),
    ("stripe.toml", include_str!("../../providers/stripe.toml")),
    (
        "salesforce.toml",
        include_str!("../../providers/salesforce.toml"),
    ),
    ("github.toml", include_str!("../../providers/github.toml")),
    (
        "sandbox-shop.toml",
        include_str!("../../providers/sandbox-shop.toml"),
    ),
    (
        "sandbox-crm.toml",
        include_str!("../../providers/sandbox-crm.toml"),
    ),
];

/// Loads every built-in spec.
pub fn builtin_specs() -> Result<Vec<ProviderSpec>, SpecError> {
    BUILTIN
        .iter()
        .map(|(file, text)| load_str(file, text))
        .collect()
}

/// Loads a spec from a file.
pub fn load_file(path: &Path) -> Result<ProviderSpec, SpecError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SpecError {
        file: file.clone(),
        field: "(file)".into(),
        message: format!("cannot read: {e}"),
    })?;
    load_str(&file, &text)
}

/// Parses and validates a spec; `file` names it in errors.
pub fn load_str(file: &str, text: &str) -> Result<ProviderSpec, SpecError> {
    let spec: ProviderSpec = toml::from_str(text).map_err(|e| {
        let field = e
            .span()
            .map(|span| {
                format!(
                    "line {}",
                    text[..span.start.min(text.len())].lines().count().max(1)
                )
            })
            .unwrap_or_else(|| "(file)".into());
        SpecError {
            file: file.to_owned(),
            field,
            message: e.message().trim().to_owned(),
        }
    })?;
    Validator {
        file,
        errors: Vec::new(),
    }
    .run(&spec)?;
    Ok(spec)
}

struct Validator<'a> {
    file: &'a str,
    errors: Vec<SpecError>,
}

impl Validator<'_> {
    fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(SpecError {
            file: self.file.to_owned(),
            field: field.into(),
            message: message.into(),
        });
    }

    /// Reports the first problem found (specs are small; one at a time is clearer).
    fn run(mut self, spec: &ProviderSpec) -> Result<(), SpecError> {
        self.check(spec);
        match self.errors.into_iter().next() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    fn check(&mut self, spec: &ProviderSpec) {
        if spec.id.is_empty()
            || !spec
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            self.fail("id", "use lowercase letters, digits and dashes");
        }
        if spec.name.trim().is_empty() {
            self.fail("name", "must not be empty");
        }
        let mut vars: BTreeSet<String> = PLATFORM_VARS.iter().map(|s| s.to_string()).collect();
        let mut seen = BTreeSet::new();
        for (i, f) in spec.connection_fields.iter().enumerate() {
            if !is_identifier(&f.name) {
                self.fail(
                    format!("connection_fields[{i}].name"),
                    "use letters, digits and underscores",
                );
            }
            if !seen.insert(&f.name) {
                self.fail(
                    format!("connection_fields[{i}].name"),
                    format!("`{}` is declared twice", f.name),
                );
            }
            vars.insert(f.name.clone());
        }
        if let Some(oauth) = spec.oauth2() {
            vars.extend(oauth.token_fields.iter().cloned());
        }
        self.url("base_url", &spec.base_url, &vars);
        match &spec.auth {
            AuthSpec::OAuth2(o) => {
                self.url("auth.authorize_url", &o.authorize_url, &vars);
                self.url("auth.token_url", &o.token_url, &vars);
                if let Some(revoke) = &o.revoke_url {
                    self.url("auth.revoke_url", revoke, &vars);
                }
                if o.token_header.trim().is_empty() {
                    self.fail("auth.token_header", "must not be empty");
                }
                for scope in o.scope_descriptions.keys() {
                    if !o.scopes.contains(scope) {
                        self.fail(
                            "auth.scope_descriptions",
                            format!("describes `{scope}`, which is not in scopes"),
                        );
                    }
                }
            }
            AuthSpec::ApiKey { name, .. } if name.trim().is_empty() => {
                self.fail("auth.name", "must not be empty")
            }
            _ => {}
        }
        if let Some(check) = &spec.check {
            self.template("check.path", &check.path, &vars);
            self.pointer("check.label_pointer", check.label_pointer.as_deref());
        }
        if let Some(rate) = &spec.rate_limit {
            if rate.requests == 0 || rate.per_secs == 0 {
                self.fail("rate_limit", "requests and per_secs must be positive");
            }
            match (rate.app_requests, rate.app_per_secs) {
                (None, None) => {}
                (Some(n), Some(secs)) if n > 0 && secs > 0 => {}
                _ => self.fail(
                    "rate_limit.app_requests",
                    "give app_requests and app_per_secs together, both positive",
                ),
            }
        }
        let mut names = BTreeSet::new();
        for (i, stream) in spec.streams.iter().enumerate() {
            if !names.insert(stream.name.as_str()) {
                self.fail(
                    format!("streams[{i}].name"),
                    format!("`{}` is declared twice", stream.name),
                );
            }
            self.stream(i, stream, &vars);
        }
        if let Some(hooks) = &spec.webhooks {
            if hooks.delivery_id_header.is_none() && hooks.delivery_id_pointer.is_none() {
                self.fail("webhooks", "name delivery_id_header or delivery_id_pointer, so deliveries can be deduplicated");
            }
            self.pointer(
                "webhooks.delivery_id_pointer",
                hooks.delivery_id_pointer.as_deref(),
            );
            self.pointer(
                "webhooks.event_type_pointer",
                hooks.event_type_pointer.as_deref(),
            );
            if let Some(sub) = &hooks.subscribe {
                self.template("webhooks.subscribe.path", &sub.path, &vars);
                self.pointer("webhooks.subscribe.id_pointer", Some(&sub.id_pointer));
                self.pointer(
                    "webhooks.subscribe.secret_pointer",
                    Some(&sub.secret_pointer),
                );
                if let Some(delete) = &sub.delete_path {
                    self.template("webhooks.subscribe.delete_path", delete, &vars);
                    if !delete.contains("{id}") {
                        self.fail("webhooks.subscribe.delete_path", "must name `{id}`");
                    }
                }
            }
        }
    }

    fn stream(&mut self, i: usize, s: &StreamSpec, vars: &BTreeSet<String>) {
        let at = |f: &str| format!("streams[{i}].{f}");
        if !is_identifier(&s.name) {
            self.fail(at("name"), "use letters, digits and underscores");
        }
        let mut vars = vars.clone();
        vars.extend(s.inputs.iter().map(|f| f.name.clone()));
        self.template(&at("path"), &s.path, &vars);
        if !s.path.starts_with('/') {
            self.fail(at("path"), "must start with `/`");
        }
        for (k, v) in &s.query {
            self.template(&at(&format!("query.{k}")), v, &vars);
        }
        if !s.records.is_empty() {
            self.pointer(&at("records"), Some(&s.records));
        }
        if s.primary_key.trim().is_empty() {
            self.fail(at("primary_key"), "must not be empty");
        }
        if let Some(inc) = &s.incremental {
            let templated = s.query.values().any(|v| v.contains("{cursor}"));
            match (&inc.param, templated) {
                (None, false) => self.fail(
                    at("incremental"),
                    "set `param`, or write `{cursor}` into a query value",
                ),
                (Some(_), true) => self.fail(
                    at("incremental"),
                    "use either `param` or `{cursor}` in query, not both",
                ),
                (None, true) if inc.initial.is_none() => self.fail(
                    at("incremental.initial"),
                    "needed when `{cursor}` is in query (the first sync has no cursor)",
                ),
                _ => {}
            }
        } else if s.query.values().any(|v| v.contains("{cursor}")) {
            self.fail(at("query"), "`{cursor}` needs an [incremental] section");
        }
        match &s.pagination {
            Pagination::Cursor {
                next_pointer,
                last_record_field,
                has_more_pointer,
                ..
            } => {
                if next_pointer.is_none() == last_record_field.is_none() {
                    self.fail(
                        at("pagination"),
                        "set exactly one of next_pointer and last_record_field",
                    );
                }
                if last_record_field.is_some() && has_more_pointer.is_none() {
                    self.fail(
                        at("pagination.has_more_pointer"),
                        "needed with last_record_field",
                    );
                }
                self.pointer(&at("pagination.next_pointer"), next_pointer.as_deref());
                self.pointer(
                    &at("pagination.has_more_pointer"),
                    has_more_pointer.as_deref(),
                );
            }
            Pagination::Offset { page_size, .. } if *page_size == 0 => {
                self.fail(at("pagination.page_size"), "must be positive")
            }
            Pagination::NextUrl {
                next_pointer,
                done_pointer,
            } => {
                self.pointer(&at("pagination.next_pointer"), Some(next_pointer));
                self.pointer(&at("pagination.done_pointer"), done_pointer.as_deref());
            }
            _ => {}
        }
        if let Some(w) = &s.write {
            self.template(&at("write.create_path"), &w.create_path, &vars);
            if let Some(update) = &w.update_path {
                self.template(&at("write.update_path"), update, &vars);
                if !update.contains("{id}") {
                    self.fail(at("write.update_path"), "must name `{id}`");
                }
            }
            if !matches!(w.update_method.as_str(), "PATCH" | "PUT" | "POST") {
                self.fail(at("write.update_method"), "use PATCH, PUT or POST");
            }
            if let Some(delete) = &w.delete_path {
                self.template(&at("write.delete_path"), delete, &vars);
                if !delete.contains("{id}") {
                    self.fail(at("write.delete_path"), "must name `{id}`");
                }
            }
        }
    }

    /// A template whose names are all known.
    fn template(&mut self, field: &str, value: &str, vars: &BTreeSet<String>) {
        match template::names(value) {
            Err(e) => self.fail(field, e),
            Ok(names) => {
                for name in names {
                    if name != "id" && !vars.contains(name) {
                        self.fail(field, format!("`{{{name}}}` is not a connection field, token field or stream input"));
                    }
                }
            }
        }
    }

    /// A URL template that, filled with sample values, is an http(s) URL.
    fn url(&mut self, field: &str, value: &str, vars: &BTreeSet<String>) {
        self.template(field, value, vars);
        let sample: BTreeMap<String, String> = template::names(value)
            .unwrap_or_default()
            .into_iter()
            .map(|n| {
                (
                    n.to_owned(),
                    if n.ends_with("_url") {
                        "https://example.com".to_owned()
                    } else {
                        "sample".to_owned()
                    },
                )
            })
            .collect();
        if let Ok(filled) = template::render(value, &sample, template::Escape::None) {
            match url::Url::parse(&filled) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                Ok(_) => self.fail(field, "must be an http or https URL"),
                Err(e) => self.fail(field, format!("not a URL: {e}")),
            }
        }
    }

    fn pointer(&mut self, field: &str, pointer: Option<&str>) {
        if let Some(p) = pointer {
            if !p.is_empty() && !p.starts_with('/') {
                self.fail(
                    field,
                    format!("`{p}` is not a JSON pointer (it must start with `/`)"),
                );
            }
        }
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
