-- Alerts: rules the platform admins set, the alerts the workers raise from them (the in-app
-- notification list), and their signed webhook deliveries. Platform data, read only through the
-- admin console; an alert about one organization's install or connection names that
-- organization.

create table alert_rules (
    id uuid primary key default gen_random_uuid(),
    name text not null check (length(name) between 1 and 100),
    -- dead_letters: more than `threshold` dead letters in the last `window_minutes`;
    -- stale_installs: each install past its freshness window;
    -- needs_reauth: each connection waiting for its customer to connect again.
    kind text not null check (kind in ('dead_letters', 'stale_installs', 'needs_reauth')),
    threshold int not null default 0 check (threshold between 0 and 1000000),
    window_minutes int not null default 60 check (window_minutes between 1 and 10080),
    -- Where alerts are posted, if anywhere (the in-app list always has them).
    webhook_url text check (length(webhook_url) <= 2000),
    -- The sealed HMAC secret deliveries are signed with (vault, bound to the rule's id).
    secret_enc bytea not null,
    enabled boolean not null default true,
    created_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    -- When a worker last evaluated the rule; the next evaluates it once this is old enough.
    evaluated_at timestamptz
);

create table alerts (
    id bigint generated always as identity primary key,
    rule_id uuid not null references alert_rules (id) on delete cascade,
    -- What the alert is about: `platform`, `install:<id>` or `connection:<id>`. A rule has at
    -- most one open alert per subject; it resolves when the condition clears.
    subject text not null,
    tenant_id uuid references organizations (id) on delete cascade,
    title text not null,
    detail jsonb not null default '{}',
    opened_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    resolved_at timestamptz,
    acknowledged_at timestamptz,
    acknowledged_by uuid references users (id) on delete set null
);

create unique index alerts_open on alerts (rule_id, subject) where resolved_at is null;
create index alerts_newest on alerts (opened_at desc);

create table alert_deliveries (
    id bigint generated always as identity primary key,
    rule_id uuid not null references alert_rules (id) on delete cascade,
    -- Null for a test delivery.
    alert_id bigint references alerts (id) on delete cascade,
    event text not null check (event in ('alert.opened', 'alert.resolved', 'alert.test')),
    url text not null,
    -- The exact JSON posted (and signed) at every attempt.
    body text not null,
    state text not null default 'pending' check (state in ('pending', 'delivered', 'failed')),
    attempts int not null default 0,
    -- When the next attempt is due; a worker sending pushes it forward, which keeps the others
    -- off the row meanwhile.
    next_attempt_at timestamptz not null default now(),
    last_status int,
    last_error text,
    delivered_at timestamptz,
    created_at timestamptz not null default now()
);

create index alert_deliveries_due on alert_deliveries (next_attempt_at) where state = 'pending';
create index alert_deliveries_rule on alert_deliveries (rule_id, id desc);

