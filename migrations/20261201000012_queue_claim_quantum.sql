-- The fair claim locks only as many tenants as the batch needs: the longest-unserved tenants in
-- turn, each taken for as many jobs as it has room for (free slots, at most its queued jobs),
-- until the batch is covered. Before, a claim of 8 locked 8 tenants and took one job from each,
-- so every claimed job cost a tenant row update at the claim and another at the completion; now
-- a tenant's row is written once per claim of up to its `max_running` jobs (docs/benchmarks.md,
-- "Queue"). Fairness is unchanged across claims: a served tenant goes to the back of the line,
-- and the tenant that waited longest is served first. Only `queue_cycle`'s claim changes; its
-- completion is as before.
create or replace function queue_cycle(p_worker text, p_max bigint, p_lease_ms double precision,
                                       p_tenants uuid[], p_ids bigint[], p_tokens uuid[])
    returns table (done boolean, tenant_id uuid, id bigint, install_id uuid, kind text,
                   attempt int, idle_attempts int, max_attempts int, lease_token uuid,
                   lease_until timestamptz, trigger text, payload jsonb, created_at timestamptz)
    language plpgsql
    as $$
#variable_conflict use_column
declare
    previous text := coalesce(current_setting('app.system', true), '');
    line refcursor;
    t_id uuid;
    t_room int;
    picked uuid[] := '{}';
    room bigint := 0;
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
        -- The line: tenants with a free slot and due work, the longest unserved first, locked
        -- one at a time as the cursor reaches them (`skip locked`: a concurrent claimer's
        -- tenants are passed over), until their room covers the batch.
        open line for
            select s.tenant_id, least(s.max_running - s.running, s.queued)
            from tenant_slots s
            where s.running < s.max_running and s.queued > 0 and s.next_run_at <= now()
            order by s.last_served, s.tenant_id
            for update of s skip locked;
        loop
            fetch line into t_id, t_room;
            exit when not found;
            picked := picked || t_id;
            room := room + t_room;
            exit when room >= p_max;
        end loop;
        close line;
        if cardinality(picked) = 0 then
            perform set_config('app.system', previous, true);
            return;
        end if;
        return query
with tenants as (
    select s.tenant_id, s.max_running - s.running as free, s.last_served
    from tenant_slots s
    where s.tenant_id = any (picked)
),
picks as (
    select t.tenant_id, j.id, j.install_id, t.last_served,
           row_number() over (partition by t.tenant_id order by j.run_at, j.id) as turn
    from tenants t
    cross join lateral (
        select q.id, q.run_at, q.install_id
        from sync_jobs q
        where q.tenant_id = t.tenant_id and q.state = 'queued' and q.run_at <= now()
          and not exists (select 1 from sync_jobs r
                          where r.install_id = q.install_id and r.state = 'running')
        order by q.run_at, q.id
        limit least(t.free, p_max)
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
