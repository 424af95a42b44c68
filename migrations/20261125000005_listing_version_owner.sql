-- A version belongs to the vendor of its listing. Row-level security checks a version's own
-- `vendor_org_id`; this makes that column agree with the listing's, so that no transaction of one
-- vendor can attach a version to another vendor's listing, whatever the code above does.
alter table listings add constraint listings_id_vendor_key unique (id, vendor_org_id);
alter table listing_versions
    add constraint listing_versions_listing_vendor_fk
    foreign key (listing_id, vendor_org_id) references listings (id, vendor_org_id)
    on delete cascade;
