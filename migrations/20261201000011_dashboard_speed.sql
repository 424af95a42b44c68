-- What keeps the failures dashboard, the health page and the alert rules fast over a large run
-- log (measured over 10,000,000 runs: docs/benchmarks.md, "Admin").

-- Failed and dead attempts counted per hour (UTC) ended, and per day, by listing, provider,
-- error class and outcome, kept by a trigger on the run log, so that the dashboard adds up a few
-- hundred rows a day instead of every failure. For each window it reads the days whole inside
-- it, the hours of its partial first day, and the run log for its partial first hour, so its
-- counts stay exact. Not per tenant: a tenant's filter reads the run log through
-- `sync_runs_failures_tenant`. Pruned with the run log.
create table failure_counts (
    bucket timestamptz not null,
    listing_id uuid,
    provider text,
    error_class text,
    outcome text not null check (outcome in ('failed', 'dead')),
    n int not null,
    first_at timestamptz not null,
    last_at timestamptz not null,
    last_run bigint not null
);
create unique index failure_counts_key on failure_counts
    (bucket, listing_id, provider, error_class, outcome) include (n, first_at, last_at, last_run)
    nulls not distinct;
-- The same per day (UTC).
create table failure_counts_daily (like failure_counts including constraints);
create unique index failure_counts_daily_key on failure_counts_daily
    (bucket, listing_id, provider, error_class, outcome) include (n, first_at, last_at, last_run)
    nulls not distinct;

-- Each listing and provider that ever failed, with its newest failure: the dashboard's lists of
-- listings and providers with failures in the range.
create table failure_sources (
    listing_id uuid,
    provider text,
    last_at timestamptz not null
);
create unique index failure_sources_key on failure_sources (listing_id, provider) nulls not distinct;

-- Each organization that ever had a failure, with its newest: the dashboard's list of
-- organizations with failures in the range.
create table failure_tenants (
    tenant_id uuid primary key references organizations (id) on delete cascade,
    last_at timestamptz not null
);

create function sync_runs_count_failure() returns trigger language plpgsql as $$
begin
    insert into failure_counts as c
        (bucket, listing_id, provider, error_class, outcome, n, first_at, last_at, last_run)
    values (date_trunc('hour', new.finished_at, 'UTC'), new.listing_id, new.provider,
            new.error_class, new.outcome, 1, new.finished_at, new.finished_at, new.id)
    on conflict (bucket, listing_id, provider, error_class, outcome) do update
        set n = c.n + 1,
            first_at = least(c.first_at, excluded.first_at),
            last_at = greatest(c.last_at, excluded.last_at),
            last_run = greatest(c.last_run, excluded.last_run);
    insert into failure_counts_daily as c
        (bucket, listing_id, provider, error_class, outcome, n, first_at, last_at, last_run)
    values (date_trunc('day', new.finished_at, 'UTC'), new.listing_id, new.provider,
            new.error_class, new.outcome, 1, new.finished_at, new.finished_at, new.id)
    on conflict (bucket, listing_id, provider, error_class, outcome) do update
        set n = c.n + 1,
            first_at = least(c.first_at, excluded.first_at),
            last_at = greatest(c.last_at, excluded.last_at),
            last_run = greatest(c.last_run, excluded.last_run);
    insert into failure_tenants as t (tenant_id, last_at)
    values (new.tenant_id, new.finished_at)
    on conflict (tenant_id) do update
        set last_at = greatest(t.last_at, excluded.last_at)
        where t.last_at < excluded.last_at;
    insert into failure_sources as f (listing_id, provider, last_at)
    values (new.listing_id, new.provider, new.finished_at)
    on conflict (listing_id, provider) do update
        set last_at = greatest(f.last_at, excluded.last_at)
        where f.last_at < excluded.last_at;
    return null;
end $$;

create trigger sync_runs_failure_inserted after insert on sync_runs for each row
    when (new.outcome in ('failed', 'dead') and new.finished_at is not null)
    execute function sync_runs_count_failure();
create trigger sync_runs_failure_ended after update of outcome on sync_runs for each row
    when (new.outcome in ('failed', 'dead') and new.finished_at is not null
          and old.outcome is distinct from new.outcome)
    execute function sync_runs_count_failure();

insert into failure_counts
    (bucket, listing_id, provider, error_class, outcome, n, first_at, last_at, last_run)
select date_trunc('hour', finished_at, 'UTC'), listing_id, provider, error_class, outcome,
       count(*), min(finished_at), max(finished_at), max(id)
from sync_runs where outcome in ('failed', 'dead') and finished_at is not null
group by 1, 2, 3, 4, 5;
insert into failure_counts_daily
    (bucket, listing_id, provider, error_class, outcome, n, first_at, last_at, last_run)
select date_trunc('day', bucket, 'UTC'), listing_id, provider, error_class, outcome,
       sum(n), min(first_at), max(last_at), max(last_run)
from failure_counts group by 1, 2, 3, 4, 5;
insert into failure_sources (listing_id, provider, last_at)
select listing_id, provider, max(finished_at)
from sync_runs where outcome in ('failed', 'dead') and finished_at is not null
group by 1, 2;
insert into failure_tenants (tenant_id, last_at)
select tenant_id, max(finished_at)
from sync_runs where outcome in ('failed', 'dead') and finished_at is not null
group by 1;

-- One tenant's failures, newest first (the dashboard filtered to an organization, its list of
-- organizations with failures).
create index sync_runs_failures_tenant on sync_runs (tenant_id, finished_at desc)
    include (listing_id, provider, error_class, outcome)
    where outcome in ('failed', 'dead');

-- Dead letters alone, newest first (the bulk retry's candidates, the dead-letter alert rule),
-- answered from the index.
create index sync_runs_dead on sync_runs (finished_at desc)
    include (tenant_id, install_id, kind, id, listing_id, provider, error_class, outcome)
    where outcome = 'dead';

-- The health page's per-minute plots read the last hour's attempts from the index alone
-- (`tenant_id` for the row-level security policy).
drop index sync_runs_finished;
create index sync_runs_finished on sync_runs (finished_at)
    include (tenant_id, outcome, started_at, rate_wait_secs);

-- Freshness, indexed: when an active, scheduled install turns stale (its last successful sync,
-- or its installation, plus two of its schedule's windows); null when it cannot. Kept by
-- triggers on installs and schedules, so every path that changes one of its inputs keeps it.
alter table installs add column stale_after timestamptz;

create function installs_stale_after() returns trigger language plpgsql as $$
begin
    new.stale_after := case when new.status = 'active' then
        (select coalesce(new.last_synced_at, new.installed_at)
                + make_interval(secs => 2 * s.window_secs)
         from sync_schedules s
         where s.tenant_id = new.tenant_id and s.install_id = new.id)
    end;
    return new;
end $$;
create trigger installs_stale_after before insert or update of status, last_synced_at, installed_at
    on installs for each row execute function installs_stale_after();

create function sync_schedules_stale_after() returns trigger language plpgsql as $$
begin
    if tg_op = 'DELETE' then
        update installs set stale_after = null
        where tenant_id = old.tenant_id and id = old.install_id and stale_after is not null;
        return null;
    end if;
    update installs i set stale_after = case when i.status = 'active' then
            coalesce(i.last_synced_at, i.installed_at) + make_interval(secs => 2 * new.window_secs)
        end
    where i.tenant_id = new.tenant_id and i.id = new.install_id
      and i.stale_after is distinct from case when i.status = 'active' then
            coalesce(i.last_synced_at, i.installed_at) + make_interval(secs => 2 * new.window_secs)
        end;
    return null;
end $$;
create trigger sync_schedules_stale_after after insert or delete or update of window_secs
    on sync_schedules for each row execute function sync_schedules_stale_after();

update installs i set stale_after = coalesce(i.last_synced_at, i.installed_at)
        + make_interval(secs => 2 * s.window_secs)
from sync_schedules s
where s.tenant_id = i.tenant_id and s.install_id = i.id and i.status = 'active';

create index installs_stale on installs (stale_after) where stale_after is not null;
