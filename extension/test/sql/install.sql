-- Installing at the old version and updating exercises the upgrade scripts.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS hydracache CASCADE;
RESET client_min_messages;
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

-- The install script of the current version is generated from sql/hydracache.sql; the
-- upgrade scripts are diffs.  Both paths must give the same objects: every function's full
-- definition (pg_get_functiondef: arguments, defaults, body, volatility, SET clauses), the
-- view's definition and columns, the event triggers, privileges, comments and membership.
-- (Catalog names only, no reg* constants: the view must outlive DROP EXTENSION.)
CREATE TEMP VIEW hc_catalog AS
WITH n AS (SELECT oid FROM pg_namespace WHERE nspname = 'hydracache')
SELECT 'function ' || p.oid::regprocedure AS object,
       pg_get_functiondef(p.oid) || E'\n-- acl: ' || coalesce(p.proacl::text, 'default')
       || E'\n-- comment: ' || coalesce(obj_description(p.oid, 'pg_proc'), '') AS definition
  FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM n)
UNION ALL
SELECT 'relation ' || c.oid::regclass,
       c.relkind::text || E'\n' || coalesce(pg_get_viewdef(c.oid), '') || E'\n-- columns: '
       || (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', '
                             ORDER BY a.attnum)
             FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0)
       || E'\n-- acl: ' || coalesce(c.relacl::text, 'default')
       || E'\n-- comment: ' || coalesce(obj_description(c.oid, 'pg_class'), '')
  FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM n)
UNION ALL
SELECT 'event trigger ' || e.evtname,
       e.evtevent || ' ' || e.evtfoid::regprocedure || ' ' || e.evtenabled::text || ' '
       || coalesce(e.evttags::text, '')
  FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid
 WHERE p.pronamespace = (SELECT oid FROM n)
UNION ALL
SELECT 'schema', coalesce(ns.nspacl::text, 'default') FROM pg_namespace ns
 WHERE ns.oid = (SELECT oid FROM n)
UNION ALL
SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid), ''
  FROM pg_depend d JOIN pg_extension x ON d.refobjid = x.oid
 WHERE d.refclassid = 'pg_extension'::regclass AND x.extname = 'hydracache' AND d.deptype = 'e';
CREATE TEMP TABLE hc_upgraded AS SELECT * FROM hc_catalog;
DROP EXTENSION hydracache;
CREATE EXTENSION hydracache;
SELECT extversion FROM pg_extension WHERE extname = 'hydracache';
SELECT count(*) AS objects_compared,
       count(*) FILTER (WHERE object LIKE 'function %') AS functions
  FROM hc_catalog;
(SELECT 'only in 0.1.0 + upgrades' AS side, * FROM hc_upgraded
 EXCEPT SELECT 'only in 0.1.0 + upgrades', * FROM hc_catalog)
UNION ALL
(SELECT 'only in the fresh install', * FROM hc_catalog
 EXCEPT SELECT 'only in the fresh install', * FROM hc_upgraded)
ORDER BY 1, 2;
DROP TABLE hc_upgraded;
DROP VIEW hc_catalog;

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
