-- hydracache: watch tables and turn their committed writes into LISTEN/NOTIFY
-- invalidations (docs/EXTENSION.md; payload format in docs/PROTOCOL.md).
--
-- This file holds the CURRENT definition of every object of the extension; the build copies
-- it to hydracache--<default_version>.sql, the install script of the current version.  A
-- change goes here AND into a new upgrade script hydracache--<old>--<new>.sql that makes only
-- that change (test/sql/install.sql checks that a fresh install and 0.1.0 upgraded through
-- every script have the same objects, definitions, comments and privileges).
-- Everything is schema-qualified and every function pins search_path, so nothing here
-- resolves a name through the caller's search_path.

\echo Use "CREATE EXTENSION hydracache" to load this file. \quit

GRANT USAGE ON SCHEMA hydracache TO PUBLIC;

-- The trigger function that watch() installs.  Its arguments (entity, collection, number of
-- key columns N, the N key column names, then the watched column names) are the watch
-- configuration: there is no separate configuration table that could drift from them.
CREATE FUNCTION hydracache.trigger() RETURNS pg_catalog.trigger
    AS 'MODULE_PATHNAME', 'hydracache_trigger' LANGUAGE C;

CREATE FUNCTION hydracache.entity_key(entity pg_catalog.text, VARIADIC key_values pg_catalog.text[])
    RETURNS pg_catalog.text
    AS 'MODULE_PATHNAME', 'hydracache_entity_key'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION hydracache.entity_key(pg_catalog.text, pg_catalog.text[]) IS
    'Entity key (and entity tag) of a row, escaped exactly as the trigger does';

CREATE FUNCTION hydracache.table_tag(entity pg_catalog.text) RETURNS pg_catalog.text
    AS 'MODULE_PATHNAME', 'hydracache_table_tag'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION hydracache.table_tag(pg_catalog.text) IS
    'Table-wide tag of an entity: reaches every cached row of its table';

CREATE FUNCTION hydracache.collection_tag(collection pg_catalog.text) RETURNS pg_catalog.text
    AS 'MODULE_PATHNAME', 'hydracache_collection_tag'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION hydracache.collection_tag(pg_catalog.text) IS
    'Collection tag: reaches cached queries over a whole table';

CREATE FUNCTION hydracache.invalidate(VARIADIC tags pg_catalog.text[]) RETURNS void
    AS 'MODULE_PATHNAME', 'hydracache_invalidate'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION hydracache.invalidate(pg_catalog.text[]) IS
    'Invalidate these tags when the current transaction commits';

CREATE FUNCTION hydracache.flush() RETURNS void
    AS 'MODULE_PATHNAME', 'hydracache_flush'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION hydracache.flush() IS
    'Empty every listening cache when the current transaction commits';
-- Anyone may already NOTIFY the channel, so this guards against accidents, not attacks.
REVOKE ALL ON FUNCTION hydracache.flush() FROM PUBLIC;

CREATE FUNCTION hydracache.trigger_args(pg_catalog.bytea) RETURNS pg_catalog.text[]
    AS 'MODULE_PATHNAME', 'hydracache_trigger_args'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION hydracache.trigger_args(pg_catalog.bytea) IS
    'pg_trigger.tgargs as a text array (used by the hydracache.watched view)';

CREATE FUNCTION hydracache.pending() RETURNS SETOF pg_catalog.text
    AS 'MODULE_PATHNAME', 'hydracache_pending'
    LANGUAGE C VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION hydracache.pending() IS
    'Payloads the current transaction would NOTIFY if it committed now';

-- One row per watched table, read back from the INSERT trigger that watch() created.  Only
-- triggers whose arguments are well-formed: the CASE keeps the int4 cast from ever seeing a
-- bogus count, whatever order the planner evaluates the quals in.
CREATE VIEW hydracache.watched AS
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
GRANT SELECT ON hydracache.watched TO PUBLIC;

-- Stops watching tbl; true if it was watched.  Sends the old table-wide and collection tags
-- at commit, since caches keep entries the triggers will no longer invalidate.
CREATE FUNCTION hydracache.unwatch(tbl pg_catalog.regclass) RETURNS pg_catalog.bool
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w record;
    t record;
BEGIN
    IF NOT pg_catalog.pg_has_role(current_user,
            (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = unwatch.tbl), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', unwatch.tbl
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO w FROM hydracache.watched v WHERE v.tbl = unwatch.tbl;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- Dropping a partitioned table's trigger drops its partitions' clones too.
    FOR t IN SELECT tg.tgname, tg.tgrelid::pg_catalog.regclass AS rel
               FROM pg_catalog.pg_trigger tg
              WHERE tg.tgfoid = 'hydracache.trigger()'::pg_catalog.regprocedure
                AND tg.tgparentid = 0
                AND tg.tgrelid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree(unwatch.tbl) p
                                   UNION SELECT unwatch.tbl)
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
    END LOOP;
    PERFORM hydracache.invalidate(hydracache.table_tag(w.entity),
                                  hydracache.collection_tag(w.collection));
    RETURN true;
END
$$;
COMMENT ON FUNCTION hydracache.unwatch(pg_catalog.regclass) IS
    'Stop sending invalidations for a table (owner or superuser only)';

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

-- Watches tbl: every committed INSERT, UPDATE, DELETE and TRUNCATE sends its tags.
-- Watching a watched table again replaces its configuration (as unwatch() + watch()).
CREATE FUNCTION hydracache.watch(tbl pg_catalog.regclass, entity pg_catalog.text,
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
COMMENT ON FUNCTION hydracache.watch(pg_catalog.regclass, pg_catalog.text, pg_catalog.text[], pg_catalog.text, pg_catalog.text[]) IS
    'Send invalidations for every committed write to a table (owner or superuser only)';
