//! `/admin/health`: the queue and the workers now, and per-minute plots of the last hour drawn as
//! SVG on the server (they show without JavaScript; with it the page refreshes every ten
//! seconds).

use super::admin_console::{loaded, AdminConsole};
use super::installs::When;
use crate::api::admin::get_health;
use crate::model::admin::{HealthPage, Plot};
use leptos::prelude::*;
use std::time::Duration;

/// The plots' drawing area, in SVG units.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 22.0;

/// `/admin/health`
#[component]
pub fn HealthPage() -> impl IntoView {
    let tick = RwSignal::new(0u32);
    let data = Resource::new(move || tick.get(), |_| get_health());
    Effect::new(move |_| {
        data.track();
        set_timeout(move || tick.update(|n| *n += 1), Duration::from_secs(10));
    });
    view! {
        <AdminConsole current="/admin/health" title="Health" heading="Queue and workers">
            {loaded(data, |page| view! { <Health page /> })}
        </AdminConsole>
    }
}

fn seconds(secs: f64) -> String {
    match secs {
        s if s < 1.0 => "under a second".to_owned(),
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

#[component]
fn Health(page: HealthPage) -> impl IntoView {
    let total = page.succeeded_hour + page.failed_hour;
    let success = if total == 0 {
        "—".to_owned()
    } else {
        format!("{:.1} %", 100.0 * page.succeeded_hour as f64 / total as f64)
    };
    let alive = page.workers.iter().filter(|w| w.alive).count();
    let stats = vec![
        ("queued", "Queued", page.queued.to_string()),
        ("due", "Due now", page.due.to_string()),
        ("running", "Running", page.running.to_string()),
        (
            "oldest",
            "Oldest due waits",
            page.oldest_due_secs
                .map(seconds)
                .unwrap_or_else(|| "—".into()),
        ),
        (
            "claims",
            "Claims / min",
            format!("{:.1}", page.claims_per_min),
        ),
        ("success", "Success, last hour", success),
        ("failed", "Failed, last hour", page.failed_hour.to_string()),
        ("workers", "Workers alive", alive.to_string()),
        ("stale", "Stale installs", page.stale_installs.to_string()),
    ];
    view! {
        <section class="panel" aria-labelledby="now-heading">
            <h2 id="now-heading">"Now"</h2>
            <dl class="stats">
                {stats.into_iter().map(|(key, label, value)| view! {
                    <div class="stat" data-stat=key><dt>{label}</dt><dd>{value}</dd></div>
                }).collect_view()}
            </dl>
        </section>
        <div class="plot-grid">
            {page.plots.into_iter().map(|plot| view! { <PlotView plot /> }).collect_view()}
        </div>
        <section class="panel" aria-labelledby="workers-heading">
            <h2 id="workers-heading">"Workers"</h2>
            {if page.workers.is_empty() {
                view! { <p class="muted">"No worker has reported in the last day. Start one with " <code>"patchbay worker"</code> ", or run " <code>"patchbay serve"</code> " with workers."</p> }.into_any()
            } else {
                view! {
                    <table class="table workers">
                        <thead><tr><th scope="col">"Worker"</th><th scope="col">"State"</th><th scope="col">"Last heartbeat"</th><th scope="col">"Up since"</th><th scope="col">"Running now"</th></tr></thead>
                        <tbody>
                            {page.workers.into_iter().map(|w| view! {
                                <tr data-alive=w.alive.to_string()>
                                    <td><code>{w.name}</code><div class="small muted">{format!("{} slots", w.concurrency)}</div></td>
                                    <td>{if w.alive { view! { <span class="badge badge-success">"Alive"</span> } } else { view! { <span class="badge badge-muted">"Gone"</span> } }}</td>
                                    <td class="small"><When stamp=w.heartbeat_at /></td>
                                    <td class="small"><When stamp=w.started_at /></td>
                                    <td class="small">
                                        {if w.current.is_empty() { view! { <span class="muted">"idle"</span> }.into_any() } else {
                                            view! { <ul class="plain-list">{w.current.into_iter().map(|(run, what)| view! {
                                                <li><a href=format!("/admin/runs/{run}")>{format!("#{run}")}</a>" "{what}</li>
                                            }).collect_view()}</ul> }.into_any()
                                        }}
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
        <section class="panel" aria-labelledby="tenants-heading">
            <h2 id="tenants-heading">"Busiest organizations"</h2>
            {if page.top_tenants.is_empty() {
                view! { <p class="muted">"The queue is empty."</p> }.into_any()
            } else {
                view! {
                    <table class="table">
                        <thead><tr><th scope="col">"Organization"</th><th scope="col" class="num">"Queued"</th><th scope="col" class="num">"Running"</th></tr></thead>
                        <tbody>
                            {page.top_tenants.into_iter().map(|t| view! {
                                <tr><td><a href=format!("/admin/failures?tenant={}", t.tenant_id)>{t.name}</a></td><td class="num">{t.queued}</td><td class="num">{t.running}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

/// A "nice" ceiling for the y axis: 1, 2 or 5 times a power of ten.
fn ceiling(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= max)
        .unwrap_or(10.0 * magnitude)
}

fn format_tick(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// One plot: a line per series over the last hour, a minute per point.
#[component]
fn PlotView(plot: Plot) -> impl IntoView {
    let max = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .fold(0.0, f64::max);
    let top = ceiling(max);
    let n = plot.minutes.max(2);
    let x = move |i: usize| LEFT + (WIDTH - LEFT) * i as f64 / (n - 1) as f64;
    let y = move |v: f64| (HEIGHT - BOTTOM) * (1.0 - v / top);
    let title_id = format!("plot-{}-title", plot.id);
    let desc = format!(
        "{} over the last {} minutes; the highest value is {} {}.",
        plot.title,
        plot.minutes,
        format_tick(max),
        plot.unit
    );
    let grid: Vec<f64> = vec![0.0, top / 2.0, top];
    view! {
        <figure class="panel plot" data-plot=plot.id.clone()>
            <figcaption id=title_id.clone()>{plot.title.clone()}<span class="small muted">{format!(" · {}", plot.unit)}</span></figcaption>
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-labelledby=title_id preserveAspectRatio="none">
                <desc>{desc}</desc>
                {grid.into_iter().map(|v| view! {
                    <line class="plot-grid-line" x1=LEFT x2=WIDTH y1=y(v) y2=y(v) />
                    <text class="plot-tick" x=LEFT - 6.0 y=y(v) + 4.0 text-anchor="end">{format_tick(v)}</text>
                }).collect_view()}
                <text class="plot-tick" x=LEFT y=HEIGHT - 4.0>{format!("{} min ago", plot.minutes)}</text>
                <text class="plot-tick" x=WIDTH y=HEIGHT - 4.0 text-anchor="end">"now"</text>
                {plot.series.iter().map(|s| {
                    let points: String = s.points.iter().enumerate()
                        .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
                        .collect::<Vec<_>>()
                        .join(" ");
                    view! { <polyline class=format!("plot-line {}", s.class) points=points data-points=s.points.len() /> }
                }).collect_view()}
            </svg>
            <ul class="plot-legend">
                {plot.series.into_iter().map(|s| {
                    let last = s.points.last().copied().unwrap_or(0.0);
                    view! { <li class=s.class><span class="swatch" aria-hidden="true"></span>{s.name}{format!(": {} now", format_tick(last))}</li> }
                }).collect_view()}
            </ul>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::ceiling;

    #[test]
    fn the_y_axis_ends_on_a_round_number() {
        assert_eq!(ceiling(0.0), 1.0);
        assert_eq!(ceiling(3.0), 5.0);
        assert_eq!(ceiling(7.0), 10.0);
        assert_eq!(ceiling(12.0), 20.0);
        assert_eq!(ceiling(0.3), 0.5);
    }
}
