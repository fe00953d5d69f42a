-- watch(), unwatch(), the watched view, and who may use them.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS hydracache;
RESET client_min_messages;
CREATE TABLE users (id int PRIMARY KEY, name text, email text);
CREATE TABLE order_items (order_id int, line int, qty int, note text, PRIMARY KEY (order_id, line));
CREATE TABLE nokey (a int, b text);
CREATE VIEW users_view AS SELECT * FROM users;

SELECT hydracache.watch('users', 'user');
-- The primary key's column order is kept for multi-column keys.
SELECT hydracache.watch('order_items', 'order_item', collection => 'orders', columns => ARRAY['qty']);
SELECT * FROM hydracache.watched ORDER BY tbl::text;

-- Seven triggers per table: statement-level INSERT/UPDATE/DELETE triggers for ordinary
-- sessions (ENABLE, 'O'), row-level ones for session_replication_role = replica, which is how
-- logical replication applies writes (ENABLE REPLICA, 'R': the apply worker fires row-level
-- triggers only), and TRUNCATE in both modes (ENABLE ALWAYS, 'A').
SELECT tgrelid::regclass, tgname, tgenabled, tgtype
  FROM pg_trigger WHERE tgname LIKE 'hydracache%' ORDER BY 1, 2;

-- Errors
SELECT hydracache.watch('nokey', 'x');
SELECT hydracache.watch('nokey', 'x', ARRAY['nosuch']);
SELECT hydracache.watch('nokey', 'x', ARRAY['a'], columns => ARRAY['b', 'nosuch']);
SELECT hydracache.watch('nokey', 'x', ARRAY['a', 'a']);
SELECT hydracache.watch('nokey', 'x', '{}');
SELECT hydracache.watch('nokey', 'x', ARRAY['a'], columns => '{}');
SELECT hydracache.watch('nokey', '');
SELECT hydracache.watch('nokey', NULL, ARRAY['a']);
SELECT hydracache.watch('nokey', 'x', ARRAY['a'], collection => '');
SELECT hydracache.watch('nokey', repeat('x', 1025), ARRAY['a']);
SELECT hydracache.watch('users_view', 'x', ARRAY['id']);
SELECT hydracache.watch('no_such_table', 'x');
SELECT hydracache.watch('nokey', 'x', ARRAY['ctid']);
SELECT count(*) AS still_two_watched FROM hydracache.watched;

-- Explicit key columns on a table without a primary key; NULL keys are allowed.
SELECT hydracache.watch('nokey', 'nk', ARRAY['b', 'a']);
SELECT * FROM hydracache.watched WHERE tbl = 'nokey'::regclass;

-- Watching again replaces the configuration, and invalidates what the old one covered
-- (caches may hold entries under the old entity name).
BEGIN;
SELECT hydracache.watch('nokey', 'nk2', ARRAY['a'], collection => 'nokeys');
SELECT * FROM hydracache.watched WHERE tbl = 'nokey'::regclass;
SELECT * FROM hydracache.pending();
COMMIT;
SELECT count(*) AS triggers_on_nokey FROM pg_trigger WHERE tgrelid = 'nokey'::regclass;

-- unwatch() drops the triggers, sends the table-wide and collection tags, reports whether
-- the table was watched.
BEGIN;
SELECT hydracache.unwatch('nokey');
SELECT * FROM hydracache.pending();
COMMIT;
SELECT hydracache.unwatch('nokey');
SELECT count(*) AS triggers_on_nokey FROM pg_trigger WHERE tgrelid = 'nokey'::regclass;
INSERT INTO nokey VALUES (1, 'x');
BEGIN;
INSERT INTO nokey VALUES (2, 'y');
SELECT count(*) AS nothing_pending FROM hydracache.pending();
ROLLBACK;

-- Same table name in two schemas: separate configurations.
CREATE SCHEMA other;
CREATE TABLE other.users (id int PRIMARY KEY, name text);
SELECT hydracache.watch('other.users', 'other_user');
SELECT * FROM hydracache.watched ORDER BY tbl::text;
BEGIN;
INSERT INTO users VALUES (1, 'a');
INSERT INTO other.users VALUES (1, 'b');
SELECT * FROM hydracache.pending();
ROLLBACK;

-- Only the table owner (or a member of the owning role, or a superuser) may watch/unwatch.
-- (roles are cluster-wide: clear leftovers of an interrupted run)
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_hc_owner, regress_hc_other, regress_hc_member;
RESET client_min_messages;
CREATE ROLE regress_hc_owner;
CREATE ROLE regress_hc_other;
CREATE ROLE regress_hc_member IN ROLE regress_hc_owner;
CREATE TABLE owned (id int PRIMARY KEY);
ALTER TABLE owned OWNER TO regress_hc_owner;
GRANT ALL ON owned TO regress_hc_other;
SET ROLE regress_hc_other;
SELECT hydracache.watch('owned', 'owned');
SELECT hydracache.unwatch('users');
-- flush() is not granted to PUBLIC; invalidate() is.
SELECT hydracache.flush();
SELECT hydracache.invalidate('anyone');
RESET ROLE;
-- A non-owner may still write to a watched table; its writes are invalidated.
GRANT ALL ON users TO regress_hc_other;
SET ROLE regress_hc_other;
BEGIN;
INSERT INTO users VALUES (99, 'x');
SELECT * FROM hydracache.pending();
ROLLBACK;
RESET ROLE;
REVOKE ALL ON users FROM regress_hc_other;
SET ROLE regress_hc_member;
SELECT hydracache.watch('owned', 'owned');
SELECT hydracache.unwatch('owned');
RESET ROLE;
SET ROLE regress_hc_owner;
SELECT hydracache.watch('owned', 'owned');
RESET ROLE;
SELECT tbl, entity FROM hydracache.watched WHERE tbl = 'owned'::regclass;

-- The trigger checks how it was installed.
CREATE TABLE manual (id int PRIMARY KEY);
CREATE TRIGGER manual_bad AFTER INSERT ON manual FOR EACH STATEMENT EXECUTE FUNCTION hydracache.trigger();
INSERT INTO manual VALUES (1);
DROP TRIGGER manual_bad ON manual;
CREATE TRIGGER manual_no_transition AFTER INSERT ON manual FOR EACH STATEMENT
    EXECUTE FUNCTION hydracache.trigger('m', 'manual', '1', 'id');
INSERT INTO manual VALUES (1);
DROP TRIGGER manual_no_transition ON manual;
CREATE TRIGGER manual_before BEFORE INSERT ON manual FOR EACH ROW
    EXECUTE FUNCTION hydracache.trigger('m', 'manual', '1', 'id');
INSERT INTO manual VALUES (1);
DROP TRIGGER manual_before ON manual;
SELECT hydracache.trigger();
-- Hand-made triggers with absurd key counts get a clean error (no overflow, no huge alloc).
CREATE TRIGGER manual_absurd AFTER INSERT ON manual FOR EACH ROW
    EXECUTE FUNCTION hydracache.trigger('m', 'manual', '2147483647', 'id');
INSERT INTO manual VALUES (1);
DROP TRIGGER manual_absurd ON manual;
CREATE TRIGGER manual_absurd AFTER INSERT ON manual FOR EACH ROW
    EXECUTE FUNCTION hydracache.trigger('m', 'manual', '99999999999999999999', 'id');
INSERT INTO manual VALUES (1);
DROP TRIGGER manual_absurd ON manual;
CREATE TRIGGER manual_absurd AFTER INSERT ON manual FOR EACH ROW
    EXECUTE FUNCTION hydracache.trigger('m', 'manual', '-1', 'id');
INSERT INTO manual VALUES (1);
DROP TRIGGER manual_absurd ON manual;
CREATE TRIGGER manual_absurd AFTER INSERT ON manual FOR EACH ROW
    EXECUTE FUNCTION hydracache.trigger('m', 'manual', ' 1x', 'id');
INSERT INTO manual VALUES (1);
DROP TRIGGER manual_absurd ON manual;

-- create_triggers() quotes each trigger argument itself: any text arrives intact.
CREATE TABLE quoted (id int PRIMARY KEY);
SELECT hydracache.create_triggers('quoted', ARRAY[$$o'); DROP TABLE quoted; --$$, 'q\''', '1', 'id']);
SELECT entity, collection, key_columns FROM hydracache.watched WHERE tbl = 'quoted'::regclass;
SELECT hydracache.unwatch('quoted');
SELECT hydracache.create_triggers('quoted', ARRAY['e', NULL, '1', 'id']);
SELECT hydracache.create_triggers('quoted', NULL);
DROP TABLE quoted;

-- Renaming a key or watched column is followed (the DDL event trigger runs watch() again
-- with the new name): writes keep working and send the right keys.
SELECT hydracache.watch('manual', 'm');
ALTER TABLE manual RENAME COLUMN id TO ident;
SELECT * FROM hydracache.watched WHERE tbl = 'manual'::regclass;
BEGIN;
INSERT INTO manual VALUES (2);
UPDATE manual SET ident = 3 WHERE ident = 2;
SELECT * FROM hydracache.pending();
COMMIT;
BEGIN;
TRUNCATE manual;
SELECT * FROM hydracache.pending();
ROLLBACK;
-- A watched non-key column, with hydracache.enabled off (the rename is still followed).
CREATE TABLE renamed (a int, b int, c int);
SELECT hydracache.watch('renamed', 'r', ARRAY['a'], columns => ARRAY['b']);
BEGIN;
SET LOCAL hydracache.enabled = off;
ALTER TABLE renamed RENAME COLUMN b TO bb;
ALTER TABLE renamed RENAME COLUMN c TO cc;   -- not watched: left alone
COMMIT;
SELECT * FROM hydracache.watched WHERE tbl = 'renamed'::regclass;
INSERT INTO renamed VALUES (1, 1, 1);
BEGIN;
UPDATE renamed SET cc = 2;
SELECT count(*) AS unwatched_column_sends_nothing FROM hydracache.pending();
UPDATE renamed SET bb = 2;
SELECT * FROM hydracache.pending();
ROLLBACK;
-- Renames that the configuration does not concern never call watch(), so they work even
-- where watch() may not be called.
REVOKE EXECUTE ON FUNCTION hydracache.watch(regclass, text, text[], text, text[]) FROM PUBLIC;
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_hc_renamer;
RESET client_min_messages;
CREATE ROLE regress_hc_renamer;
CREATE TABLE renamer_plain (a int);
ALTER TABLE renamer_plain OWNER TO regress_hc_renamer;
ALTER TABLE renamed OWNER TO regress_hc_renamer;
SET ROLE regress_hc_renamer;
ALTER TABLE renamer_plain RENAME COLUMN a TO aa;
ALTER TABLE renamed RENAME COLUMN cc TO c;
ALTER TABLE renamed RENAME COLUMN a TO a2;   -- a key column: needs watch()
RESET ROLE;
GRANT EXECUTE ON FUNCTION hydracache.watch(regclass, text, text[], text, text[]) TO PUBLIC;
ALTER TABLE renamed OWNER TO CURRENT_USER;
DROP TABLE renamer_plain;
DROP ROLE regress_hc_renamer;
-- A partitioned table: the rename reaches its partitions and the clones follow.
CREATE TABLE renamed_p (k int PRIMARY KEY, v text) PARTITION BY RANGE (k);
CREATE TABLE renamed_p1 PARTITION OF renamed_p FOR VALUES FROM (0) TO (100);
SELECT hydracache.watch('renamed_p', 'rp');
ALTER TABLE renamed_p RENAME COLUMN k TO kk;
SELECT tgrelid::regclass, tgname, hydracache.trigger_args(tgargs)
  FROM pg_trigger WHERE tgrelid IN ('renamed_p'::regclass, 'renamed_p1'::regclass)
   AND tgname LIKE 'hydracache%' ORDER BY 1, 2;
BEGIN;
INSERT INTO renamed_p1 VALUES (5, 'x');
SELECT * FROM hydracache.pending();
ROLLBACK;
-- Where a rename is not followed (event triggers do not fire in replica mode) or a watched
-- column is dropped, writes send the table-wide tag with a WARNING instead of failing.
BEGIN;
SET LOCAL session_replication_role = replica;
ALTER TABLE manual RENAME COLUMN ident TO id2;
COMMIT;
BEGIN;
INSERT INTO manual VALUES (4);
SELECT * FROM hydracache.pending();
ROLLBACK;
ALTER TABLE renamed DROP COLUMN bb;
BEGIN;
UPDATE renamed SET a = 3;
SELECT * FROM hydracache.pending();
ROLLBACK;
DROP TABLE renamed, renamed_p;
SELECT hydracache.watch('manual', 'm');

-- A trigger of ours with malformed arguments (not made by watch()) is left out of the
-- watched view rather than breaking it for everyone.
CREATE TABLE bogus (id int);
CREATE TRIGGER hydracache_insert AFTER INSERT ON bogus
    FOR EACH STATEMENT EXECUTE FUNCTION hydracache.trigger('e', 'c', 'x');
SELECT count(*) AS bogus_rows FROM hydracache.watched WHERE tbl = 'bogus'::regclass;
DROP TRIGGER hydracache_insert ON bogus;
CREATE TRIGGER hydracache_insert AFTER INSERT ON bogus
    FOR EACH STATEMENT EXECUTE FUNCTION hydracache.trigger('e', 'c', '99999999999', 'id');
SELECT count(*) AS bogus_rows FROM hydracache.watched WHERE tbl = 'bogus'::regclass;
DROP TRIGGER hydracache_insert ON bogus;
CREATE TRIGGER hydracache_insert AFTER INSERT ON bogus
    FOR EACH STATEMENT EXECUTE FUNCTION hydracache.trigger('e', 'c', '2', 'id');
SELECT count(*) AS bogus_rows FROM hydracache.watched WHERE tbl = 'bogus'::regclass;
SELECT count(*) > 0 AS others_still_listed FROM hydracache.watched;
DROP TABLE bogus;

DROP TABLE owned;
DROP ROLE regress_hc_owner, regress_hc_other, regress_hc_member;
DROP TABLE manual, nokey, other.users;
DROP SCHEMA other;
DROP VIEW users_view;
DROP TABLE users, order_items;
