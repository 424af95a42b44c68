-- The sync engine: installs (a customer's configured copy of a listing version), their schedules,
-- the run log (one row per attempt, with events), the per-stream sync state that makes runs
-- resumable, what was written where (content hashes, for skipping unchanged records and for the
-- delete sweep), the built-in Patchbay store, quarantined records, webhook deliveries (dedupe)
-- and the shared rate budgets. See `app::domain::installs`, `::sync`, `::runs`, `::rates`.

create table installs (
    tenant_id uuid not null references organizations (id) on delete cascade,
    id uuid not null default gen_random_uuid(),
    listing_id uuid not null references listings (id),
    -- The version the install runs; it moves only when the customer upgrades.
    listing_version_id uuid not null references listing_versions (id),
    -- draft: the wizard is not finished; nothing runs. paused: by the customer, or by Patchbay
    -- when a connection needs reconnecting (status_reason says why, in words for the customer).
    status text not null default 'draft'
        check (status in ('draft', 'active', 'paused', 'uninstalled')),
    status_reason text,
    source_connection_id uuid,
    -- Null when the destination is the Patchbay store.
    destination_connection_id uuid,
    -- The listing's config fields as the customer filled them in, and the source streams'
    -- inputs (a GitHub repository), by name.
    config jsonb not null default '{}',
    inputs jsonb not null default '{}',
    streams text[] not null default '{}',
    -- A connectors::mapping::Mapping.
    mapping jsonb not null default '{"fields": []}',
    -- One of the recipe's intervals ('1h'), or a cron expression; neither for manual only.
    schedule_interval text,
    schedule_cron text,
    triggers text[] not null default '{}',
    -- The source's webhook subscription for this install: its id at the provider and the secret
    -- deliveries are signed with (sealed, bound to the install).
    webhook_subscription_id text,
    webhook_secret_enc bytea,
    created_by uuid references users (id) on delete set null,
    installed_at timestamptz,
    uninstalled_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (tenant_id, id),
    unique (id),
    foreign key (tenant_id, source_connection_id) references connections (tenant_id, id),
    foreign key (tenant_id, destination_connection_id) references connections (tenant_id, id),
    check (schedule_interval is null or schedule_cron is null)
);
create index installs_listing on installs (listing_id);
create trigger installs_updated_at before update on installs
    for each row execute function set_updated_at();

alter table installs enable row level security;
alter table installs force row level security;
create policy installs_tenant on installs for all
    using (tenant_id = app_tenant() or app_is_system())
    with check (tenant_id = app_tenant() or app_is_system());

-- Jobs now belong to installs. The index on (run_at, id) served no query (the claim reads
-- each tenant's due work through sync_jobs_tenant_due) and cost a write on every change.
alter table sync_jobs add foreign key (tenant_id, install_id)
    references installs (tenant_id, id) on delete cascade;
drop index sync_jobs_due;
-- Every query finds a job by its primary key (tenant_id, id); the extra unique index on id alone
-- cost an index entry on every insert and every state change.
alter table sync_jobs drop constraint sync_jobs_id_key;
-- Failed attempts since the job last made progress (committed a batch). max_attempts bounds
-- these, not all attempts: a sync that keeps moving forward through crashes or flaky errors is
-- not a poison job, while one that fails before writing anything five times is.
alter table sync_jobs add column idle_attempts int not null default 0;
-- When the tenant's oldest queued job is due, so that the fair claim finds the tenants with due
-- work without looking into every tenant's queue. Enqueue lowers it to the new job's run_at;
-- the claim reads it again from the queue for every tenant it locks; '-infinity' (also the
-- default) means "look again at the next claim".
alter table tenant_slots add column next_run_at timestamptz not null default '-infinity';
-- The line the fair claim reads tenants in.
create index tenant_slots_line on tenant_slots (last_served, tenant_id);

-- An active install's recurring schedule. The scheduler claims due rows with `skip locked` (no
-- leader), enqueues the job and moves next_run_at past now in the same transaction, so a
-- window missed while nothing ran is run once, not once per window.
create table sync_schedules (
    tenant_id uuid not null,
    install_id uuid not null,
    every_secs int check (every_secs > 0),
    cron text,
    next_run_at timestamptz not null,
    last_enqueued_at timestamptz,
    primary key (tenant_id, install_id),
    foreign key (tenant_id, install_id) references installs (tenant_id, id) on delete cascade,
    check ((every_secs is null) <> (cron is null))
);
create index sync_schedules_due on sync_schedules (next_run_at);

alter table sync_schedules enable row level security;
alter table sync_schedules force row level security;
create policy sync_schedules_tenant on sync_schedules for all
    using (tenant_id = app_tenant() or app_is_system())
    with check (tenant_id = app_tenant() or app_is_system());

-- The run log: one row per attempt. A job keeps its id across retries, so (job_id, attempt)
-- groups a run's attempts. Counters move while the attempt runs (live progress) and rows are
-- never deleted by the engine (history outlives the install).
create table sync_runs (
    tenant_id uuid not null references organizations (id) on delete cascade,
    id bigint generated always as identity,
    install_id uuid not null,
    job_id bigint not null,
    -- 0 for the first attempt.
    attempt int not null,
    kind text not null check (kind in ('full', 'incremental')),
    trigger text not null,
    worker text,
    lease_token uuid,
    outcome text not null default 'running' check (outcome in
        ('running', 'succeeded', 'failed', 'dead', 'cancelled', 'released')),
    -- What the attempt is doing now ('Reading customers'), for the progress display.
    phase text,
    queued_at timestamptz,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    pages int not null default 0,
    records_read bigint not null default 0,
    records_written bigint not null default 0,
    records_unchanged bigint not null default 0,
    records_deleted bigint not null default 0,
    records_failed bigint not null default 0,
    error_class text check (error_class in
        ('transient', 'rate_limited', 'auth', 'permanent', 'internal', 'lease_expired')),
    error_message text,
    -- When a failed attempt's retry is due.
    retry_at timestamptz,
    primary key (tenant_id, id),
    unique (id),
    foreign key (tenant_id, install_id) references installs (tenant_id, id) on delete cascade
);
create index sync_runs_install on sync_runs (tenant_id, install_id, id desc);
create index sync_runs_job on sync_runs (tenant_id, job_id, attempt);
-- Attempts whose worker vanished are closed by the reaper, which knows their lease tokens.
create index sync_runs_running on sync_runs (lease_token) where outcome = 'running';

alter table sync_runs enable row level security;
alter table sync_runs force row level security;
create policy sync_runs_tenant_read on sync_runs for select
    using (tenant_id = app_tenant() or app_is_system());
create policy sync_runs_write on sync_runs for all
    using (app_is_system()) with check (app_is_system());

-- What happened during an attempt: pages fetched, retries, rate waits, quarantined records.
create table run_events (
    tenant_id uuid not null,
    run_id bigint not null,
    id bigint generated always as identity,
    at timestamptz not null default now(),
    kind text not null check (kind in
        ('started', 'page', 'retry', 'rate_wait', 'quarantined', 'deleted', 'error', 'finished')),
    message text not null,
    detail jsonb not null default '{}',
    primary key (tenant_id, run_id, id),
    foreign key (tenant_id, run_id) references sync_runs (tenant_id, id) on delete cascade
);

alter table run_events enable row level security;
alter table run_events force row level security;
create policy run_events_tenant_read on run_events for select
    using (tenant_id = app_tenant() or app_is_system());
create policy run_events_write on run_events for all
    using (app_is_system()) with check (app_is_system());

-- Where each stream of an install stands. `cursor` is the high-water mark of the last completed
-- sync (incremental syncs read from it); `generation` counts full syncs begun (the delete sweep
-- removes what the latest finished full sync did not see). The run_* columns are the position
-- inside the sync reading the stream now, committed with every written batch: an attempt of the
-- same job resumes from there instead of starting over.
create table sync_state (
    tenant_id uuid not null,
    install_id uuid not null,
    stream text not null,
    cursor text,
    generation bigint not null default 0,
    run_job_id bigint,
    run_kind text check (run_kind in ('full', 'incremental')),
    run_page jsonb,
    run_high_water text,
    run_done boolean not null default false,
    updated_at timestamptz not null default now(),
    primary key (tenant_id, install_id, stream),
    foreign key (tenant_id, install_id) references installs (tenant_id, id) on delete cascade
);

alter table sync_state enable row level security;
alter table sync_state force row level security;
create policy sync_state_tenant on sync_state for all
    using (tenant_id = app_tenant() or app_is_system())
    with check (tenant_id = app_tenant() or app_is_system());

-- Records written to a provider destination: the content hash of what was written (unchanged
-- records are skipped), the id the destination gave it (updates go there), and the generation
-- of the last full sync that saw it.
create table synced_records (
    tenant_id uuid not null,
    install_id uuid not null,
    stream text not null,
    external_id text not null,
    hash bytea not null,
    destination_id text,
    generation bigint not null,
    primary key (tenant_id, install_id, stream, external_id),
    foreign key (tenant_id, install_id) references installs (tenant_id, id) on delete cascade
);

alter table synced_records enable row level security;
alter table synced_records force row level security;
create policy synced_records_tenant on synced_records for all
    using (tenant_id = app_tenant() or app_is_system())
    with check (tenant_id = app_tenant() or app_is_system());

-- The built-in destination: records kept in Patchbay, per tenant and install, in the collection
-- the recipe names. The row is its own sync state (hash, generation).
--
-- No foreign key to installs: its per-row check took half the time of writing a record (200,000
-- rows: 3.8 s with it, 1.95 s without, on these machines). Rows are written only by a sync
-- holding the lease of a job of the install (sync_jobs references installs, and the lease is
-- checked in the same transaction), and the trigger below removes them with their install, as
-- the cascade did.
create table store_records (
    tenant_id uuid not null,
    install_id uuid not null,
    stream text not null,
    external_id text not null,
    collection text not null,
    data jsonb not null,
    hash bytea not null,
    generation bigint not null,
    updated_at timestamptz not null default now(),
    primary key (tenant_id, install_id, stream, external_id)
);
create index store_records_recent on store_records (tenant_id, install_id, updated_at desc);

create function installs_forget_store() returns trigger
language plpgsql set search_path = public as $$
begin
    delete from store_records s using deleted d
    where s.tenant_id = d.tenant_id and s.install_id = d.id;
    return null;
end;
$$;
create trigger installs_forget_store after delete on installs
    referencing old table as deleted for each statement execute function installs_forget_store();

alter table store_records enable row level security;
alter table store_records force row level security;
create policy store_records_tenant on store_records for all
    using (tenant_id = app_tenant() or app_is_system())
    with check (tenant_id = app_tenant() or app_is_system());

-- Records a run could not write (the destination refused them, or the mapping failed), with
-- why, and the source record so they can be replayed after a fix.
create table quarantined_records (
    tenant_id uuid not null,
    id bigint generated always as identity,
    install_id uuid not null,
    run_id bigint not null,
    stream text not null,
    external_id text not null,
    reason text not null,
    data jsonb not null,
    created_at timestamptz not null default now(),
    replayed_at timestamptz,
    primary key (tenant_id, id),
    foreign key (tenant_id, install_id) references installs (tenant_id, id) on delete cascade
);
create index quarantined_records_run on quarantined_records (tenant_id, run_id);

alter table quarantined_records enable row level security;
alter table quarantined_records force row level security;
create policy quarantined_records_tenant_read on quarantined_records for select
    using (tenant_id = app_tenant() or app_is_system());
create policy quarantined_records_write on quarantined_records for all
    using (app_is_system()) with check (app_is_system());

-- Webhook deliveries accepted, for dedupe: a delivery id is taken once per install (a provider
-- sends the same event id to every subscription).
create table webhook_deliveries (
    tenant_id uuid not null,
    install_id uuid not null,
    delivery_id text not null check (length(delivery_id) between 1 and 200),
    event_type text,
    received_at timestamptz not null default now(),
    primary key (tenant_id, install_id, delivery_id),
    foreign key (tenant_id, install_id) references installs (tenant_id, id) on delete cascade
);
create index webhook_deliveries_age on webhook_deliveries (received_at);

alter table webhook_deliveries enable row level security;
alter table webhook_deliveries force row level security;
create policy webhook_deliveries_tenant on webhook_deliveries for all
    using (tenant_id = app_tenant() or app_is_system())
    with check (tenant_id = app_tenant() or app_is_system());

-- Token buckets shared by every worker process: one per provider app (`app:<id>`) and one per
-- connection (`conn:<id>`). `blocked_until` holds a provider's Retry-After for everyone. No
-- row-level security: the table holds no tenant data (ids and counts), and a take must be one
-- statement, outside any scoped transaction.
create table rate_buckets (
    key text primary key,
    rate double precision not null check (rate > 0),
    burst double precision not null check (burst >= 1),
    tokens double precision not null,
    updated_at timestamptz not null,
    blocked_until timestamptz
);

-- Takes one token from every bucket in `keys` (created on first use with its rate and burst),
-- all or none, and returns 0; or, when any bucket is short or blocked, takes nothing and returns
-- the seconds until all of them could give one. Rows are locked in key order, so concurrent
-- takers cannot deadlock; the clock is the database's, shared by every worker. A take is called
-- before every provider request, so it commits without waiting for the disk: a crash can only
-- forget a few spent tokens.
create function take_rate_tokens(keys text[], rates double precision[],
                                 bursts double precision[])
    returns double precision
    language plpgsql
    as $$
declare
    now_ts timestamptz := clock_timestamp();
    wait double precision := 0;
    k record;
    avail double precision;
    blocked double precision;
begin
    perform set_config('synchronous_commit', 'off', true);
    for k in
        select u.key, u.rate, u.burst
        from unnest(keys, rates, bursts) as u (key, rate, burst)
        order by u.key
    loop
        insert into rate_buckets (key, rate, burst, tokens, updated_at)
        values (k.key, k.rate, k.burst, k.burst, now_ts)
        on conflict (key) do update set rate = excluded.rate, burst = excluded.burst
            where rate_buckets.rate <> excluded.rate or rate_buckets.burst <> excluded.burst;
        select least(b.burst, b.tokens + b.rate * extract(epoch from now_ts - b.updated_at)),
               greatest(0, extract(epoch from coalesce(b.blocked_until, now_ts) - now_ts))
            into avail, blocked
        from rate_buckets b where b.key = k.key for update;
        wait := greatest(wait, blocked, case when avail >= 1 then 0 else (1 - avail) / k.rate end);
    end loop;
    if wait > 0 then
        return wait;
    end if;
    update rate_buckets b
    set tokens = least(b.burst, b.tokens + b.rate * extract(epoch from now_ts - b.updated_at)) - 1,
        updated_at = now_ts
    where b.key = any (keys);
    return 0;
end
$$;

-- Holds every bucket in `keys` until `until` (a provider's Retry-After): takers wait meanwhile.
create function block_rate_buckets(keys text[], until timestamptz)
    returns void
    language sql
    as $$
    update rate_buckets set blocked_until = greatest(coalesce(blocked_until, until), until)
    where key = any (keys)
$$;

-- One cycle of a worker: completes the jobs it finished and claims its next batch, in one
-- statement, so that a worker of short jobs pays one round trip and one commit per batch. The
-- statements and the reasons behind them are documented where the queue is (`app::domain::queue`,
-- `claim.rs` and `lease.rs`); they live here so that the claim sees the slots the completion freed
-- (two statements, one function) and the whole cycle needs no transaction around it. The function
-- takes the platform's scope for its own statements only and puts the caller's back.
create function queue_cycle(p_worker text, p_max bigint, p_lease_ms double precision,
                            p_tenants uuid[], p_ids bigint[], p_tokens uuid[])
    returns table (done boolean, tenant_id uuid, id bigint, install_id uuid, kind text,
                   attempt int, idle_attempts int, max_attempts int, lease_token uuid,
                   lease_until timestamptz, trigger text, payload jsonb, created_at timestamptz)
    language plpgsql
    as $$
#variable_conflict use_column
declare
    previous text := coalesce(current_setting('app.system', true), '');
begin
    perform set_config('app.system', 'on', true);
    if cardinality(p_ids) > 0 then
        return query
with gone as (
    delete from sync_jobs
    where (tenant_id, id, lease_token) in (
              select * from unnest(p_tenants::uuid[], p_ids::bigint[], p_tokens::uuid[]))
      and state = 'running'
    returning tenant_id, id, lease_token
),
counts as (
    select tenant_id, count(*)::int as n from gone group by tenant_id
),
locked as (
    select s.tenant_id from tenant_slots s
    where s.tenant_id in (select tenant_id from counts)
    order by s.tenant_id
    for update
),
bumped as (
    update tenant_slots s set running = s.running - c.n
    from counts c, locked l
    where s.tenant_id = c.tenant_id and l.tenant_id = c.tenant_id
)
select true, g.tenant_id, g.id, null::uuid, null::text, null::int, null::int, null::int,
       g.lease_token, null::timestamptz, null::text, null::jsonb, null::timestamptz
from gone g;
    end if;
    if p_max > 0 then
        return query
with tenants as (
    select s.tenant_id, s.max_running - s.running as free, s.last_served
    from tenant_slots s
    where s.running < s.max_running and s.queued > 0 and s.next_run_at <= now()
    order by s.last_served, s.tenant_id
    limit p_max
    for update of s skip locked
),
share as (
    select p_max - count(*) + 1 as n from tenants
),
picks as (
    select t.tenant_id, j.id, j.install_id, t.last_served,
           row_number() over (partition by t.tenant_id order by j.run_at, j.id) as turn
    from tenants t
    cross join share
    cross join lateral (
        select q.id, q.run_at, q.install_id
        from sync_jobs q
        where q.tenant_id = t.tenant_id and q.state = 'queued' and q.run_at <= now()
          and not exists (select 1 from sync_jobs r
                          where r.install_id = q.install_id and r.state = 'running')
        order by q.run_at, q.id
        limit least(t.free, share.n)
        for update of q skip locked
    ) j
),
chosen as (
    select tenant_id, id from (
        select p.*, row_number() over (partition by install_id order by turn) as nth from picks p
    ) p
    where nth = 1
    order by turn, last_served, tenant_id limit p_max
),
claimed as (
    update sync_jobs j
    set state = 'running', lease_token = gen_random_uuid(),
        lease_until = now() + p_lease_ms * interval '1 millisecond', worker = p_worker
    from chosen c
    where j.tenant_id = c.tenant_id and j.id = c.id
    returning j.tenant_id, j.id, j.install_id, j.kind, j.attempt, j.max_attempts, j.lease_token,
              j.lease_until, j.trigger, j.payload, j.created_at, j.idle_attempts
),
served as (
    select tenant_id, count(*)::int as n from claimed group by tenant_id
),
bumped as (
    update tenant_slots s
    set running = s.running + coalesce(served.n, 0),
        queued = s.queued - coalesce(served.n, 0),
        last_served = case when served.n is null then s.last_served else now() end,
        next_run_at = coalesce(
            (select q.run_at from sync_jobs q
             where q.tenant_id = s.tenant_id and q.state = 'queued'
               and q.id <> all (array(select id from claimed))
             order by q.run_at, q.id limit 1),
            'infinity')
    from tenants t left join served on served.tenant_id = t.tenant_id
    where s.tenant_id = t.tenant_id
)
select false, c.tenant_id, c.id, c.install_id, c.kind, c.attempt, c.idle_attempts,
       c.max_attempts, c.lease_token, c.lease_until, c.trigger, c.payload, c.created_at
from claimed c;
    end if;
    perform set_config('app.system', previous, true);
end
$$;
