//! Recipes against the provider specs: the providers a recipe may name, the check of an editor's
//! recipe (streams that exist, a destination that can be written, a mapping whose fields exist),
//! and what a listing page says about a recipe (what syncs, the permissions it asks for).

use crate::error::AppError;
use crate::model::listing::{
    ConfigField, ConfigInput, ConfigKind, FieldMapping, Interval, ListingForm, MappedField,
    Permission, ProviderChoice, Recipe, StreamChoice, SyncedStream, Trigger, STORE_NAME,
    STORE_PROVIDER,
};
use connectors::mapping::Mapping;
use connectors::spec::{builtin_specs, AuthSpec, ProviderSpec};
use std::collections::BTreeSet;
use std::sync::LazyLock;

/// At most this many config fields per recipe.
pub const MAX_CONFIG_FIELDS: usize = 20;
/// At most this many mapped fields per recipe.
pub const MAX_MAPPED_FIELDS: usize = 200;

/// The providers a recipe may name: the built-in specs, by name.
pub struct Providers {
    specs: Vec<ProviderSpec>,
}

static BUILTIN: LazyLock<Providers> = LazyLock::new(|| {
    // The built-in specs are compiled in and each is loaded by the connectors' own tests, so a
    // failure here is a build defect, not something a running server can recover from.
    let mut specs = builtin_specs().expect("built-in provider specs load");
    specs.sort_by_key(|s| s.name.to_lowercase());
    Providers { specs }
});

/// The built-in providers.
pub fn providers() -> &'static Providers {
    &BUILTIN
}

impl Providers {
    /// Every provider, by name.
    pub fn all(&self) -> impl Iterator<Item = &ProviderSpec> {
        self.specs.iter()
    }

    pub fn get(&self, id: &str) -> Option<&ProviderSpec> {
        self.specs.iter().find(|s| s.id == id)
    }

    /// The name a provider id is shown under (the store's, or the spec's, or the id itself).
    pub fn name_of(&self, id: &str) -> String {
        if id == STORE_PROVIDER {
            return STORE_NAME.to_owned();
        }
        self.get(id)
            .map_or_else(|| id.to_owned(), |s| s.name.clone())
    }

    /// Every provider as the recipe editor offers it, the Patchbay store last.
    pub fn choices(&self) -> Vec<ProviderChoice> {
        let mut choices: Vec<ProviderChoice> = self
            .specs
            .iter()
            .filter(|s| !s.streams.is_empty())
            .map(|s| ProviderChoice {
                id: s.id.clone(),
                name: s.name.clone(),
                has_webhooks: s.webhooks.is_some(),
                streams: s
                    .streams
                    .iter()
                    .map(|st| StreamChoice {
                        name: st.name.clone(),
                        label: stream_label(&st.label, &st.name),
                        fields: st.fields.clone(),
                        writable: st.write.is_some(),
                    })
                    .collect(),
            })
            .collect();
        choices.push(ProviderChoice {
            id: STORE_PROVIDER.to_owned(),
            name: STORE_NAME.to_owned(),
            has_webhooks: false,
            streams: Vec::new(),
        });
        choices
    }
}

fn stream_label(label: &str, name: &str) -> String {
    if label.is_empty() {
        name.to_owned()
    } else {
        label.to_owned()
    }
}

/// Checks the recipe part of an editor's form. What is given must be right (streams that exist,
/// known mapping fields); what is missing is allowed in a draft and caught by [`check_complete`]
/// when the version is submitted.
pub fn parse_recipe(form: &ListingForm) -> Result<Recipe, AppError> {
    // Bounds first, so that an absurd form costs nothing to refuse.
    let too_many = [
        ("source_streams", form.source_streams.len(), 100),
        ("mapping", form.mapping.len(), MAX_MAPPED_FIELDS * 2),
        ("config", form.config.len(), MAX_CONFIG_FIELDS * 2),
        ("allowed_schedules", form.allowed_schedules.len(), 20),
        ("triggers", form.triggers.len(), 20),
    ];
    if let Some((field, _, max)) = too_many.into_iter().find(|(_, n, max)| n > max) {
        return Err(AppError::invalid(
            field,
            format!("Send at most {max} rows."),
        ));
    }
    let cells = form
        .mapping
        .iter()
        .flat_map(|m| [&m.to, &m.from])
        .map(|t| ("mapping", t))
        .chain(
            form.config
                .iter()
                .flat_map(|c| [&c.key, &c.label, &c.help, &c.default, &c.kind])
                .map(|t| ("config", t)),
        );
    for (field, text) in cells {
        if text.chars().any(char::is_control) || text.len() > 500 {
            return Err(AppError::invalid(
                field,
                "Keep each cell to one line of at most 500 characters.",
            ));
        }
    }
    let providers = providers();
    let source_provider = form.source_provider.trim().to_owned();
    let mut source_streams: Vec<String> = Vec::new();
    let mut source_fields: BTreeSet<&str> = BTreeSet::new();
    let source = if source_provider.is_empty() {
        if form.source_streams.iter().any(|s| !s.trim().is_empty()) {
            return Err(AppError::invalid(
                "source_provider",
                "Choose the app the data comes from before choosing its streams.",
            ));
        }
        None
    } else {
        let Some(spec) = providers
            .get(&source_provider)
            .filter(|s| !s.streams.is_empty())
        else {
            return Err(AppError::invalid(
                "source_provider",
                format!("There is no source app \u{201c}{source_provider}\u{201d}; choose one from the list."),
            ));
        };
        for name in form
            .source_streams
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
        {
            let Some(stream) = spec.stream(name) else {
                return Err(AppError::invalid(
                    "source_streams",
                    format!(
                        "{} has no stream \u{201c}{name}\u{201d}; it offers {}.",
                        spec.name,
                        stream_list(spec)
                    ),
                ));
            };
            if !source_streams.iter().any(|s| s == name) {
                source_streams.push(name.to_owned());
                source_fields.extend(stream.fields.iter().map(String::as_str));
            }
        }
        Some(spec)
    };

    let destination_provider = form.destination_provider.trim().to_owned();
    let destination_stream = form.destination_stream.trim().to_owned();
    let mut destination_fields: Option<BTreeSet<&str>> = None;
    if destination_provider == STORE_PROVIDER || destination_provider.is_empty() {
        if !destination_stream.is_empty() && !is_key(&destination_stream) {
            return Err(AppError::invalid(
                "destination_stream",
                "Name the collection with lowercase letters, digits and underscores, starting with a letter (at most 40), such as contacts.",
            ));
        }
    } else {
        let Some(spec) = providers.get(&destination_provider) else {
            return Err(AppError::invalid(
                "destination_provider",
                format!("There is no destination app \u{201c}{destination_provider}\u{201d}; choose one from the list."),
            ));
        };
        if !destination_stream.is_empty() {
            match spec.stream(&destination_stream) {
                Some(stream) if stream.write.is_some() => {
                    // A body wrapped in a key (HubSpot's `properties`) takes any field names the
                    // provider's account defines; otherwise the stream's fields are the list.
                    if stream.write.as_ref().is_some_and(|w| w.body_key.is_none()) {
                        destination_fields =
                            Some(stream.fields.iter().map(String::as_str).collect());
                    }
                }
                Some(_) => {
                    return Err(AppError::invalid(
                        "destination_stream",
                        format!("Patchbay cannot write to {} {destination_stream}; choose a stream it can write.", spec.name),
                    ))
                }
                None => {
                    return Err(AppError::invalid(
                        "destination_stream",
                        format!("{} has no stream \u{201c}{destination_stream}\u{201d}; it offers {}.", spec.name, stream_list(spec)),
                    ))
                }
            }
        }
    }

    let mapping = parse_mapping(
        form,
        source.map(|_| &source_fields),
        destination_fields.as_ref(),
    )?;
    let config_fields = parse_config(&form.config)?;

    let default_schedule: Interval = if form.default_schedule.trim().is_empty() {
        Interval::Hourly
    } else {
        form.default_schedule.trim().parse()?
    };
    let mut allowed_schedules = Vec::new();
    for text in form
        .allowed_schedules
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        let interval: Interval = text.parse().map_err(|_| {
            AppError::invalid(
                "allowed_schedules",
                format!("Unknown schedule \u{201c}{text}\u{201d}."),
            )
        })?;
        if !allowed_schedules.contains(&interval) {
            allowed_schedules.push(interval);
        }
    }
    // The default is always one the customer may keep.
    if !allowed_schedules.contains(&default_schedule) {
        allowed_schedules.push(default_schedule);
    }
    allowed_schedules.sort_by_key(|i| Interval::ALL.iter().position(|a| a == i));

    let mut triggers = Vec::new();
    for text in form
        .triggers
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        let trigger: Trigger = text.parse()?;
        if !triggers.contains(&trigger) {
            triggers.push(trigger);
        }
    }
    if triggers.is_empty() {
        return Err(AppError::invalid(
            "triggers",
            "Choose at least one way a sync starts.",
        ));
    }
    if triggers.contains(&Trigger::Webhook) {
        if let Some(spec) = source.filter(|s| s.webhooks.is_none()) {
            return Err(AppError::invalid(
                "triggers",
                format!(
                    "{} sends no webhooks Patchbay can verify; choose a schedule or manual runs.",
                    spec.name
                ),
            ));
        }
    }
    triggers.sort_by_key(|t| Trigger::ALL.iter().position(|a| a == t));

    Ok(Recipe {
        source_provider,
        source_streams,
        destination_provider: if destination_provider.is_empty() {
            STORE_PROVIDER.to_owned()
        } else {
            destination_provider
        },
        destination_stream,
        mapping,
        config_fields,
        default_schedule,
        allowed_schedules,
        triggers,
    })
}

fn stream_list(spec: &ProviderSpec) -> String {
    let names: Vec<&str> = spec.streams.iter().map(|s| s.name.as_str()).collect();
    names.join(", ")
}

/// Lowercase letters, digits and underscores, starting with a letter, at most 40.
fn is_key(text: &str) -> bool {
    text.len() <= 40
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn parse_mapping(
    form: &ListingForm,
    source_fields: Option<&BTreeSet<&str>>,
    destination_fields: Option<&BTreeSet<&str>>,
) -> Result<FieldMapping, AppError> {
    let mut fields = Vec::new();
    for (index, row) in form.mapping.iter().enumerate() {
        let (to, from) = (row.to.trim(), row.from.trim());
        match (to.is_empty(), from.is_empty()) {
            (true, true) => continue,
            (true, false) => {
                return Err(AppError::invalid(
                    "mapping",
                    format!(
                        "Row {} copies {from} but names no destination field.",
                        index + 1
                    ),
                ))
            }
            (false, true) => {
                return Err(AppError::invalid(
                    "mapping",
                    format!("Row {} ({to}) names no source field.", index + 1),
                ))
            }
            (false, false) => {}
        }
        if let Some(known) = destination_fields {
            let root = to.split('.').next().unwrap_or(to);
            if !known.contains(root) {
                let list: Vec<&str> = known.iter().copied().collect();
                return Err(AppError::invalid(
                    "mapping",
                    format!(
                        "Row {}: the destination has no field \u{201c}{root}\u{201d}; it has {}.",
                        index + 1,
                        list.join(", ")
                    ),
                ));
            }
        }
        fields.push(MappedField {
            to: to.to_owned(),
            op: "rename".to_owned(),
            from: from.to_owned(),
        });
    }
    if fields.len() > MAX_MAPPED_FIELDS {
        return Err(AppError::invalid(
            "mapping",
            format!("Map at most {MAX_MAPPED_FIELDS} fields."),
        ));
    }
    let mapping = FieldMapping { fields };
    if !mapping.fields.is_empty() && source_fields.is_none() {
        return Err(AppError::invalid(
            "mapping",
            "Choose the source app and its streams before mapping fields.",
        ));
    }
    check_mapping(&mapping, source_fields)?;
    Ok(mapping)
}

/// Runs the sync engine's own check over a mapping, so that what a vendor saves is what a sync
/// can run: unique destinations, parseable paths, and source fields the streams have.
fn check_mapping(
    mapping: &FieldMapping,
    source_fields: Option<&BTreeSet<&str>>,
) -> Result<(), AppError> {
    let value = serde_json::to_value(mapping).map_err(|err| {
        tracing::error!(error = %err, "serializing a mapping");
        AppError::Internal
    })?;
    let parsed: Mapping = serde_json::from_value(value).map_err(|err| {
        tracing::error!(error = %err, "a recipe mapping the engine cannot read");
        AppError::Internal
    })?;
    let fields: Option<Vec<&str>> = source_fields.map(|f| f.iter().copied().collect());
    parsed
        .validate(fields.as_deref())
        .map_err(|err| AppError::invalid("mapping", format!("The mapping is not valid: {err}.")))
}

fn parse_config(rows: &[ConfigInput]) -> Result<Vec<ConfigField>, AppError> {
    let mut fields: Vec<ConfigField> = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let n = index + 1;
        let key = row.key.trim();
        let blank = key.is_empty()
            && row.label.trim().is_empty()
            && row.help.trim().is_empty()
            && row.default.trim().is_empty();
        if blank {
            continue;
        }
        let err = |message: String| AppError::invalid("config", message);
        if !is_key(key) {
            return Err(err(format!(
                "Config field {n}: give it a key of lowercase letters, digits and underscores, starting with a letter, such as list_id."
            )));
        }
        if fields.iter().any(|f| f.key == key) {
            return Err(err(format!(
                "Config field {n}: the key {key} is used twice."
            )));
        }
        let kind: ConfigKind = if row.kind.trim().is_empty() {
            ConfigKind::Text
        } else {
            row.kind.trim().parse().map_err(|_| {
                err(format!(
                    "Config field {n} ({key}): unknown type \u{201c}{}\u{201d}.",
                    row.kind.trim()
                ))
            })?
        };
        let label = row.label.trim();
        if label.is_empty() || label.chars().count() > 80 {
            return Err(err(format!(
                "Config field {n} ({key}): give it a label of at most 80 characters."
            )));
        }
        let help = row.help.trim();
        if help.chars().count() > 200 {
            return Err(err(format!(
                "Config field {n} ({key}): keep the help to 200 characters."
            )));
        }
        let default = row.default.trim();
        let default_ok = default.is_empty()
            || match kind {
                ConfigKind::Text => default.chars().count() <= 200,
                ConfigKind::Number => default.parse::<f64>().is_ok_and(f64::is_finite),
                ConfigKind::Boolean => matches!(default, "true" | "false"),
                ConfigKind::Email => {
                    default.contains('@') && !default.contains(char::is_whitespace)
                }
                ConfigKind::Url => crate::model::listing::parse_link("config", default).is_ok(),
            };
        if !default_ok {
            return Err(err(format!(
                "Config field {n} ({key}): the default \u{201c}{default}\u{201d} is not a valid {}.",
                kind.label().to_lowercase()
            )));
        }
        fields.push(ConfigField {
            key: key.to_owned(),
            kind,
            label: label.to_owned(),
            help: help.to_owned(),
            required: row.required.is_some(),
            default: default.to_owned(),
        });
    }
    if fields.len() > MAX_CONFIG_FIELDS {
        return Err(AppError::invalid(
            "config",
            format!("Ask for at most {MAX_CONFIG_FIELDS} config fields."),
        ));
    }
    Ok(fields)
}

/// What a version needs before review: a source with streams, a destination, and a mapping.
pub fn check_complete(recipe: &Recipe) -> Result<(), AppError> {
    if recipe.source_provider.is_empty() {
        return Err(AppError::invalid(
            "source_provider",
            "Choose the app the data comes from.",
        ));
    }
    if recipe.source_streams.is_empty() {
        return Err(AppError::invalid(
            "source_streams",
            "Choose at least one stream to sync.",
        ));
    }
    if recipe.destination_stream.is_empty() {
        return Err(AppError::invalid(
            "destination_stream",
            "Choose where the records go (a stream, or a collection of the Patchbay store).",
        ));
    }
    if recipe.mapping.fields.is_empty() {
        return Err(AppError::invalid("mapping", "Map at least one field."));
    }
    Ok(())
}

/// "What syncs": each source stream with the fields the mapping reads from it.
pub fn synced_streams(recipe: &Recipe) -> Vec<SyncedStream> {
    let Some(spec) = providers().get(&recipe.source_provider) else {
        return Vec::new();
    };
    recipe
        .source_streams
        .iter()
        .filter_map(|name| spec.stream(name))
        .map(|stream| SyncedStream {
            label: stream_label(&stream.label, &stream.name),
            fields: stream
                .fields
                .iter()
                .filter(|f| {
                    recipe
                        .mapping
                        .fields
                        .iter()
                        .any(|m| m.from.split('.').next() == Some(f.as_str()))
                })
                .cloned()
                .collect(),
        })
        .collect()
}

/// The OAuth scopes the recipe's providers ask for, in plain words.
pub fn permissions(recipe: &Recipe) -> Vec<Permission> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for id in [&recipe.source_provider, &recipe.destination_provider] {
        if !seen.insert(id.as_str()) {
            continue;
        }
        let Some(spec) = providers().get(id) else {
            continue;
        };
        if let Some(oauth) = spec.oauth2() {
            for scope in &oauth.scopes {
                out.push(Permission {
                    provider: spec.name.clone(),
                    scope: scope.clone(),
                    description: oauth
                        .scope_descriptions
                        .get(scope)
                        .cloned()
                        .unwrap_or_else(|| format!("The {scope} permission of {}", spec.name)),
                });
            }
        }
    }
    out
}

/// How the customer's account at each provider is connected.
pub fn auth_kinds(recipe: &Recipe) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for id in [&recipe.source_provider, &recipe.destination_provider] {
        let Some(spec) = providers().get(id) else {
            continue;
        };
        if out.iter().any(|(name, _)| *name == spec.name) {
            continue;
        }
        let kind = match spec.auth {
            AuthSpec::OAuth2(_) => "Sign in with your account (OAuth)",
            AuthSpec::ApiKey { .. } => "An API key you paste in",
            AuthSpec::Basic => "A username and password",
            AuthSpec::None => "No account needed",
        };
        out.push((spec.name.clone(), kind.to_owned()));
    }
    out
}

#[cfg(test)]
mod tests;
