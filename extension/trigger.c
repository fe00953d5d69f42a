/*
 * trigger.c: hydracache.trigger(), the C trigger that hydracache.watch() installs.
 *
 * Trigger arguments (set by watch(), tcn-style, so no catalog lookup per statement):
 *   entity, collection, number of key columns N, N key column names, watched column names
 *   (none = every column).  Column names rather than attnums, because attnums change across
 *   dump/restore and differ between partitions.  The DDL event trigger follows a column
 *   rename (ddl.c); a named column that is still missing (dropped, or renamed where event
 *   triggers do not fire) turns every write into the table-wide tag, with a WARNING: never
 *   stale, and no migration outage.
 *
 * On ordinary tables the triggers are statement-level AFTER triggers with transition tables,
 * so one call sees the whole statement and can count it against hydracache.bulk_threshold;
 * row-level twins (ENABLE REPLICA) take over under session_replication_role = replica, since
 * the logical-replication apply worker fires row-level triggers only.
 * On partitioned tables they are row-level (PostgreSQL clones row triggers onto every
 * partition, so writes addressed to a partition are seen too).  Either way the tags go to the
 * per-transaction set of pending.c; nothing is sent before commit.
 */
#include "hydracache.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "catalog/pg_type.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(hydracache_trigger);

/* Per trigger and query, cached in fn_extra. */
typedef struct HcTrigConfig
{
	Oid			tgoid;
	Oid			count_rel;		/* table whose keys xact_bulk_threshold counts: see origin_table */
	char	   *entity_seg;		/* esc(entity), the prefix of every entity key */
	char	   *table_tag;		/* wire arg of esc(entity) ":*" */
	int			table_tag_len;
	char	   *collection_tag; /* wire arg of esc(collection) */
	int			collection_tag_len;
	int			nkeys;
	AttrNumber *keys;
	FmgrInfo   *key_out;
	bool		fixed_output;	/* a key type's text depends on session settings */
	bool		table_wide_only;	/* a named column is missing: send the table-wide tag */
	int			nwatch;			/* watched columns, key columns included */
	AttrNumber *watch;
	int16	   *watch_len;
	bool	   *watch_byval;
} HcTrigConfig;

/* The column's number, or InvalidAttrNumber (after a WARNING) if it no longer exists. */
static AttrNumber
column_attnum(Relation rel, const char *name)
{
	int			attnum = SPI_fnumber(RelationGetDescr(rel), name);

	if (attnum <= 0)
	{
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of watched table \"%s\" does not exist",
						name, RelationGetRelationName(rel)),
				 errdetail("Writes to the table invalidate all of its cached rows."),
				 errhint("Run hydracache.watch() again with the current column names.")));
		return InvalidAttrNumber;
	}
	return (AttrNumber) attnum;
}

static void
add_watch_column(HcTrigConfig *cfg, TupleDesc desc, AttrNumber attnum)
{
	Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
	int			i;

	for (i = 0; i < cfg->nwatch; i++)
		if (cfg->watch[i] == attnum)
			return;
	cfg->watch[cfg->nwatch] = attnum;
	cfg->watch_len[cfg->nwatch] = att->attlen;
	cfg->watch_byval[cfg->nwatch] = att->attbyval;
	cfg->nwatch++;
}

/* Types whose text output no session setting (DateStyle, TimeZone, ...) changes. */
static bool
output_is_stable(Oid type)
{
	type = getBaseType(type);
	switch (type)
	{
		case BOOLOID:
		case CHAROID:
		case NAMEOID:
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case NUMERICOID:
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case UUIDOID:
			return true;
		default:
			return type_is_enum(type);
	}
}

/*
 * Pins the settings that change the text of key values (as postgres_fdw does for the values
 * it ships, and ri_triggers/ruleutils do with search_path), so a key does not depend on the
 * writer's session: dates and timestamps are ISO, timestamptz in UTC, floats shortest-exact,
 * bytea hex, reg* names qualified unless in pg_catalog (search_path), money in the C
 * locale's format (lc_monetary).  Returns the GUC nest level to pop.
 */
static int
pin_output_settings(void)
{
	int			level = NewGUCNestLevel();

	set_config_option("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION,
					  GUC_ACTION_SAVE, true, 0, false);
	set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION,
					  GUC_ACTION_SAVE, true, 0, false);
	set_config_option("timezone", "UTC", PGC_USERSET, PGC_S_SESSION,
					  GUC_ACTION_SAVE, true, 0, false);
	set_config_option("extra_float_digits", "1", PGC_USERSET, PGC_S_SESSION,
					  GUC_ACTION_SAVE, true, 0, false);
	set_config_option("bytea_output", "hex", PGC_USERSET, PGC_S_SESSION,
					  GUC_ACTION_SAVE, true, 0, false);
	set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION,
					  GUC_ACTION_SAVE, true, 0, false);
	set_config_option("lc_monetary", "C", PGC_USERSET, PGC_S_SESSION,
					  GUC_ACTION_SAVE, true, 0, false);
	return level;
}

static char *
wire_arg(const char *s, int *len)
{
	StringInfoData buf;

	initStringInfo(&buf);
	hc_append_wire(&buf, s, (int) strlen(s));
	if (buf.len == 0 || buf.len > HC_MAX_ARG)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hydracache trigger argument is empty or too long")));
	*len = buf.len;
	return buf.data;
}

/*
 * The table that watch() put the trigger on: the partition's own table for a trigger of its
 * own, else the table at the top of the clone chain (the watched partitioned table), so that
 * xact_bulk_threshold counts the keys of all its partitions together.
 */
static Oid
origin_table(Trigger *tg, Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	Oid			tgoid = tg->tgoid;
	Relation	tgrel;

	if (!tg->tgisclone)
		return relid;
	tgrel = table_open(TriggerRelationId, AccessShareLock);
	while (OidIsValid(tgoid))
	{
		ScanKeyData skey;
		SysScanDesc scan;
		HeapTuple	tup;

		ScanKeyInit(&skey, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(tgoid));
		scan = systable_beginscan(tgrel, TriggerOidIndexId, true, NULL, 1, &skey);
		tup = systable_getnext(scan);
		tgoid = InvalidOid;
		if (HeapTupleIsValid(tup))
		{
			relid = ((Form_pg_trigger) GETSTRUCT(tup))->tgrelid;
			tgoid = ((Form_pg_trigger) GETSTRUCT(tup))->tgparentid;
		}
		systable_endscan(scan);
	}
	table_close(tgrel, AccessShareLock);
	return relid;
}

/*
 * The number of key columns (third argument), or -1 unless it is a plain decimal number from 1
 * to the number of arguments after it.  Compared without arithmetic that could overflow, since
 * anyone who owns a table can hand-make a trigger with any arguments.
 */
static int
parse_nkeys(Trigger *tg)
{
	const char *s;
	char	   *end;
	long		n;

	if (tg->tgnargs < 4)
		return -1;
	s = tg->tgargs[2];
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > tg->tgnargs - 3)
		return -1;
	return (int) n;
}

static HcTrigConfig *
load_config(FunctionCallInfo fcinfo, TriggerData *td)
{
	HcTrigConfig *cfg = (HcTrigConfig *) fcinfo->flinfo->fn_extra;
	Trigger    *tg = td->tg_trigger;
	Relation	rel = td->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old;
	StringInfoData buf;
	int			nkeys;
	int			i;

	if (cfg != NULL && cfg->tgoid == tg->tgoid)
		return cfg;

	if ((nkeys = parse_nkeys(tg)) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hydracache.trigger() has bad arguments on table \"%s\"",
						RelationGetRelationName(rel)),
				 errhint("Install it with hydracache.watch().")));

	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	cfg = palloc0(sizeof(HcTrigConfig));
	cfg->tgoid = tg->tgoid;
	cfg->count_rel = origin_table(tg, rel);

	initStringInfo(&buf);
	hc_append_segment(&buf, tg->tgargs[0]);
	cfg->entity_seg = pstrdup(buf.data);
	appendStringInfoString(&buf, ":*");
	cfg->table_tag = wire_arg(buf.data, &cfg->table_tag_len);
	resetStringInfo(&buf);
	hc_append_segment(&buf, tg->tgargs[1]);
	cfg->collection_tag = wire_arg(buf.data, &cfg->collection_tag_len);

	cfg->nkeys = nkeys;
	cfg->keys = palloc(nkeys * sizeof(AttrNumber));
	cfg->key_out = palloc(nkeys * sizeof(FmgrInfo));
	cfg->watch = palloc(desc->natts * sizeof(AttrNumber));
	cfg->watch_len = palloc(desc->natts * sizeof(int16));
	cfg->watch_byval = palloc(desc->natts * sizeof(bool));
	for (i = 0; i < nkeys; i++)
	{
		Oid			outfunc;
		bool		isvarlena;

		cfg->keys[i] = column_attnum(rel, tg->tgargs[3 + i]);
		if (cfg->keys[i] == InvalidAttrNumber)
		{
			cfg->table_wide_only = true;
			break;
		}
		getTypeOutputInfo(TupleDescAttr(desc, cfg->keys[i] - 1)->atttypid, &outfunc, &isvarlena);
		if (!output_is_stable(TupleDescAttr(desc, cfg->keys[i] - 1)->atttypid))
			cfg->fixed_output = true;
		fmgr_info_cxt(outfunc, &cfg->key_out[i], fcinfo->flinfo->fn_mcxt);
		add_watch_column(cfg, desc, cfg->keys[i]);
	}
	if (cfg->table_wide_only)
		;
	else if (3 + nkeys == tg->tgnargs)
	{
		for (i = 1; i <= desc->natts; i++)
			if (!TupleDescAttr(desc, i - 1)->attisdropped)
				add_watch_column(cfg, desc, (AttrNumber) i);
	}
	else
	{
		for (i = 3 + nkeys; i < tg->tgnargs && !cfg->table_wide_only; i++)
		{
			AttrNumber	attnum = column_attnum(rel, tg->tgargs[i]);

			if (attnum == InvalidAttrNumber)
				cfg->table_wide_only = true;
			else
				add_watch_column(cfg, desc, attnum);
		}
	}
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = cfg;
	return cfg;
}

/*
 * Adds the table-wide and collection tags of a watch configuration (entity and collection as
 * passed to watch()); for callers without a trigger configuration (the DDL event trigger).
 */
void
hc_add_table_tags(const char *entity, const char *collection)
{
	StringInfoData buf;
	char	   *arg;
	int			len;

	initStringInfo(&buf);
	hc_append_segment(&buf, entity);
	appendStringInfoString(&buf, ":*");
	arg = wire_arg(buf.data, &len);
	hc_pending_add(arg, len, InvalidOid);
	resetStringInfo(&buf);
	hc_append_segment(&buf, collection);
	arg = wire_arg(buf.data, &len);
	hc_pending_add(arg, len, InvalidOid);
}

static void
add_table_wide(HcTrigConfig *cfg)
{
	hc_pending_add(cfg->table_tag, cfg->table_tag_len, InvalidOid);
	hc_pending_add(cfg->collection_tag, cfg->collection_tag_len, InvalidOid);
}

/*
 * Adds the entity key of the row in slot.  A key whose arg cannot fit in a message on its own
 * becomes the table-wide tag (never truncated); so do the keys beyond
 * hydracache.xact_bulk_threshold.  Returns false once the table-wide tag is pending, when
 * further keys of the table are pointless.
 */
static bool
add_row_key(HcTrigConfig *cfg, TupleTableSlot *slot, StringInfo key, StringInfo arg)
{
	int			i;

	resetStringInfo(key);
	appendStringInfoString(key, cfg->entity_seg);
	for (i = 0; i < cfg->nkeys; i++)
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, cfg->keys[i], &isnull);

		appendStringInfoChar(key, ':');
		hc_append_segment(key, isnull ? NULL : OutputFunctionCall(&cfg->key_out[i], d));
	}
	resetStringInfo(arg);
	hc_append_wire(arg, key->data, key->len);
	if (arg->len > HC_MAX_ARG ||
		(hc_pending_add(arg->data, arg->len, cfg->count_rel) && hc_xact_bulk_threshold > 0 &&
		 hc_pending_rel_count(cfg->count_rel) > hc_xact_bulk_threshold))
	{
		add_table_wide(cfg);
		return false;
	}
	return true;
}

/* Did the UPDATE change a watched column?  Binary image comparison (see EXTENSION.md). */
static bool
row_changed(HcTrigConfig *cfg, TupleTableSlot *oldslot, TupleTableSlot *newslot)
{
	int			i;

	for (i = 0; i < cfg->nwatch; i++)
	{
		bool		oldnull,
					newnull;
		Datum		o = slot_getattr(oldslot, cfg->watch[i], &oldnull);
		Datum		n = slot_getattr(newslot, cfg->watch[i], &newnull);

		if (oldnull != newnull)
			return true;
		if (!oldnull && !datum_image_eq(o, n, cfg->watch_byval[i], cfg->watch_len[i]))
			return true;
	}
	return false;
}

/*
 * Adds the keys of one row event; slots are NULL where the event has no such row.  Returns
 * false once the table-wide tag is pending.
 */
static bool
collect_row(HcTrigConfig *cfg, TupleTableSlot *oldslot, TupleTableSlot *newslot,
			bool *any, StringInfo key, StringInfo arg)
{
	if (oldslot && newslot && !row_changed(cfg, oldslot, newslot))
		return true;
	*any = true;
	if (oldslot && !add_row_key(cfg, oldslot, key, arg))
		return false;
	if (newslot && !add_row_key(cfg, newslot, key, arg))
		return false;
	return true;
}

static TupleTableSlot *
open_transition(Tuplestorestate *ts, TupleDesc desc)
{
	int			ptr;

	if (ts == NULL)
		return NULL;
	/* A read pointer of our own: other AFTER triggers read the same tuplestore. */
	ptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(ts, ptr);
	tuplestore_rescan(ts);
	return MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
}

static bool
next_transition(Tuplestorestate *ts, TupleTableSlot *slot)
{
	return slot != NULL && tuplestore_gettupleslot(ts, true, false, slot);
}

static void
collect_statement(HcTrigConfig *cfg, TriggerData *td)
{
	Relation	rel = td->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
	Tuplestorestate *olds = TRIGGER_FIRED_BY_INSERT(td->tg_event) ? NULL : td->tg_oldtable;
	Tuplestorestate *news = TRIGGER_FIRED_BY_DELETE(td->tg_event) ? NULL : td->tg_newtable;
	int64		nrows;
	bool		any = false;
	bool		bulk;
	TupleTableSlot *oldslot,
			   *newslot;
	MemoryContext rowcxt,
				old;
	StringInfoData key,
				arg;

	if ((olds == NULL && !TRIGGER_FIRED_BY_INSERT(td->tg_event)) ||
		(news == NULL && !TRIGGER_FIRED_BY_DELETE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hydracache.trigger() needs transition tables in statement-level triggers"),
				 errhint("Install it with hydracache.watch().")));

	nrows = tuplestore_tuple_count(olds ? olds : news);
	if (nrows == 0)
		return;
	bulk = hc_bulk_threshold > 0 && nrows > hc_bulk_threshold;
	if (hc_pending_contains(cfg->table_tag) && !is_update)
	{
		/* TRUNCATE or a bulk statement of this transaction already covers every row. */
		hc_pending_add(cfg->collection_tag, cfg->collection_tag_len, InvalidOid);
		return;
	}
	if (bulk && !is_update)
	{
		add_table_wide(cfg);
		return;
	}

	oldslot = open_transition(olds, desc);
	newslot = open_transition(news, desc);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "hydracache row", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(rowcxt);
	initStringInfo(&key);
	initStringInfo(&arg);
	MemoryContextSwitchTo(old);

	/* In an UPDATE the n-th old row and the n-th new row are the same row (trigger.c). */
	while (next_transition(olds, oldslot) | next_transition(news, newslot))
	{
		bool		more;

		if (bulk || hc_pending_contains(cfg->table_tag))
		{
			/* An UPDATE changing nothing watched sends nothing, even in bulk. */
			if (!is_update || row_changed(cfg, oldslot, newslot))
			{
				add_table_wide(cfg);
				break;
			}
			continue;
		}
		old = MemoryContextSwitchTo(rowcxt);
		more = collect_row(cfg, oldslot, newslot, &any, &key, &arg);
		MemoryContextSwitchTo(old);
		if (!more)
			break;
		/* Drop the row's output strings, keep the two buffers. */
		if (MemoryContextMemAllocated(rowcxt, false) > 64 * 1024)
		{
			MemoryContextReset(rowcxt);
			old = MemoryContextSwitchTo(rowcxt);
			initStringInfo(&key);
			initStringInfo(&arg);
			MemoryContextSwitchTo(old);
		}
	}
	if (any)
		hc_pending_add(cfg->collection_tag, cfg->collection_tag_len, InvalidOid);

	if (oldslot)
		ExecDropSingleTupleTableSlot(oldslot);
	if (newslot)
		ExecDropSingleTupleTableSlot(newslot);
	MemoryContextDelete(rowcxt);
}

static void
collect_row_event(HcTrigConfig *cfg, TriggerData *td)
{
	TupleTableSlot *oldslot = NULL,
			   *newslot = NULL;
	bool		any = false;
	StringInfoData key,
				arg;

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		newslot = td->tg_trigslot;
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		oldslot = td->tg_trigslot;
	else
	{
		oldslot = td->tg_trigslot;
		newslot = td->tg_newslot;
	}
	if (hc_pending_contains(cfg->table_tag))
	{
		if (!oldslot || !newslot || row_changed(cfg, oldslot, newslot))
			hc_pending_add(cfg->collection_tag, cfg->collection_tag_len, InvalidOid);
		return;
	}
	initStringInfo(&key);
	initStringInfo(&arg);
	collect_row(cfg, oldslot, newslot, &any, &key, &arg);
	if (any)
		hc_pending_add(cfg->collection_tag, cfg->collection_tag_len, InvalidOid);
}

Datum
hydracache_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td;
	HcTrigConfig *cfg;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hydracache.trigger() was not called by the trigger manager")));
	td = (TriggerData *) fcinfo->context;
	if (!TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hydracache.trigger() must be fired AFTER the statement or row")));
	if (!hc_enabled)
		return PointerGetDatum(NULL);

	cfg = load_config(fcinfo, td);
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) || cfg->table_wide_only)
		add_table_wide(cfg);
	else
	{
		int			guc_level = cfg->fixed_output ? pin_output_settings() : 0;

		if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
			collect_row_event(cfg, td);
		else
			collect_statement(cfg, td);
		if (cfg->fixed_output)
			AtEOXact_GUC(true, guc_level);
	}
	return PointerGetDatum(NULL);
}
