-- Installing at the old version and updating exercises the upgrade script.
CREATE EXTENSION hydracache VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'hydracache';
SELECT to_regprocedure('hydracache.pending()') IS NULL AS no_pending_in_0_1_0;
-- A table watched by 0.1.0 (statement triggers ENABLE ALWAYS, no row triggers).
CREATE TABLE early (id int PRIMARY KEY, v text);
SELECT hydracache.watch('early', 'early', columns => ARRAY['v']);
ALTER EXTENSION hydracache UPDATE TO '0.1.1';
SELECT extversion FROM pg_extension WHERE extname = 'hydracache';
SELECT to_regprocedure('hydracache.pending()') IS NOT NULL AS pending_in_0_1_1;
-- An owner may have dropped one of a watched table's triggers: the update still succeeds
-- (DROP TRIGGER IF EXISTS in the conversion loop) and puts the trigger back.
CREATE TABLE early2 (id int PRIMARY KEY);
SELECT hydracache.watch('early2', 'early2');
DROP TRIGGER hydracache_update ON early2;
-- 0.1.2 converts them (same arguments) to the triggers watch() now creates.
ALTER EXTENSION hydracache UPDATE;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'early2'::regclass ORDER BY tgname;
DROP TABLE early2;
SELECT extversion FROM pg_extension WHERE extname = 'hydracache';
SELECT tgname, tgenabled, tgtype, hydracache.trigger_args(tgargs) AS args
  FROM pg_trigger WHERE tgrelid = 'early'::regclass ORDER BY tgname;
SELECT * FROM hydracache.watched;
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE early SET v = 'x';
INSERT INTO early VALUES (1, 'a');
SELECT * FROM hydracache.pending();
ROLLBACK;
DROP TABLE early;

-- The objects the extension owns.
SELECT pg_describe_object(classid, objid, objsubid) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'hydracache')
   AND deptype = 'e'
 ORDER BY 1;

-- Every function pins search_path, except the trigger function, which resolves no names
-- and runs once per statement (a SET clause would cost a GUC save/restore per call).
SELECT p.oid::regprocedure AS function, p.proconfig, p.prosecdef
  FROM pg_proc p
 WHERE p.pronamespace = 'hydracache'::regnamespace
 ORDER BY p.proname;

-- Who may execute what.
SELECT p.oid::regprocedure AS function,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'hydracache'::regnamespace
 ORDER BY p.proname;

-- GUCs exist once the library is loaded, with their defaults.
SELECT hydracache.table_tag('load');
SELECT name, setting, context FROM pg_settings WHERE name LIKE 'hydracache.%' ORDER BY name;
SET hydracache.channel = '';
SET hydracache.channel = 'x_64_bytes_is_one_too_many_for_a_channel_name_xxxxxxxxxxxxxxxxxx';
SET hydracache.bulk_threshold = -1;
SET hydracache.no_such_setting = 1;
