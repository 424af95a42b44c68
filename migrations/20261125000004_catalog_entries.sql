-- The public catalog as its own table: one row per published (and not archived) listing, kept by
-- a trigger on `listings`.
--
-- Why not read `listings` directly: under row-level security, Postgres may not evaluate a
-- non-leakproof operator before the policy, and the full-text match (`@@`) and array containment
-- (`@>`) are not leakproof — so the GIN indexes on `listings` could never serve the app role, and
-- every search scanned every listing. The rows here are public data (what anyone may see in the
-- catalog), so the table needs no policy, and its indexes work.

create table catalog_entries (
    listing_id uuid primary key references listings (id) on delete cascade,
    slug text not null unique,
    vendor_name text not null,
    name text not null,
    tagline text not null,
    description text not null,
    categories text[] not null,
    logo_hash text,
    featured_rank integer,
    -- Which part matched ranks a result: the name, then the tagline, then the description. (A
    -- yes/no match per part costs a fraction of `ts_rank_cd` over the whole vector, which matters
    -- when a common word matches thousands of listings.)
    name_search tsvector generated always as (
        to_tsvector('english', name) || to_tsvector('simple', name)
    ) stored,
    tagline_search tsvector generated always as (
        to_tsvector('english', tagline) || to_tsvector('simple', tagline)
    ) stored,
    -- English stems (invoices ~ invoice) and plain words (so a prefix that is a stop word, such
    -- as "in" for "invoices", still matches); name counts most, then tagline, then description.
    search tsvector generated always as (
        setweight(to_tsvector('english', name) || to_tsvector('simple', name), 'A')
        || setweight(to_tsvector('english', tagline) || to_tsvector('simple', tagline), 'B')
        || setweight(to_tsvector('english', description) || to_tsvector('simple', description), 'C')
    ) stored
);
create index catalog_entries_by_name on catalog_entries (lower(name), listing_id);
create index catalog_entries_search on catalog_entries using gin (search);
create index catalog_entries_categories on catalog_entries using gin (categories);
create index catalog_entries_featured on catalog_entries (featured_rank) where featured_rank is not null;

-- Bumped whenever the catalog changes, so that servers can keep catalog pages in memory and
-- know, with one cheap read, when to drop them.
create table catalog_state (
    id boolean primary key default true check (id),
    generation bigint not null default 0
);
insert into catalog_state default values;

create function sync_catalog_entry() returns trigger
    language plpgsql
    as $$
begin
    -- Neither before nor after in the catalog (drafts being edited): nothing to do.
    if new.status <> 'published' and (tg_op = 'INSERT' or old.status <> 'published') then
        return null;
    end if;
    if tg_op = 'UPDATE'
        and (old.status, old.slug, old.name, old.tagline, old.description, old.categories,
             old.logo_hash, old.featured_rank)
            is not distinct from
            (new.status, new.slug, new.name, new.tagline, new.description, new.categories,
             new.logo_hash, new.featured_rank)
    then
        return null;
    end if;
    if new.status = 'published' then
        insert into catalog_entries (listing_id, slug, vendor_name, name, tagline, description,
                                     categories, logo_hash, featured_rank)
        select new.id, new.slug, o.name, new.name, new.tagline, new.description, new.categories,
               new.logo_hash, new.featured_rank
        from organizations o where o.id = new.vendor_org_id
        on conflict (listing_id) do update set
            slug = excluded.slug, vendor_name = excluded.vendor_name, name = excluded.name,
            tagline = excluded.tagline, description = excluded.description,
            categories = excluded.categories, logo_hash = excluded.logo_hash,
            featured_rank = excluded.featured_rank;
    else
        delete from catalog_entries where listing_id = new.id;
    end if;
    update catalog_state set generation = generation + 1;
    return null;
end
$$;

create trigger listings_catalog_entry after insert or update on listings
    for each row execute function sync_catalog_entry();

-- A vendor's new name shows on its catalog cards.
create function sync_catalog_vendor_name() returns trigger
    language plpgsql
    as $$
begin
    update catalog_entries c set vendor_name = new.name
    from listings l where l.id = c.listing_id and l.vendor_org_id = new.id;
    update catalog_state set generation = generation + 1;
    return null;
end
$$;

create trigger organizations_catalog_vendor_name after update of name on organizations
    for each row execute function sync_catalog_vendor_name();

insert into catalog_entries (listing_id, slug, vendor_name, name, tagline, description, categories,
                             logo_hash, featured_rank)
select l.id, l.slug, o.name, l.name, l.tagline, l.description, l.categories, l.logo_hash,
       l.featured_rank
from listings l join organizations o on o.id = l.vendor_org_id
where l.status = 'published';

-- The catalog's columns on `listings` stay (the trigger copies them); its search machinery moves.
drop index listings_catalog;
drop index listings_featured;
drop index listings_search;
drop index listings_categories;
alter table listings drop column search;

-- A search text's words as a query where each word must start a word of the listing, in English
-- (stemmed) or as written. The caller passes words of letters and digits only.
create function catalog_query(words text[]) returns tsquery
    language plpgsql stable
    as $$
declare
    result tsquery;
    word text;
    term tsquery;
begin
    foreach word in array words loop
        term := to_tsquery('english', word || ':*') || to_tsquery('simple', word || ':*');
        result := case when result is null then term else result && term end;
    end loop;
    return result;
end
$$;
