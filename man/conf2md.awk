# conf2md.awk: fills a man page template (Markdown) from the shipped
# configuration file, so that flightrecd.conf(5) documents exactly the keys,
# defaults and comments of config/flightrecd.conf (its one source).
# Usage: awk -f conf2md.awk TEMPLATE.md flightrecd.conf > OUT.md
# In TEMPLATE, a line @PREAMBLE@ becomes the comments above the first section,
# a line @KEYS@ one subsection per [section] with every key as
#   **key** = *default*  followed by the comment block above it.
# Comment lines are "# text"; keys are "#key = value" (no space after #); a
# comment block followed by a blank line or a section is a plain paragraph.

# md: escapes Markdown outside `code spans`.
function md(s,    n, parts, i, out) {
        n = split(s, parts, "`")
        out = ""
        for (i = 1; i <= n; i++) {
                if (i % 2 == 1) {
                        gsub(/\\/, "\\\\", parts[i])
                        gsub(/[*_<>\[\]]/, "\\\\&", parts[i])
                }
                out = out (i > 1 ? "`" : "") parts[i]
        }
        return out
}

function flush() {
        if (nterms > 0) {
                t = text; gsub(/\n/, "\n    ", t)
                keys = keys terms "\n:   " (t == "" ? "(no description)" : t) "\n\n"
        } else if (text != "") {
                if (section == "")
                        preamble = preamble text "\n\n"
                else
                        keys = keys text "\n\n"
        }
        text = ""; terms = ""; nterms = 0
}

FNR == NR { template[++ntemplate] = $0; next }

/^[ \t]*$/ { flush(); next }

/^\[[a-z_]+\]/ {
        flush()
        section = $0
        keys = keys "## " md(section) "\n\n"
        next
}

/^#[a-z_]+ *=/ {
        line = substr($0, 2)
        eq = index(line, "=")
        k = line; sub(/ *=.*/, "", k)
        v = substr(line, eq + 1); sub(/^ */, "", v); sub(/ *$/, "", v)
        term = "**" md(k) "** = " (v == "" ? "(empty)" : "*" md(v) "*")
        terms = terms (nterms ? ", " : "") term
        nterms++
        next
}

/^#/ {
        # A comment after keys starts the next block.
        if (nterms > 0)
                flush()
        line = $0; sub(/^# ?/, "", line)
        text = text (text == "" ? "" : "\n") md(line)
        next
}

{ printf "conf2md: %s:%d: neither a comment nor a commented key: %s\n", FILENAME, FNR, $0 > "/dev/stderr"; bad = 1 }

END {
        flush()
        if (bad)
                exit 1
        for (i = 1; i <= ntemplate; i++) {
                if (template[i] == "@PREAMBLE@")
                        printf "%s", preamble
                else if (template[i] == "@KEYS@")
                        printf "%s", keys
                else
                        print template[i]
        }
}
