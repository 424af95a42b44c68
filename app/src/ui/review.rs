//! Listing review for platform admins: the queue, and one version with its diff against the
//! published one and the approve / reject forms.

use super::catalog::ListingView;
use super::forms::{action_error, ErrorPanel, FieldError, FormError};
use super::pages::admins_only;
use super::pages::set_status_of;
use crate::api::review::{get_review_detail, review_queue, ApproveVersion, RejectVersion};
use crate::model::listing::{DiffSection, ReviewDetail, ReviewItem, VersionState};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

/// The admin console's left rail.
#[component]
pub fn AdminRail(current: &'static str) -> impl IntoView {
    let item = move |href: &'static str, label: &'static str| {
        let here = (href == current).then_some("page");
        view! { <li><a href=href aria-current=here>{label}</a></li> }
    };
    view! {
        <nav class="console-rail" aria-label="Admin">
            <ul role="list">
                {item("/admin", "Overview")}
                {item("/admin/failures", "Failures")}
                {item("/admin/health", "Health")}
                {item("/admin/alerts", "Alerts")}
                {item("/admin/reviews", "Reviews")}
                {item("/admin/audit", "Audit log")}
                {item("/admin/apps", "Provider apps")}
                <li><a href="/marketplace">"Catalog"</a></li>
            </ul>
        </nav>
    }
}

#[component]
pub fn ReviewQueuePage() -> impl IntoView {
    let query = use_query_map();
    let queue = Resource::new(|| (), |_| review_queue());
    let decided = move || query.read().get("decided");
    view! {
        <Title text="Reviews" />
        {admins_only(move |_| view! {
            <div class="console-layout">
                <AdminRail current="/admin/reviews" />
                <div>
                    <header class="page-header">
                        <div>
                            <p class="eyebrow">"Admin"</p>
                            <h1>"Listings waiting for review"</h1>
                        </div>
                    </header>
                    {move || decided().map(|d| view! {
                        <div class="alert alert-success" role="status">
                            {if d == "approved" { "Approved: the version is live in the catalog." } else { "Sent back to the vendor with your notes." }}
                        </div>
                    })}
                    <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                        {move || queue.get().map(|result| match result {
                            Ok(items) if items.is_empty() => view! {
                                <div class="panel empty-state">
                                    <h2>"Nothing waits for review"</h2>
                                    <p>"When a vendor submits a listing or a change to one, it shows up here."</p>
                                </div>
                            }.into_any(),
                            Ok(items) => view! { <QueueTable items /> }.into_any(),
                            Err(error) => view! { <ErrorPanel error /> }.into_any(),
                        })}
                    </Suspense>
                </div>
            </div>
        })}
    }
}

#[component]
fn QueueTable(items: Vec<ReviewItem>) -> impl IntoView {
    view! {
        <table class="table panel">
            <thead>
                <tr>
                    <th scope="col">"Listing"</th>
                    <th scope="col">"Vendor"</th>
                    <th scope="col">"Kind"</th>
                    <th scope="col">"Submitted"</th>
                </tr>
            </thead>
            <tbody>
                {items.into_iter().map(|item| view! {
                    <tr>
                        <td><a href=format!("/admin/reviews/{}", item.version_id)>{item.name.clone()}</a></td>
                        <td>{item.vendor.clone()}</td>
                        <td>{if item.is_update { format!("Update (version {})", item.number) } else { "New listing".to_owned() }}</td>
                        <td class="muted">{item.submitted_at.clone()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
pub fn ReviewPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let approve = ServerAction::<ApproveVersion>::new();
    let reject = ServerAction::<RejectVersion>::new();
    let detail = Resource::new(id, get_review_detail);
    view! {
        <Title text="Review" />
        {admins_only(move |_| view! {
            <div class="console-layout">
                <AdminRail current="/admin/reviews" />
                <div>
                    <p class="breadcrumb"><a href="/admin/reviews">"← Review queue"</a></p>
                    <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                        {move || detail.get().map(|result| match result {
                            Ok(detail) => view! { <Review detail approve reject /> }.into_any(),
                            Err(error) => {
                                set_status_of(&error);
                                view! { <ErrorPanel error /> }.into_any()
                            }
                        })}
                    </Suspense>
                </div>
            </div>
        })}
    }
}

#[component]
fn Review(
    detail: ReviewDetail,
    approve: ServerAction<ApproveVersion>,
    reject: ServerAction<RejectVersion>,
) -> AnyView {
    let approve_error = action_error(approve);
    let reject_error = action_error(reject);
    let item = detail.item.clone();
    let version_id = item.version_id.to_string();
    let open = detail.state == VersionState::InReview;
    view! {
        <Title text=format!("Review {}", item.name) />
        <header class="page-header">
            <div>
                <p class="eyebrow">{format!("{} · version {} · submitted {}", item.vendor, item.number, item.submitted_at)}</p>
                <h1>{item.name.clone()}</h1>
            </div>
            <span class="badge">{detail.state.label()}</span>
        </header>
        {if open {
            let version_id2 = version_id.clone();
            view! {
                <section class="panel stack" aria-labelledby="decision-heading">
                    <h2 id="decision-heading">"Decision"</h2>
                    <ActionForm action=reject attr:class="stack" attr:novalidate=true>
                        <input type="hidden" name="version_id" value=version_id.clone() />
                        <FormError error=reject_error fields=&["notes"] />
                        <div class="field">
                            <label for="reject-notes">"Notes for the vendor"</label>
                            <textarea id="reject-notes" name="notes" rows="4" maxlength="4000"
                                aria-describedby="reject-notes-help"></textarea>
                            <p class="help" id="reject-notes-help">"Required to send it back: say what to change. The vendor sees these notes in their editor."</p>
                            <FieldError error=reject_error field="notes" />
                        </div>
                        <div class="actions">
                            <button type="submit" class="button button-danger-ghost">"Request changes"</button>
                        </div>
                    </ActionForm>
                    <ActionForm action=approve attr:class="inline-form">
                        <input type="hidden" name="version_id" value=version_id2 />
                        <input type="hidden" name="notes" value="" />
                        <FormError error=approve_error fields=&[] />
                        <button type="submit" class="button">"Approve and publish"</button>
                    </ActionForm>
                </section>
            }.into_any()
        } else {
            view! { <div class="alert" role="status">"This version is no longer in review."</div> }.into_any()
        }}
        <section class="panel" aria-labelledby="diff-heading">
            <h2 id="diff-heading">"Changes"</h2>
            {if !item.is_update {
                view! { <p class="muted">"A new listing: nothing is published yet, so all of it is new. Read the page below."</p> }.into_any()
            } else if detail.diff.is_empty() {
                view! { <p class="muted">"No changes against the published version."</p> }.into_any()
            } else {
                view! { <Diff sections=detail.diff.clone() /> }.into_any()
            }}
        </section>
        <section aria-label="Listing page as customers would see it">
            <p class="eyebrow">"As customers would see it"</p>
            <ListingView page=detail.preview.clone() connect=false />
        </section>
    }
    .into_any()
}

#[component]
fn Diff(sections: Vec<DiffSection>) -> impl IntoView {
    sections
        .into_iter()
        .map(|section| {
            view! {
                <div class="diff">
                    <h3>{section.field.clone()}</h3>
                    <pre class="diff-lines">
                        {section.lines.into_iter().map(|line| {
                            let class = match line.sign { '+' => "diff-add", '-' => "diff-del", _ => "diff-same" };
                            let label = match line.sign { '+' => "added: ", '-' => "removed: ", _ => "" };
                            view! { <span class=class><span class="visually-hidden">{label}</span>{format!("{} {}", line.sign, line.text)}"\n"</span> }
                        }).collect_view()}
                    </pre>
                </div>
            }
        })
        .collect_view()
}
