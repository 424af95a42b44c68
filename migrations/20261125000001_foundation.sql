-- Foundation: accounts, organizations (the tenants), memberships, sessions, audit log, and the
-- row-level security that keeps tenants apart.

-- The role the application runs as. It is not a superuser and has no BYPASSRLS, so every policy
-- below applies to it. Roles are cluster-wide and test databases are created in parallel, so the
-- creation tolerates a concurrent twin.
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'patchbay_app') then
        create role patchbay_app nologin;
    end if;
exception
    when duplicate_object or unique_violation then null;
end
$$;

-- The connecting user switches to the app role with `set role` right after it connects.
do $$
begin
    execute format('grant patchbay_app to %I', current_user);
exception
    when duplicate_object or unique_violation then null;
end
$$;

-- Settings a transaction carries. `set_config(..., true)` is local to the transaction; after it
-- ends the setting reads as '' (not null), hence nullif.
create function app_tenant() returns uuid
    language sql stable
    as $$ select nullif(current_setting('app.tenant_id', true), '')::uuid $$;

create function app_user() returns uuid
    language sql stable
    as $$ select nullif(current_setting('app.user_id', true), '')::uuid $$;

-- Platform-wide work (platform admins, workers, the demo seed) says so explicitly.
create function app_is_system() returns boolean
    language sql stable
    as $$ select coalesce(current_setting('app.system', true), '') = 'on' $$;

create function set_updated_at() returns trigger
    language plpgsql
    as $$
begin
    new.updated_at = now();
    return new;
end
$$;

create table users (
    id uuid primary key,
    email text not null,
    display_name text not null,
    password_hash text not null,
    is_platform_admin boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index users_email_key on users (lower(email));
create trigger users_updated_at before update on users
    for each row execute function set_updated_at();

-- An organization is a tenant: customers install integrations, vendors publish them.
create table organizations (
    id uuid primary key,
    kind text not null check (kind in ('customer', 'vendor')),
    name text not null check (length(name) between 1 and 80),
    created_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create trigger organizations_updated_at before update on organizations
    for each row execute function set_updated_at();

create table memberships (
    tenant_id uuid not null references organizations (id) on delete cascade,
    user_id uuid not null references users (id) on delete cascade,
    role text not null check (role in ('owner', 'admin', 'member')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (tenant_id, user_id)
);
create index memberships_user_idx on memberships (user_id);
create trigger memberships_updated_at before update on memberships
    for each row execute function set_updated_at();

create table audit_log (
    tenant_id uuid not null references organizations (id) on delete cascade,
    id bigint generated always as identity,
    actor_user_id uuid references users (id) on delete set null,
    action text not null,
    detail jsonb not null default '{}',
    created_at timestamptz not null default now(),
    primary key (tenant_id, id)
);

-- Failed sign-ins, for throttling per account and per address. Old rows are pruned on insert.
create table login_failures (
    id bigint generated always as identity primary key,
    email_key text not null,
    ip text,
    created_at timestamptz not null default now()
);
create index login_failures_email_idx on login_failures (email_key, created_at);
create index login_failures_ip_idx on login_failures (ip, created_at);

-- tower-sessions' Postgres store, created here so that migrations own every table.
create schema tower_sessions;
create table tower_sessions.session (
    id text primary key not null,
    data bytea not null,
    expiry_date timestamptz not null
);

-- Row-level security. FORCE makes the policies apply to the table owner too.
alter table memberships enable row level security;
alter table memberships force row level security;
-- A user sees the memberships of the active tenant, and their own memberships in any tenant (to
-- list their organizations); writes need the tenant itself.
create policy memberships_read on memberships for select
    using (tenant_id = app_tenant() or user_id = app_user() or app_is_system());
create policy memberships_write on memberships for all
    using (tenant_id = app_tenant() or app_is_system())
    with check (tenant_id = app_tenant() or app_is_system());

alter table audit_log enable row level security;
alter table audit_log force row level security;
create policy audit_log_tenant on audit_log for all
    using (tenant_id = app_tenant() or app_is_system())
    with check (tenant_id = app_tenant() or app_is_system());

grant usage on schema public, tower_sessions to patchbay_app;
grant select, insert, update, delete on all tables in schema public, tower_sessions to patchbay_app;
grant usage, select on all sequences in schema public to patchbay_app;
grant execute on all functions in schema public to patchbay_app;
revoke all on _sqlx_migrations from patchbay_app;
alter default privileges in schema public
    grant select, insert, update, delete on tables to patchbay_app;
alter default privileges in schema public
    grant usage, select on sequences to patchbay_app;
