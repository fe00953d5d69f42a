-- hydracache 0.1.2 -> 0.1.3:
--  * create_dml_triggers(regclass, text) took its trigger arguments as ready-made SQL text and
--    pasted them into CREATE TRIGGER.  It is replaced by create_triggers(regclass, text[]),
--    which quotes each argument itself and creates every trigger watch() installs (DML
--    triggers of an ordinary or partitioned table, TRUNCATE triggers on each partition);
--    watch() now only validates and calls it.
--  * Renaming a key or watched column of a watched table no longer breaks writes: the DDL
--    event trigger re-runs watch() with the new name (C code, nothing to convert here).
--  * Key text is rendered with search_path and lc_monetary pinned too (C code).

\echo Use "ALTER EXTENSION hydracache UPDATE TO '0.1.3'" to load this file. \quit

DROP FUNCTION hydracache.create_dml_triggers(pg_catalog.regclass, pg_catalog.text);

-- Creates the triggers that send tbl's invalidations, with these trigger arguments (entity,
-- collection, N, N key columns, watched columns: see hydracache.trigger()).  Each argument is
-- quoted here, so the array can hold any text.
-- Ordinary tables: statement level with transition tables (one call per statement, sees the
-- row count), fired by ordinary sessions; plus row level, fired only in replica mode (the
-- logical-replication apply worker fires row-level triggers only).
-- Partitioned tables: statement triggers of the parent miss writes addressed to a partition,
-- while row triggers are cloned onto every partition, present and future; ENABLE ALWAYS
-- makes them fire once in every mode.
-- TRUNCATE triggers are statement-level only and not cloned: one on each partition that
-- exists now (a partition attached later needs watch() again), ENABLE ALWAYS (the apply
-- worker fires TRUNCATE triggers).
CREATE FUNCTION hydracache.create_triggers(tbl pg_catalog.regclass, args pg_catalog.text[])
    RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    arglist pg_catalog.text;
    trg pg_catalog.text;
    part pg_catalog.regclass;
BEGIN
    IF args IS NULL OR pg_catalog.array_position(args, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'trigger arguments must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.quote_literal(x), ', ' ORDER BY o) INTO arglist
      FROM pg_catalog.unnest(args) WITH ORDINALITY u(x, o);
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = tbl) = 'p' THEN
        FOREACH trg IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
            EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER %s ON %s'
                ' FOR EACH ROW EXECUTE FUNCTION hydracache.trigger(%s)',
                'hydracache_' || trg, pg_catalog.upper(trg), tbl, arglist);
            EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I',
                tbl, 'hydracache_' || trg);
        END LOOP;
    ELSE
        EXECUTE pg_catalog.format('CREATE TRIGGER hydracache_insert AFTER INSERT ON %s'
            ' REFERENCING NEW TABLE AS hydracache_new'
            ' FOR EACH STATEMENT EXECUTE FUNCTION hydracache.trigger(%s)', tbl, arglist);
        EXECUTE pg_catalog.format('CREATE TRIGGER hydracache_update AFTER UPDATE ON %s'
            ' REFERENCING OLD TABLE AS hydracache_old NEW TABLE AS hydracache_new'
            ' FOR EACH STATEMENT EXECUTE FUNCTION hydracache.trigger(%s)', tbl, arglist);
        EXECUTE pg_catalog.format('CREATE TRIGGER hydracache_delete AFTER DELETE ON %s'
            ' REFERENCING OLD TABLE AS hydracache_old'
            ' FOR EACH STATEMENT EXECUTE FUNCTION hydracache.trigger(%s)', tbl, arglist);
        FOREACH trg IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
            EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER %s ON %s'
                ' FOR EACH ROW EXECUTE FUNCTION hydracache.trigger(%s)',
                'hydracache_' || trg || '_replica', pg_catalog.upper(trg), tbl, arglist);
            EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE REPLICA TRIGGER %I',
                tbl, 'hydracache_' || trg || '_replica');
        END LOOP;
    END IF;
    FOR part IN SELECT p.relid FROM pg_catalog.pg_partition_tree(tbl) p UNION SELECT tbl LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER hydracache_truncate AFTER TRUNCATE ON %s'
            ' FOR EACH STATEMENT EXECUTE FUNCTION hydracache.trigger(%s)', part, arglist);
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER hydracache_truncate', part);
    END LOOP;
END
$$;
COMMENT ON FUNCTION hydracache.create_triggers(pg_catalog.regclass, pg_catalog.text[]) IS
    'Internal to hydracache.watch() (runs with the caller''s rights, like watch())';

-- watch() as in 0.1.2 up to the trigger creation, which create_triggers() now does.
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
    PERFORM hydracache.create_triggers(watch.tbl,
        ARRAY[watch.entity, watch.collection, pg_catalog.cardinality(keys)::pg_catalog.text]
        || keys || coalesce(watch.columns, '{}'));
END
$$;
