-- hydracache 0.1.1 -> 0.1.2:
--  * Logical replication: apply workers fire row-level triggers only, so an ordinary table's
--    statement-level triggers (which were ENABLE ALWAYS) never saw replicated writes.  Its
--    statement triggers are now plain ENABLE (origin and local sessions) and row-level
--    triggers hydracache_{insert,update,delete}_replica, ENABLE REPLICA, take over under
--    session_replication_role = replica: each write is seen exactly once in either mode.
--    Tables watched before the update are converted below.
--  * DDL that changes visible rows (ATTACH/DETACH PARTITION, DROP TABLE of a partition,
--    ADD/DROP/RENAME COLUMN, ALTER COLUMN ... TYPE) sends the table-wide and collection tags
--    of the watched tables affected, through two event triggers.
--  * The watched view skips triggers of ours whose arguments are malformed instead of failing.
-- (Fixed after release: the conversion loop below used DROP TRIGGER without IF EXISTS, so the
-- update failed when an owner had dropped one of a watched table's triggers.)

\echo Use "ALTER EXTENSION hydracache UPDATE TO '0.1.2'" to load this file. \quit

-- The DML triggers of a watched ordinary table (args: the quoted trigger arguments).
-- Statement level with transition tables (one call per statement, sees the row count), fired
-- by ordinary sessions; plus row level, fired only in replica mode (the logical-replication
-- apply worker fires row-level triggers only).
CREATE FUNCTION hydracache.create_dml_triggers(tbl pg_catalog.regclass, args pg_catalog.text)
    RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    trg pg_catalog.text;
BEGIN
    EXECUTE pg_catalog.format('CREATE TRIGGER hydracache_insert AFTER INSERT ON %s'
        ' REFERENCING NEW TABLE AS hydracache_new'
        ' FOR EACH STATEMENT EXECUTE FUNCTION hydracache.trigger(%s)', tbl, args);
    EXECUTE pg_catalog.format('CREATE TRIGGER hydracache_update AFTER UPDATE ON %s'
        ' REFERENCING OLD TABLE AS hydracache_old NEW TABLE AS hydracache_new'
        ' FOR EACH STATEMENT EXECUTE FUNCTION hydracache.trigger(%s)', tbl, args);
    EXECUTE pg_catalog.format('CREATE TRIGGER hydracache_delete AFTER DELETE ON %s'
        ' REFERENCING OLD TABLE AS hydracache_old'
        ' FOR EACH STATEMENT EXECUTE FUNCTION hydracache.trigger(%s)', tbl, args);
    FOREACH trg IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER %s ON %s'
            ' FOR EACH ROW EXECUTE FUNCTION hydracache.trigger(%s)',
            'hydracache_' || trg || '_replica', pg_catalog.upper(trg), tbl, args);
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE REPLICA TRIGGER %I',
            tbl, 'hydracache_' || trg || '_replica');
    END LOOP;
END
$$;
COMMENT ON FUNCTION hydracache.create_dml_triggers(pg_catalog.regclass, pg_catalog.text) IS
    'Internal to hydracache.watch() (runs with the caller''s rights, like watch())';

-- Only triggers whose arguments are well-formed: the CASE keeps the int4 cast from ever
-- seeing a bogus count, whatever order the planner evaluates the quals in.
CREATE OR REPLACE VIEW hydracache.watched AS
SELECT t.tgrelid::pg_catalog.regclass AS tbl,
       a.args[1] AS entity,
       a.args[4:3 + a.n] AS key_columns,
       a.args[2] AS collection,
       CASE WHEN pg_catalog.cardinality(a.args) > 3 + a.n
            THEN a.args[4 + a.n:] END AS columns
  FROM pg_catalog.pg_trigger t
 CROSS JOIN LATERAL (SELECT x.args,
                            CASE WHEN x.args[3] OPERATOR(pg_catalog.~) '^[0-9]{1,6}$'
                                 THEN x.args[3]::pg_catalog.int4 END AS n
                       FROM (SELECT hydracache.trigger_args(t.tgargs) AS args) x) a
 WHERE t.tgfoid = 'hydracache.trigger()'::pg_catalog.regprocedure
   AND t.tgname = 'hydracache_insert'
   AND t.tgparentid = 0
   AND a.n >= 1 AND 3 + a.n <= pg_catalog.cardinality(a.args);

CREATE FUNCTION hydracache.ddl_trigger() RETURNS pg_catalog.event_trigger
    AS 'MODULE_PATHNAME', 'hydracache_ddl_trigger' LANGUAGE C;
COMMENT ON FUNCTION hydracache.ddl_trigger() IS
    'Event trigger: DDL changing the rows of watched tables sends their table-wide tags';
-- ALTER TABLE at the end (its rows have changed, also for DETACH ... CONCURRENTLY); DROP TABLE
-- at the start, while a dropped partition's parent can still be looked up.
CREATE EVENT TRIGGER hydracache_ddl_end ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION hydracache.ddl_trigger();
CREATE EVENT TRIGGER hydracache_ddl_drop ON ddl_command_start
    WHEN TAG IN ('DROP TABLE') EXECUTE FUNCTION hydracache.ddl_trigger();

-- Watches tbl: every committed INSERT, UPDATE, DELETE and TRUNCATE sends its tags.
-- Watching a watched table again replaces its configuration (as unwatch() + watch()).
CREATE OR REPLACE FUNCTION hydracache.watch(tbl pg_catalog.regclass, entity pg_catalog.text,
                                 key_columns pg_catalog.text[] DEFAULT NULL,
                                 collection pg_catalog.text DEFAULT NULL,
                                 columns pg_catalog.text[] DEFAULT NULL)
    RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    keys pg_catalog.text[];
    col pg_catalog.text;
    args pg_catalog.text;
    part pg_catalog.regclass;
    trg pg_catalog.text;
BEGIN
    SELECT c.relname, c.relkind, c.relowner INTO rel
      FROM pg_catalog.pg_class c WHERE c.oid = watch.tbl;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', watch.tbl USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT pg_catalog.pg_has_role(current_user, rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', watch.tbl
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF watch.entity IS NULL OR watch.entity = '' THEN
        RAISE EXCEPTION 'entity must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    watch.collection := coalesce(watch.collection, rel.relname::pg_catalog.text);
    IF watch.collection = '' THEN
        RAISE EXCEPTION 'collection must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.octet_length(watch.entity) > 1024
       OR pg_catalog.octet_length(watch.collection) > 1024 THEN
        RAISE EXCEPTION 'entity and collection must be at most 1024 bytes'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF watch.key_columns IS NULL THEN
        SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY k.ord) INTO keys
          FROM pg_catalog.pg_index i
         CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY k(attnum, ord)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = watch.tbl AND i.indisprimary;
        IF keys IS NULL THEN
            RAISE EXCEPTION 'table % has no primary key', watch.tbl
                USING ERRCODE = 'invalid_table_definition',
                      HINT = 'Pass key_columns.';
        END IF;
    ELSE
        keys := watch.key_columns;
        IF pg_catalog.cardinality(keys) = 0 THEN
            RAISE EXCEPTION 'key_columns must not be empty' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF (SELECT pg_catalog.count(DISTINCT x) FROM pg_catalog.unnest(keys) x) <> pg_catalog.cardinality(keys) THEN
            RAISE EXCEPTION 'key_columns must not repeat a column' USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    IF watch.columns IS NOT NULL AND pg_catalog.cardinality(watch.columns) = 0 THEN
        RAISE EXCEPTION 'columns must not be empty (NULL watches every column)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH col IN ARRAY keys || coalesce(watch.columns, '{}') LOOP
        IF col IS NULL OR NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = watch.tbl AND a.attname = col
                         AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'column "%" of table % does not exist', col, watch.tbl
                USING ERRCODE = 'undefined_column';
        END IF;
    END LOOP;

    PERFORM hydracache.unwatch(watch.tbl);

    SELECT pg_catalog.string_agg(pg_catalog.quote_literal(x), ', ' ORDER BY o) INTO args
      FROM pg_catalog.unnest(ARRAY[watch.entity, watch.collection, pg_catalog.cardinality(keys)::pg_catalog.text]
                             || keys || coalesce(watch.columns, '{}')) WITH ORDINALITY u(x, o);

    IF rel.relkind = 'r' THEN
        PERFORM hydracache.create_dml_triggers(watch.tbl, args);
    ELSE
        -- Partitioned: statement triggers of the parent miss writes addressed to a partition,
        -- while row triggers are cloned onto every partition, present and future.
        FOREACH trg IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
            EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER %s ON %s'
                ' FOR EACH ROW EXECUTE FUNCTION hydracache.trigger(%s)',
                'hydracache_' || trg, pg_catalog.upper(trg), watch.tbl, args);
        END LOOP;
    END IF;
    -- TRUNCATE triggers are statement-level only and not cloned: put one on each partition
    -- that exists now (a partition attached later needs watch() again).
    FOR part IN SELECT p.relid FROM pg_catalog.pg_partition_tree(watch.tbl) p
                UNION SELECT watch.tbl LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER hydracache_truncate AFTER TRUNCATE ON %s'
            ' FOR EACH STATEMENT EXECUTE FUNCTION hydracache.trigger(%s)', part, args);
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER hydracache_truncate', part);
    END LOOP;
    -- Row triggers fire in the apply worker too, so ALWAYS makes them fire once in every
    -- mode; ordinary tables have their own replica-mode row triggers (create_dml_triggers).
    IF rel.relkind = 'p' THEN
        FOREACH trg IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
            EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', watch.tbl, 'hydracache_' || trg);
        END LOOP;
    END IF;
END
$$;
COMMENT ON FUNCTION hydracache.watch(pg_catalog.regclass, pg_catalog.text, pg_catalog.text[], pg_catalog.text, pg_catalog.text[]) IS
    'Send invalidations for every committed write to a table (owner or superuser only)';

-- Convert the ordinary tables watched before this update (keeping their exact arguments).
DO $$
DECLARE
    w record;
BEGIN
    FOR w IN SELECT t.tgrelid::pg_catalog.regclass AS tbl,
                    (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(x), ', ' ORDER BY o)
                       FROM pg_catalog.unnest(hydracache.trigger_args(t.tgargs))
                            WITH ORDINALITY u(x, o)) AS args
               FROM pg_catalog.pg_trigger t
               JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
              WHERE t.tgfoid = 'hydracache.trigger()'::pg_catalog.regprocedure
                AND t.tgname = 'hydracache_insert' AND c.relkind = 'r'
                AND t.tgparentid = 0           -- not the row triggers cloned onto partitions
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS hydracache_insert ON %s', w.tbl);
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS hydracache_update ON %s', w.tbl);
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS hydracache_delete ON %s', w.tbl);
        PERFORM hydracache.create_dml_triggers(w.tbl, w.args);
    END LOOP;
END
$$;
