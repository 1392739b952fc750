using System.Text;

namespace ParetoPrune.Optimizer.Reporting;

/// <summary>
/// RFC 4180 CSV: CRLF between records, fields quoted when they hold a comma, quote, CR or LF, quotes doubled.
/// Formatting numbers (invariant culture) is the caller's job.
/// </summary>
public static class Csv
{
    /// <summary>Writes the header and the rows atomically, UTF-8 without BOM. Every row must have one field per header.</summary>
    public static void Write(string path, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        if (headers.Count == 0) throw new ArgumentException("a CSV file needs at least one column", nameof(headers));
        var text = new StringBuilder();
        AppendRecord(text, headers);
        int index = 0;
        foreach (var row in rows)
        {
            index++;
            if (row.Count != headers.Count)
                throw new ArgumentException($"row {index} has {row.Count} fields for {headers.Count} columns", nameof(rows));
            AppendRecord(text, row);
        }
        AtomicFile.WriteAllText(path, text.ToString());
    }

    /// <summary>The field as it appears in a record: quoted (quotes doubled) only where it has to be.</summary>
    public static string Escape(string field) =>
        field.AsSpan().IndexOfAny(",\"\r\n") < 0 ? field : "\"" + field.Replace("\"", "\"\"") + "\"";

    /// <summary>
    /// Every record of the file, the header row first. Accepts CRLF, LF or CR between records; a final line
    /// break ends the last record rather than starting an empty one.
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<string>> Read(string path)
    {
        string text = File.ReadAllText(path); // drops a BOM if a spreadsheet added one
        var records = new List<IReadOnlyList<string>>();
        var record = new List<string>();
        var field = new StringBuilder();
        int line = 1, i = 0;
        bool recordStarted = false;
        while (i < text.Length)
        {
            char c = text[i];
            if (c == '"' && field.Length == 0)
            {
                // Quoted field: runs to the closing quote, which must end the field.
                int start = line;
                i++;
                while (true)
                {
                    if (i >= text.Length) throw new FormatException($"{path}: quoted field opened on line {start} is never closed");
                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i += 2; continue; }
                        i++;
                        break;
                    }
                    if (text[i] == '\n' || (text[i] == '\r' && (i + 1 >= text.Length || text[i + 1] != '\n'))) line++;
                    field.Append(text[i++]);
                }
                if (i < text.Length && text[i] is not (',' or '\r' or '\n'))
                    throw new FormatException($"{path}, line {line}: unexpected '{text[i]}' after a closing quote");
                recordStarted = true;
                continue;
            }
            if (c == '"') throw new FormatException($"{path}, line {line}: quote inside an unquoted field");
            if (c == ',')
            {
                record.Add(field.ToString());
                field.Clear();
                recordStarted = true;
                i++;
                continue;
            }
            if (c is '\r' or '\n')
            {
                record.Add(field.ToString());
                field.Clear();
                records.Add(record);
                record = [];
                recordStarted = false;
                i += c == '\r' && i + 1 < text.Length && text[i + 1] == '\n' ? 2 : 1;
                line++;
                continue;
            }
            field.Append(c);
            recordStarted = true;
            i++;
        }
        if (recordStarted)
        {
            record.Add(field.ToString());
            records.Add(record);
        }
        return records;
    }

    static void AppendRecord(StringBuilder text, IReadOnlyList<string> fields)
    {
        for (int i = 0; i < fields.Count; i++)
        {
            if (i > 0) text.Append(',');
            text.Append(Escape(fields[i]));
        }
        text.Append("\r\n");
    }
}
