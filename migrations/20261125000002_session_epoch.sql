-- A counter bumped whenever a user's credentials change; sessions remember the value they were
-- started with, and a session whose value is stale counts as signed out. Changing a password
-- thereby ends every other session of that user.
alter table users add column session_epoch integer not null default 0;
