//! The listing editor: the listing's content and recipe in one form, a live preview of its page,
//! the logo upload, and the workflow (submit for review, withdraw, archive) with the reviewer's
//! notes.
//!
//! Without JavaScript every part still works: the form posts and the page comes back with the
//! saved version (or the error beside its field); the preview then shows what was saved. With
//! JavaScript the preview follows the typing, and a failed save keeps what was typed.

use super::catalog::{ListingView, Logo};
use super::editor_recipe::RecipeFields;
use super::forms::{action_error, ErrorPanel, FieldError, FormError};
use super::pages::set_status_of;
use super::session::bump_on_success;
use super::vendor::{vendor_only, StatusBadge};
use crate::api::listings::{
    get_listing_editor, preview_listing, render_markdown, ArchiveListing, SaveListing,
    SubmitListing, WithdrawListing,
};
use crate::error::AppError;
use crate::model::listing::{ListingEditor, ListingStatus, LogoProblem, VersionState};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::time::Duration;

/// Every field of the editor's form, for errors that belong to none of them.
const FIELDS: &[&str] = &[
    "name",
    "slug",
    "tagline",
    "description",
    "categories",
    "docs_url",
    "support_url",
    "website_url",
    "source_provider",
    "source_streams",
    "destination_provider",
    "destination_stream",
    "mapping",
    "config",
    "default_schedule",
    "allowed_schedules",
    "triggers",
];

#[component]
pub fn EditorPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let save = ServerAction::<SaveListing>::new();
    let submit = ServerAction::<SubmitListing>::new();
    let withdraw = ServerAction::<WithdrawListing>::new();
    let archive = ServerAction::<ArchiveListing>::new();
    let changed = RwSignal::new(0u32);
    bump_on_success(save, changed);
    bump_on_success(submit, changed);
    bump_on_success(withdraw, changed);
    bump_on_success(archive, changed);
    let editor = Resource::new(
        move || (id(), changed.get()),
        |(id, _)| get_listing_editor(id),
    );
    let preview = Resource::new(move || (id(), changed.get()), |(id, _)| preview_listing(id));
    let actions = Actions {
        save,
        submit,
        withdraw,
        archive,
    };
    view! {
        <Title text="Edit listing" />
        {vendor_only(move |_| {
            view! {
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || editor.get().map(|result| match result {
                        Ok(ed) => view! { <Editor ed actions preview /> }.into_any(),
                        Err(error) => {
                            set_status_of(&error);
                            view! { <ErrorPanel error /> }.into_any()
                        }
                    })}
                </Suspense>
            }
        })}
    }
}

#[derive(Clone, Copy)]
struct Actions {
    save: ServerAction<SaveListing>,
    submit: ServerAction<SubmitListing>,
    withdraw: ServerAction<WithdrawListing>,
    archive: ServerAction<ArchiveListing>,
}

#[component]
fn Editor(
    ed: ListingEditor,
    actions: Actions,
    preview: Resource<Result<crate::model::listing::ListingPage, AppError>>,
) -> AnyView {
    let query = use_query_map();
    let save_error = action_error(actions.save);
    let submit_error = action_error(actions.submit);
    let withdraw_error = action_error(actions.withdraw);
    let archive_error = action_error(actions.archive);
    // Submitting checks the whole version, and its complaints belong beside the fields too.
    let error = Signal::derive(move || save_error.get().or_else(|| submit_error.get()));
    let id = ed.id.to_string();
    let content = ed.content.clone();
    let state = ed.version.state;
    let in_review = state == VersionState::InReview;

    // Live preview state.
    let name = RwSignal::new(content.name.clone());
    let tagline = RwSignal::new(content.tagline.clone());
    let categories = RwSignal::new(content.categories.clone());
    let description = RwSignal::new(content.description.clone());
    let rendered = Action::new(|text: &String| {
        let text = text.clone();
        async move { render_markdown(text).await }
    });
    let all_categories = ed.categories.clone();
    let history = ed.clone();

    let notice = move || {
        let q = query.read();
        if q.get("saved").is_some() {
            Some("Saved.")
        } else if q.get("submitted").is_some() {
            Some("Submitted for review. A platform admin will look at it; you will see their decision here.")
        } else {
            None
        }
    };
    let logo_problem = move || {
        query
            .read()
            .get("logo_error")
            .and_then(|code| code.parse::<LogoProblem>().ok())
    };

    view! {
        <Title text=format!("Edit {}", ed.content.name) />
        <p class="breadcrumb"><a href="/vendor">"← Vendor console"</a></p>
        <header class="page-header">
            <div>
                <p class="eyebrow">{format!("Listing · version {} · {}", ed.version.number, state.label())}</p>
                <h1>{ed.content.name.clone()}</h1>
            </div>
            <StatusBadge status=ed.status />
        </header>
        {move || notice().map(|text| view! { <div class="alert alert-success" role="status">{text}</div> })}
        <FormError error=withdraw_error fields=&[] />
        <FormError error=archive_error fields=&[] />
        {ed.review_notes.clone().map(|notes| view! {
            <section class="panel review-notes" aria-labelledby="notes-heading">
                <h2 id="notes-heading">"The reviewer asked for changes"</h2>
                <p class="pre-line">{notes}</p>
                <p class="muted small">"Edit the listing, save, and submit it again."</p>
            </section>
        })}
        <Workflow ed=ed.clone() actions />
        <div class="editor">
            <div class="editor-form">
                <section class="panel" aria-labelledby="logo-heading">
                    <h2 id="logo-heading">"Logo"</h2>
                    <div class="logo-row">
                        <Logo url=content.logo_hash.as_deref().map(|h| format!("/logos/{h}")) name=content.name.clone() size="card" />
                        <form method="post" action=format!("/vendor/listings/{id}/logo") enctype="multipart/form-data" class="logo-form">
                            <label for="logo">"PNG, JPEG or WebP, square, up to 512 KiB"</label>
                            <input id="logo" name="logo" type="file" accept="image/png,image/jpeg,image/webp" disabled=in_review
                                aria-describedby=move || logo_problem().map(|_| "logo-error") />
                            <button type="submit" class="button button-ghost button-small" disabled=in_review>"Upload logo"</button>
                        </form>
                    </div>
                    {move || logo_problem().map(|p| view! { <p class="field-error" id="logo-error" role="alert">{p.label()}</p> })}
                </section>
                <ActionForm action=actions.save attr:class="stack" attr:novalidate=true attr:id="listing-form">
                    <input type="hidden" name="id" value=id.clone() />
                    <FormError error fields=FIELDS />
                    <fieldset class="panel stack" disabled=in_review>
                        <legend class="panel-legend">"Listing"</legend>
                        {in_review.then(|| view! { <p class="muted">"This version is in review and cannot change. Withdraw it to edit."</p> })}
                        <div class="field">
                            <label for="f-name">"Name"</label>
                            <input id="f-name" name="form[name]" value=content.name.clone() maxlength="80" required
                                on:input=move |ev| name.set(event_target_value(&ev)) />
                            <FieldError error field="name" />
                        </div>
                        <div class="field">
                            <label for="f-slug">"Slug"</label>
                            <input id="f-slug" name="form[slug]" value=ed.slug.clone() maxlength="60" readonly=ed.slug_locked
                                aria-describedby="f-slug-help" />
                            <p class="help" id="f-slug-help">{if ed.slug_locked {
                                "The address of the published listing stays the same, so that links keep working."
                            } else {
                                "The listing's address: /marketplace/<slug>. Lowercase letters, digits and dashes."
                            }}</p>
                            <FieldError error field="slug" />
                        </div>
                        <div class="field">
                            <label for="f-tagline">"Tagline"</label>
                            <input id="f-tagline" name="form[tagline]" value=content.tagline.clone() maxlength="140"
                                on:input=move |ev| tagline.set(event_target_value(&ev)) />
                            <p class="help">"One line on the card, such as \u{201c}Keep HubSpot contacts in your CRM, every hour\u{201d}."</p>
                            <FieldError error field="tagline" />
                        </div>
                        <div class="field">
                            <label for="f-description">"Description"</label>
                            <textarea id="f-description" name="form[description]" rows="10" maxlength="20000"
                                on:input=move |ev| {
                                    let text = event_target_value(&ev);
                                    description.set(text.clone());
                                    // Render once typing pauses.
                                    // The editor may be gone by then (saved and re-rendered).
                                    set_timeout(move || {
                                        if description.try_get_untracked().as_ref() == Some(&text) {
                                            rendered.dispatch(text);
                                        }
                                    }, Duration::from_millis(350));
                                }>{content.description.clone()}</textarea>
                            <p class="help">"Markdown: headings, lists, links, tables and code. Raw HTML and scripts are removed."</p>
                            <FieldError error field="description" />
                        </div>
                        <fieldset class="field choice-group">
                            <legend>"Categories (up to 3)"</legend>
                            <div class="checkbox-grid">
                                {ed.categories.iter().enumerate().map(|(i, c)| {
                                    let slug = c.slug.clone();
                                    let checked = content.categories.contains(&c.slug);
                                    view! {
                                        <label class="check">
                                            <input type="checkbox" name=format!("form[categories][{i}]") value=c.slug.clone() checked=checked
                                                on:change=move |ev| {
                                                    let on = event_target_checked(&ev);
                                                    let slug = slug.clone();
                                                    categories.update(|list| {
                                                        list.retain(|s| *s != slug);
                                                        if on { list.push(slug); }
                                                    });
                                                } />
                                            {c.name.clone()}
                                        </label>
                                    }
                                }).collect_view()}
                            </div>
                            <FieldError error field="categories" />
                        </fieldset>
                        <LinkField field="docs_url" label="Documentation link" value=content.docs_url.clone() error />
                        <LinkField field="support_url" label="Support link" value=content.support_url.clone() error />
                        <LinkField field="website_url" label="Website" value=content.website_url.clone() error />
                    </fieldset>
                    <RecipeFields ed=ed.clone() error disabled=in_review />
                    <div class="form-actions">
                        <button type="submit" class="button" disabled=move || in_review || actions.save.pending().get()>
                            {move || if actions.save.pending().get() { "Saving…" } else { "Save draft" }}
                        </button>
                    </div>
                </ActionForm>
            </div>
            <aside class="editor-preview" aria-label="Preview">
                <p class="eyebrow">"Preview"</p>
                <Suspense fallback=|| view! { <p class="muted">"Loading the preview…"</p> }>
                    {move || preview.get().map(|result| match result {
                        Ok(mut page) => {
                            page.name = name.get();
                            page.tagline = tagline.get();
                            if let Some(Ok(html)) = rendered.value().get() {
                                page.description_html = html;
                            } else if description.with(|d| d.trim().is_empty()) {
                                page.description_html = String::new();
                            }
                            let chosen = categories.get();
                            page.categories = all_categories.iter().filter(|c| chosen.contains(&c.slug)).cloned().collect();
                            view! { <ListingView page connect=false /> }.into_any()
                        }
                        Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    })}
                </Suspense>
            </aside>
        </div>
        <History ed=history />
    }
    .into_any()
}

#[component]
fn LinkField(
    field: &'static str,
    label: &'static str,
    value: Option<String>,
    error: Signal<Option<AppError>>,
) -> impl IntoView {
    let id = format!("f-{field}");
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input id=id type="url" name=format!("form[{field}]") value=value.unwrap_or_default() placeholder="https://" maxlength="500" />
            <FieldError error field=field />
        </div>
    }
}

/// Submit, withdraw, archive: what the listing's state allows.
#[component]
fn Workflow(ed: ListingEditor, actions: Actions) -> AnyView {
    let id = ed.id.to_string();
    let state = ed.version.state;
    let resubmit = state == VersionState::Rejected || ed.review_notes.is_some();
    let submit = matches!(state, VersionState::Draft | VersionState::Rejected).then(|| {
        let id = id.clone();
        view! {
            <ActionForm action=actions.submit attr:class="inline-form">
                <input type="hidden" name="id" value=id />
                <button type="submit" class="button" disabled=move || actions.submit.pending().get()>
                    {if resubmit { "Resubmit for review" } else { "Submit for review" }}
                </button>
            </ActionForm>
        }
    });
    let withdraw = (state == VersionState::InReview).then(|| {
        let id = id.clone();
        view! {
            <ActionForm action=actions.withdraw attr:class="inline-form">
                <input type="hidden" name="id" value=id />
                <button type="submit" class="button button-ghost">"Withdraw from review"</button>
            </ActionForm>
        }
    });
    let archive = (ed.can_archive && matches!(ed.status, ListingStatus::Published | ListingStatus::Archived)).then(|| {
        let archiving = ed.status == ListingStatus::Published;
        view! {
            <ActionForm action=actions.archive attr:class="inline-form">
                <input type="hidden" name="id" value=id.clone() />
                <input type="hidden" name="archived" value=if archiving { "true" } else { "false" } />
                <button type="submit" class=if archiving { "button button-danger-ghost" } else { "button button-ghost" }>
                    {if archiving { "Archive (hide from the catalog)" } else { "Show in the catalog again" }}
                </button>
            </ActionForm>
        }
    });
    let public =
        matches!(ed.status, ListingStatus::Published).then(|| format!("/marketplace/{}", ed.slug));
    let hint = match state {
        VersionState::Draft => "Save your changes, then submit them: a platform admin reviews every version before customers see it.",
        VersionState::InReview => "In review. Customers see the published version meanwhile.",
        VersionState::Rejected => "Changes requested: edit, save and resubmit.",
        VersionState::Published | VersionState::Superseded => "Published. Saving a change starts a new draft version; customers keep seeing this one until it is approved.",
    };
    view! {
        <section class="panel workflow" aria-label="Review">
            <p class="muted">{hint}</p>
            <div class="actions">
                {submit}
                {withdraw}
                {public.map(|href| view! { <a class="button button-ghost" href=href>"View in marketplace"</a> })}
                {archive}
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn History(ed: ListingEditor) -> AnyView {
    view! {
        <section class="panel" aria-labelledby="history-heading">
            <h2 id="history-heading">"Versions"</h2>
            <table class="table">
                <thead>
                    <tr>
                        <th scope="col">"Version"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Submitted"</th>
                        <th scope="col">"Reviewed"</th>
                        <th scope="col">"Reviewer's notes"</th>
                    </tr>
                </thead>
                <tbody>
                    {ed.history.into_iter().map(|v| view! {
                        <tr>
                            <td>{v.number}</td>
                            <td>{v.state.label()}</td>
                            <td class="muted">{v.submitted_at.unwrap_or_else(|| "—".into())}</td>
                            <td class="muted">{v.reviewed_at.unwrap_or_else(|| "—".into())}</td>
                            <td class="pre-line">{v.review_notes.unwrap_or_default()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}
