/*
 * escape.c: the two escaping layers of docs/PROTOCOL.md.  A key segment escapes `\`, `:` and
 * `*` with a backslash (so a table-wide tag `entity:*` can never equal an entity key); a wire
 * arg percent-escapes `%`, space and control bytes (so args split on single spaces).
 */
#include "hydracache.h"

void
hc_append_segment(StringInfo buf, const char *seg)
{
	const char *p;

	if (seg == NULL)
	{
		appendBinaryStringInfo(buf, "\\N", 2);
		return;
	}
	for (p = seg; *p; p++)
	{
		if (*p == '\\' || *p == ':' || *p == '*')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *p);
	}
}

void
hc_append_wire(StringInfo buf, const char *s, int len)
{
	static const char hex[] = "0123456789ABCDEF";
	int			i;

	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '%' || c == ' ' || c < 0x20 || c == 0x7F)
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hex[c >> 4]);
			appendStringInfoChar(buf, hex[c & 0xF]);
		}
		else
			appendStringInfoChar(buf, (char) c);
	}
}
