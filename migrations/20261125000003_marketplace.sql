-- The marketplace: categories, listings owned by vendor organizations, their versions (each with a
-- recipe), and logos.
--
-- A listing is the stable thing a customer finds (its slug, its vendor, whether it is featured or
-- archived); a version is one reviewed state of its content. Editing a published listing makes a
-- new draft version; review moves that version through in_review to published or rejected. The
-- catalog columns of `listings` (name, tagline, description, categories, logo, search) are copied
-- from the published version when it is approved, so that browsing and search read one table.

create table categories (
    slug text primary key,
    name text not null,
    position integer not null
);

insert into categories (slug, name, position) values
    ('crm', 'CRM', 1),
    ('e-commerce', 'E-commerce', 2),
    ('payments', 'Payments', 3),
    ('support', 'Support', 4),
    ('developer-tools', 'Developer tools', 5),
    ('marketing', 'Marketing', 6),
    ('analytics', 'Analytics', 7),
    ('productivity', 'Productivity', 8);

-- Content-addressed images: the key is the SHA-256 of the bytes, so a logo never changes under its
-- URL and can be cached for good. Only PNG, JPEG and WebP, checked by content before insert.
create table logos (
    hash text primary key check (hash ~ '^[0-9a-f]{64}$'),
    content_type text not null check (content_type in ('image/png', 'image/jpeg', 'image/webp')),
    bytes bytea not null check (octet_length(bytes) <= 524288),
    created_at timestamptz not null default now()
);

create table listings (
    id uuid primary key,
    vendor_org_id uuid not null references organizations (id) on delete cascade,
    slug text not null check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and length(slug) <= 60),
    -- draft | in_review | rejected: never published yet, and where its first version stands;
    -- published: in the catalog (a newer version may be in the works); archived: hidden.
    status text not null default 'draft'
        check (status in ('draft', 'in_review', 'rejected', 'published', 'archived')),
    published_version_id uuid,
    -- Set by a platform admin; featured listings come first, by rank.
    featured_rank integer,
    -- Catalog copy of the published version.
    name text not null,
    tagline text not null default '',
    description text not null default '',
    categories text[] not null default '{}',
    logo_hash text references logos (hash),
    search tsvector generated always as (
        setweight(to_tsvector('english', name), 'A')
        || setweight(to_tsvector('english', tagline), 'B')
        || setweight(to_tsvector('english', description), 'C')
    ) stored,
    published_at timestamptz,
    archived_at timestamptz,
    created_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint listings_slug_key unique (slug)
);
create index listings_vendor on listings (vendor_org_id, created_at);
create index listings_catalog on listings (lower(name), id) where status = 'published';
create index listings_featured on listings (featured_rank) where status = 'published' and featured_rank is not null;
create index listings_search on listings using gin (search) where status = 'published';
create index listings_categories on listings using gin (categories) where status = 'published';
create trigger listings_updated_at before update on listings
    for each row execute function set_updated_at();

create table listing_versions (
    id uuid primary key,
    listing_id uuid not null references listings (id) on delete cascade,
    -- The owning vendor, repeated so that row-level security needs no join.
    vendor_org_id uuid not null references organizations (id) on delete cascade,
    number integer not null check (number > 0),
    -- draft → in_review → published | rejected; rejected → (edited) draft; a published version
    -- becomes superseded when a newer one is approved (installs may still run it).
    state text not null default 'draft'
        check (state in ('draft', 'in_review', 'rejected', 'published', 'superseded')),
    name text not null check (length(name) between 1 and 80),
    tagline text not null default '' check (length(tagline) <= 140),
    description text not null default '' check (length(description) <= 20000),
    categories text[] not null default '{}',
    logo_hash text references logos (hash),
    docs_url text,
    support_url text,
    website_url text,
    -- The recipe (model::Recipe as JSON): source and destination, mapping, config fields,
    -- schedules and triggers.
    recipe jsonb not null,
    review_notes text,
    submitted_at timestamptz,
    submitted_by uuid references users (id) on delete set null,
    reviewed_at timestamptz,
    reviewed_by uuid references users (id) on delete set null,
    published_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (listing_id, number)
);
-- At most one version of a listing is being worked on (draft, in review or rejected) at a time,
-- and at most one is published.
create unique index listing_versions_one_open on listing_versions (listing_id)
    where state in ('draft', 'in_review', 'rejected');
create unique index listing_versions_one_published on listing_versions (listing_id)
    where state = 'published';
create index listing_versions_review_queue on listing_versions (submitted_at)
    where state = 'in_review';
create trigger listing_versions_updated_at before update on listing_versions
    for each row execute function set_updated_at();

alter table listings add constraint listings_published_version_fk
    foreign key (published_version_id) references listing_versions (id);

-- Row-level security. Everyone (signed in or not) reads published listings and the versions that
-- were ever published (installs run them); the vendor reads and writes its own; platform work
-- (review, the demo seed) states `app.system`.
alter table listings enable row level security;
alter table listings force row level security;
create policy listings_read on listings for select
    using (status = 'published' or vendor_org_id = app_tenant() or app_is_system());
create policy listings_write on listings for all
    using (vendor_org_id = app_tenant() or app_is_system())
    with check (vendor_org_id = app_tenant() or app_is_system());

alter table listing_versions enable row level security;
alter table listing_versions force row level security;
create policy listing_versions_read on listing_versions for select
    using (state in ('published', 'superseded') or vendor_org_id = app_tenant() or app_is_system());
create policy listing_versions_write on listing_versions for all
    using (vendor_org_id = app_tenant() or app_is_system())
    with check (vendor_org_id = app_tenant() or app_is_system());
