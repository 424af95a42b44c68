-- The sync job queue (see `app::domain::queue`): only queued and running jobs live here; a job is
-- deleted when it completes or dies (the run log that keeps history comes later). Workers claim
-- fairly across tenants through `tenant_slots`.

create table sync_jobs (
    tenant_id uuid not null references organizations (id) on delete cascade,
    id bigint generated always as identity,
    -- No foreign key yet: the installs table arrives with the install wizard, which adds it.
    install_id uuid not null,
    kind text not null check (kind in ('full', 'incremental')),
    state text not null check (state in ('queued', 'running')),
    -- What asked for the run: 'manual', 'schedule', 'webhook', ...
    trigger text not null default 'manual',
    run_at timestamptz not null default now(),
    -- Stored for the scheduler; the claim orders by run_at (index order), so urgent work is
    -- enqueued with an earlier run_at.
    priority smallint not null default 0,
    -- Attempts that already ended without success (0 on the first run).
    attempt int not null default 0,
    max_attempts int not null default 5,
    -- Set while running: the lease a worker holds, renewed by heartbeats. Every change a worker
    -- makes must name the token it was given.
    lease_until timestamptz,
    lease_token uuid,
    worker text,
    cancel_requested_at timestamptz,
    payload jsonb not null default '{}',
    created_at timestamptz not null default now(),
    primary key (tenant_id, id),
    unique (id),
    check ((state = 'running') = (lease_token is not null and lease_until is not null))
);
-- Due work across tenants, and one tenant's due work in order (the fair claim's inner pick).
create index sync_jobs_due on sync_jobs (run_at, id) where state = 'queued';
create index sync_jobs_tenant_due on sync_jobs (tenant_id, run_at, id) where state = 'queued';
-- The reaper's scan for expired leases.
create index sync_jobs_leases on sync_jobs (lease_until) where state = 'running';
-- Dedupe: at most one queued and one running job per install and kind. A second "run now" while
-- one waits is the same request; a run asked for while one runs waits its turn.
create unique index sync_jobs_dedupe on sync_jobs (install_id, kind, state);

alter table sync_jobs enable row level security;
alter table sync_jobs force row level security;
-- Tenants read their own jobs; every change is platform work (workers, the scheduler, enqueue).
-- The update policy's `using` names the tenant term as well although its `with check` lets only
-- system scope write: `select ... for update` (the claim) applies that `using`, and the planner
-- estimates `app_is_system()` alone at 0.5% of the rows, which made it sort a tenant's whole
-- backlog instead of reading the (tenant_id, run_at, id) index in order (110 ms against 1.6 ms
-- for a claim over 10,000 queued jobs). A tenant's update matches its rows and then fails the
-- check: no tenant changes a job.
create policy sync_jobs_tenant_read on sync_jobs for select
    using (tenant_id = app_tenant() or app_is_system());
create policy sync_jobs_update on sync_jobs for update
    using (tenant_id = app_tenant() or app_is_system())
    with check (app_is_system());
create policy sync_jobs_insert on sync_jobs for insert
    with check (app_is_system());
create policy sync_jobs_delete on sync_jobs for delete
    using (app_is_system());

-- One row per tenant that has ever had a job: how many of its jobs run and wait, how many may run
-- at once, and when it was last served (the fair claim serves the longest-waiting tenant first).
-- `running` and `queued` are kept equal to the counts in `sync_jobs` by every queue operation.
create table tenant_slots (
    tenant_id uuid primary key references organizations (id) on delete cascade,
    running int not null default 0 check (running >= 0),
    max_running int not null default 4 check (max_running > 0),
    queued int not null default 0,
    last_served timestamptz not null default '-infinity'
);

alter table tenant_slots enable row level security;
alter table tenant_slots force row level security;
-- Shaped as sync_jobs' policies, for the same reason.
create policy tenant_slots_tenant_read on tenant_slots for select
    using (tenant_id = app_tenant() or app_is_system());
create policy tenant_slots_update on tenant_slots for update
    using (tenant_id = app_tenant() or app_is_system())
    with check (app_is_system());
create policy tenant_slots_insert on tenant_slots for insert
    with check (app_is_system());
create policy tenant_slots_delete on tenant_slots for delete
    using (app_is_system());
