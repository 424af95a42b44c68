-- Admin operations: what the failures dashboard, run detail, repair actions, health page and
-- audit log read and write. See `app::domain::admin`.

-- Each attempt carries its listing and source provider, so that failures group by them without a
-- join through installs and listing versions, and the cursors of its streams when it started and
-- when it ended (`{"customers": "2026-12-01T10:00:00Z"}`), for the run detail. `rate_wait_secs`
-- sums the time the attempt waited for rate budgets, for the health page's plot.
alter table sync_runs add column listing_id uuid references listings (id);
alter table sync_runs add column provider text;
alter table sync_runs add column cursor_before jsonb;
alter table sync_runs add column cursor_after jsonb;
alter table sync_runs add column rate_wait_secs double precision not null default 0;

-- The dashboard reads failures newest first over a time range, across tenants; the partial index
-- holds only failed and dead attempts (a small share of all) with what the grouping needs.
create index sync_runs_failures on sync_runs (finished_at desc)
    include (tenant_id, listing_id, provider, error_class, outcome)
    where outcome in ('failed', 'dead');
-- The health page's plots and retention read attempts by when they ended.
create index sync_runs_finished on sync_runs (finished_at);

-- Where a quarantined record was refused: by the field mapping or by the destination. Either way
-- the row holds the source record, which a replay maps again with the install's mapping of then
-- (the fix may be there). An admin's replay marks rows `replay_requested_at`; the install's next
-- attempt replays them before it reads anything and sets `replayed_at`.
alter table quarantined_records add column stage text not null default 'destination'
    check (stage in ('mapping', 'destination'));
alter table quarantined_records add column replay_requested_at timestamptz;
create index quarantined_records_replay on quarantined_records (tenant_id, install_id)
    where replay_requested_at is not null and replayed_at is null;

-- Freshness: when each install last finished a sync successfully (set with the run's end), and
-- the longest its schedule leaves between two runs (the interval; for cron, its widest gap).
-- An active install past two such windows without a successful sync is stale.
alter table installs add column last_synced_at timestamptz;
alter table sync_schedules add column window_secs int check (window_secs > 0);

-- Worker processes, by the heartbeat each writes every few seconds; the health page counts those
-- heard from lately as alive. `name` is the one in leases and the run log (`host:pid`). No
-- tenant data.
create table workers (
    name text primary key,
    concurrency int not null,
    started_at timestamptz not null default now(),
    heartbeat_at timestamptz not null default now()
);

-- The queue's depth, sampled once a minute by whichever worker gets there first (the primary key
-- makes the others' inserts do nothing), for the health page's plot.
create table queue_samples (
    at timestamptz primary key,
    queued int not null,
    running int not null
);

-- The audit log is append-only for everyone, the owner included: a trigger refuses to change or
-- remove an entry. Two exceptions keep the foreign keys working: a deleted user's entries lose
-- their user id (the email stays in `actor_email`), and a deleted organization takes its entries
-- along. The app role also loses the privileges outright.
alter table audit_log add column actor_email text;
create index audit_log_recent on audit_log (id desc);

create function audit_log_append_only() returns trigger
language plpgsql set search_path = public as $$
begin
    if tg_op = 'UPDATE' and old.actor_user_id is not null and new.actor_user_id is null
        and (new.tenant_id, new.id, new.action, new.detail, new.created_at,
             new.actor_email) is not distinct from
            (old.tenant_id, old.id, old.action, old.detail, old.created_at, old.actor_email) then
        return new;
    end if;
    if tg_op = 'DELETE' and not exists (select 1 from organizations o where o.id = old.tenant_id) then
        return old;
    end if;
    raise exception 'the audit log is append-only' using errcode = 'insufficient_privilege';
end;
$$;
create trigger audit_log_append_only before update or delete on audit_log
    for each row execute function audit_log_append_only();

create function audit_log_no_truncate() returns trigger
language plpgsql as $$
begin
    raise exception 'the audit log is append-only' using errcode = 'insufficient_privilege';
end;
$$;
create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function audit_log_no_truncate();

revoke update, delete, truncate on audit_log from patchbay_app;

-- Two more kinds of run events: a provider request that failed (its summary in `detail`; page
-- events carry theirs too), and quarantined records replayed.
alter table run_events drop constraint run_events_kind_check;
alter table run_events add constraint run_events_kind_check check (kind in
    ('started', 'page', 'request', 'retry', 'rate_wait', 'quarantined', 'replayed', 'deleted',
     'error', 'finished'));
