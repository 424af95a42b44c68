//! The vendor console's front page: the organization's listings with their status, and a form to
//! start a new one.

use super::forms::{action_error, ErrorPanel, FormError, TextField};
use crate::api::listings::{vendor_listings, CreateListing};
use crate::model::listing::{ListingStatus, VendorListingRow, VersionState};
use crate::model::{OrgKind, SessionInfo};
use leptos::prelude::*;
use leptos_meta::Title;

/// Renders `body` when the active organization is a vendor; otherwise says how to get there.
pub fn vendor_only<F, V>(body: F) -> impl IntoView
where
    F: Fn(SessionInfo) -> V + Send + Sync + Clone + 'static,
    V: IntoView + 'static,
{
    super::pages::console_for(OrgKind::Vendor, body)
}

/// A listing's status as a badge.
#[component]
pub fn StatusBadge(status: ListingStatus) -> impl IntoView {
    let class = match status {
        ListingStatus::Published => "badge badge-success",
        ListingStatus::InReview => "badge badge-accent",
        ListingStatus::Rejected => "badge badge-danger",
        ListingStatus::Draft | ListingStatus::Archived => "badge badge-muted",
    };
    view! { <span class=class>{status.label()}</span> }
}

fn pending_text(pending: VersionState) -> &'static str {
    match pending {
        VersionState::Draft => "Changes in draft",
        VersionState::InReview => "Changes in review",
        VersionState::Rejected => "Changes need work",
        VersionState::Published | VersionState::Superseded => "",
    }
}

#[component]
pub fn VendorPage() -> impl IntoView {
    let create = ServerAction::<CreateListing>::new();
    let error = action_error(create);
    let listings = Resource::new(move || create.version().get(), |_| vendor_listings());
    view! {
        <Title text="Vendor console" />
        {vendor_only(move |info| {
            view! {
                <header class="page-header">
                    <div>
                        <p class="eyebrow">{info.active().map(|o| o.name.clone())}</p>
                        <h1>"Vendor console"</h1>
                    </div>
                    <a class="button button-ghost" href="/vendor/failures">"Failures"</a>
                    <a class="button button-ghost" href="/vendor/apps">"Provider apps"</a>
                </header>
                <div class="console">
                    <section class="panel">
                        <h2>"Listings"</h2>
                        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                            {move || listings.get().map(|result| match result {
                                Ok(rows) if rows.is_empty() => view! {
                                    <div class="empty-state">
                                        <h3>"No listings yet"</h3>
                                        <p>"A listing describes an integration: what it syncs, from where to where, and on what schedule. Start one on the right; it stays a draft until you submit it for review."</p>
                                    </div>
                                }.into_any(),
                                Ok(rows) => view! { <ListingTable rows /> }.into_any(),
                                Err(error) => view! { <ErrorPanel error /> }.into_any(),
                            })}
                        </Suspense>
                    </section>
                    <section class="panel">
                        <h2>"New listing"</h2>
                        <ActionForm action=create attr:class="stack" attr:novalidate=true>
                            <FormError error fields=&["name", "slug"] />
                            <TextField name="name" label="Name" error help="What customers see, such as \u{201c}HubSpot contacts to Sheets\u{201d}." />
                            <TextField name="slug" label="Slug" error help="The address: /marketplace/<slug>. Leave it empty to make one from the name." optional=true />
                            <button type="submit" class="button" disabled=move || create.pending().get()>"Create draft"</button>
                        </ActionForm>
                    </section>
                </div>
            }
        })}
    }
}

#[component]
fn ListingTable(rows: Vec<VendorListingRow>) -> impl IntoView {
    view! {
        <table class="table">
            <thead>
                <tr>
                    <th scope="col">"Listing"</th>
                    <th scope="col">"Status"</th>
                    <th scope="col">"Updated (UTC)"</th>
                </tr>
            </thead>
            <tbody>
                {rows.into_iter().map(|row| {
                    let public = matches!(row.status, ListingStatus::Published).then(|| format!("/marketplace/{}", row.slug));
                    view! {
                        <tr>
                            <td>
                                <a href=format!("/vendor/listings/{}", row.id)>{row.name.clone()}</a>
                                <div class="muted small">{format!("/marketplace/{}", row.slug)}</div>
                            </td>
                            <td>
                                <StatusBadge status=row.status />
                                {row.pending.map(|p| view! { <div class="muted small">{pending_text(p)}</div> })}
                                {public.map(|href| view! { <div class="small"><a href=href>"View in marketplace"</a></div> })}
                            </td>
                            <td class="muted">{row.updated_at.clone()}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
