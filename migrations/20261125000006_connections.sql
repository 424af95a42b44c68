-- Connections: the OAuth apps Patchbay is registered as at each provider, the short-lived OAuth
-- flows of customers connecting an account, and the connections themselves with their sealed
-- credentials. Secrets are sealed by the application (AES-256-GCM, see `domain::vault`); the
-- database only ever holds ciphertext, whose first byte names the key that sealed it.

-- One OAuth app per provider for the whole platform (vendor_org_id null, set by platform admins),
-- and optionally one per vendor, which that vendor's listings use instead.
create table provider_apps (
    id uuid primary key default gen_random_uuid(),
    provider text not null check (provider ~ '^[a-z0-9-]{1,64}$'),
    vendor_org_id uuid references organizations (id) on delete cascade,
    client_id text not null check (length(client_id) between 1 and 512),
    client_secret_enc bytea not null,
    updated_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index provider_apps_platform on provider_apps (provider) where vendor_org_id is null;
create unique index provider_apps_vendor on provider_apps (vendor_org_id, provider)
    where vendor_org_id is not null;
create trigger provider_apps_updated_at before update on provider_apps
    for each row execute function set_updated_at();

-- A vendor manages its own apps; platform apps and the connect flow (which must read the app a
-- listing uses, whoever owns it) are platform work.
alter table provider_apps enable row level security;
alter table provider_apps force row level security;
create policy provider_apps_access on provider_apps for all
    using (vendor_org_id = app_tenant() or app_is_system())
    with check (vendor_org_id = app_tenant() or app_is_system());

create table connections (
    tenant_id uuid not null references organizations (id) on delete cascade,
    id uuid not null default gen_random_uuid(),
    provider text not null,
    auth_kind text not null check (auth_kind in ('oauth2', 'api_key', 'basic')),
    -- The app that issued the tokens; refreshes and revocations must use the same one.
    provider_app_id uuid references provider_apps (id) on delete set null,
    status text not null default 'active' check (status in ('active', 'needs_reauth', 'revoked')),
    -- Why the status is what it is, in words for the customer ("The provider refused the
    -- refresh token; connect again.").
    status_reason text,
    -- The account at the provider, as its check call names it ("Sandbox Demo Co").
    account_label text,
    -- Non-secret inputs (a Shopify shop) and kept token fields (Salesforce's instance_url).
    vars jsonb not null default '{}',
    scopes text[] not null default '{}',
    -- Sealed JSON of the secrets, bound to (tenant_id, id); null once disconnected.
    credentials_enc bytea,
    -- When the access token expires (OAuth), null when it does not.
    expires_at timestamptz,
    refreshed_at timestamptz,
    -- When the refresh sweep last failed to renew this connection (the provider down, say); the
    -- sweep leaves it alone for a while, so a few failing connections cannot hold up the rest.
    refresh_failed_at timestamptz,
    last_used_at timestamptz,
    created_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (tenant_id, id),
    unique (id),
    check (status = 'revoked' or credentials_enc is not null)
);
-- The refresh sweep: active OAuth connections by expiry.
create index connections_expiring on connections (expires_at)
    where status = 'active' and expires_at is not null;
create trigger connections_updated_at before update on connections
    for each row execute function set_updated_at();

alter table connections enable row level security;
alter table connections force row level security;
create policy connections_tenant on connections for all
    using (tenant_id = app_tenant() or app_is_system())
    with check (tenant_id = app_tenant() or app_is_system());

-- An OAuth authorization in progress. The `state` sent to the provider is only stored hashed;
-- the row is deleted when the callback uses it (single use) or when it expires. `binding_hash`
-- is the hash of a random value kept in the session that started the flow, so the callback must
-- come back in that same session.
create table oauth_flows (
    tenant_id uuid not null references organizations (id) on delete cascade,
    id uuid not null default gen_random_uuid(),
    state_hash bytea not null unique,
    binding_hash bytea not null,
    user_id uuid not null references users (id) on delete cascade,
    provider text not null,
    provider_app_id uuid not null references provider_apps (id) on delete cascade,
    -- Reconnecting an existing connection keeps its id.
    connection_id uuid,
    vars jsonb not null default '{}',
    -- The PKCE verifier, sealed and bound to (tenant_id, id).
    verifier_enc bytea,
    -- A path on this site (checked when the flow starts).
    return_to text not null check (return_to like '/%' and return_to not like '//%'),
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    primary key (tenant_id, id),
    foreign key (tenant_id, connection_id) references connections (tenant_id, id) on delete cascade
);
create index oauth_flows_expiry on oauth_flows (expires_at);

alter table oauth_flows enable row level security;
alter table oauth_flows force row level security;
create policy oauth_flows_tenant on oauth_flows for all
    using (tenant_id = app_tenant() or app_is_system())
    with check (tenant_id = app_tenant() or app_is_system());
