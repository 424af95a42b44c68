//! The recipe part of the listing editor: source app and streams, destination, the default field
//! mapping, the config fields customers fill in, schedules and triggers.
//!
//! Lists post with indexed names (`form[mapping][3][to]`); blank rows are ignored by the server.
//! With JavaScript, choosing another app shows its streams at once and "Add rows" adds rows;
//! without it, saving shows them.

use super::forms::FieldError;
use crate::error::AppError;
use crate::model::listing::{
    ConfigKind, Interval, ListingEditor, ProviderChoice, Trigger, STORE_PROVIDER,
};
use leptos::prelude::*;

/// Blank rows offered below the filled ones.
const BLANK_ROWS: usize = 3;

#[component]
pub fn RecipeFields(ed: ListingEditor, error: Signal<Option<AppError>>, disabled: bool) -> AnyView {
    let recipe = ed.content.recipe.clone();
    let providers = StoredValue::new(ed.providers.clone());
    let source = RwSignal::new(recipe.source_provider.clone());
    let destination = RwSignal::new(recipe.destination_provider.clone());
    let chosen_streams = StoredValue::new(recipe.source_streams.clone());
    let saved_destination_stream = StoredValue::new(recipe.destination_stream.clone());
    let find = move |id: &str| -> Option<ProviderChoice> {
        providers.with_value(|ps| ps.iter().find(|p| p.id == id).cloned())
    };

    let streams_view = move || {
        let Some(provider) = find(&source.get()) else {
            return view! { <p class="muted">"Choose the source app to see its streams."</p> }
                .into_any();
        };
        view! {
            <div class="checkbox-grid">
                {provider.streams.iter().enumerate().map(|(i, s)| {
                    let checked = chosen_streams.with_value(|c| c.contains(&s.name));
                    view! {
                        <label class="check">
                            <input type="checkbox" name=format!("form[source_streams][{i}]") value=s.name.clone() checked=checked />
                            <span>{s.label.clone()}<span class="muted small">{format!(" ({} fields)", s.fields.len())}</span></span>
                        </label>
                    }
                }).collect_view()}
            </div>
        }
        .into_any()
    };

    let destination_stream_view = move || {
        let dest = destination.get();
        let saved = saved_destination_stream.get_value();
        if dest.is_empty() || dest == STORE_PROVIDER {
            return view! {
                <input id="f-destination_stream" name="form[destination_stream]" value=saved placeholder="contacts" maxlength="40" />
                <p class="help">"A collection of the Patchbay store: lowercase letters, digits and underscores. Your app reads it through Patchbay's API."</p>
            }
            .into_any();
        }
        let streams: Vec<_> = find(&dest)
            .map(|p| p.streams)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.writable)
            .collect();
        view! {
            <select id="f-destination_stream" name="form[destination_stream]">
                <option value="">"Choose a stream…"</option>
                {streams.into_iter().map(|s| {
                    let selected = s.name == saved;
                    view! { <option value=s.name.clone() selected=selected>{s.label}</option> }
                }).collect_view()}
            </select>
        }
        .into_any()
    };

    let source_fields = move || {
        let mut fields: Vec<String> = find(&source.get())
            .map(|p| p.streams.into_iter().flat_map(|s| s.fields).collect())
            .unwrap_or_default();
        fields.sort();
        fields.dedup();
        fields
    };

    let mapping_rows = RwSignal::new(recipe.mapping.fields.len() + BLANK_ROWS);
    let saved_mapping = StoredValue::new(recipe.mapping.fields.clone());
    let config_rows = RwSignal::new(recipe.config_fields.len() + BLANK_ROWS);
    let saved_config = StoredValue::new(recipe.config_fields.clone());

    view! {
        <fieldset class="panel stack" disabled=disabled>
            <legend class="panel-legend">"Recipe"</legend>
            <div class="field">
                <label for="f-source_provider">"Source app"</label>
                <select id="f-source_provider" name="form[source_provider]" on:change=move |ev| source.set(event_target_value(&ev))>
                    <option value="">"Choose the app the data comes from…"</option>
                    {providers.get_value().into_iter().filter(|p| p.id != STORE_PROVIDER).map(|p| {
                        let selected = p.id == recipe.source_provider;
                        view! { <option value=p.id.clone() selected=selected>{p.name}</option> }
                    }).collect_view()}
                </select>
                <FieldError error field="source_provider" />
            </div>
            <fieldset class="field choice-group">
                <legend>"Streams to sync"</legend>
                {streams_view}
                <FieldError error field="source_streams" />
            </fieldset>
            <div class="field-row">
                <div class="field">
                    <label for="f-destination_provider">"Destination"</label>
                    <select id="f-destination_provider" name="form[destination_provider]" on:change=move |ev| destination.set(event_target_value(&ev))>
                        {providers.get_value().into_iter().filter(|p| p.id == STORE_PROVIDER || p.streams.iter().any(|s| s.writable)).map(|p| {
                            let selected = p.id == recipe.destination_provider;
                            view! { <option value=p.id.clone() selected=selected>{p.name}</option> }
                        }).collect_view()}
                    </select>
                    <FieldError error field="destination_provider" />
                </div>
                <div class="field">
                    <label for="f-destination_stream">"Destination stream"</label>
                    {destination_stream_view}
                    <FieldError error field="destination_stream" />
                </div>
            </div>

            <fieldset class="field">
                <legend>"Default field mapping"</legend>
                <p class="help">"Each row copies a source field (a dotted path such as properties.email) into a destination field. Customers can change it when they install."</p>
                <datalist id="source-fields">
                    {move || source_fields().into_iter().map(|f| view! { <option value=f></option> }).collect_view()}
                </datalist>
                <table class="table compact edit-table">
                    <thead><tr><th scope="col">"Source field"</th><th scope="col">"Destination field"</th></tr></thead>
                    <tbody>
                        {move || (0..mapping_rows.get()).map(|i| {
                            let row = saved_mapping.with_value(|m| m.get(i).cloned());
                            let (from, to) = row.map(|r| (r.from, r.to)).unwrap_or_default();
                            view! {
                                <tr>
                                    <td><input name=format!("form[mapping][{i}][from]") value=from list="source-fields" aria-label=format!("Source field, row {}", i + 1) /></td>
                                    <td><input name=format!("form[mapping][{i}][to]") value=to aria-label=format!("Destination field, row {}", i + 1) /></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                <button type="button" class="button button-ghost button-small js-only" on:click=move |_| mapping_rows.update(|n| *n += BLANK_ROWS)>"Add rows"</button>
                <FieldError error field="mapping" />
            </fieldset>

            <fieldset class="field">
                <legend>"Settings customers fill in"</legend>
                <p class="help">"Optional. The key is how the sync reads the value, such as list_id."</p>
                <table class="table compact edit-table">
                    <thead><tr>
                        <th scope="col">"Key"</th><th scope="col">"Type"</th><th scope="col">"Label"</th>
                        <th scope="col">"Help"</th><th scope="col">"Default"</th><th scope="col">"Required"</th>
                    </tr></thead>
                    <tbody>
                        {move || (0..config_rows.get()).map(|i| {
                            let row = saved_config.with_value(|c| c.get(i).cloned());
                            let n = i + 1;
                            let kind = row.as_ref().map(|r| r.kind).unwrap_or(ConfigKind::Text);
                            view! {
                                <tr>
                                    <td><input name=format!("form[config][{i}][key]") value=row.as_ref().map(|r| r.key.clone()) aria-label=format!("Key, setting {n}") /></td>
                                    <td>
                                        <select name=format!("form[config][{i}][kind]") aria-label=format!("Type, setting {n}")>
                                            {ConfigKind::ALL.iter().map(|k| view! {
                                                <option value=k.as_str() selected=*k == kind>{k.label()}</option>
                                            }).collect_view()}
                                        </select>
                                    </td>
                                    <td><input name=format!("form[config][{i}][label]") value=row.as_ref().map(|r| r.label.clone()) aria-label=format!("Label, setting {n}") /></td>
                                    <td><input name=format!("form[config][{i}][help]") value=row.as_ref().map(|r| r.help.clone()) aria-label=format!("Help, setting {n}") /></td>
                                    <td><input name=format!("form[config][{i}][default]") value=row.as_ref().map(|r| r.default.clone()) aria-label=format!("Default, setting {n}") /></td>
                                    <td class="center"><input type="checkbox" name=format!("form[config][{i}][required]") checked=row.as_ref().is_some_and(|r| r.required) aria-label=format!("Required, setting {n}") /></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                <button type="button" class="button button-ghost button-small js-only" on:click=move |_| config_rows.update(|n| *n += BLANK_ROWS)>"Add rows"</button>
                <FieldError error field="config" />
            </fieldset>

            <div class="field-row">
                <div class="field">
                    <label for="f-default_schedule">"Default schedule"</label>
                    <select id="f-default_schedule" name="form[default_schedule]">
                        {Interval::ALL.iter().map(|i| view! {
                            <option value=i.as_str() selected=*i == recipe.default_schedule>{i.label()}</option>
                        }).collect_view()}
                    </select>
                    <FieldError error field="default_schedule" />
                </div>
                <fieldset class="field choice-group">
                    <legend>"Schedules customers may choose"</legend>
                    <div class="checkbox-grid">
                        {Interval::ALL.iter().enumerate().map(|(n, i)| view! {
                            <label class="check">
                                <input type="checkbox" name=format!("form[allowed_schedules][{n}]") value=i.as_str() checked=recipe.allowed_schedules.contains(i) />
                                {i.label()}
                            </label>
                        }).collect_view()}
                    </div>
                    <FieldError error field="allowed_schedules" />
                </fieldset>
            </div>
            <fieldset class="field choice-group">
                <legend>"A sync starts"</legend>
                <div class="checkbox-grid">
                    {Trigger::ALL.iter().enumerate().map(|(n, t)| view! {
                        <label class="check">
                            <input type="checkbox" name=format!("form[triggers][{n}]") value=t.as_str() checked=recipe.triggers.contains(t) />
                            {t.label()}
                        </label>
                    }).collect_view()}
                </div>
                <FieldError error field="triggers" />
            </fieldset>
        </fieldset>
    }
    .into_any()
}
