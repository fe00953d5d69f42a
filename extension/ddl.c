/*
 * ddl.c: hydracache.ddl_trigger(), the event trigger behind the extension's event triggers
 * hydracache_ddl_end (ddl_command_end, ALTER TABLE) and hydracache_ddl_drop
 * (ddl_command_start, DROP TABLE).
 *
 * Some DDL changes the rows a query of a watched table returns without firing any row or
 * statement trigger: ATTACH/DETACH PARTITION, DROP TABLE of a partition, ADD/DROP COLUMN,
 * ALTER COLUMN ... TYPE (values are rewritten), RENAME COLUMN.  For those it adds the
 * table-wide and collection tags of every watched table affected: the altered (or dropped)
 * table and each partitioned table above it.
 *
 * It works from the parse tree rather than pg_event_trigger_ddl_commands(): that function
 * does not report drops, and by the time sql_drop fires a dropped partition's pg_inherits row
 * is gone, so DROP TABLE is handled at ddl_command_start, when the parent is still known.
 * Name lookups take no lock (the command locks the table itself) and never fail: an unknown
 * or unrelated relation is skipped, so unrelated DDL never errors here.
 *
 * RENAME COLUMN of a key or watched column is also followed: the trigger arguments name the
 * columns, so watch() runs again for each watched table the rename reached (the table and
 * its inheritance children), with the new name in place of the old.  Without that, every
 * write to the table would fail until someone ran watch() by hand.
 */
#include "hydracache.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(hydracache_ddl_trigger);

/*
 * The trigger arguments of relid's watch() configuration (tgargs of its hydracache_insert
 * trigger of ours that is no clone: the watched view's test), as a palloc'd copy of the
 * NUL-separated bytes; NULL if relid is not watched.
 */
static bytea *
watch_args(Oid relid, Oid trigger_fn, int *nargs)
{
	Relation	tgrel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyData skey[2];
	SysScanDesc scan;
	HeapTuple	tup;
	bytea	   *args = NULL;

	ScanKeyInit(&skey[0], Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	ScanKeyInit(&skey[1], Anum_pg_trigger_tgname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("hydracache_insert"));
	scan = systable_beginscan(tgrel, TriggerRelidNameIndexId, true, NULL, 2, skey);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_trigger tg = (Form_pg_trigger) GETSTRUCT(tup);
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_trigger_tgargs, RelationGetDescr(tgrel), &isnull);

		if (tg->tgfoid == trigger_fn && !OidIsValid(tg->tgparentid) && !isnull)
		{
			args = DatumGetByteaPCopy(d);
			*nargs = tg->tgnargs;
		}
	}
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);
	return args;
}

/* Adds the tags of relid if watch() put its triggers on it. */
static void
add_if_watched(Oid relid, Oid trigger_fn)
{
	int			nargs = 0;
	bytea	   *raw = watch_args(relid, trigger_fn, &nargs);
	const char *p,
			   *end,
			   *entity_end,
			   *coll_end;

	if (raw == NULL || nargs < 2)
		return;
	p = VARDATA(raw);
	end = p + VARSIZE(raw) - VARHDRSZ;
	entity_end = memchr(p, '\0', end - p);
	coll_end = entity_end ? memchr(entity_end + 1, '\0', end - entity_end - 1) : NULL;
	/* Arguments are as watch() wrote them: non-empty, at most HC_MAX_NAME bytes. */
	if (coll_end && entity_end > p && coll_end > entity_end + 1 &&
		entity_end - p <= HC_MAX_NAME && coll_end - entity_end - 1 <= HC_MAX_NAME)
		hc_add_table_tags(p, entity_end + 1);
}

/* Does relid's watch() configuration name this column (as a key or watched column)? */
static bool
watch_names_column(Oid relid, Oid trigger_fn, const char *column)
{
	int			nargs = 0;
	bytea	   *raw = watch_args(relid, trigger_fn, &nargs);
	const char *p,
			   *end;
	int			i;

	if (raw == NULL)
		return false;
	p = VARDATA(raw);
	end = p + VARSIZE(raw) - VARHDRSZ;
	/* Skip entity, collection and the key count; then every argument is a column name. */
	for (i = 0; i < nargs && p < end; i++)
	{
		const char *arg_end = memchr(p, '\0', end - p);

		if (arg_end == NULL)
			break;
		if (i >= 3 && strcmp(p, column) == 0)
			return true;
		p = arg_end + 1;
	}
	return false;
}

/* The table itself and every partitioned table above it. */
static void
add_table_and_ancestors(RangeVar *rv, Oid trigger_fn)
{
	Oid			relid = RangeVarGetRelid(rv, NoLock, true);
	ListCell   *lc;

	if (!OidIsValid(relid) || get_rel_relkind(relid) == '\0')
		return;
	add_if_watched(relid, trigger_fn);
	if (get_rel_relispartition(relid))
		foreach(lc, get_partition_ancestors(relid))
			add_if_watched(lfirst_oid(lc), trigger_fn);
}

/* Does this ALTER TABLE change the rows (or their shape) that queries of the table see? */
static bool
alter_changes_rows(AlterTableStmt *stmt)
{
	ListCell   *lc;

	if (stmt->objtype != OBJECT_TABLE)
		return false;
	foreach(lc, stmt->cmds)
	{
		switch (((AlterTableCmd *) lfirst(lc))->subtype)
		{
			case AT_AddColumn:
			case AT_AddColumnRecurse:
			case AT_DropColumn:
			case AT_DropColumnRecurse:
			case AT_AlterColumnType:
			case AT_AttachPartition:
			case AT_DetachPartition:
			case AT_DetachPartitionFinalize:
				return true;
			default:
				break;
		}
	}
	return false;
}

/*
 * After RENAME COLUMN: runs watch() again, with the new name, for every watched table the
 * rename reached whose configuration names the old column.  Runs as the user who renamed
 * (the owner: watch() checks it again) with search_path pinned for the query.  Tables that
 * are not watched, or whose configuration does not name the column, cost a catalog lookup.
 */
static void
follow_column_rename(RenameStmt *stmt, Oid trigger_fn)
{
	Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	Oid			argtypes[3] = {REGCLASSOID, TEXTOID, TEXTOID};
	Datum		values[3];
	List	   *rels = NIL;
	ListCell   *lc;
	int			guc_level;

	if (!OidIsValid(relid) || stmt->subname == NULL || stmt->newname == NULL)
		return;
	/* The rename has locked the table and every child it recursed into. */
	foreach(lc, find_all_inheritors(relid, NoLock, NULL))
		if (watch_names_column(lfirst_oid(lc), trigger_fn, stmt->subname))
			rels = lappend_oid(rels, lfirst_oid(lc));
	if (rels == NIL)
		return;
	values[1] = CStringGetTextDatum(stmt->subname);
	values[2] = CStringGetTextDatum(stmt->newname);

	guc_level = NewGUCNestLevel();
	set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
					  GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	foreach(lc, rels)
	{
		values[0] = ObjectIdGetDatum(lfirst_oid(lc));
		if (SPI_execute_with_args(
				"SELECT hydracache.watch(w.tbl, w.entity, array_replace(w.key_columns, $2, $3),"
				"                        w.collection, array_replace(w.columns, $2, $3))"
				"  FROM hydracache.watched w"
				" WHERE w.tbl = $1 AND ($2 = ANY (w.key_columns) OR $2 = ANY (w.columns))",
				3, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "hydracache: re-watching %u after a column rename failed",
				 lfirst_oid(lc));
	}
	SPI_finish();
	AtEOXact_GUC(true, guc_level);
}

/* The OID of hydracache.trigger(), or InvalidOid (extension being dropped, say). */
static Oid
trigger_function(void)
{
	Oid			nsp = get_namespace_oid("hydracache", true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid, CStringGetDatum("trigger"),
						   PointerGetDatum(buildoidvector(NULL, 0)), ObjectIdGetDatum(nsp));
}

Datum
hydracache_ddl_trigger(PG_FUNCTION_ARGS)
{
	EventTriggerData *ev;
	Node	   *tree;
	Oid			trigger_fn;
	ListCell   *lc;
	bool		is_column_rename;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hydracache.ddl_trigger() was not called by the event trigger manager")));
	ev = (EventTriggerData *) fcinfo->context;
	tree = ev->parsetree;
	if (tree == NULL)
		PG_RETURN_NULL();
	is_column_rename = IsA(tree, RenameStmt) &&
		((RenameStmt *) tree)->renameType == OBJECT_COLUMN &&
		((RenameStmt *) tree)->relationType == OBJECT_TABLE;

	/* Cheap tests first: most DDL is not one of these. */
	if (!(IsA(tree, AlterTableStmt) && alter_changes_rows((AlterTableStmt *) tree)) &&
		!is_column_rename &&
		!(IsA(tree, DropStmt) && ((DropStmt *) tree)->removeType == OBJECT_TABLE))
		PG_RETURN_NULL();
	trigger_fn = trigger_function();
	if (!OidIsValid(trigger_fn))
		PG_RETURN_NULL();

	/* Even with hydracache.enabled off: the triggers must keep working once it is on again. */
	if (is_column_rename && strcmp(ev->event, "ddl_command_end") == 0)
		follow_column_rename((RenameStmt *) tree, trigger_fn);
	if (!hc_enabled)
		PG_RETURN_NULL();

	if (IsA(tree, AlterTableStmt))
		add_table_and_ancestors(((AlterTableStmt *) tree)->relation, trigger_fn);
	else if (IsA(tree, RenameStmt))
		add_table_and_ancestors(((RenameStmt *) tree)->relation, trigger_fn);
	else
		foreach(lc, ((DropStmt *) tree)->objects)
			add_table_and_ancestors(makeRangeVarFromNameList((List *) lfirst(lc)), trigger_fn);
	PG_RETURN_NULL();
}
