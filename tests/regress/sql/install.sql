-- Installing at the old version and updating exercises the upgrade script.
CREATE EXTENSION hydracache VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'hydracache';
SELECT to_regprocedure('hydracache.pending()') IS NULL AS no_pending_in_0_1_0;
ALTER EXTENSION hydracache UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'hydracache';
SELECT to_regprocedure('hydracache.pending()') IS NOT NULL AS pending_in_0_1_1;

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
