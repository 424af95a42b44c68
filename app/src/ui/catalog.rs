//! The marketplace: the catalog grid with its category rail, search and pages, and the listing page
//! (whose body, [`ListingView`], the vendor's preview and the reviewer's view share).
//!
//! Filters live in the URL (`?q=&category=&page=`), so links, reloads and the back button keep
//! them; search is a GET form, so all of it works without JavaScript.

use super::forms::{action_error, ErrorPanel, FormError};
use super::session::use_session;
use crate::api::catalog::{catalog, get_listing_page};
use crate::api::review::SetFeatured;
use crate::model::listing::{CatalogCard, CatalogPage, Category, ListingPage, Trigger};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};

/// A catalog URL with these filters; empty ones are left out.
fn catalog_href(q: &str, category: &str, page: u32) -> String {
    let mut parts = Vec::new();
    if !q.is_empty() {
        parts.push(format!("q={}", encode(q)));
    }
    if !category.is_empty() {
        parts.push(format!("category={}", encode(category)));
    }
    if page > 1 {
        parts.push(format!("page={page}"));
    }
    if parts.is_empty() {
        "/marketplace".to_owned()
    } else {
        format!("/marketplace?{}", parts.join("&"))
    }
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[component]
pub fn MarketplacePage() -> impl IntoView {
    let query = use_query_map();
    let q = move || query.read().get("q").unwrap_or_default();
    let category = move || query.read().get("category").unwrap_or_default();
    let page = move || {
        query
            .read()
            .get("page")
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(1)
            .max(1)
    };
    let data = Resource::new(
        move || (q(), category(), page()),
        |(q, category, page)| catalog(q, category, page),
    );
    view! {
        <Title text="Marketplace" />
        <header class="page-header">
            <div>
                <p class="eyebrow">"Marketplace"</p>
                <h1>"Integrations"</h1>
            </div>
        </header>
        <Form method="GET" action="/marketplace" attr:class="search-form" attr:role="search">
            <label class="visually-hidden" for="catalog-q">"Search integrations"</label>
            <input
                id="catalog-q"
                type="search"
                name="q"
                value=q
                placeholder="Search integrations, e.g. HubSpot or invoices"
                maxlength="200"
            />
            {move || {
                let category = category();
                (!category.is_empty())
                    .then(|| view! { <input type="hidden" name="category" value=category /> })
            }}
            <button type="submit" class="button">"Search"</button>
        </Form>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                data.get()
                    .map(|result| match result {
                        Ok(page) => view! { <Catalog page q=q() category=category() /> }.into_any(),
                        Err(error) => {
                            super::pages::set_status_of(&error);
                            view! { <ErrorPanel error /> }.into_any()
                        }
                    })
            }}
        </Suspense>
    }
}

#[component]
fn Catalog(page: CatalogPage, q: String, category: String) -> AnyView {
    let current = page
        .categories
        .iter()
        .find(|c| c.slug == category)
        .map(|c| c.name.clone());
    let heading = match (&current, q.trim().is_empty()) {
        (Some(name), true) => name.clone(),
        (Some(name), false) => format!("{name} matching \u{201c}{}\u{201d}", q.trim()),
        (None, false) => format!("Results for \u{201c}{}\u{201d}", q.trim()),
        (None, true) => "All integrations".to_owned(),
    };
    let count = match page.total {
        0 => "No integrations".to_owned(),
        1 => "1 integration".to_owned(),
        n => format!("{n} integrations"),
    };
    view! {
        <div class="catalog">
            <CategoryRail categories=page.categories.clone() q=q.clone() category=category.clone() />
            <div class="catalog-main">
                {(!page.featured.is_empty())
                    .then(|| {
                        view! {
                            <section aria-labelledby="featured-heading" class="featured">
                                <h2 id="featured-heading">"Featured"</h2>
                                <CardGrid cards=page.featured.clone() />
                            </section>
                        }
                    })}
                <section aria-labelledby="results-heading">
                    <div class="results-header">
                        <h2 id="results-heading">{heading}</h2>
                        <p class="muted" role="status">{count}</p>
                    </div>
                    {if page.cards.is_empty() {
                        view! { <NoResults q=q.clone() category=category.clone() total=page.total /> }.into_any()
                    } else {
                        view! { <CardGrid cards=page.cards.clone() /> }.into_any()
                    }}
                    <Pager page=page.page pages=page.pages q category />
                </section>
            </div>
        </div>
    }
    .into_any()
}

#[component]
fn CategoryRail(categories: Vec<Category>, q: String, category: String) -> impl IntoView {
    let all_current = category.is_empty();
    view! {
        <nav class="category-rail" aria-label="Categories">
            <h2 class="rail-heading">"Categories"</h2>
            <ul role="list">
                <li>
                    <a href=catalog_href(&q, "", 1) aria-current=all_current.then_some("page")>"All"</a>
                </li>
                {categories
                    .into_iter()
                    .map(|c| {
                        let current = (c.slug == category).then_some("page");
                        view! {
                            <li>
                                <a href=catalog_href(&q, &c.slug, 1) aria-current=current>{c.name}</a>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </nav>
    }
}

#[component]
fn CardGrid(cards: Vec<CatalogCard>) -> impl IntoView {
    view! {
        <ul class="card-grid listing-grid" role="list">
            {cards.into_iter().map(|card| view! { <ListingCard card /> }).collect_view()}
        </ul>
    }
}

#[component]
fn ListingCard(card: CatalogCard) -> impl IntoView {
    view! {
        <li class="card listing-card">
            <div class="listing-card-head">
                <Logo url=card.logo_url.clone() name=card.name.clone() size="card" />
                <div>
                    <h3><a href=format!("/marketplace/{}", card.slug)>{card.name.clone()}</a></h3>
                    <p class="muted small">{format!("by {}", card.vendor)}</p>
                </div>
            </div>
            <p>{card.tagline.clone()}</p>
            <div class="chips">
                {card.featured.then(|| view! { <span class="badge badge-accent">"Featured"</span> })}
                {card
                    .categories
                    .into_iter()
                    .map(|c| view! { <span class="badge badge-muted">{c.name}</span> })
                    .collect_view()}
            </div>
        </li>
    }
}

/// A listing's logo, or its initial on a tile when it has none.
#[component]
pub fn Logo(url: Option<String>, name: String, size: &'static str) -> impl IntoView {
    match url {
        Some(url) => view! {
            <img class=format!("logo logo-{size}") src=url alt="" width="64" height="64" loading="lazy" />
        }
        .into_any(),
        None => {
            let initial: String = name.chars().find(|c| c.is_alphanumeric()).into_iter().flat_map(char::to_uppercase).collect();
            view! { <span class=format!("logo logo-{size} logo-blank") aria-hidden="true">{initial}</span> }.into_any()
        }
    }
}

#[component]
fn NoResults(q: String, category: String, total: i64) -> impl IntoView {
    let (title, hint) = if total > 0 {
        (
            "This page is past the last one",
            "Go back to the first page of results.",
        )
    } else if !q.trim().is_empty() {
        ("Nothing matches your search", "Try fewer or shorter words; the start of a word is enough (\u{201c}hub\u{201d} finds HubSpot).")
    } else if !category.is_empty() {
        (
            "No integrations in this category yet",
            "Vendors publish new integrations all the time; browse the others meanwhile.",
        )
    } else {
        ("No integrations are published yet", "Vendors publish listings from the Vendor console; once a platform admin approves one, it appears here.")
    };
    view! {
        <div class="panel empty-state">
            <h3>{title}</h3>
            <p>{hint}</p>
            {(total > 0 || !q.is_empty() || !category.is_empty())
                .then(|| view! { <a class="button button-ghost" href="/marketplace">"See all integrations"</a> })}
        </div>
    }
}

#[component]
fn Pager(page: u32, pages: u32, q: String, category: String) -> impl IntoView {
    (pages > 1).then(|| {
        let prev = (page > 1).then(|| catalog_href(&q, &category, page - 1));
        let next = (page < pages).then(|| catalog_href(&q, &category, page + 1));
        view! {
            <nav class="pager" aria-label="Pages">
                {match prev {
                    Some(href) => view! { <a class="button button-ghost" href=href rel="prev">"← Previous"</a> }.into_any(),
                    None => view! { <span class="button button-ghost" aria-disabled="true">"← Previous"</span> }.into_any(),
                }}
                <span class="muted">{format!("Page {page} of {pages}")}</span>
                {match next {
                    Some(href) => view! { <a class="button button-ghost" href=href rel="next">"Next →"</a> }.into_any(),
                    None => view! { <span class="button button-ghost" aria-disabled="true">"Next →"</span> }.into_any(),
                }}
            </nav>
        }
    })
}

#[component]
pub fn ListingDetailPage() -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.read().get("slug").unwrap_or_default();
    let feature = ServerAction::<SetFeatured>::new();
    let data = Resource::new(
        move || (slug(), feature.version().get()),
        |(slug, _)| get_listing_page(slug),
    );
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                data.get()
                    .map(|result| match result {
                        Ok(page) => view! {
                            <Title text=page.name.clone() />
                            <p class="breadcrumb"><a href="/marketplace">"← All integrations"</a></p>
                            <ListingView page=page.clone() connect=true />
                            <FeatureToggle page feature />
                        }
                        .into_any(),
                        Err(error) => {
                            super::pages::set_status_of(&error);
                            view! { <ErrorPanel error /> }.into_any()
                        }
                    })
            }}
        </Suspense>
    }
}

/// Platform admins feature a listing in the catalog, or stop featuring it.
#[component]
fn FeatureToggle(page: ListingPage, feature: ServerAction<SetFeatured>) -> impl IntoView {
    let session = use_session();
    let error = action_error(feature);
    move || {
        let page = page.clone();
        let is_admin = session
            .get()
            .and_then(|r| r.ok().flatten())
            .is_some_and(|s| s.user.is_platform_admin);
        is_admin.then(|| {
            let (label, value) = if page.featured {
                ("Stop featuring", "false")
            } else {
                ("Feature in the catalog", "true")
            };
            view! {
                <section class="panel admin-strip" aria-label="Admin">
                    <FormError error fields=&[] />
                    <ActionForm action=feature attr:class="inline-form">
                        <input type="hidden" name="slug" value=page.slug.clone() />
                        <input type="hidden" name="featured" value=value />
                        <span class="muted">{if page.featured { "Featured in the catalog." } else { "Not featured." }}</span>
                        <button type="submit" class="button button-ghost button-small">{label}</button>
                    </ActionForm>
                </section>
            }
        })
    }
}

/// A listing page's body: hero, what syncs, permissions, how it works, the description. With
/// `connect` off it is a preview: no live button, and its title is not the page's heading.
#[component]
pub fn ListingView(page: ListingPage, connect: bool) -> AnyView {
    let connect_href = format!("/marketplace/{}/connect", page.slug);
    let install_href = format!("/installs/new/{}", page.slug);
    let schedules: Vec<String> = page
        .allowed_schedules
        .iter()
        .map(|s| s.label().to_lowercase())
        .collect();
    view! {
        <article class="listing">
            <header class="listing-hero panel">
                <Logo url=page.logo_url.clone() name=page.name.clone() size="hero" />
                <div class="listing-hero-text">
                    {if connect {
                        view! { <h1>{page.name.clone()}</h1> }.into_any()
                    } else {
                        // Embedded in another page (the editor's preview, a review): that page
                        // has the h1.
                        view! { <h2 class="as-h1">{page.name.clone()}</h2> }.into_any()
                    }}
                    <p class="lead-left">{page.tagline.clone()}</p>
                    <p class="muted">{format!("by {}", page.vendor)}</p>
                    <div class="chips">
                        {page.categories.iter().map(|c| view! {
                            <a class="badge badge-muted" href=catalog_href("", &c.slug, 1)>{c.name.clone()}</a>
                        }).collect_view()}
                    </div>
                </div>
                <div class="listing-hero-actions">
                    {if connect {
                        view! {
                            <a class="button button-large" href=install_href>"Install"</a>
                            <a class="button button-ghost" href=connect_href>"Connect accounts"</a>
                        }.into_any()
                    } else {
                        view! { <span class="button button-large" aria-disabled="true">"Install"</span> }.into_any()
                    }}
                    <p class="muted small">{format!("{} → {}", page.source_name, page.destination_name)}</p>
                </div>
            </header>
            <div class="listing-body">
                <div class="listing-main">
                    <section class="panel">
                        <h2>"What syncs"</h2>
                        {if page.streams.is_empty() {
                            view! { <p class="muted">"The recipe names no streams yet."</p> }.into_any()
                        } else {
                            view! {
                                <p>{format!("From {} into {}{}:", page.source_name, page.destination_name,
                                    if page.destination_stream.is_empty() { String::new() } else { format!(" ({})", page.destination_stream) })}</p>
                                <ul class="sync-list">
                                    {page.streams.iter().map(|s| view! {
                                        <li>
                                            <strong>{s.label.clone()}</strong>
                                            {(!s.fields.is_empty()).then(|| view! {
                                                <span class="muted">{format!(" — {}", s.fields.join(", "))}</span>
                                            })}
                                        </li>
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        }}
                        {(!page.mapped_fields.is_empty()).then(|| view! {
                            <details class="mapping-details">
                                <summary>{format!("Field mapping ({} fields)", page.mapped_fields.len())}</summary>
                                <table class="table compact">
                                    <thead><tr><th scope="col">{page.source_name.clone()}</th><th scope="col">{page.destination_name.clone()}</th></tr></thead>
                                    <tbody>
                                        {page.mapped_fields.iter().map(|m| view! {
                                            <tr><td><code>{m.from.clone()}</code></td><td><code>{m.to.clone()}</code></td></tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </details>
                        })}
                    </section>
                    <section class="panel">
                        <h2>"About"</h2>
                        {if page.description_html.is_empty() {
                            view! { <p class="muted">"No description yet."</p> }.into_any()
                        } else {
                            view! { <div class="prose" inner_html=page.description_html.clone()></div> }.into_any()
                        }}
                    </section>
                </div>
                <aside class="listing-side">
                    <section class="panel">
                        <h2>"Permissions requested"</h2>
                        {if page.permissions.is_empty() {
                            view! { <p class="muted">"No OAuth permissions: you connect with a key you control."</p> }.into_any()
                        } else {
                            view! {
                                <ul class="permission-list">
                                    {page.permissions.iter().map(|p| view! {
                                        <li>
                                            <span>{p.description.clone()}</span>
                                            <span class="muted small">{format!("{} · {}", p.provider, p.scope)}</span>
                                        </li>
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        }}
                        {(!page.auth_kinds.is_empty()).then(|| view! {
                            <dl class="facts">
                                {page.auth_kinds.iter().map(|(provider, kind)| view! {
                                    <dt>{provider.clone()}</dt><dd>{kind.clone()}</dd>
                                }).collect_view()}
                            </dl>
                        })}
                    </section>
                    <section class="panel">
                        <h2>"How it works"</h2>
                        <dl class="facts">
                            <dt>"Runs"</dt>
                            <dd>{page.triggers.iter().map(|t| t.label().to_owned()).collect::<Vec<_>>().join("; ")}</dd>
                            {page.triggers.contains(&Trigger::Schedule).then(|| view! {
                                <dt>"Schedule"</dt>
                                <dd>{format!("{} by default; you can choose {}", page.default_schedule.label().to_lowercase(), schedules.join(", "))}</dd>
                            })}
                            {(!page.config_fields.is_empty()).then(|| view! {
                                <dt>"You set"</dt>
                                <dd>{page.config_fields.iter().map(|f| f.label.clone()).collect::<Vec<_>>().join(", ")}</dd>
                            })}
                            <dt>"Version"</dt>
                            <dd>{page.version}</dd>
                        </dl>
                    </section>
                    <section class="panel">
                        <h2>"Made by"</h2>
                        <p>{page.vendor.clone()}</p>
                        <ul class="link-list">
                            {page.docs_url.clone().map(|u| view! { <li><a href=u rel="noopener noreferrer nofollow">"Documentation"</a></li> })}
                            {page.support_url.clone().map(|u| view! { <li><a href=u rel="noopener noreferrer nofollow">"Support"</a></li> })}
                            {page.website_url.clone().map(|u| view! { <li><a href=u rel="noopener noreferrer nofollow">"Website"</a></li> })}
                        </ul>
                    </section>
                </aside>
            </div>
        </article>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::catalog_href;

    #[test]
    fn catalog_links_carry_only_the_filters_set() {
        assert_eq!(catalog_href("", "", 1), "/marketplace");
        assert_eq!(
            catalog_href("hub spot&x", "crm", 2),
            "/marketplace?q=hub+spot%26x&category=crm&page=2"
        );
    }
}
